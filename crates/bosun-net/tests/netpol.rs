//! The network policy table applied inside a node namespace with real pods on its bridge:
//! default deny, allow by pod label and by port, ipBlock with an exception, Service traffic
//! judged after the proxy's DNAT, egress deny, the node itself always reaching its pods.
//! Needs root and br_netfilter; fails loudly otherwise.
mod common;

use std::net::{Ipv4Addr, SocketAddr};

use bosun_net::netpol::{Enforcer, NetpolConfig};
use bosun_net::proxy::{Proxier, ProxyConfig};
use bosun_net::{NetConfig, PodIps, PodNetwork};
use common::*;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::{json, Value};

fn pod(name: &str, ip: &PodIps, labels: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": name, "labels": labels},
        "spec": {"nodeName": "n", "containers": [{"name": "c",
            "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": ip.ip.to_string()}
    }))
    .expect("pod")
}

fn policy(name: &str, spec: Value) -> NetworkPolicy {
    serde_json::from_value(
        json!({"metadata": {"namespace": "default", "name": name}, "spec": spec}),
    )
    .expect("policy")
}

fn reaches(from: &Netns, to: Ipv4Addr, port: u16) -> bool {
    tcp_get(&from.path, SocketAddr::from((to, port))).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_deny_and_allow_on_one_node() {
    require_root_and_tools();
    let node = Netns::new("npnode");
    let sysctl = node.exec(&["cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"]);
    assert_eq!(
        String::from_utf8_lossy(&sysctl.stdout).trim(),
        "1",
        "bridged traffic must pass the ip hooks: load br_netfilter (modprobe br_netfilter)"
    );
    let (db_ns, web_ns, other_ns) = (Netns::new("npdb"), Netns::new("npweb"), Netns::new("npoth"));
    let data = tempfile::tempdir().expect("tempdir");
    let net = PodNetwork::new(
        NetConfig {
            data_dir: data.path().to_path_buf(),
            node_netns: Some(node.path.clone()),
            ..NetConfig::default()
        },
        "10.244.1.0/24".parse().expect("cidr"),
    )
    .await
    .expect("pod network");
    let db = net.setup("db", &db_ns.path).await.expect("db");
    let web = net.setup("web", &web_ns.path).await.expect("web");
    let other = net.setup("other", &other_ns.path).await.expect("other");
    echo_server(&db_ns.path, 8080, "db");
    echo_server(&db_ns.path, 9090, "db-admin");
    echo_server(&web_ns.path, 8080, "web");
    echo_server(&other_ns.path, 8080, "other");
    let pods = [
        pod("db", &db, json!({"app": "db"})),
        pod("web", &web, json!({"app": "web"})),
        pod("other", &other, json!({"app": "other"})),
    ];
    let pod_refs: Vec<&Pod> = pods.iter().collect();
    let default_ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("ns");
    let nss = [&default_ns];

    // A ClusterIP in front of db:8080, to check Service traffic is judged after DNAT.
    let mut pcfg = ProxyConfig::new("n");
    pcfg.netns = Some(node.path.clone());
    let mut proxier = Proxier::new(pcfg);
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": "db"},
        "spec": {"clusterIP": "10.96.0.30", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}
    }))
    .expect("svc");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [db.ip.to_string()], "conditions": {"ready": true}, "nodeName": "n"}]
    }))
    .expect("slice");
    proxier.sync(&[svc], &[slice]).await.expect("proxy sync");
    let vip = Ipv4Addr::new(10, 96, 0, 30);

    let mut cfg = NetpolConfig::new("n");
    cfg.netns = Some(node.path.clone());
    let mut enf = Enforcer::new(cfg);

    // No policy: everything reaches db.
    enf.sync(&[], &pod_refs, &nss).await.expect("sync");
    assert!(reaches(&web_ns, db.ip, 8080));
    assert!(reaches(&other_ns, db.ip, 9090));
    assert!(reaches(&other_ns, vip, 80));

    // Default deny for db's ingress: nobody gets in, the node still does (probes), db's own
    // connections out (and their replies) still work, other pods are untouched.
    let deny = policy(
        "deny-db",
        json!({"podSelector": {"matchLabels": {"app": "db"}}}),
    );
    enf.sync(&[&deny], &pod_refs, &nss).await.expect("sync");
    assert!(!reaches(&web_ns, db.ip, 8080), "deny-all let web in");
    assert!(
        !reaches(&other_ns, vip, 80),
        "deny-all let the ClusterIP in"
    );
    assert!(reaches(&node, db.ip, 8080), "the node must reach its pods");
    assert!(reaches(&db_ns, web.ip, 8080), "db's egress is not isolated");
    assert!(reaches(&other_ns, web.ip, 8080), "web is not selected");

    // Allow app=web on 8080 only (additive with the deny).
    let allow = policy(
        "web-to-db",
        json!({"podSelector": {"matchLabels": {"app": "db"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                            "ports": [{"port": "http"}]}]}),
    );
    enf.sync(&[&deny, &allow], &pod_refs, &nss)
        .await
        .expect("sync");
    assert!(reaches(&web_ns, db.ip, 8080));
    assert!(!reaches(&web_ns, db.ip, 9090), "port 9090 is not allowed");
    assert!(!reaches(&other_ns, db.ip, 8080), "other has not the label");
    // Through the Service: judged on the endpoint after DNAT.
    assert!(reaches(&web_ns, vip, 80));
    assert!(!reaches(&other_ns, vip, 80));

    // ipBlock: the pod CIDR except other's address.
    let block = policy(
        "block",
        json!({"podSelector": {"matchLabels": {"app": "db"}},
               "ingress": [{"from": [{"ipBlock": {"cidr": "10.244.1.0/24",
                                                  "except": [format!("{}/32", other.ip)]}}],
                            "ports": [{"port": 9090}]}]}),
    );
    enf.sync(&[&deny, &block], &pod_refs, &nss)
        .await
        .expect("sync");
    assert!(reaches(&web_ns, db.ip, 9090));
    assert!(!reaches(&other_ns, db.ip, 9090));
    assert!(!reaches(&web_ns, db.ip, 8080));

    // Egress deny for web: it reaches nobody; others still reach web.
    let egress = policy(
        "web-out",
        json!({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]}),
    );
    enf.sync(&[&egress], &pod_refs, &nss).await.expect("sync");
    assert!(!reaches(&web_ns, other.ip, 8080), "egress deny let web out");
    assert!(!reaches(&web_ns, db.ip, 8080));
    assert!(
        reaches(&other_ns, web.ip, 8080),
        "web's ingress is not isolated"
    );
    assert!(reaches(&other_ns, db.ip, 8080));

    // All policies gone: everything open again; the table is empty of pod chains.
    enf.sync(&[], &pod_refs, &nss).await.expect("sync");
    assert!(reaches(&web_ns, other.ip, 8080));
    let table = node.exec(&["nft", "list", "table", "ip", "bosun-netpol"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("chain forward"), "{text}");
    assert!(!text.contains("drop"), "{text}");
}
