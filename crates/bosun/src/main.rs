//! The `bosun` binary: `bosun server` runs the API server on the embedded store (or an
//! etcd cluster with `--datastore-endpoint`).

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
    /// Run the API server (control plane).
    Server(ServerArgs),
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
    println!("bosun API server listening on {}", server.url);
    println!("kubeconfig: {}", server.kubeconfig.display());
    println!("node join token: {}", server.pki.node_token);
    println!(
        "try: kubectl --kubeconfig {} get all -A",
        server.kubeconfig.display()
    );
    shutdown_signal().await;
    println!("shutting down");
    server.stop().await;
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
        }
    })
}
