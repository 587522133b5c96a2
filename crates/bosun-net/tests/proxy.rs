//! The service proxy's ruleset applied inside a node namespace: ClusterIP from pods and from
//! the node reaching every endpoint, NodePort, an endpoint leaving the rotation, no-endpoint
//! and unprogrammed addresses refused. Needs root; fails loudly otherwise.
mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};

use bosun_net::proxy::{Proxier, ProxyConfig};
use bosun_net::{NetConfig, PodIps, PodNetwork};
use common::*;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

fn service() -> Service {
    serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": "web"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": 30080}
        ]}
    }))
    .unwrap()
}

fn slice(eps: &[(&PodIps, bool)]) -> EndpointSlice {
    let endpoints: Vec<_> = eps
        .iter()
        .map(|(p, ready)| json!({"addresses": [p.ip.to_string()], "conditions": {"ready": ready}, "nodeName": "n"}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints
    }))
    .unwrap()
}

fn idents(from: &Netns, addr: SocketAddr, n: usize) -> BTreeSet<String> {
    (0..n)
        .map(|_| {
            tcp_get(&from.path, addr).unwrap_or_else(|e| panic!("{addr} from {}: {e}", from.name))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ip_node_port_and_endpoint_leaving_rotation() {
    require_root_and_tools();
    let node = Netns::new("pxnode");
    node.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ]);
    node.ip(&["link", "set", "eth0p", "up"]);
    node.ip(&["addr", "add", "192.168.251.1/24", "dev", "eth0"]);
    node.ip(&["link", "set", "eth0", "up"]);
    let (p1, p2, client) = (Netns::new("ep1"), Netns::new("ep2"), Netns::new("client"));
    let data = tempfile::tempdir().unwrap();
    let net = PodNetwork::new(
        NetConfig {
            data_dir: data.path().to_path_buf(),
            node_netns: Some(node.path.clone()),
            ..NetConfig::default()
        },
        "10.244.1.0/24".parse().unwrap(),
    )
    .await
    .unwrap();
    let a = net.setup("ep1", &p1.path).await.unwrap();
    let b = net.setup("ep2", &p2.path).await.unwrap();
    net.setup("client", &client.path).await.unwrap();
    echo_server(&p1.path, 8080, "ep1");
    echo_server(&p2.path, 8080, "ep2");

    let mut cfg = ProxyConfig::new("n");
    cfg.netns = Some(node.path.clone());
    let mut proxier = Proxier::new(cfg);
    let svcs = vec![service()];
    proxier
        .sync(&svcs, &[slice(&[(&a, true), (&b, true)])])
        .await
        .unwrap();
    let both: BTreeSet<String> = ["ep1".to_string(), "ep2".to_string()].into();

    let vip = SocketAddr::from((Ipv4Addr::new(10, 96, 0, 20), 80));
    assert_eq!(idents(&client, vip, 40), both, "ClusterIP from a pod");
    assert_eq!(idents(&node, vip, 40), both, "ClusterIP from the node");
    // Hairpin: an endpoint reaching its own Service.
    assert!(!idents(&p1, vip, 10).is_empty());
    let np = SocketAddr::from((Ipv4Addr::new(192, 168, 251, 1), 30080));
    assert_eq!(idents(&client, np, 40), both, "NodePort from a pod");
    assert_eq!(idents(&node, np, 40), both, "NodePort from the node");

    // ep2 stops being ready: it leaves the rotation at the next sync.
    proxier
        .sync(&svcs, &[slice(&[(&a, true), (&b, false)])])
        .await
        .unwrap();
    let one: BTreeSet<String> = ["ep1".to_string()].into();
    assert_eq!(idents(&client, vip, 30), one);
    assert_eq!(idents(&client, np, 20), one);

    // No endpoints: refused, not hanging. An unprogrammed ClusterIP is refused too.
    proxier.sync(&svcs, &[slice(&[(&a, false)])]).await.unwrap();
    assert!(tcp_get(&client.path, vip).is_err());
    assert!(tcp_get(&node.path, vip).is_err());
    let unprogrammed = SocketAddr::from((Ipv4Addr::new(10, 96, 0, 99), 80));
    assert!(tcp_get(&client.path, unprogrammed).is_err());

    // Back, and the Service removed: its chains go away in the incremental sync.
    proxier
        .sync(&svcs, &[slice(&[(&a, true), (&b, true)])])
        .await
        .unwrap();
    assert_eq!(idents(&client, vip, 40), both);
    let (no_svcs, no_slices): (Vec<Service>, Vec<EndpointSlice>) = (vec![], vec![]);
    proxier.sync(&no_svcs, &no_slices).await.unwrap();
    let table = node.exec(&["nft", "list", "table", "ip", "bosun"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(!text.contains("default/web"), "{text}");
    assert!(tcp_get(&client.path, vip).is_err());
}
