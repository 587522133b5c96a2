//! Garbage collection (background, foreground, orphan), namespace deletion and default
//! ServiceAccounts against a real API server with the real kubectl.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

fn deployment(ns: &str, name: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
spec:
  replicas: 3
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: c
        image: busybox
"#
    )
}

async fn count_rs(client: &Client, ns: &str, app: &str) -> anyhow::Result<usize> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    Ok(api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?
        .items
        .len())
}

async fn count_pods(client: &Client, ns: &str, app: &str) -> anyhow::Result<usize> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    Ok(api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?
        .items
        .len())
}

async fn wait_gone(client: &Client, ns: &str, app: &str) -> anyhow::Result<()> {
    wait_for(
        60,
        &format!("{app}'s ReplicaSets and pods gone"),
        || async {
            let rs = count_rs(client, ns, app).await?;
            let pods = count_pods(client, ns, app).await?;
            Ok((rs == 0 && pods == 0).then_some(()))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascading_deletes_background_foreground_orphan() -> anyhow::Result<()> {
    let h = start().await?;
    for name in ["bg", "fg", "orph"] {
        apply(&h.server, &deployment("default", name));
    }
    for name in ["bg", "fg", "orph"] {
        wait_pods(&h.client, "default", &format!("app={name}"), 3).await?;
    }

    // Background (kubectl's default): the Deployment goes at once, then its children.
    h.server.kubectl_ok(&["delete", "deployment", "bg"]);
    wait_gone(&h.client, "default", "bg").await?;

    // Foreground: kubectl waits until the Deployment is gone, which is only after its
    // ReplicaSets and pods are.
    h.server.kubectl_ok(&[
        "delete",
        "deployment",
        "fg",
        "--cascade=foreground",
        "--timeout=60s",
    ]);
    assert_eq!(count_rs(&h.client, "default", "fg").await?, 0);
    assert_eq!(count_pods(&h.client, "default", "fg").await?, 0);

    // Orphan: the ReplicaSet and pods stay, released.
    h.server.kubectl_ok(&[
        "delete",
        "deployment",
        "orph",
        "--cascade=orphan",
        "--timeout=60s",
    ]);
    let rss: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "default");
    let list = rss
        .list(&ListParams::default().labels("app=orph"))
        .await?
        .items;
    assert_eq!(list.len(), 1);
    wait_for(30, "orphaned ReplicaSet released", || async {
        let rs = rss.get(&list[0].name_any()).await?;
        Ok(rs.owner_references().is_empty().then_some(()))
    })
    .await?;
    // Its pods are still owned by the (living) ReplicaSet and stay.
    assert_eq!(count_pods(&h.client, "default", "orph").await?, 3);
    // Deleting that ReplicaSet with orphan leaves bare pods.
    h.server.kubectl_ok(&[
        "delete",
        "rs",
        &list[0].name_any(),
        "--cascade=orphan",
        "--timeout=60s",
    ]);
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    wait_for(30, "orphaned pods released", || async {
        let ps = pods
            .list(&ListParams::default().labels("app=orph"))
            .await?
            .items;
        Ok((ps.len() == 3 && ps.iter().all(|p| p.owner_references().is_empty())).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_of_a_missing_owner_are_collected() -> anyhow::Result<()> {
    let h = start().await?;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let owner: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "owner"}, "data": {"a": "b"},
    }))?;
    let owner = cms.create(&PostParams::default(), &owner).await?;
    let dep = |name: &str, uid: &str| -> anyhow::Result<ConfigMap> {
        Ok(serde_json::from_value(json!({
            "metadata": {"name": name, "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid,
            }]},
        }))?)
    };
    // One dependent of a live owner, one of an owner that never existed.
    cms.create(
        &PostParams::default(),
        &dep("kept", &owner.uid().unwrap_or_default())?,
    )
    .await?;
    cms.create(
        &PostParams::default(),
        &dep("dangling", "00000000-0000-0000-0000-000000000000")?,
    )
    .await?;
    wait_for(30, "dangling dependent collected", || async {
        Ok(cms.get_opt("dangling").await?.is_none().then_some(()))
    })
    .await?;
    assert!(cms.get_opt("kept").await?.is_some());
    cms.delete("owner", &DeleteParams::default()).await?;
    wait_for(30, "dependent of deleted owner collected", || async {
        Ok(cms.get_opt("kept").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_removes_everything_then_the_namespace() -> anyhow::Result<()> {
    let h = start().await?;
    apply(
        &h.server,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
    );
    // Every namespace gets a default ServiceAccount.
    let sas: Api<ServiceAccount> = Api::namespaced(h.client.clone(), "team");
    wait_for(30, "default ServiceAccount", || async {
        Ok(sas.get_opt("default").await?.map(|_| ()))
    })
    .await?;
    sas.delete("default", &DeleteParams::default()).await?;
    wait_for(30, "default ServiceAccount recreated", || async {
        Ok(sas.get_opt("default").await?.map(|_| ()))
    })
    .await?;

    apply(&h.server, &deployment("team", "app"));
    apply(
        &h.server,
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: team}
data: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: team}
spec:
  selector: {app: app}
  ports: [{port: 80, targetPort: 8080}]
"#,
    );
    wait_pods(&h.client, "team", "app=app", 3).await?;

    h.server
        .kubectl_ok(&["delete", "namespace", "team", "--timeout=90s"]);
    let nss: Api<Namespace> = Api::all(h.client.clone());
    assert!(nss.get_opt("team").await?.is_none());
    // A namespace of the same name starts empty.
    apply(
        &h.server,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
    );
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "team");
    assert!(cms.get_opt("settings").await?.is_none());
    assert_eq!(count_pods(&h.client, "team", "app").await?, 0);
    Ok(())
}
