//! TaintToleration: NoSchedule and NoExecute taints keep away pods that do not tolerate
//! them; untolerated PreferNoSchedule taints lower a node's score.

use k8s_openapi::api::core::v1::Toleration;

use super::helper::{do_not_schedule, find_untolerated, tolerations_tolerate};
use crate::framework::{
    default_normalize_score, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, PreScorePlugin,
    ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "TaintToleration";
/// Upstream 1.34 no longer names the taint in the summary.
pub const ERR_REASON_NOT_MATCH: &str = "node(s) had untolerated taint(s)";

const PRE_SCORE_KEY: &str = "PreScoreTaintToleration";

pub struct TaintToleration;

#[derive(Clone)]
struct PreferNoSchedule(Vec<Toleration>);

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
}

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match find_untolerated(node.taints(), tolerations(pod), do_not_schedule) {
            None => Status::success(),
            Some(_) => Status::unresolvable(ERR_REASON_NOT_MATCH),
        }
    }
}

impl PreScorePlugin for TaintToleration {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snapshot: &Snapshot,
    ) -> Status {
        let prefer: Vec<Toleration> = tolerations(pod)
            .iter()
            .filter(|t| {
                let e = t.effect.as_deref().unwrap_or("");
                e.is_empty() || e == "PreferNoSchedule"
            })
            .cloned()
            .collect();
        state.write(PRE_SCORE_KEY, PreferNoSchedule(prefer));
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let empty = PreferNoSchedule(Vec::new());
        let tol = state
            .read::<PreferNoSchedule>(PRE_SCORE_KEY)
            .unwrap_or(&empty);
        Ok(node
            .taints()
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule" && !tolerations_tolerate(&tol.0, t))
            .count() as i64)
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn filter_and_score() {
        let tainted = node(json!({"metadata": {"name": "t"}, "spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}));
        let soft = node(json!({"metadata": {"name": "s"}, "spec": {"taints": [
            {"key": "spot", "effect": "PreferNoSchedule"}]}}));
        let clean = node(json!({"metadata": {"name": "c"}}));
        let p = pod(json!({"spec": {"containers": []}}));
        let st = CycleState::default();
        assert_eq!(
            TaintToleration.filter(&st, &p, &tainted),
            Status::unresolvable(ERR_REASON_NOT_MATCH)
        );
        assert!(TaintToleration.filter(&st, &p, &soft).is_success());
        let tol = pod(json!({"spec": {"containers": [], "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}}));
        assert!(TaintToleration.filter(&st, &tol, &tainted).is_success());

        let mut st = CycleState::default();
        TaintToleration.pre_score(&mut st, &p, &[], &Snapshot::new());
        let mut scores = vec![
            TaintToleration.score(&st, &p, &soft).unwrap(),
            TaintToleration.score(&st, &p, &clean).unwrap(),
        ];
        TaintToleration.normalize(&st, &p, &mut scores);
        assert_eq!(scores, vec![0, 100]);
    }
}
