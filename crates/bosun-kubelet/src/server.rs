//! The kubelet HTTPS API (upstream port 10250): `/healthz`,
//! `/containerLogs/{namespace}/{pod}/{container}` (follow, previous, tailLines, sinceSeconds,
//! sinceTime, timestamps, limitBytes), and the streaming endpoints `/exec`, `/attach` and
//! `/portForward` (WebSocket and SPDY upgrades; see [`crate::streams`]). Callers must present
//! a client certificate signed by the cluster CA (upstream's `--client-ca-file`), which the
//! API server does when it proxies `pods/log`, `exec`, `attach` and `portforward`. The
//! serving certificate is self-signed, made at start: upstream's API server does not verify
//! kubelet certificates unless given `--kubelet-certificate-authority`.
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::logs::{self, LogOptions};
use crate::Ctx;

pub(crate) async fn bind(cfg: &crate::KubeletConfig) -> Result<TcpListener> {
    let addr = std::net::SocketAddr::new(cfg.bind_address, cfg.port);
    TcpListener::bind(addr)
        .await
        .map_err(Error::io("listen on", addr.to_string()))
}

pub(crate) fn tls_config(ctx: &Ctx) -> Result<Arc<rustls::ServerConfig>> {
    let tls = |e: &dyn std::fmt::Display| Error::Tls(e.to_string());
    let names = vec![
        ctx.cfg.node_name.clone(),
        ctx.node_ip.to_string(),
        "localhost".to_string(),
    ];
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| tls(&e))?;
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).map_err(|e| tls(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ctx.cfg.client_ca_pem.as_bytes()) {
        roots.add(c.map_err(|e| tls(&e))?).map_err(|e| tls(&e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| tls(&e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .map_err(|e| tls(&e))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

pub(crate) async fn serve(ctx: Arc<Ctx>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/containerLogs/{ns}/{pod}/{container}", get(container_logs))
        .route("/stats/summary", get(crate::stats::summary_handler))
        .route(
            "/exec/{ns}/{pod}/{container}",
            get_or_post(crate::streams::exec::exec),
        )
        .route(
            "/attach/{ns}/{pod}/{container}",
            get_or_post(crate::streams::exec::attach),
        )
        .route(
            "/portForward/{ns}/{pod}",
            get_or_post(crate::streams::portforward::port_forward),
        )
        .with_state(ctx);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet API accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(io) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move {
                    use tower::ServiceExt;
                    app.oneshot(req).await
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(io), svc)
                .await;
        });
    }
}

/// WebSocket upgrades are GETs; SPDY clients POST.
fn get_or_post<H, T>(h: H) -> MethodRouter<Arc<Ctx>>
where
    H: axum::handler::Handler<T, Arc<Ctx>> + Clone,
    T: 'static,
{
    axum::routing::get(h.clone()).post(h)
}

fn bad(code: StatusCode, msg: String) -> Response {
    (code, msg).into_response()
}

async fn container_logs(
    State(ctx): State<Arc<Ctx>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let flag = |k: &str| q.get(k).is_some_and(|v| v == "true" || v == "1");
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let mut opts = LogOptions {
        follow: flag("follow"),
        previous: flag("previous"),
        timestamps: flag("timestamps"),
        tail_lines: num("tailLines").map(|n| n.max(0) as usize),
        limit_bytes: num("limitBytes").map(|n| n.max(0) as usize),
        since_time: q.get("sinceTime").and_then(|t| t.parse().ok()),
    };
    if let Some(s) = num("sinceSeconds") {
        opts.since_time = Some(chrono::Utc::now() - chrono::Duration::seconds(s));
    }
    let entry = ctx
        .pods
        .lock()
        .ok()
        .and_then(|p| p.get(&(ns.clone(), pod.clone())).cloned());
    let Some(entry) = entry else {
        return bad(
            StatusCode::NOT_FOUND,
            format!("pod \"{pod}\" in namespace \"{ns}\" is not running on this node"),
        );
    };
    let Some((id, n)) = entry.containers.get(&container).cloned() else {
        return bad(
            StatusCode::BAD_REQUEST,
            format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
            ),
        );
    };
    let dir = ctx.pod_dir(&entry.uid);
    let path = if opts.previous {
        let p = (n > 0)
            .then(|| logs::log_path(&dir, &container, n - 1))
            .filter(|p| p.exists());
        match p {
            Some(p) => p,
            None => {
                return bad(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "previous terminated container \"{container}\" in pod \"{pod}\" not found"
                    ),
                )
            }
        }
    } else {
        logs::log_path(&dir, &container, n)
    };
    let follow = opts.follow && !opts.previous;
    let rt = ctx.runtime.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
    tokio::spawn(async move {
        // The open log and how far it was read. A rotation renames the file and the shim
        // starts a new one at the path: once the old one is read to its end, follow
        // continues in the new one from its start.
        let mut cur: Option<(std::fs::File, u64)> = None;
        let mut offset = 0u64;
        let mut pending = String::new();
        let mut first = true;
        let mut budget = opts.limit_bytes;
        loop {
            let running = rt.state(&id).is_ok_and(|s| {
                matches!(
                    s.status,
                    bosun_runtime::Status::Running | bosun_runtime::Status::Created
                )
            });
            let p = path.clone();
            let open = cur.take();
            let chunk = tokio::task::spawn_blocking(move || read_log_chunk(&p, open, offset)).await;
            let (text, next, open) = match chunk {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                Err(_) => return,
            };
            offset = next;
            cur = open;
            let mut lines = logs::render(&text, &opts, &mut pending);
            if first {
                lines = logs::tail(lines, opts.tail_lines);
                first = false;
            }
            for l in lines {
                let mut b = l.into_bytes();
                if let Some(left) = budget.as_mut() {
                    if *left == 0 {
                        return;
                    }
                    b.truncate(*left);
                    *left -= b.len();
                }
                if tx.send(Ok(bytes::Bytes::from(b))).await.is_err() {
                    return;
                }
            }
            if !follow || (!running && text.is_empty()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Response::builder()
        .header("content-type", "text/plain")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| {
            bad(
                StatusCode::INTERNAL_SERVER_ERROR,
                "building the response".into(),
            )
        })
}

/// Reads the whole records after `offset` of the open log `cur` (opened from `path` when
/// `None`); when there is nothing new and `path` is now another file (rotated), switches to
/// it from its start. Returns the text, the new offset and the open file.
#[allow(clippy::type_complexity)]
fn read_log_chunk(
    path: &std::path::Path,
    cur: Option<(std::fs::File, u64)>,
    offset: u64,
) -> std::io::Result<(String, u64, Option<(std::fs::File, u64)>)> {
    use std::os::unix::fs::MetadataExt;
    let open = |p: &std::path::Path| -> std::io::Result<Option<(std::fs::File, u64)>> {
        match std::fs::File::open(p) {
            Ok(f) => {
                let ino = f.metadata()?.ino();
                Ok(Some((f, ino)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    let read = |f: &mut std::fs::File, offset: u64| -> std::io::Result<(String, u64)> {
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        // Only whole records: a record being written stays for the next read.
        let end = buf
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        buf.truncate(end);
        Ok((
            String::from_utf8_lossy(&buf).into_owned(),
            offset + end as u64,
        ))
    };
    let (mut cur, offset) = match cur {
        Some(c) => (Some(c), offset),
        None => (open(path)?, 0),
    };
    let Some((f, ino)) = cur.as_mut() else {
        return Ok((String::new(), 0, None));
    };
    let (text, next) = read(f, offset)?;
    if !text.is_empty() {
        return Ok((text, next, cur));
    }
    let rotated = std::fs::metadata(path).is_ok_and(|m| m.ino() != *ino);
    if !rotated {
        return Ok((text, next, cur));
    }
    match open(path)? {
        Some((mut f, ino)) => {
            let (text, next) = read(&mut f, 0)?;
            Ok((text, next, Some((f, ino))))
        }
        None => Ok((String::new(), next, cur)),
    }
}
