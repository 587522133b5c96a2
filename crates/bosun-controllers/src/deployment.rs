//! Deployments, as upstream's `pkg/controller/deployment`: one ReplicaSet per pod template
//! (`<name>-<pod-template-hash>`), rolled by RollingUpdate (maxSurge, maxUnavailable) or
//! Recreate, with revisions and history in annotations so `kubectl rollout
//! status|history|undo|pause|resume|restart` work, proportional scaling mid-rollout, the
//! Progressing and Available conditions, and upstream's status fields.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bosun_api::selector::LabelSelector;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

use crate::claim::Claim;
use crate::events::Recorder;
use crate::informer::{key_of, Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::replicaset::{add_owner_indexes, BY_CONTROLLER, ORPHANS};
use crate::util::{self, chrono_of, controller_ref, group_of, time_of};
use crate::{Error, Result};

pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
const DEPRECATED_ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Upstream's `maxRevHistoryLengthInChars`.
const MAX_REV_HISTORY_CHARS: usize = 2000;

/// Condition reasons, as upstream's `deploymentutil`.
pub mod reason {
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    pub const RS_UPDATED: &str = "ReplicaSetUpdated";
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    pub const PAUSED: &str = "DeploymentPaused";
    pub const RESUMED: &str = "DeploymentResumed";
    pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
    pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
    pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
}

fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED_ANNOTATION
            | REVISION_ANNOTATION
            | REVISION_HISTORY_ANNOTATION
            | DESIRED_REPLICAS_ANNOTATION
            | MAX_REPLICAS_ANNOTATION
            | DEPRECATED_ROLLBACK_TO
    )
}

// ---- small accessors -------------------------------------------------------------------

fn d_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn set_rs_replicas(rs: &mut ReplicaSet, n: i32) {
    rs.spec.get_or_insert_with(Default::default).replicas = Some(n);
}

fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn is_rolling(d: &Deployment) -> bool {
    strategy_type(d) == "RollingUpdate"
}

fn strategy_type(d: &Deployment) -> &str {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

fn template(d: &Deployment) -> PodTemplateSpec {
    d.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

fn creation(rs: &ReplicaSet) -> Option<DateTime<Utc>> {
    rs.metadata.creation_timestamp.as_ref().map(chrono_of)
}

/// The revision annotation as a number (0 when absent or malformed).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.annotations()
        .get(key)
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|v| *v >= 0)
}

// ---- maxSurge / maxUnavailable -----------------------------------------------------------

/// Upstream's `GetScaledValueFromIntOrPercent`.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: f64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse::<i64>().ok())
                .ok_or_else(|| Error::Invalid {
                    what: "rolling update parameter".into(),
                    message: format!("invalid value for IntOrString: invalid value {s:?}"),
                })? as f64;
            let v = pct * total as f64 / 100.0;
            Ok(if round_up { v.ceil() } else { v.floor() } as i32)
        }
    }
}

/// Upstream's `ResolveFenceposts`: (maxSurge, maxUnavailable) as numbers; both zero
/// becomes an unavailability of one so a rollout can always move.
pub fn resolve_fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge_v = ru.map_or(default.clone(), |r| {
        r.max_surge.clone().unwrap_or(IntOrString::Int(0))
    });
    let unav_v = ru.map_or(default, |r| {
        r.max_unavailable.clone().unwrap_or(IntOrString::Int(0))
    });
    let desired = d_replicas(d);
    let surge = scaled_value(&surge_v, desired, true).unwrap_or(0);
    let mut unavailable = scaled_value(&unav_v, desired, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    resolve_fenceposts(d).0
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || d_replicas(d) == 0 {
        return 0;
    }
    resolve_fenceposts(d).1.min(d_replicas(d))
}

// ---- pod-template-hash -------------------------------------------------------------------

/// Upstream's `rand.SafeEncodeString`: digits mapped onto consonants and digits that
/// cannot spell words.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// The pod-template-hash of a template: FNV-32a of its canonical JSON and the collision
/// count, safe-encoded as upstream's `ComputeHash` does (upstream hashes Go's struct dump,
/// which has no equivalent here; the value only has to be stable and spread).
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(&serde_json::to_vec(template).unwrap_or_default());
    if let Some(c) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(c as u32).to_le_bytes());
        feed(&bytes);
    }
    safe_encode(&h.to_string())
}

fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.remove(POD_TEMPLATE_HASH_LABEL);
    }
    t
}

/// Upstream's `EqualIgnoreHash`.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

// ---- orderings -------------------------------------------------------------------------

fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    creation(a)
        .cmp(&creation(b))
        .then_with(|| a.name_any().cmp(&b.name_any()))
}

/// Larger first; among equals, `newer_first` decides.
fn by_size(a: &ReplicaSet, b: &ReplicaSet, newer_first: bool) -> Ordering {
    rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| {
        if newer_first {
            by_creation(b, a)
        } else {
            by_creation(a, b)
        }
    })
}

fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

/// The ReplicaSet whose template is the deployment's (the oldest, if several).
pub fn find_new_rs(d: &Deployment, rss: &[ReplicaSet]) -> Option<ReplicaSet> {
    let t = template(d);
    let mut sorted: Vec<&ReplicaSet> = rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted
        .into_iter()
        .find(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|rt| equal_ignore_hash(rt, &t))
        })
        .cloned()
}

fn find_old_rss(d: &Deployment, rss: &[ReplicaSet]) -> Vec<ReplicaSet> {
    let new_uid = find_new_rs(d, rss).and_then(|n| n.metadata.uid);
    rss.iter()
        .filter(|rs| new_uid.is_none() || rs.metadata.uid != new_uid)
        .cloned()
        .collect()
}

fn active(rss: &[ReplicaSet]) -> Vec<ReplicaSet> {
    rss.iter().filter(|r| rs_replicas(r) > 0).cloned().collect()
}

fn sum_spec(rss: &[ReplicaSet]) -> i32 {
    rss.iter().map(rs_replicas).sum()
}

fn sum_status(rss: &[ReplicaSet]) -> i32 {
    rss.iter().map(rs_status_replicas).sum()
}

/// Upstream's `FindActiveOrLatest`.
fn find_active_or_latest(new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Option<ReplicaSet> {
    if new_rs.is_none() && old.is_empty() {
        return None;
    }
    let mut old = old.to_vec();
    old.sort_by(|a, b| by_creation(b, a));
    let mut all = old.clone();
    all.extend(new_rs.cloned());
    let act = active(&all);
    match act.len() {
        0 => new_rs.cloned().or_else(|| old.first().cloned()),
        1 => act.into_iter().next(),
        _ => None,
    }
}

fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let Some(desired) = rs
        .annotations()
        .get(DESIRED_REPLICAS_ANNOTATION)
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return false;
    };
    rs_replicas(rs) == d_replicas(d)
        && desired == d_replicas(d)
        && rs_available(rs) == d_replicas(d)
}

/// Upstream's `NewRSNewReplicas`.
fn new_rs_new_replicas(d: &Deployment, all: &[ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    if !is_rolling(d) {
        return d_replicas(d);
    }
    let max_total = d_replicas(d) + max_surge(d);
    let current = sum_spec(all);
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let up = (max_total - current).min(d_replicas(d) - rs_replicas(new_rs));
    rs_replicas(new_rs) + up
}

/// Upstream's `getReplicaSetFraction`.
fn rs_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if d_replicas(d) == 0 {
        return -rs_replicas(rs);
    }
    let max_now = d_replicas(d) + max_surge(d);
    let before = match annotation_i32(rs, MAX_REPLICAS_ANNOTATION) {
        Some(v) if v != 0 => v,
        _ => {
            let r = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            if r == 0 {
                return 0;
            }
            r
        }
    };
    let size = (rs_replicas(rs) as f64 * max_now as f64) / before as f64;
    size.round() as i32 - rs_replicas(rs)
}

/// Upstream's `GetReplicaSetProportion`.
fn rs_proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = rs_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

// ---- conditions --------------------------------------------------------------------------

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(time_of(now)),
        last_transition_time: Some(time_of(now)),
    }
}

fn get_condition<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Upstream's `SetDeploymentCondition`: no change for the same status and reason; the
/// transition time is kept while the status stays.
fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get_condition(s, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(s, &c.type_.clone());
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

fn remove_condition(s: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
        if cs.is_empty() {
            s.conditions = None;
        }
    }
}

/// Zero counts as absent (upstream's `omitempty`), so a computed status compares equal
/// to the written one.
fn normalize(mut s: DeploymentStatus) -> DeploymentStatus {
    let z = |v: Option<i32>| v.filter(|n| *n != 0);
    s.replicas = z(s.replicas);
    s.updated_replicas = z(s.updated_replicas);
    s.ready_replicas = z(s.ready_replicas);
    s.available_replicas = z(s.available_replicas);
    s.unavailable_replicas = z(s.unavailable_replicas);
    s.terminating_replicas = z(s.terminating_replicas);
    s.observed_generation = s.observed_generation.filter(|g| *g != 0);
    if s.conditions.as_ref().is_some_and(Vec::is_empty) {
        s.conditions = None;
    }
    s
}

fn deployment_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = d_replicas(d);
    s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

fn deployment_timed_out(d: &Deployment, new: &DeploymentStatus, now: DateTime<Utc>) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = get_condition(new, "Progressing") else {
        return false;
    };
    match c.reason.as_deref() {
        Some(reason::NEW_RS_AVAILABLE) => false,
        Some(reason::TIMED_OUT) => true,
        _ => c
            .last_update_time
            .as_ref()
            .map(chrono_of)
            .is_some_and(|from| from + chrono::Duration::seconds(deadline as i64) < now),
    }
}

/// Upstream's `calculateStatus`.
fn calculate_status(
    all: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: DateTime<Utc>,
) -> DeploymentStatus {
    let available: i32 = all.iter().map(rs_available).sum();
    let total = sum_spec(all);
    let unavailable = (total - available).max(0);
    let old = d.status.clone().unwrap_or_default();
    let mut s = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum_status(all)),
        updated_replicas: Some(new_rs.map(rs_status_replicas).unwrap_or(0)),
        ready_replicas: Some(all.iter().map(rs_ready).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some(unavailable),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= d_replicas(d) - max_unavailable(d) {
        set_condition(
            &mut s,
            new_condition(
                "Available",
                "True",
                reason::MIN_AVAILABLE,
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set_condition(
            &mut s,
            new_condition(
                "Available",
                "False",
                reason::MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    normalize(s)
}

// ---- the controller ----------------------------------------------------------------------

pub(crate) struct DeploymentController {
    client: Client,
    deployments: Informer<Deployment>,
    replicasets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    queue: WorkQueue<String>,
    recorder: Recorder,
}

impl DeploymentController {
    pub(crate) fn new(informers: &Informers, recorder: Recorder) -> Arc<Self> {
        let replicasets = informers.get::<ReplicaSet>();
        add_owner_indexes(&replicasets);
        let pods = informers.get::<Pod>();
        add_owner_indexes(&pods);
        let c = Arc::new(DeploymentController {
            client: informers.client().clone(),
            deployments: informers.get::<Deployment>(),
            replicasets,
            pods,
            queue: WorkQueue::new(),
            recorder,
        });
        let me = Arc::downgrade(&c);
        c.deployments.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let d = match ch {
                Change::Added(d) | Change::Deleted(d) => d,
                Change::Updated { new, .. } => new,
            };
            c.queue.add(key_of(d.as_ref()));
        });
        let me = Arc::downgrade(&c);
        c.replicasets.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(rs) => c.rs_changed(None, rs),
                Change::Updated { old, new } => c.rs_changed(Some(old), new),
                Change::Deleted(rs) => {
                    if let Some(d) = c.resolve_rs_owner(rs) {
                        c.queue.add(key_of(d.as_ref()));
                    }
                }
            }
        });
        let me = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            // Recreate waits for old pods to be gone: their deletion is what it waits for.
            if let Change::Deleted(p) = ch {
                let ns = p.metadata.namespace.as_deref().unwrap_or("");
                let rs = controller_ref(&p.metadata)
                    .filter(|r| r.kind == "ReplicaSet")
                    .and_then(|r| c.replicasets.get(ns, &r.name));
                if let Some(d) = rs.and_then(|rs| c.resolve_rs_owner(&rs)) {
                    if !is_rolling(&d) {
                        c.queue.add(key_of(d.as_ref()));
                    }
                }
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.deployments.wait_synced().await;
        self.replicasets.wait_synced().await;
        self.pods.wait_synced().await;
        let me = self.clone();
        util::run_workers(
            "deployment-controller",
            self.queue.clone(),
            workers,
            move |key| {
                let me = me.clone();
                async move { me.sync(&key).await }
            },
        )
        .await
    }

    fn resolve_rs_owner(&self, rs: &ReplicaSet) -> Option<Arc<Deployment>> {
        let r = controller_ref(&rs.metadata)?;
        if r.kind != "Deployment" || group_of(&r.api_version) != "apps" {
            return None;
        }
        let d = self
            .deployments
            .get(rs.metadata.namespace.as_deref().unwrap_or(""), &r.name)?;
        (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(d)
    }

    fn deployments_matching(&self, rs: &ReplicaSet) -> Vec<Arc<Deployment>> {
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        self.deployments
            .list_namespace(ns)
            .into_iter()
            .filter(|d| {
                LabelSelector::from_api(d.spec.as_ref().map(|s| &s.selector))
                    .map(|s| !s.is_empty() && s.matches_labels(rs.metadata.labels.as_ref()))
                    .unwrap_or(false)
            })
            .collect()
    }

    fn rs_changed(&self, old: Option<&Arc<ReplicaSet>>, new: &Arc<ReplicaSet>) {
        if let Some(old) = old {
            if old.metadata.resource_version == new.metadata.resource_version {
                return;
            }
            if controller_ref(&old.metadata) != controller_ref(&new.metadata) {
                if let Some(d) = self.resolve_rs_owner(old) {
                    self.queue.add(key_of(d.as_ref()));
                }
            }
        }
        if controller_ref(&new.metadata).is_some() {
            if let Some(d) = self.resolve_rs_owner(new) {
                self.queue.add(key_of(d.as_ref()));
            }
            return;
        }
        let labels_changed = old.is_none_or(|o| o.metadata.labels != new.metadata.labels);
        let ref_changed = old.is_some_and(|o| controller_ref(&o.metadata).is_some());
        if labels_changed || ref_changed {
            for d in self.deployments_matching(new) {
                self.queue.add(key_of(d.as_ref()));
            }
        }
    }

    fn rs_api(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn d_api(&self, ns: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub(crate) async fn sync(&self, key: &str) -> Result<()> {
        let Some(cached) = self.deployments.get_key(key) else {
            return Ok(());
        };
        let mut d: Deployment = (*cached).clone();
        let ns = d.namespace().unwrap_or_default();
        let selector = match LabelSelector::from_api(d.spec.as_ref().map(|s| &s.selector)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(key, error = %e, "deployment has an invalid selector");
                return Ok(());
            }
        };
        if selector.is_empty() {
            self.recorder.record(
                &d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            let gen = d.metadata.generation;
            if d.status.as_ref().and_then(|s| s.observed_generation) < gen {
                let mut s = d.status.clone().unwrap_or_default();
                s.observed_generation = gen;
                self.write_status(&d, s).await?;
            }
            return Ok(());
        }

        // The deployment's ReplicaSets: owned ones that still match plus adopted orphans.
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let mut candidates = self.replicasets.by_index(BY_CONTROLLER, &uid);
        candidates.extend(self.replicasets.by_index(ORPHANS, &ns));
        let mut claim = Claim::new(&self.client, &d, &selector);
        let rss: Vec<ReplicaSet> = claim
            .claim(candidates)
            .await?
            .into_iter()
            .map(|r| (*r).clone())
            .collect();

        if d.metadata.deletion_timestamp.is_some() {
            let (new_rs, old) = self
                .get_all_rss_and_sync_revision(&mut d, &rss, false)
                .await?;
            return self.sync_status_only(&d, new_rs.as_ref(), &old).await;
        }
        self.check_paused_conditions(&mut d).await?;
        if paused(&d) {
            return self.sync_paused_or_scaling(&mut d, &rss).await;
        }
        if self.is_scaling_event(&mut d, &rss).await? {
            return self.sync_paused_or_scaling(&mut d, &rss).await;
        }
        if is_rolling(&d) {
            self.rollout_rolling(&mut d, &rss).await
        } else {
            self.rollout_recreate(&mut d, &rss).await
        }
    }

    async fn sync_status_only(
        &self,
        d: &Deployment,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<()> {
        let mut all = old.to_vec();
        all.extend(new_rs.cloned());
        let s = calculate_status(&all, new_rs, d, Utc::now());
        if normalize(d.status.clone().unwrap_or_default()) == s {
            return Ok(());
        }
        self.write_status(d, s).await
    }

    /// Writes the whole status through the status subresource.
    async fn write_status(&self, d: &Deployment, status: DeploymentStatus) -> Result<()> {
        let status = normalize(status);
        let mut v = serde_json::to_value(&status).map_err(|e| Error::Json {
            what: "deployment status".into(),
            source: e,
        })?;
        if let Some(m) = v.as_object_mut() {
            for k in [
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
                "terminatingReplicas",
                "conditions",
                "collisionCount",
            ] {
                m.entry(k).or_insert(Value::Null);
            }
        }
        let ns = d.namespace().unwrap_or_default();
        let name = d.name_any();
        match self
            .d_api(&ns)
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": v})),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api("update status of", format!("deployment {ns}/{name}"), e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Sets the deployment's revision annotation (on the object itself: the status
    /// subresource keeps metadata).
    async fn set_deployment_revision(&self, d: &mut Deployment, rev: &str) -> Result<()> {
        if d.annotations().get(REVISION_ANNOTATION).map(String::as_str) == Some(rev) {
            return Ok(());
        }
        let ns = d.namespace().unwrap_or_default();
        let name = d.name_any();
        let patch = json!({"metadata": {"annotations": {REVISION_ANNOTATION: rev}}});
        self.d_api(&ns)
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::api("patch", format!("deployment {ns}/{name}"), e))?;
        d.annotations_mut()
            .insert(REVISION_ANNOTATION.into(), rev.to_string());
        Ok(())
    }

    async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<()> {
        if progress_deadline(d).is_none() {
            return Ok(());
        }
        let mut s = d.status.clone().unwrap_or_default();
        let cond = get_condition(&s, "Progressing").cloned();
        if cond.as_ref().and_then(|c| c.reason.as_deref()) == Some(reason::TIMED_OUT) {
            return Ok(());
        }
        let paused_exists = cond.as_ref().and_then(|c| c.reason.as_deref()) == Some(reason::PAUSED);
        let now = Utc::now();
        let c = if paused(d) && !paused_exists {
            new_condition(
                "Progressing",
                "Unknown",
                reason::PAUSED,
                "Deployment is paused".into(),
                now,
            )
        } else if !paused(d) && paused_exists {
            new_condition(
                "Progressing",
                "Unknown",
                reason::RESUMED,
                "Deployment is resumed".into(),
                now,
            )
        } else {
            return Ok(());
        };
        set_condition(&mut s, c);
        self.write_status(d, s.clone()).await?;
        d.status = Some(s);
        Ok(())
    }

    /// Upstream's `isScalingEvent`: an active ReplicaSet records another desired size.
    async fn is_scaling_event(&self, d: &mut Deployment, rss: &[ReplicaSet]) -> Result<bool> {
        let (new_rs, old) = self.get_all_rss_and_sync_revision(d, rss, false).await?;
        let mut all = old;
        all.extend(new_rs);
        Ok(active(&all).iter().any(|rs| {
            annotation_i32(rs, DESIRED_REPLICAS_ANNOTATION)
                .is_some_and(|want| want != d_replicas(d))
        }))
    }

    /// Upstream's `sync`: scaling events and paused deployments.
    async fn sync_paused_or_scaling(&self, d: &mut Deployment, rss: &[ReplicaSet]) -> Result<()> {
        let (new_rs, old) = self.get_all_rss_and_sync_revision(d, rss, false).await?;
        self.scale(d, new_rs.as_ref(), &old).await?;
        let (new_rs, old) = self.refresh(d, new_rs, old);
        if paused(d) {
            self.cleanup(d, &old).await?;
        }
        let mut all = old;
        all.extend(new_rs.clone());
        let s = calculate_status(&all, new_rs.as_ref(), d, Utc::now());
        if normalize(d.status.clone().unwrap_or_default()) == s {
            return Ok(());
        }
        self.write_status(d, s).await
    }

    /// The cache's newest copies of the ReplicaSets after our writes.
    fn refresh(
        &self,
        d: &Deployment,
        new_rs: Option<ReplicaSet>,
        old: Vec<ReplicaSet>,
    ) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
        let ns = d.namespace().unwrap_or_default();
        let fresh = |rs: ReplicaSet| -> ReplicaSet {
            match self.replicasets.get(&ns, &rs.name_any()) {
                Some(c)
                    if c.metadata.uid == rs.metadata.uid
                        && c.metadata
                            .resource_version
                            .as_ref()
                            .and_then(|v| v.parse::<u64>().ok())
                            > rs.metadata
                                .resource_version
                                .as_ref()
                                .and_then(|v| v.parse::<u64>().ok()) =>
                {
                    (*c).clone()
                }
                _ => rs,
            }
        };
        (new_rs.map(fresh), old.into_iter().map(fresh).collect())
    }

    /// Upstream's `getAllReplicaSetsAndSyncRevision`/`getNewReplicaSet`: the new ReplicaSet
    /// (created when `create` and missing) with its revision, and all old ones.
    async fn get_all_rss_and_sync_revision(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let old = find_old_rss(d, rss);
        let existing = find_new_rs(d, rss);
        let max_old = old.iter().map(revision).max().unwrap_or(0);
        let new_revision = (max_old + 1).to_string();
        let ns = d.namespace().unwrap_or_default();
        let now = Utc::now();

        if let Some(existing) = existing {
            let mut copy = existing.clone();
            let ann_changed = set_new_rs_annotations(d, &mut copy, &new_revision, true);
            let mrs_changed = copy
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
                != min_ready_seconds(d);
            if ann_changed || mrs_changed {
                copy.spec
                    .get_or_insert_with(Default::default)
                    .min_ready_seconds = Some(min_ready_seconds(d));
                let updated = self
                    .rs_api(&ns)
                    .replace(&copy.name_any(), &PostParams::default(), &copy)
                    .await
                    .map_err(|e| {
                        Error::api("update", format!("replicaset {ns}/{}", copy.name_any()), e)
                    })?;
                return Ok((Some(updated), old));
            }
            let rev = copy
                .annotations()
                .get(REVISION_ANNOTATION)
                .cloned()
                .unwrap_or_default();
            self.set_deployment_revision(d, &rev).await?;
            let mut s = d.status.clone().unwrap_or_default();
            if progress_deadline(d).is_some() && get_condition(&s, "Progressing").is_none() {
                set_condition(
                    &mut s,
                    new_condition(
                        "Progressing",
                        "True",
                        reason::FOUND_NEW_RS,
                        format!("Found new replica set {:?}", copy.name_any()),
                        now,
                    ),
                );
                self.write_status(d, s.clone()).await?;
                d.status = Some(s);
            }
            return Ok((Some(copy), old));
        }
        if !create {
            return Ok((None, old));
        }

        // Create the new ReplicaSet.
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let mut tmpl = template(d);
        let hash = compute_hash(&tmpl, collision);
        tmpl.metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let mut sel = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        sel.match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let name = format!("{}-{hash}", d.name_any());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                owner_references: Some(vec![util::new_controller_ref(d)]),
                labels: tmpl.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(min_ready_seconds(d)),
                selector: sel,
                template: Some(tmpl),
            }),
            status: None,
        };
        let mut all = old.clone();
        all.push(new_rs.clone());
        let count = new_rs_new_replicas(d, &all, &new_rs);
        set_rs_replicas(&mut new_rs, count);
        set_new_rs_annotations(d, &mut new_rs, &new_revision, false);

        let mut already_exists = false;
        let created = match self
            .rs_api(&ns)
            .create(&PostParams::default(), &new_rs)
            .await
        {
            Ok(rs) => rs,
            Err(e) => {
                let e = Error::api("create", format!("replicaset {ns}/{name}"), e);
                if e.is_already_exists() {
                    already_exists = true;
                    let existing =
                        match self.replicasets.get(&ns, &name) {
                            Some(r) => Some((*r).clone()),
                            None => self.rs_api(&ns).get_opt(&name).await.map_err(|e| {
                                Error::api("get", format!("replicaset {ns}/{name}"), e)
                            })?,
                        };
                    let ours = existing.as_ref().is_some_and(|rs| {
                        controller_ref(&rs.metadata)
                            .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref())
                            && rs
                                .spec
                                .as_ref()
                                .and_then(|s| s.template.as_ref())
                                .is_some_and(|t| equal_ignore_hash(&template(d), t))
                    });
                    match existing {
                        Some(rs) if ours => rs,
                        _ => {
                            // A hash collision: bump collisionCount and retry with a new hash.
                            let mut s = d.status.clone().unwrap_or_default();
                            s.collision_count = Some(s.collision_count.unwrap_or(0) + 1);
                            self.write_status(d, s).await?;
                            return Err(e);
                        }
                    }
                } else if e.is_namespace_terminating() {
                    return Err(e);
                } else {
                    let msg = format!("Failed to create new replica set {name:?}: {e}");
                    if progress_deadline(d).is_some() {
                        let mut s = d.status.clone().unwrap_or_default();
                        set_condition(
                            &mut s,
                            new_condition(
                                "Progressing",
                                "False",
                                reason::FAILED_RS_CREATE,
                                msg.clone(),
                                now,
                            ),
                        );
                        let _ = self.write_status(d, s).await;
                    }
                    self.recorder
                        .record(d, "Warning", reason::FAILED_RS_CREATE, msg);
                    return Err(e);
                }
            }
        };
        if !already_exists && count > 0 {
            self.recorder.record(
                d,
                "Normal",
                "ScalingReplicaSet",
                format!(
                    "Scaled up replica set {} from 0 to {count}",
                    created.name_any()
                ),
            );
        }
        self.set_deployment_revision(d, &new_revision).await?;
        if !already_exists && progress_deadline(d).is_some() {
            let mut s = d.status.clone().unwrap_or_default();
            set_condition(
                &mut s,
                new_condition(
                    "Progressing",
                    "True",
                    reason::NEW_RS_CREATED,
                    format!("Created new replica set {:?}", created.name_any()),
                    now,
                ),
            );
            self.write_status(d, s.clone()).await?;
            d.status = Some(s);
        }
        Ok((Some(created), old))
    }

    /// Upstream's `scaleReplicaSet`: size and the desired/max annotations in one update.
    async fn scale_rs(
        &self,
        rs: &ReplicaSet,
        new_scale: i32,
        d: &Deployment,
    ) -> Result<(bool, ReplicaSet)> {
        let size_changed = rs_replicas(rs) != new_scale;
        let desired = d_replicas(d);
        let max = desired + max_surge(d);
        let ann_changed = annotation_i32(rs, DESIRED_REPLICAS_ANNOTATION) != Some(desired)
            || annotation_i32(rs, MAX_REPLICAS_ANNOTATION) != Some(max);
        if !size_changed && !ann_changed {
            return Ok((false, rs.clone()));
        }
        let old_scale = rs_replicas(rs);
        let mut copy = rs.clone();
        set_rs_replicas(&mut copy, new_scale);
        set_replicas_annotations(&mut copy, desired, max);
        let ns = rs.namespace().unwrap_or_default();
        let updated = self
            .rs_api(&ns)
            .replace(&rs.name_any(), &PostParams::default(), &copy)
            .await
            .map_err(|e| Error::api("update", format!("replicaset {ns}/{}", rs.name_any()), e))?;
        if size_changed {
            let op = if old_scale < new_scale { "up" } else { "down" };
            self.recorder.record(
                d,
                "Normal",
                "ScalingReplicaSet",
                format!(
                    "Scaled {op} replica set {} from {old_scale} to {new_scale}",
                    rs.name_any()
                ),
            );
        }
        Ok((size_changed, updated))
    }

    /// Upstream's `scale`: proportional scaling of all active ReplicaSets.
    async fn scale(
        &self,
        d: &Deployment,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<()> {
        if let Some(rs) = find_active_or_latest(new_rs, old) {
            if rs_replicas(&rs) == d_replicas(d) {
                return Ok(());
            }
            self.scale_rs(&rs, d_replicas(d), d).await?;
            return Ok(());
        }
        if is_saturated(d, new_rs) {
            for o in active(old) {
                self.scale_rs(&o, 0, d).await?;
            }
            return Ok(());
        }
        if !is_rolling(d) {
            return Ok(());
        }
        let mut all: Vec<ReplicaSet> = old.to_vec();
        all.extend(new_rs.cloned());
        let mut all = active(&all);
        let current = sum_spec(&all);
        let allowed = if d_replicas(d) > 0 {
            d_replicas(d) + max_surge(d)
        } else {
            0
        };
        let to_add = allowed - current;
        match to_add.cmp(&0) {
            Ordering::Greater => all.sort_by(|a, b| by_size(a, b, true)),
            Ordering::Less => all.sort_by(|a, b| by_size(a, b, false)),
            Ordering::Equal => {}
        }
        let mut added = 0;
        let mut sizes: Vec<i32> = Vec::with_capacity(all.len());
        for rs in &all {
            if to_add != 0 {
                let p = rs_proportion(rs, d, to_add, added);
                sizes.push(rs_replicas(rs) + p);
                added += p;
            } else {
                sizes.push(rs_replicas(rs));
            }
        }
        for (i, rs) in all.iter().enumerate() {
            if i == 0 && to_add != 0 {
                sizes[0] = (sizes[0] + to_add - added).max(0);
            }
            self.scale_rs(rs, sizes[i], d).await?;
        }
        Ok(())
    }

    /// Upstream's `cleanupDeployment`: keep `revisionHistoryLimit` old ReplicaSets.
    async fn cleanup(&self, d: &Deployment, old: &[ReplicaSet]) -> Result<()> {
        let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - limit as i64;
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| by_revision(a, b));
        for rs in cleanable.into_iter().take(diff as usize) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if rs_status_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            let ns = rs.namespace().unwrap_or_default();
            if let Err(e) = self
                .rs_api(&ns)
                .delete(&rs.name_any(), &DeleteParams::default())
                .await
            {
                let e = Error::api("delete", format!("replicaset {ns}/{}", rs.name_any()), e);
                if !e.is_not_found() {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    async fn rollout_rolling(&self, d: &mut Deployment, rss: &[ReplicaSet]) -> Result<()> {
        let (new_rs, old) = self.get_all_rss_and_sync_revision(d, rss, true).await?;
        let Some(new_rs) = new_rs else {
            return Ok(());
        };
        let mut all = old.clone();
        all.push(new_rs.clone());

        // Scale up, if we can.
        let want = d_replicas(d);
        let target = if rs_replicas(&new_rs) > want {
            Some(want)
        } else if rs_replicas(&new_rs) < want {
            Some(new_rs_new_replicas(d, &all, &new_rs))
        } else {
            None
        };
        if let Some(t) = target {
            let (scaled, updated) = self.scale_rs(&new_rs, t, d).await?;
            if scaled {
                let mut all = old.clone();
                all.push(updated.clone());
                return self.sync_rollout_status(d, &all, Some(&updated)).await;
            }
        }

        // Scale down, if we can.
        if self
            .reconcile_old_rss(d, &all, &active(&old), &new_rs)
            .await?
        {
            let (new_rs, old) = self.refresh(d, Some(new_rs), old);
            let mut all = old;
            all.extend(new_rs.clone());
            return self.sync_rollout_status(d, &all, new_rs.as_ref()).await;
        }
        let cur = d.status.clone().unwrap_or_default();
        if deployment_complete(d, &cur) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &all, Some(&new_rs)).await
    }

    async fn reconcile_old_rss(
        &self,
        d: &Deployment,
        all: &[ReplicaSet],
        old: &[ReplicaSet],
        new_rs: &ReplicaSet,
    ) -> Result<bool> {
        if sum_spec(old) == 0 {
            return Ok(false);
        }
        let all_pods = sum_spec(all);
        let min_available = d_replicas(d) - max_unavailable(d);
        let new_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Unhealthy old replicas first: removing them costs no availability.
        let mut old: Vec<ReplicaSet> = old.to_vec();
        old.sort_by(by_creation);
        let mut cleaned = 0;
        for rs in old.iter_mut() {
            if cleaned >= max_scaled_down {
                break;
            }
            if rs_replicas(rs) == 0 || rs_replicas(rs) == rs_available(rs) {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(rs_replicas(rs) - rs_available(rs));
            let target = rs_replicas(rs) - down;
            match self.scale_rs(rs, target, d).await {
                Ok((_, updated)) => *rs = updated,
                // Upstream ignores failures here; the next sync retries.
                Err(_) => return Ok(false),
            }
            cleaned += down;
        }
        // Then scale down as far as maxUnavailable allows.
        let mut all2 = old.clone();
        all2.push(new_rs.clone());
        let available: i32 = all2.iter().map(rs_available).sum();
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for rs in old.iter() {
                if scaled >= total {
                    break;
                }
                if rs_replicas(rs) == 0 {
                    continue;
                }
                let down = rs_replicas(rs).min(total - scaled);
                if self.scale_rs(rs, rs_replicas(rs) - down, d).await.is_err() {
                    return Ok(cleaned + scaled > 0);
                }
                scaled += down;
            }
        }
        Ok(cleaned + scaled > 0)
    }

    async fn rollout_recreate(&self, d: &mut Deployment, rss: &[ReplicaSet]) -> Result<()> {
        // Never create the new ReplicaSet before the old pods are gone.
        let (mut new_rs, mut old) = self.get_all_rss_and_sync_revision(d, rss, false).await?;
        let mut scaled_down = false;
        for o in active(&old) {
            let (scaled, _) = self.scale_rs(&o, 0, d).await?;
            scaled_down |= scaled;
        }
        if scaled_down {
            let (n, o) = self.refresh(d, new_rs, old);
            let mut all = o;
            all.extend(n.clone());
            return self.sync_rollout_status(d, &all, n.as_ref()).await;
        }
        if self.old_pods_running(new_rs.as_ref(), &old) {
            let mut all = old.clone();
            all.extend(new_rs.clone());
            return self.sync_rollout_status(d, &all, new_rs.as_ref()).await;
        }
        if new_rs.is_none() {
            let (n, o) = self.get_all_rss_and_sync_revision(d, rss, true).await?;
            new_rs = n;
            old = o;
        }
        if let Some(n) = &new_rs {
            let (_, updated) = self.scale_rs(n, d_replicas(d), d).await?;
            new_rs = Some(updated);
        }
        let cur = d.status.clone().unwrap_or_default();
        if deployment_complete(d, &cur) {
            self.cleanup(d, &old).await?;
        }
        let mut all = old;
        all.extend(new_rs.clone());
        self.sync_rollout_status(d, &all, new_rs.as_ref()).await
    }

    /// Whether an old ReplicaSet still reports pods or still has a non-terminal pod.
    fn old_pods_running(&self, new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> bool {
        if sum_status(old) > 0 {
            return true;
        }
        let new_uid = new_rs.and_then(|n| n.metadata.uid.clone());
        old.iter().any(|rs| {
            let uid = rs.metadata.uid.clone().unwrap_or_default();
            if Some(&uid) == new_uid.as_ref() {
                return false;
            }
            self.pods
                .by_index(BY_CONTROLLER, &uid)
                .iter()
                .any(|p| !util::is_pod_terminal(p))
        })
    }

    /// Upstream's `syncRolloutStatus`: status plus the Progressing condition.
    async fn sync_rollout_status(
        &self,
        d: &Deployment,
        all: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<()> {
        let now = Utc::now();
        let mut s = calculate_status(all, new_rs, d, now);
        if progress_deadline(d).is_none() {
            remove_condition(&mut s, "Progressing");
        }
        let cur = d.status.clone().unwrap_or_default();
        let cur_cond = get_condition(&cur, "Progressing").cloned();
        let complete_before = s.replicas == s.updated_replicas
            && cur_cond.as_ref().and_then(|c| c.reason.as_deref())
                == Some(reason::NEW_RS_AVAILABLE);
        if progress_deadline(d).is_some() && !complete_before {
            let subject = match new_rs {
                Some(n) => format!("ReplicaSet {:?}", n.name_any()),
                None => format!("Deployment {:?}", d.name_any()),
            };
            if deployment_complete(d, &s) {
                set_condition(
                    &mut s,
                    new_condition(
                        "Progressing",
                        "True",
                        reason::NEW_RS_AVAILABLE,
                        format!("{subject} has successfully progressed."),
                        now,
                    ),
                );
            } else if deployment_progressing(d, &s) {
                let mut c = new_condition(
                    "Progressing",
                    "True",
                    reason::RS_UPDATED,
                    format!("{subject} is progressing."),
                    now,
                );
                if let Some(cur) = &cur_cond {
                    if cur.status == "True" {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_condition(&mut s, "Progressing");
                }
                set_condition(&mut s, c);
            } else if deployment_timed_out(d, &s, now) {
                set_condition(
                    &mut s,
                    new_condition(
                        "Progressing",
                        "False",
                        reason::TIMED_OUT,
                        format!("{subject} has timed out progressing."),
                        now,
                    ),
                );
            }
        }
        match replica_failure(all, new_rs) {
            Some(c) => set_condition(&mut s, c),
            None => remove_condition(&mut s, "ReplicaFailure"),
        }
        let s = normalize(s);
        if normalize(cur) == s {
            self.requeue_stuck(d, &s, now);
            return Ok(());
        }
        self.write_status(d, s).await
    }

    /// Upstream's `requeueStuckDeployment`: check the progress deadline when it falls due.
    fn requeue_stuck(&self, d: &Deployment, new: &DeploymentStatus, now: DateTime<Utc>) {
        let Some(deadline) = progress_deadline(d) else {
            return;
        };
        let cur = d.status.clone().unwrap_or_default();
        let Some(c) = get_condition(&cur, "Progressing") else {
            return;
        };
        if deployment_complete(d, new) || c.reason.as_deref() == Some(reason::TIMED_OUT) {
            return;
        }
        let Some(from) = c.last_update_time.as_ref().map(chrono_of) else {
            return;
        };
        let after = from + chrono::Duration::seconds(deadline as i64) - now;
        let key = key_of(d);
        match after.to_std() {
            Ok(a) if a >= Duration::from_secs(1) => {
                self.queue.add_after(key, a + Duration::from_secs(1))
            }
            _ => self.queue.add_rate_limited(key),
        }
    }
}

/// The ReplicaFailure condition of the new ReplicaSet, else of any ReplicaSet.
fn replica_failure(all: &[ReplicaSet], new_rs: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let conv = |rs: &ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "ReplicaFailure"))
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
    };
    new_rs.and_then(conv).or_else(|| all.iter().find_map(conv))
}

fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.annotations_mut();
    let mut changed = false;
    for (k, v) in [
        (DESIRED_REPLICAS_ANNOTATION, desired),
        (MAX_REPLICAS_ANNOTATION, max),
    ] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

/// Upstream's `SetNewReplicaSetAnnotations`: copies the deployment's annotations, raises
/// the revision (recording the previous ones in the revision history when an old
/// ReplicaSet becomes new again, as `rollout undo` does) and, on create, the replica
/// annotations. Whether anything changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: &str,
    exists: bool,
) -> bool {
    let mut changed = false;
    let d_ann = d.annotations().clone();
    let a = rs.annotations_mut();
    for (k, v) in d_ann {
        if skip_copy(&k) || a.get(&k) == Some(&v) {
            continue;
        }
        a.insert(k, v);
        changed = true;
    }
    let old_revision = a.get(REVISION_ANNOTATION).cloned();
    let old_int = match old_revision.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(v) => v,
            Err(_) => return false,
        },
    };
    let Ok(new_int) = new_revision.parse::<i64>() else {
        return false;
    };
    if old_int < new_int {
        a.insert(REVISION_ANNOTATION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old_revision.filter(|o| !o.is_empty()) {
            let history = a
                .get(REVISION_HISTORY_ANNOTATION)
                .cloned()
                .unwrap_or_default();
            if history.is_empty() {
                a.insert(REVISION_HISTORY_ANNOTATION.into(), old);
            } else {
                let mut revs: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REV_HISTORY_CHARS && start < revs.len() {
                    total -= revs[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REV_HISTORY_CHARS {
                    revs = revs.split_off(start);
                    revs.push(&old);
                    let joined = revs.join(",");
                    a.insert(REVISION_HISTORY_ANNOTATION.into(), joined);
                }
            }
        }
    }
    if !exists && set_replicas_annotations(rs, d_replicas(d), d_replicas(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};

    fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rs(name: &str, replicas: i32, max_ann: Option<i32>) -> ReplicaSet {
        let mut r = ReplicaSet::default();
        r.metadata.name = Some(name.into());
        set_rs_replicas(&mut r, replicas);
        if let Some(m) = max_ann {
            r.annotations_mut()
                .insert(MAX_REPLICAS_ANNOTATION.into(), m.to_string());
        }
        r
    }

    #[test]
    fn fenceposts_as_upstream() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(
            resolve_fenceposts(&deployment(10, pct("25%"), pct("25%"))),
            (3, 2)
        );
        assert_eq!(
            resolve_fenceposts(&deployment(1, pct("0%"), pct("1%"))),
            (0, 1)
        );
        assert_eq!(
            resolve_fenceposts(&deployment(2, IntOrString::Int(0), IntOrString::Int(0))),
            (0, 1)
        );
        assert_eq!(
            max_unavailable(&deployment(3, IntOrString::Int(0), IntOrString::Int(5))),
            3
        );
        assert!(scaled_value(&pct("abc"), 10, true).is_err());
    }

    #[test]
    fn new_rs_scale_up_respects_surge() {
        let d = deployment(10, IntOrString::Int(3), IntOrString::Int(2));
        let old = rs("old", 10, None);
        let new = rs("new", 0, None);
        assert_eq!(
            new_rs_new_replicas(&d, &[old.clone(), new.clone()], &new),
            3
        );
        let old8 = rs("old", 8, None);
        let new3 = rs("new", 3, None);
        assert_eq!(new_rs_new_replicas(&d, &[old8, new3.clone()], &new3), 5);
    }

    #[test]
    fn proportions_follow_max_replicas_annotation() {
        // 10 -> 20 replicas with surge 0 while two ReplicaSets share the load 6/4.
        let d = deployment(20, IntOrString::Int(0), IntOrString::Int(1));
        let a = rs("a", 6, Some(10));
        let b = rs("b", 4, Some(10));
        assert_eq!(rs_proportion(&a, &d, 10, 0), 6);
        assert_eq!(rs_proportion(&b, &d, 10, 6), 4);
    }

    #[test]
    fn hash_is_stable_and_collision_count_changes_it() {
        let t = PodTemplateSpec::default();
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t, None));
        assert_ne!(h, compute_hash(&t, Some(1)));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn revision_history_on_rollback() {
        let d = Deployment::default();
        let mut r = rs("a", 1, None);
        r.annotations_mut()
            .insert(REVISION_ANNOTATION.into(), "1".into());
        assert!(set_new_rs_annotations(&d, &mut r, "3", true));
        assert_eq!(r.annotations()[REVISION_ANNOTATION], "3");
        assert_eq!(r.annotations()[REVISION_HISTORY_ANNOTATION], "1");
        assert!(set_new_rs_annotations(&d, &mut r, "5", true));
        assert_eq!(r.annotations()[REVISION_HISTORY_ANNOTATION], "1,3");
        // A lower revision never lowers it.
        assert!(!set_new_rs_annotations(&d, &mut r, "2", true));
        assert_eq!(revision(&r), 5);
    }

    #[test]
    fn conditions_keep_transition_time() {
        let now = Utc::now();
        let mut s = DeploymentStatus::default();
        set_condition(
            &mut s,
            new_condition(
                "Progressing",
                "True",
                reason::NEW_RS_CREATED,
                "a".into(),
                now - chrono::Duration::hours(1),
            ),
        );
        set_condition(
            &mut s,
            new_condition("Progressing", "True", reason::RS_UPDATED, "b".into(), now),
        );
        let c = get_condition(&s, "Progressing")
            .cloned()
            .unwrap_or_else(|| new_condition("x", "x", "x", String::new(), now));
        assert_eq!(c.reason.as_deref(), Some(reason::RS_UPDATED));
        assert_eq!(
            c.last_transition_time,
            Some(time_of(now - chrono::Duration::hours(1)))
        );
    }
}
