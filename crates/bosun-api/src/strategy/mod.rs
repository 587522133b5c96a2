//! Per-kind strategies, as upstream's `pkg/registry/<group>/<resource>/strategy.go`: what
//! the API server does to an object of that kind on create and update besides storing it.
//!
//! The API server handles what is common to every kind itself (metadata: uid,
//! creationTimestamp, generation bumps on spec changes, resourceVersion; keeping status
//! on main-resource updates and everything but status on status updates). A strategy
//! adds what is particular to its kind: resetting fields on create, defaulting,
//! validation, immutable fields, and the fields a field selector may name.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{de::DeserializeOwned, Serialize};

use crate::field::FieldErrorList;

/// What the API server needs to know about one kind. Every method has a default that
/// does nothing, so a kind only writes what upstream does for it.
pub trait Strategy:
    k8s_openapi::Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + Serialize
    + DeserializeOwned
    + Clone
    + Send
    + Sync
    + 'static
{
    /// Called on create before defaulting: reset what a client may not set (for a pod:
    /// status to `phase: Pending` with its QoS class; for a namespace: `phase: Active`).
    fn prepare_for_create(&mut self) {}

    /// Called on every update of the main resource before defaulting; `old` is the stored
    /// object. (Status has already been carried over from `old` by the API server.)
    fn prepare_for_update(&mut self, _old: &Self) {}

    /// Fill defaults the way upstream's `SetDefaults_*` functions do.
    fn set_defaults(&mut self) {}

    /// Validate a new object (upstream's `Validate*`); paths start at the object root
    /// (`metadata.name`, `spec.containers[0].image`).
    fn validate(&self) -> FieldErrorList {
        Vec::new()
    }

    /// Checks upstream makes on create only, in addition to [`Self::validate`] (a pod may
    /// not be created with ephemeral containers, a CronJob name must leave room for its
    /// jobs' suffix).
    fn validate_create(&self) -> FieldErrorList {
        Vec::new()
    }

    /// Validate an update (immutable fields and the like) in addition to [`Self::validate`].
    fn validate_update(&self, _old: &Self) -> FieldErrorList {
        Vec::new()
    }

    /// Validate a status-subresource update.
    fn validate_status_update(&self, _old: &Self) -> FieldErrorList {
        Vec::new()
    }

    /// The fields a field selector may name besides `metadata.name` and
    /// `metadata.namespace`, with their values (`spec.nodeName`, `status.phase`).
    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Whether metadata.generation is kept and bumped on spec changes (upstream: every kind
    /// with a spec).
    fn has_generation() -> bool {
        true
    }

    /// The top-level fields whose change bumps metadata.generation.
    fn generation_fields() -> &'static [&'static str] {
        &["spec"]
    }
}

mod autoscaling;
mod batch;
mod cluster;
mod common;
mod config;
mod misc;
mod networking;
mod pod;
mod qty;
mod service;
mod storage;
mod workloads;

pub use autoscaling::DEFAULT_CPU_UTILIZATION;
pub use batch::{parse_cron_schedule, JOB_CONTROLLER_UID_LABEL, JOB_NAME_LABEL};
pub use cluster::NAMESPACE_NAME_LABEL;
pub use config::MAX_SECRET_SIZE;
pub use misc::HIGHEST_USER_DEFINABLE_PRIORITY;
pub use pod::{
    default_image_pull_policy, default_pod, default_pod_spec, default_pod_template, pod_qos_class,
    DEFAULT_SCHEDULER_NAME, DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS,
};
pub use service::{default_service, NODE_PORT_RANGE};
pub use workloads::DAEMONSET_TEMPLATE_GENERATION_ANNOTATION;

macro_rules! plain_strategy {
    ($($ty:ty),* $(,)?) => { $(impl Strategy for $ty {})* };
}

use k8s_openapi::api;

// Kinds whose strategy is nothing but the common handling.
plain_strategy!(api::core::v1::Binding);
