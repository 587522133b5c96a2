//! A lean HTTP/2-over-TLS client with the admin client certificate, as kubectl and client-go
//! speak to the API server: hyper's h2 client directly, so the benchmark decides how many
//! connections there are and which requests share one, and spends little CPU of its own
//! (the client shares the machine with the server under test).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading kubeconfig {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig { path: PathBuf, reason: String },
    #[error("TLS client configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr} did not negotiate h2 (ALPN gave {alpn:?})")]
    NotH2 {
        addr: SocketAddr,
        alpn: Option<String>,
    },
    #[error("HTTP/2 with {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: hyper::Error,
    },
    #[error("building the request for {path}: {source}")]
    Request { path: String, source: http::Error },
    #[error("{method} {path}: {source}")]
    Send {
        method: Method,
        path: String,
        source: hyper::Error,
    },
    #[error("{method} {path}: reading the body: {source}")]
    Body {
        method: Method,
        path: String,
        source: hyper::Error,
    },
}

type Result<T> = std::result::Result<T, ClientError>;

/// Where the server is and how to talk to it, from the admin kubeconfig.
pub struct Endpoint {
    addr: SocketAddr,
    /// `https://HOST:PORT`, the scheme and authority of every request.
    base: String,
    server_name: ServerName<'static>,
    tls: TlsConnector,
}

impl Endpoint {
    /// Reads the first cluster and user of `path` (CA, client certificate and key as data).
    pub fn from_kubeconfig(path: &Path) -> Result<Endpoint> {
        let text = std::fs::read_to_string(path).map_err(|source| ClientError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |reason: String| ClientError::Kubeconfig {
            path: path.to_path_buf(),
            reason,
        };
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| bad(format!("not YAML: {e}")))?;
        let field = |v: &serde_yaml::Value, list: &str, inner: &str, key: &str| {
            v.get(list)
                .and_then(|l| l.get(0))
                .and_then(|e| e.get(inner))
                .and_then(|c| c.get(key))
                .and_then(|s| s.as_str())
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("no {list}[0].{inner}.{key}")))
        };
        let server = field(&doc, "clusters", "cluster", "server")?;
        let b64 = |what: &str, s: String| {
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| bad(format!("{what} is not base64: {e}")))
        };
        let ca = b64(
            "certificate-authority-data",
            field(&doc, "clusters", "cluster", "certificate-authority-data")?,
        )?;
        let cert = b64(
            "client-certificate-data",
            field(&doc, "users", "user", "client-certificate-data")?,
        )?;
        let key = b64(
            "client-key-data",
            field(&doc, "users", "user", "client-key-data")?,
        )?;

        let authority = server
            .strip_prefix("https://")
            .ok_or_else(|| bad(format!("server {server} is not https://")))?
            .trim_end_matches('/');
        let addr: SocketAddr = authority
            .parse()
            .map_err(|e| bad(format!("server {server} is not https://IP:PORT: {e}")))?;

        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&ca) {
            let c = c.map_err(|e| bad(format!("certificate-authority-data: {e}")))?;
            roots.add(c)?;
        }
        let chain = CertificateDer::pem_slice_iter(&cert)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("client-certificate-data: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| bad(format!("client-key-data: {e}")))?;
        // Explicit provider: the workspace builds rustls with ring only, and other crates
        // could add a second one, which makes the implicit default ambiguous.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Endpoint {
            addr,
            base: format!("https://{addr}"),
            server_name: ServerName::IpAddress(addr.ip().into()),
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// A new TCP + TLS + HTTP/2 connection; its driver runs on the runtime until every
    /// handle to it is dropped.
    pub async fn connect(&self) -> Result<Conn> {
        let addr = self.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        // Small requests must not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| ClientError::Handshake { addr, source })?;
        let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
        if alpn.as_deref() != Some(b"h2") {
            return Err(ClientError::NotH2 {
                addr,
                alpn: alpn.map(|p| String::from_utf8_lossy(&p).into_owned()),
            });
        }
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            // Go's http2 transport windows, which client-go keeps (4 MiB per stream, 1 GiB
            // per connection); on h2's 64 KiB default big LISTs would crawl.
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(1 << 30)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|source| ClientError::Http { addr, source })?;
        tokio::spawn(async move {
            // The connection ends when the server or the benchmark closes it.
            let _ = conn.await;
        });
        Ok(Conn {
            send,
            base: self.base.clone(),
        })
    }
}

/// One HTTP/2 connection; clones share it (one stream per request).
#[derive(Clone)]
pub struct Conn {
    send: SendRequest<Full<Bytes>>,
    base: String,
}

impl Conn {
    /// Sends a request and returns the response head with its body still streaming.
    pub async fn open(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>> {
        let mut b = Request::builder()
            .method(method.clone())
            .uri(format!("{}{}", self.base, path))
            .header(http::header::ACCEPT, accept)
            .header(http::header::USER_AGENT, "bosun-bench");
        if body.is_some() {
            b = b.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = b
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|source| ClientError::Request {
                path: path.to_string(),
                source,
            })?;
        let mut send = self.send.clone();
        send.ready().await.map_err(|source| ClientError::Send {
            method: method.clone(),
            path: path.to_string(),
            source,
        })?;
        send.send_request(req)
            .await
            .map_err(|source| ClientError::Send {
                method,
                path: path.to_string(),
                source,
            })
    }

    /// Sends a request and reads the whole response.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let resp = self.open(method.clone(), path, accept, body).await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|source| ClientError::Body {
                method,
                path: path.to_string(),
                source,
            })?
            .to_bytes();
        Ok((status, bytes))
    }
}
