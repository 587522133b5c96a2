//! Golden tests of ruleset generation.
use std::collections::BTreeSet;

use super::*;
use serde_json::json;

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).unwrap()
}
fn slice(v: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(v).unwrap()
}

pub(crate) fn fixture() -> (Vec<Service>, Vec<EndpointSlice>) {
    let services = vec![
        svc(json!({
            "metadata": {"namespace": "default", "name": "web"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": 30080},
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}
            ]}
        })),
        svc(json!({
            "metadata": {"namespace": "default", "name": "sticky"},
            "spec": {"clusterIP": "10.96.0.30", "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
                "ports": [{"port": 8080, "protocol": "TCP"}]}
        })),
        svc(json!({
            "metadata": {"namespace": "default", "name": "empty"},
            "spec": {"clusterIP": "10.96.0.40", "ports": [{"port": 80}]}
        })),
        svc(json!({
            "metadata": {"namespace": "default", "name": "headless"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        })),
        svc(json!({
            "metadata": {"namespace": "kube-system", "name": "local"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.50", "externalTrafficPolicy": "Local",
                "ports": [{"port": 80, "nodePort": 30050}]}
        })),
    ];
    let slices = vec![
        slice(json!({
            "metadata": {"namespace": "default", "name": "web-1",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                      {"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": [
                {"addresses": ["10.244.1.2"], "conditions": {"ready": true}, "nodeName": "n1"},
                {"addresses": ["10.244.2.2"], "conditions": {"ready": true}, "nodeName": "n2"},
                {"addresses": ["10.244.1.3"], "conditions": {"ready": false}, "nodeName": "n1"},
                {"addresses": ["10.244.1.4"], "conditions": {"ready": true, "terminating": true}, "nodeName": "n1"}
            ]
        })),
        slice(json!({
            "metadata": {"namespace": "default", "name": "sticky-1",
                "labels": {"kubernetes.io/service-name": "sticky"}},
            "addressType": "IPv4",
            "ports": [{"port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.1.5"], "nodeName": "n1"}]
        })),
        slice(json!({
            "metadata": {"namespace": "kube-system", "name": "local-1",
                "labels": {"kubernetes.io/service-name": "local"}},
            "addressType": "IPv4",
            "ports": [{"port": 9000, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.2.9"], "nodeName": "n2"}]
        })),
    ];
    (services, slices)
}

fn cfg() -> RulesConfig {
    RulesConfig {
        cluster_cidr: "10.244.0.0/16".parse().unwrap(),
    }
}

#[test]
fn model_skips_headless_not_ready_and_terminating() {
    let (s, e) = fixture();
    let ports = service_ports(&s, &e, "n1");
    let ids: Vec<String> = ports.iter().map(|p| p.id()).collect();
    assert_eq!(
        ids,
        [
            "default/empty/tcp/p80",
            "default/sticky/tcp/p8080",
            "default/web/tcp/http",
            "default/web/udp/dns",
            "kube-system/local/tcp/p80"
        ]
    );
    let web = &ports[2];
    assert_eq!(web.node_port, Some(30080));
    assert_eq!(
        web.endpoints,
        vec![
            Endpoint {
                ip: "10.244.1.2".parse().unwrap(),
                port: 8080,
                local: true
            },
            Endpoint {
                ip: "10.244.2.2".parse().unwrap(),
                port: 8080,
                local: false
            },
        ]
    );
    assert_eq!(ports[1].affinity_timeout, Some(60));
    assert!(ports[0].endpoints.is_empty());
}

#[test]
fn ruleset_golden() {
    let (s, e) = fixture();
    let rs = generate(&service_ports(&s, &e, "n1"), &cfg());
    let golden = include_str!("golden.nft");
    if rs.body() != golden {
        let path = std::env::temp_dir().join("bosun-net-golden.nft");
        std::fs::write(&path, rs.body()).unwrap();
        panic!(
            "ruleset differs from src/proxy/golden.nft; actual written to {}",
            path.display()
        );
    }
}

#[test]
fn incremental_deletes_stale_chains_and_sets() {
    let (s, e) = fixture();
    let before = generate(&service_ports(&s, &e, "n1"), &cfg());
    let after = generate(&service_ports(&s[..1], &e, "n1"), &cfg());
    let text = after.incremental(&before);
    assert!(text.starts_with("add table ip bosun\nflush table ip bosun\n"));
    let sticky = rules::hash8("default/sticky/tcp/p8080");
    assert!(text.contains(&format!(
        "delete chain ip bosun service-{sticky}-default/sticky/tcp/p8080\n"
    )));
    assert!(text.contains("delete set ip bosun affinity-"));
    assert!(!text.contains("delete chain ip bosun services\n"));
    assert!(before
        .full()
        .starts_with("add table ip bosun\ndelete table ip bosun\n"));
}

#[test]
fn single_endpoint_is_a_plain_goto_and_many_use_numgen() {
    let (s, e) = fixture();
    let rs = generate(&service_ports(&s, &e, "n1"), &cfg());
    assert!(rs
        .body()
        .contains("numgen random mod 2 == 0 goto endpoint-"));
    // Two endpoints bind no anonymous map (its bind is a walk of the whole transaction).
    assert!(!rs.body().contains("vmap {"));
    assert!(rs.body().contains(
        "add element ip bosun no-endpoint-services { 10.96.0.40 . tcp . 80 : goto reject-chain }"
    ));
    assert!(!rs.body().contains("headless"));
}

#[test]
fn spreading_is_a_uniform_cascade_up_to_the_limit_then_one_numgen_map() {
    let targets = |n: usize| -> Vec<String> { (0..n).map(|i| format!("e{i}")).collect() };
    assert_eq!(rules::spread(&targets(1)), vec!["goto e0"]);
    assert_eq!(
        rules::spread(&targets(3)),
        vec![
            "numgen random mod 3 == 0 goto e0",
            "numgen random mod 2 == 0 goto e1",
            "goto e2"
        ]
    );
    // Each target of the cascade is taken with probability 1/N: rule i takes 1/(N-i) of
    // what the rules before it left.
    let n = rules::CASCADE_MAX_ENDPOINTS;
    let c = rules::spread(&targets(n));
    assert_eq!(c.len(), n);
    let mut left = 1.0f64;
    for (i, r) in c.iter().enumerate() {
        let p = if i + 1 == n {
            assert_eq!(r, &format!("goto e{i}"));
            1.0
        } else {
            let m = n - i;
            assert_eq!(r, &format!("numgen random mod {m} == 0 goto e{i}"));
            1.0 / m as f64
        };
        assert!((left * p - 1.0 / n as f64).abs() < 1e-12, "target {i}");
        left *= 1.0 - p;
    }
    let many = rules::spread(&targets(n + 1));
    assert_eq!(many.len(), 1);
    assert!(many[0].starts_with(&format!(
        "numgen random mod {} vmap {{ 0 : goto e0, 1 : goto e1,",
        n + 1
    )));
    assert!(many[0].ends_with(&format!("{n} : goto e{n} }}")));
}

#[test]
fn partial_sync_writes_only_what_changed() {
    let (s, mut e) = fixture();
    let before = generate(&service_ports(&s, &e, "n1"), &cfg());
    assert_eq!(
        before.partial(&before),
        "",
        "nothing changed, nothing to write"
    );
    // The whole body is the base plus every unit: no service port is left out of a unit.
    let unit_chains: BTreeSet<String> = before
        .units
        .values()
        .flat_map(|u| u.chains.iter().cloned())
        .collect();
    assert!(unit_chains.is_subset(&before.chains));
    assert_eq!(before.units.len(), 5, "{:?}", before.units.keys());

    // web's endpoint 10.244.2.2 goes away: web's http and dns chains are rewritten, the
    // endpoint's chains deleted; sticky and local are not mentioned.
    e[0] = serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": "web-1",
            "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                  {"name": "dns", "port": 5353, "protocol": "UDP"}],
        "endpoints": [{"addresses": ["10.244.1.2"], "conditions": {"ready": true}, "nodeName": "n1"}]
    }))
    .unwrap();
    let after = generate(&service_ports(&s, &e, "n1"), &cfg());
    assert_eq!(after.base, before.base);
    // Reusing the unchanged units of `before` gives exactly what writing all of them does,
    // sharing the unchanged ones; not across a change of the cluster CIDR.
    let reused = rules::generate_reusing(&service_ports(&s, &e, "n1"), &cfg(), Some(&before));
    assert_eq!(reused, after);
    let same = |id: &str| std::sync::Arc::ptr_eq(&reused.units[id], &before.units[id]);
    assert!(same("default/sticky/tcp/p8080"));
    assert!(same("kube-system/local/tcp/p80"));
    assert!(!same("default/web/tcp/http"));
    assert!(!same("default/web/udp/dns"));
    let other = RulesConfig {
        cluster_cidr: "10.245.0.0/16".parse().unwrap(),
    };
    let rewritten = rules::generate_reusing(&service_ports(&s, &e, "n1"), &other, Some(&before));
    assert_eq!(rewritten, generate(&service_ports(&s, &e, "n1"), &other));
    assert!(!std::sync::Arc::ptr_eq(
        &rewritten.units["default/sticky/tcp/p8080"],
        &before.units["default/sticky/tcp/p8080"]
    ));
    let text = after.partial(&before);
    let web = rules::hash8("default/web/tcp/http");
    assert!(text.contains(&format!(
        "flush chain ip bosun service-{web}-default/web/tcp/http\n"
    )));
    assert!(text.contains(&format!(
        "add rule ip bosun service-{web}-default/web/tcp/http goto endpoint-"
    )));
    // The stale endpoint chain is flushed, not deleted (that is for a later transaction).
    assert!(text.contains(
        "flush chain ip bosun endpoint-QKDEJ4CM-default/web/tcp/http__10.244.2.2/8080\n"
    ));
    assert!(!text.contains("delete chain"), "{text}");
    assert!(!text.contains("sticky"), "{text}");
    assert!(!text.contains("kube-system"), "{text}");
    assert!(!text.contains("element"), "no map element changed: {text}");

    // sticky removed, a new Service added: its elements and chains come and go.
    let mut s2: Vec<Service> = s
        .iter()
        .filter(|x| x.metadata.name.as_deref() != Some("sticky"))
        .cloned()
        .collect();
    s2.push(svc(json!({
        "metadata": {"namespace": "default", "name": "new"},
        "spec": {"clusterIP": "10.96.0.60", "ports": [{"port": 81}]}
    })));
    let third = generate(&service_ports(&s2, &e, "n1"), &cfg());
    let text = third.partial(&after);
    assert!(
        text.contains("delete element ip bosun service-ips { 10.96.0.30 . tcp . 8080 }\n"),
        "{text}"
    );
    assert!(text.contains("add element ip bosun no-endpoint-services { 10.96.0.60 . tcp . 81 : goto reject-chain }\n"), "{text}");
    assert!(text.contains("delete set ip bosun affinity-"), "{text}");
    let sticky = rules::hash8("default/sticky/tcp/p8080");
    assert!(text.contains(&format!(
        "flush chain ip bosun service-{sticky}-default/sticky/tcp/p8080\n"
    )));
    assert!(!text.contains("default/web/"), "{text}");
    // An element whose value changes is deleted before it is added again.
    let del = text.find("delete element").unwrap();
    let add = text.find("add element").unwrap();
    assert!(del < add);
}

/// The e2e's transition: a NodePort Service with two endpoints, one on each node; the other
/// node's endpoint turns unready while this node's stays ready. The partial text rewrites
/// the service port's chains in place (the service chain now a plain goto to the ready
/// endpoint), touches no map element (the ClusterIP and NodePort keep pointing at chains
/// that exist and are rewritten in the same transaction, so there is no moment without a
/// verdict, and nothing in the no-endpoint maps, so no reject), and only flushes the
/// unready endpoint's chain. The next sync a second later deletes it.
#[test]
fn partial_sync_of_an_endpoint_going_unready_while_another_stays_ready() {
    let s = vec![svc(json!({
        "metadata": {"namespace": "default", "name": "web"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": 30080}
        ]}
    }))];
    let eps = |web2_ready: bool| {
        vec![slice(json!({
            "metadata": {"namespace": "default", "name": "web-x",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.0.2"], "conditions": {"ready": true}, "nodeName": "node-a"},
                {"addresses": ["10.244.1.2"], "conditions": {"ready": web2_ready}, "nodeName": "node-b"}
            ]
        }))]
    };
    let before = generate(&service_ports(&s, &eps(true), "node-a"), &cfg());
    let after = generate(&service_ports(&s, &eps(false), "node-a"), &cfg());
    assert_eq!(after.base, before.base);
    let id = "default/web/tcp/http";
    let h = rules::hash8(id);
    let ep = |ip: &str| {
        let e = format!("{id}__{ip}/8080");
        format!("endpoint-{}-{e}", rules::hash8(&e))
    };
    let (e1, e2) = (ep("10.244.0.2"), ep("10.244.1.2"));
    let t = "ip bosun";
    let expected = format!(
        "add chain {t} {e1}\n\
         add chain {t} service-{h}-{id}\n\
         add chain {t} external-{h}-{id}\n\
         flush chain {t} {e1}\n\
         flush chain {t} external-{h}-{id}\n\
         flush chain {t} service-{h}-{id}\n\
         add rule {t} {e1} ip saddr 10.244.0.2 jump mark-for-masquerade\n\
         add rule {t} {e1} meta l4proto tcp dnat to 10.244.0.2:8080\n\
         add rule {t} service-{h}-{id} ip daddr 10.96.0.20 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n\
         add rule {t} service-{h}-{id} goto {e1}\n\
         add rule {t} external-{h}-{id} jump mark-for-masquerade\n\
         add rule {t} external-{h}-{id} goto service-{h}-{id}\n\
         flush chain {t} {e2}\n"
    );
    assert_eq!(after.partial(&before), expected);
    assert_eq!(
        rules::Ruleset::delete_chains([&e2]),
        format!("delete chain {t} {e2}\n")
    );
    // And back: the endpoint's chain is declared again before anything jumps to it.
    let back = before.partial(&after);
    let decl = back.find(&format!("add chain {t} {e2}\n")).unwrap();
    let used = back.find(&format!("goto {e2}")).unwrap();
    assert!(decl < used, "{back}");
    assert!(!back.contains("element"), "{back}");
}
