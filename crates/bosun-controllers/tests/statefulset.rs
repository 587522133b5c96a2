//! The StatefulSet controller against a real API server, the scheduler and hollow nodes:
//! ordered creation (each pod Running and Ready before the next), stable identities and
//! PVCs, reverse-order scale-down, a rolling update from the highest ordinal, Parallel.

mod cluster;

use std::sync::Arc;

use cluster::*;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt;
use parking_lot::Mutex;
use serde_json::json;

fn web(name: &str, replicas: i32, policy: &str) -> anyhow::Result<StatefulSet> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": "nginx",
            "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        },
    }))?)
}

/// What a pod watch saw, in order: (pod, ready, terminating) per event; `None` = deleted.
type Log = Arc<Mutex<Vec<(String, Option<(bool, bool)>)>>>;

fn watch_pods(client: kube::Client, app: &str) -> (Log, tokio::task::JoinHandle<()>) {
    let log: Log = Arc::default();
    let l = log.clone();
    let api: Api<Pod> = Api::namespaced(client, "default");
    let cfg = watcher::Config::default().labels(&format!("app={app}"));
    let task = tokio::spawn(async move {
        let mut s = std::pin::pin!(watcher(api, cfg));
        while let Some(ev) = s.next().await {
            match ev {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                    let ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    let running =
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                    l.lock().push((
                        p.name_any(),
                        Some((ready && running, p.metadata.deletion_timestamp.is_some())),
                    ));
                }
                Ok(watcher::Event::Delete(p)) => l.lock().push((p.name_any(), None)),
                _ => {}
            }
        }
    });
    (log, task)
}

/// Index of the first event of `pod` in the log.
fn first_seen(log: &[(String, Option<(bool, bool)>)], pod: &str) -> Option<usize> {
    log.iter().position(|(n, _)| n == pod)
}

fn first_ready(log: &[(String, Option<(bool, bool)>)], pod: &str) -> Option<usize> {
    log.iter()
        .position(|(n, s)| n == pod && matches!(s, Some((true, false))))
}

fn gone(log: &[(String, Option<(bool, bool)>)], pod: &str) -> Option<usize> {
    log.iter().position(|(n, s)| n == pod && s.is_none())
}

fn first_terminating(log: &[(String, Option<(bool, bool)>)], pod: &str) -> Option<usize> {
    log.iter()
        .position(|(n, s)| n == pod && (s.is_none() || matches!(s, Some((_, true)))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_ready_creation_identity_scale_down_and_rolling_update() -> anyhow::Result<()> {
    let c = cluster(2, &["statefulset"]).await?;
    let (log, _w) = watch_pods(c.client.clone(), "web");
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    sets.create(&PostParams::default(), &web("web", 3, "OrderedReady")?)
        .await?;
    wait_for(60, "3 ready replicas", || async {
        let st = sets.get("web").await?.status.unwrap_or_default();
        Ok((st.ready_replicas == Some(3) && st.replicas == 3).then_some(st))
    })
    .await?;
    {
        let l = log.lock();
        for (prev, next) in [("web-0", "web-1"), ("web-1", "web-2")] {
            let ready = first_ready(&l, prev);
            let seen = first_seen(&l, next);
            assert!(
                ready.is_some() && seen.is_some() && ready < seen,
                "{next} appeared before {prev} was ready: {l:?}"
            );
        }
    }
    // Stable identity and storage.
    let pods_api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");
    for i in 0..3 {
        let name = format!("web-{i}");
        let p = pods_api.get(&name).await?;
        let spec = p.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some(name.as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        assert_eq!(
            p.labels().get("statefulset.kubernetes.io/pod-name"),
            Some(&name)
        );
        assert_eq!(
            p.labels()
                .get("apps.kubernetes.io/pod-index")
                .map(String::as_str),
            Some(i.to_string().as_str())
        );
        let claim = spec
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.name == "www")
            .and_then(|v| v.persistent_volume_claim)
            .map(|c| c.claim_name);
        assert_eq!(claim, Some(format!("www-web-{i}")));
        assert!(pvcs.get_opt(&format!("www-web-{i}")).await?.is_some());
    }
    let st = sets.get("web").await?.status.unwrap_or_default();
    assert_eq!(st.current_revision, st.update_revision);
    assert_eq!(st.current_replicas, Some(3));
    assert_eq!(st.updated_replicas, Some(3));

    // Rolling update: web-2, then web-1, then web-0, each ready again before the next.
    let before = sets
        .get("web")
        .await?
        .status
        .unwrap_or_default()
        .update_revision;
    log.lock().clear();
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}}});
    sets.patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    let st = wait_for(90, "rolled out", || async {
        let st = sets.get("web").await?.status.unwrap_or_default();
        Ok((st.updated_replicas == Some(3)
            && st.ready_replicas == Some(3)
            && st.current_revision == st.update_revision
            && st.update_revision != before)
            .then_some(st))
    })
    .await?;
    assert_eq!(st.current_replicas, Some(3));
    {
        let l = log.lock();
        let t2 = first_terminating(&l, "web-2");
        let t1 = first_terminating(&l, "web-1");
        let t0 = first_terminating(&l, "web-0");
        assert!(t2.is_some() && t2 < t1 && t1 < t0, "update order: {l:?}");
        // web-1 goes only after the new web-2 is ready.
        let new2_ready = l
            .iter()
            .enumerate()
            .skip(gone(&l, "web-2").unwrap_or(0))
            .find(|(_, (n, s))| n == "web-2" && matches!(s, Some((true, false))))
            .map(|(i, _)| i);
        assert!(new2_ready.is_some() && new2_ready < t1, "{l:?}");
    }
    let out = c
        .server
        .kubectl_ok(&["rollout", "status", "statefulset/web", "--timeout=30s"]);
    assert!(
        out.contains("roll out complete") || out.contains("rolling update complete"),
        "{out}"
    );
    for i in 0..3 {
        let p = pods_api.get(&format!("web-{i}")).await?;
        let image = p.spec.and_then(|s| s.containers[0].image.clone());
        assert_eq!(image.as_deref(), Some("nginx:1.26"));
    }

    // Scale down to 1: web-2 goes first, web-1 only once web-2 is gone; PVCs stay.
    log.lock().clear();
    c.server
        .kubectl_ok(&["scale", "statefulset", "web", "--replicas=1"]);
    wait_for(60, "one replica", || async {
        let st = sets.get("web").await?.status.unwrap_or_default();
        let n = pods(&c.client, "default", "app=web").await?.len();
        Ok((st.replicas == 1 && n == 1).then_some(()))
    })
    .await?;
    {
        let l = log.lock();
        let gone2 = gone(&l, "web-2");
        let t1 = first_terminating(&l, "web-1");
        assert!(gone2.is_some() && gone2 < t1, "scale-down order: {l:?}");
    }
    assert!(
        pvcs.get_opt("www-web-2").await?.is_some(),
        "PVCs outlive scale-down"
    );
    let events = event_reasons(&c.client, "default", "web").await?;
    assert!(events.iter().any(|e| e == "SuccessfulCreate"), "{events:?}");
    assert!(events.iter().any(|e| e == "SuccessfulDelete"), "{events:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_creates_without_waiting_and_recreates_a_deleted_pod() -> anyhow::Result<()> {
    let c = cluster(1, &["statefulset"]).await?;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    sets.create(&PostParams::default(), &web("par", 4, "Parallel")?)
        .await?;
    wait_for(60, "4 ready", || async {
        let st = sets.get("par").await?.status.unwrap_or_default();
        Ok((st.ready_replicas == Some(4)).then_some(()))
    })
    .await?;
    let pods_api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let old_uid = pods_api.get("par-2").await?.uid();
    pods_api
        .delete("par-2", &kube::api::DeleteParams::default())
        .await?;
    // The same identity comes back as a new pod.
    wait_for(60, "par-2 recreated", || async {
        let p = pods_api.get_opt("par-2").await?;
        Ok(
            p.filter(|p| p.uid() != old_uid && p.metadata.deletion_timestamp.is_none())
                .map(|_| ()),
        )
    })
    .await?;
    let mut names: Vec<String> = pods(&c.client, "default", "app=par")
        .await?
        .iter()
        .map(|p| p.name_any())
        .collect();
    names.sort();
    assert_eq!(names, ["par-0", "par-1", "par-2", "par-3"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_follow_the_retention_policy() -> anyhow::Result<()> {
    let c = cluster(1, &["statefulset", "garbage-collector"]).await?;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    let mut set = web("db", 2, "Parallel")?;
    if let Some(spec) = set.spec.as_mut() {
        spec.persistent_volume_claim_retention_policy =
            serde_json::from_value(json!({"whenScaled": "Delete", "whenDeleted": "Retain"}))?;
    }
    sets.create(&PostParams::default(), &set).await?;
    wait_for(60, "2 ready", || async {
        let st = sets.get("db").await?.status.unwrap_or_default();
        Ok((st.ready_replicas == Some(2)).then_some(()))
    })
    .await?;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");
    assert!(pvcs.get_opt("www-db-1").await?.is_some());
    c.server
        .kubectl_ok(&["scale", "statefulset", "db", "--replicas=1"]);
    // The scaled-away pod's claim goes with it (deleted, or at least being deleted when a
    // protection finalizer holds it); the remaining pod's claim stays.
    wait_for(60, "www-db-1 deleted", || async {
        let gone = pvcs
            .get_opt("www-db-1")
            .await?
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
        Ok(gone.then_some(()))
    })
    .await?;
    let kept = pvcs.get("www-db-0").await?;
    assert!(kept.metadata.deletion_timestamp.is_none());
    assert!(kept.owner_references().is_empty());
    Ok(())
}
