//! Pods on hollow nodes: one watch on every bound pod, a deduplicating queue keyed by pod
//! UID, and workers that start pods (Running and Ready), finish them when asked to by an
//! annotation, and complete graceful deletion.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Notify};

use crate::node::time_now;
use crate::{bump, Shared};

/// Annotation: seconds after start at which a non-`Always` pod ends Succeeded.
pub const SUCCEED_AFTER: &str = "hollow.bosun.dev/succeed-after";
/// Annotation: seconds after start at which a non-`Always` pod ends Failed.
pub const FAIL_AFTER: &str = "hollow.bosun.dev/fail-after";

/// Pods bound to our nodes, and the queue of those needing a write.
#[derive(Default)]
pub(crate) struct Tracker {
    inner: Mutex<Inner>,
    notify: Notify,
}

#[derive(Default)]
struct Inner {
    pods: HashMap<String, Tracked>,
    by_node: HashMap<String, HashSet<String>>,
    queue: VecDeque<String>,
    /// UIDs listed since the watch (re)started; `None` outside a relist.
    relisting: Option<HashSet<String>>,
}

struct Tracked {
    pod: Arc<Pod>,
    node: String,
    ip: Option<Ipv4Addr>,
    queued: bool,
    finish_timer: bool,
    failures: u32,
}

/// What a pod needs from its node next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Finish { succeeded: bool },
    Delete,
}

fn uid_of(pod: &Pod) -> Option<&str> {
    pod.metadata.uid.as_deref()
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn is_running_ready(pod: &Pod) -> bool {
    let Some(st) = pod.status.as_ref() else {
        return false;
    };
    st.phase.as_deref() == Some("Running")
        && st.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
        && st
            .conditions
            .as_ref()
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// When a finishing annotation applies, how long after start and with which outcome.
fn finish_after(pod: &Pod) -> Option<(Duration, bool)> {
    let always = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .is_none_or(|p| p == "Always");
    if always {
        return None;
    }
    let ann = pod.metadata.annotations.as_ref()?;
    let (v, succeeded) = match (ann.get(SUCCEED_AFTER), ann.get(FAIL_AFTER)) {
        (Some(v), _) => (v, true),
        (None, Some(v)) => (v, false),
        (None, None) => return None,
    };
    let secs: f64 = v.trim().parse().ok().filter(|s: &f64| s.is_finite())?;
    Some((Duration::from_secs_f64(secs.max(0.0)), succeeded))
}

fn started_at(pod: &Pod) -> Option<DateTime<Utc>> {
    let v = serde_json::to_value(pod.status.as_ref()?.start_time.as_ref()?).ok()?;
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// How long until the pod should finish, when it should.
fn finish_in(pod: &Pod) -> Option<(Duration, bool)> {
    let (after, ok) = finish_after(pod)?;
    let start = started_at(pod)?;
    let elapsed = (Utc::now() - start).to_std().unwrap_or_default();
    Some((after.saturating_sub(elapsed), ok))
}

fn action(pod: &Pod) -> Option<Action> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Some(Action::Delete);
    }
    match phase(pod) {
        "Succeeded" | "Failed" => None,
        _ if !is_running_ready(pod) => Some(Action::Start),
        _ => match finish_in(pod) {
            Some((left, succeeded)) if left.is_zero() => Some(Action::Finish { succeeded }),
            _ => None,
        },
    }
}

impl Tracker {
    fn enqueue_locked(&self, inner: &mut Inner, uid: &str) {
        if let Some(t) = inner.pods.get_mut(uid) {
            if !t.queued {
                t.queued = true;
                inner.queue.push_back(uid.to_string());
                self.notify.notify_one();
            }
        }
    }
}

/// Records a pod seen on the watch and queues it if it needs something.
fn observe(shared: &Arc<Shared>, pod: Pod) {
    let (Some(uid), Some(node)) = (uid_of(&pod), node_of(&pod)) else {
        return;
    };
    let (uid, node) = (uid.to_string(), node.to_string());
    let (alive, ip_in_pod) = {
        let mut nodes = shared.nodes.lock();
        let Some(n) = nodes.get_mut(&node) else {
            return;
        };
        // A pod already running (from before a restart) keeps its address.
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
            .filter(|ip| *ip != n.host_ip);
        (n.alive, ip)
    };
    let wants = action(&pod);
    let timer = finish_in(&pod).filter(|(left, _)| !left.is_zero());
    let pod = Arc::new(pod);
    let mut newly_used_ip = None;
    {
        let tracker = &shared.pods;
        let mut inner = tracker.inner.lock();
        if let Some(seen) = inner.relisting.as_mut() {
            seen.insert(uid.clone());
        }
        let t = inner.pods.entry(uid.clone()).or_insert_with(|| Tracked {
            pod: pod.clone(),
            node: node.clone(),
            ip: None,
            queued: false,
            finish_timer: false,
            failures: 0,
        });
        t.pod = pod;
        if t.ip.is_none() {
            if let Some(ip) = ip_in_pod {
                t.ip = Some(ip);
                newly_used_ip = Some(ip);
            }
        }
        let start_timer = timer.is_some() && !t.finish_timer && alive;
        if start_timer {
            t.finish_timer = true;
        }
        inner
            .by_node
            .entry(node.clone())
            .or_default()
            .insert(uid.clone());
        if alive && wants.is_some() {
            tracker.enqueue_locked(&mut inner, &uid);
        }
        if let (true, Some((left, _))) = (start_timer, timer) {
            let s = shared.clone();
            let u = uid.clone();
            tokio::spawn(async move {
                tokio::time::sleep(left).await;
                let mut inner = s.pods.inner.lock();
                if let Some(t) = inner.pods.get_mut(&u) {
                    t.finish_timer = false;
                }
                s.pods.enqueue_locked(&mut inner, &u);
            });
        }
    }
    if let Some(ip) = newly_used_ip {
        if let Some(n) = shared.nodes.lock().get_mut(&node) {
            n.ips.mark_used(ip);
        }
    }
}

/// Forgets a deleted pod and frees its address.
fn forget(shared: &Shared, uid: &str) {
    let gone = {
        let mut inner = shared.pods.inner.lock();
        let gone = inner.pods.remove(uid);
        if let Some(t) = &gone {
            if let Some(set) = inner.by_node.get_mut(&t.node) {
                set.remove(uid);
                if set.is_empty() {
                    inner.by_node.remove(&t.node);
                }
            }
        }
        gone
    };
    if let Some(Tracked {
        node, ip: Some(ip), ..
    }) = gone
    {
        if let Some(n) = shared.nodes.lock().get_mut(&node) {
            n.ips.release(ip);
        }
    }
}

/// Queues every pod of a node that came back to life.
pub(crate) fn requeue_node(shared: &Shared, node: &str) {
    let mut inner = shared.pods.inner.lock();
    let uids: Vec<String> = inner
        .by_node
        .get(node)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    for uid in uids {
        let wants = inner.pods.get(&uid).and_then(|t| action(&t.pod));
        if wants.is_some() {
            shared.pods.enqueue_locked(&mut inner, &uid);
        }
    }
}

/// Watches every bound pod; pods on other nodes are dropped on arrival.
pub(crate) async fn watch_pods(shared: Arc<Shared>, ready: oneshot::Sender<()>) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let cfg = watcher::Config::default().fields("spec.nodeName!=");
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut ready = Some(ready);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => shared.pods.inner.lock().relisting = Some(HashSet::new()),
            Ok(Event::InitApply(p)) | Ok(Event::Apply(p)) => observe(&shared, p),
            Ok(Event::Delete(p)) => {
                if let Some(uid) = uid_of(&p) {
                    forget(&shared, uid);
                }
            }
            Ok(Event::InitDone) => {
                // Pods deleted while the watch was down are absent from the relist.
                let stale: Vec<String> = {
                    let mut inner = shared.pods.inner.lock();
                    match inner.relisting.take() {
                        Some(seen) => inner
                            .pods
                            .keys()
                            .filter(|u| !seen.contains(*u))
                            .cloned()
                            .collect(),
                        None => Vec::new(),
                    }
                };
                for uid in stale {
                    forget(&shared, &uid);
                }
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
            Err(e) => tracing::warn!(error = %e, "hollow pod watch failed; retrying"),
        }
    }
}

/// Takes pods off the queue and writes what each needs.
pub(crate) async fn worker(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut inner = shared.pods.inner.lock();
            match inner.queue.pop_front() {
                Some(uid) => match inner.pods.get_mut(&uid) {
                    Some(t) => {
                        t.queued = false;
                        Some((uid, t.pod.clone(), t.node.clone(), t.ip))
                    }
                    None => continue,
                },
                None => None,
            }
        };
        let Some((uid, pod, node, ip)) = next else {
            shared.pods.notify.notified().await;
            continue;
        };
        let alive = shared.nodes.lock().get(&node).map(|n| n.alive);
        if alive != Some(true) {
            continue;
        }
        let Some(act) = action(&pod) else { continue };
        let _permit = shared.pod_lane.acquire().await;
        let result = match act {
            Action::Start => start(&shared, &uid, &pod, &node, ip).await,
            Action::Finish { succeeded } => finish(&shared, &pod, succeeded).await,
            Action::Delete => delete(&shared, &uid, &pod).await,
        };
        drop(_permit);
        match result {
            Ok(()) => {
                if let Some(t) = shared.pods.inner.lock().pods.get_mut(&uid) {
                    t.failures = 0;
                }
            }
            Err(e) => {
                bump(&shared.counters.write_errors);
                let failures = {
                    let mut inner = shared.pods.inner.lock();
                    match inner.pods.get_mut(&uid) {
                        Some(t) => {
                            t.failures += 1;
                            t.failures
                        }
                        None => continue,
                    }
                };
                tracing::warn!(pod = %pod_key(&pod), error = %e, ?act, "hollow pod write failed");
                let delay = Duration::from_millis(200u64 << failures.min(7));
                let s = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let mut inner = s.pods.inner.lock();
                    s.pods.enqueue_locked(&mut inner, &uid);
                });
            }
        }
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
}

fn pods_api(shared: &Shared, pod: &Pod) -> Api<Pod> {
    Api::namespaced(
        shared.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    )
}

async fn start(
    shared: &Arc<Shared>,
    uid: &str,
    pod: &Pod,
    node: &str,
    ip: Option<Ipv4Addr>,
) -> kube::Result<()> {
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    let (host_ip, pod_ip) = {
        let mut nodes = shared.nodes.lock();
        let Some(n) = nodes.get_mut(node) else {
            return Ok(());
        };
        let pod_ip = if host_network {
            Some(n.host_ip)
        } else {
            ip.or_else(|| n.ips.allocate())
        };
        (n.host_ip, pod_ip)
    };
    let Some(pod_ip) = pod_ip else {
        tracing::warn!(pod = %pod_key(pod), node, "no pod IP left on the hollow node");
        return Ok(());
    };
    if !host_network && ip.is_none() {
        let mut inner = shared.pods.inner.lock();
        match inner.pods.get_mut(uid) {
            Some(t) => t.ip = Some(pod_ip),
            None => {
                drop(inner);
                if let Some(n) = shared.nodes.lock().get_mut(node) {
                    n.ips.release(pod_ip);
                }
                return Ok(());
            }
        }
    }
    let status = running_status(pod, host_ip, pod_ip, uid);
    let name = pod.metadata.name.as_deref().unwrap_or("");
    match pods_api(shared, pod)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
    {
        Ok(_) => {
            bump(&shared.counters.pods_started);
            Ok(())
        }
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn finish(shared: &Shared, pod: &Pod, succeeded: bool) -> kube::Result<()> {
    let status = finished_status(pod, succeeded);
    let name = pod.metadata.name.as_deref().unwrap_or("");
    match pods_api(shared, pod)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
    {
        Ok(_) => {
            bump(&shared.counters.pods_finished);
            Ok(())
        }
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn delete(shared: &Shared, uid: &str, pod: &Pod) -> kube::Result<()> {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let name = pod.metadata.name.as_deref().unwrap_or("");
    match pods_api(shared, pod).delete(name, &dp).await {
        Ok(_) => {
            bump(&shared.counters.pods_deleted);
            Ok(())
        }
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

fn existing_condition_time(pod: &Pod, ty: &str) -> Option<Value> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty && c.status == "True")?;
    serde_json::to_value(c.last_transition_time.as_ref()?).ok()
}

fn condition(ty: &str, status: &str, since: &Value) -> Value {
    json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": since})
}

fn is_sidecar(c: &k8s_openapi::api::core::v1::Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The status a kubelet reports once every container runs and is ready.
fn running_status(pod: &Pod, host_ip: Ipv4Addr, pod_ip: Ipv4Addr, uid: &str) -> Value {
    let now = json!(time_now());
    let start = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or_else(|| now.clone());
    let scheduled = existing_condition_time(pod, "PodScheduled").unwrap_or_else(|| now.clone());
    let cid = |name: &str| format!("hollow://{uid}/{name}");
    let spec = pod.spec.as_ref();
    let containers: Vec<Value> = spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": "",
                "containerID": cid(&c.name),
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let inits: Vec<Value> = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let state = if is_sidecar(c) {
                json!({"running": {"startedAt": now}})
            } else {
                json!({"terminated": {
                    "exitCode": 0, "reason": "Completed",
                    "startedAt": now, "finishedAt": now,
                    "containerID": cid(&c.name),
                }})
            };
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": "",
                "containerID": cid(&c.name),
                "ready": true,
                "started": is_sidecar(c),
                "restartCount": 0,
                "state": state,
            })
        })
        .collect();
    let mut status = json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers", "True", &now),
            condition("Initialized", "True", &now),
            condition("Ready", "True", &now),
            condition("ContainersReady", "True", &now),
            condition("PodScheduled", "True", &scheduled),
        ],
        "hostIP": host_ip.to_string(),
        "hostIPs": [{"ip": host_ip.to_string()}],
        "podIP": pod_ip.to_string(),
        "podIPs": [{"ip": pod_ip.to_string()}],
        "startTime": start,
        "containerStatuses": containers,
    });
    if !inits.is_empty() {
        status["initContainerStatuses"] = json!(inits);
    }
    json!({ "status": status })
}

/// The status of a pod whose containers all exited (0 when `succeeded`, 1 otherwise).
fn finished_status(pod: &Pod, succeeded: bool) -> Value {
    let now = json!(time_now());
    let code = if succeeded { 0 } else { 1 };
    let reason = if succeeded { "Completed" } else { "Error" };
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let scheduled = existing_condition_time(pod, "PodScheduled").unwrap_or_else(|| now.clone());
    let containers: Vec<Value> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": "",
                "containerID": format!("hollow://{uid}/{}", c.name),
                "ready": false,
                "started": false,
                "restartCount": 0,
                "state": {"terminated": {
                    "exitCode": code, "reason": reason,
                    "startedAt": now, "finishedAt": now,
                    "containerID": format!("hollow://{uid}/{}", c.name),
                }},
            })
        })
        .collect();
    json!({"status": {
        "phase": if succeeded { "Succeeded" } else { "Failed" },
        "conditions": [
            condition("PodReadyToStartContainers", "False", &now),
            condition("Initialized", "True", &now),
            json!({"type": "Ready", "status": "False", "lastProbeTime": null,
                   "lastTransitionTime": now, "reason": "PodCompleted"}),
            json!({"type": "ContainersReady", "status": "False", "lastProbeTime": null,
                   "lastTransitionTime": now, "reason": "PodCompleted"}),
            condition("PodScheduled", "True", &scheduled),
        ],
        "containerStatuses": containers,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> Value {
        json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}],
                     "initContainers": [{"name": "i", "image": "busybox"},
                                        {"name": "side", "image": "busybox", "restartPolicy": "Always"}]},
        })
    }

    #[test]
    fn pending_pod_needs_start_and_running_pod_nothing() {
        let p = pod(base());
        assert_eq!(action(&p), Some(Action::Start));
        let st = running_status(
            &p,
            Ipv4Addr::new(172, 16, 0, 2),
            Ipv4Addr::new(10, 64, 0, 2),
            "u1",
        );
        let mut v = base();
        v["status"] = st["status"].clone();
        let running = pod(v);
        assert!(is_running_ready(&running));
        assert_eq!(action(&running), None);
        let s = running.status.unwrap();
        assert_eq!(s.pod_ip.as_deref(), Some("10.64.0.2"));
        assert_eq!(s.host_ip.as_deref(), Some("172.16.0.2"));
        let inits = s.init_container_statuses.unwrap();
        assert!(inits[0].state.as_ref().unwrap().terminated.is_some());
        assert!(inits[1].state.as_ref().unwrap().running.is_some());
        assert!(s.container_statuses.unwrap()[0].ready);
    }

    #[test]
    fn deleting_pod_needs_delete() {
        let mut v = base();
        v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert_eq!(action(&pod(v)), Some(Action::Delete));
    }

    #[test]
    fn finishing_annotation_only_without_restart_always() {
        let mut v = base();
        v["metadata"]["annotations"] = json!({SUCCEED_AFTER: "0"});
        let st = running_status(
            &pod(v.clone()),
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
            "u1",
        );
        v["status"] = st["status"].clone();
        // restartPolicy defaults to Always: the annotation is ignored.
        assert_eq!(action(&pod(v.clone())), None);
        v["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            action(&pod(v.clone())),
            Some(Action::Finish { succeeded: true })
        );
        v["metadata"]["annotations"] = json!({FAIL_AFTER: "3600"});
        assert_eq!(action(&pod(v.clone())), None);
        let (left, ok) = finish_in(&pod(v.clone())).unwrap();
        assert!(!ok && left > Duration::from_secs(3000));
        let done = finished_status(&pod(v.clone()), false);
        v["status"] = done["status"].clone();
        assert_eq!(phase(&pod(v.clone())), "Failed");
        assert_eq!(action(&pod(v)), None);
    }
}
