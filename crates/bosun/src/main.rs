//! The `bosun` binary: `bosun server` runs the API server on the embedded store (or an
//! etcd cluster with `--datastore-endpoint`).

mod allocator;
mod bench;

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
    /// Simulate N nodes in one process (like kwok), for tests and benchmarks.
    Hollow(HollowArgs),
    /// Benchmarks (`bosun bench api`).
    Bench(bench::BenchArgs),
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

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
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
        ..Default::default()
    };
    let server = bosun_apiserver::Server::start(config, store)
        .await
        .context("starting the API server")?;
    let controllers = if args.controllers.iter().all(|c| c.trim().is_empty()) {
        None
    } else {
        let client = admin_client(&server.kubeconfig).await?;
        let mut opts = bosun_controllers::ControllerOptions {
            controllers: args.controllers.clone(),
            ..Default::default()
        };
        opts.leader_election.enabled = args.leader_elect;
        Some(tokio::spawn(async move {
            if let Err(e) = bosun_controllers::run(client, opts).await {
                tracing::error!(error = %e, "the controllers stopped");
            }
        }))
    };
    let scheduler = if args.disable_scheduler {
        None
    } else {
        let client = admin_client(&server.kubeconfig).await?;
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
    println!("bosun API server listening on {}", server.url);
    println!("kubeconfig: {}", server.kubeconfig.display());
    println!("node join token: {}", server.pki.node_token);
    println!(
        "try: kubectl --kubeconfig {} get all -A",
        server.kubeconfig.display()
    );
    shutdown_signal().await;
    println!("shutting down");
    for task in [controllers, scheduler].into_iter().flatten() {
        task.abort();
    }
    server.stop().await;
    Ok(())
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

/// A kube-rs client with the admin credentials of a kubeconfig, for the in-process
/// control loops (they talk to the API like any other client).
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

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BOSUN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        match cli.command {
            Command::Server(a) => server(a).await,
            Command::Hollow(a) => hollow(a).await,
            Command::Bench(a) => bench::run(a).await,
        }
    })
}
