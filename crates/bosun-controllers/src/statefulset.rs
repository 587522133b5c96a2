//! The StatefulSet controller, as upstream's `pkg/controller/statefulset`: pods with
//! stable identities `<set>-<ordinal>` (hostname the pod name, subdomain the governing
//! `serviceName`, labels `statefulset.kubernetes.io/pod-name` and
//! `apps.kubernetes.io/pod-index`), each with its own PVCs `<template>-<set>-<ordinal>`
//! from `volumeClaimTemplates` (created before the pod, never deleted by scaling; owned by
//! the set when `persistentVolumeClaimRetentionPolicy.whenDeleted` is `Delete`).
//!
//! `OrderedReady` creates pods in ordinal order, each Running and Ready before the next,
//! and removes them in reverse order, one at a time; `Parallel` creates and deletes all at
//! once. Templates are ControllerRevisions ([`crate::history`]); a `RollingUpdate` deletes
//! pods not at the update revision from the highest ordinal down to `partition`, one at a
//! time and waiting for each to be healthy again; `OnDelete` leaves replacement to the
//! user. Status: replicas, ready/available/current/updated counts, current and update
//! revision, observedGeneration, collisionCount.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bosun_api::selector::LabelSelector;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::claim::Claim;
use crate::events::Recorder;
use crate::history::{self, CONTROLLER_REVISION_HASH};
use crate::informer::{key_of, Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::replicaset::{add_owner_indexes, BY_CONTROLLER, ORPHANS};
use crate::util::{self, controller_ref, is_pod_available, is_pod_ready, pod_phase};
use crate::{Error, Result};

const COMPONENT: &str = "statefulset-controller";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of `pod` if it is named `<set>-<ordinal>`.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || (rest.len() > 1 && rest.starts_with('0')) {
        return None;
    }
    rest.parse().ok().filter(|o: &i32| *o >= 0)
}

/// The name of the PVC from `template` for the pod of `ordinal`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

fn replicas(s: &StatefulSetSpec) -> i32 {
    s.replicas.unwrap_or(1).max(0)
}

fn start_ordinal(s: &StatefulSetSpec) -> i32 {
    s.ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0)
}

fn is_parallel(s: &StatefulSetSpec) -> bool {
    s.pod_management_policy.as_deref() == Some("Parallel")
}

fn update_type(s: &StatefulSetSpec) -> &str {
    s.update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

fn partition(s: &StatefulSetSpec) -> Option<i32> {
    s.update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()
        .map(|r| r.partition.unwrap_or(0))
}

fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

fn is_running_and_ready(p: &Pod) -> bool {
    pod_phase(p) == "Running" && is_pod_ready(p)
}

fn is_healthy(p: &Pod) -> bool {
    is_running_and_ready(p) && !is_terminating(p)
}

fn revision_of(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(CONTROLLER_REVISION_HASH)
        .map(String::as_str)
}

/// The pod of `ordinal` built from `template` at `revision` (upstream's
/// `newStatefulSetPod` with identity and storage applied).
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let set_name = set.name_any();
    let name = format!("{set_name}-{ordinal}");
    let spec = set.spec.clone().unwrap_or_default();
    let ns = set.namespace().unwrap_or_default();
    let mut pod = util::pod_from_template(template, &ns, "", Some(util::new_controller_ref(set)));
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(CONTROLLER_REVISION_HASH.into(), revision.to_string());
    let ps = pod.spec.get_or_insert_with(Default::default);
    ps.hostname = Some(name);
    if !spec.service_name.clone().unwrap_or_default().is_empty() {
        ps.subdomain = spec.service_name.clone();
    }
    for t in spec.volume_claim_templates.iter().flatten() {
        let tname = t.metadata.name.clone().unwrap_or_default();
        let vol = Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&tname, &set_name, ordinal),
                read_only: None,
            }),
            ..Default::default()
        };
        let vols = ps.volumes.get_or_insert_with(Vec::new);
        vols.retain(|v| v.name != tname);
        vols.push(vol);
    }
    pod
}

/// What a sync does next, decided from the pods alone (upstream's
/// `updateStatefulSet` ordering rules).
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Create the pod of this ordinal (at the current revision when `current`).
    Create { ordinal: i32, current: bool },
    /// Delete this pod (failed, condemned, or out of date).
    Delete(String),
}

/// The steps of one sync, in order. `pods` maps ordinals to the set's pods.
pub fn steps(
    spec: &StatefulSetSpec,
    pods: &BTreeMap<i32, Arc<Pod>>,
    current_replicas: i32,
    update_revision: &str,
    now: DateTime<Utc>,
) -> Vec<Step> {
    let monotonic = !is_parallel(spec);
    let start = start_ordinal(spec);
    let end = start + replicas(spec);
    let mut out = Vec::new();
    let create_current = |ord: i32| {
        if update_type(spec) != "RollingUpdate" {
            return false;
        }
        match partition(spec) {
            Some(p) => ord < p,
            None => ord - start < current_replicas,
        }
    };
    // The replicas, lowest ordinal first.
    for ord in start..end {
        match pods.get(&ord) {
            None => {
                out.push(Step::Create {
                    ordinal: ord,
                    current: create_current(ord),
                });
                if monotonic {
                    return out;
                }
            }
            Some(p) if !is_terminating(p) && matches!(pod_phase(p), "Failed" | "Succeeded") => {
                out.push(Step::Delete(p.name_any()));
                if monotonic {
                    return out;
                }
            }
            Some(p)
                if is_terminating(p)
                    || !is_running_and_ready(p)
                    || !is_pod_available(p, spec.min_ready_seconds.unwrap_or(0), now) =>
            {
                if monotonic {
                    return out;
                }
            }
            Some(_) => {}
        }
    }
    // Condemned pods, highest ordinal first.
    let condemned: Vec<&Arc<Pod>> = pods
        .iter()
        .rev()
        .filter(|(o, _)| **o < start || **o >= end)
        .map(|(_, p)| p)
        .collect();
    let unhealthy = pods.values().filter(|p| !is_healthy(p)).count();
    for p in &condemned {
        if is_terminating(p) {
            if monotonic {
                return out;
            }
            continue;
        }
        // In order, the set must be healthy, but the pod about to go may be the unhealthy one.
        if monotonic && unhealthy > usize::from(!is_healthy(p)) {
            return out;
        }
        out.push(Step::Delete(p.name_any()));
        if monotonic {
            return out;
        }
    }
    if !out.is_empty() || update_type(spec) != "RollingUpdate" {
        return out;
    }
    // Rolling update: highest ordinal first, down to the partition, one at a time.
    let min = partition(spec).unwrap_or(0).max(start);
    for ord in (min..end).rev() {
        let Some(p) = pods.get(&ord) else { continue };
        if revision_of(p) != Some(update_revision) && !is_terminating(p) {
            out.push(Step::Delete(p.name_any()));
            return out;
        }
        if !is_healthy(p) {
            return out;
        }
    }
    out
}

/// The status the pods say (upstream's `computeReplicaStatus` and `completeRollingUpdate`).
pub fn compute_status(
    set: &StatefulSet,
    pods: &[Arc<Pod>],
    current_revision: &str,
    update_revision: &str,
    collision_count: i32,
) -> StatefulSetStatus {
    let spec = set.spec.clone().unwrap_or_default();
    let mrs = spec.min_ready_seconds.unwrap_or(0);
    let now = Utc::now();
    let mut st = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        current_revision: Some(current_revision.to_string()),
        update_revision: Some(update_revision.to_string()),
        collision_count: Some(collision_count),
        ..Default::default()
    };
    let (mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0);
    for p in pods {
        if !pod_phase(p).is_empty() {
            st.replicas += 1;
        }
        if is_running_and_ready(p) {
            ready += 1;
            if is_pod_available(p, mrs, now) {
                available += 1;
            }
        }
        if !pod_phase(p).is_empty() && !is_terminating(p) {
            if revision_of(p) == Some(current_revision) {
                current += 1;
            }
            if revision_of(p) == Some(update_revision) {
                updated += 1;
            }
        }
    }
    if update_type(&spec) == "RollingUpdate" && updated == st.replicas && ready == st.replicas {
        current = updated;
        st.current_revision = Some(update_revision.to_string());
    }
    st.ready_replicas = Some(ready);
    st.available_replicas = Some(available);
    st.current_replicas = Some(current);
    st.updated_replicas = Some(updated);
    st
}

pub(crate) struct StatefulSetController {
    client: Client,
    sets: Informer<StatefulSet>,
    pods: Informer<Pod>,
    revisions: history::Revisions,
    queue: WorkQueue<String>,
    recorder: Recorder,
}

impl StatefulSetController {
    pub(crate) fn new(informers: &Informers, recorder: Recorder) -> Arc<Self> {
        let pods = informers.get::<Pod>();
        add_owner_indexes(&pods);
        let revisions = history::Revisions::new(informers.client().clone());
        let c = Arc::new(StatefulSetController {
            client: informers.client().clone(),
            sets: informers.get::<StatefulSet>(),
            pods,
            revisions,
            queue: WorkQueue::new(),
            recorder,
        });
        let me = Arc::downgrade(&c);
        c.sets.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let s = match ch {
                Change::Added(o) | Change::Deleted(o) => o,
                Change::Updated { new, .. } => new,
            };
            c.queue.add(key_of(s.as_ref()));
        });
        let me = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let (old, new) = match ch {
                Change::Added(p) | Change::Deleted(p) => (None, p),
                Change::Updated { old, new } => (Some(old), new),
            };
            for p in old.into_iter().chain([new]) {
                if let Some(key) = c.owner_key(p) {
                    c.queue.add(key.clone());
                    if let Some(set) = c.sets.get_key(&key) {
                        let mrs = set
                            .spec
                            .as_ref()
                            .and_then(|s| s.min_ready_seconds)
                            .unwrap_or(0);
                        if mrs > 0 && is_pod_ready(new) {
                            c.queue.add_after(key, Duration::from_secs(mrs as u64 + 1));
                        }
                    }
                }
            }
            if controller_ref(&new.metadata).is_none() {
                let ns = new.metadata.namespace.as_deref().unwrap_or("");
                for s in c.sets.list_namespace(ns) {
                    let matches = LabelSelector::from_api(s.spec.as_ref().map(|s| &s.selector))
                        .is_ok_and(|sel| {
                            !sel.is_empty() && sel.matches_labels(new.metadata.labels.as_ref())
                        });
                    if matches {
                        c.queue.add(key_of(s.as_ref()));
                    }
                }
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.sets.wait_synced().await;
        self.pods.wait_synced().await;
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
        if r.kind != "StatefulSet" || util::group_of(&r.api_version) != "apps" {
            return None;
        }
        let ns = p.metadata.namespace.as_deref().unwrap_or("");
        let s = self.sets.get(ns, &r.name)?;
        (s.metadata.uid.as_deref() == Some(r.uid.as_str())).then(|| key_of(s.as_ref()))
    }

    pub(crate) async fn sync(&self, key: &str) -> Result<()> {
        let Some(set) = self.sets.get_key(key) else {
            return Ok(());
        };
        let Some(spec) = set.spec.clone() else {
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
        let name = set.name_any();
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let ns = set.namespace().unwrap_or_default();
        let mut candidates = self.pods.by_index(BY_CONTROLLER, &uid);
        candidates.extend(self.pods.by_index(ORPHANS, &ns));
        // Only pods named as members can be claimed (upstream's `isMemberOf`).
        candidates.retain(|p| ordinal_of(&name, &p.name_any()).is_some());
        let pods = Claim::new(&self.client, set.as_ref(), &selector)
            .claim(candidates)
            .await?;
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let by_ordinal: BTreeMap<i32, Arc<Pod>> = pods
            .iter()
            .filter_map(|p| Some((ordinal_of(&name, &p.name_any())?, p.clone())))
            .collect();

        let revs = self.revisions.owned_by(&uid);
        let old_status = set.status.clone().unwrap_or_default();
        let mut collisions = old_status.collision_count.unwrap_or(0);
        let update = self
            .revisions
            .ensure(set.as_ref(), &spec.template, &mut collisions)
            .await?;
        let update_name = update.name_any();
        let current = old_status
            .current_revision
            .as_ref()
            .and_then(|c| revs.iter().find(|r| &r.name_any() == c))
            .map(|r| (**r).clone())
            .unwrap_or_else(|| update.clone());
        let current_name = current.name_any();
        let current_template =
            history::template_of(&current).unwrap_or_else(|| spec.template.clone());

        let plan = steps(
            &spec,
            &by_ordinal,
            old_status.current_replicas.unwrap_or(0),
            &update_name,
            Utc::now(),
        );
        let result = self
            .execute(
                &set,
                &spec,
                plan,
                &current_template,
                &current_name,
                &update_name,
            )
            .await;

        let st = compute_status(&set, &pods, &current_name, &update_name, collisions);
        if st != old_status {
            self.write_status(&set, &st).await?;
        }
        let live: std::collections::HashSet<String> = pods
            .iter()
            .filter_map(|p| revision_of(p).map(str::to_string))
            .collect();
        let limit = spec.revision_history_limit.unwrap_or(10);
        if let Err(e) = self
            .revisions
            .truncate(
                &uid,
                &live,
                &[current_name.as_str(), update_name.as_str()],
                limit,
            )
            .await
        {
            tracing::debug!(controller = COMPONENT, key, error = %e, "history cleanup failed");
        }
        result
    }

    async fn execute(
        &self,
        set: &StatefulSet,
        spec: &StatefulSetSpec,
        plan: Vec<Step>,
        current_template: &PodTemplateSpec,
        current_rev: &str,
        update_rev: &str,
    ) -> Result<()> {
        let results = join_all(plan.into_iter().map(|step| async move {
            match step {
                Step::Create { ordinal, current } => {
                    let pod = if current {
                        new_pod(set, current_template, ordinal, current_rev)
                    } else {
                        new_pod(set, &spec.template, ordinal, update_rev)
                    };
                    self.create_pod(set, spec, ordinal, &pod).await
                }
                Step::Delete(pod_name) => self.delete_pod(set, spec, &pod_name).await,
            }
        }))
        .await;
        Error::aggregate(results.into_iter().filter_map(|r| r.err()).collect())
    }

    async fn create_pod(
        &self,
        set: &StatefulSet,
        spec: &StatefulSetSpec,
        ordinal: i32,
        pod: &Pod,
    ) -> Result<()> {
        let ns = set.namespace().unwrap_or_default();
        let set_name = set.name_any();
        let pod_name = pod.name_any();
        self.create_claims(set, spec, ordinal, &pod_name).await?;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match api.create(&PostParams::default(), pod).await {
            Ok(_) => {
                self.recorder.record(
                    set,
                    "Normal",
                    "SuccessfulCreate",
                    format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
                );
                Ok(())
            }
            Err(e) => {
                let e = Error::api("create", format!("pod {ns}/{pod_name}"), e);
                if e.is_already_exists() || e.is_namespace_terminating() {
                    return Ok(());
                }
                self.recorder.record(
                    set,
                    "Warning",
                    "FailedCreate",
                    format!("create Pod {pod_name} in StatefulSet {set_name} failed error: {e}"),
                );
                Err(e)
            }
        }
    }

    async fn delete_pod(&self, set: &StatefulSet, spec: &StatefulSetSpec, pod: &str) -> Result<()> {
        self.hand_claims_to_condemned(set, spec, pod).await?;
        let ns = set.namespace().unwrap_or_default();
        let set_name = set.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match api.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder.record(
                    set,
                    "Normal",
                    "SuccessfulDelete",
                    format!("delete Pod {pod} in StatefulSet {set_name} successful"),
                );
                Ok(())
            }
            Err(e) => {
                let e = Error::api("delete", format!("pod {ns}/{pod}"), e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// `persistentVolumeClaimRetentionPolicy.whenScaled: Delete`: before a pod beyond the
    /// replicas goes, its claims get the pod as owner, so the garbage collector removes
    /// them with it (upstream's `updateClaimOwnerRefForSetAndPod`).
    async fn hand_claims_to_condemned(
        &self,
        set: &StatefulSet,
        spec: &StatefulSetSpec,
        pod: &str,
    ) -> Result<()> {
        let when_scaled = spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .and_then(|p| p.when_scaled.as_deref());
        if when_scaled != Some("Delete") {
            return Ok(());
        }
        let set_name = set.name_any();
        let Some(ord) = ordinal_of(&set_name, pod) else {
            return Ok(());
        };
        let start = start_ordinal(spec);
        if ord >= start && ord < start + replicas(spec) {
            return Ok(());
        }
        let ns = set.namespace().unwrap_or_default();
        let Some(uid) = self.pods.get(&ns, pod).and_then(|p| p.metadata.uid.clone()) else {
            return Ok(());
        };
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        for t in spec.volume_claim_templates.iter().flatten() {
            let name = claim_name(&t.metadata.name.clone().unwrap_or_default(), &set_name, ord);
            let patch = json!({"metadata": {"ownerReferences": [{
                "apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid,
            }]}});
            if let Err(e) = api
                .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                let e = Error::api("update", format!("persistentvolumeclaim {ns}/{name}"), e);
                if !e.is_not_found() {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Creates the pod's missing PVCs from the claim templates.
    async fn create_claims(
        &self,
        set: &StatefulSet,
        spec: &StatefulSetSpec,
        ordinal: i32,
        pod: &str,
    ) -> Result<()> {
        let ns = set.namespace().unwrap_or_default();
        let set_name = set.name_any();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let owned = spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .and_then(|p| p.when_deleted.as_deref())
            == Some("Delete");
        let match_labels = spec.selector.match_labels.clone().unwrap_or_default();
        for t in spec.volume_claim_templates.iter().flatten() {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let name = claim_name(&tname, &set_name, ordinal);
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(match_labels.clone());
            let pvc = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    owner_references: owned.then(|| vec![util::new_controller_ref(set)]),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            };
            match api.create(&PostParams::default(), &pvc).await {
                Ok(_) => self.recorder.record(
                    set,
                    "Normal",
                    "SuccessfulCreate",
                    format!("create Claim {name} Pod {pod} in StatefulSet {set_name} success"),
                ),
                Err(e) => {
                    let e = Error::api("create", format!("persistentvolumeclaim {ns}/{name}"), e);
                    if !e.is_already_exists() {
                        self.recorder.record(
                            set,
                            "Warning",
                            "FailedCreate",
                            format!("create Claim {name} for Pod {pod} in StatefulSet {set_name} failed error: {e}"),
                        );
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    async fn write_status(&self, set: &StatefulSet, st: &StatefulSetStatus) -> Result<()> {
        let ns = set.namespace().unwrap_or_default();
        let name = set.name_any();
        let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &ns);
        let patch = json!({"status": {
            "replicas": st.replicas,
            "readyReplicas": st.ready_replicas,
            "availableReplicas": st.available_replicas,
            "currentReplicas": st.current_replicas,
            "updatedReplicas": st.updated_replicas,
            "currentRevision": st.current_revision,
            "updateRevision": st.update_revision,
            "observedGeneration": st.observed_generation,
            "collisionCount": st.collision_count,
        }});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api("update status of", format!("statefulset {ns}/{name}"), e);
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
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn spec(v: serde_json::Value) -> StatefulSetSpec {
        serde_json::from_value(v).unwrap_or_default()
    }

    fn pod(name: &str, rev: &str, phase: &str, ready: bool, terminating: bool) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.labels = Some([(CONTROLLER_REVISION_HASH.to_string(), rev.to_string())].into());
        if terminating {
            p.metadata.deletion_timestamp = Some(util::time_of(Utc::now()));
        }
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        Arc::new(p)
    }

    fn pods(v: Vec<Arc<Pod>>) -> BTreeMap<i32, Arc<Pod>> {
        v.into_iter()
            .filter_map(|p| Some((ordinal_of("web", &p.name_any())?, p)))
            .collect()
    }

    fn base(replicas: i32, policy: &str) -> StatefulSetSpec {
        spec(json!({
            "replicas": replicas,
            "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": "web"}},
            "serviceName": "web",
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        }))
    }

    #[test]
    fn ordinals_parse_strictly() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("web", "web-db-1"), None);
        assert_eq!(claim_name("www", "web", 2), "www-web-2");
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time_in_order() {
        let s = base(3, "OrderedReady");
        assert_eq!(
            steps(&s, &pods(vec![]), 0, "r1", Utc::now()),
            [Step::Create {
                ordinal: 0,
                current: false
            }]
        );
        // web-0 exists but is not ready: wait.
        let p = pods(vec![pod("web-0", "r1", "Pending", false, false)]);
        assert!(steps(&s, &p, 0, "r1", Utc::now()).is_empty());
        let p = pods(vec![pod("web-0", "r1", "Running", true, false)]);
        assert_eq!(
            steps(&s, &p, 0, "r1", Utc::now()),
            [Step::Create {
                ordinal: 1,
                current: false
            }]
        );
        // A failed pod is deleted first (and recreated on the next sync).
        let p = pods(vec![
            pod("web-0", "r1", "Failed", false, false),
            pod("web-1", "r1", "Running", true, false),
        ]);
        assert_eq!(
            steps(&s, &p, 0, "r1", Utc::now()),
            [Step::Delete("web-0".into())]
        );
    }

    #[test]
    fn ordered_ready_waits_min_ready_seconds() {
        let mut s = base(2, "OrderedReady");
        s.min_ready_seconds = Some(30);
        let mut p0 = (*pod("web-0", "r1", "Running", true, false)).clone();
        let ready_at = Utc::now() - chrono::Duration::seconds(10);
        if let Some(c) = p0
            .status
            .as_mut()
            .and_then(|st| st.conditions.as_mut())
            .and_then(|cs| cs.first_mut())
        {
            c.last_transition_time = Some(util::time_of(ready_at));
        }
        let p = pods(vec![Arc::new(p0)]);
        assert!(steps(&s, &p, 0, "r1", Utc::now()).is_empty());
        assert_eq!(
            steps(&s, &p, 0, "r1", ready_at + chrono::Duration::seconds(31)),
            [Step::Create {
                ordinal: 1,
                current: false
            }]
        );
    }

    #[test]
    fn parallel_creates_all_at_once() {
        let s = base(3, "Parallel");
        let p = pods(vec![pod("web-1", "r1", "Pending", false, false)]);
        assert_eq!(
            steps(&s, &p, 0, "r1", Utc::now()),
            [
                Step::Create {
                    ordinal: 0,
                    current: false
                },
                Step::Create {
                    ordinal: 2,
                    current: false
                }
            ]
        );
    }

    #[test]
    fn scale_down_in_reverse_one_at_a_time() {
        let s = base(1, "OrderedReady");
        let all = vec![
            pod("web-0", "r1", "Running", true, false),
            pod("web-1", "r1", "Running", true, false),
            pod("web-2", "r1", "Running", true, false),
        ];
        assert_eq!(
            steps(&s, &pods(all.clone()), 0, "r1", Utc::now()),
            [Step::Delete("web-2".into())]
        );
        let mut t = all.clone();
        t[2] = pod("web-2", "r1", "Running", true, true);
        assert!(
            steps(&s, &pods(t), 0, "r1", Utc::now()).is_empty(),
            "waits for web-2 to go"
        );
        let p = base(1, "Parallel");
        assert_eq!(
            steps(&p, &pods(all), 0, "r1", Utc::now()),
            [Step::Delete("web-2".into()), Step::Delete("web-1".into())]
        );
    }

    #[test]
    fn rolling_update_from_the_highest_ordinal_down_to_the_partition() {
        let mut s = base(3, "OrderedReady");
        let old = vec![
            pod("web-0", "r1", "Running", true, false),
            pod("web-1", "r1", "Running", true, false),
            pod("web-2", "r1", "Running", true, false),
        ];
        assert_eq!(
            steps(&s, &pods(old.clone()), 3, "r2", Utc::now()),
            [Step::Delete("web-2".into())]
        );
        let mut mid = old.clone();
        mid[2] = pod("web-2", "r2", "Running", false, false);
        assert!(
            steps(&s, &pods(mid.clone()), 3, "r2", Utc::now()).is_empty(),
            "waits for web-2"
        );
        mid[2] = pod("web-2", "r2", "Running", true, false);
        assert_eq!(
            steps(&s, &pods(mid), 3, "r2", Utc::now()),
            [Step::Delete("web-1".into())]
        );
        // With partition 2 only web-2 is updated; a recreated web-0 stays at the old revision.
        s.update_strategy = serde_json::from_value(
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
        )
        .ok();
        let done = vec![
            pod("web-1", "r1", "Running", true, false),
            pod("web-2", "r2", "Running", true, false),
        ];
        assert_eq!(
            steps(&s, &pods(done), 3, "r2", Utc::now()),
            [Step::Create {
                ordinal: 0,
                current: true
            }]
        );
        s.update_strategy = serde_json::from_value(json!({"type": "OnDelete"})).ok();
        assert!(steps(&s, &pods(old), 3, "r2", Utc::now()).is_empty());
    }

    #[test]
    fn identity_and_storage() {
        let set: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {
                "replicas": 1, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
            },
        }))
        .unwrap_or_default();
        let t = set.spec.clone().unwrap_or_default().template;
        let p = new_pod(&set, &t, 1, "web-abc");
        assert_eq!(p.name_any(), "web-1");
        let labels = p.labels();
        assert_eq!(
            labels.get(POD_NAME_LABEL).map(String::as_str),
            Some("web-1")
        );
        assert_eq!(labels.get(POD_INDEX_LABEL).map(String::as_str), Some("1"));
        assert_eq!(
            labels.get(CONTROLLER_REVISION_HASH).map(String::as_str),
            Some("web-abc")
        );
        let ps = p.spec.unwrap_or_default();
        assert_eq!(ps.hostname.as_deref(), Some("web-1"));
        assert_eq!(ps.subdomain.as_deref(), Some("nginx"));
        let vols = ps.volumes.unwrap_or_default();
        assert_eq!(
            vols[0]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("www-web-1")
        );
    }
}
