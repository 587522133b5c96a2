//! ReplicaSet and ReplicationController: one implementation for both (upstream runs the
//! ReplicaSet controller with an adapter for RCs too). Keeps the count of active pods
//! matching the selector, adopts orphans and releases pods that stop matching, creates in
//! slow-start batches behind expectations, deletes in upstream's order, and writes the
//! status through the status subresource.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use bosun_api::selector::{LabelSelector, SelectorError};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::claim::Claim;
use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::informer::{key_of, split_key, Change, Informer, Informers};
use crate::podcontrol::PodControl;
use crate::queue::WorkQueue;
use crate::util::{self, controller_ref, group_of, is_pod_active, is_pod_available, is_pod_ready};
use crate::{Error, Result};

/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;

/// Pod index: controller UID of owned pods.
pub(crate) const BY_CONTROLLER: &str = "controller-uid";
/// Pod index: namespace of pods that have no controller.
pub(crate) const ORPHANS: &str = "orphans-in-namespace";

/// Registers the indexes owner controllers look their children up by: controller UID, and
/// the namespace of children without a controller.
pub(crate) fn add_owner_indexes<K>(informer: &Informer<K>)
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
{
    informer.add_index(BY_CONTROLLER, |p: &K| {
        controller_ref(p.meta())
            .map(|r| r.uid.clone())
            .into_iter()
            .collect()
    });
    informer.add_index(ORPHANS, |p: &K| {
        if controller_ref(p.meta()).is_none() {
            vec![p.meta().namespace.clone().unwrap_or_default()]
        } else {
            Vec::new()
        }
    });
}

/// What the controller needs of a ReplicaSet or a ReplicationController.
pub(crate) trait ReplicaOwner:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The event source and log name (upstream's component names).
    const COMPONENT: &'static str;
    fn selector(&self) -> Result<LabelSelector, SelectorError>;
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The status as written, in the shape both kinds share.
    fn current_status(&self) -> Value;
}

impl ReplicaOwner for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    fn selector(&self) -> Result<LabelSelector, SelectorError> {
        LabelSelector::from_api(self.spec.as_ref().map(|s| &s.selector))
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn current_status(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

impl ReplicaOwner for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    fn selector(&self) -> Result<LabelSelector, SelectorError> {
        // An RC's selector is a map; validation requires it non-empty (defaulted from the
        // template labels), so an empty one selects nothing rather than everything.
        match self.spec.as_ref().and_then(|s| s.selector.as_ref()) {
            Some(set) if !set.is_empty() => Ok(LabelSelector::from_set(set)),
            _ => Ok(LabelSelector::nothing()),
        }
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn current_status(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

/// The controller of one owner kind.
pub(crate) struct ReplicaController<R> {
    client: Client,
    owners: Informer<R>,
    pods: Informer<Pod>,
    queue: WorkQueue<String>,
    expectations: Expectations,
    recorder: Recorder,
    burst: usize,
}

impl<R: ReplicaOwner> ReplicaController<R> {
    /// Builds the controller and registers its handlers on the shared informers.
    pub(crate) fn new(informers: &Informers, recorder: Recorder) -> Arc<Self> {
        let pods = informers.get::<Pod>();
        add_owner_indexes(&pods);
        let c = Arc::new(ReplicaController {
            client: informers.client().clone(),
            owners: {
                let o = informers.get::<R>();
                add_owner_indexes(&o);
                o
            },
            pods,
            queue: WorkQueue::new(),
            expectations: Expectations::new(),
            recorder,
            burst: BURST_REPLICAS,
        });
        let me = Arc::downgrade(&c);
        c.owners.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            c.queue.add(c.expectations.owner_changed(ch));
        });
        let me = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(p) => c.add_pod(p),
                Change::Updated { old, new } => c.update_pod(old, new),
                Change::Deleted(p) => c.delete_pod(p),
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.owners.wait_synced().await;
        self.pods.wait_synced().await;
        let me = self.clone();
        util::run_workers(R::COMPONENT, self.queue.clone(), workers, move |key| {
            let me = me.clone();
            async move { me.sync(&key).await }
        })
        .await
    }

    /// The owner a controller reference points at, if it is in the cache with that UID.
    fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Arc<R>> {
        if r.kind != R::kind(&()) || group_of(&r.api_version) != R::group(&()) {
            return None;
        }
        let o = self.owners.get(namespace, &r.name)?;
        (o.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(o)
    }

    /// Owners in the pod's namespace whose selector matches it (for orphans).
    fn owners_matching(&self, pod: &Pod) -> Vec<Arc<R>> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        self.owners
            .list_namespace(ns)
            .into_iter()
            .filter(|o| {
                o.selector()
                    .map(|s| !s.is_empty() && s.matches_labels(pod.metadata.labels.as_ref()))
                    .unwrap_or(false)
            })
            .collect()
    }

    fn add_pod(&self, pod: &Arc<Pod>) {
        if pod.metadata.deletion_timestamp.is_some() {
            // A pod already being deleted when first seen is no creation we made.
            return self.delete_pod(pod);
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        if let Some(r) = controller_ref(&pod.metadata) {
            if let Some(o) = self.resolve(ns, r) {
                let key = key_of(o.as_ref());
                self.expectations.creation_observed(&key);
                self.queue.add(key);
            }
            return;
        }
        for o in self.owners_matching(pod) {
            self.queue.add(key_of(o.as_ref()));
        }
    }

    fn update_pod(&self, old: &Arc<Pod>, new: &Arc<Pod>) {
        if old.metadata.resource_version == new.metadata.resource_version {
            return;
        }
        let label_changed = old.metadata.labels != new.metadata.labels;
        if new.metadata.deletion_timestamp.is_some() {
            self.delete_pod(new);
            if label_changed {
                self.delete_pod(old);
            }
            return;
        }
        let ns = new.metadata.namespace.as_deref().unwrap_or("");
        let cur_ref = controller_ref(&new.metadata);
        let old_ref = controller_ref(&old.metadata);
        let ref_changed = cur_ref != old_ref;
        if ref_changed {
            if let Some(o) = old_ref.and_then(|r| self.resolve(ns, r)) {
                self.queue.add(key_of(o.as_ref()));
            }
        }
        if let Some(r) = cur_ref {
            if let Some(o) = self.resolve(ns, r) {
                let key = key_of(o.as_ref());
                let mrs = o.min_ready_seconds();
                if !is_pod_ready(old) && is_pod_ready(new) && mrs > 0 {
                    self.queue
                        .add_after(key.clone(), Duration::from_secs(mrs as u64 + 1));
                }
                self.queue.add(key);
            }
            return;
        }
        if label_changed || ref_changed {
            for o in self.owners_matching(new) {
                self.queue.add(key_of(o.as_ref()));
            }
        }
    }

    fn delete_pod(&self, pod: &Arc<Pod>) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let Some(o) = controller_ref(&pod.metadata).and_then(|r| self.resolve(ns, r)) else {
            return;
        };
        let key = key_of(o.as_ref());
        self.expectations
            .deletion_observed(&key, &key_of(pod.as_ref()));
        self.queue.add(key);
    }

    /// Active pods owned by the owner plus the namespace's orphans: the only pods a claim
    /// can keep or adopt.
    fn candidate_pods(&self, owner: &R) -> Vec<Arc<Pod>> {
        let uid = owner.meta().uid.clone().unwrap_or_default();
        let ns = owner.meta().namespace.clone().unwrap_or_default();
        let mut pods = self.pods.by_index(BY_CONTROLLER, &uid);
        pods.extend(self.pods.by_index(ORPHANS, &ns));
        pods.retain(|p| is_pod_active(p));
        pods
    }

    pub(crate) async fn sync(&self, key: &str) -> Result<()> {
        let Some(owner) = self.owners.get_key(key) else {
            self.expectations.forget(key);
            return Ok(());
        };
        let needs_sync = self.expectations.satisfied(key);
        let selector = match owner.selector() {
            Ok(s) => s,
            Err(e) => {
                // An invalid selector cannot get better by retrying.
                tracing::warn!(controller = R::COMPONENT, key, error = %e, "invalid selector");
                return Ok(());
            }
        };
        let candidates = self.candidate_pods(&owner);
        let mut claim = Claim::new(&self.client, owner.as_ref(), &selector);
        let pods = claim.claim(candidates).await?;

        let manage = if needs_sync && owner.meta().deletion_timestamp.is_none() {
            self.manage_replicas(&owner, key, &pods).await
        } else {
            Ok(())
        };
        let now = Utc::now();
        let status = calculate_status(owner.as_ref(), &pods, manage.as_ref().err(), now);
        self.write_status(owner.as_ref(), status.clone()).await?;
        let mrs = owner.min_ready_seconds();
        if manage.is_ok()
            && mrs > 0
            && status.ready == owner.replicas()
            && status.available != owner.replicas()
        {
            self.queue
                .add_after(key.to_string(), Duration::from_secs(mrs as u64));
        }
        manage
    }

    fn pod_control(&self) -> PodControl<'_> {
        PodControl {
            client: &self.client,
            expectations: &self.expectations,
            recorder: &self.recorder,
        }
    }

    async fn manage_replicas(&self, owner: &R, key: &str, pods: &[Arc<Pod>]) -> Result<()> {
        let want = owner.replicas().max(0) as usize;
        let (ns, _) = split_key(key);
        if pods.len() < want {
            let diff = (want - pods.len()).min(self.burst);
            let Some(template) = owner.template() else {
                return Err(Error::Invalid {
                    what: format!("{} {key}", R::kind(&())),
                    message: "spec.template is required".into(),
                });
            };
            let pod = util::pod_from_template(
                template,
                ns,
                &util::pods_prefix(&owner.name_any()),
                Some(util::new_controller_ref(owner)),
            );
            let (_, err) = self
                .pod_control()
                .create(owner, key, ns, vec![pod; diff])
                .await;
            return err.map_or(Ok(()), Err);
        }
        if pods.len() > want {
            let diff = (pods.len() - want).min(self.burst);
            let related = self.indirectly_related_pods(owner);
            let victims = pods_to_delete(pods, &related, diff, Utc::now());
            let names: Vec<String> = victims.iter().map(|p| p.name_any()).collect();
            let (_, errs) = self.pod_control().delete(owner, key, ns, &names).await;
            return Error::aggregate(errs);
        }
        Ok(())
    }

    /// Pods of every owner that shares this owner's controller (the ReplicaSets of one
    /// Deployment), to spread scale-down across nodes.
    fn indirectly_related_pods(&self, owner: &R) -> Vec<Arc<Pod>> {
        let Some(parent) = controller_ref(owner.meta()) else {
            return Vec::new();
        };
        let ns = owner.meta().namespace.clone().unwrap_or_default();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let siblings: Vec<Arc<R>> = self
            .owners
            .list_namespace(&ns)
            .into_iter()
            .filter(|o| controller_ref(o.meta()).is_some_and(|r| r.uid == parent.uid))
            .collect();
        if siblings.is_empty() {
            return out;
        }
        let pods = self.pods.list_namespace(&ns);
        for s in siblings {
            let Ok(sel) = s.selector() else { continue };
            for p in &pods {
                if sel.matches_labels(p.metadata.labels.as_ref())
                    && seen.insert(p.metadata.uid.clone())
                {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    async fn write_status(&self, owner: &R, status: ReplicaStatus) -> Result<()> {
        let generation = owner.meta().generation.unwrap_or(0);
        let wanted = status.to_json(generation);
        if status_equal(&owner.current_status(), &wanted) {
            return Ok(());
        }
        let ns = owner.meta().namespace.clone().unwrap_or_default();
        let api: Api<R> = Api::namespaced(self.client.clone(), &ns);
        let name = owner.name_any();
        let patch = json!({ "status": wanted });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api(
                    "update status of",
                    format!("{} {ns}/{name}", R::kind(&())),
                    e,
                );
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// The counts a status reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ReplicaStatus {
    replicas: i32,
    fully_labeled: i32,
    ready: i32,
    available: i32,
    /// `ReplicaFailure` condition: (reason, message, lastTransitionTime).
    failure: Option<(String, String, String)>,
}

impl ReplicaStatus {
    /// The status JSON, zero counts left out as upstream's `omitempty` does; as a merge
    /// patch, `null` removes what is no longer set.
    fn to_json(&self, generation: i64) -> Value {
        let opt = |n: i32| if n == 0 { Value::Null } else { json!(n) };
        let conditions = match &self.failure {
            Some((reason, message, when)) => json!([{
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": when,
                "reason": reason,
                "message": message,
            }]),
            None => Value::Null,
        };
        json!({
            "replicas": self.replicas,
            "fullyLabeledReplicas": opt(self.fully_labeled),
            "readyReplicas": opt(self.ready),
            "availableReplicas": opt(self.available),
            "observedGeneration": if generation == 0 { Value::Null } else { json!(generation) },
            "conditions": conditions,
        })
    }
}

/// Whether the written status already says what `wanted` (a merge patch) would write.
fn status_equal(current: &Value, wanted: &Value) -> bool {
    let Some(w) = wanted.as_object() else {
        return false;
    };
    w.iter().all(|(k, v)| {
        let cur = current.get(k).unwrap_or(&Value::Null);
        match (k.as_str(), v) {
            // Zero and absent say the same.
            (_, Value::Null) => cur.is_null() || cur == &json!(0) || cur == &json!([]),
            ("conditions", Value::Array(want)) => {
                // The transition time of an unchanged condition is kept.
                let strip = |a: &Value| {
                    let mut a = a.clone();
                    if let Some(arr) = a.as_array_mut() {
                        for c in arr {
                            if let Some(m) = c.as_object_mut() {
                                m.remove("lastTransitionTime");
                            }
                        }
                    }
                    a
                };
                strip(cur) == strip(&Value::Array(want.clone()))
            }
            _ => cur == v,
        }
    })
}

fn calculate_status<R: ReplicaOwner>(
    owner: &R,
    pods: &[Arc<Pod>],
    manage_err: Option<&Error>,
    now: DateTime<Utc>,
) -> ReplicaStatus {
    let template_labels: BTreeMap<String, String> = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let template_sel = LabelSelector::from_set(&template_labels);
    let mrs = owner.min_ready_seconds();
    let mut s = ReplicaStatus {
        replicas: pods.len() as i32,
        ..Default::default()
    };
    for p in pods {
        if template_sel.matches_labels(p.metadata.labels.as_ref()) {
            s.fully_labeled += 1;
        }
        if is_pod_ready(p) {
            s.ready += 1;
            if is_pod_available(p, mrs, now) {
                s.available += 1;
            }
        }
    }
    let existing = owner
        .current_status()
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("ReplicaFailure"))
                .cloned()
        });
    s.failure = match manage_err {
        Some(e) => {
            let reason = if matches!(e, Error::Api { verb: "delete", .. }) {
                "FailedDelete"
            } else {
                "FailedCreate"
            };
            // Keep the first failure's time, as upstream only adds the condition once.
            let when = existing
                .as_ref()
                .and_then(|c| c.get("lastTransitionTime"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            match existing {
                Some(c) => Some((
                    c.get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or(reason)
                        .to_string(),
                    c.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    when,
                )),
                None => Some((reason.to_string(), e.to_string(), when)),
            }
        }
        None => None,
    };
    s
}

/// Upstream's `podPhaseToOrdinal`: Pending and unknown phases go first.
fn phase_ordinal(p: &Pod) -> u8 {
    match util::pod_phase(p) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// The `controller.kubernetes.io/pod-deletion-cost` annotation (0 when absent or invalid).
fn deletion_cost(p: &Pod) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// floor(log2(now - t)) in nanoseconds, -1 when `t` is not in the past (upstream's
/// `logarithmicRankDiff` buckets).
fn log_bucket(t: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    match (now - t).num_nanoseconds() {
        Some(d) if d > 0 => (d as f64).log2() as i64,
        Some(_) => -1,
        None => 63,
    }
}

/// Upstream's `ActivePodsWithRanks.Less`: whether `a` should be deleted before `b`.
fn delete_first(
    a: &Pod,
    rank_a: usize,
    b: &Pod,
    rank_b: usize,
    now: DateTime<Utc>,
) -> Option<bool> {
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let (na, nb) = (node(a), node(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return Some(na.is_empty());
    }
    if phase_ordinal(a) != phase_ordinal(b) {
        return Some(phase_ordinal(a) < phase_ordinal(b));
    }
    if is_pod_ready(a) != is_pod_ready(b) {
        return Some(!is_pod_ready(a));
    }
    if deletion_cost(a) != deletion_cost(b) {
        return Some(deletion_cost(a) < deletion_cost(b));
    }
    if rank_a != rank_b {
        return Some(rank_a > rank_b);
    }
    let uid_order = || a.metadata.uid < b.metadata.uid;
    if is_pod_ready(a) && is_pod_ready(b) {
        let (ta, tb) = (util::pod_ready_time(a), util::pod_ready_time(b));
        if ta != tb {
            return Some(match (ta, tb) {
                (Some(ta), Some(tb)) => match log_bucket(ta, now).cmp(&log_bucket(tb, now)) {
                    Ordering::Equal => uid_order(),
                    o => o == Ordering::Less,
                },
                // An empty time goes first.
                (None, _) => true,
                (_, None) => false,
            });
        }
    }
    let (ra, rb) = (
        util::max_container_restarts(a),
        util::max_container_restarts(b),
    );
    if ra != rb {
        return Some(ra > rb);
    }
    let (ca, cb) = (
        a.metadata.creation_timestamp.as_ref().map(util::chrono_of),
        b.metadata.creation_timestamp.as_ref().map(util::chrono_of),
    );
    if ca != cb {
        return Some(match (ca, cb) {
            (Some(ca), Some(cb)) => match log_bucket(ca, now).cmp(&log_bucket(cb, now)) {
                Ordering::Equal => uid_order(),
                o => o == Ordering::Less,
            },
            (None, _) => true,
            (_, None) => false,
        });
    }
    None
}

/// The `diff` pods to delete first, ranked as upstream: pods doubled up on a node with
/// related pods (other ReplicaSets of the same Deployment) go before lone ones.
pub(crate) fn pods_to_delete(
    pods: &[Arc<Pod>],
    related: &[Arc<Pod>],
    diff: usize,
    now: DateTime<Utc>,
) -> Vec<Arc<Pod>> {
    if diff >= pods.len() {
        return pods.to_vec();
    }
    let mut on_node: HashMap<String, usize> = HashMap::new();
    for p in related.iter().filter(|p| is_pod_active(p)) {
        let n = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        *on_node.entry(n).or_default() += 1;
    }
    let mut ranked: Vec<(usize, Arc<Pod>)> = pods
        .iter()
        .map(|p| {
            let n = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            (on_node.get(&n).copied().unwrap_or(0), p.clone())
        })
        .collect();
    ranked.sort_by(|(ra, a), (rb, b)| match delete_first(a, *ra, b, *rb, now) {
        Some(true) => Ordering::Less,
        Some(false) => Ordering::Greater,
        None => Ordering::Equal,
    });
    ranked.into_iter().take(diff).map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::time_of;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn pod(
        name: &str,
        node: &str,
        phase: &str,
        ready_secs_ago: Option<i64>,
        now: DateTime<Utc>,
    ) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.metadata.creation_timestamp = Some(time_of(now - chrono::Duration::hours(1)));
        p.spec = Some(PodSpec {
            node_name: (!node.is_empty()).then(|| node.to_string()),
            ..Default::default()
        });
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            conditions: ready_secs_ago.map(|s| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(time_of(now - chrono::Duration::seconds(s))),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        });
        Arc::new(p)
    }

    fn names(v: &[Arc<Pod>]) -> Vec<String> {
        v.iter().map(|p| p.name_any()).collect()
    }

    #[test]
    fn deletion_order_follows_upstream() {
        let now = Utc::now();
        let pods = vec![
            pod("running-ready-old", "n1", "Running", Some(100_000), now),
            pod("running-ready-new", "n1", "Running", Some(10), now),
            pod("running-notready", "n1", "Running", None, now),
            pod("pending", "n1", "Pending", None, now),
            pod("unscheduled", "", "Pending", None, now),
            pod("unknown", "n1", "Unknown", None, now),
        ];
        let order = pods_to_delete(&pods, &[], 5, now);
        assert_eq!(
            names(&order),
            [
                "unscheduled",
                "pending",
                "unknown",
                "running-notready",
                "running-ready-new"
            ]
        );
    }

    #[test]
    fn doubled_up_pods_go_first() {
        let now = Utc::now();
        let a = pod("a", "n1", "Running", Some(100), now);
        let b = pod("b", "n2", "Running", Some(100), now);
        let related = vec![
            a.clone(),
            b.clone(),
            pod("c", "n2", "Running", Some(5), now),
        ];
        let order = pods_to_delete(&[a, b], &related, 1, now);
        assert_eq!(names(&order), ["b"]);
    }

    #[test]
    fn deletion_cost_is_respected() {
        let now = Utc::now();
        let mut cheap = (*pod("cheap", "n1", "Running", Some(100), now)).clone();
        cheap.metadata.annotations = Some(
            [(
                "controller.kubernetes.io/pod-deletion-cost".to_string(),
                "-5".to_string(),
            )]
            .into(),
        );
        let dear = pod("dear", "n1", "Running", Some(100), now);
        let order = pods_to_delete(&[dear, Arc::new(cheap)], &[], 1, now);
        assert_eq!(names(&order), ["cheap"]);
    }

    #[test]
    fn status_json_omits_zeros_and_compares() {
        let s = ReplicaStatus {
            replicas: 3,
            fully_labeled: 3,
            ready: 0,
            available: 0,
            failure: None,
        };
        let j = s.to_json(2);
        assert_eq!(j["readyReplicas"], Value::Null);
        let current = json!({"replicas": 3, "fullyLabeledReplicas": 3, "observedGeneration": 2});
        assert!(status_equal(&current, &j));
        let stale = json!({"replicas": 3, "fullyLabeledReplicas": 3, "observedGeneration": 1});
        assert!(!status_equal(&stale, &j));
    }
}
