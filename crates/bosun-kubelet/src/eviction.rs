//! Node-pressure eviction (upstream `pkg/kubelet/eviction`): after every stats sample, the
//! hard thresholds (`--eviction-hard`) are checked against the summary's signals —
//! `memory.available` (node memory capacity − working set) and `nodefs.available` (the data
//! dir's filesystem) — and while one is met:
//!
//! - the node reports MemoryPressure / DiskPressure (kept for the pressure transition period
//!   after the signal recovers, upstream's `--eviction-pressure-transition-period`, 5 min),
//!   which the node lifecycle controller turns into the `node.kubernetes.io/*-pressure`
//!   taints; a `EvictionThresholdMet` event on the Node;
//! - one pod per round is evicted, ranked as upstream's `rankMemoryPressure` /
//!   `rankDiskPressureFunc`: pods using more than they request first (so BestEffort, which
//!   requests nothing, before Burstable within its requests), then lower priority, then the
//!   largest usage above request. Static and system-critical pods are left alone.
//!
//! Evicting sets the pod's status (phase Failed, reason `Evicted`, upstream's message, the
//! `DisruptionTarget` condition) and records an `Evicted` event; the pod worker, seeing that
//! status, kills the containers at once (grace 0, hard thresholds) and keeps the pod Failed.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::stats::{PodStats, Summary};
use crate::Ctx;

/// Upstream's `Reason`.
pub const REASON: &str = "Evicted";
/// Priority at or above which a pod is critical (upstream `SystemCriticalPriority`).
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;
/// How long to wait for an evicted pod's containers to stop (upstream `podCleanupTimeout`).
const POD_CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
/// `--eviction-pressure-transition-period` (5 min).
pub const PRESSURE_TRANSITION_PERIOD: Duration = Duration::from_secs(300);

/// The resource a threshold protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Memory,
    EphemeralStorage,
}

impl Resource {
    fn name(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::EphemeralStorage => "ephemeral-storage",
        }
    }
}

/// What the eviction manager last concluded (read by the node status).
#[derive(Debug, Default)]
pub(crate) struct State {
    /// When each threshold was last seen met.
    last_met: HashMap<Resource, Instant>,
    /// The pressure (memory, disk) last written to the node status.
    reported: Option<Vec<bool>>,
}

/// Whether the node is under pressure for `r` now (threshold met within the transition
/// period), or `None` before the first observation.
pub(crate) fn under_pressure(ctx: &Ctx, r: Resource) -> Option<bool> {
    ctx.stats.latest()?;
    let st = ctx.eviction.lock().ok()?;
    Some(
        st.last_met
            .get(&r)
            .is_some_and(|t| t.elapsed() < ctx.cfg.eviction_pressure_transition_period),
    )
}

/// The machine figures the node status is computed from, with the pressure conditions
/// replaced by the eviction manager's verdict once it has one (upstream's conditions come
/// from the eviction manager, not from a separate reading).
pub(crate) fn with_pressure(ctx: &Ctx, m: &crate::node::Machine) -> crate::node::Machine {
    let mut m = m.clone();
    match under_pressure(ctx, Resource::Memory) {
        Some(true) => m.memory_available_bytes = 0,
        Some(false) => m.memory_available_bytes = m.memory_bytes.max(1),
        None => {}
    }
    match under_pressure(ctx, Resource::EphemeralStorage) {
        Some(true) => m.disk_available_bytes = 0,
        Some(false) => m.disk_available_bytes = m.disk_bytes,
        None => {}
    }
    m
}

/// One threshold that is met: (resource, threshold quantity, available quantity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Met {
    pub resource: Resource,
    pub threshold: u64,
    pub available: u64,
}

/// The hard thresholds met by a summary, memory first (upstream reclaims memory first).
pub fn thresholds_met(s: &Summary, e: &crate::node::Eviction) -> Vec<Met> {
    let mut out = Vec::new();
    if let Some(avail) = s.node.memory.available_bytes {
        if avail < e.memory_available_bytes {
            out.push(Met {
                resource: Resource::Memory,
                threshold: e.memory_available_bytes,
                available: avail,
            });
        }
    }
    let fs = &s.node.fs;
    let want = fs.capacity_bytes * e.nodefs_available_percent / 100;
    if fs.capacity_bytes > 0 && fs.available_bytes < want {
        out.push(Met {
            resource: Resource::EphemeralStorage,
            threshold: want,
            available: fs.available_bytes,
        });
    }
    out
}

/// A pod the eviction manager may pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub namespace: String,
    pub name: String,
    pub priority: i32,
    /// The pod's request of the starved resource (sum over its containers).
    pub request: u64,
    /// Its usage of that resource (working set, or disk bytes).
    pub usage: u64,
}

/// Upstream's ranking: usage above request first, then lower priority, then the largest
/// usage above request.
pub fn rank(mut pods: Vec<Candidate>) -> Vec<Candidate> {
    pods.sort_by(|a, b| {
        let exceeds = |c: &Candidate| c.usage > c.request;
        let over = |c: &Candidate| c.usage as i128 - c.request as i128;
        exceeds(b)
            .cmp(&exceeds(a))
            .then(a.priority.cmp(&b.priority))
            .then(over(b).cmp(&over(a)))
    });
    pods
}

/// Binary-SI quantity text as the API prints it (`100Mi`, `51200Ki`, `1536`).
pub fn quantity(bytes: u64) -> String {
    for (suffix, unit) in [
        ("Ti", 1u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= unit && bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

fn request_of(c: &k8s_openapi::api::core::v1::Container, r: Resource) -> u64 {
    c.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|m| m.get(r.name()))
        .and_then(|q| bosun_api::quantity::Quantity::parse(&q.0).ok())
        .map(|q| q.value().max(0) as u64)
        .unwrap_or(0)
}

/// Upstream's `evictionMessage`.
pub fn message(met: &Met, pod: &Pod, stats: Option<&PodStats>) -> String {
    let r = met.resource.name();
    let mut msg = format!(
        "The node was low on resource: {r}. Threshold quantity: {}, available: {}. ",
        quantity(met.threshold),
        quantity(met.available)
    );
    if met.resource == Resource::Memory {
        let spec = pod.spec.clone().unwrap_or_default();
        for cs in stats.map(|s| s.containers.as_slice()).unwrap_or_default() {
            let Some(c) = spec.containers.iter().find(|c| c.name == cs.name) else {
                continue;
            };
            let req = request_of(c, met.resource);
            let usage = cs.memory.working_set_bytes;
            if usage > req {
                msg.push_str(&format!(
                    "Container {} was using {}, request is {}, has larger consumption of {r}. ",
                    c.name,
                    quantity(usage),
                    quantity(req)
                ));
            }
        }
    }
    msg
}

fn is_critical(pod: &Pod) -> bool {
    crate::static_pods::is_mirror(pod)
        || pod
            .spec
            .as_ref()
            .and_then(|s| s.priority)
            .is_some_and(|p| p >= SYSTEM_CRITICAL_PRIORITY)
}

/// Whether the pod was evicted (the worker then keeps it stopped and Failed).
pub(crate) fn is_evicted(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Failed") && s.reason.as_deref() == Some(REASON)
    })
}

/// Bytes under `path` (not following symlinks); what a pod writes to the node's disk.
fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// A pod's disk usage: its directory (logs, volumes) and its containers' writable layers.
fn pod_disk_usage(ctx: &Ctx, uid: &str, container_ids: &[String]) -> u64 {
    let mut n = dir_size(&ctx.pod_dir(uid));
    for id in container_ids {
        n += dir_size(&ctx.cfg.data_dir.join("containers").join(id).join("upper"));
    }
    n
}

/// Checks one summary and evicts at most one pod.
async fn synchronize(ctx: &Arc<Ctx>, s: &Summary) {
    let met = thresholds_met(s, &ctx.cfg.eviction);
    let changed = match ctx.eviction.lock() {
        Ok(mut st) => {
            for m in &met {
                st.last_met.insert(m.resource, Instant::now());
            }
            let period = ctx.cfg.eviction_pressure_transition_period;
            let now: Vec<bool> = [Resource::Memory, Resource::EphemeralStorage]
                .iter()
                .map(|r| st.last_met.get(r).is_some_and(|t| t.elapsed() < period))
                .collect();
            let changed = st.reported.as_ref() != Some(&now);
            st.reported = Some(now);
            changed
        }
        Err(_) => false,
    };
    if changed {
        // The pressure conditions changed: tell the API now, not at the next status tick.
        if let Err(e) = crate::node::update_status(ctx).await {
            tracing::warn!(error = %e, "node status update after a pressure change");
        }
    }
    let Some(met) = met.into_iter().next() else {
        return;
    };
    tracing::warn!(
        resource = met.resource.name(),
        threshold = met.threshold,
        available = met.available,
        "eviction threshold met"
    );
    node_event(
        ctx,
        "EvictionThresholdMet",
        format!("Attempting to reclaim {}", met.resource.name()),
    );
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={}", ctx.cfg.node_name));
    let pods = match api.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            tracing::warn!(error = %e, "listing pods to evict");
            return;
        }
    };
    let stats_of = |p: &Pod| {
        s.pods.iter().find(|ps| {
            Some(&ps.pod_ref.namespace) == p.metadata.namespace.as_ref()
                && Some(&ps.pod_ref.name) == p.metadata.name.as_ref()
        })
    };
    let mut candidates = Vec::new();
    let mut by_key: HashMap<(String, String), Pod> = HashMap::new();
    for p in pods {
        let phase = p.status.as_ref().and_then(|s| s.phase.clone());
        if matches!(phase.as_deref(), Some("Succeeded" | "Failed"))
            || p.metadata.deletion_timestamp.is_some()
            || is_critical(&p)
        {
            continue;
        }
        let Some(ps) = stats_of(&p) else { continue };
        let spec = p.spec.clone().unwrap_or_default();
        let request: u64 = spec
            .containers
            .iter()
            .map(|c| request_of(c, met.resource))
            .sum();
        let usage = match met.resource {
            Resource::Memory => ps.memory.working_set_bytes,
            Resource::EphemeralStorage => {
                let ids: Vec<String> = ctx
                    .pods
                    .lock()
                    .ok()
                    .and_then(|m| {
                        m.get(&(ps.pod_ref.namespace.clone(), ps.pod_ref.name.clone()))
                            .map(|e| e.containers.values().map(|(id, _)| id.clone()).collect())
                    })
                    .unwrap_or_default();
                let (c, uid) = (ctx.clone(), ps.pod_ref.uid.clone());
                tokio::task::spawn_blocking(move || pod_disk_usage(&c, &uid, &ids))
                    .await
                    .unwrap_or(0)
            }
        };
        let key = (ps.pod_ref.namespace.clone(), ps.pod_ref.name.clone());
        candidates.push(Candidate {
            namespace: key.0.clone(),
            name: key.1.clone(),
            priority: spec.priority.unwrap_or(0),
            request,
            usage,
        });
        by_key.insert(key, p);
    }
    let Some(victim) = rank(candidates).into_iter().next() else {
        tracing::warn!("eviction threshold met, but no pod can be evicted");
        return;
    };
    let Some(pod) = by_key.get(&(victim.namespace.clone(), victim.name.clone())) else {
        return;
    };
    let msg = message(&met, pod, stats_of(pod));
    tracing::warn!(pod = %victim.name, namespace = %victim.namespace, %msg, "evicting pod");
    let ns_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &victim.namespace);
    let status = json!({"status": {
        "phase": "Failed",
        "reason": REASON,
        "message": msg,
        "conditions": [{
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "TerminationByKubelet",
            "message": msg,
            "lastTransitionTime": crate::node::now(),
        }],
    }});
    match ns_api
        .patch_status(
            &victim.name,
            &PatchParams::default(),
            &Patch::Strategic(status),
        )
        .await
    {
        Ok(_) => crate::events::record(ctx, pod, None, crate::events::WARNING, REASON, msg),
        Err(e) => {
            tracing::warn!(pod = %victim.name, error = %e, "evicting pod");
            return;
        }
    }
    wait_for_cleanup(ctx, &victim.namespace, &victim.name).await;
}

/// Waits (up to upstream's 30 s `podCleanupTimeout`) until the evicted pod's containers
/// stopped, so that the next round sees what the eviction reclaimed and does not evict a
/// second pod for the same shortage.
async fn wait_for_cleanup(ctx: &Arc<Ctx>, namespace: &str, name: &str) {
    let deadline = Instant::now() + POD_CLEANUP_TIMEOUT;
    let key = (namespace.to_string(), name.to_string());
    while Instant::now() < deadline {
        let ids: Vec<String> = ctx
            .pods
            .lock()
            .ok()
            .and_then(|m| {
                m.get(&key)
                    .map(|e| e.containers.values().map(|(id, _)| id.clone()).collect())
            })
            .unwrap_or_default();
        let running = ids.iter().any(|id| {
            ctx.runtime.state(id).is_ok_and(|s| {
                matches!(
                    s.status,
                    bosun_runtime::Status::Running | bosun_runtime::Status::Created
                )
            })
        });
        if !running {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(pod = %name, %namespace, "the evicted pod's containers did not stop in time");
}

/// A warning event about this Node (as the kubelet's `nodeRef` events).
fn node_event(ctx: &Arc<Ctx>, reason: &'static str, message: String) {
    node_event_of_type(ctx, "Warning", reason, message)
}

/// An event of type `ty` (Normal or Warning) about this Node.
pub(crate) fn node_event_of_type(
    ctx: &Arc<Ctx>,
    ty: &'static str,
    reason: &'static str,
    message: String,
) {
    crate::events::node_event(ctx, ty, reason, message)
}

/// Evaluates every new stats summary until the agent stops.
pub(crate) async fn run(ctx: Arc<Ctx>) {
    loop {
        ctx.stats.updated.notified().await;
        if let Some(s) = ctx.stats.latest() {
            synchronize(&ctx, &s).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{ContainerStats, FsStats, MemoryStats, NodeStats};

    fn cand(name: &str, priority: i32, request: u64, usage: u64) -> Candidate {
        Candidate {
            namespace: "default".into(),
            name: name.into(),
            priority,
            request,
            usage,
        }
    }

    #[test]
    fn ranking_is_upstreams() {
        let ranked = rank(vec![
            cand("burstable-within", 0, 200, 100),
            cand("burstable-over", 0, 50, 120),
            cand("besteffort-small", 0, 0, 10),
            cand("besteffort-big", 0, 0, 90),
            cand("important-besteffort", 1000, 0, 500),
        ]);
        let names: Vec<&str> = ranked.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "besteffort-big",
                "burstable-over",
                "besteffort-small",
                "important-besteffort",
                "burstable-within"
            ]
        );
    }

    #[test]
    fn thresholds_and_messages() {
        let mut s = Summary {
            node: NodeStats {
                memory: MemoryStats {
                    available_bytes: Some(50 << 20),
                    ..Default::default()
                },
                fs: FsStats {
                    capacity_bytes: 1000,
                    available_bytes: 50,
                    ..Default::default()
                },
                ..Default::default()
            },
            pods: vec![],
        };
        let e = crate::node::Eviction::default();
        let met = thresholds_met(&s, &e);
        assert_eq!(met.len(), 2);
        assert_eq!(met[0].resource, Resource::Memory);
        assert_eq!(met[1].resource, Resource::EphemeralStorage);
        assert_eq!(met[1].threshold, 100);
        s.node.memory.available_bytes = Some(200 << 20);
        s.node.fs.available_bytes = 500;
        assert!(thresholds_met(&s, &e).is_empty());

        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "hog"},
            "spec": {"containers": [
                {"name": "a", "resources": {"requests": {"memory": "10Mi"}}},
                {"name": "b"}
            ]}
        }))
        .unwrap();
        let ps = PodStats {
            containers: vec![
                ContainerStats {
                    name: "a".into(),
                    memory: MemoryStats {
                        working_set_bytes: 5 << 20,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                ContainerStats {
                    name: "b".into(),
                    memory: MemoryStats {
                        working_set_bytes: 30 << 20,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let m = Met {
            resource: Resource::Memory,
            threshold: 100 << 20,
            available: 50 << 20,
        };
        assert_eq!(
            message(&m, &pod, Some(&ps)),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. \
             Container b was using 30Mi, request is 0, has larger consumption of memory. "
        );
        assert_eq!(quantity(1536), "1536");
        assert_eq!(quantity(2048), "2Ki");
        assert_eq!(quantity(100 << 20), "100Mi");
    }
}
