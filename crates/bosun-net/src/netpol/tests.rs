use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::{json, Value};

use super::model::*;
use super::rules::*;
use crate::proxy::Proto;

fn pod(ns: &str, name: &str, ip: &str, node: &str, labels: Value) -> PodInfo {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
            {"name": "http", "containerPort": 8080},
            {"name": "dns", "containerPort": 5353, "protocol": "UDP"}
        ]}]},
        "status": {"phase": "Running", "podIP": ip}
    }))
    .expect("pod fixture");
    PodInfo::from_pod(&p).expect("pod info")
}

fn policy(ns: &str, name: &str, spec: Value) -> NetworkPolicy {
    serde_json::from_value(json!({"metadata": {"namespace": ns, "name": name}, "spec": spec}))
        .expect("policy fixture")
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

fn ips(v: &[&str]) -> Peer {
    Peer::Ips(v.iter().map(|s| ip(s)).collect())
}

fn only(r: &[(Proto, u16, u16)]) -> Ports {
    Ports::Only(
        r.iter()
            .map(|&(proto, first, last)| PortRange { proto, first, last })
            .collect(),
    )
}

struct World {
    pods: Vec<PodInfo>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

fn world() -> World {
    World {
        pods: vec![
            pod("default", "db", "10.244.1.2", "n1", json!({"app": "db"})),
            pod("default", "web", "10.244.1.3", "n1", json!({"app": "web"})),
            pod(
                "default",
                "other",
                "10.244.2.2",
                "n2",
                json!({"app": "other"}),
            ),
            pod("blue", "tool", "10.244.2.3", "n2", json!({"app": "tool"})),
            pod(
                "blue",
                "admin",
                "10.244.1.4",
                "n1",
                json!({"role": "admin"}),
            ),
        ],
        namespaces: BTreeMap::from([
            ("default".to_string(), BTreeMap::new()),
            (
                "blue".to_string(),
                BTreeMap::from([("team".to_string(), "blue".to_string())]),
            ),
        ]),
    }
}

fn run(w: &World, policies: &[NetworkPolicy], node: &str) -> Vec<PodRules> {
    let refs: Vec<&NetworkPolicy> = policies.iter().collect();
    compute(&refs, &w.pods, &w.namespaces, node)
}

#[test]
fn unselected_pods_are_untouched_and_deny_all_isolates() {
    let w = world();
    let deny = policy(
        "default",
        "deny",
        json!({"podSelector": {"matchLabels": {"app": "db"}}}),
    );
    let r = run(&w, &[deny], "n1");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].ip, ip("10.244.1.2"));
    assert_eq!(r[0].ingress, Some(vec![]));
    assert_eq!(r[0].egress, None);
    // The same policy on the other node: its pods are not this node's business.
    let deny = policy("default", "deny", json!({"podSelector": {}}));
    let r2 = run(&w, &[deny], "n2");
    assert_eq!(
        r2.iter().map(|r| r.ip).collect::<Vec<_>>(),
        vec![ip("10.244.2.2")]
    );
    assert!(run(&w, &[], "n1").is_empty());
}

#[test]
fn peers_by_pod_namespace_both_and_ip_block() {
    let w = world();
    let np = policy(
        "default",
        "db",
        json!({
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}},
                           "podSelector": {"matchLabels": {"role": "admin"}}}],
                 "ports": [{"port": 22}]},
                {"from": [{"ipBlock": {"cidr": "192.168.0.1/16", "except": ["192.168.7.0/24"]}}]},
                {"from": [{"podSelector": {"matchLabels": {"app": "nobody"}}}]}
            ]
        }),
    );
    let r = run(&w, &[np], "n1");
    assert_eq!(r.len(), 1);
    let ingress = r[0].ingress.clone().expect("isolated");
    let want = vec![
        // podSelector alone: the policy's namespace only (blue's tool does not count).
        Allow {
            peer: ips(&["10.244.1.3"]),
            ports: Ports::Any,
        },
        // namespaceSelector alone: every pod in blue.
        Allow {
            peer: ips(&["10.244.1.4", "10.244.2.3"]),
            ports: Ports::Any,
        },
        // Both in one peer: blue's admins only; TCP by default.
        Allow {
            peer: ips(&["10.244.1.4"]),
            ports: only(&[(Proto::Tcp, 22, 22)]),
        },
        Allow {
            peer: Peer::Cidr {
                net: "192.168.0.0/16".parse().expect("net"),
                except: vec!["192.168.7.0/24".parse().expect("net")],
            },
            ports: Ports::Any,
        },
    ];
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(ingress, sorted);
}

#[test]
fn ports_numbers_ranges_names_and_protocols() {
    let w = world();
    let np = policy(
        "default",
        "ports",
        json!({
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [
                {"ports": [{"port": 80}, {"port": 9000, "endPort": 9100}, {"port": "http"},
                           {"port": "dns", "protocol": "UDP"}, {"protocol": "SCTP"}]},
                // A name the pod does not have (or not for this protocol): the rule allows nothing.
                {"ports": [{"port": "nope"}, {"port": "dns", "protocol": "TCP"}]}
            ]
        }),
    );
    let r = run(&w, &[np], "n1");
    assert_eq!(
        r[0].ingress,
        Some(vec![Allow {
            peer: Peer::Any,
            ports: only(&[
                (Proto::Tcp, 80, 80),
                (Proto::Tcp, 8080, 8080),
                (Proto::Tcp, 9000, 9100),
                (Proto::Udp, 5353, 5353),
                (Proto::Sctp, 0, 65535),
            ]),
        }])
    );
}

#[test]
fn egress_with_named_ports_resolves_on_destinations_and_policies_add_up() {
    let w = world();
    let egress = policy(
        "default",
        "egress",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"port": "http"}]},
                {"ports": [{"port": 53, "protocol": "UDP"}]}
            ]
        }),
    );
    let ingress = policy(
        "default",
        "web-in",
        json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}),
    );
    let r = run(&w, &[egress, ingress], "n1");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].name, "web");
    // An empty rule allows everything.
    assert_eq!(
        r[0].ingress,
        Some(vec![Allow {
            peer: Peer::Any,
            ports: Ports::Any
        }])
    );
    let mut want = vec![
        Allow {
            peer: ips(&["10.244.1.2"]),
            ports: only(&[(Proto::Tcp, 8080, 8080)]),
        },
        Allow {
            peer: Peer::Any,
            ports: only(&[(Proto::Udp, 53, 53)]),
        },
    ];
    want.sort();
    assert_eq!(r[0].egress, Some(want));
    // Defaulted types for objects stored without them: egress rules make it Egress too.
    let legacy = policy(
        "default",
        "legacy",
        json!({"podSelector": {}, "egress": [{}]}),
    );
    assert_eq!(policy_types(&legacy), (true, true));
}

#[test]
fn host_network_unaddressed_and_finished_pods_are_left_out() {
    let mk = |spec: Value, status: Value| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "d"},
            "spec": spec, "status": status}))
        .expect("pod")
    };
    let spec = json!({"containers": [{"name": "c"}]});
    assert!(PodInfo::from_pod(&mk(
        json!({"hostNetwork": true, "containers": [{"name": "c"}]}),
        json!({"podIP": "10.0.0.1"})
    ))
    .is_none());
    assert!(PodInfo::from_pod(&mk(spec.clone(), json!({}))).is_none());
    assert!(PodInfo::from_pod(&mk(
        spec.clone(),
        json!({"podIP": "10.244.1.9", "phase": "Succeeded"})
    ))
    .is_none());
    assert!(PodInfo::from_pod(&mk(spec, json!({"podIP": "fd00::1"}))).is_none());
}

#[test]
fn renders_the_table() {
    let rules = vec![PodRules {
        namespace: "default".into(),
        name: "db".into(),
        ip: ip("10.244.1.2"),
        ingress: Some(vec![
            Allow {
                peer: ips(&["10.244.1.3", "10.244.2.3"]),
                ports: only(&[
                    (Proto::Tcp, 80, 80),
                    (Proto::Tcp, 9000, 9100),
                    (Proto::Udp, 53, 53),
                ]),
            },
            Allow {
                peer: Peer::Cidr {
                    net: "192.168.0.0/16".parse().expect("net"),
                    except: vec!["192.168.7.0/24".parse().expect("net")],
                },
                ports: only(&[(Proto::Sctp, 0, 65535)]),
            },
        ]),
        egress: Some(vec![]),
    }];
    let text = ruleset(
        &rules,
        &RenderConfig {
            dns_ips: vec![ip("10.96.0.10")],
        },
    );
    let want = "\
add table ip bosun-netpol
delete table ip bosun-netpol
add table ip bosun-netpol { comment \"bosun network policy\"; }
add map ip bosun-netpol ingress-pods { type ipv4_addr : verdict; }
add map ip bosun-netpol egress-pods { type ipv4_addr : verdict; }
add chain ip bosun-netpol forward { type filter hook forward priority 0; policy accept; }
add chain ip bosun-netpol input { type filter hook input priority 0; policy accept; }
add chain ip bosun-netpol ingress-10.244.1.2 { comment \"default/db\"; }
add chain ip bosun-netpol egress-10.244.1.2 { comment \"default/db\"; }
add rule ip bosun-netpol forward ct state established,related accept
add rule ip bosun-netpol forward ip saddr vmap @egress-pods
add rule ip bosun-netpol forward ip daddr vmap @ingress-pods
add rule ip bosun-netpol input ct state established,related accept
add rule ip bosun-netpol input ip daddr 10.96.0.10 meta l4proto { tcp, udp } th dport 53 accept
add rule ip bosun-netpol input ip saddr vmap @egress-pods
add rule ip bosun-netpol ingress-10.244.1.2 ip saddr { 10.244.1.3, 10.244.2.3 } meta l4proto tcp th dport { 80, 9000-9100 } return
add rule ip bosun-netpol ingress-10.244.1.2 ip saddr { 10.244.1.3, 10.244.2.3 } meta l4proto udp th dport 53 return
add rule ip bosun-netpol ingress-10.244.1.2 ip saddr 192.168.0.0/16 ip saddr != 192.168.7.0/24 meta l4proto sctp return
add rule ip bosun-netpol ingress-10.244.1.2 drop
add rule ip bosun-netpol egress-10.244.1.2 drop
add element ip bosun-netpol ingress-pods { 10.244.1.2 : jump ingress-10.244.1.2 }
add element ip bosun-netpol egress-pods { 10.244.1.2 : jump egress-10.244.1.2 }
";
    assert_eq!(text, want);
    // Nothing isolated: the base chains alone, which let everything through.
    let empty = ruleset(&[], &RenderConfig::default());
    assert!(!empty.contains("drop"), "{empty}");
    assert!(!empty.contains("dport 53"), "{empty}");
    // An allow-all rule is a bare return.
    let all = ruleset(
        &[PodRules {
            namespace: "d".into(),
            name: "p".into(),
            ip: ip("10.244.1.9"),
            ingress: Some(vec![Allow {
                peer: Peer::Any,
                ports: Ports::Any,
            }]),
            egress: None,
        }],
        &RenderConfig::default(),
    );
    assert!(
        all.contains("add rule ip bosun-netpol ingress-10.244.1.9 return\n"),
        "{all}"
    );
    assert!(!all.contains("egress-10.244.1.9"), "{all}");
}
