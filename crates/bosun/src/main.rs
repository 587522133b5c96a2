//! The `bosun` binary: `bosun server` runs the API server on the embedded store (or an
//! etcd cluster with `--datastore-endpoint`).

mod allocator;
mod bench;
mod down;
mod up;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bosun",
    version,
    about = "A Kubernetes-compatible cluster manager in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (control plane) with its controllers and scheduler.
    Server(ServerArgs),
    /// A one-node cluster in one process: server, scheduler, controllers and this machine's
    /// agent (root).
    Up(up::UpArgs),
    /// Stop what a stopped `bosun up`/`bosun agent` leaves on this machine: containers, their
    /// mounts, and the network state (bridge, routes, nftables); keeps the data directory (root).
    Down(down::DownArgs),
    /// A kubectl-compatible client: `bosun ctl get pods`, `bosun ctl apply -f FILE`, ...
    Ctl(bosun_ctl::CtlArgs),
    /// Print a shell completion script: `source <(bosun completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Simulate N nodes in one process (like kwok), for tests and benchmarks.
    Hollow(HollowArgs),
    /// Benchmarks (`bosun bench api`).
    Bench(bench::BenchArgs),
    /// Run the node agent (kubelet and container runtime); needs root.
    Agent(AgentArgs),
    /// Manage the node's images (`import`, `ls`, `rm`, `pull`); safe while the agent runs.
    Image(ImageArgs),
    /// The per-container supervisor the runtime starts (internal; dispatched before the async
    /// runtime starts, since it forks).
    #[command(hide = true)]
    Shim {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// The agent's default data directory (images, containers, pods).
const AGENT_DATA_DIR: &str = "/var/lib/bosun/agent";

#[derive(clap::Args)]
struct AgentArgs {
    /// URL of the API server, e.g. https://10.0.0.1:6443.
    #[arg(long)]
    server: Option<String>,
    /// The node join token (the server's DATA_DIR/node-token).
    #[arg(long, env = "BOSUN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The cluster CA that signed the server's certificate (the server's DATA_DIR/tls/ca.crt):
    /// the agent verifies the server with it and trusts it for callers of the kubelet API.
    #[arg(long)]
    server_ca: Option<PathBuf>,
    /// Instead of --server/--token/--server-ca: a kubeconfig (its CA is trusted the same way).
    #[arg(long, conflicts_with_all = ["server", "token", "server_ca"])]
    kubeconfig: Option<PathBuf>,
    /// Images, containers, sandboxes and pod directories.
    #[arg(long, default_value = AGENT_DATA_DIR)]
    data_dir: PathBuf,
    /// The Node's name (default: the hostname).
    #[arg(long)]
    node_name: Option<String>,
    /// The node's InternalIP (default: the first non-loopback IPv4 address).
    #[arg(long)]
    node_ip: Option<IpAddr>,
    /// Port of the kubelet HTTPS API (logs).
    #[arg(long, default_value_t = 10250)]
    kubelet_port: u16,
    /// Nameservers written into pods' resolv.conf (default: 10.96.0.10, the cluster DNS this
    /// agent serves; the host's resolv.conf with --disable-network).
    #[arg(long, value_delimiter = ',')]
    cluster_dns: Vec<String>,
    /// The cluster's pod range (as the server's --cluster-cidr).
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: String,
    /// The Service ClusterIP range (as the server's --service-cluster-ip-range).
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: String,
    /// No pod network, service proxy or cluster DNS: pods get no pod IP (an external
    /// network plugin's job then).
    #[arg(long)]
    disable_network: bool,
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Registries the agent pulls from over plain HTTP (`host:port`).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// Never pull: images must be imported (`bosun image import`), as on an air-gapped node.
    #[arg(long)]
    disable_image_pull: bool,
    /// Hard eviction thresholds, upstream's form: `memory.available<100Mi,nodefs.available<10%`.
    #[arg(long, default_value = "memory.available<100Mi,nodefs.available<10%")]
    eviction_hard: String,
    /// The static pod directory: pods from its YAML/JSON files run on this node without the
    /// API server, mirrored there (default `DATA_DIR/manifests`).
    #[arg(long)]
    pod_manifest_path: Option<PathBuf>,
    /// Rotate a container's log when it grows past this size (upstream's
    /// containerLogMaxSize; a quantity such as `10Mi`; 0 turns rotation off).
    #[arg(long, default_value = "10Mi")]
    container_log_max_size: String,
    /// Log files kept per container, the current one included (containerLogMaxFiles).
    #[arg(long, default_value_t = 5)]
    container_log_max_files: usize,
    /// Disk use (percent of the data directory's filesystem) at which unused images are
    /// removed (imageGCHighThresholdPercent; 100 turns image GC off).
    #[arg(long, default_value_t = 85)]
    image_gc_high_threshold: u8,
    /// Disk use that image GC frees down to (imageGCLowThresholdPercent).
    #[arg(long, default_value_t = 80)]
    image_gc_low_threshold: u8,
}

#[derive(clap::Args)]
struct ImageArgs {
    /// The agent's data directory.
    #[arg(long, global = true, default_value = AGENT_DATA_DIR)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Import an OCI layout directory, an OCI archive or a `docker save` archive.
    Import {
        file: PathBuf,
        /// Reference to record instead of the archive's.
        #[arg(long)]
        name: Option<String>,
    },
    /// List images.
    Ls,
    /// Remove an image reference (refused while a container uses it).
    Rm { reference: String },
    /// Pull an image from a registry (HTTPS; plain HTTP only for --insecure-registry).
    Pull {
        reference: String,
        /// A registry (HOST:PORT, or HOST for every port) spoken to over plain HTTP; repeatable.
        #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
        insecure_registry: Vec<String>,
    },
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Where the store, certificates, tokens and kubeconfig live.
    #[arg(long, env = "BOSUN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// HTTPS port (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Where to write the admin kubeconfig (default DATA_DIR/kubeconfig.yaml).
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
    /// Use an etcd cluster instead of the embedded store: http://HOST:PORT[,http://HOST:PORT...].
    #[arg(long)]
    datastore_endpoint: Option<String>,
    /// Extra names or IPs for the serving certificate.
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// Service ClusterIP range.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: String,
    /// The pod network's range; each Node gets a /--node-cidr-mask-size subnet of it in
    /// `spec.podCIDR` (kube-controller-manager's `--cluster-cidr`).
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: String,
    /// Prefix length of each Node's pod subnet (upstream's `--node-cidr-mask-size`).
    #[arg(long, default_value_t = 24)]
    node_cidr_mask_size: u8,
    /// Give Nodes pod CIDRs (upstream's `--allocate-node-cidrs`); off when another IPAM does.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    allocate_node_cidrs: bool,
    /// NodePort range, LOW-HIGH.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// Controllers to run, as kube-controller-manager's `--controllers`: `*` for all,
    /// `name` to enable, `-name` to disable; `--controllers=` (empty) runs none.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,
    /// Hold a Lease so that only one of several servers runs the controllers at a time.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Do not run the scheduler in this server.
    #[arg(long)]
    disable_scheduler: bool,
    /// How long a node may go without a heartbeat before it is marked Unknown and tainted
    /// (upstream `--node-monitor-grace-period`), e.g. `50s` or `2m`.
    #[arg(long, default_value = "50s", value_parser = parse_duration)]
    node_monitor_grace_period: std::time::Duration,
    /// How often the HPA controller looks at each HorizontalPodAutoscaler (upstream
    /// kube-controller-manager's `--horizontal-pod-autoscaler-sync-period`).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    horizontal_pod_autoscaler_sync_period: std::time::Duration,
    /// Seconds every pod tolerates a not-ready node before eviction.
    #[arg(long, default_value_t = 300)]
    default_not_ready_toleration_seconds: i64,
    /// Seconds every pod tolerates an unreachable node before eviction.
    #[arg(long, default_value_t = 300)]
    default_unreachable_toleration_seconds: i64,
}

#[derive(clap::Args)]
struct HollowArgs {
    /// Kubeconfig of the cluster to join.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// How many simulated nodes.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Node names are PREFIX0, PREFIX1, ...
    #[arg(long, default_value = "hollow-")]
    name_prefix: String,
    #[arg(long, default_value = "32")]
    cpu: String,
    #[arg(long, default_value = "256Gi")]
    memory: String,
    #[arg(long, default_value_t = 110)]
    pods: u32,
    /// Extra node labels, k=v[,k=v].
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Serve the control endpoint (kill or revive a node over HTTP) on this address.
    #[arg(long)]
    control_address: Option<std::net::SocketAddr>,
}

/// `/var/lib/bosun` for root, a per-user directory otherwise.
fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        PathBuf::from("/var/lib/bosun")
    } else {
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("bosun")
    }
}

/// `50s`, `2m`, `1h` or plain seconds.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 50s, 2m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("invalid duration {s:?}: unit must be s, m or h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

fn parse_port_range(s: &str) -> anyhow::Result<(u16, u16)> {
    let (lo, hi) = s
        .split_once('-')
        .context("--service-node-port-range must be LOW-HIGH")?;
    let lo: u16 = lo
        .trim()
        .parse()
        .context("--service-node-port-range: bad low port")?;
    let hi: u16 = hi
        .trim()
        .parse()
        .context("--service-node-port-range: bad high port")?;
    anyhow::ensure!(
        lo < hi,
        "--service-node-port-range: low port must be below high port"
    );
    Ok((lo, hi))
}

/// A started control plane: the API server and the loops running beside it.
struct RunningServer {
    server: bosun_apiserver::Server,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    async fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
        self.server.stop().await;
    }
}

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let running = start_server(args).await?;
    let server = &running.server;
    println!("bosun API server listening on {}", server.url);
    println!("kubeconfig: {}", server.kubeconfig.display());
    println!("node join token: {}", server.pki.node_token);
    println!(
        "try: kubectl --kubeconfig {} get all -A",
        server.kubeconfig.display()
    );
    shutdown_signal().await;
    println!("shutting down");
    running.stop().await;
    Ok(())
}

/// Everything `bosun server` runs (API server, controllers, scheduler, node IPAM), started;
/// `bosun up` runs the same.
async fn start_server(args: ServerArgs) -> anyhow::Result<RunningServer> {
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    up::check_data_version(&data_dir)?;
    let store: Arc<dyn bosun_store::Store> = match &args.datastore_endpoint {
        Some(ep) => {
            let endpoints: Vec<String> = ep
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            Arc::new(
                bosun_store_etcd::EtcdStore::connect(&endpoints, "")
                    .await
                    .with_context(|| format!("connecting to etcd at {ep}"))?,
            )
        }
        None => {
            lock_data_dir(&data_dir)?;
            let path = data_dir.join("db").join("state.db");
            std::fs::create_dir_all(data_dir.join("db")).context("creating the store directory")?;
            Arc::new(
                bosun_store::sqlite::SqliteStore::open(&path, Default::default())
                    .with_context(|| format!("opening the store at {}", path.display()))?,
            )
        }
    };
    let config = bosun_apiserver::Config {
        data_dir: data_dir.clone(),
        bind_address: args.bind_address,
        secure_port: args.secure_port,
        kubeconfig: args.write_kubeconfig,
        tls_sans: args.tls_san,
        service_cidr: args.service_cluster_ip_range,
        node_port_range: parse_port_range(&args.service_node_port_range)?,
        admission: bosun_apiserver::admission::AdmissionConfig {
            default_not_ready_toleration_seconds: args.default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds: args.default_unreachable_toleration_seconds,
        },
        ..Default::default()
    };
    let cluster_cidr: bosun_net::ipnet::Ipv4Net = args
        .cluster_cidr
        .parse()
        .with_context(|| format!("--cluster-cidr {:?} is not an IPv4 CIDR", args.cluster_cidr))?;
    bosun_net::nodeipam::CidrAllocator::new(cluster_cidr, args.node_cidr_mask_size)
        .context("--cluster-cidr / --node-cidr-mask-size")?;
    let server = bosun_apiserver::Server::start(config, store)
        .await
        .context("starting the API server")?;
    let node_ipam = if args.allocate_node_cidrs {
        let client = loopback_client(&server);
        let mask = args.node_cidr_mask_size;
        let elect = args.leader_elect;
        Some(tokio::spawn(run_node_ipam(
            client,
            cluster_cidr,
            mask,
            elect,
        )))
    } else {
        None
    };
    let controllers = if args.controllers.iter().all(|c| c.trim().is_empty()) {
        None
    } else {
        let client = loopback_client(&server);
        let mut opts = bosun_controllers::ControllerOptions {
            controllers: args.controllers.clone(),
            ..Default::default()
        };
        opts.leader_election.enabled = args.leader_elect;
        opts.node_lifecycle.node_monitor_grace_period = args.node_monitor_grace_period;
        opts.hpa.sync_period = args.horizontal_pod_autoscaler_sync_period;
        Some(tokio::spawn(async move {
            if let Err(e) = bosun_controllers::run(client, opts).await {
                tracing::error!(error = %e, "the controllers stopped");
            }
        }))
    };
    let scheduler = if args.disable_scheduler {
        None
    } else {
        let client = loopback_client(&server);
        let mut opts = bosun_scheduler::SchedulerOptions::default();
        if args.leader_elect {
            let identity = format!("{}_{}", hostname(), std::process::id());
            opts.leader_election = Some(bosun_scheduler::LeaderElection::scheduler(identity));
        }
        Some(tokio::spawn(async move {
            if let Err(e) = bosun_scheduler::run(client, opts).await {
                tracing::error!(error = %e, "the scheduler stopped");
            }
        }))
    };
    let tasks = [controllers, scheduler, node_ipam]
        .into_iter()
        .flatten()
        .collect();
    Ok(RunningServer { server, tasks })
}

/// The node IPAM of `bosun server`. With leader election (several servers on one etcd),
/// only the holder of the Lease `kube-system/bosun-node-ipam` runs it, through the
/// controllers' elector: two allocators, each with its own idea of what is taken, would
/// give two Nodes the same podCIDR. (Upstream runs it inside kube-controller-manager under
/// that one's lease; a lease of its own keeps it independent of `--controllers`.) A
/// leader that loses the lease stops allocating and competes again.
async fn run_node_ipam(
    client: kube::Client,
    cluster_cidr: bosun_net::ipnet::Ipv4Net,
    mask: u8,
    leader_elect: bool,
) {
    let run = |client: kube::Client| async move {
        if let Err(e) = bosun_net::run_node_ipam(client, cluster_cidr, mask).await {
            tracing::error!(error = %e, "node IPAM stopped");
        }
    };
    if !leader_elect {
        return run(client).await;
    }
    let mut elector = bosun_controllers::LeaderElector::new(
        client.clone(),
        bosun_controllers::LeaderElectionConfig {
            name: "bosun-node-ipam".into(),
            identity: Some(format!("{}_{}", hostname(), std::process::id())),
            ..Default::default()
        },
    );
    loop {
        elector.acquire().await;
        tokio::select! {
            () = run(client.clone()) => {
                elector.release().await;
                return;
            }
            lost = elector.hold() => {
                tracing::warn!(error = %lost, "node IPAM: leadership lost, no longer allocating");
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "bosun".into())
}

async fn hollow(args: HollowArgs) -> anyhow::Result<()> {
    let client = admin_client(&args.kubeconfig).await?;
    let mut labels = std::collections::BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l
            .split_once('=')
            .with_context(|| format!("--labels: {l:?} is not k=v"))?;
        labels.insert(k.to_string(), v.to_string());
    }
    let opts = bosun_hollow::HollowOptions {
        nodes: args.nodes,
        name_prefix: args.name_prefix,
        cpu: args.cpu,
        memory: args.memory,
        pods: args.pods,
        labels,
        control_addr: args.control_address,
        ..Default::default()
    };
    let handle = bosun_hollow::run(client, opts)
        .await
        .context("starting the hollow nodes")?;
    println!("{} hollow nodes running", handle.node_names().len());
    if let Some(addr) = handle.control_addr() {
        println!("control endpoint: http://{addr}");
    }
    shutdown_signal().await;
    handle.stop();
    Ok(())
}

/// A kube-rs client for a loop running in this process beside the API server (scheduler,
/// controllers, node IPAM, `bosun up`'s agent): its requests go straight to the server's
/// router as `system:apiserver` (bosun_apiserver::loopback) instead of over TLS to
/// 127.0.0.1, one connection per concurrent request and watch.
pub(crate) fn loopback_client(server: &bosun_apiserver::Server) -> kube::Client {
    kube::Client::new(server.loopback(), "default")
}

/// A kube-rs client with the admin credentials of a kubeconfig, for clients in other
/// processes (hollow nodes, benchmarks).
async fn admin_client(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    let kc =
        kube::config::Kubeconfig::read_from(kubeconfig).context("reading the admin kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("building the admin client configuration")?;
    kube::Client::try_from(config).context("building the admin client")
}

/// Holds an exclusive lock on DATA_DIR/db/lock for the life of the process, so two servers
/// never open one embedded store.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = data_dir.join("db");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a valid open descriptor; the descriptor stays open (leaked below).
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    anyhow::ensure!(
        rc == 0,
        "the data directory {} is in use by another bosun process (stop it, or pass another --data-dir)",
        data_dir.display()
    );
    std::mem::forget(file);
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn image(args: ImageArgs) -> anyhow::Result<()> {
    let store = bosun_runtime::image::ImageStore::open(&args.data_dir)
        .with_context(|| format!("opening the image store in {}", args.data_dir.display()))?;
    match args.command {
        ImageCommand::Import { file, name } => {
            let imported = store
                .import(&file, name.as_deref())
                .with_context(|| format!("importing {}", file.display()))?;
            for i in imported {
                println!("imported {} {}", i.reference, i.config_digest);
            }
        }
        ImageCommand::Ls => {
            println!("{:<60} {:<20} {:>10}", "REFERENCE", "IMAGE ID", "SIZE");
            for i in store.list().context("listing images")? {
                let id = i.config_digest.trim_start_matches("sha256:");
                println!(
                    "{:<60} {:<20} {:>10}",
                    i.reference,
                    &id[..id.len().min(13)],
                    format!("{:.1}MiB", i.size as f64 / (1024.0 * 1024.0))
                );
            }
        }
        ImageCommand::Rm { reference } => {
            let info = store
                .remove(&reference)
                .with_context(|| format!("removing {reference}"))?;
            println!("removed {}", info.reference);
        }
        ImageCommand::Pull {
            reference,
            insecure_registry,
        } => {
            let opts = bosun_runtime::image::PullOptions {
                insecure_registries: insecure_registry,
                ..Default::default()
            };
            // The store's pull is async (network); this command runs before the main runtime.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let info = rt.block_on(store.pull(&reference, &opts))?;
            println!("pulled {} {}", info.reference, info.config_digest);
        }
    }
    Ok(())
}

/// The agent's API client and the CA it trusts, from --kubeconfig or --server/--token/--server-ca.
async fn agent_client(args: &AgentArgs) -> anyhow::Result<(kube::Client, String)> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let kc = match &args.kubeconfig {
        Some(path) => kube::config::Kubeconfig::read_from(path)
            .with_context(|| format!("reading {}", path.display()))?,
        None => {
            let server = args
                .server
                .as_deref()
                .context("bosun agent needs --server URL (or --kubeconfig FILE)")?;
            let token = args
                .token
                .as_deref()
                .context("bosun agent needs --token TOKEN (the server's DATA_DIR/node-token)")?;
            let ca_path = args.server_ca.as_deref().context(
                "bosun agent needs --server-ca FILE (the server's DATA_DIR/tls/ca.crt) to verify the server",
            )?;
            let ca =
                std::fs::read(ca_path).with_context(|| format!("reading {}", ca_path.display()))?;
            serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Config", "current-context": "default",
                "clusters": [{"name": "default", "cluster": {"server": server, "certificate-authority-data": b64.encode(ca)}}],
                "users": [{"name": "default", "user": {"token": token.trim()}}],
                "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
            }))
            .context("building the agent's client configuration")?
        }
    };
    let cluster = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .context("the kubeconfig has no cluster")?;
    let ca_pem = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(d), _) => String::from_utf8(
            b64.decode(d.trim())
                .context("decoding certificate-authority-data")?,
        )
        .context("certificate-authority-data is not PEM")?,
        (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?,
        (None, None) => {
            anyhow::bail!("the cluster configuration names no CA; pass --server-ca FILE")
        }
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("building the agent's client configuration")?;
    Ok((
        kube::Client::try_from(config).context("building the agent's client")?,
        ca_pem,
    ))
}

async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    tokio::select! {
        r = run_agent(args) => r,
        _ = shutdown_signal() => {
            // Containers keep running under their shims; the next agent adopts them.
            println!("agent stopping; containers keep running");
            Ok(())
        }
    }
}

/// Everything `bosun agent` runs, until it fails; dropping the future stops the agent and
/// leaves containers running. `bosun up` runs the same.
async fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    let (client, ca_pem) = agent_client(&args).await?;
    run_agent_with(args, client, ca_pem).await
}

/// The agent with a client already made: `bosun up` passes one over the loopback transport
/// and the server's CA.
pub(crate) async fn run_agent_with(
    args: AgentArgs,
    client: kube::Client,
    ca_pem: String,
) -> anyhow::Result<()> {
    let node_name = args.node_name.clone().unwrap_or_else(hostname);
    let mut cfg = bosun_kubelet::KubeletConfig::new(node_name, args.data_dir.clone(), ca_pem);
    cfg.node_ip = args.node_ip;
    cfg.port = args.kubelet_port;
    cfg.cluster_dns = args.cluster_dns.clone();
    cfg.cluster_domain = args.cluster_domain.clone();
    if !args.disable_network {
        let parse = |flag: &str, v: &str| -> anyhow::Result<bosun_net::ipnet::Ipv4Net> {
            v.parse()
                .with_context(|| format!("{flag} {v:?} is not an IPv4 CIDR"))
        };
        let service_cidr = parse("--service-cluster-ip-range", &args.service_cluster_ip_range)?;
        let net = bosun_kubelet::network::NetworkConfig {
            cluster_cidr: parse("--cluster-cidr", &args.cluster_cidr)?,
            service_cidr,
            // kubeadm's choice, the tenth address of the service range (10.96.0.10); the
            // server gives kube-system/kube-dns the same one.
            dns_ip: std::net::Ipv4Addr::from(u32::from(service_cidr.network()) + 10),
            ..Default::default()
        };
        if cfg.cluster_dns.is_empty() {
            cfg.cluster_dns = vec![net.dns_ip.to_string()];
        }
        cfg.network = Some(net);
    }
    cfg.insecure_registries = args.insecure_registries.clone();
    cfg.pull_images = !args.disable_image_pull;
    cfg.eviction = bosun_kubelet::node::Eviction::parse(&args.eviction_hard)
        .map_err(|e| anyhow::anyhow!("--eviction-hard: {e}"))?;
    cfg.pod_manifest_path = args.pod_manifest_path.clone();
    cfg.log_rotation.max_size_bytes =
        bosun_kubelet::logrotate::parse_size(&args.container_log_max_size)
            .map_err(|e| anyhow::anyhow!("--container-log-max-size: {e}"))?;
    if args.container_log_max_files < 2 {
        anyhow::bail!("--container-log-max-files must be at least 2");
    }
    cfg.log_rotation.max_files = args.container_log_max_files;
    cfg.image_gc.high_threshold_percent = args.image_gc_high_threshold;
    cfg.image_gc.low_threshold_percent = args.image_gc_low_threshold;
    cfg.image_gc
        .validate()
        .map_err(|e| anyhow::anyhow!("--image-gc-high-threshold/--image-gc-low-threshold: {e}"))?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    bosun_kubelet::run(client, cfg)
        .await
        .context("the agent stopped")
}

fn main() -> anyhow::Result<()> {
    // The shim forks: it must run before any thread (tokio's) exists.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("shim") {
        std::process::exit(bosun_runtime::shim::main(argv[2..].to_vec()));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BOSUN_LOG").unwrap_or_else(|_| {
                // The client's output is its stdout: only warnings, on stderr.
                if argv.get(1).map(String::as_str) == Some("ctl") {
                    "warn".into()
                } else {
                    "info".into()
                }
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Agent(_) if !bosun_kubelet::is_root() => {
            eprintln!("bosun agent needs root (it mounts filesystems, creates namespaces and cgroups); run it as root");
            std::process::exit(1);
        }
        Command::Image(a) => return image(a),
        Command::Completion { shell } => {
            use clap::CommandFactory;
            use std::io::Write as _;
            // Into memory first: clap_complete panics on a write error (a closed pipe).
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "bosun", &mut buf);
            let _ = std::io::stdout().write_all(&buf);
            return Ok(());
        }
        Command::Ctl(a) => {
            // A client: one thread is plenty, and no server logging.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            std::process::exit(rt.block_on(bosun_ctl::run(a)));
        }
        Command::Shim { args } => std::process::exit(bosun_runtime::shim::main(args)),
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        match cli.command {
            Command::Server(a) => server(a).await,
            Command::Up(a) => {
                if let Err(e) = up::run(a).await {
                    // One line a newcomer can act on, not a backtrace of contexts.
                    eprintln!("bosun up: {e:#}");
                    std::process::exit(1);
                }
                Ok(())
            }
            Command::Down(a) => {
                if let Err(e) = down::run(a).await {
                    eprintln!("bosun down: {e:#}");
                    std::process::exit(1);
                }
                Ok(())
            }
            Command::Hollow(a) => hollow(a).await,
            Command::Bench(a) => bench::run(a).await,
            Command::Agent(a) => agent(a).await,
            Command::Image(_)
            | Command::Shim { .. }
            | Command::Ctl(_)
            | Command::Completion { .. } => Ok(()),
        }
    })
}
