//! HorizontalPodAutoscaler against a real API server: scaling a Deployment up and back
//! down on a synthetic metric source (short sync and stabilization windows), and the
//! conditions when the server has no metrics API.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bosun_api::quantity::Quantity;
use bosun_controllers::hpa::{HpaConfig, MetricsSource, PodUsage};
use bosun_controllers::ControllerOptions;
use common::*;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

/// Every pod the selector matches uses `cpu_millis` (the client is set once the server
/// runs).
struct Synthetic {
    client: parking_lot::Mutex<Option<Client>>,
    cpu_millis: AtomicI64,
}

impl MetricsSource for Synthetic {
    fn pod_usage<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PodUsage>, String>> {
        Box::pin(async move {
            let client = self.client.lock().clone().ok_or("no client yet")?;
            let api: Api<Pod> = Api::namespaced(client, namespace);
            let pods = api
                .list(&ListParams::default().labels(selector))
                .await
                .map_err(|e| e.to_string())?;
            let cpu = format!("{}m", self.cpu_millis.load(Ordering::SeqCst));
            Ok(pods
                .items
                .iter()
                .map(|p| PodUsage {
                    name: p.name_any(),
                    usage: [("cpu".to_string(), Quantity::parse(&cpu).unwrap_or_default())].into(),
                    ..Default::default()
                })
                .collect())
        })
    }
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: busybox
        resources:
          requests: {cpu: 100m}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
"#;

fn opts(metrics: Option<Arc<dyn MetricsSource>>) -> ControllerOptions {
    let mut o = ControllerOptions {
        controllers: vec![
            "deployment".into(),
            "replicaset".into(),
            "horizontal-pod-autoscaler".into(),
        ],
        ..ControllerOptions::without_leader_election()
    };
    o.hpa = HpaConfig {
        sync_period: Duration::from_millis(300),
        downscale_stabilization: Duration::from_secs(2),
        metrics,
        ..Default::default()
    };
    o
}

async fn deployment_replicas(client: &Client) -> anyhow::Result<i32> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    Ok(api
        .get("web")
        .await?
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_up_and_back_down_on_cpu() -> anyhow::Result<()> {
    let source = Arc::new(Synthetic {
        client: parking_lot::Mutex::new(None),
        cpu_millis: AtomicI64::new(150),
    });
    let h = start_with(opts(Some(source.clone())))
        .await?
        .with_kubelet()
        .await?;
    *source.client.lock() = Some(h.client.clone());
    apply(&h.server, WEB);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(h.client.clone(), "default");
    // 150m used of 100m requested against a 50 % target: three times the replicas.
    wait_for(60, "scaled to 3", || async {
        Ok((deployment_replicas(&h.client).await? == 3).then_some(()))
    })
    .await?;
    let hpa = wait_for(30, "hpa status", || async {
        let hpa = hpas.get("web").await?;
        let s = hpa.status.clone().unwrap_or_default();
        Ok((s.desired_replicas == 3 && s.last_scale_time.is_some()).then_some(hpa))
    })
    .await?;
    let s = hpa.status.unwrap_or_default();
    let util = s
        .current_metrics
        .unwrap_or_default()
        .first()
        .and_then(|m| m.resource.as_ref())
        .and_then(|r| r.current.average_utilization);
    assert_eq!(util, Some(150));
    let active = s
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "ScalingActive")
        .map(|c| (c.status, c.reason));
    assert_eq!(
        active,
        Some(("True".into(), Some("ValidMetricFound".into())))
    );
    let events: Api<Event> = Api::namespaced(h.client.clone(), "default");
    wait_for(30, "SuccessfulRescale event", || async {
        let found = events.list(&ListParams::default()).await?.items.into_iter().any(|e| {
            e.reason.as_deref() == Some("SuccessfulRescale")
                && e.message.as_deref()
                    == Some("New size: 3; reason: cpu resource utilization (percentage of request) above target")
        });
        Ok(found.then_some(()))
    })
    .await?;

    // Usage drops to 10 % of the request: after the 2 s stabilization window the HPA
    // scales back to the minimum.
    source.cpu_millis.store(10, Ordering::SeqCst);
    wait_for(60, "scaled back to 1", || async {
        Ok((deployment_replicas(&h.client).await? == 1).then_some(()))
    })
    .await?;
    wait_pods(&h.client, "default", "app=web", 1).await?;
    Ok(())
}

/// The server serves metrics.k8s.io, but a hollow kubelet reports no usage: the HPA says
/// so with upstream's message and leaves the replicas alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_without_metrics_are_reported() -> anyhow::Result<()> {
    let h = start_with(opts(None)).await?.with_kubelet().await?;
    apply(&h.server, WEB);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(h.client.clone(), "default");
    let cond = wait_for(60, "ScalingActive False", || async {
        let hpa = hpas.get("web").await?;
        Ok(hpa
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "ScalingActive" && c.status == "False"))
    })
    .await?;
    assert_eq!(cond.reason.as_deref(), Some("FailedGetResourceMetric"));
    assert_eq!(
        cond.message.as_deref(),
        Some("the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API")
    );
    assert_eq!(deployment_replicas(&h.client).await?, 1);
    Ok(())
}

/// An HPA whose target does not exist says so as upstream does: the server's message,
/// not the client's error chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_target_is_reported() -> anyhow::Result<()> {
    let h = start_with(opts(None)).await?;
    apply(
        &h.server,
        r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: orphan
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: nope}
  maxReplicas: 3
"#,
    );
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(h.client.clone(), "default");
    let cond = wait_for(60, "AbleToScale False", || async {
        let hpa = hpas.get("orphan").await?;
        Ok(hpa
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "AbleToScale" && c.status == "False"))
    })
    .await?;
    assert_eq!(cond.reason.as_deref(), Some("FailedGetScale"));
    assert_eq!(
        cond.message.as_deref(),
        Some("the HPA controller was unable to get the target's current scale: deployments.apps \"nope\" not found")
    );
    let events: Api<Event> = Api::namespaced(h.client.clone(), "default");
    wait_for(30, "FailedGetScale event", || async {
        let found = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .any(|e| {
                e.reason.as_deref() == Some("FailedGetScale")
                    && e.message.as_deref() == Some("deployments.apps \"nope\" not found")
            });
        Ok(found.then_some(()))
    })
    .await?;
    Ok(())
}
