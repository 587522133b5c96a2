//! The crate's error, and kubectl's way of printing it.

/// What went wrong in a `bosun ctl` command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a Status (printed as `Error from server (Reason): message`).
    #[error("{}", .0.message)]
    Api(Box<kube::core::Status>),
    /// The request did not reach the server or its answer could not be read.
    #[error("{0}")]
    Kube(#[source] kube::Error),
    /// The command line or the input is wrong (printed as `error: ...`).
    #[error("{0}")]
    Usage(String),
    /// Already printed where it happened (one of several objects failed).
    #[error("")]
    Reported,
    /// A remote command ended with this exit code (already reported).
    #[error("exit code {0}")]
    Exit(i32),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => Error::Api(s),
            other => Error::Kube(other),
        }
    }
}

impl Error {
    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// The HTTP code of a server error (0 otherwise).
    pub(crate) fn code(&self) -> u16 {
        match self {
            Error::Api(s) => s.code,
            _ => 0,
        }
    }

    /// As kubectl prints it (`cmdutil.CheckErr`): server errors with their reason, others with
    /// `error: `.
    pub fn kubectl_message(&self) -> String {
        match self {
            Error::Api(s) => {
                if s.reason.is_empty() {
                    format!("Error from server: {}", s.message)
                } else {
                    format!("Error from server ({}): {}", s.reason, s.message)
                }
            }
            other => format!("error: {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_like_kubectl() {
        let s = kube::core::Status {
            code: 404,
            reason: "NotFound".into(),
            message: "pods \"x\" not found".into(),
            ..Default::default()
        };
        assert_eq!(
            Error::Api(Box::new(s)).kubectl_message(),
            "Error from server (NotFound): pods \"x\" not found"
        );
        assert_eq!(
            Error::usage("the server doesn't have a resource type \"foo\"").kubectl_message(),
            "error: the server doesn't have a resource type \"foo\""
        );
    }
}
