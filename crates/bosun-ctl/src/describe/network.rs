//! kubectl's describers for NetworkPolicy (`describeNetworkPolicy`, no events) and
//! EndpointSlice (`describeEndpointSliceV1`), line for line.

use serde_json::Value;

use super::fmt::{
    annotations_multiline, arr, format_label_selector, go_time, labels_multiline, s, string_map, w,
    Out,
};
use super::{describe_events, Events};
use crate::error::Result;

pub(crate) async fn network_policy(np: &Value) -> Result<String> {
    let mut o = Out::new();
    w!(o, 0, "Name:\t{}\n", s(np, "/metadata/name"));
    w!(o, 0, "Namespace:\t{}\n", s(np, "/metadata/namespace"));
    w!(
        o,
        0,
        "Created on:\t{}\n",
        go_time(s(np, "/metadata/creationTimestamp"))
    );
    labels_multiline(&mut o, "Labels", &string_map(np, "/metadata/labels"));
    annotations_multiline(
        &mut o,
        "Annotations",
        &string_map(np, "/metadata/annotations"),
    );
    // describeNetworkPolicySpec.
    let spec = np.get("spec").unwrap_or(&Value::Null);
    o.w(0, "Spec:\n");
    o.w(1, "PodSelector: ");
    let pod_selector = spec.get("podSelector").unwrap_or(&Value::Null);
    if string_map(pod_selector, "/matchLabels").is_empty()
        && arr(pod_selector, "/matchExpressions").is_empty()
    {
        o.w(
            2,
            "<none> (Allowing the specific traffic to all pods in this namespace)\n",
        );
    } else {
        w!(o, 2, "{}\n", format_label_selector(pod_selector));
    }
    let types: Vec<&str> = arr(spec, "/policyTypes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if types.contains(&"Ingress") {
        o.w(1, "Allowing ingress traffic:\n");
        rules(&mut o, arr(spec, "/ingress"), Direction::Ingress);
    } else {
        o.w(1, "Not affecting ingress traffic\n");
    }
    if types.contains(&"Egress") {
        o.w(1, "Allowing egress traffic:\n");
        rules(&mut o, arr(spec, "/egress"), Direction::Egress);
    } else {
        o.w(1, "Not affecting egress traffic\n");
    }
    w!(o, 1, "Policy Types: {}\n", types.join(", "));
    Ok(o.finish())
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Ingress,
    Egress,
}

/// `printNetworkPolicySpecIngressFrom` / `printNetworkPolicySpecEgressTo`, indented by
/// four spaces.
fn rules(o: &mut Out, rules: &[Value], dir: Direction) {
    const INDENT: &str = "    ";
    let (peers_key, peer_title, isolated, any_peer) = match dir {
        Direction::Ingress => (
            "/from",
            "From",
            "<none> (Selected pods are isolated for ingress connectivity)",
            "From: <any> (traffic not restricted by source)",
        ),
        Direction::Egress => (
            "/to",
            "To",
            "<none> (Selected pods are isolated for egress connectivity)",
            "To: <any> (traffic not restricted by destination)",
        ),
    };
    if rules.is_empty() {
        w!(o, 0, "{INDENT}{isolated}\n");
        return;
    }
    for (n, rule) in rules.iter().enumerate() {
        let ports = arr(rule, "/ports");
        if ports.is_empty() {
            w!(
                o,
                0,
                "{INDENT}To Port: <any> (traffic allowed to all ports)\n"
            );
        }
        for port in ports {
            let proto = match s(port, "/protocol") {
                "" => "TCP",
                p => p,
            };
            let number = match port.get("port") {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(name)) => name.clone(),
                // A nil *IntOrString through %s.
                _ => "<nil>".into(),
            };
            match port.get("endPort").and_then(Value::as_i64) {
                Some(end) => w!(o, 0, "{INDENT}To Port Range: {number}-{end}/{proto}\n"),
                None => w!(o, 0, "{INDENT}To Port: {number}/{proto}\n"),
            }
        }
        let peers = arr(rule, peers_key);
        if peers.is_empty() {
            w!(o, 0, "{INDENT}{any_peer}\n");
        }
        for peer in peers {
            w!(o, 0, "{INDENT}{peer_title}:\n");
            let pods = peer.get("podSelector").filter(|v| !v.is_null());
            let namespaces = peer.get("namespaceSelector").filter(|v| !v.is_null());
            match (
                pods,
                namespaces,
                peer.get("ipBlock").filter(|v| !v.is_null()),
            ) {
                (Some(p), Some(ns), _) => {
                    w!(
                        o,
                        1,
                        "{INDENT}NamespaceSelector: {}\n",
                        format_label_selector(ns)
                    );
                    w!(o, 1, "{INDENT}PodSelector: {}\n", format_label_selector(p));
                }
                (Some(p), None, _) => {
                    w!(o, 1, "{INDENT}PodSelector: {}\n", format_label_selector(p))
                }
                (None, Some(ns), _) => w!(
                    o,
                    1,
                    "{INDENT}NamespaceSelector: {}\n",
                    format_label_selector(ns)
                ),
                (None, None, Some(block)) => {
                    w!(o, 1, "{INDENT}IPBlock:\n");
                    w!(o, 2, "{INDENT}CIDR: {}\n", s(block, "/cidr"));
                    let except: Vec<&str> = arr(block, "/except")
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
                    w!(o, 2, "{INDENT}Except: {}\n", except.join(", "));
                }
                (None, None, None) => {}
            }
        }
        if n + 1 != rules.len() {
            w!(o, 0, "{INDENT}----------\n");
        }
    }
}

/// `describeEndpointSliceV1`.
pub(crate) async fn endpoint_slice(eps: &Value, ev: &Events) -> Result<String> {
    let mut o = Out::new();
    w!(o, 0, "Name:\t{}\n", s(eps, "/metadata/name"));
    w!(o, 0, "Namespace:\t{}\n", s(eps, "/metadata/namespace"));
    labels_multiline(&mut o, "Labels", &string_map(eps, "/metadata/labels"));
    annotations_multiline(
        &mut o,
        "Annotations",
        &string_map(eps, "/metadata/annotations"),
    );
    w!(o, 0, "AddressType:\t{}\n", s(eps, "/addressType"));
    let ports = arr(eps, "/ports");
    if ports.is_empty() {
        o.w(0, "Ports: <unset>\n");
    } else {
        o.w(0, "Ports:\n");
        o.w(1, "Name\tPort\tProtocol\n");
        o.w(1, "----\t----\t--------\n");
        for p in ports {
            let name = match s(p, "/name") {
                "" => "<unset>",
                n => n,
            };
            let port = p
                .get("port")
                .and_then(Value::as_i64)
                .map_or("<unset>".to_string(), |n| n.to_string());
            w!(o, 1, "{name}\t{port}\t{}\n", s(p, "/protocol"));
        }
    }
    let endpoints = arr(eps, "/endpoints");
    if endpoints.is_empty() {
        o.w(0, "Endpoints: <none>\n");
    } else {
        o.w(0, "Endpoints:\n");
        // A *string: `<unset>` when nil, printed as is when set (even empty).
        let opt = |e: &Value, k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .map_or("<unset>".to_string(), str::to_string)
        };
        for e in endpoints {
            let addresses: Vec<&str> = arr(e, "/addresses")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let addresses = if addresses.is_empty() {
                "<none>".to_string()
            } else {
                addresses.join(", ")
            };
            w!(o, 1, "- Addresses:\t{addresses}\n");
            o.w(2, "Conditions:\n");
            let ready = e
                .pointer("/conditions/ready")
                .and_then(Value::as_bool)
                .map_or("<unset>".to_string(), |b| b.to_string());
            w!(o, 3, "Ready:\t{ready}\n");
            w!(o, 2, "Hostname:\t{}\n", opt(e, "hostname"));
            if let Some(t) = e.get("targetRef").filter(|t| !t.is_null()) {
                w!(o, 2, "TargetRef:\t{}/{}\n", s(t, "/kind"), s(t, "/name"));
            }
            w!(o, 2, "NodeName:\t{}\n", opt(e, "nodeName"));
            w!(o, 2, "Zone:\t{}\n", opt(e, "zone"));
        }
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}
