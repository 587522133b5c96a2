//! Events about pods, as the kubelet records them (`kubectl describe pod` shows them):
//! Pulled, Created, Started, Killing, BackOff, Unhealthy, Failed.
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::Ctx;

pub(crate) const NORMAL: &str = "Normal";
pub(crate) const WARNING: &str = "Warning";

/// Records an event about `pod` (and its container `container`, if any) without waiting;
/// a failure to record is logged, never fatal, as upstream's recorder does.
pub(crate) fn record(
    ctx: &Arc<Ctx>,
    pod: &Pod,
    container: Option<&str>,
    ty: &'static str,
    reason: &'static str,
    message: String,
) {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let now = Utc::now();
    let ts = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut involved = json!({
        "apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": name, "uid": uid,
        "resourceVersion": pod.metadata.resource_version,
    });
    if let Some(c) = container {
        let is_init = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|ic| ic.iter().any(|i| i.name == c));
        involved["fieldPath"] = json!(if is_init {
            format!("spec.initContainers{{{c}}}")
        } else {
            format!("spec.containers{{{c}}}")
        });
    }
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {
            "name": format!("{name}.{:x}", now.timestamp_nanos_opt().unwrap_or_default()),
            "namespace": ns,
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": ty,
        "source": {"component": "kubelet", "host": ctx.cfg.node_name},
        "reportingComponent": "kubelet",
        "reportingInstance": ctx.cfg.node_name,
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
    });
    let Ok(ev) = serde_json::from_value::<Event>(ev) else {
        return;
    };
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ns);
    tracing::debug!(pod = %name, reason, %message, "event");
    tokio::spawn(async move {
        if let Err(e) = api.create(&PostParams::default(), &ev).await {
            tracing::debug!(error = %e, "recording an event failed");
        }
    });
}
