//! The watch cache: every stored object in memory, fed by one watch on the whole store.
//!
//! LIST, GET and WATCH are served from here (upstream's cacher). Each write is parsed
//! once when it arrives: the object's bytes get their `resourceVersion` injected, its
//! labels and selectable fields are pulled out, and the watch line
//! `{"type":…,"object":…}` is encoded once and shared by every watcher.
//!
//! One store watch feeds all resources, so the cache's revision follows the store's
//! revision exactly; a consistent read waits until the cache has caught up to the
//! store's current revision (upstream's "consistent reads from cache").

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bosun_api::resources::{ResourceDef, RESOURCES};
use bosun_api::StatusError;
use bosun_store::{Event, EventType, KeyValue, ListOptions, Revision, Store};
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::kinds::{self, KindOps};

/// Where every resource's keys live in the store.
pub const REGISTRY_PREFIX: &str = "/registry/";

/// The store key of an object.
pub fn object_key(def: &ResourceDef, namespace: &str, name: &str) -> String {
    if def.namespaced {
        format!("{REGISTRY_PREFIX}{}/{namespace}/{name}", def.storage_prefix)
    } else {
        format!("{REGISTRY_PREFIX}{}/{name}", def.storage_prefix)
    }
}

/// The key prefix of a resource, optionally narrowed to one namespace.
pub fn resource_prefix(def: &ResourceDef, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if def.namespaced => format!("{REGISTRY_PREFIX}{}/{ns}/", def.storage_prefix),
        _ => format!("{REGISTRY_PREFIX}{}/", def.storage_prefix),
    }
}

/// The string-valued labels of an object's metadata.
fn labels_of(meta: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    meta.get("labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// One object version as the cache holds it.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub namespace: String,
    pub name: String,
    /// The object's resourceVersion (the store's mod revision of this version).
    pub rv: Revision,
    /// The JSON of the object at its storage version, with `metadata.resourceVersion` set.
    pub bytes: Bytes,
    pub labels: BTreeMap<String, String>,
    /// Selectable fields besides metadata.name/namespace.
    pub fields: Vec<(&'static str, String)>,
}

impl CachedObject {
    /// Builds the cached form of a stored value, setting its resourceVersion to `rv`.
    fn build(
        key: &str,
        raw: &[u8],
        rv: Revision,
        ops: Option<&dyn KindOps>,
    ) -> Option<CachedObject> {
        let mut value: Value = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(key, error = %e, "stored value is not JSON; skipping it");
                return None;
            }
        };
        let meta = value.get_mut("metadata")?.as_object_mut()?;
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let labels = labels_of(meta);
        let fields = ops.map(|o| o.selectable_fields(&value)).unwrap_or_default();
        let bytes = Bytes::from(serde_json::to_vec(&value).ok()?);
        Some(CachedObject {
            key: key.to_string(),
            namespace,
            name,
            rv,
            bytes,
            labels,
            fields,
        })
    }

    /// Builds the cached form of a key-value read from the store.
    pub fn from_store(kv: &KeyValue, ops: Option<&dyn KindOps>) -> Option<CachedObject> {
        Self::build(&kv.key, &kv.value, kv.mod_revision, ops)
    }

    /// The value of a selectable field, including metadata.name and metadata.namespace.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "metadata.name" => Some(&self.name),
            "metadata.namespace" => Some(&self.namespace),
            _ => self
                .fields
                .iter()
                .find(|(f, _)| *f == name)
                .map(|(_, v)| v.as_str()),
        }
    }

    pub fn value(&self) -> Result<Value, StatusError> {
        serde_json::from_slice(&self.bytes)
            .map_err(|e| StatusError::internal(format!("decoding cached {}: {e}", self.key)))
    }
}

/// An object the registry is about to write, encoded once. When the store's event for
/// that write arrives, the cache takes this instead of parsing the stored bytes, pulling
/// out labels and fields and encoding them again; the registry answers the request with
/// the same bytes.
#[derive(Debug)]
pub struct Prepared {
    pub key: String,
    namespace: String,
    name: String,
    /// The bytes the store gets: the object without `metadata.resourceVersion`.
    pub stored: Bytes,
    /// Offset in `stored` just inside `metadata`'s `{`, where the resourceVersion goes.
    slot: usize,
    /// Whether metadata has other fields (then a comma follows the resourceVersion).
    comma: bool,
    labels: BTreeMap<String, String>,
    fields: Vec<(&'static str, String)>,
    /// The bytes at the revision the store gave the write, built once for both the
    /// reply and the cache.
    at_rv: std::sync::OnceLock<(Revision, Bytes)>,
}

impl Prepared {
    /// An object already encoded as compact JSON without `metadata.resourceVersion`
    /// (a typed object's encoding), with what the cache extracts from it. None when the
    /// JSON has no top-level metadata object.
    pub fn from_json(
        key: &str,
        json: Vec<u8>,
        namespace: String,
        name: String,
        labels: BTreeMap<String, String>,
        fields: Vec<(&'static str, String)>,
    ) -> Option<Prepared> {
        let (slot, comma) = crate::jsonbytes::metadata_slot(&json)?;
        Some(Prepared {
            key: key.to_string(),
            namespace,
            name,
            stored: Bytes::from(json),
            slot,
            comma,
            labels,
            fields,
            at_rv: std::sync::OnceLock::new(),
        })
    }

    /// Encodes `obj` for the store (any `metadata.resourceVersion` left out). None when the
    /// object has no metadata object (then the cache builds it the slow way).
    pub fn encode(
        key: &str,
        obj: &Value,
        ops: Option<&dyn KindOps>,
    ) -> Result<Option<Prepared>, serde_json::Error> {
        let Some(top) = obj.as_object() else {
            return Ok(None);
        };
        let Some(meta) = top.get("metadata").and_then(Value::as_object) else {
            return Ok(None);
        };
        let mut buf: Vec<u8> = Vec::with_capacity(2048);
        let mut slot = 0;
        let mut comma = false;
        buf.push(b'{');
        for (i, (k, v)) in top.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            serde_json::to_writer(&mut buf, k)?;
            buf.push(b':');
            if k == "metadata" {
                buf.push(b'{');
                slot = buf.len();
                let mut first = true;
                for (mk, mv) in meta {
                    if mk == "resourceVersion" {
                        continue;
                    }
                    if !first {
                        buf.push(b',');
                    }
                    first = false;
                    serde_json::to_writer(&mut buf, mk)?;
                    buf.push(b':');
                    serde_json::to_writer(&mut buf, mv)?;
                }
                comma = !first;
                buf.push(b'}');
            } else {
                serde_json::to_writer(&mut buf, v)?;
            }
        }
        buf.push(b'}');
        let text = |f: &str| {
            meta.get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let labels = labels_of(meta);
        Ok(Some(Prepared {
            key: key.to_string(),
            namespace: text("namespace"),
            name: text("name"),
            stored: Bytes::from(buf),
            slot,
            comma,
            labels,
            fields: ops.map(|o| o.selectable_fields(obj)).unwrap_or_default(),
            at_rv: std::sync::OnceLock::new(),
        }))
    }

    /// The object's JSON with `metadata.resourceVersion` = `rv`; the reply and the cache
    /// share one copy.
    pub fn with_rv(&self, rv: Revision) -> Bytes {
        let (at, bytes) = self.at_rv.get_or_init(|| (rv, self.build_with_rv(rv)));
        if *at == rv {
            bytes.clone()
        } else {
            self.build_with_rv(rv)
        }
    }

    fn build_with_rv(&self, rv: Revision) -> Bytes {
        let rv = rv.to_string();
        let mut out = Vec::with_capacity(self.stored.len() + rv.len() + 24);
        out.extend_from_slice(&self.stored[..self.slot]);
        out.extend_from_slice(b"\"resourceVersion\":\"");
        out.extend_from_slice(rv.as_bytes());
        out.push(b'"');
        if self.comma {
            out.push(b',');
        }
        out.extend_from_slice(&self.stored[self.slot..]);
        Bytes::from(out)
    }

    fn cached(&self, rv: Revision) -> CachedObject {
        CachedObject {
            key: self.key.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            rv,
            bytes: self.with_rv(rv),
            labels: self.labels.clone(),
            fields: self.fields.clone(),
        }
    }
}

/// Writes announced to the cache and not yet seen in the store's event stream.
#[derive(Default)]
struct Pending {
    next_id: u64,
    by_key: HashMap<String, Vec<(u64, Arc<Prepared>)>>,
}

/// The registry's claim on an announced write. Dropped without [`Expected::written`] (the
/// write failed, or the request was cancelled), it withdraws the announcement.
pub struct Expected {
    cache: Arc<Cache>,
    pub prepared: Arc<Prepared>,
    id: u64,
    armed: bool,
}

impl Expected {
    /// The store acknowledged the write: the announcement stays for the cache to take.
    pub fn written(mut self) {
        self.armed = false;
    }
}

impl Drop for Expected {
    fn drop(&mut self) {
        if self.armed {
            let mut p = self.cache.pending.lock();
            if let Some(list) = p.by_key.get_mut(&self.prepared.key) {
                list.retain(|(id, _)| *id != self.id);
                if list.is_empty() {
                    p.by_key.remove(&self.prepared.key);
                }
            }
        }
    }
}

/// A watch event type as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
}

impl WatchEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEventType::Added => "ADDED",
            WatchEventType::Modified => "MODIFIED",
            WatchEventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object, shared by all watchers.
#[derive(Debug)]
pub struct CacheEvent {
    pub event_type: WatchEventType,
    pub rv: Revision,
    /// The new object, or for a deletion the last state with `rv` as its resourceVersion.
    pub object: Arc<CachedObject>,
    /// The object before the change (None for additions).
    pub prev: Option<Arc<CachedObject>>,
    /// The watch line for this event at the storage version, encoded by the first
    /// watcher that needs it and shared by all the others.
    pub line: std::sync::OnceLock<Bytes>,
}

impl CacheEvent {
    /// The shared watch line of this event as it happened.
    pub fn line(&self) -> &Bytes {
        self.line
            .get_or_init(|| watch_line(self.event_type.as_str(), &self.object.bytes))
    }
}

/// Encodes a watch line for an object at its storage version.
pub fn watch_line(event_type: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(event_type.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    /// Recent events, oldest first.
    events: VecDeque<Arc<CacheEvent>>,
    /// Every event with rv > `history_from` is in `events`.
    history_from: Revision,
    /// The revision of the last event applied to this resource.
    rv: Revision,
    tx: broadcast::Sender<Arc<CacheEvent>>,
    /// Set when the server stops: no new watch starts on a cache that no longer follows
    /// the store.
    stopped: bool,
}

/// The cache of one stored resource.
pub struct ResourceCache {
    pub def: &'static ResourceDef,
    ops: Option<&'static dyn KindOps>,
    state: RwLock<State>,
    capacity: usize,
    global_rv: watch::Receiver<Revision>,
}

/// A consistent view of a resource's objects at one revision.
pub struct Snapshot {
    pub rv: Revision,
    pub objects: Vec<Arc<CachedObject>>,
}

/// A watch registered with the cache: events to replay, then live ones.
pub struct Subscription {
    pub backlog: Vec<Arc<CacheEvent>>,
    pub rx: broadcast::Receiver<Arc<CacheEvent>>,
    /// Live events with rv <= this were already delivered through the backlog or snapshot.
    pub after: Revision,
}

impl ResourceCache {
    fn new(
        def: &'static ResourceDef,
        capacity: usize,
        global_rv: watch::Receiver<Revision>,
    ) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        ResourceCache {
            def,
            ops: kinds::ops_for(def.storage_group, def.kind),
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                events: VecDeque::new(),
                history_from: 0,
                rv: 0,
                tx,
                stopped: false,
            }),
            capacity,
            global_rv,
        }
    }

    fn current_rv(&self, st: &State) -> Revision {
        (*self.global_rv.borrow()).max(st.rv)
    }

    /// The object at `key`.
    pub fn get(&self, key: &str) -> (Option<Arc<CachedObject>>, Revision) {
        let st = self.state.read();
        (st.objects.get(key).cloned(), self.current_rv(&st))
    }

    /// All objects under `prefix` (a resource or namespace prefix) after `start_after`.
    pub fn snapshot(&self, prefix: &str) -> Snapshot {
        let st = self.state.read();
        let objects = st
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, o)| o.clone())
            .collect();
        Snapshot {
            rv: self.current_rv(&st),
            objects,
        }
    }

    /// Whether any object of this resource changed after revision `rv` (if not, the
    /// cached state is the state at `rv`).
    pub fn changed_since(&self, rv: Revision) -> bool {
        self.state.read().rv > rv
    }

    /// The current revision of this resource's state.
    pub fn rv(&self) -> Revision {
        let st = self.state.read();
        self.current_rv(&st)
    }

    /// The revision a bookmark may carry for a watch that has delivered everything up to
    /// `delivered`: the current revision when no event is waiting in the watch's receiver,
    /// else `delivered`. A bookmark ahead of events the watch has not sent yet would make a
    /// client that reconnects after it skip those events.
    pub fn bookmark_rv(
        &self,
        rx: &broadcast::Receiver<Arc<CacheEvent>>,
        delivered: Revision,
    ) -> Revision {
        // Under the read lock no event can be sent (sending takes the write lock), so an
        // empty receiver means every event up to the current revision was received.
        let st = self.state.read();
        if rx.is_empty() {
            self.current_rv(&st).max(delivered)
        } else {
            delivered
        }
    }

    pub fn len(&self) -> usize {
        self.state.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a watch that starts after `rv`, or with the current state when `rv` is None
    /// (then the snapshot comes back as well).
    pub fn subscribe(
        &self,
        from: Option<Revision>,
        prefix: &str,
    ) -> Result<(Subscription, Option<Snapshot>), StatusError> {
        let st = self.state.read();
        if st.stopped {
            return Err(StatusError::service_unavailable(
                "the server is shutting down; retry the watch",
            ));
        }
        let rx = st.tx.subscribe();
        let current = self.current_rv(&st);
        match from {
            None => {
                let objects = st
                    .objects
                    .range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(_, o)| o.clone())
                    .collect();
                Ok((
                    Subscription {
                        backlog: Vec::new(),
                        rx,
                        after: current,
                    },
                    Some(Snapshot {
                        rv: current,
                        objects,
                    }),
                ))
            }
            Some(rv) => {
                if rv < st.history_from {
                    return Err(StatusError::too_old_resource_version(rv, st.history_from));
                }
                let backlog = st.events.iter().filter(|e| e.rv > rv).cloned().collect();
                Ok((
                    Subscription {
                        backlog,
                        rx,
                        after: current.max(rv),
                    },
                    None,
                ))
            }
        }
    }

    fn apply(&self, ev: &Event, prepared: Option<Arc<Prepared>>) {
        let ops = self.ops.map(|o| o as &dyn KindOps);
        // Built before taking the lock: readers never wait for a parse.
        let built = match (ev.event_type, prepared) {
            (EventType::Delete, _) => None,
            (_, Some(p)) => Some(p.cached(ev.revision)),
            (_, None) => CachedObject::build(&ev.kv.key, &ev.kv.value, ev.revision, ops),
        };
        let deleted = match ev.event_type {
            EventType::Delete => CachedObject::build(&ev.kv.key, &ev.kv.value, ev.revision, ops),
            _ => None,
        };
        let mut st = self.state.write();
        let prev = st.objects.get(&ev.kv.key).cloned();
        let event = match ev.event_type {
            EventType::Create | EventType::Update => {
                let Some(obj) = built else {
                    return;
                };
                let obj = Arc::new(obj);
                st.objects.insert(ev.kv.key.clone(), obj.clone());
                let event_type = if prev.is_some() {
                    WatchEventType::Modified
                } else {
                    WatchEventType::Added
                };
                CacheEvent {
                    event_type,
                    rv: ev.revision,
                    object: obj,
                    prev,
                    line: Default::default(),
                }
            }
            EventType::Delete => {
                st.objects.remove(&ev.kv.key);
                let Some(obj) = deleted else {
                    return;
                };
                CacheEvent {
                    event_type: WatchEventType::Deleted,
                    rv: ev.revision,
                    object: Arc::new(obj),
                    prev,
                    line: Default::default(),
                }
            }
        };
        let event = Arc::new(event);
        st.rv = ev.revision;
        st.events.push_back(event.clone());
        while st.events.len() > self.capacity {
            if let Some(old) = st.events.pop_front() {
                st.history_from = old.rv;
            }
        }
        // No receivers is fine.
        let _ = st.tx.send(event);
    }

    fn reset(&self, kvs: Vec<KeyValue>, rv: Revision) {
        let ops = self.ops.map(|o| o as &dyn KindOps);
        let mut objects = BTreeMap::new();
        for kv in kvs {
            if let Some(o) = CachedObject::build(&kv.key, &kv.value, kv.mod_revision, ops) {
                objects.insert(kv.key.clone(), Arc::new(o));
            }
        }
        let mut st = self.state.write();
        st.objects = objects;
        st.events.clear();
        st.history_from = rv;
        st.rv = rv;
        // Replacing the sender ends every existing watch: they restart from a fresh list.
        let (tx, _) = broadcast::channel(self.capacity.max(16));
        st.tx = tx;
    }
}

/// The watch cache of every resource.
pub struct Cache {
    store: Arc<dyn Store>,
    resources: HashMap<&'static str, Arc<ResourceCache>>,
    rv_tx: watch::Sender<Revision>,
    rv_rx: watch::Receiver<Revision>,
    follower: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    pending: parking_lot::Mutex<Pending>,
}

impl Cache {
    /// Loads every resource from the store and starts following it.
    pub async fn start(
        store: Arc<dyn Store>,
        capacity: usize,
    ) -> Result<Arc<Cache>, bosun_store::Error> {
        let (rv_tx, rv_rx) = watch::channel(0);
        let mut resources = HashMap::new();
        for def in RESOURCES.iter().filter(|d| d.is_storage_version()) {
            resources
                .entry(def.storage_prefix)
                .or_insert_with(|| Arc::new(ResourceCache::new(def, capacity, rv_rx.clone())));
        }
        let cache = Arc::new(Cache {
            store,
            resources,
            rv_tx,
            rv_rx,
            follower: parking_lot::Mutex::new(None),
            pending: parking_lot::Mutex::new(Pending::default()),
        });
        let rv = cache.load().await?;
        let c = cache.clone();
        *cache.follower.lock() = Some(tokio::spawn(async move { c.follow(rv).await }));
        Ok(cache)
    }

    /// Lists the whole registry at one revision and resets every resource to it.
    async fn load(&self) -> Result<Revision, bosun_store::Error> {
        let mut by_resource: HashMap<&'static str, Vec<KeyValue>> = HashMap::new();
        let mut opts = ListOptions {
            revision: None,
            start_after: None,
            limit: 10_000,
        };
        let rv = loop {
            let page = self.store.list(REGISTRY_PREFIX, opts.clone()).await?;
            opts.revision = Some(page.revision);
            opts.start_after = page.kvs.last().map(|kv| kv.key.clone());
            for kv in page.kvs {
                if let Some(rc) = self.resource_of_key(&kv.key) {
                    by_resource
                        .entry(rc.def.storage_prefix)
                        .or_default()
                        .push(kv);
                }
            }
            if !page.more {
                break page.revision;
            }
        };
        for (prefix, rc) in &self.resources {
            rc.reset(by_resource.remove(prefix).unwrap_or_default(), rv);
        }
        // Writes announced before the reload will not be seen as events any more.
        self.pending.lock().by_key.clear();
        self.rv_tx.send_replace(rv);
        Ok(rv)
    }

    async fn follow(self: Arc<Self>, mut rv: Revision) {
        loop {
            match self.store.watch("/", rv).await {
                Ok(mut stream) => {
                    while let Some(batch) = stream.next().await {
                        match batch {
                            Ok(events) => {
                                let mut last = rv;
                                for ev in &events {
                                    if let Some(rc) = self.resource_of_key(&ev.kv.key) {
                                        let prepared = match ev.event_type {
                                            EventType::Delete => None,
                                            _ => self.take_expected(&ev.kv.key, &ev.kv.value),
                                        };
                                        rc.apply(ev, prepared);
                                    }
                                    last = last.max(ev.revision);
                                }
                                rv = last;
                                self.rv_tx.send_replace(rv);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, rv, "store watch ended; restarting it");
                                break;
                            }
                        }
                    }
                }
                Err(bosun_store::Error::Closed) => return,
                Err(e) => tracing::warn!(error = %e, rv, "cannot watch the store"),
            }
            if self
                .store
                .compacted_revision()
                .await
                .map(|c| c > rv)
                .unwrap_or(false)
            {
                // We fell behind the store's history: start over from a fresh list.
                match self.load().await {
                    Ok(new_rv) => rv = new_rv,
                    Err(e) => tracing::warn!(error = %e, "cannot reload the cache"),
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Announces a write the registry is about to make (see [`Prepared`]).
    pub fn expect(self: &Arc<Self>, prepared: Prepared) -> Expected {
        let prepared = Arc::new(prepared);
        let mut p = self.pending.lock();
        p.next_id += 1;
        let id = p.next_id;
        p.by_key
            .entry(prepared.key.clone())
            .or_default()
            .push((id, prepared.clone()));
        Expected {
            cache: self.clone(),
            prepared,
            id,
            armed: true,
        }
    }

    /// The announced write whose bytes the store just reported for `key`, if any.
    fn take_expected(&self, key: &str, value: &Bytes) -> Option<Arc<Prepared>> {
        let mut p = self.pending.lock();
        let list = p.by_key.get_mut(key)?;
        let i = list.iter().position(|(_, pr)| pr.stored == *value)?;
        let (_, found) = list.swap_remove(i);
        if list.is_empty() {
            p.by_key.remove(key);
        }
        Some(found)
    }

    fn resource_of_key(&self, key: &str) -> Option<&Arc<ResourceCache>> {
        let rest = key.strip_prefix(REGISTRY_PREFIX)?;
        let prefix = rest.split('/').next()?;
        self.resources.get(prefix)
    }

    /// The cache of a resource (by its storage prefix).
    pub fn resource(&self, def: &ResourceDef) -> Option<&Arc<ResourceCache>> {
        self.resources.get(def.storage_prefix)
    }

    /// The revision the cache has caught up to.
    pub fn rv(&self) -> Revision {
        *self.rv_rx.borrow()
    }

    /// Waits until the cache has seen revision `rv` (or `timeout` passes).
    pub async fn wait_for(&self, rv: Revision, timeout: Duration) -> Result<(), StatusError> {
        let mut rx = self.rv_rx.clone();
        let res = tokio::time::timeout(timeout, async {
            rx.wait_for(|seen| *seen >= rv).await.map(|_| ())
        })
        .await;
        match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(StatusError::service_unavailable(
                "the watch cache has stopped",
            )),
            Err(_) => Err(StatusError::timeout(format!(
                "Too large resource version: {rv}, current: {}",
                self.rv()
            ))),
        }
    }

    /// Waits until the cache reflects every write acknowledged so far (a consistent read).
    pub async fn sync(&self) -> Result<Revision, StatusError> {
        let current = self
            .store
            .current_revision()
            .await
            .map_err(|e| StatusError::internal(e.to_string()))?;
        self.wait_for(current, Duration::from_secs(3)).await?;
        Ok(current)
    }

    /// Stops following the store (the server is stopping), releasing it.
    pub fn stop(&self) {
        if let Some(t) = self.follower.lock().take() {
            t.abort();
        }
        // End every open watch, so clients reconnect (to whichever server serves next).
        for rc in self.resources.values() {
            let (tx, _) = broadcast::channel(16);
            let mut st = rc.state.write();
            st.tx = tx;
            st.stopped = true;
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_ops() -> Option<&'static dyn KindOps> {
        kinds::ops_for("", "Pod")
    }

    /// The object the registry encodes and the one the cache would build from the store's
    /// bytes are the same JSON, with the same labels and fields.
    #[test]
    fn prepared_matches_what_the_cache_builds() {
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"},
                         "resourceVersion": "7", "uid": "u"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}
        });
        let key = "/registry/pods/ns/p";
        let p = Prepared::encode(key, &obj, pod_ops()).unwrap().unwrap();
        // The store gets no resourceVersion.
        let stored: Value = serde_json::from_slice(&p.stored).unwrap();
        assert!(stored.pointer("/metadata/resourceVersion").is_none());
        assert_eq!(stored.pointer("/metadata/uid"), Some(&json!("u")));
        let built = CachedObject::build(key, &p.stored, 42, pod_ops()).unwrap();
        let handed = p.cached(42);
        let a: Value = serde_json::from_slice(&built.bytes).unwrap();
        let b: Value = serde_json::from_slice(&handed.bytes).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.pointer("/metadata/resourceVersion"), Some(&json!("42")));
        assert_eq!(built.labels, handed.labels);
        assert_eq!(built.fields, handed.fields);
        assert!(handed.fields.contains(&("spec.nodeName", "n1".to_string())));
        assert_eq!(
            (handed.name.as_str(), handed.namespace.as_str()),
            ("p", "ns")
        );
    }

    /// Metadata holding only a resourceVersion still gives valid JSON (no stray comma).
    #[test]
    fn prepared_with_metadata_of_only_a_resource_version() {
        let obj = json!({"kind": "ConfigMap", "metadata": {"resourceVersion": "1"}, "data": {}});
        let p = Prepared::encode("/registry/configmaps/x", &obj, None)
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&p.with_rv(5)).unwrap();
        assert_eq!(v["metadata"], json!({"resourceVersion": "5"}));
        let none = Prepared::encode("/registry/configmaps/x", &json!({"kind": "X"}), None).unwrap();
        assert!(none.is_none());
    }

    /// An announcement is taken by the matching event once, and withdrawn when the
    /// registry drops it unwritten.
    #[tokio::test]
    async fn announced_writes_are_taken_once_or_withdrawn() {
        let store: Arc<dyn Store> =
            Arc::new(bosun_store::sqlite::SqliteStore::open_in_memory().unwrap());
        let cache = Cache::start(store, 100).await.unwrap();
        let obj = json!({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "d"}});
        let key = "/registry/configmaps/d/a";
        let p = Prepared::encode(key, &obj, None).unwrap().unwrap();
        let stored = p.stored.clone();
        let e = cache.expect(p);
        e.written();
        assert!(cache
            .take_expected(key, &Bytes::from_static(b"{}"))
            .is_none());
        assert!(cache.take_expected(key, &stored).is_some());
        assert!(cache.take_expected(key, &stored).is_none());
        let p = Prepared::encode(key, &obj, None).unwrap().unwrap();
        drop(cache.expect(p));
        assert!(cache.take_expected(key, &stored).is_none());
        assert!(cache.pending.lock().by_key.is_empty());
    }

    /// A bookmark never runs ahead of events a watch has received but not yet sent.
    #[tokio::test]
    async fn bookmarks_wait_for_queued_events() {
        let store: Arc<dyn Store> =
            Arc::new(bosun_store::sqlite::SqliteStore::open_in_memory().unwrap());
        let cache = Cache::start(store.clone(), 100).await.unwrap();
        let def = RESOURCES
            .iter()
            .find(|d| d.plural == "configmaps" && d.is_storage_version())
            .unwrap();
        let rc = cache.resource(def).unwrap().clone();
        let (mut sub, _) = rc.subscribe(None, "/registry/configmaps/").unwrap();
        let start = sub.after;
        let kv = store
            .create(
                "/registry/configmaps/d/a",
                Bytes::from_static(
                    br#"{"kind":"ConfigMap","metadata":{"name":"a","namespace":"d"}}"#,
                ),
            )
            .await
            .unwrap();
        cache
            .wait_for(kv.mod_revision, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(rc.bookmark_rv(&sub.rx, start), start, "event still queued");
        let ev = sub.rx.recv().await.unwrap();
        assert_eq!(ev.rv, kv.mod_revision);
        assert_eq!(rc.bookmark_rv(&sub.rx, ev.rv), kv.mod_revision);
    }
}
