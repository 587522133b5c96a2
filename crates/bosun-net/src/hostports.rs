//! `hostPort` mappings (upstream's CNI `portmap` plugin): a container port published on the
//! node's addresses. One nftables table of its own, rewritten whole on every change: DNAT
//! from `hostIP:hostPort` (any local address when `hostIP` is empty) to `podIP:containerPort`
//! for traffic arriving at the node and for the node's own, and masquerade for a pod reaching
//! its own hostPort (hairpin), whose reply would otherwise skip the NAT.
use std::fmt::Write;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::PodSpec;

use crate::proxy::Proto;

/// The table's name (`ip` family).
pub const TABLE: &str = "bosun-hostports";

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    /// Only this node address, or every local address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub proto: Proto,
    pub pod_ip: Ipv4Addr,
    pub container_port: u16,
}

/// The hostPorts of a pod whose address is `pod_ip` (ports without `hostPort` publish
/// nothing; an unparsable or IPv6 `hostIP` means every address, as for `0.0.0.0`).
pub fn pod_host_ports(spec: &PodSpec, pod_ip: Ipv4Addr) -> Vec<HostPort> {
    let mut out = Vec::new();
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in containers {
        for p in c.ports.iter().flatten() {
            let Some(hp) = p.host_port.and_then(|h| u16::try_from(h).ok()) else {
                continue;
            };
            let Ok(cp) = u16::try_from(p.container_port) else {
                continue;
            };
            if hp == 0 {
                continue;
            }
            let proto = match p.protocol.as_deref() {
                Some("UDP") => Proto::Udp,
                Some("SCTP") => Proto::Sctp,
                _ => Proto::Tcp,
            };
            let host_ip = p
                .host_ip
                .as_deref()
                .and_then(|h| h.parse::<Ipv4Addr>().ok())
                .filter(|h| !h.is_unspecified());
            out.push(HostPort {
                host_ip,
                host_port: hp,
                proto,
                pod_ip,
                container_port: cp,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The whole table for `ports`, replacing what was there in one transaction.
pub fn ruleset(ports: &[HostPort]) -> String {
    let mut s = format!(
        "add table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n\
         \tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat - 1; policy accept;\n\
         \t\tfib daddr type local ip daddr != 127.0.0.0/8 jump hostports\n\t}}\n\
         \tchain output {{\n\t\ttype nat hook output priority -101; policy accept;\n\
         \t\tfib daddr type local ip daddr != 127.0.0.0/8 jump hostports\n\t}}\n\
         \tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat - 1; policy accept;\n"
    );
    for p in ports {
        let _ = writeln!(
            s,
            "\t\tct status dnat ip saddr {ip} ip daddr {ip} {proto} dport {cp} masquerade",
            ip = p.pod_ip,
            proto = p.proto.nft(),
            cp = p.container_port
        );
    }
    s.push_str("\t}\n\tchain hostports {\n");
    for p in ports {
        let dst = p
            .host_ip
            .map(|h| format!("ip daddr {h} "))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "\t\t{dst}{proto} dport {hp} dnat to {ip}:{cp}",
            proto = p.proto.nft(),
            hp = p.host_port,
            ip = p.pod_ip,
            cp = p.container_port
        );
    }
    s.push_str("\t}\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_from_spec_and_rules() {
        let spec: PodSpec = serde_json::from_value(json!({"containers": [
            {"name": "a", "ports": [
                {"containerPort": 80, "hostPort": 8080},
                {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "192.0.2.1"},
                {"containerPort": 9000}
            ]}
        ]}))
        .unwrap();
        let ip = Ipv4Addr::new(10, 244, 1, 5);
        let ports = pod_host_ports(&spec, ip);
        assert_eq!(ports.len(), 2);
        let r = ruleset(&ports);
        assert!(
            r.contains("\t\ttcp dport 8080 dnat to 10.244.1.5:80\n"),
            "{r}"
        );
        assert!(
            r.contains("\t\tip daddr 192.0.2.1 udp dport 5353 dnat to 10.244.1.5:53\n"),
            "{r}"
        );
        assert!(r.contains(
            "ct status dnat ip saddr 10.244.1.5 ip daddr 10.244.1.5 tcp dport 80 masquerade"
        ));
        assert!(!r.contains("9000"));
        // An empty set still yields a valid, empty table (the last pod's mapping removed).
        assert!(ruleset(&[]).contains("chain hostports {\n\t}"));
    }
}
