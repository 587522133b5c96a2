//! The crate's error type: each variant says which operation failed and on what.
use std::path::PathBuf;

/// Errors of the node network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("enter network namespace {}: {source}", path.display())]
    Netns { path: PathBuf, source: nix::Error },
    #[error("netlink {op}: {source}")]
    Netlink {
        op: String,
        source: rtnetlink::Error,
    },
    #[error("nft: {0}")]
    Nft(String),
    #[error("invalid CIDR {0:?}")]
    InvalidCidr(String),
    #[error("{cidr}: no free {what} left")]
    Exhausted { cidr: String, what: &'static str },
    #[error("kubernetes API {op}: {source}")]
    Kube { op: String, source: kube::Error },
    #[error("dns: {0}")]
    Dns(String),
    #[error("worker thread for {0} panicked or vanished")]
    Thread(&'static str),
}

/// `Result` with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub(crate) fn netlink(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
        let op = op.into();
        move |source| Error::Netlink { op, source }
    }

    #[allow(dead_code)]
    pub(crate) fn kube(op: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let op = op.into();
        move |source| Error::Kube { op, source }
    }
}

/// The errno a netlink error carries, if any.
pub(crate) fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}
