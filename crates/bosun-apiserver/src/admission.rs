//! Admission on create, as upstream's admission plugins that bosun runs built in:
//!
//! - `DefaultTolerationSeconds` (mutating, before defaulting): every pod tolerates the
//!   `not-ready` and `unreachable` NoExecute taints for 300 s unless it says otherwise.

use serde_json::{json, Value};

/// Upstream's `--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds` default.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// How the admission plugins behave (the API server's flags).
#[derive(Clone, Debug)]
pub struct AdmissionConfig {
    /// `--default-not-ready-toleration-seconds` (300).
    pub default_not_ready_toleration_seconds: i64,
    /// `--default-unreachable-toleration-seconds` (300).
    pub default_unreachable_toleration_seconds: i64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            default_not_ready_toleration_seconds: DEFAULT_TOLERATION_SECONDS,
            default_unreachable_toleration_seconds: DEFAULT_TOLERATION_SECONDS,
        }
    }
}

/// Whether a toleration (JSON) tolerates every taint with `key` and effect NoExecute
/// (upstream's check: the key matches or is empty with Exists, and the effect is empty or
/// NoExecute).
fn tolerates_no_execute(tol: &Value, key: &str) -> bool {
    let effect = tol.get("effect").and_then(Value::as_str).unwrap_or("");
    if !effect.is_empty() && effect != "NoExecute" {
        return false;
    }
    let k = tol.get("key").and_then(Value::as_str).unwrap_or("");
    let op = tol
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or("Equal");
    (k.is_empty() && op == "Exists") || k == key
}

/// `DefaultTolerationSeconds`: adds the not-ready and unreachable tolerations a pod lacks.
pub fn default_toleration_seconds(pod: &mut Value, cfg: &AdmissionConfig) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tols = spec.entry("tolerations").or_insert_with(|| json!([]));
    if tols.is_null() {
        *tols = json!([]);
    }
    let Some(list) = tols.as_array_mut() else {
        return;
    };
    let has_not_ready = list
        .iter()
        .any(|t| tolerates_no_execute(t, TAINT_NOT_READY));
    let has_unreachable = list
        .iter()
        .any(|t| tolerates_no_execute(t, TAINT_UNREACHABLE));
    if !has_not_ready {
        list.push(json!({
            "key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": cfg.default_not_ready_toleration_seconds,
        }));
    }
    if !has_unreachable {
        list.push(json!({
            "key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": cfg.default_unreachable_toleration_seconds,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_added_unless_present() {
        let cfg = AdmissionConfig::default();
        let mut pod = json!({"spec": {"containers": []}});
        default_toleration_seconds(&mut pod, &cfg);
        let tols = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(tols.len(), 2);
        assert_eq!(tols[0]["tolerationSeconds"], 300);
        assert_eq!(tols[1]["key"], TAINT_UNREACHABLE);

        let mut pod = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        default_toleration_seconds(&mut pod, &cfg);
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(1));

        let mut pod = json!({"spec": {"tolerations": [
            {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}]}});
        default_toleration_seconds(&mut pod, &cfg);
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(3));
    }
}
