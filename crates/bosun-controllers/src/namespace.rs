//! Namespace lifecycle, as upstream's namespace controller: a namespace being deleted has
//! everything in it deleted, and once nothing is left its `kubernetes` finalizer is removed
//! through `namespaces/{name}/finalize`, which lets the API server remove it. Progress is
//! reported in the namespace's deletion conditions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::discovery::{Catalog, DELETE, DELETE_COLLECTION, LIST};
use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::util;
use crate::{Error, Result};

/// The finalizer the namespace controller owns.
pub const FINALIZER: &str = "kubernetes";

pub(crate) struct NamespaceController {
    client: Client,
    namespaces: Informer<Namespace>,
    catalog: Arc<Catalog>,
    queue: WorkQueue<String>,
}

/// What was left after one pass over a namespace.
#[derive(Debug, Default)]
struct Remaining {
    /// `resource.group` → count.
    counts: BTreeMap<String, usize>,
    /// finalizer → count of objects carrying it.
    finalizers: BTreeMap<String, usize>,
    /// Seconds until graceful pod deletions should be over.
    estimate: i64,
    errors: Vec<String>,
}

impl NamespaceController {
    pub(crate) fn new(informers: &Informers, catalog: Arc<Catalog>) -> Arc<Self> {
        let c = Arc::new(NamespaceController {
            client: informers.client().clone(),
            namespaces: informers.get::<Namespace>(),
            catalog,
            queue: WorkQueue::new(),
        });
        let me = Arc::downgrade(&c);
        c.namespaces.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let ns = match ch {
                Change::Added(n) => n,
                Change::Updated { new, .. } => new,
                Change::Deleted(_) => return,
            };
            if ns.metadata.deletion_timestamp.is_some() {
                c.queue.add(ns.name_any());
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.namespaces.wait_synced().await;
        let me = self.clone();
        util::run_workers(
            "namespace-controller",
            self.queue.clone(),
            workers,
            move |key| {
                let me = me.clone();
                async move { me.sync(&key).await }
            },
        )
        .await
    }

    async fn sync(&self, name: &str) -> Result<()> {
        let Some(ns) = self.namespaces.get("", name) else {
            return Ok(());
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(());
        }
        let has_finalizer = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
        if !has_finalizer {
            return Ok(());
        }
        let remaining = self.delete_all_content(name).await?;
        self.write_conditions(&ns, &remaining).await;
        if !remaining.errors.is_empty() {
            return Err(Error::Invalid {
                what: format!("namespace {name}"),
                message: format!("failed to delete content: {}", remaining.errors.join("; ")),
            });
        }
        if !remaining.counts.is_empty() {
            // Content is going away (graceful pod deletion, finalizers): look again later.
            let secs = (remaining.estimate / 2 + 1).max(1) as u64;
            self.queue
                .add_after(name.to_string(), Duration::from_secs(secs));
            return Ok(());
        }
        self.finalize(&ns).await
    }

    /// Deletes everything in the namespace; returns what is still there afterwards.
    async fn delete_all_content(&self, ns: &str) -> Result<Remaining> {
        let resources = self.catalog.resources().await?;
        let mut rem = Remaining::default();
        for r in resources
            .iter()
            .filter(|r| r.namespaced && r.supports(LIST))
        {
            if !r.supports(DELETE) && !r.supports(DELETE_COLLECTION) {
                continue;
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), ns, &r.resource);
            let what = format!("{} in {ns}", r.resource.plural);
            let dp = DeleteParams::background();
            let deleted = if r.supports(DELETE_COLLECTION) {
                api.delete_collection(&dp, &ListParams::default())
                    .await
                    .map(|_| ())
            } else {
                match api.list_metadata(&ListParams::default()).await {
                    Ok(list) => {
                        let mut res = Ok(());
                        for o in list.items {
                            if let Err(e) = api.delete(&o.name_any(), &dp).await {
                                if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                                    res = Err(e);
                                }
                            }
                        }
                        res
                    }
                    Err(e) => Err(e),
                }
            };
            match deleted {
                Ok(()) => {}
                // Gone meanwhile, or not deletable after all: nothing to do here.
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => {}
                Err(e) => rem
                    .errors
                    .push(Error::api("delete", what.clone(), e).to_string()),
            }
            match api.list_metadata(&ListParams::default()).await {
                Ok(list) if !list.items.is_empty() => {
                    let key = if r.resource.group.is_empty() {
                        format!("{}.", r.resource.plural)
                    } else {
                        format!("{}.{}", r.resource.plural, r.resource.group)
                    };
                    rem.counts.insert(key, list.items.len());
                    for o in &list.items {
                        for f in o.finalizers() {
                            *rem.finalizers.entry(f.clone()).or_default() += 1;
                        }
                        if let Some(g) = o.metadata.deletion_grace_period_seconds {
                            rem.estimate = rem.estimate.max(g);
                        }
                    }
                }
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => {}
                Err(e) => rem.errors.push(Error::api("list", what, e).to_string()),
            }
        }
        Ok(rem)
    }

    /// The namespace deletion conditions upstream reports.
    async fn write_conditions(&self, ns: &Namespace, rem: &Remaining) {
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let cond = |t: &str, ok: bool, reason: &str, msg: String| json!({"type": t, "status": if ok { "False" } else { "True" }, "lastTransitionTime": now, "reason": reason, "message": msg});
        let content = if rem.counts.is_empty() {
            cond(
                "NamespaceContentRemaining",
                true,
                "ContentRemoved",
                "All content successfully removed".into(),
            )
        } else {
            let parts: Vec<String> = rem
                .counts
                .iter()
                .map(|(r, n)| format!("{r} has {n} resource instances"))
                .collect();
            cond(
                "NamespaceContentRemaining",
                false,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", parts.join(", ")),
            )
        };
        let fins = if rem.finalizers.is_empty() {
            cond(
                "NamespaceFinalizersRemaining",
                true,
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished".into(),
            )
        } else {
            let parts: Vec<String> = rem
                .finalizers
                .iter()
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            cond(
                "NamespaceFinalizersRemaining",
                false,
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    parts.join(", ")
                ),
            )
        };
        let failure = if rem.errors.is_empty() {
            cond(
                "NamespaceDeletionContentFailure",
                true,
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".into(),
            )
        } else {
            cond(
                "NamespaceDeletionContentFailure",
                false,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    rem.errors.len(),
                    rem.errors.join(", ")
                ),
            )
        };
        let wanted = vec![
            cond(
                "NamespaceDeletionDiscoveryFailure",
                true,
                "ResourcesDiscovered",
                "All resources successfully discovered".into(),
            ),
            cond(
                "NamespaceDeletionGroupVersionParsingFailure",
                true,
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed".into(),
            ),
            failure,
            content,
            fins,
        ];
        // Keep transition times of conditions whose status did not change, and write only
        // when something did.
        let current = serde_json::to_value(
            ns.status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        let find = |t: &str| {
            current
                .as_array()
                .and_then(|a| a.iter().find(|c| c["type"] == t))
                .cloned()
        };
        let mut changed = false;
        let merged: Vec<serde_json::Value> = wanted
            .into_iter()
            .map(|mut w| {
                match find(w["type"].as_str().unwrap_or("")) {
                    Some(c) if c["status"] == w["status"] => {
                        w["lastTransitionTime"] = c["lastTransitionTime"].clone();
                        if c["reason"] != w["reason"] || c["message"] != w["message"] {
                            changed = true;
                        }
                    }
                    _ => changed = true,
                }
                w
            })
            .collect();
        if !changed {
            return;
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        let patch = json!({"status": {"conditions": merged}});
        if let Err(e) = api
            .patch_status(
                &ns.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            tracing::debug!(namespace = %ns.name_any(), error = %e, "namespace conditions not written");
        }
    }

    async fn finalize(&self, ns: &Namespace) -> Result<()> {
        let mut ns = ns.clone();
        if let Some(spec) = ns.spec.as_mut() {
            if let Some(f) = spec.finalizers.as_mut() {
                f.retain(|f| f != FINALIZER);
            }
        }
        let name = ns.name_any();
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api
            .replace_subresource("finalize", &name, &PostParams::default(), &ns)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::api("finalize", format!("namespace {name}"), e)),
        }
    }
}
