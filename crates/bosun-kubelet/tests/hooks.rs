//! postStart and preStop hooks end to end (root): order against SIGTERM, a failing
//! postStart killing and restarting its container with upstream's events.
mod common;

use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};

async fn events_of(c: &Cluster, pod: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(c.client().await, "default");
    api.list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

async fn wait_event(c: &Cluster, pod: &str, reason: &str, secs: u64) -> Event {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let evs = events_of(c, pod).await;
        if let Some(e) = evs.iter().find(|e| e.reason.as_deref() == Some(reason)) {
            return e.clone();
        }
        if Instant::now() > deadline {
            let seen: Vec<_> = evs
                .iter()
                .map(|e| (e.reason.clone(), e.message.clone()))
                .collect();
            panic!("no {reason} event for {pod} in {secs}s; seen: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_start_runs_and_pre_stop_comes_before_sigterm() {
    let c = Cluster::start().await;
    let host = tempfile::tempdir().unwrap();
    let log = host.path().join("log");
    c.apply(
        &r#"
apiVersion: v1
kind: Pod
metadata: {name: hooked}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 20
  volumes:
  - {name: host, hostPath: {path: HOSTDIR, type: Directory}}
  containers:
  - name: main
    image: bosun.test/busybox:latest
    command: [sh, -c, "trap 'echo term >> /host/log; exit 0' TERM; echo start >> /host/log; while :; do sleep 1; done"]
    volumeMounts: [{name: host, mountPath: /host}]
    lifecycle:
      postStart: {exec: {command: [sh, -c, "echo poststart >> /host/log"]}}
      preStop: {exec: {command: [sh, -c, "sleep 2; echo prestop >> /host/log"]}}
"#
        .replace("HOSTDIR", &host.path().display().to_string()),
    );
    c.wait_pod("hooked", 60, |p| {
        status_of(p, "main")["state"]["running"].is_object()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("poststart")
    {
        assert!(Instant::now() < deadline, "postStart did not run");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let started = Instant::now();
    c.ts.kubectl_ok(&["delete", "pod", "hooked", "--wait=true", "--timeout=60s"]);
    let took = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let pre = lines.iter().position(|l| *l == "prestop");
    let term = lines.iter().position(|l| *l == "term");
    assert!(
        matches!((pre, term), (Some(p), Some(t)) if p < t),
        "preStop runs to completion before SIGTERM: {lines:?}"
    );
    assert!(
        took < Duration::from_secs(18),
        "the container exits on SIGTERM, well within the 20 s grace: {took:?}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_post_start_kills_and_restarts_the_container() {
    let c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: badhook}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: bosun.test/busybox:latest
    command: [sleep, "3600"]
    lifecycle:
      postStart: {exec: {command: [sh, -c, "echo no >&2; exit 7"]}}
---
apiVersion: v1
kind: Pod
metadata: {name: badhttp}
spec:
  nodeName: NODE
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: bosun.test/busybox:latest
    command: [sleep, "3600"]
    lifecycle:
      postStart: {httpGet: {path: /missing, port: 8080}}
"#,
    );
    let failed = wait_event(&c, "badhook", "FailedPostStartHook", 60).await;
    let msg = failed.message.unwrap_or_default();
    assert!(
        msg.starts_with("Exec lifecycle hook ([sh -c echo no >&2; exit 7]) for Container \"main\" in Pod \"badhook_default(")
            && msg.contains("no"),
        "{msg}"
    );
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    let killing = wait_event(&c, "badhook", "Killing", 30).await;
    assert_eq!(killing.message.as_deref(), Some("FailedPostStartHook"));
    // Killed, then restarted under restartPolicy Always (the first restart is immediate).
    let p = c
        .wait_pod("badhook", 60, |p| {
            status_of(p, "main")["restartCount"].as_i64().unwrap_or(0) >= 1
        })
        .await;
    assert!(
        status_of(&p, "main")["lastState"]["terminated"].is_object(),
        "{}",
        p["status"]
    );

    let http = wait_event(&c, "badhttp", "FailedPostStartHook", 60).await;
    let msg = http.message.unwrap_or_default();
    assert!(
        msg.starts_with(
            "HTTP lifecycle hook (/missing) for Container \"web\" in Pod \"badhttp_default("
        ),
        "{msg}"
    );
    // restartPolicy Never: the killed container stays terminated and the pod fails.
    let p = c
        .wait_pod("badhttp", 60, |p| p["status"]["phase"] == "Failed")
        .await;
    assert_eq!(status_of(&p, "web")["restartCount"], 0);
    let api: Api<Pod> = Api::namespaced(c.client().await, "default");
    for n in ["badhook", "badhttp"] {
        let _ = api.delete(n, &Default::default()).await;
    }
    c.shutdown().await;
}
