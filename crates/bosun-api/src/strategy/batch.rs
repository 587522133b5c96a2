//! Jobs and CronJobs: upstream's batch/v1 defaults, the Job strategy's generated selector,
//! `ValidateJob*`/`ValidateCronJob*`, and a cron schedule check with robfig/cron's messages.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job, JobSpec, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::common::{immutable, jv, p, s, Selector};
use super::pod::{default_pod_template, template_labels, validate_pod_template_spec};
use super::Strategy;
use crate::field::{FieldError, FieldErrorList, Path};
use crate::names::{self, validate_nonnegative};

/// The labels the Job strategy generates on a Job's pods.
pub const JOB_CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// `SetDefaults_Job` (batch/v1).
fn default_job_spec(spec: &mut JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    if spec.completion_mode.is_none() {
        spec.completion_mode = Some("NonIndexed".into());
    }
    spec.suspend.get_or_insert(false);
    if let Some(pfp) = spec.pod_failure_policy.as_mut() {
        for rule in pfp.rules.iter_mut() {
            for pattern in rule.on_pod_conditions.iter_mut().flatten() {
                if pattern.status.is_empty() {
                    pattern.status = "True".into();
                }
            }
        }
    }
    if spec.pod_replacement_policy.is_none() {
        spec.pod_replacement_policy = Some(
            if spec.pod_failure_policy.is_some() {
                "Failed"
            } else {
                "TerminatingOrFailed"
            }
            .into(),
        );
    }
    default_pod_template(&mut spec.template);
}

fn labels_from_template(job: &mut Job) {
    let labels = job
        .spec
        .as_ref()
        .and_then(|sp| template_labels(&sp.template))
        .cloned();
    if let Some(l) = labels {
        if job.metadata.labels.as_ref().is_none_or(|m| m.is_empty()) {
            job.metadata.labels = Some(l);
        }
    }
}

/// The Job strategy's `generateSelector`: pods carry the job's name and uid, the selector
/// picks the uid.
fn generate_selector(job: &mut Job) {
    let name = s(&job.metadata.name).to_string();
    let uid = s(&job.metadata.uid).to_string();
    let spec = job.spec.get_or_insert_with(Default::default);
    let labels = spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new);
    for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
        labels.entry(key.into()).or_insert_with(|| name.clone());
    }
    for key in [LEGACY_CONTROLLER_UID_LABEL, JOB_CONTROLLER_UID_LABEL] {
        labels.entry(key.into()).or_insert_with(|| uid.clone());
    }
    let sel = spec.selector.get_or_insert_with(LabelSelector::default);
    sel.match_labels
        .get_or_insert_with(BTreeMap::new)
        .entry(JOB_CONTROLLER_UID_LABEL.into())
        .or_insert(uid);
}

fn manual_selector(spec: &JobSpec) -> bool {
    spec.manual_selector == Some(true)
}

/// `validateJobSpec`: what a Job and a CronJob's job template share.
fn validate_job_spec_common(spec: &JobSpec, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    for (field, v) in [
        ("parallelism", spec.parallelism.map(i64::from)),
        ("completions", spec.completions.map(i64::from)),
        ("activeDeadlineSeconds", spec.active_deadline_seconds),
        ("backoffLimit", spec.backoff_limit.map(i64::from)),
        (
            "ttlSecondsAfterFinished",
            spec.ttl_seconds_after_finished.map(i64::from),
        ),
    ] {
        if let Some(v) = v {
            errs.extend(validate_nonnegative(v, &path.child(field)));
        }
    }
    if let Some(mode) = spec.completion_mode.as_deref() {
        match mode {
            "NonIndexed" => {
                if spec.backoff_limit_per_index.is_some() {
                    errs.push(FieldError::forbidden(
                        &path.child("backoffLimitPerIndex"),
                        "requires indexed completion mode",
                    ));
                }
            }
            "Indexed" => {
                if spec.completions.is_none() {
                    errs.push(FieldError::required(
                        &path.child("completions"),
                        "when completion mode is Indexed",
                    ));
                }
                if spec.completions.is_some_and(|c| c > 100_000) {
                    errs.push(FieldError::invalid(
                        &path.child("completions"),
                        spec.completions.unwrap_or(0),
                        "must be less than or equal to 100000 when completion mode is Indexed",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &path.child("completionMode"),
                other,
                &["NonIndexed", "Indexed"],
            )),
        }
    }
    if let Some(prp) = spec.pod_replacement_policy.as_deref() {
        if prp != "TerminatingOrFailed" && prp != "Failed" {
            errs.push(FieldError::not_supported(
                &path.child("podReplacementPolicy"),
                prp,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tp = path.child("template");
    errs.extend(validate_pod_template_spec(&spec.template, &tp));
    let rp = spec
        .template
        .spec
        .as_ref()
        .map(|t| s(&t.restart_policy))
        .unwrap_or("");
    if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["OnFailure", "Never"],
        ));
    }
    errs
}

fn validate_job(job: &Job) -> FieldErrorList {
    let mut errs = names::validate_object_meta(
        &job.metadata,
        true,
        names::name_is_dns_subdomain,
        &p("metadata"),
    );
    let spec = job.spec.clone().unwrap_or_default();
    // `ValidateGeneratedSelector`.
    if !manual_selector(&spec) && spec.selector.is_some() {
        let uid = s(&job.metadata.uid);
        if uid.is_empty() {
            errs.push(FieldError::required(&p("metadata").child("uid"), ""));
        }
        let tmeta = p("spec").child("template").child("metadata");
        let labels = template_labels(&spec.template).cloned().unwrap_or_default();
        for (key, want) in [
            (JOB_CONTROLLER_UID_LABEL, uid),
            (JOB_NAME_LABEL, s(&job.metadata.name)),
        ] {
            match labels.get(key) {
                None => errs.push(FieldError::required(
                    &tmeta.child("labels").key(key),
                    format!("must be '{want}'"),
                )),
                Some(v) if v != want => errs.push(FieldError::invalid(
                    &tmeta.child("labels").key(key),
                    jv(&labels),
                    format!("must be '{want}'"),
                )),
                Some(_) => {}
            }
        }
        let expected = BTreeMap::from([
            (JOB_CONTROLLER_UID_LABEL.to_string(), uid.to_string()),
            (
                JOB_NAME_LABEL.to_string(),
                s(&job.metadata.name).to_string(),
            ),
        ]);
        let sel = Selector::from(spec.selector.as_ref());
        if !matches!(sel, Selector::Invalid) && !sel.matches(Some(&expected)) {
            errs.push(FieldError::invalid(
                &p("spec").child("selector"),
                jv(&spec.selector),
                "`selector` not auto-generated",
            ));
        }
    }
    errs.extend(validate_job_spec(&spec, &p("spec")));
    errs
}

/// `ValidateJobSpec`: the common part plus the selector rules.
fn validate_job_spec(spec: &JobSpec, path: &Path) -> FieldErrorList {
    let mut errs = validate_job_spec_common(spec, path);
    match spec.selector.as_ref() {
        None => errs.push(FieldError::required(&path.child("selector"), "")),
        Some(sel) => errs.extend(names::validate_label_selector(
            Some(sel),
            &path.child("selector"),
        )),
    }
    let sel = Selector::from(spec.selector.as_ref());
    if !matches!(sel, Selector::Invalid) && !sel.matches(template_labels(&spec.template)) {
        errs.push(FieldError::invalid(
            &path.child("template").child("metadata").child("labels"),
            jv(&template_labels(&spec.template).cloned().unwrap_or_default()),
            "`selector` does not match template `labels`",
        ));
    }
    errs
}

impl Strategy for Job {
    fn prepare_for_create(&mut self) {
        self.status = Some(JobStatus::default());
        let manual = self.spec.as_ref().is_some_and(manual_selector);
        if !manual {
            generate_selector(self);
        }
        // Upstream's decode-time defaulting copies the (now generated) template labels.
        labels_from_template(self);
    }

    fn set_defaults(&mut self) {
        default_job_spec(self.spec.get_or_insert_with(Default::default));
        labels_from_template(self);
    }

    fn validate(&self) -> FieldErrorList {
        validate_job(self)
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        let (ns, os) = (
            self.spec.clone().unwrap_or_default(),
            old.spec.clone().unwrap_or_default(),
        );
        let sp = p("spec");
        // Indexed jobs may scale completions together with parallelism.
        let elastic = ns.completion_mode.as_deref() == Some("Indexed")
            && ns.completions == ns.parallelism
            && os.completions == os.parallelism;
        if !elastic {
            errs.extend(immutable(
                &ns.completions,
                &os.completions,
                &sp.child("completions"),
            ));
        }
        errs.extend(immutable(&ns.selector, &os.selector, &sp.child("selector")));
        // A suspended job that never started may change its pods' scheduling directives.
        let suspended = os.suspend == Some(true)
            && old
                .status
                .as_ref()
                .and_then(|st| st.start_time.as_ref())
                .is_none();
        let mut new_template = ns.template.clone();
        if suspended {
            if let (Some(n), Some(o)) = (new_template.spec.as_mut(), os.template.spec.as_ref()) {
                n.node_selector = o.node_selector.clone();
                n.affinity = o.affinity.clone();
                n.tolerations = o.tolerations.clone();
                n.scheduling_gates = o.scheduling_gates.clone();
            }
            if let (Some(n), Some(o)) = (
                new_template.metadata.as_mut(),
                os.template.metadata.as_ref(),
            ) {
                n.labels = o.labels.clone();
                n.annotations = o.annotations.clone();
            }
        }
        errs.extend(immutable(
            &new_template,
            &os.template,
            &sp.child("template"),
        ));
        errs
    }

    fn validate_status_update(&self, _old: &Self) -> FieldErrorList {
        let st = self.status.clone().unwrap_or_default();
        let sp = p("status");
        let mut errs = Vec::new();
        for (name, v) in [
            ("active", st.active),
            ("succeeded", st.succeeded),
            ("failed", st.failed),
            ("ready", st.ready),
            ("terminating", st.terminating),
        ] {
            errs.extend(validate_nonnegative(
                i64::from(v.unwrap_or(0)),
                &sp.child(name),
            ));
        }
        errs
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![(
            "status.successful",
            self.status
                .as_ref()
                .and_then(|st| st.succeeded)
                .unwrap_or(0)
                .to_string(),
        )]
    }
}

// ------------------------------------------------------------------------------ CronJob

/// A cron schedule as robfig/cron's standard parser reads it; the error text is its.
pub fn parse_cron_schedule(schedule: &str) -> Result<(), String> {
    if schedule.contains("TZ") {
        return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
    }
    let spec = schedule.trim();
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    if let Some(desc) = spec.strip_prefix('@') {
        return match desc {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => {
                let dur = &d["every ".len()..];
                if parse_go_duration(dur) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {spec}: time: invalid duration {dur:?}"
                    ))
                }
            }
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const BOUNDS: [(u32, u32, &[&str]); 5] = [
        (0, 59, &[]),
        (0, 23, &[]),
        (1, 31, &[]),
        (
            1,
            12,
            &[
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ],
        ),
        (0, 6, &["sun", "mon", "tue", "wed", "thu", "fri", "sat"]),
    ];
    for (field, (min, max, names)) in fields.iter().zip(BOUNDS) {
        for expr in field.split(',') {
            parse_cron_range(expr, min, max, names)?;
        }
    }
    Ok(())
}

fn parse_cron_value(v: &str, names: &[&str], min: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
        return Ok(i as u32 + min);
    }
    v.parse::<u32>().map_err(|_| {
        format!("failed to parse int from {v}: strconv.Atoi: parsing {v:?}: invalid syntax")
    })
}

fn parse_cron_range(expr: &str, min: u32, max: u32, names: &[&str]) -> Result<(), String> {
    let parts: Vec<&str> = expr.split('/').collect();
    if parts.len() > 2 {
        return Err(format!("too many slashes: {expr}"));
    }
    let range: Vec<&str> = parts[0].split('-').collect();
    if range.len() > 2 {
        return Err(format!("too many hyphens: {expr}"));
    }
    let (start, end) = if range[0] == "*" || range[0] == "?" {
        (min, max)
    } else {
        let start = parse_cron_value(range[0], names, min)?;
        let end = match range.get(1) {
            Some(e) => parse_cron_value(e, names, min)?,
            None => start,
        };
        (start, end)
    };
    if let Some(step) = parts.get(1) {
        let step = step.parse::<u32>().map_err(|_| {
            format!(
                "failed to parse int from {step}: strconv.Atoi: parsing {step:?}: invalid syntax"
            )
        })?;
        if step == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
    }
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    Ok(())
}

/// Whether `s` is a Go duration (`1h30m`, `90s`, `1.5h`).
fn parse_go_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return false;
        }
        rest = &rest[num_len..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

fn default_cron_job(cj: &mut CronJob) {
    let spec = cj.spec.get_or_insert_with(Default::default);
    if s(&spec.concurrency_policy).is_empty() {
        spec.concurrency_policy = Some("Allow".into());
    }
    spec.suspend.get_or_insert(false);
    spec.successful_jobs_history_limit.get_or_insert(3);
    spec.failed_jobs_history_limit.get_or_insert(1);
    if let Some(js) = spec.job_template.spec.as_mut() {
        default_pod_template(&mut js.template);
    }
}

fn validate_cron_job_spec(cj: &CronJob) -> FieldErrorList {
    let sp = p("spec");
    let spec = cj.spec.clone().unwrap_or_default();
    let mut errs = Vec::new();
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(&sp.child("schedule"), ""));
    } else if let Err(e) = parse_cron_schedule(&spec.schedule) {
        errs.push(FieldError::invalid(
            &sp.child("schedule"),
            spec.schedule.as_str(),
            e,
        ));
    }
    if let Some(tz) = spec.time_zone.as_deref() {
        if tz.is_empty() || tz.contains(' ') || tz.starts_with('/') || tz.contains("..") {
            errs.push(FieldError::invalid(
                &sp.child("timeZone"),
                tz,
                format!("unknown time zone {tz}"),
            ));
        }
    }
    if let Some(d) = spec.starting_deadline_seconds {
        errs.extend(validate_nonnegative(
            d,
            &sp.child("startingDeadlineSeconds"),
        ));
    }
    match s(&spec.concurrency_policy) {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required(&sp.child("concurrencyPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            &sp.child("concurrencyPolicy"),
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    for (field, v) in [
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit,
        ),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        if let Some(v) = v {
            errs.extend(validate_nonnegative(i64::from(v), &sp.child(field)));
        }
    }
    let jp = sp.child("jobTemplate");
    errs.extend(names::validate_template_labels_annotations(
        spec.job_template.metadata.as_ref(),
        &jp.child("metadata"),
    ));
    let js = spec.job_template.spec.clone().unwrap_or_default();
    errs.extend(validate_job_spec_common(&js, &jp.child("spec")));
    if js.selector.is_some() {
        errs.push(FieldError::invalid(
            &jp.child("spec").child("selector"),
            jv(&js.selector),
            "`selector` will be auto-generated",
        ));
    }
    if js.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            &jp.child("spec").child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    errs
}

impl Strategy for CronJob {
    fn prepare_for_create(&mut self) {
        self.status = Some(CronJobStatus::default());
    }

    fn set_defaults(&mut self) {
        default_cron_job(self);
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_cron_job_spec(self));
        errs
    }

    fn validate_create(&self) -> FieldErrorList {
        let mut errs = Vec::new();
        // Job names get an 11-character suffix and must still fit a DNS-1035 label.
        let name = s(&self.metadata.name);
        if name.len() > names::DNS1035_LABEL_MAX_LENGTH - 11 {
            errs.push(FieldError::invalid(
                &p("metadata").child("name"),
                name,
                "must be no more than 52 characters",
            ));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: &FieldErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    fn pi_job() -> Job {
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "0f3e1c2a-0000-4000-8000-000000000001"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "pi", "image": "perl:5.34", "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}]}}}
        }))
        .unwrap_or_default()
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let mut job = pi_job();
        job.set_defaults();
        job.prepare_for_create();
        let v = serde_json::to_value(&job).unwrap_or_default();
        let uid = "0f3e1c2a-0000-4000-8000-000000000001";
        assert_eq!(v["spec"]["completions"], 1);
        assert_eq!(v["spec"]["parallelism"], 1);
        assert_eq!(v["spec"]["backoffLimit"], 6);
        assert_eq!(v["spec"]["completionMode"], "NonIndexed");
        assert_eq!(v["spec"]["suspend"], false);
        assert_eq!(v["spec"]["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            v["spec"]["selector"],
            json!({"matchLabels": {JOB_CONTROLLER_UID_LABEL: uid}})
        );
        assert_eq!(
            v["spec"]["template"]["metadata"]["labels"][JOB_NAME_LABEL],
            "pi"
        );
        assert_eq!(v["metadata"]["labels"]["job-name"], "pi");
        assert!(job.validate().is_empty(), "{:?}", messages(&job.validate()));
        assert_eq!(
            job.selectable_fields(),
            vec![("status.successful", "0".to_string())]
        );
    }

    #[test]
    fn job_restart_policy_and_immutable_template() {
        let mut job = pi_job();
        if let Some(t) = job.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
            t.restart_policy = None;
        }
        job.set_defaults();
        job.prepare_for_create();
        assert_eq!(
            messages(&job.validate()),
            vec!["spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""]
        );
        let mut old = pi_job();
        old.set_defaults();
        old.prepare_for_create();
        let mut new = old.clone();
        if let Some(t) = new.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
            t.containers[0].image = Some("perl:5.36".into());
        }
        let errs = messages(&new.validate_update(&old));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("spec.template: Invalid value: ")
                && errs[0].ends_with("field is immutable"),
            "{errs:?}"
        );
    }

    #[test]
    fn cron_schedules() {
        assert!(parse_cron_schedule("*/1 * * * *").is_ok());
        assert!(parse_cron_schedule("0 0 * * MON-FRI").is_ok());
        assert!(parse_cron_schedule("@hourly").is_ok());
        assert!(parse_cron_schedule("@every 1h30m").is_ok());
        assert_eq!(
            parse_cron_schedule("foo"),
            Err("expected exactly 5 fields, found 1: [foo]".into())
        );
        assert_eq!(
            parse_cron_schedule("61 * * * *"),
            Err("end of range (61) above maximum (59): 61".into())
        );
        assert_eq!(
            parse_cron_schedule("@sometimes"),
            Err("unrecognized descriptor: @sometimes".into())
        );
        assert!(parse_cron_schedule("TZ=UTC 0 * * * *").is_err());
    }

    #[test]
    fn cron_job_defaults_and_rules() {
        let mut cj: CronJob = serde_json::from_value(json!({
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "hello", "image": "busybox:1.28"}]}}}}}
        }))
        .unwrap_or_default();
        cj.set_defaults();
        let v = serde_json::to_value(&cj).unwrap_or_default();
        assert_eq!(v["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(v["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(v["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(
            v["spec"]["jobTemplate"]["spec"].get("completions"),
            None,
            "job defaults do not apply to templates"
        );
        assert!(cj.validate().is_empty(), "{:?}", messages(&cj.validate()));
        if let Some(sp) = cj.spec.as_mut() {
            sp.schedule = "every minute".into();
        }
        cj.metadata.name = Some("a".repeat(53));
        assert_eq!(
            messages(&cj.validate()),
            vec!["spec.schedule: Invalid value: \"every minute\": expected exactly 5 fields, found 2: [every minute]"]
        );
        assert_eq!(
            messages(&cj.validate_create()),
            vec![format!(
                "metadata.name: Invalid value: \"{}\": must be no more than 52 characters",
                "a".repeat(53)
            )]
        );
    }
}
