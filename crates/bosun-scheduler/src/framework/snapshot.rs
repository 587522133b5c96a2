//! The scheduler's view of the cluster: every node with the pods on it, updated in place
//! from watch events (no rebuild per pod), in a stable order that the search rotates over.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bosun_api::selector::LabelSelector;
use k8s_openapi::api::core::v1::Node;

use super::types::{NodeInfo, PodInfo};

/// A PodDisruptionBudget as preemption needs it.
#[derive(Clone, Debug)]
pub struct PdbInfo {
    pub namespace: String,
    pub selector: LabelSelector,
    pub disruptions_allowed: i64,
}

#[derive(Default)]
pub struct Snapshot {
    /// PodDisruptionBudgets, which preemption tries not to violate.
    pub pdbs: Vec<PdbInfo>,
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Namespace labels, for affinity terms with a namespaceSelector.
    pub namespace_labels: HashMap<String, BTreeMap<String, String>>,
    pods_with_affinity: usize,
    pods_with_required_anti_affinity: usize,
}

impl Snapshot {
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn get(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Whether any pod in the cluster has (anti-)affinity terms, so InterPodAffinity can
    /// skip its scan in the common case.
    pub fn has_pods_with_affinity(&self) -> bool {
        self.pods_with_affinity > 0
    }

    pub fn has_pods_with_required_anti_affinity(&self) -> bool {
        self.pods_with_required_anti_affinity > 0
    }

    /// Adds a node or replaces its object (keeping its pods).
    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.index.get(&name) {
            Some(i) => self.nodes[*i].set_node(node),
            None => {
                self.index.insert(name, self.nodes.len());
                self.nodes.push(NodeInfo::new(node));
            }
        }
    }

    /// Removes a node; returns its pods so the caller can keep track of them.
    pub fn remove_node(&mut self, name: &str) -> Vec<Arc<PodInfo>> {
        let Some(i) = self.index.remove(name) else {
            return Vec::new();
        };
        let ni = self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            self.index.insert(self.nodes[i].name.clone(), i);
        }
        for p in &ni.pods {
            self.count(p, -1);
        }
        ni.pods
    }

    fn count(&mut self, p: &PodInfo, sign: isize) {
        if p.has_affinity {
            self.pods_with_affinity = self.pods_with_affinity.saturating_add_signed(sign);
        }
        if p.has_required_anti_affinity {
            self.pods_with_required_anti_affinity = self
                .pods_with_required_anti_affinity
                .saturating_add_signed(sign);
        }
    }

    /// Puts a pod on a node; false when the node is unknown.
    pub fn add_pod(&mut self, node: &str, p: Arc<PodInfo>) -> bool {
        let Some(i) = self.index.get(node).copied() else {
            return false;
        };
        self.count(&p, 1);
        self.nodes[i].add_pod(p);
        true
    }

    pub fn remove_pod(&mut self, node: &str, uid: &str) -> Option<Arc<PodInfo>> {
        let i = self.index.get(node).copied()?;
        let p = self.nodes[i].remove_pod(uid)?;
        self.count(&p, -1);
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str) -> Arc<Node> {
        Arc::new(serde_json::from_value(json!({"metadata": {"name": name}})).unwrap())
    }

    #[test]
    fn remove_keeps_index_consistent() {
        let mut s = Snapshot::new();
        for n in ["a", "b", "c"] {
            s.upsert_node(node(n));
        }
        let pod = serde_json::from_value(json!({"metadata": {"uid": "u", "name": "p"},
            "spec": {"containers": [], "affinity": {"podAffinity": {}}}}))
        .unwrap();
        assert!(s.add_pod("a", Arc::new(PodInfo::new(Arc::new(pod), 0))));
        assert!(s.has_pods_with_affinity());
        let pods = s.remove_node("a");
        assert_eq!(pods.len(), 1);
        assert!(!s.has_pods_with_affinity());
        assert_eq!(s.len(), 2);
        assert_eq!(s.get("c").unwrap().name, "c");
        assert_eq!(s.get("b").unwrap().name, "b");
        assert!(s.get("a").is_none());
        s.upsert_node(node("b"));
        assert_eq!(s.len(), 2);
    }
}
