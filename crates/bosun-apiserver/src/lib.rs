//! The Kubernetes-compatible API server: the single door to bosun's state.
//!
//! A request flows: TLS and authentication ([`tls`]) → [`handlers`] (routing, content
//! negotiation, watch streaming) → [`registry`] (object semantics, calling the kind's
//! strategy through [`kinds`]) → the [`bosun_store::Store`]; reads are served from the
//! [`cache`], which one watch on the store keeps current.

pub mod admission;
pub mod alloc;
pub mod bootstrap;
pub mod cache;
pub mod codec;
pub mod convert;
pub mod discovery;
pub mod eviction;
pub mod filter;
pub mod handlers;
mod jsonbytes;
pub mod kinds;
pub mod kubelet_proxy;
pub mod loopback;
pub mod metered;
pub mod metrics;
pub mod metrics_api;
pub mod openapi_glue;
pub mod patching;
pub mod protobuf;
pub mod registry;
pub mod request;
pub mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use bosun_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Errors of starting the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store: {0}")]
    Store(#[from] bosun_store::Error),
    #[error("tls: {0}")]
    Tls(#[from] tls::Error),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

/// How the API server runs. Defaults follow upstream and k3s.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the PKI, tokens and kubeconfig live (k3s: /var/lib/rancher/k3s/server).
    pub data_dir: PathBuf,
    /// Address to listen on (upstream `--bind-address`, default 0.0.0.0).
    pub bind_address: IpAddr,
    /// HTTPS port (upstream `--secure-port`, default 6443; 0 picks a free port).
    pub secure_port: u16,
    /// Where to write the admin kubeconfig (default DATA_DIR/kubeconfig.yaml).
    pub kubeconfig: Option<PathBuf>,
    /// Extra names and IPs for the serving certificate (k3s `--tls-san`).
    pub tls_sans: Vec<String>,
    /// Service ClusterIP range (upstream `--service-cluster-ip-range`, default 10.96.0.0/12).
    pub service_cidr: String,
    /// NodePort range (upstream `--service-node-port-range`, default 30000-32767).
    pub node_port_range: (u16, u16),
    /// Events kept per resource for resuming watches.
    pub watch_cache_size: usize,
    /// How often history older than the previous tick is compacted (upstream
    /// `--etcd-compaction-interval`, default 5 minutes).
    pub compaction_interval: std::time::Duration,
    /// Admission plugins' settings (`--default-not-ready-toleration-seconds`, …).
    pub admission: admission::AdmissionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/bosun"),
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            secure_port: 6443,
            kubeconfig: None,
            tls_sans: Vec::new(),
            service_cidr: "10.96.0.0/12".into(),
            node_port_range: (30000, 32767),
            watch_cache_size: 8192,
            compaction_interval: std::time::Duration::from_secs(300),
            admission: admission::AdmissionConfig::default(),
        }
    }
}

/// A running API server.
pub struct Server {
    pub addr: SocketAddr,
    pub url: String,
    pub kubeconfig: PathBuf,
    pub pki: tls::Pki,
    pub state: handlers::SharedState,
    loopback: loopback::Loopback,
    loopback_control: loopback::Control,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    compactor: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts serving on the configured address over `store`.
    pub async fn start(config: Config, store: Arc<dyn Store>) -> Result<Server, Error> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::Config(format!("creating {}: {e}", config.data_dir.display())))?;
        let pki = tls::ensure_pki(&config.data_dir, &config.tls_sans)?;
        let addr = SocketAddr::new(config.bind_address, config.secure_port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let host = if config.bind_address.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            config.bind_address
        };
        let url = format!("https://{}", SocketAddr::new(host, addr.port()));
        let kubeconfig = config
            .kubeconfig
            .clone()
            .unwrap_or_else(|| config.data_dir.join("kubeconfig.yaml"));
        tls::write_kubeconfig(&pki, &url, &kubeconfig)?;

        let metrics = Arc::new(metrics::Metrics::default());
        let store: Arc<dyn Store> = Arc::new(metered::MeteredStore::new(store, metrics.clone()));
        let cidr = alloc::Cidr::parse(&config.service_cidr).map_err(Error::Config)?;
        let allocator = alloc::Allocator::new(store.clone(), cidr, config.node_port_range);
        let cache = cache::Cache::start(store.clone(), config.watch_cache_size).await?;
        let mut registry = registry::Registry::new(store.clone(), cache, allocator);
        registry.admission = config.admission.clone();
        let registry = Arc::new(registry);
        let compactor = tokio::spawn(compact_periodically(
            store.clone(),
            config.compaction_interval,
        ));
        bootstrap::run(&registry, host, addr.port())
            .await
            .map_err(|e| Error::Bootstrap(e.to_string()))?;

        let state = Arc::new(handlers::ApiState {
            registry,
            metrics,
            advertise: format!("{}:{}", host, addr.port()),
            kubelet: Arc::new(kubelet_proxy::KubeletClient::new(pki.clone())),
            metrics_api: Default::default(),
        });
        let app = handlers::router(state.clone());
        let (loopback, loopback_control) = loopback::Loopback::new(app.clone());
        let authn = Arc::new(tls::Authenticator::from_token_file(&pki.token_file)?);
        let server_tls = tls::server_config(&pki)?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tls::serve(listener, server_tls, app, authn, async move {
                let _ = rx.await;
            })
            .await;
        });
        tracing::info!(%url, kubeconfig = %kubeconfig.display(), "API server listening");
        Ok(Server {
            addr,
            url,
            kubeconfig,
            pki,
            state,
            loopback,
            loopback_control,
            shutdown: Some(tx),
            task: Some(task),
            compactor,
        })
    }

    /// The in-process transport for clients running in this process (scheduler,
    /// controllers, `bosun up`'s agent): requests go straight to the router as
    /// `system:apiserver` (see [`loopback`]); wrap it with `kube::Client::new`.
    pub fn loopback(&self) -> loopback::Loopback {
        self.loopback.clone()
    }

    /// Stops accepting, lets open requests finish briefly, and returns.
    pub async fn stop(mut self) {
        self.compactor.abort();
        self.loopback_control.set(loopback::State::Draining);
        // Stop accepting (and tell HTTP/2 clients to go away) first, then end the watches:
        // a client that re-watches in between gets 503 from the stopped cache rather than a
        // watch that would never see another event.
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::task::yield_now().await;
        self.state.registry.cache.stop();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.loopback_control.set(loopback::State::Closed);
    }
}

/// Compacts the store's history every `interval` to the revision seen one interval
/// earlier, as upstream's apiserver does with etcd: watchers get at least one interval of
/// history to resume from, and the store does not grow without bound.
async fn compact_periodically(store: Arc<dyn Store>, interval: std::time::Duration) {
    let mut previous: Option<bosun_store::Revision> = None;
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Some(rev) = previous {
            if rev > 0 {
                if let Err(e) = store.compact(rev).await {
                    tracing::warn!(revision = rev, error = %e, "compacting the store");
                }
            }
        }
        previous = store.current_revision().await.ok();
    }
}
