//! The scheduling framework, shaped as upstream's `pkg/scheduler/framework/interface.go`:
//! one trait per extension point (QueueSort, PreFilter, Filter, PostFilter, PreScore,
//! Score, Reserve, Permit, Bind), a [`Status`] with upstream's codes, a per-pod
//! [`CycleState`], and [`Framework`], the configured set of plugins with the runners
//! that call them in order.

pub mod snapshot;
pub mod types;

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

pub use snapshot::Snapshot;
pub use types::{NodeInfo, PodInfo, Resource};

/// The highest score a Score plugin may give (upstream `MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// Upstream's status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Success,
    /// An internal error: the pod is retried with back-off.
    Error,
    /// The pod does not fit, but preemption on this node might help.
    Unschedulable,
    /// The pod does not fit and preemption on this node cannot help.
    UnschedulableAndUnresolvable,
    /// A Permit plugin asks to wait.
    Wait,
    /// The plugin has nothing to do for this pod (PreFilter/PreScore skip its later calls).
    Skip,
}

/// The result of a plugin call: a code, the reasons (for the FailedScheduling summary),
/// and which plugin said so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: &'static str,
}

impl Status {
    pub const fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn new(code: Code, reason: impl Into<String>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status::new(Code::Unschedulable, reason)
    }

    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }

    pub fn error(reason: impl Into<String>) -> Status {
        Status::new(Code::Error, reason)
    }

    pub fn skip() -> Status {
        Status {
            code: Code::Skip,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }

    pub fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = plugin;
        self
    }

    /// The reasons joined, as upstream's `Status.Message()`.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Data a plugin keeps for one pod's scheduling cycle; cloned when preemption simulates
/// removing pods.
pub trait StateData: Any + Send + Sync {
    fn clone_box(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Send + Sync + Clone> StateData for T {
    fn clone_box(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Per-pod scratch space shared by the plugins of one scheduling cycle.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn StateData>>,
    /// Plugins whose PreFilter returned Skip: their Filter is not called.
    pub skip_filter: HashSet<&'static str>,
    /// Plugins whose PreScore returned Skip: their Score is not called.
    pub skip_score: HashSet<&'static str>,
    /// Per Filter plugin of the framework, whether it runs: computed once after
    /// PreFilter so the per-node loop needs no set lookups.
    filter_mask: Option<Vec<bool>>,
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        CycleState {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, (**v).clone_box()))
                .collect(),
            skip_filter: self.skip_filter.clone(),
            skip_score: self.skip_score.clone(),
            filter_mask: self.filter_mask.clone(),
        }
    }
}

impl CycleState {
    pub fn write<T: StateData>(&mut self, key: &'static str, v: T) {
        self.data.insert(key, Box::new(v));
    }

    pub fn read<T: 'static>(&self, key: &'static str) -> Option<&T> {
        (**self.data.get(key)?).as_any().downcast_ref()
    }

    pub fn read_mut<T: 'static>(&mut self, key: &'static str) -> Option<&mut T> {
        (**self.data.get_mut(key)?).as_any_mut().downcast_mut()
    }
}

/// A pod waiting in the scheduling queue.
#[derive(Clone, Debug)]
pub struct QueuedPodInfo {
    pub info: Arc<PodInfo>,
    /// When the pod entered the queue (this attempt), upstream `Timestamp`.
    pub timestamp: tokio::time::Instant,
    /// When the pod was first queued, for the creation→bound latency.
    pub initial: tokio::time::Instant,
    pub attempts: u32,
    /// Plugins that rejected the pod last time: only events they care about requeue it.
    pub unschedulable_plugins: HashSet<&'static str>,
}

/// Nodes a PreFilter restricts the search to (None: all).
#[derive(Clone, Debug, Default)]
pub struct PreFilterResult {
    pub node_names: Option<HashSet<String>>,
}

/// What preemption decided: the node to nominate and the pods to evict there.
#[derive(Clone, Debug)]
pub struct PostFilterResult {
    pub nominated_node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

/// Why each node was rejected in the Filter phase.
pub type NodeStatusMap = HashMap<String, Status>;

pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
}

/// Orders the active queue.
pub trait QueueSortPlugin: Plugin {
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool;
}

/// Runs once per pod before filtering; may compute state, restrict the node set, or
/// reject the pod outright.
pub trait PreFilterPlugin: Plugin {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status);

    /// Updates this plugin's state as if `added` ran on `node` (preemption simulation,
    /// nominated pods). Plugins whose state does not depend on other pods keep the default.
    fn add_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _added: &PodInfo,
        _node: &NodeInfo,
    ) -> Status {
        Status::success()
    }

    /// Updates this plugin's state as if `removed` left `node`.
    fn remove_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _removed: &PodInfo,
        _node: &NodeInfo,
    ) -> Status {
        Status::success()
    }
}

/// Says whether the pod can run on one node.
pub trait FilterPlugin: Plugin {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// Runs when no node passed Filter (preemption).
pub trait PostFilterPlugin: Plugin {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        framework: &Framework,
        statuses: &NodeStatusMap,
    ) -> (Option<PostFilterResult>, Status);
}

/// Runs once before scoring with the feasible nodes.
pub trait PreScorePlugin: Plugin {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status;
}

/// Ranks one feasible node; `normalize` maps the raw scores to 0..=MAX_NODE_SCORE.
pub trait ScorePlugin: Plugin {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status>;

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) -> Status {
        Status::success()
    }
}

/// Claims resources for the pod on the chosen node before binding; undone on failure.
pub trait ReservePlugin: Plugin {
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

/// Approves, denies or delays the binding.
pub trait PermitPlugin: Plugin {
    fn permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> (Status, Duration);
}

/// Binds the pod to the node; a plugin returning Skip leaves it to the next.
#[async_trait::async_trait]
pub trait BindPlugin: Plugin {
    async fn bind(&self, pod: &PodInfo, node: &str) -> Status;
}

/// One profile's plugins, in the order they run.
#[derive(Clone)]
pub struct Framework {
    pub scheduler_name: String,
    pub queue_sort: Arc<dyn QueueSortPlugin>,
    pub pre_filter: Vec<Arc<dyn PreFilterPlugin>>,
    pub filter: Vec<Arc<dyn FilterPlugin>>,
    pub post_filter: Vec<Arc<dyn PostFilterPlugin>>,
    pub pre_score: Vec<Arc<dyn PreScorePlugin>>,
    /// Score plugins with their weights.
    pub score: Vec<(Arc<dyn ScorePlugin>, i64)>,
    pub reserve: Vec<Arc<dyn ReservePlugin>>,
    pub permit: Vec<Arc<dyn PermitPlugin>>,
    pub bind: Vec<Arc<dyn BindPlugin>>,
}

impl Framework {
    /// PreFilter of every plugin; the intersection of their node sets.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<HashSet<String>>, Status) {
        let mut nodes: Option<HashSet<String>> = None;
        for p in &self.pre_filter {
            let (res, st) = p.pre_filter(state, pod, snapshot);
            match st.code {
                Code::Success => {}
                Code::Skip => {
                    state.skip_filter.insert(p.name());
                    continue;
                }
                _ => {
                    state.filter_mask = None;
                    return (None, st.with_plugin(p.name()));
                }
            }
            if let Some(set) = res.and_then(|r| r.node_names) {
                nodes = Some(match nodes {
                    None => set,
                    Some(prev) => prev.intersection(&set).cloned().collect(),
                });
                if nodes.as_ref().is_some_and(|n| n.is_empty()) {
                    return (
                        None,
                        Status::unresolvable(format!(
                            "node(s) didn't satisfy plugin(s) [{}] simultaneously",
                            p.name()
                        ))
                        .with_plugin(p.name()),
                    );
                }
            }
        }
        state.filter_mask = Some(
            self.filter
                .iter()
                .map(|p| !state.skip_filter.contains(p.name()))
                .collect(),
        );
        (nodes, Status::success())
    }

    /// Filter of every plugin on one node, stopping at the first rejection.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let mask = state
            .filter_mask
            .as_ref()
            .filter(|m| m.len() == self.filter.len());
        for (i, p) in self.filter.iter().enumerate() {
            let skip = match mask {
                Some(m) => !m[i],
                None => state.skip_filter.contains(p.name()),
            };
            if skip {
                continue;
            }
            let st = p.filter(state, pod, node);
            if !st.is_success() {
                return st.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Filter, counting as present the pods nominated to this node with at least the
    /// pod's priority (upstream `RunFilterPluginsWithNominatedPods`): a preemptor's
    /// space must not be taken by a lower-priority pod while its victims terminate.
    pub fn run_filter_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: &[Arc<PodInfo>],
    ) -> Status {
        let relevant: Vec<&Arc<PodInfo>> = nominated
            .iter()
            .filter(|n| n.uid != pod.uid && n.priority >= pod.priority)
            .collect();
        if relevant.is_empty() {
            return self.run_filter(state, pod, node);
        }
        let mut ni = node.clone();
        let mut st = state.clone();
        for n in relevant {
            ni.add_pod(n.clone());
            for p in &self.pre_filter {
                let s = p.add_pod(&mut st, pod, n, &ni);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        // Upstream filters twice: with the nominated pods (they may need the space) and
        // without (anti-affinity to them must not hold if they never arrive).
        let with = self.run_filter(&st, pod, &ni);
        if !with.is_success() {
            return with;
        }
        self.run_filter(state, pod, node)
    }

    /// PreScore of every plugin.
    pub fn run_pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status {
        for p in &self.pre_score {
            let st = p.pre_score(state, pod, nodes, snapshot);
            match st.code {
                Code::Success => {}
                Code::Skip => {
                    state.skip_score.insert(p.name());
                }
                _ => return st.with_plugin(p.name()),
            }
        }
        Status::success()
    }

    /// Score of every plugin on every node, normalized and weighted; the totals.
    pub fn run_score(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
    ) -> Result<Vec<i64>, Status> {
        let mut totals = vec![0i64; nodes.len()];
        let mut scores = vec![0i64; nodes.len()];
        for (p, weight) in &self.score {
            if state.skip_score.contains(p.name()) {
                continue;
            }
            for (i, n) in nodes.iter().enumerate() {
                scores[i] = p
                    .score(state, pod, n)
                    .map_err(|s| s.with_plugin(p.name()))?;
            }
            let st = p.normalize(state, pod, &mut scores);
            if !st.is_success() {
                return Err(st.with_plugin(p.name()));
            }
            for (t, s) in totals.iter_mut().zip(&scores) {
                if !(0..=MAX_NODE_SCORE).contains(s) {
                    return Err(Status::error(format!(
                        "plugin {:?} returns an invalid score {s}, it should in the range of [0, {MAX_NODE_SCORE}] after normalizing",
                        p.name()
                    ))
                    .with_plugin(p.name()));
                }
                *t += s * weight;
            }
        }
        Ok(totals)
    }

    /// Reserve of every plugin; on failure, what was reserved is undone.
    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for (i, p) in self.reserve.iter().enumerate() {
            let st = p.reserve(state, pod, node);
            if !st.is_success() {
                for q in self.reserve[..=i].iter().rev() {
                    q.unreserve(state, pod, node);
                }
                return st.with_plugin(p.name());
            }
        }
        Status::success()
    }

    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            p.unreserve(state, pod, node);
        }
    }

    /// Permit of every plugin. Waiting is not supported yet: a Wait is refused as an
    /// error rather than silently approved.
    pub fn run_permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.permit {
            let (st, _) = p.permit(state, pod, node);
            match st.code {
                Code::Success | Code::Skip => {}
                Code::Wait => {
                    return Status::error("waiting permit plugins are not supported")
                        .with_plugin(p.name())
                }
                _ => return st.with_plugin(p.name()),
            }
        }
        Status::success()
    }

    /// Bind through the first plugin that does not skip.
    pub async fn run_bind(&self, pod: &PodInfo, node: &str) -> Status {
        for p in &self.bind {
            let st = p.bind(pod, node).await;
            if st.code != Code::Skip {
                return st.with_plugin(p.name());
            }
        }
        Status::error("no bind plugin bound the pod")
    }
}

/// Upstream `DefaultNormalizeScore`: scales scores to 0..=max by the largest, reversed
/// when a high raw score is bad.
pub fn default_normalize_score(max: i64, reverse: bool, scores: &mut [i64]) {
    let highest = scores.iter().copied().max().unwrap_or(0);
    if highest == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = max * *s / highest;
        if reverse {
            *s = max - *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Counter(u32);

    #[test]
    fn cycle_state_clones_deeply() {
        let mut s = CycleState::default();
        s.write("c", Counter(1));
        let mut c = s.clone();
        c.read_mut::<Counter>("c").unwrap().0 = 5;
        assert_eq!(s.read::<Counter>("c").unwrap().0, 1);
        assert_eq!(c.read::<Counter>("c").unwrap().0, 5);
        assert!(s.read::<u32>("c").is_none());
    }

    #[test]
    fn normalize_scales_and_reverses() {
        let mut s = vec![0, 5, 10];
        default_normalize_score(100, false, &mut s);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 5, 10];
        default_normalize_score(100, true, &mut s);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize_score(100, true, &mut s);
        assert_eq!(s, vec![100, 100]);
    }
}
