//! Pod status as upstream's kubelet computes it (`getPhase`, `generateContainersReadyCondition`,
//! container states from runtime state), as pure functions over container views.
use bosun_runtime::{ContainerState, Status};
use serde_json::{json, Value};

/// `bosun://<id>`, the containerID form (`containerd://<id>` upstream).
pub fn container_id(id: &str) -> String {
    format!("bosun://{id}")
}

/// The kubelet's container state of one runtime container.
pub fn state_json(st: &ContainerState) -> Value {
    match st.status {
        Status::Created => json!({"waiting": {"reason": "ContainerCreating"}}),
        Status::Running => json!({"running": {"startedAt": trim_ts(st.started_at.as_deref())}}),
        Status::Stopped | Status::Unknown => terminated_json(st),
    }
}

/// `terminated` with exit code, reason (Completed, Error, OOMKilled, ...) and times.
pub fn terminated_json(st: &ContainerState) -> Value {
    let code = st
        .exit_code
        .unwrap_or(if st.status == Status::Unknown { 255 } else { 0 });
    let reason = st.reason.clone().unwrap_or_else(|| {
        if code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        }
    });
    let mut t = json!({
        "exitCode": code,
        "reason": if st.status == Status::Unknown { "Unknown".to_string() } else { reason },
        "startedAt": trim_ts(st.started_at.as_deref().or(Some(&st.created_at))),
        "finishedAt": trim_ts(st.finished_at.as_deref().or(st.started_at.as_deref()).or(Some(&st.created_at))),
        "containerID": container_id(&st.id),
    });
    if let Some(m) = st.message.as_deref().filter(|m| !m.is_empty()) {
        t["message"] = json!(m);
    }
    json!({ "terminated": t })
}

/// RFC 3339 to whole seconds (the API's `metav1.Time`).
pub fn trim_ts(ts: Option<&str>) -> Value {
    match ts.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => json!(t
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => Value::Null,
    }
}

/// Upstream `getPhase` over the statuses the worker built (`initContainerStatuses`,
/// `containerStatuses`).
pub fn phase(init: &[Value], containers: &[Value], restart_policy: &str) -> &'static str {
    let exited_ok = |s: &Value| {
        s.pointer("/state/terminated/exitCode")
            .and_then(Value::as_i64)
            == Some(0)
    };
    let mut pending_init = 0;
    let mut failed_init = 0;
    for s in init {
        if exited_ok(s) {
            continue;
        }
        if s.pointer("/state/terminated").is_some()
            || s.pointer("/lastState/terminated")
                .is_some_and(|t| t["exitCode"] != 0)
        {
            failed_init += 1;
        }
        pending_init += 1;
    }
    if pending_init > 0 {
        return if restart_policy == "Never" && failed_init > 0 {
            "Failed"
        } else {
            "Pending"
        };
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in containers {
        let st = &s["state"];
        if st.get("running").is_some() {
            running += 1;
        } else if let Some(t) = st.get("terminated") {
            stopped += 1;
            if t["exitCode"] == 0 {
                succeeded += 1;
            }
        } else if st.get("waiting").is_some() {
            if s.pointer("/lastState/terminated").is_some() {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if restart_policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart_policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(code: i64) -> Value {
        json!({"state": {"terminated": {"exitCode": code}}})
    }

    #[test]
    fn phases_follow_upstream() {
        let running = json!({"state": {"running": {}}});
        let waiting = json!({"state": {"waiting": {"reason": "ContainerCreating"}}});
        let crash = json!({"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}});
        assert_eq!(
            phase(&[], std::slice::from_ref(&waiting), "Always"),
            "Pending"
        );
        assert_eq!(phase(&[], &[running.clone(), waiting], "Always"), "Pending");
        assert_eq!(phase(&[], &[running], "Always"), "Running");
        assert_eq!(phase(&[], &[term(0)], "Never"), "Succeeded");
        assert_eq!(phase(&[], &[term(3)], "Never"), "Failed");
        assert_eq!(phase(&[], &[term(3)], "OnFailure"), "Running");
        assert_eq!(phase(&[], &[crash], "Always"), "Running");
        assert_eq!(phase(&[term(1)], &[], "Never"), "Failed");
        assert_eq!(phase(&[term(1)], &[], "Always"), "Pending");
        assert_eq!(phase(&[term(0)], &[term(0)], "OnFailure"), "Succeeded");
    }
}
