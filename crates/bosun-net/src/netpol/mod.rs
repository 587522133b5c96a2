//! NetworkPolicy enforcement on one node: NetworkPolicies, Pods and Namespaces watched,
//! what they allow for this node's pods computed as data ([`model::compute`]), rendered into
//! one nftables table ([`rules::ruleset`]) and applied whole in one transaction whenever
//! the result changes.
pub mod model;
pub mod rules;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Client;
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::nft::Nft;

pub use model::{compute, Allow, Peer, PodInfo, PodRules, PortRange, Ports};
pub use rules::{ruleset, RenderConfig, TABLE};

/// Enforcement settings.
#[derive(Debug, Clone)]
pub struct NetpolConfig {
    /// This node's name: policies are enforced for the pods on it.
    pub node_name: String,
    /// Namespace playing the node (tests); `None` is the agent's own.
    pub netns: Option<PathBuf>,
    /// At most one sync per this interval (as the proxy's).
    pub min_sync_interval: Duration,
    /// The node-local cluster DNS addresses pods may always reach on port 53.
    pub dns_ips: Vec<Ipv4Addr>,
}

impl NetpolConfig {
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            node_name: node_name.into(),
            netns: None,
            min_sync_interval: Duration::from_millis(100),
            dns_ips: Vec::new(),
        }
    }
}

/// Programs the table; remembers what it applied last so an unchanged result costs no
/// `nft` run.
#[derive(Debug)]
pub struct Enforcer {
    cfg: NetpolConfig,
    nft: Nft,
    applied: Option<String>,
}

impl Enforcer {
    pub fn new(cfg: NetpolConfig) -> Self {
        let nft = Nft::new(cfg.netns.clone());
        Self {
            cfg,
            nft,
            applied: None,
        }
    }

    /// Computes and applies the table for these objects.
    pub async fn sync(
        &mut self,
        policies: &[&NetworkPolicy],
        pods: &[&Pod],
        namespaces: &[&Namespace],
    ) -> Result<()> {
        let infos: Vec<PodInfo> = pods.iter().filter_map(|p| PodInfo::from_pod(p)).collect();
        let ns: BTreeMap<String, BTreeMap<String, String>> = namespaces
            .iter()
            .filter_map(|n| {
                Some((
                    n.metadata.name.clone()?,
                    n.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect();
        let rules = compute(policies, &infos, &ns, &self.cfg.node_name);
        let text = ruleset(
            &rules,
            &RenderConfig {
                dns_ips: self.cfg.dns_ips.clone(),
            },
        );
        if self.applied.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        match self.nft.apply(&text).await {
            Ok(()) => {
                tracing::debug!(isolated_pods = rules.len(), "network policy: table applied");
                self.applied = Some(text);
                Ok(())
            }
            Err(e) => {
                self.applied = None;
                Err(e)
            }
        }
    }
}

/// Makes bridged IPv4 traffic (pod to pod on one node) pass the `ip` family's hooks, where
/// the policy table filters it (`net.bridge.bridge-nf-call-iptables`, per network
/// namespace; the file exists once the kernel's br_netfilter is loaded).
pub fn ensure_bridge_netfilter() -> Result<()> {
    let path = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == "1" => Ok(()),
        Ok(_) => std::fs::write(path, "1").map_err(Error::io("write", path)),
        Err(e) => Err(Error::Io {
            op: "read (is br_netfilter loaded?)",
            path: path.into(),
            source: e,
        }),
    }
}

/// Runs enforcement for `cfg.node_name` until the task is dropped.
pub async fn run_network_policy(client: Client, cfg: NetpolConfig) -> Result<()> {
    if cfg.netns.is_none() {
        if let Err(e) = ensure_bridge_netfilter() {
            tracing::warn!(error = %e, "network policy cannot see traffic between pods on this node");
        }
    }
    let notify = Arc::new(Notify::new());
    let (np_store, np_task) = reflect::<NetworkPolicy>(Api::all(client.clone()), &notify);
    let (pod_store, pod_task) = reflect::<Pod>(Api::all(client.clone()), &notify);
    let (ns_store, ns_task) = reflect::<Namespace>(Api::all(client), &notify);
    let _guard = AbortOnDrop(vec![np_task, pod_task, ns_task]);
    let _ = np_store.wait_until_ready().await;
    let _ = pod_store.wait_until_ready().await;
    let _ = ns_store.wait_until_ready().await;
    let interval = cfg.min_sync_interval;
    let mut enforcer = Enforcer::new(cfg);
    let mut last = Instant::now() - interval;
    loop {
        let wait = interval.saturating_sub(last.elapsed());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        last = Instant::now();
        let (nps, pods, nss) = (np_store.state(), pod_store.state(), ns_store.state());
        let nps: Vec<&NetworkPolicy> = nps.iter().map(|a| a.as_ref()).collect();
        let pods: Vec<&Pod> = pods.iter().map(|a| a.as_ref()).collect();
        let nss: Vec<&Namespace> = nss.iter().map(|a| a.as_ref()).collect();
        if let Err(e) = enforcer.sync(&nps, &pods, &nss).await {
            tracing::warn!(error = %e, "network policy: sync failed, retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        notify.notified().await;
    }
}

type Reflected<K> = (reflector::Store<K>, tokio::task::JoinHandle<()>);

/// A reflector of `api` whose every event wakes `notify`.
fn reflect<K>(api: Api<K>, notify: &Arc<Notify>) -> Reflected<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let n = notify.clone();
    let task = tokio::spawn(
        reflector(
            writer,
            watcher(api, watcher::Config::default()).default_backoff(),
        )
        .for_each(move |_| {
            n.notify_one();
            futures::future::ready(())
        }),
    );
    (store, task)
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests;
