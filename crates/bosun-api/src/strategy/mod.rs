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
    k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static
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
}

macro_rules! plain_strategy {
    ($($ty:ty),* $(,)?) => { $(impl Strategy for $ty {})* };
}

use k8s_openapi::api;

// Kinds whose strategy is nothing but the common handling, until someone writes theirs.
plain_strategy!(
    api::core::v1::Binding,
    api::core::v1::ConfigMap,
    api::core::v1::Endpoints,
    api::core::v1::Event,
    api::core::v1::LimitRange,
    api::core::v1::Namespace,
    api::core::v1::Node,
    api::core::v1::PersistentVolumeClaim,
    api::core::v1::PersistentVolume,
    api::core::v1::Pod,
    api::core::v1::ReplicationController,
    api::core::v1::ResourceQuota,
    api::core::v1::Secret,
    api::core::v1::ServiceAccount,
    api::core::v1::Service,
    api::apps::v1::DaemonSet,
    api::apps::v1::Deployment,
    api::apps::v1::ReplicaSet,
    api::apps::v1::StatefulSet,
    api::autoscaling::v1::HorizontalPodAutoscaler,
    api::autoscaling::v2::HorizontalPodAutoscaler,
    api::batch::v1::CronJob,
    api::batch::v1::Job,
    api::coordination::v1::Lease,
    api::discovery::v1::EndpointSlice,
    api::events::v1::Event,
    api::scheduling::v1::PriorityClass,
    api::policy::v1::PodDisruptionBudget,
);
