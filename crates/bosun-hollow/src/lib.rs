//! Hollow nodes: many simulated Kubernetes nodes in one process, like kwok.
//!
//! [`run`] registers `nodes` Node objects (capacity, allocatable, Ready condition,
//! addresses, nodeInfo, the well-known labels), then keeps each node alive the way a
//! kubelet does: a Lease in `kube-node-lease` renewed every `heartbeat`, and the node's
//! conditions (with `lastHeartbeatTime`) rewritten every `status_interval`. One watch on
//! all bound pods (`spec.nodeName!=`, filtered locally, so 5,000 nodes cost one stream)
//! drives a pod to Running and Ready through `pods/{name}/status` (pod IP from the node's
//! pod CIDR, host IP, start time, container statuses, conditions) and finishes graceful
//! deletion (a pod with a `deletionTimestamp` is deleted with `gracePeriodSeconds=0`).
//!
//! Writes go through two lanes ([`limiter::Limiter`]): pod writes (the bulk) and
//! heartbeats, each capped in flight and optionally by QPS; heartbeats are spread evenly
//! over the period instead of all firing at once. A pod is queued at most once however
//! many events arrive for it, and a worker always writes its latest state.
//!
//! [`HollowHandle::kill_node`] stops a node's heartbeats and pod handling (a dead machine);
//! [`HollowHandle::revive_node`] brings it back. The same is reachable over HTTP when
//! [`HollowOptions::control_addr`] is set (see [`control`]).
//!
//! Pods may ask to finish: the annotation `hollow.bosun.dev/succeed-after: "<seconds>"`
//! (or `fail-after`) makes a pod whose restartPolicy is not `Always` end Succeeded (or
//! Failed) that long after it started running, so Jobs can complete on hollow nodes.

pub mod control;
pub mod ipam;
pub mod limiter;
mod node;
mod pods;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;
use parking_lot::Mutex;
use tokio::task::JoinHandle;

pub use node::NodeTemplate;

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid hollow option {field}: {value:?}")]
    InvalidOption { field: &'static str, value: String },
    #[error("registering node {node}: {source}")]
    Register { node: String, source: kube::Error },
    #[error("unknown hollow node {0:?}")]
    UnknownNode(String),
    #[error("hollow node {0:?} already exists")]
    NodeExists(String),
    #[error("no pod CIDR left for node {0:?} in the hollow pod range")]
    CidrExhausted(String),
    #[error("binding the hollow control endpoint on {addr}: {source}")]
    Control {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the simulator runs. Node defaults are kwok's and a large upstream machine's.
#[derive(Clone, Debug)]
pub struct HollowOptions {
    /// How many nodes to register.
    pub nodes: usize,
    /// Node names are `{name_prefix}{index}`.
    pub name_prefix: String,
    /// `status.capacity.cpu` (kwok's default node: 32).
    pub cpu: String,
    /// `status.capacity.memory` (kwok: 256Gi).
    pub memory: String,
    /// `status.capacity.pods` (kubelet's `--max-pods` default: 110).
    pub pods: u32,
    /// `status.capacity.ephemeral-storage`.
    pub ephemeral_storage: String,
    /// Extended resources in capacity, such as `nvidia.com/gpu: "8"`.
    pub extended_resources: BTreeMap<String, String>,
    /// Labels added to every node beside the well-known ones.
    pub labels: BTreeMap<String, String>,
    /// Taints of every node.
    pub taints: Vec<Taint>,
    /// Lease renewal period (kubelet: 10 s, a quarter of the 40 s lease duration).
    pub heartbeat: Duration,
    /// `leaseDurationSeconds` written in each Lease (kubelet: 40).
    pub lease_duration_seconds: i32,
    /// How often the node's conditions and `lastHeartbeatTime` are rewritten. The kubelet
    /// reports every 5 min when nothing changed (`nodeStatusReportFrequency`) because the
    /// Lease is the heartbeat the node lifecycle controller watches; 60 s keeps the
    /// condition fresh for consumers that read only the condition, at a sixth of the cost.
    pub status_interval: Duration,
    /// The range node pod CIDRs are carved from, one `/node_cidr_prefix` per node.
    /// 10.64.0.0/10 holds 16,384 /24s and does not overlap bosun's 10.244.0.0/16.
    pub pod_cidr: String,
    /// Prefix length of each node's pod CIDR (the node IPAM default: /24).
    pub node_cidr_prefix: u8,
    /// Pod writes (status, deletions) in flight at once.
    pub pod_writes_inflight: usize,
    /// Pod writes per second; 0 means unlimited.
    pub pod_writes_qps: f64,
    /// Heartbeat writes (leases, node status) in flight at once.
    pub heartbeat_inflight: usize,
    /// Node registrations in flight at once.
    pub register_inflight: usize,
    /// Where to serve the control endpoint (kill or revive a node over HTTP), if anywhere.
    pub control_addr: Option<SocketAddr>,
    /// Whether to run the pods bound to these nodes. Off, nodes only heartbeat: the shape
    /// of upstream's scheduler_perf, where bound pods stay Pending.
    pub manage_pods: bool,
}

impl Default for HollowOptions {
    fn default() -> Self {
        HollowOptions {
            nodes: 1,
            name_prefix: "hollow-node-".into(),
            cpu: "32".into(),
            memory: "256Gi".into(),
            pods: 110,
            ephemeral_storage: "100Gi".into(),
            extended_resources: BTreeMap::new(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            heartbeat: Duration::from_secs(10),
            lease_duration_seconds: 40,
            status_interval: Duration::from_secs(60),
            pod_cidr: "10.64.0.0/10".into(),
            node_cidr_prefix: 24,
            pod_writes_inflight: 32,
            pod_writes_qps: 0.0,
            heartbeat_inflight: 8,
            register_inflight: 16,
            control_addr: None,
            manage_pods: true,
        }
    }
}

impl HollowOptions {
    /// The shape of every node registered by [`run`].
    pub fn template(&self) -> NodeTemplate {
        NodeTemplate {
            cpu: self.cpu.clone(),
            memory: self.memory.clone(),
            pods: self.pods,
            ephemeral_storage: self.ephemeral_storage.clone(),
            extended_resources: self.extended_resources.clone(),
            labels: self.labels.clone(),
            taints: self.taints.clone(),
        }
    }
}

/// Counters of what the simulator did, for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HollowStats {
    pub nodes: usize,
    pub pods_started: u64,
    pub pods_finished: u64,
    pub pods_deleted: u64,
    pub lease_renewals: u64,
    pub node_status_updates: u64,
    pub write_errors: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub pods_started: AtomicU64,
    pub pods_finished: AtomicU64,
    pub pods_deleted: AtomicU64,
    pub lease_renewals: AtomicU64,
    pub node_status_updates: AtomicU64,
    pub write_errors: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// State shared by the simulator's tasks.
pub(crate) struct Shared {
    pub client: kube::Client,
    pub opts: HollowOptions,
    pub pod_cidr: ipam::Cidr,
    pub nodes: Mutex<HashMap<String, node::NodeState>>,
    pub next_index: AtomicU32,
    pub pod_lane: limiter::Limiter,
    pub beat_lane: limiter::Limiter,
    pub counters: Counters,
    pub pods: pods::Tracker,
}

/// A running simulator. Dropping it stops every node (their objects stay).
pub struct HollowHandle {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    control_addr: Option<SocketAddr>,
}

/// Registers `opts.nodes` nodes and starts simulating them; returns once every node is
/// registered and the pod watch is running.
pub async fn run(client: kube::Client, opts: HollowOptions) -> Result<HollowHandle> {
    let template = opts.template();
    template.validate()?;
    if opts.heartbeat.is_zero() {
        return Err(Error::InvalidOption {
            field: "heartbeat",
            value: format!("{:?}", opts.heartbeat),
        });
    }
    let pod_cidr = ipam::Cidr::parse(&opts.pod_cidr)?;
    if opts.node_cidr_prefix < pod_cidr.prefix || opts.node_cidr_prefix > 30 {
        return Err(Error::InvalidOption {
            field: "node_cidr_prefix",
            value: opts.node_cidr_prefix.to_string(),
        });
    }
    let shared = Arc::new(Shared {
        client,
        pod_cidr,
        nodes: Mutex::new(HashMap::new()),
        next_index: AtomicU32::new(0),
        pod_lane: limiter::Limiter::new(opts.pod_writes_inflight, opts.pod_writes_qps),
        beat_lane: limiter::Limiter::new(opts.heartbeat_inflight, 0.0),
        counters: Counters::default(),
        pods: pods::Tracker::default(),
        opts,
    });
    let names: Vec<String> = (0..shared.opts.nodes)
        .map(|i| format!("{}{}", shared.opts.name_prefix, i))
        .collect();
    node::register_all(&shared, names, &template).await?;

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(node::heartbeat_loop(shared.clone())));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    if shared.opts.manage_pods {
        tasks.push(tokio::spawn(pods::watch_pods(shared.clone(), ready_tx)));
        for _ in 0..shared.opts.pod_writes_inflight.max(1) {
            tasks.push(tokio::spawn(pods::worker(shared.clone())));
        }
    } else {
        let _ = ready_tx.send(());
    }
    let control_addr = match shared.opts.control_addr {
        Some(addr) => {
            let (bound, task) = control::serve(shared.clone(), addr).await?;
            tasks.push(task);
            Some(bound)
        }
        None => None,
    };
    // The first list tells us which pods already run on these nodes; wait for it so a
    // caller that creates pods next sees them handled, not racing the initial list.
    let _ = tokio::time::timeout(Duration::from_secs(30), ready_rx).await;
    Ok(HollowHandle {
        shared,
        tasks,
        control_addr,
    })
}

impl HollowHandle {
    /// The names of the simulated nodes, sorted.
    pub fn node_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.shared.nodes.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// Whether `name` is simulated and heartbeating.
    pub fn is_alive(&self, name: &str) -> Option<bool> {
        self.shared.nodes.lock().get(name).map(|n| n.alive)
    }

    /// Stops heartbeating `name` and handling its pods, as if the machine died.
    pub fn kill_node(&self, name: &str) -> Result<()> {
        set_alive(&self.shared, name, false)
    }

    /// Resumes a killed node: heartbeats again and handles the pods bound meanwhile.
    pub fn revive_node(&self, name: &str) -> Result<()> {
        set_alive(&self.shared, name, true)
    }

    /// Registers one more node shaped by `template` (a machine joining the cluster).
    pub async fn add_node(&self, name: &str, template: NodeTemplate) -> Result<()> {
        template.validate()?;
        if self.shared.nodes.lock().contains_key(name) {
            return Err(Error::NodeExists(name.to_string()));
        }
        node::register_all(&self.shared, vec![name.to_string()], &template).await
    }

    /// Stops simulating `name` without touching its Node object (the machine is gone;
    /// whoever deletes the Node decides what happens to it).
    pub fn remove_node(&self, name: &str) -> Result<()> {
        self.shared
            .nodes
            .lock()
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    /// Where the control endpoint listens, when it was asked for.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    pub fn stats(&self) -> HollowStats {
        let c = &self.shared.counters;
        HollowStats {
            nodes: self.shared.nodes.lock().len(),
            pods_started: c.pods_started.load(Ordering::Relaxed),
            pods_finished: c.pods_finished.load(Ordering::Relaxed),
            pods_deleted: c.pods_deleted.load(Ordering::Relaxed),
            lease_renewals: c.lease_renewals.load(Ordering::Relaxed),
            node_status_updates: c.node_status_updates.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
        }
    }

    /// Stops every task of the simulator.
    pub fn stop(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for HollowHandle {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

pub(crate) fn set_alive(shared: &Arc<Shared>, name: &str, alive: bool) -> Result<()> {
    {
        let mut nodes = shared.nodes.lock();
        let n = nodes
            .get_mut(name)
            .ok_or_else(|| Error::UnknownNode(name.to_string()))?;
        if n.alive == alive {
            return Ok(());
        }
        n.alive = alive;
        if alive {
            // Renew at once rather than waiting for this node's slot in the round.
            n.last_status = None;
            n.ready_since = chrono::Utc::now();
        }
    }
    if alive {
        tracing::info!(node = name, "hollow node revived");
        let s = shared.clone();
        let n = name.to_string();
        tokio::spawn(async move { node::renew(&s, &n).await });
        pods::requeue_node(shared, name);
    } else {
        tracing::info!(node = name, "hollow node killed");
    }
    Ok(())
}
