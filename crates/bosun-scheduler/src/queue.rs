//! The scheduling queue (upstream `PriorityQueue`): an active heap ordered by the
//! QueueSort plugin, a back-off queue for pods that just failed, and a pool of
//! unschedulable pods that only a relevant cluster event (or five minutes) moves back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::framework::{PodInfo, QueueSortPlugin, QueuedPodInfo};
use crate::plugins;

/// A change in the cluster that may make unschedulable pods schedulable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterEvent {
    NodeAdd,
    /// A node's labels, taints, allocatable or schedulability changed.
    NodeUpdate,
    /// A pod bound to a node was deleted (or finished): its resources are free.
    AssignedPodDelete,
    /// A pod was bound to a node, or its labels changed (affinity and spreading).
    AssignedPodAdd,
    /// A periodic flush: everything goes.
    Flush,
}

impl ClusterEvent {
    /// Whether a pod rejected by `plugins` might now fit (upstream's EventsToRegister,
    /// without per-plugin queueing hints).
    fn may_help(self, rejected_by: &HashSet<&'static str>) -> bool {
        if rejected_by.is_empty() {
            return true;
        }
        let interested: &[&str] = match self {
            ClusterEvent::NodeAdd | ClusterEvent::NodeUpdate | ClusterEvent::Flush => return true,
            ClusterEvent::AssignedPodDelete => &[
                plugins::node_resources_fit::NAME,
                plugins::node_ports::NAME,
                plugins::inter_pod_affinity::NAME,
                plugins::pod_topology_spread::NAME,
                plugins::default_preemption::NAME,
            ],
            ClusterEvent::AssignedPodAdd => &[
                plugins::inter_pod_affinity::NAME,
                plugins::pod_topology_spread::NAME,
            ],
        };
        interested.iter().any(|p| rejected_by.contains(p))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active,
    Backoff(Instant),
    Unschedulable,
}

struct Entry {
    qp: QueuedPodInfo,
    place: Place,
    /// Bumped whenever the pod moves, so stale heap and back-off entries are skipped.
    gen: u64,
}

/// Queue timings, upstream defaults.
#[derive(Clone, Copy, Debug)]
pub struct QueueConfig {
    /// `podInitialBackoffSeconds`: 1 s.
    pub initial_backoff: Duration,
    /// `podMaxBackoffSeconds`: 10 s.
    pub max_backoff: Duration,
    /// `podMaxInUnschedulablePodsDuration`: 5 min.
    pub max_in_unschedulable: Duration,
}

/// How often pods left unschedulable too long are looked for (upstream's
/// `flushUnschedulablePodsLeftover` period).
const LEFTOVER_FLUSH_PERIOD: Duration = Duration::from_secs(30);

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_in_unschedulable: Duration::from_secs(300),
        }
    }
}

pub struct SchedulingQueue {
    sort: Arc<dyn QueueSortPlugin>,
    cfg: QueueConfig,
    entries: HashMap<String, Entry>,
    /// (uid, gen), a binary heap by `sort`.
    heap: Vec<(String, u64)>,
    backoff: BTreeMap<(Instant, u64), String>,
    /// Uids in the unschedulable pool, so events scan only them.
    unsched: HashSet<String>,
    next_leftover_flush: Instant,
    next_gen: u64,
}

impl SchedulingQueue {
    pub fn new(sort: Arc<dyn QueueSortPlugin>, cfg: QueueConfig) -> SchedulingQueue {
        SchedulingQueue {
            sort,
            cfg,
            entries: HashMap::new(),
            heap: Vec::new(),
            backoff: BTreeMap::new(),
            unsched: HashSet::new(),
            next_leftover_flush: Instant::now() + LEFTOVER_FLUSH_PERIOD,
            next_gen: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn uids(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.entries.contains_key(uid)
    }

    /// Pods waiting in each sub-queue: (active, backoff, unschedulable).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for e in self.entries.values() {
            match e.place {
                Place::Active => c.0 += 1,
                Place::Backoff(_) => c.1 += 1,
                Place::Unschedulable => c.2 += 1,
            }
        }
        c
    }

    /// A new pending pod, or a newer version of one already queued. An update to an
    /// unschedulable pod moves it back (its spec may now fit).
    pub fn add_or_update(&mut self, info: Arc<PodInfo>, now: Instant) {
        let uid = info.uid.clone();
        match self.entries.get_mut(&uid) {
            Some(e) => {
                let changed = !same_spec(&e.qp.info, &info);
                e.qp.info = info;
                if changed && e.place == Place::Unschedulable {
                    let qp = e.qp.clone();
                    self.requeue(qp, now);
                }
            }
            None => {
                let qp = QueuedPodInfo {
                    info,
                    timestamp: now,
                    initial: now,
                    attempts: 0,
                    unschedulable_plugins: HashSet::new(),
                };
                self.push_active(qp);
            }
        }
    }

    pub fn delete(&mut self, uid: &str) -> bool {
        self.unsched.remove(uid);
        self.entries.remove(uid).is_some()
    }

    /// The next pod to schedule; it leaves the queue until it is added back.
    pub fn pop(&mut self) -> Option<QueuedPodInfo> {
        while !self.heap.is_empty() {
            let (uid, gen) = self.heap_pop()?;
            let live = self
                .entries
                .get(&uid)
                .is_some_and(|e| e.gen == gen && e.place == Place::Active);
            if live {
                let mut e = self.entries.remove(&uid)?;
                e.qp.attempts += 1;
                return Some(e.qp);
            }
        }
        None
    }

    /// A pod that no node fits: parked until an event that may help.
    pub fn add_unschedulable(&mut self, mut qp: QueuedPodInfo, now: Instant) {
        qp.timestamp = now;
        let gen = self.bump();
        self.unsched.insert(qp.info.uid.clone());
        self.entries.insert(
            qp.info.uid.clone(),
            Entry {
                qp,
                place: Place::Unschedulable,
                gen,
            },
        );
    }

    /// A pod that failed for another reason (an error, a failed binding): retried after
    /// its back-off.
    pub fn add_backoff(&mut self, mut qp: QueuedPodInfo, now: Instant) {
        qp.timestamp = now;
        self.requeue(qp, now);
    }

    fn backoff_of(&self, qp: &QueuedPodInfo) -> Duration {
        let shift = qp.attempts.saturating_sub(1).min(20);
        self.cfg
            .initial_backoff
            .saturating_mul(1 << shift)
            .min(self.cfg.max_backoff)
    }

    /// To active if its back-off has passed, else to the back-off queue.
    fn requeue(&mut self, qp: QueuedPodInfo, now: Instant) {
        self.unsched.remove(&qp.info.uid);
        let until = qp.timestamp + self.backoff_of(&qp);
        if until <= now {
            self.push_active(qp);
        } else {
            let gen = self.bump();
            self.backoff.insert((until, gen), qp.info.uid.clone());
            self.entries.insert(
                qp.info.uid.clone(),
                Entry {
                    qp,
                    place: Place::Backoff(until),
                    gen,
                },
            );
        }
    }

    /// Moves the unschedulable pods `event` may help.
    pub fn move_for(&mut self, event: ClusterEvent, now: Instant) -> usize {
        let uids: Vec<String> = self
            .unsched
            .iter()
            .filter(|uid| {
                self.entries.get(*uid).is_some_and(|e| {
                    e.place == Place::Unschedulable && event.may_help(&e.qp.unschedulable_plugins)
                })
            })
            .cloned()
            .collect();
        for uid in &uids {
            if let Some(e) = self.entries.remove(uid) {
                self.requeue(e.qp, now);
            }
        }
        uids.len()
    }

    /// Moves pods whose back-off ended to active, and pods unschedulable for too long
    /// back to the queue.
    pub fn flush(&mut self, now: Instant) {
        while let Some(((until, gen), _)) = self.backoff.first_key_value() {
            if *until > now {
                break;
            }
            let (until, gen) = (*until, *gen);
            let Some(uid) = self.backoff.remove(&(until, gen)) else {
                break;
            };
            let live = self
                .entries
                .get(&uid)
                .is_some_and(|e| e.gen == gen && e.place == Place::Backoff(until));
            if live {
                if let Some(e) = self.entries.remove(&uid) {
                    self.push_active(e.qp);
                }
            }
        }
        if now < self.next_leftover_flush {
            return;
        }
        self.next_leftover_flush = now + LEFTOVER_FLUSH_PERIOD;
        let limit = self.cfg.max_in_unschedulable;
        let stale: Vec<String> = self
            .unsched
            .iter()
            .filter(|uid| {
                self.entries
                    .get(*uid)
                    .is_some_and(|e| now >= e.qp.timestamp + limit)
            })
            .cloned()
            .collect();
        for uid in stale {
            if let Some(e) = self.entries.remove(&uid) {
                self.requeue(e.qp, now);
            }
        }
    }

    /// When `flush` next has something to do.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.backoff.keys().next().map(|(t, _)| *t);
        let unsched = (!self.unsched.is_empty()).then_some(self.next_leftover_flush);
        match (backoff, unsched) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn has_active(&self) -> bool {
        self.entries.values().any(|e| e.place == Place::Active)
    }

    fn bump(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    fn push_active(&mut self, qp: QueuedPodInfo) {
        let gen = self.bump();
        let uid = qp.info.uid.clone();
        self.entries.insert(
            uid.clone(),
            Entry {
                qp,
                place: Place::Active,
                gen,
            },
        );
        self.heap.push((uid, gen));
        let last = self.heap.len() - 1;
        self.sift_up(last);
    }

    /// Whether heap slot `a` should come before slot `b`; stale slots sink.
    fn before(&self, a: usize, b: usize) -> bool {
        let get = |i: usize| {
            let (uid, gen) = &self.heap[i];
            self.entries.get(uid).filter(|e| e.gen == *gen)
        };
        match (get(a), get(b)) {
            (Some(x), Some(y)) => self.sort.less(&x.qp, &y.qp),
            (Some(_), None) => true,
            _ => false,
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.before(i, parent) {
                self.heap.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut best = i;
            if l < n && self.before(l, best) {
                best = l;
            }
            if r < n && self.before(r, best) {
                best = r;
            }
            if best == i {
                break;
            }
            self.heap.swap(i, best);
            i = best;
        }
    }

    fn heap_pop(&mut self) -> Option<(String, u64)> {
        if self.heap.is_empty() {
            return None;
        }
        let last = self.heap.len() - 1;
        self.heap.swap(0, last);
        let top = self.heap.pop();
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
        top
    }
}

/// Whether two versions of a pod differ in what scheduling looks at.
fn same_spec(a: &PodInfo, b: &PodInfo) -> bool {
    a.pod.spec == b.pod.spec && a.pod.metadata.labels == b.pod.metadata.labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::queue_sort::PrioritySort;
    use crate::plugins::testing::pod;
    use serde_json::json;

    fn q() -> SchedulingQueue {
        SchedulingQueue::new(Arc::new(PrioritySort), QueueConfig::default())
    }

    fn p(prio: i32) -> Arc<PodInfo> {
        Arc::new(pod(json!({"spec": {"containers": [], "priority": prio}})))
    }

    #[tokio::test(start_paused = true)]
    async fn pops_by_priority_then_age() {
        let mut q = q();
        let t = Instant::now();
        let low = p(1);
        let high = p(10);
        let high2 = p(10);
        q.add_or_update(low.clone(), t);
        q.add_or_update(high.clone(), t + Duration::from_millis(1));
        q.add_or_update(high2.clone(), t + Duration::from_millis(2));
        assert_eq!(q.pop().unwrap().info.uid, high.uid);
        assert_eq!(q.pop().unwrap().info.uid, high2.uid);
        let last = q.pop().unwrap();
        assert_eq!(last.info.uid, low.uid);
        assert_eq!(last.attempts, 1);
        assert!(q.pop().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn deleted_pods_are_skipped() {
        let mut q = q();
        let t = Instant::now();
        let a = p(5);
        let b = p(1);
        q.add_or_update(a.clone(), t);
        q.add_or_update(b.clone(), t);
        assert!(q.delete(&a.uid));
        assert_eq!(q.pop().unwrap().info.uid, b.uid);
        assert!(q.pop().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_wait_for_a_helpful_event() {
        let mut q = q();
        let t = Instant::now();
        let a = p(0);
        q.add_or_update(a.clone(), t);
        let mut qp = q.pop().unwrap();
        qp.unschedulable_plugins
            .insert(plugins::node_affinity::NAME);
        q.add_unschedulable(qp, t);
        assert!(!q.has_active());
        // A freed pod does not help a node-affinity failure.
        assert_eq!(q.move_for(ClusterEvent::AssignedPodDelete, t), 0);
        // A new node does; the 1 s back-off since the failure applies first.
        assert_eq!(q.move_for(ClusterEvent::NodeAdd, t), 1);
        assert!(q.pop().is_none());
        assert_eq!(q.next_wakeup(), Some(t + Duration::from_secs(1)));
        q.flush(t + Duration::from_secs(1));
        let again = q.pop().unwrap();
        assert_eq!(again.attempts, 2);
        // Second failure: two seconds of back-off.
        q.add_backoff(again, t);
        q.flush(t + Duration::from_millis(1999));
        assert!(q.pop().is_none());
        q.flush(t + Duration::from_secs(2));
        assert!(q.pop().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_are_retried_after_five_minutes() {
        let mut q = q();
        let t = Instant::now();
        q.add_or_update(p(0), t);
        let qp = q.pop().unwrap();
        q.add_unschedulable(qp, t);
        q.flush(t + Duration::from_secs(299));
        assert!(!q.has_active());
        // Leftovers are looked for every 30 s.
        q.flush(t + Duration::from_secs(300));
        assert!(!q.has_active());
        q.flush(t + Duration::from_secs(329));
        assert!(q.pop().is_some());
    }
}
