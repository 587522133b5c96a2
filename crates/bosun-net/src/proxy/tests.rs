//! Golden tests of ruleset generation.
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
    if rs.body != golden {
        let path = std::env::temp_dir().join("bosun-net-golden.nft");
        std::fs::write(&path, &rs.body).unwrap();
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
        .body
        .contains("numgen random mod 2 vmap { 0 : goto endpoint-"));
    assert!(rs.body.contains(
        "add element ip bosun no-endpoint-services { 10.96.0.40 . tcp . 80 : goto reject-chain }"
    ));
    assert!(!rs.body.contains("headless"));
}
