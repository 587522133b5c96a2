//! kubectl 1.34's describers for Job, CronJob, DaemonSet, StatefulSet, PodDisruptionBudget
//! and StorageClass (`describe.go`: describeJob, describeCronJob, describeDaemonSet,
//! describeStatefulSet, describePodDisruptionBudgetV1, describeStorageClass), line for line.

use serde_json::Value;

use super::fmt::{
    arr, controlled_by, format_label_selector, format_labels, go_list, human_duration, i,
    int_or_string, qty, rfc1123z, s, selector_string, storage_class, string_map, w, Out,
};
use super::kinds::{header, labels_annotations, pod_phases, pods_status};
use super::pod::describe_pod_template;
use super::{describe_events, Events};
use crate::error::Result;
use crate::Ctx;

/// The integer at `p` if the field is set (a Go `*int32` that is not nil).
fn opt_i(v: &Value, p: &str) -> Option<i64> {
    v.pointer(p).and_then(Value::as_i64)
}

/// `printBoolPtr`: True, False or `<unset>`.
fn bool_ptr(v: &Value, p: &str) -> &'static str {
    match v.pointer(p).and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

/// A set field: `Some(text)` when the JSON has a non-null value there.
fn set<'a>(v: &'a Value, p: &str) -> Option<&'a Value> {
    v.pointer(p).filter(|x| !x.is_null())
}

/// `capIndexesListOrNone`: the completed indexes cut after the first comma past 50 bytes.
fn cap_indexes(indexes: &str, soft_limit: usize) -> String {
    if indexes.is_empty() {
        return "<none>".into();
    }
    let b = indexes.as_bytes();
    let mut ix = soft_limit;
    while ix < b.len() && b[ix] != b',' {
        ix += 1;
    }
    if ix >= b.len() {
        return indexes.to_string();
    }
    format!("{}...", &indexes[..=ix])
}

pub(crate) async fn job(j: &Value, ev: &Events) -> Result<String> {
    let mut o = Out::new();
    header(&mut o, j);
    w!(
        o,
        0,
        "Selector:\t{}\n",
        selector_string(&j["spec"]["selector"])
    );
    labels_annotations(&mut o, j);
    if let Some(c) = controlled_by(j) {
        w!(o, 0, "Controlled By:\t{c}\n");
    }
    if let Some(p) = opt_i(j, "/spec/parallelism") {
        w!(o, 0, "Parallelism:\t{p}\n");
    }
    match opt_i(j, "/spec/completions") {
        Some(c) => w!(o, 0, "Completions:\t{c}\n"),
        None => o.w(0, "Completions:\t<unset>\n"),
    }
    let mode = s(j, "/spec/completionMode");
    if !mode.is_empty() {
        w!(o, 0, "Completion Mode:\t{mode}\n");
    }
    if let Some(b) = j.pointer("/spec/suspend").and_then(Value::as_bool) {
        // `%v` of a Go bool.
        w!(o, 0, "Suspend:\t{b}\n");
    }
    if let Some(b) = opt_i(j, "/spec/backoffLimit") {
        w!(o, 0, "Backoff Limit:\t{b}\n");
    }
    if let Some(t) = opt_i(j, "/spec/ttlSecondsAfterFinished") {
        w!(o, 0, "TTL Seconds After Finished:\t{t}\n");
    }
    let (start, done) = (s(j, "/status/startTime"), s(j, "/status/completionTime"));
    if !start.is_empty() {
        w!(o, 0, "Start Time:\t{}\n", rfc1123z(start));
    }
    if !done.is_empty() {
        w!(o, 0, "Completed At:\t{}\n", rfc1123z(done));
    }
    if let (Ok(a), Ok(b)) = (
        chrono::DateTime::parse_from_rfc3339(start),
        chrono::DateTime::parse_from_rfc3339(done),
    ) {
        w!(o, 0, "Duration:\t{}\n", human_duration(b - a));
    }
    if let Some(d) = opt_i(j, "/spec/activeDeadlineSeconds") {
        w!(o, 0, "Active Deadline Seconds:\t{d}s\n");
    }
    let (active, succeeded, failed) = (
        i(j, "/status/active"),
        i(j, "/status/succeeded"),
        i(j, "/status/failed"),
    );
    match opt_i(j, "/status/ready") {
        None => w!(
            o,
            0,
            "Pods Statuses:\t{active} Active / {succeeded} Succeeded / {failed} Failed\n"
        ),
        Some(r) => w!(
            o,
            0,
            "Pods Statuses:\t{active} Active ({r} Ready) / {succeeded} Succeeded / {failed} Failed\n"
        ),
    }
    if mode == "Indexed" {
        w!(
            o,
            0,
            "Completed Indexes:\t{}\n",
            cap_indexes(s(j, "/status/completedIndexes"), 50)
        );
    }
    describe_pod_template(&mut o, &j["spec"]["template"]);
    describe_events(&mut o, ev);
    Ok(o.finish())
}

pub(crate) async fn cron_job(cj: &Value, ev: &Events) -> Result<String> {
    let mut o = Out::new();
    header(&mut o, cj);
    labels_annotations(&mut o, cj);
    w!(o, 0, "Schedule:\t{}\n", s(cj, "/spec/schedule"));
    w!(
        o,
        0,
        "Concurrency Policy:\t{}\n",
        s(cj, "/spec/concurrencyPolicy")
    );
    w!(o, 0, "Suspend:\t{}\n", bool_ptr(cj, "/spec/suspend"));
    let unset_or = |p: &str, suffix: &str| match opt_i(cj, p) {
        Some(n) => format!("{n}{suffix}"),
        None => "<unset>".into(),
    };
    w!(
        o,
        0,
        "Successful Job History Limit:\t{}\n",
        unset_or("/spec/successfulJobsHistoryLimit", "")
    );
    w!(
        o,
        0,
        "Failed Job History Limit:\t{}\n",
        unset_or("/spec/failedJobsHistoryLimit", "")
    );
    w!(
        o,
        0,
        "Starting Deadline Seconds:\t{}\n",
        unset_or("/spec/startingDeadlineSeconds", "s")
    );
    // describeJobTemplate.
    let jt = &cj["spec"]["jobTemplate"];
    match set(jt, "/spec/selector") {
        Some(sel) => w!(o, 0, "Selector:\t{}\n", selector_string(sel)),
        None => o.w(0, "Selector:\t<unset>\n"),
    }
    for (title, p) in [
        ("Parallelism", "/spec/parallelism"),
        ("Completions", "/spec/completions"),
    ] {
        match opt_i(jt, p) {
            Some(n) => w!(o, 0, "{title}:\t{n}\n"),
            None => w!(o, 0, "{title}:\t<unset>\n"),
        }
    }
    if let Some(d) = opt_i(jt, "/spec/activeDeadlineSeconds") {
        w!(o, 0, "Active Deadline Seconds:\t{d}s\n");
    }
    describe_pod_template(&mut o, &jt["spec"]["template"]);
    match s(cj, "/status/lastScheduleTime") {
        "" => o.w(0, "Last Schedule Time:\t<unset>\n"),
        t => w!(o, 0, "Last Schedule Time:\t{}\n", rfc1123z(t)),
    }
    // printActiveJobs.
    let active: Vec<&str> = arr(cj, "/status/active")
        .iter()
        .map(|r| s(r, "/name"))
        .collect();
    if active.is_empty() {
        o.w(0, "Active Jobs:\t<none>\n");
    } else {
        w!(o, 0, "Active Jobs:\t{}\n", active.join(", "));
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}

pub(crate) async fn daemon_set(ctx: &Ctx, ds: &Value, ev: &Events) -> Result<String> {
    let sel = selector_string(&ds["spec"]["selector"]);
    let phases = pod_phases(
        ctx,
        s(ds, "/metadata/namespace"),
        &sel,
        s(ds, "/metadata/uid"),
    )
    .await?;
    let mut o = Out::new();
    header(&mut o, ds);
    w!(o, 0, "Selector:\t{sel}\n");
    w!(
        o,
        0,
        "Node-Selector:\t{}\n",
        format_labels(&string_map(ds, "/spec/template/spec/nodeSelector"))
    );
    labels_annotations(&mut o, ds);
    for (title, p) in [
        (
            "Desired Number of Nodes Scheduled",
            "/status/desiredNumberScheduled",
        ),
        (
            "Current Number of Nodes Scheduled",
            "/status/currentNumberScheduled",
        ),
        (
            "Number of Nodes Scheduled with Up-to-date Pods",
            "/status/updatedNumberScheduled",
        ),
        (
            "Number of Nodes Scheduled with Available Pods",
            "/status/numberAvailable",
        ),
        ("Number of Nodes Misscheduled", "/status/numberMisscheduled"),
    ] {
        // No tab here in kubectl: these lines are not aligned.
        w!(o, 0, "{title}: {}\n", i(ds, p));
    }
    pods_status(&mut o, phases);
    describe_pod_template(&mut o, &ds["spec"]["template"]);
    describe_events(&mut o, ev);
    Ok(o.finish())
}

pub(crate) async fn stateful_set(ctx: &Ctx, ss: &Value, ev: &Events) -> Result<String> {
    let sel = selector_string(&ss["spec"]["selector"]);
    let phases = pod_phases(
        ctx,
        s(ss, "/metadata/namespace"),
        &sel,
        s(ss, "/metadata/uid"),
    )
    .await?;
    let mut o = Out::new();
    header(&mut o, ss);
    w!(
        o,
        0,
        "CreationTimestamp:\t{}\n",
        rfc1123z(s(ss, "/metadata/creationTimestamp"))
    );
    w!(o, 0, "Selector:\t{sel}\n");
    labels_annotations(&mut o, ss);
    w!(
        o,
        0,
        "Replicas:\t{} desired | {} total\n",
        i(ss, "/spec/replicas"),
        i(ss, "/status/replicas")
    );
    w!(
        o,
        0,
        "Update Strategy:\t{}\n",
        s(ss, "/spec/updateStrategy/type")
    );
    if let Some(ru) = set(ss, "/spec/updateStrategy/rollingUpdate") {
        if let Some(p) = opt_i(ru, "/partition") {
            w!(o, 1, "Partition:\t{p}\n");
            if let Some(m) = set(ru, "/maxUnavailable") {
                w!(o, 1, "MaxUnavailable:\t{}\n", int_or_string(Some(m)));
            }
        }
    }
    pods_status(&mut o, phases);
    describe_pod_template(&mut o, &ss["spec"]["template"]);
    // describeVolumeClaimTemplates.
    let templates = arr(ss, "/spec/volumeClaimTemplates");
    if templates.is_empty() {
        o.w(0, "Volume Claims:\t<none>\n");
    } else {
        o.w(0, "Volume Claims:\n");
        for pvc in templates {
            w!(o, 1, "Name:\t{}\n", s(pvc, "/metadata/name"));
            w!(o, 1, "StorageClass:\t{}\n", storage_class(pvc));
            // printLabelsMultilineWithIndent(w, "  ", title, "\t", ...) for both maps:
            // annotations too are printed as `k=v`.
            for (title, p) in [
                ("Labels", "/metadata/labels"),
                ("Annotations", "/metadata/annotations"),
            ] {
                let kv = string_map(pvc, p);
                w!(o, 0, "  {title}:\t");
                if kv.is_empty() {
                    o.w(0, "<none>\n");
                }
                for (n, (k, v)) in kv.iter().enumerate() {
                    if n != 0 {
                        o.w(0, "  \t");
                    }
                    w!(o, 0, "{k}={v}\n");
                }
            }
            match set(pvc, "/spec/resources/requests/storage") {
                Some(q) => w!(o, 1, "Capacity:\t{}\n", qty(q)),
                None => o.w(1, "Capacity:\t<default>\n"),
            }
            w!(
                o,
                1,
                "Access Modes:\t{}\n",
                go_list(arr(pvc, "/spec/accessModes"))
            );
        }
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}

pub(crate) async fn pod_disruption_budget(pdb: &Value, ev: &Events) -> Result<String> {
    let mut o = Out::new();
    header(&mut o, pdb);
    if let Some(m) = set(pdb, "/spec/minAvailable") {
        w!(o, 0, "Min available:\t{}\n", int_or_string(Some(m)));
    } else if let Some(m) = set(pdb, "/spec/maxUnavailable") {
        w!(o, 0, "Max unavailable:\t{}\n", int_or_string(Some(m)));
    }
    match set(pdb, "/spec/selector") {
        Some(sel) => w!(o, 0, "Selector:\t{}\n", format_label_selector(sel)),
        None => o.w(0, "Selector:\t<unset>\n"),
    }
    o.w(0, "Status:\n");
    w!(
        o,
        2,
        "Allowed disruptions:\t{}\n",
        i(pdb, "/status/disruptionsAllowed")
    );
    w!(o, 2, "Current:\t{}\n", i(pdb, "/status/currentHealthy"));
    w!(o, 2, "Desired:\t{}\n", i(pdb, "/status/desiredHealthy"));
    w!(o, 2, "Total:\t{}\n", i(pdb, "/status/expectedPods"));
    describe_events(&mut o, ev);
    Ok(o.finish())
}

/// `storageutil.IsDefaultAnnotationText`.
fn is_default_class(sc: &Value) -> &'static str {
    let a = |k: &str| {
        sc.pointer("/metadata/annotations")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            == Some("true")
    };
    if a("storageclass.kubernetes.io/is-default-class")
        || a("storageclass.beta.kubernetes.io/is-default-class")
    {
        "Yes"
    } else {
        "No"
    }
}

pub(crate) async fn storage_class_describe(sc: &Value, ev: &Events) -> Result<String> {
    let mut o = Out::new();
    w!(o, 0, "Name:\t{}\n", s(sc, "/metadata/name"));
    w!(o, 0, "IsDefaultClass:\t{}\n", is_default_class(sc));
    // labels.FormatLabels of the whole map: the last-applied annotation included.
    w!(
        o,
        0,
        "Annotations:\t{}\n",
        format_labels(&string_map(sc, "/metadata/annotations"))
    );
    w!(o, 0, "Provisioner:\t{}\n", s(sc, "/provisioner"));
    w!(
        o,
        0,
        "Parameters:\t{}\n",
        format_labels(&string_map(sc, "/parameters"))
    );
    w!(
        o,
        0,
        "AllowVolumeExpansion:\t{}\n",
        bool_ptr(sc, "/allowVolumeExpansion")
    );
    let mount = arr(sc, "/mountOptions");
    if mount.is_empty() {
        o.w(0, "MountOptions:\t<none>\n");
    } else {
        o.w(0, "MountOptions:\n");
        for m in mount {
            w!(o, 1, "{}\n", m.as_str().unwrap_or(""));
        }
    }
    if let Some(r) = set(sc, "/reclaimPolicy").and_then(Value::as_str) {
        w!(o, 0, "ReclaimPolicy:\t{r}\n");
    }
    if let Some(m) = set(sc, "/volumeBindingMode").and_then(Value::as_str) {
        w!(o, 0, "VolumeBindingMode:\t{m}\n");
    }
    if let Some(t) = set(sc, "/allowedTopologies") {
        // printAllowedTopologies.
        let terms = t.as_array().map(Vec::as_slice).unwrap_or(&[]);
        o.w(0, "AllowedTopologies:\t");
        if terms.is_empty() {
            o.w(0, "<none>\n");
        } else {
            o.w(0, "\n");
        }
        for (n, term) in terms.iter().enumerate() {
            w!(o, 1, "Term {n}:\t");
            let reqs = arr(term, "/matchLabelExpressions");
            if reqs.is_empty() {
                o.w(0, "<none>\n");
            }
            for (k, req) in reqs.iter().enumerate() {
                if k != 0 {
                    o.w(1, "\t");
                }
                let values: Vec<&str> = arr(req, "/values")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                if values.is_empty() {
                    w!(o, 0, "{} in\n", s(req, "/key"));
                } else {
                    w!(o, 0, "{} in [{}]\n", s(req, "/key"), values.join(", "));
                }
            }
        }
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}

#[cfg(test)]
mod tests {
    #[test]
    fn completed_indexes_capped_like_kubectl() {
        assert_eq!(super::cap_indexes("", 50), "<none>");
        assert_eq!(super::cap_indexes("1,3-5", 50), "1,3-5");
        let long: String = (0..40)
            .map(|n| (n * 2).to_string())
            .collect::<Vec<_>>()
            .join(",");
        let capped = super::cap_indexes(&long, 50);
        assert!(capped.ends_with(",...") && capped.len() > 50 && capped.len() < 60);
    }
}
