//! What plugins look at: a pod with its requests computed once ([`PodInfo`]), a node with
//! the pods on it and their sums ([`NodeInfo`]), and resource vectors ([`Resource`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bosun_api::quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

/// Requests counted for scoring when a container sets none (upstream
/// `DefaultMilliCPURequest` 100m and `DefaultMemoryRequest` 200 MiB), so that
/// best-effort pods still spread.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// A vector of resources: CPU in millicores, memory and ephemeral storage in bytes,
/// the pod count, and every other (extended) resource as an integer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// From a ResourceList (requests, limits, capacity); unparsable quantities count 0,
    /// as the API server refuses them on write anyway.
    pub fn from_list(list: Option<&BTreeMap<String, ApiQuantity>>) -> Resource {
        let mut r = Resource::default();
        if let Some(list) = list {
            for (k, v) in list {
                r.set(k, &v.0);
            }
        }
        r
    }

    fn set(&mut self, name: &str, q: &str) {
        let Ok(q) = Quantity::parse(q) else { return };
        match name {
            "cpu" => self.milli_cpu = q.milli_value(),
            "memory" => self.memory = q.value(),
            "ephemeral-storage" => self.ephemeral_storage = q.value(),
            "pods" => self.allowed_pod_number = q.value(),
            _ => {
                self.scalar.insert(name.to_string(), q.value());
            }
        }
    }

    pub fn add(&mut self, o: &Resource) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.allowed_pod_number += o.allowed_pod_number;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, o: &Resource) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.allowed_pod_number -= o.allowed_pod_number;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Each field the maximum of the two.
    pub fn max_with(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(o.allowed_pod_number);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    /// A named resource's amount (cpu in millicores).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            _ => self.scalar.get(name).copied().unwrap_or(0),
        }
    }
}

/// The requests of one container: its requests, with limits standing in where a
/// request is missing (the API server's defaulting does the same).
fn container_requests(c: &Container) -> Resource {
    let res = c.resources.as_ref();
    let mut r = Resource::from_list(res.and_then(|r| r.limits.as_ref()));
    let req = Resource::from_list(res.and_then(|r| r.requests.as_ref()));
    let has = |name: &str| {
        res.and_then(|r| r.requests.as_ref())
            .is_some_and(|m| m.contains_key(name))
    };
    if has("cpu") {
        r.milli_cpu = req.milli_cpu;
    }
    if has("memory") {
        r.memory = req.memory;
    }
    if has("ephemeral-storage") {
        r.ephemeral_storage = req.ephemeral_storage;
    }
    for (k, v) in req.scalar {
        r.scalar.insert(k, v);
    }
    r.allowed_pod_number = 0;
    r
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Upstream `resource.PodRequests`: the larger of the containers' sum and each init
/// container's peak (sidecars, which keep running, add to both), plus overhead; pod-level
/// `spec.resources` requests win for the resources they name.
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let with_defaults = |mut r: Resource| {
        if non_zero {
            if r.milli_cpu == 0 {
                r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if r.memory == 0 {
                r.memory = DEFAULT_MEMORY_REQUEST;
            }
        }
        r
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&with_defaults(container_requests(c)));
    }
    let mut sidecars = Resource::default();
    let mut init_peak = Resource::default();
    for c in spec.init_containers.as_deref().unwrap_or_default() {
        let r = with_defaults(container_requests(c));
        if is_sidecar(c) {
            reqs.add(&r);
            sidecars.add(&r);
            init_peak.max_with(&sidecars);
        } else {
            let mut t = r;
            t.add(&sidecars);
            init_peak.max_with(&t);
        }
    }
    reqs.max_with(&init_peak);
    if let Some(pl) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        let p = Resource::from_list(Some(pl));
        if pl.contains_key("cpu") {
            reqs.milli_cpu = p.milli_cpu;
        }
        if pl.contains_key("memory") {
            reqs.memory = p.memory;
        }
    }
    if let Some(o) = spec.overhead.as_ref() {
        reqs.add(&Resource::from_list(Some(o)));
    }
    reqs
}

/// A host port a pod asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Upstream's rule: the same protocol and port conflict when either side listens
    /// on every address (0.0.0.0) or both on the same one.
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || self.ip == "0.0.0.0" || o.ip == "0.0.0.0")
    }
}

fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|c| is_sidecar(c));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.as_deref().unwrap_or_default())
        .filter_map(|p| {
            let port = p.host_port.filter(|hp| *hp > 0)?;
            let ip = p
                .host_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| "0.0.0.0".into());
            Some(HostPort {
                ip,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port,
            })
        })
        .collect()
}

/// A pod with what the scheduler derives from it computed once.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub priority: i32,
    pub requests: Resource,
    /// Requests with upstream's defaults for containers that set none (for scoring).
    pub non_zero_requests: Resource,
    pub host_ports: Vec<HostPort>,
    pub has_affinity: bool,
    pub has_required_anti_affinity: bool,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>, priority: i32) -> PodInfo {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let aff = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let has_affinity =
            aff.is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some());
        let has_required_anti_affinity = aff
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some_and(|t| !t.is_empty());
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            host_ports: host_ports(&pod),
            namespace,
            name,
            priority,
            has_affinity,
            has_required_anti_affinity,
            pod,
        }
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    pub fn node_name(&self) -> Option<&str> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }

    pub fn is_terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }
}

/// A node and the pods the scheduler believes are on it (bound or assumed).
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub name: String,
    pub pods: Vec<Arc<PodInfo>>,
    pub requested: Resource,
    pub non_zero_requested: Resource,
    pub allocatable: Resource,
    pub used_ports: Vec<HostPort>,
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    /// Bumped on every change, so a cached result can tell it is stale.
    pub generation: u64,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut ni = NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            allocatable: Resource::default(),
            node,
            pods: Vec::new(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            used_ports: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            generation: 0,
        };
        ni.refresh_allocatable();
        ni
    }

    fn refresh_allocatable(&mut self) {
        let st = self.node.status.as_ref();
        self.allocatable = Resource::from_list(
            st.and_then(|s| s.allocatable.as_ref())
                .or_else(|| st.and_then(|s| s.capacity.as_ref())),
        );
    }

    /// Replaces the Node object, keeping the pods.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.node = node;
        self.refresh_allocatable();
        self.generation += 1;
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    pub fn taints(&self) -> &[Taint] {
        self.node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or_default()
    }

    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.non_zero_requested.add(&p.non_zero_requests);
        self.used_ports.extend(p.host_ports.iter().cloned());
        if p.has_affinity {
            self.pods_with_affinity += 1;
        }
        if p.has_required_anti_affinity {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(p);
        self.generation += 1;
    }

    /// Removes the pod with `uid`; returns it when it was there.
    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.uid == uid)?;
        let p = self.pods.swap_remove(i);
        self.requested.sub(&p.requests);
        self.non_zero_requested.sub(&p.non_zero_requests);
        for hp in &p.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        if p.has_affinity {
            self.pods_with_affinity -= 1;
        }
        if p.has_required_anti_affinity {
            self.pods_with_required_anti_affinity -= 1;
        }
        self.generation += 1;
        Some(p)
    }
}

/// The set of uids, for quick membership tests.
pub type UidSet = HashSet<String>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_take_init_peak_sidecars_and_overhead() {
        let p = pod(json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "2"}}},
            ],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
                {"name": "big", "resources": {"requests": {"cpu": "3", "memory": "100Mi"}}},
            ],
            "overhead": {"cpu": "10m"},
        }}));
        let r = pod_requests(&p, false);
        // Containers 1500m + sidecar 100m = 1600m; init peak 3000m + sidecar 100m = 3100m.
        assert_eq!(r.milli_cpu, 3110);
        assert_eq!(r.memory, 1 << 30);
        assert_eq!(r.scalar["nvidia.com/gpu"], 2);
        let nz = pod_requests(&p, true);
        // b's and the sidecar's memory default to 200Mi each for scoring.
        assert_eq!(nz.memory, (1 << 30) + 2 * DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn best_effort_pod_requests_nothing_but_scores_defaults() {
        let p = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        assert!(pod_requests(&p, false).is_zero());
        let nz = pod_requests(&p, true);
        assert_eq!(nz.milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
    }

    #[test]
    fn node_info_adds_and_removes_pods() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
        }))
        .unwrap();
        let mut ni = NodeInfo::new(Arc::new(node));
        assert_eq!(ni.allocatable.milli_cpu, 4000);
        assert_eq!(ni.allocatable.allowed_pod_number, 110);
        let p = pod(
            json!({"metadata": {"uid": "u1", "name": "p", "namespace": "d"}, "spec": {"containers": [
            {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}],
             "resources": {"requests": {"cpu": "1"}}}]}}),
        );
        ni.add_pod(Arc::new(PodInfo::new(Arc::new(p), 0)));
        assert_eq!(ni.requested.milli_cpu, 1000);
        assert_eq!(ni.used_ports.len(), 1);
        assert!(ni.remove_pod("u1").is_some());
        assert!(ni.remove_pod("u1").is_none());
        assert_eq!(ni.requested.milli_cpu, 0);
        assert!(ni.used_ports.is_empty());
    }

    #[test]
    fn host_ports_conflict_on_wildcard() {
        let a = HostPort {
            ip: "0.0.0.0".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let b = HostPort {
            ip: "10.0.0.1".into(),
            ..a.clone()
        };
        let c = HostPort {
            protocol: "UDP".into(),
            ..a.clone()
        };
        assert!(a.conflicts(&b) && b.conflicts(&a));
        assert!(!a.conflicts(&c));
        let d = HostPort {
            ip: "10.0.0.2".into(),
            ..a.clone()
        };
        assert!(!b.conflicts(&d));
    }
}
