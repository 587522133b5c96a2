//! The CronJob controller, as upstream's `pkg/controller/cronjob` (v2): each CronJob is
//! synced when it or one of its Jobs changes, and re-queued for its next scheduled time.
//! A sync finds the most recent scheduled time not yet run (after `lastScheduleTime`, or
//! the creation time, bounded by `startingDeadlineSeconds`), applies `concurrencyPolicy`
//! (Allow, Forbid, Replace) and `suspend`, creates the Job `<cronjob>-<minutes since
//! epoch>`, updates `status.active`, `lastScheduleTime`, `lastSuccessfulTime`, and deletes
//! finished Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`.
//!
//! Schedules are standard 5-field cron (and `@hourly`-style nicknames, `@every <dur>`)
//! read by `croner`, in `spec.timeZone` (IANA, through `chrono-tz`) or UTC. The clock is
//! injectable ([`Clock`]) so tests can move time instead of waiting minutes.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use futures::future::join_all;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::events::Recorder;
use crate::informer::{key_of, Change, Informer, Informers};
use crate::job::finished_at;
use crate::queue::WorkQueue;
use crate::replicaset::{add_owner_indexes, BY_CONTROLLER};
use crate::util::{self, chrono_of, controller_ref, time_of};
use crate::{Error, Result};

const COMPONENT: &str = "cronjob-controller";
/// Annotation on each Job: the time it was scheduled for (RFC 3339, in the schedule's zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// The controller's notion of "now"; tests inject one that can jump ahead.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A parsed schedule: cron fields, or upstream robfig/cron's `@every <duration>`.
#[derive(Clone, Debug)]
pub enum Schedule {
    Cron { cron: Box<croner::Cron>, tz: Tz },
    Every(chrono::Duration),
}

/// Why a schedule could not be used (the event reasons upstream records).
#[derive(Debug, PartialEq, Eq)]
pub enum ScheduleError {
    Unparseable(String),
    UnknownTimeZone(String),
}

/// A Go duration (`1h30m`, `90s`, `1.5h`) in whole milliseconds.
fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, ms) = [
            ("ns", 1e-6),
            ("us", 1e-3),
            ("µs", 1e-3),
            ("ms", 1.0),
            ("s", 1e3),
            ("m", 6e4),
            ("h", 3.6e6),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total += v * ms;
    }
    Some(chrono::Duration::milliseconds(total as i64))
}

impl Schedule {
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let tz = match time_zone {
            None => Tz::UTC,
            Some(name) => {
                Tz::from_str(name).map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))?
            }
        };
        let spec = schedule.trim();
        if let Some(d) = spec.strip_prefix("@every ") {
            // robfig/cron rounds the interval to whole seconds, at least one.
            let d = parse_go_duration(d)
                .ok_or_else(|| ScheduleError::Unparseable(schedule.to_string()))?;
            let secs = d.num_seconds().max(1);
            return Ok(Schedule::Every(chrono::Duration::seconds(secs)));
        }
        let cron = croner::Cron::new(spec)
            .parse()
            .map_err(|e| ScheduleError::Unparseable(format!("{schedule}: {e}")))?;
        Ok(Schedule::Cron {
            cron: Box::new(cron),
            tz,
        })
    }

    /// The first scheduled time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => {
                let base = Utc.timestamp_opt(t.timestamp(), 0).single()?;
                Some(base + *d)
            }
            Schedule::Cron { cron, tz } => cron
                .find_next_occurrence(&t.with_timezone(tz), false)
                .ok()
                .map(|n| n.with_timezone(&Utc)),
        }
    }

    /// The latest scheduled time in `(earliest, now]`, if any. Searches back from `now`
    /// in doubling windows, so a CronJob that missed a year of minutes costs a few dozen
    /// steps, not half a million.
    pub fn most_recent(
        &self,
        earliest: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if now <= earliest {
            return None;
        }
        let mut window = chrono::Duration::minutes(1);
        loop {
            let start = (now - window).max(earliest);
            if let Some(mut t) = self.next_after(start).filter(|t| *t <= now) {
                while let Some(n) = self.next_after(t).filter(|n| *n <= now) {
                    t = n;
                }
                return Some(t);
            }
            if start == earliest {
                return None;
            }
            window = window * 2;
        }
    }

    /// Formats `t` in the schedule's zone (for the scheduled-timestamp annotation).
    fn format(&self, t: DateTime<Utc>) -> String {
        match self {
            Schedule::Cron { tz, .. } => t
                .with_timezone(tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            Schedule::Every(_) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// Upstream's `getJobName`: the name of the Job run for `scheduled`.
pub fn job_name(cronjob: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", scheduled.timestamp().div_euclid(60))
}

/// What a sync decided, without side effects: the pure part of upstream's `syncCronJob`.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to run now; sync again at the given time (if any).
    Wait(Option<DateTime<Utc>>),
    /// The most recent scheduled time is past its starting deadline.
    Missed {
        scheduled: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    },
    /// Run the Job for `scheduled`.
    Run {
        scheduled: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    },
}

/// Decides what to do at `now` for a CronJob last scheduled at `last` (or created at
/// `created`), with `startingDeadlineSeconds`.
pub fn decide(
    sched: &Schedule,
    last: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    starting_deadline: Option<i64>,
    now: DateTime<Utc>,
) -> Decision {
    let mut earliest = last.unwrap_or(created);
    if let Some(d) = starting_deadline {
        earliest = earliest.max(now - chrono::Duration::seconds(d));
    }
    let next = sched.next_after(now);
    let Some(scheduled) = sched.most_recent(earliest, now) else {
        return Decision::Wait(next);
    };
    if starting_deadline.is_some_and(|d| scheduled + chrono::Duration::seconds(d) < now) {
        return Decision::Missed { scheduled, next };
    }
    Decision::Run { scheduled, next }
}

fn job_finished_ok(j: &Job) -> Option<bool> {
    finished_at(j)?;
    let conds = j.status.as_ref()?.conditions.as_ref()?;
    Some(
        conds
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True"),
    )
}

fn job_ref(j: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: j.metadata.name.clone(),
        namespace: j.metadata.namespace.clone(),
        uid: j.metadata.uid.clone(),
        resource_version: j.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// Finished jobs beyond `limit`, oldest first (by start time, then creation).
fn beyond_history(mut jobs: Vec<Arc<Job>>, limit: i32) -> Vec<Arc<Job>> {
    let limit = limit.max(0) as usize;
    if jobs.len() <= limit {
        return Vec::new();
    }
    jobs.sort_by_key(|j| {
        (
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(chrono_of),
            j.metadata.creation_timestamp.as_ref().map(chrono_of),
            j.name_any(),
        )
    });
    let n = jobs.len() - limit;
    jobs.truncate(n);
    jobs
}

pub struct CronJobController {
    client: Client,
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
    queue: WorkQueue<String>,
    recorder: Recorder,
    clock: Clock,
}

impl CronJobController {
    pub(crate) fn new(informers: &Informers, recorder: Recorder) -> Arc<Self> {
        Self::with_clock(informers, recorder, Arc::new(Utc::now))
    }

    /// The controller with its own clock (tests move time forward with it).
    pub fn with_clock(informers: &Informers, recorder: Recorder, clock: Clock) -> Arc<Self> {
        let jobs = informers.get::<Job>();
        add_owner_indexes(&jobs);
        let c = Arc::new(CronJobController {
            client: informers.client().clone(),
            cronjobs: informers.get::<CronJob>(),
            jobs,
            queue: WorkQueue::new(),
            recorder,
            clock,
        });
        let me = Arc::downgrade(&c);
        c.cronjobs.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let cj = match ch {
                Change::Added(o) | Change::Deleted(o) => o,
                Change::Updated { new, .. } => new,
            };
            c.queue.add(key_of(cj.as_ref()));
        });
        let me = Arc::downgrade(&c);
        c.jobs.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            let j = match ch {
                Change::Added(o) | Change::Deleted(o) => o,
                Change::Updated { new, .. } => new,
            };
            let ns = j.metadata.namespace.as_deref().unwrap_or("");
            if let Some(r) = controller_ref(&j.metadata).filter(|r| r.kind == "CronJob") {
                c.queue.add(format!("{ns}/{}", r.name));
            }
        });
        c
    }

    /// Runs `workers` sync loops until the queue shuts down.
    pub async fn run(self: Arc<Self>, workers: usize) {
        self.cronjobs.wait_synced().await;
        self.jobs.wait_synced().await;
        let me = self.clone();
        util::run_workers(COMPONENT, self.queue.clone(), workers, move |key| {
            let me = me.clone();
            async move { me.sync(&key).await }
        })
        .await
    }

    /// Re-queues every CronJob now (after a test moved its clock).
    pub fn resync_all(&self) {
        for k in self.cronjobs.keys() {
            self.queue.add(k);
        }
    }

    fn requeue_at(&self, key: &str, at: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        if let Some(t) = at {
            // A little past the minute, so the sync sees the time as arrived.
            let d = (t - now).to_std().unwrap_or_default() + Duration::from_millis(100);
            self.queue.add_after(key.to_string(), d);
        }
    }

    pub(crate) async fn sync(&self, key: &str) -> Result<()> {
        let Some(cj) = self.cronjobs.get_key(key) else {
            return Ok(());
        };
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let now = (self.clock)();
        let spec: CronJobSpec = cj.spec.clone().unwrap_or_default();
        let ns = cj.namespace().unwrap_or_default();
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let owned: Vec<Arc<Job>> = self.jobs.by_index(BY_CONTROLLER, &uid);
        let old_status = cj.status.clone().unwrap_or_default();
        let mut status = old_status.clone();

        // Active jobs: every owned job not finished yet. Finished ones update
        // lastSuccessfulTime and are reported once.
        let was_active: Vec<String> = old_status
            .active
            .iter()
            .flatten()
            .filter_map(|r| r.uid.clone())
            .collect();
        let mut active: Vec<Arc<Job>> = Vec::new();
        for j in &owned {
            match job_finished_ok(j) {
                None if j.metadata.deletion_timestamp.is_none() => active.push(j.clone()),
                None => {}
                Some(ok) => {
                    if j.metadata
                        .uid
                        .as_ref()
                        .is_some_and(|u| was_active.contains(u))
                    {
                        let status_word = if ok { "Completed" } else { "Failed" };
                        self.recorder.record(
                            cj.as_ref(),
                            "Normal",
                            "SawCompletedJob",
                            format!("Saw completed job: {}, status: {status_word}", j.name_any()),
                        );
                    }
                    if ok {
                        let done = j
                            .status
                            .as_ref()
                            .and_then(|s| s.completion_time.as_ref())
                            .map(chrono_of);
                        let last = status.last_successful_time.as_ref().map(chrono_of);
                        if done.is_some() && done > last {
                            status.last_successful_time = done.map(time_of);
                        }
                    }
                }
            }
        }
        active.sort_by_key(|j| j.name_any());

        let result = self
            .schedule(&cj, key, &spec, &ns, &mut status, &mut active, now)
            .await;
        status.active = (!active.is_empty()).then(|| active.iter().map(|j| job_ref(j)).collect());
        if status != old_status {
            self.write_status(&cj, &status).await?;
        }
        self.cleanup(&cj, &spec, &owned).await?;
        result
    }

    /// The scheduling half of a sync: maybe starts one Job.
    #[allow(clippy::too_many_arguments)]
    async fn schedule(
        &self,
        cj: &CronJob,
        key: &str,
        spec: &CronJobSpec,
        ns: &str,
        status: &mut k8s_openapi::api::batch::v1::CronJobStatus,
        active: &mut Vec<Arc<Job>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if spec.suspend == Some(true) {
            return Ok(());
        }
        let sched = match Schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
            Ok(s) => s,
            Err(ScheduleError::UnknownTimeZone(tz)) => {
                self.recorder.record(
                    cj,
                    "Warning",
                    "UnknownTimeZone",
                    format!("invalid timeZone: {tz:?}"),
                );
                return Ok(());
            }
            Err(ScheduleError::Unparseable(e)) => {
                self.recorder.record(
                    cj,
                    "Warning",
                    "UnparseableSchedule",
                    format!("unparseable schedule: {e}"),
                );
                return Ok(());
            }
        };
        let created = cj
            .metadata
            .creation_timestamp
            .as_ref()
            .map(chrono_of)
            .unwrap_or(now);
        let last = status.last_schedule_time.as_ref().map(chrono_of);
        let (scheduled, next) =
            match decide(&sched, last, created, spec.starting_deadline_seconds, now) {
                Decision::Wait(next) => {
                    self.requeue_at(key, next, now);
                    return Ok(());
                }
                Decision::Missed { scheduled, next } => {
                    self.recorder.record(
                        cj,
                        "Warning",
                        "MissSchedule",
                        format!(
                            "Missed scheduled time to start a job: {}",
                            sched.format(scheduled)
                        ),
                    );
                    self.requeue_at(key, next, now);
                    return Ok(());
                }
                Decision::Run { scheduled, next } => (scheduled, next),
            };
        self.requeue_at(key, next, now);
        let name = job_name(&cj.name_any(), scheduled);
        if active.iter().any(|j| j.name_any() == name)
            || self.jobs.get(ns, &name).is_some_and(|j| {
                controller_ref(&j.metadata).is_some_and(|r| Some(&r.uid) == cj.meta().uid.as_ref())
            })
        {
            // Already ran (the status write may have been lost).
            if last.is_none_or(|l| l < scheduled) {
                status.last_schedule_time = Some(time_of(scheduled));
            }
            return Ok(());
        }
        match spec.concurrency_policy.as_deref().unwrap_or("Allow") {
            "Forbid" if !active.is_empty() => {
                self.recorder.record(
                    cj,
                    "Normal",
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
                );
                return Ok(());
            }
            "Replace" => {
                let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
                let dp = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    ..Default::default()
                };
                for j in std::mem::take(active) {
                    let jn = j.name_any();
                    match api.delete(&jn, &dp).await {
                        Ok(_) => self.recorder.record(
                            cj,
                            "Normal",
                            "SuccessfulDelete",
                            format!("Deleted job {jn}"),
                        ),
                        Err(e) => {
                            let e = Error::api("delete", format!("job {ns}/{jn}"), e);
                            if !e.is_not_found() {
                                active.push(j);
                                return Err(e);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        let job = self.job_from_template(cj, spec, &name, &sched, scheduled);
        let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        match api.create(&PostParams::default(), &job).await {
            Ok(j) => {
                self.recorder.record(
                    cj,
                    "Normal",
                    "SuccessfulCreate",
                    format!("Created job {}", j.name_any()),
                );
                active.push(Arc::new(j));
            }
            Err(e) => {
                let e = Error::api("create", format!("job {ns}/{name}"), e);
                if !e.is_already_exists() {
                    self.recorder.record(
                        cj,
                        "Warning",
                        "FailedCreate",
                        format!("Error creating job: {e}"),
                    );
                    return Err(e);
                }
            }
        }
        status.last_schedule_time = Some(time_of(scheduled));
        Ok(())
    }

    fn job_from_template(
        &self,
        cj: &CronJob,
        spec: &CronJobSpec,
        name: &str,
        sched: &Schedule,
        scheduled: DateTime<Utc>,
    ) -> Job {
        let tm = spec.job_template.metadata.clone().unwrap_or_default();
        let mut annotations = tm.annotations.unwrap_or_default();
        annotations.insert(SCHEDULED_TIMESTAMP.into(), sched.format(scheduled));
        Job {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: cj.metadata.namespace.clone(),
                labels: tm.labels,
                annotations: Some(annotations),
                owner_references: Some(vec![util::new_controller_ref(cj)]),
                ..Default::default()
            },
            spec: spec.job_template.spec.clone(),
            status: None,
        }
    }

    async fn write_status(
        &self,
        cj: &CronJob,
        status: &k8s_openapi::api::batch::v1::CronJobStatus,
    ) -> Result<()> {
        let ns = cj.namespace().unwrap_or_default();
        let name = cj.name_any();
        let api: Api<CronJob> = Api::namespaced(self.client.clone(), &ns);
        let patch = json!({"status": {
            "active": status.active,
            "lastScheduleTime": status.last_schedule_time,
            "lastSuccessfulTime": status.last_successful_time,
        }});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api("update status of", format!("cronjob {ns}/{name}"), e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Deletes finished Jobs beyond the history limits, oldest first.
    async fn cleanup(&self, cj: &CronJob, spec: &CronJobSpec, owned: &[Arc<Job>]) -> Result<()> {
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for j in owned
            .iter()
            .filter(|j| j.metadata.deletion_timestamp.is_none())
        {
            match job_finished_ok(j) {
                Some(true) => ok.push(j.clone()),
                Some(false) => failed.push(j.clone()),
                None => {}
            }
        }
        let mut doomed = Vec::new();
        if let Some(l) = spec.successful_jobs_history_limit {
            doomed.extend(beyond_history(ok, l));
        }
        if let Some(l) = spec.failed_jobs_history_limit {
            doomed.extend(beyond_history(failed, l));
        }
        if doomed.is_empty() {
            return Ok(());
        }
        let ns = cj.namespace().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        let results = join_all(doomed.iter().map(|j| {
            let api = api.clone();
            let dp = dp.clone();
            let name = j.name_any();
            async move { (api.delete(&name, &dp).await, name) }
        }))
        .await;
        let mut errs = Vec::new();
        for (r, name) in results {
            match r {
                Ok(_) => self.recorder.record(
                    cj,
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted job {name}"),
                ),
                Err(e) => {
                    let e = Error::api("delete", format!("job {ns}/{name}"), e);
                    if !e.is_not_found() {
                        errs.push(e);
                    }
                }
            }
        }
        Error::aggregate(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn sched(s: &str) -> Schedule {
        match Schedule::parse(s, None) {
            Ok(s) => s,
            Err(e) => panic!("{s}: {e:?}"),
        }
    }

    #[test]
    fn next_and_most_recent() {
        let s = sched("*/5 * * * *");
        assert_eq!(
            s.next_after(t("2024-01-01T10:02:30Z")),
            Some(t("2024-01-01T10:05:00Z"))
        );
        assert_eq!(
            s.next_after(t("2024-01-01T10:05:00Z")),
            Some(t("2024-01-01T10:10:00Z"))
        );
        assert_eq!(
            s.most_recent(t("2024-01-01T09:00:00Z"), t("2024-01-01T10:07:00Z")),
            Some(t("2024-01-01T10:05:00Z"))
        );
        assert_eq!(
            s.most_recent(t("2024-01-01T10:05:00Z"), t("2024-01-01T10:07:00Z")),
            None
        );
        // A year of missed minutes is still found quickly.
        let m = sched("* * * * *");
        assert_eq!(
            m.most_recent(t("2023-01-01T00:00:00Z"), t("2024-01-01T10:07:30Z")),
            Some(t("2024-01-01T10:07:00Z"))
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_as_vixie_cron() {
        // 2024-01-13 is a Saturday; "the 15th or any Monday" next fires Monday the 15th…
        let s = sched("0 0 15 * MON");
        assert_eq!(
            s.next_after(t("2024-01-13T12:00:00Z")),
            Some(t("2024-01-15T00:00:00Z"))
        );
        // …and then Monday the 22nd.
        assert_eq!(
            s.next_after(t("2024-01-15T00:00:00Z")),
            Some(t("2024-01-22T00:00:00Z"))
        );
        assert_eq!(
            sched("@hourly").next_after(t("2024-01-01T10:02:00Z")),
            Some(t("2024-01-01T11:00:00Z"))
        );
        assert_eq!(
            sched("@every 90s").next_after(t("2024-01-01T10:00:00Z")),
            Some(t("2024-01-01T10:01:30Z"))
        );
    }

    #[test]
    fn time_zones() {
        let s = match Schedule::parse("0 9 * * *", Some("Asia/Tokyo")) {
            Ok(s) => s,
            Err(e) => panic!("{e:?}"),
        };
        // 09:00 in Tokyo is 00:00 UTC.
        assert_eq!(
            s.next_after(t("2024-01-01T12:00:00Z")),
            Some(t("2024-01-02T00:00:00Z"))
        );
        assert_eq!(
            s.format(t("2024-01-02T00:00:00Z")),
            "2024-01-02T09:00:00+09:00"
        );
        assert_eq!(
            Schedule::parse("0 9 * * *", Some("Mars/Olympus")).err(),
            Some(ScheduleError::UnknownTimeZone("Mars/Olympus".into()))
        );
        assert!(matches!(
            Schedule::parse("61 * * * *", None),
            Err(ScheduleError::Unparseable(_))
        ));
    }

    #[test]
    fn decisions_follow_upstream() {
        let s = sched("* * * * *");
        let created = t("2024-01-01T10:00:30Z");
        // Before the first minute after creation: wait for it.
        assert_eq!(
            decide(&s, None, created, None, t("2024-01-01T10:00:50Z")),
            Decision::Wait(Some(t("2024-01-01T10:01:00Z")))
        );
        // Several minutes missed: run the most recent one only.
        assert_eq!(
            decide(&s, None, created, None, t("2024-01-01T10:03:10Z")),
            Decision::Run {
                scheduled: t("2024-01-01T10:03:00Z"),
                next: Some(t("2024-01-01T10:04:00Z"))
            }
        );
        // Already ran that minute.
        assert_eq!(
            decide(
                &s,
                Some(t("2024-01-01T10:03:00Z")),
                created,
                None,
                t("2024-01-01T10:03:10Z")
            ),
            Decision::Wait(Some(t("2024-01-01T10:04:00Z")))
        );
        // Past the starting deadline: nothing to run inside the window.
        let h = sched("0 * * * *");
        assert_eq!(
            decide(&h, None, created, Some(60), t("2024-01-01T11:05:00Z")),
            Decision::Wait(Some(t("2024-01-01T12:00:00Z")))
        );
        assert_eq!(
            decide(&h, None, created, Some(600), t("2024-01-01T11:05:00Z")),
            Decision::Run {
                scheduled: t("2024-01-01T11:00:00Z"),
                next: Some(t("2024-01-01T12:00:00Z"))
            }
        );
        assert_eq!(
            job_name("hello", t("2024-01-01T11:00:00Z")),
            "hello-28401780"
        );
    }

    #[test]
    fn history_keeps_the_newest() {
        let mk = |name: &str, secs: i64| {
            let mut j = Job::default();
            j.metadata.name = Some(name.into());
            j.metadata.creation_timestamp = Some(time_of(
                DateTime::from_timestamp(secs, 0).unwrap_or_default(),
            ));
            Arc::new(j)
        };
        let jobs = vec![mk("c", 30), mk("a", 10), mk("b", 20), mk("d", 40)];
        let gone: Vec<String> = beyond_history(jobs.clone(), 2)
            .iter()
            .map(|j| j.name_any())
            .collect();
        assert_eq!(gone, ["a", "b"]);
        assert!(beyond_history(jobs.clone(), 4).is_empty());
        assert_eq!(beyond_history(jobs, 0).len(), 4);
    }
}
