//! Node IPAM with two `bosun server` processes on one etcd: only the holder of the
//! `kube-system/bosun-node-ipam` Lease allocates, so no two Nodes get the same podCIDR, and
//! the other server takes over when the holder dies.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bosun_store_etcd::local::LocalEtcd;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};

struct Server {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(dir: &Path, etcd: &str) -> Server {
        std::fs::create_dir_all(dir).expect("server dir");
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_bosun"))
            .args(["server", "--data-dir"])
            .arg(dir.join("data"))
            .args([
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                "0",
                "--datastore-endpoint",
                etcd,
                "--controllers=",
                "--disable-scheduler",
            ])
            .env("BOSUN_LOG", "info")
            .stdout(Stdio::from(out.try_clone().expect("log file")))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("spawn bosun server");
        let s = Server {
            child,
            dir: dir.to_path_buf(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&s.log)
            .unwrap_or_default()
            .contains("bosun API server listening on ")
        {
            assert!(
                Instant::now() < deadline,
                "server did not start:\n{}",
                s.tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s
    }

    fn tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        s.lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn client(&self) -> kube::Client {
        bosun_testkit::client_for(&self.dir.join("data/kubeconfig.yaml"))
            .await
            .expect("client")
    }
}

fn node(name: &str) -> Node {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("node")
}

/// Waits until every Node in `names` has a podCIDR; returns name → CIDR.
async fn cidrs(nodes: &Api<Node>, names: &[String], what: &str) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut got = Vec::new();
        for n in names {
            if let Some(c) = nodes.get(n).await.ok().and_then(|n| n.spec?.pod_cidr) {
                got.push((n.clone(), c));
            }
        }
        if got.len() == names.len() {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {} of {} Nodes got a podCIDR",
            got.len(),
            names.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn assert_distinct(all: &[(String, String)]) {
    let unique: BTreeSet<&String> = all.iter().map(|(_, c)| c).collect();
    assert_eq!(unique.len(), all.len(), "a podCIDR given twice: {all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_one_allocator() {
    let etcd = LocalEtcd::start()
        .await
        .expect("etcd starts (run scripts/install-etcd.sh if it is missing)");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut servers = vec![
        Server::start(&tmp.path().join("a"), etcd.endpoint()).await,
        Server::start(&tmp.path().join("b"), etcd.endpoint()).await,
    ];
    let clients = [servers[0].client().await, servers[1].client().await];

    // 40 Nodes created at once, half through each server.
    let names: Vec<String> = (0..40).map(|i| format!("node-{i}")).collect();
    let creates = names.iter().enumerate().map(|(i, n)| {
        let api: Api<Node> = Api::all(clients[i % 2].clone());
        let n = node(n);
        async move { api.create(&PostParams::default(), &n).await }
    });
    for r in futures::future::join_all(creates).await {
        r.expect("create node");
    }
    let nodes: Api<Node> = Api::all(clients[0].clone());
    let mut all = cidrs(&nodes, &names, "both servers up").await;
    assert_distinct(&all);

    // One holder, one of the two servers.
    let lease = Api::<Lease>::namespaced(clients[0].clone(), "kube-system")
        .get("bosun-node-ipam")
        .await
        .expect("the node IPAM lease");
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .expect("a holder");
    let pids: Vec<String> = servers
        .iter()
        .map(|s| format!("_{}", s.child.id()))
        .collect();
    let leader = pids
        .iter()
        .position(|p| holder.ends_with(p.as_str()))
        .unwrap_or_else(|| panic!("holder {holder} is neither server {pids:?}"));

    // The leader dies (no release): the other takes the lease once it expires and
    // allocates for new Nodes, without reusing a taken CIDR.
    drop(servers.remove(leader));
    let survivor: Api<Node> = Api::all(clients[1 - leader].clone());
    let more: Vec<String> = (40..45).map(|i| format!("node-{i}")).collect();
    for n in &more {
        survivor
            .create(&PostParams::default(), &node(n))
            .await
            .expect("create node through the survivor");
    }
    all.extend(cidrs(&survivor, &more, "after the leader died").await);
    assert_distinct(&all);
    drop(servers);
}
