//! The pod table (`printPod`): READY, the STATUS reason logic (init containers, sidecars,
//! waiting and terminated reasons, Terminating), RESTARTS with the time of the last
//! restart, and the wide IP / NODE / NOMINATED NODE / READINESS GATES columns.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};
use serde_json::{json, Value};

use super::descriptions as d;
use super::format::{since, time, translate_timestamp_since};
use super::{Column, Printer, AGE, NAME};

/// `node.NodeUnreachablePodReason`: the reason the node lifecycle controller gives pods on a
/// node that stopped reporting.
const NODE_UNREACHABLE_POD_REASON: &str = "NodeLost";

static COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    Column::new("Status", "string", "The aggregate status of the containers in this pod."),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    Column::wide("IP", "string", d::POD_STATUS_POD_IP),
    Column::wide("Node", "string", d::POD_SPEC_NODE_NAME),
    Column::wide("Nominated Node", "string", d::POD_STATUS_NOMINATED_NODE_NAME),
    Column::wide("Readiness Gates", "string", d::POD_SPEC_READINESS_GATES),
];

/// The computed READY, STATUS and RESTARTS cells of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSummary {
    /// "ready/total", counting restartable init containers (sidecars) in the total.
    pub ready: String,
    /// The STATUS column: phase, pod reason or the container reason that explains it.
    pub status: String,
    /// "N" or "N (AGE ago)".
    pub restarts: String,
}

/// Tracks the latest `lastState.terminated.finishedAt` seen, as upstream's `lastRestartDate`.
fn note_restart(latest: &mut Option<DateTime<Utc>>, status: &ContainerStatus) {
    let finished = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| time(t.finished_at.as_ref()));
    if let Some(t) = finished {
        if latest.is_none_or(|l| l < t) {
            *latest = Some(t);
        }
    }
}

fn conditions(pod: &Pod) -> &[PodCondition] {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

fn has_pod_ready_condition(pod: &Pod) -> bool {
    conditions(pod)
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn is_pod_initialized_condition_true(pod: &Pod) -> bool {
    conditions(pod)
        .iter()
        .find(|c| c.type_ == "Initialized")
        .is_some_and(|c| c.status == "True")
}

/// READY, STATUS and RESTARTS exactly as upstream's `printPod` computes them.
pub fn summarize(pod: &Pod, now: DateTime<Utc>) -> PodSummary {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let init_specs = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    let mut total = spec.map_or(0, |s| s.containers.len());

    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    let pod_reason = status.and_then(|s| s.reason.as_deref()).unwrap_or("");
    let mut reason = if pod_reason.is_empty() {
        phase.to_string()
    } else {
        pod_reason.to_string()
    };

    if conditions(pod)
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"))
    {
        reason = "SchedulingGated".to_string();
    }

    // Later specs with the same name win, as upstream's map assignment does.
    let mut restartable: HashMap<&str, bool> = HashMap::new();
    for c in init_specs {
        let is_restartable = c.restart_policy.as_deref() == Some("Always");
        restartable.insert(c.name.as_str(), is_restartable);
        if is_restartable {
            total += 1;
        }
    }

    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_restart: Option<DateTime<Utc>> = None;
    let mut ready = 0usize;
    let mut initializing = false;

    let init_statuses = status
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or_default();
    for (i, cs) in init_statuses.iter().enumerate() {
        restarts += i64::from(cs.restart_count);
        note_restart(&mut last_restart, cs);
        let is_restartable = restartable.get(cs.name.as_str()).copied().unwrap_or(false);
        if is_restartable {
            restartable_restarts += i64::from(cs.restart_count);
            note_restart(&mut last_restartable_restart, cs);
        }
        let terminated = cs.state.as_ref().and_then(|s| s.terminated.as_ref());
        let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
        if terminated.is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if is_restartable && cs.started == Some(true) {
            if cs.ready {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match t.reason.as_deref() {
                Some(r) if !r.is_empty() => format!("Init:{r}"),
                _ => match t.signal {
                    Some(sig) if sig != 0 => format!("Init:Signal:{sig}"),
                    _ => format!("Init:ExitCode:{}", t.exit_code),
                },
            };
        } else if let Some(r) = waiting
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || is_pod_initialized_condition_true(pod) {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        let statuses = status
            .and_then(|s| s.container_statuses.as_deref())
            .unwrap_or_default();
        // In reverse, so the first container's reason is the one left standing.
        for cs in statuses.iter().rev() {
            restarts += i64::from(cs.restart_count);
            note_restart(&mut last_restart, cs);
            let state = cs.state.as_ref();
            let waiting_reason = state
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref());
            let terminated = state.and_then(|s| s.terminated.as_ref());
            if let Some(r) = waiting_reason.filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if let Some(t) = terminated {
                reason = match t.reason.as_deref() {
                    Some(r) if !r.is_empty() => r.to_string(),
                    _ => match t.signal {
                        Some(sig) if sig != 0 => format!("Signal:{sig}"),
                        _ => format!("ExitCode:{}", t.exit_code),
                    },
                };
            } else if cs.ready && state.is_some_and(|s| s.running.is_some()) {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose first container completed but which still runs others is not done.
        if reason == "Completed" && has_running {
            reason = if has_pod_ready_condition(pod) {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    let deleting = pod.metadata.deletion_timestamp.is_some();
    if deleting && pod_reason == NODE_UNREACHABLE_POD_REASON {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };
    PodSummary {
        ready: format!("{ready}/{total}"),
        status: reason,
        restarts,
    }
}

fn or_none(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".to_string(),
    }
}

/// The pod's first IP as the internal API holds it: `podIP` wins over `podIPs`, as the v1
/// conversion makes it.
fn pod_ip(pod: &Pod) -> Option<&str> {
    let status = pod.status.as_ref()?;
    match status.pod_ip.as_deref() {
        Some(ip) if !ip.is_empty() => Some(ip),
        _ => status.pod_ips.as_ref()?.first().map(|p| p.ip.as_str()),
    }
}

fn readiness_gates(pod: &Pod) -> String {
    let gates = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_deref())
        .unwrap_or_default();
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conds = conditions(pod);
    let true_count = gates
        .iter()
        .filter(|g| {
            conds
                .iter()
                .find(|c| c.type_ == g.condition_type)
                .is_some_and(|c| c.status == "True")
        })
        .count();
    format!("{}/{}", true_count, gates.len())
}

impl Printer for Pod {
    fn columns() -> &'static [Column] {
        COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let s = summarize(self, now);
        let nominated = self
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref());
        vec![
            json!(self.metadata.name.as_deref().unwrap_or("")),
            json!(s.ready),
            json!(s.status),
            json!(s.restarts),
            json!(translate_timestamp_since(
                self.metadata.creation_timestamp.as_ref(),
                now
            )),
            json!(or_none(pod_ip(self))),
            json!(or_none(
                self.spec.as_ref().and_then(|s| s.node_name.as_deref())
            )),
            json!(or_none(nominated)),
            json!(readiness_gates(self)),
        ]
    }

    fn row_conditions(&self) -> Vec<Value> {
        match self.status.as_ref().and_then(|s| s.phase.as_deref()) {
            Some("Succeeded") => vec![json!({
                "type": "Completed",
                "status": "True",
                "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            })],
            Some("Failed") => vec![json!({
                "type": "Completed",
                "status": "True",
                "reason": "Failed",
                "message": "The pod failed.",
            })],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn ago(d: Duration) -> String {
        (now() - d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).expect("pod fixture")
    }

    /// Two unnamed containers, like upstream's `make([]api.Container, 2)`.
    fn containers(n: usize) -> Value {
        Value::Array((0..n).map(|i| json!({"name": format!("c{i}")})).collect())
    }

    fn cells(p: &Pod) -> Vec<Value> {
        p.row(now())[..5].to_vec()
    }

    fn expect(p: Value, want: [&str; 5]) {
        let p = pod(p);
        let want: Vec<Value> = want.iter().map(|s| json!(s)).collect();
        assert_eq!(cells(&p), want, "pod {:?}", p.metadata.name);
    }

    #[test]
    fn upstream_print_pod_cases() {
        // Cases and expected cells from upstream's TestPrintPod.
        let running = json!({"running": {}});
        expect(
            json!({"metadata": {"name": "test1"}, "spec": {"containers": containers(2)}, "status": {"phase": "podPhase",
                "containerStatuses": [
                    {"name": "a", "image": "", "imageID": "", "ready": true, "restartCount": 3, "state": running},
                    {"name": "b", "image": "", "imageID": "", "ready": false, "restartCount": 3}]}}),
            ["test1", "1/2", "podPhase", "6", "<unknown>"],
        );
        expect(
            json!({"metadata": {"name": "test2"}, "spec": {"containers": containers(2)}, "status": {"phase": "podPhase",
                "containerStatuses": [
                    {"name": "a", "image": "", "imageID": "", "ready": true, "restartCount": 3, "state": running},
                    {"name": "b", "image": "", "imageID": "", "ready": false, "restartCount": 3,
                     "state": {"waiting": {"reason": "ContainerWaitingReason"}}}]}}),
            ["test2", "1/2", "ContainerWaitingReason", "6", "<unknown>"],
        );
        expect(
            json!({"metadata": {"name": "test3"}, "spec": {"containers": containers(2)}, "status": {"phase": "podPhase",
                "containerStatuses": [
                    {"name": "a", "image": "", "imageID": "", "ready": false, "restartCount": 3,
                     "state": {"waiting": {"reason": "ContainerWaitingReason"}}},
                    {"name": "b", "image": "", "imageID": "", "ready": false, "restartCount": 3,
                     "state": {"terminated": {"exitCode": 0, "reason": "ContainerTerminatedReason"}}}]}}),
            ["test3", "0/2", "ContainerWaitingReason", "6", "<unknown>"],
        );
        expect(
            json!({"metadata": {"name": "test5"}, "spec": {"containers": containers(2)}, "status": {"phase": "podPhase", "reason": "podReason",
                "containerStatuses": [
                    {"name": "a", "image": "", "imageID": "", "ready": true, "restartCount": 3, "state": running},
                    {"name": "b", "image": "", "imageID": "", "ready": true, "restartCount": 3}]}}),
            ["test5", "1/2", "podReason", "6", "<unknown>"],
        );
        let completed_and_running = |conds: Value| {
            json!({"metadata": {"name": "test6"}, "spec": {"containers": containers(2)}, "status": {"phase": "Running",
                "conditions": conds,
                "containerStatuses": [
                    {"name": "a", "image": "", "imageID": "", "ready": true, "restartCount": 3,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "b", "image": "", "imageID": "", "ready": true, "restartCount": 3, "state": running}]}})
        };
        expect(
            completed_and_running(json!([])),
            ["test6", "1/2", "NotReady", "6", "<unknown>"],
        );
        expect(
            completed_and_running(json!([{"type": "Ready", "status": "True"}])),
            ["test6", "1/2", "Running", "6", "<unknown>"],
        );
    }

    #[test]
    fn init_containers_and_restart_times() {
        let ten_s = ago(Duration::seconds(10));
        let two_m = ago(Duration::minutes(2));
        expect(
            json!({"metadata": {"name": "test7"}, "spec": {"initContainers": containers(1), "containers": containers(1)},
                "status": {"phase": "podPhase",
                "initContainerStatuses": [{"name": "i", "image": "", "imageID": "", "ready": false, "restartCount": 3,
                    "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ten_s}}}],
                "containerStatuses": [{"name": "c", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {}}}]}}),
            ["test7", "0/1", "Init:0/1", "3 (10s ago)", "<unknown>"],
        );
        expect(
            json!({"metadata": {"name": "test10"}, "spec": {"initContainers": containers(2), "containers": containers(1)},
                "status": {"phase": "podPhase",
                "initContainerStatuses": [
                    {"name": "i0", "image": "", "imageID": "", "ready": false, "restartCount": 2,
                     "state": {"terminated": {"exitCode": 0}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": two_m}}},
                    {"name": "i1", "image": "", "imageID": "", "ready": false, "restartCount": 3,
                     "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ten_s}}}],
                "containerStatuses": [{"name": "c", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {}}}]}}),
            ["test10", "0/1", "Init:1/2", "5 (10s ago)", "<unknown>"],
        );
        expect(
            json!({"metadata": {"name": "test11"}, "spec": {"initContainers": containers(1), "containers": containers(1)},
                "status": {"phase": "Running",
                "initContainerStatuses": [
                    {"name": "i0", "image": "", "imageID": "", "ready": false, "restartCount": 2,
                     "state": {"terminated": {"exitCode": 0}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": two_m}}}],
                "containerStatuses": [{"name": "c", "image": "", "imageID": "", "ready": false, "restartCount": 4,
                    "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::seconds(20))}}}]}}),
            ["test11", "0/1", "Running", "4 (20s ago)", "<unknown>"],
        );
        expect(
            json!({"metadata": {"name": "test14"}, "spec": {"containers": containers(2)},
                "status": {"phase": "Running",
                "containerStatuses": [
                    {"name": "a", "image": "", "imageID": "", "ready": true, "restartCount": 6, "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::days(5))}}},
                    {"name": "b", "image": "", "imageID": "", "ready": true, "restartCount": 3, "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::days(20))}}}]}}),
            ["test14", "2/2", "Running", "9 (5d ago)", "<unknown>"],
        );
        // A failed init container names its reason, signal or exit code.
        expect(
            json!({"metadata": {"name": "crash"}, "spec": {"initContainers": containers(1), "containers": containers(1)},
                "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "i", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
            ["crash", "0/1", "Init:CrashLoopBackOff", "0", "<unknown>"],
        );
        expect(
            json!({"metadata": {"name": "sig"}, "spec": {"initContainers": containers(1), "containers": containers(1)},
                "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "i", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}}),
            ["sig", "0/1", "Init:Signal:9", "0", "<unknown>"],
        );
    }

    #[test]
    fn sidecars_count_toward_ready() {
        // Upstream's TestPrintPodWithRestartableInitContainer, "test2".
        expect(
            json!({"metadata": {"name": "test2"},
                "spec": {"initContainers": [
                    {"name": "restartable-init-1", "restartPolicy": "Always"},
                    {"name": "restartable-init-2", "restartPolicy": "Always"}], "containers": containers(1)},
                "status": {"phase": "Running",
                "initContainerStatuses": [
                    {"name": "restartable-init-1", "image": "", "imageID": "", "ready": false, "restartCount": 3,
                     "state": {"running": {}}, "started": true,
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::seconds(10))}}},
                    {"name": "restartable-init-2", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"running": {}}, "started": true}],
                "containerStatuses": [{"name": "c", "image": "", "imageID": "", "ready": true, "restartCount": 4,
                    "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::seconds(20))}}}],
                "conditions": [{"type": "Initialized", "status": "True"}]}}),
            ["test2", "1/3", "Running", "7 (10s ago)", "<unknown>"],
        );
        // "test1": the first sidecar runs but has not started.
        expect(
            json!({"metadata": {"name": "test1"},
                "spec": {"initContainers": [
                    {"name": "restartable-init-1", "restartPolicy": "Always"},
                    {"name": "restartable-init-2", "restartPolicy": "Always"}], "containers": containers(1)},
                "status": {"phase": "Pending",
                "initContainerStatuses": [
                    {"name": "restartable-init-1", "image": "", "imageID": "", "ready": false, "restartCount": 3,
                     "state": {"running": {}}, "started": false,
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::seconds(10))}}},
                    {"name": "restartable-init-2", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"waiting": {}}, "started": false}],
                "containerStatuses": [{"name": "c", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {}}}],
                "conditions": [{"type": "Initialized", "status": "False"}]}}),
            ["test1", "0/3", "Init:0/2", "3 (10s ago)", "<unknown>"],
        );
        // "test4": statuses for containers the spec does not have.
        expect(
            json!({"metadata": {"name": "test4"},
                "spec": {"initContainers": [
                    {"name": "init1", "image": "initimage"},
                    {"name": "sidecar1", "image": "sidecarimage", "restartPolicy": "Always"}],
                    "containers": [{"name": "container1", "image": "containerimage"}]},
                "status": {"phase": "Running",
                "initContainerStatuses": [
                    {"name": "initinvalid", "image": "", "imageID": "", "ready": false, "restartCount": 0},
                    {"name": "init1", "image": "", "imageID": "", "ready": false, "restartCount": 0},
                    {"name": "sidecar1", "image": "", "imageID": "", "ready": false, "restartCount": 0}],
                "containerStatuses": [
                    {"name": "containerinvalid", "image": "", "imageID": "", "ready": false, "restartCount": 0},
                    {"name": "container1", "image": "", "imageID": "", "ready": false, "restartCount": 0}]}}),
            ["test4", "0/2", "Init:0/2", "0", "<unknown>"],
        );
    }

    #[test]
    fn scheduling_gated_completed_and_terminating() {
        expect(
            json!({"metadata": {"name": "test15"}, "spec": {"containers": containers(2)}, "status": {"phase": "podPhase",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}}),
            ["test15", "0/2", "SchedulingGated", "0", "<unknown>"],
        );
        let deleted = ago(Duration::seconds(10));
        let succeeded = pod(
            json!({"metadata": {"name": "test18", "deletionTimestamp": deleted},
            "spec": {"containers": containers(1)}, "status": {"phase": "Succeeded",
            "containerStatuses": [{"name": "c", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
        );
        assert_eq!(
            cells(&succeeded),
            [
                json!("test18"),
                json!("0/1"),
                json!("Completed"),
                json!("0"),
                json!("<unknown>")
            ]
        );
        assert_eq!(succeeded.row_conditions()[0]["reason"], json!("Succeeded"));
        let failed = pod(
            json!({"metadata": {"name": "test17"}, "spec": {"containers": containers(1)},
            "status": {"phase": "Failed", "containerStatuses": [{"name": "c", "image": "", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}),
        );
        assert_eq!(cells(&failed)[2], json!("Error"));
        assert_eq!(
            failed.row_conditions()[0]["message"],
            json!("The pod failed.")
        );
        expect(
            json!({"metadata": {"name": "test19", "deletionTimestamp": deleted}, "spec": {"containers": containers(1)},
                "status": {"phase": "Running", "containerStatuses": [{"name": "c", "image": "", "imageID": "",
                    "ready": false, "restartCount": 0, "state": {"running": {}}}]}}),
            ["test19", "0/1", "Terminating", "0", "<unknown>"],
        );
        expect(
            json!({"metadata": {"name": "test20", "deletionTimestamp": deleted}, "spec": {"containers": containers(1)},
                "status": {"phase": "Pending"}}),
            ["test20", "0/1", "Terminating", "0", "<unknown>"],
        );
        expect(
            json!({"metadata": {"name": "lost", "deletionTimestamp": deleted}, "spec": {"containers": containers(1)},
                "status": {"phase": "Running", "reason": "NodeLost"}}),
            ["lost", "0/1", "Unknown", "0", "<unknown>"],
        );
    }

    #[test]
    fn kubectl_get_pods_view() {
        // What `kubectl get pods` shows for a fresh nginx pod: NAME READY STATUS RESTARTS AGE.
        let p = pod(
            json!({"metadata": {"name": "nginx", "creationTimestamp": ago(Duration::seconds(42))},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}], "nodeName": "node-1"},
            "status": {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "nginx", "image": "nginx", "imageID": "", "ready": true,
                    "restartCount": 0, "state": {"running": {}}}]}}),
        );
        assert_eq!(
            p.row(now()),
            vec![
                json!("nginx"),
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("42s"),
                json!("10.244.0.5"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        let pending = pod(
            json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "web"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "web", "image": "", "imageID": "",
                "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
        );
        assert_eq!(cells(&pending)[2], json!("ContainerCreating"));
        let crashing = pod(
            json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "web"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "web", "image": "", "imageID": "",
                "ready": false, "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::minutes(5))}}}]}}),
        );
        assert_eq!(
            cells(&crashing)[2..4],
            [json!("CrashLoopBackOff"), json!("5 (5m ago)")]
        );
    }

    #[test]
    fn wide_columns() {
        // Upstream's TestPrintPodwide, first and third cases.
        let p = pod(json!({"metadata": {"name": "test1"},
            "spec": {"containers": containers(2), "nodeName": "test1",
                "readinessGates": [{"conditionType": "condition1"}, {"conditionType": "condition2"}, {"conditionType": "condition3"}]},
            "status": {"phase": "podPhase", "podIPs": [{"ip": "1.1.1.1"}, {"ip": "2001:db8::"}], "nominatedNodeName": "node1",
                "conditions": [{"type": "condition1", "status": "False"}, {"type": "condition2", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "image": "", "imageID": "", "ready": true, "restartCount": 3, "state": {"running": {}}},
                    {"name": "b", "image": "", "imageID": "", "ready": false, "restartCount": 3}]}}));
        let want: Vec<Value> = [
            "test1",
            "1/2",
            "podPhase",
            "6",
            "<unknown>",
            "1.1.1.1",
            "test1",
            "node1",
            "1/3",
        ]
        .iter()
        .map(|s| json!(s))
        .collect();
        assert_eq!(p.row(now()), want);
        let bare = pod(
            json!({"metadata": {"name": "test2"}, "spec": {"containers": containers(2)},
            "status": {"phase": "podPhase"}}),
        );
        assert_eq!(
            bare.row(now())[5..],
            [
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        assert_eq!(Pod::columns().len(), p.row(now()).len());
    }

    #[test]
    fn empty_pod_does_not_panic() {
        let p = Pod::default();
        assert_eq!(
            cells(&p),
            [
                json!(""),
                json!("0/0"),
                json!(""),
                json!("0"),
                json!("<unknown>")
            ]
        );
    }
}
