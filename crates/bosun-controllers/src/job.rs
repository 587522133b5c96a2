//! The Job controller, as upstream's `pkg/controller/job`: runs pods until `completions`
//! of them succeeded (NonIndexed) or every index in `0..completions` succeeded once
//! (Indexed), at most `parallelism` at a time; fails the Job after more than
//! `backoffLimit` pod failures (`BackoffLimitExceeded`) or once it ran longer than
//! `activeDeadlineSeconds` (`DeadlineExceeded`); recreates failed pods after upstream's
//! exponential back-off (10 s doubling up to 10 min); honours `suspend`; writes the
//! status (active, ready, terminating, succeeded, failed, startTime, completionTime,
//! completedIndexes, conditions as 1.31+ leaves them: `SuccessCriteriaMet`+`Complete` or
//! `FailureTarget`+`Failed`); and deletes a finished Job once `ttlSecondsAfterFinished`
//! passed (upstream's separate ttl-after-finished controller, folded in here).
//!
//! Finished pods are counted from the pods that exist, and the written status is the
//! memory: counts never go back, completed indexes are kept (upstream guarantees the same
//! with its `batch.kubernetes.io/job-tracking` pod finalizer, which bosun does not use
//! yet: a NonIndexed pod that finishes and vanishes between two syncs can be missed).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bosun_api::selector::LabelSelector;
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

use crate::claim::Claim;
use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::informer::{key_of, Change, Informer, Informers};
use crate::podcontrol::PodControl;
use crate::queue::WorkQueue;
use crate::replicaset::{add_owner_indexes, pods_to_delete, BY_CONTROLLER, ORPHANS};
use crate::util::{self, chrono_of, controller_ref, is_pod_ready, pod_phase, time_of};
use crate::{Error, Result};

const COMPONENT: &str = "job-controller";
/// The label and annotation carrying an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Upstream's `DefaultJobPodFailureBackOff` and `MaxJobPodFailureBackOff`.
pub const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);
/// At most this many pod creations or deletions per sync (upstream's `MaxBatchSize`-like
/// burst, as the ReplicaSet controller).
const BURST: usize = 500;

fn spec(job: &Job) -> JobSpec {
    job.spec.clone().unwrap_or_default()
}

fn is_indexed(s: &JobSpec) -> bool {
    s.completion_mode.as_deref() == Some("Indexed")
}

fn condition_true<'a>(st: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    st.conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// When the Job finished (Complete or Failed), if it did.
pub fn finished_at(job: &Job) -> Option<DateTime<Utc>> {
    let st = job.status.as_ref()?;
    let c = condition_true(st, "Complete").or_else(|| condition_true(st, "Failed"))?;
    st.completion_time
        .as_ref()
        .or(c.last_transition_time.as_ref())
        .map(chrono_of)
        .or(Some(DateTime::<Utc>::MIN_UTC))
}

/// The completion index of an Indexed Job's pod.
pub fn pod_index(p: &Pod) -> Option<i32> {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX))
        .or_else(|| p.metadata.labels.as_ref()?.get(COMPLETION_INDEX))
        .and_then(|v| v.parse().ok())
        .filter(|i: &i32| *i >= 0)
}

/// Upstream's compressed interval list of completed indexes: `1,3-5,7`.
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        out.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

/// When a finished pod finished: the latest container termination, else its readiness
/// change, else its creation.
fn finish_time(p: &Pod) -> Option<DateTime<Utc>> {
    let st = p.status.as_ref();
    let term = st
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(chrono_of)
        .max();
    term.or_else(|| {
        st?.conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .last_transition_time
            .as_ref()
            .map(chrono_of)
    })
    .or_else(|| p.metadata.creation_timestamp.as_ref().map(chrono_of))
}

/// Upstream's `pastBackoffLimitOnFailure`: with restartPolicy OnFailure, container restarts
/// of running pods count as failures.
fn past_backoff_limit_on_failure(s: &JobSpec, active: &[Arc<Pod>]) -> bool {
    let on_failure = s
        .template
        .spec
        .as_ref()
        .and_then(|p| p.restart_policy.as_deref())
        == Some("OnFailure");
    if !on_failure {
        return false;
    }
    let restarts: i32 = active
        .iter()
        .filter(|p| matches!(pod_phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|st| {
            st.init_container_statuses
                .iter()
                .flatten()
                .chain(st.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum();
    let limit = s.backoff_limit.unwrap_or(6);
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// The delay before the next pod may be created after `consecutive` failures (upstream's
/// back-off record: 10 s, doubling, capped at 10 min).
pub fn failure_backoff(consecutive: u32) -> Duration {
    if consecutive == 0 {
        return Duration::ZERO;
    }
    let exp = (consecutive - 1).min(16);
    POD_FAILURE_BACKOFF
        .saturating_mul(1 << exp)
        .min(MAX_POD_FAILURE_BACKOFF)
}

/// What the pods say about a Job, computed without side effects.
#[derive(Debug, Default)]
struct Counts {
    active: Vec<Arc<Pod>>,
    succeeded: i32,
    failed: i32,
    terminating: i32,
    /// Indexed: the indexes that succeeded.
    succeeded_indexes: BTreeSet<i32>,
    /// Failures since the last success, and when the last one finished.
    consecutive_failures: u32,
    last_failure: Option<DateTime<Utc>>,
}

fn count(s: &JobSpec, pods: &[Arc<Pod>]) -> Counts {
    let mut c = Counts::default();
    let completions = s.completions.unwrap_or(0);
    let mut last_success = None;
    let mut failures = Vec::new();
    for p in pods {
        match pod_phase(p) {
            "Succeeded" => {
                if is_indexed(s) {
                    if let Some(i) = pod_index(p).filter(|i| *i < completions) {
                        c.succeeded_indexes.insert(i);
                    }
                } else {
                    c.succeeded += 1;
                }
                last_success = last_success.max(finish_time(p));
            }
            "Failed" => {
                c.failed += 1;
                failures.push(finish_time(p));
            }
            _ if p.metadata.deletion_timestamp.is_some() => c.terminating += 1,
            _ => c.active.push(p.clone()),
        }
    }
    if is_indexed(s) {
        c.succeeded = c.succeeded_indexes.len() as i32;
    }
    let since: Vec<_> = failures
        .into_iter()
        .filter(|t| last_success.is_none() || *t > last_success)
        .collect();
    c.consecutive_failures = since.len() as u32;
    c.last_failure = since.into_iter().flatten().max();
    c
}

/// Reads upstream's `completedIndexes` list (`1,3-5`), ignoring indexes out of range.
pub fn parse_indexes(list: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
            out.extend((a.max(0)..=b.min(completions - 1)).filter(|i| *i >= a));
        }
    }
    out
}

/// Counts never go back: pods counted once stay counted when they are later deleted (what
/// upstream's tracking finalizer guarantees; here the written status is the memory).
fn remember(c: &mut Counts, s: &JobSpec, old: &JobStatus) {
    c.failed = c.failed.max(old.failed.unwrap_or(0));
    if is_indexed(s) {
        let done = parse_indexes(
            old.completed_indexes.as_deref().unwrap_or(""),
            s.completions.unwrap_or(0),
        );
        c.succeeded_indexes.extend(done);
        c.succeeded = c.succeeded_indexes.len() as i32;
    } else {
        c.succeeded = c.succeeded.max(old.succeeded.unwrap_or(0));
    }
}

/// How many pods should run now (upstream's `wantActive`).
fn want_active(s: &JobSpec, succeeded: i32, active: i32) -> i32 {
    if s.suspend == Some(true) {
        return 0;
    }
    let parallelism = s.parallelism.unwrap_or(1).max(0);
    match s.completions {
        // A work queue: once one pod succeeded, let the rest finish, start no more.
        None if succeeded > 0 => active,
        None => parallelism,
        Some(c) => (c - succeeded).clamp(0, parallelism),
    }
}

fn new_condition(type_: &str, reason: &str, message: &str, now: DateTime<Utc>) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(time_of(now)),
        last_transition_time: Some(time_of(now)),
    }
}

/// Sets a condition, keeping the transition time when its status does not change.
fn set_condition(st: &mut JobStatus, c: JobCondition) {
    let conds = st.conditions.get_or_insert_with(Vec::new);
    match conds.iter_mut().find(|x| x.type_ == c.type_) {
        Some(x) if x.status == c.status => {
            x.reason = c.reason;
            x.message = c.message;
        }
        Some(x) => *x = c,
        None => conds.push(c),
    }
}

/// Missing indexes, lowest first, that need a pod: neither succeeded nor running.
fn indexes_to_create(
    completions: i32,
    succeeded: &BTreeSet<i32>,
    active: &[Arc<Pod>],
    n: usize,
) -> Vec<i32> {
    let running: BTreeSet<i32> = active.iter().filter_map(|p| pod_index(p)).collect();
    (0..completions)
        .filter(|i| !succeeded.contains(i) && !running.contains(i))
        .take(n)
        .collect()
}

/// Indexed: active pods with no valid index, of an index that already succeeded, or a
/// second pod of one index.
fn surplus_indexed(
    completions: i32,
    succeeded: &BTreeSet<i32>,
    active: &[Arc<Pod>],
) -> Vec<Arc<Pod>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut sorted = active.to_vec();
    // Keep the ready/oldest pod of an index.
    sorted.sort_by_key(|p| {
        (
            !is_pod_ready(p),
            p.metadata.creation_timestamp.as_ref().map(chrono_of),
        )
    });
    for p in sorted {
        match pod_index(&p) {
            Some(i) if i < completions && !succeeded.contains(&i) && seen.insert(i) => {}
            _ => out.push(p),
        }
    }
    out
}

pub(crate) struct JobController {
    client: Client,
    jobs: Informer<Job>,
    pods: Informer<Pod>,
    queue: WorkQueue<String>,
    expectations: Expectations,
    recorder: Recorder,
}

impl JobController {
    pub(crate) fn new(informers: &Informers, recorder: Recorder) -> Arc<Self> {
        let pods = informers.get::<Pod>();
        add_owner_indexes(&pods);
        let c = Arc::new(JobController {
            client: informers.client().clone(),
            jobs: informers.get::<Job>(),
            pods,
            queue: WorkQueue::new(),
            expectations: Expectations::new(),
            recorder,
        });
        let me = Arc::downgrade(&c);
        c.jobs.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            c.queue.add(c.expectations.owner_changed(ch));
        });
        let me = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(p) => {
                    if p.metadata.deletion_timestamp.is_some() {
                        return c.pod_gone(p);
                    }
                    if let Some(key) = c.owner_key(p) {
                        c.expectations.creation_observed(&key);
                        c.queue.add(key);
                    } else if controller_ref(&p.metadata).is_none() {
                        c.enqueue_matching(p);
                    }
                }
                Change::Updated { old, new } => {
                    if new.metadata.deletion_timestamp.is_some() {
                        c.pod_gone(new);
                    }
                    for p in [old, new] {
                        if let Some(key) = c.owner_key(p) {
                            c.queue.add(key);
                        }
                    }
                    if controller_ref(&new.metadata).is_none()
                        && old.metadata.labels != new.metadata.labels
                    {
                        c.enqueue_matching(new);
                    }
                }
                Change::Deleted(p) => c.pod_gone(p),
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.jobs.wait_synced().await;
        self.pods.wait_synced().await;
        let me = self.clone();
        util::run_workers(COMPONENT, self.queue.clone(), workers, move |key| {
            let me = me.clone();
            async move { me.sync(&key).await }
        })
        .await
    }

    /// The key of the Job controlling `p`, if it is in the cache with that UID.
    fn owner_key(&self, p: &Pod) -> Option<String> {
        let r = controller_ref(&p.metadata)?;
        if r.kind != "Job" || util::group_of(&r.api_version) != "batch" {
            return None;
        }
        let ns = p.metadata.namespace.as_deref().unwrap_or("");
        let j = self.jobs.get(ns, &r.name)?;
        (j.metadata.uid.as_deref() == Some(r.uid.as_str())).then(|| key_of(j.as_ref()))
    }

    fn pod_gone(&self, p: &Arc<Pod>) {
        if let Some(key) = self.owner_key(p) {
            self.expectations
                .deletion_observed(&key, &key_of(p.as_ref()));
            self.queue.add(key);
        }
    }

    fn enqueue_matching(&self, p: &Pod) {
        let ns = p.metadata.namespace.as_deref().unwrap_or("");
        for j in self.jobs.list_namespace(ns) {
            let matches =
                LabelSelector::from_api(j.spec.as_ref().and_then(|s| s.selector.as_ref()))
                    .is_ok_and(|s| !s.is_empty() && s.matches_labels(p.metadata.labels.as_ref()));
            if matches {
                self.queue.add(key_of(j.as_ref()));
            }
        }
    }

    pub(crate) async fn sync(&self, key: &str) -> Result<()> {
        let Some(job) = self.jobs.get_key(key) else {
            self.expectations.forget(key);
            return Ok(());
        };
        let now = Utc::now();
        if let Some(done) = finished_at(&job) {
            return self.expire(&job, key, done, now).await;
        }
        if job.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let s = spec(&job);
        let selector = match LabelSelector::from_api(s.selector.as_ref()) {
            Ok(sel) if !sel.is_empty() => sel,
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::warn!(controller = COMPONENT, key, error = %e, "invalid selector");
                return Ok(());
            }
        };
        let satisfied = self.expectations.satisfied(key);
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let ns = job.namespace().unwrap_or_default();
        let mut candidates = self.pods.by_index(BY_CONTROLLER, &uid);
        candidates.extend(self.pods.by_index(ORPHANS, &ns));
        let pods = Claim::new(&self.client, job.as_ref(), &selector)
            .claim(candidates)
            .await?;
        let mut c = count(&s, &pods);
        let old = job.status.clone().unwrap_or_default();
        remember(&mut c, &s, &old);

        let mut st = old.clone();
        let suspended = s.suspend == Some(true);
        if suspended {
            if condition_true(&st, "Suspended").is_none() {
                set_condition(
                    &mut st,
                    new_condition("Suspended", "JobSuspended", "Job suspended", now),
                );
                self.recorder
                    .record(job.as_ref(), "Normal", "Suspended", "Job suspended".into());
            }
        } else {
            if condition_true(&st, "Suspended").is_some() {
                let mut resumed = new_condition("Suspended", "JobResumed", "Job resumed", now);
                resumed.status = "False".into();
                set_condition(&mut st, resumed);
                // The deadline counts from the resumption, as upstream.
                st.start_time = Some(time_of(now));
                self.recorder
                    .record(job.as_ref(), "Normal", "Resumed", "Job resumed".into());
            }
            if st.start_time.is_none() {
                st.start_time = Some(time_of(now));
            }
        }

        // Failure: too many failed pods, or past the active deadline.
        let backoff_limit = s.backoff_limit.unwrap_or(6);
        let deadline = match (s.active_deadline_seconds, st.start_time.as_ref()) {
            (Some(ads), Some(start)) if !suspended => {
                Some(chrono_of(start) + chrono::Duration::seconds(ads))
            }
            _ => None,
        };
        let failure = if c.failed > backoff_limit || past_backoff_limit_on_failure(&s, &c.active) {
            Some((
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ))
        } else if deadline.is_some_and(|d| now >= d) {
            Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ))
        } else {
            None
        };

        let mut active = c.active.len() as i32;
        let mut manage_err = None;
        if let Some((reason, message)) = failure {
            // Kill what still runs; the Job is over.
            let (deleted, err) = self.delete_pods(&job, key, &c.active).await;
            active -= deleted as i32;
            manage_err = err;
            set_condition(
                &mut st,
                new_condition("FailureTarget", reason, message, now),
            );
            set_condition(&mut st, new_condition("Failed", reason, message, now));
            self.recorder
                .record(job.as_ref(), "Warning", reason, message.to_string());
        } else if satisfied {
            let (delta, err) = self.manage(&job, key, &s, &c, now).await;
            active += delta;
            manage_err = err;
            if let Some(d) = deadline {
                let left = (d - now).to_std().unwrap_or_default();
                self.queue
                    .add_after(key.to_string(), left + Duration::from_millis(100));
            }
        }

        st.active = Some(active.max(0));
        st.ready = Some(c.active.iter().filter(|p| is_pod_ready(p)).count() as i32);
        st.terminating = Some(c.terminating);
        st.succeeded = Some(c.succeeded);
        st.failed = Some(c.failed);
        if is_indexed(&s) {
            let idx = format_indexes(&c.succeeded_indexes);
            st.completed_indexes = (!idx.is_empty()).then_some(idx);
        }
        let complete = failure.is_none()
            && active <= 0
            && match s.completions {
                None => c.succeeded > 0,
                Some(n) => c.succeeded >= n,
            };
        if complete {
            set_condition(
                &mut st,
                new_condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ),
            );
            set_condition(
                &mut st,
                new_condition(
                    "Complete",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ),
            );
            st.completion_time = Some(time_of(now));
            self.recorder
                .record(job.as_ref(), "Normal", "Completed", "Job completed".into());
        }
        if st != old {
            self.write_status(&job, &st).await?;
        }
        if failure.is_some() || complete {
            if let Some(ttl) = s.ttl_seconds_after_finished {
                self.queue.add_after(
                    key.to_string(),
                    Duration::from_secs(ttl.max(0) as u64) + Duration::from_millis(100),
                );
            }
        }
        manage_err.map_or(Ok(()), Err)
    }

    /// Creates or deletes pods towards `want_active`; returns the change in active pods.
    async fn manage(
        &self,
        job: &Job,
        key: &str,
        s: &JobSpec,
        c: &Counts,
        now: DateTime<Utc>,
    ) -> (i32, Option<Error>) {
        let active = c.active.len() as i32;
        let want = want_active(s, c.succeeded, active);
        let completions = s.completions.unwrap_or(0);
        let surplus: Vec<Arc<Pod>> = if is_indexed(s) {
            surplus_indexed(completions, &c.succeeded_indexes, &c.active)
        } else {
            Vec::new()
        };
        let keep = active - surplus.len() as i32;
        if keep > want || !surplus.is_empty() {
            let kept: Vec<Arc<Pod>> = c
                .active
                .iter()
                .filter(|p| !surplus.iter().any(|x| x.metadata.uid == p.metadata.uid))
                .cloned()
                .collect();
            let extra = (keep - want).max(0) as usize;
            let mut victims = surplus;
            victims.extend(pods_to_delete(&kept, &[], extra.min(BURST), now));
            let (deleted, err) = self.delete_pods(job, key, &victims).await;
            return (-(deleted as i32), err);
        }
        if active >= want {
            return (0, None);
        }
        // After failures, wait out the back-off before creating replacements.
        if let Some(last) = c.last_failure {
            let wait = failure_backoff(c.consecutive_failures);
            let ready_at = last + chrono::Duration::from_std(wait).unwrap_or_default();
            if now < ready_at {
                let left = (ready_at - now).to_std().unwrap_or_default();
                self.queue
                    .add_after(key.to_string(), left + Duration::from_millis(100));
                return (0, None);
            }
        }
        let diff = ((want - active) as usize).min(BURST);
        let indexes: Vec<Option<i32>> = if is_indexed(s) {
            indexes_to_create(completions, &c.succeeded_indexes, &c.active, diff)
                .into_iter()
                .map(Some)
                .collect()
        } else {
            vec![None; diff]
        };
        if indexes.is_empty() {
            return (0, None);
        }
        let (created, err) = self.create_pods(job, key, s, indexes).await;
        (created as i32, err)
    }

    fn pod_for(&self, job: &Job, s: &JobSpec, index: Option<i32>) -> Pod {
        let name = job.name_any();
        let ns = job.namespace().unwrap_or_default();
        let prefix = match index {
            Some(i) => format!("{name}-{i}-"),
            None => format!("{name}-"),
        };
        let mut pod = util::pod_from_template(
            &s.template,
            &ns,
            &util::pods_prefix(prefix.trim_end_matches('-')),
            Some(util::new_controller_ref(job)),
        );
        if let Some(i) = index {
            let v = i.to_string();
            pod.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(COMPLETION_INDEX.into(), v.clone());
            pod.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(COMPLETION_INDEX.into(), v);
            if let Some(ps) = pod.spec.as_mut() {
                if ps.hostname.is_none() {
                    ps.hostname = Some(format!("{name}-{i}"));
                }
                let env = EnvVar {
                    name: "JOB_COMPLETION_INDEX".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: None,
                            field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                        }),
                        ..Default::default()
                    }),
                };
                for ctr in ps
                    .containers
                    .iter_mut()
                    .chain(ps.init_containers.iter_mut().flatten())
                {
                    let envs = ctr.env.get_or_insert_with(Vec::new);
                    if !envs.iter().any(|e| e.name == env.name) {
                        envs.push(env.clone());
                    }
                }
            }
        }
        pod
    }

    fn pod_control(&self) -> PodControl<'_> {
        PodControl {
            client: &self.client,
            expectations: &self.expectations,
            recorder: &self.recorder,
        }
    }

    async fn create_pods(
        &self,
        job: &Job,
        key: &str,
        s: &JobSpec,
        indexes: Vec<Option<i32>>,
    ) -> (usize, Option<Error>) {
        let ns = job.namespace().unwrap_or_default();
        let pods: Vec<Pod> = indexes
            .into_iter()
            .map(|i| self.pod_for(job, s, i))
            .collect();
        self.pod_control().create(job, key, &ns, pods).await
    }

    async fn delete_pods(&self, job: &Job, key: &str, pods: &[Arc<Pod>]) -> (usize, Option<Error>) {
        let ns = job.namespace().unwrap_or_default();
        let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
        let (deleted, errs) = self.pod_control().delete(job, key, &ns, &names).await;
        (deleted, Error::aggregate(errs).err())
    }

    async fn write_status(&self, job: &Job, st: &JobStatus) -> Result<()> {
        let ns = job.namespace().unwrap_or_default();
        let name = job.name_any();
        let api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        let mut v = serde_json::to_value(st).map_err(|e| Error::Json {
            what: format!("status of job {ns}/{name}"),
            source: e,
        })?;
        // Zero counts are left out, as upstream's omitempty.
        if let Some(m) = v.as_object_mut() {
            // `ready` and `terminating` are reported even when 0, as upstream sets them.
            for k in ["active", "succeeded", "failed"] {
                if m.get(k) == Some(&json!(0)) {
                    m.insert(k.into(), Value::Null);
                }
            }
        }
        let patch = json!({ "status": v });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api("update status of", format!("job {ns}/{name}"), e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// `ttlSecondsAfterFinished`: deletes the finished Job (and, through the garbage
    /// collector, its pods) once the TTL passed; re-queues it until then.
    async fn expire(
        &self,
        job: &Job,
        key: &str,
        done: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
            return Ok(());
        };
        if job.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let expire_at = done + chrono::Duration::seconds(ttl as i64);
        if now < expire_at {
            let left = (expire_at - now).to_std().unwrap_or_default();
            self.queue
                .add_after(key.to_string(), left + Duration::from_millis(100));
            return Ok(());
        }
        let ns = job.namespace().unwrap_or_default();
        let name = job.name_any();
        let api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        // Upstream's TTL controller deletes in the foreground, with the uid as
        // precondition so a recreated Job of the same name is safe.
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(kube::api::Preconditions {
                uid: job.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api("delete", format!("job {ns}/{name}"), e);
                if e.is_not_found() || e.is_conflict() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
    };

    fn pod(phase: &str, index: Option<i32>, finished_secs: i64) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.name = Some(format!("p-{phase}-{index:?}-{finished_secs}"));
        p.metadata.uid = p.metadata.name.clone();
        if let Some(i) = index {
            p.metadata.annotations = Some([(COMPLETION_INDEX.to_string(), i.to_string())].into());
        }
        let t = DateTime::from_timestamp(1_700_000_000 + finished_secs, 0).unwrap_or_default();
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "c".into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        finished_at: Some(time_of(t)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        });
        Arc::new(p)
    }

    fn job_spec(completions: Option<i32>, parallelism: i32, indexed: bool) -> JobSpec {
        JobSpec {
            completions,
            parallelism: Some(parallelism),
            completion_mode: Some(if indexed { "Indexed" } else { "NonIndexed" }.into()),
            ..Default::default()
        }
    }

    #[test]
    fn want_active_follows_upstream() {
        let s = job_spec(Some(5), 2, false);
        assert_eq!(want_active(&s, 0, 0), 2);
        assert_eq!(want_active(&s, 4, 1), 1);
        assert_eq!(want_active(&s, 5, 1), 0);
        // Work queue: no more pods after the first success.
        let q = job_spec(None, 3, false);
        assert_eq!(want_active(&q, 0, 0), 3);
        assert_eq!(want_active(&q, 1, 2), 2);
        let mut sus = job_spec(Some(5), 2, false);
        sus.suspend = Some(true);
        assert_eq!(want_active(&sus, 0, 2), 0);
    }

    #[test]
    fn counts_and_consecutive_failures() {
        let s = job_spec(Some(3), 1, false);
        let pods = vec![
            pod("Failed", None, 0),
            pod("Succeeded", None, 10),
            pod("Failed", None, 20),
            pod("Failed", None, 30),
            pod("Running", None, 40),
        ];
        let c = count(&s, &pods);
        assert_eq!((c.succeeded, c.failed, c.active.len()), (1, 3, 1));
        assert_eq!(c.consecutive_failures, 2);
        assert_eq!(c.last_failure.map(|t| t.timestamp()), Some(1_700_000_030));
        assert_eq!(failure_backoff(0), Duration::ZERO);
        assert_eq!(failure_backoff(1), Duration::from_secs(10));
        assert_eq!(failure_backoff(3), Duration::from_secs(40));
        assert_eq!(failure_backoff(30), MAX_POD_FAILURE_BACKOFF);
    }

    #[test]
    fn indexed_bookkeeping() {
        let s = job_spec(Some(6), 3, true);
        let pods = vec![
            pod("Succeeded", Some(0), 0),
            pod("Succeeded", Some(0), 1),
            pod("Succeeded", Some(2), 2),
            pod("Running", Some(1), 3),
            pod("Running", Some(1), 4),
            pod("Running", Some(2), 5),
            pod("Succeeded", Some(9), 6),
        ];
        let c = count(&s, &pods);
        assert_eq!(c.succeeded, 2);
        assert_eq!(format_indexes(&c.succeeded_indexes), "0,2");
        let surplus = surplus_indexed(6, &c.succeeded_indexes, &c.active);
        // A second pod of index 1 and a pod of the succeeded index 2.
        assert_eq!(surplus.len(), 2);
        assert_eq!(
            indexes_to_create(6, &c.succeeded_indexes, &c.active, 2),
            vec![3, 4]
        );
        assert_eq!(
            format_indexes(&[1, 2, 3, 5, 7, 8].into_iter().collect()),
            "1-3,5,7-8"
        );
        assert_eq!(
            parse_indexes("1-3,5,7-8,12", 10),
            [1, 2, 3, 5, 7, 8].into_iter().collect()
        );
        // A succeeded pod deleted later stays counted through the status.
        let mut c = count(&s, &pods[3..]);
        let old = JobStatus {
            completed_indexes: Some("0,2-3".into()),
            failed: Some(2),
            ..Default::default()
        };
        remember(&mut c, &s, &old);
        assert_eq!(format_indexes(&c.succeeded_indexes), "0,2-3");
        assert_eq!((c.succeeded, c.failed), (3, 2));
    }

    #[test]
    fn on_failure_restarts_count() {
        let mut s = job_spec(Some(1), 1, false);
        s.backoff_limit = Some(2);
        s.template.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            restart_policy: Some("OnFailure".into()),
            ..Default::default()
        });
        let mut p = (*pod("Running", None, 0)).clone();
        if let Some(cs) = p
            .status
            .as_mut()
            .and_then(|s| s.container_statuses.as_mut())
        {
            cs[0].restart_count = 2;
        }
        assert!(past_backoff_limit_on_failure(&s, &[Arc::new(p.clone())]));
        if let Some(cs) = p
            .status
            .as_mut()
            .and_then(|s| s.container_statuses.as_mut())
        {
            cs[0].restart_count = 1;
        }
        assert!(!past_backoff_limit_on_failure(&s, &[Arc::new(p)]));
    }
}
