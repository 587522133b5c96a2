//! The recorder against a real API server: a repeated event is one Event whose count grows
//! (what `kubectl describe` shows as "(x3 over …)"), similar events with different messages
//! are combined after ten, and the spam budget caps what one object gets.

use std::time::Duration;

use bosun_events::{new_event, Recorder, WARNING};
use bosun_testkit::TestServer;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use kube::api::{Api, ListParams};

const PATIENCE: Duration = Duration::from_secs(30);

fn pod_ref(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(name.into()),
        namespace: Some("default".into()),
        uid: Some(format!("uid-{name}")),
        ..Default::default()
    }
}

async fn events_of(api: &Api<Event>, name: &str) -> anyhow::Result<Vec<Event>> {
    let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
    Ok(api.list(&lp).await?.items)
}

/// Polls until `f` holds for the object's events; returns them.
async fn wait_for(
    api: &Api<Event>,
    name: &str,
    f: impl Fn(&[Event]) -> bool,
) -> anyhow::Result<Vec<Event>> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let evs = events_of(api, name).await?;
        if f(&evs) {
            return Ok(evs);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("events of {name} never converged: {evs:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn repeats_are_counted_and_similar_events_combined() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = server.client().await?;
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    // One write at a time, so that each repeat finds the earlier event written.
    let (rec, _task) = Recorder::start(client, 100, 1);

    for _ in 0..3 {
        rec.record(new_event(
            pod_ref("web"),
            WARNING,
            "Unhealthy",
            "Liveness probe failed: connection refused".into(),
            "kubelet",
            Some("node-1"),
        ));
    }
    let evs = wait_for(&api, "web", |e| e.iter().any(|e| e.count == Some(3))).await?;
    assert_eq!(evs.len(), 1, "one event, counted: {evs:#?}");
    assert_eq!(evs[0].reason.as_deref(), Some("Unhealthy"));

    // Twelve distinct messages with one reason: nine events of their own, then one
    // combined event counting the rest.
    for i in 0..12 {
        rec.record(new_event(
            pod_ref("rs"),
            "Normal",
            "SuccessfulCreate",
            format!("Created pod: p{i}"),
            "replicaset-controller",
            None,
        ));
    }
    let evs = wait_for(&api, "rs", |e| {
        e.iter().any(|e| {
            e.message
                .as_deref()
                .is_some_and(|m| m.starts_with("(combined from similar events)"))
                && e.count == Some(3)
        })
    })
    .await?;
    assert_eq!(
        evs.len(),
        10,
        "nine plain events and one combined: {evs:#?}"
    );

    // The spam budget: 25 events about one object, the rest dropped.
    for i in 0..40 {
        rec.record(new_event(
            pod_ref("noisy"),
            WARNING,
            &format!("Reason{i}"),
            "m".into(),
            "kubelet",
            Some("node-1"),
        ));
    }
    let evs = wait_for(&api, "noisy", |e| e.len() >= 25).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(events_of(&api, "noisy").await?.len(), 25, "{evs:#?}");
    assert_eq!(rec.dropped(), 0);
    Ok(())
}
