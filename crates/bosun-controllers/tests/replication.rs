//! ReplicationController and ReplicaSet against a real API server: the seed's walkthrough
//! (create, scale, heal), adoption and release, status, and no over-creation under churn.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt;
use parking_lot::Mutex;
use serde_json::json;

const MYWEB: &str = r#"
apiVersion: v1
kind: ReplicationController
metadata:
  name: myweb
spec:
  replicas: 5
  selector:
    app: myweb
  template:
    metadata:
      labels:
        app: myweb
    spec:
      containers:
      - name: myweb
        image: kubeguide/tomcat-app:v1
        ports:
        - containerPort: 8080
"#;

fn owned_by(p: &Pod, uid: &str) -> bool {
    p.owner_references()
        .iter()
        .any(|r| r.uid == uid && r.controller == Some(true) && r.block_owner_deletion == Some(true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rc_walkthrough_create_scale_heal() -> anyhow::Result<()> {
    let h = start().await?.with_kubelet().await?;
    h.server.kubectl_stdin(&["create", "-f", "-"], MYWEB);
    let rcs: Api<ReplicationController> = Api::namespaced(h.client.clone(), "default");
    let rc = rcs.get("myweb").await?;
    let uid = rc.uid().unwrap_or_default();

    let pods = wait_pods(&h.client, "default", "app=myweb", 5).await?;
    for p in &pods {
        let name = p.name_any();
        assert!(
            name.starts_with("myweb-") && name.len() == "myweb-".len() + 5,
            "{name}"
        );
        assert!(owned_by(p, &uid), "{name} has no controller reference");
    }
    wait_for(60, "rc status 5 ready", || async {
        let rc = rcs.get("myweb").await?;
        let s = rc.status.unwrap_or_default();
        Ok((s.replicas == 5
            && s.ready_replicas == Some(5)
            && s.available_replicas == Some(5)
            && s.fully_labeled_replicas == Some(5)
            && s.observed_generation == rc.metadata.generation)
            .then_some(()))
    })
    .await?;
    let table = h.server.kubectl_ok(&["get", "rc", "myweb"]);
    assert!(table.contains("myweb") && table.contains(" 5 "), "{table}");

    h.server
        .kubectl_ok(&["scale", "rc", "myweb", "--replicas=3"]);
    wait_pods(&h.client, "default", "app=myweb", 3).await?;
    wait_for(60, "rc status 3", || async {
        let s = rcs.get("myweb").await?.status.unwrap_or_default();
        Ok((s.replicas == 3 && s.ready_replicas == Some(3)).then_some(()))
    })
    .await?;

    // Pods that die are replaced.
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let before: HashSet<String> = active_pods(&h.client, "default", "app=myweb")
        .await?
        .iter()
        .map(|p| p.name_any())
        .collect();
    for name in before.iter().take(2) {
        pods.delete(name, &DeleteParams::default().grace_period(0))
            .await?;
    }
    let after = wait_for(60, "two replacement pods", || async {
        let now = active_pods(&h.client, "default", "app=myweb").await?;
        let names: HashSet<String> = now.iter().map(|p| p.name_any()).collect();
        Ok((names.len() == 3 && names.difference(&before).count() == 2).then_some(names))
    })
    .await?;
    assert_eq!(after.len(), 3);

    // Scaling up again.
    h.server
        .kubectl_ok(&["scale", "rc", "myweb", "--replicas=6"]);
    wait_pods(&h.client, "default", "app=myweb", 6).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_adopted_and_mismatching_pods_released() -> anyhow::Result<()> {
    let h = start().await?;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    // An orphan that matches the selector, created before the ReplicaSet.
    let orphan: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "stray", "labels": {"app": "web", "tier": "front"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))?;
    pods.create(&PostParams::default(), &orphan).await?;
    let rs: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]}],
            },
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }))?;
    let rss: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "default");
    let rs = rss.create(&PostParams::default(), &rs).await?;
    let uid = rs.uid().unwrap_or_default();
    let all = wait_pods(&h.client, "default", "app=web", 3).await?;
    let stray = wait_for(30, "stray adopted", || async {
        let p = pods.get("stray").await?;
        Ok(owned_by(&p, &uid).then_some(p))
    })
    .await?;
    assert!(all.iter().any(|p| p.name_any() == "stray"));
    assert_eq!(stray.owner_references().len(), 1);

    // A pod relabelled out of the selector is released and replaced.
    pods.patch(
        "stray",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "back"}}})),
    )
    .await?;
    wait_for(30, "stray released", || async {
        let p = pods.get("stray").await?;
        Ok(p.owner_references().is_empty().then_some(()))
    })
    .await?;
    wait_pods(&h.client, "default", "app=web,tier=front", 3).await?;

    // Status without a kubelet: 3 replicas, none ready.
    wait_for(30, "rs status", || async {
        let s = rss.get("web").await?.status.unwrap_or_default();
        Ok(
            (s.replicas == 3 && s.fully_labeled_replicas == Some(3) && s.ready_replicas.is_none())
                .then_some(()),
        )
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn available_replicas_wait_for_min_ready_seconds() -> anyhow::Result<()> {
    let h = start().await?;
    let rs: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "slow"},
        "spec": {
            "replicas": 2,
            "minReadySeconds": 2,
            "selector": {"matchLabels": {"app": "slow"}},
            "template": {
                "metadata": {"labels": {"app": "slow"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }))?;
    let rss: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "default");
    rss.create(&PostParams::default(), &rs).await?;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    for p in wait_pods(&h.client, "default", "app=slow", 2).await? {
        set_ready(&pods, &p.name_any(), true).await?;
    }
    // Ready at once, available only after minReadySeconds (the controller re-checks by
    // itself, with no further pod events).
    wait_for(30, "ready but not yet available", || async {
        let s = rss.get("slow").await?.status.unwrap_or_default();
        Ok((s.ready_replicas == Some(2)).then_some(s))
    })
    .await?;
    wait_for(30, "available", || async {
        let s = rss.get("slow").await?.status.unwrap_or_default();
        Ok((s.available_replicas == Some(2)).then_some(()))
    })
    .await?;
    Ok(())
}

/// Upstream's burst test: 500 pods deleted at once under a ReplicaSet must be replaced by
/// exactly 500 new ones, never more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_over_creation_when_500_pods_are_deleted_at_once() -> anyhow::Result<()> {
    let h = start().await?;
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let max_active = Arc::new(Mutex::new(0usize));
    let active: Arc<Mutex<HashSet<String>>> = Arc::default();
    {
        let (seen, active, max_active) = (seen.clone(), active.clone(), max_active.clone());
        let api: Api<Pod> = Api::namespaced(h.client.clone(), "default");
        tokio::spawn(async move {
            let cfg = watcher::Config::default().labels("app=burst");
            let mut s = std::pin::pin!(watcher(api, cfg));
            while let Some(ev) = s.next().await {
                match ev {
                    Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                        seen.lock().insert(p.name_any());
                        let mut a = active.lock();
                        if p.metadata.deletion_timestamp.is_none() {
                            a.insert(p.name_any());
                        } else {
                            a.remove(&p.name_any());
                        }
                        let mut m = max_active.lock();
                        *m = (*m).max(a.len());
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        active.lock().remove(&p.name_any());
                    }
                    _ => {}
                }
            }
        });
    }
    let rs: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "burst"},
        "spec": {
            "replicas": 500,
            "selector": {"matchLabels": {"app": "burst"}},
            "template": {
                "metadata": {"labels": {"app": "burst"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }))?;
    let rss: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "default");
    rss.create(&PostParams::default(), &rs).await?;
    wait_for(300, "500 replicas in status", || async {
        let s = rss.get("burst").await?.status.unwrap_or_default();
        Ok((s.replicas == 500).then_some(()))
    })
    .await?;
    // The test's own watch may trail the controller's by a few events.
    wait_for(60, "the test's watch to see 500 pods", || async {
        let n = seen.lock().len();
        if n == 500 {
            return Ok(Some(()));
        }
        Err(anyhow::anyhow!("seen {n}"))
    })
    .await?;

    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=burst"),
    )
    .await?;
    wait_for(300, "500 replacements observed", || async {
        let s = rss.get("burst").await?.status.unwrap_or_default();
        let n = active_pods(&h.client, "default", "app=burst").await?.len();
        let ever = seen.lock().len();
        if s.replicas == 500 && n == 500 && ever >= 1000 {
            return Ok(Some(()));
        }
        // The state, so that a timeout says which part never converged.
        Err(anyhow::anyhow!(
            "status.replicas={} active={n} ever seen={ever}",
            s.replicas
        ))
    })
    .await?;
    // Let any extra creation the controller might still make land before counting.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(seen.lock().len(), 1000, "pods ever created");
    assert_eq!(
        active_pods(&h.client, "default", "app=burst").await?.len(),
        500
    );
    assert!(*max_active.lock() <= 500, "at most 500 active at any time");
    Ok(())
}
