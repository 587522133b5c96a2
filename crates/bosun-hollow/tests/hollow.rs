//! Hollow nodes against a real in-process API server: registration, leases, pods driven
//! to Running, graceful deletion finished, a killed node stops heartbeating.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use bosun_hollow::{HollowOptions, NodeTemplate};
use bosun_testkit::TestServer;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    for _ in 0..300 {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timed out waiting for {what}")
}

fn bound_pod(name: &str, node: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap()
}

async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_and_pods_run_and_terminate() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.client().await?;
    let opts = HollowOptions {
        nodes: 3,
        heartbeat: Duration::from_millis(300),
        status_interval: Duration::from_millis(300),
        labels: [("pool".to_string(), "hollow".to_string())].into(),
        control_addr: Some("127.0.0.1:0".parse()?),
        ..Default::default()
    };
    let hollow = bosun_hollow::run(client.clone(), opts).await?;
    assert_eq!(
        hollow.node_names(),
        vec!["hollow-node-0", "hollow-node-1", "hollow-node-2"]
    );

    let nodes: Api<Node> = Api::all(client.clone());
    let n0 = nodes.get("hollow-node-0").await?;
    let labels = n0.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["kubernetes.io/hostname"], "hollow-node-0");
    assert_eq!(labels["pool"], "hollow");
    let st = n0.status.clone().context("node status")?;
    assert_eq!(st.capacity.context("capacity")?["cpu"].0, "32");
    let ready = st
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .context("Ready condition")?;
    assert_eq!(ready.status, "True");

    // Leases exist and are renewed.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let first = leases.get("hollow-node-1").await?;
    let t0 = first.spec.as_ref().and_then(|s| s.renew_time.clone());
    wait_for("a lease renewal", || {
        let leases = leases.clone();
        let t0 = t0.clone();
        async move {
            let l = leases.get("hollow-node-1").await?;
            Ok((l.spec.and_then(|s| s.renew_time) != t0).then_some(()))
        }
    })
    .await?;

    // A pod bound to a hollow node becomes Running and Ready with addresses.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &bound_pod("p1", "hollow-node-1"))
        .await?;
    let running = wait_for("p1 running", || {
        let pods = pods.clone();
        async move {
            let p = pods.get("p1").await?;
            let st = p.status.clone().unwrap_or_default();
            Ok((st.phase.as_deref() == Some("Running")).then_some(p))
        }
    })
    .await?;
    let st = running.status.context("status")?;
    let ip = st.pod_ip.context("podIP")?;
    let cidr = nodes
        .get("hollow-node-1")
        .await?
        .spec
        .and_then(|s| s.pod_cidr)
        .context("podCIDR")?;
    let prefix = cidr.rsplit_once('.').context("cidr")?.0;
    assert!(ip.starts_with(prefix), "{ip} not in {cidr}");
    assert!(st.host_ip.is_some());
    assert!(st.start_time.is_some());
    assert!(st
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True"));
    assert!(st.container_statuses.unwrap_or_default()[0].ready);

    // Graceful deletion completes: the pod disappears.
    pods.delete("p1", &DeleteParams::default()).await?;
    wait_for("p1 deleted", || {
        let pods = pods.clone();
        async move { Ok(pods.get_opt("p1").await?.is_none().then_some(())) }
    })
    .await?;

    // Killing a node over HTTP stops its lease; pods bound to it stay Pending.
    let ctl = hollow.control_addr().context("control addr")?;
    let out = http(ctl, "POST", "/nodes/hollow-node-2/kill").await?;
    assert!(out.starts_with("HTTP/1.1 204"), "{out}");
    assert_eq!(hollow.is_alive("hollow-node-2"), Some(false));
    let out = http(ctl, "POST", "/nodes/nope/kill").await?;
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    // Let a renewal already in flight land, then watch that none follows.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = leases
        .get("hollow-node-2")
        .await?
        .spec
        .and_then(|s| s.renew_time);
    pods.create(&PostParams::default(), &bound_pod("p2", "hollow-node-2"))
        .await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = leases
        .get("hollow-node-2")
        .await?
        .spec
        .and_then(|s| s.renew_time);
    assert_eq!(before, after, "a killed node must not renew its lease");
    assert_ne!(
        pods.get("p2")
            .await?
            .status
            .and_then(|s| s.phase)
            .as_deref(),
        Some("Running")
    );

    // Revived, it picks the pod up.
    hollow.revive_node("hollow-node-2")?;
    wait_for("p2 running", || {
        let pods = pods.clone();
        async move {
            let p = pods.get("p2").await?;
            Ok((p.status.and_then(|s| s.phase).as_deref() == Some("Running")).then_some(()))
        }
    })
    .await?;

    // A joining node.
    let t = NodeTemplate {
        cpu: "4".into(),
        ..Default::default()
    };
    hollow.add_node("late", t).await?;
    let late = nodes.get("late").await?;
    assert_eq!(
        late.status.and_then(|s| s.capacity).context("cap")?["cpu"].0,
        "4"
    );
    let stats = hollow.stats();
    assert_eq!(stats.nodes, 4);
    assert!(stats.pods_started >= 2 && stats.pods_deleted >= 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_pods_finish_when_annotated() -> Result<()> {
    let server = TestServer::start().await?;
    let client = server.client().await?;
    let hollow = bosun_hollow::run(client.clone(), HollowOptions::default()).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "job-pod", "annotations": {"hollow.bosun.dev/succeed-after": "0.2"}},
        "spec": {"nodeName": "hollow-node-0", "restartPolicy": "Never",
                 "containers": [{"name": "c", "image": "busybox"}]},
    }))?;
    pods.create(&PostParams::default(), &p).await?;
    wait_for("job pod succeeded", || {
        let pods = pods.clone();
        async move {
            let p = pods.get("job-pod").await?;
            Ok((p.status.and_then(|s| s.phase).as_deref() == Some("Succeeded")).then_some(()))
        }
    })
    .await?;
    assert!(hollow.stats().pods_finished >= 1);
    Ok(())
}
