//! The DaemonSet controller, as upstream's `pkg/controller/daemon`: one pod per eligible
//! node. A node is eligible when the template's `nodeSelector` and required node affinity
//! match it and its NoSchedule/NoExecute taints are tolerated (the template's tolerations
//! plus the ones upstream adds to every daemon pod); a pod keeps running on a node that
//! gained an untolerated NoSchedule taint, not a NoExecute one.
//!
//! Pods are created as upstream does since 1.12: unbound, with a required node affinity
//! term `metadata.name In [<node>]` replacing the template's, and the scheduler binds
//! them (so resources, ports and preemption are the scheduler's business).
//!
//! Templates are recorded as ControllerRevisions ([`crate::history`]); pods carry the
//! revision's `controller-revision-hash`. RollingUpdate replaces old pods within
//! `maxUnavailable` (delete, then create) or `maxSurge` (create, then delete the old pod
//! once the new one is available); OnDelete only uses the new template for pods it has to
//! create anyway. Status: desired/current/misscheduled/ready/available/unavailable/updated
//! counts and observedGeneration.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_api::selector::LabelSelector;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, PodTemplateSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::claim::Claim;
use crate::deployment::scaled_value;
use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::history::{self, CONTROLLER_REVISION_HASH};
use crate::informer::{key_of, Change, Informer, Informers};
use crate::podcontrol::PodControl;
use crate::queue::WorkQueue;
use crate::replicaset::{add_owner_indexes, BY_CONTROLLER, ORPHANS};
use crate::util::{self, chrono_of, controller_ref, is_pod_available, is_pod_ready};
use crate::{Error, Result};

const COMPONENT: &str = "daemonset-controller";
/// The deprecated label upstream still puts on daemon pods.
const POD_TEMPLATE_GENERATION: &str = "pod-template-generation";
/// Upstream's `BurstReplicas` for daemon pods.
const BURST: usize = 250;
/// Upstream's `failedPodsBackoff`: 1 s doubling up to 15 min per DaemonSet and node, so a
/// pod that keeps failing is not recreated in a hot loop.
const FAILED_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const FAILED_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// client-go's `flowcontrol.Backoff`: per id, the current delay and when it was set.
#[derive(Default)]
pub struct Backoff {
    entries: parking_lot::Mutex<HashMap<String, (Duration, Instant)>>,
}

impl Backoff {
    /// How long `id` must still wait, if it is backing off.
    pub fn remaining(&self, id: &str, now: Instant) -> Option<Duration> {
        let e = self.entries.lock();
        let (d, at) = e.get(id)?;
        (*at + *d)
            .checked_duration_since(now)
            .filter(|r| !r.is_zero())
    }

    /// Starts or doubles the back-off of `id` (reset once it has been quiet for twice
    /// the maximum, as client-go).
    pub fn next(&self, id: &str, now: Instant) {
        let mut e = self.entries.lock();
        let d = match e.get(id) {
            Some((d, at)) if now.duration_since(*at) <= 2 * FAILED_BACKOFF_MAX => {
                (*d * 2).min(FAILED_BACKOFF_MAX)
            }
            _ => FAILED_BACKOFF_INITIAL,
        };
        e.insert(id.to_string(), (d, now));
    }
}

/// The tolerations upstream's `AddOrUpdateDaemonPodTolerations` adds to every daemon pod
/// (network-unavailable only with hostNetwork).
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    let mut v = vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        v.push(t("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    v
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    let key = t.key.as_deref().unwrap_or("");
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        _ => {
            key == taint.key
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref();
    exprs
        .iter()
        .all(|r| util::node_requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && util::node_requirement_matches(r, name))
}

/// Whether the pod spec's nodeSelector, required node affinity and nodeName admit `node`.
fn node_matches(spec: &PodSpec, node: &Node) -> bool {
    let name = node.metadata.name.as_deref().unwrap_or("");
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        Some(ns) => ns.node_selector_terms.iter().any(|t| term_matches(t, node)),
        None => true,
    }
}

/// Upstream's `NodeShouldRunDaemonPod`: (should run a new pod, may keep a running one).
pub fn node_should_run(template: &PodTemplateSpec, node: &Node) -> (bool, bool) {
    let spec = template.spec.clone().unwrap_or_default();
    if !node_matches(&spec, node) {
        return (false, false);
    }
    let mut tols = spec.tolerations.clone().unwrap_or_default();
    tols.extend(daemon_tolerations(spec.host_network == Some(true)));
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let mut run = true;
    for taint in &taints {
        if !matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute") {
            continue;
        }
        if tols.iter().any(|t| tolerates(t, taint)) {
            continue;
        }
        if taint.effect == "NoExecute" {
            return (false, false);
        }
        run = false;
    }
    (run, true)
}

/// The node a daemon pod is bound to or targeted at (its `metadata.name` affinity term).
pub fn node_of(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

/// The template with its required node affinity pinned to `node` (upstream's
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`) and the daemon tolerations added.
pub fn pod_spec_for_node(template: &PodTemplateSpec, node: &str) -> PodTemplateSpec {
    let mut t = template.clone();
    let spec = t.spec.get_or_insert_with(Default::default);
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
        }],
    });
    let host_network = spec.host_network == Some(true);
    let tols = spec.tolerations.get_or_insert_with(Vec::new);
    for d in daemon_tolerations(host_network) {
        if !tols
            .iter()
            .any(|t| t.key == d.key && t.effect == d.effect && t.operator == d.operator)
        {
            tols.push(d);
        }
    }
    t
}

fn pod_hash(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(CONTROLLER_REVISION_HASH)
        .map(String::as_str)
}

fn ds_min_ready(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// (maxSurge, maxUnavailable) resolved against the desired count, as upstream's
/// `updatedDesiredNodeCounts`: both rounded up, and never both zero.
pub fn surge_and_unavailable(ds: &DaemonSet, desired: i32) -> (i32, i32) {
    let ru = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref());
    let surge = ru
        .and_then(|r| r.max_surge.as_ref())
        .map(|v| scaled_value(v, desired, true).unwrap_or(0))
        .unwrap_or(0);
    let unavailable = ru
        .and_then(|r| r.max_unavailable.as_ref())
        .map(|v| scaled_value(v, desired, true).unwrap_or(1))
        .unwrap_or_else(|| scaled_value(&IntOrString::Int(1), desired, true).unwrap_or(1));
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn is_rolling(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

/// A node with its daemon pod at the current revision and its old one, if any.
type NodePods = (String, Option<Arc<Pod>>, Option<Arc<Pod>>);

/// What one sync wants done: pods to create per node, pods to delete.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub create_on: Vec<String>,
    pub delete: Vec<String>,
    /// Failed pods per node: deleted (and so replaced) behind a per-node back-off.
    pub failed: Vec<(String, Vec<String>)>,
}

/// Upstream's `podsShouldBeOnNode` plus `rollingUpdate`: given the nodes and the daemon
/// pods per node (oldest first), which nodes need a pod and which pods must go.
pub fn plan(
    ds: &DaemonSet,
    template: &PodTemplateSpec,
    nodes: &[Arc<Node>],
    by_node: &HashMap<String, Vec<Arc<Pod>>>,
    hash: &str,
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let mrs = ds_min_ready(ds);
    let known: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
    // Pods on nodes that are gone.
    for (node, pods) in by_node {
        if !known.contains(node) {
            plan.delete.extend(pods.iter().map(|p| p.name_any()));
        }
    }
    let desired = nodes
        .iter()
        .filter(|n| node_should_run(template, n).0)
        .count() as i32;
    let (max_surge, max_unavailable) = surge_and_unavailable(ds, desired);
    let rolling = is_rolling(ds);
    let surge = rolling && max_surge > 0;
    // Per node: (new pod, old pod) for the rolling update.
    let mut pairs: Vec<NodePods> = Vec::new();
    for node in nodes {
        let name = node.name_any();
        let (run, keep) = node_should_run(template, node);
        let pods = by_node.get(&name).cloned().unwrap_or_default();
        if !keep {
            plan.delete.extend(pods.iter().map(|p| p.name_any()));
            continue;
        }
        // Failed pods are deleted; the next sync creates a replacement.
        let (failed, live): (Vec<_>, Vec<_>) = pods
            .into_iter()
            .partition(|p| util::pod_phase(p) == "Failed");
        let doomed: Vec<String> = failed
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| p.name_any())
            .collect();
        if !doomed.is_empty() {
            plan.failed.push((name.clone(), doomed));
        }
        let live: Vec<Arc<Pod>> = live
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && !util::is_pod_terminal(p))
            .collect();
        if live.is_empty() {
            if run && failed.is_empty() {
                plan.create_on.push(name);
            }
            continue;
        }
        let (new, old): (Vec<_>, Vec<_>) =
            live.into_iter().partition(|p| pod_hash(p) == Some(hash));
        // One pod of each kind at most; the oldest stays.
        plan.delete.extend(new.iter().skip(1).map(|p| p.name_any()));
        plan.delete.extend(old.iter().skip(1).map(|p| p.name_any()));
        let (new, old) = (new.first().cloned(), old.first().cloned());
        if new.is_some() && old.is_some() && !surge {
            // Only a surge keeps two; otherwise the old one goes.
            if let Some(o) = &old {
                plan.delete.push(o.name_any());
            }
            continue;
        }
        if run {
            pairs.push((name, new, old));
        }
    }
    if !rolling {
        return plan;
    }
    let available = |p: &Pod| is_pod_available(p, mrs, now);
    if !surge {
        // Nodes that still need a pod count as unavailable.
        let mut unavailable = plan.create_on.len() as i32;
        let mut candidates = Vec::new();
        for (_, new, old) in &pairs {
            match (new, old) {
                (None, None) => unavailable += 1,
                (Some(n), None) => {
                    if !available(n) {
                        unavailable += 1
                    }
                }
                (_, Some(o)) => {
                    if !available(o) {
                        // Replacing an unavailable pod costs nothing.
                        plan.delete.push(o.name_any());
                        unavailable += 1;
                    } else {
                        candidates.push(o.name_any());
                    }
                }
            }
        }
        let budget = (max_unavailable - unavailable).max(0) as usize;
        candidates.sort();
        plan.delete.extend(candidates.into_iter().take(budget));
    } else {
        let mut surging = 0;
        let mut allowed = Vec::new();
        let mut candidates = Vec::new();
        for (node, new, old) in &pairs {
            match (new, old) {
                (_, None) => {}
                (None, Some(o)) => {
                    if !available(o) {
                        allowed.push(node.clone());
                    } else {
                        candidates.push(node.clone());
                    }
                }
                (Some(n), Some(o)) => {
                    if available(n) {
                        plan.delete.push(o.name_any());
                    } else {
                        surging += 1;
                    }
                }
            }
        }
        let budget = (max_surge - surging).max(0) as usize;
        allowed.extend(candidates.into_iter().take(budget));
        plan.create_on.extend(allowed);
    }
    plan.delete.sort();
    plan.delete.dedup();
    plan
}

/// The status the pods and nodes say, as upstream's `updateDaemonSetStatus`.
pub fn compute_status(
    ds: &DaemonSet,
    template: &PodTemplateSpec,
    nodes: &[Arc<Node>],
    by_node: &HashMap<String, Vec<Arc<Pod>>>,
    hash: &str,
    now: DateTime<Utc>,
) -> DaemonSetStatus {
    let mrs = ds_min_ready(ds);
    let mut st = DaemonSetStatus {
        collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
        observed_generation: ds.metadata.generation,
        ..Default::default()
    };
    for node in nodes {
        let (run, _) = node_should_run(template, node);
        let pods: Vec<&Arc<Pod>> = by_node
            .get(&node.name_any())
            .into_iter()
            .flatten()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        if run {
            st.desired_number_scheduled += 1;
        }
        let Some(pod) = pods.first() else { continue };
        if !run {
            st.number_misscheduled += 1;
            continue;
        }
        st.current_number_scheduled += 1;
        if is_pod_ready(pod) {
            st.number_ready += 1;
            if is_pod_available(pod, mrs, now) {
                st.number_available = Some(st.number_available.unwrap_or(0) + 1);
            }
        }
        if pods.iter().any(|p| pod_hash(p) == Some(hash)) {
            st.updated_number_scheduled = Some(st.updated_number_scheduled.unwrap_or(0) + 1);
        }
    }
    let unavailable = st.desired_number_scheduled - st.number_available.unwrap_or(0);
    st.number_unavailable = (unavailable > 0).then_some(unavailable);
    st
}

pub(crate) struct DaemonSetController {
    client: Client,
    sets: Informer<DaemonSet>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    revisions: history::Revisions,
    queue: WorkQueue<String>,
    expectations: Expectations,
    recorder: Recorder,
    failed_backoff: Backoff,
}

impl DaemonSetController {
    pub(crate) fn new(informers: &Informers, recorder: Recorder) -> Arc<Self> {
        let pods = informers.get::<Pod>();
        add_owner_indexes(&pods);
        let revisions = history::Revisions::new(informers.client().clone());
        let c = Arc::new(DaemonSetController {
            client: informers.client().clone(),
            sets: informers.get::<DaemonSet>(),
            pods,
            nodes: informers.get::<Node>(),
            revisions,
            queue: WorkQueue::new(),
            expectations: Expectations::new(),
            recorder,
            failed_backoff: Backoff::default(),
        });
        let me = Arc::downgrade(&c);
        c.sets.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            c.queue.add(c.expectations.owner_changed(ch));
        });
        let me = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(p) => {
                    if p.metadata.deletion_timestamp.is_some() {
                        return c.pod_gone(p);
                    }
                    if let Some(key) = c.owner_key(p) {
                        c.expectations.creation_observed(&key);
                        c.queue.add(key);
                    } else if controller_ref(&p.metadata).is_none() {
                        c.enqueue_matching(p);
                    }
                }
                Change::Updated { old, new } => {
                    if new.metadata.deletion_timestamp.is_some() {
                        c.pod_gone(new);
                    }
                    for p in [old, new] {
                        if let Some(key) = c.owner_key(p) {
                            c.queue.add(key.clone());
                            // Availability arrives minReadySeconds after readiness.
                            if let Some(ds) = c.sets.get_key(&key) {
                                let mrs = ds_min_ready(&ds);
                                if mrs > 0 && !is_pod_ready(old) && is_pod_ready(new) {
                                    c.queue.add_after(key, Duration::from_secs(mrs as u64 + 1));
                                }
                            }
                        }
                    }
                    if controller_ref(&new.metadata).is_none()
                        && old.metadata.labels != new.metadata.labels
                    {
                        c.enqueue_matching(new);
                    }
                }
                Change::Deleted(p) => c.pod_gone(p),
            }
        });
        let me = Arc::downgrade(&c);
        c.nodes.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let relevant = match ch {
                Change::Added(_) | Change::Deleted(_) => true,
                Change::Updated { old, new } => {
                    old.metadata.labels != new.metadata.labels
                        || old.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
                            != new.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
                }
            };
            if relevant {
                for k in c.sets.keys() {
                    c.queue.add(k);
                }
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.sets.wait_synced().await;
        self.pods.wait_synced().await;
        self.nodes.wait_synced().await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let workers_fut = async {
            let _ = rx.await;
            let me = self.clone();
            util::run_workers(COMPONENT, self.queue.clone(), workers, move |key| {
                let me = me.clone();
                async move { me.sync(&key).await }
            })
            .await
        };
        futures::join!(self.revisions.run(tx), workers_fut);
    }

    fn owner_key(&self, p: &Pod) -> Option<String> {
        let r = controller_ref(&p.metadata)?;
        if r.kind != "DaemonSet" || util::group_of(&r.api_version) != "apps" {
            return None;
        }
        let ns = p.metadata.namespace.as_deref().unwrap_or("");
        let ds = self.sets.get(ns, &r.name)?;
        (ds.metadata.uid.as_deref() == Some(r.uid.as_str())).then(|| key_of(ds.as_ref()))
    }

    fn pod_gone(&self, p: &Arc<Pod>) {
        if let Some(key) = self.owner_key(p) {
            self.expectations
                .deletion_observed(&key, &key_of(p.as_ref()));
            self.queue.add(key);
        }
    }

    fn enqueue_matching(&self, p: &Pod) {
        let ns = p.metadata.namespace.as_deref().unwrap_or("");
        for ds in self.sets.list_namespace(ns) {
            let matches = LabelSelector::from_api(ds.spec.as_ref().map(|s| &s.selector))
                .is_ok_and(|s| !s.is_empty() && s.matches_labels(p.metadata.labels.as_ref()));
            if matches {
                self.queue.add(key_of(ds.as_ref()));
            }
        }
    }

    pub(crate) async fn sync(&self, key: &str) -> Result<()> {
        let Some(ds) = self.sets.get_key(key) else {
            self.expectations.forget(key);
            return Ok(());
        };
        let Some(spec) = ds.spec.clone() else {
            return Ok(());
        };
        let selector = match LabelSelector::from_api(Some(&spec.selector)) {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::warn!(controller = COMPONENT, key, error = %e, "invalid selector");
                return Ok(());
            }
        };
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let ns = ds.namespace().unwrap_or_default();
        let mut candidates = self.pods.by_index(BY_CONTROLLER, &uid);
        candidates.extend(self.pods.by_index(ORPHANS, &ns));
        let pods = Claim::new(&self.client, ds.as_ref(), &selector)
            .claim(candidates)
            .await?;
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in &pods {
            if let Some(n) = node_of(p) {
                by_node.entry(n).or_default().push(p.clone());
            }
        }
        for v in by_node.values_mut() {
            v.sort_by_key(|p| {
                (
                    p.metadata.creation_timestamp.as_ref().map(chrono_of),
                    p.name_any(),
                )
            });
        }
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        // The revision of the current template.
        let mut collisions = ds
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let cur = self
            .revisions
            .ensure(ds.as_ref(), &spec.template, &mut collisions)
            .await?;
        let hash = cur
            .labels()
            .get(CONTROLLER_REVISION_HASH)
            .cloned()
            .unwrap_or_default();
        let nodes = self.nodes.list();
        let now = Utc::now();
        let mut result = Ok(());
        if self.expectations.satisfied(key) {
            let mut plan = plan(&ds, &spec.template, &nodes, &by_node, &hash, now);
            let instant = Instant::now();
            for (node, failed) in std::mem::take(&mut plan.failed) {
                let id = format!("{key}/{node}");
                if let Some(wait) = self.failed_backoff.remaining(&id, instant) {
                    self.queue.add_after(key.to_string(), wait);
                    continue;
                }
                self.failed_backoff.next(&id, instant);
                for pod in failed {
                    self.recorder.record(
                        ds.as_ref(),
                        "Warning",
                        "FailedDaemonPod",
                        format!("Found failed daemon pod {ns}/{pod} on node {node}, will try to kill it"),
                    );
                    plan.delete.push(pod);
                }
            }
            result = self.execute(&ds, key, &spec.template, &hash, plan).await;
            let live: HashSet<String> = pods
                .iter()
                .filter_map(|p| pod_hash(p).map(str::to_string))
                .chain([hash.clone()])
                .collect();
            let limit = spec.revision_history_limit.unwrap_or(10);
            if let Err(e) = self
                .revisions
                .truncate(&uid, &live, &[cur.name_any().as_str()], limit)
                .await
            {
                tracing::debug!(controller = COMPONENT, key, error = %e, "history cleanup failed");
            }
        }
        let mut st = compute_status(&ds, &spec.template, &nodes, &by_node, &hash, now);
        if collisions != 0 {
            st.collision_count = Some(collisions);
        }
        self.write_status(&ds, &st).await?;
        // Pods that became ready now become available later.
        let mrs = ds_min_ready(&ds);
        if mrs > 0 && st.number_ready != st.number_available.unwrap_or(0) {
            self.queue
                .add_after(key.to_string(), Duration::from_secs(mrs as u64));
        }
        result
    }

    fn pod_control(&self) -> PodControl<'_> {
        PodControl {
            client: &self.client,
            expectations: &self.expectations,
            recorder: &self.recorder,
        }
    }

    async fn execute(
        &self,
        ds: &DaemonSet,
        key: &str,
        template: &PodTemplateSpec,
        hash: &str,
        plan: Plan,
    ) -> Result<()> {
        let ns = ds.namespace().unwrap_or_default();
        let mut errs = Vec::new();
        let create: Vec<String> = plan.create_on.into_iter().take(BURST).collect();
        if !create.is_empty() {
            let mut labels: BTreeMap<String, String> = BTreeMap::new();
            labels.insert(CONTROLLER_REVISION_HASH.into(), hash.to_string());
            if let Some(g) = ds.metadata.generation {
                labels.insert(POD_TEMPLATE_GENERATION.into(), g.to_string());
            }
            let pods: Vec<Pod> = create
                .iter()
                .map(|node| {
                    let t = pod_spec_for_node(template, node);
                    let mut p = util::pod_from_template(
                        &t,
                        &ns,
                        &util::pods_prefix(&ds.name_any()),
                        Some(util::new_controller_ref(ds)),
                    );
                    p.metadata
                        .labels
                        .get_or_insert_with(Default::default)
                        .extend(labels.clone());
                    p
                })
                .collect();
            let (_, err) = self.pod_control().create(ds, key, &ns, pods).await;
            errs.extend(err);
        }
        if !plan.delete.is_empty() {
            let delete: Vec<String> = plan.delete.into_iter().take(BURST).collect();
            let (_, failed) = self.pod_control().delete(ds, key, &ns, &delete).await;
            errs.extend(failed);
        }
        Error::aggregate(errs)
    }

    async fn write_status(&self, ds: &DaemonSet, st: &DaemonSetStatus) -> Result<()> {
        let cur = ds.status.clone().unwrap_or_default();
        let same = |a: &DaemonSetStatus| {
            let mut a = a.clone();
            a.conditions = None;
            a
        };
        if same(&cur) == same(st) {
            return Ok(());
        }
        let ns = ds.namespace().unwrap_or_default();
        let name = ds.name_any();
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), &ns);
        let patch = json!({"status": {
            "desiredNumberScheduled": st.desired_number_scheduled,
            "currentNumberScheduled": st.current_number_scheduled,
            "numberMisscheduled": st.number_misscheduled,
            "numberReady": st.number_ready,
            "numberAvailable": st.number_available,
            "numberUnavailable": st.number_unavailable,
            "updatedNumberScheduled": st.updated_number_scheduled,
            "observedGeneration": st.observed_generation,
            "collisionCount": st.collision_count,
        }});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api("update status of", format!("daemonset {ns}/{name}"), e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::time_of;
    use k8s_openapi::api::core::v1::{NodeSpec, PodCondition, PodStatus};

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Arc<Node> {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        n.spec = Some(NodeSpec {
            taints: Some(
                taints
                    .iter()
                    .map(|(k, e)| Taint {
                        key: k.to_string(),
                        effect: e.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        Arc::new(n)
    }

    fn template(v: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn eligibility_follows_selectors_affinity_and_taints() {
        let t = template(json!({"spec": {
            "nodeSelector": {"role": "edge"},
            "containers": [{"name": "c", "image": "x"}],
        }}));
        assert_eq!(
            node_should_run(&t, &node("a", &[("role", "edge")], &[])),
            (true, true)
        );
        assert_eq!(
            node_should_run(&t, &node("b", &[("role", "core")], &[])),
            (false, false)
        );
        // Untolerated NoSchedule: no new pod, the running one stays; NoExecute: neither.
        assert_eq!(
            node_should_run(
                &t,
                &node("c", &[("role", "edge")], &[("gpu", "NoSchedule")])
            ),
            (false, true)
        );
        assert_eq!(
            node_should_run(&t, &node("d", &[("role", "edge")], &[("gpu", "NoExecute")])),
            (false, false)
        );
        // The automatic daemon tolerations: cordoned and not-ready nodes still run one.
        assert_eq!(
            node_should_run(
                &t,
                &node(
                    "e",
                    &[("role", "edge")],
                    &[
                        ("node.kubernetes.io/unschedulable", "NoSchedule"),
                        ("node.kubernetes.io/not-ready", "NoExecute")
                    ]
                )
            ),
            (true, true)
        );
        let tolerant = template(json!({"spec": {
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]},
                ]}}},
            "containers": [{"name": "c", "image": "x"}],
        }}));
        assert_eq!(
            node_should_run(
                &tolerant,
                &node("f", &[("zone", "z2")], &[("gpu", "NoExecute")])
            ),
            (true, true)
        );
        assert_eq!(
            node_should_run(&tolerant, &node("g", &[("zone", "z3")], &[])),
            (false, false)
        );
        assert_eq!(
            node_should_run(&tolerant, &node("special", &[], &[])),
            (true, true)
        );
    }

    #[test]
    fn pods_are_pinned_by_affinity() {
        let t = template(json!({"spec": {"containers": [{"name": "c", "image": "x"}]}}));
        let pinned = pod_spec_for_node(&t, "n7");
        let pod = Pod {
            spec: pinned.spec.clone(),
            ..Default::default()
        };
        assert_eq!(node_of(&pod).as_deref(), Some("n7"));
        let tols = pinned.spec.and_then(|s| s.tolerations).unwrap_or_default();
        assert_eq!(tols.len(), 6);
    }

    fn ds(strategy: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default", "generation": 2},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                             "spec": {"containers": [{"name": "c", "image": "x"}]}},
                "updateStrategy": strategy,
            },
        }))
        .unwrap_or_default()
    }

    fn pod(name: &str, node: &str, hash: &str, ready: bool) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.labels = Some([(CONTROLLER_REVISION_HASH.to_string(), hash.to_string())].into());
        p.spec = Some(PodSpec {
            node_name: Some(node.into()),
            ..Default::default()
        });
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                last_transition_time: Some(time_of(Utc::now() - chrono::Duration::hours(1))),
                ..Default::default()
            }]),
            ..Default::default()
        });
        Arc::new(p)
    }

    fn by_node(pods: &[Arc<Pod>]) -> HashMap<String, Vec<Arc<Pod>>> {
        let mut m: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in pods {
            if let Some(n) = node_of(p) {
                m.entry(n).or_default().push(p.clone());
            }
        }
        m
    }

    #[test]
    fn plan_creates_missing_and_rolls_within_max_unavailable() {
        let d = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}));
        let t = d.spec.clone().unwrap_or_default().template;
        let nodes: Vec<Arc<Node>> = (0..4).map(|i| node(&format!("n{i}"), &[], &[])).collect();
        let pods = vec![
            pod("p0", "n0", "old", true),
            pod("p1", "n1", "old", true),
            pod("p2", "n2", "new", true),
            pod("gone", "n9", "old", true),
        ];
        let now = Utc::now();
        let p = plan(&d, &t, &nodes, &by_node(&pods), "new", now);
        // n3 needs a pod (counts as unavailable): no budget left for old pods.
        assert_eq!(p.create_on, ["n3"]);
        assert_eq!(p.delete, ["gone"]);
        let mut pods2 = pods.clone();
        pods2.push(pod("p3", "n3", "new", true));
        let p = plan(&d, &t, &nodes, &by_node(&pods2), "new", now);
        assert_eq!(p.delete, ["gone", "p0"]);
        // Unavailable old pods are replaced without using the budget.
        let pods3 = vec![
            pod("p0", "n0", "old", false),
            pod("p1", "n1", "old", true),
            pod("p2", "n2", "new", true),
            pod("p3", "n3", "new", true),
        ];
        let p = plan(&d, &t, &nodes, &by_node(&pods3), "new", now);
        assert_eq!(p.delete, ["p0"]);
        let st = compute_status(&d, &t, &nodes, &by_node(&pods3), "new", now);
        assert_eq!(st.desired_number_scheduled, 4);
        assert_eq!(st.current_number_scheduled, 4);
        assert_eq!(st.number_ready, 3);
        assert_eq!(st.updated_number_scheduled, Some(2));
        assert_eq!(st.number_unavailable, Some(1));
        assert_eq!(st.observed_generation, Some(2));
    }

    #[test]
    fn plan_with_surge_and_on_delete() {
        let d = ds(
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        );
        let t = d.spec.clone().unwrap_or_default().template;
        let nodes: Vec<Arc<Node>> = (0..3).map(|i| node(&format!("n{i}"), &[], &[])).collect();
        let now = Utc::now();
        let pods = vec![
            pod("p0", "n0", "old", true),
            pod("p1", "n1", "old", true),
            pod("p2", "n2", "old", true),
        ];
        let p = plan(&d, &t, &nodes, &by_node(&pods), "new", now);
        assert_eq!(p.create_on.len(), 1);
        assert!(p.delete.is_empty());
        let mut pods2 = pods.clone();
        pods2.push(pod("q0", "n0", "new", true));
        let p = plan(&d, &t, &nodes, &by_node(&pods2), "new", now);
        // The new pod is available: the old one goes, and the budget surges the next node.
        assert_eq!(p.delete, ["p0"]);
        assert_eq!(p.create_on.len(), 1);
        let od = ds(json!({"type": "OnDelete"}));
        let p = plan(&od, &t, &nodes, &by_node(&pods), "new", now);
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn failed_pods_are_replaced_behind_a_backoff() {
        let d = ds(json!({"type": "OnDelete"}));
        let t = d.spec.clone().unwrap_or_default().template;
        let nodes = vec![node("n0", &[], &[])];
        let mut failed = (*pod("p0", "n0", "new", false)).clone();
        if let Some(st) = failed.status.as_mut() {
            st.phase = Some("Failed".into());
        }
        let p = plan(
            &d,
            &t,
            &nodes,
            &by_node(&[Arc::new(failed)]),
            "new",
            Utc::now(),
        );
        // Not recreated while the failed pod is still there.
        assert!(p.create_on.is_empty());
        assert_eq!(p.failed, [("n0".to_string(), vec!["p0".to_string()])]);
        let b = Backoff::default();
        let t0 = Instant::now();
        assert_eq!(b.remaining("x", t0), None);
        b.next("x", t0);
        assert_eq!(b.remaining("x", t0), Some(Duration::from_secs(1)));
        b.next("x", t0);
        assert_eq!(b.remaining("x", t0), Some(Duration::from_secs(2)));
        assert_eq!(b.remaining("x", t0 + Duration::from_secs(3)), None);
    }

    #[test]
    fn max_unavailable_percentages_round_up() {
        let d = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}));
        assert_eq!(surge_and_unavailable(&d, 15), (0, 2));
        let d = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}));
        assert_eq!(surge_and_unavailable(&d, 15), (0, 1));
    }
}
