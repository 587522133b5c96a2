//! The typed side of the API server: for every stored kind, a [`KindOps`] that decodes the
//! JSON of an object into its k8s-openapi type (finding unknown fields and wrong types),
//! runs the kind's [`Strategy`], and prints table rows. Everything else in the server works
//! on JSON and never needs to know the type.

use std::marker::PhantomData;

use bosun_api::printers::{self, Column, Printer};
use bosun_api::strategy::Strategy;
use bosun_api::FieldErrorList;
use chrono::{DateTime, Utc};
use k8s_openapi::api;
use serde_json::Value;

/// The result of decoding JSON into a typed object.
pub struct Decoded {
    /// The object re-encoded from its type: fields the type does not know are gone, as
    /// upstream drops them.
    pub value: Value,
    /// Paths of unknown fields (`spec.containers[0].foo`).
    pub unknown_fields: Vec<String>,
}

/// What the server does with an object's type. One implementation per stored kind.
pub trait KindOps: Send + Sync {
    /// Decodes `obj` into the type and back, collecting unknown field paths.
    fn decode(&self, obj: Value) -> Result<Decoded, String>;
    /// Runs `prepare_for_create`, `set_defaults`, then `validate`.
    fn admit_create(&self, obj: Value) -> Result<(Value, FieldErrorList), String>;
    /// Runs `prepare_for_update`, `set_defaults`, `validate` and `validate_update`.
    fn admit_update(&self, obj: Value, old: &Value) -> Result<(Value, FieldErrorList), String>;
    /// Runs `validate_status_update`.
    fn admit_status_update(&self, obj: Value, old: &Value) -> Result<(Value, FieldErrorList), String>;
    /// Fields a field selector may name, besides metadata.name and metadata.namespace.
    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)>;
    /// The names of the selectable fields of this kind.
    fn field_names(&self) -> Vec<&'static str>;
    /// Whether metadata.generation is maintained.
    fn has_generation(&self) -> bool;
    /// Table columns.
    fn columns(&self) -> &'static [Column];
    /// One table row.
    fn row(&self, obj: &Value, now: DateTime<Utc>) -> Result<Vec<Value>, String>;
}

/// Formats a serde_ignored path the way upstream names fields (`spec.containers[0].foo`).
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{}]", field_path(parent), index),
        P::Map { parent, key } => {
            let p = field_path(parent);
            if p.is_empty() {
                key.to_string()
            } else {
                format!("{p}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => field_path(parent),
    }
}

fn decode_typed<K: serde::de::DeserializeOwned>(obj: Value) -> Result<(K, Vec<String>), String> {
    let mut unknown = Vec::new();
    let typed: K = serde_ignored::deserialize(obj, |p| unknown.push(field_path(&p))).map_err(|e| e.to_string())?;
    Ok((typed, unknown))
}

fn encode<K: serde::Serialize>(k: &K) -> Result<Value, String> {
    serde_json::to_value(k).map_err(|e| e.to_string())
}

type RowFn = fn(&Value, DateTime<Utc>) -> Result<Vec<Value>, String>;

/// The [`KindOps`] of one k8s-openapi type.
pub struct Typed<K> {
    columns: &'static [Column],
    row: RowFn,
    _k: PhantomData<fn() -> K>,
}

impl<K: Strategy + Default> Typed<K> {
    /// A kind printed with NAME and AGE only.
    pub fn plain() -> Self {
        Typed { columns: printers::DEFAULT_COLUMNS, row: default_row, _k: PhantomData }
    }
}

impl<K: Strategy + Default + Printer> Typed<K> {
    /// A kind with its own printer.
    pub fn printed() -> Self {
        Typed { columns: K::columns(), row: typed_row::<K>, _k: PhantomData }
    }
}

fn typed_row<K: Strategy + Printer>(obj: &Value, now: DateTime<Utc>) -> Result<Vec<Value>, String> {
    let k: K = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    Ok(k.row(now))
}

fn default_row(obj: &Value, now: DateTime<Utc>) -> Result<Vec<Value>, String> {
    let name = obj.pointer("/metadata/name").cloned().unwrap_or(Value::String(String::new()));
    let age = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| human_age(now - t.with_timezone(&Utc)))
        .unwrap_or_else(|| "<unknown>".to_string());
    Ok(vec![name, Value::String(age)])
}

/// Upstream's `duration.HumanDuration`, used for AGE cells.
pub fn human_age(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < -1 {
        return "<invalid>".to_string();
    }
    let secs = secs.max(0);
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let mins = secs / 60;
    if mins < 10 {
        let s = secs % 60;
        return if s == 0 { format!("{mins}m") } else { format!("{mins}m{s}s") };
    }
    if mins < 60 * 3 {
        return format!("{mins}m");
    }
    let hours = mins / 60;
    if hours < 8 {
        let m = mins % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        let days = hours / 24;
        return if h == 0 { format!("{days}d") } else { format!("{days}d{h}h") };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        let y = hours / 24 / 365;
        return if dy == 0 { format!("{y}y") } else { format!("{y}y{dy}d") };
    }
    format!("{}y", hours / 24 / 365)
}

impl<K: Strategy + Default> KindOps for Typed<K> {
    fn decode(&self, obj: Value) -> Result<Decoded, String> {
        let (typed, unknown_fields) = decode_typed::<K>(obj)?;
        Ok(Decoded { value: encode(&typed)?, unknown_fields })
    }

    fn admit_create(&self, obj: Value) -> Result<(Value, FieldErrorList), String> {
        let mut k: K = serde_json::from_value(obj).map_err(|e| e.to_string())?;
        k.prepare_for_create();
        k.set_defaults();
        let errs = k.validate();
        Ok((encode(&k)?, errs))
    }

    fn admit_update(&self, obj: Value, old: &Value) -> Result<(Value, FieldErrorList), String> {
        let mut k: K = serde_json::from_value(obj).map_err(|e| e.to_string())?;
        let old: K = serde_json::from_value(old.clone()).map_err(|e| e.to_string())?;
        k.prepare_for_update(&old);
        k.set_defaults();
        let mut errs = k.validate();
        errs.extend(k.validate_update(&old));
        Ok((encode(&k)?, errs))
    }

    fn admit_status_update(&self, obj: Value, old: &Value) -> Result<(Value, FieldErrorList), String> {
        let k: K = serde_json::from_value(obj).map_err(|e| e.to_string())?;
        let old: K = serde_json::from_value(old.clone()).map_err(|e| e.to_string())?;
        let errs = k.validate_status_update(&old);
        Ok((encode(&k)?, errs))
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        match serde_json::from_value::<K>(obj.clone()) {
            Ok(k) => k.selectable_fields(),
            Err(_) => Vec::new(),
        }
    }

    fn field_names(&self) -> Vec<&'static str> {
        K::default().selectable_fields().into_iter().map(|(f, _)| f).collect()
    }

    fn has_generation(&self) -> bool {
        K::has_generation()
    }

    fn columns(&self) -> &'static [Column] {
        self.columns
    }

    fn row(&self, obj: &Value, now: DateTime<Utc>) -> Result<Vec<Value>, String> {
        (self.row)(obj, now)
    }
}

/// The [`KindOps`] of a stored kind, by (storage group, kind).
pub fn ops_for(group: &str, kind: &str) -> Option<&'static dyn KindOps> {
    KINDS.iter().find(|(g, k, _)| *g == group && *k == kind).map(|(_, _, ops)| ops.as_ref())
}

type Entry = (&'static str, &'static str, Box<dyn KindOps>);

static KINDS: once_cell::sync::Lazy<Vec<Entry>> = once_cell::sync::Lazy::new(|| {
    vec![
        ("", "Binding", Box::new(Typed::<api::core::v1::Binding>::plain()) as Box<dyn KindOps>),
        ("", "ConfigMap", Box::new(Typed::<api::core::v1::ConfigMap>::plain())),
        ("", "Endpoints", Box::new(Typed::<api::core::v1::Endpoints>::plain())),
        ("", "Event", Box::new(Typed::<api::core::v1::Event>::plain())),
        ("", "LimitRange", Box::new(Typed::<api::core::v1::LimitRange>::plain())),
        ("", "Namespace", Box::new(Typed::<api::core::v1::Namespace>::plain())),
        ("", "Node", Box::new(Typed::<api::core::v1::Node>::plain())),
        ("", "PersistentVolumeClaim", Box::new(Typed::<api::core::v1::PersistentVolumeClaim>::plain())),
        ("", "PersistentVolume", Box::new(Typed::<api::core::v1::PersistentVolume>::plain())),
        ("", "Pod", Box::new(Typed::<api::core::v1::Pod>::plain())),
        ("", "ReplicationController", Box::new(Typed::<api::core::v1::ReplicationController>::plain())),
        ("", "ResourceQuota", Box::new(Typed::<api::core::v1::ResourceQuota>::plain())),
        ("", "Secret", Box::new(Typed::<api::core::v1::Secret>::plain())),
        ("", "ServiceAccount", Box::new(Typed::<api::core::v1::ServiceAccount>::plain())),
        ("", "Service", Box::new(Typed::<api::core::v1::Service>::plain())),
        ("apps", "DaemonSet", Box::new(Typed::<api::apps::v1::DaemonSet>::plain())),
        ("apps", "Deployment", Box::new(Typed::<api::apps::v1::Deployment>::plain())),
        ("apps", "ReplicaSet", Box::new(Typed::<api::apps::v1::ReplicaSet>::plain())),
        ("apps", "StatefulSet", Box::new(Typed::<api::apps::v1::StatefulSet>::plain())),
        ("autoscaling", "HorizontalPodAutoscaler", Box::new(Typed::<api::autoscaling::v2::HorizontalPodAutoscaler>::plain())),
        ("batch", "CronJob", Box::new(Typed::<api::batch::v1::CronJob>::plain())),
        ("batch", "Job", Box::new(Typed::<api::batch::v1::Job>::plain())),
        ("coordination.k8s.io", "Lease", Box::new(Typed::<api::coordination::v1::Lease>::plain())),
        ("discovery.k8s.io", "EndpointSlice", Box::new(Typed::<api::discovery::v1::EndpointSlice>::plain())),
        ("scheduling.k8s.io", "PriorityClass", Box::new(Typed::<api::scheduling::v1::PriorityClass>::plain())),
        ("policy", "PodDisruptionBudget", Box::new(Typed::<api::policy::v1::PodDisruptionBudget>::plain())),
    ]
});

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_named_like_upstream() {
        let ops = ops_for("", "Pod").expect("pod ops");
        let d = ops
            .decode(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "bogus": 1},
                "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "x"}]}}))
            .expect("decodes");
        assert_eq!(d.unknown_fields, vec!["metadata.bogus".to_string(), "spec.containers[0].imagePullPolicyy".to_string()]);
        assert!(d.value.pointer("/metadata/bogus").is_none());
    }

    #[test]
    fn wrong_types_are_errors() {
        let ops = ops_for("", "Pod").expect("pod ops");
        let err = ops.decode(json!({"metadata": {"name": "a"}, "spec": {"containers": "nope"}})).err();
        assert!(err.is_some());
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(chrono::Duration::seconds(5)), "5s");
        assert_eq!(human_age(chrono::Duration::seconds(130)), "2m10s");
        assert_eq!(human_age(chrono::Duration::minutes(61)), "61m");
        assert_eq!(human_age(chrono::Duration::hours(3)), "3h");
        assert_eq!(human_age(chrono::Duration::hours(53)), "2d5h");
    }
}
