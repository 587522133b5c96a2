//! Kubernetes API types and pure helpers shared by every bosun component. No I/O here.

pub use k8s_openapi;

pub mod errors;
pub mod field;
pub mod names;
pub mod openapi;
pub mod patch;
pub mod quantity;
pub mod quota;
pub mod resources;
pub mod selector;

pub use errors::{StatusError, StatusReason};
pub use field::{FieldError, FieldErrorList, FieldErrorType, Path};
pub use resources::{ResourceDef, Verb, RESOURCES};
pub mod printers;
pub mod strategy;
