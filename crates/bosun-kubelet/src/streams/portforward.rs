//! `kubectl port-forward` on the kubelet side (upstream `pkg/kubelet/cri/streaming/portforward`),
//! in both of upstream's flavours.
//!
//! SPDY (`httpstream.go`, what kubectl uses): the client opens stream pairs over one SPDY/3.1 connection — an `error`
//! and a `data` stream with the same `requestid` and a `port` header — and every pair becomes
//! a TCP connection to 127.0.0.1:port inside the pod's network namespace. Bytes are copied
//! both ways; when the pod's side ends, both streams are closed (FIN), and a failure to
//! connect is written on the error stream, which kubectl prints.
//!
//! The SPDY connection arrives either tunnelled in WebSocket binary messages (subprotocol
//! `SPDY/3.1+portforward.k8s.io`, what kubectl 1.31+ tries first) or over a plain
//! `Upgrade: SPDY/3.1` (its fallback). The connection to the pod is made from a short-lived
//! OS thread that `setns`-es into the network namespace of one of the pod's containers (so
//! hostNetwork pods get the host's), never from a tokio worker.
//!
//! WebSocket channels (`websocket.go`, what kube-rs's `Api::portforward` uses; subprotocol
//! `v4.channel.k8s.io`, or none): the ports come in the query (`port`, as the upstream API
//! server passes them, or `ports`, comma-separated, as clients send them and our API server
//! passes through); port i gets channel 2i for data and 2i+1 for errors, in [`channel`]'s
//! framing, and the server's first message on each is the port (2 bytes, little-endian). One
//! connection to the pod per port; the WebSocket closes once all of them have ended.
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocket;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::channel;
use super::spdy::{self, Codec, Frame};
use super::{pod_entry, status_response};
use crate::Ctx;

/// The port-forward protocol in SPDY's `X-Stream-Protocol-Version`.
pub(crate) const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol that carries it tunnelled (client-go's
/// `WebsocketsSPDYTunnelingPrefix` + the protocol).
pub(crate) const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The WebSocket subprotocol of the channel flavour (upstream's `v4BinaryWebsocketProtocol`;
/// kube-rs offers v5 then v4, and upstream's port-forward knows only v4).
pub(crate) const CHANNEL_PROTOCOL: &str = "v4.channel.k8s.io";
/// How long a connection to the pod may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a pod's ports are.
#[derive(Debug, Clone)]
struct Target {
    pod: String,
    uid: String,
    /// `/proc/<pid>/ns/net` of one of the pod's running containers.
    netns: PathBuf,
}

/// `GET|POST /portForward/{ns}/{pod}`.
pub(crate) async fn port_forward(
    State(ctx): State<Arc<Ctx>>,
    Path((ns, pod)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    mut req: Request,
) -> Response {
    let entry = match pod_entry(&ctx, &ns, &pod) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let pid = entry.containers.values().find_map(|(id, _)| {
        ctx.runtime
            .state(id)
            .ok()
            .filter(|s| s.status == bosun_runtime::Status::Running && s.pid > 0)
            .map(|s| s.pid)
    });
    let Some(pid) = pid else {
        return status_response(
            StatusCode::BAD_REQUEST,
            format!("pod \"{pod}\" in namespace \"{ns}\" has no running container"),
        );
    };
    let target = Target {
        pod: pod.clone(),
        uid: entry.uid.clone(),
        netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
    };
    if let Ok(ws) = ws {
        let offered = req.headers().contains_key("sec-websocket-protocol");
        let ws = ws.protocols([TUNNEL_PROTOCOL, CHANNEL_PROTOCOL]);
        let tunnel = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
            Some(TUNNEL_PROTOCOL) => true,
            Some(_) => false,
            // Upstream's channel flavour also serves a client that names no subprotocol.
            None if !offered => false,
            None => {
                return status_response(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "port-forward over WebSocket needs subprotocol {TUNNEL_PROTOCOL} or {CHANNEL_PROTOCOL}"
                    ),
                )
            }
        };
        if !tunnel {
            let ports = match query_ports(&q) {
                Ok(p) => p,
                Err(e) => return status_response(StatusCode::BAD_REQUEST, e),
            };
            return ws.on_upgrade(move |socket| channel_session(socket, ports, target));
        }
        return ws.on_upgrade(move |socket| async move {
            let (mut sink, mut stream) = socket.split();
            let (in_tx, in_rx) = mpsc::channel::<Bytes>(64);
            let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(64);
            let reader = tokio::spawn(async move {
                while let Some(Ok(m)) = stream.next().await {
                    let b = match m {
                        Message::Binary(b) => b,
                        Message::Close(_) => return,
                        _ => continue,
                    };
                    if in_tx.send(b).await.is_err() {
                        return;
                    }
                }
            });
            let writer = tokio::spawn(async move {
                while let Some(b) = out_rx.recv().await {
                    if sink.send(Message::Binary(b)).await.is_err() {
                        return;
                    }
                }
                let _ = sink.close().await;
            });
            session(in_rx, out_tx, target).await;
            reader.abort();
            let _ = writer.await;
        });
    }
    let spdy_upgrade = req
        .headers()
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    if !spdy_upgrade {
        return status_response(
            StatusCode::BAD_REQUEST,
            format!("port-forward needs a WebSocket ({TUNNEL_PROTOCOL}) or SPDY/3.1 upgrade"),
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
        let (in_tx, in_rx) = mpsc::channel::<Bytes>(64);
        let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(64);
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 || in_tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    return;
                }
            }
        });
        let writer = tokio::spawn(async move {
            while let Some(b) = out_rx.recv().await {
                if wr.write_all(&b).await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        session(in_rx, out_tx, target).await;
        reader.abort();
        let _ = writer.await;
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert("connection", HeaderValue::from_static("Upgrade"));
    h.insert("upgrade", HeaderValue::from_static("SPDY/3.1"));
    h.insert(
        "x-stream-protocol-version",
        HeaderValue::from_static(PROTOCOL),
    );
    resp
}

/// What a forwarded connection receives from the client.
enum ToPod {
    Data(Bytes),
    Fin,
}

/// What a forwarded connection sends toward the client.
enum FromPod {
    Data(Bytes),
    /// The connection failed (upstream's message); nothing follows.
    Error(String),
}

/// The ports of a channel-flavour request: every `port` and `ports` value, comma-separated
/// (upstream `parsePorts`), at most 128 (two channel bytes each).
fn query_ports(q: &[(String, String)]) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for (k, v) in q.iter().filter(|(k, _)| k == "port" || k == "ports") {
        if v.is_empty() {
            return Err(format!("query parameter \"{k}\" cannot be empty"));
        }
        for p in v.split(',') {
            let port: u16 = p
                .trim()
                .parse()
                .map_err(|e| format!("unable to parse \"{p}\" as a port: {e}"))?;
            if port == 0 {
                return Err(format!("port \"{p}\" must be > 0"));
            }
            ports.push(port);
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"port\" is required".to_string());
    }
    if ports.len() > 128 {
        return Err(format!("too many ports: {} (at most 128)", ports.len()));
    }
    Ok(ports)
}

/// One channel-flavour WebSocket: announces each port on its two channels, connects to
/// each, relays data channels both ways and a failure on the error channel; closes the
/// WebSocket when every connection has ended, drops them when the client goes away.
async fn channel_session(socket: WebSocket, ports: Vec<u16>, target: Target) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(64);
    let writer = tokio::spawn(async move {
        while let Some(b) = out_rx.recv().await {
            if sink.send(Message::Binary(b)).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut to_pod = Vec::with_capacity(ports.len());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, port) in ports.into_iter().enumerate() {
        // query_ports allows at most 128 ports, so 2i+1 fits a byte.
        let Ok(data_ch) = u8::try_from(2 * i) else {
            break;
        };
        let error_ch = data_ch + 1;
        for ch in [data_ch, error_ch] {
            let hello = Bytes::from(channel::frame(ch, &port.to_le_bytes()));
            if out_tx.send(hello).await.is_err() {
                return;
            }
        }
        let (tx, rx) = mpsc::channel(64);
        to_pod.push(tx);
        let (from_pod_tx, mut from_pod) = mpsc::channel::<FromPod>(64);
        let out = out_tx.clone();
        let target = target.clone();
        tasks.spawn(async move {
            let relay = async move {
                while let Some(m) = from_pod.recv().await {
                    let b = match m {
                        FromPod::Data(d) => channel::frame(data_ch, &d),
                        FromPod::Error(e) => channel::frame(error_ch, e.as_bytes()),
                    };
                    if out.send(Bytes::from(b)).await.is_err() {
                        return;
                    }
                }
            };
            tokio::join!(forward(target, Some(port), rx, from_pod_tx), relay);
        });
    }
    drop(out_tx);
    loop {
        tokio::select! {
            m = stream.next() => {
                let b = match m {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                // Odd (error) channels carry nothing from the client; unknown ones are ignored.
                let Some((ch, data)) = channel::split(&b) else { continue };
                if ch % 2 != 0 || data.is_empty() {
                    continue;
                }
                if let Some(tx) = to_pod.get(usize::from(ch / 2)) {
                    let _ = tx.send(ToPod::Data(Bytes::copy_from_slice(data))).await;
                }
            }
            done = tasks.join_next() => {
                if done.is_none() {
                    break;
                }
            }
        }
    }
    // The client is gone or every connection ended: drop what is left, then close.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    drop(to_pod);
    let _ = writer.await;
}

/// A stream pair being assembled (upstream waits for both halves).
#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<u32>,
    port: Option<u16>,
}

/// One SPDY connection: parses frames from `input`, answers them, and runs one task per
/// stream pair; ends when the client closes the connection or says GOAWAY.
async fn session(mut input: mpsc::Receiver<Bytes>, output: mpsc::Sender<Bytes>, target: Target) {
    let mut codec = Codec::new();
    let mut buf = BytesMut::new();
    let (frames_tx, mut frames_rx) = mpsc::channel::<Frame>(64);
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut to_pod: HashMap<u32, mpsc::Sender<ToPod>> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let send = |codec: &mut Codec, f: Frame| -> Option<Bytes> {
        let mut out = BytesMut::new();
        codec.encode(&f, &mut out).ok()?;
        Some(out.freeze())
    };
    loop {
        tokio::select! {
            chunk = input.recv() => {
                let Some(chunk) = chunk else { break };
                buf.extend_from_slice(&chunk);
                loop {
                    let frame = match codec.decode(&mut buf) {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, pod = %target.pod, "port-forward: bad SPDY");
                            return;
                        }
                    };
                    let mut replies = Vec::new();
                    match frame {
                        Frame::SynStream { stream_id, headers, .. } => {
                            replies.push(Frame::SynReply { stream_id, fin: false, headers: Vec::new() });
                            let kind = spdy::header(&headers, "streamtype").unwrap_or("");
                            let request = spdy::header(&headers, "requestid")
                                .map(str::to_string)
                                .unwrap_or_else(|| stream_id.to_string());
                            let port = spdy::header(&headers, "port").and_then(|p| p.parse::<u16>().ok());
                            let pair = pairs.entry(request.clone()).or_default();
                            match kind {
                                "error" => pair.error = Some(stream_id),
                                "data" => pair.data = Some(stream_id),
                                _ => replies.push(Frame::RstStream { stream_id, status: spdy::RST_PROTOCOL_ERROR }),
                            }
                            if port.is_some() {
                                pair.port = port;
                            }
                            if let (Some(error), Some(data)) = (pair.error, pair.data) {
                                let port = pair.port;
                                pairs.remove(&request);
                                let (tx, rx) = mpsc::channel(64);
                                to_pod.insert(data, tx);
                                tasks.spawn(spdy_pair(target.clone(), port, error, data, rx, frames_tx.clone()));
                            }
                        }
                        Frame::Data { stream_id, fin, data } => {
                            if let Some(tx) = to_pod.get(&stream_id) {
                                if !data.is_empty() {
                                    let _ = tx.send(ToPod::Data(data)).await;
                                }
                                if fin {
                                    let _ = tx.send(ToPod::Fin).await;
                                    to_pod.remove(&stream_id);
                                }
                            }
                        }
                        Frame::RstStream { stream_id, .. } => {
                            if let Some(tx) = to_pod.remove(&stream_id) {
                                let _ = tx.send(ToPod::Fin).await;
                            }
                        }
                        Frame::Ping { id } => replies.push(Frame::Ping { id }),
                        Frame::GoAway { .. } => return,
                        Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Ignored { .. } => {}
                    }
                    for f in replies {
                        if let Some(b) = send(&mut codec, f) {
                            if output.send(b).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            Some(f) = frames_rx.recv() => {
                if let Some(b) = send(&mut codec, f) {
                    if output.send(b).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// One SPDY stream pair: [`forward`], its data on the data stream, a failure on the error
/// stream (closing it), then FIN on whatever is still open.
async fn spdy_pair(
    target: Target,
    port: Option<u16>,
    error_stream: u32,
    data_stream: u32,
    from_client: mpsc::Receiver<ToPod>,
    frames: mpsc::Sender<Frame>,
) {
    let fin = |stream_id| Frame::Data {
        stream_id,
        fin: true,
        data: Bytes::new(),
    };
    let (tx, mut from_pod) = mpsc::channel::<FromPod>(64);
    let relay = async move {
        let mut error_open = true;
        while let Some(m) = from_pod.recv().await {
            let f = match m {
                FromPod::Data(data) => Frame::Data {
                    stream_id: data_stream,
                    fin: false,
                    data,
                },
                FromPod::Error(msg) => {
                    error_open = false;
                    Frame::Data {
                        stream_id: error_stream,
                        fin: true,
                        data: Bytes::from(msg),
                    }
                }
            };
            if frames.send(f).await.is_err() {
                return;
            }
        }
        let _ = frames.send(fin(data_stream)).await;
        if error_open {
            let _ = frames.send(fin(error_stream)).await;
        }
    };
    tokio::join!(forward(target, port, from_client, tx), relay);
}

/// One forwarded connection: connect to the port in the pod and copy until the pod's side
/// ends (or the client's side goes away); a failure to connect is reported, not returned.
async fn forward(
    target: Target,
    port: Option<u16>,
    mut from_client: mpsc::Receiver<ToPod>,
    to_client: mpsc::Sender<FromPod>,
) {
    let conn = match port {
        Some(p) if p > 0 => dial(&target, p).await,
        _ => Err("invalid port".to_string()),
    };
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => {
            let msg = format!(
                "error forwarding port {} to pod {}, uid {}: {e}",
                port.unwrap_or(0),
                target.pod,
                target.uid
            );
            let _ = to_client.send(FromPod::Error(msg)).await;
            return;
        }
    };
    let (mut rd, mut wr) = conn.split();
    let to_pod = async {
        while let Some(m) = from_client.recv().await {
            match m {
                ToPod::Data(b) => {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                ToPod::Fin => break,
            }
        }
        let _ = wr.shutdown().await;
        // Keep the half open: the pod's answer is still coming.
        std::future::pending::<()>().await;
    };
    let from_pod = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let d = FromPod::Data(Bytes::copy_from_slice(&buf[..n]));
                    if to_client.send(d).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        () = to_pod => {}
        () = from_pod => {}
    }
}

/// Connects to 127.0.0.1:`port` inside the target's network namespace.
async fn dial(target: &Target, port: u16) -> Result<tokio::net::TcpStream, String> {
    let netns = target.netns.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| -> Result<std::net::TcpStream, String> {
            // Only this thread enters the namespace; it exits right after.
            let f = std::fs::File::open(&netns)
                .map_err(|e| format!("open {}: {e}", netns.display()))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("enter the pod's network namespace: {e}"))?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let s = std::net::TcpStream::connect_timeout(&addr, DIAL_TIMEOUT)
                .map_err(|e| format!("dial tcp4 {addr}: {e}"))?;
            s.set_nonblocking(true)
                .map_err(|e| format!("set nonblocking: {e}"))?;
            Ok(s)
        })();
        let _ = tx.send(r);
    });
    let s = rx
        .await
        .map_err(|_| "the dialing thread died".to_string())??;
    tokio::net::TcpStream::from_std(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ports_from_the_query() {
        // kube-rs's `ports=80,1234`; upstream API server's repeated `port`.
        assert_eq!(query_ports(&q(&[("ports", "80,1234")])), Ok(vec![80, 1234]));
        assert_eq!(
            query_ports(&q(&[("port", "80"), ("port", "81")])),
            Ok(vec![80, 81])
        );
        assert!(query_ports(&q(&[])).unwrap_err().contains("required"));
        assert!(query_ports(&q(&[("ports", "")])).is_err());
        assert!(query_ports(&q(&[("ports", "0")])).is_err());
        assert!(query_ports(&q(&[("ports", "70000")])).is_err());
        assert!(query_ports(&q(&[("ports", "http")])).is_err());
        let many = (1..=129)
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(query_ports(&q(&[("ports", &many)])).is_err());
    }

    fn headers(kind: &str, port: u16, request: &str) -> spdy::Headers {
        vec![
            ("streamtype".into(), kind.into()),
            ("port".into(), port.to_string()),
            ("requestid".into(), request.into()),
        ]
    }

    /// Drives [`session`] as kubectl would, against a listener in this test's own network
    /// namespace (loopback only).
    #[tokio::test]
    async fn stream_pairs_reach_the_port_and_errors_reach_the_error_stream() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let _ = s.write_all(b"echo:").await;
                    let _ = s.write_all(&buf[..n]).await;
                });
            }
        });
        // A port nothing listens on.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let target = Target {
            pod: "p".into(),
            uid: "u".into(),
            netns: PathBuf::from("/proc/self/ns/net"),
        };
        let (in_tx, in_rx) = mpsc::channel(64);
        let (out_tx, mut out_rx) = mpsc::channel(64);
        tokio::spawn(session(in_rx, out_tx, target));
        let mut client = Codec::new();
        let mut wire = BytesMut::new();
        for f in [
            Frame::SynStream {
                stream_id: 1,
                fin: false,
                headers: headers("error", port, "0"),
            },
            Frame::SynStream {
                stream_id: 3,
                fin: false,
                headers: headers("data", port, "0"),
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Ping { id: 9 },
            Frame::SynStream {
                stream_id: 5,
                fin: false,
                headers: headers("error", closed, "1"),
            },
            Frame::SynStream {
                stream_id: 7,
                fin: false,
                headers: headers("data", closed, "1"),
            },
        ] {
            client.encode(&f, &mut wire).unwrap();
        }
        in_tx.send(wire.freeze()).await.unwrap();

        let mut buf = BytesMut::new();
        let mut replies = Vec::new();
        let mut data: HashMap<u32, Vec<u8>> = HashMap::new();
        let mut fins = Vec::new();
        let mut pong = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while fins.len() < 4 {
            let chunk = tokio::time::timeout_at(deadline, out_rx.recv())
                .await
                .expect("session answered in time")
                .expect("session alive");
            buf.extend_from_slice(&chunk);
            while let Some(f) = client.decode(&mut buf).unwrap() {
                match f {
                    Frame::SynReply { stream_id, .. } => replies.push(stream_id),
                    Frame::Ping { id } => pong = id == 9,
                    Frame::Data {
                        stream_id,
                        fin,
                        data: d,
                    } => {
                        data.entry(stream_id).or_default().extend_from_slice(&d);
                        if fin {
                            fins.push(stream_id);
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        replies.sort();
        assert_eq!(replies, vec![1, 3, 5, 7]);
        assert!(pong);
        assert_eq!(data.get(&3).map(Vec::as_slice), Some(&b"echo:hello"[..]));
        assert!(data.get(&1).is_none_or(|d| d.is_empty()));
        let err = String::from_utf8_lossy(&data[&5]).into_owned();
        assert!(
            err.starts_with(&format!("error forwarding port {closed} to pod p, uid u: "))
                && err.contains("refused"),
            "{err}"
        );
        fins.sort();
        assert_eq!(fins, vec![1, 3, 5, 7]);
    }
}
