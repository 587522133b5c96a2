//! The garbage collector, as upstream's `pkg/controller/garbagecollector`: a graph of
//! owners and dependents built from metadata watches of every deletable resource; objects
//! whose owners are all gone are deleted (background), owners deleted with `Foreground`
//! wait (finalizer `foregroundDeletion`) until dependents that block them are gone, and
//! owners deleted with `Orphan` (finalizer `orphan`) have their dependents released first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams, Preconditions,
};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::discovery::{Catalog, Served, DELETE, LIST, WATCH};
use crate::informer::{Change, Informer};
use crate::queue::WorkQueue;
use crate::util;
use crate::{Error, Result};

pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
pub const ORPHAN_FINALIZER: &str = "orphan";

/// How often the set of watched resources is brought up to date with discovery.
const RESYNC_MONITORS: Duration = Duration::from_secs(30);

type Meta = PartialObjectMeta<DynamicObject>;

/// Where an object is: enough to GET and DELETE it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug)]
struct Node {
    identity: Identity,
    owners: Vec<OwnerReference>,
    dependents: HashSet<String>,
    being_deleted: bool,
    deleting_dependents: bool,
    /// Known only as somebody's owner, not yet seen in a watch.
    virtual_: bool,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
}

enum GraphEvent {
    Upsert {
        identity: Identity,
        meta: Box<ObjectMeta>,
        old: Option<Box<ObjectMeta>>,
    },
    Delete {
        identity: Identity,
        /// Emitted by a worker that found the object gone, not by a watch.
        virtual_: bool,
    },
}

fn has_finalizer(m: &ObjectMeta, f: &str) -> bool {
    m.finalizers
        .as_ref()
        .is_some_and(|fs| fs.iter().any(|x| x == f))
}

fn deletion_starts_with(old: Option<&ObjectMeta>, new: &ObjectMeta, f: &str) -> bool {
    if new.deletion_timestamp.is_none() || !has_finalizer(new, f) {
        return false;
    }
    match old {
        None => true,
        Some(o) => o.deletion_timestamp.is_none() || !has_finalizer(o, f),
    }
}

pub(crate) struct GarbageCollector {
    client: Client,
    catalog: Arc<Catalog>,
    graph: Mutex<Graph>,
    attempt_to_delete: WorkQueue<String>,
    attempt_to_orphan: WorkQueue<String>,
    events: mpsc::UnboundedSender<GraphEvent>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<GraphEvent>>>,
    /// Owners found absent (uid), so that 500 dependents of one deleted owner cost one GET.
    absent: Mutex<HashSet<String>>,
    monitors: Mutex<HashMap<String, Informer<Meta>>>,
}

impl GarbageCollector {
    pub(crate) fn new(client: Client, catalog: Arc<Catalog>) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(GarbageCollector {
            client,
            catalog,
            graph: Mutex::new(Graph::default()),
            attempt_to_delete: WorkQueue::new(),
            attempt_to_orphan: WorkQueue::new(),
            events: tx,
            events_rx: Mutex::new(Some(rx)),
            absent: Mutex::new(HashSet::new()),
            monitors: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(rx) = self.events_rx.lock().take() {
            let me = self.clone();
            tasks.spawn(async move { me.process_graph_changes(rx).await });
        }
        // Monitors first, and the graph complete, before anything is judged dangling.
        let mut first = true;
        let mut started = false;
        loop {
            match self.sync_monitors(&mut tasks).await {
                Ok(()) => {}
                Err(e) => tracing::warn!(error = %e, "garbage collector: discovery failed"),
            }
            if first {
                let monitors: Vec<Informer<Meta>> =
                    self.monitors.lock().values().cloned().collect();
                for m in monitors {
                    m.wait_synced().await;
                }
                first = false;
            }
            if !started {
                started = true;
                let me = self.clone();
                tasks.spawn(async move {
                    let inner = me.clone();
                    util::run_workers(
                        "garbage-collector",
                        me.attempt_to_delete.clone(),
                        workers,
                        move |uid| {
                            let me = inner.clone();
                            async move { me.attempt_to_delete_worker(&uid).await }
                        },
                    )
                    .await
                });
                let me = self.clone();
                tasks.spawn(async move {
                    let inner = me.clone();
                    util::run_workers(
                        "garbage-collector-orphan",
                        me.attempt_to_orphan.clone(),
                        workers,
                        move |uid| {
                            let me = inner.clone();
                            async move { me.attempt_to_orphan(&uid).await }
                        },
                    )
                    .await
                });
            }
            tokio::time::sleep(RESYNC_MONITORS).await;
        }
    }

    /// Starts a metadata watch for every deletable resource not yet watched.
    async fn sync_monitors(self: &Arc<Self>, tasks: &mut tokio::task::JoinSet<()>) -> Result<()> {
        let resources = self.catalog.refresh().await?;
        for r in resources.iter() {
            if !(r.supports(LIST) && r.supports(WATCH) && r.supports(DELETE)) {
                continue;
            }
            // Upstream ignores events: they are never owners or owned in practice and churn.
            if r.resource.kind == "Event" {
                continue;
            }
            let key = format!("{}/{}", r.resource.group, r.resource.plural);
            if self.monitors.lock().contains_key(&key) {
                continue;
            }
            let informer: Informer<Meta> = Informer::new(key.clone());
            let me = Arc::downgrade(self);
            let ar = r.resource.clone();
            informer.add_handler(move |ch| {
                let Some(me) = me.upgrade() else { return };
                let ident = |m: &Meta| Identity {
                    api_version: ar.api_version.clone(),
                    kind: ar.kind.clone(),
                    namespace: m.metadata.namespace.clone().unwrap_or_default(),
                    name: m.metadata.name.clone().unwrap_or_default(),
                    uid: m.metadata.uid.clone().unwrap_or_default(),
                };
                let ev = match ch {
                    Change::Added(m) => GraphEvent::Upsert {
                        identity: ident(m),
                        meta: Box::new(m.metadata.clone()),
                        old: None,
                    },
                    Change::Updated { old, new } => GraphEvent::Upsert {
                        identity: ident(new),
                        meta: Box::new(new.metadata.clone()),
                        old: Some(Box::new(old.metadata.clone())),
                    },
                    Change::Deleted(m) => GraphEvent::Delete {
                        identity: ident(m),
                        virtual_: false,
                    },
                };
                let _ = me.events.send(ev);
            });
            let api: Api<Meta> = Api::all_with(self.client.clone(), &r.resource);
            let stream = watcher(api, watcher::Config::default()).default_backoff();
            let runner = informer.clone();
            tasks.spawn(async move { runner.run(stream).await });
            self.monitors.lock().insert(key, informer);
        }
        Ok(())
    }

    async fn process_graph_changes(&self, mut rx: mpsc::UnboundedReceiver<GraphEvent>) {
        while let Some(ev) = rx.recv().await {
            self.apply_graph_change(ev);
        }
    }

    fn apply_graph_change(&self, ev: GraphEvent) {
        let mut g = self.graph.lock();
        match ev {
            GraphEvent::Upsert {
                identity,
                meta,
                old,
            } => {
                let uid = identity.uid.clone();
                if uid.is_empty() {
                    return;
                }
                let owners = meta.owner_references.clone().unwrap_or_default();
                let being_deleted = meta.deletion_timestamp.is_some();
                let existing = g.nodes.get(&uid).cloned();
                match existing {
                    None => {
                        g.nodes.insert(
                            uid.clone(),
                            Node {
                                identity: identity.clone(),
                                owners: owners.clone(),
                                dependents: HashSet::new(),
                                being_deleted,
                                deleting_dependents: being_deleted
                                    && has_finalizer(&meta, FOREGROUND_FINALIZER),
                                virtual_: false,
                            },
                        );
                        self.add_to_owners(&mut g, &identity, &owners);
                    }
                    Some(node) => {
                        let old_owners = node.owners.clone();
                        if let Some(n) = g.nodes.get_mut(&uid) {
                            n.virtual_ = false;
                            n.identity = identity.clone();
                            n.owners = owners.clone();
                            n.being_deleted = being_deleted;
                        }
                        if old_owners != owners {
                            let removed: Vec<&OwnerReference> = old_owners
                                .iter()
                                .filter(|o| !owners.iter().any(|n| n.uid == o.uid))
                                .collect();
                            let unblocked: Vec<&OwnerReference> = old_owners
                                .iter()
                                .filter(|o| {
                                    o.block_owner_deletion == Some(true)
                                        && owners.iter().any(|n| {
                                            n.uid == o.uid && n.block_owner_deletion != Some(true)
                                        })
                                })
                                .collect();
                            for o in removed.iter().chain(unblocked.iter()) {
                                if let Some(owner) = g.nodes.get(&o.uid) {
                                    if owner.deleting_dependents {
                                        self.attempt_to_delete.add(o.uid.clone());
                                    }
                                }
                            }
                            for o in &removed {
                                if let Some(owner) = g.nodes.get_mut(&o.uid) {
                                    owner.dependents.remove(&uid);
                                }
                            }
                            let added: Vec<OwnerReference> = owners
                                .iter()
                                .filter(|n| !old_owners.iter().any(|o| o.uid == n.uid))
                                .cloned()
                                .collect();
                            self.add_to_owners(&mut g, &identity, &added);
                        }
                    }
                }
                if deletion_starts_with(old.as_deref(), &meta, ORPHAN_FINALIZER) {
                    self.attempt_to_orphan.add(uid.clone());
                }
                if deletion_starts_with(old.as_deref(), &meta, FOREGROUND_FINALIZER) {
                    let deps: Vec<String> = match g.nodes.get_mut(&uid) {
                        Some(n) => {
                            n.deleting_dependents = true;
                            n.dependents.iter().cloned().collect()
                        }
                        None => Vec::new(),
                    };
                    for d in deps {
                        self.attempt_to_delete.add(d);
                    }
                    self.attempt_to_delete.add(uid);
                }
            }
            GraphEvent::Delete { identity, virtual_ } => {
                let uid = identity.uid.clone();
                let Some(node) = g.nodes.get(&uid).cloned() else {
                    return;
                };
                // A virtual delete for a node already observed again is stale.
                if virtual_ && !node.virtual_ && node.identity != identity {
                    return;
                }
                g.nodes.remove(&uid);
                if virtual_ {
                    self.absent.lock().insert(uid.clone());
                }
                for o in &node.owners {
                    if let Some(owner) = g.nodes.get_mut(&o.uid) {
                        owner.dependents.remove(&uid);
                        if owner.deleting_dependents {
                            self.attempt_to_delete.add(o.uid.clone());
                        }
                    }
                }
                for d in node.dependents {
                    self.attempt_to_delete.add(d);
                }
            }
        }
    }

    /// Records `dependent` with each owner, creating virtual owners (to be verified) for
    /// owners not seen yet.
    fn add_to_owners(&self, g: &mut Graph, dependent: &Identity, owners: &[OwnerReference]) {
        for o in owners {
            let node = g.nodes.entry(o.uid.clone()).or_insert_with(|| {
                self.attempt_to_delete.add(o.uid.clone());
                Node {
                    identity: Identity {
                        api_version: o.api_version.clone(),
                        kind: o.kind.clone(),
                        namespace: dependent.namespace.clone(),
                        name: o.name.clone(),
                        uid: o.uid.clone(),
                    },
                    owners: Vec::new(),
                    dependents: HashSet::new(),
                    being_deleted: false,
                    deleting_dependents: false,
                    virtual_: true,
                }
            });
            node.dependents.insert(dependent.uid.clone());
        }
    }

    /// The API resource of a kind (any version of its group), and the API to reach the
    /// object `namespace/name` of it.
    async fn resource_for(&self, api_version: &str, kind: &str) -> Result<Served> {
        let group = util::group_of(api_version);
        let find = |rs: &[Served]| {
            rs.iter()
                .find(|r| r.resource.group == group && r.resource.kind == kind)
                .cloned()
        };
        if let Some(r) = find(&self.catalog.resources().await?) {
            return Ok(r);
        }
        find(&self.catalog.refresh().await?).ok_or_else(|| Error::Invalid {
            what: format!("{api_version} {kind}"),
            message: "no such resource is served".into(),
        })
    }

    async fn api_for(&self, id: &Identity) -> Result<(Api<DynamicObject>, bool)> {
        let r = self.resource_for(&id.api_version, &id.kind).await?;
        let api = if r.namespaced {
            Api::namespaced_with(self.client.clone(), &id.namespace, &r.resource)
        } else {
            Api::all_with(self.client.clone(), &r.resource)
        };
        Ok((api, r.namespaced))
    }

    async fn get_live(&self, id: &Identity) -> Result<Option<Meta>> {
        let (api, _) = self.api_for(id).await?;
        match api.get_metadata_opt(&id.name).await {
            Ok(m) => Ok(m),
            Err(e) => Err(Error::api(
                "get",
                format!("{} {}/{}", id.kind, id.namespace, id.name),
                e,
            )),
        }
    }

    fn virtual_delete(&self, id: &Identity) {
        let _ = self.events.send(GraphEvent::Delete {
            identity: id.clone(),
            virtual_: true,
        });
    }

    async fn attempt_to_delete_worker(&self, uid: &str) -> Result<()> {
        let Some(node) = self.graph.lock().nodes.get(uid).cloned() else {
            return Ok(());
        };
        let r = self.attempt_to_delete_item(&node).await;
        if r.is_ok() && node.virtual_ {
            // Not seen in a watch yet: look again, so that a virtual node for an object
            // created and deleted while a watch was down does not stay forever.
            let still_virtual = self.graph.lock().nodes.get(uid).is_some_and(|n| n.virtual_);
            if still_virtual {
                self.attempt_to_delete
                    .add_after(uid.to_string(), Duration::from_secs(1));
            }
        }
        r
    }

    async fn attempt_to_delete_item(&self, node: &Node) -> Result<()> {
        if !node.virtual_ && node.being_deleted && !node.deleting_dependents {
            return Ok(());
        }
        let id = &node.identity;
        let latest = match self.get_live(id).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                self.virtual_delete(id);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if latest.metadata.uid.as_deref() != Some(id.uid.as_str()) {
            self.virtual_delete(id);
            return Ok(());
        }
        if node.deleting_dependents {
            return self.process_deleting_dependents(node).await;
        }
        let refs = latest.metadata.owner_references.clone().unwrap_or_default();
        if refs.is_empty() {
            return Ok(());
        }
        let mut solid = Vec::new();
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        for r in &refs {
            match self.owner_of(r, id).await? {
                None => dangling.push(r.clone()),
                Some(owner) => {
                    if owner.metadata.deletion_timestamp.is_some()
                        && has_finalizer(&owner.metadata, FOREGROUND_FINALIZER)
                    {
                        if r.block_owner_deletion == Some(true) {
                            waiting.push(r.clone());
                        } else {
                            solid.push(r.clone());
                        }
                    } else {
                        solid.push(r.clone());
                    }
                }
            }
        }
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            // Drop the references to owners that are gone or being deleted.
            let drop: Vec<Value> = dangling
                .iter()
                .chain(waiting.iter())
                .map(|r| json!({"$patch": "delete", "uid": r.uid}))
                .collect();
            let patch = json!({"metadata": {"ownerReferences": drop, "uid": id.uid}});
            return self.patch(id, Patch::Strategic(&patch)).await;
        }
        if !waiting.is_empty() && !node.dependents.is_empty() {
            let any_dep_deleting = {
                let g = self.graph.lock();
                node.dependents
                    .iter()
                    .any(|d| g.nodes.get(d).is_some_and(|n| n.deleting_dependents))
            };
            if any_dep_deleting {
                // Avoid a deadlock between two foreground deletions: stop blocking.
                let unblocked: Vec<Value> = refs
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        if waiting.iter().any(|w| w.uid == r.uid) {
                            r.block_owner_deletion = Some(false);
                        }
                        json!(r)
                    })
                    .collect();
                let patch = json!({"metadata": {"ownerReferences": unblocked, "uid": id.uid}});
                self.patch(id, Patch::Merge(&patch)).await?;
            }
            return self.delete(id, DeleteParams::foreground()).await;
        }
        let dp = if has_finalizer(&latest.metadata, ORPHAN_FINALIZER) {
            DeleteParams::orphan()
        } else if has_finalizer(&latest.metadata, FOREGROUND_FINALIZER) {
            DeleteParams::foreground()
        } else {
            DeleteParams::background()
        };
        self.delete(id, dp).await
    }

    /// The live owner a reference points at, or `None` when it is gone (or replaced by
    /// another object with that name).
    async fn owner_of(&self, r: &OwnerReference, dependent: &Identity) -> Result<Option<Meta>> {
        if self.absent.lock().contains(&r.uid) {
            return Ok(None);
        }
        let id = Identity {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: dependent.namespace.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
        };
        match self.get_live(&id).await? {
            Some(o) if o.metadata.uid.as_deref() == Some(r.uid.as_str()) => Ok(Some(o)),
            _ => {
                self.absent.lock().insert(r.uid.clone());
                Ok(None)
            }
        }
    }

    /// An owner being deleted in the foreground: done when no dependent blocks it any more.
    async fn process_deleting_dependents(&self, node: &Node) -> Result<()> {
        let blocking: Vec<(String, bool)> = {
            let g = self.graph.lock();
            node.dependents
                .iter()
                .filter_map(|d| g.nodes.get(d))
                .filter(|d| {
                    d.owners
                        .iter()
                        .any(|o| o.uid == node.identity.uid && o.block_owner_deletion == Some(true))
                })
                .map(|d| (d.identity.uid.clone(), d.deleting_dependents))
                .collect()
        };
        if blocking.is_empty() {
            return self
                .remove_finalizer(&node.identity, FOREGROUND_FINALIZER)
                .await;
        }
        for (uid, deleting) in blocking {
            if !deleting {
                self.attempt_to_delete.add(uid);
            }
        }
        Ok(())
    }

    /// An owner deleted with `Orphan`: release its dependents, then let it go.
    async fn attempt_to_orphan(&self, uid: &str) -> Result<()> {
        let Some(node) = self.graph.lock().nodes.get(uid).cloned() else {
            return Ok(());
        };
        let deps: Vec<Identity> = {
            let g = self.graph.lock();
            node.dependents
                .iter()
                .filter_map(|d| g.nodes.get(d).map(|n| n.identity.clone()))
                .collect()
        };
        let mut errs = Vec::new();
        for d in deps {
            let patch = json!({"metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": uid}],
                "uid": d.uid,
            }});
            if let Err(e) = self.patch(&d, Patch::Strategic(&patch)).await {
                errs.push(e);
            }
        }
        Error::aggregate(errs)?;
        self.remove_finalizer(&node.identity, ORPHAN_FINALIZER)
            .await
    }

    async fn patch(&self, id: &Identity, patch: Patch<&Value>) -> Result<()> {
        let (api, _) = self.api_for(id).await?;
        match api
            .patch_metadata(&id.name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 || s.code == 409 => Ok(()),
            Err(e) => Err(Error::api(
                "patch",
                format!("{} {}/{}", id.kind, id.namespace, id.name),
                e,
            )),
        }
    }

    async fn delete(&self, id: &Identity, dp: DeleteParams) -> Result<()> {
        let (api, _) = self.api_for(id).await?;
        tracing::debug!(kind = %id.kind, namespace = %id.namespace, name = %id.name, "garbage collector deleting");
        let dp = dp.preconditions(Preconditions {
            uid: Some(id.uid.clone()),
            resource_version: None,
        });
        match api.delete(&id.name, &dp).await {
            Ok(_) => Ok(()),
            // Gone, or a new object under that name.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(Error::api(
                "delete",
                format!("{} {}/{}", id.kind, id.namespace, id.name),
                e,
            )),
        }
    }

    /// Removes one finalizer, guarded by the resourceVersion it was read at.
    async fn remove_finalizer(&self, id: &Identity, finalizer: &str) -> Result<()> {
        for _ in 0..5 {
            let Some(live) = self.get_live(id).await? else {
                return Ok(());
            };
            if live.metadata.uid.as_deref() != Some(id.uid.as_str())
                || !has_finalizer(&live.metadata, finalizer)
            {
                return Ok(());
            }
            let rest: Vec<String> = live
                .metadata
                .finalizers
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != finalizer)
                .collect();
            let patch = json!({"metadata": {
                "resourceVersion": live.metadata.resource_version,
                "finalizers": if rest.is_empty() { Value::Null } else { json!(rest) },
            }});
            let (api, _) = self.api_for(id).await?;
            match api
                .patch_metadata(&id.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => {
                    return Err(Error::api(
                        "remove finalizer from",
                        format!("{} {}/{}", id.kind, id.namespace, id.name),
                        e,
                    ))
                }
            }
        }
        Err(Error::Invalid {
            what: format!("{} {}/{}", id.kind, id.namespace, id.name),
            message: format!("conflicts removing finalizer {finalizer}"),
        })
    }
}
