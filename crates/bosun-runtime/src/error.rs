//! The crate-wide error type: each variant says which operation failed and on what.
use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the runtime can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: nix::Error,
    },
    #[error("invalid json in {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid image {what}: {msg}")]
    InvalidImage { what: String, msg: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("image not found: {0}")]
    ImageNotFound(String),
    #[error("image {reference} is in use by container {container}")]
    ImageInUse {
        reference: String,
        container: String,
    },
    #[error("invalid reference {reference:?}: {msg}")]
    InvalidReference { reference: String, msg: String },
    #[error("unsafe path in layer {layer}: {path}")]
    UnsafePath { layer: String, path: String },
    #[error("container not found: {0}")]
    ContainerNotFound(String),
    #[error("container {0} already exists")]
    ContainerExists(String),
    #[error("container {id} is {state}, cannot {op}")]
    BadState {
        id: String,
        state: String,
        op: &'static str,
    },
    #[error("invalid container id {0:?}: want 1-64 characters of [a-zA-Z0-9_.-]")]
    InvalidId(String),
    #[error("shim for container {id}: {msg}")]
    Shim { id: String, msg: String },
    #[error("cgroup {path}: {msg}")]
    Cgroup { path: PathBuf, msg: String },
    /// A registry pull failed; its kind says why (`Error::pull_error_kind`).
    #[error(transparent)]
    Pull(crate::image::registry::PullError),
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub(crate) fn sys(op: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
        let op = op.into();
        move |source| Error::Sys { op, source }
    }
}
