//! bosun's kubelet: registers its Node and keeps its status and Lease fresh, runs one worker
//! (a state machine) per pod bound to the node on the native runtime (`bosun-runtime`), probes
//! containers, prepares volumes, reports pod status and events, and serves the kubelet HTTPS
//! API (container logs) that the API server proxies `pods/log` to. It also provisions
//! node-local volumes for the `bosun.io/local-path` StorageClass provisioner
//! (`provisioner.rs`).
//!
//! [`run`] is the whole agent; dropping its future (or aborting the task running it) stops
//! every worker but leaves containers running: their shims outlive the agent, and the next
//! [`run`] over the same data dir adopts them.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod envvars;
pub mod error;
mod events;
pub mod eviction;
mod hooks;
pub mod imagegc;
pub mod logrotate;
pub mod logs;
pub mod network;
pub mod node;
mod podcgroup;
mod pods;
mod probe;
mod provisioner;
mod pull_secrets;
mod server;
pub mod static_pods;
pub mod stats;
pub mod status;
mod streams;
mod volumes;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_runtime::{Runtime, RuntimeConfig};

pub use error::{Error, Result};

/// The Kubernetes version this kubelet reports (the API level it follows).
pub const KUBELET_VERSION: &str = "v1.34.0-bosun";

/// The kubelet's settings; defaults are upstream's unless noted.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub node_name: String,
    /// The agent's `--data-dir` (images, containers, sandboxes, pods).
    pub data_dir: PathBuf,
    /// `--node-ip`; default: the first non-loopback IPv4 address.
    pub node_ip: Option<IpAddr>,
    /// Address of the kubelet API (upstream `--address`, default 0.0.0.0).
    pub bind_address: IpAddr,
    /// Port of the kubelet API (upstream 10250; 0 picks a free one).
    pub port: u16,
    /// PEM of the CA whose client certificates may call the kubelet API (the cluster CA, as
    /// upstream's `--client-ca-file`).
    pub client_ca_pem: String,
    /// The shim program and its leading args (default: this executable, `shim`).
    pub shim_program: Option<PathBuf>,
    pub shim_args: Option<Vec<String>>,
    /// `--max-pods` (110).
    pub max_pods: u32,
    /// Lease duration (40 s) and renewal interval (10 s, a quarter of it).
    pub lease_duration_seconds: i32,
    pub lease_renew_interval: Duration,
    /// `nodeStatusReportFrequency` (upstream 5 min when unchanged; we write every 1 min).
    pub node_status_update_frequency: Duration,
    /// How often a pod worker re-syncs without news (upstream's resync is 1 min; we poll
    /// container state every second because the shim writes it to files).
    pub sync_period: Duration,
    /// `--cluster-dns` (empty: pods get the host's resolv.conf, as upstream without DNS).
    pub cluster_dns: Vec<String>,
    /// `--cluster-domain` (cluster.local).
    pub cluster_domain: String,
    /// Pull missing images from their registries (true). Tests turn it off so that no
    /// traffic leaves the machine; a missing image then says how to import it.
    pub pull_images: bool,
    /// Registries spoken to over plain HTTP (`host:port`).
    pub insecure_registries: Vec<String>,
    /// Hard eviction thresholds (upstream defaults).
    pub eviction: node::Eviction,
    /// How often resource stats are sampled (upstream's cadvisor housekeeping, 10 s).
    pub stats_interval: Duration,
    /// Adjusts every stats summary before use (tests simulate pressure with it).
    pub stats_override: Option<stats::StatsOverride>,
    /// `--pod-manifest-path`: the static pod directory (default `DATA_DIR/manifests`).
    pub pod_manifest_path: Option<PathBuf>,
    /// `--eviction-pressure-transition-period` (5 min): how long a pressure condition
    /// stays after its signal recovered.
    pub eviction_pressure_transition_period: Duration,
    /// The pod network, service proxy and cluster DNS (`bosun agent` turns them on); `None`
    /// leaves pods without a pod IP, as in-process tests sharing one network namespace want.
    pub network: Option<network::NetworkConfig>,
    /// Container log rotation (`--container-log-max-size` 10Mi, `--container-log-max-files`
    /// 5, checked every 10 s); a max size of 0 turns it off.
    pub log_rotation: logrotate::LogRotation,
    /// Image GC under disk pressure (`--image-gc-high-threshold` 85,
    /// `--image-gc-low-threshold` 80, minimum age 2 min, checked every 5 min).
    pub image_gc: imagegc::ImageGcPolicy,
}

impl KubeletConfig {
    pub fn new(
        node_name: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        client_ca_pem: String,
    ) -> Self {
        KubeletConfig {
            node_name: node_name.into(),
            data_dir: data_dir.into(),
            node_ip: None,
            bind_address: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 10250,
            client_ca_pem,
            shim_program: None,
            shim_args: None,
            max_pods: 110,
            lease_duration_seconds: 40,
            lease_renew_interval: Duration::from_secs(10),
            node_status_update_frequency: Duration::from_secs(60),
            sync_period: Duration::from_secs(1),
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            pull_images: true,
            insecure_registries: Vec::new(),
            eviction: node::Eviction::default(),
            stats_interval: Duration::from_secs(10),
            stats_override: None,
            pod_manifest_path: None,
            eviction_pressure_transition_period: eviction::PRESSURE_TRANSITION_PERIOD,
            network: None,
            log_rotation: logrotate::LogRotation::default(),
            image_gc: imagegc::ImageGcPolicy::default(),
        }
    }

    fn runtime_config(&self) -> RuntimeConfig {
        let mut rc = RuntimeConfig::new(&self.data_dir);
        if let Some(p) = &self.shim_program {
            rc.shim_program = p.clone();
        }
        if let Some(a) = &self.shim_args {
            rc.shim_args = a.clone();
        }
        rc
    }
}

/// What the kubelet API needs to know about a pod the node runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodEntry {
    pub uid: String,
    /// Container name → (current container id, attempt).
    pub containers: HashMap<String, (String, u32)>,
}

/// Everything the kubelet's tasks share.
pub(crate) struct Ctx {
    pub cfg: KubeletConfig,
    pub client: kube::Client,
    pub runtime: Arc<Runtime>,
    pub node_ip: IpAddr,
    pub kubelet_port: u16,
    /// (namespace, name) → entry, for the kubelet API.
    pub pods: Mutex<HashMap<(String, String), PodEntry>>,
    /// Resource stats: the latest summary and the samples for CPU rates.
    pub stats: stats::Sampler,
    /// What the eviction manager last saw (the node's pressure conditions).
    pub eviction: Mutex<eviction::State>,
    /// The pod network, when configured.
    pub net: Option<Arc<network::Network>>,
    /// The event sink (bosun-events: client-go's correlator and rate limits).
    pub events: bosun_events::Recorder,
    /// The cluster's Services from one watch (containers' service environment variables).
    pub services: envvars::ServiceCache,
    /// The node's allocatable resources and when they were read ([`Ctx::allocatable`]).
    pub allocatable: Mutex<Option<(std::time::Instant, BTreeMap<String, String>)>>,
}

/// How long [`Ctx::allocatable`] keeps what it read.
const ALLOCATABLE_TTL: Duration = Duration::from_secs(30);

impl Ctx {
    pub(crate) fn pod_dir(&self, uid: &str) -> PathBuf {
        self.cfg.data_dir.join("pods").join(uid)
    }

    /// The node's allocatable resources (the downward API's and `resourceFieldRef`'s
    /// defaults), read again at most every [`ALLOCATABLE_TTL`]: capacity does not change while
    /// the agent runs, and reading it walks /proc, which every container start did twice.
    pub(crate) fn allocatable(&self) -> BTreeMap<String, String> {
        if let Ok(cached) = self.allocatable.lock() {
            if let Some((at, m)) = cached.as_ref() {
                if at.elapsed() < ALLOCATABLE_TTL {
                    return m.clone();
                }
            }
        }
        let m = node::Machine::read(&self.cfg.data_dir, self.cfg.eviction)
            .allocatable(self.cfg.max_pods);
        if let Ok(mut cached) = self.allocatable.lock() {
            *cached = Some((std::time::Instant::now(), m.clone()));
        }
        m
    }
}

/// Aborts a background task when the future that started it is dropped (the agent stops).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs the kubelet until an unrecoverable error; see the crate docs for what dropping it does.
pub async fn run(client: kube::Client, cfg: KubeletConfig) -> Result<()> {
    if !is_root() {
        return Err(Error::NotRoot);
    }
    let rc = cfg.runtime_config();
    let runtime = tokio::task::spawn_blocking(move || Runtime::new(rc))
        .await
        .map_err(|e| Error::Config(format!("opening the runtime: {e}")))??;
    let node_ip = cfg.node_ip.unwrap_or_else(node::default_node_ip);
    let listener = server::bind(&cfg).await?;
    let kubelet_port = listener
        .local_addr()
        .map_err(Error::io("local address of", "kubelet listener"))?
        .port();
    let cfg_net = cfg
        .network
        .clone()
        .map(|n| Arc::new(network::Network::new(n, cfg.data_dir.clone())));
    // As the kubelet's broadcaster: 1,000 queued events, one write at a time.
    let (events, _events_task) = bosun_events::Recorder::start(client.clone(), 1000, 1);
    let (services, services_task) = envvars::ServiceCache::start(client.clone());
    let _services_task = AbortOnDrop(services_task);
    let ctx = Arc::new(Ctx {
        events,
        services,
        allocatable: Mutex::new(None),
        cfg,
        client,
        runtime: Arc::new(runtime),
        node_ip,
        kubelet_port,
        pods: Mutex::new(HashMap::new()),
        stats: stats::Sampler::default(),
        eviction: Mutex::new(eviction::State::default()),
        net: cfg_net,
    });
    node::register(&ctx).await?;
    tracing::info!(node = %ctx.cfg.node_name, %node_ip, kubelet_port, "node registered");
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(node::heartbeat_loop(ctx.clone()));
    tasks.spawn(stats::run(ctx.clone()));
    tasks.spawn(eviction::run(ctx.clone()));
    tasks.spawn(logrotate::run(ctx.clone()));
    tasks.spawn(imagegc::run(ctx.clone()));
    let tls = server::tls_config(&ctx)?;
    tasks.spawn(server::serve(ctx.clone(), listener, tls));
    if let Some(net) = ctx.net.clone() {
        tasks.spawn(network::run(ctx.clone(), net));
    }
    tasks.spawn(provisioner::run(ctx.clone()));
    let c = ctx.clone();
    tasks.spawn(async move {
        if let Err(e) = pods::run(c).await {
            tracing::error!(error = %e, "pod manager stopped");
        }
    });
    // The tasks run until the process ends; one ending early is a bug worth surfacing.
    if let Some(r) = tasks.join_next().await {
        return Err(Error::Config(format!("a kubelet task ended: {r:?}")));
    }
    Ok(())
}
