//! ResourceQuota and LimitRange against a real API server: the quota controller's usage,
//! creates over quota refused with 403 and upstream's message, "must specify" for pods
//! without the tracked requests, LimitRange defaults and bounds.

mod common;

use bosun_controllers::ControllerOptions;
use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

async fn harness() -> anyhow::Result<Harness> {
    start_with(ControllerOptions {
        controllers: vec!["resourcequota".into()],
        ..ControllerOptions::without_leader_election()
    })
    .await
}

fn pod(name: &str, resources: serde_json::Value) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox", "resources": resources}]},
    }))?)
}

async fn wait_used(
    api: &Api<ResourceQuota>,
    name: &str,
    resource: &str,
    want: &str,
) -> anyhow::Result<()> {
    wait_for(30, &format!("{name} used {resource}={want}"), || async {
        let q = api.get(name).await?;
        let used = q
            .status
            .and_then(|s| s.used)
            .and_then(|u| u.get(resource).cloned())
            .map(|q| q.0);
        Ok((used.as_deref() == Some(want)).then_some(()))
    })
    .await
}

fn forbidden(r: Result<impl std::fmt::Debug, kube::Error>) -> String {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 && s.reason == "Forbidden" => s.message,
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_over_quota_are_refused() -> anyhow::Result<()> {
    let h = harness().await?;
    apply(
        &h.server,
        r#"
apiVersion: v1
kind: ResourceQuota
metadata:
  name: compute
spec:
  hard:
    pods: "2"
    requests.cpu: "1"
    limits.memory: 1Gi
    configmaps: "3"
    count/deployments.apps: "1"
"#,
    );
    let quotas: Api<ResourceQuota> = Api::namespaced(h.client.clone(), "default");
    wait_used(&quotas, "compute", "pods", "0").await?;
    // The namespace's kube-root-ca.crt, if any, counts.
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let small = json!({"requests": {"cpu": "200m"}, "limits": {"memory": "128Mi"}});
    pods.create(&PostParams::default(), &pod("a", small.clone())?)
        .await?;
    pods.create(&PostParams::default(), &pod("b", small.clone())?)
        .await?;
    let msg = forbidden(
        pods.create(&PostParams::default(), &pod("c", small.clone())?)
            .await,
    );
    assert_eq!(
        msg,
        "pods \"c\" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"
    );
    wait_used(&quotas, "compute", "pods", "2").await?;
    wait_used(&quotas, "compute", "requests.cpu", "400m").await?;
    wait_used(&quotas, "compute", "limits.memory", "256Mi").await?;

    // Deleting a pod gives its share back.
    pods.delete("a", &DeleteParams::default().grace_period(0))
        .await?;
    wait_used(&quotas, "compute", "pods", "1").await?;
    let msg = forbidden(
        pods.create(
            &PostParams::default(),
            &pod(
                "big",
                json!({"requests": {"cpu": "900m"}, "limits": {"memory": "128Mi"}}),
            )?,
        )
        .await,
    );
    assert_eq!(msg, "pods \"big\" is forbidden: exceeded quota: compute, requested: requests.cpu=900m, used: requests.cpu=200m, limited: requests.cpu=1");

    // A pod without the tracked requests and limits.
    let msg = forbidden(
        pods.create(&PostParams::default(), &pod("bare", json!({}))?)
            .await,
    );
    assert_eq!(
        msg,
        "pods \"bare\" is forbidden: failed quota: compute: must specify limits.memory for: app; requests.cpu for: app"
    );

    // Object counts, through kubectl too.
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let used_before = quotas
        .get("compute")
        .await?
        .status
        .and_then(|s| s.used)
        .and_then(|u| u.get("configmaps").cloned())
        .map(|q| q.0)
        .unwrap_or_default();
    let room: usize = 3 - used_before.parse::<usize>().unwrap_or(0);
    for i in 0..room {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}}))?;
        cms.create(&PostParams::default(), &cm).await?;
    }
    let err = h
        .server
        .kubectl_err(&["create", "configmap", "one-too-many"]);
    assert!(
        err.contains("configmaps \"one-too-many\" is forbidden: exceeded quota: compute, requested: configmaps=1, used: configmaps=3, limited: configmaps=3"),
        "{err}"
    );
    h.server
        .kubectl_ok(&["create", "deployment", "d1", "--image=busybox"]);
    let err = h
        .server
        .kubectl_err(&["create", "deployment", "d2", "--image=busybox"]);
    assert!(
        err.contains("exceeded quota: compute, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1"),
        "{err}"
    );
    wait_used(&quotas, "compute", "count/deployments.apps", "1").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_range_defaults_and_bounds() -> anyhow::Result<()> {
    let h = harness().await?;
    apply(
        &h.server,
        r#"
apiVersion: v1
kind: LimitRange
metadata:
  name: limits
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 100m}
    max: {cpu: "1"}
    min: {cpu: 50m}
    maxLimitRequestRatio: {cpu: "5"}
"#,
    );
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let p = pods
        .create(&PostParams::default(), &pod("defaulted", json!({}))?)
        .await?;
    let res = p
        .spec
        .as_ref()
        .and_then(|s| s.containers[0].resources.clone())
        .unwrap_or_default();
    let get = |l: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               k: &str| { l.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone()) };
    assert_eq!(get(&res.limits, "cpu").as_deref(), Some("500m"));
    assert_eq!(get(&res.limits, "memory").as_deref(), Some("256Mi"));
    assert_eq!(get(&res.requests, "cpu").as_deref(), Some("100m"));
    // Memory has no defaultRequest: the request follows the limit, as upstream's
    // LimitRange defaulting makes defaultRequest default to default.
    assert_eq!(get(&res.requests, "memory").as_deref(), Some("256Mi"));
    assert_eq!(
        p.metadata
            .annotations
            .unwrap_or_default()
            .get("kubernetes.io/limit-ranger")
            .map(String::as_str),
        Some("LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app")
    );
    assert_eq!(
        p.status.and_then(|s| s.qos_class).as_deref(),
        Some("Burstable")
    );

    let msg = forbidden(
        pods.create(
            &PostParams::default(),
            &pod(
                "greedy",
                json!({"requests": {"cpu": "500m"}, "limits": {"cpu": "2"}}),
            )?,
        )
        .await,
    );
    assert_eq!(
        msg,
        "pods \"greedy\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );
    let msg = forbidden(
        pods.create(
            &PostParams::default(),
            &pod(
                "tiny",
                json!({"requests": {"cpu": "10m"}, "limits": {"cpu": "100m"}}),
            )?,
        )
        .await,
    );
    assert_eq!(
        msg,
        "pods \"tiny\" is forbidden: [minimum cpu usage per Container is 50m, but request is 10m, cpu max limit to request ratio per Container is 5, but provided ratio is 10.000000]"
    );
    Ok(())
}
