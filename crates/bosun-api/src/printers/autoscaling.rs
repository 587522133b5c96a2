//! The HorizontalPodAutoscaler table, for autoscaling/v2 and autoscaling/v1 objects.
//! Upstream prints the internal (v2-shaped) object; a v1 object is first converted the way
//! upstream's v1 conversion does it, metrics kept in annotations included.

use chrono::{DateTime, Utc};
use k8s_openapi::api::autoscaling::v1;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, MetricSpec, MetricStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Map, Value};

use super::descriptions as d;
use super::format::{quantity_ptr, translate_timestamp_since};
use super::{Column, Printer, AGE, NAME};

/// Where autoscaling/v1 keeps the metrics it has no fields for.
const METRIC_SPECS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// Where autoscaling/v1 keeps the current values of those metrics.
const METRIC_STATUSES_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// `autoscaling.DefaultCPUUtilization`, the target an HPA without metrics gets.
const DEFAULT_CPU_UTILIZATION: i32 = 80;

static COLUMNS: &[Column] = &[
    NAME,
    Column::new("Reference", "string", d::HPA_SPEC_SCALE_TARGET_REF),
    Column::new("Targets", "string", d::HPA_SPEC_METRICS),
    Column::new("MinPods", "string", d::HPA_SPEC_MIN_REPLICAS),
    Column::new("MaxPods", "string", d::HPA_SPEC_MAX_REPLICAS),
    Column::new("Replicas", "string", d::HPA_STATUS_CURRENT_REPLICAS),
    AGE,
];

/// `formatHPAMetrics`: "cpu: 50%/80%", "50m/100m (avg)" and the like for at most two
/// metrics, then " + N more...", or "<none>".
pub fn format_hpa_metrics(specs: &[MetricSpec], statuses: &[MetricStatus]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 2;
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let text = match spec.type_.as_str() {
            "External" => match spec.external.as_ref() {
                Some(ext) if ext.target.average_value.is_some() => {
                    let current = status
                        .and_then(|s| s.external.as_ref())
                        .and_then(|e| e.current.average_value.as_ref())
                        .map_or_else(|| "<unknown>".to_string(), |q| quantity_ptr(Some(q)));
                    format!(
                        "{current}/{} (avg)",
                        quantity_ptr(ext.target.average_value.as_ref())
                    )
                }
                ext => {
                    let current = status.and_then(|s| s.external.as_ref()).map_or_else(
                        || "<unknown>".to_string(),
                        |e| quantity_ptr(e.current.value.as_ref()),
                    );
                    format!(
                        "{current}/{}",
                        quantity_ptr(ext.and_then(|e| e.target.value.as_ref()))
                    )
                }
            },
            "Pods" => {
                let current = status.and_then(|s| s.pods.as_ref()).map_or_else(
                    || "<unknown>".to_string(),
                    |p| quantity_ptr(p.current.average_value.as_ref()),
                );
                let target = spec
                    .pods
                    .as_ref()
                    .and_then(|p| p.target.average_value.as_ref());
                format!("{current}/{}", quantity_ptr(target))
            }
            "Object" => match spec.object.as_ref() {
                Some(obj) if obj.target.average_value.is_some() => {
                    let current = status
                        .and_then(|s| s.object.as_ref())
                        .and_then(|o| o.current.average_value.as_ref())
                        .map_or_else(|| "<unknown>".to_string(), |q| quantity_ptr(Some(q)));
                    format!(
                        "{current}/{} (avg)",
                        quantity_ptr(obj.target.average_value.as_ref())
                    )
                }
                obj => {
                    let current = status.and_then(|s| s.object.as_ref()).map_or_else(
                        || "<unknown>".to_string(),
                        |o| quantity_ptr(o.current.value.as_ref()),
                    );
                    format!(
                        "{current}/{}",
                        quantity_ptr(obj.and_then(|o| o.target.value.as_ref()))
                    )
                }
            },
            "Resource" => {
                let (name, target) = match spec.resource.as_ref() {
                    Some(r) => (r.name.as_str(), Some(&r.target)),
                    None => ("", None),
                };
                let current = status.and_then(|s| s.resource.as_ref()).map(|r| &r.current);
                resource_metric(name, target, current)
            }
            "ContainerResource" => {
                let (name, target) = match spec.container_resource.as_ref() {
                    Some(r) => (r.name.as_str(), Some(&r.target)),
                    None => ("", None),
                };
                let current = status
                    .and_then(|s| s.container_resource.as_ref())
                    .map(|r| &r.current);
                resource_metric(name, target, current)
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(text);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

/// One Resource or ContainerResource metric: "cpu: 40m/100m" for an average value target,
/// "cpu: 50%/80%" for a utilization target.
fn resource_metric(
    name: &str,
    target: Option<&k8s_openapi::api::autoscaling::v2::MetricTarget>,
    current: Option<&k8s_openapi::api::autoscaling::v2::MetricValueStatus>,
) -> String {
    if let Some(avg) = target.and_then(|t| t.average_value.as_ref()) {
        let current = current.map_or_else(
            || "<unknown>".to_string(),
            |c| quantity_ptr(c.average_value.as_ref()),
        );
        return format!("{name}: {current}/{}", quantity_ptr(Some(avg)));
    }
    let current = current
        .and_then(|c| c.average_utilization)
        .map_or_else(|| "<unknown>".to_string(), |u| format!("{u}%"));
    let target = target
        .and_then(|t| t.average_utilization)
        .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
    format!("{name}: {current}/{target}")
}

/// The metric autoscaling/v2 defaults an HPA without metrics to.
fn default_cpu_metric() -> MetricSpec {
    cpu_utilization_metric(DEFAULT_CPU_UTILIZATION)
}

fn cpu_utilization_metric(pct: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".to_string(),
        resource: Some(k8s_openapi::api::autoscaling::v2::ResourceMetricSource {
            name: "cpu".to_string(),
            target: k8s_openapi::api::autoscaling::v2::MetricTarget {
                type_: "Utilization".to_string(),
                average_utilization: Some(pct),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

/// What the HPA row shows, in upstream's internal (v2-shaped) form.
struct Internal<'a> {
    meta: &'a ObjectMeta,
    target: CrossVersionObjectReference,
    specs: Vec<MetricSpec>,
    statuses: Vec<MetricStatus>,
    min_replicas: Option<i32>,
    max_replicas: i32,
    current_replicas: i32,
}

impl Internal<'_> {
    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        // Both API versions default minReplicas to 1.
        let min_pods = self.min_replicas.unwrap_or(1).to_string();
        vec![
            json!(self.meta.name.as_deref().unwrap_or("")),
            json!(format!("{}/{}", self.target.kind, self.target.name)),
            json!(format_hpa_metrics(&self.specs, &self.statuses)),
            json!(min_pods),
            json!(self.max_replicas),
            json!(self.current_replicas),
            json!(translate_timestamp_since(
                self.meta.creation_timestamp.as_ref(),
                now
            )),
        ]
    }
}

impl Printer for HorizontalPodAutoscaler {
    fn columns() -> &'static [Column] {
        COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        let mut specs = spec.and_then(|s| s.metrics.clone()).unwrap_or_default();
        // autoscaling/v2 defaults an empty metric list to 80% CPU utilization.
        if specs.is_empty() {
            specs.push(default_cpu_metric());
        }
        Internal {
            meta: &self.metadata,
            target: spec.map(|s| s.scale_target_ref.clone()).unwrap_or_default(),
            specs,
            statuses: status
                .and_then(|s| s.current_metrics.clone())
                .unwrap_or_default(),
            min_replicas: spec.and_then(|s| s.min_replicas),
            max_replicas: spec.map_or(0, |s| s.max_replicas),
            current_replicas: status.and_then(|s| s.current_replicas).unwrap_or(0),
        }
        .row(now)
    }
}

/// `Convert_v1_MetricSpec_To_autoscaling_MetricSpec` on the JSON of one annotation entry,
/// producing v2 JSON. Required quantities that are missing read as Go's zero quantity, "0".
fn v1_metric_spec_to_v2(m: &Value) -> Value {
    let zero = json!("0");
    let get = |v: &Value, k: &str| v.get(k).cloned();
    let type_ = m.get("type").cloned().unwrap_or(json!(""));
    let mut out = Map::new();
    out.insert("type".into(), type_);
    if let Some(o) = m.get("object") {
        let avg = get(o, "averageValue");
        let target_type = if avg.is_some() {
            "AverageValue"
        } else {
            "Value"
        };
        let mut target =
            json!({"type": target_type, "value": get(o, "targetValue").unwrap_or(zero.clone())});
        if let Some(avg) = avg {
            target["averageValue"] = avg;
        }
        out.insert(
            "object".into(),
            json!({
                "describedObject": get(o, "target").unwrap_or(json!({"kind": "", "name": ""})),
                "metric": metric_identifier(get(o, "metricName"), get(o, "selector")),
                "target": target,
            }),
        );
    }
    if let Some(p) = m.get("pods") {
        out.insert(
            "pods".into(),
            json!({
                "metric": metric_identifier(get(p, "metricName"), get(p, "selector")),
                "target": {"type": "AverageValue", "averageValue": get(p, "targetAverageValue").unwrap_or(zero.clone())},
            }),
        );
    }
    for (v1_key, v2_key) in [
        ("resource", "resource"),
        ("containerResource", "containerResource"),
    ] {
        if let Some(r) = m.get(v1_key) {
            let utilization = get(r, "targetAverageUtilization");
            let mut target =
                json!({"type": if utilization.is_some() { "Utilization" } else { "AverageValue" }});
            if let Some(u) = utilization {
                target["averageUtilization"] = u;
            }
            if let Some(avg) = get(r, "targetAverageValue") {
                target["averageValue"] = avg;
            }
            let mut source = json!({"name": get(r, "name").unwrap_or(json!("")), "target": target});
            if v2_key == "containerResource" {
                source["container"] = get(r, "container").unwrap_or(json!(""));
            }
            out.insert(v2_key.into(), source);
        }
    }
    if let Some(e) = m.get("external") {
        let avg = get(e, "targetAverageValue");
        let mut target = json!({"type": if avg.is_some() { "AverageValue" } else { "Value" }});
        if let Some(v) = get(e, "targetValue") {
            target["value"] = v;
        }
        if let Some(avg) = avg {
            target["averageValue"] = avg;
        }
        out.insert(
            "external".into(),
            json!({"metric": metric_identifier(get(e, "metricName"), get(e, "metricSelector")), "target": target}),
        );
    }
    Value::Object(out)
}

/// `Convert_v1_MetricStatus_To_autoscaling_MetricStatus` on the JSON of one annotation
/// entry, producing v2 JSON.
fn v1_metric_status_to_v2(m: &Value) -> Value {
    let zero = json!("0");
    let get = |v: &Value, k: &str| v.get(k).cloned();
    let mut out = Map::new();
    out.insert("type".into(), m.get("type").cloned().unwrap_or(json!("")));
    if let Some(o) = m.get("object") {
        let mut current = json!({"value": get(o, "currentValue").unwrap_or(zero.clone())});
        if let Some(avg) = get(o, "averageValue") {
            current["averageValue"] = avg;
        }
        out.insert(
            "object".into(),
            json!({
                "describedObject": get(o, "target").unwrap_or(json!({"kind": "", "name": ""})),
                "metric": metric_identifier(get(o, "metricName"), get(o, "selector")),
                "current": current,
            }),
        );
    }
    if let Some(p) = m.get("pods") {
        out.insert(
            "pods".into(),
            json!({
                "metric": metric_identifier(get(p, "metricName"), get(p, "selector")),
                "current": {"averageValue": get(p, "currentAverageValue").unwrap_or(zero.clone())},
            }),
        );
    }
    for key in ["resource", "containerResource"] {
        if let Some(r) = m.get(key) {
            let mut current =
                json!({"averageValue": get(r, "currentAverageValue").unwrap_or(zero.clone())});
            if let Some(u) = get(r, "currentAverageUtilization") {
                current["averageUtilization"] = u;
            }
            let mut source =
                json!({"name": get(r, "name").unwrap_or(json!("")), "current": current});
            if key == "containerResource" {
                source["container"] = get(r, "container").unwrap_or(json!(""));
            }
            out.insert(key.into(), source);
        }
    }
    if let Some(e) = m.get("external") {
        let mut current = json!({"value": get(e, "currentValue").unwrap_or(zero.clone())});
        if let Some(avg) = get(e, "currentAverageValue") {
            current["averageValue"] = avg;
        }
        out.insert(
            "external".into(),
            json!({"metric": metric_identifier(get(e, "metricName"), get(e, "metricSelector")), "current": current}),
        );
    }
    Value::Object(out)
}

fn metric_identifier(name: Option<Value>, selector: Option<Value>) -> Value {
    let mut id = json!({"name": name.unwrap_or(json!(""))});
    if let Some(sel) = selector {
        id["selector"] = sel;
    }
    id
}

/// Decodes a v1 metrics annotation into v2 form; `None` when it is not a valid list, in
/// which case upstream ignores the annotation.
fn annotation_metrics<T: serde::de::DeserializeOwned>(
    meta: &ObjectMeta,
    key: &str,
    convert: fn(&Value) -> Value,
) -> Option<Vec<T>> {
    let raw = meta.annotations.as_ref()?.get(key)?;
    let entries: Vec<Value> = serde_json::from_str(raw).ok()?;
    entries
        .iter()
        .map(|e| serde_json::from_value(convert(e)).ok())
        .collect()
}

impl Printer for v1::HorizontalPodAutoscaler {
    fn columns() -> &'static [Column] {
        COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        let mut specs: Vec<MetricSpec> = annotation_metrics(
            &self.metadata,
            METRIC_SPECS_ANNOTATION,
            v1_metric_spec_to_v2,
        )
        .unwrap_or_default();
        if let Some(pct) = spec.and_then(|s| s.target_cpu_utilization_percentage) {
            specs.push(cpu_utilization_metric(pct));
        }
        // Stored as v2, an HPA without metrics reads back with the v2 default.
        if specs.is_empty() {
            specs.push(default_cpu_metric());
        }
        let statuses: Vec<MetricStatus> = match annotation_metrics(
            &self.metadata,
            METRIC_STATUSES_ANNOTATION,
            v1_metric_status_to_v2,
        ) {
            Some(statuses) => statuses,
            None => status
                .and_then(|s| s.current_cpu_utilization_percentage)
                .map(|pct| {
                    vec![MetricStatus {
                        type_: "Resource".to_string(),
                        resource: Some(k8s_openapi::api::autoscaling::v2::ResourceMetricStatus {
                            name: "cpu".to_string(),
                            current: k8s_openapi::api::autoscaling::v2::MetricValueStatus {
                                average_utilization: Some(pct),
                                ..Default::default()
                            },
                        }),
                        ..Default::default()
                    }]
                })
                .unwrap_or_default(),
        };
        let target = spec
            .map(|s| CrossVersionObjectReference {
                api_version: s.scale_target_ref.api_version.clone(),
                kind: s.scale_target_ref.kind.clone(),
                name: s.scale_target_ref.name.clone(),
            })
            .unwrap_or_default();
        Internal {
            meta: &self.metadata,
            target,
            specs,
            statuses,
            min_replicas: spec.and_then(|s| s.min_replicas),
            max_replicas: spec.map_or(0, |s| s.max_replicas),
            current_replicas: status.map_or(0, |s| s.current_replicas),
        }
        .row(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde::de::DeserializeOwned;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn obj<T: DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("fixture")
    }

    fn targets(metrics: Value, current: Value) -> String {
        let hpa: HorizontalPodAutoscaler = obj(json!({"metadata": {"name": "some-hpa"},
            "spec": {"scaleTargetRef": {"kind": "ReplicationController", "name": "some-rc"}, "minReplicas": 2,
                "maxReplicas": 10, "metrics": metrics},
            "status": {"currentReplicas": 4, "desiredReplicas": 5, "currentMetrics": current}}));
        let row = hpa.row(now());
        assert_eq!(row[1], json!("ReplicationController/some-rc"));
        assert_eq!(
            row[3..],
            [json!("2"), json!(10), json!(4), json!("<unknown>")]
        );
        row[2].as_str().unwrap_or_default().to_string()
    }

    #[test]
    fn hpa_targets_match_upstream() {
        // Cases and expected TARGETS from upstream's TestPrintHPA.
        let ext_avg = json!([{"type": "External", "external": {"metric": {"name": "some-external-metric"},
            "target": {"type": "AverageValue", "averageValue": "100m"}}}]);
        assert_eq!(targets(ext_avg.clone(), json!([])), "<unknown>/100m (avg)");
        assert_eq!(
            targets(
                ext_avg,
                json!([{"type": "External", "external": {"metric": {"name": "some-external-metric"},
                "current": {"averageValue": "50m"}}}])
            ),
            "50m/100m (avg)"
        );
        let ext_val = json!([{"type": "External", "external": {"metric": {"name": "some-service-metric"},
            "target": {"type": "Value", "value": "100m"}}}]);
        assert_eq!(targets(ext_val.clone(), json!([])), "<unknown>/100m");
        assert_eq!(
            targets(
                ext_val,
                json!([{"type": "External", "external": {"metric": {"name": "m"}, "current": {"value": "50m"}}}])
            ),
            "50m/100m"
        );
        let pods = json!([{"type": "Pods", "pods": {"metric": {"name": "some-pods-metric"},
            "target": {"type": "AverageValue", "averageValue": "100m"}}}]);
        assert_eq!(targets(pods.clone(), json!([])), "<unknown>/100m");
        assert_eq!(
            targets(
                pods,
                json!([{"type": "Pods", "pods": {"metric": {"name": "some-pods-metric"}, "current": {"averageValue": "50m"}}}])
            ),
            "50m/100m"
        );
        let object = json!([{"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "some-service"},
            "metric": {"name": "some-service-metric"}, "target": {"type": "Value", "value": "100m"}}}]);
        assert_eq!(targets(object.clone(), json!([])), "<unknown>/100m");
        assert_eq!(
            targets(
                object,
                json!([{"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "some-service"},
                "metric": {"name": "some-service-metric"}, "current": {"value": "50m"}}}])
            ),
            "50m/100m"
        );
        let cpu_val = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "100m"}}}]);
        assert_eq!(targets(cpu_val.clone(), json!([])), "cpu: <unknown>/100m");
        assert_eq!(
            targets(
                cpu_val,
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "50m"}}}])
            ),
            "cpu: 50m/100m"
        );
        let cpu_util = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]);
        assert_eq!(targets(cpu_util.clone(), json!([])), "cpu: <unknown>/80%");
        assert_eq!(
            targets(
                cpu_util,
                json!([{"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": 50, "averageValue": "40m"}}}])
            ),
            "cpu: 50%/80%"
        );
        let container_util = json!([{"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "application",
            "target": {"type": "Utilization", "averageUtilization": 80}}}]);
        assert_eq!(
            targets(container_util.clone(), json!([])),
            "cpu: <unknown>/80%"
        );
        assert_eq!(
            targets(
                container_util,
                json!([{"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "application",
                "current": {"averageUtilization": 50, "averageValue": "40m"}}}])
            ),
            "cpu: 50%/80%"
        );
        let multiple = json!([
            {"type": "Pods", "pods": {"metric": {"name": "some-pods-metric"}, "target": {"type": "AverageValue", "averageValue": "100m"}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
            {"type": "Pods", "pods": {"metric": {"name": "other-pods-metric"}, "target": {"type": "AverageValue", "averageValue": "400m"}}}]);
        assert_eq!(
            targets(
                multiple,
                json!([
                {"type": "Pods", "pods": {"metric": {"name": "some-pods-metric"}, "current": {"averageValue": "50m"}}},
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 50, "averageValue": "40m"}}}])
            ),
            "50m/100m, cpu: 50%/80% + 1 more..."
        );
        assert_eq!(format_hpa_metrics(&[], &[]), "<none>");
    }

    #[test]
    fn hpa_defaults() {
        // `kubectl autoscale deployment web --max=5`: no metrics and no minReplicas read back as
        // the v2 defaults, as `kubectl get hpa` shows them.
        let hpa: HorizontalPodAutoscaler = obj(json!({"metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}}));
        assert_eq!(
            hpa.row(now()),
            vec![
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: <unknown>/80%"),
                json!("1"),
                json!(5),
                json!(0),
                json!("<unknown>")
            ]
        );
        assert_eq!(
            HorizontalPodAutoscaler::default().row(now()).len(),
            COLUMNS.len()
        );
    }

    #[test]
    fn v1_hpas_convert_like_upstream() {
        // The seed's `kubectl get hpa`: an autoscaling/v1 HPA with a 90% CPU target.
        let hpa: v1::HorizontalPodAutoscaler = obj(json!({"metadata": {"name": "php-apache"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "php-apache"}, "minReplicas": 1, "maxReplicas": 10,
                "targetCPUUtilizationPercentage": 90},
            "status": {"currentReplicas": 1, "desiredReplicas": 1}}));
        assert_eq!(
            hpa.row(now()),
            vec![
                json!("php-apache"),
                json!("Deployment/php-apache"),
                json!("cpu: <unknown>/90%"),
                json!("1"),
                json!(10),
                json!(1),
                json!("<unknown>")
            ]
        );
        let measured: v1::HorizontalPodAutoscaler = obj(json!({"metadata": {"name": "php-apache"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "php-apache"}, "maxReplicas": 10,
                "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 3, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 42}}));
        assert_eq!(
            measured.row(now())[2..4],
            [json!("cpu: 42%/50%"), json!("1")]
        );
        // Metrics v1 cannot express live in annotations and come before the CPU target.
        let annotated: v1::HorizontalPodAutoscaler = obj(
            json!({"metadata": {"name": "a", "annotations": {
                METRIC_SPECS_ANNOTATION: r#"[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"100"}}]"#,
                METRIC_STATUSES_ANNOTATION: r#"[{"type":"Pods","pods":{"metricName":"qps","currentAverageValue":"20"}}]"#}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 3, "targetCPUUtilizationPercentage": 70},
            "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 10}}),
        );
        assert_eq!(annotated.row(now())[2], json!("20/100, cpu: <unknown>/70%"));
        let broken: v1::HorizontalPodAutoscaler = obj(json!({"metadata": {"name": "b",
                "annotations": {METRIC_SPECS_ANNOTATION: "not json"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "b"}, "maxReplicas": 3}}));
        assert_eq!(broken.row(now())[2], json!("cpu: <unknown>/80%"));
    }
}
