//! The HTTPS listener: TLS with optional client certificates, HTTP/2 and HTTP/1.1 (with
//! upgrades) on one port, and authentication of every request before the router sees it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use super::authentication::{user_from_certificate, Authenticator, UserInfo};
use super::pki::Pki;
use super::{Error, Result};

/// How long a client may take to finish the TLS handshake before its connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// ALPN protocols, HTTP/2 first: client-go and kubectl negotiate `h2` and multiplex on it.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// Go's net/http default, which kube-apiserver keeps.
const HTTP2_MAX_STREAMS: u32 = 250;
/// After shutdown is asked for, open connections (watches never end by themselves) get this
/// long to finish before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A failing accept (e.g. out of file descriptors) is retried after this pause rather than
/// spinning.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// ring is named explicitly: with another provider compiled in by some other crate, rustls's
/// process-default lookup would panic.
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server TLS configuration: the serving certificate, ALPN `h2` and `http/1.1`, and client
/// certificates optional but verified against the CA when presented.
pub fn server_config(pki: &Pki) -> Result<Arc<ServerConfig>> {
    let provider = crypto_provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(ca_roots(pki)?, provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(serving_chain(pki)?, serving_key(pki)?)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client configuration that trusts the CA and presents the admin certificate, for in-process
/// components and tests.
pub fn client_config(pki: &Pki) -> Result<ClientConfig> {
    let path = pki.dir.join("admin.crt");
    let certs = CertificateDer::pem_slice_iter(pki.admin_cert_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Parse {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let key =
        PrivateKeyDer::from_pem_slice(pki.admin_key_pem.as_bytes()).map_err(|e| Error::Parse {
            path: pki.dir.join("admin.key"),
            reason: e.to_string(),
        })?;
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(ca_roots(pki)?)
        .with_client_auth_cert(certs, key)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client configuration that trusts the CA and presents no certificate (for bearer tokens or
/// anonymous requests).
pub fn anonymous_client_config(pki: &Pki) -> Result<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(ca_roots(pki)?)
        .with_no_client_auth();
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn ca_roots(pki: &Pki) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_cert_der()?)?;
    Ok(Arc::new(roots))
}

fn serving_chain(pki: &Pki) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pki.serving_cert_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Parse {
            path: pki.dir.join("serving.crt"),
            reason: e.to_string(),
        })
}

fn serving_key(pki: &Pki) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pki.serving_key_pem.as_bytes()).map_err(|e| Error::Parse {
        path: pki.dir.join("serving.key"),
        reason: e.to_string(),
    })
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then gives open connections
/// a short grace period. Every request is authenticated first: a verified client certificate,
/// else a bearer token, else anonymous on the public info paths only, else 401 with a Status
/// body. The handler finds the [`UserInfo`] and `ConnectInfo<SocketAddr>` in the request's
/// extensions. Failed handshakes and broken clients only end their own connection.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    authn: Arc<Authenticator>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_STREAMS);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    // Connections still open when the grace period ends are closed through this.
    let (force_close, force_closed) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);

    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let app = app.clone();
        let authn = authn.clone();
        let mut force_closed = force_closed.clone();
        let span = tracing::debug_span!("connection", %peer);
        tokio::spawn(
            async move {
                let Some((io, cert_user)) = handshake(&acceptor, tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| {
                    handle(req, app.clone(), authn.clone(), cert_user.clone(), peer)
                });
                let conn = builder.serve_connection_with_upgrades(io, service);
                tokio::select! {
                    res = watcher.watch(conn.into_owned()) => {
                        if let Err(e) = res {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    }
                    // Dropping the connection closes the socket: clients see it end and
                    // reconnect to whichever server serves next.
                    _ = force_closed.wait_for(|closed| *closed) => {}
                }
            }
            .instrument(span),
        );
    }

    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::debug!("closing connections still open after the shutdown grace period");
        }
    }
    let _ = force_close.send(true);
}

type TlsIo = TokioIo<tokio_rustls::server::TlsStream<TcpStream>>;

/// Completes the TLS handshake within [`HANDSHAKE_TIMEOUT`], returning the stream and the user
/// of the client certificate (already verified against the CA by rustls).
async fn handshake(acceptor: &TlsAcceptor, tcp: TcpStream) -> Option<(TlsIo, Option<UserInfo>)> {
    // Watch events are small writes that must not wait for Nagle's algorithm.
    let _ = tcp.set_nodelay(true);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "tls handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!("tls handshake timed out");
            return None;
        }
    };
    let (_, session) = stream.get_ref();
    let cert_user = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| user_from_certificate(leaf));
    Some((TokioIo::new(stream), cert_user))
}

async fn handle(
    req: Request<Incoming>,
    app: Router,
    authn: Arc<Authenticator>,
    cert_user: Option<UserInfo>,
    peer: SocketAddr,
) -> std::result::Result<Response<Body>, Infallible> {
    let (mut parts, body) = req.into_parts();
    match authn.authenticate(
        cert_user.as_ref(),
        &parts.method,
        parts.uri.path(),
        &mut parts.headers,
    ) {
        Ok(user) => {
            let req = Request::from_parts(parts, Body::new(body));
            Ok(dispatch(app, req, user, peer).await)
        }
        Err(reason) => {
            tracing::debug!(?reason, path = parts.uri.path(), "unauthorized request");
            Ok(unauthorized())
        }
    }
}

/// Hands an authenticated request to the router with what handlers find in its extensions:
/// the [`UserInfo`] and `ConnectInfo<SocketAddr>`. The network listener and the in-process
/// loopback transport ([`crate::loopback`]) both come through here.
pub(crate) async fn dispatch(
    app: Router,
    mut req: Request<Body>,
    user: UserInfo,
    peer: SocketAddr,
) -> Response<Body> {
    req.extensions_mut().insert(user);
    req.extensions_mut().insert(ConnectInfo(peer));
    match app.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

fn unauthorized() -> Response<Body> {
    let status = bosun_api::errors::StatusError::unauthorized().to_status();
    let mut resp = Response::new(Body::from(status.to_string()));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Errors that concern one client only and say nothing about the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
