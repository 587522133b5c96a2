//! PersistentVolume binding against a real API server: a claim binds to the smallest
//! fitting Available volume (class, access modes, selector), pre-bound claims take their
//! volume, deleting a claim releases (Retain) or deletes (Delete) its volume.

mod common;

use bosun_controllers::pvbinder::{ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER};
use bosun_controllers::ControllerOptions;
use common::*;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

async fn binder() -> anyhow::Result<Harness> {
    start_with(ControllerOptions {
        controllers: vec!["persistentvolume-binder".into()],
        ..ControllerOptions::without_leader_election()
    })
    .await
}

async fn make_pv(
    api: &Api<PersistentVolume>,
    name: &str,
    size: &str,
    class: &str,
    policy: &str,
    labels: serde_json::Value,
) -> anyhow::Result<()> {
    let pv: PersistentVolume = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": class,
            "persistentVolumeReclaimPolicy": policy,
            "hostPath": {"path": format!("/tmp/{name}")},
        },
    }))?;
    api.create(&PostParams::default(), &pv).await?;
    Ok(())
}

async fn make_pvc(
    api: &Api<PersistentVolumeClaim>,
    name: &str,
    size: &str,
    spec_extra: serde_json::Value,
) -> anyhow::Result<()> {
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
        "storageClassName": "",
    });
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name}, "spec": spec,
    }))?;
    api.create(&PostParams::default(), &pvc).await?;
    Ok(())
}

async fn wait_claim_bound(
    api: &Api<PersistentVolumeClaim>,
    name: &str,
) -> anyhow::Result<PersistentVolumeClaim> {
    wait_for(30, &format!("claim {name} bound"), || async {
        let c = api.get(name).await?;
        let bound = c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        Ok(bound.then_some(c))
    })
    .await
}

async fn wait_pv_phase(
    api: &Api<PersistentVolume>,
    name: &str,
    phase: &str,
) -> anyhow::Result<PersistentVolume> {
    wait_for(30, &format!("volume {name} {phase}"), || async {
        let v = api.get(name).await?;
        let ok = v.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase);
        Ok(ok.then_some(v))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_bind_to_the_smallest_fit_and_release() -> anyhow::Result<()> {
    let h = binder().await?;
    let pvs: Api<PersistentVolume> = Api::all(h.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client.clone(), "default");
    make_pv(&pvs, "pv-10g", "10Gi", "", "Retain", json!({})).await?;
    make_pv(&pvs, "pv-2g", "2Gi", "", "Retain", json!({})).await?;
    make_pv(&pvs, "pv-500m", "500Mi", "", "Retain", json!({})).await?;
    make_pv(
        &pvs,
        "pv-fast",
        "1Gi",
        "fast",
        "Delete",
        json!({"tier": "gold"}),
    )
    .await?;
    wait_pv_phase(&pvs, "pv-2g", "Available").await?;

    make_pvc(&pvcs, "data", "1Gi", json!({})).await?;
    let c = wait_claim_bound(&pvcs, "data").await?;
    assert_eq!(
        c.spec.as_ref().and_then(|s| s.volume_name.as_deref()),
        Some("pv-2g")
    );
    assert_eq!(
        c.annotations().get(ANN_BIND_COMPLETED).map(String::as_str),
        Some("yes")
    );
    assert_eq!(
        c.annotations()
            .get(ANN_BOUND_BY_CONTROLLER)
            .map(String::as_str),
        Some("yes")
    );
    let st = c.status.clone().unwrap_or_default();
    assert_eq!(
        st.capacity
            .and_then(|c| c.get("storage").cloned())
            .map(|q| q.0),
        Some("2Gi".into())
    );
    assert_eq!(st.access_modes, Some(vec!["ReadWriteOnce".to_string()]));
    let v = wait_pv_phase(&pvs, "pv-2g", "Bound").await?;
    let r = v.spec.and_then(|s| s.claim_ref).unwrap_or_default();
    assert_eq!(r.name.as_deref(), Some("data"));
    assert_eq!(r.uid, c.metadata.uid);
    assert_eq!(
        v.metadata
            .annotations
            .unwrap_or_default()
            .get(ANN_BOUND_BY_CONTROLLER)
            .map(String::as_str),
        Some("yes")
    );

    // A class and a selector narrow the choice.
    make_pvc(
        &pvcs,
        "gold",
        "1Gi",
        json!({"storageClassName": "fast", "selector": {"matchLabels": {"tier": "gold"}}}),
    )
    .await?;
    let g = wait_claim_bound(&pvcs, "gold").await?;
    assert_eq!(
        g.spec.and_then(|s| s.volume_name).as_deref(),
        Some("pv-fast")
    );

    // Nothing fits: the claim stays Pending with an event.
    make_pvc(&pvcs, "huge", "100Gi", json!({})).await?;
    wait_for(30, "FailedBinding event", || async {
        let evs: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(h.client.clone(), "default");
        let found = evs.list(&Default::default()).await?.items.into_iter().any(|e| {
            e.involved_object.name.as_deref() == Some("huge")
                && e.reason.as_deref() == Some("FailedBinding")
                && e.message.as_deref()
                    == Some("no persistent volumes available for this claim and no storage class is set")
        });
        Ok(found.then_some(()))
    })
    .await?;
    assert_eq!(
        pvcs.get("huge")
            .await?
            .status
            .and_then(|s| s.phase)
            .as_deref(),
        Some("Pending")
    );

    // Retain: the volume is Released; Delete: the volume goes.
    pvcs.delete("data", &DeleteParams::default()).await?;
    wait_pv_phase(&pvs, "pv-2g", "Released").await?;
    pvcs.delete("gold", &DeleteParams::default()).await?;
    wait_for(30, "pv-fast deleted", || async {
        Ok(pvs.get_opt("pv-fast").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_bound_claims_and_volumes() -> anyhow::Result<()> {
    let h = binder().await?;
    let pvs: Api<PersistentVolume> = Api::all(h.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client.clone(), "default");
    make_pv(&pvs, "small", "1Gi", "", "Retain", json!({})).await?;
    make_pv(&pvs, "chosen", "5Gi", "", "Retain", json!({})).await?;
    // The claim names its volume: it gets that one, not the smaller fit.
    make_pvc(&pvcs, "named", "1Gi", json!({"volumeName": "chosen"})).await?;
    let c = wait_claim_bound(&pvcs, "named").await?;
    assert_eq!(
        c.spec.and_then(|s| s.volume_name).as_deref(),
        Some("chosen")
    );
    assert!(!c
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key(ANN_BOUND_BY_CONTROLLER));

    // A volume pre-bound to a claim by name waits for it, then binds.
    let pv: PersistentVolume = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "reserved"},
        "spec": {
            "capacity": {"storage": "3Gi"}, "accessModes": ["ReadWriteOnce"],
            "storageClassName": "", "hostPath": {"path": "/tmp/r"},
            "claimRef": {"namespace": "default", "name": "later"},
        },
    }))?;
    pvs.create(&PostParams::default(), &pv).await?;
    wait_pv_phase(&pvs, "reserved", "Available").await?;
    make_pvc(&pvcs, "later", "1Gi", json!({})).await?;
    let l = wait_claim_bound(&pvcs, "later").await?;
    assert_eq!(
        l.spec.and_then(|s| s.volume_name).as_deref(),
        Some("reserved")
    );
    assert_eq!(
        pvs.get("small")
            .await?
            .status
            .and_then(|s| s.phase)
            .as_deref(),
        Some("Available")
    );
    Ok(())
}
