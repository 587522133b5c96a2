//! The scheduling loop. One task owns the cache and the queue: it applies watch events
//! as they arrive, then takes the next pod, runs the framework over the snapshot, assumes
//! the pod on the chosen node and hands the binding to a background task ("assume, then
//! bind"), so API latency never delays the next decision.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use serde_json::json;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use crate::cache::{Cache, NodeChange};
use crate::events::EventRecorder;
use crate::framework::snapshot::PdbInfo;
use crate::framework::{
    Code, CycleState, Framework, NodeInfo, NodeStatusMap, PodInfo, PostFilterResult, QueuedPodInfo,
    Status,
};
use crate::queue::{ClusterEvent, QueueConfig, SchedulingQueue};
use crate::{SchedulerOptions, Stats};

/// Upstream's built-in classes, valid even before their objects exist.
const SYSTEM_CLASSES: [(&str, i32); 2] = [
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// Upstream `minFeasibleNodesToFind` and `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// Everything the loop reacts to. Inputs are moved, never stored in bulk, so the size
/// difference between variants costs nothing worth a box per event.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Input {
    Pod(Event<Pod>),
    Node(Event<Node>),
    PriorityClass(Event<PriorityClass>),
    Namespace(Event<Namespace>),
    Pdb(Event<PodDisruptionBudget>),
    Bound {
        qp: QueuedPodInfo,
        node: String,
        status: Status,
        state: Box<CycleState>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Pod,
    Node,
    PriorityClass,
    Namespace,
    Pdb,
}

const ALL_KINDS: [Kind; 5] = [
    Kind::Pod,
    Kind::Node,
    Kind::PriorityClass,
    Kind::Namespace,
    Kind::Pdb,
];

/// Why a pod did not get a node this cycle.
enum Failure {
    /// No node fits; the diagnosis for the FailedScheduling message.
    Fit(Diagnosis),
    /// Something went wrong; retried after back-off.
    Error(Status),
}

#[derive(Default)]
struct Diagnosis {
    total: usize,
    statuses: NodeStatusMap,
    pre_filter_msg: Option<String>,
    post_filter_msg: Option<String>,
    plugins: HashSet<&'static str>,
    /// A special message replacing the summary (no nodes at all).
    overall: Option<String>,
}

impl Diagnosis {
    /// Upstream `FitError.Error()`.
    fn message(&self) -> String {
        if let Some(m) = &self.overall {
            return m.clone();
        }
        let mut msg = format!("0/{} nodes are available:", self.total);
        if let Some(pre) = &self.pre_filter_msg {
            msg.push_str(&format!(" {pre}."));
        } else {
            let mut hist: HashMap<&str, usize> = HashMap::new();
            for st in self.statuses.values() {
                for r in &st.reasons {
                    *hist.entry(r.as_str()).or_default() += 1;
                }
            }
            let mut parts: Vec<String> = hist.iter().map(|(r, n)| format!("{n} {r}")).collect();
            parts.sort();
            if !parts.is_empty() {
                msg.push_str(&format!(" {}.", parts.join(", ")));
            }
        }
        if let Some(post) = &self.post_filter_msg {
            msg.push(' ');
            msg.push_str(post);
        }
        msg
    }
}

/// Upstream `numFeasibleNodesToFind`: all nodes below 100; otherwise the configured
/// percentage, or adaptively 50% minus 1% per 125 nodes, at least 5% and 100 nodes.
pub fn num_feasible_nodes_to_find(percentage: u32, total: usize) -> usize {
    if total < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100 {
        return total;
    }
    let pct = if percentage == 0 {
        (50usize.saturating_sub(total / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    } else {
        percentage as usize
    };
    (total * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

pub(crate) struct Scheduler {
    client: kube::Client,
    opts: SchedulerOptions,
    fw: Arc<Framework>,
    cache: Cache,
    queue: SchedulingQueue,
    classes: HashMap<String, i32>,
    global_default: Option<(String, i32)>,
    pdbs: HashMap<String, PdbInfo>,
    next_start: usize,
    tx: mpsc::Sender<Input>,
    bind_slots: Arc<Semaphore>,
    write_slots: Arc<Semaphore>,
    events: EventRecorder,
    stats: Arc<Stats>,
    leader: watch::Receiver<bool>,
    synced: HashSet<Kind>,
    relisting: HashMap<Kind, HashSet<String>>,
}

fn key_of<K: kube::Resource>(o: &K) -> String {
    match o.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", o.meta().name.as_deref().unwrap_or("")),
        None => o.meta().name.clone().unwrap_or_default(),
    }
}

fn spawn_watch<K, F>(
    api: Api<K>,
    cfg: watcher::Config,
    tx: mpsc::Sender<Input>,
    wrap: F,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: Fn(Event<K>) -> Input + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, cfg)
            .default_backoff()
            .modify(|o: &mut K| o.meta_mut().managed_fields = None)
            .boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(e) => {
                    if tx.send(wrap(e)).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scheduler watch failed; retrying"),
            }
        }
    })
}

/// A clone of `rx` that has seen its current value, so that `changed()` waits for the next
/// change. A plain clone inherits the original's last-seen version, and the loop only ever
/// `borrow()`s the original: after the first leadership change every clone's `changed()`
/// was ready at once, and an idle scheduler spun on its select (one core busy for good).
fn seen_clone(rx: &watch::Receiver<bool>) -> watch::Receiver<bool> {
    let mut c = rx.clone();
    c.borrow_and_update();
    c
}

impl Scheduler {
    pub(crate) fn new(
        client: kube::Client,
        opts: SchedulerOptions,
        fw: Framework,
        events: EventRecorder,
        stats: Arc<Stats>,
        leader: watch::Receiver<bool>,
        tx: mpsc::Sender<Input>,
    ) -> Scheduler {
        let qcfg = QueueConfig {
            initial_backoff: opts.pod_initial_backoff,
            max_backoff: opts.pod_max_backoff,
            max_in_unschedulable: opts.pod_max_in_unschedulable,
        };
        Scheduler {
            queue: SchedulingQueue::new(fw.queue_sort.clone(), qcfg),
            bind_slots: Arc::new(Semaphore::new(opts.bind_concurrency.max(1))),
            write_slots: Arc::new(Semaphore::new(16)),
            client,
            opts,
            fw: Arc::new(fw),
            cache: Cache::new(),
            classes: HashMap::new(),
            global_default: None,
            pdbs: HashMap::new(),
            next_start: 0,
            tx,
            events,
            stats,
            leader,
            synced: HashSet::new(),
            relisting: HashMap::new(),
        }
    }

    /// Starts the watches feeding `tx`.
    pub(crate) fn spawn_watches(
        client: &kube::Client,
        tx: &mpsc::Sender<Input>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            spawn_watch(
                Api::<Pod>::all(client.clone()),
                watcher::Config::default(),
                tx.clone(),
                Input::Pod,
            ),
            spawn_watch(
                Api::<Node>::all(client.clone()),
                watcher::Config::default(),
                tx.clone(),
                Input::Node,
            ),
            spawn_watch(
                Api::<PriorityClass>::all(client.clone()),
                watcher::Config::default(),
                tx.clone(),
                Input::PriorityClass,
            ),
            spawn_watch(
                Api::<Namespace>::all(client.clone()),
                watcher::Config::default(),
                tx.clone(),
                Input::Namespace,
            ),
            spawn_watch(
                Api::<PodDisruptionBudget>::all(client.clone()),
                watcher::Config::default(),
                tx.clone(),
                Input::Pdb,
            ),
        ]
    }

    fn ready(&self) -> bool {
        self.synced.len() == ALL_KINDS.len() && *self.leader.borrow()
    }

    /// The loop; returns when every sender is gone.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        loop {
            // Apply everything already delivered before deciding, so decisions see the
            // freshest state; bounded so a flood of events cannot starve scheduling.
            for _ in 0..4096 {
                match rx.try_recv() {
                    Ok(input) => self.handle(input),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            let now = Instant::now();
            self.queue.flush(now);
            if self.ready() {
                if let Some(qp) = self.queue.pop() {
                    self.schedule_one(qp);
                    tokio::task::yield_now().await;
                    continue;
                }
            }
            let wake = self
                .queue
                .next_wakeup()
                .unwrap_or(now + std::time::Duration::from_secs(3600));
            let mut leader = seen_clone(&self.leader);
            tokio::select! {
                input = rx.recv() => match input {
                    Some(i) => self.handle(i),
                    None => return,
                },
                _ = tokio::time::sleep_until(wake) => {}
                Ok(()) = leader.changed() => {}
            }
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Pod(e) => self.on_event(Kind::Pod, e, Self::on_pod, Self::on_pod_delete),
            Input::Node(e) => self.on_event(Kind::Node, e, Self::on_node, Self::on_node_delete),
            Input::PriorityClass(e) => self.on_event(
                Kind::PriorityClass,
                e,
                Self::on_class,
                Self::on_class_delete,
            ),
            Input::Namespace(e) => self.on_event(
                Kind::Namespace,
                e,
                Self::on_namespace,
                Self::on_namespace_delete,
            ),
            Input::Pdb(e) => self.on_event(Kind::Pdb, e, Self::on_pdb, Self::on_pdb_delete),
            Input::Bound {
                qp,
                node,
                status,
                state,
            } => self.on_bound(qp, node, status, *state),
        }
    }

    /// Dispatches one watch event, reconciling a relist: whatever the new list lacks was
    /// deleted while the watch was down.
    fn on_event<K: kube::Resource + Clone>(
        &mut self,
        kind: Kind,
        e: Event<K>,
        apply: fn(&mut Self, K),
        delete: fn(&mut Self, K),
    ) {
        match e {
            Event::Init => {
                self.relisting.insert(kind, HashSet::new());
            }
            Event::InitApply(o) => {
                if let Some(seen) = self.relisting.get_mut(&kind) {
                    // Pods are tracked by uid, everything else by key.
                    let key = match kind {
                        Kind::Pod => o.meta().uid.clone().unwrap_or_default(),
                        _ => key_of(&o),
                    };
                    seen.insert(key);
                }
                apply(self, o);
            }
            Event::Apply(o) => apply(self, o),
            Event::Delete(o) => delete(self, o),
            Event::InitDone => {
                let seen = self.relisting.remove(&kind).unwrap_or_default();
                self.drop_unseen(kind, &seen);
                if self.synced.insert(kind) {
                    tracing::debug!(?kind, "scheduler cache synced");
                }
            }
        }
    }

    fn drop_unseen(&mut self, kind: Kind, seen: &HashSet<String>) {
        match kind {
            Kind::Node => {
                for n in self.cache.node_names() {
                    if !seen.contains(&n) {
                        self.cache.remove_node(&n);
                    }
                }
            }
            Kind::PriorityClass => {
                self.classes.retain(|k, _| seen.contains(k));
                if self
                    .global_default
                    .as_ref()
                    .is_some_and(|(n, _)| !seen.contains(n))
                {
                    self.global_default = None;
                }
            }
            Kind::Namespace => self
                .cache
                .snapshot
                .namespace_labels
                .retain(|k, _| seen.contains(k)),
            Kind::Pdb => {
                self.pdbs.retain(|k, _| seen.contains(k));
                self.sync_pdbs();
            }
            Kind::Pod => {
                let mut freed = false;
                for uid in self.cache.placed_uids() {
                    // An assumed pod may be bound after the list was taken.
                    if !seen.contains(&uid) && !self.cache.is_assumed(&uid) {
                        freed |= self.cache.remove_pod(&uid);
                    }
                }
                for uid in self.queue.uids() {
                    if !seen.contains(&uid) {
                        self.queue.delete(&uid);
                        self.cache.unnominate(&uid);
                    }
                }
                if freed {
                    self.queue
                        .move_for(ClusterEvent::AssignedPodDelete, Instant::now());
                }
            }
        }
    }

    fn priority_of(&self, pod: &Pod) -> i32 {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.priority) {
            return p;
        }
        match spec
            .and_then(|s| s.priority_class_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            Some(name) => self
                .classes
                .get(name)
                .copied()
                .or_else(|| {
                    SYSTEM_CLASSES
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| *v)
                })
                .unwrap_or(0),
            None => self.global_default.as_ref().map(|(_, v)| *v).unwrap_or(0),
        }
    }

    fn responsible(&self, pod: &Pod) -> bool {
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .filter(|n| !n.is_empty())
            .unwrap_or("default-scheduler");
        name == self.opts.scheduler_name
    }

    fn on_pod(&mut self, pod: Pod) {
        let now = Instant::now();
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let terminal = matches!(phase, Some("Succeeded") | Some("Failed"));
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        if let Some(node) = node {
            self.queue.delete(&uid);
            self.cache.unnominate(&uid);
            if terminal {
                if self.cache.remove_pod(&uid) {
                    self.queue.move_for(ClusterEvent::AssignedPodDelete, now);
                }
                return;
            }
            let priority = self.priority_of(&pod);
            let info = Arc::new(PodInfo::new(Arc::new(pod), priority));
            if self.cache.upsert_bound(info, &node) {
                self.queue.move_for(ClusterEvent::AssignedPodAdd, now);
            }
            return;
        }
        if self.cache.is_assumed(&uid) {
            // Our binding is in flight; this event predates it.
            return;
        }
        if terminal || pod.metadata.deletion_timestamp.is_some() || !self.responsible(&pod) {
            self.queue.delete(&uid);
            self.cache.unnominate(&uid);
            return;
        }
        let priority = self.priority_of(&pod);
        let nominated = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.clone())
            .filter(|n| !n.is_empty());
        let info = Arc::new(PodInfo::new(Arc::new(pod), priority));
        match nominated {
            Some(n) => self.cache.nominate(info.clone(), &n),
            None => self.cache.unnominate(&uid),
        }
        self.queue.add_or_update(info, now);
    }

    fn on_pod_delete(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.as_deref() else {
            return;
        };
        self.queue.delete(uid);
        self.cache.unnominate(uid);
        if self.cache.remove_pod(uid) {
            self.queue
                .move_for(ClusterEvent::AssignedPodDelete, Instant::now());
        }
    }

    fn on_node(&mut self, node: Node) {
        let now = Instant::now();
        match self.cache.upsert_node(Arc::new(node)) {
            NodeChange::Added => {
                self.queue.move_for(ClusterEvent::NodeAdd, now);
            }
            NodeChange::Relevant => {
                self.queue.move_for(ClusterEvent::NodeUpdate, now);
            }
            NodeChange::Irrelevant => {}
        }
    }

    fn on_node_delete(&mut self, node: Node) {
        if let Some(n) = node.metadata.name.as_deref() {
            self.cache.remove_node(n);
        }
    }

    fn on_class(&mut self, pc: PriorityClass) {
        let name = pc.metadata.name.clone().unwrap_or_default();
        if pc.global_default == Some(true) {
            self.global_default = Some((name.clone(), pc.value));
        } else if self
            .global_default
            .as_ref()
            .is_some_and(|(n, _)| *n == name)
        {
            self.global_default = None;
        }
        self.classes.insert(name, pc.value);
    }

    fn on_class_delete(&mut self, pc: PriorityClass) {
        let name = pc.metadata.name.unwrap_or_default();
        self.classes.remove(&name);
        if self
            .global_default
            .as_ref()
            .is_some_and(|(n, _)| *n == name)
        {
            self.global_default = None;
        }
    }

    fn on_namespace(&mut self, ns: Namespace) {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let labels = ns.metadata.labels.clone().unwrap_or_default();
        self.cache.snapshot.namespace_labels.insert(name, labels);
    }

    fn on_namespace_delete(&mut self, ns: Namespace) {
        if let Some(n) = ns.metadata.name.as_deref() {
            self.cache.snapshot.namespace_labels.remove(n);
        }
    }

    fn on_pdb(&mut self, pdb: PodDisruptionBudget) {
        let key = key_of(&pdb);
        let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
        let selector = bosun_api::selector::LabelSelector::from_api(selector)
            .unwrap_or_else(|_| bosun_api::selector::LabelSelector::nothing());
        let allowed = pdb
            .status
            .as_ref()
            .map(|s| i64::from(s.disruptions_allowed))
            .unwrap_or(0);
        self.pdbs.insert(
            key,
            PdbInfo {
                namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
                selector,
                disruptions_allowed: allowed,
            },
        );
        self.sync_pdbs();
    }

    fn on_pdb_delete(&mut self, pdb: PodDisruptionBudget) {
        self.pdbs.remove(&key_of(&pdb));
        self.sync_pdbs();
    }

    fn sync_pdbs(&mut self) {
        self.cache.snapshot.pdbs = self.pdbs.values().cloned().collect();
    }

    /// One scheduling cycle for one pod.
    fn schedule_one(&mut self, qp: QueuedPodInfo) {
        self.stats.attempts.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        self.schedule_attempt(qp);
        self.stats
            .cycle_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    fn schedule_attempt(&mut self, mut qp: QueuedPodInfo) {
        let pod = qp.info.clone();
        let mut state = CycleState::default();
        let span = tracing::debug_span!("schedule", pod = %pod.key, attempt = qp.attempts);
        let _g = span.enter();
        match self.schedule_pod(&mut state, &pod) {
            Ok(node) => self.assume_and_bind(qp, node, state),
            Err(Failure::Fit(mut diag)) => {
                qp.unschedulable_plugins = diag.plugins.clone();
                let mut nominated = None;
                if diag.overall.is_none() {
                    let fw = self.fw.clone();
                    for pf in &fw.post_filter {
                        let (res, st) =
                            pf.post_filter(&state, &pod, &self.cache.snapshot, &fw, &diag.statuses);
                        if let Some(r) = res {
                            nominated = Some(r.nominated_node.clone());
                            self.preempt(&pod, r);
                            qp.unschedulable_plugins.insert(pf.name());
                            break;
                        }
                        if !st.reasons.is_empty() {
                            diag.post_filter_msg = Some(st.message());
                        }
                    }
                }
                self.stats.unschedulable.fetch_add(1, Ordering::Relaxed);
                let msg = diag.message();
                tracing::debug!(message = %msg, "pod is unschedulable");
                self.record_failure(&pod, "Unschedulable", &msg, nominated.as_deref());
                if let Some(n) = &nominated {
                    self.cache.nominate(pod.clone(), n);
                }
                self.queue.add_unschedulable(qp, Instant::now());
            }
            Err(Failure::Error(st)) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let msg = st.message();
                tracing::warn!(message = %msg, plugin = st.plugin, "scheduling error");
                self.record_failure(&pod, "SchedulerError", &msg, None);
                self.queue.add_backoff(qp, Instant::now());
            }
        }
    }

    // A failure carries its diagnosis by value once per failed cycle; boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    fn schedule_pod(&mut self, state: &mut CycleState, pod: &PodInfo) -> Result<String, Failure> {
        let total = self.cache.snapshot.len();
        if total == 0 {
            return Err(Failure::Fit(Diagnosis {
                overall: Some("no nodes available to schedule pods".into()),
                ..Default::default()
            }));
        }
        let fw = self.fw.clone();
        let (allowed, st) = fw.run_pre_filter(state, pod, &self.cache.snapshot);
        if !st.is_success() {
            if st.is_rejected() {
                let mut plugins = HashSet::new();
                plugins.insert(st.plugin);
                let statuses = self
                    .cache
                    .snapshot
                    .nodes()
                    .iter()
                    .map(|n| {
                        (
                            n.name.clone(),
                            Status {
                                code: Code::UnschedulableAndUnresolvable,
                                ..st.clone()
                            },
                        )
                    })
                    .collect();
                return Err(Failure::Fit(Diagnosis {
                    total,
                    statuses,
                    pre_filter_msg: Some(st.message()),
                    plugins,
                    ..Default::default()
                }));
            }
            return Err(Failure::Error(st));
        }

        // A pod nominated by an earlier preemption tries its node first.
        if let Some(nn) = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            if let Some(ni) = self.cache.snapshot.get(nn) {
                let ok = allowed.as_ref().is_none_or(|a| a.contains(nn))
                    && fw
                        .run_filter_with_nominated(state, pod, ni, self.cache.nominated_on(nn))
                        .is_success();
                if ok {
                    return Ok(nn.to_string());
                }
            }
        }

        let nodes = self.cache.snapshot.nodes();
        let want = num_feasible_nodes_to_find(self.opts.percentage_of_nodes_to_score, total);
        let start = self.next_start % total;
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(total));
        let mut statuses = NodeStatusMap::new();
        let mut plugins = HashSet::new();
        let mut processed = 0;
        for k in 0..total {
            let ni = &nodes[(start + k) % total];
            processed += 1;
            if let Some(a) = &allowed {
                if !a.contains(&ni.name) {
                    continue;
                }
            }
            let st =
                fw.run_filter_with_nominated(state, pod, ni, self.cache.nominated_on(&ni.name));
            match st.code {
                Code::Success => {
                    feasible.push(ni);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Code::Unschedulable | Code::UnschedulableAndUnresolvable => {
                    plugins.insert(st.plugin);
                    statuses.insert(ni.name.clone(), st);
                }
                _ => return Err(Failure::Error(st)),
            }
        }
        // The next pod starts where this search stopped, so all nodes get their turn.
        self.next_start = (start + processed) % total;
        if let Some(a) = &allowed {
            for ni in nodes {
                if !a.contains(&ni.name) {
                    statuses.insert(
                        ni.name.clone(),
                        Status::unresolvable("node(s) didn't satisfy plugin(s) [PreFilter]"),
                    );
                }
            }
        }
        match feasible.len() {
            0 => Err(Failure::Fit(Diagnosis {
                total,
                statuses,
                plugins,
                ..Default::default()
            })),
            1 => Ok(feasible[0].name.clone()),
            _ => {
                let st = fw.run_pre_score(state, pod, &feasible, &self.cache.snapshot);
                if !st.is_success() {
                    return Err(Failure::Error(st));
                }
                let scores = fw
                    .run_score(state, pod, &feasible)
                    .map_err(Failure::Error)?;
                Ok(select_host(&feasible, &scores))
            }
        }
    }

    fn assume_and_bind(&mut self, qp: QueuedPodInfo, node: String, mut state: CycleState) {
        let pod = qp.info.clone();
        self.cache.assume(pod.clone(), &node);
        let st = self.fw.run_reserve(&mut state, &pod, &node);
        if !st.is_success() {
            self.cache.forget(&pod.uid);
            self.record_failure(&pod, "SchedulerError", &st.message(), None);
            self.queue.add_backoff(qp, Instant::now());
            return;
        }
        let st = self.fw.run_permit(&state, &pod, &node);
        if !st.is_success() {
            self.fw.run_unreserve(&mut state, &pod, &node);
            self.cache.forget(&pod.uid);
            self.record_failure(&pod, "SchedulerError", &st.message(), None);
            self.queue.add_backoff(qp, Instant::now());
            return;
        }
        self.cache.unnominate(&pod.uid);
        self.stats.scheduled.fetch_add(1, Ordering::Relaxed);
        let fw = self.fw.clone();
        let tx = self.tx.clone();
        let slots = self.bind_slots.clone();
        tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let status = fw.run_bind(&qp.info, &node).await;
            let _ = tx
                .send(Input::Bound {
                    qp,
                    node,
                    status,
                    state: Box::new(state),
                })
                .await;
        });
    }

    fn on_bound(&mut self, qp: QueuedPodInfo, node: String, status: Status, mut state: CycleState) {
        let pod = qp.info.clone();
        if status.is_success() {
            self.stats.bound.fetch_add(1, Ordering::Relaxed);
            self.events.pod_event(
                &pod,
                "Normal",
                "Scheduled",
                "Binding",
                format!("Successfully assigned {} to {node}", pod.key),
            );
            return;
        }
        self.stats.bind_errors.fetch_add(1, Ordering::Relaxed);
        self.fw.run_unreserve(&mut state, &pod, &node);
        // Only a pod still assumed is retried: a confirmed one is bound after all (the
        // reply was lost), a deleted one is gone.
        if self.cache.forget(&pod.uid) {
            let now = Instant::now();
            self.queue.move_for(ClusterEvent::AssignedPodDelete, now);
            let msg = format!("Binding rejected: {}", status.message());
            tracing::warn!(pod = %pod.key, %node, message = %msg, "binding failed");
            self.events
                .pod_event(&pod, "Warning", "FailedScheduling", "Scheduling", msg);
            self.queue.add_backoff(qp, now);
        }
    }

    /// Evicts the victims (a DisruptionTarget condition, then a graceful delete) and
    /// clears lower-priority nominations on the node, in the background.
    fn preempt(&mut self, pod: &PodInfo, r: PostFilterResult) {
        self.stats.preemptions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(pod = %pod.key, node = %r.nominated_node, victims = r.victims.len(), "preempting");
        let lower: Vec<Arc<PodInfo>> = self
            .cache
            .nominated_on(&r.nominated_node)
            .iter()
            .filter(|p| p.priority < pod.priority && p.uid != pod.uid)
            .cloned()
            .collect();
        for p in &lower {
            self.cache.unnominate(&p.uid);
        }
        for v in &r.victims {
            self.events.pod_event(
                v,
                "Normal",
                "Preempted",
                "Preempting",
                format!("Preempted by pod {} on node {}", pod.uid, r.nominated_node),
            );
        }
        let client = self.client.clone();
        let slots = self.write_slots.clone();
        let name = self.opts.scheduler_name.clone();
        tokio::spawn(async move {
            for v in r.victims {
                let _slot = slots.acquire().await;
                let api: Api<Pod> = Api::namespaced(client.clone(), &v.namespace);
                let cond = json!({"status": {"conditions": [{
                    "type": "DisruptionTarget", "status": "True",
                    "reason": "PreemptionByScheduler",
                    "message": format!("{name}: preempting to accommodate a higher priority pod"),
                    "lastTransitionTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }]}});
                if let Err(e) = api
                    .patch_status(&v.name, &PatchParams::default(), &Patch::Strategic(&cond))
                    .await
                {
                    tracing::debug!(pod = %v.key, error = %e, "marking a preemption victim failed");
                }
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(v.uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                if let Err(e) = api.delete(&v.name, &dp).await {
                    tracing::warn!(pod = %v.key, error = %e, "deleting a preemption victim failed");
                }
            }
            for p in lower {
                let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace);
                let clear = json!({"status": {"nominatedNodeName": null}});
                let _ = api
                    .patch_status(&p.name, &PatchParams::default(), &Patch::Merge(&clear))
                    .await;
            }
        });
    }

    /// The FailedScheduling event and the PodScheduled=False condition (written only
    /// when it changes, so retries do not rewrite the pod).
    fn record_failure(&mut self, pod: &PodInfo, reason: &str, msg: &str, nominated: Option<&str>) {
        self.events.pod_event(
            pod,
            "Warning",
            "FailedScheduling",
            "Scheduling",
            msg.to_string(),
        );
        let status = pod.pod.status.as_ref();
        let current = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
        let same = current.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(msg)
        });
        let current_nn = status
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty());
        let nn_changes = nominated.is_some() && nominated != current_nn;
        if same && !nn_changes {
            return;
        }
        let mut st = json!({"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": reason, "message": msg,
            "lastProbeTime": null,
            "lastTransitionTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }]});
        if let Some(n) = nominated {
            st["nominatedNodeName"] = json!(n);
        }
        let patch = json!({ "status": st });
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let name = pod.name.clone();
        let slots = self.write_slots.clone();
        tokio::spawn(async move {
            let _slot = slots.acquire().await;
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                tracing::debug!(pod = %name, error = %e, "updating the PodScheduled condition failed");
            }
        });
    }
}

/// The highest total; ties broken at random, as upstream's reservoir sampling does, so
/// equal nodes share the load.
fn select_host(nodes: &[&NodeInfo], scores: &[i64]) -> String {
    let mut best = 0;
    let mut ties = 0u32;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
            ties = 1;
        } else if *s == scores[best] {
            ties += 1;
            if rand::random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    nodes[best].name.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_wait_is_not_ready_until_leadership_changes_again() {
        use futures::FutureExt as _;
        let (tx, rx) = watch::channel(false);
        tx.send_replace(true);
        // The original has not seen `true` (the loop only borrows it); the wait must still
        // block, or the idle loop spins.
        assert!(
            rx.clone().changed().now_or_never().is_some(),
            "a plain clone is ready"
        );
        let mut waiter = seen_clone(&rx);
        assert!(waiter.changed().now_or_never().is_none());
        let mut waiter = seen_clone(&rx);
        tx.send_replace(false);
        assert!(matches!(waiter.changed().now_or_never(), Some(Ok(()))));
    }

    #[test]
    fn adaptive_percentage_of_nodes() {
        assert_eq!(num_feasible_nodes_to_find(0, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(0, 100), 100);
        // 1,000 nodes: 50 - 8 = 42%.
        assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
        // 5,000 nodes: 50 - 40 = 10%.
        assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
        // 10,000 nodes: floor at 5%.
        assert_eq!(num_feasible_nodes_to_find(0, 10000), 500);
        assert_eq!(num_feasible_nodes_to_find(1, 1000), 100);
        assert_eq!(num_feasible_nodes_to_find(100, 1000), 1000);
    }

    #[test]
    fn failure_summary_as_upstream() {
        let mut d = Diagnosis {
            total: 3,
            ..Default::default()
        };
        d.statuses
            .insert("a".into(), Status::unschedulable("Insufficient cpu"));
        for n in ["b", "c"] {
            d.statuses.insert(
                n.into(),
                Status::unresolvable("node(s) didn't match Pod's node affinity/selector"),
            );
        }
        assert_eq!(
            d.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
        );
        d.post_filter_msg = Some(
            "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
                .into(),
        );
        assert!(d.message().ends_with(
            ". preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        ));
    }
}
