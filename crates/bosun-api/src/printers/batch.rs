//! Tables for batch/v1: Job and CronJob.

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{CronJob, Job, JobCondition};
use serde_json::{json, Value};

use super::descriptions as d;
use super::format::{bool_ptr, container_cells, human_duration, time, translate_timestamp_since};
use super::{Column, Printer, AGE, NAME};
use crate::selector::format_label_selector;

const CONTAINERS: Column = Column::wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Column = Column::wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);
const SELECTOR: Column = Column::wide("Selector", "string", d::JOB_SPEC_SELECTOR);

static JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "Status of the job."),
    Column::new("Completions", "string", d::JOB_STATUS_SUCCEEDED),
    Column::new("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// `hasJobCondition`: whether the first condition of that type is True.
fn has_condition(conditions: &[JobCondition], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .is_some_and(|c| c.status == "True")
}

/// The STATUS cell of a job: Complete, Failed, Terminating, Suspended, FailureTarget or
/// Running, in upstream's order of precedence.
pub fn job_status(job: &Job) -> &'static str {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    if has_condition(conditions, "Complete") {
        "Complete"
    } else if has_condition(conditions, "Failed") {
        "Failed"
    } else if job.metadata.deletion_timestamp.is_some() {
        "Terminating"
    } else if has_condition(conditions, "Suspended") {
        "Suspended"
    } else if has_condition(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

impl Printer for Job {
    fn columns() -> &'static [Column] {
        JOB_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        let succeeded = status.and_then(|s| s.succeeded).unwrap_or(0);
        let completions = match spec.and_then(|s| s.completions) {
            Some(c) => format!("{succeeded}/{c}"),
            None => match spec.and_then(|s| s.parallelism).unwrap_or(0) {
                p if p > 1 => format!("{succeeded}/1 of {p}"),
                _ => format!("{succeeded}/1"),
            },
        };
        let start = time(status.and_then(|s| s.start_time.as_ref()));
        let completion = time(status.and_then(|s| s.completion_time.as_ref()));
        let duration = match (start, completion) {
            (None, _) => String::new(),
            (Some(start), None) => human_duration(now.signed_duration_since(start)),
            (Some(start), Some(done)) => human_duration(done.signed_duration_since(start)),
        };
        let containers = spec
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers.as_slice())
            .unwrap_or_default();
        let (names, images) = container_cells(containers);
        vec![
            json!(self.metadata.name.as_deref().unwrap_or("")),
            json!(job_status(self)),
            json!(completions),
            json!(duration),
            json!(translate_timestamp_since(
                self.metadata.creation_timestamp.as_ref(),
                now
            )),
            json!(names),
            json!(images),
            json!(format_label_selector(
                spec.and_then(|s| s.selector.as_ref())
            )),
        ]
    }
}

static CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Schedule", "string", d::CRONJOB_SPEC_SCHEDULE),
    Column::new("Timezone", "string", d::CRONJOB_SPEC_TIME_ZONE),
    Column::new("Suspend", "boolean", d::CRONJOB_SPEC_SUSPEND),
    Column::new("Active", "integer", d::CRONJOB_STATUS_ACTIVE),
    Column::new(
        "Last Schedule",
        "string",
        d::CRONJOB_STATUS_LAST_SCHEDULE_TIME,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

impl Printer for CronJob {
    fn columns() -> &'static [Column] {
        CRON_JOB_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        let last_schedule = match status.and_then(|s| s.last_schedule_time.as_ref()) {
            Some(t) => translate_timestamp_since(Some(t), now),
            None => "<none>".to_string(),
        };
        let job_spec = spec.and_then(|s| s.job_template.spec.as_ref());
        let containers = job_spec
            .and_then(|j| j.template.spec.as_ref())
            .map(|p| p.containers.as_slice())
            .unwrap_or_default();
        let (names, images) = container_cells(containers);
        vec![
            json!(self.metadata.name.as_deref().unwrap_or("")),
            json!(spec.map(|s| s.schedule.as_str()).unwrap_or("")),
            json!(spec
                .and_then(|s| s.time_zone.as_deref())
                .unwrap_or("<none>")),
            // batch/v1 defaults spec.suspend to false.
            json!(bool_ptr(Some(
                spec.and_then(|s| s.suspend).unwrap_or(false)
            ))),
            json!(status.and_then(|s| s.active.as_ref()).map_or(0, Vec::len)),
            json!(last_schedule),
            json!(translate_timestamp_since(
                self.metadata.creation_timestamp.as_ref(),
                now
            )),
            json!(names),
            json!(images),
            json!(format_label_selector(
                job_spec.and_then(|j| j.selector.as_ref())
            )),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde::de::DeserializeOwned;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn at(d: Duration) -> String {
        (now() + d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn obj<T: DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("fixture")
    }

    fn job(v: Value) -> Vec<Value> {
        obj::<Job>(v).row(now())[..5].to_vec()
    }

    fn strs(v: &[&str]) -> Vec<Value> {
        v.iter().map(|s| json!(s)).collect()
    }

    #[test]
    fn jobs() {
        // Upstream's TestPrintJob.
        let created = at(Duration::zero());
        let full: Job = obj(
            json!({"metadata": {"name": "job1", "creationTimestamp": created},
            "spec": {"completions": 2, "selector": {"matchLabels": {"job-label": "job-label-value"}},
                "template": {"spec": {"containers": [{"name": "fake-job-container1", "image": "fake-job-image1"},
                    {"name": "fake-job-container2", "image": "fake-job-image2"}]}}},
            "status": {"succeeded": 1}}),
        );
        assert_eq!(
            full.row(now()),
            strs(&[
                "job1",
                "Running",
                "1/2",
                "",
                "0s",
                "fake-job-container1,fake-job-container2",
                "fake-job-image1,fake-job-image2",
                "job-label=job-label-value"
            ])
        );
        let ten_years = at(-Duration::days(10 * 365));
        assert_eq!(
            job(
                json!({"metadata": {"name": "job3", "creationTimestamp": ten_years}, "spec": {"template": {}},
                "status": {"succeeded": 0, "startTime": at(Duration::minutes(1)), "completionTime": at(Duration::minutes(31))}})
            ),
            strs(&["job3", "Running", "0/1", "30m", "10y"])
        );
        assert_eq!(
            job(
                json!({"metadata": {"name": "job4", "creationTimestamp": ten_years}, "spec": {"template": {}},
                "status": {"startTime": at(-Duration::minutes(20))}})
            ),
            strs(&["job4", "Running", "0/1", "20m", "10y"])
        );
        for (cond, want) in [
            ("Complete", "Complete"),
            ("Failed", "Failed"),
            ("Suspended", "Suspended"),
            ("FailureTarget", "FailureTarget"),
        ] {
            assert_eq!(
                job(
                    json!({"metadata": {"name": "j", "creationTimestamp": created}, "spec": {"template": {}},
                    "status": {"conditions": [{"type": cond, "status": "True"}]}})
                ),
                strs(&["j", want, "0/1", "", "0s"])
            );
        }
        assert_eq!(
            job(
                json!({"metadata": {"name": "job9", "creationTimestamp": created, "deletionTimestamp": created}, "spec": {"template": {}}})
            ),
            strs(&["job9", "Terminating", "0/1", "", "0s"])
        );
        assert_eq!(
            job(
                json!({"metadata": {"name": "par"}, "spec": {"parallelism": 3, "template": {}}, "status": {"succeeded": 1}})
            )[2],
            json!("1/1 of 3")
        );
    }

    #[test]
    fn cron_jobs() {
        // Upstream's TestPrintCronJob.
        let cj: CronJob = obj(
            json!({"metadata": {"name": "cronjob1", "creationTimestamp": at(Duration::zero())},
            "spec": {"schedule": "0/5 * * * ?", "suspend": false, "jobTemplate": {"spec": {"completions": 2,
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"spec": {"containers": [{"name": "fake-job-container1", "image": "fake-job-image1"},
                    {"name": "fake-job-container2", "image": "fake-job-image2"}]}}}}},
            "status": {"lastScheduleTime": at(Duration::zero())}}),
        );
        assert_eq!(
            cj.row(now()),
            vec![
                json!("cronjob1"),
                json!("0/5 * * * ?"),
                json!("<none>"),
                json!("False"),
                json!(0),
                json!("0s"),
                json!("0s"),
                json!("fake-job-container1,fake-job-container2"),
                json!("fake-job-image1,fake-job-image2"),
                json!("a=b")
            ]
        );
        let cj: CronJob = obj(
            json!({"metadata": {"name": "cronjob2", "creationTimestamp": at(-Duration::minutes(5))},
            "spec": {"schedule": "0/5 * * * ?", "timeZone": "LOCAL", "jobTemplate": {}},
            "status": {"lastScheduleTime": at(-Duration::seconds(30)), "active": [{"name": "j1"}]}}),
        );
        assert_eq!(
            cj.row(now())[..7],
            [
                json!("cronjob2"),
                json!("0/5 * * * ?"),
                json!("LOCAL"),
                json!("False"),
                json!(1),
                json!("30s"),
                json!("5m")
            ]
        );
        let never: CronJob = obj(
            json!({"metadata": {"name": "cronjob3", "creationTimestamp": at(-Duration::minutes(5))},
            "spec": {"schedule": "0/5 * * * ?", "suspend": true, "jobTemplate": {}}}),
        );
        assert_eq!(
            never.row(now())[3..6],
            [json!("True"), json!(0), json!("<none>")]
        );
        assert_eq!(CronJob::default().row(now()).len(), CRON_JOB_COLUMNS.len());
        assert_eq!(Job::default().row(now()).len(), JOB_COLUMNS.len());
    }
}
