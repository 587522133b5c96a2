//! NodeResourcesBalancedAllocation: prefers nodes where, with the pod placed, cpu and
//! memory are used in similar proportions (upstream: one minus their standard deviation).

use crate::framework::{
    CycleState, NodeInfo, Plugin, PodInfo, PreScorePlugin, ScorePlugin, Snapshot, Status,
    MAX_NODE_SCORE,
};

pub const NAME: &str = "NodeResourcesBalancedAllocation";

const RESOURCES: [&str; 2] = ["cpu", "memory"];

pub struct BalancedAllocation;

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(
        &self,
        _state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snapshot: &Snapshot,
    ) -> Status {
        // A best-effort pod changes no node's balance (upstream skips it too).
        if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
            Status::skip()
        } else {
            Status::success()
        }
    }
}

pub fn balanced_score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let mut fractions = Vec::with_capacity(RESOURCES.len());
    for r in RESOURCES {
        let alloc = node.allocatable.get(r);
        if alloc == 0 {
            continue;
        }
        let req = node.requested.get(r) + pod.requests.get(r);
        fractions.push((req as f64 / alloc as f64).min(1.0));
    }
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        Ok(balanced_score(pod, node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn balanced_beats_lopsided() {
        let n = node(
            json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi"}}}),
        );
        let balanced = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "2Gi"}}}]}}),
        );
        let lopsided = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "4", "memory": "0"}}}]}}),
        );
        assert_eq!(balanced_score(&balanced, &n), 100);
        assert_eq!(balanced_score(&lopsided, &n), 50);
        let be = pod(json!({"spec": {"containers": [{"name": "c"}]}}));
        let st =
            BalancedAllocation.pre_score(&mut CycleState::default(), &be, &[], &Snapshot::new());
        assert_eq!(st.code, crate::framework::Code::Skip);
    }
}
