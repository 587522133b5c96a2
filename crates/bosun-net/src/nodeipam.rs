//! Node IPAM: the controller giving each Node a `spec.podCIDR(s)` out of the cluster CIDR
//! (upstream's range allocator: 10.244.0.0/16, a /24 per node by default).
//!
//! Which subnets are taken is derived from the Nodes themselves after the initial list, so a
//! restarted controller never hands out a subnet twice and needs no state of its own.
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use futures::StreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use kube::Client;

use crate::error::{Error, Result};

/// Hands out fixed-size subnets of a cluster CIDR.
#[derive(Debug, Clone)]
pub struct CidrAllocator {
    cluster: Ipv4Net,
    mask: u8,
    used: BTreeSet<u32>,
    /// Where the next search starts, so a released subnet is not reused at once.
    next: u32,
}

impl CidrAllocator {
    /// An allocator of `/mask` subnets of `cluster`.
    pub fn new(cluster: Ipv4Net, mask: u8) -> Result<Self> {
        if mask < cluster.prefix_len() || mask > 30 {
            return Err(Error::InvalidCidr(format!(
                "{cluster} with node mask /{mask}"
            )));
        }
        Ok(Self {
            cluster: cluster.trunc(),
            mask,
            used: BTreeSet::new(),
            next: 0,
        })
    }

    fn count(&self) -> u32 {
        1u32 << (self.mask - self.cluster.prefix_len())
    }

    fn index_of(&self, net: &Ipv4Net) -> Option<u32> {
        if net.prefix_len() != self.mask || !self.cluster.contains(net) {
            return None;
        }
        let off = u32::from(net.network()) - u32::from(self.cluster.network());
        Some(off >> (32 - self.mask))
    }

    fn subnet(&self, index: u32) -> Ipv4Net {
        let base = u32::from(self.cluster.network()) + (index << (32 - self.mask));
        // The prefix length is checked in `new`, so this cannot fail.
        Ipv4Net::new(Ipv4Addr::from(base), self.mask).unwrap_or(self.cluster)
    }

    /// Marks `net` taken; false if it is not one of this allocator's subnets.
    pub fn occupy(&mut self, net: &Ipv4Net) -> bool {
        match self.index_of(net) {
            Some(i) => {
                self.used.insert(i);
                true
            }
            None => false,
        }
    }

    /// Returns `net` to the pool.
    pub fn release(&mut self, net: &Ipv4Net) {
        if let Some(i) = self.index_of(net) {
            self.used.remove(&i);
        }
    }

    /// The next free subnet.
    pub fn allocate(&mut self) -> Result<Ipv4Net> {
        let n = self.count();
        for k in 0..n {
            let i = (self.next + k) % n;
            if !self.used.contains(&i) {
                self.used.insert(i);
                self.next = (i + 1) % n;
                return Ok(self.subnet(i));
            }
        }
        Err(Error::Exhausted {
            cidr: self.cluster.to_string(),
            what: "node subnet",
        })
    }
}

/// The pod CIDR a Node already has (`spec.podCIDRs[0]`, else `spec.podCIDR`).
pub fn node_pod_cidr(node: &Node) -> Option<Ipv4Net> {
    let spec = node.spec.as_ref()?;
    spec.pod_cidrs
        .as_ref()
        .and_then(|v| v.iter().find_map(|c| c.parse::<Ipv4Net>().ok()))
        .or_else(|| spec.pod_cidr.as_ref().and_then(|c| c.parse().ok()))
}

/// The controller state between watch events.
struct NodeIpam {
    alloc: CidrAllocator,
    /// Node name → its subnet, as last seen.
    nodes: BTreeMap<String, Ipv4Net>,
    /// Nodes seen without a subnet before the initial list completed.
    pending: BTreeSet<String>,
    synced: bool,
}

/// Runs the node IPAM controller until the watch stream ends (it does not, normally).
///
/// `cluster_cidr` is e.g. `10.244.0.0/16` and `mask` the per-node prefix length (24).
pub async fn run_node_ipam(client: Client, cluster_cidr: Ipv4Net, mask: u8) -> Result<()> {
    let api: Api<Node> = Api::all(client);
    let mut state = NodeIpam {
        alloc: CidrAllocator::new(cluster_cidr, mask)?,
        nodes: BTreeMap::new(),
        pending: BTreeSet::new(),
        synced: false,
    };
    let mut init: Vec<Node> = Vec::new();
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "node ipam: watch error");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
        };
        match ev {
            watcher::Event::Init => init.clear(),
            watcher::Event::InitApply(n) => init.push(n),
            watcher::Event::InitDone => {
                // Rebuild from the full list: what is taken is exactly what Nodes carry.
                state.alloc = CidrAllocator::new(cluster_cidr, mask)?;
                state.nodes.clear();
                state.pending.clear();
                let nodes = std::mem::take(&mut init);
                for n in &nodes {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    match node_pod_cidr(n) {
                        Some(c) => {
                            state.alloc.occupy(&c);
                            state.nodes.insert(name, c);
                        }
                        None => {
                            state.pending.insert(name);
                        }
                    }
                }
                state.synced = true;
                for name in std::mem::take(&mut state.pending) {
                    assign(&api, &mut state, &name).await;
                }
            }
            watcher::Event::Apply(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                match node_pod_cidr(&n) {
                    Some(c) => {
                        state.alloc.occupy(&c);
                        state.nodes.insert(name, c);
                    }
                    None if state.nodes.contains_key(&name) => {
                        // Our own patch not yet visible in this event; nothing to do.
                    }
                    None => assign(&api, &mut state, &name).await,
                }
            }
            watcher::Event::Delete(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                if let Some(c) = state.nodes.remove(&name) {
                    state.alloc.release(&c);
                }
            }
        }
    }
    Ok(())
}

async fn assign(api: &Api<Node>, state: &mut NodeIpam, name: &str) {
    if !state.synced {
        state.pending.insert(name.to_string());
        return;
    }
    let cidr = match state.alloc.allocate() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(node = name, error = %e, "node ipam: cannot allocate a pod CIDR");
            return;
        }
    };
    let patch = serde_json::json!({
        "spec": { "podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()] }
    });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(node = name, %cidr, "node ipam: assigned pod CIDR");
            state.nodes.insert(name.to_string(), cidr);
        }
        Err(e) => {
            tracing::warn!(node = name, error = %e, "node ipam: patch failed");
            state.alloc.release(&cidr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_distinct_subnets_skipping_taken_ones() {
        let mut a = CidrAllocator::new(net("10.244.0.0/16"), 24).unwrap();
        assert!(a.occupy(&net("10.244.0.0/24")));
        assert!(a.occupy(&net("10.244.2.0/24")));
        assert!(!a.occupy(&net("10.245.0.0/24")));
        assert!(!a.occupy(&net("10.244.0.0/25")));
        assert_eq!(a.allocate().unwrap(), net("10.244.1.0/24"));
        assert_eq!(a.allocate().unwrap(), net("10.244.3.0/24"));
    }

    #[test]
    fn exhausts_and_reuses_after_release() {
        let mut a = CidrAllocator::new(net("10.0.0.0/23"), 24).unwrap();
        let x = a.allocate().unwrap();
        let y = a.allocate().unwrap();
        assert_ne!(x, y);
        assert!(a.allocate().is_err());
        a.release(&x);
        assert_eq!(a.allocate().unwrap(), x);
    }

    #[test]
    fn rejects_bad_masks() {
        assert!(CidrAllocator::new(net("10.244.0.0/16"), 8).is_err());
        assert!(CidrAllocator::new(net("10.244.0.0/16"), 31).is_err());
    }

    #[test]
    fn reads_pod_cidr_from_node() {
        let n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a"},
            "spec": {"podCIDR": "10.244.7.0/24"}
        }))
        .unwrap();
        assert_eq!(node_pod_cidr(&n), Some(net("10.244.7.0/24")));
    }
}
