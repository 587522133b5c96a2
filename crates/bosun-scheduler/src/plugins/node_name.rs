//! NodeName: a pod naming a node in `spec.nodeName` fits only there.

use crate::framework::{CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, Status};

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.node_name() {
            Some(n) if n != node.name => Status::unresolvable(ERR_REASON),
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn only_the_named_node_fits() {
        let n = node(json!({"metadata": {"name": "a"}}));
        let p = pod(json!({"spec": {"containers": [], "nodeName": "b"}}));
        assert_eq!(
            NodeName.filter(&CycleState::default(), &p, &n),
            Status::unresolvable(ERR_REASON)
        );
        let p = pod(json!({"spec": {"containers": [], "nodeName": "a"}}));
        assert!(NodeName.filter(&CycleState::default(), &p, &n).is_success());
    }
}
