//! The scheduler cache: the [`Snapshot`] kept current from watch events, which pods are
//! placed where (bound, or assumed while their binding is in flight), pods bound to
//! nodes not seen yet, and pods nominated to a node by preemption.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::framework::{PodInfo, Snapshot};

struct Placed {
    node: String,
    assumed: bool,
}

/// What a node event changed, for requeueing unschedulable pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeChange {
    Added,
    /// Labels, taints, allocatable or `unschedulable` changed.
    Relevant,
    /// Only status noise (heartbeats, conditions).
    Irrelevant,
}

#[derive(Default)]
pub struct Cache {
    pub snapshot: Snapshot,
    placed: HashMap<String, Placed>,
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    nominated_of: HashMap<String, String>,
}

static NO_PODS: Vec<Arc<PodInfo>> = Vec::new();

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    pub fn placed_count(&self) -> usize {
        self.placed.len()
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.placed.get(uid).is_some_and(|p| p.assumed)
    }

    pub fn is_placed(&self, uid: &str) -> bool {
        self.placed.contains_key(uid)
    }

    pub fn node_of(&self, uid: &str) -> Option<&str> {
        self.placed.get(uid).map(|p| p.node.as_str())
    }

    /// Uids of every placed pod (for relist reconciliation).
    pub fn placed_uids(&self) -> Vec<String> {
        self.placed.keys().cloned().collect()
    }

    fn put(&mut self, node: &str, info: Arc<PodInfo>) {
        if !self.snapshot.add_pod(node, info.clone()) {
            self.orphans.entry(node.to_string()).or_default().push(info);
        }
    }

    fn take(&mut self, node: &str, uid: &str) -> Option<Arc<PodInfo>> {
        if let Some(p) = self.snapshot.remove_pod(node, uid) {
            return Some(p);
        }
        let list = self.orphans.get_mut(node)?;
        let i = list.iter().position(|p| p.uid == uid)?;
        let p = list.swap_remove(i);
        if list.is_empty() {
            self.orphans.remove(node);
        }
        Some(p)
    }

    /// Places a pod on `node` before its binding is confirmed, so the next decisions
    /// already see its requests.
    pub fn assume(&mut self, info: Arc<PodInfo>, node: &str) {
        if let Some(old) = self.placed.remove(&info.uid) {
            self.take(&old.node, &info.uid);
        }
        self.placed.insert(
            info.uid.clone(),
            Placed {
                node: node.to_string(),
                assumed: true,
            },
        );
        self.put(node, info);
    }

    /// Undoes `assume` after a failed binding; false when the pod was not assumed
    /// (already confirmed bound, or deleted).
    pub fn forget(&mut self, uid: &str) -> bool {
        match self.placed.get(uid) {
            Some(p) if p.assumed => {
                let node = p.node.clone();
                self.placed.remove(uid);
                self.take(&node, uid);
                true
            }
            _ => false,
        }
    }

    /// A pod the API says is bound to `node`. Returns whether this is news for other
    /// pods' affinity (a new pod on the node, or its labels changed).
    pub fn upsert_bound(&mut self, info: Arc<PodInfo>, node: &str) -> bool {
        let uid = info.uid.clone();
        let old = match self.placed.get(&uid) {
            Some(p) => {
                let old_node = p.node.clone();
                self.take(&old_node, &uid).map(|o| (old_node, o))
            }
            None => None,
        };
        let news = match &old {
            Some((old_node, o)) => old_node != node || o.labels() != info.labels(),
            None => true,
        };
        self.placed.insert(
            uid,
            Placed {
                node: node.to_string(),
                assumed: false,
            },
        );
        self.put(node, info);
        news
    }

    /// A placed pod is gone (deleted or finished); returns whether it was placed.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        match self.placed.remove(uid) {
            Some(p) => {
                self.take(&p.node, uid);
                true
            }
            None => false,
        }
    }

    pub fn upsert_node(&mut self, node: Arc<Node>) -> NodeChange {
        let name = node.metadata.name.clone().unwrap_or_default();
        let change = match self.snapshot.get(&name) {
            None => NodeChange::Added,
            Some(old) if relevant_change(&old.node, &node) => NodeChange::Relevant,
            Some(_) => NodeChange::Irrelevant,
        };
        self.snapshot.upsert_node(node);
        if change == NodeChange::Added {
            for p in self.orphans.remove(&name).unwrap_or_default() {
                self.snapshot.add_pod(&name, p);
            }
        }
        change
    }

    /// A node is gone; its pods stay known (as orphans) until their own deletion.
    pub fn remove_node(&mut self, name: &str) {
        let pods = self.snapshot.remove_node(name);
        if !pods.is_empty() {
            self.orphans
                .entry(name.to_string())
                .or_default()
                .extend(pods);
        }
    }

    pub fn node_names(&self) -> Vec<String> {
        self.snapshot
            .nodes()
            .iter()
            .map(|n| n.name.clone())
            .collect()
    }

    /// Records that preemption nominated `info` to `node`.
    pub fn nominate(&mut self, info: Arc<PodInfo>, node: &str) {
        self.unnominate(&info.uid);
        self.nominated_of.insert(info.uid.clone(), node.to_string());
        self.nominated
            .entry(node.to_string())
            .or_default()
            .push(info);
    }

    pub fn unnominate(&mut self, uid: &str) {
        if let Some(node) = self.nominated_of.remove(uid) {
            if let Some(list) = self.nominated.get_mut(&node) {
                list.retain(|p| p.uid != uid);
                if list.is_empty() {
                    self.nominated.remove(&node);
                }
            }
        }
    }

    pub fn nominated_on(&self, node: &str) -> &[Arc<PodInfo>] {
        self.nominated
            .get(node)
            .map(Vec::as_slice)
            .unwrap_or(&NO_PODS)
    }
}

fn relevant_change(old: &Node, new: &Node) -> bool {
    let spec = |n: &Node| {
        n.spec
            .as_ref()
            .map(|s| (s.unschedulable, s.taints.clone()))
            .unwrap_or_default()
    };
    let alloc = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    old.metadata.labels != new.metadata.labels || spec(old) != spec(new) || alloc(old) != alloc(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::pod;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
                "status": {"allocatable": {"cpu": "4", "pods": "10"}}}))
            .unwrap(),
        )
    }

    fn cpu_pod() -> Arc<PodInfo> {
        Arc::new(pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}),
        ))
    }

    #[test]
    fn assume_confirm_forget() {
        let mut c = Cache::new();
        assert_eq!(c.upsert_node(node("n", json!({}))), NodeChange::Added);
        let p = cpu_pod();
        c.assume(p.clone(), "n");
        assert!(c.is_assumed(&p.uid));
        assert_eq!(c.snapshot.get("n").unwrap().requested.milli_cpu, 1000);
        assert!(c.forget(&p.uid));
        assert_eq!(c.snapshot.get("n").unwrap().requested.milli_cpu, 0);
        c.assume(p.clone(), "n");
        // The watch confirms: no longer assumed, still counted once.
        c.upsert_bound(p.clone(), "n");
        assert!(!c.is_assumed(&p.uid));
        assert!(!c.forget(&p.uid));
        assert_eq!(c.snapshot.get("n").unwrap().requested.milli_cpu, 1000);
        assert!(c.remove_pod(&p.uid));
        assert_eq!(c.snapshot.get("n").unwrap().pods.len(), 0);
    }

    #[test]
    fn pods_on_unknown_nodes_wait_for_them() {
        let mut c = Cache::new();
        let p = cpu_pod();
        c.upsert_bound(p.clone(), "late");
        c.upsert_node(node("late", json!({})));
        assert_eq!(c.snapshot.get("late").unwrap().requested.milli_cpu, 1000);
        c.remove_node("late");
        assert!(c.remove_pod(&p.uid));
        c.upsert_node(node("late", json!({})));
        assert_eq!(c.snapshot.get("late").unwrap().pods.len(), 0);
    }

    #[test]
    fn node_changes_classified() {
        let mut c = Cache::new();
        c.upsert_node(node("n", json!({"a": "1"})));
        assert_eq!(
            c.upsert_node(node("n", json!({"a": "1"}))),
            NodeChange::Irrelevant
        );
        assert_eq!(
            c.upsert_node(node("n", json!({"a": "2"}))),
            NodeChange::Relevant
        );
    }

    #[test]
    fn nominations() {
        let mut c = Cache::new();
        let p = cpu_pod();
        c.nominate(p.clone(), "n");
        assert_eq!(c.nominated_on("n").len(), 1);
        c.nominate(p.clone(), "m");
        assert!(c.nominated_on("n").is_empty());
        c.unnominate(&p.uid);
        assert!(c.nominated_on("m").is_empty());
    }
}
