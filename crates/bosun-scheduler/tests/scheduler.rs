//! The scheduler against a real in-process API server with hollow nodes: binding and
//! running, nodeSelector and resources, FailedScheduling with upstream's summary and a
//! retry when a fitting node joins, priority order, preemption, leader election.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use bosun_hollow::{HollowHandle, HollowOptions, NodeTemplate};
use bosun_scheduler::{LeaderElection, SchedulerOptions};
use bosun_testkit::TestServer;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};

async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    for _ in 0..600 {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timed out waiting for {what}")
}

fn pod(name: &str, extra_spec: Value) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn cpu_pod(name: &str, cpu: &str, extra_spec: Value) -> Pod {
    let mut p = pod(name, extra_spec);
    if let Some(spec) = p.spec.as_mut() {
        spec.containers[0].resources =
            Some(serde_json::from_value(json!({"requests": {"cpu": cpu}})).unwrap());
    }
    p
}

async fn node_of(pods: &Api<Pod>, name: &str) -> Result<Option<String>> {
    Ok(pods
        .get(name)
        .await?
        .spec
        .and_then(|s| s.node_name)
        .filter(|n| !n.is_empty()))
}

async fn wait_bound(pods: &Api<Pod>, name: &str) -> Result<String> {
    wait_for(&format!("{name} bound"), || async {
        node_of(pods, name).await
    })
    .await
}

async fn events_for(client: &kube::Client, pod: &str) -> Result<Vec<Event>> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let all = api.list(&ListParams::default()).await?;
    Ok(all
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(pod))
        .collect())
}

async fn wait_event(client: &kube::Client, pod: &str, reason: &str) -> Result<Event> {
    wait_for(&format!("{reason} event for {pod}"), || async {
        Ok(events_for(client, pod)
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some(reason)))
    })
    .await
}

struct Cluster {
    _server: TestServer,
    client: kube::Client,
    hollow: HollowHandle,
    pods: Api<Pod>,
}

async fn cluster(nodes: usize, cpu: &str) -> Result<Cluster> {
    let server = TestServer::start().await?;
    let client = server.client().await?;
    let hollow = bosun_hollow::run(
        client.clone(),
        HollowOptions {
            nodes,
            cpu: cpu.into(),
            ..Default::default()
        },
    )
    .await?;
    let pods = Api::namespaced(client.clone(), "default");
    Ok(Cluster {
        _server: server,
        client,
        hollow,
        pods,
    })
}

fn fast_opts() -> SchedulerOptions {
    SchedulerOptions {
        pod_initial_backoff: Duration::from_millis(100),
        pod_max_backoff: Duration::from_millis(500),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_bound_and_run() -> Result<()> {
    let c = cluster(3, "4").await?;
    let _s = bosun_scheduler::start(c.client.clone(), fast_opts())?;
    for i in 0..6 {
        c.pods
            .create(
                &PostParams::default(),
                &cpu_pod(&format!("p{i}"), "500m", json!({})),
            )
            .await?;
    }
    let mut used = std::collections::BTreeSet::new();
    for i in 0..6 {
        let name = format!("p{i}");
        let node = wait_bound(&c.pods, &name).await?;
        assert!(node.starts_with("hollow-node-"));
        used.insert(node);
        wait_for("running", || async {
            let p = c.pods.get(&name).await?;
            Ok((p.status.and_then(|s| s.phase).as_deref() == Some("Running")).then_some(()))
        })
        .await?;
    }
    // LeastAllocated and BalancedAllocation spread equal pods over equal nodes.
    assert!(used.len() >= 2, "all pods on {used:?}");
    let p0 = c.pods.get("p0").await?;
    let cond = p0
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .context("PodScheduled")?;
    assert_eq!(cond.status, "True");
    let ev = wait_event(&c.client, "p0", "Scheduled").await?;
    let node = node_of(&c.pods, "p0").await?.context("p0 node")?;
    assert_eq!(
        ev.message.as_deref(),
        Some(format!("Successfully assigned default/p0 to {node}").as_str())
    );
    assert_eq!(
        ev.source.and_then(|s| s.component).as_deref(),
        Some("default-scheduler")
    );

    // A pod for another scheduler is left alone.
    c.pods
        .create(
            &PostParams::default(),
            &pod("other", json!({"schedulerName": "someone-else"})),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(node_of(&c.pods, "other").await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selector_and_resources_are_respected() -> Result<()> {
    let c = cluster(2, "2").await?;
    c.hollow
        .add_node(
            "big",
            NodeTemplate {
                cpu: "16".into(),
                labels: [("disk".to_string(), "ssd".to_string())].into(),
                ..Default::default()
            },
        )
        .await?;
    let _s = bosun_scheduler::start(c.client.clone(), fast_opts())?;
    c.pods
        .create(
            &PostParams::default(),
            &pod("ssd", json!({"nodeSelector": {"disk": "ssd"}})),
        )
        .await?;
    c.pods
        .create(&PostParams::default(), &cpu_pod("hungry", "8", json!({})))
        .await?;
    assert_eq!(wait_bound(&c.pods, "ssd").await?, "big");
    assert_eq!(wait_bound(&c.pods, "hungry").await?, "big");
    // Required node affinity with NotIn keeps a pod off `big`.
    c.pods
        .create(
            &PostParams::default(),
            &pod(
                "not-big",
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["big"]}]}]}}}}),
            ),
        )
        .await?;
    assert_ne!(wait_bound(&c.pods, "not-big").await?, "big");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_reports_and_waits_for_a_fitting_node() -> Result<()> {
    let c = cluster(2, "2").await?;
    c.hollow
        .add_node(
            "small-gpu",
            NodeTemplate {
                cpu: "1".into(),
                labels: [("gpu".to_string(), "true".to_string())].into(),
                ..Default::default()
            },
        )
        .await?;
    let _s = bosun_scheduler::start(c.client.clone(), fast_opts())?;
    c.pods
        .create(
            &PostParams::default(),
            &cpu_pod(
                "needs-gpu",
                "1500m",
                json!({"nodeSelector": {"gpu": "true"}}),
            ),
        )
        .await?;
    let ev = wait_event(&c.client, "needs-gpu", "FailedScheduling").await?;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(
        ev.message.as_deref(),
        Some(
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        )
    );
    let cond = wait_for("PodScheduled=False", || async {
        let p = c.pods.get("needs-gpu").await?;
        Ok(p.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False"))
    })
    .await?;
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert!(cond
        .message
        .unwrap_or_default()
        .starts_with("0/3 nodes are available: 1 Insufficient cpu"));
    assert_eq!(node_of(&c.pods, "needs-gpu").await?, None);

    // A fitting node joins: the pod is retried because of it, not by polling.
    c.hollow
        .add_node(
            "big-gpu",
            NodeTemplate {
                cpu: "8".into(),
                labels: [("gpu".to_string(), "true".to_string())].into(),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(wait_bound(&c.pods, "needs-gpu").await?, "big-gpu");
    Ok(())
}

async fn priority_class(client: &kube::Client, name: &str, value: i32) -> Result<()> {
    let api: Api<PriorityClass> = Api::all(client.clone());
    let pc: PriorityClass = serde_json::from_value(json!({
        "metadata": {"name": name}, "value": value,
    }))?;
    api.create(&PostParams::default(), &pc).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_pods_go_first() -> Result<()> {
    let c = cluster(1, "2").await?;
    priority_class(&c.client, "high", 1000).await?;
    // Both pods wait before any scheduler runs; only one fits.
    c.pods
        .create(&PostParams::default(), &cpu_pod("low", "2", json!({})))
        .await?;
    c.pods
        .create(
            &PostParams::default(),
            &cpu_pod("high", "2", json!({"priorityClassName": "high"})),
        )
        .await?;
    let s = bosun_scheduler::start(c.client.clone(), fast_opts())?;
    assert_eq!(wait_bound(&c.pods, "high").await?, "hollow-node-0");
    let ev = wait_event(&c.client, "low", "FailedScheduling").await?;
    assert_eq!(
        ev.message.as_deref(),
        Some(
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: \
             1 No preemption victims found for incoming pod."
        )
    );
    assert_eq!(node_of(&c.pods, "low").await?, None);
    assert_eq!(s.stats().preemptions, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_priority_pod_preempts_low_priority_one() -> Result<()> {
    let c = cluster(1, "2").await?;
    priority_class(&c.client, "high", 1000).await?;
    let s = bosun_scheduler::start(c.client.clone(), fast_opts())?;
    c.pods
        .create(
            &PostParams::default(),
            &cpu_pod("victim", "1500m", json!({})),
        )
        .await?;
    wait_bound(&c.pods, "victim").await?;
    c.pods
        .create(
            &PostParams::default(),
            &cpu_pod("preemptor", "1500m", json!({"priorityClassName": "high"})),
        )
        .await?;
    // The victim is deleted gracefully (the hollow node finishes the deletion) and the
    // preemptor takes its place.
    assert_eq!(wait_bound(&c.pods, "preemptor").await?, "hollow-node-0");
    wait_for("victim gone", || async {
        Ok(c.pods.get_opt("victim").await?.is_none().then_some(()))
    })
    .await?;
    let ev = wait_event(&c.client, "victim", "Preempted").await?;
    assert!(ev
        .message
        .unwrap_or_default()
        .ends_with("on node hollow-node-0"));
    assert_eq!(s.stats().preemptions, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_anti_affinity_spreads_replicas() -> Result<()> {
    let c = cluster(3, "4").await?;
    let _s = bosun_scheduler::start(c.client.clone(), fast_opts())?;
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    let mut nodes = std::collections::BTreeSet::new();
    for i in 0..4 {
        let mut p = pod(&format!("web-{i}"), anti.clone());
        p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        c.pods.create(&PostParams::default(), &p).await?;
        if i < 3 {
            nodes.insert(wait_bound(&c.pods, &format!("web-{i}")).await?);
        }
    }
    assert_eq!(nodes.len(), 3);
    let ev = wait_event(&c.client, "web-3", "FailedScheduling").await?;
    assert!(ev
        .message
        .unwrap_or_default()
        .starts_with("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."),);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_holds_the_lease() -> Result<()> {
    let c = cluster(1, "2").await?;
    let mut le = LeaderElection::scheduler("first");
    le.retry_period = Duration::from_millis(200);
    let first = bosun_scheduler::start(
        c.client.clone(),
        SchedulerOptions {
            leader_election: Some(le.clone()),
            ..fast_opts()
        },
    )?;
    wait_for("first leads", || async {
        Ok(first.is_leader().then_some(()))
    })
    .await?;
    le.identity = "second".into();
    let second = bosun_scheduler::start(
        c.client.clone(),
        SchedulerOptions {
            leader_election: Some(le),
            ..fast_opts()
        },
    )?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!second.is_leader());
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-system");
    let l = leases.get("kube-scheduler").await?;
    assert_eq!(
        l.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("first")
    );
    // Pods are scheduled by the leader.
    c.pods
        .create(&PostParams::default(), &pod("led", json!({})))
        .await?;
    wait_bound(&c.pods, "led").await?;
    assert_eq!(second.stats().attempts, 0);
    // The leader goes away: the second takes over once the lease expires (15 s).
    drop(first);
    wait_for("second leads", || async {
        Ok(second.is_leader().then_some(()))
    })
    .await?;
    Ok(())
}
