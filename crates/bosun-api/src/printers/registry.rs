//! Printing by `apiVersion` and `kind` for callers that hold objects as JSON: which columns
//! a kind has, and one object's row, falling back to upstream's default table (NAME,
//! CREATED AT) for kinds without a printer.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::autoscaling::{v1 as autoscaling_v1, v2 as autoscaling_v2};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolume,
    PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
    ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1 as events_v1;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::{default_row, Column, Printer, DEFAULT_COLUMNS};

/// One object's row: its cells, one per column, and its meta/v1 `TableRowCondition`s.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintedRow {
    pub cells: Vec<Value>,
    pub conditions: Vec<Value>,
}

/// Why an object could not be printed.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error("decoding {api_version} {kind} for printing: {source}")]
    Decode {
        api_version: String,
        kind: String,
        source: serde_json::Error,
    },
}

struct Entry {
    columns: fn() -> &'static [Column],
    row: fn(&Value, DateTime<Utc>) -> Result<PrintedRow, serde_json::Error>,
    row_json: fn(&[u8], DateTime<Utc>) -> Result<PrintedRow, serde_json::Error>,
}

fn row_of_json<P: Printer + DeserializeOwned>(
    json: &[u8],
    now: DateTime<Utc>,
) -> Result<PrintedRow, serde_json::Error> {
    let p: P = serde_json::from_slice(json)?;
    Ok(PrintedRow {
        cells: p.row(now),
        conditions: p.row_conditions(),
    })
}

fn row_of<P: Printer + DeserializeOwned>(
    obj: &Value,
    now: DateTime<Utc>,
) -> Result<PrintedRow, serde_json::Error> {
    let p = P::deserialize(obj)?;
    Ok(PrintedRow {
        cells: p.row(now),
        conditions: p.row_conditions(),
    })
}

fn entry<P: Printer + DeserializeOwned>() -> Entry {
    Entry {
        columns: P::columns,
        row: row_of::<P>,
        row_json: row_of_json::<P>,
    }
}

fn lookup(api_version: &str, kind: &str) -> Option<Entry> {
    Some(match (api_version, kind) {
        ("v1", "Pod") => entry::<Pod>(),
        ("v1", "ReplicationController") => entry::<ReplicationController>(),
        ("v1", "Service") => entry::<Service>(),
        ("v1", "Endpoints") => entry::<Endpoints>(),
        ("v1", "Node") => entry::<Node>(),
        ("v1", "Namespace") => entry::<Namespace>(),
        ("v1", "Event") => entry::<Event>(),
        ("v1", "ConfigMap") => entry::<ConfigMap>(),
        ("v1", "Secret") => entry::<Secret>(),
        ("v1", "ServiceAccount") => entry::<ServiceAccount>(),
        ("v1", "PersistentVolume") => entry::<PersistentVolume>(),
        ("v1", "PersistentVolumeClaim") => entry::<PersistentVolumeClaim>(),
        ("storage.k8s.io/v1", "StorageClass") => entry::<StorageClass>(),
        ("v1", "ResourceQuota") => entry::<ResourceQuota>(),
        ("v1", "LimitRange") => entry::<LimitRange>(),
        ("apps/v1", "Deployment") => entry::<Deployment>(),
        ("apps/v1", "ReplicaSet") => entry::<ReplicaSet>(),
        ("apps/v1", "DaemonSet") => entry::<DaemonSet>(),
        ("apps/v1", "ControllerRevision") => entry::<ControllerRevision>(),
        ("apps/v1", "StatefulSet") => entry::<StatefulSet>(),
        ("autoscaling/v1", "HorizontalPodAutoscaler") => {
            entry::<autoscaling_v1::HorizontalPodAutoscaler>()
        }
        ("autoscaling/v2", "HorizontalPodAutoscaler") => {
            entry::<autoscaling_v2::HorizontalPodAutoscaler>()
        }
        ("batch/v1", "Job") => entry::<Job>(),
        ("batch/v1", "CronJob") => entry::<CronJob>(),
        ("coordination.k8s.io/v1", "Lease") => entry::<Lease>(),
        ("discovery.k8s.io/v1", "EndpointSlice") => entry::<EndpointSlice>(),
        ("events.k8s.io/v1", "Event") => entry::<events_v1::Event>(),
        ("scheduling.k8s.io/v1", "PriorityClass") => entry::<PriorityClass>(),
        ("policy/v1", "PodDisruptionBudget") => entry::<PodDisruptionBudget>(),
        ("networking.k8s.io/v1", "NetworkPolicy") => entry::<NetworkPolicy>(),
        _ => return None,
    })
}

/// Whether `api_version`/`kind` has a printer of its own (otherwise it prints the default
/// table).
pub fn has_printer(api_version: &str, kind: &str) -> bool {
    lookup(api_version, kind).is_some()
}

/// The columns of a kind's table; the default table's for kinds without a printer.
pub fn columns_for(api_version: &str, kind: &str) -> &'static [Column] {
    lookup(api_version, kind).map_or(DEFAULT_COLUMNS, |e| (e.columns)())
}

/// One object's row in its kind's table; `obj` is the object as JSON in that version.
/// Kinds without a printer get the default table's row from `obj.metadata`.
pub fn row_for(
    api_version: &str,
    kind: &str,
    obj: &Value,
    now: DateTime<Utc>,
) -> Result<PrintedRow, PrintError> {
    let decode = |source| PrintError::Decode {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        source,
    };
    match lookup(api_version, kind) {
        Some(e) => (e.row)(obj, now).map_err(decode),
        None => {
            let meta = match obj.get("metadata") {
                Some(m) => ObjectMeta::deserialize(m).map_err(decode)?,
                None => ObjectMeta::default(),
            };
            Ok(PrintedRow {
                cells: default_row(&meta),
                conditions: Vec::new(),
            })
        }
    }
}

/// [`row_for`] straight from the object's JSON bytes: the typed object is decoded from
/// them without building a `serde_json::Value` tree first (a LIST as a Table decodes every
/// object once this way).
pub fn row_for_json(
    api_version: &str,
    kind: &str,
    json: &[u8],
    now: DateTime<Utc>,
) -> Result<PrintedRow, PrintError> {
    let decode = |source| PrintError::Decode {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        source,
    };
    match lookup(api_version, kind) {
        Some(e) => (e.row_json)(json, now).map_err(decode),
        None => {
            #[derive(serde::Deserialize)]
            struct MetaOnly {
                #[serde(default)]
                metadata: ObjectMeta,
            }
            let m: MetaOnly = serde_json::from_slice(json).map_err(decode)?;
            Ok(PrintedRow {
                cells: default_row(&m.metadata),
                conditions: Vec::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn dispatches_by_api_version_and_kind() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Succeeded"}});
        let row = row_for("v1", "Pod", &pod, now()).expect("pod row");
        assert_eq!(row.cells.len(), columns_for("v1", "Pod").len());
        assert_eq!(row.cells[2], json!("Succeeded"));
        assert_eq!(row.conditions.len(), 1);
        assert_eq!(
            columns_for("autoscaling/v1", "HorizontalPodAutoscaler")[2].name,
            "Targets"
        );
        assert!(has_printer("events.k8s.io/v1", "Event"));
        assert!(!has_printer("v1", "LimitRanges"));
    }

    /// The row from bytes is the row from the value, for printed and default kinds.
    #[test]
    fn rows_from_bytes_match_rows_from_values() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Succeeded"}});
        let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "creationTimestamp": "2024-01-02T03:04:05Z"}});
        for (av, kind, obj) in [("v1", "Pod", &pod), ("example.com/v1", "Widget", &widget)] {
            let bytes = serde_json::to_vec(obj).expect("encode");
            let a = row_for(av, kind, obj, now()).expect("row");
            let b = row_for_json(av, kind, &bytes, now()).expect("row from bytes");
            assert_eq!(a.cells, b.cells);
            assert_eq!(a.conditions, b.conditions);
        }
        assert!(row_for_json("v1", "Pod", b"{\"spec\": 3}", now()).is_err());
    }

    #[test]
    fn unknown_kinds_print_the_default_table() {
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "creationTimestamp": "2024-01-02T03:04:05Z"}});
        assert_eq!(columns_for("example.com/v1", "Widget"), DEFAULT_COLUMNS);
        let row = row_for("example.com/v1", "Widget", &obj, now()).expect("default row");
        assert_eq!(row.cells, vec![json!("w"), json!("2024-01-02T03:04:05Z")]);
    }

    #[test]
    fn malformed_objects_are_errors_not_panics() {
        let bad = json!({"metadata": {"name": 7}, "spec": "nope"});
        let err = row_for("apps/v1", "Deployment", &bad, now()).expect_err("must not decode");
        assert!(err
            .to_string()
            .starts_with("decoding apps/v1 Deployment for printing"));
        assert!(row_for("example.com/v1", "Widget", &bad, now()).is_err());
        // Every printer copes with an object that has nothing but its kind.
        for (av, kind) in [
            ("v1", "Pod"),
            ("v1", "ReplicationController"),
            ("v1", "Service"),
            ("v1", "Endpoints"),
            ("v1", "Node"),
            ("v1", "Namespace"),
            ("v1", "Event"),
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "ServiceAccount"),
            ("v1", "PersistentVolume"),
            ("v1", "PersistentVolumeClaim"),
            ("v1", "ResourceQuota"),
            ("v1", "LimitRange"),
            ("apps/v1", "ReplicaSet"),
            ("apps/v1", "ControllerRevision"),
            ("autoscaling/v1", "HorizontalPodAutoscaler"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("coordination.k8s.io/v1", "Lease"),
            ("events.k8s.io/v1", "Event"),
            ("policy/v1", "PodDisruptionBudget"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
        ] {
            let obj = json!({"apiVersion": av, "kind": kind, "metadata": {}});
            let row = row_for(av, kind, &obj, now()).unwrap_or_else(|e| panic!("{av} {kind}: {e}"));
            assert_eq!(row.cells.len(), columns_for(av, kind).len(), "{av} {kind}");
        }
    }
}
