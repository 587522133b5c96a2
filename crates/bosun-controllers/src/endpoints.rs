//! Endpoints and EndpointSlices from Service selectors and pod readiness, as upstream's
//! endpoint and endpointslice controllers: ready and not-ready addresses, named target
//! ports resolved per pod, slices of at most 100 endpoints owned by their Service.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bosun_api::selector::LabelSelector;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Node, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};
use parking_lot::Mutex;

use crate::informer::{key_of, split_key, Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::util::{self, is_pod_ready};
use crate::{Error, Result};

/// Label naming the Service of an EndpointSlice.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming who manages an EndpointSlice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Label on Endpoints and slices of headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Upstream's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Upstream's `maxCapacity` of an Endpoints object.
pub const MAX_ENDPOINTS_ADDRESSES: usize = 1000;
const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

/// Upstream's `ShouldPodBeInEndpoints`.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let has_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty());
    if !has_ip {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let phase = util::pod_phase(pod);
    match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
        Some("Never") => phase != "Failed" && phase != "Succeeded",
        Some("OnFailure") => phase != "Succeeded",
        _ => true,
    }
}

/// Upstream's `podutil.FindPort`: the pod's port for a Service port (a named target port
/// is looked up among the pod's container ports of the same protocol).
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let proto = sp.protocol.as_deref().unwrap_or("TCP");
    match sp.target_port.as_ref() {
        None => Some(sp.port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == proto
                })
                .map(|p| p.container_port)
        }
    }
}

fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

fn pod_ips(pod: &Pod) -> Vec<String> {
    let s = pod.status.as_ref();
    let mut ips: Vec<String> = s
        .and_then(|s| s.pod_ips.as_ref())
        .map(|v| v.iter().map(|p| p.ip.clone()).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        ips.extend(s.and_then(|s| s.pod_ip.clone()).filter(|ip| !ip.is_empty()));
    }
    ips
}

fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn selector_of(svc: &Service) -> Option<LabelSelector> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().map(LabelSelector::from_set)
}

fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// The hostname a pod publishes under a Service (its `hostname` when its `subdomain` is
/// the Service's name).
fn pod_hostname(pod: &Pod, svc: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let h = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref()
        && pod.metadata.namespace == svc.metadata.namespace)
        .then(|| h.to_string())
}

/// Whether a pod change can change any Service's endpoints.
fn pod_changed_for_endpoints(old: &Pod, new: &Pod) -> bool {
    old.metadata.resource_version != new.metadata.resource_version
        && (old.metadata.labels != new.metadata.labels
            || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
            || is_pod_ready(old) != is_pod_ready(new)
            || pod_ips(old) != pod_ips(new)
            || util::pod_phase(old) != util::pod_phase(new)
            || old
                .spec
                .as_ref()
                .map(|s| (&s.node_name, &s.hostname, &s.subdomain))
                != new
                    .spec
                    .as_ref()
                    .map(|s| (&s.node_name, &s.hostname, &s.subdomain)))
}

/// Services selecting a pod, for both controllers.
fn services_for(services: &Informer<Service>, pod: &Pod) -> Vec<String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    services
        .list_namespace(ns)
        .into_iter()
        .filter(|s| {
            selector_of(s).is_some_and(|sel| {
                !sel.is_empty() && sel.matches_labels(pod.metadata.labels.as_ref())
            })
        })
        .map(|s| key_of(s.as_ref()))
        .collect()
}

fn register_pod_handler(
    pods: &Informer<Pod>,
    services: Informer<Service>,
    queue: WorkQueue<String>,
) {
    pods.add_handler(move |ch| {
        let keys: HashSet<String> = match ch {
            Change::Added(p) | Change::Deleted(p) => {
                services_for(&services, p).into_iter().collect()
            }
            Change::Updated { old, new } => {
                if !pod_changed_for_endpoints(old, new) {
                    return;
                }
                let mut k: HashSet<String> = services_for(&services, new).into_iter().collect();
                if old.metadata.labels != new.metadata.labels {
                    k.extend(services_for(&services, old));
                }
                k
            }
        };
        for k in keys {
            queue.add(k);
        }
    });
}

fn register_service_handler(services: &Informer<Service>, queue: WorkQueue<String>) {
    services.add_handler(move |ch| {
        let s = match ch {
            Change::Added(s) | Change::Deleted(s) => s,
            Change::Updated { new, .. } => new,
        };
        queue.add(key_of(s.as_ref()));
    });
}

// ---- Endpoints -----------------------------------------------------------------------

pub(crate) struct EndpointsController {
    client: Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    endpoints: Informer<Endpoints>,
    queue: WorkQueue<String>,
}

impl EndpointsController {
    pub(crate) fn new(informers: &Informers) -> Arc<Self> {
        let c = Arc::new(EndpointsController {
            client: informers.client().clone(),
            services: informers.get::<Service>(),
            pods: informers.get::<Pod>(),
            endpoints: informers.get::<Endpoints>(),
            queue: WorkQueue::new(),
        });
        register_service_handler(&c.services, c.queue.clone());
        register_pod_handler(&c.pods, c.services.clone(), c.queue.clone());
        let q = c.queue.clone();
        c.endpoints.add_handler(move |ch| {
            // Someone deleted our Endpoints: put them back.
            if let Change::Deleted(e) = ch {
                q.add(key_of(e.as_ref()));
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.services.wait_synced().await;
        self.pods.wait_synced().await;
        self.endpoints.wait_synced().await;
        let me = self.clone();
        util::run_workers(
            "endpoints-controller",
            self.queue.clone(),
            workers,
            move |key| {
                let me = me.clone();
                async move { me.sync(&key).await }
            },
        )
        .await
    }

    async fn sync(&self, key: &str) -> Result<()> {
        let (ns, name) = split_key(key);
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self.services.get_key(key) else {
            // The Service is gone: so are its Endpoints (if we made them).
            if self.endpoints.get_key(key).is_some() {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(Error::api("delete", format!("endpoints {key}"), e)),
                }
            }
            return Ok(());
        };
        let Some(selector) = selector_of(&svc) else {
            return Ok(());
        };
        let subsets = self.compute_subsets(&svc, &selector);
        let mut labels: BTreeMap<String, String> = svc.labels().clone();
        if is_headless(&svc) {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        } else {
            labels.remove(HEADLESS_LABEL);
        }
        let total: usize = subsets
            .iter()
            .map(|s| {
                s.addresses.as_ref().map_or(0, Vec::len)
                    + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
            })
            .sum();
        let (subsets, over) = if total > MAX_ENDPOINTS_ADDRESSES {
            (truncate(subsets, MAX_ENDPOINTS_ADDRESSES), true)
        } else {
            (subsets, false)
        };
        let subsets_opt = (!subsets.is_empty()).then_some(subsets);
        let current = self.endpoints.get_key(key);
        if let Some(cur) = &current {
            let same_labels = cur.labels() == &labels;
            let same_over = cur.annotations().contains_key(OVER_CAPACITY_ANNOTATION) == over;
            if cur.subsets == subsets_opt && same_labels && same_over {
                return Ok(());
            }
        }
        let mut ep = match &current {
            Some(cur) => (**cur).clone(),
            None => Endpoints {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(ns.to_string()),
                    ..Default::default()
                },
                subsets: None,
            },
        };
        ep.subsets = subsets_opt;
        ep.metadata.labels = (!labels.is_empty()).then_some(labels);
        let ann = ep.annotations_mut();
        if over {
            ann.insert(OVER_CAPACITY_ANNOTATION.into(), "truncated".into());
        } else {
            ann.remove(OVER_CAPACITY_ANNOTATION);
        }
        if ep
            .metadata
            .annotations
            .as_ref()
            .is_some_and(BTreeMap::is_empty)
        {
            ep.metadata.annotations = None;
        }
        let res = if current.is_some() {
            api.replace(name, &PostParams::default(), &ep).await
        } else {
            api.create(&PostParams::default(), &ep).await
        };
        match res {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api(
                    if current.is_some() {
                        "update"
                    } else {
                        "create"
                    },
                    format!("endpoints {key}"),
                    e,
                );
                if e.is_namespace_terminating() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    fn compute_subsets(&self, svc: &Service, selector: &LabelSelector) -> Vec<EndpointSubset> {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("");
        let tolerate = publish_not_ready(svc);
        let ports: Vec<ServicePort> = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default();
        let mut raw: Vec<(EndpointAddress, bool, Option<EndpointPort>)> = Vec::new();
        for pod in self.pods.list_namespace(ns) {
            if !selector.matches_labels(pod.metadata.labels.as_ref()) {
                continue;
            }
            if !should_pod_be_in_endpoints(&pod, tolerate) {
                continue;
            }
            let ready = tolerate || is_pod_ready(&pod);
            for ip in pod_ips(&pod).into_iter().take(1) {
                let addr = EndpointAddress {
                    ip,
                    hostname: pod_hostname(&pod, svc),
                    node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                    target_ref: Some(pod_ref(&pod)),
                };
                if ports.is_empty() {
                    if is_headless(svc) {
                        raw.push((addr, ready, None));
                    }
                    continue;
                }
                for sp in &ports {
                    let Some(port) = find_port(&pod, sp) else {
                        continue;
                    };
                    raw.push((
                        addr.clone(),
                        ready,
                        Some(EndpointPort {
                            name: sp.name.clone(),
                            port,
                            protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                            app_protocol: sp.app_protocol.clone(),
                        }),
                    ));
                }
            }
        }
        repack(raw)
    }
}

fn port_key(p: &EndpointPort) -> (String, i32, String, String) {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_default(),
        p.app_protocol.clone().unwrap_or_default(),
    )
}

fn addr_key(a: &EndpointAddress) -> (String, String) {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

/// Upstream's `RepackSubsets`: addresses grouped by the exact set of ports they offer,
/// in a canonical order so that an unchanged set compares equal.
pub fn repack(raw: Vec<(EndpointAddress, bool, Option<EndpointPort>)>) -> Vec<EndpointSubset> {
    // address → (address, ready, ports)
    let mut by_addr: BTreeMap<(String, String), (EndpointAddress, bool, Vec<EndpointPort>)> =
        BTreeMap::new();
    for (addr, ready, port) in raw {
        let e = by_addr
            .entry(addr_key(&addr))
            .or_insert_with(|| (addr, ready, Vec::new()));
        if let Some(p) = port {
            if !e.2.iter().any(|q| port_key(q) == port_key(&p)) {
                e.2.push(p);
            }
        }
    }
    let mut groups: BTreeMap<Vec<(String, i32, String, String)>, EndpointSubset> = BTreeMap::new();
    for (_, (addr, ready, mut ports)) in by_addr {
        ports.sort_by_key(port_key);
        let key: Vec<_> = ports.iter().map(port_key).collect();
        let s = groups.entry(key).or_insert_with(|| EndpointSubset {
            addresses: None,
            not_ready_addresses: None,
            ports: (!ports.is_empty()).then(|| ports.clone()),
        });
        if ready {
            s.addresses.get_or_insert_with(Vec::new).push(addr);
        } else {
            s.not_ready_addresses
                .get_or_insert_with(Vec::new)
                .push(addr);
        }
    }
    groups.into_values().collect()
}

/// Keeps at most `max` addresses, ready ones first (upstream's over-capacity truncation).
fn truncate(subsets: Vec<EndpointSubset>, max: usize) -> Vec<EndpointSubset> {
    let mut left = max;
    let mut out = Vec::new();
    for mut s in subsets {
        if let Some(a) = s.addresses.as_mut() {
            a.truncate(left);
            left -= a.len();
        }
        out.push(s);
    }
    for s in out.iter_mut() {
        if let Some(a) = s.not_ready_addresses.as_mut() {
            a.truncate(left);
            left -= a.len();
        }
    }
    out.retain(|s| {
        s.addresses.as_ref().is_some_and(|a| !a.is_empty())
            || s.not_ready_addresses
                .as_ref()
                .is_some_and(|a| !a.is_empty())
    });
    for s in out.iter_mut() {
        if s.addresses.as_ref().is_some_and(Vec::is_empty) {
            s.addresses = None;
        }
        if s.not_ready_addresses.as_ref().is_some_and(Vec::is_empty) {
            s.not_ready_addresses = None;
        }
    }
    out
}

// ---- EndpointSlices --------------------------------------------------------------------

/// Endpoints wanted in slices of one address type and one set of resolved ports.
type DesiredGroup = ((String, Vec<SlicePort>), Vec<Endpoint>);

/// Slice writes not yet visible in the cache, per Service, so a sync never acts on a
/// cache that misses its own last writes (upstream's `endpointSliceTracker`).
#[derive(Default)]
struct SliceTracker {
    /// service key → slice name → generation written (None: deleted).
    written: HashMap<String, HashMap<String, Option<i64>>>,
}

pub(crate) struct EndpointSliceController {
    client: Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    slices: Informer<EndpointSlice>,
    queue: WorkQueue<String>,
    tracker: Mutex<SliceTracker>,
    max_per_slice: usize,
}

const BY_SERVICE: &str = "service";

impl EndpointSliceController {
    pub(crate) fn new(informers: &Informers) -> Arc<Self> {
        let slices = informers.get::<EndpointSlice>();
        slices.add_index(BY_SERVICE, |s: &EndpointSlice| {
            if s.labels().get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
                return Vec::new();
            }
            s.labels()
                .get(SERVICE_NAME_LABEL)
                .map(|n| format!("{}/{n}", s.metadata.namespace.as_deref().unwrap_or("")))
                .into_iter()
                .collect()
        });
        let c = Arc::new(EndpointSliceController {
            client: informers.client().clone(),
            services: informers.get::<Service>(),
            pods: informers.get::<Pod>(),
            nodes: informers.get::<Node>(),
            slices,
            queue: WorkQueue::new(),
            tracker: Mutex::new(SliceTracker::default()),
            max_per_slice: MAX_ENDPOINTS_PER_SLICE,
        });
        register_service_handler(&c.services, c.queue.clone());
        register_pod_handler(&c.pods, c.services.clone(), c.queue.clone());
        let me = Arc::downgrade(&c);
        c.slices.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let s = match ch {
                Change::Added(s) | Change::Deleted(s) => s,
                Change::Updated { new, .. } => new,
            };
            if s.labels().get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
                return;
            }
            if let Some(svc) = s.labels().get(SERVICE_NAME_LABEL) {
                c.queue.add(format!(
                    "{}/{svc}",
                    s.metadata.namespace.as_deref().unwrap_or("")
                ));
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.services.wait_synced().await;
        self.pods.wait_synced().await;
        self.nodes.wait_synced().await;
        self.slices.wait_synced().await;
        let me = self.clone();
        util::run_workers(
            "endpointslice-controller",
            self.queue.clone(),
            workers,
            move |key| {
                let me = me.clone();
                async move { me.sync(&key).await }
            },
        )
        .await
    }

    /// Whether the cache shows every slice write made for `key`; forgets writes it shows.
    fn cache_current(&self, key: &str) -> bool {
        let mut t = self.tracker.lock();
        let Some(w) = t.written.get_mut(key) else {
            return true;
        };
        let (ns, _) = split_key(key);
        w.retain(|name, gen| {
            let cached = self.slices.get(ns, name);
            match gen {
                None => cached.is_some(),
                Some(g) => cached.is_none_or(|c| c.metadata.generation.unwrap_or(0) < *g),
            }
        });
        let current = w.is_empty();
        if current {
            t.written.remove(key);
        }
        current
    }

    fn track(&self, key: &str, name: String, generation: Option<i64>) {
        self.tracker
            .lock()
            .written
            .entry(key.to_string())
            .or_default()
            .insert(name, generation);
    }

    async fn sync(&self, key: &str) -> Result<()> {
        let (ns, _) = split_key(key);
        let Some(svc) = self.services.get_key(key) else {
            // Slices are owned by the Service: the garbage collector removes them.
            self.tracker.lock().written.remove(key);
            return Ok(());
        };
        let Some(selector) = selector_of(&svc) else {
            return Ok(());
        };
        if !self.cache_current(key) {
            // Our own writes are not in the cache yet; their events will bring us back.
            self.queue
                .add_after(key.to_string(), Duration::from_millis(200));
            return Ok(());
        }
        let mut missing_node = false;
        let desired = self.desired(&svc, &selector, &mut missing_node);
        if missing_node {
            self.queue
                .add_after(key.to_string(), Duration::from_secs(5));
        }
        let existing: Vec<Arc<EndpointSlice>> = self.slices.by_index(BY_SERVICE, key);
        tracing::debug!(
            key,
            groups = desired.len(),
            existing = existing.len(),
            "syncing endpoint slices"
        );
        let labels = self.slice_labels(&svc);
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);

        // Pair desired chunks with existing slices of the same address type and ports.
        let mut unused: Vec<Arc<EndpointSlice>> = existing.clone();
        let mut creates: Vec<EndpointSlice> = Vec::new();
        let mut updates: Vec<EndpointSlice> = Vec::new();
        for ((addr_type, ports), eps) in desired {
            let chunks: Vec<Vec<Endpoint>> = if eps.is_empty() {
                Vec::new()
            } else {
                eps.chunks(self.max_per_slice).map(|c| c.to_vec()).collect()
            };
            let mut pending: Vec<Vec<Endpoint>> = Vec::new();
            for chunk in chunks {
                // An existing slice with exactly this content and labels stays as it is.
                if let Some(i) = unused.iter().position(|s| {
                    s.address_type == addr_type
                        && s.ports.clone().unwrap_or_default() == ports
                        && same_endpoints(&s.endpoints, &chunk)
                        && s.labels() == &labels
                }) {
                    unused.remove(i);
                } else {
                    pending.push(chunk);
                }
            }
            for chunk in pending {
                if let Some(i) = unused.iter().position(|s| {
                    s.address_type == addr_type && s.ports.clone().unwrap_or_default() == ports
                }) {
                    let mut s = (*unused.remove(i)).clone();
                    s.endpoints = chunk;
                    s.metadata.labels = Some(labels.clone());
                    updates.push(s);
                } else {
                    creates.push(EndpointSlice {
                        metadata: ObjectMeta {
                            generate_name: Some(util::pods_prefix(&svc.name_any())),
                            namespace: Some(ns.to_string()),
                            labels: Some(labels.clone()),
                            owner_references: Some(vec![util::new_controller_ref(svc.as_ref())]),
                            ..Default::default()
                        },
                        address_type: addr_type.clone(),
                        endpoints: chunk,
                        ports: Some(ports.clone()),
                    });
                }
            }
        }
        // A Service without any endpoints still gets one (empty) slice, as upstream.
        if existing.is_empty() && creates.is_empty() && updates.is_empty() {
            let addr_type = svc
                .spec
                .as_ref()
                .and_then(|s| s.ip_families.as_ref())
                .and_then(|f| f.first().cloned())
                .unwrap_or_else(|| "IPv4".into());
            creates.push(EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(util::pods_prefix(&svc.name_any())),
                    namespace: Some(ns.to_string()),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![util::new_controller_ref(svc.as_ref())]),
                    ..Default::default()
                },
                address_type: addr_type,
                endpoints: Vec::new(),
                ports: None,
            });
        } else if unused.len() == existing.len()
            && creates.is_empty()
            && updates.is_empty()
            && !existing.is_empty()
        {
            // Nothing desired: keep one slice, emptied, rather than none.
            let keep = unused.remove(0);
            let no_ports = keep.ports.as_ref().is_none_or(Vec::is_empty);
            if !keep.endpoints.is_empty() || !no_ports || keep.labels() != &labels {
                let mut s = (*keep).clone();
                s.endpoints = Vec::new();
                s.ports = None;
                s.metadata.labels = Some(labels.clone());
                updates.push(s);
            }
        }

        let mut errs = Vec::new();
        for s in creates {
            match api.create(&PostParams::default(), &s).await {
                Ok(created) => {
                    tracing::debug!(key, name = %created.name_any(), generation = ?created.metadata.generation, "created endpoint slice");
                    self.track(
                        key,
                        created.name_any(),
                        Some(created.metadata.generation.unwrap_or(0)),
                    )
                }
                Err(e) => {
                    let e = Error::api("create", format!("endpointslice for {key}"), e);
                    if !e.is_namespace_terminating() {
                        errs.push(e);
                    }
                }
            }
        }
        for s in updates {
            let name = s.name_any();
            match api.replace(&name, &PostParams::default(), &s).await {
                Ok(u) => self.track(key, name, Some(u.metadata.generation.unwrap_or(0))),
                Err(e) => errs.push(Error::api(
                    "update",
                    format!("endpointslice {ns}/{name}"),
                    e,
                )),
            }
        }
        for s in unused {
            let name = s.name_any();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => self.track(key, name, None),
                Err(kube::Error::Api(st)) if st.code == 404 => {}
                Err(e) => errs.push(Error::api(
                    "delete",
                    format!("endpointslice {ns}/{name}"),
                    e,
                )),
            }
        }
        Error::aggregate(errs)
    }

    fn slice_labels(&self, svc: &Service) -> BTreeMap<String, String> {
        let mut l: BTreeMap<String, String> = svc
            .labels()
            .iter()
            .filter(|(k, _)| k.as_str() != MANAGED_BY_LABEL && k.as_str() != SERVICE_NAME_LABEL)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        l.insert(SERVICE_NAME_LABEL.into(), svc.name_any());
        l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        if is_headless(svc) {
            l.insert(HEADLESS_LABEL.into(), String::new());
        }
        l
    }

    /// Desired endpoints grouped by (address type, resolved ports), each group sorted.
    fn desired(
        &self,
        svc: &Service,
        selector: &LabelSelector,
        missing_node: &mut bool,
    ) -> Vec<DesiredGroup> {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("");
        let publish = publish_not_ready(svc);
        let ports: Vec<ServicePort> = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default();
        let families: Vec<String> = svc
            .spec
            .as_ref()
            .and_then(|s| s.ip_families.clone())
            .unwrap_or_else(|| vec!["IPv4".into()]);
        // (address type, ports as JSON) → (ports, endpoints), for a stable order.
        let mut out: BTreeMap<(String, String), (Vec<SlicePort>, Vec<Endpoint>)> = BTreeMap::new();
        let mut pods = self.pods.list_namespace(ns);
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for pod in pods {
            if !selector.matches_labels(pod.metadata.labels.as_ref()) {
                continue;
            }
            if !should_pod_be_in_endpoints(&pod, true) {
                continue;
            }
            let mut eps: Vec<SlicePort> = ports
                .iter()
                .filter_map(|sp| {
                    find_port(&pod, sp).map(|p| SlicePort {
                        name: Some(sp.name.clone().unwrap_or_default()),
                        port: Some(p),
                        protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                        app_protocol: sp.app_protocol.clone(),
                    })
                })
                .collect();
            eps.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
            let terminating = pod.metadata.deletion_timestamp.is_some();
            let ready = publish || (is_pod_ready(&pod) && !terminating);
            let serving = publish || is_pod_ready(&pod);
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty());
            let node_obj = node.as_ref().and_then(|n| self.nodes.get("", n));
            // A pod on a node that does not exist is left out until it does (or the pod
            // is collected), unless the Service publishes every address.
            if node.is_some() && node_obj.is_none() && !publish {
                *missing_node = true;
                continue;
            }
            let zone =
                node_obj.and_then(|n| n.labels().get("topology.kubernetes.io/zone").cloned());
            for fam in &families {
                let ip = pod_ips(&pod)
                    .into_iter()
                    .find(|ip| (fam == "IPv6") == ip.contains(':'));
                let Some(ip) = ip else { continue };
                let pk = serde_json::to_string(&eps).unwrap_or_default();
                out.entry((fam.clone(), pk))
                    .or_insert_with(|| (eps.clone(), Vec::new()))
                    .1
                    .push(Endpoint {
                        addresses: vec![ip],
                        conditions: Some(EndpointConditions {
                            ready: Some(ready),
                            serving: Some(serving),
                            terminating: Some(terminating),
                        }),
                        hostname: pod_hostname(&pod, svc),
                        node_name: node.clone(),
                        target_ref: Some(pod_ref(&pod)),
                        zone: zone.clone(),
                        ..Default::default()
                    });
            }
        }
        out.into_iter()
            .map(|((fam, _), (ports, eps))| ((fam, ports), eps))
            .collect()
    }
}

/// Same endpoints regardless of order.
fn same_endpoints(a: &[Endpoint], b: &[Endpoint]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let key = |e: &Endpoint| serde_json::to_string(e).unwrap_or_default();
    let mut x: Vec<String> = a.iter().map(key).collect();
    let mut y: Vec<String> = b.iter().map(key).collect();
    x.sort();
    y.sort();
    x == y
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};

    fn pod_with_port(name: &str, port: i32) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some(name.into()),
                        container_port: port,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let sp = ServicePort {
            port: 80,
            target_port: Some(IntOrString::String("http".into())),
            ..Default::default()
        };
        assert_eq!(find_port(&pod_with_port("http", 8080), &sp), Some(8080));
        assert_eq!(find_port(&pod_with_port("http", 9090), &sp), Some(9090));
        assert_eq!(find_port(&pod_with_port("web", 8080), &sp), None);
        let udp = ServicePort {
            protocol: Some("UDP".into()),
            ..sp.clone()
        };
        assert_eq!(find_port(&pod_with_port("http", 8080), &udp), None);
        let plain = ServicePort {
            port: 80,
            ..Default::default()
        };
        assert_eq!(find_port(&Pod::default(), &plain), Some(80));
    }

    fn addr(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        }
    }

    fn port(n: i32) -> EndpointPort {
        EndpointPort {
            port: n,
            protocol: Some("TCP".into()),
            ..Default::default()
        }
    }

    #[test]
    fn repack_groups_by_port_sets() {
        let raw = vec![
            (addr("10.0.0.2"), true, Some(port(80))),
            (addr("10.0.0.1"), true, Some(port(80))),
            (addr("10.0.0.3"), false, Some(port(80))),
            (addr("10.0.0.4"), true, Some(port(90))),
        ];
        let s = repack(raw);
        assert_eq!(s.len(), 2);
        let ips = |v: &Option<Vec<EndpointAddress>>| -> Vec<String> {
            v.iter().flatten().map(|a| a.ip.clone()).collect()
        };
        assert_eq!(ips(&s[0].addresses), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(ips(&s[0].not_ready_addresses), ["10.0.0.3"]);
        assert_eq!(ips(&s[1].addresses), ["10.0.0.4"]);
    }

    #[test]
    fn truncation_prefers_ready_addresses() {
        let raw = (0..5)
            .map(|i| (addr(&format!("10.0.0.{i}")), i < 2, Some(port(80))))
            .collect();
        let s = truncate(repack(raw), 3);
        let total: usize = s
            .iter()
            .map(|x| {
                x.addresses.as_ref().map_or(0, Vec::len)
                    + x.not_ready_addresses.as_ref().map_or(0, Vec::len)
            })
            .sum();
        assert_eq!(total, 3);
        assert_eq!(s[0].addresses.as_ref().map(Vec::len), Some(2));
    }

    #[test]
    fn finished_pods_leave_endpoints() {
        let mut p = Pod {
            status: Some(k8s_openapi::api::core::v1::PodStatus {
                pod_ip: Some("10.0.0.1".into()),
                phase: Some("Succeeded".into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                restart_policy: Some("Never".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(!should_pod_be_in_endpoints(&p, true));
        if let Some(s) = p.spec.as_mut() {
            s.restart_policy = Some("Always".into());
        }
        assert!(should_pod_be_in_endpoints(&p, true));
    }
}
