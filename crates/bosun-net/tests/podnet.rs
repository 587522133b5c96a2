//! Pod network in namespaces: pods on one node, pods across two nodes via host-gw routes,
//! IPAM across restarts and teardown. Needs root; fails loudly otherwise.
mod common;

use std::net::SocketAddr;

use bosun_net::hostipam::HostIpam;
use bosun_net::podnet::veth_names;
use bosun_net::{NetConfig, PodNetwork};
use common::*;

fn cfg(node: &Netns, data: &std::path::Path) -> NetConfig {
    NetConfig {
        data_dir: data.to_path_buf(),
        node_netns: Some(node.path.clone()),
        ..NetConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_one_node_talk_and_ipam_survives_restart() {
    require_root_and_tools();
    let node = Netns::new("node");
    let (pa, pb) = (Netns::new("pod-a"), Netns::new("pod-b"));
    let data = tempfile::tempdir().unwrap();
    let cidr = "10.244.1.0/24".parse().unwrap();
    let net = PodNetwork::new(cfg(&node, data.path()), cidr)
        .await
        .unwrap();
    let a = net.setup("uid-a", &pa.path).await.unwrap();
    let b = net.setup("uid-b", &pb.path).await.unwrap();
    assert_ne!(a.ip, b.ip);
    assert_eq!(
        a.gateway,
        "10.244.1.1".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert!(cidr.contains(&a.ip) && cidr.contains(&b.ip));
    // eth0 in the pod with the address and MTU; default route via the bridge.
    let link = pa.ip(&["-o", "addr", "show", "dev", "eth0"]);
    assert!(link.contains(&format!("{}/24", a.ip)), "{link}");
    let routes = pa.ip(&["route", "show", "default"]);
    assert!(routes.contains("via 10.244.1.1"), "{routes}");
    assert!(pa.ip(&["link", "show", "eth0"]).contains("mtu 1500"));
    // The gateway's MAC is fixed (not the lowest of its ports', which new pods could change).
    let br = node.ip(&["link", "show", "bosun0"]);
    assert!(br.contains("link/ether 0a:58:0a:f4:01:01"), "{br}");

    echo_server(&pa.path, 8080, "a");
    assert_eq!(
        tcp_get(&pb.path, SocketAddr::from((a.ip, 8080))).unwrap(),
        "a"
    );
    // The node reaches its pods too.
    assert_eq!(
        tcp_get(&node.path, SocketAddr::from((a.ip, 8080))).unwrap(),
        "a"
    );

    // A restarted agent: set-up is idempotent, addresses are kept, never handed out twice.
    let net2 = PodNetwork::new(cfg(&node, data.path()), cidr)
        .await
        .unwrap();
    assert_eq!(net2.setup("uid-a", &pa.path).await.unwrap().ip, a.ip);
    assert_eq!(
        tcp_get(&pb.path, SocketAddr::from((a.ip, 8080))).unwrap(),
        "a"
    );
    let pc = Netns::new("pod-c");
    let c = net2.setup("uid-c", &pc.path).await.unwrap();
    assert!(c.ip != a.ip && c.ip != b.ip);

    // Teardown removes the veth and releases the address.
    net2.teardown("uid-b").await.unwrap();
    net2.teardown("uid-b").await.unwrap();
    let (host_b, _) = veth_names("uid-b");
    assert!(node.exec(&["ip", "link", "show", &host_b]).status.code() != Some(0));
    let ipam = HostIpam::new(&data.path().join("net/ipam"), cidr).unwrap();
    let owners: Vec<String> = ipam.list().unwrap().into_iter().map(|(_, o)| o).collect();
    assert_eq!(owners.len(), 2);
    assert!(!owners.contains(&"uid-b".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_across_nodes_via_host_gw_routes() {
    require_root_and_tools();
    let (n1, n2) = (Netns::new("n1"), Netns::new("n2"));
    let (p1, p2) = (Netns::new("p1"), Netns::new("p2"));
    // The "node network": one veth between the two node namespaces.
    n1.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &n2.name,
    ]);
    n1.ip(&["addr", "add", "192.168.250.1/24", "dev", "eth0"]);
    n2.ip(&["addr", "add", "192.168.250.2/24", "dev", "eth0"]);
    n1.ip(&["link", "set", "eth0", "up"]);
    n2.ip(&["link", "set", "eth0", "up"]);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let net1 = PodNetwork::new(cfg(&n1, d1.path()), "10.244.1.0/24".parse().unwrap())
        .await
        .unwrap();
    let net2 = PodNetwork::new(cfg(&n2, d2.path()), "10.244.2.0/24".parse().unwrap())
        .await
        .unwrap();
    let nodes = vec![
        node("n1", "10.244.1.0/24", "192.168.250.1"),
        node("n2", "10.244.2.0/24", "192.168.250.2"),
    ];
    net1.sync_routes(&nodes).await.unwrap();
    net2.sync_routes(&nodes).await.unwrap();
    net1.sync_routes(&nodes).await.unwrap(); // idempotent
    let r = n1.ip(&["route", "show", "10.244.2.0/24"]);
    assert!(r.contains("via 192.168.250.2"), "{r}");

    let a = net1.setup("uid-1", &p1.path).await.unwrap();
    let b = net2.setup("uid-2", &p2.path).await.unwrap();
    echo_server(&p1.path, 9000, "on-n1");
    echo_server(&p2.path, 9000, "on-n2");
    assert_eq!(
        tcp_get(&p1.path, SocketAddr::from((b.ip, 9000))).unwrap(),
        "on-n2"
    );
    assert_eq!(
        tcp_get(&p2.path, SocketAddr::from((a.ip, 9000))).unwrap(),
        "on-n1"
    );
    // A node sees the other node's pods directly.
    assert_eq!(
        tcp_get(&n1.path, SocketAddr::from((b.ip, 9000))).unwrap(),
        "on-n2"
    );

    // A node that leaves takes its route with it.
    net1.sync_routes(&nodes[..1]).await.unwrap();
    assert_eq!(n1.ip(&["route", "show", "10.244.2.0/24"]).trim(), "");
    // The service CIDR is unreachable for forwarded traffic.
    let r = n1.ip(&["route", "show", "10.96.0.0/12"]);
    assert!(r.contains("unreachable"), "{r}");
}
