//! The kubelet's error type: each variant says which operation failed and on what.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the kubelet can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bosun agent needs root (it mounts filesystems, creates namespaces and cgroups); run it as root")]
    NotRoot,
    #[error("runtime: {0}")]
    Runtime(#[from] bosun_runtime::Error),
    #[error("api {op}: {source}")]
    Api {
        op: String,
        #[source]
        source: kube::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub(crate) fn api(op: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let op = op.into();
        move |source| Error::Api { op, source }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<std::path::PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
