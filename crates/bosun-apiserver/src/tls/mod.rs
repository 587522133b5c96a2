//! TLS for the API server: the on-disk PKI, the HTTPS listener, and request authentication.
//!
//! `ensure_pki` creates or loads `DATA_DIR/tls/` (CA, serving and admin certificates), the node
//! join token and the static token file; `serve` accepts TLS connections (HTTP/2 and HTTP/1.1
//! with upgrades) and authenticates every request before it reaches the router.

mod authentication;
mod pki;
mod serving;

use std::path::PathBuf;

pub use authentication::{
    parse_token_file, user_from_certificate, Authenticator, UserInfo, ALL_AUTHENTICATED,
    ALL_UNAUTHENTICATED, ANONYMOUS_USER, PUBLIC_INFO_PATHS,
};
pub use pki::{
    ensure_pki, write_kubeconfig, Pki, ADMIN_USER, KUBERNETES_SERVICE_IP, MASTERS_GROUP,
    NODES_GROUP, NODE_BOOTSTRAP_USER, NODE_TOKEN_FILE, TLS_DIR, TOKEN_FILE,
};
pub(crate) use serving::dispatch;
pub use serving::{
    anonymous_client_config, client_config, serve, server_config, HANDSHAKE_TIMEOUT,
};

/// Errors from setting up the PKI, loading tokens, or building TLS configurations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path}: record {record}: {reason}")]
    TokenFile {
        path: PathBuf,
        record: usize,
        reason: String,
    },
    #[error("generating {what}: {source}")]
    Generate { what: String, source: rcgen::Error },
    #[error("subject alternative name {name:?} is neither an IP address nor a DNS name")]
    InvalidSan { name: String },
    #[error("ca key {path} is missing but its certificate exists; restore it or remove the whole tls directory")]
    MissingCaKey { path: PathBuf },
    #[error("ca key {key} does not match certificate {cert}")]
    CaKeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("building tls config: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("building client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("serializing kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: serde_yaml::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
