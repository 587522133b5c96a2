//! networking.k8s.io/v1 NetworkPolicy: upstream's `SetDefaults_NetworkPolicy(Port)` and
//! `pkg/apis/networking/validation` (ports, peers, ipBlock CIDRs, policyTypes).

use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::common::p;
use super::Strategy;
use crate::field::{FieldError, FieldErrorList, Path};
use crate::names;

const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const POLICY_TYPES: &[&str] = &["Ingress", "Egress"];

/// Upstream's `ValidateNetworkPolicyPort`.
fn validate_port(port: &NetworkPolicyPort, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if let Some(proto) = port.protocol.as_deref() {
        if !PROTOCOLS.contains(&proto) {
            errs.push(FieldError::not_supported(
                &path.child("protocol"),
                proto,
                PROTOCOLS,
            ));
        }
    }
    match &port.port {
        Some(IntOrString::Int(n)) => {
            for m in names::is_valid_port_num(i64::from(*n)) {
                errs.push(FieldError::invalid(&path.child("port"), *n, m));
            }
            if let Some(end) = port.end_port {
                if end < *n {
                    errs.push(FieldError::invalid(
                        &path.child("endPort"),
                        *n,
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in names::is_valid_port_num(i64::from(end)) {
                    errs.push(FieldError::invalid(&path.child("endPort"), end, m));
                }
            }
        }
        Some(IntOrString::String(name)) => {
            if let Some(end) = port.end_port {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for m in names::is_valid_port_name(name) {
                errs.push(FieldError::invalid(&path.child("port"), name.as_str(), m));
            }
        }
        None => {
            if let Some(end) = port.end_port {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    end,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
    errs
}

/// A CIDR's network address bits and prefix length, as `ParseCIDRSloppy` sees it.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

/// Whether the network `outer` (masked to its prefix) contains `ip`.
fn cidr_contains(outer: (IpAddr, u8), ip: IpAddr) -> bool {
    let (net, bits) = outer;
    let (a, b, width) = match (net, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    if shift >= 128 {
        return true;
    }
    (a >> shift) == (b >> shift)
}

/// Upstream's `ValidateIPBlock`.
fn validate_ip_block(ipb: &IPBlock, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if ipb.cidr.is_empty() {
        errs.push(FieldError::required(&path.child("cidr"), ""));
        return errs;
    }
    errs.extend(names::validate_cidr(&path.child("cidr"), &ipb.cidr));
    let Some(cidr) = parse_cidr(&ipb.cidr) else {
        return errs;
    };
    for (i, ex) in ipb.except.iter().flatten().enumerate() {
        let ep = path.child("except").index(i);
        errs.extend(names::validate_cidr(&ep, ex));
        let Some((ex_ip, ex_bits)) = parse_cidr(ex) else {
            continue;
        };
        if !cidr_contains(cidr, ex_ip) || cidr.1 >= ex_bits {
            errs.push(FieldError::invalid(
                &ep,
                ex.as_str(),
                "must be a strict subset of `cidr`",
            ));
        }
    }
    errs
}

/// Upstream's `ValidateNetworkPolicyPeer`.
fn validate_peer(peer: &NetworkPolicyPeer, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    let mut n = 0;
    if let Some(sel) = &peer.pod_selector {
        n += 1;
        errs.extend(names::validate_label_selector(
            Some(sel),
            &path.child("podSelector"),
        ));
    }
    if let Some(sel) = &peer.namespace_selector {
        n += 1;
        errs.extend(names::validate_label_selector(
            Some(sel),
            &path.child("namespaceSelector"),
        ));
    }
    if let Some(ipb) = &peer.ip_block {
        n += 1;
        errs.extend(validate_ip_block(ipb, &path.child("ipBlock")));
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if n > 1 && peer.ip_block.is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
    errs
}

/// Upstream's `ValidateNetworkPolicySpec`.
fn validate_spec(np: &NetworkPolicy) -> FieldErrorList {
    let sp = p("spec");
    let spec = np.spec.clone().unwrap_or_default();
    let mut errs =
        names::validate_label_selector(spec.pod_selector.as_ref(), &sp.child("podSelector"));
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let rp = sp.child("ingress").index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errs.extend(validate_port(port, &rp.child("ports").index(j)));
        }
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            errs.extend(validate_peer(peer, &rp.child("from").index(j)));
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let rp = sp.child("egress").index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errs.extend(validate_port(port, &rp.child("ports").index(j)));
        }
        for (j, peer) in rule.to.iter().flatten().enumerate() {
            errs.extend(validate_peer(peer, &rp.child("to").index(j)));
        }
    }
    let types = spec.policy_types.unwrap_or_default();
    if types.len() > POLICY_TYPES.len() {
        errs.push(FieldError::invalid(
            &sp.child("policyTypes"),
            serde_json::json!(types),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        if !POLICY_TYPES.contains(&t.as_str()) {
            errs.push(FieldError::not_supported(
                &sp.child("policyTypes").index(i),
                t.as_str(),
                POLICY_TYPES,
            ));
        }
    }
    errs
}

impl Strategy for NetworkPolicy {
    /// `SetDefaults_NetworkPolicyPort` (protocol TCP) and `SetDefaults_NetworkPolicy`
    /// (policyTypes: Ingress, plus Egress when egress rules are present).
    fn set_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        let ports = spec
            .ingress
            .iter_mut()
            .flatten()
            .flat_map(|r| r.ports.iter_mut().flatten())
            .chain(
                spec.egress
                    .iter_mut()
                    .flatten()
                    .flat_map(|r| r.ports.iter_mut().flatten()),
            );
        for port in ports {
            if port.protocol.is_none() {
                port.protocol = Some("TCP".into());
            }
        }
        if spec.policy_types.as_ref().is_none_or(Vec::is_empty) {
            let mut t = vec!["Ingress".to_string()];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                t.push("Egress".into());
            }
            spec.policy_types = Some(t);
        }
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_spec(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn np(spec: serde_json::Value) -> NetworkPolicy {
        serde_json::from_value(json!({
            "metadata": {"name": "np", "namespace": "default"},
            "spec": spec
        }))
        .expect("fixture")
    }

    fn messages(errs: &FieldErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_policy_types_and_protocols() {
        let mut a = np(json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}));
        a.set_defaults();
        let s = a.spec.as_ref().expect("spec");
        assert_eq!(s.policy_types, Some(vec!["Ingress".to_string()]));
        assert_eq!(
            s.ingress.as_ref().expect("ingress")[0]
                .ports
                .as_ref()
                .expect("ports")[0]
                .protocol
                .as_deref(),
            Some("TCP")
        );
        let mut b = np(
            json!({"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}),
        );
        b.set_defaults();
        let s = b.spec.as_ref().expect("spec");
        assert_eq!(
            s.policy_types,
            Some(vec!["Ingress".to_string(), "Egress".to_string()])
        );
        assert_eq!(
            s.egress.as_ref().expect("egress")[0]
                .ports
                .as_ref()
                .expect("ports")[0]
                .protocol
                .as_deref(),
            Some("UDP")
        );
        // Explicit types are kept, even with egress rules present.
        let mut c = np(json!({"policyTypes": ["Egress"], "ingress": [{}]}));
        c.set_defaults();
        assert_eq!(
            c.spec.as_ref().expect("spec").policy_types,
            Some(vec!["Egress".to_string()])
        );
        assert!(c.validate().is_empty(), "{:?}", messages(&c.validate()));
    }

    #[test]
    fn validates_ports_peers_and_types_naming_the_field() {
        let mut bad = np(json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{
                "ports": [
                    {"port": 0},
                    {"port": 80, "endPort": 70},
                    {"port": "http", "endPort": 90},
                    {"endPort": 90},
                    {"port": "Not_A_Name"},
                    {"port": 80, "protocol": "ICMP"}
                ],
                "from": [
                    {},
                    {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}},
                    {"ipBlock": {"cidr": "10.0.0.0/33"}},
                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16", "10.0.0.0/8", "10.1.0.0/16", "bogus"]}}
                ]
            }],
            "egress": [{"to": [{"ipBlock": {"cidr": ""}}]}],
            "policyTypes": ["Ingress", "Sideways"]
        }));
        bad.set_defaults();
        let got = messages(&bad.validate());
        let want = [
            "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ingress[0].ports[1].endPort: Invalid value: 80: must be greater than or equal to `port`",
            "spec.ingress[0].ports[2].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
            "spec.ingress[0].ports[3].endPort: Invalid value: 90: may not be specified when `port` is not specified",
            "spec.ingress[0].ports[5].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
            "spec.ingress[0].from[0]: Required value: must specify a peer",
            "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
            "spec.ingress[0].from[2].ipBlock.cidr: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            "spec.ingress[0].from[3].ipBlock.except[0]: Invalid value: \"11.0.0.0/16\": must be a strict subset of `cidr`",
            "spec.ingress[0].from[3].ipBlock.except[1]: Invalid value: \"10.0.0.0/8\": must be a strict subset of `cidr`",
            "spec.ingress[0].from[3].ipBlock.except[3]: Invalid value: \"bogus\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            "spec.egress[0].to[0].ipBlock.cidr: Required value",
            "spec.policyTypes[1]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"",
        ];
        for w in want {
            assert!(got.iter().any(|g| g == w), "missing {w:?} in {got:#?}");
        }
        assert!(
            got.iter()
                .any(|g| g
                    .starts_with("spec.ingress[0].ports[4].port: Invalid value: \"Not_A_Name\"")),
            "{got:#?}"
        );
        assert_eq!(got.len(), want.len() + 1, "{got:#?}");

        let mut three = np(json!({"policyTypes": ["Ingress", "Egress", "Ingress"]}));
        three.set_defaults();
        assert_eq!(
            messages(&three.validate()),
            vec!["spec.policyTypes: Invalid value: []string{\"Ingress\", \"Egress\", \"Ingress\"}: may not specify more than two policyTypes"]
        );

        let mut good = np(json!({
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [
                {"podSelector": {"matchLabels": {"role": "client"}}, "namespaceSelector": {}},
                {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}}
            ], "ports": [{"port": 6379}, {"port": 32000, "endPort": 32768}, {"port": "redis"}]}],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "UDP", "port": 53}]}]
        }));
        good.set_defaults();
        assert!(
            good.validate().is_empty(),
            "{:?}",
            messages(&good.validate())
        );
        let mut unnamed = good.clone();
        unnamed.metadata.name = None;
        assert!(messages(&unnamed.validate())
            .iter()
            .any(|m| m.starts_with("metadata.name: Required value")));
    }

    #[test]
    fn cidr_containment() {
        let net = parse_cidr("10.1.2.3/16").expect("cidr");
        assert!(cidr_contains(net, "10.1.200.1".parse().expect("ip")));
        assert!(!cidr_contains(net, "10.2.0.1".parse().expect("ip")));
        assert!(!cidr_contains(net, "::1".parse().expect("ip")));
        assert!(cidr_contains(
            parse_cidr("0.0.0.0/0").expect("cidr"),
            "1.2.3.4".parse().expect("ip")
        ));
    }
}
