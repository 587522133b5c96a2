//! Node-pressure eviction end to end (root), with the memory signal injected through the
//! agent's stats override (nothing is really filled): the BestEffort pod is evicted before
//! the Burstable one within its request, with upstream's status, message and events, and
//! the node reports MemoryPressure (tainted by the node lifecycle controller) until the
//! pressure is gone.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::{Event, Node};
use kube::api::{Api, ListParams};

fn node_condition(n: &Node, ty: &str) -> String {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == ty))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

fn has_taint(n: &Node, key: &str) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == key && t.effect == "NoSchedule"))
}

async fn wait_node(c: &Cluster, secs: u64, what: &str, f: impl Fn(&Node) -> bool) -> Node {
    let api: Api<Node> = Api::all(c.client().await);
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let n = api.get(&c.node).await.unwrap();
        if f(&n) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "node: {what} not seen in {secs}s: {:?}",
            n.status.as_ref().and_then(|s| s.conditions.clone())
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_evicts_best_effort_first() {
    let pressure = Arc::new(AtomicBool::new(false));
    let p = pressure.clone();
    let c = Cluster::start_with(Arc::new(move |cfg: &mut bosun_kubelet::KubeletConfig| {
        let p = p.clone();
        cfg.eviction_pressure_transition_period = Duration::from_secs(3);
        cfg.eviction.memory_available_bytes = 100 << 20;
        cfg.stats_override = Some(bosun_kubelet::stats::StatsOverride(Arc::new(move |s| {
            // Memory is short while the switch is on and the hog still runs.
            let hog = s.pods.iter().any(|p| p.pod_ref.name == "hog");
            s.node.memory.available_bytes = Some(if p.load(Ordering::SeqCst) && hog {
                50 << 20
            } else {
                2 << 30
            });
        })));
    }))
    .await;
    let mut opts = bosun_controllers::ControllerOptions::without_leader_election();
    opts.controllers = vec!["node-lifecycle".into()];
    let client = c.ts.client().await.unwrap();
    let controllers = tokio::spawn(async move {
        if let Err(e) = bosun_controllers::run(client, opts).await {
            panic!("controllers stopped: {e}");
        }
    });
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  nodeName: NODE
  containers:
  - {name: main, image: bosun.test/busybox:latest, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  nodeName: NODE
  containers:
  - name: main
    image: bosun.test/busybox:latest
    command: [sleep, "3600"]
    resources: {requests: {memory: 64Mi}}
"#,
    );
    for n in ["hog", "steady"] {
        c.wait_pod(n, 60, |p| p["status"]["phase"] == "Running")
            .await;
    }
    let n = wait_node(&c, 30, "MemoryPressure False", |n| {
        node_condition(n, "MemoryPressure") == "False"
    })
    .await;
    assert!(!has_taint(&n, "node.kubernetes.io/memory-pressure"));

    pressure.store(true, Ordering::SeqCst);
    let hog = c
        .wait_pod("hog", 60, |p| p["status"]["phase"] == "Failed")
        .await;
    assert_eq!(hog["status"]["reason"], "Evicted");
    let msg = hog["status"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with(
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container main was using "
        ) && msg.ends_with("request is 0, has larger consumption of memory. "),
        "{msg}"
    );
    let conds = hog["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "DisruptionTarget" && c["reason"] == "TerminationByKubelet"),
        "{conds:?}"
    );
    // The node says so, and the node lifecycle controller taints it.
    wait_node(&c, 30, "MemoryPressure True with its taint", |n| {
        node_condition(n, "MemoryPressure") == "True"
            && has_taint(n, "node.kubernetes.io/memory-pressure")
    })
    .await;
    // Events are written by the agent's event sink, after the status: wait for it.
    let events: Api<Event> = Api::namespaced(c.client().await, "default");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let evs = events
            .list(&ListParams::default().fields("involvedObject.name=hog"))
            .await
            .unwrap()
            .items;
        let found = evs.iter().any(|e| {
            e.reason.as_deref() == Some("Evicted") && e.type_.as_deref() == Some("Warning")
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no Evicted event for the hog: {:?}",
            evs.iter().map(|e| &e.reason).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The hog's containers are stopped and it stays Failed; the Burstable pod within its
    // request keeps running.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hog = c.wait_pod("hog", 5, |_| true).await;
    assert_eq!(hog["status"]["phase"], "Failed", "{}", hog["status"]);
    let uid = hog["metadata"]["uid"].as_str().unwrap().to_string();
    let mut rc = bosun_runtime::RuntimeConfig::new(c.data.path());
    rc.shim_program = std::path::PathBuf::from(env!("CARGO_BIN_EXE_bosun-kubelet-shim"));
    rc.shim_args = vec![];
    let rt = Arc::new(bosun_runtime::Runtime::new(rc).unwrap());
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut live = usize::MAX;
    while Instant::now() < deadline && live != 0 {
        let (rt, uid) = (rt.clone(), uid.clone());
        live = tokio::task::spawn_blocking(move || {
            rt.list()
                .unwrap()
                .into_iter()
                .filter(|s| {
                    rt.config(&s.id)
                        .is_ok_and(|c| c.labels.get("io.kubernetes.pod.uid") == Some(&uid))
                })
                .filter(|s| s.status == bosun_runtime::Status::Running)
                .count()
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(live, 0, "the evicted pod's containers are stopped");
    let steady = c.wait_pod("steady", 5, |_| true).await;
    assert_eq!(steady["status"]["phase"], "Running");

    // With the hog gone the signal recovers; after the transition period the condition
    // and the taint go.
    wait_node(
        &c,
        60,
        "MemoryPressure False again without the taint",
        |n| {
            node_condition(n, "MemoryPressure") == "False"
                && !has_taint(n, "node.kubernetes.io/memory-pressure")
        },
    )
    .await;
    controllers.abort();
    c.ts.kubectl_ok(&["delete", "pod", "hog", "steady", "--grace-period=1"]);
    c.shutdown().await;
}
