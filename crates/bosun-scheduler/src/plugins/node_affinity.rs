//! NodeAffinity: `spec.nodeSelector` and required node affinity filter nodes; preferred
//! terms score them by the sum of matching weights.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorTerm, PreferredSchedulingTerm};

use super::helper::{any_term_matches, term_matches};
use crate::framework::{
    default_normalize_score, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, PreFilterPlugin,
    PreFilterResult, PreScorePlugin, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "NodeAffinity";
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

const PRE_FILTER_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_KEY: &str = "PreScoreNodeAffinity";

pub struct NodeAffinity;

#[derive(Clone)]
struct Required {
    selector: BTreeMap<String, String>,
    terms: Option<Vec<NodeSelectorTerm>>,
}

#[derive(Clone)]
struct Preferred(Vec<PreferredSchedulingTerm>);

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
}

/// Whether the node satisfies the pod's nodeSelector and required node affinity.
pub fn required_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    let spec = pod.pod.spec.as_ref();
    let selector = spec.and_then(|s| s.node_selector.as_ref());
    let terms = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| r.node_selector_terms.as_slice());
    matches(selector, terms, node)
}

fn matches(
    selector: Option<&BTreeMap<String, String>>,
    terms: Option<&[NodeSelectorTerm]>,
    node: &NodeInfo,
) -> bool {
    let labels = node.labels();
    if let Some(sel) = selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    match terms {
        Some(t) => any_term_matches(t, labels, &node.name),
        None => true,
    }
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let spec = pod.pod.spec.as_ref();
        let selector = spec
            .and_then(|s| s.node_selector.clone())
            .unwrap_or_default();
        let terms = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| r.node_selector_terms.clone());
        if selector.is_empty() && terms.is_none() {
            return (None, Status::skip());
        }
        state.write(PRE_FILTER_KEY, Required { selector, terms });
        (None, Status::success())
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let ok = match state.read::<Required>(PRE_FILTER_KEY) {
            Some(r) => matches(Some(&r.selector), r.terms.as_deref(), node),
            None => required_matches(pod, node),
        };
        if ok {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snapshot: &Snapshot,
    ) -> Status {
        let preferred = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .clone()
            })
            .unwrap_or_default();
        if preferred.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, Preferred(preferred));
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(Preferred(terms)) = state.read::<Preferred>(PRE_SCORE_KEY) else {
            return Ok(0);
        };
        Ok(terms
            .iter()
            .filter(|t| t.weight != 0 && term_matches(&t.preference, node.labels(), &node.name))
            .map(|t| i64::from(t.weight))
            .sum())
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    fn run(p: &PodInfo, n: &NodeInfo) -> Status {
        let mut st = CycleState::default();
        let (_, s) = NodeAffinity.pre_filter(&mut st, p, &Snapshot::new());
        if s.code == crate::framework::Code::Skip {
            return Status::success();
        }
        NodeAffinity.filter(&st, p, n)
    }

    #[test]
    fn selector_and_required_terms() {
        let n = node(json!({"metadata": {"name": "n", "labels": {"disk": "ssd", "zone": "a"}}}));
        let p = pod(json!({"spec": {"containers": [], "nodeSelector": {"disk": "ssd"}}}));
        assert!(run(&p, &n).is_success());
        let p = pod(json!({"spec": {"containers": [], "nodeSelector": {"disk": "hdd"}}}));
        assert_eq!(run(&p, &n), Status::unresolvable(ERR_REASON_POD));
        let p = pod(
            json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}}),
        );
        assert!(run(&p, &n).is_success());
        assert!(required_matches(&p, &n));
    }

    #[test]
    fn preferred_terms_score_by_weight() {
        let a = node(json!({"metadata": {"name": "a", "labels": {"zone": "a"}}}));
        let b = node(json!({"metadata": {"name": "b", "labels": {"zone": "b"}}}));
        let p = pod(
            json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
                {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]}}}}),
        );
        let mut st = CycleState::default();
        assert!(NodeAffinity
            .pre_score(&mut st, &p, &[], &Snapshot::new())
            .is_success());
        let mut scores = vec![
            NodeAffinity.score(&st, &p, &a).unwrap(),
            NodeAffinity.score(&st, &p, &b).unwrap(),
        ];
        assert_eq!(scores, vec![15, 5]);
        NodeAffinity.normalize(&st, &p, &mut scores);
        assert_eq!(scores, vec![100, 33]);
    }
}
