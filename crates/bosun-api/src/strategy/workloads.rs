//! Pod controllers: ReplicationController, ReplicaSet, Deployment, DaemonSet, StatefulSet —
//! upstream's defaults (`core/v1`, `apps/v1`), validation (`ValidateReplicationController`,
//! `apps/validation`) and the strategies' create/update rules.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetStatus, DaemonSetUpdateStrategy, Deployment, DeploymentStatus,
    DeploymentStrategy, ReplicaSet, ReplicaSetStatus, RollingUpdateDaemonSet,
    RollingUpdateDeployment, RollingUpdateStatefulSetStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetStatus, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    PodTemplateSpec, ReplicationController, ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::common::{
    immutable, int_or_percent_value, jv, map_selector_matches, not_more_than_100_percent, p, s,
    validate_positive_int_or_percent, Selector,
};
use super::pod::{default_pod_template, template_labels, validate_pod_template_spec};
use super::Strategy;
use crate::field::{FieldError, FieldErrorList, Path};
use crate::names::{self, validate_nonnegative};

/// The annotation that carries a DaemonSet's template generation in apps/v1.
pub const DAEMONSET_TEMPLATE_GENERATION_ANNOTATION: &str =
    "deprecated.daemonset.template.generation";

/// An apps/v1 selector as upstream sees it: the typed view cannot tell a missing selector
/// from `{}`, and a missing one is by far the commoner mistake, so an empty one counts as nil.
fn apps_selector(sel: &LabelSelector) -> Option<&LabelSelector> {
    let empty = sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty());
    if empty {
        None
    } else {
        Some(sel)
    }
}

/// The selector checks every apps/v1 controller shares; `what` names the kind in
/// upstream's "empty selector is invalid for ..." message.
fn validate_apps_selector(sel: &LabelSelector, path: &Path) -> FieldErrorList {
    match apps_selector(sel) {
        None => vec![FieldError::required(&path.child("selector"), "")],
        Some(sel) => names::validate_label_selector(Some(sel), &path.child("selector")),
    }
}

/// `` `selector` does not match template `labels` `` when it does not.
fn selector_mismatch(
    selector: &Selector,
    template: &PodTemplateSpec,
    path: &Path,
) -> FieldErrorList {
    if !selector.is_empty() && !selector.matches(template_labels(template)) {
        vec![FieldError::invalid(
            &path.child("metadata").child("labels"),
            jv(&template_labels(template).cloned().unwrap_or_default()),
            "`selector` does not match template `labels`",
        )]
    } else {
        Vec::new()
    }
}

/// Restart policy `Always` and no `activeDeadlineSeconds`, as every long-running controller
/// requires of its template; `kind` goes into upstream's message.
fn long_running_template_rules(
    template: &PodTemplateSpec,
    kind: &str,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let spec = template.spec.as_ref();
    let rp = spec.map(|sp| s(&sp.restart_policy)).unwrap_or("");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &path.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if spec.and_then(|sp| sp.active_deadline_seconds).is_some() {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

/// `ValidatePodTemplateSpecForReplicaSet` (used by ReplicaSet and Deployment).
fn validate_template_for_replica_set(
    template: &PodTemplateSpec,
    selector: &Selector,
    path: &Path,
) -> FieldErrorList {
    let mut errs = selector_mismatch(selector, template, path);
    errs.extend(validate_pod_template_spec(template, path));
    errs.extend(long_running_template_rules(template, "ReplicaSet", path));
    errs
}

/// The selector of an apps/v1 object converted as upstream does, with the "invalid label
/// selector" error when it does not convert.
fn converted_selector(
    sel: &LabelSelector,
    path: &Path,
    errs: &mut FieldErrorList,
) -> Option<Selector> {
    let converted = Selector::from(apps_selector(sel));
    if matches!(converted, Selector::Invalid) {
        errs.push(FieldError::invalid(
            &path.child("selector"),
            jv(sel),
            "invalid label selector",
        ));
        None
    } else {
        Some(converted)
    }
}

// ------------------------------------------------------------------ ReplicationController

impl Strategy for ReplicationController {
    fn prepare_for_create(&mut self) {
        self.status = Some(ReplicationControllerStatus::default());
    }

    fn set_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        if let Some(labels) = spec.template.as_ref().and_then(template_labels).cloned() {
            if spec.selector.as_ref().is_none_or(|m| m.is_empty()) {
                spec.selector = Some(labels.clone());
            }
            if self.metadata.labels.as_ref().is_none_or(|m| m.is_empty()) {
                self.metadata.labels = Some(labels);
            }
        }
        spec.replicas.get_or_insert(1);
        if let Some(t) = spec.template.as_mut() {
            default_pod_template(t);
        }
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_rc_spec(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
    }

    fn validate_status_update(&self, _old: &Self) -> FieldErrorList {
        let st = self.status.clone().unwrap_or_default();
        replica_status_errors(
            st.replicas,
            st.fully_labeled_replicas.unwrap_or(0),
            st.ready_replicas.unwrap_or(0),
            st.available_replicas.unwrap_or(0),
            st.observed_generation.unwrap_or(0),
        )
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![(
            "status.replicas",
            self.status
                .as_ref()
                .map(|st| st.replicas)
                .unwrap_or(0)
                .to_string(),
        )]
    }
}

fn validate_rc_spec(rc: &ReplicationController) -> FieldErrorList {
    let sp = p("spec");
    let spec = rc.spec.clone().unwrap_or_default();
    let mut errs = validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &sp.child("minReadySeconds"),
    );
    let selector = spec.selector.clone().unwrap_or_default();
    if selector.is_empty() {
        errs.push(FieldError::required(&sp.child("selector"), ""));
    }
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        &sp.child("replicas"),
    ));
    let tp = sp.child("template");
    match spec.template.as_ref() {
        None => errs.push(FieldError::required(&tp, "")),
        Some(t) => {
            if !selector.is_empty() && !map_selector_matches(&selector, template_labels(t)) {
                errs.push(FieldError::invalid(
                    &tp.child("metadata").child("labels"),
                    jv(&template_labels(t).cloned().unwrap_or_default()),
                    "`selector` does not match template `labels`",
                ));
            }
            errs.extend(validate_pod_template_spec(t, &tp));
            errs.extend(long_running_template_rules(t, "ReplicationController", &tp));
        }
    }
    errs
}

fn replica_status_errors(
    replicas: i32,
    fully_labeled: i32,
    ready: i32,
    available: i32,
    observed_generation: i64,
) -> FieldErrorList {
    let st = p("status");
    let mut errs = Vec::new();
    for (name, v) in [
        ("replicas", replicas),
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ] {
        errs.extend(validate_nonnegative(i64::from(v), &st.child(name)));
    }
    errs.extend(validate_nonnegative(
        observed_generation,
        &st.child("observedGeneration"),
    ));
    let msg = "cannot be greater than status.replicas";
    if fully_labeled > replicas {
        errs.push(FieldError::invalid(
            &st.child("fullyLabeledReplicas"),
            fully_labeled,
            msg,
        ));
    }
    if ready > replicas {
        errs.push(FieldError::invalid(&st.child("readyReplicas"), ready, msg));
    }
    if available > replicas {
        errs.push(FieldError::invalid(
            &st.child("availableReplicas"),
            available,
            msg,
        ));
    }
    if available > ready {
        errs.push(FieldError::invalid(
            &st.child("availableReplicas"),
            available,
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

// --------------------------------------------------------------------------- ReplicaSet

fn validate_replica_set_spec(rs: &ReplicaSet) -> FieldErrorList {
    let sp = p("spec");
    let spec = rs.spec.clone().unwrap_or_default();
    let mut errs =
        validate_nonnegative(i64::from(spec.replicas.unwrap_or(0)), &sp.child("replicas"));
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &sp.child("minReadySeconds"),
    ));
    errs.extend(validate_apps_selector(&spec.selector, &sp));
    let template = spec.template.clone().unwrap_or_default();
    if let Some(sel) = converted_selector(&spec.selector, &sp, &mut errs) {
        errs.extend(validate_template_for_replica_set(
            &template,
            &sel,
            &sp.child("template"),
        ));
    }
    errs
}

impl Strategy for ReplicaSet {
    fn prepare_for_create(&mut self) {
        self.status = Some(ReplicaSetStatus::default());
    }

    fn set_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        if let Some(t) = spec.template.as_mut() {
            default_pod_template(t);
        }
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_replica_set_spec(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        let (ns, os) = (
            self.spec.clone().unwrap_or_default(),
            old.spec.clone().unwrap_or_default(),
        );
        errs.extend(immutable(
            &ns.selector,
            &os.selector,
            &p("spec").child("selector"),
        ));
        errs
    }

    fn validate_status_update(&self, _old: &Self) -> FieldErrorList {
        let st = self.status.clone().unwrap_or_default();
        replica_status_errors(
            st.replicas,
            st.fully_labeled_replicas.unwrap_or(0),
            st.ready_replicas.unwrap_or(0),
            st.available_replicas.unwrap_or(0),
            st.observed_generation.unwrap_or(0),
        )
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![(
            "status.replicas",
            self.status
                .as_ref()
                .map(|st| st.replicas)
                .unwrap_or(0)
                .to_string(),
        )]
    }
}

// --------------------------------------------------------------------------- Deployment

/// `SetDefaults_Deployment` (apps/v1).
fn default_deployment(d: &mut Deployment) {
    let spec = d.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    let strategy = spec
        .strategy
        .get_or_insert_with(DeploymentStrategy::default);
    if s(&strategy.type_).is_empty() {
        strategy.type_ = Some("RollingUpdate".into());
    }
    if s(&strategy.type_) == "RollingUpdate" {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        ru.max_unavailable
            .get_or_insert_with(|| IntOrString::String("25%".into()));
        ru.max_surge
            .get_or_insert_with(|| IntOrString::String("25%".into()));
    }
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    default_pod_template(&mut spec.template);
}

fn validate_deployment_spec(d: &Deployment) -> FieldErrorList {
    let sp = p("spec");
    let spec = d.spec.clone().unwrap_or_default();
    let mut errs =
        validate_nonnegative(i64::from(spec.replicas.unwrap_or(0)), &sp.child("replicas"));
    errs.extend(validate_apps_selector(&spec.selector, &sp));
    if let Some(sel) = converted_selector(&spec.selector, &sp, &mut errs) {
        errs.extend(validate_template_for_replica_set(
            &spec.template,
            &sel,
            &sp.child("template"),
        ));
    }
    let strategy = spec.strategy.clone().unwrap_or_default();
    let stp = sp.child("strategy");
    match s(&strategy.type_) {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    &stp.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match strategy.rolling_update.as_ref() {
            None => errs.push(FieldError::required(
                &stp.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = stp.child("rollingUpdate");
                let zero = IntOrString::Int(0);
                let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
                let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                errs.extend(validate_positive_int_or_percent(
                    mu,
                    &rp.child("maxUnavailable"),
                ));
                errs.extend(validate_positive_int_or_percent(ms, &rp.child("maxSurge")));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(FieldError::invalid(
                        &rp.child("maxUnavailable"),
                        jv(mu),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
            }
        },
        other => errs.push(FieldError::not_supported(
            &stp,
            jv(&strategy).get("type").cloned().unwrap_or(other.into()),
            &["Recreate", "RollingUpdate"],
        )),
    }
    let mrs = spec.min_ready_seconds.unwrap_or(0);
    errs.extend(validate_nonnegative(
        i64::from(mrs),
        &sp.child("minReadySeconds"),
    ));
    if let Some(r) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            i64::from(r),
            &sp.child("revisionHistoryLimit"),
        ));
    }
    if let Some(pd) = spec.progress_deadline_seconds {
        errs.extend(validate_nonnegative(
            i64::from(pd),
            &sp.child("progressDeadlineSeconds"),
        ));
        if pd <= mrs {
            errs.push(FieldError::invalid(
                &sp.child("progressDeadlineSeconds"),
                pd,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

impl Strategy for Deployment {
    fn prepare_for_create(&mut self) {
        self.status = Some(DeploymentStatus::default());
    }

    fn set_defaults(&mut self) {
        default_deployment(self);
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_deployment_spec(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        let (ns, os) = (
            self.spec.clone().unwrap_or_default(),
            old.spec.clone().unwrap_or_default(),
        );
        errs.extend(immutable(
            &ns.selector,
            &os.selector,
            &p("spec").child("selector"),
        ));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> FieldErrorList {
        let st = self.status.clone().unwrap_or_default();
        let sp = p("status");
        let mut errs = validate_nonnegative(
            st.observed_generation.unwrap_or(0),
            &sp.child("observedGeneration"),
        );
        let replicas = st.replicas.unwrap_or(0);
        let (updated, ready, available) = (
            st.updated_replicas.unwrap_or(0),
            st.ready_replicas.unwrap_or(0),
            st.available_replicas.unwrap_or(0),
        );
        for (name, v) in [
            ("replicas", replicas),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", st.unavailable_replicas.unwrap_or(0)),
        ] {
            errs.extend(validate_nonnegative(i64::from(v), &sp.child(name)));
        }
        if let Some(c) = st.collision_count {
            errs.extend(validate_nonnegative(
                i64::from(c),
                &sp.child("collisionCount"),
            ));
        }
        let msg = "cannot be greater than status.replicas";
        if updated > replicas {
            errs.push(FieldError::invalid(
                &sp.child("updatedReplicas"),
                updated,
                msg,
            ));
        }
        if ready > replicas {
            errs.push(FieldError::invalid(&sp.child("readyReplicas"), ready, msg));
        }
        if available > replicas {
            errs.push(FieldError::invalid(
                &sp.child("availableReplicas"),
                available,
                msg,
            ));
        }
        if available > ready {
            errs.push(FieldError::invalid(
                &sp.child("availableReplicas"),
                available,
                "cannot be greater than readyReplicas",
            ));
        }
        errs.extend(collision_count_decrement(
            st.collision_count,
            old.status.as_ref().and_then(|o| o.collision_count),
        ));
        errs
    }
}

fn collision_count_decrement(new: Option<i32>, old: Option<i32>) -> FieldErrorList {
    let decremented = match (new, old) {
        (None, Some(_)) => true,
        (Some(n), Some(o)) => n < o,
        _ => false,
    };
    if decremented {
        vec![FieldError::invalid(
            &p("status").child("collisionCount"),
            new.unwrap_or(0),
            "cannot be decremented",
        )]
    } else {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------- DaemonSet

fn default_daemon_set(ds: &mut DaemonSet) {
    let spec = ds.spec.get_or_insert_with(Default::default);
    let us = spec
        .update_strategy
        .get_or_insert_with(DaemonSetUpdateStrategy::default);
    if s(&us.type_).is_empty() {
        us.type_ = Some("RollingUpdate".into());
    }
    if s(&us.type_) == "RollingUpdate" {
        let ru = us
            .rolling_update
            .get_or_insert_with(RollingUpdateDaemonSet::default);
        ru.max_unavailable.get_or_insert(IntOrString::Int(1));
        ru.max_surge.get_or_insert(IntOrString::Int(0));
    }
    spec.revision_history_limit.get_or_insert(10);
    default_pod_template(&mut spec.template);
}

fn validate_daemon_set_spec(ds: &DaemonSet) -> FieldErrorList {
    let sp = p("spec");
    let spec = ds.spec.clone().unwrap_or_default();
    let sel = apps_selector(&spec.selector);
    let mut errs = names::validate_label_selector(sel, &sp.child("selector"));
    let converted = Selector::from(sel);
    if !matches!(converted, Selector::Invalid)
        && !converted.matches(template_labels(&spec.template))
    {
        errs.push(FieldError::invalid(
            &sp.child("template").child("metadata").child("labels"),
            jv(&template_labels(&spec.template).cloned().unwrap_or_default()),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(
        &spec.template,
        &sp.child("template"),
    ));
    errs.extend(long_running_template_rules(
        &spec.template,
        "DaemonSet",
        &sp.child("template"),
    ));
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &sp.child("minReadySeconds"),
    ));
    let us = spec.update_strategy.clone().unwrap_or_default();
    let up = sp.child("updateStrategy");
    match s(&us.type_) {
        "OnDelete" => {}
        "RollingUpdate" => match us.rolling_update.as_ref() {
            None => errs.push(FieldError::required(&up.child("rollingUpdate"), "")),
            Some(ru) => {
                let rp = up.child("rollingUpdate");
                let zero = IntOrString::Int(0);
                let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
                let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                errs.extend(validate_positive_int_or_percent(
                    mu,
                    &rp.child("maxUnavailable"),
                ));
                errs.extend(validate_positive_int_or_percent(ms, &rp.child("maxSurge")));
                errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
                errs.extend(not_more_than_100_percent(ms, &rp.child("maxSurge")));
                match (int_or_percent_value(mu) != 0, int_or_percent_value(ms) != 0) {
                    (true, true) => errs.push(FieldError::invalid(
                        &rp.child("maxSurge"),
                        jv(ms),
                        "may not be set when maxUnavailable is non-zero",
                    )),
                    (false, false) => errs.push(FieldError::required(
                        &rp.child("maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    )),
                    _ => {}
                }
            }
        },
        _ => errs.push(FieldError::not_supported(
            &up,
            jv(&us),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    if let Some(r) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            i64::from(r),
            &sp.child("revisionHistoryLimit"),
        ));
    }
    errs
}

fn template_generation(ds: &DaemonSet) -> i64 {
    ds.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DAEMONSET_TEMPLATE_GENERATION_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Strategy for DaemonSet {
    fn prepare_for_create(&mut self) {
        self.status = Some(DaemonSetStatus::default());
        self.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(DAEMONSET_TEMPLATE_GENERATION_ANNOTATION.into(), "1".into());
    }

    fn prepare_for_update(&mut self, old: &Self) {
        // The template generation moves with the template, as upstream's strategy does.
        let old_gen = template_generation(old);
        // Compared defaulted: this runs before the new object is defaulted.
        let defaulted = |ds: &DaemonSet| {
            let mut t = ds
                .spec
                .as_ref()
                .map(|sp| sp.template.clone())
                .unwrap_or_default();
            default_pod_template(&mut t);
            t
        };
        let changed = defaulted(self) != defaulted(old);
        let gen = if changed { old_gen + 1 } else { old_gen };
        if gen > 0 {
            self.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(
                    DAEMONSET_TEMPLATE_GENERATION_ANNOTATION.into(),
                    gen.to_string(),
                );
        }
    }

    fn set_defaults(&mut self) {
        default_daemon_set(self);
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_daemon_set_spec(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        let (ns, os) = (
            self.spec.clone().unwrap_or_default(),
            old.spec.clone().unwrap_or_default(),
        );
        errs.extend(immutable(
            &ns.selector,
            &os.selector,
            &p("spec").child("selector"),
        ));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> FieldErrorList {
        let st = self.status.clone().unwrap_or_default();
        let sp = p("status");
        let mut errs = Vec::new();
        for (name, v) in [
            ("currentNumberScheduled", st.current_number_scheduled),
            ("numberMisscheduled", st.number_misscheduled),
            ("desiredNumberScheduled", st.desired_number_scheduled),
            ("numberReady", st.number_ready),
        ] {
            errs.extend(validate_nonnegative(i64::from(v), &sp.child(name)));
        }
        errs.extend(validate_nonnegative(
            st.observed_generation.unwrap_or(0),
            &sp.child("observedGeneration"),
        ));
        for (name, v) in [
            ("updatedNumberScheduled", st.updated_number_scheduled),
            ("numberAvailable", st.number_available),
            ("numberUnavailable", st.number_unavailable),
            ("collisionCount", st.collision_count),
        ] {
            errs.extend(validate_nonnegative(
                i64::from(v.unwrap_or(0)),
                &sp.child(name),
            ));
        }
        errs.extend(collision_count_decrement(
            st.collision_count,
            old.status.as_ref().and_then(|o| o.collision_count),
        ));
        errs
    }
}

// -------------------------------------------------------------------------- StatefulSet

fn default_stateful_set(ss: &mut StatefulSet) {
    let spec = ss.spec.get_or_insert_with(Default::default);
    if s(&spec.pod_management_policy).is_empty() {
        spec.pod_management_policy = Some("OrderedReady".into());
    }
    let us = spec
        .update_strategy
        .get_or_insert_with(StatefulSetUpdateStrategy::default);
    if s(&us.type_).is_empty() {
        us.type_ = Some("RollingUpdate".into());
        us.rolling_update
            .get_or_insert_with(RollingUpdateStatefulSetStrategy::default);
    }
    if s(&us.type_) == "RollingUpdate" {
        if let Some(ru) = us.rolling_update.as_mut() {
            ru.partition.get_or_insert(0);
        }
    }
    let retention = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
    if s(&retention.when_deleted).is_empty() {
        retention.when_deleted = Some("Retain".into());
    }
    if s(&retention.when_scaled).is_empty() {
        retention.when_scaled = Some("Retain".into());
    }
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    default_pod_template(&mut spec.template);
    for claim in spec.volume_claim_templates.iter_mut().flatten() {
        super::storage::default_pvc(claim);
    }
}

fn validate_stateful_set_spec(ss: &StatefulSet) -> FieldErrorList {
    let sp = p("spec");
    let spec = ss.spec.clone().unwrap_or_default();
    let mut errs = Vec::new();
    match s(&spec.pod_management_policy) {
        "" => errs.push(FieldError::required(&sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            &sp.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = spec.update_strategy.clone().unwrap_or_default();
    let up = sp.child("updateStrategy");
    match s(&us.type_) {
        "" => errs.push(FieldError::required(&up, "")),
        "OnDelete" => {
            if let Some(ru) = us.rolling_update.as_ref() {
                errs.push(FieldError::invalid(
                    &up.child("rollingUpdate"),
                    jv(ru),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = us.rolling_update.as_ref() {
                let rp = up.child("rollingUpdate");
                errs.extend(validate_nonnegative(
                    i64::from(ru.partition.unwrap_or(0)),
                    &rp.child("partition"),
                ));
                if let Some(mu) = ru.max_unavailable.as_ref() {
                    errs.extend(validate_positive_int_or_percent(
                        mu,
                        &rp.child("maxUnavailable"),
                    ));
                    if int_or_percent_value(mu) == 0 {
                        errs.push(FieldError::invalid(
                            &rp.child("maxUnavailable"),
                            jv(mu),
                            "cannot be 0",
                        ));
                    }
                    errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            &up,
            jv(&us),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(rp) = spec.persistent_volume_claim_retention_policy.as_ref() {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for (field, v) in [
            ("whenDeleted", s(&rp.when_deleted)),
            ("whenScaled", s(&rp.when_scaled)),
        ] {
            if v != "Retain" && v != "Delete" {
                errs.push(FieldError::not_supported(
                    &pp.child(field),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        &sp.child("replicas"),
    ));
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &sp.child("minReadySeconds"),
    ));
    if let Some(o) = spec.ordinals.as_ref() {
        errs.extend(validate_nonnegative(
            i64::from(o.start.unwrap_or(0)),
            &sp.child("ordinals.start"),
        ));
    }
    let sel = apps_selector(&spec.selector);
    match sel {
        None => errs.push(FieldError::required(&sp.child("selector"), "")),
        Some(sel) => errs.extend(names::validate_label_selector(
            Some(sel),
            &sp.child("selector"),
        )),
    }
    let converted = Selector::from(sel);
    if matches!(converted, Selector::Invalid) {
        errs.push(FieldError::invalid(
            &sp.child("selector"),
            jv(&spec.selector),
            "",
        ));
    } else {
        // Upstream checks only the template's labels and annotations for StatefulSets (its
        // volumes may be claim templates that the pod spec alone cannot resolve).
        let tp = sp.child("template");
        errs.extend(selector_mismatch(&converted, &spec.template, &tp));
        errs.extend(names::validate_template_labels_annotations(
            spec.template.metadata.as_ref(),
            &tp,
        ));
    }
    let tspec = spec.template.spec.as_ref();
    let rp = tspec.map(|t| s(&t.restart_policy)).unwrap_or("");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &sp.child("template").child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if tspec.and_then(|t| t.active_deadline_seconds).is_some() {
        errs.push(FieldError::forbidden(
            &sp.child("template")
                .child("spec")
                .child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

impl Strategy for StatefulSet {
    fn prepare_for_create(&mut self) {
        self.status = Some(StatefulSetStatus::default());
    }

    fn set_defaults(&mut self) {
        default_stateful_set(self);
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_label,
            &p("metadata"),
        );
        errs.extend(validate_stateful_set_spec(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        let mut ns = self.spec.clone().unwrap_or_default();
        let os = old.spec.clone().unwrap_or_default();
        ns.replicas = os.replicas;
        ns.template = os.template.clone();
        ns.update_strategy = os.update_strategy.clone();
        ns.min_ready_seconds = os.min_ready_seconds;
        ns.ordinals = os.ordinals.clone();
        ns.persistent_volume_claim_retention_policy =
            os.persistent_volume_claim_retention_policy.clone();
        if ns != os {
            errs.push(FieldError::forbidden(
                &p("spec"),
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
        errs
    }

    fn validate_status_update(&self, old: &Self) -> FieldErrorList {
        let st = self.status.clone().unwrap_or_default();
        let sp = p("status");
        let replicas = st.replicas;
        let (ready, current, updated, available) = (
            st.ready_replicas.unwrap_or(0),
            st.current_replicas.unwrap_or(0),
            st.updated_replicas.unwrap_or(0),
            st.available_replicas.unwrap_or(0),
        );
        let mut errs = Vec::new();
        for (name, v) in [
            ("replicas", replicas),
            ("readyReplicas", ready),
            ("currentReplicas", current),
            ("updatedReplicas", updated),
            ("availableReplicas", available),
        ] {
            errs.extend(validate_nonnegative(i64::from(v), &sp.child(name)));
        }
        if let Some(g) = st.observed_generation {
            errs.extend(validate_nonnegative(g, &sp.child("observedGeneration")));
        }
        if let Some(c) = st.collision_count {
            errs.extend(validate_nonnegative(
                i64::from(c),
                &sp.child("collisionCount"),
            ));
        }
        let msg = "cannot be greater than status.replicas";
        for (name, v) in [
            ("readyReplicas", ready),
            ("currentReplicas", current),
            ("updatedReplicas", updated),
            ("availableReplicas", available),
        ] {
            if v > replicas {
                errs.push(FieldError::invalid(&sp.child(name), v, msg));
            }
        }
        if available > ready {
            errs.push(FieldError::invalid(
                &sp.child("availableReplicas"),
                available,
                "cannot be greater than status.readyReplicas",
            ));
        }
        errs.extend(collision_count_decrement(
            st.collision_count,
            old.status.as_ref().and_then(|o| o.collision_count),
        ));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn messages(errs: &FieldErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test object: {e}"))
    }

    fn mysql_rc() -> ReplicationController {
        from(json!({
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "mysql", "namespace": "default"},
            "spec": {
                "replicas": 1,
                "selector": {"app": "mysql"},
                "template": {
                    "metadata": {"labels": {"app": "mysql"}},
                    "spec": {"containers": [{"name": "mysql", "image": "mysql", "ports": [{"containerPort": 3306}],
                        "env": [{"name": "MYSQL_ROOT_PASSWORD", "value": "123456"}]}]}
                }
            }
        }))
    }

    #[test]
    fn mysql_rc_defaults_as_upstream() {
        let mut rc = mysql_rc();
        rc.set_defaults();
        rc.prepare_for_create();
        let got = serde_json::to_value(&rc).unwrap_or_default();
        let want = json!({
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"labels": {"app": "mysql"}, "name": "mysql", "namespace": "default"},
            "spec": {
                "replicas": 1,
                "selector": {"app": "mysql"},
                "template": {
                    "metadata": {"labels": {"app": "mysql"}},
                    "spec": {
                        "containers": [{
                            "env": [{"name": "MYSQL_ROOT_PASSWORD", "value": "123456"}],
                            "image": "mysql",
                            "imagePullPolicy": "Always",
                            "name": "mysql",
                            "ports": [{"containerPort": 3306, "protocol": "TCP"}],
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        }],
                        "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }
                }
            },
            "status": {"replicas": 0}
        });
        assert_eq!(got, want);
        assert!(rc.validate().is_empty(), "{:?}", messages(&rc.validate()));
        assert_eq!(
            rc.selectable_fields(),
            vec![("status.replicas", "0".to_string())]
        );
    }

    #[test]
    fn rc_selector_defaults_from_template_and_must_match() {
        let mut rc = mysql_rc();
        if let Some(sp) = rc.spec.as_mut() {
            sp.selector = None;
        }
        rc.set_defaults();
        assert_eq!(
            rc.spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .map(|m| m.len()),
            Some(1)
        );
        if let Some(sp) = rc.spec.as_mut() {
            sp.selector = Some(BTreeMap::from([("app".into(), "other".into())]));
        }
        assert_eq!(
            messages(&rc.validate()),
            vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"mysql\"}: `selector` does not match template `labels`"]
        );
        if let Some(t) = rc
            .spec
            .as_mut()
            .and_then(|s| s.template.as_mut())
            .and_then(|t| t.spec.as_mut())
        {
            t.restart_policy = Some("Never".into());
            t.containers[0].image = None;
        }
        let got = messages(&rc.validate());
        assert!(
            got.contains(&"spec.template.spec.containers[0].image: Required value".to_string()),
            "{got:?}"
        );
        assert!(got.contains(&"spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"".to_string()), "{got:?}");
    }

    fn nginx_deployment(selector: Value) -> Deployment {
        from(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": selector,
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}
            }
        }))
    }

    #[test]
    fn deployment_defaults_as_upstream() {
        let mut d = nginx_deployment(json!({"matchLabels": {"app": "web"}}));
        d.set_defaults();
        d.prepare_for_create();
        let spec = serde_json::to_value(&d).unwrap_or_default()["spec"].clone();
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(
            spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(
            spec["template"]["spec"].get("enableServiceLinks"),
            None,
            "enableServiceLinks is defaulted on pods only"
        );
        assert!(d.validate().is_empty(), "{:?}", messages(&d.validate()));
    }

    #[test]
    fn deployment_selector_required_and_matching() {
        let mut d = nginx_deployment(json!({}));
        d.set_defaults();
        assert_eq!(
            messages(&d.validate()),
            vec![
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        let mut d = nginx_deployment(json!({"matchLabels": {"app": "db"}}));
        d.set_defaults();
        assert_eq!(
            messages(&d.validate()),
            vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"]
        );
    }

    #[test]
    fn deployment_selector_is_immutable_and_strategy_checked() {
        let mut old = nginx_deployment(json!({"matchLabels": {"app": "web"}}));
        old.set_defaults();
        let mut new = nginx_deployment(
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}),
        );
        new.set_defaults();
        let errs = messages(&new.validate_update(&old));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("spec.selector: Invalid value: ")
                && errs[0].ends_with(": field is immutable"),
            "{errs:?}"
        );

        let mut d = nginx_deployment(json!({"matchLabels": {"app": "web"}}));
        d.set_defaults();
        if let Some(ru) = d
            .spec
            .as_mut()
            .and_then(|s| s.strategy.as_mut())
            .and_then(|s| s.rolling_update.as_mut())
        {
            ru.max_unavailable = Some(IntOrString::Int(0));
            ru.max_surge = Some(IntOrString::String("0%".into()));
        }
        if let Some(sp) = d.spec.as_mut() {
            sp.replicas = Some(-1);
        }
        assert_eq!(
            messages(&d.validate()),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0",
            ]
        );
    }

    #[test]
    fn replica_set_and_daemon_set() {
        let mut rs: ReplicaSet = from(json!({
            "metadata": {"name": "frontend", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"tier": "frontend"}},
                "template": {"metadata": {"labels": {"tier": "frontend"}}, "spec": {"containers": [{"name": "php", "image": "php:8"}]}}}
        }));
        rs.set_defaults();
        rs.prepare_for_create();
        assert_eq!(rs.spec.as_ref().and_then(|s| s.replicas), Some(1));
        assert!(rs.validate().is_empty(), "{:?}", messages(&rs.validate()));
        assert_eq!(
            rs.selectable_fields(),
            vec![("status.replicas", "0".to_string())]
        );

        let mut ds: DaemonSet = from(json!({
            "metadata": {"name": "agent", "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}
        }));
        ds.set_defaults();
        ds.prepare_for_create();
        let v = serde_json::to_value(&ds).unwrap_or_default();
        assert_eq!(
            v["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
        );
        assert_eq!(
            v["metadata"]["annotations"][DAEMONSET_TEMPLATE_GENERATION_ANNOTATION],
            "1"
        );
        assert_eq!(
            v["status"],
            json!({"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0})
        );
        assert!(ds.validate().is_empty(), "{:?}", messages(&ds.validate()));
        let mut new = ds.clone();
        // An update that only omits defaulted fields keeps the generation.
        let mut same: DaemonSet = from(json!({
            "metadata": {"name": "agent", "namespace": "kube-system",
                "annotations": {DAEMONSET_TEMPLATE_GENERATION_ANNOTATION: "1"}},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}
        }));
        same.prepare_for_update(&ds);
        assert_eq!(template_generation(&same), 1);
        if let Some(t) = new.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
            t.containers[0].image = Some("agent:2".into());
        }
        new.prepare_for_update(&ds);
        assert_eq!(template_generation(&new), 2);
    }

    #[test]
    fn stateful_set_rules() {
        let mut ss: StatefulSet = from(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"serviceName": "nginx", "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
        }));
        ss.set_defaults();
        let v = serde_json::to_value(&ss).unwrap_or_default();
        assert_eq!(v["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            v["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            v["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(
            v["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert!(ss.validate().is_empty(), "{:?}", messages(&ss.validate()));
        let mut new = ss.clone();
        if let Some(sp) = new.spec.as_mut() {
            sp.service_name = Some("other".into());
        }
        assert_eq!(messages(&new.validate_update(&ss)).len(), 1);
        let mut new = ss.clone();
        if let Some(sp) = new.spec.as_mut() {
            sp.replicas = Some(5);
        }
        assert!(new.validate_update(&ss).is_empty());
        ss.metadata.name = Some("web.example".into());
        assert_eq!(
            messages(&ss.validate()),
            vec!["metadata.name: Invalid value: \"web.example\": must not contain dots"]
        );
    }
}
