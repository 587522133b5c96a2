//! What the proxy programs, distilled from Services and EndpointSlices: one entry per
//! service port with its ready endpoints (as upstream's `ServicePortMap`/`EndpointsMap`).
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Upstream's default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;

/// A transport protocol the proxy handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }

    /// nftables' name.
    pub fn nft(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

/// One ready endpoint of a service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// On this node (for the `Local` traffic policies).
    pub local: bool,
}

/// One port of one Service, with everything needed to program it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub service: String,
    /// The port's name, or `p<port>` when it has none.
    pub port_name: String,
    pub protocol: Proto,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    /// `sessionAffinity: ClientIP` with this timeout (seconds).
    pub affinity_timeout: Option<u32>,
    pub external_local: bool,
    pub internal_local: bool,
    /// Ready, not terminating, sorted.
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// `ns/name/proto/port`, the readable part of chain names.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.namespace,
            self.service,
            self.protocol.nft(),
            self.port_name
        )
    }
}

/// The service ports to program on `node_name`, sorted by id. Headless and ExternalName
/// Services are skipped; endpoints count if ready (unset means ready) and not terminating.
pub fn service_ports(
    services: &[impl Borrow<Service>],
    slices: &[impl Borrow<EndpointSlice>],
    node_name: &str,
) -> Vec<ServicePort> {
    // (namespace, service) → (port name, protocol) → endpoints
    type Eps = BTreeMap<(String, Proto), BTreeSet<Endpoint>>;
    let mut by_svc: BTreeMap<(String, String), Eps> = BTreeMap::new();
    for s in slices {
        let s: &EndpointSlice = s.borrow();
        if s.address_type != "IPv4" {
            continue;
        }
        let ns = s.metadata.namespace.clone().unwrap_or_default();
        let Some(svc) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let entry = by_svc.entry((ns, svc.clone())).or_default();
        for p in s.ports.iter().flatten() {
            let (Some(port), Some(proto)) = (p.port, Proto::parse(p.protocol.as_deref())) else {
                continue;
            };
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            let name = p.name.clone().unwrap_or_default();
            let set = entry.entry((name, proto)).or_default();
            for e in &s.endpoints {
                let c = e.conditions.as_ref();
                let ready = c.and_then(|c| c.ready).unwrap_or(true);
                let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
                if !ready || terminating {
                    continue;
                }
                let local = e.node_name.as_deref() == Some(node_name);
                for a in &e.addresses {
                    if let Ok(ip) = a.parse::<Ipv4Addr>() {
                        set.insert(Endpoint { ip, port, local });
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for svc in services {
        let svc: &Service = svc.borrow();
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|c| c.parse::<Ipv4Addr>().ok())
        else {
            continue; // headless ("None") or not yet allocated
        };
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
        });
        let node_ports = matches!(
            spec.type_.as_deref(),
            Some("NodePort") | Some("LoadBalancer")
        );
        let eps = by_svc.get(&(ns.clone(), name.clone()));
        for p in spec.ports.iter().flatten() {
            let Some(proto) = Proto::parse(p.protocol.as_deref()) else {
                continue;
            };
            let Ok(port) = u16::try_from(p.port) else {
                continue;
            };
            let pname = p.name.clone().unwrap_or_default();
            let endpoints = eps
                .and_then(|m| m.get(&(pname.clone(), proto)))
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            out.push(ServicePort {
                namespace: ns.clone(),
                service: name.clone(),
                port_name: if pname.is_empty() {
                    format!("p{port}")
                } else {
                    pname
                },
                protocol: proto,
                cluster_ip,
                port,
                node_port: p
                    .node_port
                    .filter(|_| node_ports)
                    .and_then(|n| u16::try_from(n).ok()),
                affinity_timeout,
                external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
                internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
                endpoints,
            });
        }
    }
    // Cached: `id` formats a string, and a sort asks for it O(n log n) times.
    out.sort_by_cached_key(|a| a.id());
    out
}
