//! The default plugins, one file each, and the default profile that wires them to the
//! extension points with upstream's weights.

pub mod balanced_allocation;
pub mod default_binder;
pub mod default_preemption;
pub mod helper;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod queue_sort;
pub mod taint_toleration;
pub mod volume_binding;

use std::sync::Arc;

use crate::framework::Framework;

/// Upstream's default profile (`pkg/scheduler/apis/config/v1/default_plugins.go`) with
/// the DefaultBinder talking to `client`.
pub fn default_framework(client: kube::Client, scheduler_name: &str) -> Framework {
    let mut fw = default_framework_without_binder(scheduler_name);
    // VolumeBinding watches claims, so it needs the client: PreFilter, Filter after
    // NodeResourcesFit (upstream's order), and its PreBind part as the first Bind plugin.
    let volumes = Arc::new(volume_binding::VolumeBinding::start(client.clone()));
    fw.pre_filter.push(volumes.clone());
    fw.filter.insert(6, volumes.clone());
    fw.bind.push(volumes);
    fw.bind
        .push(Arc::new(default_binder::DefaultBinder::new(client)));
    fw
}

/// The default profile without a binder (for simulation and tests): filters in
/// upstream's order, score weights TaintToleration 3, NodeAffinity 2, InterPodAffinity 2,
/// PodTopologySpread 2, NodeResourcesFit 1, BalancedAllocation 1.
pub fn default_framework_without_binder(scheduler_name: &str) -> Framework {
    let fit = Arc::new(node_resources_fit::NodeResourcesFit);
    let affinity = Arc::new(node_affinity::NodeAffinity);
    let taints = Arc::new(taint_toleration::TaintToleration);
    let balanced = Arc::new(balanced_allocation::BalancedAllocation);
    let pod_affinity = Arc::new(inter_pod_affinity::InterPodAffinity);
    let spread = Arc::new(pod_topology_spread::PodTopologySpread);
    Framework {
        scheduler_name: scheduler_name.to_string(),
        queue_sort: Arc::new(queue_sort::PrioritySort),
        pre_filter: vec![affinity.clone(), spread.clone(), pod_affinity.clone()],
        filter: vec![
            Arc::new(node_unschedulable::NodeUnschedulable),
            Arc::new(node_name::NodeName),
            taints.clone(),
            affinity.clone(),
            Arc::new(node_ports::NodePorts),
            fit.clone(),
            spread.clone(),
            pod_affinity.clone(),
        ],
        post_filter: vec![Arc::new(default_preemption::DefaultPreemption)],
        pre_score: vec![
            taints.clone(),
            affinity.clone(),
            spread.clone(),
            pod_affinity.clone(),
            balanced.clone(),
        ],
        score: vec![
            (taints, 3),
            (affinity, 2),
            (spread, 2),
            (pod_affinity, 2),
            (fit, 1),
            (balanced, 1),
        ],
        reserve: vec![],
        permit: vec![],
        bind: vec![],
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builders for plugin unit tests.
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use serde_json::Value;

    use crate::framework::{NodeInfo, PodInfo};

    static NEXT_UID: AtomicU64 = AtomicU64::new(1);

    pub fn node(v: Value) -> NodeInfo {
        NodeInfo::new(Arc::new(serde_json::from_value(v).expect("node json")))
    }

    /// A pod; gets a fresh uid, name and the `default` namespace unless given.
    pub fn pod(mut v: Value) -> PodInfo {
        let n = NEXT_UID.fetch_add(1, Ordering::Relaxed);
        let meta = v
            .as_object_mut()
            .expect("pod json object")
            .entry("metadata")
            .or_insert_with(|| serde_json::json!({}));
        let m = meta.as_object_mut().expect("metadata object");
        m.entry("uid").or_insert_with(|| format!("uid-{n}").into());
        m.entry("name").or_insert_with(|| format!("pod-{n}").into());
        m.entry("namespace").or_insert_with(|| "default".into());
        let priority = v
            .pointer("/spec/priority")
            .and_then(Value::as_i64)
            .unwrap_or(0) as i32;
        PodInfo::new(
            Arc::new(serde_json::from_value(v).expect("pod json")),
            priority,
        )
    }

    pub fn with_pod(n: &mut NodeInfo, p: PodInfo) {
        n.add_pod(Arc::new(p));
    }
}
