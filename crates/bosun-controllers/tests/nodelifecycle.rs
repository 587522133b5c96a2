//! Node lifecycle against a real API server, the scheduler and hollow nodes: a node that
//! stops heartbeating is marked Unknown and tainted, its ReplicaSet's pods are evicted
//! after their tolerationSeconds and rescheduled on the live node; pods of a deleted node
//! are garbage collected; every pod gets upstream's default 300 s tolerations.

mod common;

use std::time::Duration;

use bosun_controllers::nodelifecycle::{NodeLifecycleConfig, TAINT_UNREACHABLE};
use bosun_controllers::ControllerOptions;
use bosun_hollow::HollowOptions;
use common::*;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

fn fast_lifecycle() -> ControllerOptions {
    let mut o = ControllerOptions::without_leader_election();
    o.node_lifecycle = NodeLifecycleConfig {
        node_monitor_period: Duration::from_millis(500),
        node_monitor_grace_period: Duration::from_secs(3),
        node_startup_grace_period: Duration::from_secs(3),
        pod_gc_period: Duration::from_millis(500),
        pod_gc_quarantine: Duration::from_secs(1),
    };
    o
}

async fn hollow(h: &Harness, nodes: usize) -> anyhow::Result<bosun_hollow::HollowHandle> {
    Ok(bosun_hollow::run(
        h.client.clone(),
        HollowOptions {
            nodes,
            heartbeat: Duration::from_millis(500),
            status_interval: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await?)
}

fn scheduler(h: &Harness) -> anyhow::Result<bosun_scheduler::SchedulerHandle> {
    Ok(bosun_scheduler::start(
        h.client.clone(),
        bosun_scheduler::SchedulerOptions {
            pod_initial_backoff: Duration::from_millis(100),
            pod_max_backoff: Duration::from_millis(500),
            ..Default::default()
        },
    )?)
}

fn node_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_node_is_tainted_and_its_pods_rescheduled() -> anyhow::Result<()> {
    let h = start_with(fast_lifecycle()).await?;
    let hollow = hollow(&h, 2).await?;
    let _s = scheduler(&h)?;
    // Tolerate unreachability for 2 s only (the default would be 300 s).
    apply(
        &h.server,
        r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 4
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      tolerations:
      - key: node.kubernetes.io/unreachable
        operator: Exists
        effect: NoExecute
        tolerationSeconds: 2
      containers:
      - name: c
        image: busybox
"#,
    );
    let pods = wait_for(60, "4 running pods", || async {
        let pods = active_pods(&h.client, "default", "app=web").await?;
        let running = pods
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        Ok((running == 4).then_some(pods))
    })
    .await?;
    // Kill a node that runs at least one pod.
    let victim = node_of(&pods[0]);
    let survivor = hollow
        .node_names()
        .into_iter()
        .find(|n| *n != victim)
        .unwrap_or_default();
    let on_victim = pods.iter().filter(|p| node_of(p) == victim).count();
    assert!(on_victim > 0);
    hollow.kill_node(&victim)?;

    let nodes: Api<Node> = Api::all(h.client.clone());
    let node = wait_for(30, "node Unknown and tainted", || async {
        let n = nodes.get(&victim).await?;
        let ready = n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready").cloned());
        let tainted = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|ts| {
                ts.iter()
                    .any(|t| t.key == TAINT_UNREACHABLE && t.effect == "NoExecute")
            });
        Ok((ready.is_some_and(|c| c.status == "Unknown") && tainted).then_some(n))
    })
    .await?;
    let ready = node
        .status
        .and_then(|s| s.conditions)
        .and_then(|cs| cs.into_iter().find(|c| c.type_ == "Ready"))
        .unwrap_or_default();
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );

    // All four pods end up on the survivor; the victim's stay Terminating (nobody runs
    // them to completion), as upstream.
    wait_for(60, "4 pods on the surviving node", || async {
        let pods = active_pods(&h.client, "default", "app=web").await?;
        let ok = pods.len() == 4 && pods.iter().all(|p| node_of(p) == survivor);
        Ok(ok.then_some(()))
    })
    .await?;
    let api: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let terminating: Vec<Pod> = api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .collect();
    assert_eq!(terminating.len(), on_victim);
    for p in &terminating {
        let conds = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        assert!(
            conds.iter().any(|c| c.type_ == "DisruptionTarget"
                && c.reason.as_deref() == Some("DeletionByTaintManager")),
            "{conds:?}"
        );
        assert!(
            conds
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "False"),
            "pods of an unreachable node are not ready: {conds:?}"
        );
    }

    // Reviving the node removes the taints; deleting it garbage-collects its pods.
    hollow.revive_node(&victim)?;
    wait_for(30, "taints removed", || async {
        let n = nodes.get(&victim).await?;
        let clean = n
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .iter()
            .all(|t| !t.key.starts_with("node.kubernetes.io/"));
        Ok(clean.then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_a_deleted_node_are_removed() -> anyhow::Result<()> {
    let h = start_with(fast_lifecycle()).await?;
    let hollow = hollow(&h, 1).await?;
    let name = hollow.node_names().remove(0);
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bound"},
        "spec": {"nodeName": name, "containers": [{"name": "c", "image": "busybox"}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    wait_for(30, "pod running", || async {
        let p = pods.get("bound").await?;
        Ok((p.status.and_then(|s| s.phase).as_deref() == Some("Running")).then_some(()))
    })
    .await?;
    hollow.remove_node(&name)?;
    let nodes: Api<Node> = Api::all(h.client.clone());
    nodes.delete(&name, &DeleteParams::default()).await?;
    wait_for(30, "orphaned pod deleted", || async {
        Ok(pods.get_opt("bound").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_default_toleration_seconds() -> anyhow::Result<()> {
    let h = start_with(ControllerOptions {
        controllers: vec!["node-lifecycle".into()],
        ..ControllerOptions::without_leader_election()
    })
    .await?;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}],
        },
    }))?;
    let p = pods.create(&PostParams::default(), &pod).await?;
    let tols = p.spec.and_then(|s| s.tolerations).unwrap_or_default();
    assert_eq!(tols.len(), 2, "{tols:?}");
    let nr = tols
        .iter()
        .find(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready"));
    assert_eq!(
        nr.and_then(|t| t.toleration_seconds),
        Some(5),
        "kept as given"
    );
    let un = tols
        .iter()
        .find(|t| t.key.as_deref() == Some(TAINT_UNREACHABLE))
        .cloned()
        .unwrap_or_default();
    assert_eq!(un.operator.as_deref(), Some("Exists"));
    assert_eq!(un.effect.as_deref(), Some("NoExecute"));
    assert_eq!(un.toleration_seconds, Some(300));
    Ok(())
}
