//! The crate's error type: which API call or which object a controller failed on.

use bosun_api::selector::SelectorError;

/// A failed controller operation. Reconcile errors are retried with back-off by the work
/// queue; they are logged once there, never where they are returned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{verb} {what}: {source}")]
    Api {
        verb: &'static str,
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("invalid selector on {what}: {source}")]
    Selector {
        what: String,
        #[source]
        source: SelectorError,
    },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
    #[error("serializing {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("discovery: {0}")]
    Discovery(#[source] kube::Error),
    #[error("lost the leader lease {lease}")]
    LeaderLost { lease: String },
    #[error("{count} of the operations failed, first: {first}")]
    Several { count: usize, first: Box<Error> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn api(verb: &'static str, what: impl Into<String>, source: kube::Error) -> Error {
        Error::Api {
            verb,
            what: what.into(),
            source,
        }
    }

    /// The HTTP status code of a failed API call, if the server answered with a Status.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api {
                source: kube::Error::Api(s),
                ..
            } => Some(s.code),
            Error::Several { first, .. } => first.code(),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::Api { source: kube::Error::Api(s), .. } if s.code == 409 && s.reason == "AlreadyExists")
    }

    /// A create refused because its namespace is being deleted: not worth retrying.
    pub fn is_namespace_terminating(&self) -> bool {
        match self {
            Error::Api {
                source: kube::Error::Api(s),
                ..
            } => s.code == 403 && s.message.contains("because it is being terminated"),
            _ => false,
        }
    }

    /// Collapses many errors into one, or none.
    pub(crate) fn aggregate(mut errs: Vec<Error>) -> Result<()> {
        match errs.len() {
            0 => Ok(()),
            1 => Err(errs.remove(0)),
            count => Err(Error::Several {
                count,
                first: Box::new(errs.remove(0)),
            }),
        }
    }
}
