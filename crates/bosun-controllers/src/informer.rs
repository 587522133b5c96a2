//! Shared informers: one kube-runtime watcher per resource feeds an indexed in-memory cache
//! and the event handlers of every controller that registered one, so that controllers
//! read from memory and never LIST per reconcile. kube-runtime's reflector store has no
//! indexes and hands out no old object on update, which both expectations and "which
//! owners care about this pod" need, hence this cache over its watcher.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource};
use parking_lot::{Mutex, RwLock};
use serde::de::DeserializeOwned;

/// What happened to one object, as the handlers see it; the cache already reflects it.
pub enum Change<'a, K> {
    Added(&'a Arc<K>),
    Updated { old: &'a Arc<K>, new: &'a Arc<K> },
    Deleted(&'a Arc<K>),
}

type HandlerFn<K> = Arc<dyn Fn(Change<'_, K>) + Send + Sync>;
type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;
/// (old, new) of one object across a relist.
type ChangePair<K> = (Option<Arc<K>>, Option<Arc<K>>);

/// `namespace/name`, or `name` for cluster-scoped objects: the key of caches and queues.
pub fn key_of<K: Resource>(obj: &K) -> String {
    match obj.meta().namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", obj.meta().name.as_deref().unwrap_or("")),
        _ => obj.meta().name.clone().unwrap_or_default(),
    }
}

/// Splits a key into namespace ("" when cluster-scoped) and name.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

struct Index<K> {
    f: IndexFn<K>,
    map: HashMap<String, HashSet<String>>,
}

struct Cache<K> {
    objects: HashMap<String, Arc<K>>,
    by_namespace: HashMap<String, HashSet<String>>,
    indexes: HashMap<&'static str, Index<K>>,
}

impl<K: Resource> Cache<K> {
    fn insert(&mut self, key: String, obj: Arc<K>) -> Option<Arc<K>> {
        let old = self.remove(&key);
        let ns = obj.meta().namespace.clone().unwrap_or_default();
        self.by_namespace.entry(ns).or_default().insert(key.clone());
        for idx in self.indexes.values_mut() {
            for v in (idx.f)(&obj) {
                idx.map.entry(v).or_default().insert(key.clone());
            }
        }
        self.objects.insert(key, obj);
        old
    }

    fn remove(&mut self, key: &str) -> Option<Arc<K>> {
        let old = self.objects.remove(key)?;
        let ns = old.meta().namespace.clone().unwrap_or_default();
        if let Some(set) = self.by_namespace.get_mut(&ns) {
            set.remove(key);
            if set.is_empty() {
                self.by_namespace.remove(&ns);
            }
        }
        for idx in self.indexes.values_mut() {
            for v in (idx.f)(&old) {
                if let Some(set) = idx.map.get_mut(&v) {
                    set.remove(key);
                    if set.is_empty() {
                        idx.map.remove(&v);
                    }
                }
            }
        }
        Some(old)
    }
}

struct Inner<K> {
    what: String,
    cache: RwLock<Cache<K>>,
    handlers: RwLock<Vec<HandlerFn<K>>>,
    synced: tokio::sync::watch::Sender<bool>,
}

/// A cloneable handle to one resource's cache and handlers.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            inner: self.inner.clone(),
        }
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
{
    /// An empty informer; `what` names the resource in logs.
    pub fn new(what: impl Into<String>) -> Informer<K> {
        let (synced, _) = tokio::sync::watch::channel(false);
        Informer {
            inner: Arc::new(Inner {
                what: what.into(),
                cache: RwLock::new(Cache {
                    objects: HashMap::new(),
                    by_namespace: HashMap::new(),
                    indexes: HashMap::new(),
                }),
                handlers: RwLock::new(Vec::new()),
                synced,
            }),
        }
    }

    /// Registers an event handler. Handlers must only enqueue work: they run on the
    /// informer's task, in event order.
    pub fn add_handler(&self, f: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        self.inner.handlers.write().push(Arc::new(f));
    }

    /// Adds a named index: `f` gives the values an object is found under.
    pub fn add_index(
        &self,
        name: &'static str,
        f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) {
        let mut cache = self.inner.cache.write();
        let f: IndexFn<K> = Arc::new(f);
        let mut map: HashMap<String, HashSet<String>> = HashMap::new();
        for (key, obj) in &cache.objects {
            for v in f(obj) {
                map.entry(v).or_default().insert(key.clone());
            }
        }
        cache.indexes.insert(name, Index { f, map });
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let key = if namespace.is_empty() {
            name.to_string()
        } else {
            format!("{namespace}/{name}")
        };
        self.get_key(&key)
    }

    pub fn get_key(&self, key: &str) -> Option<Arc<K>> {
        self.inner.cache.read().objects.get(key).cloned()
    }

    pub fn list(&self) -> Vec<Arc<K>> {
        self.inner.cache.read().objects.values().cloned().collect()
    }

    pub fn keys(&self) -> Vec<String> {
        self.inner.cache.read().objects.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.inner.cache.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects of one namespace ("" for cluster-scoped objects).
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let cache = self.inner.cache.read();
        cache
            .by_namespace
            .get(namespace)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| cache.objects.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The objects found under `value` in the index `name` (empty for an unknown index).
    pub fn by_index(&self, name: &str, value: &str) -> Vec<Arc<K>> {
        let cache = self.inner.cache.read();
        cache
            .indexes
            .get(name)
            .and_then(|idx| idx.map.get(value))
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| cache.objects.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn has_synced(&self) -> bool {
        *self.inner.synced.borrow()
    }

    /// Waits for the first complete list.
    pub async fn wait_synced(&self) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn notify(&self, change: Change<'_, K>) {
        let handlers = self.inner.handlers.read().clone();
        match change {
            Change::Added(o) => handlers.iter().for_each(|h| h(Change::Added(o))),
            Change::Updated { old, new } => handlers
                .iter()
                .for_each(|h| h(Change::Updated { old, new })),
            Change::Deleted(o) => handlers.iter().for_each(|h| h(Change::Deleted(o))),
        }
    }

    /// Applies one watcher event to the cache and tells the handlers. `buffer` holds the
    /// objects of a relist until it completes, so the cache is swapped atomically.
    pub fn apply(&self, event: watcher::Event<K>, buffer: &mut Option<HashMap<String, Arc<K>>>) {
        match event {
            watcher::Event::Apply(obj) => {
                let key = key_of(&obj);
                let obj = Arc::new(obj);
                let old = self.inner.cache.write().insert(key, obj.clone());
                match old {
                    Some(old) => self.notify(Change::Updated {
                        old: &old,
                        new: &obj,
                    }),
                    None => self.notify(Change::Added(&obj)),
                }
            }
            watcher::Event::Delete(obj) => {
                let key = key_of(&obj);
                let old = self.inner.cache.write().remove(&key);
                let obj = Arc::new(obj);
                if old.is_some() {
                    self.notify(Change::Deleted(&obj));
                }
            }
            watcher::Event::Init => *buffer = Some(HashMap::new()),
            watcher::Event::InitApply(obj) => {
                buffer
                    .get_or_insert_with(HashMap::new)
                    .insert(key_of(&obj), Arc::new(obj));
            }
            watcher::Event::InitDone => {
                let fresh = buffer.take().unwrap_or_default();
                let mut changes: Vec<ChangePair<K>> = Vec::new();
                {
                    let mut cache = self.inner.cache.write();
                    let gone: Vec<String> = cache
                        .objects
                        .keys()
                        .filter(|k| !fresh.contains_key(*k))
                        .cloned()
                        .collect();
                    for k in gone {
                        if let Some(old) = cache.remove(&k) {
                            changes.push((Some(old), None));
                        }
                    }
                    for (k, obj) in fresh {
                        let old = cache.insert(k, obj.clone());
                        let unchanged = old.as_ref().is_some_and(|o| {
                            o.meta().resource_version.is_some()
                                && o.meta().resource_version == obj.meta().resource_version
                        });
                        if !unchanged {
                            changes.push((old, Some(obj)));
                        }
                    }
                }
                let _ = self.inner.synced.send_replace(true);
                for change in changes {
                    match change {
                        (Some(old), Some(new)) => self.notify(Change::Updated {
                            old: &old,
                            new: &new,
                        }),
                        (None, Some(new)) => self.notify(Change::Added(&new)),
                        (Some(old), None) => self.notify(Change::Deleted(&old)),
                        (None, None) => {}
                    }
                }
            }
        }
    }

    /// Feeds the informer from a watcher stream until it ends.
    pub async fn run<S>(self, stream: S)
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    {
        let mut buffer = None;
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => self.apply(ev, &mut buffer),
                Err(e) => {
                    tracing::warn!(resource = %self.inner.what, error = %e, "watch failed, retrying")
                }
            }
        }
    }
}

/// One informer per typed resource, shared by every controller that asks for it. Informers
/// start only when `start` is called, after all controllers registered their handlers.
pub struct Informers {
    client: Client,
    map: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    pending: Mutex<Vec<BoxFuture<'static, ()>>>,
}

impl Informers {
    pub fn new(client: Client) -> Informers {
        Informers {
            client,
            map: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The shared informer of `K` across all namespaces.
    pub fn get<K>(&self) -> Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let mut map = self.map.lock();
        if let Some(i) = map
            .get(&TypeId::of::<K>())
            .and_then(|b| b.downcast_ref::<Informer<K>>())
        {
            return i.clone();
        }
        let informer: Informer<K> = Informer::new(K::plural(&()).into_owned());
        map.insert(TypeId::of::<K>(), Box::new(informer.clone()));
        let api: Api<K> = Api::all(self.client.clone());
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        let runner = informer.clone();
        self.pending
            .lock()
            .push(Box::pin(async move { runner.run(stream).await }));
        informer
    }

    /// Starts every informer asked for so far.
    pub fn start(&self, tasks: &mut tokio::task::JoinSet<()>) {
        for fut in self.pending.lock().drain(..) {
            tasks.spawn(fut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube::ResourceExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pod(ns: &str, name: &str, rv: &str, label: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.namespace = Some(ns.into());
        p.metadata.name = Some(name.into());
        p.metadata.resource_version = Some(rv.into());
        p.metadata.labels = Some([("app".to_string(), label.to_string())].into());
        p
    }

    fn app_index(p: &Pod) -> Vec<String> {
        p.labels().get("app").cloned().into_iter().collect()
    }

    #[test]
    fn events_update_cache_indexes_and_handlers() {
        let inf: Informer<Pod> = Informer::new("pods");
        inf.add_index("app", app_index);
        let adds = Arc::new(AtomicUsize::new(0));
        let updates = Arc::new(AtomicUsize::new(0));
        let deletes = Arc::new(AtomicUsize::new(0));
        let (a, u, d) = (adds.clone(), updates.clone(), deletes.clone());
        inf.add_handler(move |c| match c {
            Change::Added(_) => {
                a.fetch_add(1, Ordering::SeqCst);
            }
            Change::Updated { .. } => {
                u.fetch_add(1, Ordering::SeqCst);
            }
            Change::Deleted(_) => {
                d.fetch_add(1, Ordering::SeqCst);
            }
        });
        let mut buf = None;
        inf.apply(watcher::Event::Init, &mut buf);
        inf.apply(
            watcher::Event::InitApply(pod("a", "p1", "1", "x")),
            &mut buf,
        );
        inf.apply(
            watcher::Event::InitApply(pod("b", "p2", "2", "y")),
            &mut buf,
        );
        assert!(inf.is_empty(), "relist is applied only when complete");
        inf.apply(watcher::Event::InitDone, &mut buf);
        assert!(inf.has_synced());
        assert_eq!(adds.load(Ordering::SeqCst), 2);
        assert_eq!(inf.list_namespace("a").len(), 1);
        assert_eq!(inf.by_index("app", "y").len(), 1);

        inf.apply(watcher::Event::Apply(pod("a", "p1", "3", "y")), &mut buf);
        assert_eq!(updates.load(Ordering::SeqCst), 1);
        assert_eq!(inf.by_index("app", "x").len(), 0);
        assert_eq!(inf.by_index("app", "y").len(), 2);

        // A relist that no longer has p2 reports it deleted; unchanged p1 is quiet.
        inf.apply(watcher::Event::Init, &mut buf);
        inf.apply(
            watcher::Event::InitApply(pod("a", "p1", "3", "y")),
            &mut buf,
        );
        inf.apply(watcher::Event::InitDone, &mut buf);
        assert_eq!(deletes.load(Ordering::SeqCst), 1);
        assert_eq!(updates.load(Ordering::SeqCst), 1);
        assert!(inf.get("b", "p2").is_none());
        assert!(inf.list_namespace("b").is_empty());

        inf.apply(watcher::Event::Delete(pod("a", "p1", "4", "y")), &mut buf);
        assert_eq!(deletes.load(Ordering::SeqCst), 2);
        assert!(inf.is_empty());
        assert!(inf.by_index("app", "y").is_empty());
    }

    #[test]
    fn keys() {
        let p = pod("ns", "n", "1", "x");
        assert_eq!(key_of(&p), "ns/n");
        assert_eq!(split_key("ns/n"), ("ns", "n"));
        assert_eq!(split_key("node1"), ("", "node1"));
    }
}
