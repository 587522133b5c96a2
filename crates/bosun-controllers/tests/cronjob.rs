//! The CronJob controller against a real API server with hollow nodes. The test runs the
//! controller itself with a clock it moves forward, so `* * * * *` fires at once instead
//! of after a real minute; the Job controller (run normally) runs the jobs.

mod cluster;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bosun_controllers::cronjob::{job_name, CronJobController, SCHEDULED_TIMESTAMP};
use bosun_controllers::events::Recorder;
use bosun_controllers::informer::Informers;
use chrono::{DateTime, Utc};
use cluster::*;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// A CronJob controller whose "now" is the real time plus an offset the test sets.
struct Clocked {
    offset: Arc<AtomicI64>,
    controller: Arc<CronJobController>,
    _tasks: tokio::task::JoinSet<()>,
}

impl Clocked {
    fn start(client: &Client) -> Clocked {
        let offset = Arc::new(AtomicI64::new(0));
        let o = offset.clone();
        let informers = Informers::new(client.clone());
        let controller = CronJobController::with_clock(
            &informers,
            Recorder::new(client.clone(), "cronjob-controller"),
            Arc::new(move || Utc::now() + chrono::Duration::seconds(o.load(Ordering::SeqCst))),
        );
        let mut tasks = tokio::task::JoinSet::new();
        let c = controller.clone();
        tasks.spawn(async move { c.run(2).await });
        informers.start(&mut tasks);
        Clocked {
            offset,
            controller,
            _tasks: tasks,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.offset.load(Ordering::SeqCst))
    }

    /// Moves the clock to 30 s past the minute `minutes` after the current one (so the
    /// scheduled minute stays put for the next half minute of real time) and syncs every
    /// CronJob. Returns that minute.
    fn advance_minutes(&self, minutes: i64) -> DateTime<Utc> {
        let target = minute_of(self.now()) + chrono::Duration::minutes(minutes);
        let offset = (target + chrono::Duration::seconds(30) - Utc::now()).num_seconds();
        self.offset.store(offset, Ordering::SeqCst);
        self.controller.resync_all();
        target
    }
}

fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp() / 60 * 60, 0).unwrap_or_default()
}

fn cronjob(name: &str, policy: &str, annotations: serde_json::Value) -> anyhow::Result<CronJob> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": policy,
            "successfulJobsHistoryLimit": 1,
            "jobTemplate": {"metadata": {"labels": {"cron": name}}, "spec": {"template": {
                "metadata": {"annotations": annotations},
                "spec": {"restartPolicy": "OnFailure",
                         "containers": [{"name": "hello", "image": "busybox"}]},
            }}},
        },
    }))?)
}

async fn jobs_of(client: &Client, cron: &str) -> anyhow::Result<Vec<Job>> {
    let api: Api<Job> = Api::namespaced(client.clone(), "default");
    Ok(api
        .list(&ListParams::default().labels(&format!("cron={cron}")))
        .await?
        .items
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .collect())
}

fn complete(j: &Job) -> bool {
    j.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_runs_jobs_on_schedule_and_keeps_history() -> anyhow::Result<()> {
    let c = cluster(1, &["job", "garbage-collector"]).await?;
    let clock = Clocked::start(&c.client);
    let cjs: Api<CronJob> = Api::namespaced(c.client.clone(), "default");
    let cj = cjs
        .create(
            &PostParams::default(),
            &cronjob(
                "hello",
                "Allow",
                json!({"hollow.bosun.dev/succeed-after": "0.5"}),
            )?,
        )
        .await?;
    let uid = cj.uid().unwrap_or_default();

    // Two minutes later, the most recent minute runs (not every missed one).
    let scheduled = clock.advance_minutes(2);
    let first = job_name("hello", scheduled);
    let j = wait_for(30, "the first job", || async {
        let jobs = jobs_of(&c.client, "hello").await?;
        Ok(jobs.into_iter().find(|j| j.name_any() == first))
    })
    .await?;
    assert!(j
        .owner_references()
        .iter()
        .any(|r| r.kind == "CronJob" && r.uid == uid && r.controller == Some(true)));
    let ts = j
        .annotations()
        .get(SCHEDULED_TIMESTAMP)
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        ts,
        scheduled.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(jobs_of(&c.client, "hello").await?.len(), 1);
    let st = cjs.get("hello").await?.status.unwrap_or_default();
    assert_eq!(
        st.last_schedule_time.map(|t| t.0.as_second()),
        Some(scheduled.timestamp())
    );

    // The job completes: it leaves the active list and sets lastSuccessfulTime.
    wait_for(60, "first job complete and recorded", || async {
        let st = cjs.get("hello").await?.status.unwrap_or_default();
        Ok(
            (st.active.as_ref().is_none_or(|a| a.is_empty()) && st.last_successful_time.is_some())
                .then_some(()),
        )
    })
    .await?;

    // The next minute: a second job; with a history limit of 1 the first one goes once
    // the second has succeeded.
    let second = job_name("hello", clock.advance_minutes(1));
    assert_ne!(first, second);
    wait_for(60, "second job complete, first deleted", || async {
        let jobs = jobs_of(&c.client, "hello").await?;
        let names: Vec<String> = jobs.iter().map(|j| j.name_any()).collect();
        Ok((names == [second.clone()] && jobs.iter().all(complete)).then_some(()))
    })
    .await?;
    let reasons = event_reasons(&c.client, "default", "hello").await?;
    for r in ["SuccessfulCreate", "SawCompletedJob", "SuccessfulDelete"] {
        assert!(reasons.iter().any(|x| x == r), "no {r} in {reasons:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_policies_forbid_and_replace() -> anyhow::Result<()> {
    let c = cluster(1, &["job", "garbage-collector"]).await?;
    let clock = Clocked::start(&c.client);
    let cjs: Api<CronJob> = Api::namespaced(c.client.clone(), "default");
    // Jobs that never finish.
    cjs.create(
        &PostParams::default(),
        &cronjob("forbid", "Forbid", json!({}))?,
    )
    .await?;
    cjs.create(
        &PostParams::default(),
        &cronjob("replace", "Replace", json!({}))?,
    )
    .await?;
    let first = job_name("forbid", clock.advance_minutes(1));
    wait_for(30, "first jobs", || async {
        let f = jobs_of(&c.client, "forbid").await?;
        let r = jobs_of(&c.client, "replace").await?;
        Ok((f.len() == 1 && r.len() == 1).then_some(()))
    })
    .await?;
    let replaced = job_name("replace", clock.advance_minutes(1));
    // Replace: the running job is deleted and the new one started.
    wait_for(30, "replacement job", || async {
        let r = jobs_of(&c.client, "replace").await?;
        let names: Vec<String> = r.iter().map(|j| j.name_any()).collect();
        Ok((names == [replaced.clone()]).then_some(()))
    })
    .await?;
    // Forbid: the first job still runs alone.
    wait_for(30, "JobAlreadyActive", || async {
        let r = event_reasons(&c.client, "default", "forbid").await?;
        Ok(r.iter().any(|x| x == "JobAlreadyActive").then_some(()))
    })
    .await?;
    let f: Vec<String> = jobs_of(&c.client, "forbid")
        .await?
        .iter()
        .map(|j| j.name_any())
        .collect();
    assert_eq!(f, [first]);
    let st = cjs.get("replace").await?.status.unwrap_or_default();
    let active: Vec<String> = st
        .active
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.name)
        .collect();
    assert_eq!(active, [replaced]);
    // Suspended: nothing more starts.
    let patch = json!({"spec": {"suspend": true}});
    cjs.patch(
        "replace",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await?;
    wait_for(10, "suspend seen", || async {
        Ok(cjs
            .get("replace")
            .await?
            .spec
            .and_then(|s| s.suspend)
            .filter(|s| *s)
            .map(|_| ()))
    })
    .await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    clock.advance_minutes(1);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let r: Vec<String> = jobs_of(&c.client, "replace")
        .await?
        .iter()
        .map(|j| j.name_any())
        .collect();
    assert_eq!(r.len(), 1, "{r:?}");
    Ok(())
}
