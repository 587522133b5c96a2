//! The TLS listener end to end: a tiny router served by `tls::serve` on loopback, called with
//! the admin certificate, bearer tokens, anonymously, with garbage, and by the real kubectl.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, Request};
use axum::routing::get;
use axum::{Json, Router};
use bosun_apiserver::tls::{self, Authenticator, Pki, UserInfo};
use bytes::Bytes;
use http::{StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

/// Only guards against a hang turning into a stuck test run; nothing asserts on time.
const HANG_GUARD: Duration = Duration::from_secs(60);
const WATCH_CHUNKS: usize = 4;

struct Server {
    addr: SocketAddr,
    pki: Pki,
    data_dir: tempfile::TempDir,
    /// HTTP versions of requests to `/api`, to see what real clients negotiated.
    api_versions: Arc<Mutex<Vec<Version>>>,
    /// One permit lets `/watchish` send its next chunk, so the test proves each chunk arrives
    /// before the next is even produced.
    watch_gate: Arc<Semaphore>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

async fn whoami(Extension(user): Extension<UserInfo>, req: Request) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": user.name,
        "groups": user.groups,
        "uid": user.uid,
        "authorizationHeaderSeen": req.headers().contains_key(http::header::AUTHORIZATION),
    }))
}

/// Switches the connection to a raw echo protocol, as exec and port-forward later switch to
/// WebSocket: proves the upgrade survives TLS, authentication and the router.
async fn echo_upgrade(mut req: Request) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0u8; 64];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (http::header::CONNECTION, "Upgrade"),
            (http::header::UPGRADE, "echo"),
        ],
    )
        .into_response()
}

async fn start() -> Server {
    let data_dir = tempfile::tempdir().unwrap();
    let pki = tls::ensure_pki(data_dir.path(), &[]).unwrap();
    let config = tls::server_config(&pki).unwrap();
    let authn = Arc::new(Authenticator::from_token_file(&pki.token_file).unwrap());
    let api_versions = Arc::new(Mutex::new(Vec::new()));
    let watch_gate = Arc::new(Semaphore::new(0));

    let versions = api_versions.clone();
    let gate = watch_gate.clone();
    let app = Router::new()
        .route(
            "/version",
            get(|| async { Json(serde_json::json!({"major": "1", "minor": "34"})) }),
        )
        .route(
            "/api",
            get(move |req: Request| {
                let versions = versions.clone();
                async move {
                    versions.lock().push(req.version());
                    Json(serde_json::json!({
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [
                            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
                        ],
                    }))
                }
            }),
        )
        .route("/whoami", get(whoami))
        .route("/echo-upgrade", get(echo_upgrade))
        .route(
            "/watchish",
            get(move || {
                let gate = gate.clone();
                async move {
                    let chunks = futures::stream::unfold(0usize, move |i| {
                        let gate = gate.clone();
                        async move {
                            if i == WATCH_CHUNKS {
                                return None;
                            }
                            if i > 0 {
                                gate.acquire().await.ok()?.forget();
                            }
                            // The pacing of a watch stream; the gate above is what the test
                            // relies on.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let line = format!("{{\"type\":\"ADDED\",\"n\":{i}}}\n");
                            Some((Ok::<_, std::io::Error>(Bytes::from(line)), i + 1))
                        }
                    });
                    Body::from_stream(chunks)
                }
            }),
        );

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(tls::serve(listener, config, app, authn, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        pki,
        data_dir,
        api_versions,
        watch_gate,
        stop: Some(stop),
        task,
    }
}

fn with_alpn(mut config: ClientConfig, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// A request sender over one connection, HTTP/2 or HTTP/1.1 as ALPN decided.
enum Sender {
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
}

impl Sender {
    async fn open(stream: Tls) -> Self {
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(stream);
        if h2 {
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            Sender::H2(send)
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Sender::H1(send)
        }
    }

    async fn send(
        &mut self,
        path: &str,
        token: Option<&str>,
    ) -> http::Response<hyper::body::Incoming> {
        let mut req = http::Request::get(format!("https://localhost{path}"));
        if matches!(self, Sender::H1(_)) {
            req = req.uri(path).header(http::header::HOST, "localhost");
        }
        if let Some(token) = token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Empty::new()).unwrap();
        match self {
            Sender::H2(s) => s.send_request(req).await.unwrap(),
            Sender::H1(s) => s.send_request(req).await.unwrap(),
        }
    }
}

async fn get_once(
    addr: SocketAddr,
    config: ClientConfig,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let stream = connect(addr, Arc::new(config)).await.unwrap();
    let mut sender = Sender::open(stream).await;
    let resp = sender.send(path, token).await;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (parts.status, parts.headers, json)
}

fn unauthorized_body() -> serde_json::Value {
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    })
}

#[tokio::test]
async fn anonymous_requests_reach_only_public_info_paths() {
    let server = start().await;
    let anon = || tls::anonymous_client_config(&server.pki).unwrap();

    let (status, _, body) = get_once(server.addr, anon(), "/version", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["minor"], "34");

    let (status, headers, body) = get_once(server.addr, anon(), "/api", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[http::header::CONTENT_TYPE], "application/json");
    assert_eq!(body, unauthorized_body());

    let (status, _, _) = get_once(server.addr, anon(), "/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn client_certificate_authenticates_as_its_subject() {
    let server = start().await;
    let config = tls::client_config(&server.pki).unwrap();
    let (status, _, body) = get_once(server.addr, config.clone(), "/whoami", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "system:admin");
    assert_eq!(
        body["groups"],
        serde_json::json!(["system:masters", "system:authenticated"])
    );
    let (status, _, body) = get_once(server.addr, config, "/api", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["kind"], "APIVersions");
}

#[tokio::test]
async fn issued_node_certificate_authenticates() {
    let server = start().await;
    let (cert, key) = server
        .pki
        .issue_client_cert("system:node:n1", &["system:nodes"])
        .unwrap();
    let mut pki = server.pki.clone();
    pki.admin_cert_pem = cert;
    pki.admin_key_pem = key;
    let (status, _, body) = get_once(
        server.addr,
        tls::client_config(&pki).unwrap(),
        "/whoami",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "system:node:n1");
}

#[tokio::test]
async fn bearer_tokens_from_the_token_file() {
    let server = start().await;
    let anon = || tls::anonymous_client_config(&server.pki).unwrap();
    let token = server.pki.node_token.clone();

    let (status, _, body) = get_once(server.addr, anon(), "/whoami", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "system:node-bootstrap");
    assert_eq!(body["uid"], "system:node-bootstrap");
    assert_eq!(
        body["groups"],
        serde_json::json!(["system:nodes", "system:authenticated"])
    );
    // Upstream strips a token that authenticated, so handlers never see it.
    assert_eq!(body["authorizationHeaderSeen"], false);

    for path in ["/api", "/version"] {
        let (status, _, body) = get_once(server.addr, anon(), path, Some("wrong-token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body, unauthorized_body());
    }
}

#[tokio::test]
async fn alpn_negotiates_http2_and_still_serves_http1() {
    let server = start().await;
    let config = tls::client_config(&server.pki).unwrap();

    let stream = connect(
        server.addr,
        with_alpn(config.clone(), &[b"h2", b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut h2 = Sender::open(stream).await;
    assert_eq!(h2.send("/api", None).await.status(), StatusCode::OK);

    let stream = connect(server.addr, with_alpn(config.clone(), &[b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut h1 = Sender::open(stream).await;
    let resp = h1.send("/api", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_11);
    // A second request on the same HTTP/1.1 connection: keep-alive works.
    resp.into_body().collect().await.unwrap();
    assert_eq!(h1.send("/api", None).await.status(), StatusCode::OK);

    // No ALPN at all falls back to HTTP/1.1, as Go's server does.
    let stream = connect(server.addr, with_alpn(config, &[])).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), None);
    let mut plain = Sender::open(stream).await;
    assert_eq!(plain.send("/api", None).await.status(), StatusCode::OK);

    assert_eq!(
        *server.api_versions.lock(),
        vec![
            Version::HTTP_2,
            Version::HTTP_11,
            Version::HTTP_11,
            Version::HTTP_11
        ]
    );
}

#[tokio::test]
async fn many_requests_share_one_http2_connection() {
    let server = start().await;
    let stream = connect(
        server.addr,
        Arc::new(tls::client_config(&server.pki).unwrap()),
    )
    .await
    .unwrap();
    let Sender::H2(send) = Sender::open(stream).await else {
        panic!("expected http/2");
    };
    let requests = (0..32).map(|_| {
        let mut send = send.clone();
        async move {
            let req = http::Request::get("https://localhost/api")
                .body(Empty::<Bytes>::new())
                .unwrap();
            send.send_request(req).await.unwrap().status()
        }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn http1_upgrade_hands_over_the_connection() {
    let server = start().await;
    let config = with_alpn(tls::client_config(&server.pki).unwrap(), &[b"http/1.1"]);
    let stream = connect(server.addr, config).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    let req = http::Request::get("/echo-upgrade")
        .header(http::header::HOST, "localhost")
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "echo")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    let upgraded = tokio::time::timeout(HANG_GUARD, hyper::upgrade::on(resp))
        .await
        .expect("upgrade stalled")
        .unwrap();
    let mut io = TokioIo::new(upgraded);
    io.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(HANG_GUARD, io.read_exact(&mut buf))
        .await
        .expect("echo stalled")
        .unwrap();
    assert_eq!(&buf, b"ping");

    // Upgrades are authenticated like any request.
    let config = with_alpn(
        tls::anonymous_client_config(&server.pki).unwrap(),
        &[b"http/1.1"],
    );
    let stream = connect(server.addr, config).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    let req = http::Request::get("/echo-upgrade")
        .header(http::header::HOST, "localhost")
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "echo")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

async fn check_streaming(server: &Server, alpn: &[&[u8]]) {
    let config = with_alpn(tls::client_config(&server.pki).unwrap(), alpn);
    let mut sender = Sender::open(connect(server.addr, config).await.unwrap()).await;
    let resp = sender.send("/watchish", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut received = String::new();
    let mut pieces = 0;
    while let Some(frame) = body.frame().await {
        // Trailers and the empty frame that may close the stream are not pieces.
        let Ok(data) = frame.unwrap().into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        pieces += 1;
        received.push_str(std::str::from_utf8(&data).unwrap());
        // The server produces the next chunk only after this one has arrived here, so a server
        // that buffered the response would never finish (and the hang guard would fail us).
        server.watch_gate.add_permits(1);
    }
    assert_eq!(pieces, WATCH_CHUNKS, "{received}");
    let lines: Vec<_> = received.lines().collect();
    assert_eq!(lines.len(), WATCH_CHUNKS);
    assert_eq!(lines[3], r#"{"type":"ADDED","n":3}"#);
}

#[tokio::test]
async fn streamed_responses_arrive_in_pieces() {
    let server = start().await;
    tokio::time::timeout(HANG_GUARD, async {
        check_streaming(&server, &[b"h2"]).await;
        check_streaming(&server, &[b"http/1.1"]).await;
    })
    .await
    .expect("streamed response stalled: the server buffers instead of streaming");
}

#[tokio::test]
async fn garbage_and_stalled_clients_do_not_break_the_server() {
    let server = start().await;

    // Plain HTTP to the TLS port: the handshake fails and only that connection closes.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(HANG_GUARD, tcp.read_to_end(&mut sink)).await;

    // Random bytes, then an abrupt close.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3])
        .await
        .unwrap();
    drop(tcp);

    // A client that never starts its handshake must not hold up anyone else.
    let _stalled = TcpStream::connect(server.addr).await.unwrap();

    // A certificate from another cluster's CA is refused in the handshake.
    let other_dir = tempfile::tempdir().unwrap();
    let other = tls::ensure_pki(other_dir.path(), &[]).unwrap();
    let mut foreign = tls::client_config(&server.pki).unwrap();
    let trusted = tls::client_config(&other).unwrap();
    foreign.client_auth_cert_resolver = trusted.client_auth_cert_resolver.clone();
    let refused = async {
        let mut tls = connect(server.addr, Arc::new(foreign)).await?;
        // TLS 1.3 reports a rejected client certificate only on the first read.
        tls.write_all(b"GET /api HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut buf = [0u8; 64];
        match tls.read(&mut buf).await? {
            0 => Err(std::io::Error::other("closed")),
            _ => Ok(()),
        }
    };
    assert!(
        refused.await.is_err(),
        "a foreign client certificate was accepted"
    );

    let (status, _, body) = get_once(
        server.addr,
        tls::client_config(&server.pki).unwrap(),
        "/whoami",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "system:admin");
}

#[tokio::test]
async fn shutdown_stops_the_listener() {
    let mut server = start().await;
    // An idle open connection must not keep serve() from returning.
    let stream = connect(
        server.addr,
        Arc::new(tls::client_config(&server.pki).unwrap()),
    )
    .await
    .unwrap();
    let mut sender = Sender::open(stream).await;
    assert_eq!(sender.send("/api", None).await.status(), StatusCode::OK);

    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(HANG_GUARD, &mut server.task)
        .await
        .expect("serve did not return after shutdown")
        .unwrap();
}

fn kubectl() -> PathBuf {
    let path = std::env::var_os("BOSUN_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/bosun/bin/kubectl")
        });
    assert!(
        path.is_file(),
        "kubectl not found at {} (set BOSUN_KUBECTL, or run scripts/fetch-clients.sh)",
        path.display()
    );
    path
}

async fn run_kubectl(server: &Server, args: &[&str]) -> std::process::Output {
    tokio::time::timeout(
        HANG_GUARD,
        tokio::process::Command::new(kubectl())
            .args(args)
            // Keep kubectl's discovery cache inside the test's directory.
            .env("KUBECACHEDIR", server.data_dir.path().join("kube-cache"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kubectl hung")
    .expect("running kubectl")
}

#[tokio::test]
async fn real_kubectl_talks_http2_with_the_written_kubeconfig() {
    let server = start().await;
    let kubeconfig = server.data_dir.path().join("kubeconfig.yaml");
    tls::write_kubeconfig(
        &server.pki,
        &format!("https://{}", server.addr),
        &kubeconfig,
    )
    .unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();

    let out = run_kubectl(
        &server,
        &["--kubeconfig", kubeconfig, "get", "--raw", "/api"],
    )
    .await;
    assert!(
        out.status.success(),
        "kubectl get --raw /api failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["kind"], "APIVersions");
    assert_eq!(*server.api_versions.lock(), vec![Version::HTTP_2]);

    // By address, with the CA file and the node token instead of the admin certificate.
    let ca = server.data_dir.path().join("tls/ca.crt");
    let server_url = format!("https://127.0.0.1:{}", server.addr.port());
    let token_args = |token: &str| {
        vec![
            "--server".to_owned(),
            server_url.clone(),
            "--certificate-authority".to_owned(),
            ca.to_str().unwrap().to_owned(),
            format!("--token={token}"),
            "get".to_owned(),
            "--raw".to_owned(),
            "/api".to_owned(),
        ]
    };
    let args = token_args(&server.pki.node_token);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_kubectl(&server, &args).await;
    assert!(
        out.status.success(),
        "kubectl with the node token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let args = token_args("wrong-token");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_kubectl(&server, &args).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthorized"), "{stderr}");
}
