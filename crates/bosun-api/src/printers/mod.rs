//! Server-side printing: the columns and rows of `kubectl get` for every kind, as
//! upstream's `pkg/printers/internalversion/printers.go` defines them. The API server
//! wraps them into a meta.k8s.io/v1 `Table`.

use chrono::{DateTime, Utc};
use serde_json::Value;

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

/// A kind that prints as a table.
pub trait Printer {
    /// The columns, NAME first.
    fn columns() -> &'static [Column];
    /// One row's cells, one per column; `now` is the time ages are computed against.
    fn row(&self, now: DateTime<Utc>) -> Vec<Value>;
}

/// The NAME column every kind starts with.
pub const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    priority: 0,
};

/// The AGE column.
pub const AGE: Column = Column {
    name: "Age",
    type_: "string",
    format: "",
    description: "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    priority: 0,
};

/// The columns used for kinds without a printer of their own (upstream's default table).
pub const DEFAULT_COLUMNS: &[Column] = &[NAME, AGE];
