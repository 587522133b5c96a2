//! The controller manager: bosun's control loops (replication, deployments, namespaces,
//! garbage collection, endpoints, …), each a kube-rs client of the API server.
//!
//! # STATUS
//!
//! Works (tested against an in-process API server):
//! - ReplicaSet and ReplicationController: counts, adoption and release, slow-start
//!   batches with expectations, upstream's deletion order, full status.
//! - Deployment: RollingUpdate and Recreate, pod-template-hash, revisions and history,
//!   `kubectl rollout status|history|undo|pause|resume|restart`, revisionHistoryLimit,
//!   proportional scaling, Progressing (with deadline) and Available conditions.
//! - Namespace lifecycle: content deleted (every discovered namespaced kind), deletion
//!   conditions, then `finalize`; a `default` ServiceAccount in every namespace.
//! - Garbage collector: graph from metadata watches of every deletable kind (CRDs
//!   picked up every 30 s); background, foreground and orphan propagation,
//!   blockOwnerDeletion, dangling owners.
//! - Endpoints and EndpointSlices: ready/not-ready addresses, named target ports per pod,
//!   headless Services, publishNotReadyAddresses, slices of ≤100 owned by the Service,
//!   a tracker so a stale cache never causes duplicate slices.
//! - Job: completions, parallelism, NonIndexed and Indexed, backoffLimit
//!   (BackoffLimitExceeded) with upstream's pod failure back-off, activeDeadlineSeconds
//!   (DeadlineExceeded), suspend, ttlSecondsAfterFinished, full status and conditions.
//! - CronJob: 5-field schedules and nicknames, timeZone, startingDeadlineSeconds,
//!   concurrencyPolicy, suspend, history limits, status; an injectable clock.
//! - DaemonSet: eligible nodes (nodeSelector, node affinity, taints and the daemon
//!   tolerations), pods pinned by node affinity for the scheduler, RollingUpdate
//!   (maxUnavailable, maxSurge) and OnDelete, ControllerRevisions, status.
//! - StatefulSet: stable names and identity, OrderedReady and Parallel, PVCs from
//!   volumeClaimTemplates, RollingUpdate with partition and OnDelete, revisions, status.
//! - Node lifecycle: heartbeats from node Leases and the Ready condition, conditions
//!   Unknown after `--node-monitor-grace-period`, not-ready/unreachable taints (NoExecute
//!   and NoSchedule), taint eviction after tolerationSeconds, pods marked not ready, pod
//!   GC of deleted nodes' pods.
//! - PV binder: smallest fitting Available volume (class, access modes, volumeMode,
//!   selector), pre-binding both ways, bind annotations, Released/Lost, Retain/Delete.
//! - Disruption: PodDisruptionBudget status (expected pods from controller scale,
//!   disruptedPods, DisruptionAllowed); the API server's eviction honours it.
//! - ResourceQuota usage (compute, counts, services, claims); admission in the server.
//! - HPA (autoscaling/v2): cpu/memory Utilization and AverageValue from a pluggable
//!   metrics source (metrics.k8s.io by default), tolerance, stabilization, behaviour
//!   policies, conditions and events.
//!
//! Missing: EndpointSlice mirroring for selectorless Services, Job pod-tracking finalizers
//! and podFailurePolicy, StatefulSet maxUnavailable and PVC whenScaled, dynamic PV
//! provisioning and StorageClasses, HPA Pods/Object/External metrics.
//!
//! # Shape
//!
//! Shared informers ([`informer`]) keep one indexed cache per resource, fed by kube-runtime
//! watchers; controllers register handlers that only enqueue keys on a deduplicating
//! [`queue::WorkQueue`]; workers sync one key at a time from the caches, as upstream's
//! `pkg/controller/<name>` do. [`expectations`] stop a controller from acting again before
//! the cache shows its own writes.

pub mod claim;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod discovery;
pub mod disruption;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod expectations;
pub mod gc;
pub mod history;
pub mod hpa;
pub mod informer;
pub mod job;
pub mod leader;
pub mod namespace;
pub mod nodelifecycle;
pub(crate) mod podcontrol;
pub mod pvbinder;
pub mod queue;
pub mod replicaset;
pub mod resourcequota;
pub mod serviceaccount;
pub mod statefulset;
pub mod util;

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::ReplicationController;
use kube::Client;

pub use error::{Error, Result};
pub use leader::{LeaderElectionConfig, LeaderElector};

use crate::deployment::DeploymentController;
use crate::discovery::Catalog;
use crate::endpoints::{EndpointSliceController, EndpointsController};
use crate::events::Recorder;
use crate::gc::GarbageCollector;
use crate::informer::Informers;
use crate::namespace::NamespaceController;
use crate::nodelifecycle::{NodeLifecycleConfig, NodeLifecycleController};
use crate::replicaset::ReplicaController;
use crate::serviceaccount::ServiceAccountController;

/// The controllers this crate runs, by upstream's `--controllers` names.
pub const CONTROLLERS: &[&str] = &[
    "replicaset-controller",
    "replicationcontroller-controller",
    "deployment-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "garbage-collector-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "node-lifecycle-controller",
    "persistentvolume-binder-controller",
    "disruption-controller",
    "resourcequota-controller",
    "horizontal-pod-autoscaler-controller",
    "job-controller",
    "cronjob-controller",
    "daemonset-controller",
    "statefulset-controller",
];

/// What runs and how: upstream kube-controller-manager's flags that apply here.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// `--controllers`: `*` enables all, `name` one, `-name` disables one; names as in
    /// [`CONTROLLERS`], with or without the `-controller` suffix. Default `["*"]`.
    pub controllers: Vec<String>,
    pub leader_election: LeaderElectionConfig,
    /// `--concurrent-replicaset-syncs` (5).
    pub concurrent_replicaset_syncs: usize,
    /// `--concurrent-rc-syncs` (5).
    pub concurrent_rc_syncs: usize,
    /// `--concurrent-deployment-syncs` (5).
    pub concurrent_deployment_syncs: usize,
    /// `--concurrent-namespace-syncs` (10).
    pub concurrent_namespace_syncs: usize,
    /// `--concurrent-serviceaccount-token-syncs` (5).
    pub concurrent_serviceaccount_syncs: usize,
    /// `--concurrent-gc-syncs` (20).
    pub concurrent_gc_syncs: usize,
    /// `--concurrent-endpoint-syncs` (5).
    pub concurrent_endpoint_syncs: usize,
    /// `--concurrent-service-endpoint-syncs` (5).
    pub concurrent_service_endpoint_syncs: usize,
    /// `--node-monitor-period`, `--node-monitor-grace-period`, `--node-startup-grace-period`
    /// and the pod GC's timings.
    pub node_lifecycle: NodeLifecycleConfig,
    /// `--horizontal-pod-autoscaler-*` settings and the metrics source.
    pub hpa: crate::hpa::HpaConfig,
    /// `--concurrent-job-syncs` (5).
    pub concurrent_job_syncs: usize,
    /// `--concurrent-cron-job-syncs` (5).
    pub concurrent_cronjob_syncs: usize,
    /// `--concurrent-daemonset-syncs` (2).
    pub concurrent_daemonset_syncs: usize,
    /// `--concurrent-statefulset-syncs` (5).
    pub concurrent_statefulset_syncs: usize,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            controllers: vec!["*".into()],
            leader_election: LeaderElectionConfig::default(),
            concurrent_replicaset_syncs: 5,
            concurrent_rc_syncs: 5,
            concurrent_deployment_syncs: 5,
            concurrent_namespace_syncs: 10,
            concurrent_serviceaccount_syncs: 5,
            concurrent_gc_syncs: 20,
            concurrent_endpoint_syncs: 5,
            concurrent_service_endpoint_syncs: 5,
            node_lifecycle: NodeLifecycleConfig::default(),
            hpa: crate::hpa::HpaConfig::default(),
            concurrent_job_syncs: 5,
            concurrent_cronjob_syncs: 5,
            concurrent_daemonset_syncs: 2,
            concurrent_statefulset_syncs: 5,
        }
    }
}

fn canonical(name: &str) -> String {
    let name = name.trim();
    if name.ends_with("-controller") || name == "*" {
        name.to_string()
    } else {
        format!("{name}-controller")
    }
}

impl ControllerOptions {
    /// The options with leader election off (tests, single-server setups).
    pub fn without_leader_election() -> ControllerOptions {
        let mut o = ControllerOptions::default();
        o.leader_election.enabled = false;
        o
    }

    /// Whether the controller `name` runs under `--controllers`.
    pub fn enabled(&self, name: &str) -> bool {
        let name = canonical(name);
        let mut on = BTreeSet::new();
        let mut off = BTreeSet::new();
        let mut star = false;
        for c in &self.controllers {
            let c = c.trim();
            if c == "*" {
                star = true;
            } else if let Some(d) = c.strip_prefix('-') {
                off.insert(canonical(d));
            } else if !c.is_empty() {
                on.insert(canonical(c));
            }
        }
        if off.contains(&name) {
            return false;
        }
        on.contains(&name) || star
    }

    /// Names in `controllers` that are no known controller.
    pub fn unknown_controllers(&self) -> Vec<String> {
        self.controllers
            .iter()
            .map(|c| c.trim().trim_start_matches('-'))
            .filter(|c| *c != "*" && !c.is_empty())
            .filter(|c| !CONTROLLERS.contains(&canonical(c).as_str()))
            .map(str::to_string)
            .collect()
    }
}

/// Runs the enabled controllers until the future is dropped (which stops them all), or
/// until leadership is lost (then returns [`Error::LeaderLost`]; upstream exits the process
/// at that point, and the caller should stop too or call `run` again).
pub async fn run(client: Client, opts: ControllerOptions) -> Result<()> {
    if let Some(bad) = opts.unknown_controllers().first() {
        return Err(Error::Invalid {
            what: "--controllers".into(),
            message: format!("unknown controller {bad:?}"),
        });
    }
    if !opts.leader_election.enabled {
        run_controllers(client, &opts).await;
        return Ok(());
    }
    let mut elector = LeaderElector::new(client.clone(), opts.leader_election.clone());
    elector.acquire().await;
    tokio::select! {
        () = run_controllers(client, &opts) => {
            elector.release().await;
            Ok(())
        }
        lost = elector.hold() => Err(lost),
    }
}

async fn run_controllers(client: Client, opts: &ControllerOptions) {
    let informers = Informers::new(client.clone());
    let mut tasks = tokio::task::JoinSet::new();
    if opts.enabled("replicaset") {
        let c = ReplicaController::<ReplicaSet>::new(
            &informers,
            Recorder::new(client.clone(), "replicaset-controller"),
        );
        let n = opts.concurrent_replicaset_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("replicationcontroller") {
        let c = ReplicaController::<ReplicationController>::new(
            &informers,
            Recorder::new(client.clone(), "replication-controller"),
        );
        let n = opts.concurrent_rc_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("deployment") {
        let c = DeploymentController::new(
            &informers,
            Recorder::new(client.clone(), "deployment-controller"),
        );
        let n = opts.concurrent_deployment_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    let catalog = Arc::new(Catalog::new(client.clone()));
    if opts.enabled("namespace") {
        let c = NamespaceController::new(&informers, catalog.clone());
        let n = opts.concurrent_namespace_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("serviceaccount") {
        let c = ServiceAccountController::new(&informers);
        let n = opts.concurrent_serviceaccount_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("garbage-collector") {
        let c = GarbageCollector::new(client.clone(), catalog.clone());
        let n = opts.concurrent_gc_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("endpoints") {
        let c = EndpointsController::new(&informers);
        let n = opts.concurrent_endpoint_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("endpointslice") {
        let c = EndpointSliceController::new(&informers);
        let n = opts.concurrent_service_endpoint_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("node-lifecycle") {
        let c = NodeLifecycleController::new(
            &informers,
            Recorder::new(client.clone(), "node-controller"),
            opts.node_lifecycle.clone(),
        );
        tasks.spawn(async move { c.run(1).await });
    }
    if opts.enabled("job") {
        let c = crate::job::JobController::new(
            &informers,
            Recorder::new(client.clone(), "job-controller"),
        );
        let n = opts.concurrent_job_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("cronjob") {
        let c = crate::cronjob::CronJobController::new(
            &informers,
            Recorder::new(client.clone(), "cronjob-controller"),
        );
        let n = opts.concurrent_cronjob_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("daemonset") {
        let c = crate::daemonset::DaemonSetController::new(
            &informers,
            Recorder::new(client.clone(), "daemonset-controller"),
        );
        let n = opts.concurrent_daemonset_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("statefulset") {
        let c = crate::statefulset::StatefulSetController::new(
            &informers,
            Recorder::new(client.clone(), "statefulset-controller"),
        );
        let n = opts.concurrent_statefulset_syncs;
        tasks.spawn(async move { c.run(n).await });
    }
    if opts.enabled("persistentvolume-binder") {
        let c = crate::pvbinder::PvBinder::new(
            &informers,
            Recorder::new(client.clone(), "persistentvolume-controller"),
        );
        tasks.spawn(async move { c.run(1).await });
    }
    if opts.enabled("disruption") {
        let c = crate::disruption::DisruptionController::new(
            &informers,
            Recorder::new(client.clone(), "controllermanager"),
        );
        tasks.spawn(async move { c.run(1).await });
    }
    if opts.enabled("resourcequota") {
        let c = crate::resourcequota::ResourceQuotaController::new(
            &informers,
            catalog.clone(),
            crate::resourcequota::DEFAULT_RESYNC,
        );
        tasks.spawn(async move { c.run(5).await });
    }
    if opts.enabled("horizontal-pod-autoscaler") {
        let c = crate::hpa::HpaController::new(
            &informers,
            catalog.clone(),
            Recorder::new(client.clone(), "horizontal-pod-autoscaler"),
            opts.hpa.clone(),
        );
        tasks.spawn(async move { c.run(5).await });
    }
    informers.start(&mut tasks);
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_flag_as_upstream() {
        let mut o = ControllerOptions::default();
        assert!(o.enabled("replicaset"));
        o.controllers = vec!["*".into(), "-replicaset".into()];
        assert!(!o.enabled("replicaset-controller"));
        assert!(o.enabled("replicationcontroller"));
        o.controllers = vec!["replicaset-controller".into()];
        assert!(o.enabled("replicaset"));
        assert!(!o.enabled("replicationcontroller"));
        o.controllers = vec!["bogus".into()];
        assert_eq!(o.unknown_controllers(), ["bogus"]);
    }
}
