//! NodeResourcesFit: the pod's requests (cpu, memory, ephemeral-storage, extended
//! resources such as `nvidia.com/gpu`) and one more pod must fit in what the node's
//! allocatable leaves free; scored with upstream's default LeastAllocated strategy.

use crate::framework::{
    CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, ScorePlugin, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "NodeResourcesFit";

/// Resources LeastAllocated weighs (upstream default: cpu and memory, weight 1 each).
const SCORED: [(&str, i64); 2] = [("cpu", 1), ("memory", 1)];

pub struct NodeResourcesFit;

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }
}

/// Every reason the pod does not fit, in upstream's order.
pub fn insufficient_resources(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    let alloc = &node.allocatable;
    let used = &node.requested;
    if node.pods.len() as i64 + 1 > alloc.allowed_pod_number {
        reasons.push("Too many pods".to_string());
    }
    let req = &pod.requests;
    if req.is_zero() {
        return reasons;
    }
    let short = |want: i64, have: i64, used: i64| want > 0 && want > have - used;
    if short(req.milli_cpu, alloc.milli_cpu, used.milli_cpu) {
        reasons.push("Insufficient cpu".into());
    }
    if short(req.memory, alloc.memory, used.memory) {
        reasons.push("Insufficient memory".into());
    }
    if short(
        req.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    ) {
        reasons.push("Insufficient ephemeral-storage".into());
    }
    for (name, want) in &req.scalar {
        if short(*want, alloc.get(name), used.get(name)) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = insufficient_resources(pod, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status {
                code: crate::framework::Code::Unschedulable,
                reasons,
                plugin: NAME,
            }
        }
    }
}

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// Upstream LeastAllocated: the weighted share of cpu and memory left free once the pod
/// (with default requests for containers that set none) is placed.
pub fn least_allocated_score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let (mut sum, mut weights) = (0, 0);
    for (res, w) in SCORED {
        let alloc = node.allocatable.get(res);
        if alloc == 0 {
            continue;
        }
        let req = node.non_zero_requested.get(res) + pod.non_zero_requests.get(res);
        sum += least_requested(req, alloc) * w;
        weights += w;
    }
    if weights == 0 {
        0
    } else {
        sum / weights
    }
}

impl ScorePlugin for NodeResourcesFit {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        Ok(least_allocated_score(pod, node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, with_pod};
    use serde_json::json;

    fn small_node() -> NodeInfo {
        node(json!({"metadata": {"name": "n"}, "status": {"allocatable":
            {"cpu": "2", "memory": "4Gi", "pods": "2", "nvidia.com/gpu": "1"}}}))
    }

    fn req(cpu: &str, mem: &str) -> PodInfo {
        pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}),
        )
    }

    #[test]
    fn fits_until_full() {
        let mut n = small_node();
        assert!(NodeResourcesFit
            .filter(&CycleState::default(), &req("1500m", "1Gi"), &n)
            .is_success());
        with_pod(&mut n, req("1500m", "1Gi"));
        let st = NodeResourcesFit.filter(&CycleState::default(), &req("1", "4Gi"), &n);
        assert_eq!(st.reasons, vec!["Insufficient cpu", "Insufficient memory"]);
        assert_eq!(st.code, crate::framework::Code::Unschedulable);
        with_pod(&mut n, req("0", "0"));
        let st = NodeResourcesFit.filter(&CycleState::default(), &req("0", "0"), &n);
        assert_eq!(st.reasons, vec!["Too many pods"]);
    }

    #[test]
    fn extended_resources_count() {
        let n = small_node();
        let gpu = |k: u32| {
            pod(
                json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": k.to_string()}}}]}}),
            )
        };
        assert!(NodeResourcesFit
            .filter(&CycleState::default(), &gpu(1), &n)
            .is_success());
        let st = NodeResourcesFit.filter(&CycleState::default(), &gpu(2), &n);
        assert_eq!(st.reasons, vec!["Insufficient nvidia.com/gpu"]);
        let other = pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"example.com/foo": "1"}}}]}}),
        );
        let st = NodeResourcesFit.filter(&CycleState::default(), &other, &n);
        assert_eq!(st.reasons, vec!["Insufficient example.com/foo"]);
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes() {
        let empty = small_node();
        let mut busy = small_node();
        with_pod(&mut busy, req("1", "2Gi"));
        let p = req("500m", "1Gi");
        let a = least_allocated_score(&p, &empty);
        let b = least_allocated_score(&p, &busy);
        // cpu (2000-500)/2000=75, memory (4-1)/4=75 → 75; busy: 25 and 25 → 25.
        assert_eq!((a, b), (75, 25));
    }
}
