//! The nftables table enforcing network policy on one node, generated as text from
//! [`PodRules`] and applied whole in one transaction (the table deleted and recreated).
//!
//! - `forward` (bridged pod-to-pod traffic arrives here through br_netfilter; routed
//!   traffic, Service traffic already DNATed to the endpoint by the proxy's prerouting
//!   chain): established and related packets pass; then the source pod's egress chain and
//!   the destination pod's ingress chain, each looked up by address in a verdict map.
//! - `input` (a pod reaching the node itself): the source pod's egress chain.
//! - Traffic the node sends to its pods (kubelet probes) never passes `forward`: allowed,
//!   as upstream's implementations commonly do. Replies to it are established.
//! - A pod chain `return`s for allowed traffic (so the next check runs) and ends in `drop`.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::Ipv4Addr;

use super::model::{Allow, Peer, PodRules, PortRange, Ports};
use crate::proxy::Proto;

/// The table (`ip` family).
pub const TABLE: &str = "bosun-netpol";

/// Settings of the rendering.
#[derive(Debug, Clone, Default)]
pub struct RenderConfig {
    /// Addresses on the node every pod may reach on port 53 (TCP and UDP) whatever its
    /// egress policy: the node-local cluster DNS, which no pod or namespace selector can
    /// name (its "pods" are the nodes).
    pub dns_ips: Vec<Ipv4Addr>,
}

fn chain(dir: &str, ip: Ipv4Addr) -> String {
    format!("{dir}-{ip}")
}

/// `{ a, b }` or a lone `a`.
fn set<T: std::fmt::Display>(items: &[T]) -> String {
    if items.len() == 1 {
        return items[0].to_string();
    }
    let v: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("{{ {} }}", v.join(", "))
}

fn peer_match(peer: &Peer, field: &str) -> String {
    match peer {
        Peer::Any => String::new(),
        Peer::Cidr { net, except } => {
            let mut s = format!("ip {field} {net} ");
            if !except.is_empty() {
                let _ = write!(s, "ip {field} != {} ", set(except));
            }
            s
        }
        Peer::Ips(ips) => {
            let v: Vec<Ipv4Addr> = ips.iter().copied().collect();
            format!("ip {field} {} ", set(&v))
        }
    }
}

fn range(r: &PortRange) -> String {
    if r.first == r.last {
        r.first.to_string()
    } else {
        format!("{}-{}", r.first, r.last)
    }
}

/// The port matches of an allowance, one per protocol (`""` for any port of anything).
fn port_matches(ports: &Ports) -> Vec<String> {
    let Ports::Only(set_) = ports else {
        return vec![String::new()];
    };
    let mut by_proto: BTreeMap<Proto, Vec<&PortRange>> = BTreeMap::new();
    for r in set_ {
        by_proto.entry(r.proto).or_default().push(r);
    }
    by_proto
        .into_iter()
        .map(|(proto, ranges)| {
            if ranges.iter().any(|r| r.is_all()) {
                format!("meta l4proto {} ", proto.nft())
            } else {
                let v: Vec<String> = ranges.iter().map(|r| range(r)).collect();
                format!("meta l4proto {} th dport {} ", proto.nft(), set(&v))
            }
        })
        .collect()
}

fn allow_rules(allows: &[Allow], field: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for a in allows {
        let peer = peer_match(&a.peer, field);
        for ports in port_matches(&a.ports) {
            let rule = format!("{peer}{ports}return");
            if seen.insert(rule.clone()) {
                out.push(rule);
            }
        }
    }
    out
}

/// The whole table for `pods`, replacing what was there in one transaction.
pub fn ruleset(pods: &[PodRules], cfg: &RenderConfig) -> String {
    let mut decl = format!(
        "add table ip {TABLE}\ndelete table ip {TABLE}\n\
         add table ip {TABLE} {{ comment \"bosun network policy\"; }}\n\
         add map ip {TABLE} ingress-pods {{ type ipv4_addr : verdict; }}\n\
         add map ip {TABLE} egress-pods {{ type ipv4_addr : verdict; }}\n\
         add chain ip {TABLE} forward {{ type filter hook forward priority 0; policy accept; }}\n\
         add chain ip {TABLE} input {{ type filter hook input priority 0; policy accept; }}\n"
    );
    let mut rules = String::new();
    let mut elems = String::new();
    let mut rule = |chain: &str, r: &str| {
        let _ = writeln!(rules, "add rule ip {TABLE} {chain} {r}");
    };
    rule("forward", "ct state established,related accept");
    rule("forward", "ip saddr vmap @egress-pods");
    rule("forward", "ip daddr vmap @ingress-pods");
    rule("input", "ct state established,related accept");
    if !cfg.dns_ips.is_empty() {
        rule(
            "input",
            &format!(
                "ip daddr {} meta l4proto {{ tcp, udp }} th dport 53 accept",
                set(&cfg.dns_ips)
            ),
        );
    }
    rule("input", "ip saddr vmap @egress-pods");
    for p in pods {
        for (dir, allows, field, map) in [
            ("ingress", &p.ingress, "saddr", "ingress-pods"),
            ("egress", &p.egress, "daddr", "egress-pods"),
        ] {
            let Some(allows) = allows else { continue };
            let c = chain(dir, p.ip);
            let _ = writeln!(
                decl,
                "add chain ip {TABLE} {c} {{ comment \"{}/{}\"; }}",
                p.namespace, p.name
            );
            for r in allow_rules(allows, field) {
                rule(&c, &r);
            }
            rule(&c, "drop");
            let _ = writeln!(
                elems,
                "add element ip {TABLE} {map} {{ {} : jump {c} }}",
                p.ip
            );
        }
    }
    decl.push_str(&rules);
    decl.push_str(&elems);
    decl
}
