//! What NetworkPolicies mean for this node's pods, as pure data: for every local pod that
//! some policy isolates, the traffic each direction allows (upstream's semantics, see
//! https://kubernetes.io/docs/concepts/services-networking/network-policies/).
//!
//! - A pod is isolated for ingress (egress) when a policy in its namespace selects it and
//!   lists that policy type; an isolated pod accepts only what some rule of some selecting
//!   policy allows (policies are additive). Pods no policy selects are not listed.
//! - A rule allows traffic from (to) any of its peers on any of its ports; no peers means
//!   every peer, no ports every port. A peer is pods by podSelector (in the policy's
//!   namespace), namespaceSelector (every pod in those namespaces), both (those pods in those
//!   namespaces), or an ipBlock with its exceptions.
//! - Ports: a protocol (TCP when unset), a number or a range up to `endPort`, or a container
//!   port name — resolved on the selected pod for ingress and on each destination pod for
//!   egress (a name no pod has allows nothing). No number means every port of the protocol.
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use bosun_api::selector::LabelSelector;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::proxy::Proto;

/// A pod as policies see it: only pods on the pod network with an IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub ip: Ipv4Addr,
    pub node: String,
    pub labels: BTreeMap<String, String>,
    /// Named container ports: (name, protocol, number).
    pub named_ports: Vec<(String, Proto, u16)>,
}

impl PodInfo {
    /// None for hostNetwork pods (their address is the node's: upstream leaves them out of
    /// policy), pods without an IPv4 address yet, and pods that have finished.
    pub fn from_pod(pod: &Pod) -> Option<PodInfo> {
        let spec = pod.spec.as_ref()?;
        if spec.host_network == Some(true) {
            return None;
        }
        let status = pod.status.as_ref()?;
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            return None;
        }
        let ip: Ipv4Addr = status.pod_ip.as_deref()?.parse().ok()?;
        let mut named_ports = Vec::new();
        for c in spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
        {
            for p in c.ports.iter().flatten() {
                let (Some(name), Ok(num), Some(proto)) = (
                    p.name.as_ref(),
                    u16::try_from(p.container_port),
                    Proto::parse(p.protocol.as_deref()),
                ) else {
                    continue;
                };
                named_ports.push((name.clone(), proto, num));
            }
        }
        Some(PodInfo {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            ip,
            node: spec.node_name.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            named_ports,
        })
    }

    fn named_port(&self, name: &str, proto: Proto) -> Option<u16> {
        self.named_ports
            .iter()
            .find(|(n, p, _)| n == name && *p == proto)
            .map(|(_, _, num)| *num)
    }
}

/// Who a rule lets in (ingress: the source) or out to (egress: the destination).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    Any,
    /// An ipBlock: the CIDR minus its exceptions.
    Cidr {
        net: Ipv4Net,
        except: Vec<Ipv4Net>,
    },
    /// Pods chosen by selectors, by address (never empty).
    Ips(BTreeSet<Ipv4Addr>),
}

impl Peer {
    fn contains(&self, ip: Ipv4Addr) -> bool {
        match self {
            Peer::Any => true,
            Peer::Cidr { net, except } => {
                net.contains(&ip) && !except.iter().any(|e| e.contains(&ip))
            }
            Peer::Ips(ips) => ips.contains(&ip),
        }
    }
}

/// A protocol and an inclusive port range; `0..=65535` is every port of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub proto: Proto,
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn all(proto: Proto) -> Self {
        Self {
            proto,
            first: 0,
            last: u16::MAX,
        }
    }
    pub fn one(proto: Proto, port: u16) -> Self {
        Self {
            proto,
            first: port,
            last: port,
        }
    }
    pub fn is_all(&self) -> bool {
        self.first == 0 && self.last == u16::MAX
    }
}

/// Which ports a rule opens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ports {
    Any,
    Only(BTreeSet<PortRange>),
}

/// One allowance: traffic with these peers on these ports passes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allow {
    pub peer: Peer,
    pub ports: Ports,
}

/// A local pod some policy isolates: what its ingress and egress allow (`None`: that
/// direction is not isolated; an empty list: everything is denied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRules {
    pub namespace: String,
    pub name: String,
    pub ip: Ipv4Addr,
    pub ingress: Option<Vec<Allow>>,
    pub egress: Option<Vec<Allow>>,
}

/// A selector as upstream converts it; an invalid one matches nothing (the API server
/// rejects those anyway).
fn selector(sel: Option<&ApiSelector>) -> LabelSelector {
    LabelSelector::from_api(sel).unwrap_or_else(|_| LabelSelector::nothing())
}

/// The policy types of a policy, defaulted as the API server does for objects written
/// before defaulting (Ingress, plus Egress when it has egress rules).
pub fn policy_types(np: &NetworkPolicy) -> (bool, bool) {
    let spec = np.spec.clone().unwrap_or_default();
    match spec.policy_types.as_deref() {
        Some(t) if !t.is_empty() => (
            t.iter().any(|t| t == "Ingress"),
            t.iter().any(|t| t == "Egress"),
        ),
        _ => (true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())),
    }
}

/// What the policies, pods and namespaces (name → labels) of the cluster allow for the pods
/// on `node`, sorted by pod address. Pods in no policy are left out.
pub fn compute(
    policies: &[&NetworkPolicy],
    pods: &[PodInfo],
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    node: &str,
) -> Vec<PodRules> {
    let mut out: BTreeMap<Ipv4Addr, PodRules> = BTreeMap::new();
    for np in policies {
        let ns = np.metadata.namespace.as_deref().unwrap_or("default");
        let spec = np.spec.clone().unwrap_or_default();
        // A missing podSelector is the empty one: every pod in the namespace.
        let target_sel = selector(Some(&spec.pod_selector.clone().unwrap_or_default()));
        let (ingress, egress) = policy_types(np);
        let targets = pods.iter().filter(|p| {
            p.node == node && p.namespace == ns && target_sel.matches_labels(Some(&p.labels))
        });
        for t in targets {
            let entry = out.entry(t.ip).or_insert_with(|| PodRules {
                namespace: t.namespace.clone(),
                name: t.name.clone(),
                ip: t.ip,
                ingress: None,
                egress: None,
            });
            if ingress {
                let allows = entry.ingress.get_or_insert_with(Vec::new);
                for rule in spec.ingress.iter().flatten() {
                    let peers = rule_peers(rule.from.as_deref(), ns, pods, namespaces);
                    let Some(ports) = ingress_ports(rule.ports.as_deref(), t) else {
                        continue;
                    };
                    allows.extend(peers.into_iter().map(|peer| Allow {
                        peer,
                        ports: ports.clone(),
                    }));
                }
            }
            if egress {
                let allows = entry.egress.get_or_insert_with(Vec::new);
                for rule in spec.egress.iter().flatten() {
                    let peers = rule_peers(rule.to.as_deref(), ns, pods, namespaces);
                    allows.extend(egress_allows(&peers, rule.ports.as_deref(), pods));
                }
            }
        }
    }
    out.into_values()
        .map(|mut r| {
            for a in [&mut r.ingress, &mut r.egress].into_iter().flatten() {
                a.sort();
                a.dedup();
            }
            r
        })
        .collect()
}

/// The peers of one rule; no peers listed means any peer. Peers that match no pod (or an
/// unusable ipBlock) are left out, so a rule whose peers all match nothing allows nothing.
fn rule_peers(
    peers: Option<&[NetworkPolicyPeer]>,
    ns: &str,
    pods: &[PodInfo],
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<Peer> {
    let peers = peers.unwrap_or_default();
    if peers.is_empty() {
        return vec![Peer::Any];
    }
    let mut out = Vec::new();
    for peer in peers {
        if let Some(ipb) = &peer.ip_block {
            // IPv6 blocks cannot match an IPv4 pod network.
            let Ok(net) = ipb.cidr.parse::<Ipv4Net>() else {
                continue;
            };
            let except = ipb
                .except
                .iter()
                .flatten()
                .filter_map(|e| e.parse::<Ipv4Net>().ok())
                .map(|e| e.trunc())
                .collect();
            out.push(Peer::Cidr {
                net: net.trunc(),
                except,
            });
            continue;
        }
        let pod_sel = peer.pod_selector.as_ref().map(|s| selector(Some(s)));
        let ns_sel = peer.namespace_selector.as_ref().map(|s| selector(Some(s)));
        if pod_sel.is_none() && ns_sel.is_none() {
            continue;
        }
        let in_namespace = |p: &PodInfo| match &ns_sel {
            // Without a namespaceSelector, only the policy's own namespace.
            None => p.namespace == ns,
            Some(sel) => sel.matches_labels(namespaces.get(&p.namespace)),
        };
        let ips: BTreeSet<Ipv4Addr> = pods
            .iter()
            .filter(|p| in_namespace(p))
            .filter(|p| {
                pod_sel
                    .as_ref()
                    .is_none_or(|s| s.matches_labels(Some(&p.labels)))
            })
            .map(|p| p.ip)
            .collect();
        if !ips.is_empty() {
            out.push(Peer::Ips(ips));
        }
    }
    out
}

/// The number(s) of a policy port: a range, or a container port name.
type PortNumbers = Result<(u16, u16), String>;

/// A policy port's protocol, and its numbers when it has some (`Err(name)` for a named one).
fn port_spec(p: &NetworkPolicyPort) -> Option<(Proto, Option<PortNumbers>)> {
    let proto = Proto::parse(p.protocol.as_deref())?;
    let range = match &p.port {
        None => None,
        Some(IntOrString::Int(n)) => {
            let first = u16::try_from(*n).ok()?;
            let last = match p.end_port {
                Some(e) => u16::try_from(e).ok()?,
                None => first,
            };
            Some(Ok((first, last.max(first))))
        }
        Some(IntOrString::String(name)) => Some(Err(name.clone())),
    };
    Some((proto, range))
}

/// The ports of an ingress rule for the selected pod `target`; `None` when the rule lists
/// ports and none of them applies (named ports the pod does not have).
fn ingress_ports(ports: Option<&[NetworkPolicyPort]>, target: &PodInfo) -> Option<Ports> {
    let ports = ports.unwrap_or_default();
    if ports.is_empty() {
        return Some(Ports::Any);
    }
    let mut set = BTreeSet::new();
    for p in ports {
        let Some((proto, range)) = port_spec(p) else {
            continue;
        };
        match range {
            None => set.insert(PortRange::all(proto)),
            Some(Ok((first, last))) => set.insert(PortRange { proto, first, last }),
            Some(Err(name)) => match target.named_port(&name, proto) {
                Some(n) => set.insert(PortRange::one(proto, n)),
                None => continue,
            },
        };
    }
    (!set.is_empty()).then_some(Ports::Only(set))
}

/// The allowances of an egress rule with `peers`: numeric ports apply to the peers as they
/// are; a named port opens, for each destination pod within the peers that has that port,
/// that pod's number.
fn egress_allows(
    peers: &[Peer],
    ports: Option<&[NetworkPolicyPort]>,
    pods: &[PodInfo],
) -> Vec<Allow> {
    let ports = ports.unwrap_or_default();
    if ports.is_empty() {
        return peers
            .iter()
            .map(|peer| Allow {
                peer: peer.clone(),
                ports: Ports::Any,
            })
            .collect();
    }
    let mut numeric = BTreeSet::new();
    let mut named: Vec<(Proto, String)> = Vec::new();
    for p in ports {
        let Some((proto, range)) = port_spec(p) else {
            continue;
        };
        match range {
            None => {
                numeric.insert(PortRange::all(proto));
            }
            Some(Ok((first, last))) => {
                numeric.insert(PortRange { proto, first, last });
            }
            Some(Err(name)) => named.push((proto, name)),
        }
    }
    let mut out = Vec::new();
    for peer in peers {
        if !numeric.is_empty() {
            out.push(Allow {
                peer: peer.clone(),
                ports: Ports::Only(numeric.clone()),
            });
        }
        for (proto, name) in &named {
            for dst in pods.iter().filter(|d| peer.contains(d.ip)) {
                if let Some(n) = dst.named_port(name, *proto) {
                    out.push(Allow {
                        peer: Peer::Ips(BTreeSet::from([dst.ip])),
                        ports: Ports::Only(BTreeSet::from([PortRange::one(*proto, n)])),
                    });
                }
            }
        }
    }
    out
}
