//! Dynamic provisioning at the API level, with the PV binder, the real scheduler and hollow
//! nodes; the test plays the node's local-path provisioner (in a cluster every agent runs
//! it, `bosun-kubelet/src/provisioner.rs`): it creates the pre-bound volume once the claim
//! is handed over for its node. Immediate classes get a node chosen by the binder;
//! WaitForFirstConsumer claims wait until the scheduler places a pod that uses them; a
//! class with an unknown provisioner says it waits for that provisioner; reclaim Delete of
//! a provisioned volume is left to its provisioner.

mod common;

use std::time::Duration;

use bosun_controllers::pvbinder::{
    external_provisioning_message, ANN_PROVISIONED_BY, ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER,
    LOCAL_PATH_PROVISIONER,
};
use bosun_controllers::ControllerOptions;
use bosun_hollow::HollowOptions;
use common::*;
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

async fn setup() -> anyhow::Result<(Harness, bosun_hollow::HollowHandle)> {
    let h = start_with(ControllerOptions {
        controllers: vec!["persistentvolume-binder".into()],
        ..ControllerOptions::without_leader_election()
    })
    .await?;
    let hollow = bosun_hollow::run(
        h.client.clone(),
        HollowOptions {
            nodes: 2,
            heartbeat: Duration::from_millis(500),
            status_interval: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await?;
    Ok((h, hollow))
}

async fn make_class(
    client: &Client,
    name: &str,
    provisioner: &str,
    mode: &str,
) -> anyhow::Result<()> {
    apply_json(
        client,
        "/apis/storage.k8s.io/v1/storageclasses",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": name}, "provisioner": provisioner,
               "volumeBindingMode": mode}),
    )
    .await
}

async fn apply_json(client: &Client, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body)?)?;
    let _: serde_json::Value = client.request(req).await?;
    Ok(())
}

async fn make_claim(
    api: &Api<PersistentVolumeClaim>,
    name: &str,
    class: &str,
) -> anyhow::Result<PersistentVolumeClaim> {
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                 "resources": {"requests": {"storage": "3Gi"}}},
    }))?;
    Ok(api.create(&PostParams::default(), &pvc).await?)
}

/// What the node's provisioner does once a claim is handed to it: a volume pre-bound to
/// the claim, with node affinity to the selected node.
async fn provision_as_node(
    client: &Client,
    claim: &PersistentVolumeClaim,
) -> anyhow::Result<String> {
    let uid = claim.metadata.uid.clone().unwrap_or_default();
    let node = claim
        .annotations()
        .get(ANN_SELECTED_NODE)
        .cloned()
        .unwrap_or_default();
    let name = format!("pvc-{uid}");
    let pv: PersistentVolume = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {ANN_PROVISIONED_BY: LOCAL_PATH_PROVISIONER}},
        "spec": {
            "capacity": {"storage": "3Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": claim.spec.as_ref().and_then(|s| s.storage_class_name.clone()),
            "hostPath": {"path": format!("/tmp/bosun-test-storage/{name}"), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                         "namespace": claim.namespace(), "name": claim.name_any(), "uid": uid},
        },
    }))?;
    Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await?;
    Ok(name)
}

async fn wait_handed_over(
    api: &Api<PersistentVolumeClaim>,
    name: &str,
) -> anyhow::Result<PersistentVolumeClaim> {
    wait_for(
        30,
        &format!("claim {name} handed to the provisioner"),
        || async {
            let c = api.get(name).await?;
            let ok = c
                .annotations()
                .get(ANN_STORAGE_PROVISIONER)
                .map(String::as_str)
                == Some(LOCAL_PATH_PROVISIONER)
                && c.annotations().contains_key(ANN_SELECTED_NODE);
            Ok(ok.then_some(c))
        },
    )
    .await
}

async fn wait_bound(
    api: &Api<PersistentVolumeClaim>,
    name: &str,
    volume: &str,
) -> anyhow::Result<()> {
    wait_for(30, &format!("claim {name} bound to {volume}"), || async {
        let c = api.get(name).await?;
        let bound = c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
            && c.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == Some(volume);
        Ok(bound.then_some(()))
    })
    .await
}

async fn wait_event(client: &Client, object: &str, reason: &str) -> anyhow::Result<Event> {
    let events: Api<Event> = Api::all(client.clone());
    wait_for(30, &format!("event {reason} on {object}"), || async {
        let list = events.list(&ListParams::default()).await?;
        Ok(list.items.into_iter().find(|e| {
            e.involved_object.name.as_deref() == Some(object) && e.reason.as_deref() == Some(reason)
        }))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_claims_are_provisioned_on_a_chosen_node_and_reclaimed_by_the_provisioner(
) -> anyhow::Result<()> {
    let (h, hollow) = setup().await?;
    make_class(&h.client, "local-now", LOCAL_PATH_PROVISIONER, "Immediate").await?;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client.clone(), "default");
    make_claim(&pvcs, "data", "local-now").await?;

    let claim = wait_handed_over(&pvcs, "data").await?;
    let node = claim
        .annotations()
        .get(ANN_SELECTED_NODE)
        .cloned()
        .unwrap_or_default();
    assert!(
        hollow.node_names().contains(&node),
        "{node} is one of the nodes"
    );
    let ev = wait_event(&h.client, "data", "ExternalProvisioning").await?;
    assert_eq!(
        ev.message.as_deref(),
        Some(external_provisioning_message(LOCAL_PATH_PROVISIONER).as_str())
    );
    assert_eq!(
        claim.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );

    let volume = provision_as_node(&h.client, &claim).await?;
    wait_bound(&pvcs, "data", &volume).await?;
    let pvs: Api<PersistentVolume> = Api::all(h.client.clone());
    let pv = pvs.get(&volume).await?;
    assert_eq!(
        pv.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Bound")
    );

    // Reclaim Delete of a provisioned volume: Released, and left to its provisioner.
    pvcs.delete("data", &DeleteParams::default()).await?;
    wait_for(30, "volume released", || async {
        let pv = pvs.get(&volume).await?;
        Ok((pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released")).then_some(()))
    })
    .await?;
    wait_event(&h.client, &volume, "ExternalDeleting").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        pvs.get_opt(&volume).await?.is_some(),
        "the binder does not delete it"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_first_consumer_claims_follow_the_scheduled_pod() -> anyhow::Result<()> {
    let (h, _hollow) = setup().await?;
    make_class(
        &h.client,
        "local-later",
        LOCAL_PATH_PROVISIONER,
        "WaitForFirstConsumer",
    )
    .await?;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client.clone(), "default");
    make_claim(&pvcs, "later", "local-later").await?;

    // No consumer: the claim waits, with no node and no provisioner named.
    wait_event(&h.client, "later", "WaitForFirstConsumer").await?;
    let c = pvcs.get("later").await?;
    assert!(!c.annotations().contains_key(ANN_SELECTED_NODE));
    assert!(!c.annotations().contains_key(ANN_STORAGE_PROVISIONER));

    let _sched = bosun_scheduler::start(
        h.client.clone(),
        bosun_scheduler::SchedulerOptions {
            pod_initial_backoff: Duration::from_millis(100),
            pod_max_backoff: Duration::from_millis(500),
            ..Default::default()
        },
    )?;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "consumer"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "later"}}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let bound_node = wait_for(30, "consumer scheduled", || async {
        let p = pods.get("consumer").await?;
        Ok(p.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty()))
    })
    .await?;
    let claim = wait_handed_over(&pvcs, "later").await?;
    assert_eq!(
        claim.annotations().get(ANN_SELECTED_NODE),
        Some(&bound_node),
        "the claim's node is the pod's"
    );
    let volume = provision_as_node(&h.client, &claim).await?;
    wait_bound(&pvcs, "later", &volume).await?;

    // A second pod of the same, now bound, claim goes where its volume is.
    let mut second = pod.clone();
    second.metadata.name = Some("consumer-2".into());
    pods.create(&PostParams::default(), &second).await?;
    let second_node = wait_for(30, "second consumer scheduled", || async {
        let p = pods.get("consumer-2").await?;
        Ok(p.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty()))
    })
    .await?;
    assert_eq!(second_node, bound_node);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_an_unknown_provisioner_wait_for_it() -> anyhow::Result<()> {
    let (h, _hollow) = setup().await?;
    make_class(&h.client, "ext", "example.com/nfs", "Immediate").await?;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client.clone(), "default");
    make_claim(&pvcs, "shared", "ext").await?;
    let ev = wait_event(&h.client, "shared", "ExternalProvisioning").await?;
    assert_eq!(
        ev.message.as_deref(),
        Some(
            "Waiting for a volume to be created either by the external provisioner 'example.com/nfs' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
        )
    );
    let c = pvcs.get("shared").await?;
    assert_eq!(
        c.annotations()
            .get(ANN_STORAGE_PROVISIONER)
            .map(String::as_str),
        Some("example.com/nfs")
    );
    assert!(
        !c.annotations().contains_key(ANN_SELECTED_NODE),
        "only local volumes need a node"
    );
    assert_eq!(
        c.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    Ok(())
}
