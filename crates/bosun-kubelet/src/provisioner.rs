//! The node's local-path provisioner (`bosun.io/local-path`), the external-provisioner side
//! of dynamic provisioning as rancher's local-path-provisioner does it, run by every agent
//! for its own node:
//!
//! - A claim the PV controller handed to this provisioner (annotation
//!   `volume.kubernetes.io/storage-provisioner: bosun.io/local-path`) whose selected node
//!   (`volume.kubernetes.io/selected-node`, written by the scheduler for WaitForFirstConsumer
//!   classes, by the PV controller for Immediate ones) is this node gets a directory
//!   `DATA_DIR/storage/pvc-<uid>_<namespace>_<name>` and a PersistentVolume `pvc-<uid>`:
//!   hostPath (DirectoryOrCreate) at that directory, node affinity to this node, the claim's
//!   request as capacity and its access modes, pre-bound to the claim (`claimRef` with uid),
//!   the class's reclaim policy and mount options, `pv.kubernetes.io/provisioned-by`. The PV
//!   controller then binds the two.
//! - A volume it provisioned on this node that is Released with reclaim policy Delete (its
//!   claim is gone) has its directory removed, then the volume is deleted.
//!
//! It runs in the agent rather than in the controller manager because the directory lives
//! on the node: the agent knows its data dir and can create and remove the directory itself,
//! where rancher's provisioner has to start a helper pod on the node for each.
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::Ctx;

/// The provisioner name StorageClasses use for node-local volumes.
pub(crate) const PROVISIONER: &str = "bosun.io/local-path";
const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
const ANN_BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// How often everything is looked at again even without a change (a failed step retries).
const RESYNC: Duration = Duration::from_secs(15);

/// `DATA_DIR/storage`: where this node's provisioned volumes live.
pub(crate) fn storage_root(data_dir: &Path) -> PathBuf {
    data_dir.join("storage")
}

/// The directory of a claim's volume (local-path-provisioner's `<pv>_<ns>_<claim>` layout).
pub(crate) fn volume_dir(root: &Path, claim_uid: &str, ns: &str, name: &str) -> PathBuf {
    root.join(format!("pvc-{claim_uid}_{ns}_{name}"))
}

/// What to do about one claim (pure, for tests).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClaimAction {
    Skip,
    /// Provision a volume of this class.
    Provision {
        class: String,
    },
    /// The claim cannot be provisioned here; the reason is reported on the claim.
    Refuse(String),
}

fn claim_class(c: &PersistentVolumeClaim) -> String {
    c.annotations()
        .get(ANN_BETA_CLASS)
        .cloned()
        .or_else(|| c.spec.as_ref().and_then(|s| s.storage_class_name.clone()))
        .unwrap_or_default()
}

/// Whether this node's provisioner should act on `claim`, upstream external-provisioner's
/// `shouldProvision` for one node.
pub(crate) fn claim_action(
    claim: &PersistentVolumeClaim,
    node: &str,
    volume_exists: bool,
    class: Option<&StorageClass>,
) -> ClaimAction {
    let ann = claim.annotations();
    let for_us = ann
        .get(ANN_STORAGE_PROVISIONER)
        .or_else(|| ann.get(ANN_BETA_STORAGE_PROVISIONER))
        .map(String::as_str)
        == Some(PROVISIONER);
    if claim.metadata.deletion_timestamp.is_some()
        || !for_us
        || ann.get(ANN_SELECTED_NODE).map(String::as_str) != Some(node)
        || claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .is_some_and(|v| !v.is_empty())
        || volume_exists
    {
        return ClaimAction::Skip;
    }
    let Some(class) = class.filter(|c| c.provisioner == PROVISIONER) else {
        return ClaimAction::Skip;
    };
    let spec = claim.spec.clone().unwrap_or_default();
    if spec.volume_mode.as_deref() == Some("Block") {
        return ClaimAction::Refuse(format!(
            "{PROVISIONER} provides Filesystem volumes only, not Block"
        ));
    }
    if spec.data_source.is_some() || spec.data_source_ref.is_some() {
        return ClaimAction::Refuse(format!(
            "{PROVISIONER} cannot populate a volume from a data source"
        ));
    }
    ClaimAction::Provision {
        class: class.name_any(),
    }
}

/// The PersistentVolume for `claim` on `node` at `path` (JSON, for the API).
pub(crate) fn volume_for(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &str,
    path: &Path,
) -> Value {
    let spec = claim.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_else(|| "0".into());
    let uid = claim.metadata.uid.clone().unwrap_or_default();
    let mut pv = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {
            "name": format!("pvc-{uid}"),
            "annotations": {ANN_PROVISIONED_BY: PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            "persistentVolumeReclaimPolicy": class.reclaim_policy.as_deref().unwrap_or("Delete"),
            "storageClassName": class.name_any(),
            "volumeMode": "Filesystem",
            "hostPath": {"path": path.to_string_lossy(), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
            "claimRef": {
                "kind": "PersistentVolumeClaim", "apiVersion": "v1",
                "namespace": claim.namespace().unwrap_or_default(),
                "name": claim.name_any(),
                "uid": uid,
                "resourceVersion": claim.metadata.resource_version,
            },
        },
    });
    if let Some(opts) = class.mount_options.as_ref().filter(|o| !o.is_empty()) {
        pv["spec"]["mountOptions"] = json!(opts);
    }
    pv
}

/// Whether `pv` is a volume this node provisioned and should now delete: made by this
/// provisioner, its directory under `root`, Released, reclaim policy Delete, and its claim
/// (by uid) no longer among `claims`.
pub(crate) fn should_delete(
    pv: &PersistentVolume,
    root: &Path,
    claim_exists: impl Fn(&str, &str, &str) -> bool,
) -> Option<PathBuf> {
    if pv.annotations().get(ANN_PROVISIONED_BY).map(String::as_str) != Some(PROVISIONER)
        || pv.metadata.deletion_timestamp.is_some()
    {
        return None;
    }
    let spec = pv.spec.as_ref()?;
    let path = PathBuf::from(&spec.host_path.as_ref()?.path);
    // Only a direct child of our own storage directory: never anything else on the node.
    if path.parent() != Some(root)
        || path
            .file_name()
            .is_none_or(|n| !n.to_string_lossy().starts_with("pvc-"))
    {
        return None;
    }
    if spec.persistent_volume_reclaim_policy.as_deref() != Some("Delete")
        || pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Released")
    {
        return None;
    }
    let r = spec.claim_ref.as_ref()?;
    let (ns, name, uid) = (
        r.namespace.as_deref().unwrap_or(""),
        r.name.as_deref().unwrap_or(""),
        r.uid.as_deref().unwrap_or(""),
    );
    if claim_exists(ns, name, uid) {
        return None;
    }
    Some(path)
}

/// Records an event about a claim, as an external provisioner does (source
/// `bosun.io/local-path_<node>`); failures are logged only.
fn record(ctx: &Arc<Ctx>, claim: &PersistentVolumeClaim, ty: &str, reason: &str, message: String) {
    let involved = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: claim.namespace(),
        name: Some(claim.name_any()),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        ..Default::default()
    };
    let mut ev = bosun_events::new_event(involved, ty, reason, message, PROVISIONER, None);
    ev.source = Some(k8s_openapi::api::core::v1::EventSource {
        component: Some(format!("{PROVISIONER}_{}", ctx.cfg.node_name)),
        host: None,
    });
    ev.reporting_instance = Some(ctx.cfg.node_name.clone());
    ctx.events.record(ev);
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A reflector of every `K`, notifying `notify` on each change.
fn reflect<K>(ctx: &Arc<Ctx>, notify: &Arc<Notify>) -> (Store<K>, AbortOnDrop)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let n = notify.clone();
    let task = tokio::spawn(
        reflector::reflector(
            writer,
            watcher(
                Api::<K>::all(ctx.client.clone()),
                watcher::Config::default(),
            )
            .default_backoff(),
        )
        .for_each(move |_| {
            n.notify_one();
            futures::future::ready(())
        }),
    );
    (store, AbortOnDrop(task))
}

/// Runs the provisioner for this node until the agent stops.
pub(crate) async fn run(ctx: Arc<Ctx>) {
    let notify = Arc::new(Notify::new());
    let (claims, _c) = reflect::<PersistentVolumeClaim>(&ctx, &notify);
    let (volumes, _v) = reflect::<PersistentVolume>(&ctx, &notify);
    let (classes, _s) = reflect::<StorageClass>(&ctx, &notify);
    for ready in [
        claims.wait_until_ready().await,
        volumes.wait_until_ready().await,
        classes.wait_until_ready().await,
    ] {
        if ready.is_err() {
            tracing::warn!("local-path provisioner: a watch ended before its first list");
            return;
        }
    }
    let root = storage_root(&ctx.cfg.data_dir);
    // Claims already told why they cannot be provisioned here (one event each).
    let mut refused: HashSet<String> = HashSet::new();
    loop {
        sync(&ctx, &root, &claims, &volumes, &classes, &mut refused).await;
        let _ = tokio::time::timeout(RESYNC, notify.notified()).await;
    }
}

async fn sync(
    ctx: &Arc<Ctx>,
    root: &Path,
    claims: &Store<PersistentVolumeClaim>,
    volumes: &Store<PersistentVolume>,
    classes: &Store<StorageClass>,
    refused: &mut HashSet<String>,
) {
    let node = ctx.cfg.node_name.as_str();
    let pvs: BTreeMap<String, Arc<PersistentVolume>> = volumes
        .state()
        .into_iter()
        .map(|v| (v.name_any(), v))
        .collect();
    let class_map: BTreeMap<String, Arc<StorageClass>> = classes
        .state()
        .into_iter()
        .map(|c| (c.name_any(), c))
        .collect();
    let all_claims = claims.state();
    for claim in &all_claims {
        let uid = claim.metadata.uid.clone().unwrap_or_default();
        let exists = pvs.contains_key(&format!("pvc-{uid}"));
        let class = class_map.get(&claim_class(claim)).map(|c| c.as_ref());
        match claim_action(claim, node, exists, class) {
            ClaimAction::Skip => {}
            ClaimAction::Refuse(why) => {
                if refused.insert(uid.clone()) {
                    record(ctx, claim, "Warning", "ProvisioningFailed", why);
                }
            }
            ClaimAction::Provision { class } => {
                let Some(class) = class_map.get(&class) else {
                    continue;
                };
                if let Err(e) = provision(ctx, root, claim, class).await {
                    tracing::warn!(claim = %format!("{}/{}", claim.namespace().unwrap_or_default(), claim.name_any()), error = %e, "provisioning failed");
                    record(
                        ctx,
                        claim,
                        "Warning",
                        "ProvisioningFailed",
                        format!(
                            "failed to provision volume with StorageClass {:?}: {e}",
                            class.name_any()
                        ),
                    );
                }
            }
        }
    }
    refused.retain(|uid| {
        all_claims
            .iter()
            .any(|c| c.metadata.uid.as_deref() == Some(uid.as_str()))
    });
    let claim_exists = |ns: &str, name: &str, uid: &str| {
        all_claims.iter().any(|c| {
            c.metadata.namespace.as_deref() == Some(ns)
                && c.metadata.name.as_deref() == Some(name)
                && (uid.is_empty() || c.metadata.uid.as_deref() == Some(uid))
        })
    };
    for pv in pvs.values() {
        let Some(dir) = should_delete(pv, root, claim_exists) else {
            continue;
        };
        if let Err(e) = delete(ctx, pv, &dir).await {
            tracing::warn!(volume = %pv.name_any(), error = %e, "deleting a provisioned volume");
        }
    }
}

async fn provision(
    ctx: &Arc<Ctx>,
    root: &Path,
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
) -> Result<(), String> {
    let ns = claim.namespace().unwrap_or_default();
    let name = claim.name_any();
    let uid = claim.metadata.uid.clone().unwrap_or_default();
    record(
        ctx,
        claim,
        "Normal",
        "Provisioning",
        format!("External provisioner is provisioning volume for claim \"{ns}/{name}\""),
    );
    let dir = volume_dir(root, &uid, &ns, &name);
    create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let pv: PersistentVolume =
        serde_json::from_value(volume_for(claim, class, &ctx.cfg.node_name, &dir))
            .map_err(|e| format!("building the volume: {e}"))?;
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match api.create(&PostParams::default(), &pv).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => return Ok(()),
        Err(e) => return Err(format!("creating volume pvc-{uid}: {e}")),
    }
    tracing::info!(claim = %format!("{ns}/{name}"), dir = %dir.display(), "provisioned a local volume");
    record(
        ctx,
        claim,
        "Normal",
        "ProvisioningSucceeded",
        format!("Successfully provisioned volume pvc-{uid}"),
    );
    Ok(())
}

/// The volume's directory, world-writable as local-path-provisioner makes it (pods may run
/// as any user).
fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
}

async fn delete(ctx: &Arc<Ctx>, pv: &PersistentVolume, dir: &Path) -> Result<(), String> {
    let d = dir.to_path_buf();
    let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("remove {}: {e}", d.display())),
    })
    .await
    .map_err(|e| e.to_string())?;
    removed?;
    let name = pv.name_any();
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(format!("deleting volume {name}: {e}")),
    }
    tracing::info!(volume = %name, dir = %dir.display(), "deleted a provisioned local volume");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(v: Value) -> PersistentVolumeClaim {
        serde_json::from_value(v).expect("claim json")
    }

    fn class(mode: &str) -> StorageClass {
        serde_json::from_value(json!({
            "metadata": {"name": "local-path"}, "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete", "volumeBindingMode": mode,
        }))
        .expect("class json")
    }

    fn handed_over(node: &str) -> PersistentVolumeClaim {
        claim(json!({
            "metadata": {"name": "data", "namespace": "ns1", "uid": "u1", "resourceVersion": "7",
                "annotations": {ANN_STORAGE_PROVISIONER: PROVISIONER, ANN_SELECTED_NODE: node}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                     "resources": {"requests": {"storage": "2Gi"}}},
        }))
    }

    #[test]
    fn acts_only_on_claims_handed_to_it_for_this_node() {
        let sc = class("WaitForFirstConsumer");
        let c = handed_over("n1");
        assert_eq!(
            claim_action(&c, "n1", false, Some(&sc)),
            ClaimAction::Provision {
                class: "local-path".into()
            }
        );
        assert_eq!(claim_action(&c, "n2", false, Some(&sc)), ClaimAction::Skip);
        assert_eq!(claim_action(&c, "n1", true, Some(&sc)), ClaimAction::Skip);
        assert_eq!(claim_action(&c, "n1", false, None), ClaimAction::Skip);
        let mut other = sc.clone();
        other.provisioner = "example.com/other".into();
        assert_eq!(
            claim_action(&c, "n1", false, Some(&other)),
            ClaimAction::Skip
        );
        // Not yet handed over by the PV controller.
        let mut waiting = c.clone();
        if let Some(a) = waiting.metadata.annotations.as_mut() {
            a.remove(ANN_STORAGE_PROVISIONER);
        }
        assert_eq!(
            claim_action(&waiting, "n1", false, Some(&sc)),
            ClaimAction::Skip
        );
        let mut bound = c.clone();
        if let Some(s) = bound.spec.as_mut() {
            s.volume_name = Some("pv".into());
        }
        assert_eq!(
            claim_action(&bound, "n1", false, Some(&sc)),
            ClaimAction::Skip
        );
        let mut block = c.clone();
        if let Some(s) = block.spec.as_mut() {
            s.volume_mode = Some("Block".into());
        }
        assert!(matches!(
            claim_action(&block, "n1", false, Some(&sc)),
            ClaimAction::Refuse(_)
        ));
    }

    #[test]
    fn the_volume_is_pre_bound_node_local_and_sized_as_asked() {
        let root = Path::new("/var/lib/bosun/agent/storage");
        let c = handed_over("n1");
        let dir = volume_dir(root, "u1", "ns1", "data");
        assert_eq!(
            dir,
            Path::new("/var/lib/bosun/agent/storage/pvc-u1_ns1_data")
        );
        let pv = volume_for(&c, &class("Immediate"), "n1", &dir);
        assert_eq!(pv["metadata"]["name"], "pvc-u1");
        assert_eq!(
            pv["metadata"]["annotations"][ANN_PROVISIONED_BY],
            PROVISIONER
        );
        assert_eq!(pv["spec"]["capacity"]["storage"], "2Gi");
        assert_eq!(pv["spec"]["accessModes"], json!(["ReadWriteOnce"]));
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(pv["spec"]["storageClassName"], "local-path");
        assert_eq!(
            pv["spec"]["hostPath"]["path"],
            "/var/lib/bosun/agent/storage/pvc-u1_ns1_data"
        );
        assert_eq!(
            pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
                ["values"],
            json!(["n1"])
        );
        assert_eq!(pv["spec"]["claimRef"]["uid"], "u1");
        assert_eq!(pv["spec"]["claimRef"]["namespace"], "ns1");
        assert!(serde_json::from_value::<PersistentVolume>(pv).is_ok());
    }

    #[test]
    fn deletes_only_its_own_released_volumes() {
        let root = Path::new("/data/storage");
        let c = handed_over("n1");
        let dir = volume_dir(root, "u1", "ns1", "data");
        let mut pv: PersistentVolume =
            serde_json::from_value(volume_for(&c, &class("Immediate"), "n1", &dir)).expect("pv");
        let gone = |_: &str, _: &str, _: &str| false;
        assert_eq!(should_delete(&pv, root, gone), None, "not released yet");
        pv.status = Some(k8s_openapi::api::core::v1::PersistentVolumeStatus {
            phase: Some("Released".into()),
            ..Default::default()
        });
        assert_eq!(should_delete(&pv, root, gone), Some(dir.clone()));
        assert_eq!(
            should_delete(&pv, root, |_: &str, _: &str, uid: &str| uid == "u1"),
            None,
            "its claim still exists"
        );
        assert_eq!(
            should_delete(&pv, Path::new("/other/storage"), gone),
            None,
            "another node's"
        );
        let mut retain = pv.clone();
        if let Some(s) = retain.spec.as_mut() {
            s.persistent_volume_reclaim_policy = Some("Retain".into());
        }
        assert_eq!(should_delete(&retain, root, gone), None);
        let mut foreign = pv.clone();
        foreign.metadata.annotations = None;
        assert_eq!(should_delete(&foreign, root, gone), None);
        let mut escape = pv.clone();
        if let Some(h) = escape.spec.as_mut().and_then(|s| s.host_path.as_mut()) {
            h.path = "/data/storage/../../etc".into();
        }
        assert_eq!(should_delete(&escape, root, gone), None);
    }
}
