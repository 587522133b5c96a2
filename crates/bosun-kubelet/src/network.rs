//! The node's network as the agent runs it (`bosun-net` wired in): waits for the Node's
//! `spec.podCIDR`, sets up the pod network (bridge, service routes, masquerading), connects
//! each pod's sandbox and releases its address when the pod goes, keeps host-gw routes to
//! every other node's pod CIDR from a Node watch, publishes `hostPort`s, and runs the service
//! proxy, NetworkPolicy enforcement and the cluster DNS server.
//!
//! Cluster DNS: the kube-dns ClusterIP (10.96.0.10) is a local address of every node (on
//! `lo`), and the in-process DNS server listens there; the proxy leaves that address
//! alone. A pod's query goes to its own node's server (no cross-node hop, nothing to
//! load-balance, no endpoints to keep in sync, and it still answers while the API server is
//! unreachable), the same address works from the node itself (`ClusterFirstWithHostNet`),
//! and the Service in `kube-system` still exists for tools that look for it.
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bosun_net::dns::upstreams_from_resolv_conf;
use bosun_net::hostports::{self, HostPort};
use bosun_net::ipnet::Ipv4Net;
use bosun_net::nft::Nft;
use bosun_net::nodeipam::node_pod_cidr;
use bosun_net::podnet::ensure_local_address;
use bosun_net::{DnsConfig, NetConfig, PodNetwork, ProxyConfig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use tokio::sync::{watch, Mutex, Notify};

use crate::Ctx;

/// The agent's network settings; defaults are upstream's.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The cluster's pod CIDR (`--cluster-cidr`, 10.244.0.0/16): traffic leaving it is
    /// masqueraded, ClusterIP traffic from outside it is too.
    pub cluster_cidr: Ipv4Net,
    /// The service CIDR (10.96.0.0/12): an unreachable route keeps unprogrammed ClusterIPs
    /// on the machine.
    pub service_cidr: Ipv4Net,
    /// The cluster DNS address (the kube-dns ClusterIP, 10.96.0.10), bound on the node.
    pub dns_ip: Ipv4Addr,
    /// The interface holding `dns_ip` (`lo`: always there, where a dummy interface needs a
    /// kernel module some nodes lack). Created as a dummy interface if missing.
    pub dns_link: String,
    /// MTU of the bridge and the pods' veths (1500, a plain Ethernet node network).
    pub mtu: u32,
    /// Masquerade pod traffic leaving the cluster CIDR.
    pub masquerade: bool,
    /// Run the service proxy (nftables) in this agent.
    pub proxy: bool,
    /// Run the cluster DNS server in this agent.
    pub dns: bool,
    /// Enforce NetworkPolicies for this node's pods (nftables).
    pub network_policy: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        let net = NetConfig::default();
        Self {
            cluster_cidr: net.cluster_cidr,
            service_cidr: net.service_cidr,
            dns_ip: Ipv4Addr::new(10, 96, 0, 10),
            dns_link: "lo".into(),
            mtu: net.mtu,
            masquerade: true,
            proxy: true,
            dns: true,
            network_policy: true,
        }
    }
}

/// The pod network of this node, once its pod CIDR is known.
pub(crate) struct Network {
    cfg: NetworkConfig,
    data_dir: PathBuf,
    ready: watch::Sender<Option<PodNetwork>>,
    /// Pod uid → its published hostPorts; the table is rewritten whole from this.
    host_ports: Mutex<BTreeMap<String, Vec<HostPort>>>,
}

/// How long a pod's teardown waits for the network to come up (after an agent restart)
/// before leaving the address to the start-up collection.
const TEARDOWN_WAIT: Duration = Duration::from_secs(10);
/// Routes are re-checked this often even without Node changes (someone may flush them).
const ROUTE_RESYNC: Duration = Duration::from_secs(30);

impl Network {
    pub(crate) fn new(cfg: NetworkConfig, data_dir: PathBuf) -> Self {
        Self {
            cfg,
            data_dir,
            ready: watch::channel(None).0,
            host_ports: Mutex::new(BTreeMap::new()),
        }
    }

    fn pod_network(&self) -> Option<PodNetwork> {
        self.ready.borrow().clone()
    }

    /// Connects a pod's sandbox and publishes its hostPorts; a pod already connected (an
    /// adopted one) is left as it is. Returns the pod's IP, or why it has none yet.
    pub(crate) async fn setup_pod(
        &self,
        pod: &Pod,
        uid: &str,
        netns: &Path,
    ) -> Result<Ipv4Addr, String> {
        let Some(net) = self.pod_network() else {
            return Err("network is not ready: waiting for the node's podCIDR".into());
        };
        let ips = net
            .ensure(uid, netns)
            .await
            .map_err(|e| format!("setting up the pod network: {e}"))?;
        let ports = pod
            .spec
            .as_ref()
            .map(|s| hostports::pod_host_ports(s, ips.ip))
            .unwrap_or_default();
        self.set_host_ports(uid, ports).await?;
        Ok(ips.ip)
    }

    /// Disconnects a pod and releases its address and hostPorts.
    pub(crate) async fn teardown_pod(&self, uid: &str) {
        let mut rx = self.ready.subscribe();
        let net = match tokio::time::timeout(TEARDOWN_WAIT, rx.wait_for(Option::is_some)).await {
            Ok(Ok(n)) => n.clone(),
            _ => None,
        };
        let Some(net) = net else {
            tracing::warn!(pod_uid = %uid, "network not ready: the pod's address is released at the next start");
            return;
        };
        if let Err(e) = net.teardown(uid).await {
            tracing::warn!(pod_uid = %uid, error = %e, "tearing down the pod network");
        }
        if let Err(e) = self.set_host_ports(uid, Vec::new()).await {
            tracing::warn!(pod_uid = %uid, error = %e, "removing hostPorts");
        }
    }

    async fn set_host_ports(&self, uid: &str, ports: Vec<HostPort>) -> Result<(), String> {
        let mut all = self.host_ports.lock().await;
        let unchanged = match all.get(uid) {
            Some(p) => *p == ports,
            None => ports.is_empty(),
        };
        if unchanged {
            return Ok(());
        }
        if ports.is_empty() {
            all.remove(uid);
        } else {
            all.insert(uid.to_string(), ports);
        }
        let flat: Vec<HostPort> = all.values().flatten().cloned().collect();
        Nft::new(None)
            .apply(&hostports::ruleset(&flat))
            .await
            .map_err(|e| format!("programming hostPorts: {e}"))
    }

    /// Brings the node side up for `cidr` and collects addresses whose pod has no sandbox
    /// any more (pods removed while the agent was down).
    async fn start(&self, ctx: &Ctx, cidr: Ipv4Net) -> bosun_net::Result<PodNetwork> {
        let net = PodNetwork::new(
            NetConfig {
                data_dir: self.data_dir.clone(),
                mtu: self.cfg.mtu,
                cluster_cidr: self.cfg.cluster_cidr,
                service_cidr: self.cfg.service_cidr,
                masquerade: self.cfg.masquerade,
                ..NetConfig::default()
            },
            cidr,
        )
        .await?;
        // The hostPort table starts empty; pods re-publish theirs as they are (re)synced.
        Nft::new(None).apply(&hostports::ruleset(&[])).await?;
        for (ip, uid) in net.allocated()? {
            if matches!(ctx.runtime.sandbox(&uid), Ok(None)) {
                tracing::info!(pod_uid = %uid, %ip, "releasing the address of a pod that is gone");
                net.teardown(&uid).await?;
            }
        }
        Ok(net)
    }
}

/// Runs the node network until dropped: the Node watch (pod CIDR, host-gw routes), the
/// proxy and the DNS server.
pub(crate) async fn run(ctx: Arc<Ctx>, net: Arc<Network>) {
    let mut tasks = tokio::task::JoinSet::new();
    if net.cfg.proxy {
        let mut pc = ProxyConfig::new(ctx.cfg.node_name.clone());
        pc.cluster_cidr = net.cfg.cluster_cidr;
        if net.cfg.dns {
            pc.local_service_ips = vec![net.cfg.dns_ip];
        }
        let client = ctx.client.clone();
        tasks.spawn(async move {
            loop {
                if let Err(e) = bosun_net::run_proxy(client.clone(), pc.clone()).await {
                    tracing::error!(error = %e, "service proxy stopped; restarting");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    if net.cfg.network_policy {
        let mut nc = bosun_net::NetpolConfig::new(ctx.cfg.node_name.clone());
        if net.cfg.dns {
            nc.dns_ips = vec![net.cfg.dns_ip];
        }
        let client = ctx.client.clone();
        tasks.spawn(async move {
            loop {
                if let Err(e) = bosun_net::run_network_policy(client.clone(), nc.clone()).await {
                    tracing::error!(error = %e, "network policy enforcement stopped; restarting");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    if net.cfg.dns {
        let client = ctx.client.clone();
        let cfg = net.cfg.clone();
        tasks.spawn(async move {
            loop {
                if let Err(e) = run_dns(client.clone(), &cfg).await {
                    tracing::error!(error = %e, "cluster DNS stopped; restarting");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    tasks.spawn(watch_nodes(ctx, net));
    while tasks.join_next().await.is_some() {}
}

async fn run_dns(client: kube::Client, cfg: &NetworkConfig) -> bosun_net::Result<()> {
    ensure_local_address(None, &cfg.dns_link, cfg.dns_ip).await?;
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let own = SocketAddr::from((cfg.dns_ip, 53));
    let upstreams = upstreams_from_resolv_conf(&resolv)
        .into_iter()
        .filter(|u| *u != own)
        .collect();
    bosun_net::run_dns(
        client,
        DnsConfig {
            listen: own,
            upstreams,
            ..DnsConfig::default()
        },
    )
    .await
}

/// Waits for this Node's pod CIDR, starts the pod network, then keeps the host-gw routes in
/// line with the other Nodes.
async fn watch_nodes(ctx: Arc<Ctx>, net: Arc<Network>) {
    let notify = Arc::new(Notify::new());
    let (store, writer) = reflector::store::<Node>();
    let n = notify.clone();
    let watch = tokio::spawn(
        reflector(
            writer,
            watcher(
                Api::<Node>::all(ctx.client.clone()),
                watcher::Config::default(),
            )
            .default_backoff(),
        )
        .for_each(move |_| {
            n.notify_one();
            futures::future::ready(())
        }),
    );
    let _guard = AbortOnDrop(watch);
    let _ = store.wait_until_ready().await;
    let mut pod_net: Option<PodNetwork> = None;
    loop {
        let nodes: Vec<Node> = store.state().iter().map(|n| (**n).clone()).collect();
        if pod_net.is_none() {
            let own = nodes
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(ctx.cfg.node_name.as_str()))
                .and_then(node_pod_cidr);
            if let Some(cidr) = own {
                match net.start(&ctx, cidr).await {
                    Ok(p) => {
                        tracing::info!(pod_cidr = %cidr, gateway = %p.gateway(), "pod network ready");
                        pod_net = Some(p.clone());
                        net.ready.send_replace(Some(p));
                    }
                    Err(e) => {
                        tracing::warn!(pod_cidr = %cidr, error = %e, "pod network set-up failed; retrying")
                    }
                }
            }
        }
        if let Some(p) = &pod_net {
            if let Err(e) = p.sync_routes(&nodes).await {
                tracing::warn!(error = %e, "syncing host-gw routes");
            }
        }
        let wait = if pod_net.is_some() {
            ROUTE_RESYNC
        } else {
            Duration::from_secs(2)
        };
        let _ = tokio::time::timeout(wait, notify.notified()).await;
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
