//! API errors as meta/v1 `Status` bodies, with upstream's reasons, codes and messages
//! (`k8s.io/apimachinery/pkg/api/errors`).

use serde_json::{json, Value};

use crate::field::{aggregate, FieldError};

/// The `reason` of a failure Status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusReason {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    AlreadyExists,
    Conflict,
    Gone,
    Expired,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    Invalid,
    TooManyRequests,
    InternalError,
    ServiceUnavailable,
    Timeout,
}

impl StatusReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusReason::BadRequest => "BadRequest",
            StatusReason::Unauthorized => "Unauthorized",
            StatusReason::Forbidden => "Forbidden",
            StatusReason::NotFound => "NotFound",
            StatusReason::MethodNotAllowed => "MethodNotAllowed",
            StatusReason::NotAcceptable => "NotAcceptable",
            StatusReason::AlreadyExists => "AlreadyExists",
            StatusReason::Conflict => "Conflict",
            StatusReason::Gone => "Gone",
            StatusReason::Expired => "Expired",
            StatusReason::RequestEntityTooLarge => "RequestEntityTooLarge",
            StatusReason::UnsupportedMediaType => "UnsupportedMediaType",
            StatusReason::Invalid => "Invalid",
            StatusReason::TooManyRequests => "TooManyRequests",
            StatusReason::InternalError => "InternalError",
            StatusReason::ServiceUnavailable => "ServiceUnavailable",
            StatusReason::Timeout => "Timeout",
        }
    }
    /// The HTTP code upstream uses for this reason.
    pub fn code(self) -> u16 {
        match self {
            StatusReason::BadRequest => 400,
            StatusReason::Unauthorized => 401,
            StatusReason::Forbidden => 403,
            StatusReason::NotFound => 404,
            StatusReason::MethodNotAllowed => 405,
            StatusReason::NotAcceptable => 406,
            StatusReason::AlreadyExists | StatusReason::Conflict => 409,
            StatusReason::Gone | StatusReason::Expired => 410,
            StatusReason::RequestEntityTooLarge => 413,
            StatusReason::UnsupportedMediaType => 415,
            StatusReason::Invalid => 422,
            StatusReason::TooManyRequests => 429,
            StatusReason::InternalError => 500,
            StatusReason::ServiceUnavailable => 503,
            StatusReason::Timeout => 504,
        }
    }
}

/// Which object an error concerns: `group` is "" for the core group, `kind` may be a
/// resource name (upstream puts the resource in `details.kind` for NotFound and
/// AlreadyExists).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusDetails {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub causes: Vec<Value>,
    pub retry_after_seconds: Option<i64>,
}

/// A failed request: everything needed to write a meta/v1 Status body.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct StatusError {
    pub reason: StatusReason,
    pub code: u16,
    pub message: String,
    pub details: Option<Box<StatusDetails>>,
}

/// `pods` for the core group, `deployments.apps` otherwise (upstream's
/// `GroupResource.String()`).
pub fn qualified(group: &str, name: &str) -> String {
    if group.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{group}")
    }
}

impl StatusError {
    pub fn new(reason: StatusReason, message: impl Into<String>) -> Self {
        StatusError {
            reason,
            code: reason.code(),
            message: message.into(),
            details: None,
        }
    }
    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.details = Some(Box::new(StatusDetails {
            name: name.into(),
            group: group.into(),
            kind: kind.into(),
            ..Default::default()
        }));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusReason::BadRequest, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusReason::Unauthorized, "Unauthorized")
    }
    pub fn forbidden(group: &str, resource: &str, name: &str, detail: impl AsRef<str>) -> Self {
        let q = qualified(group, resource);
        let msg = if name.is_empty() {
            format!("{q} is forbidden: {}", detail.as_ref())
        } else {
            format!("{q} {name:?} is forbidden: {}", detail.as_ref())
        };
        Self::new(StatusReason::Forbidden, msg).with_details(group, resource, name)
    }
    /// `pods "foo" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            StatusReason::NotFound,
            format!("{} {name:?} not found", qualified(group, resource)),
        )
        .with_details(group, resource, name)
    }
    /// A path the server does not serve at all.
    pub fn path_not_found() -> Self {
        Self::new(
            StatusReason::NotFound,
            "the server could not find the requested resource",
        )
    }
    /// `pods "foo" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            StatusReason::AlreadyExists,
            format!("{} {name:?} already exists", qualified(group, resource)),
        )
        .with_details(group, resource, name)
    }
    /// `Operation cannot be fulfilled on pods "foo": <why>`.
    pub fn conflict(group: &str, resource: &str, name: &str, why: impl AsRef<str>) -> Self {
        Self::new(
            StatusReason::Conflict,
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {}",
                qualified(group, resource),
                why.as_ref()
            ),
        )
        .with_details(group, resource, name)
    }
    /// The optimistic-concurrency failure of an update with a stale resourceVersion.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    /// `Pod "foo" is invalid: spec.containers[0].image: Required value` with one cause per
    /// field error.
    pub fn invalid(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Self {
        let qk = qualified(group, kind);
        let message = if errs.is_empty() {
            format!("{qk} {name:?} is invalid")
        } else {
            format!("{qk} {name:?} is invalid: {}", aggregate(errs))
        };
        let causes = errs
            .iter()
            .map(|e| json!({"reason": e.error_type.cause_reason(), "message": e.body(), "field": e.field.as_str()}))
            .collect();
        StatusError {
            reason: StatusReason::Invalid,
            code: 422,
            message,
            details: Some(Box::new(StatusDetails {
                name: name.into(),
                group: group.into(),
                kind: kind.into(),
                causes,
                retry_after_seconds: None,
            })),
        }
    }
    /// A patch that cannot be applied (upstream answers 422 with reason Invalid).
    pub fn invalid_patch(message: impl AsRef<str>) -> Self {
        Self::new(
            StatusReason::Invalid,
            format!(
                "the server rejected our request due to an error in our request: {}",
                message.as_ref()
            ),
        )
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusReason::MethodNotAllowed,
            "the server does not allow this method on the requested resource",
        )
    }
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(StatusReason::Expired, message)
    }
    /// A resourceVersion older than the compacted history.
    pub fn too_old_resource_version(requested: i64, current: i64) -> Self {
        Self::new(
            StatusReason::Expired,
            format!("too old resource version: {requested} ({current})"),
        )
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusReason::RequestEntityTooLarge, message)
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusReason::UnsupportedMediaType, message)
    }
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(StatusReason::NotAcceptable, message)
    }
    pub fn internal(message: impl AsRef<str>) -> Self {
        Self::new(
            StatusReason::InternalError,
            format!("Internal error occurred: {}", message.as_ref()),
        )
    }
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusReason::ServiceUnavailable, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusReason::Timeout, message)
    }
    pub fn too_many_requests(message: impl Into<String>, retry_after: i64) -> Self {
        let mut e = Self::new(StatusReason::TooManyRequests, message);
        e.details = Some(Box::new(StatusDetails {
            retry_after_seconds: Some(retry_after),
            ..Default::default()
        }));
        e
    }

    /// The meta/v1 Status object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code,
        });
        if let Some(d) = &self.details {
            let mut details = serde_json::Map::new();
            if !d.name.is_empty() {
                details.insert("name".into(), d.name.clone().into());
            }
            if !d.group.is_empty() {
                details.insert("group".into(), d.group.clone().into());
            }
            if !d.kind.is_empty() {
                details.insert("kind".into(), d.kind.clone().into());
            }
            if !d.causes.is_empty() {
                details.insert("causes".into(), Value::Array(d.causes.clone()));
            }
            if let Some(r) = d.retry_after_seconds {
                details.insert("retryAfterSeconds".into(), r.into());
            }
            status["details"] = Value::Object(details);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Path;

    #[test]
    fn status_bodies_match_upstream() {
        let e = StatusError::not_found("", "pods", "foo");
        let s = e.to_status();
        assert_eq!(s["message"], "pods \"foo\" not found");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["kind"], "pods");
        let e = StatusError::already_exists("apps", "deployments", "web");
        assert_eq!(e.message, "deployments.apps \"web\" already exists");
        let errs = vec![FieldError::required(
            &Path::root("spec")
                .child("containers")
                .index(0)
                .child("image"),
            "",
        )];
        let s = StatusError::invalid("", "Pod", "p", &errs).to_status();
        assert_eq!(
            s["message"],
            "Pod \"p\" is invalid: spec.containers[0].image: Required value"
        );
        assert_eq!(
            s["details"]["causes"][0]["field"],
            "spec.containers[0].image"
        );
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
        assert_eq!(s["code"], 422);
    }
}
