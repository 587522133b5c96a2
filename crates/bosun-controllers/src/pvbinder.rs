//! PersistentVolume binding, as upstream's `pkg/controller/volume/persistentvolume`
//! (`pv_controller.go`), with dynamic provisioning through external provisioners and
//! without attaching or recycling plugins:
//!
//! - A Pending claim binds to the smallest Available volume that fits: same storage class,
//!   same volumeMode, every requested access mode, at least the requested storage, labels
//!   matching the claim's selector. A volume pre-bound to the claim (`spec.claimRef`) wins;
//!   a claim pre-bound to a volume (`spec.volumeName`) takes that one only.
//! - Binding writes the volume's `claimRef` (and `pv.kubernetes.io/bound-by-controller`),
//!   its phase Bound, the claim's `volumeName` with `pv.kubernetes.io/bind-completed`
//!   (and `bound-by-controller` when the controller chose the volume), and the claim's
//!   status (phase Bound, access modes and capacity of the volume).
//! - StorageClasses (storage.k8s.io/v1): a claim of a class with `volumeBindingMode:
//!   WaitForFirstConsumer` waits (event `WaitForFirstConsumer`) until the scheduler has
//!   written `volume.kubernetes.io/selected-node` on it, then binds only to volumes whose
//!   node affinity admits that node. A claim that no volume fits is provisioned: it gets
//!   `volume.kubernetes.io/storage-provisioner` (and the beta annotation) naming the class's
//!   provisioner and the event `ExternalProvisioning`, upstream's hand-off to an external
//!   provisioner, which creates a volume pre-bound to the claim that this controller then
//!   binds. bosun's own provisioner, `bosun.io/local-path`, runs in every agent
//!   (`bosun-kubelet/src/provisioner.rs`) and provisions on the claim's selected node; for
//!   an Immediate class this controller selects that node itself (a Ready, schedulable one,
//!   spread by the claim's uid), since a node-local volume needs one.
//! - A volume whose claim is gone is Released; with reclaimPolicy Delete it is deleted,
//!   unless an external provisioner made it (`pv.kubernetes.io/provisioned-by`): then that
//!   provisioner deletes the storage and the volume (event `ExternalDeleting`).
//!   A bound claim whose volume is gone or bound elsewhere is Lost.
//! - A claim of a class that does not exist binds to volumes of that class name only, and
//!   says `storageclass.storage.k8s.io "<class>" not found` while none fits.
//!
//! Not done: the scheduler does not take statically provisioned local volumes into account
//! when it picks a node for a WaitForFirstConsumer claim (upstream's VolumeBinding plugin
//! does); `allowedTopologies` is not honoured; no expansion.

use std::sync::Arc;

use bosun_api::quantity::Quantity;
use bosun_api::selector::LabelSelector;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::events::Recorder;
use crate::informer::{key_of, Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::util;
use crate::{Error, Result};

/// Set on a claim once binding is complete (upstream `AnnBindCompleted`).
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on a volume or claim whose binding the controller chose (`AnnBoundByController`).
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The beta annotation that predates `storageClassName`.
const ANN_BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// The node the scheduler chose for a WaitForFirstConsumer claim (`AnnSelectedNode`).
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The provisioner a claim waits for (`AnnStorageProvisioner`, and its beta form).
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// Set by a provisioner on the volumes it made (`AnnDynamicallyProvisioned`).
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// bosun's node-local provisioner, run by every agent.
pub const LOCAL_PATH_PROVISIONER: &str = "bosun.io/local-path";
/// The label every node carries with its name, used in local volumes' node affinity.
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

const COMPONENT: &str = "persistentvolume-binder-controller";

/// Queue keys: volumes and claims share one queue.
fn volume_key(name: &str) -> String {
    format!("pv:{name}")
}
fn claim_key(key: &str) -> String {
    format!("pvc:{key}")
}

pub(crate) struct PvBinder {
    client: Client,
    volumes: Informer<PersistentVolume>,
    claims: Informer<PersistentVolumeClaim>,
    classes: Informer<StorageClass>,
    nodes: Informer<Node>,
    queue: WorkQueue<String>,
    recorder: Recorder,
}

impl PvBinder {
    pub(crate) fn new(informers: &Informers, recorder: Recorder) -> Arc<Self> {
        let c = Arc::new(PvBinder {
            client: informers.client().clone(),
            volumes: informers.get::<PersistentVolume>(),
            claims: informers.get::<PersistentVolumeClaim>(),
            classes: informers.get::<StorageClass>(),
            nodes: informers.get::<Node>(),
            queue: WorkQueue::new(),
            recorder,
        });
        // A class that appears or changes may let its waiting claims go on.
        let me = Arc::downgrade(&c);
        c.classes.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let name = match ch {
                Change::Added(sc) | Change::Updated { new: sc, .. } => sc.name_any(),
                Change::Deleted(_) => return,
            };
            for claim in c.claims.list() {
                if !bind_completed(&claim) && claim_class(&claim) == name {
                    c.queue.add(claim_key(&key_of(claim.as_ref())));
                }
            }
        });
        let me = Arc::downgrade(&c);
        c.volumes.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let (pv, deleted) = match ch {
                Change::Added(v) | Change::Updated { new: v, .. } => (v, false),
                Change::Deleted(v) => (v, true),
            };
            if !deleted {
                c.queue.add(volume_key(&pv.name_any()));
            }
            if let Some(r) = claim_ref(pv) {
                c.queue.add(claim_key(&format!(
                    "{}/{}",
                    r.namespace.as_deref().unwrap_or(""),
                    r.name.as_deref().unwrap_or("")
                )));
            }
            // A volume that became Available may fit a waiting claim.
            if !deleted && phase_of_pv(pv) == "Available" {
                for claim in c.claims.list() {
                    if !bind_completed(&claim) {
                        c.queue.add(claim_key(&key_of(claim.as_ref())));
                    }
                }
            }
        });
        let me = Arc::downgrade(&c);
        c.claims.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(pvc) | Change::Updated { new: pvc, .. } => {
                    c.queue.add(claim_key(&key_of(pvc.as_ref())))
                }
                Change::Deleted(pvc) => {
                    // Its volume is released.
                    let (ns, name) = (pvc.namespace().unwrap_or_default(), pvc.name_any());
                    for pv in c.volumes.list() {
                        if let Some(r) = claim_ref(&pv) {
                            if r.namespace.as_deref() == Some(&ns)
                                && r.name.as_deref() == Some(&name)
                            {
                                c.queue.add(volume_key(&pv.name_any()));
                            }
                        }
                    }
                }
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.volumes.wait_synced().await;
        self.claims.wait_synced().await;
        self.classes.wait_synced().await;
        self.nodes.wait_synced().await;
        // Upstream resyncs every 15 s; a resync catches anything a lost event left behind.
        let me = self.clone();
        let resync = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
            loop {
                tick.tick().await;
                for v in me.volumes.keys() {
                    me.queue.add(volume_key(&v));
                }
                for c in me.claims.keys() {
                    me.queue.add(claim_key(&c));
                }
            }
        });
        let me = self.clone();
        util::run_workers(COMPONENT, self.queue.clone(), workers, move |key| {
            let me = me.clone();
            async move {
                if let Some(name) = key.strip_prefix("pv:") {
                    me.sync_volume(name).await
                } else if let Some(k) = key.strip_prefix("pvc:") {
                    me.sync_claim(k).await
                } else {
                    Ok(())
                }
            }
        })
        .await;
        resync.abort();
    }

    async fn sync_claim(&self, key: &str) -> Result<()> {
        let Some(claim) = self.claims.get_key(key) else {
            return Ok(());
        };
        if claim.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let volume_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if !bind_completed(&claim) {
            if volume_name.is_empty() {
                return self.sync_unbound_claim(&claim).await;
            }
            // Pre-bound by the user to one volume.
            let Some(pv) = self.volumes.get("", &volume_name) else {
                return self.claim_phase(&claim, "Pending").await;
            };
            match claim_ref(&pv) {
                None => {
                    if let Err(why) = check_satisfies(&pv, &claim) {
                        self.recorder.record(
                            claim.as_ref(),
                            "Warning",
                            "VolumeMismatch",
                            format!("Cannot bind to requested volume {volume_name:?}: {why}"),
                        );
                        return self.claim_phase(&claim, "Pending").await;
                    }
                    self.bind(&pv, &claim, false).await
                }
                Some(r) if ref_is_claim(r, &claim) => self.bind(&pv, &claim, false).await,
                Some(_) => self.claim_phase(&claim, "Pending").await,
            }
        } else {
            let pv = if volume_name.is_empty() {
                None
            } else {
                self.volumes.get("", &volume_name)
            };
            let Some(pv) = pv else {
                if claim_phase(&claim) != "Lost" {
                    self.recorder.record(
                        claim.as_ref(),
                        "Warning",
                        "ClaimLost",
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
                            .into(),
                    );
                }
                return self.claim_phase(&claim, "Lost").await;
            };
            match claim_ref(&pv) {
                None => self.bind(&pv, &claim, false).await,
                Some(r) if ref_is_claim(r, &claim) => self.bind(&pv, &claim, false).await,
                Some(_) => {
                    if claim_phase(&claim) != "Lost" {
                        self.recorder.record(
                            claim.as_ref(),
                            "Warning",
                            "ClaimMisbound",
                            "Two claims are bound to the same volume, this one is bound incorrectly"
                                .into(),
                        );
                    }
                    self.claim_phase(&claim, "Lost").await
                }
            }
        }
    }

    /// A claim bound to no volume yet: wait for its first consumer, bind to a fitting
    /// volume, or hand it to its class's provisioner.
    async fn sync_unbound_claim(&self, claim: &Arc<PersistentVolumeClaim>) -> Result<()> {
        let class_name = claim_class(claim);
        let class = if class_name.is_empty() {
            None
        } else {
            self.classes.get("", &class_name)
        };
        let delayed = class.as_ref().is_some_and(|c| is_delayed(c));
        let selected = claim
            .annotations()
            .get(ANN_SELECTED_NODE)
            .filter(|n| !n.is_empty())
            .cloned();
        let volumes = self.volumes.list();
        let found = match (&selected, delayed) {
            (None, true) => {
                self.recorder.record(
                    claim.as_ref(),
                    "Normal",
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding".into(),
                );
                return self.claim_phase(claim, "Pending").await;
            }
            (Some(node), true) => {
                let labels = self
                    .nodes
                    .get("", node)
                    .and_then(|n| n.metadata.labels.clone())
                    .unwrap_or_default();
                let on_node: Vec<Arc<PersistentVolume>> = volumes
                    .into_iter()
                    .filter(|pv| {
                        claim_ref(pv).is_some_and(|r| ref_is_claim(r, claim))
                            || volume_admits_node(pv, node, &labels)
                    })
                    .collect();
                find_best_match(claim, &on_node)
            }
            (_, false) => find_best_match(claim, &volumes),
        };
        if let Some(pv) = found {
            return self.bind(&pv, claim, true).await;
        }
        match class {
            Some(class) => self.provision(claim, &class, selected).await,
            None => {
                let (reason, msg) = if class_name.is_empty() {
                    (
                        "FailedBinding",
                        "no persistent volumes available for this claim and no storage class is set".to_string(),
                    )
                } else {
                    (
                        "ProvisioningFailed",
                        format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
                    )
                };
                self.recorder.record(claim.as_ref(), "Warning", reason, msg);
                self.claim_phase(claim, "Pending").await
            }
        }
    }

    /// Upstream's hand-off to an external provisioner (`provisionClaim` for a class whose
    /// provisioner is not in-tree): name it on the claim and wait for its volume. For
    /// bosun's node-local provisioner an Immediate claim also gets the node to provision on.
    async fn provision(
        &self,
        claim: &Arc<PersistentVolumeClaim>,
        class: &StorageClass,
        selected: Option<String>,
    ) -> Result<()> {
        let provisioner = class.provisioner.as_str();
        let mut ann = serde_json::Map::new();
        if claim
            .annotations()
            .get(ANN_STORAGE_PROVISIONER)
            .map(String::as_str)
            != Some(provisioner)
        {
            ann.insert(ANN_STORAGE_PROVISIONER.into(), json!(provisioner));
            ann.insert(ANN_BETA_STORAGE_PROVISIONER.into(), json!(provisioner));
        }
        if selected.is_none() && provisioner == LOCAL_PATH_PROVISIONER {
            let nodes = self.nodes.list();
            match pick_node(claim.metadata.uid.as_deref().unwrap_or(""), &nodes) {
                Some(node) => {
                    ann.insert(ANN_SELECTED_NODE.into(), json!(node));
                }
                None => {
                    self.recorder.record(
                        claim.as_ref(),
                        "Warning",
                        "ProvisioningFailed",
                        "no Ready, schedulable node to provision a local volume on".into(),
                    );
                    return self.claim_phase(claim, "Pending").await;
                }
            }
        }
        if !ann.is_empty() {
            let ns = claim.namespace().unwrap_or_default();
            let name = claim.name_any();
            let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
            let patch = json!({"metadata": {
                "resourceVersion": claim.metadata.resource_version, "annotations": ann}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::api("annotate", format!("claim {ns}/{name}"), e))?;
        }
        self.recorder.record(
            claim.as_ref(),
            "Normal",
            "ExternalProvisioning",
            external_provisioning_message(provisioner),
        );
        self.claim_phase(claim, "Pending").await
    }

    /// Binds `pv` and `claim` to each other; every step is skipped when already done,
    /// so a retry after a conflict picks up where it stopped.
    async fn bind(
        &self,
        pv: &PersistentVolume,
        claim: &PersistentVolumeClaim,
        controller_chose_volume: bool,
    ) -> Result<()> {
        let pv_name = pv.name_any();
        let ns = claim.namespace().unwrap_or_default();
        let claim_name = claim.name_any();
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        let bound_ref = claim_ref(pv).is_some_and(|r| {
            ref_is_claim(r, claim) && r.uid.as_deref() == claim.metadata.uid.as_deref()
        });
        if !bound_ref {
            let mut patch = json!({
                "metadata": {"resourceVersion": pv.metadata.resource_version},
                "spec": {"claimRef": {
                    "kind": "PersistentVolumeClaim", "apiVersion": "v1",
                    "namespace": ns, "name": claim_name,
                    "uid": claim.metadata.uid, "resourceVersion": claim.metadata.resource_version,
                }},
            });
            if claim_ref(pv).is_none() {
                patch["metadata"]["annotations"] = json!({ANN_BOUND_BY_CONTROLLER: "yes"});
            }
            pvs.patch(&pv_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::api("bind", format!("volume {pv_name}"), e))?;
        }
        if phase_of_pv(pv) != "Bound" {
            let patch = json!({"status": {"phase": "Bound"}});
            pvs.patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::api("update status of", format!("volume {pv_name}"), e))?;
        }
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let has_volume =
            claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == Some(pv_name.as_str());
        if !has_volume || !bind_completed(claim) {
            let mut ann = json!({ANN_BIND_COMPLETED: "yes"});
            if controller_chose_volume && !has_volume {
                ann[ANN_BOUND_BY_CONTROLLER] = json!("yes");
            }
            let patch = json!({
                "metadata": {"resourceVersion": claim.metadata.resource_version, "annotations": ann},
                "spec": {"volumeName": pv_name},
            });
            pvcs.patch(&claim_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::api("bind", format!("claim {ns}/{claim_name}"), e))?;
        }
        let spec = pv.spec.clone().unwrap_or_default();
        let want = json!({
            "phase": "Bound",
            "accessModes": spec.access_modes,
            "capacity": spec.capacity,
        });
        let have = claim.status.as_ref().map(
            |s| json!({"phase": s.phase, "accessModes": s.access_modes, "capacity": s.capacity}),
        );
        if have.as_ref() != Some(&want) {
            pvcs.patch_status(
                &claim_name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": want })),
            )
            .await
            .map_err(|e| Error::api("update status of", format!("claim {ns}/{claim_name}"), e))?;
            tracing::info!(claim = %format!("{ns}/{claim_name}"), volume = %pv_name, "bound");
        }
        Ok(())
    }

    async fn claim_phase(&self, claim: &PersistentVolumeClaim, phase: &str) -> Result<()> {
        if claim_phase(claim) == phase {
            return Ok(());
        }
        let ns = claim.namespace().unwrap_or_default();
        let name = claim.name_any();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let patch = json!({"status": {"phase": phase}});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => not_found_ok(Error::api(
                "update status of",
                format!("claim {ns}/{name}"),
                e,
            )),
        }
    }

    async fn volume_phase(&self, pv: &PersistentVolume, phase: &str) -> Result<()> {
        if phase_of_pv(pv) == phase {
            return Ok(());
        }
        let name = pv.name_any();
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        let patch = json!({"status": {"phase": phase}});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => not_found_ok(Error::api("update status of", format!("volume {name}"), e)),
        }
    }

    async fn sync_volume(&self, name: &str) -> Result<()> {
        let Some(pv) = self.volumes.get("", name) else {
            return Ok(());
        };
        if pv.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Some(r) = claim_ref(&pv).cloned() else {
            return self.volume_phase(&pv, "Available").await;
        };
        let ns = r.namespace.clone().unwrap_or_default();
        let cname = r.name.clone().unwrap_or_default();
        if r.uid.as_deref().unwrap_or("").is_empty() {
            // Pre-bound by the user, waiting for its claim.
            self.queue.add(claim_key(&format!("{ns}/{cname}")));
            return self.volume_phase(&pv, "Available").await;
        }
        let mut claim = self.claims.get(&ns, &cname);
        if claim.as_ref().map(|c| c.metadata.uid.as_deref()) != Some(r.uid.as_deref()) {
            // The cache may lag behind a claim just created: ask the server.
            let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
            claim = api
                .get_opt(&cname)
                .await
                .map_err(|e| Error::api("get", format!("claim {ns}/{cname}"), e))?
                .map(Arc::new);
        }
        match claim {
            Some(c) if c.metadata.uid.as_deref() == r.uid.as_deref() => {
                let bound_to = c
                    .spec
                    .as_ref()
                    .and_then(|s| s.volume_name.clone())
                    .unwrap_or_default();
                if bound_to.is_empty() {
                    // Binding in progress: the claim's sync finishes it.
                    self.queue.add(claim_key(&key_of(c.as_ref())));
                    Ok(())
                } else if bound_to == name {
                    self.volume_phase(&pv, "Bound").await
                } else if pv.annotations().contains_key(ANN_BOUND_BY_CONTROLLER) {
                    // The claim went to another volume: undo our half of the binding.
                    let patch = json!({
                        "metadata": {"resourceVersion": pv.metadata.resource_version,
                                     "annotations": {ANN_BOUND_BY_CONTROLLER: null}},
                        "spec": {"claimRef": null},
                    });
                    let api: Api<PersistentVolume> = Api::all(self.client.clone());
                    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| Error::api("unbind", format!("volume {name}"), e))?;
                    Ok(())
                } else {
                    self.volume_phase(&pv, "Available").await
                }
            }
            _ => self.reclaim(&pv).await,
        }
    }

    /// The volume's claim is gone: Released, then what its reclaim policy says.
    async fn reclaim(&self, pv: &PersistentVolume) -> Result<()> {
        let name = pv.name_any();
        let phase = phase_of_pv(pv);
        if phase != "Released" && phase != "Failed" {
            self.volume_phase(pv, "Released").await?;
        }
        let policy = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            .unwrap_or("Retain");
        match policy {
            "Delete" if pv.annotations().contains_key(ANN_PROVISIONED_BY) => {
                if phase != "Released" && phase != "Failed" {
                    let by = pv
                        .annotations()
                        .get(ANN_PROVISIONED_BY)
                        .cloned()
                        .unwrap_or_default();
                    self.recorder.record(
                        pv,
                        "Normal",
                        "ExternalDeleting",
                        format!("waiting for a volume to be deleted either by the external provisioner '{by}' or manually deleted by the system administrator. If volume deletion is delayed, please verify that the provisioner is running and correctly registered."),
                    );
                }
                Ok(())
            }
            "Delete" => {
                let api: Api<PersistentVolume> = Api::all(self.client.clone());
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => Ok(()),
                    Err(e) => not_found_ok(Error::api("delete", format!("volume {name}"), e)),
                }
            }
            "Recycle" => {
                if phase != "Failed" {
                    self.recorder.record(
                        pv,
                        "Warning",
                        "VolumeFailedRecycle",
                        "no volume plugin matched: recycling is not supported".into(),
                    );
                    self.volume_phase(pv, "Failed").await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Upstream's `ExternalProvisioning` event message.
pub fn external_provisioning_message(provisioner: &str) -> String {
    format!("Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.")
}

fn is_delayed(class: &StorageClass) -> bool {
    class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
}

/// The node a node-local volume for an Immediate claim goes to: one of the Ready,
/// schedulable nodes, picked by a hash of the claim's uid so claims spread over nodes and
/// a retried sync picks the same one.
pub(crate) fn pick_node(claim_uid: &str, nodes: &[Arc<Node>]) -> Option<String> {
    let mut ready: Vec<String> = nodes
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true))
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .map(|n| n.name_any())
        .collect();
    if ready.is_empty() {
        return None;
    }
    ready.sort();
    // FNV-1a: stable across processes, unlike std's RandomState.
    let h = claim_uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let i = usize::try_from(h % ready.len() as u64).unwrap_or(0);
    ready.get(i).cloned()
}

/// Whether a volume's required node affinity admits the node (upstream
/// `CheckNodeAffinity`); a volume without one is reachable from every node. The node's
/// labels may be unknown yet: then only its name (and the hostname label, which carries it)
/// are checked.
pub(crate) fn volume_admits_node(
    pv: &PersistentVolume,
    node: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let Some(required) = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    let label = |k: &str| -> Option<&str> {
        labels
            .get(k)
            .map(String::as_str)
            .or_else(|| (k == HOSTNAME_LABEL).then_some(node))
    };
    required.node_selector_terms.iter().any(|t| {
        let exprs = t.match_expressions.as_deref().unwrap_or_default();
        let fields = t.match_fields.as_deref().unwrap_or_default();
        (!exprs.is_empty() || !fields.is_empty())
            && exprs
                .iter()
                .all(|r| util::node_requirement_matches(r, label(&r.key)))
            && fields
                .iter()
                .all(|r| r.key == "metadata.name" && util::node_requirement_matches(r, Some(node)))
    })
}

fn not_found_ok(e: Error) -> Result<()> {
    if e.is_not_found() {
        Ok(())
    } else {
        Err(e)
    }
}

fn claim_ref(pv: &PersistentVolume) -> Option<&ObjectReference> {
    pv.spec.as_ref()?.claim_ref.as_ref()
}

/// Whether `r` names this claim (its uid, when set, must match too).
fn ref_is_claim(r: &ObjectReference, claim: &PersistentVolumeClaim) -> bool {
    r.namespace.as_deref() == claim.metadata.namespace.as_deref()
        && r.name.as_deref() == claim.metadata.name.as_deref()
        && (r.uid.as_deref().unwrap_or("").is_empty()
            || r.uid.as_deref() == claim.metadata.uid.as_deref())
}

fn bind_completed(claim: &PersistentVolumeClaim) -> bool {
    claim.annotations().contains_key(ANN_BIND_COMPLETED)
}

fn phase_of_pv(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn claim_phase(c: &PersistentVolumeClaim) -> &str {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Upstream's `GetPersistentVolumeClaimClass`: the beta annotation, else the field.
pub fn claim_class(c: &PersistentVolumeClaim) -> String {
    if let Some(a) = c.annotations().get(ANN_BETA_CLASS) {
        return a.clone();
    }
    c.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

/// Upstream's `GetPersistentVolumeClass`.
pub fn volume_class(pv: &PersistentVolume) -> String {
    if let Some(a) = pv.annotations().get(ANN_BETA_CLASS) {
        return a.clone();
    }
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

fn requested_storage(c: &PersistentVolumeClaim) -> Quantity {
    c.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::from_api(q).ok())
        .unwrap_or_else(|| Quantity::new(0, bosun_api::quantity::Format::BinarySI))
}

fn volume_storage(pv: &PersistentVolume) -> Option<Quantity> {
    pv.spec
        .as_ref()?
        .capacity
        .as_ref()?
        .get("storage")
        .and_then(|q| Quantity::from_api(q).ok())
}

fn volume_mode_of(m: Option<&String>) -> &str {
    m.map(String::as_str).unwrap_or("Filesystem")
}

/// Why `pv` cannot hold `claim`, if it cannot (upstream's `checkVolumeSatisfyClaim`).
pub(crate) fn check_satisfies(
    pv: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> std::result::Result<(), String> {
    let want = requested_storage(claim);
    let have = volume_storage(pv);
    if have.is_none_or(|h| h.cmp(&want) == std::cmp::Ordering::Less) {
        return Err("requested PV is too small".into());
    }
    if volume_class(pv) != claim_class(claim) {
        return Err("storageClassName does not match".into());
    }
    let pv_spec = pv.spec.clone().unwrap_or_default();
    let c_spec = claim.spec.clone().unwrap_or_default();
    if volume_mode_of(pv_spec.volume_mode.as_ref()) != volume_mode_of(c_spec.volume_mode.as_ref()) {
        return Err("incompatible volumeMode".into());
    }
    let modes = pv_spec.access_modes.unwrap_or_default();
    if !c_spec
        .access_modes
        .unwrap_or_default()
        .iter()
        .all(|m| modes.contains(m))
    {
        return Err("incompatible accessMode".into());
    }
    Ok(())
}

/// Upstream's `findMatchingVolume`: a volume pre-bound to the claim, else the smallest
/// Available volume that satisfies it and matches its selector.
pub(crate) fn find_best_match(
    claim: &PersistentVolumeClaim,
    volumes: &[Arc<PersistentVolume>],
) -> Option<Arc<PersistentVolume>> {
    let selector = claim
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .map(|s| LabelSelector::from_api(Some(s)));
    let selector = match selector {
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => return None,
        None => None,
    };
    let mut best: Option<(Quantity, Arc<PersistentVolume>)> = None;
    for pv in volumes {
        if pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(r) = claim_ref(pv) {
            if ref_is_claim(r, claim) && check_satisfies(pv, claim).is_ok() {
                return Some(pv.clone());
            }
            continue;
        }
        if phase_of_pv(pv) != "Available" {
            continue;
        }
        if let Some(sel) = &selector {
            if !sel.matches_labels(pv.metadata.labels.as_ref()) {
                continue;
            }
        }
        if check_satisfies(pv, claim).is_err() {
            continue;
        }
        let Some(size) = volume_storage(pv) else {
            continue;
        };
        let smaller = best.as_ref().is_none_or(|(b, bpv)| match size.cmp(b) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => pv.name_any() < bpv.name_any(),
            std::cmp::Ordering::Greater => false,
        });
        if smaller {
            best = Some((size, pv.clone()));
        }
    }
    best.map(|(_, pv)| pv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(
        name: &str,
        size: &str,
        class: &str,
        modes: &[&str],
        labels: Value,
    ) -> Arc<PersistentVolume> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": labels},
                "spec": {"capacity": {"storage": size}, "accessModes": modes,
                         "storageClassName": class, "hostPath": {"path": "/tmp"}},
                "status": {"phase": "Available"},
            }))
            .unwrap_or_default(),
        )
    }

    use serde_json::Value;

    fn claim(
        size: &str,
        class: Option<&str>,
        modes: &[&str],
        selector: Value,
    ) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "c", "namespace": "default", "uid": "u1"},
            "spec": {"resources": {"requests": {"storage": size}}, "accessModes": modes,
                     "storageClassName": class, "selector": selector},
        }))
        .unwrap_or_default()
    }

    fn node(name: &str, ready: bool, unschedulable: bool) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                "spec": {"unschedulable": unschedulable},
                "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
            }))
            .unwrap_or_default(),
        )
    }

    #[test]
    fn immediate_local_claims_go_to_a_ready_schedulable_node() {
        assert_eq!(pick_node("u", &[]), None);
        let nodes = vec![
            node("a", false, false),
            node("b", true, true),
            node("c", true, false),
        ];
        assert_eq!(pick_node("u1", &nodes).as_deref(), Some("c"));
        let two = vec![node("x", true, false), node("y", true, false)];
        let picks: std::collections::BTreeSet<String> = (0..32)
            .filter_map(|i| pick_node(&format!("uid-{i}"), &two))
            .collect();
        assert_eq!(picks.len(), 2, "claims spread over both nodes");
        assert_eq!(pick_node("same", &two), pick_node("same", &two));
    }

    #[test]
    fn node_affinity_of_local_volumes() {
        let mut v = (*pv("l", "1Gi", "local", &["ReadWriteOnce"], json!({}))).clone();
        let labels = |n: &str| -> BTreeMap<String, String> {
            [("kubernetes.io/hostname".to_string(), n.to_string())].into()
        };
        assert!(
            volume_admits_node(&v, "n1", &labels("n1")),
            "no affinity: any node"
        );
        v = serde_json::from_value(json!({
            "metadata": {"name": "l"},
            "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}},
        }))
        .unwrap_or_default();
        assert!(volume_admits_node(&v, "n1", &labels("n1")));
        assert!(!volume_admits_node(&v, "n2", &labels("n2")));
        // Labels not known yet: the node name stands in for its hostname label.
        assert!(volume_admits_node(&v, "n1", &BTreeMap::new()));
    }

    #[test]
    fn smallest_fit_wins() {
        let vols = vec![
            pv("big", "10Gi", "", &["ReadWriteOnce"], json!({})),
            pv("small", "1Gi", "", &["ReadWriteOnce"], json!({})),
            pv("tiny", "500Mi", "", &["ReadWriteOnce"], json!({})),
            pv(
                "mid",
                "2Gi",
                "",
                &["ReadWriteOnce", "ReadOnlyMany"],
                json!({}),
            ),
        ];
        let c = claim("1Gi", None, &["ReadWriteOnce"], Value::Null);
        assert_eq!(
            find_best_match(&c, &vols).map(|v| v.name_any()).as_deref(),
            Some("small")
        );
        let c = claim("1Gi", None, &["ReadOnlyMany"], Value::Null);
        assert_eq!(
            find_best_match(&c, &vols).map(|v| v.name_any()).as_deref(),
            Some("mid")
        );
        let c = claim("20Gi", None, &["ReadWriteOnce"], Value::Null);
        assert!(find_best_match(&c, &vols).is_none());
    }

    #[test]
    fn class_and_selector_filter() {
        let vols = vec![
            pv("plain", "1Gi", "", &["ReadWriteOnce"], json!({})),
            pv(
                "fast",
                "5Gi",
                "fast",
                &["ReadWriteOnce"],
                json!({"tier": "gold"}),
            ),
            pv(
                "fast2",
                "2Gi",
                "fast",
                &["ReadWriteOnce"],
                json!({"tier": "silver"}),
            ),
        ];
        let c = claim("1Gi", Some("fast"), &["ReadWriteOnce"], Value::Null);
        assert_eq!(
            find_best_match(&c, &vols).map(|v| v.name_any()).as_deref(),
            Some("fast2")
        );
        let c = claim(
            "1Gi",
            Some("fast"),
            &["ReadWriteOnce"],
            json!({"matchLabels": {"tier": "gold"}}),
        );
        assert_eq!(
            find_best_match(&c, &vols).map(|v| v.name_any()).as_deref(),
            Some("fast")
        );
    }

    #[test]
    fn prebound_volume_wins_and_others_skip_it() {
        let mut pre = (*pv("pre", "10Gi", "", &["ReadWriteOnce"], json!({}))).clone();
        if let Some(s) = pre.spec.as_mut() {
            s.claim_ref = Some(ObjectReference {
                namespace: Some("default".into()),
                name: Some("c".into()),
                ..Default::default()
            });
        }
        let vols = vec![
            pv("small", "1Gi", "", &["ReadWriteOnce"], json!({})),
            Arc::new(pre),
        ];
        let c = claim("1Gi", None, &["ReadWriteOnce"], Value::Null);
        assert_eq!(
            find_best_match(&c, &vols).map(|v| v.name_any()).as_deref(),
            Some("pre")
        );
        let mut other = claim("1Gi", None, &["ReadWriteOnce"], Value::Null);
        other.metadata.name = Some("d".into());
        assert_eq!(
            find_best_match(&other, &vols)
                .map(|v| v.name_any())
                .as_deref(),
            Some("small")
        );
    }
}
