//! Server-side printing: the columns and rows of `kubectl get` for every kind, as
//! upstream's `pkg/printers/internalversion/printers.go` defines them. The API server
//! wraps them into a meta.k8s.io/v1 `Table`.
//!
//! Rows always carry every column, `-o wide` ones included: upstream's API server renders
//! tables with `Wide: true` and kubectl drops priority-1 columns itself.
//!
//! Upstream prints the internal form of an object, which is what decoding a stored object
//! with its version's defaults yields. Where a v1 field that upstream defaults is missing
//! here, the printers print the default (an RC without `replicas` shows 1 desired), so the
//! table reads the same as against a real cluster whatever the object went through.

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};

mod apps;
mod autoscaling;
mod batch;
mod core_v1;
mod descriptions;
mod events;
mod format;
mod misc;
mod networking;
mod pod;
mod registry;

pub use format::{access_modes, format_labels, human_duration, translate_timestamp_since};
pub use pod::{summarize as summarize_pod, PodSummary};
pub use registry::{columns_for, has_printer, row_for, row_for_json, PrintError, PrintedRow};

/// One column of a table (a meta/v1 `TableColumnDefinition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// "string", "integer", "number", "boolean", "date".
    pub type_: &'static str,
    /// "name" for the NAME column, otherwise usually "".
    pub format: &'static str,
    pub description: &'static str,
    /// 0 = always shown; 1 = only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// A column shown by plain `kubectl get`.
    pub const fn new(name: &'static str, type_: &'static str, description: &'static str) -> Column {
        Column {
            name,
            type_,
            format: "",
            description,
            priority: 0,
        }
    }

    /// A column shown only with `-o wide`.
    pub const fn wide(
        name: &'static str,
        type_: &'static str,
        description: &'static str,
    ) -> Column {
        Column {
            name,
            type_,
            format: "",
            description,
            priority: 1,
        }
    }

    /// This column as a meta/v1 `TableColumnDefinition`.
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// A kind that prints as a table.
pub trait Printer {
    /// The columns, NAME first.
    fn columns() -> &'static [Column];
    /// One row's cells, one per column; `now` is the time ages are computed against.
    fn row(&self, now: DateTime<Utc>) -> Vec<Value>;
    /// The row's meta/v1 `TableRowCondition`s (upstream marks finished pods "Completed").
    fn row_conditions(&self) -> Vec<Value> {
        Vec::new()
    }
}

/// The NAME column every kind starts with.
pub const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: descriptions::OBJECT_META_NAME,
    priority: 0,
};

/// The AGE column.
pub const AGE: Column = Column::new(
    "Age",
    "string",
    descriptions::OBJECT_META_CREATION_TIMESTAMP,
);

/// The CREATED AT column of upstream's default table.
pub const CREATED_AT: Column = Column::new(
    "Created At",
    "date",
    descriptions::OBJECT_META_CREATION_TIMESTAMP,
);

/// The columns used for kinds without a printer of their own: upstream's
/// `rest.DefaultTableConvertor` (NAME, CREATED AT).
pub const DEFAULT_COLUMNS: &[Column] = &[NAME, CREATED_AT];

/// The cells of upstream's default table for an object: its name and its creation time in
/// RFC 3339 (Go's zero time when unset, as upstream formats it).
pub fn default_row(meta: &ObjectMeta) -> Vec<Value> {
    let created = format::time(meta.creation_timestamp.as_ref())
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![json!(meta.name.as_deref().unwrap_or("")), json!(created)]
}

/// The meta/v1 `TableColumnDefinition`s for a set of columns.
pub fn column_definitions(columns: &[Column]) -> Vec<Value> {
    columns.iter().map(Column::definition).collect()
}

/// A meta/v1 `TableRow` without its `object`, which the API server adds in the form the
/// client asked for (`includeObject`).
pub fn table_row<P: Printer>(obj: &P, now: DateTime<Utc>) -> Value {
    let mut row = json!({ "cells": obj.row(now) });
    let conditions = obj.row_conditions();
    if !conditions.is_empty() {
        row["conditions"] = Value::Array(conditions);
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{LimitRange, Pod};

    #[test]
    fn default_table_is_name_and_created_at() {
        let names: Vec<_> = DEFAULT_COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "Created At"]);
        assert_eq!(DEFAULT_COLUMNS[1].type_, "date");
        let lr = LimitRange {
            metadata: ObjectMeta {
                name: Some("limits".into()),
                creation_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    "2024-05-06T07:08:09Z".parse().expect("timestamp"),
                )),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            default_row(&lr.metadata),
            vec![json!("limits"), json!("2024-05-06T07:08:09Z")]
        );
        assert_eq!(
            default_row(&ObjectMeta::default())[1],
            json!("0001-01-01T00:00:00Z")
        );
    }

    #[test]
    fn table_row_carries_cells_and_conditions() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "done"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded"}
        }))
        .expect("pod");
        let row = table_row(&pod, Utc::now());
        assert_eq!(row["cells"][0], json!("done"));
        assert_eq!(row["conditions"][0]["type"], json!("Completed"));
        let defs = column_definitions(<Pod as Printer>::columns());
        assert_eq!(defs[0]["format"], json!("name"));
        assert_eq!(defs[5]["priority"], json!(1));
    }
}
