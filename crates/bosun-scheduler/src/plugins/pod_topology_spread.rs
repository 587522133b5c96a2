//! PodTopologySpread: `topologySpreadConstraints` with `DoNotSchedule` filter nodes whose
//! domain would exceed `maxSkew` over the least loaded domain; `ScheduleAnyway` ones score
//! less loaded domains higher. Upstream's cluster-level default constraints are not applied.

use std::collections::HashMap;

use bosun_api::selector::{LabelSelector, Operator, Requirement};
use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use super::helper::{do_not_schedule, find_untolerated};
use super::node_affinity::required_matches;
use crate::framework::{
    CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, PreFilterPlugin, PreFilterResult,
    PreScorePlugin, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "PodTopologySpread";
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";

pub struct PodTopologySpread;

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
}

#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: LabelSelector,
    min_domains: i64,
    honor_affinity: bool,
    honor_taints: bool,
}

impl Constraint {
    fn new(c: &TopologySpreadConstraint, pod: &PodInfo) -> Constraint {
        let mut selector = LabelSelector::from_api(c.label_selector.as_ref())
            .unwrap_or_else(|_| LabelSelector::nothing());
        for k in c.match_label_keys.iter().flatten() {
            if let Some(v) = pod.labels().get(k) {
                if let Ok(r) = Requirement::new(k.clone(), Operator::In, vec![v.clone()]) {
                    selector = selector.add_requirement(r);
                }
            }
        }
        Constraint {
            max_skew: i64::from(c.max_skew),
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: i64::from(c.min_domains.unwrap_or(1)),
            honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        }
    }

    /// Whether pods on `node` count toward this constraint's domains.
    fn node_counts(&self, pod: &PodInfo, node: &NodeInfo) -> bool {
        if self.honor_affinity && !required_matches(pod, node) {
            return false;
        }
        if self.honor_taints {
            let tol = pod
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or_default();
            if find_untolerated(node.taints(), tol, do_not_schedule).is_some() {
                return false;
            }
        }
        true
    }

    fn matching_pods(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        node.pods
            .iter()
            .filter(|p| {
                p.namespace == pod.namespace
                    && !p.is_terminating()
                    && self.selector.matches(p.labels())
            })
            .count() as i64
    }
}

fn constraints(pod: &PodInfo, when: &str) -> Vec<Constraint> {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or_default()
        .iter()
        .filter(|c| c.when_unsatisfiable == when)
        .map(|c| Constraint::new(c, pod))
        .collect()
}

fn has_all_keys(cs: &[Constraint], node: &NodeInfo) -> bool {
    cs.iter()
        .all(|c| node.labels().contains_key(&c.topology_key))
}

#[derive(Clone, Debug, Default)]
struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: matching pods per topology value.
    counts: Vec<HashMap<String, i64>>,
    /// Per constraint: the least count over its domains (0 below minDomains).
    min: Vec<i64>,
}

impl PreFilterState {
    fn recompute_min(&mut self) {
        self.min = self
            .constraints
            .iter()
            .zip(&self.counts)
            .map(|(c, m)| {
                if (m.len() as i64) < c.min_domains {
                    0
                } else {
                    m.values().copied().min().unwrap_or(0)
                }
            })
            .collect();
    }

    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, by: i64) {
        if other.namespace != pod.namespace || !has_all_keys(&self.constraints, node) {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if !c.node_counts(pod, node) || !c.selector.matches(other.labels()) {
                continue;
            }
            if let Some(v) = node.labels().get(&c.topology_key) {
                *self.counts[i].entry(v.clone()).or_default() += by;
            }
        }
        self.recompute_min();
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let cs = constraints(pod, "DoNotSchedule");
        if cs.is_empty() {
            return (None, Status::skip());
        }
        let mut counts = vec![HashMap::new(); cs.len()];
        for node in snapshot.nodes() {
            if !has_all_keys(&cs, node) {
                continue;
            }
            for (i, c) in cs.iter().enumerate() {
                if !c.node_counts(pod, node) {
                    continue;
                }
                let v = node
                    .labels()
                    .get(&c.topology_key)
                    .cloned()
                    .unwrap_or_default();
                *counts[i].entry(v).or_default() += c.matching_pods(pod, node);
            }
        }
        let mut s = PreFilterState {
            constraints: cs,
            counts,
            min: Vec::new(),
        };
        s.recompute_min();
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

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::success();
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(v) = node.labels().get(&c.topology_key) else {
                return Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let self_match = i64::from(c.selector.matches(pod.labels()));
            let count = s.counts[i].get(v).copied().unwrap_or(0);
            if count + self_match - s.min[i] > c.max_skew {
                return Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}

#[derive(Clone, Debug, Default)]
struct PreScoreState {
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status {
        let cs = constraints(pod, "ScheduleAnyway");
        if cs.is_empty() {
            return Status::skip();
        }
        // Domain sizes among the feasible nodes weigh each constraint (upstream:
        // ln(size + 2)), so a constraint over many small domains does not dominate.
        let weights = cs
            .iter()
            .map(|c| {
                let mut values: Vec<&String> = nodes
                    .iter()
                    .filter_map(|n| n.labels().get(&c.topology_key))
                    .collect();
                values.sort();
                values.dedup();
                ((values.len() + 2) as f64).ln()
            })
            .collect();
        let mut counts = vec![HashMap::new(); cs.len()];
        for node in snapshot.nodes() {
            if !has_all_keys(&cs, node) {
                continue;
            }
            for (i, c) in cs.iter().enumerate() {
                if !c.node_counts(pod, node) {
                    continue;
                }
                let v = node
                    .labels()
                    .get(&c.topology_key)
                    .cloned()
                    .unwrap_or_default();
                *counts[i].entry(v).or_default() += c.matching_pods(pod, node);
            }
        }
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                constraints: cs,
                counts,
                weights,
            },
        );
        Status::success()
    }
}

/// A raw score for a node missing one of the topology keys: it is given 0 after
/// normalizing.
const IGNORED: i64 = -1;

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return Ok(0);
        };
        if !has_all_keys(&s.constraints, node) {
            return Ok(IGNORED);
        }
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let v = node
                .labels()
                .get(&c.topology_key)
                .cloned()
                .unwrap_or_default();
            let cnt = s.counts[i].get(&v).copied().unwrap_or(0) as f64;
            score += cnt * s.weights[i] + (c.max_skew - 1) as f64;
        }
        Ok(score.round() as i64)
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        let live = scores.iter().copied().filter(|s| *s != IGNORED);
        let (min, max) = live.fold((i64::MAX, i64::MIN), |(a, b), s| (a.min(s), b.max(s)));
        for s in scores.iter_mut() {
            *s = if *s == IGNORED {
                0
            } else if max <= 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
        Status::success()
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
        for (name, zone) in [("a1", Some("a")), ("b1", Some("b")), ("x", None)] {
            let mut labels = json!({"kubernetes.io/hostname": name});
            if let Some(z) = zone {
                labels["zone"] = json!(z);
            }
            s.upsert_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                    .unwrap(),
            ));
        }
        s
    }

    fn web(when: &str) -> PodInfo {
        pod(
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
        )
    }

    #[test]
    fn skew_is_bounded() {
        let mut s = snapshot();
        s.add_pod("a1", Arc::new(web("DoNotSchedule")));
        let p = web("DoNotSchedule");
        let mut st = CycleState::default();
        let (_, pre) = PodTopologySpread.pre_filter(&mut st, &p, &s);
        assert!(pre.is_success());
        let get = |st: &CycleState, n: &str| PodTopologySpread.filter(st, &p, s.get(n).unwrap());
        assert_eq!(
            get(&st, "a1"),
            Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH)
        );
        assert!(get(&st, "b1").is_success());
        assert_eq!(
            get(&st, "x"),
            Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH)
        );
        // Simulating the pod on a1 gone (preemption) makes a1 fit again.
        let gone = s.get("a1").unwrap().pods[0].clone();
        PodTopologySpread.remove_pod(&mut st, &p, &gone, s.get("a1").unwrap());
        assert!(get(&st, "a1").is_success());
    }

    #[test]
    fn schedule_anyway_prefers_emptier_domains() {
        let mut s = snapshot();
        s.add_pod("a1", Arc::new(web("ScheduleAnyway")));
        let p = web("ScheduleAnyway");
        let mut st = CycleState::default();
        let nodes: Vec<&NodeInfo> = s.nodes().iter().collect();
        assert!(PodTopologySpread
            .pre_score(&mut st, &p, &nodes, &s)
            .is_success());
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| PodTopologySpread.score(&st, &p, n).unwrap())
            .collect();
        PodTopologySpread.normalize(&st, &p, &mut scores);
        assert!(scores[1] > scores[0], "{scores:?}");
        assert_eq!(scores[2], 0);
    }
}
