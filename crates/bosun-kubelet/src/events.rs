//! Events about pods, as the kubelet records them (`kubectl describe pod` shows them):
//! Pulled, Created, Started, Killing, BackOff, Unhealthy, Failed.
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};

use crate::Ctx;

pub(crate) const NORMAL: &str = bosun_events::NORMAL;
pub(crate) const WARNING: &str = bosun_events::WARNING;

/// Records an event about `pod` (and its container `container`, if any) without waiting,
/// through the agent's event sink (client-go's correlator: a probe that keeps failing is one
/// event with a count, a burst is rate-limited); a failure to record is logged, never fatal.
pub(crate) fn record(
    ctx: &Arc<Ctx>,
    pod: &Pod,
    container: Option<&str>,
    ty: &'static str,
    reason: &'static str,
    message: String,
) {
    let field_path = container.map(|c| {
        let is_init = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|ic| ic.iter().any(|i| i.name == c));
        if is_init {
            format!("spec.initContainers{{{c}}}")
        } else {
            format!("spec.containers{{{c}}}")
        }
    });
    let involved = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some(
            pod.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        ),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path,
    };
    tracing::debug!(pod = ?involved.name, reason, %message, "event");
    emit(ctx, involved, ty, reason, message);
}

/// An event of type `ty` about this Node (the kubelet's `nodeRef` events: the Node's uid is
/// its name, as upstream's kubelet sets it).
pub(crate) fn node_event(ctx: &Arc<Ctx>, ty: &'static str, reason: &'static str, message: String) {
    let node = &ctx.cfg.node_name;
    let involved = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some(node.clone()),
        uid: Some(node.clone()),
        ..Default::default()
    };
    emit(ctx, involved, ty, reason, message);
}

/// Queues an event from the kubelet of this node about `involved`.
fn emit(ctx: &Ctx, involved: ObjectReference, ty: &str, reason: &str, message: String) {
    ctx.events.record(bosun_events::new_event(
        involved,
        ty,
        reason,
        message,
        "kubelet",
        Some(&ctx.cfg.node_name),
    ));
}
