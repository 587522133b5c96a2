//! DefaultPreemption (PostFilter): when no node fits, find the node where evicting the
//! fewest and least important lower-priority pods makes the pod fit, respecting
//! PodDisruptionBudgets where possible (upstream `defaultpreemption` and `preemption`).
//! This plugin only decides; the scheduler loop deletes the victims and sets
//! `status.nominatedNodeName`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::framework::{
    Code, CycleState, Framework, NodeInfo, NodeStatusMap, Plugin, PodInfo, PostFilterPlugin,
    PostFilterResult, Snapshot, Status,
};

pub const NAME: &str = "DefaultPreemption";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// Upstream `minCandidateNodesPercentage` and `minCandidateNodesAbsolute`: how many
/// candidate nodes to find before choosing.
const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;
const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;

pub use crate::framework::snapshot::PdbInfo;

pub struct DefaultPreemption;

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
}

struct Candidate {
    node: String,
    victims: Vec<Arc<PodInfo>>,
    pdb_violations: usize,
}

/// Upstream `MoreImportantPod`: higher priority, then earlier start.
fn more_important(a: &PodInfo, b: &PodInfo) -> std::cmp::Ordering {
    b.priority.cmp(&a.priority).then_with(|| {
        let start = |p: &PodInfo| {
            p.pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .and_then(|t| serde_json::to_string(t).ok())
        };
        start(a).cmp(&start(b))
    })
}

fn preemption_policy_never(pod: &PodInfo) -> bool {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref())
        == Some("Never")
}

fn nominated_node(pod: &PodInfo) -> Option<&str> {
    pod.pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Splits victims into those whose eviction would violate a PDB and the rest.
fn split_by_pdb(
    victims: Vec<Arc<PodInfo>>,
    pdbs: &[PdbInfo],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i64> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let (mut violating, mut ok) = (Vec::new(), Vec::new());
    for v in victims {
        let mut violates = false;
        for (i, pdb) in pdbs.iter().enumerate() {
            if pdb.namespace != v.namespace || !pdb.selector.matches(v.labels()) {
                continue;
            }
            allowed[i] -= 1;
            if allowed[i] < 0 {
                violates = true;
            }
        }
        if violates {
            violating.push(v);
        } else {
            ok.push(v);
        }
    }
    (violating, ok)
}

/// Upstream `selectVictimsOnNode`: remove every lower-priority pod; if the pod then fits,
/// add back as many as possible, most important first (PDB-protected ones before others).
fn select_victims(
    fw: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    pdbs: &[PdbInfo],
) -> Option<(Vec<Arc<PodInfo>>, usize)> {
    let mut ni = node.clone();
    let mut st = state.clone();
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return None;
    }
    let remove = |ni: &mut NodeInfo, st: &mut CycleState, p: &Arc<PodInfo>| {
        ni.remove_pod(&p.uid);
        for pl in &fw.pre_filter {
            pl.remove_pod(st, pod, p, ni);
        }
    };
    let add = |ni: &mut NodeInfo, st: &mut CycleState, p: &Arc<PodInfo>| {
        ni.add_pod(p.clone());
        for pl in &fw.pre_filter {
            pl.add_pod(st, pod, p, ni);
        }
    };
    for p in &potential {
        remove(&mut ni, &mut st, p);
    }
    if !fw.run_filter(&st, pod, &ni).is_success() {
        return None;
    }
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, non_violating) = split_by_pdb(potential, pdbs);
    let mut victims = Vec::new();
    let mut violations = 0;
    for (group, counts) in [(violating, true), (non_violating, false)] {
        for p in group {
            add(&mut ni, &mut st, &p);
            if !fw.run_filter(&st, pod, &ni).is_success() {
                remove(&mut ni, &mut st, &p);
                if counts {
                    violations += 1;
                }
                victims.push(p);
            }
        }
    }
    Some((victims, violations))
}

/// Upstream `pickOneNodeForPreemption`, criteria in order: fewest PDB violations, lowest
/// highest-victim priority, smallest priority sum, fewest victims, latest start of the
/// most important victims.
fn pick(mut cands: Vec<Candidate>) -> Option<Candidate> {
    let key = |c: &Candidate| {
        let top = c
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        // Offset so negative priorities sum as upstream does (each + MaxInt32 + 1).
        let sum: i128 = c
            .victims
            .iter()
            .map(|v| i128::from(v.priority) + i128::from(i32::MAX) + 1)
            .sum();
        (c.pdb_violations, top, sum, c.victims.len())
    };
    cands.sort_by_key(key);
    cands.into_iter().next()
}

/// The preemption part of a FailedScheduling message.
fn summary(total: usize, reasons: &BTreeMap<&'static str, usize>) -> String {
    let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    format!(
        "preemption: 0/{total} nodes are available: {}.",
        parts.join(", ")
    )
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        fw: &Framework,
        statuses: &NodeStatusMap,
    ) -> (Option<PostFilterResult>, Status) {
        if preemption_policy_never(pod) {
            return (
                None,
                Status::unresolvable("preemption: not eligible due to preemptionPolicy=Never."),
            );
        }
        if let Some(n) = nominated_node(pod).and_then(|n| snapshot.get(n)) {
            let waiting = n
                .pods
                .iter()
                .any(|p| p.is_terminating() && p.priority < pod.priority);
            if waiting {
                return (
                    None,
                    Status::unresolvable(
                        "preemption: not eligible due to a terminating pod on the nominated node.",
                    ),
                );
            }
        }
        let total = snapshot.len();
        let want = (total * MIN_CANDIDATE_NODES_PERCENTAGE / 100)
            .max(MIN_CANDIDATE_NODES_ABSOLUTE)
            .min(total);
        let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut cands = Vec::new();
        for node in snapshot.nodes() {
            // Nodes that passed Filter or that no eviction can help are not candidates.
            let helpful = statuses
                .get(&node.name)
                .is_some_and(|s| s.code == Code::Unschedulable);
            if !helpful {
                *reasons.entry(NOT_HELPFUL).or_default() += 1;
                continue;
            }
            if cands.len() >= want {
                continue;
            }
            match select_victims(fw, state, pod, node, &snapshot.pdbs) {
                Some((victims, pdb_violations)) if !victims.is_empty() => cands.push(Candidate {
                    node: node.name.clone(),
                    victims,
                    pdb_violations,
                }),
                _ => *reasons.entry(NO_VICTIMS).or_default() += 1,
            }
        }
        match pick(cands) {
            Some(c) => (
                Some(PostFilterResult {
                    nominated_node: c.node,
                    victims: c.victims,
                }),
                Status::success(),
            ),
            None => (None, Status::unschedulable(summary(total, &reasons))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::CycleState;
    use crate::plugins::testing::pod;
    use bosun_api::selector::LabelSelector;
    use serde_json::json;

    fn fw() -> Framework {
        crate::plugins::default_framework_without_binder("default-scheduler")
    }

    fn snapshot(nodes: &[&str]) -> Snapshot {
        let mut s = Snapshot::new();
        for n in nodes {
            s.upsert_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": n},
                    "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}}}))
                .unwrap(),
            ));
        }
        s
    }

    fn cpu_pod(cpu: &str, prio: i32, labels: serde_json::Value) -> Arc<PodInfo> {
        Arc::new(pod(
            json!({"metadata": {"labels": labels}, "spec": {"priority": prio, "containers": [
            {"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}),
        ))
    }

    fn statuses(fw: &Framework, st: &CycleState, p: &PodInfo, s: &Snapshot) -> NodeStatusMap {
        s.nodes()
            .iter()
            .map(|n| (n.name.clone(), fw.run_filter(st, p, n)))
            .collect()
    }

    #[test]
    fn evicts_fewest_lowest_priority() {
        let fw = fw();
        let mut s = snapshot(&["n1", "n2"]);
        // n1: two small low pods; n2: one big low pod of higher priority than n1's.
        s.add_pod("n1", cpu_pod("1", 1, json!({})));
        s.add_pod("n1", cpu_pod("1", 1, json!({})));
        s.add_pod("n2", cpu_pod("2", 5, json!({})));
        let p = cpu_pod("2", 100, json!({}));
        let st = CycleState::default();
        let sm = statuses(&fw, &st, &p, &s);
        let (res, status) = DefaultPreemption.post_filter(&st, &p, &s, &fw, &sm);
        assert!(status.is_success(), "{status:?}");
        let r = res.unwrap();
        // Lower highest-victim priority wins over fewer victims.
        assert_eq!(r.nominated_node, "n1");
        assert_eq!(r.victims.len(), 2);
    }

    #[test]
    fn keeps_victims_it_does_not_need() {
        let fw = fw();
        let mut s = snapshot(&["n1"]);
        let keep = cpu_pod("500m", 3, json!({}));
        s.add_pod("n1", keep.clone());
        s.add_pod("n1", cpu_pod("1500m", 1, json!({})));
        let p = cpu_pod("1500m", 100, json!({}));
        let st = CycleState::default();
        let sm = statuses(&fw, &st, &p, &s);
        let (res, _) = DefaultPreemption.post_filter(&st, &p, &s, &fw, &sm);
        let r = res.unwrap();
        assert_eq!(r.victims.len(), 1);
        assert_ne!(r.victims[0].uid, keep.uid);
    }

    #[test]
    fn prefers_nodes_without_pdb_violations() {
        let fw = fw();
        let mut s = snapshot(&["n1", "n2"]);
        s.add_pod("n1", cpu_pod("2", 1, json!({"app": "guarded"})));
        s.add_pod("n2", cpu_pod("2", 2, json!({"app": "free"})));
        s.pdbs.push(PdbInfo {
            namespace: "default".into(),
            selector: LabelSelector::parse("app=guarded").unwrap(),
            disruptions_allowed: 0,
        });
        let p = cpu_pod("2", 100, json!({}));
        let st = CycleState::default();
        let sm = statuses(&fw, &st, &p, &s);
        let (res, _) = DefaultPreemption.post_filter(&st, &p, &s, &fw, &sm);
        assert_eq!(res.unwrap().nominated_node, "n2");
    }

    #[test]
    fn no_candidates_summarized() {
        let fw = fw();
        let mut s = snapshot(&["n1", "n2"]);
        s.add_pod("n1", cpu_pod("2", 1000, json!({})));
        let p = pod(
            json!({"spec": {"priority": 100, "nodeSelector": {"x": "y"}, "containers": [
            {"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        let st = CycleState::default();
        let mut sm = statuses(&fw, &st, &p, &s);
        sm.insert("n1".into(), Status::unschedulable("Insufficient cpu"));
        let (res, status) = DefaultPreemption.post_filter(&st, &p, &s, &fw, &sm);
        assert!(res.is_none());
        assert_eq!(
            status.message(),
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
        let never =
            pod(json!({"spec": {"priority": 100, "preemptionPolicy": "Never", "containers": []}}));
        let (_, status) = DefaultPreemption.post_filter(&st, &never, &s, &fw, &sm);
        assert_eq!(
            status.message(),
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }
}
