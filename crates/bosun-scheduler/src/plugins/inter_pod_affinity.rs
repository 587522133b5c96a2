//! InterPodAffinity: required pod affinity and anti-affinity (the pod's own terms, and
//! existing pods' anti-affinity against it) filter nodes by topology domain; preferred
//! terms, both ways, score them.

use std::collections::{BTreeMap, HashMap, HashSet};

use bosun_api::selector::{LabelSelector, Operator, Requirement};
use k8s_openapi::api::core::v1::{PodAffinityTerm, WeightedPodAffinityTerm};

use crate::framework::{
    Code, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, PreFilterPlugin, PreFilterResult,
    PreScorePlugin, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "InterPodAffinity";
pub const ERR_REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
pub const ERR_REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";

/// Upstream `hardPodAffinityWeight` default: existing pods' required affinity counts
/// this much in scoring.
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

pub struct InterPodAffinity;

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
}

/// A PodAffinityTerm resolved against the pod that owns it.
#[derive(Clone, Debug)]
pub struct Term {
    selector: LabelSelector,
    namespaces: HashSet<String>,
    namespace_selector: Option<LabelSelector>,
    pub topology_key: String,
    pub weight: i64,
}

impl Term {
    fn new(t: &PodAffinityTerm, owner: &PodInfo, weight: i64) -> Term {
        let mut selector = LabelSelector::from_api(t.label_selector.as_ref())
            .unwrap_or_else(|_| LabelSelector::nothing());
        // matchLabelKeys / mismatchLabelKeys take their values from the owner's labels.
        let labels = owner.labels();
        for (keys, op) in [
            (t.match_label_keys.as_deref(), Operator::In),
            (t.mismatch_label_keys.as_deref(), Operator::NotIn),
        ] {
            for k in keys.unwrap_or_default() {
                if let Some(v) = labels.get(k) {
                    if let Ok(r) = Requirement::new(k.clone(), op, vec![v.clone()]) {
                        selector = selector.add_requirement(r);
                    }
                }
            }
        }
        let mut namespaces: HashSet<String> = t.namespaces.iter().flatten().cloned().collect();
        let namespace_selector = t
            .namespace_selector
            .as_ref()
            .map(|s| LabelSelector::from_api(Some(s)).unwrap_or_else(|_| LabelSelector::nothing()));
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(owner.namespace.clone());
        }
        Term {
            selector,
            namespaces,
            namespace_selector,
            topology_key: t.topology_key.clone(),
            weight,
        }
    }

    /// Whether `pod` is among the pods this term selects.
    pub fn matches(&self, pod: &PodInfo, ns_labels: &NamespaceLabels) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.matches_labels(ns_labels.get(&pod.namespace)));
        ns_ok && self.selector.matches(pod.labels())
    }
}

fn affinity(p: &PodInfo) -> Option<&k8s_openapi::api::core::v1::Affinity> {
    p.pod.spec.as_ref()?.affinity.as_ref()
}

fn required_terms(p: &PodInfo) -> (Vec<Term>, Vec<Term>) {
    let a = affinity(p);
    let aff = a
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default();
    let anti = a
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default();
    (
        aff.iter().map(|t| Term::new(t, p, 1)).collect(),
        anti.iter().map(|t| Term::new(t, p, 1)).collect(),
    )
}

fn preferred_terms(p: &PodInfo) -> (Vec<Term>, Vec<Term>) {
    let a = affinity(p);
    let conv = |ts: Option<&Vec<WeightedPodAffinityTerm>>| -> Vec<Term> {
        ts.map(|v| v.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|w| Term::new(&w.pod_affinity_term, p, i64::from(w.weight)))
            .collect()
    };
    (
        conv(a.and_then(|a| a.pod_affinity.as_ref()).and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })),
        conv(a.and_then(|a| a.pod_anti_affinity.as_ref()).and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })),
    )
}

type Counts = HashMap<(String, String), i64>;
type NamespaceLabels = HashMap<String, BTreeMap<String, String>>;

fn bump(counts: &mut Counts, labels: &BTreeMap<String, String>, key: &str, by: i64) {
    if let Some(v) = labels.get(key) {
        let e = counts.entry((key.to_string(), v.clone())).or_default();
        *e += by;
        if *e == 0 {
            counts.remove(&(key.to_string(), v.clone()));
        }
    }
}

#[derive(Clone, Default)]
struct PreFilterState {
    affinity_terms: Vec<Term>,
    anti_terms: Vec<Term>,
    existing_anti: Counts,
    affinity_counts: Counts,
    anti_counts: Counts,
    /// Namespace labels, so add_pod/remove_pod can match without the snapshot.
    namespace_labels: NamespaceLabels,
}

impl PreFilterState {
    /// Accounts `other` on `node` in or out (`by` = 1 or -1).
    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, by: i64) {
        let view = &self.namespace_labels;
        let labels = node.labels();
        if other.has_required_anti_affinity {
            for t in required_terms(other).1 {
                if t.matches(pod, view) {
                    bump(&mut self.existing_anti, labels, &t.topology_key, by);
                }
            }
        }
        for t in &self.affinity_terms {
            if t.matches(other, view) {
                bump(&mut self.affinity_counts, labels, &t.topology_key, by);
            }
        }
        for t in &self.anti_terms {
            if t.matches(other, view) {
                bump(&mut self.anti_counts, labels, &t.topology_key, by);
            }
        }
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let (affinity_terms, anti_terms) = required_terms(pod);
        if affinity_terms.is_empty()
            && anti_terms.is_empty()
            && !snapshot.has_pods_with_required_anti_affinity()
        {
            return (None, Status::skip());
        }
        let mut s = PreFilterState {
            affinity_terms,
            anti_terms,
            namespace_labels: snapshot.namespace_labels.clone(),
            ..Default::default()
        };
        let own_terms = !s.affinity_terms.is_empty() || !s.anti_terms.is_empty();
        for node in snapshot.nodes() {
            if !own_terms && node.pods_with_required_anti_affinity == 0 {
                continue;
            }
            for other in &node.pods {
                if own_terms || other.has_required_anti_affinity {
                    s.update(pod, other, node, 1);
                }
            }
        }
        state.write(PRE_FILTER_KEY, s);
        (None, Status::success())
    }

    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.update(pod, added, node, 1);
        }
        Status::success()
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.update(pod, removed, node, -1);
        }
        Status::success()
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::success();
        };
        let labels = node.labels();
        let count = |c: &Counts, key: &str| {
            labels
                .get(key)
                .and_then(|v| c.get(&(key.to_string(), v.clone())))
                .copied()
                .unwrap_or(0)
        };
        if !s.affinity_terms.is_empty() {
            let all = s
                .affinity_terms
                .iter()
                .all(|t| count(&s.affinity_counts, &t.topology_key) > 0);
            if !all {
                // The first pod of a group that selects itself may go anywhere the
                // topology keys exist.
                let first_of_group = s.affinity_counts.is_empty()
                    && s.affinity_terms.iter().all(|t| {
                        t.matches(pod, &s.namespace_labels) && labels.contains_key(&t.topology_key)
                    });
                if !first_of_group {
                    return Status::unresolvable(ERR_REASON_AFFINITY);
                }
            }
        }
        if s.anti_terms
            .iter()
            .any(|t| count(&s.anti_counts, &t.topology_key) > 0)
        {
            return Status::unschedulable(ERR_REASON_ANTI_AFFINITY);
        }
        if !s.existing_anti.is_empty()
            && labels.iter().any(|(k, v)| {
                s.existing_anti
                    .get(&(k.clone(), v.clone()))
                    .is_some_and(|c| *c > 0)
            })
        {
            return Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }
}

#[derive(Clone, Default)]
struct PreScoreState {
    scores: Counts,
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status {
        let (pref_aff, pref_anti) = preferred_terms(pod);
        let own = !pref_aff.is_empty() || !pref_anti.is_empty();
        if !own && !snapshot.has_pods_with_affinity() {
            return Status::skip();
        }
        let mut scores = Counts::new();
        let ns = &snapshot.namespace_labels;
        for node in snapshot.nodes() {
            if !own && node.pods_with_affinity == 0 {
                continue;
            }
            let labels = node.labels();
            for other in &node.pods {
                for t in &pref_aff {
                    if t.matches(other, ns) {
                        bump(&mut scores, labels, &t.topology_key, t.weight);
                    }
                }
                for t in &pref_anti {
                    if t.matches(other, ns) {
                        bump(&mut scores, labels, &t.topology_key, -t.weight);
                    }
                }
                if !other.has_affinity {
                    continue;
                }
                for t in required_terms(other).0 {
                    if t.matches(pod, ns) {
                        bump(
                            &mut scores,
                            labels,
                            &t.topology_key,
                            HARD_POD_AFFINITY_WEIGHT,
                        );
                    }
                }
                let (oa, oanti) = preferred_terms(other);
                for t in oa {
                    if t.matches(pod, ns) {
                        bump(&mut scores, labels, &t.topology_key, t.weight);
                    }
                }
                for t in oanti {
                    if t.matches(pod, ns) {
                        bump(&mut scores, labels, &t.topology_key, -t.weight);
                    }
                }
            }
        }
        if scores.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, PreScoreState { scores });
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return Ok(0);
        };
        Ok(node
            .labels()
            .iter()
            .filter_map(|(k, v)| s.scores.get(&(k.clone(), v.clone())))
            .sum())
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        let (min, max) = match (scores.iter().min(), scores.iter().max()) {
            (Some(a), Some(b)) => (*a, *b),
            _ => return Status::success(),
        };
        for s in scores.iter_mut() {
            *s = if max > min {
                MAX_NODE_SCORE * (*s - min) / (max - min)
            } else {
                0
            };
        }
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: NAME,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::pod;
    use serde_json::json;
    use std::sync::Arc;

    fn snapshot() -> Snapshot {
        let mut s = Snapshot::new();
        for (name, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
            s.upsert_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name,
                    "labels": {"zone": zone, "kubernetes.io/hostname": name}}}))
                .unwrap(),
            ));
        }
        s
    }

    fn run(p: &PodInfo, s: &Snapshot) -> Vec<(String, Status)> {
        let mut st = CycleState::default();
        let (_, pre) = InterPodAffinity.pre_filter(&mut st, p, s);
        s.nodes()
            .iter()
            .map(|n| {
                let r = if pre.code == Code::Skip {
                    Status::success()
                } else {
                    InterPodAffinity.filter(&st, p, n)
                };
                (n.name.clone(), r)
            })
            .collect()
    }

    fn ok_nodes(p: &PodInfo, s: &Snapshot) -> Vec<String> {
        let mut v: Vec<String> = run(p, s)
            .into_iter()
            .filter(|(_, st)| st.is_success())
            .map(|(n, _)| n)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn affinity_follows_the_group_and_first_pod_goes_anywhere() {
        let mut s = snapshot();
        let wants_db = || {
            pod(
                json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [], "affinity": {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}}}),
            )
        };
        // No db pod anywhere and the pod is not a db itself: nowhere.
        assert!(ok_nodes(&wants_db(), &s).is_empty());
        let st = run(&wants_db(), &s);
        assert_eq!(st[0].1, Status::unresolvable(ERR_REASON_AFFINITY));
        s.add_pod(
            "b1",
            Arc::new(pod(
                json!({"metadata": {"labels": {"app": "db"}}, "spec": {"containers": []}}),
            )),
        );
        assert_eq!(ok_nodes(&wants_db(), &s), vec!["b1"]);
        // A self-selecting pod is the first of its group: anywhere.
        let self_sel = pod(
            json!({"metadata": {"labels": {"app": "cache"}}, "spec": {"containers": [], "affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}]}}}}),
        );
        assert_eq!(ok_nodes(&self_sel, &s).len(), 3);
    }

    #[test]
    fn anti_affinity_both_ways() {
        let mut s = snapshot();
        let spread = || {
            Arc::new(pod(
                json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}]}}}}),
            ))
        };
        s.add_pod("a1", spread());
        assert_eq!(ok_nodes(&spread(), &s), vec!["b1"]);
        let st = run(&spread(), &s);
        assert_eq!(st[1].1, Status::unschedulable(ERR_REASON_ANTI_AFFINITY));
        // A plain web pod is kept out of zone a by the existing pod's anti-affinity.
        let plain =
            pod(json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}));
        assert_eq!(ok_nodes(&plain, &s), vec!["b1"]);
        let st = run(&plain, &s);
        assert_eq!(
            st[0].1,
            Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY)
        );
        // Other namespaces are not selected by default.
        let other_ns = pod(
            json!({"metadata": {"namespace": "x", "labels": {"app": "web"}}, "spec": {"containers": []}}),
        );
        assert_eq!(ok_nodes(&other_ns, &s).len(), 3);
    }

    #[test]
    fn preferred_affinity_scores_the_zone() {
        let mut s = snapshot();
        s.add_pod(
            "a1",
            Arc::new(pod(
                json!({"metadata": {"labels": {"app": "db"}}, "spec": {"containers": []}}),
            )),
        );
        let p = pod(
            json!({"spec": {"containers": [], "affinity": {"podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm":
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}}]}}}}),
        );
        let mut st = CycleState::default();
        let nodes: Vec<&NodeInfo> = s.nodes().iter().collect();
        assert!(InterPodAffinity
            .pre_score(&mut st, &p, &nodes, &s)
            .is_success());
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| InterPodAffinity.score(&st, &p, n).unwrap())
            .collect();
        InterPodAffinity.normalize(&st, &p, &mut scores);
        assert_eq!(scores, vec![100, 100, 0]);
    }
}
