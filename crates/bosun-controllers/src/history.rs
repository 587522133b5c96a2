//! ControllerRevisions, as upstream's `pkg/controller/history`: the pod templates a
//! DaemonSet or StatefulSet has had, one revision object each (`<owner>-<hash>`, data a
//! strategic-merge patch that replaces `spec.template`), numbered, so that `kubectl
//! rollout history|undo` work and a StatefulSet can recreate pods at their old revision.
//!
//! [`Revisions`] probes once whether the server serves `controllerrevisions`; where it
//! does not, revisions are computed locally (the same names and hashes) and never
//! stored, so DaemonSets and StatefulSets still work, without history.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use serde_json::{json, Value};

use crate::informer::Informer;
use crate::replicaset::{add_owner_indexes, BY_CONTROLLER};
use crate::util;
use crate::{Error, Result};

/// A controller's view of ControllerRevisions: an informer when the server serves them.
pub struct Revisions {
    client: Client,
    informer: Informer<ControllerRevision>,
    supported: AtomicBool,
}

impl Revisions {
    pub fn new(client: Client) -> Revisions {
        let informer = Informer::new("controllerrevisions");
        add_owner_indexes(&informer);
        Revisions {
            client,
            informer,
            supported: AtomicBool::new(false),
        }
    }

    /// Probes the server, then (if it serves revisions) feeds the cache until dropped.
    /// `synced` is told once the cache is usable (or known to stay empty).
    pub async fn run(&self, synced: tokio::sync::oneshot::Sender<()>) {
        let api: Api<ControllerRevision> = Api::all(self.client.clone());
        let supported = loop {
            match api.list(&ListParams::default().limit(1)).await {
                Ok(_) => break true,
                Err(kube::Error::Api(s)) if s.code == 404 => break false,
                Err(e) => {
                    tracing::debug!(error = %e, "probing controllerrevisions, retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        };
        self.supported.store(supported, Ordering::SeqCst);
        if !supported {
            tracing::info!(
                "the server has no controllerrevisions: revisions are kept in memory only"
            );
            let _ = synced.send(());
            return;
        }
        let informer = self.informer.clone();
        let waiter = async move {
            informer.wait_synced().await;
            let _ = synced.send(());
        };
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        futures::join!(self.informer.clone().run(stream), waiter);
    }

    pub fn supported(&self) -> bool {
        self.supported.load(Ordering::SeqCst)
    }

    /// The revisions owned by the object with `uid`.
    pub fn owned_by(&self, uid: &str) -> Vec<Arc<ControllerRevision>> {
        self.informer.by_index(BY_CONTROLLER, uid)
    }

    /// [`ensure`], or the unsaved revision when the server keeps none.
    pub async fn ensure<O>(
        &self,
        owner: &O,
        template: &PodTemplateSpec,
        collision_count: &mut i32,
    ) -> Result<ControllerRevision>
    where
        O: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug,
    {
        let uid = owner.meta().uid.clone().unwrap_or_default();
        if self.supported() {
            let revs = self.owned_by(&uid);
            return ensure(&self.client, owner, &revs, template, collision_count).await;
        }
        Ok(local_revision(owner, template, *collision_count))
    }

    /// [`truncate`] when revisions are stored.
    pub async fn truncate(
        &self,
        uid: &str,
        live: &HashSet<String>,
        keep: &[&str],
        limit: i32,
    ) -> Result<()> {
        if !self.supported() {
            return Ok(());
        }
        truncate(&self.client, &self.owned_by(uid), live, keep, limit).await
    }
}

/// The revision object for `template` as it would be stored (number 1).
pub fn local_revision<O>(
    owner: &O,
    template: &PodTemplateSpec,
    collision_count: i32,
) -> ControllerRevision
where
    O: Resource<DynamicType = ()>,
{
    let data = revision_data(template);
    let hash = hash_of(&data, Some(collision_count));
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}-{hash}",
                owner.meta().name.clone().unwrap_or_default()
            )),
            namespace: owner.meta().namespace.clone(),
            labels: Some(labels),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision: 1,
    }
}

/// The label carrying a pod's (and a revision's) revision hash.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// Upstream's `rand.SafeEncodeString`.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// The revision data for `template`: a patch replacing the owner's template.
pub fn revision_data(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template a revision holds.
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// FNV-32a of the revision data and the collision count, safe-encoded (upstream's
/// `HashControllerRevision`).
pub fn hash_of(data: &Value, collision_count: Option<i32>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(&serde_json::to_vec(data).unwrap_or_default());
    if let Some(c) = collision_count.filter(|c| *c != 0) {
        feed(&(c as u32).to_le_bytes());
    }
    safe_encode(&h.to_string())
}

/// The highest revision number among `revs` (0 when there is none).
pub fn max_revision(revs: &[Arc<ControllerRevision>]) -> i64 {
    revs.iter().map(|r| r.revision).max().unwrap_or(0)
}

/// Revisions of the owner, oldest revision first.
pub fn sorted(mut revs: Vec<Arc<ControllerRevision>>) -> Vec<Arc<ControllerRevision>> {
    revs.sort_by_key(|r| (r.revision, r.name_any()));
    revs
}

/// Finds the revision holding `template` among the owner's `revs`, or creates it
/// (`<owner>-<hash>`, numbered one past the highest). An existing equal revision that is
/// not the newest is renumbered to be (a rollback). A name taken by a different template
/// bumps `collision_count` and tries again, as upstream.
pub async fn ensure<O>(
    client: &Client,
    owner: &O,
    revs: &[Arc<ControllerRevision>],
    template: &PodTemplateSpec,
    collision_count: &mut i32,
) -> Result<ControllerRevision>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug,
{
    let ns = owner.meta().namespace.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    let data = revision_data(template);
    let max = max_revision(revs);
    if let Some(found) = revs
        .iter()
        .filter(|r| r.data.as_ref().map(|d| &d.0) == Some(&data))
        .max_by_key(|r| r.revision)
    {
        if found.revision == max {
            return Ok((**found).clone());
        }
        let name = found.name_any();
        let patch = json!({"revision": max + 1});
        return api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::api("update", format!("controllerrevision {ns}/{name}"), e));
    }
    let owner_name = owner.meta().name.clone().unwrap_or_default();
    for _ in 0..10 {
        let hash = hash_of(&data, Some(*collision_count));
        let name = format!("{owner_name}-{hash}");
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(CONTROLLER_REVISION_HASH.into(), hash.clone());
        let rev = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: Some(labels),
                owner_references: Some(vec![util::new_controller_ref(owner)]),
                ..Default::default()
            },
            data: Some(RawExtension(data.clone())),
            revision: max + 1,
        };
        match api.create(&PostParams::default(), &rev).await {
            Ok(r) => return Ok(r),
            Err(e) => {
                let e = Error::api("create", format!("controllerrevision {ns}/{name}"), e);
                if !e.is_already_exists() {
                    return Err(e);
                }
                let existing = api
                    .get(&name)
                    .await
                    .map_err(|e| Error::api("get", format!("controllerrevision {ns}/{name}"), e))?;
                let ours = util::controller_ref(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == owner.meta().uid.as_ref());
                if ours && existing.data.as_ref().map(|d| &d.0) == Some(&data) {
                    return Ok(existing);
                }
                *collision_count += 1;
            }
        }
    }
    Err(Error::Invalid {
        what: format!("controllerrevision of {ns}/{owner_name}"),
        message: "too many hash collisions".into(),
    })
}

/// Deletes the oldest revisions beyond `limit` that no pod uses and that are neither
/// `keep` (the current and update revisions).
pub async fn truncate(
    client: &Client,
    revs: &[Arc<ControllerRevision>],
    live: &HashSet<String>,
    keep: &[&str],
    limit: i32,
) -> Result<()> {
    let candidates: Vec<Arc<ControllerRevision>> = sorted(revs.to_vec())
        .into_iter()
        .filter(|r| {
            let name = r.name_any();
            let hash = r
                .labels()
                .get(CONTROLLER_REVISION_HASH)
                .cloned()
                .unwrap_or_default();
            !live.contains(&name) && !live.contains(&hash) && !keep.contains(&name.as_str())
        })
        .collect();
    let excess = candidates.len().saturating_sub(limit.max(0) as usize);
    let mut errs = Vec::new();
    for r in candidates.into_iter().take(excess) {
        let ns = r.namespace().unwrap_or_default();
        let name = r.name_any();
        let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
        if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
            let e = Error::api("delete", format!("controllerrevision {ns}/{name}"), e);
            if !e.is_not_found() {
                errs.push(e);
            }
        }
    }
    Error::aggregate(errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips_and_hash_is_stable() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }))
        .unwrap_or_default();
        let d = revision_data(&t);
        assert_eq!(d["spec"]["template"]["$patch"], "replace");
        let rev = ControllerRevision {
            data: Some(RawExtension(d.clone())),
            ..Default::default()
        };
        assert_eq!(template_of(&rev), Some(t));
        assert_eq!(hash_of(&d, None), hash_of(&d, Some(0)));
        assert_ne!(hash_of(&d, None), hash_of(&d, Some(1)));
        assert!(hash_of(&d, None)
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
