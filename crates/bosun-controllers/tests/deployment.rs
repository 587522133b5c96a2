//! Deployments against a real API server with the real kubectl: rolling update, rollout
//! status/history/undo/pause/resume/restart, Recreate, history limits, progress deadline.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use parking_lot::Mutex;

fn nginx(name: &str, replicas: i32, extra_spec: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
{extra_spec}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: nginx
        image: nginx:1.0
"#
    )
}

async fn replicasets(client: &Client, app: &str) -> anyhow::Result<Vec<ReplicaSet>> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    Ok(api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?
        .items)
}

fn rs_image(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers[0].image.clone().unwrap_or_default())
        .unwrap_or_default()
}

fn rs_size(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn rev(o: &BTreeMap<String, String>) -> String {
    o.get("deployment.kubernetes.io/revision")
        .cloned()
        .unwrap_or_default()
}

/// Waits until the deployment has rolled out `image` completely: one RS with it holding
/// all replicas, every other RS at zero, status complete.
async fn wait_rolled_out(
    client: &Client,
    name: &str,
    image: &str,
    replicas: i32,
) -> anyhow::Result<Vec<ReplicaSet>> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    wait_for(90, &format!("{name} rolled out to {image}"), || async {
        let d = api.get(name).await?;
        let s = d.status.clone().unwrap_or_default();
        let rss = replicasets(client, name).await?;
        let new_ok = rss
            .iter()
            .any(|r| rs_image(r) == image && rs_size(r) == replicas);
        let old_zero = rss
            .iter()
            .filter(|r| rs_image(r) != image)
            .all(|r| rs_size(r) == 0);
        let done = s.observed_generation == d.metadata.generation
            && s.updated_replicas == Some(replicas)
            && s.replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
            && s.ready_replicas == Some(replicas);
        Ok((new_ok && old_zero && done).then_some(rss))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_undo_pause_resume_restart() -> anyhow::Result<()> {
    let h = start().await?.with_kubelet().await?;
    apply(&h.server, &nginx("web", 3, ""));
    let rss = wait_rolled_out(&h.client, "web", "nginx:1.0", 3).await?;
    assert_eq!(rss.len(), 1);
    let first = &rss[0];
    let hash = first
        .labels()
        .get("pod-template-hash")
        .cloned()
        .unwrap_or_default();
    assert_eq!(first.name_any(), format!("web-{hash}"));
    assert_eq!(rev(first.annotations()), "1");
    let first_uid = first.uid();
    assert!(first
        .owner_references()
        .iter()
        .any(|r| r.kind == "Deployment" && r.controller == Some(true)));
    let pods = active_pods(&h.client, "default", "app=web").await?;
    assert!(pods
        .iter()
        .all(|p| p.labels().get("pod-template-hash") == Some(&hash)));
    let out = h
        .server
        .kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let table = h.server.kubectl_ok(&["get", "deployments", "web"]);
    assert!(table.contains("3/3"), "{table}");

    // Rolling update to a new image: a new ReplicaSet, the old one scaled to 0.
    h.server
        .kubectl_ok(&["set", "image", "deployment/web", "nginx=nginx:2.0"]);
    let out = h
        .server
        .kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let rss = wait_rolled_out(&h.client, "web", "nginx:2.0", 3).await?;
    assert_eq!(rss.len(), 2);
    let d: Api<Deployment> = Api::namespaced(h.client.clone(), "default");
    let dep = d.get("web").await?;
    assert_eq!(rev(dep.annotations()), "2");
    let newer = rss.iter().find(|r| rs_image(r) == "nginx:2.0");
    assert_eq!(newer.map(|r| rev(r.annotations())), Some("2".to_string()));
    let conds: HashMap<String, (String, String)> = dep
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, (c.status, c.reason.unwrap_or_default())))
        .collect();
    assert_eq!(
        conds.get("Available"),
        Some(&("True".into(), "MinimumReplicasAvailable".into()))
    );
    assert_eq!(
        conds.get("Progressing"),
        Some(&("True".into(), "NewReplicaSetAvailable".into()))
    );

    let history = h
        .server
        .kubectl_ok(&["rollout", "history", "deployment/web"]);
    assert!(
        history.contains("1 ") && history.contains("2 "),
        "{history}"
    );

    // Undo: back to the first template, whose ReplicaSet becomes revision 3.
    h.server.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    let rss = wait_rolled_out(&h.client, "web", "nginx:1.0", 3).await?;
    assert_eq!(rss.len(), 2);
    let back = rss.iter().find(|r| r.uid() == first_uid);
    assert_eq!(back.map(|r| rev(r.annotations())), Some("3".to_string()));
    assert_eq!(
        back.and_then(|r| r
            .annotations()
            .get("deployment.kubernetes.io/revision-history")
            .cloned()),
        Some("1".to_string())
    );
    wait_for(30, "deployment revision 3", || async {
        Ok((rev(d.get("web").await?.annotations()) == "3").then_some(()))
    })
    .await?;

    // Paused: template changes are not rolled out until resumed.
    h.server.kubectl_ok(&["rollout", "pause", "deployment/web"]);
    h.server
        .kubectl_ok(&["set", "image", "deployment/web", "nginx=nginx:3.0"]);
    wait_for(30, "paused generation observed", || async {
        let dep = d.get("web").await?;
        let s = dep.status.unwrap_or_default();
        let paused =
            s.conditions.unwrap_or_default().iter().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("DeploymentPaused")
            });
        Ok((s.observed_generation == dep.metadata.generation && paused).then_some(()))
    })
    .await?;
    assert_eq!(replicasets(&h.client, "web").await?.len(), 2);
    h.server
        .kubectl_ok(&["rollout", "resume", "deployment/web"]);
    wait_rolled_out(&h.client, "web", "nginx:3.0", 3).await?;

    // Restart: same image, a new ReplicaSet for the restartedAt annotation.
    let before = replicasets(&h.client, "web").await?.len();
    h.server
        .kubectl_ok(&["rollout", "restart", "deployment/web"]);
    let rss = wait_for(60, "restart rolled out", || async {
        let rss = replicasets(&h.client, "web").await?;
        let restarted = rss.iter().find(|r| {
            r.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref())
                .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"))
        });
        Ok(restarted
            .is_some_and(|r| rs_size(r) == 3)
            .then_some(rss.clone()))
    })
    .await?;
    assert_eq!(rss.len(), before + 1);
    let out = h
        .server
        .kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");

    // Scaling keeps the current ReplicaSet and status follows.
    h.server
        .kubectl_ok(&["scale", "deployment/web", "--replicas=5"]);
    wait_pods(&h.client, "default", "app=web", 5).await?;
    wait_for(30, "5 available", || async {
        let s = d.get("web").await?.status.unwrap_or_default();
        Ok((s.available_replicas == Some(5) && s.updated_replicas == Some(5)).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_stops_old_pods_before_starting_new_ones() -> anyhow::Result<()> {
    let h = start().await?.with_kubelet().await?;
    apply(
        &h.server,
        &nginx("rec", 2, "  strategy:\n    type: Recreate"),
    );
    wait_rolled_out(&h.client, "rec", "nginx:1.0", 2).await?;

    // Watch pods: never may pods of two templates be active at once.
    let overlap = Arc::new(Mutex::new(false));
    let active: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    {
        let (overlap, active) = (overlap.clone(), active.clone());
        let api: Api<Pod> = Api::namespaced(h.client.clone(), "default");
        tokio::spawn(async move {
            let mut s = std::pin::pin!(watcher(api, watcher::Config::default().labels("app=rec")));
            while let Some(ev) = s.next().await {
                let mut a = active.lock();
                match ev {
                    Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                        let hash = p
                            .labels()
                            .get("pod-template-hash")
                            .cloned()
                            .unwrap_or_default();
                        if p.metadata.deletion_timestamp.is_none() {
                            a.insert(p.name_any(), hash);
                        } else {
                            a.remove(&p.name_any());
                        }
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        a.remove(&p.name_any());
                    }
                    _ => {}
                }
                let hashes: std::collections::HashSet<&String> = a.values().collect();
                if hashes.len() > 1 {
                    *overlap.lock() = true;
                }
            }
        });
    }
    h.server
        .kubectl_ok(&["set", "image", "deployment/rec", "nginx=nginx:2.0"]);
    wait_rolled_out(&h.client, "rec", "nginx:2.0", 2).await?;
    assert!(!*overlap.lock(), "old and new pods ran at the same time");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_history_limit_prunes_old_replicasets() -> anyhow::Result<()> {
    let h = start().await?.with_kubelet().await?;
    apply(&h.server, &nginx("hist", 1, "  revisionHistoryLimit: 1"));
    wait_rolled_out(&h.client, "hist", "nginx:1.0", 1).await?;
    for v in ["2.0", "3.0", "4.0"] {
        h.server.kubectl_ok(&[
            "set",
            "image",
            "deployment/hist",
            &format!("nginx=nginx:{v}"),
        ]);
        wait_rolled_out(&h.client, "hist", &format!("nginx:{v}"), 1).await?;
    }
    wait_for(30, "old ReplicaSets pruned to 1", || async {
        let rss = replicasets(&h.client, "hist").await?;
        Ok((rss.len() == 2).then_some(()))
    })
    .await?;
    let rss = replicasets(&h.client, "hist").await?;
    let mut revs: Vec<String> = rss.iter().map(|r| rev(r.annotations())).collect();
    revs.sort();
    assert_eq!(revs, ["3", "4"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_deadline_exceeded_is_reported() -> anyhow::Result<()> {
    // No kubelet: pods never become ready.
    let h = start().await?;
    apply(
        &h.server,
        &nginx("stuck", 2, "  progressDeadlineSeconds: 2"),
    );
    let d: Api<Deployment> = Api::namespaced(h.client.clone(), "default");
    wait_for(60, "ProgressDeadlineExceeded", || async {
        let s = d.get("stuck").await?.status.unwrap_or_default();
        Ok(s.conditions
            .unwrap_or_default()
            .iter()
            .any(|c| {
                c.type_ == "Progressing"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
            .then_some(()))
    })
    .await?;
    let err = h
        .server
        .kubectl_err(&["rollout", "status", "deployment/stuck", "--timeout=20s"]);
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    let s = d.get("stuck").await?.status.unwrap_or_default();
    assert_eq!(s.unavailable_replicas, Some(2));
    assert!(s
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "False"));
    Ok(())
}
