//! NodePorts: a pod's host ports (Borg's ports as a resource) must be free on the node.

use crate::framework::{CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, Status};

pub const NAME: &str = "NodePorts";
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let clash = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| want.conflicts(used)));
        if clash {
            Status::unschedulable(ERR_REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, with_pod};
    use serde_json::json;

    #[test]
    fn host_port_taken_once() {
        let mut n = node(json!({"metadata": {"name": "n"}}));
        let web = || {
            pod(
                json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}),
            )
        };
        assert!(NodePorts
            .filter(&CycleState::default(), &web(), &n)
            .is_success());
        with_pod(&mut n, web());
        assert_eq!(
            NodePorts.filter(&CycleState::default(), &web(), &n),
            Status::unschedulable(ERR_REASON)
        );
        let udp = pod(
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}]}}),
        );
        assert!(NodePorts
            .filter(&CycleState::default(), &udp, &n)
            .is_success());
    }
}
