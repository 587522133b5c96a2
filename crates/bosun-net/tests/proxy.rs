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

/// The pod network of `node` on `cidr`, its state under `data`.
async fn pod_network(node: &Netns, data: &std::path::Path, cidr: &str) -> PodNetwork {
    PodNetwork::new(
        NetConfig {
            data_dir: data.to_path_buf(),
            node_netns: Some(node.path.clone()),
            ..NetConfig::default()
        },
        cidr.parse().unwrap(),
    )
    .await
    .unwrap()
}

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
    let net = pod_network(&node, data.path(), "10.244.1.0/24").await;
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

    // Back, and the Service removed: its map elements go at once, its chains are flushed,
    // and deleted by the first sync a second later (upstream's stale chains).
    proxier
        .sync(&svcs, &[slice(&[(&a, true), (&b, true)])])
        .await
        .unwrap();
    assert_eq!(idents(&client, vip, 40), both);
    let (no_svcs, no_slices): (Vec<Service>, Vec<EndpointSlice>) = (vec![], vec![]);
    proxier.sync(&no_svcs, &no_slices).await.unwrap();
    let list = || {
        let table = node.exec(&["nft", "list", "table", "ip", "bosun"]);
        String::from_utf8_lossy(&table.stdout).into_owned()
    };
    let text = list();
    assert!(!text.contains("dnat to"), "{text}");
    assert!(!text.contains("10.96.0.20"), "{text}");
    assert!(tcp_get(&client.path, vip).is_err());
    tokio::time::sleep(bosun_net::proxy::STALE_CHAIN_DELAY).await;
    proxier.sync(&no_svcs, &no_slices).await.unwrap();
    let text = list();
    assert!(!text.contains("default/web"), "{text}");
    assert!(tcp_get(&client.path, vip).is_err());
}

/// Partial syncs under traffic: while one endpoint flips between ready and unready (the
/// other staying ready), connections to the NodePort from outside the node and to the
/// ClusterIP from a pod keep being opened; not one may be refused or time out, since a
/// ready endpoint exists at every moment and every ruleset change is one transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_syncs_never_refuse_while_an_endpoint_flips() {
    require_root_and_tools();
    let node = Netns::new("flnode");
    let outside = Netns::new("flout");
    node.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "ext0",
    ]);
    node.ip(&["link", "set", "ext0", "netns", &outside.name]);
    node.ip(&["addr", "add", "192.168.252.1/24", "dev", "eth0"]);
    node.ip(&["link", "set", "eth0", "up"]);
    outside.ip(&["addr", "add", "192.168.252.2/24", "dev", "ext0"]);
    outside.ip(&["link", "set", "ext0", "up"]);
    let (p1, p2, client) = (Netns::new("fl1"), Netns::new("fl2"), Netns::new("flcli"));
    let data = tempfile::tempdir().unwrap();
    let net = pod_network(&node, data.path(), "10.244.3.0/24").await;
    let a = net.setup("fl1", &p1.path).await.unwrap();
    let b = net.setup("fl2", &p2.path).await.unwrap();
    net.setup("flcli", &client.path).await.unwrap();
    echo_server(&p1.path, 8080, "ep1");
    echo_server(&p2.path, 8080, "ep2");
    let mut cfg = ProxyConfig::new("n");
    cfg.netns = Some(node.path.clone());
    let mut proxier = Proxier::new(cfg);
    let svcs = vec![service()];
    let both = [slice(&[(&a, true), (&b, true)])];
    let one = [slice(&[(&a, true), (&b, false)])];
    proxier.sync(&svcs, &both).await.unwrap();
    let np = SocketAddr::from((Ipv4Addr::new(192, 168, 252, 1), 30080));
    let vip = SocketAddr::from((Ipv4Addr::new(10, 96, 0, 20), 80));
    assert!(!idents(&outside, np, 5).is_empty());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = |ns: &Netns, addr: SocketAddr| {
        let (path, stop) = (ns.path.clone(), stop.clone());
        std::thread::spawn(move || {
            bosun_net::netns::enter(&path).expect("enter netns");
            let (mut ok, mut errors) = (0usize, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r =
                    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
                        .and_then(|mut s| {
                            use std::io::Read;
                            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
                            let mut out = String::new();
                            s.read_to_string(&mut out)?;
                            Ok(out)
                        });
                match r {
                    Ok(s) if s == "ep1" || s == "ep2" => ok += 1,
                    Ok(s) => errors.push(format!("answer {s:?}")),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (ok, errors)
        })
    };
    let h_np = hammer(&outside, np);
    let h_vip = hammer(&client, vip);
    for i in 0..40 {
        let slices = if i % 2 == 0 { &one } else { &both };
        proxier.sync(&svcs, slices).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for (what, h) in [
        ("NodePort from outside", h_np),
        ("ClusterIP from a pod", h_vip),
    ] {
        let (ok, errors) = h.join().unwrap();
        assert!(ok > 20, "{what}: only {ok} connections");
        assert!(
            errors.is_empty(),
            "{what}: {} of {} failed: {errors:?}",
            errors.len(),
            ok + errors.len()
        );
    }
    // Ends with only ep1 programmed.
    proxier.sync(&svcs, &one).await.unwrap();
    assert_eq!(idents(&outside, np, 20), ["ep1".to_string()].into());
}

/// A Service spreads over its endpoints with a cascade of rules up to
/// `CASCADE_MAX_ENDPOINTS` endpoints and with one `numgen` map above it: both reach every
/// endpoint (here one pod listening on many ports, one endpoint per port).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_is_reached_through_the_cascade_and_the_numgen_map() {
    require_root_and_tools();
    let node = Netns::new("pxspread");
    let (pod, client) = (Netns::new("spreadep"), Netns::new("spreadcl"));
    let data = tempfile::tempdir().unwrap();
    let net = pod_network(&node, data.path(), "10.244.3.0/24").await;
    let ep = net.setup("spreadep", &pod.path).await.unwrap();
    net.setup("spreadcl", &client.path).await.unwrap();
    let many = bosun_net::proxy::rules::CASCADE_MAX_ENDPOINTS + 1;
    for k in 0..many as u16 {
        echo_server(&pod.path, 9000 + k, &format!("p{}", 9000 + k));
    }
    // Service "few" (10.96.0.21): 3 endpoints; "many" (10.96.0.22): one more than the
    // cascade takes. One EndpointSlice per target port, all on the same pod.
    let svc = |name: &str, ip: &str| -> Service {
        serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": name},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }))
        .unwrap()
    };
    let slices = |name: &str, n: usize| -> Vec<EndpointSlice> {
        (0..n)
            .map(|k| {
                serde_json::from_value(json!({
                    "metadata": {"namespace": "default", "name": format!("{name}-{k}"),
                        "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4",
                    "ports": [{"name": "http", "port": 9000 + k, "protocol": "TCP"}],
                    "endpoints": [{"addresses": [ep.ip.to_string()], "conditions": {"ready": true}, "nodeName": "n"}]
                }))
                .unwrap()
            })
            .collect()
    };
    let svcs = vec![svc("few", "10.96.0.21"), svc("many", "10.96.0.22")];
    let mut eps = slices("few", 3);
    eps.extend(slices("many", many));
    let mut cfg = ProxyConfig::new("n");
    cfg.netns = Some(node.path.clone());
    Proxier::new(cfg).sync(&svcs, &eps).await.unwrap();
    let table = node.exec(&["nft", "list", "table", "ip", "bosun"]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.contains("numgen random mod 3 "), "{table}");
    assert!(
        table.contains(&format!("numgen random mod {many} vmap {{")),
        "{table}"
    );

    let want =
        |n: usize| -> BTreeSet<String> { (0..n).map(|k| format!("p{}", 9000 + k)).collect() };
    let few = SocketAddr::from((Ipv4Addr::new(10, 96, 0, 21), 80));
    // Missing one of 3 in 60 uniform picks: 3·(2/3)^60 ≈ 1e-10.
    assert_eq!(idents(&client, few, 60), want(3), "cascade");
    let all = SocketAddr::from((Ipv4Addr::new(10, 96, 0, 22), 80));
    // Missing one of 17 in 300 uniform picks: 17·(16/17)^300 ≈ 2e-7.
    assert_eq!(idents(&client, all, 300), want(many), "numgen map");
}
