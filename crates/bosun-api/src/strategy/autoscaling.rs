//! HorizontalPodAutoscalers (autoscaling/v1 and v2): upstream's defaults and validation.
//! Upstream validates the internal (v2-shaped) object, so v1 errors carry v2 paths.

use k8s_openapi::api::autoscaling::{v1 as v1hpa, v2};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::common::{p, s};
use super::qty;
use super::Strategy;
use crate::field::{FieldError, FieldErrorList, Path};
use crate::names;

/// Upstream's `DefaultCPUUtilization`.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;
const MAX_STABILIZATION_WINDOW_SECONDS: i32 = 3600;
const MAX_PERIOD_SECONDS: i32 = 1800;

fn validate_cross_version_ref(kind: &str, name: &str, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    } else {
        for m in names::is_valid_path_segment_name(kind) {
            errs.push(FieldError::invalid(&path.child("kind"), kind, m));
        }
    }
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        for m in names::is_valid_path_segment_name(name) {
            errs.push(FieldError::invalid(&path.child("name"), name, m));
        }
    }
    errs
}

fn validate_replicas(min: Option<i32>, max: i32, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if let Some(m) = min {
        if m < 1 {
            errs.push(FieldError::invalid(
                &path.child("minReplicas"),
                m,
                "must be greater than or equal to 1",
            ));
        }
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            &path.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            &path.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errs
}

fn positive(q: &Quantity) -> bool {
    qty::parse(&q.0).is_some_and(|v| v.sign() > 0)
}

fn validate_metric_target(t: &v2::MetricTarget, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if t.type_.is_empty() {
        errs.push(FieldError::required(
            &path.child("type"),
            "must specify a metric target type",
        ));
    }
    if !["Utilization", "Value", "AverageValue"].contains(&t.type_.as_str()) {
        errs.push(FieldError::invalid(
            &path.child("type"),
            t.type_.as_str(),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    if let Some(v) = t.value.as_ref().filter(|v| !positive(v)) {
        errs.push(FieldError::invalid(
            &path.child("value"),
            qty::display(&v.0),
            "must be positive",
        ));
    }
    if let Some(v) = t.average_value.as_ref().filter(|v| !positive(v)) {
        errs.push(FieldError::invalid(
            &path.child("averageValue"),
            qty::display(&v.0),
            "must be positive",
        ));
    }
    if let Some(u) = t.average_utilization.filter(|u| *u < 1) {
        errs.push(FieldError::invalid(
            &path.child("averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
    errs
}

fn validate_metric_identifier(id: &v2::MetricIdentifier, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if id.name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "must specify a metric name",
        ));
    } else {
        for m in names::is_valid_path_segment_name(&id.name) {
            errs.push(FieldError::invalid(
                &path.child("name"),
                id.name.as_str(),
                m,
            ));
        }
    }
    errs.extend(names::validate_label_selector(
        id.selector.as_ref(),
        &path.child("selector"),
    ));
    errs
}

fn validate_resource_target(name: &str, target: &v2::MetricTarget, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "must specify a resource name",
        ));
    }
    let tp = path.child("target");
    errs.extend(validate_metric_target(target, &tp));
    if target.average_utilization.is_none() && target.average_value.is_none() {
        errs.push(FieldError::required(
            &tp.child("averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if target.average_utilization.is_some() && target.average_value.is_some() {
        errs.push(FieldError::forbidden(
            &tp.child("averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
    errs
}

fn validate_metric_spec(m: &v2::MetricSpec, path: &Path) -> FieldErrorList {
    const TYPES: &[&str] = &[
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ];
    let mut errs = Vec::new();
    if m.type_.is_empty() {
        errs.push(FieldError::required(
            &path.child("type"),
            "must specify a metric source type",
        ));
    }
    if !TYPES.contains(&m.type_.as_str()) {
        errs.push(FieldError::not_supported(
            &path.child("type"),
            m.type_.as_str(),
            TYPES,
        ));
    }
    let mut present: Vec<&str> = Vec::new();
    if let Some(o) = m.object.as_ref() {
        present.push("object");
        if present.len() == 1 {
            let op = path.child("object");
            errs.extend(validate_cross_version_ref(
                &o.described_object.kind,
                &o.described_object.name,
                &op.child("describedObject"),
            ));
            errs.extend(validate_metric_identifier(&o.metric, &op.child("metric")));
            errs.extend(validate_metric_target(&o.target, &op.child("target")));
            if o.target.value.is_none() && o.target.average_value.is_none() {
                errs.push(FieldError::required(
                    &op.child("target").child("averageValue"),
                    "must set either a target value or averageValue",
                ));
            }
        }
    }
    if let Some(pm) = m.pods.as_ref() {
        present.push("pods");
        if present.len() == 1 {
            let pp = path.child("pods");
            errs.extend(validate_metric_identifier(&pm.metric, &pp.child("metric")));
            errs.extend(validate_metric_target(&pm.target, &pp.child("target")));
            if pm.target.average_value.is_none() {
                errs.push(FieldError::required(
                    &pp.child("target").child("averageValue"),
                    "must specify a positive target averageValue",
                ));
            }
        }
    }
    if let Some(r) = m.resource.as_ref() {
        present.push("resource");
        if present.len() == 1 {
            errs.extend(validate_resource_target(
                &r.name,
                &r.target,
                &path.child("resource"),
            ));
        }
    }
    if let Some(e) = m.external.as_ref() {
        present.push("external");
        if present.len() == 1 {
            let ep = path.child("external");
            errs.extend(validate_metric_identifier(&e.metric, &ep.child("metric")));
            errs.extend(validate_metric_target(&e.target, &ep.child("target")));
            if e.target.value.is_none() && e.target.average_value.is_none() {
                errs.push(FieldError::required(
                    &ep.child("target").child("averageValue"),
                    "must set either a target value for metric or a per-pod target",
                ));
            }
        }
    }
    if let Some(c) = m.container_resource.as_ref() {
        present.push("containerResource");
        if present.len() == 1 {
            let cp = path.child("containerResource");
            errs.extend(validate_resource_target(&c.name, &c.target, &cp));
            if c.container.is_empty() {
                errs.push(FieldError::required(
                    &cp.child("container"),
                    "must specify a container",
                ));
            } else {
                errs.extend(names::validate_dns1123_label(
                    &c.container,
                    &cp.child("container"),
                ));
            }
        }
    }
    let mut expected = m.type_.clone();
    if let Some(first) = expected.get_mut(0..1) {
        first.make_ascii_lowercase();
    }
    if !present.contains(&expected.as_str()) {
        errs.push(FieldError::required(
            &path.child(&expected),
            "must populate information for the given metric source",
        ));
    }
    if present.len() != 1 {
        for other in present.iter().filter(|t| **t != expected) {
            errs.push(FieldError::forbidden(
                &path.child(other),
                "must populate the given metric source only",
            ));
        }
    }
    errs
}

fn validate_scaling_rules(rules: Option<&v2::HPAScalingRules>, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    let Some(r) = rules else {
        return errs;
    };
    if let Some(w) = r.stabilization_window_seconds {
        if w < 0 {
            errs.push(FieldError::invalid(
                &path.child("stabilizationWindowSeconds"),
                w,
                "must be greater than or equal to zero",
            ));
        }
        if w > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.push(FieldError::invalid(
                &path.child("stabilizationWindowSeconds"),
                w,
                format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }
    let select = s(&r.select_policy);
    if !["", "Max", "Min", "Disabled"].contains(&select) {
        errs.push(FieldError::not_supported(
            &path.child("selectPolicy"),
            select,
            &["Disabled", "Max", "Min"],
        ));
    }
    let policies = r.policies.as_deref().unwrap_or_default();
    if policies.is_empty() && select != "Disabled" {
        errs.push(FieldError::required(
            &path.child("policies"),
            "must specify at least one Policy",
        ));
    }
    for (i, pol) in policies.iter().enumerate() {
        let pp = path.child("policies").index(i);
        if pol.type_ != "Pods" && pol.type_ != "Percent" {
            errs.push(FieldError::not_supported(
                &pp.child("type"),
                pol.type_.as_str(),
                &["Percent", "Pods"],
            ));
        }
        if pol.value <= 0 {
            errs.push(FieldError::invalid(
                &pp.child("value"),
                pol.value,
                "must be greater than zero",
            ));
        }
        if pol.period_seconds <= 0 {
            errs.push(FieldError::invalid(
                &pp.child("periodSeconds"),
                pol.period_seconds,
                "must be greater than zero",
            ));
        }
        if pol.period_seconds > MAX_PERIOD_SECONDS {
            errs.push(FieldError::invalid(
                &pp.child("periodSeconds"),
                pol.period_seconds,
                format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            ));
        }
    }
    if let Some(t) = r.tolerance.as_ref() {
        if qty::parse(&t.0).is_some_and(|v| v.sign() < 0) {
            errs.push(FieldError::invalid(
                &path.child("tolerance"),
                qty::display(&t.0),
                "must be greater than or equal to zero",
            ));
        }
    }
    errs
}

fn validate_v2_spec(spec: &v2::HorizontalPodAutoscalerSpec) -> FieldErrorList {
    let sp = p("spec");
    let mut errs = validate_replicas(spec.min_replicas, spec.max_replicas, &sp);
    errs.extend(validate_cross_version_ref(
        &spec.scale_target_ref.kind,
        &spec.scale_target_ref.name,
        &sp.child("scaleTargetRef"),
    ));
    for (i, m) in spec.metrics.iter().flatten().enumerate() {
        errs.extend(validate_metric_spec(m, &sp.child("metrics").index(i)));
    }
    if let Some(b) = spec.behavior.as_ref() {
        let bp = sp.child("behavior");
        errs.extend(validate_scaling_rules(
            b.scale_up.as_ref(),
            &bp.child("scaleUp"),
        ));
        errs.extend(validate_scaling_rules(
            b.scale_down.as_ref(),
            &bp.child("scaleDown"),
        ));
    }
    errs
}

fn scale_up_defaults() -> v2::HPAScalingRules {
    v2::HPAScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: Some("Max".into()),
        policies: Some(vec![
            v2::HPAScalingPolicy {
                type_: "Pods".into(),
                value: 4,
                period_seconds: 15,
            },
            v2::HPAScalingPolicy {
                type_: "Percent".into(),
                value: 100,
                period_seconds: 15,
            },
        ]),
        tolerance: None,
    }
}

fn scale_down_defaults() -> v2::HPAScalingRules {
    v2::HPAScalingRules {
        stabilization_window_seconds: None,
        select_policy: Some("Max".into()),
        policies: Some(vec![v2::HPAScalingPolicy {
            type_: "Percent".into(),
            value: 100,
            period_seconds: 15,
        }]),
        tolerance: None,
    }
}

/// `copyHPAScalingRules`: what the user set wins over the defaults.
fn merge_rules(
    from: Option<v2::HPAScalingRules>,
    mut to: v2::HPAScalingRules,
) -> v2::HPAScalingRules {
    if let Some(f) = from {
        if f.select_policy.is_some() {
            to.select_policy = f.select_policy;
        }
        if f.stabilization_window_seconds.is_some() {
            to.stabilization_window_seconds = f.stabilization_window_seconds;
        }
        if f.policies.is_some() {
            to.policies = f.policies;
        }
        if f.tolerance.is_some() {
            to.tolerance = f.tolerance;
        }
    }
    to
}

impl Strategy for v2::HorizontalPodAutoscaler {
    fn prepare_for_create(&mut self) {
        self.status = Some(v2::HorizontalPodAutoscalerStatus::default());
    }

    fn set_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        spec.min_replicas.get_or_insert(1);
        if spec.metrics.as_ref().is_none_or(|m| m.is_empty()) {
            spec.metrics = Some(vec![v2::MetricSpec {
                type_: "Resource".into(),
                resource: Some(v2::ResourceMetricSource {
                    name: "cpu".into(),
                    target: v2::MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]);
        }
        if let Some(b) = spec.behavior.as_mut() {
            b.scale_up = Some(merge_rules(b.scale_up.take(), scale_up_defaults()));
            b.scale_down = Some(merge_rules(b.scale_down.take(), scale_down_defaults()));
        }
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_v2_spec(&self.spec.clone().unwrap_or_default()));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
    }

    fn validate_status_update(&self, _old: &Self) -> FieldErrorList {
        let st = self.status.clone().unwrap_or_default();
        let mut errs = names::validate_nonnegative(
            i64::from(st.current_replicas.unwrap_or(0)),
            &p("status").child("currentReplicas"),
        );
        errs.extend(names::validate_nonnegative(
            i64::from(st.desired_replicas),
            &p("status").child("desiredReplicas"),
        ));
        errs
    }

    fn has_generation() -> bool {
        false
    }
}

/// A v1 HPA's spec in the v2 shape upstream validates.
fn v1_as_v2(spec: &v1hpa::HorizontalPodAutoscalerSpec) -> v2::HorizontalPodAutoscalerSpec {
    v2::HorizontalPodAutoscalerSpec {
        min_replicas: spec.min_replicas,
        max_replicas: spec.max_replicas,
        scale_target_ref: v2::CrossVersionObjectReference {
            api_version: spec.scale_target_ref.api_version.clone(),
            kind: spec.scale_target_ref.kind.clone(),
            name: spec.scale_target_ref.name.clone(),
        },
        metrics: spec.target_cpu_utilization_percentage.map(|t| {
            vec![v2::MetricSpec {
                type_: "Resource".into(),
                resource: Some(v2::ResourceMetricSource {
                    name: "cpu".into(),
                    target: v2::MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(t),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]
        }),
        behavior: None,
    }
}

impl Strategy for v1hpa::HorizontalPodAutoscaler {
    fn prepare_for_create(&mut self) {
        self.status = Some(v1hpa::HorizontalPodAutoscalerStatus::default());
    }

    fn set_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        spec.min_replicas.get_or_insert(1);
        // Stored as v2, where a missing metric defaults to 80% CPU; read back as v1 that is
        // the target utilization.
        spec.target_cpu_utilization_percentage
            .get_or_insert(DEFAULT_CPU_UTILIZATION);
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_v2_spec(&v1_as_v2(
            &self.spec.clone().unwrap_or_default(),
        )));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
    }

    fn validate_status_update(&self, _old: &Self) -> FieldErrorList {
        let st = self.status.clone().unwrap_or_default();
        let mut errs = names::validate_nonnegative(
            i64::from(st.current_replicas),
            &p("status").child("currentReplicas"),
        );
        errs.extend(names::validate_nonnegative(
            i64::from(st.desired_replicas),
            &p("status").child("desiredReplicas"),
        ));
        errs
    }

    fn has_generation() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: &FieldErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn seed_v1_hpa() {
        let mut h: v1hpa::HorizontalPodAutoscaler = serde_json::from_value(json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "php-apache", "namespace": "default"},
            "spec": {"maxReplicas": 10, "minReplicas": 1, "scaleTargetRef": {"kind": "Deployment", "name": "php-apache"}, "targetCPUUtilizationPercentage": 90}
        }))
        .unwrap_or_default();
        h.set_defaults();
        h.prepare_for_create();
        assert_eq!(
            serde_json::to_value(&h).unwrap_or_default()["status"],
            json!({"currentReplicas": 0, "desiredReplicas": 0})
        );
        assert!(h.validate().is_empty(), "{:?}", messages(&h.validate()));
        if let Some(sp) = h.spec.as_mut() {
            sp.min_replicas = Some(5);
            sp.max_replicas = 2;
            sp.target_cpu_utilization_percentage = Some(0);
        }
        assert_eq!(
            messages(&h.validate()),
            vec![
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            ]
        );
    }

    #[test]
    fn v2_defaults_metric_and_behavior() {
        let mut h: v2::HorizontalPodAutoscaler = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"maxReplicas": 0, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}
        }))
        .unwrap_or_default();
        h.set_defaults();
        let v = serde_json::to_value(&h).unwrap_or_default();
        assert_eq!(v["spec"]["minReplicas"], 1);
        assert_eq!(
            v["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
        );
        assert_eq!(
            v["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            60
        );
        assert_eq!(
            v["spec"]["behavior"]["scaleUp"]["policies"][0],
            json!({"type": "Pods", "value": 4, "periodSeconds": 15})
        );
        assert_eq!(
            messages(&h.validate()),
            vec![
                "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`",
            ]
        );
    }
}
