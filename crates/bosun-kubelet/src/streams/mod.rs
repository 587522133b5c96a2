//! The kubelet's streaming endpoints, reached through the API server's `pods/exec`,
//! `pods/attach` and `pods/portforward` (which splice the upgraded connection through):
//!
//! - `/exec/{ns}/{pod}/{container}?command=..&stdin=&stdout=&stderr=&tty=` and
//!   `/attach/{ns}/{pod}/{container}?...`: WebSocket, `v5.channel.k8s.io` (or v4), the
//!   channel protocol of [`channel`] ([`exec`]);
//! - `/portForward/{ns}/{pod}?ports=..`: SPDY/3.1 ([`spdy`]) tunnelled in WebSocket binary
//!   messages (subprotocol `SPDY/3.1+portforward.k8s.io`, kubectl 1.31+), or over a plain
//!   `SPDY/3.1` upgrade (older clients), or upstream's WebSocket channel protocol
//!   (`v4.channel.k8s.io`, kube-rs's `Api::portforward`) ([`portforward`]).
//!
//! Errors before the upgrade are Status bodies with their HTTP code, which the API server
//! passes on and kubectl prints.
pub(crate) mod channel;
pub(crate) mod exec;
pub(crate) mod portforward;
pub(crate) mod spdy;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::{Ctx, PodEntry};

/// A Failure Status with `code` and upstream's reason for it.
pub(crate) fn status_response(code: StatusCode, message: String) -> Response {
    let reason = match code {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        _ => "InternalError",
    };
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The pod's entry, or a 404 saying it does not run here.
pub(crate) fn pod_entry(ctx: &Ctx, ns: &str, pod: &str) -> Result<PodEntry, Box<Response>> {
    ctx.pods
        .lock()
        .ok()
        .and_then(|p| p.get(&(ns.to_string(), pod.to_string())).cloned())
        .ok_or_else(|| {
            Box::new(status_response(
                StatusCode::NOT_FOUND,
                format!("pod \"{pod}\" in namespace \"{ns}\" is not running on this node"),
            ))
        })
}

/// The id of the pod's running container `container`, or the Status saying why not.
pub(crate) fn running_container(
    ctx: &Ctx,
    ns: &str,
    pod: &str,
    container: &str,
) -> Result<(PodEntry, String, u32), Box<Response>> {
    let entry = pod_entry(ctx, ns, pod)?;
    let Some((id, n)) = entry.containers.get(container).cloned() else {
        return Err(Box::new(status_response(
            StatusCode::BAD_REQUEST,
            format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
            ),
        )));
    };
    let running = ctx
        .runtime
        .state(&id)
        .is_ok_and(|s| s.status == bosun_runtime::Status::Running);
    if !running {
        return Err(Box::new(status_response(
            StatusCode::BAD_REQUEST,
            format!("container \"{container}\" in pod \"{pod}\" is not running"),
        )));
    }
    Ok((entry, id, n))
}

/// A boolean query parameter as upstream reads it (Go's `strconv.ParseBool`).
pub(crate) fn flag(q: &[(String, String)], name: &str) -> bool {
    q.iter()
        .any(|(k, v)| k == name && matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
}
