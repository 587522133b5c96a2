//! VolumeBinding, the part of upstream's plugin that delayed binding needs: a pod's
//! PersistentVolumeClaims must exist; a bound claim's volume must admit the node (its
//! required node affinity: "node(s) had volume node affinity conflict"); an unbound claim
//! of a WaitForFirstConsumer class does not hold the pod back (pinned to the claim's
//! selected node once one is chosen), and binding the pod first writes the chosen node on
//! it as `volume.kubernetes.io/selected-node`, which is what the PV controller and the
//! provisioner wait for. An unbound claim of an Immediate class keeps the pod pending.
//!
//! Differences from upstream: claims that are missing or unbound-Immediate are reported
//! as errors (retried with back-off, 1 s doubling to 10 s) because the queue has no
//! claim events to move the pod on; binding to statically provisioned volumes of a
//! WaitForFirstConsumer class is left to the PV controller after the node is chosen (the
//! scheduler does not look for such volumes on each node); the selected-node annotation is
//! written by a Bind plugin that runs before DefaultBinder (the framework has no PreBind),
//! and binding does not wait for the claim to be bound: the kubelet retries the mount.

use std::collections::HashSet;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{NodeSelectorTerm, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;

use crate::framework::{
    BindPlugin, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, PreFilterPlugin,
    PreFilterResult, Snapshot, Status,
};
use crate::plugins::helper::any_term_matches;

pub const NAME: &str = "VolumeBinding";
const STATE_KEY: &str = "PreFilterVolumeBinding";
const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const ANN_BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
pub const ERR_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const ERR_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";

/// What PreFilter found for one pod.
#[derive(Clone, Debug, Default)]
struct State {
    /// The required node selector terms of each bound claim's volume.
    volume_terms: Vec<Vec<NodeSelectorTerm>>,
}

/// Aborts a watch task when the plugin goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct VolumeBinding {
    client: Option<kube::Client>,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    _watches: Vec<AbortOnDrop>,
}

fn watch<K>(client: &kube::Client) -> (Store<K>, AbortOnDrop)
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
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()).default_backoff(),
    );
    let task = tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    (store, AbortOnDrop(task))
}

/// The claims a pod's volumes name (persistentVolumeClaim, and generic ephemeral volumes'
/// `<pod>-<volume>` claims).
fn claim_names(pod: &Pod) -> Vec<String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(c.claim_name.clone())
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| format!("{pod_name}-{}", v.name))
            }
        })
        .collect()
}

fn claim_class(c: &PersistentVolumeClaim) -> String {
    c.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_BETA_CLASS).cloned())
        .or_else(|| c.spec.as_ref().and_then(|s| s.storage_class_name.clone()))
        .unwrap_or_default()
}

fn volume_name(c: &PersistentVolumeClaim) -> &str {
    c.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("")
}

impl VolumeBinding {
    /// Starts watching claims, volumes and classes through `client` (on the current tokio
    /// runtime); the watches stop when the plugin is dropped.
    pub fn start(client: kube::Client) -> VolumeBinding {
        let (claims, a) = watch::<PersistentVolumeClaim>(&client);
        let (volumes, b) = watch::<PersistentVolume>(&client);
        let (classes, c) = watch::<StorageClass>(&client);
        VolumeBinding {
            client: Some(client),
            claims,
            volumes,
            classes,
            _watches: vec![a, b, c],
        }
    }

    /// A plugin over given stores and no client (tests; bind does nothing).
    pub fn from_stores(
        claims: Store<PersistentVolumeClaim>,
        volumes: Store<PersistentVolume>,
        classes: Store<StorageClass>,
    ) -> VolumeBinding {
        VolumeBinding {
            client: None,
            claims,
            volumes,
            classes,
            _watches: Vec::new(),
        }
    }

    fn claim(&self, ns: &str, name: &str) -> Option<std::sync::Arc<PersistentVolumeClaim>> {
        self.claims.get(&ObjectRef::new(name).within(ns))
    }

    fn is_delayed(&self, claim: &PersistentVolumeClaim) -> bool {
        let class = claim_class(claim);
        !class.is_empty()
            && self
                .classes
                .get(&ObjectRef::new(&class))
                .is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"))
    }
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreFilterPlugin for VolumeBinding {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let names = claim_names(&pod.pod);
        if names.is_empty() {
            return (None, Status::skip());
        }
        let mut st = State::default();
        let mut pinned: Option<HashSet<String>> = None;
        for name in names {
            let Some(claim) = self.claim(&pod.namespace, &name) else {
                return (
                    None,
                    Status::error(format!("persistentvolumeclaim \"{name}\" not found")),
                );
            };
            if claim.metadata.deletion_timestamp.is_some() {
                return (
                    None,
                    Status::unresolvable(format!(
                        "persistentvolumeclaim \"{name}\" is being deleted"
                    )),
                );
            }
            let bound_to = volume_name(&claim);
            if !bound_to.is_empty() {
                let Some(pv) = self.volumes.get(&ObjectRef::new(bound_to)) else {
                    return (
                        None,
                        Status::error(format!(
                            "pvc {}/{name} bound to non-existent pv {bound_to}",
                            pod.namespace
                        )),
                    );
                };
                if let Some(req) = pv
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_affinity.as_ref())
                    .and_then(|a| a.required.as_ref())
                {
                    st.volume_terms.push(req.node_selector_terms.clone());
                }
            } else if self.is_delayed(&claim) {
                // Provisioning may have started on the node chosen before: stay there.
                if let Some(node) = claim
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANN_SELECTED_NODE))
                    .filter(|n| !n.is_empty())
                {
                    let set = pinned.get_or_insert_with(|| [node.clone()].into());
                    set.retain(|n| n == node);
                }
            } else {
                return (None, Status::error(ERR_UNBOUND_IMMEDIATE));
            }
        }
        state.write(STATE_KEY, st);
        let result = pinned.map(|nodes| PreFilterResult {
            node_names: Some(nodes),
        });
        (result, Status::success())
    }
}

impl FilterPlugin for VolumeBinding {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(st) = state.read::<State>(STATE_KEY) else {
            return Status::success();
        };
        let labels = node.node.metadata.labels.clone().unwrap_or_default();
        for terms in &st.volume_terms {
            if !any_term_matches(terms, &labels, &node.name) {
                return Status::unresolvable(ERR_NODE_CONFLICT);
            }
        }
        Status::success()
    }
}

#[async_trait::async_trait]
impl BindPlugin for VolumeBinding {
    /// Upstream's PreBind: writes the chosen node on the pod's unbound delayed claims, then
    /// leaves the binding to the next plugin.
    async fn bind(&self, pod: &PodInfo, node: &str) -> Status {
        let Some(client) = &self.client else {
            return Status::skip();
        };
        for name in claim_names(&pod.pod) {
            let Some(claim) = self.claim(&pod.namespace, &name) else {
                continue;
            };
            let selected = claim
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_SELECTED_NODE))
                .map(String::as_str);
            if !volume_name(&claim).is_empty() || !self.is_delayed(&claim) || selected == Some(node)
            {
                continue;
            }
            let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &pod.namespace);
            let patch = json!({"metadata": {"annotations": {ANN_SELECTED_NODE: node}}});
            if let Err(e) = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                return Status::error(format!(
                    "selecting node {node} for claim {}/{name}: {e}",
                    pod.namespace
                ));
            }
        }
        Status::skip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing;
    use kube::runtime::watcher::Event;
    use serde_json::{json, Value};

    fn stores(claims: &[Value], volumes: &[Value], classes: &[Value]) -> VolumeBinding {
        fn fill<K>(items: &[Value]) -> Store<K>
        where
            K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned,
        {
            let (store, mut writer) = reflector::store::<K>();
            writer.apply_watcher_event(&Event::Init);
            for v in items {
                let k: K = serde_json::from_value(v.clone()).expect("object json");
                writer.apply_watcher_event(&Event::InitApply(k));
            }
            writer.apply_watcher_event(&Event::InitDone);
            store
        }
        VolumeBinding::from_stores(fill(claims), fill(volumes), fill(classes))
    }

    fn claim(name: &str, class: &str, volume: Option<&str>, selected: Option<&str>) -> Value {
        let mut c = json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"]},
        });
        if let Some(v) = volume {
            c["spec"]["volumeName"] = json!(v);
        }
        if let Some(n) = selected {
            c["metadata"]["annotations"] = json!({ANN_SELECTED_NODE: n});
        }
        c
    }

    fn class(name: &str, mode: &str) -> Value {
        json!({"metadata": {"name": name}, "provisioner": "bosun.io/local-path",
               "volumeBindingMode": mode})
    }

    fn local_pv(name: &str, node: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}})
    }

    fn pod_with(claims: &[&str]) -> PodInfo {
        let vols: Vec<Value> = claims
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        testing::pod(json!({"metadata": {"namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "i"}], "volumes": vols}}))
    }

    fn node(name: &str) -> NodeInfo {
        testing::node(json!({"metadata": {"name": name,
            "labels": {"kubernetes.io/hostname": name}}}))
    }

    fn run(p: &VolumeBinding, pod: &PodInfo) -> (Option<PreFilterResult>, Status, CycleState) {
        let mut state = CycleState::default();
        let snap = Snapshot::default();
        let (r, st) = p.pre_filter(&mut state, pod, &snap);
        (r, st, state)
    }

    #[test]
    fn pods_without_claims_skip() {
        let p = stores(&[], &[], &[]);
        let (_, st, _) = run(&p, &pod_with(&[]));
        assert_eq!(st.code, crate::framework::Code::Skip);
    }

    #[test]
    fn unbound_claims_wait_unless_delayed() {
        let p = stores(
            &[
                claim("wffc", "local-path", None, None),
                claim("imm", "fast", None, None),
                claim("picked", "local-path", None, Some("n2")),
            ],
            &[],
            &[
                class("local-path", "WaitForFirstConsumer"),
                class("fast", "Immediate"),
            ],
        );
        let (r, st, _) = run(&p, &pod_with(&["wffc"]));
        assert!(st.is_success(), "{st:?}");
        assert!(r.is_none(), "any node");
        let (_, st, _) = run(&p, &pod_with(&["imm"]));
        assert_eq!(st.code, crate::framework::Code::Error);
        assert_eq!(st.message(), ERR_UNBOUND_IMMEDIATE);
        let (_, st, _) = run(&p, &pod_with(&["missing"]));
        assert_eq!(st.message(), "persistentvolumeclaim \"missing\" not found");
        // A claim whose node was already chosen pins the pod there.
        let (r, st, _) = run(&p, &pod_with(&["wffc", "picked"]));
        assert!(st.is_success());
        assert_eq!(
            r.and_then(|r| r.node_names),
            Some(["n2".to_string()].into())
        );
    }

    #[test]
    fn bound_volumes_node_affinity_filters_nodes() {
        let p = stores(
            &[claim("data", "local-path", Some("pv1"), None)],
            &[local_pv("pv1", "n1")],
            &[class("local-path", "WaitForFirstConsumer")],
        );
        let pod = pod_with(&["data"]);
        let (_, st, state) = run(&p, &pod);
        assert!(st.is_success(), "{st:?}");
        assert!(p.filter(&state, &pod, &node("n1")).is_success());
        let st = p.filter(&state, &pod, &node("n2"));
        assert_eq!(
            st.code,
            crate::framework::Code::UnschedulableAndUnresolvable
        );
        assert_eq!(st.message(), ERR_NODE_CONFLICT);
        // Bound to a volume that is not there (yet): retried.
        let p = stores(&[claim("data", "local-path", Some("gone"), None)], &[], &[]);
        let (_, st, _) = run(&p, &pod);
        assert_eq!(st.code, crate::framework::Code::Error);
    }
}
