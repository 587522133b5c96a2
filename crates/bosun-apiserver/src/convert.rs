//! Conversion between the versions a resource is served at and the version it is stored
//! at: `extensions/v1beta1` Deployment and ReplicaSet ↔ `apps/v1` (as Kubernetes 1.15
//! served them, so the seed's manifests are accepted verbatim), `autoscaling/v1` ↔
//! `autoscaling/v2` HorizontalPodAutoscaler, `events.k8s.io/v1` ↔ core/v1 Event.

use bosun_api::resources::ResourceDef;
use serde_json::{json, Map, Value};

/// Converts an object sent at `def`'s version to its storage version.
pub fn to_storage(def: &ResourceDef, mut obj: Value) -> Value {
    if def.is_storage_version() {
        return obj;
    }
    let storage_api_version = if def.storage_group.is_empty() {
        def.storage_version.to_string()
    } else {
        format!("{}/{}", def.storage_group, def.storage_version)
    };
    match (def.group, def.kind) {
        ("extensions", _) => {
            extensions_defaults(def.kind, &mut obj);
        }
        ("autoscaling", "HorizontalPodAutoscaler") => obj = hpa_v1_to_v2(obj),
        ("events.k8s.io", "Event") => obj = events_to_core(obj),
        _ => {}
    }
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(storage_api_version));
    }
    obj
}

/// Converts a stored object to the version `def` serves.
pub fn from_storage(def: &ResourceDef, mut obj: Value) -> Value {
    if def.is_storage_version() {
        return obj;
    }
    match (def.group, def.kind) {
        ("autoscaling", "HorizontalPodAutoscaler") => obj = hpa_v2_to_v1(obj),
        ("events.k8s.io", "Event") => obj = core_to_events(obj),
        _ => {}
    }
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(def.api_version()));
    }
    obj
}

/// extensions/v1beta1 had optional selectors (defaulted from the template labels) and
/// other defaults than apps/v1 (`pkg/apis/extensions/v1beta1/defaults.go`).
fn extensions_defaults(kind: &str, obj: &mut Value) {
    let labels = obj.pointer("/spec/template/metadata/labels").cloned();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("selector").map(Value::is_null).unwrap_or(true) {
        if let Some(labels) = labels {
            spec.insert("selector".into(), json!({ "matchLabels": labels }));
        }
    }
    if kind == "Deployment" {
        let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
        if let Some(s) = strategy.as_object_mut() {
            if s.get("type")
                .and_then(Value::as_str)
                .unwrap_or("RollingUpdate")
                == "RollingUpdate"
            {
                s.insert("type".into(), "RollingUpdate".into());
                let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
                if let Some(ru) = ru.as_object_mut() {
                    ru.entry("maxUnavailable").or_insert(json!(1));
                    ru.entry("maxSurge").or_insert(json!(1));
                }
            }
        }
        spec.entry("revisionHistoryLimit")
            .or_insert(json!(i32::MAX));
        spec.entry("progressDeadlineSeconds")
            .or_insert(json!(i32::MAX));
    }
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(t) = spec.remove("targetCPUUtilizationPercentage") {
            if !t.is_null() {
                spec.insert(
                    "metrics".into(),
                    json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": t}}}]),
                );
            }
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(c) = status.remove("currentCPUUtilizationPercentage") {
            if !c.is_null() {
                status.insert(
                    "currentMetrics".into(),
                    json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}}]),
                );
            }
        }
    }
    obj
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(metrics) = spec.remove("metrics") {
            let cpu = metrics.as_array().into_iter().flatten().find_map(|m| {
                (m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu"))
                    .then(|| m.pointer("/resource/target/averageUtilization").cloned())
                    .flatten()
            });
            if let Some(cpu) = cpu {
                spec.insert("targetCPUUtilizationPercentage".into(), cpu);
            }
        }
        spec.remove("behavior");
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(metrics) = status.remove("currentMetrics") {
            let cpu = metrics.as_array().into_iter().flatten().find_map(|m| {
                (m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu"))
                    .then(|| m.pointer("/resource/current/averageUtilization").cloned())
                    .flatten()
            });
            if let Some(cpu) = cpu {
                status.insert("currentCPUUtilizationPercentage".into(), cpu);
            }
        }
        status.remove("conditions");
    }
    obj
}

/// Field renames between events.k8s.io/v1 and core/v1 Event.
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(obj: Value, forward: bool) -> Value {
    let Value::Object(m) = obj else { return obj };
    let mut out = Map::new();
    for (k, v) in m {
        let renamed = EVENT_RENAMES.iter().find_map(|(a, b)| {
            let (from, to) = if forward { (a, b) } else { (b, a) };
            (k == *from).then(|| to.to_string())
        });
        out.insert(renamed.unwrap_or(k), v);
    }
    Value::Object(out)
}

fn events_to_core(obj: Value) -> Value {
    let mut v = rename(obj, true);
    if let Some(m) = v.as_object_mut() {
        if let Some(instance) = m.get("reportingInstance").cloned() {
            let src = m.entry("source").or_insert_with(|| json!({}));
            if let Some(s) = src.as_object_mut() {
                s.entry("host").or_insert(instance);
            }
        }
    }
    v
}

fn core_to_events(obj: Value) -> Value {
    rename(obj, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_api::resources::find;

    #[test]
    fn seed_extensions_deployment_converts_to_apps_v1() {
        let def = find("extensions", "v1beta1", "deployments").expect("served");
        let obj = json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "metadata": {"name": "frontend"},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": {"tier": "frontend"}}, "spec": {"containers": []}}}});
        let s = to_storage(def, obj);
        assert_eq!(s["apiVersion"], "apps/v1");
        assert_eq!(s["spec"]["selector"]["matchLabels"]["tier"], "frontend");
        let back = from_storage(def, s);
        assert_eq!(back["apiVersion"], "extensions/v1beta1");
    }

    #[test]
    fn hpa_v1_round_trips_through_v2() {
        let def = find("autoscaling", "v1", "horizontalpodautoscalers").expect("served");
        let obj = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "php-apache"},
            "spec": {"maxReplicas": 10, "minReplicas": 1, "scaleTargetRef": {"kind": "Deployment", "name": "php-apache"}, "targetCPUUtilizationPercentage": 90}});
        let s = to_storage(def, obj);
        assert_eq!(s["apiVersion"], "autoscaling/v2");
        assert_eq!(
            s["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            90
        );
        let back = from_storage(def, s);
        assert_eq!(back["spec"]["targetCPUUtilizationPercentage"], 90);
    }
}
