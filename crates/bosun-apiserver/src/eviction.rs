//! The `pods/eviction` subresource, as upstream's `pkg/registry/core/pod/storage/eviction.go`:
//! a pod covered by a PodDisruptionBudget is deleted only when the budget allows one more
//! disruption; the budget's `disruptionsAllowed` is decremented and the pod recorded in
//! `disruptedPods` in the same compare-and-swap, so concurrent evictions cannot overdraw
//! it. Otherwise the answer is 429 "Cannot evict pod as it would violate the pod's
//! disruption budget.".

use std::collections::BTreeMap;

use bosun_api::resources;
use bosun_api::selector::LabelSelector;
use bosun_api::StatusError;
use bosun_store::Error as StoreError;
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{json, Value};

use crate::cache;
use crate::codec;
use crate::registry::Registry;
use crate::request::{Query, ResourcePath};

/// Upstream's `MaxDisruptedPodSize`.
const MAX_DISRUPTED_PODS: usize = 2000;
/// Compare-and-swap attempts on the budget before giving up (upstream retries on conflict).
const CAS_ATTEMPTS: usize = 5;

const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn too_many(cause: String, retry_after: i64) -> StatusError {
    let mut e = StatusError::too_many_requests(VIOLATION, retry_after);
    if let Some(d) = e.details.as_mut() {
        d.causes
            .push(json!({"reason": "DisruptionBudget", "message": cause}));
    }
    e
}

fn pod_phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Upstream's `canIgnorePDB`: finished, pending and terminating pods disrupt nothing.
fn can_ignore_pdb(pod: &Value) -> bool {
    matches!(pod_phase(pod), "Succeeded" | "Failed" | "Pending")
        || pod.pointer("/metadata/deletionTimestamp").is_some()
}

/// POST `pods/{name}/eviction`: the Status to answer with (201), or why not.
pub async fn evict(
    reg: &Registry,
    rp: &ResourcePath,
    q: &Query,
    body: &[u8],
    ct: Option<&str>,
) -> Result<Value, StatusError> {
    let (ev, _) = codec::decode_body(body, codec::BodyType::from_content_type(ct)?, false)?;
    let name = rp.name.clone().unwrap_or_default();
    let ns = rp.namespace.clone().unwrap_or_default();
    if let Some(n) = ev.pointer("/metadata/name").and_then(Value::as_str) {
        if !n.is_empty() && n != name {
            return Err(StatusError::bad_request(format!(
                "name in URL does not match name in Eviction object: {name} != {n}"
            )));
        }
    }
    let opts = ev
        .get("deleteOptions")
        .filter(|o| !o.is_null())
        .map(|o| o.to_string())
        .unwrap_or_default();
    let mut pod_rp = rp.clone();
    pod_rp.subresource = None;
    let pod = reg.get(&pod_rp, &Query::parse(None)).await?;
    let dry_run = q.dry_run()?;

    if !can_ignore_pdb(&pod) {
        let pdbs = matching_budgets(reg, &ns, &pod)?;
        if pdbs.len() > 1 {
            return Err(StatusError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some((key, _)) = pdbs.into_iter().next() {
            check_and_decrement(reg, &key, &name, is_ready(&pod), dry_run).await?;
        }
    }
    reg.delete(&pod_rp, q, opts.as_bytes()).await?;
    Ok(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

/// The budgets in `ns` whose selector matches the pod's labels, with their store keys.
fn matching_budgets(
    reg: &Registry,
    ns: &str,
    pod: &Value,
) -> Result<Vec<(String, PodDisruptionBudget)>, StatusError> {
    let Some(def) = resources::find("policy", "v1", "poddisruptionbudgets") else {
        return Ok(Vec::new());
    };
    let Some(rc) = reg.cache.resource(def) else {
        return Ok(Vec::new());
    };
    let labels: BTreeMap<String, String> = pod
        .pointer("/metadata/labels")
        .cloned()
        .and_then(|l| serde_json::from_value(l).ok())
        .unwrap_or_default();
    let mut out = Vec::new();
    for obj in rc.snapshot(&cache::resource_prefix(def, Some(ns))).objects {
        let Ok(pdb) = serde_json::from_slice::<PodDisruptionBudget>(&obj.bytes) else {
            continue;
        };
        // A budget without a selector selects nothing; an empty one selects everything.
        let Some(sel) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            continue;
        };
        let Ok(sel) = LabelSelector::from_api(Some(sel)) else {
            continue;
        };
        if sel.matches_labels(Some(&labels)) {
            out.push((obj.key.clone(), pdb));
        }
    }
    Ok(out)
}

/// Upstream's `checkAndDecrement`, as one compare-and-swap on the stored budget.
async fn check_and_decrement(
    reg: &Registry,
    key: &str,
    pod_name: &str,
    pod_ready: bool,
    dry_run: bool,
) -> Result<(), StatusError> {
    for _ in 0..CAS_ATTEMPTS {
        let kv = reg
            .store
            .get(key)
            .await
            .map_err(|e| StatusError::internal(e.to_string()))?;
        let Some(kv) = kv else {
            return Ok(());
        };
        let mut obj: Value = serde_json::from_slice(&kv.value)
            .map_err(|e| StatusError::internal(format!("decoding {key}: {e}")))?;
        let pdb_name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let generation = obj
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let status = obj.get("status").cloned().unwrap_or(Value::Null);
        let observed = status
            .get("observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let allowed = status
            .get("disruptionsAllowed")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let current = status
            .get("currentHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let desired = status
            .get("desiredHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if observed < generation {
            return Err(too_many(
                format!("The disruption budget {pdb_name} is still being processed by the server."),
                10,
            ));
        }
        // An unhealthy pod may go when the budget is met anyway (IfHealthyBudget) or always
        // (AlwaysAllow), without spending a disruption.
        if !pod_ready {
            let policy = obj
                .pointer("/spec/unhealthyPodEvictionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("IfHealthyBudget");
            if policy == "AlwaysAllow" || (current >= desired && desired > 0) {
                return Ok(());
            }
        }
        if allowed < 0 {
            return Err(StatusError::forbidden(
                "policy",
                "poddisruptionbudget",
                &pdb_name,
                "pdb disruptions allowed is negative",
            ));
        }
        let disrupted = status
            .get("disruptedPods")
            .and_then(Value::as_object)
            .map(|m| m.len())
            .unwrap_or(0);
        if disrupted > MAX_DISRUPTED_PODS {
            return Err(StatusError::forbidden(
                "policy",
                "poddisruptionbudget",
                &pdb_name,
                "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
            ));
        }
        if allowed == 0 {
            return Err(too_many(
                format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"),
                0,
            ));
        }
        if dry_run {
            return Ok(());
        }
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let st = obj
            .as_object_mut()
            .map(|m| m.entry("status").or_insert_with(|| json!({})));
        let Some(st) = st.and_then(Value::as_object_mut) else {
            return Err(StatusError::internal(format!(
                "budget {pdb_name} has no status"
            )));
        };
        st.insert("disruptionsAllowed".into(), json!(allowed - 1));
        let pods = st.entry("disruptedPods").or_insert_with(|| json!({}));
        if !pods.is_object() {
            *pods = json!({});
        }
        pods[pod_name] = json!(now);
        if allowed - 1 == 0 {
            set_disruption_condition(st, &now);
        }
        let bytes = Bytes::from(
            serde_json::to_vec(&obj).map_err(|e| StatusError::internal(e.to_string()))?,
        );
        match reg.store.update(key, bytes, kv.mod_revision).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(StatusError::internal(e.to_string())),
        }
    }
    Err(StatusError::new(
        bosun_api::errors::StatusReason::Conflict,
        "the disruption budget changed too often while evicting, try again",
    ))
}

/// Upstream's `UpdateDisruptionAllowedCondition` when the budget reaches zero.
fn set_disruption_condition(st: &mut serde_json::Map<String, Value>, now: &str) {
    let observed = st.get("observedGeneration").cloned().unwrap_or(Value::Null);
    let conds = st.entry("conditions").or_insert_with(|| json!([]));
    if !conds.is_array() {
        *conds = json!([]);
    }
    let Some(list) = conds.as_array_mut() else {
        return;
    };
    let new = json!({
        "type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
        "message": "", "lastTransitionTime": now,
        "observedGeneration": observed,
    });
    match list.iter_mut().find(|c| c["type"] == "DisruptionAllowed") {
        Some(c) if c["status"] == "False" => {}
        Some(c) => *c = new,
        None => list.push(new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignorable_pods() {
        assert!(can_ignore_pdb(&json!({"status": {"phase": "Pending"}})));
        assert!(can_ignore_pdb(&json!({"status": {"phase": "Succeeded"}})));
        assert!(can_ignore_pdb(
            &json!({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}})
        ));
        assert!(!can_ignore_pdb(&json!({"status": {"phase": "Running"}})));
    }

    #[test]
    fn violation_status() {
        let e = too_many(
            "The disruption budget b needs 2 healthy pods and has 2 currently".into(),
            0,
        );
        let s = e.to_status();
        assert_eq!(s["code"], 429);
        assert_eq!(s["message"], VIOLATION);
        assert_eq!(s["details"]["causes"][0]["reason"], "DisruptionBudget");
    }

    #[test]
    fn condition_set_once() {
        let mut st = serde_json::Map::new();
        set_disruption_condition(&mut st, "t");
        set_disruption_condition(&mut st, "u");
        assert_eq!(st["conditions"].as_array().map(Vec::len), Some(1));
        assert_eq!(st["conditions"][0]["reason"], "InsufficientPods");
    }
}
