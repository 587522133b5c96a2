//! Node lifecycle, as upstream's `pkg/controller/nodelifecycle` together with its
//! taint-eviction and pod-GC siblings:
//!
//! - **Health**: a node's heartbeat is its Lease in `kube-node-lease` (renewTime) and its
//!   Ready condition (lastHeartbeatTime). When neither moved for
//!   `node_monitor_grace_period` (`node_startup_grace_period` for a node that never
//!   posted a Ready condition), its Ready, MemoryPressure, DiskPressure and PIDPressure
//!   conditions become Unknown ("Kubelet stopped posting node status.") and its pods are
//!   marked not ready. Heartbeats are timed by this process's clock when it sees them
//!   change, as upstream does, so clock skew between machines does not matter.
//! - **Taints**: Ready=False gives `node.kubernetes.io/not-ready`, Ready=Unknown gives
//!   `node.kubernetes.io/unreachable`, each with effect NoExecute and NoSchedule; the
//!   pressure conditions and `spec.unschedulable` give their NoSchedule taints.
//! - **Taint eviction**: a pod on a node with NoExecute taints it does not tolerate is
//!   deleted at once; one that tolerates them all is deleted after the smallest
//!   `tolerationSeconds` of the matching tolerations (never when none has seconds).
//! - **Pod GC**: pods bound to a node that no longer exists are force-deleted once the
//!   node has been gone for the quarantine time (confirmed with the API server), and
//!   unscheduled pods being deleted are force-deleted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;

use crate::events::Recorder;
use crate::informer::{key_of, split_key, Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::util::{self, chrono_of, time_of};
use crate::{Error, Result};

/// Upstream's well-known taint keys (`k8s.io/api/core/v1/well_known_taints.go`).
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// The namespace of node Leases (upstream `corev1.NamespaceNodeLease`).
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The conditions set to Unknown when a node stops posting status (NetworkUnavailable is
/// left alone: the control plane owns it).
const MONITORED_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Pod index: the node a pod is bound to.
const BY_NODE: &str = "nodelifecycle-node-name";

/// Timings of the node lifecycle controller; defaults are kube-controller-manager's.
#[derive(Clone, Debug)]
pub struct NodeLifecycleConfig {
    /// `--node-monitor-period`: how often every node's health is checked (5 s).
    pub node_monitor_period: Duration,
    /// `--node-monitor-grace-period`: how long a node may go without a heartbeat before
    /// it is marked Unknown (50 s since Kubernetes 1.32; 40 s before).
    pub node_monitor_grace_period: Duration,
    /// `--node-startup-grace-period`: the same for a node that never posted a Ready
    /// condition (60 s).
    pub node_startup_grace_period: Duration,
    /// How often the pod garbage collector looks for orphaned pods (podgc's
    /// `gcCheckPeriod`, 20 s).
    pub pod_gc_period: Duration,
    /// How long a node must be gone before its pods are deleted (podgc's
    /// `quarantineTime`, 40 s).
    pub pod_gc_quarantine: Duration,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        NodeLifecycleConfig {
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(50),
            node_startup_grace_period: Duration::from_secs(60),
            pod_gc_period: Duration::from_secs(20),
            pod_gc_quarantine: Duration::from_secs(40),
        }
    }
}

/// The last heartbeat seen of one node and when this process saw it change.
struct Health {
    beat: (Option<String>, Option<String>),
    probe_at: Instant,
}

pub(crate) struct NodeLifecycleController {
    client: Client,
    nodes: Informer<Node>,
    leases: Informer<Lease>,
    pods: Informer<Pod>,
    node_queue: WorkQueue<String>,
    pod_queue: WorkQueue<String>,
    health: Mutex<HashMap<String, Health>>,
    /// Nodes that pods are bound to but that do not exist, with when that was first seen.
    missing: Mutex<HashMap<String, Instant>>,
    recorder: Recorder,
    cfg: NodeLifecycleConfig,
}

impl NodeLifecycleController {
    pub(crate) fn new(
        informers: &Informers,
        recorder: Recorder,
        cfg: NodeLifecycleConfig,
    ) -> Arc<Self> {
        let pods = informers.get::<Pod>();
        pods.add_index(BY_NODE, |p: &Pod| {
            node_name(p).map(str::to_string).into_iter().collect()
        });
        let c = Arc::new(NodeLifecycleController {
            client: informers.client().clone(),
            nodes: informers.get::<Node>(),
            leases: informers.get::<Lease>(),
            pods,
            node_queue: WorkQueue::new(),
            pod_queue: WorkQueue::new(),
            health: Mutex::new(HashMap::new()),
            missing: Mutex::new(HashMap::new()),
            recorder,
            cfg,
        });
        let me = Arc::downgrade(&c);
        c.nodes.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(n) => c.node_queue.add(n.name_any()),
                Change::Updated { old, new } => {
                    c.node_queue.add(new.name_any());
                    if no_execute_taints(old) != no_execute_taints(new) {
                        c.enqueue_pods_of(&new.name_any());
                    }
                }
                Change::Deleted(n) => {
                    c.health.lock().remove(&n.name_any());
                    c.node_queue.add(n.name_any());
                }
            }
        });
        let me = Arc::downgrade(&c);
        c.leases.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let lease = match ch {
                Change::Added(l) | Change::Updated { new: l, .. } => l,
                Change::Deleted(_) => return,
            };
            if lease.metadata.namespace.as_deref() == Some(NODE_LEASE_NAMESPACE) {
                c.node_queue.add(lease.name_any());
            }
        });
        let me = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(p) => c.pod_queue.add(key_of(p.as_ref())),
                Change::Updated { old, new } => {
                    if node_name(old) != node_name(new)
                        || tolerations(old) != tolerations(new)
                        || (new.metadata.deletion_timestamp.is_some()
                            && old.metadata.deletion_timestamp.is_none())
                    {
                        c.pod_queue.add(key_of(new.as_ref()))
                    }
                }
                Change::Deleted(_) => {}
            }
        });
        c
    }

    fn enqueue_pods_of(&self, node: &str) {
        for p in self.pods.by_index(BY_NODE, node) {
            self.pod_queue.add(key_of(p.as_ref()));
        }
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.nodes.wait_synced().await;
        self.leases.wait_synced().await;
        self.pods.wait_synced().await;
        let mut tasks = tokio::task::JoinSet::new();
        let me = self.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(me.cfg.node_monitor_period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                for n in me.nodes.keys() {
                    me.node_queue.add(n);
                }
            }
        });
        let me = self.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(me.cfg.pod_gc_period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.gc_pass().await {
                    tracing::warn!(controller = "pod-garbage-collector", error = %e, "pod gc pass failed");
                }
            }
        });
        let me = self.clone();
        tasks.spawn(util::run_workers(
            "node-lifecycle-controller",
            self.node_queue.clone(),
            workers,
            move |key| {
                let me = me.clone();
                async move { me.sync_node(&key).await }
            },
        ));
        let me = self.clone();
        tasks.spawn(util::run_workers(
            "taint-eviction-controller",
            self.pod_queue.clone(),
            workers,
            move |key| {
                let me = me.clone();
                async move { me.sync_pod(&key).await }
            },
        ));
        while tasks.join_next().await.is_some() {}
    }

    /// When the node's heartbeat was last seen to change (now, the first time it is seen).
    fn probe_time(&self, node: &Node) -> Instant {
        let name = node.name_any();
        let lease_beat = self.leases.get(NODE_LEASE_NAMESPACE, &name).and_then(|l| {
            l.spec
                .as_ref()?
                .renew_time
                .as_ref()
                .map(|t| t.0.to_string())
        });
        let ready_beat = condition(node, "Ready")
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0.to_string());
        let beat = (lease_beat, ready_beat);
        let now = Instant::now();
        let mut health = self.health.lock();
        let h = health.entry(name).or_insert_with(|| Health {
            beat: beat.clone(),
            probe_at: now,
        });
        if h.beat != beat {
            h.beat = beat;
            h.probe_at = now;
        }
        h.probe_at
    }

    async fn sync_node(&self, name: &str) -> Result<()> {
        let Some(mut node) = self.nodes.get("", name) else {
            return Ok(());
        };
        let probe_at = self.probe_time(&node);
        let grace = if condition(&node, "Ready").is_none() {
            self.cfg.node_startup_grace_period
        } else {
            self.cfg.node_monitor_grace_period
        };
        let elapsed = probe_at.elapsed();
        let api: Api<Node> = Api::all(self.client.clone());
        if elapsed > grace {
            let mut updated = (*node).clone();
            let was_ready = ready_status(&node) == "True";
            if mark_unknown(&mut updated, Utc::now()) {
                match api
                    .replace_status(name, &PostParams::default(), &updated)
                    .await
                {
                    Ok(n) => {
                        tracing::info!(node = name, "node stopped posting status, marked Unknown");
                        if was_ready {
                            self.recorder.record(
                                &n,
                                "Normal",
                                "NodeNotReady",
                                format!("Node {name} status is now: NodeNotReady"),
                            );
                        }
                        node = Arc::new(n);
                    }
                    Err(e) => {
                        let e = Error::api("update status of", format!("node {name}"), e);
                        return if e.is_not_found() { Ok(()) } else { Err(e) };
                    }
                }
            }
        } else {
            // Look again just after the grace period would run out.
            self.node_queue.add_after(
                name.to_string(),
                grace - elapsed + Duration::from_millis(100),
            );
        }
        if ready_status(&node) == "Unknown" {
            self.mark_pods_not_ready(&node).await?;
        }
        self.update_taints(&api, &node).await
    }

    /// Writes the taints the node's conditions call for, keeping every other taint.
    async fn update_taints(&self, api: &Api<Node>, node: &Node) -> Result<()> {
        let current = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let wanted = desired_taints(node, &current, Utc::now());
        if same_taints(&current, &wanted) {
            return Ok(());
        }
        let name = node.name_any();
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": wanted},
        });
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api("taint", format!("node {name}"), e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Upstream's `MarkPodsNotReady`: the pods of an unreachable node are not ready, so
    /// Services stop sending them traffic.
    async fn mark_pods_not_ready(&self, node: &Node) -> Result<()> {
        let mut errs = Vec::new();
        for pod in self.pods.by_index(BY_NODE, &node.name_any()) {
            if !util::is_pod_ready(&pod) || pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let mut conditions = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            for c in conditions.iter_mut().filter(|c| c.type_ == "Ready") {
                c.status = "False".into();
                c.last_transition_time = Some(time_of(Utc::now()));
            }
            let patch = json!({
                "metadata": {"resourceVersion": pod.metadata.resource_version},
                "status": {"conditions": conditions},
            });
            let ns = pod.namespace().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            match api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => self.recorder.record(
                    pod.as_ref(),
                    "Warning",
                    "NodeNotReady",
                    "Node is not ready".into(),
                ),
                Err(e) => {
                    let e = Error::api("mark not ready", format!("pod {ns}/{}", pod.name_any()), e);
                    if !e.is_not_found() {
                        errs.push(e);
                    }
                }
            }
        }
        Error::aggregate(errs)
    }

    /// Taint eviction of one pod.
    async fn sync_pod(&self, key: &str) -> Result<()> {
        let Some(pod) = self.pods.get_key(key) else {
            return Ok(());
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Some(node) = node_name(&pod).and_then(|n| self.nodes.get("", n)) else {
            return Ok(());
        };
        let taints = no_execute_taints(&node);
        if taints.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        match eviction_time(&taints, tolerations(&pod), now) {
            Eviction::Never => Ok(()),
            Eviction::At(t) if t > now => {
                let wait = (t - now).to_std().unwrap_or_default();
                self.pod_queue
                    .add_after(key.to_string(), wait + Duration::from_millis(50));
                Ok(())
            }
            Eviction::At(_) => self.evict(&pod, key).await,
        }
    }

    async fn evict(&self, pod: &Pod, key: &str) -> Result<()> {
        let (ns, name) = split_key(key);
        self.recorder.record(
            pod,
            "Normal",
            "TaintManagerEviction",
            format!("Marking for deletion Pod {key}"),
        );
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        self.add_disruption_target(
            &api,
            pod,
            "DeletionByTaintManager",
            "Taint manager: deleting due to NoExecute taint",
        )
        .await;
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api("delete", format!("pod {key}"), e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Best effort, as upstream: the `DisruptionTarget` condition says why the pod goes.
    async fn add_disruption_target(&self, api: &Api<Pod>, pod: &Pod, reason: &str, message: &str) {
        let mut conditions = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        conditions.retain(|c| c.type_ != "DisruptionTarget");
        conditions.push(k8s_openapi::api::core::v1::PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(time_of(Utc::now())),
            ..Default::default()
        });
        let patch = json!({"status": {"conditions": conditions}});
        if let Err(e) = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            tracing::debug!(pod = %pod.name_any(), error = %e, "disruption condition not set");
        }
    }

    /// One pass of upstream's pod garbage collector over orphaned and unscheduled
    /// terminating pods.
    async fn gc_pass(&self) -> Result<()> {
        let existing: HashSet<String> = self.nodes.keys().into_iter().collect();
        let mut orphans: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        let mut unscheduled_terminating = Vec::new();
        for p in self.pods.list() {
            match node_name(&p) {
                Some(n) if !existing.contains(n) => {
                    orphans.entry(n.to_string()).or_default().push(p.clone())
                }
                None if p.metadata.deletion_timestamp.is_some() => {
                    unscheduled_terminating.push(p.clone())
                }
                _ => {}
            }
        }
        let now = Instant::now();
        let ready: Vec<String> = {
            let mut missing = self.missing.lock();
            missing.retain(|n, _| orphans.contains_key(n));
            orphans
                .keys()
                .filter(|n| {
                    let since = *missing.entry((*n).clone()).or_insert(now);
                    now.duration_since(since) >= self.cfg.pod_gc_quarantine
                })
                .cloned()
                .collect()
        };
        let api: Api<Node> = Api::all(self.client.clone());
        let mut errs = Vec::new();
        for node in ready {
            // The cache may lag: only a node the API server does not know is gone.
            match api.get_opt(&node).await {
                Ok(None) => {}
                Ok(Some(_)) => continue,
                Err(e) => {
                    errs.push(Error::api("get", format!("node {node}"), e));
                    continue;
                }
            }
            for p in orphans.remove(&node).unwrap_or_default() {
                if let Err(e) = self
                    .force_delete(&p, "DeletionByPodGC", "PodGC: node no longer exists")
                    .await
                {
                    errs.push(e);
                }
            }
        }
        for p in unscheduled_terminating {
            if let Err(e) = self
                .force_delete(
                    &p,
                    "DeletionByPodGC",
                    "PodGC: pod is terminating and unscheduled",
                )
                .await
            {
                errs.push(e);
            }
        }
        Error::aggregate(errs)
    }

    async fn force_delete(&self, pod: &Pod, reason: &str, message: &str) -> Result<()> {
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        tracing::info!(pod = %format!("{ns}/{name}"), reason, "pod gc: force deleting");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        if pod.metadata.deletion_timestamp.is_none() {
            self.add_disruption_target(&api, pod, reason, message).await;
        }
        match api
            .delete(&name, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api("delete", format!("pod {ns}/{name}"), e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

fn node_name(p: &Pod) -> Option<&str> {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn tolerations(p: &Pod) -> &[Toleration] {
    p.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

fn condition<'a>(node: &'a Node, ty: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
}

fn ready_status(node: &Node) -> &str {
    condition(node, "Ready")
        .map(|c| c.status.as_str())
        .unwrap_or("")
}

/// Sets the monitored conditions to Unknown as upstream's `tryUpdateNodeHealth` does;
/// whether anything changed.
pub(crate) fn mark_unknown(node: &mut Node, now: DateTime<Utc>) -> bool {
    let created = node.metadata.creation_timestamp.clone();
    let status = node.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let mut changed = false;
    for ty in MONITORED_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == *ty) {
            None => {
                conditions.push(NodeCondition {
                    type_: ty.to_string(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: created.clone(),
                    last_transition_time: Some(time_of(now)),
                });
                changed = true;
            }
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(time_of(now));
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed
}

fn is_managed(t: &Taint) -> bool {
    matches!(
        t.key.as_str(),
        TAINT_NOT_READY
            | TAINT_UNREACHABLE
            | TAINT_UNSCHEDULABLE
            | TAINT_MEMORY_PRESSURE
            | TAINT_DISK_PRESSURE
            | TAINT_PID_PRESSURE
            | TAINT_NETWORK_UNAVAILABLE
    ) && matches!(t.effect.as_str(), "NoSchedule" | "NoExecute")
}

/// The node's taints as its conditions call for: managed taints replaced by the wanted
/// ones (an unchanged taint keeps its `timeAdded`), every other taint kept.
pub(crate) fn desired_taints(node: &Node, current: &[Taint], now: DateTime<Utc>) -> Vec<Taint> {
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    match ready_status(node) {
        "False" => {
            wanted.push((TAINT_NOT_READY, "NoExecute"));
            wanted.push((TAINT_NOT_READY, "NoSchedule"));
        }
        "Unknown" => {
            wanted.push((TAINT_UNREACHABLE, "NoExecute"));
            wanted.push((TAINT_UNREACHABLE, "NoSchedule"));
        }
        _ => {}
    }
    for (ty, key) in [
        ("MemoryPressure", TAINT_MEMORY_PRESSURE),
        ("DiskPressure", TAINT_DISK_PRESSURE),
        ("PIDPressure", TAINT_PID_PRESSURE),
        ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE),
    ] {
        if condition(node, ty).is_some_and(|c| c.status == "True") {
            wanted.push((key, "NoSchedule"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        wanted.push((TAINT_UNSCHEDULABLE, "NoSchedule"));
    }
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !is_managed(t) || wanted.contains(&(t.key.as_str(), t.effect.as_str())))
        .cloned()
        .collect();
    for (key, effect) in wanted {
        if !out.iter().any(|t| t.key == key && t.effect == effect) {
            out.push(Taint {
                key: key.into(),
                effect: effect.into(),
                value: None,
                time_added: (effect == "NoExecute").then(|| time_of(now)),
            });
        }
    }
    out
}

fn same_taints(a: &[Taint], b: &[Taint]) -> bool {
    a.len() == b.len()
        && a.iter().all(|t| {
            b.iter()
                .any(|u| u.key == t.key && u.effect == t.effect && u.value == t.value)
        })
}

fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .filter(|t| t.effect == "NoExecute")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `tol` tolerates `taint` (upstream's `Toleration.ToleratesTaint`).
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = tol.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    let key = tol.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match tol.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// When a pod is evicted from a node with these NoExecute taints.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Eviction {
    Never,
    At(DateTime<Utc>),
}

/// Upstream's taint-eviction rule: a taint not tolerated evicts now; otherwise the
/// smallest `tolerationSeconds` among the matching tolerations counts from when the
/// latest taint was added (none with seconds: never).
pub(crate) fn eviction_time(taints: &[Taint], tols: &[Toleration], now: DateTime<Utc>) -> Eviction {
    let mut min: Option<i64> = None;
    for taint in taints {
        let matching: Vec<&Toleration> = tols.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Eviction::At(now);
        }
        for t in matching {
            if let Some(s) = t.toleration_seconds {
                min = Some(min.map_or(s, |m| m.min(s)));
            }
        }
    }
    let Some(secs) = min else {
        return Eviction::Never;
    };
    if secs <= 0 {
        return Eviction::At(now);
    }
    let since = taints
        .iter()
        .filter_map(|t| t.time_added.as_ref().map(chrono_of))
        .max()
        .unwrap_or(now);
    Eviction::At(since + chrono::Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus};

    fn node(ready: Option<&str>) -> Node {
        Node {
            metadata: Default::default(),
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                conditions: ready.map(|s| {
                    vec![NodeCondition {
                        type_: "Ready".into(),
                        status: s.into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    fn taint(key: &str, effect: &str, added: Option<DateTime<Utc>>) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: added.map(time_of),
        }
    }

    fn tol(key: &str, op: &str, effect: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()).filter(|k: &String| !k.is_empty()),
            operator: Some(op.into()),
            effect: Some(effect.into()).filter(|e: &String| !e.is_empty()),
            value: None,
            toleration_seconds: secs,
        }
    }

    #[test]
    fn unknown_conditions_as_upstream() {
        let mut n = node(Some("True"));
        let now = Utc::now();
        assert!(mark_unknown(&mut n, now));
        let ready = condition(&n, "Ready").cloned().unwrap_or_default();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        let mem = condition(&n, "MemoryPressure").cloned().unwrap_or_default();
        assert_eq!(mem.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert!(!mark_unknown(&mut n, now), "second pass changes nothing");
    }

    #[test]
    fn taints_follow_ready() {
        let now = Utc::now();
        let custom = taint("dedicated", "NoSchedule", None);
        let t = desired_taints(&node(Some("Unknown")), std::slice::from_ref(&custom), now);
        assert_eq!(t.len(), 3);
        assert!(t.iter().any(|t| t.key == TAINT_UNREACHABLE
            && t.effect == "NoExecute"
            && t.time_added.is_some()));
        assert!(t
            .iter()
            .any(|t| t.key == TAINT_UNREACHABLE && t.effect == "NoSchedule"));
        let t2 = desired_taints(&node(Some("False")), &t, now);
        assert!(t2.iter().all(|t| t.key != TAINT_UNREACHABLE));
        assert!(t2
            .iter()
            .any(|t| t.key == TAINT_NOT_READY && t.effect == "NoExecute"));
        let t3 = desired_taints(&node(Some("True")), &t2, now);
        assert_eq!(t3, vec![custom]);
        // An existing taint keeps its timeAdded.
        let old = now - chrono::Duration::seconds(100);
        let kept = desired_taints(
            &node(Some("Unknown")),
            &[taint(TAINT_UNREACHABLE, "NoExecute", Some(old))],
            now,
        );
        assert!(kept.iter().any(|t| t.time_added == Some(time_of(old))));
    }

    #[test]
    fn toleration_matching() {
        let t = taint(TAINT_UNREACHABLE, "NoExecute", None);
        assert!(tolerates(
            &tol(TAINT_UNREACHABLE, "Exists", "NoExecute", None),
            &t
        ));
        assert!(tolerates(&tol("", "Exists", "", None), &t));
        assert!(!tolerates(
            &tol(TAINT_UNREACHABLE, "Exists", "NoSchedule", None),
            &t
        ));
        assert!(!tolerates(&tol(TAINT_NOT_READY, "Exists", "", None), &t));
        assert!(tolerates(&tol(TAINT_UNREACHABLE, "Equal", "", None), &t));
    }

    #[test]
    fn eviction_times() {
        let now = Utc::now();
        let added = now - chrono::Duration::seconds(10);
        let taints = [taint(TAINT_UNREACHABLE, "NoExecute", Some(added))];
        assert_eq!(eviction_time(&taints, &[], now), Eviction::At(now));
        assert_eq!(
            eviction_time(
                &taints,
                &[tol(TAINT_UNREACHABLE, "Exists", "NoExecute", None)],
                now
            ),
            Eviction::Never
        );
        let tols = [
            tol(TAINT_UNREACHABLE, "Exists", "NoExecute", Some(300)),
            tol("", "Exists", "", Some(30)),
        ];
        assert_eq!(
            eviction_time(&taints, &tols, now),
            Eviction::At(time_of(added).0.as_second().pipe_at(30))
        );
        assert_eq!(
            eviction_time(
                &taints,
                &[tol(TAINT_UNREACHABLE, "Exists", "", Some(0))],
                now
            ),
            Eviction::At(now)
        );
    }

    trait PipeAt {
        fn pipe_at(self, secs: i64) -> DateTime<Utc>;
    }
    impl PipeAt for i64 {
        fn pipe_at(self, secs: i64) -> DateTime<Utc> {
            DateTime::from_timestamp(self + secs, 0).unwrap_or_default()
        }
    }
}
