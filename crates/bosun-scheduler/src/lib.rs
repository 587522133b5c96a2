//! The bosun scheduler: places pods on nodes as kube-scheduler does, as a client of the
//! API server.
//!
//! # STATUS
//!
//! Works (tested against the real server with hollow nodes, see `tests/`):
//! - Framework with upstream's extension points ([`framework`]): QueueSort, PreFilter
//!   (with AddPod/RemovePod extensions), Filter, PostFilter, PreScore, Score (+normalize,
//!   weights), Reserve, Permit, Bind.
//! - Plugins ([`plugins`], one file each): PrioritySort, NodeUnschedulable, NodeName,
//!   NodeResourcesFit (cpu, memory, ephemeral-storage, pods, extended resources;
//!   LeastAllocated scoring), NodeResourcesBalancedAllocation, NodePorts, NodeAffinity
//!   (nodeSelector, required and preferred), TaintToleration, InterPodAffinity (required
//!   and preferred, both directions, namespaceSelector, matchLabelKeys),
//!   PodTopologySpread (DoNotSchedule filter, ScheduleAnyway score, minDomains,
//!   nodeAffinityPolicy/nodeTaintsPolicy, matchLabelKeys), DefaultPreemption (fewest and
//!   least important victims, PDB-aware, nominatedNodeName, victims get a
//!   DisruptionTarget condition and a graceful delete), DefaultBinder (`pods/binding`).
//! - Snapshot updated incrementally from watches ([`cache`]); priority from
//!   `spec.priority`, else `priorityClassName` resolved from a PriorityClass watch (and
//!   the global default class); queue by priority then age with back-off (1 s doubling
//!   to 10 s) and an unschedulable pool retried on node add/update, assigned pod
//!   delete/add (filtered by the plugins that rejected the pod), or after 5 min.
//! - `percentageOfNodesToScore` with upstream's adaptive default; the search rotates its
//!   start node; nominated pods are counted on their node for lower-priority pods.
//! - Assume then bind: bindings run in background tasks (bounded concurrency), a failed
//!   binding forgets the assumed pod and retries it with back-off.
//! - `schedulerName` respected; events `Scheduled`, `FailedScheduling` (upstream's
//!   summary, with the preemption part), `Preempted`; PodScheduled=False/Unschedulable.
//! - Leader election on a coordination.k8s.io Lease ([`leader`]), 15 s / 10 s / 2 s.
//! - [`bench::run`]: SchedulingBasic-shaped benchmark on hollow nodes.
//!
//! Missing / simplified:
//! - ImageLocality (hollow nodes report no images), VolumeBinding/VolumeRestrictions/
//!   NodeVolumeLimits, DynamicResources; PodTopologySpread's cluster default constraints.
//! - Queueing hints are per plugin name, not per event payload; Permit `Wait` is refused.
//! - Preemption does not consider nominated pods on other nodes, nor async preemption.
//! - One profile only; no extenders, no config file (everything is [`SchedulerOptions`]).
//! - Filters run on one thread (no parallelism on the 2-core target) and no
//!   equivalence-class caching across pods of one template yet.

pub mod bench;
pub mod cache;
pub mod events;
pub mod framework;
pub mod leader;
pub mod plugins;
pub mod queue;
mod scheduler;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use leader::LeaderElection;
pub use scheduler::num_feasible_nodes_to_find;

/// Errors of running the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid scheduler option {field}: {value}")]
    InvalidOption { field: &'static str, value: String },
    #[error("the scheduling loop stopped")]
    Stopped,
    #[error("benchmark {step}: {source}")]
    Bench {
        step: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the scheduler runs; defaults are kube-scheduler's.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// The `schedulerName` this scheduler serves (`default-scheduler`).
    pub scheduler_name: String,
    /// `percentageOfNodesToScore`: 0 means upstream's adaptive default.
    pub percentage_of_nodes_to_score: u32,
    /// `podInitialBackoffSeconds`: 1 s.
    pub pod_initial_backoff: Duration,
    /// `podMaxBackoffSeconds`: 10 s.
    pub pod_max_backoff: Duration,
    /// How long a pod stays unschedulable without an event before it is retried: 5 min.
    pub pod_max_in_unschedulable: Duration,
    /// Bindings in flight at once (upstream has no cap; one keeps connection counts sane).
    pub bind_concurrency: usize,
    /// Whether to record events.
    pub events: bool,
    /// Event writes in flight at once.
    pub event_concurrency: usize,
    /// Hold a Lease before scheduling (upstream `--leader-elect`, default on there; off
    /// here so a single embedded server needs no lease round-trip to start).
    pub leader_election: Option<LeaderElection>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            scheduler_name: "default-scheduler".into(),
            percentage_of_nodes_to_score: 0,
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
            pod_max_in_unschedulable: Duration::from_secs(300),
            bind_concurrency: 64,
            events: true,
            event_concurrency: 8,
            leader_election: None,
        }
    }
}

/// Counters of the scheduler's work.
#[derive(Debug, Default)]
pub struct Stats {
    pub attempts: AtomicU64,
    pub scheduled: AtomicU64,
    pub bound: AtomicU64,
    pub bind_errors: AtomicU64,
    pub unschedulable: AtomicU64,
    pub errors: AtomicU64,
    pub preemptions: AtomicU64,
    /// Time spent in scheduling cycles (filter, score, assume), in nanoseconds.
    pub cycle_nanos: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub attempts: u64,
    pub scheduled: u64,
    pub bound: u64,
    pub bind_errors: u64,
    pub unschedulable: u64,
    pub errors: u64,
    pub preemptions: u64,
    pub cycle_nanos: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            attempts: g(&self.attempts),
            scheduled: g(&self.scheduled),
            bound: g(&self.bound),
            bind_errors: g(&self.bind_errors),
            unschedulable: g(&self.unschedulable),
            errors: g(&self.errors),
            preemptions: g(&self.preemptions),
            cycle_nanos: g(&self.cycle_nanos),
        }
    }
}

/// A running scheduler; dropping it stops it.
pub struct SchedulerHandle {
    stats: Arc<Stats>,
    leader: watch::Receiver<bool>,
    /// Keeps the "always leader" channel open when there is no election.
    _leader_tx: Option<watch::Sender<bool>>,
    main: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl SchedulerHandle {
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Whether this instance schedules right now (always true without leader election).
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Waits until the scheduling loop ends (it only ends when stopped).
    pub async fn wait(mut self) -> Result<()> {
        if let Some(m) = self.main.take() {
            let _ = m.await;
        }
        Err(Error::Stopped)
    }

    pub fn stop(self) {}
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        if let Some(m) = self.main.take() {
            m.abort();
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "bosun".into());
    format!("{host}_{:016x}", rand::random::<u64>())
}

/// Starts the scheduler with the default plugins on the current tokio runtime.
pub fn start(client: kube::Client, opts: SchedulerOptions) -> Result<SchedulerHandle> {
    let fw = plugins::default_framework(client.clone(), &opts.scheduler_name);
    start_with(client, opts, fw)
}

/// Starts the scheduler with a custom framework (plugins of one's own).
pub fn start_with(
    client: kube::Client,
    mut opts: SchedulerOptions,
    fw: framework::Framework,
) -> Result<SchedulerHandle> {
    if opts.scheduler_name.is_empty() {
        return Err(Error::InvalidOption {
            field: "scheduler_name",
            value: String::new(),
        });
    }
    if opts.percentage_of_nodes_to_score > 100 {
        return Err(Error::InvalidOption {
            field: "percentage_of_nodes_to_score",
            value: opts.percentage_of_nodes_to_score.to_string(),
        });
    }
    let mut tasks = Vec::new();
    let mut leader_tx = None;
    let leader = match opts.leader_election.as_mut() {
        Some(le) => {
            if le.identity.is_empty() {
                le.identity = default_identity();
            }
            let (rx, task) = leader::spawn(client.clone(), le.clone());
            tasks.push(task);
            rx
        }
        None => {
            let (tx, rx) = watch::channel(true);
            leader_tx = Some(tx);
            rx
        }
    };
    let events = if opts.events {
        let (rec, task) = events::EventRecorder::start(
            client.clone(),
            &opts.scheduler_name,
            opts.event_concurrency,
        );
        tasks.push(task);
        rec
    } else {
        events::EventRecorder::disabled(&opts.scheduler_name)
    };
    let stats = Arc::new(Stats::default());
    let (tx, rx) = mpsc::channel(8192);
    tasks.extend(scheduler::Scheduler::spawn_watches(&client, &tx));
    let sched =
        scheduler::Scheduler::new(client, opts, fw, events, stats.clone(), leader.clone(), tx);
    let main = tokio::spawn(sched.run(rx));
    Ok(SchedulerHandle {
        stats,
        leader,
        _leader_tx: leader_tx,
        main: Some(main),
        tasks,
    })
}

/// Runs the scheduler until its loop stops (it runs for as long as the process does).
pub async fn run(client: kube::Client, opts: SchedulerOptions) -> Result<()> {
    start(client, opts)?.wait().await
}
