//! The cluster's DNS data, built from Services and EndpointSlices, and name resolution over
//! it following the Kubernetes DNS spec (what CoreDNS's `kubernetes` plugin answers).
use std::borrow::Borrow;
use std::collections::HashMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::proxy::model::SERVICE_NAME_LABEL;

/// A named port of a service or endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRec {
    pub name: String,
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    pub port: u16,
}

/// A ready endpoint of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpRec {
    pub ip: Ipv4Addr,
    /// `hostname` of the endpoint (StatefulSet pods in their governing headless service).
    pub hostname: Option<String>,
    pub ports: Vec<PortRec>,
}

impl EpRec {
    /// The endpoint's label under its service: the hostname, else the dashed address.
    pub fn label(&self) -> String {
        self.hostname
            .clone()
            .unwrap_or_else(|| self.ip.to_string().replace('.', "-"))
    }
}

/// One Service as DNS sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SvcRec {
    /// None for headless Services.
    pub cluster_ip: Option<Ipv4Addr>,
    /// Set for ExternalName Services (answered as CNAME).
    pub external_name: Option<String>,
    pub ports: Vec<PortRec>,
    pub endpoints: Vec<EpRec>,
}

/// All records of the cluster domain.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    /// namespace → service → records (nested so that a query looks both up by `&str`,
    /// with no key to allocate, and a namespace on its own in O(1)).
    pub services: HashMap<String, HashMap<String, SvcRec>>,
}

/// A record to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    A(String, Ipv4Addr),
    Srv {
        name: String,
        port: u16,
        target: String,
    },
    Cname(String, String),
}

/// What a name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The name exists; answers (empty: exists but has no record of that type).
    Answer {
        answers: Vec<Rec>,
        additional: Vec<Rec>,
    },
    /// Inside the cluster domain but no such name.
    NxDomain,
    /// Outside the cluster domain: ask upstream.
    Forward,
}

/// Query types the zone distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    A,
    Srv,
    Any,
    Other,
}

fn proto_name(p: Option<&str>) -> String {
    p.unwrap_or("TCP").to_ascii_lowercase()
}

impl Zone {
    /// Builds the zone from the current objects.
    pub fn build(services: &[impl Borrow<Service>], slices: &[impl Borrow<EndpointSlice>]) -> Self {
        let mut z = Zone::default();
        for s in services {
            let s: &Service = s.borrow();
            let Some(spec) = &s.spec else { continue };
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            let name = s.metadata.name.clone().unwrap_or_default();
            let rec = SvcRec {
                cluster_ip: spec.cluster_ip.as_deref().and_then(|c| c.parse().ok()),
                external_name: (spec.type_.as_deref() == Some("ExternalName"))
                    .then(|| spec.external_name.clone())
                    .flatten(),
                ports: spec
                    .ports
                    .iter()
                    .flatten()
                    .filter_map(|p| {
                        Some(PortRec {
                            name: p.name.clone().filter(|n| !n.is_empty())?,
                            proto: proto_name(p.protocol.as_deref()),
                            port: u16::try_from(p.port).ok()?,
                        })
                    })
                    .collect(),
                endpoints: Vec::new(),
            };
            z.services.entry(ns).or_default().insert(name, rec);
        }
        for sl in slices {
            let sl: &EndpointSlice = sl.borrow();
            if sl.address_type != "IPv4" {
                continue;
            }
            let ns = sl.metadata.namespace.clone().unwrap_or_default();
            let Some(svc) = sl
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            let Some(rec) = z
                .services
                .get_mut(&ns)
                .and_then(|m| m.get_mut(svc.as_str()))
            else {
                continue;
            };
            let ports: Vec<PortRec> = sl
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    Some(PortRec {
                        name: p.name.clone().unwrap_or_default(),
                        proto: proto_name(p.protocol.as_deref()),
                        port: u16::try_from(p.port?).ok()?,
                    })
                })
                .collect();
            for e in &sl.endpoints {
                if !e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                    continue;
                }
                for a in &e.addresses {
                    if let Ok(ip) = a.parse() {
                        rec.endpoints.push(EpRec {
                            ip,
                            hostname: e.hostname.clone(),
                            ports: ports.clone(),
                        });
                    }
                }
            }
        }
        for rec in z.services.values_mut().flat_map(HashMap::values_mut) {
            rec.endpoints.sort_by_key(|e| e.ip);
            rec.endpoints.dedup_by_key(|e| e.ip);
        }
        z
    }

    /// The records of Service `ns/svc`.
    pub fn service(&self, ns: &str, svc: &str) -> Option<&SvcRec> {
        self.services.get(ns)?.get(svc)
    }

    /// Resolves `name` (lowercase, no trailing dot) in `domain` (e.g. `cluster.local`).
    pub fn lookup(&self, name: &str, qtype: QType, domain: &str) -> Lookup {
        let rest = if name == domain {
            ""
        } else if let Some(r) = name.strip_suffix(domain).and_then(|r| r.strip_suffix('.')) {
            r
        } else {
            return Lookup::Forward;
        };
        // At most five labels under the domain mean anything; no allocation per query.
        let mut buf = [""; 6];
        let mut n = 0;
        if !rest.is_empty() {
            for l in rest.split('.') {
                if n == buf.len() {
                    return Lookup::NxDomain;
                }
                buf[n] = l;
                n += 1;
            }
        }
        let labels = &buf[..n];
        let empty = || Lookup::Answer {
            answers: Vec::new(),
            additional: Vec::new(),
        };
        match labels {
            [] | ["svc"] | ["pod"] => empty(),
            [ns, "svc"] | [ns, "pod"] => {
                if self.services.contains_key(*ns) {
                    empty()
                } else {
                    Lookup::NxDomain
                }
            }
            [ip, _ns, "pod"] => match ip.replace('-', ".").parse::<Ipv4Addr>() {
                Ok(a) if matches!(qtype, QType::A | QType::Any) => Lookup::Answer {
                    answers: vec![Rec::A(name.to_string(), a)],
                    additional: Vec::new(),
                },
                Ok(_) => empty(),
                Err(_) => Lookup::NxDomain,
            },
            [svc, ns, "svc"] => {
                let Some(rec) = self.service(ns, svc) else {
                    return Lookup::NxDomain;
                };
                if let Some(ext) = &rec.external_name {
                    return Lookup::Answer {
                        answers: vec![Rec::Cname(name.to_string(), ext.clone())],
                        additional: Vec::new(),
                    };
                }
                let mut answers = Vec::new();
                let mut additional = Vec::new();
                if matches!(qtype, QType::A | QType::Any) {
                    match rec.cluster_ip {
                        Some(ip) => answers.push(Rec::A(name.to_string(), ip)),
                        None => answers
                            .extend(rec.endpoints.iter().map(|e| Rec::A(name.to_string(), e.ip))),
                    }
                }
                if matches!(qtype, QType::Srv | QType::Any) {
                    self.srv(
                        rec,
                        name,
                        svc,
                        ns,
                        domain,
                        None,
                        None,
                        &mut answers,
                        &mut additional,
                    );
                }
                Lookup::Answer {
                    answers,
                    additional,
                }
            }
            [host, svc, ns, "svc"] if !host.starts_with('_') => {
                let Some(rec) = self.service(ns, svc) else {
                    return Lookup::NxDomain;
                };
                let hits: Vec<&EpRec> = rec
                    .endpoints
                    .iter()
                    .filter(|e| e.label() == *host)
                    .collect();
                if hits.is_empty() {
                    return Lookup::NxDomain;
                }
                let answers = if matches!(qtype, QType::A | QType::Any) {
                    hits.iter()
                        .map(|e| Rec::A(name.to_string(), e.ip))
                        .collect()
                } else {
                    Vec::new()
                };
                Lookup::Answer {
                    answers,
                    additional: Vec::new(),
                }
            }
            [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                let Some(rec) = self.service(ns, svc) else {
                    return Lookup::NxDomain;
                };
                let (port, proto) = (&port[1..], &proto[1..]);
                if !rec.ports.iter().any(|p| p.name == port && p.proto == proto) {
                    return Lookup::NxDomain;
                }
                let mut answers = Vec::new();
                let mut additional = Vec::new();
                if matches!(qtype, QType::Srv | QType::Any) {
                    self.srv(
                        rec,
                        name,
                        svc,
                        ns,
                        domain,
                        Some(port),
                        Some(proto),
                        &mut answers,
                        &mut additional,
                    );
                }
                Lookup::Answer {
                    answers,
                    additional,
                }
            }
            _ => Lookup::NxDomain,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn srv(
        &self,
        rec: &SvcRec,
        name: &str,
        svc: &str,
        ns: &str,
        domain: &str,
        port: Option<&str>,
        proto: Option<&str>,
        answers: &mut Vec<Rec>,
        additional: &mut Vec<Rec>,
    ) {
        let base = format!("{svc}.{ns}.svc.{domain}");
        for p in &rec.ports {
            if port.is_some_and(|x| x != p.name) || proto.is_some_and(|x| x != p.proto) {
                continue;
            }
            match rec.cluster_ip {
                Some(ip) => {
                    answers.push(Rec::Srv {
                        name: name.to_string(),
                        port: p.port,
                        target: base.clone(),
                    });
                    additional.push(Rec::A(base.clone(), ip));
                }
                None => {
                    for e in &rec.endpoints {
                        let Some(ep) = e
                            .ports
                            .iter()
                            .find(|q| q.name == p.name && q.proto == p.proto)
                        else {
                            continue;
                        };
                        let target = format!("{}.{base}", e.label());
                        answers.push(Rec::Srv {
                            name: name.to_string(),
                            port: ep.port,
                            target: target.clone(),
                        });
                        additional.push(Rec::A(target, e.ip));
                    }
                }
            }
        }
    }
}
