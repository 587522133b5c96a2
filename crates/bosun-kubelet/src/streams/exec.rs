//! `kubectl exec` and `kubectl attach` on the kubelet side: a WebSocket session speaking
//! the channel protocol ([`super::channel`]).
//!
//! exec runs the command through the runtime's exec helper ([`bosun_runtime::exec`]) with
//! pipes, or with a pty when `tty` is asked for (resize messages set its window size).
//! Output is forwarded until every copy of the output descriptors is closed, then the exit
//! code is sent as a Status on the error channel and the WebSocket is closed normally —
//! what client-go waits for. stdin EOF comes as v5's CLOSE signal; a client that goes away
//! kills the command (the helper's child dies with it).
//!
//! attach connects to the shim's attach socket (the shim owns the container's stdio):
//! output from now on, and stdin into the container's stdin pipe when the container has
//! `stdin: true` (v5's CLOSE ends it, which closes a `stdinOnce` container's stdin), until
//! the container stops. A container whose shim predates the attach socket is followed
//! through its CRI log instead, without stdin. Containers with `tty: true` get no pty from
//! the runtime, so attach has no terminal to resize.
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::channel::{self, Incoming, ERROR, STDERR, STDIN, STDOUT};
use super::{flag, running_container, status_response};
use crate::Ctx;

/// What the client asked for (upstream's `remotecommand` options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Options {
    pub(crate) fn from_query(q: &[(String, String)]) -> Self {
        let tty = flag(q, "tty");
        Options {
            command: q
                .iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.clone())
                .collect(),
            stdin: flag(q, "stdin"),
            stdout: flag(q, "stdout"),
            // With a tty, stderr is merged into stdout (upstream drops the stream).
            stderr: flag(q, "stderr") && !tty,
            tty,
        }
    }
}

type Rejectable = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

fn websocket_only(what: &str) -> Response {
    status_response(
        StatusCode::BAD_REQUEST,
        format!(
            "{what} needs a WebSocket upgrade with subprotocol {} (bosun's kubelet does not speak SPDY for {what})",
            channel::PROTOCOLS[0]
        ),
    )
}

/// `GET /exec/{ns}/{pod}/{container}`.
pub(crate) async fn exec(
    State(ctx): State<Arc<Ctx>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    ws: Rejectable,
) -> Response {
    let o = Options::from_query(&q);
    if o.command.is_empty() {
        return status_response(
            StatusCode::BAD_REQUEST,
            "you must specify at least one command for the container".into(),
        );
    }
    if !(o.stdin || o.stdout || o.stderr) {
        return status_response(
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 of stdin, stdout, stderr".into(),
        );
    }
    let (_, id, _) = match running_container(&ctx, &ns, &pod, &container) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Ok(ws) = ws else {
        return websocket_only("exec");
    };
    let ws = ws.protocols(channel::PROTOCOLS);
    let v5 = ws
        .selected_protocol()
        .is_some_and(|p| p == channel::PROTOCOLS[0]);
    tracing::debug!(%ns, %pod, %container, command = ?o.command, tty = o.tty, "exec");
    ws.on_upgrade(move |socket| async move {
        let (sink, incoming) = socket.split();
        let (out, rx) = mpsc::channel(64);
        let writer = tokio::spawn(write_loop(sink, rx));
        let status = match spawn(&ctx, &id, &o) {
            Ok(p) => drive(p, incoming, out.clone(), v5, &o.command).await,
            Err(e) => Some(channel::failure_status(&format!(
                "error executing command in container: {e}"
            ))),
        };
        finish(out, status).await;
        let _ = writer.await;
    })
}

/// `GET /attach/{ns}/{pod}/{container}`.
pub(crate) async fn attach(
    State(ctx): State<Arc<Ctx>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    ws: Rejectable,
) -> Response {
    let o = Options::from_query(&q);
    if !(o.stdin || o.stdout || o.stderr) {
        return status_response(
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 of stdin, stdout, stderr".into(),
        );
    }
    let (entry, id, n) = match running_container(&ctx, &ns, &pod, &container) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Ok(ws) = ws else {
        return websocket_only("attach");
    };
    let ws = ws.protocols(channel::PROTOCOLS);
    let v5 = ws
        .selected_protocol()
        .is_some_and(|p| p == channel::PROTOCOLS[0]);
    let log = crate::logs::log_path(&ctx.pod_dir(&entry.uid), &container, n);
    ws.on_upgrade(move |socket| async move {
        let (sink, incoming) = socket.split();
        let (out, rx) = mpsc::channel(64);
        let writer = tokio::spawn(write_loop(sink, rx));
        let status = attach_session(&ctx, &id, log, &o, incoming, out.clone(), v5).await;
        finish(out, status).await;
        let _ = writer.await;
    })
}

async fn write_loop(mut sink: SplitSink<WebSocket, Message>, mut rx: mpsc::Receiver<Message>) {
    while let Some(m) = rx.recv().await {
        let close = matches!(m, Message::Close(_));
        if sink.send(m).await.is_err() || close {
            break;
        }
    }
    let _ = sink.close().await;
}

/// Sends the outcome on the error channel (unless the client is gone) and closes normally.
async fn finish(out: mpsc::Sender<Message>, status: Option<Value>) {
    if let Some(s) = status {
        let _ = out
            .send(Message::Binary(
                channel::frame(ERROR, s.to_string().as_bytes()).into(),
            ))
            .await;
        let _ = out
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
    }
}

/// A running exec: the helper process and its ends of stdio.
struct Proc {
    child: tokio::process::Child,
    stdin: Option<Box<dyn AsyncWrite + Unpin + Send>>,
    /// (channel, reader, forward?): output to drain; with `forward` false it is discarded.
    outputs: Vec<(u8, Box<dyn AsyncRead + Unpin + Send>, bool)>,
    /// The pty master, for resizes.
    pty: Option<OwnedFd>,
}

fn spawn(ctx: &Ctx, id: &str, o: &Options) -> Result<Proc, String> {
    let std_cmd = ctx
        .runtime
        .exec_command(id, &o.command, o.tty)
        .map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::from(std_cmd);
    cmd.kill_on_drop(true);
    let io = |e: std::io::Error| e.to_string();
    if o.tty {
        let (master, slave) = bosun_runtime::exec::open_pty().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::from(slave.try_clone().map_err(io)?))
            .stdout(Stdio::from(slave.try_clone().map_err(io)?))
            .stderr(Stdio::from(slave));
        let child = cmd.spawn().map_err(io)?;
        // Our copies of the slave must go, or the master never sees the end.
        drop(cmd);
        let file = |fd: &OwnedFd| -> Result<tokio::fs::File, String> {
            Ok(tokio::fs::File::from_std(std::fs::File::from(
                fd.try_clone().map_err(io)?,
            )))
        };
        let reader = file(&master)?;
        let stdin: Option<Box<dyn AsyncWrite + Unpin + Send>> = if o.stdin {
            Some(Box::new(file(&master)?))
        } else {
            None
        };
        return Ok(Proc {
            child,
            stdin,
            outputs: vec![(STDOUT, Box::new(reader), o.stdout)],
            pty: Some(master),
        });
    }
    let pipe_or_null = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(pipe_or_null(o.stdin))
        .stdout(pipe_or_null(o.stdout))
        .stderr(pipe_or_null(o.stderr));
    let mut child = cmd.spawn().map_err(io)?;
    drop(cmd);
    let mut outputs: Vec<(u8, Box<dyn AsyncRead + Unpin + Send>, bool)> = Vec::new();
    if let Some(s) = child.stdout.take() {
        outputs.push((STDOUT, Box::new(s), true));
    }
    if let Some(s) = child.stderr.take() {
        outputs.push((STDERR, Box::new(s), true));
    }
    let stdin = child
        .stdin
        .take()
        .map(|s| Box::new(s) as Box<dyn AsyncWrite + Unpin + Send>);
    Ok(Proc {
        child,
        stdin,
        outputs,
        pty: None,
    })
}

/// Copies one output into messages on `ch` until EOF (a pty's EIO is its EOF).
async fn pump(
    ch: u8,
    mut r: Box<dyn AsyncRead + Unpin + Send>,
    forward: bool,
    out: mpsc::Sender<Message>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if forward
                    && out
                        .send(Message::Binary(channel::frame(ch, &buf[..n]).into()))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Feeds stdin from `rx` until it closes (EOF for the command).
fn stdin_task(mut w: Box<dyn AsyncWrite + Unpin + Send>) -> mpsc::Sender<Bytes> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if w.write_all(&b).await.is_err() || w.flush().await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    });
    tx
}

/// Runs the session until the command's output has ended and it has exited; the Status to
/// send, or `None` when the client went away.
async fn drive(
    mut p: Proc,
    mut incoming: SplitStream<WebSocket>,
    out: mpsc::Sender<Message>,
    v5: bool,
    cmd: &[String],
) -> Option<Value> {
    let mut stdin = p.stdin.take().map(stdin_task);
    let mut pumps = tokio::task::JoinSet::new();
    for (ch, r, forward) in std::mem::take(&mut p.outputs) {
        pumps.spawn(pump(ch, r, forward, out.clone()));
    }
    let mut pumps_done = pumps.is_empty();
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let mut child = p.child;
    let mut waiter = tokio::spawn(async move {
        tokio::select! {
            s = child.wait() => s,
            _ = killed => {
                let _ = child.start_kill();
                child.wait().await
            }
        }
    });
    let status = loop {
        tokio::select! {
            done = pumps.join_next(), if !pumps_done => {
                pumps_done = done.is_none();
            }
            s = &mut waiter, if pumps_done => break s,
            m = incoming.next() => match m {
                Some(Ok(Message::Binary(b))) => match channel::parse(&b, v5) {
                    Incoming::Stdin(d) if !d.is_empty() => {
                        if let Some(tx) = &stdin {
                            if tx.send(Bytes::copy_from_slice(d)).await.is_err() {
                                stdin = None;
                            }
                        }
                    }
                    Incoming::Close(STDIN) => stdin = None,
                    Incoming::Resize { width, height } => {
                        if let Some(m) = &p.pty {
                            let _ = bosun_runtime::exec::set_window_size(m, width, height);
                        }
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    // The client is gone: so is the command.
                    let _ = kill.send(());
                    pumps.abort_all();
                    let _ = waiter.await;
                    return None;
                }
                Some(Ok(_)) => {}
            }
        }
    };
    drop(stdin);
    Some(match status {
        Ok(Ok(s)) => channel::exit_status(s.code().unwrap_or(1), cmd),
        Ok(Err(e)) => channel::failure_status(&format!("waiting for the command: {e}")),
        Err(e) => channel::failure_status(&format!("waiting for the command: {e}")),
    })
}

/// attach: through the shim's attach socket (output from now on, stdin to the container),
/// or, for a container whose shim predates it, from the CRI log without stdin.
async fn attach_session(
    ctx: &Arc<Ctx>,
    id: &str,
    log: std::path::PathBuf,
    o: &Options,
    incoming: SplitStream<WebSocket>,
    out: mpsc::Sender<Message>,
    v5: bool,
) -> Option<Value> {
    let sock = ctx
        .runtime
        .attach(id)
        .ok()
        .flatten()
        .and_then(|s| s.set_nonblocking(true).ok().map(|()| s))
        .and_then(|s| tokio::net::UnixStream::from_std(s).ok());
    match sock {
        Some(s) => attach_socket(s, o, incoming, out, v5).await,
        None => attach_log(ctx, id, log, o, incoming, out, v5).await,
    }
}

async fn attach_socket(
    sock: tokio::net::UnixStream,
    o: &Options,
    mut incoming: SplitStream<WebSocket>,
    out: mpsc::Sender<Message>,
    v5: bool,
) -> Option<Value> {
    let (mut rd, wr) = sock.into_split();
    // Without stdin the write half stays open and unused: closing it would end stdin for
    // a stdinOnce container.
    let mut wr = Some(wr);
    let (want_out, want_err, tty) = (o.stdout, o.stderr, o.tty);
    let mut reader = tokio::spawn(async move {
        let mut head = [0u8; 5];
        loop {
            if rd.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut data = vec![0u8; len];
            if rd.read_exact(&mut data).await.is_err() {
                return;
            }
            let ch = if head[0] == 2 && !tty { STDERR } else { STDOUT };
            let wanted = if ch == STDERR { want_err } else { want_out };
            if wanted
                && out
                    .send(Message::Binary(channel::frame(ch, &data).into()))
                    .await
                    .is_err()
            {
                return;
            }
        }
    });
    loop {
        tokio::select! {
            _ = &mut reader => return Some(channel::exit_status(0, &[])),
            m = incoming.next() => match m {
                Some(Ok(Message::Binary(b))) => match channel::parse(&b, v5) {
                    Incoming::Stdin(d) if o.stdin && !d.is_empty() => {
                        if let Some(w) = wr.as_mut() {
                            if w.write_all(d).await.is_err() {
                                wr = None;
                            }
                        }
                    }
                    Incoming::Close(STDIN) if o.stdin => {
                        if let Some(mut w) = wr.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    reader.abort();
                    return None;
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Streams the container's new log records until it stops or the client leaves.
async fn attach_log(
    ctx: &Arc<Ctx>,
    id: &str,
    log: std::path::PathBuf,
    o: &Options,
    mut incoming: SplitStream<WebSocket>,
    out: mpsc::Sender<Message>,
    v5: bool,
) -> Option<Value> {
    // From the current end: attach shows what is written from now on.
    let mut offset = tokio::fs::metadata(&log)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let running = ctx
                    .runtime
                    .state(id)
                    .is_ok_and(|s| s.status == bosun_runtime::Status::Running);
                let (records, next) = read_records(&log, offset).await;
                offset = next;
                for (stream, text) in records {
                    let ch = if stream == "stderr" && !o.tty { STDERR } else { STDOUT };
                    let wanted = if ch == STDERR { o.stderr } else { o.stdout };
                    if wanted
                        && out
                            .send(Message::Binary(channel::frame(ch, text.as_bytes()).into()))
                            .await
                            .is_err()
                    {
                        return None;
                    }
                }
                if !running {
                    return Some(channel::exit_status(0, &[]));
                }
            }
            m = incoming.next() => match m {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(Message::Binary(b))) => {
                    // stdin and resizes have nowhere to go yet (see the module docs).
                    let _ = channel::parse(&b, v5);
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Whole CRI records after `offset`: (stream, text with its newline unless partial).
async fn read_records(path: &std::path::Path, offset: u64) -> (Vec<(String, String)>, u64) {
    let p = path.to_path_buf();
    let r = tokio::task::spawn_blocking(move || -> std::io::Result<(Vec<u8>, u64)> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&p)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        let end = buf
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        buf.truncate(end);
        Ok((buf, offset + end as u64))
    })
    .await;
    let Ok(Ok((buf, next))) = r else {
        return (Vec::new(), offset);
    };
    let text = String::from_utf8_lossy(&buf);
    let records = text
        .lines()
        .filter_map(bosun_runtime::logs::parse_line)
        .map(|(_, stream, partial, msg)| {
            let mut t = msg.to_string();
            if !partial {
                t.push('\n');
            }
            (stream.to_string(), t)
        })
        .collect();
    (records, next)
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
    fn options_from_kubectl_query() {
        let o = Options::from_query(&q(&[
            ("command", "sh"),
            ("command", "-c"),
            ("command", "echo hi"),
            ("container", "c"),
            ("stdin", "true"),
            ("stdout", "true"),
            ("stderr", "true"),
        ]));
        assert_eq!(o.command, vec!["sh", "-c", "echo hi"]);
        assert!(o.stdin && o.stdout && o.stderr && !o.tty);
        // A tty merges stderr into stdout.
        let o = Options::from_query(&q(&[
            ("command", "sh"),
            ("stdout", "1"),
            ("stderr", "true"),
            ("tty", "true"),
        ]));
        assert!(o.tty && o.stdout && !o.stderr && !o.stdin);
        let o = Options::from_query(&q(&[("command", "sh"), ("stdin", "yes")]));
        assert!(!o.stdin);
    }
}
