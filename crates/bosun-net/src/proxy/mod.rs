//! The service proxy: ClusterIP and NodePort through one nftables table (as upstream
//! kube-proxy's nftables mode), written whole in one transaction at the first sync and after
//! a failure, and after that only where Services or EndpointSlices changed (the chains of
//! changed service ports, map elements by difference, stale chains and sets deleted), also
//! in one transaction. Established connections keep their conntrack NAT across rewrites.
pub mod model;
pub mod rules;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Client;
use tokio::sync::Notify;

use crate::error::Result;
use crate::nft::Nft;

pub use model::{service_ports, Endpoint, Proto, ServicePort};
pub use rules::{generate, RulesConfig, Ruleset};

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// This node's name (endpoints on it are "local").
    pub node_name: String,
    /// The cluster's pod CIDR (10.244.0.0/16 by default).
    pub cluster_cidr: Ipv4Net,
    /// Namespace playing the node (tests); `None` is the agent's own.
    pub netns: Option<PathBuf>,
    /// At most one sync per this interval; changes within it are coalesced. 100 ms keeps an
    /// endpoint leaving Ready out of rotation well within a second.
    pub min_sync_interval: Duration,
    /// ClusterIPs this node answers itself (the cluster DNS address, bound on the node by
    /// the agent's DNS server): Services with these addresses get no rules, so their
    /// traffic reaches the local listener instead of being DNATed or rejected.
    pub local_service_ips: Vec<std::net::Ipv4Addr>,
}

impl ProxyConfig {
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            node_name: node_name.into(),
            cluster_cidr: "10.244.0.0/16".parse().unwrap_or_default(),
            netns: None,
            min_sync_interval: Duration::from_millis(100),
            local_service_ips: Vec::new(),
        }
    }
}

/// Programs the rules; keeps what it last applied to delete what disappears.
#[derive(Debug)]
pub struct Proxier {
    cfg: ProxyConfig,
    nft: Nft,
    /// None until the first successful (full) sync.
    applied: Option<Ruleset>,
    /// Chains a partial sync flushed because nothing uses them any more, and when: deleted
    /// by the first sync at least [`STALE_CHAIN_DELAY`] later (upstream's `staleChains`).
    stale: BTreeMap<String, Instant>,
}

/// How long a flushed stale chain is kept before it is deleted (upstream: one second).
pub const STALE_CHAIN_DELAY: Duration = Duration::from_secs(1);

impl Proxier {
    pub fn new(cfg: ProxyConfig) -> Self {
        let nft = Nft::new(cfg.netns.clone());
        Self {
            cfg,
            nft,
            applied: None,
            stale: BTreeMap::new(),
        }
    }

    /// Generates and applies the ruleset for these objects. The first sync (and any after a
    /// failure) replaces the table whole; later ones write only what changed (and keep
    /// session-affinity state).
    pub async fn sync(
        &mut self,
        services: &[impl Borrow<Service>],
        slices: &[impl Borrow<EndpointSlice>],
    ) -> Result<()> {
        let local = &self.cfg.local_service_ips;
        let services: Vec<&Service> = services
            .iter()
            .map(Borrow::borrow)
            .filter(|s| {
                !s.spec
                    .as_ref()
                    .and_then(|sp| sp.cluster_ip.as_deref())
                    .and_then(|ip| ip.parse().ok())
                    .is_some_and(|ip| local.contains(&ip))
            })
            .collect();
        let ports = service_ports(&services, slices, &self.cfg.node_name);
        let rs = rules::generate_reusing(
            &ports,
            &RulesConfig {
                cluster_cidr: self.cfg.cluster_cidr,
            },
            self.applied.as_ref(),
        );
        let now = Instant::now();
        let expired: Vec<String> = self
            .stale
            .iter()
            .filter(|(c, at)| {
                now.duration_since(**at) >= STALE_CHAIN_DELAY && !rs.chains.contains(*c)
            })
            .map(|(c, _)| c.clone())
            .collect();
        if self.applied.as_ref() == Some(&rs) && expired.is_empty() {
            return Ok(());
        }
        let (text, newly_stale, full) = match &self.applied {
            Some(prev) if prev.base == rs.base => {
                let mut text = rs.partial(prev);
                text.push_str(&Ruleset::delete_chains(&expired));
                let stale: Vec<String> = prev.chains.difference(&rs.chains).cloned().collect();
                (text, stale, false)
            }
            _ => (rs.full(), Vec::new(), true),
        };
        if !text.is_empty() {
            if let Err(e) = self.nft.apply(&text).await {
                self.applied = None;
                self.stale.clear();
                return Err(e);
            }
        }
        if full {
            // The table was replaced whole: nothing stale is left in it.
            self.stale.clear();
        } else {
            for c in &expired {
                self.stale.remove(c);
            }
            // A chain in use again is not stale any more (it was declared and rewritten).
            self.stale.retain(|c, _| !rs.chains.contains(c));
            for c in newly_stale {
                self.stale.insert(c, now);
            }
        }
        self.applied = Some(rs);
        Ok(())
    }
}

/// Runs the proxy for `cfg.node_name` until the task is dropped: watches Services and
/// EndpointSlices and re-syncs after changes, at most once per `min_sync_interval`.
pub async fn run_proxy(client: Client, cfg: ProxyConfig) -> Result<()> {
    let notify = Arc::new(Notify::new());
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (eps_store, eps_writer) = reflector::store::<EndpointSlice>();
    let n1 = notify.clone();
    let svc_task = tokio::spawn(
        reflector(
            svc_writer,
            watcher(
                Api::<Service>::all(client.clone()),
                watcher::Config::default(),
            )
            .default_backoff(),
        )
        .for_each(move |_| {
            n1.notify_one();
            futures::future::ready(())
        }),
    );
    let n2 = notify.clone();
    let eps_task = tokio::spawn(
        reflector(
            eps_writer,
            watcher(
                Api::<EndpointSlice>::all(client),
                watcher::Config::default(),
            )
            .default_backoff(),
        )
        .for_each(move |_| {
            n2.notify_one();
            futures::future::ready(())
        }),
    );
    let _guard = AbortOnDrop(vec![svc_task, eps_task]);
    let _ = svc_store.wait_until_ready().await;
    let _ = eps_store.wait_until_ready().await;
    let interval = cfg.min_sync_interval;
    let mut proxier = Proxier::new(cfg);
    let mut last = Instant::now() - interval;
    loop {
        let wait = interval.saturating_sub(last.elapsed());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        last = Instant::now();
        let started = Instant::now();
        match proxier.sync(&svc_store.state(), &eps_store.state()).await {
            Ok(()) => tracing::debug!(elapsed = ?started.elapsed(), "proxy: rules synced"),
            Err(e) => {
                tracing::warn!(error = %e, "proxy: sync failed, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        notify.notified().await;
    }
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
