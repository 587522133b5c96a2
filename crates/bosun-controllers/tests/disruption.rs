//! PodDisruptionBudgets against a real API server: the controller's status, and the
//! eviction API honouring it (429 once the budget is spent).

mod common;

use bosun_controllers::ControllerOptions;
use common::*;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, PostParams};
use serde_json::json;

async fn harness() -> anyhow::Result<Harness> {
    start_with(ControllerOptions {
        controllers: vec!["disruption".into(), "replicaset".into()],
        ..ControllerOptions::without_leader_election()
    })
    .await?
    .with_kubelet()
    .await
}

async fn wait_status(
    api: &Api<PodDisruptionBudget>,
    name: &str,
    f: impl Fn(&k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus) -> bool,
) -> anyhow::Result<PodDisruptionBudget> {
    wait_for(30, &format!("status of budget {name}"), || async {
        let p = api.get(name).await?;
        let ok = p.status.as_ref().is_some_and(&f)
            && p.status.as_ref().and_then(|s| s.observed_generation) == p.metadata.generation;
        Ok(ok.then_some(p))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_blocks_eviction_once_spent() -> anyhow::Result<()> {
    let h = harness().await?;
    // kube-rs retries 429s by default; see the refusal itself.
    let kc = kube::config::Kubeconfig::read_from(h.server.kubeconfig())?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    cfg.default_retry = false;
    let pods: Api<Pod> = Api::namespaced(kube::Client::try_from(cfg)?, "default");
    for i in 0..3 {
        let p: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("db-{i}"), "labels": {"app": "db"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }))?;
        pods.create(&PostParams::default(), &p).await?;
    }
    apply(
        &h.server,
        r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: db
spec:
  minAvailable: 2
  selector:
    matchLabels: {app: db}
"#,
    );
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(h.client.clone(), "default");
    let pdb = wait_status(&pdbs, "db", |s| s.current_healthy == 3).await?;
    let s = pdb.status.unwrap_or_default();
    assert_eq!(
        (s.desired_healthy, s.disruptions_allowed, s.expected_pods),
        (2, 1, 3)
    );
    let cond = s
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "DisruptionAllowed")
        .map(|c| (c.status, c.reason));
    assert_eq!(cond, Some(("True".into(), "SufficientPods".into())));

    // One eviction is allowed and spends the budget.
    pods.evict("db-0", &EvictParams::default()).await?;
    let err = pods.evict("db-1", &EvictParams::default()).await;
    match err {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 429);
            assert_eq!(
                s.message,
                "Cannot evict pod as it would violate the pod's disruption budget."
            );
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert!(pods.get_opt("db-1").await?.is_some());
    let pdb = wait_status(&pdbs, "db", |s| s.current_healthy == 2).await?;
    let s = pdb.status.unwrap_or_default();
    assert_eq!(s.disruptions_allowed, 0);
    let cond = s
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "DisruptionAllowed")
        .map(|c| (c.status, c.reason));
    assert_eq!(cond, Some(("False".into(), "InsufficientPods".into())));

    // The real kubectl's drain sees the same refusal.
    let out = h.server.kubectl(&[
        "drain",
        "node-1",
        "--pod-selector=app=db",
        "--timeout=3s",
        "--force",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{stderr}"
    );

    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_unavailable_uses_the_controller_scale() -> anyhow::Result<()> {
    let h = harness().await?;
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
      containers:
      - name: c
        image: busybox
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  maxUnavailable: 25%
  selector:
    matchLabels: {app: web}
"#,
    );
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(h.client.clone(), "default");
    let pdb = wait_status(&pdbs, "web", |s| s.current_healthy == 4).await?;
    let s = pdb.status.unwrap_or_default();
    assert_eq!(
        (s.expected_pods, s.desired_healthy, s.disruptions_allowed),
        (4, 3, 1)
    );
    // Evicted pods are replaced by the ReplicaSet, and the budget recovers.
    let pods = active_pods(&h.client, "default", "app=web").await?;
    let api: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let name = pods[0].metadata.name.clone().unwrap_or_default();
    api.evict(&name, &EvictParams::default()).await?;
    wait_status(&pdbs, "web", |s| {
        s.current_healthy == 4 && s.disruptions_allowed == 1
    })
    .await?;
    Ok(())
}
