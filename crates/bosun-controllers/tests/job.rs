//! The Job controller against a real API server, the scheduler and hollow nodes (pods end
//! Succeeded or Failed through hollow's `succeed-after`/`fail-after` annotations).

mod cluster;

use cluster::*;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams};
use kube::ResourceExt;
use serde_json::json;

fn job(name: &str, spec: serde_json::Value, annotations: serde_json::Value) -> anyhow::Result<Job> {
    let mut j = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "work", "image": "busybox"}]},
            },
        },
    });
    if let (Some(dst), Some(src)) = (j["spec"].as_object_mut(), spec.as_object()) {
        for (k, v) in src {
            dst.insert(k.clone(), v.clone());
        }
    }
    Ok(serde_json::from_value(j)?)
}

fn condition(j: &Job, type_: &str) -> Option<String> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| c.reason.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_runs_to_completion() -> anyhow::Result<()> {
    let c = cluster(2, &["job"]).await?;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let j = job(
        "pi",
        json!({"completions": 3, "parallelism": 2}),
        json!({"hollow.bosun.dev/succeed-after": "1"}),
    )?;
    let created = jobs.create(&PostParams::default(), &j).await?;
    let uid = created.uid().unwrap_or_default();
    // kubectl waits on the condition the controller sets.
    let out = c.server.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=90s",
    ]);
    assert!(
        out.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = jobs.get("pi").await?;
    let st = done.status.clone().unwrap_or_default();
    assert_eq!(st.succeeded, Some(3));
    assert_eq!(st.active, None);
    assert!(st.failed.is_none_or(|f| f == 0));
    assert!(st.start_time.is_some() && st.completion_time.is_some());
    assert_eq!(
        condition(&done, "Complete").as_deref(),
        Some("CompletionsReached")
    );
    assert!(condition(&done, "SuccessCriteriaMet").is_some());
    let all = pods(
        &c.client,
        "default",
        &format!("batch.kubernetes.io/controller-uid={uid}"),
    )
    .await?;
    assert_eq!(all.len(), 3, "exactly `completions` pods ran");
    for p in &all {
        assert_eq!(
            p.labels()
                .get("batch.kubernetes.io/job-name")
                .map(String::as_str),
            Some("pi")
        );
        assert_eq!(p.labels().get("controller-uid"), Some(&uid));
        let r = p.owner_references();
        assert!(r
            .iter()
            .any(|r| r.kind == "Job" && r.uid == uid && r.controller == Some(true)));
        assert!(p.name_any().starts_with("pi-"));
    }
    let reasons = event_reasons(&c.client, "default", "pi").await?;
    assert!(
        reasons.iter().any(|r| r == "SuccessfulCreate"),
        "{reasons:?}"
    );
    wait_for(10, "Completed event", || async {
        let r = event_reasons(&c.client, "default", "pi").await?;
        Ok(r.iter().any(|r| r == "Completed").then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_fails_after_backoff_limit() -> anyhow::Result<()> {
    let c = cluster(1, &["job"]).await?;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let j = job(
        "flaky",
        json!({"backoffLimit": 1}),
        json!({"hollow.bosun.dev/fail-after": "0.2"}),
    )?;
    let uid = jobs
        .create(&PostParams::default(), &j)
        .await?
        .uid()
        .unwrap_or_default();
    // First failure, a 10 s back-off, a second pod, second failure: over the limit of 1.
    let failed = wait_for(90, "job Failed", || async {
        let j = jobs.get("flaky").await?;
        Ok(condition(&j, "Failed").map(|r| (j, r)))
    })
    .await?;
    assert_eq!(failed.1, "BackoffLimitExceeded");
    let st = failed.0.status.clone().unwrap_or_default();
    assert_eq!(st.failed, Some(2));
    assert!(st.active.is_none_or(|a| a == 0));
    assert!(st.completion_time.is_none());
    let msg = failed
        .0
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .and_then(|c| c.message);
    assert_eq!(
        msg.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    let all = pods(
        &c.client,
        "default",
        &format!("batch.kubernetes.io/controller-uid={uid}"),
    )
    .await?;
    assert_eq!(all.len(), 2);
    assert!(all
        .iter()
        .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_deadline_then_ttl_deletes_it() -> anyhow::Result<()> {
    let c = cluster(1, &["job", "garbage-collector"]).await?;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    // Pods that never finish; the deadline ends the job, the TTL removes it.
    let j = job(
        "slow",
        json!({"parallelism": 2, "completions": 4, "activeDeadlineSeconds": 2, "ttlSecondsAfterFinished": 2}),
        json!({}),
    )?;
    let uid = jobs
        .create(&PostParams::default(), &j)
        .await?
        .uid()
        .unwrap_or_default();
    let sel = format!("batch.kubernetes.io/controller-uid={uid}");
    wait_for(30, "2 running pods", || async {
        let n = pods(&c.client, "default", &sel)
            .await?
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        Ok((n == 2).then_some(()))
    })
    .await?;
    let reason = wait_for(30, "job Failed", || async {
        Ok(condition(&jobs.get("slow").await?, "Failed"))
    })
    .await?;
    assert_eq!(reason, "DeadlineExceeded");
    // Its pods are deleted, then the job itself once the TTL passed.
    wait_for(60, "job deleted by its TTL", || async {
        Ok(jobs.get_opt("slow").await?.is_none().then_some(()))
    })
    .await?;
    wait_for(30, "pods gone", || async {
        Ok(pods(&c.client, "default", &sel)
            .await?
            .is_empty()
            .then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_job_completes_every_index() -> anyhow::Result<()> {
    let c = cluster(2, &["job"]).await?;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let j = job(
        "idx",
        json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
        json!({"hollow.bosun.dev/succeed-after": "0.5"}),
    )?;
    let uid = jobs
        .create(&PostParams::default(), &j)
        .await?
        .uid()
        .unwrap_or_default();
    let done = wait_for(60, "indexed job complete", || async {
        let j = jobs.get("idx").await?;
        Ok(condition(&j, "Complete").map(|_| j))
    })
    .await?;
    let st = done.status.unwrap_or_default();
    assert_eq!(st.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(st.succeeded, Some(3));
    let mut idx: Vec<(String, String)> = pods(
        &c.client,
        "default",
        &format!("batch.kubernetes.io/controller-uid={uid}"),
    )
    .await?
    .iter()
    .map(|p| {
        (
            p.annotations()
                .get("batch.kubernetes.io/job-completion-index")
                .cloned()
                .unwrap_or_default(),
            p.spec
                .as_ref()
                .and_then(|s| s.hostname.clone())
                .unwrap_or_default(),
        )
    })
    .collect();
    idx.sort();
    assert_eq!(
        idx,
        [("0", "idx-0"), ("1", "idx-1"), ("2", "idx-2")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_job_runs_once_resumed() -> anyhow::Result<()> {
    let c = cluster(1, &["job"]).await?;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let j = job(
        "later",
        json!({"completions": 2, "parallelism": 2, "suspend": true}),
        json!({"hollow.bosun.dev/succeed-after": "0.3"}),
    )?;
    let uid = jobs
        .create(&PostParams::default(), &j)
        .await?
        .uid()
        .unwrap_or_default();
    let sel = format!("batch.kubernetes.io/controller-uid={uid}");
    let suspended = wait_for(30, "Suspended condition", || async {
        let j = jobs.get("later").await?;
        Ok(condition(&j, "Suspended").map(|r| (j, r)))
    })
    .await?;
    assert_eq!(suspended.1, "JobSuspended");
    assert!(suspended.0.status.and_then(|s| s.start_time).is_none());
    assert!(pods(&c.client, "default", &sel).await?.is_empty());
    let patch = json!({"spec": {"suspend": false}});
    jobs.patch(
        "later",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await?;
    let done = wait_for(60, "job complete after resume", || async {
        let j = jobs.get("later").await?;
        Ok(condition(&j, "Complete").map(|_| j))
    })
    .await?;
    let resumed = done
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Suspended");
    assert_eq!(
        resumed.map(|c| (c.status, c.reason.unwrap_or_default())),
        Some(("False".to_string(), "JobResumed".to_string()))
    );
    assert_eq!(pods(&c.client, "default", &sel).await?.len(), 2);
    Ok(())
}
