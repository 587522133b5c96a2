//! Static pods (upstream `pkg/kubelet/config/file.go` and `pod/mirror_client.go`): pods
//! defined by files in the agent's manifest directory (`--pod-manifest-path`, default
//! `DATA_DIR/manifests`), run by the agent itself, also while the API server is away.
//!
//! Each file (YAML or JSON; dotfiles ignored) holds a Pod, several as YAML documents. As
//! upstream does, a static pod is named `<name>-<nodeName>`, bound to this node, put in
//! `default` when it names no namespace, and given a uid hashed from its file's content
//! and the node name, so that the same file on a restarted agent is the same pod (and its
//! running containers are adopted) while an edited file is a new pod. Its **mirror pod** in
//! the API carries `kubernetes.io/config.mirror` and an owner reference to the Node; it is
//! created when missing, re-created when the file changed, and deleted when the file goes.
//! The pod worker writes the static pod's status to its mirror.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use crate::worker::{Adopted, Update};
use crate::Ctx;

/// Upstream's annotations on static and mirror pods.
pub const ANNOTATION_MIRROR: &str = "kubernetes.io/config.mirror";
pub const ANNOTATION_HASH: &str = "kubernetes.io/config.hash";
pub const ANNOTATION_SOURCE: &str = "kubernetes.io/config.source";
pub const ANNOTATION_SEEN: &str = "kubernetes.io/config.seen";
/// How often the directory is read again (upstream's file source re-lists every 20 s and
/// watches with inotify; polling this often is as prompt and simpler).
const SCAN_PERIOD: Duration = Duration::from_secs(2);

/// Whether an API pod is the mirror of a static pod (the pod manager leaves those alone).
pub(crate) fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_MIRROR))
}

/// The manifest directory of this agent.
pub(crate) fn manifest_dir(ctx: &Ctx) -> PathBuf {
    ctx.cfg
        .pod_manifest_path
        .clone()
        .unwrap_or_else(|| ctx.cfg.data_dir.join("manifests"))
}

/// Reads every static pod of `dir`; a file that is not a valid pod is skipped with a
/// warning (as upstream logs and skips it). Pods come out sorted by uid.
pub fn scan(dir: &Path, node: &str) -> Vec<Pod> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
                && p.is_file()
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        match read_file(&f, node) {
            Ok(mut pods) => out.append(&mut pods),
            Err(e) => tracing::warn!(file = %f.display(), error = %e, "skipping static pod file"),
        }
    }
    out.sort_by(|a, b| a.metadata.uid.cmp(&b.metadata.uid));
    out.dedup_by(|a, b| a.metadata.uid == b.metadata.uid);
    out
}

fn read_file(path: &Path, node: &str) -> Result<Vec<Pod>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let v: serde_json::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        if v.is_null() {
            continue;
        }
        if v["kind"] != "Pod" || v["apiVersion"] != "v1" {
            return Err(format!(
                "document {i}: want apiVersion v1, kind Pod, got {} {}",
                v["apiVersion"], v["kind"]
            ));
        }
        let canonical = serde_json::to_string(&v).map_err(|e| e.to_string())?;
        let pod: Pod = serde_json::from_value(v).map_err(|e| format!("document {i}: {e}"))?;
        out.push(prepare(pod, &canonical, path, node)?);
    }
    Ok(out)
}

/// Upstream's `applyDefaults` for file pods: name, namespace, node, uid, annotations.
fn prepare(mut pod: Pod, canonical: &str, path: &Path, node: &str) -> Result<Pod, String> {
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| "a static pod needs metadata.name".to_string())?;
    let full = format!("{name}-{node}");
    if full.len() > 253 {
        return Err(format!("name {full:?} is longer than 253 characters"));
    }
    let mut h = Sha256::new();
    h.update(canonical.as_bytes());
    h.update(b"\0");
    h.update(node.as_bytes());
    h.update(b"\0");
    h.update(path.to_string_lossy().as_bytes());
    let digest = h.finalize();
    let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    pod.metadata.name = Some(full);
    if pod.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        pod.metadata.namespace = Some("default".into());
    }
    pod.metadata.uid = Some(hash.clone());
    pod.metadata.resource_version = None;
    let ann = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    ann.insert(ANNOTATION_HASH.into(), hash);
    ann.insert(ANNOTATION_SOURCE.into(), "file".into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.to_string());
    Ok(pod)
}

/// Runs the static pods of `pods` and stops those no longer there: a worker per new uid
/// (with the containers a previous agent left for it), `Gone` to the workers of removed
/// ones. `statics` is the set of static pod uids the pod manager runs.
pub(crate) fn reconcile(
    ctx: &Arc<Ctx>,
    pods: Vec<Pod>,
    statics: &mut HashSet<String>,
    workers: &mut HashMap<String, watch::Sender<Update>>,
    adopted: &mut HashMap<String, Vec<Adopted>>,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let mut now = HashSet::new();
    for pod in pods {
        let Some(uid) = pod.metadata.uid.clone() else {
            continue;
        };
        now.insert(uid.clone());
        if workers.contains_key(&uid) {
            continue;
        }
        tracing::info!(pod = ?pod.metadata.name, pod_uid = %uid, "starting static pod");
        let pod = Arc::new(pod);
        let (tx, rx) = watch::channel(Update::Pod(pod.clone()));
        let mine = adopted.remove(&uid).unwrap_or_default();
        tasks.spawn(crate::worker::run(
            ctx.clone(),
            pod,
            mine,
            rx,
            crate::worker::Seen::now(),
        ));
        workers.insert(uid, tx);
    }
    for uid in statics.difference(&now) {
        tracing::info!(pod_uid = %uid, "stopping static pod: its file is gone");
        if let Some(tx) = workers.remove(uid) {
            let _ = tx.send(Update::Gone);
        }
    }
    *statics = now;
}

/// The static pods now, and a task sending the new set whenever the directory changes.
pub(crate) fn start(ctx: Arc<Ctx>) -> (Vec<Pod>, mpsc::UnboundedReceiver<Vec<Pod>>) {
    let dir = manifest_dir(&ctx);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "creating the static pod directory");
    }
    let initial = scan(&dir, &ctx.cfg.node_name);
    let (tx, rx) = mpsc::unbounded_channel();
    let first = initial.clone();
    tokio::spawn(async move {
        let mut current = first;
        loop {
            sync_mirrors(&ctx, &current).await;
            tokio::time::sleep(SCAN_PERIOD).await;
            let d = dir.clone();
            let node = ctx.cfg.node_name.clone();
            let Ok(next) = tokio::task::spawn_blocking(move || scan(&d, &node)).await else {
                continue;
            };
            let uids = |ps: &[Pod]| -> Vec<Option<String>> {
                ps.iter().map(|p| p.metadata.uid.clone()).collect()
            };
            if uids(&next) != uids(&current) {
                if tx.send(next.clone()).is_err() {
                    return;
                }
                current = next;
            }
        }
    });
    (initial, rx)
}

/// Makes the API's mirror pods match `pods`: creates missing ones, re-creates those of an
/// older file version, deletes those whose file is gone. Errors are retried next round.
async fn sync_mirrors(ctx: &Ctx, pods: &[Pod]) {
    let all: Api<Pod> = Api::all(ctx.client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={}", ctx.cfg.node_name));
    let existing = match all.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            tracing::debug!(error = %e, "listing mirror pods");
            return;
        }
    };
    let hash_of = |p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_MIRROR).or(a.get(ANNOTATION_HASH)))
            .cloned()
    };
    let key = |p: &Pod| {
        (
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default(),
        )
    };
    let grace0 = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    for m in existing.iter().filter(|p| is_mirror(p)) {
        // A mirror being deleted is removed at once and made again (upstream's syncPod).
        let wanted = m.metadata.deletion_timestamp.is_none()
            && pods
                .iter()
                .any(|p| key(p) == key(m) && hash_of(p) == hash_of(m));
        if !wanted {
            let (ns, name) = key(m);
            tracing::info!(pod = %name, namespace = %ns, "deleting a stale mirror pod");
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let dp = DeleteParams {
                preconditions: m.metadata.uid.clone().map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..grace0.clone()
            };
            if let Err(e) = api.delete(&name, &dp).await {
                tracing::debug!(pod = %name, error = %e, "deleting mirror pod");
            }
        }
    }
    let node_uid = match Api::<Node>::all(ctx.client.clone())
        .get(&ctx.cfg.node_name)
        .await
    {
        Ok(n) => n.metadata.uid,
        Err(_) => None,
    };
    for p in pods {
        let present = existing.iter().any(|m| {
            is_mirror(m)
                && m.metadata.deletion_timestamp.is_none()
                && key(m) == key(p)
                && hash_of(m) == hash_of(p)
        });
        if present {
            continue;
        }
        let mut m = p.clone();
        m.metadata.uid = None;
        m.status = None;
        let hash = hash_of(p).unwrap_or_default();
        let ann = m.metadata.annotations.get_or_insert_with(BTreeMap::new);
        ann.insert(ANNOTATION_MIRROR.into(), hash);
        ann.insert(ANNOTATION_SEEN.into(), crate::node::now());
        if let Some(uid) = &node_uid {
            m.metadata.owner_references = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: ctx.cfg.node_name.clone(),
                    uid: uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: None,
                },
            ]);
        }
        let (ns, name) = key(p);
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        match api.create(&PostParams::default(), &m).await {
            Ok(_) => tracing::info!(pod = %name, namespace = %ns, "created mirror pod"),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // An older mirror (or a user's pod) holds the name: replace it.
                let _ = api.delete(&name, &grace0).await;
            }
            Err(e) => tracing::debug!(pod = %name, error = %e, "creating mirror pod"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_become_static_pods_with_upstreams_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("web.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: kube-system}\nspec:\n  containers: [{name: c, image: busybox}]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), "not: a pod").unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "apiVersion: v1\nkind: Service\n",
        )
        .unwrap();
        let pods = scan(dir.path(), "n1");
        assert_eq!(pods.len(), 2);
        let web = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some("web-n1"))
            .unwrap();
        assert_eq!(web.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(web.spec.as_ref().unwrap().node_name.as_deref(), Some("n1"));
        let uid = web.metadata.uid.clone().unwrap();
        assert_eq!(uid.len(), 32);
        let ann = web.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann[ANNOTATION_HASH], uid);
        assert_eq!(ann[ANNOTATION_SOURCE], "file");
        assert!(pods
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some("db-n1")
                && p.metadata.namespace.as_deref() == Some("kube-system")));
        // Stable for the same file and node; different on another node or after an edit.
        assert_eq!(scan(dir.path(), "n1")[0].metadata.uid, pods[0].metadata.uid);
        assert_ne!(scan(dir.path(), "n2")[0].metadata.uid, pods[0].metadata.uid);
        std::fs::write(
            dir.path().join("web.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox:2}]\n",
        )
        .unwrap();
        let again = scan(dir.path(), "n1");
        assert_eq!(again.len(), 1);
        assert_ne!(again[0].metadata.uid.as_deref(), Some(uid.as_str()));
        assert!(scan(&dir.path().join("missing"), "n1").is_empty());
    }
}
