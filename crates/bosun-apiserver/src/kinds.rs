//! The typed side of the API server: for every stored kind, a [`KindOps`] that decodes the
//! JSON of an object into its k8s-openapi type (finding unknown fields and wrong types),
//! runs the kind's [`Strategy`], and prints table rows. Everything else in the server works
//! on JSON and never needs to know the type.

use std::any::Any;
use std::marker::PhantomData;

use bosun_api::strategy::Strategy;
use bosun_api::FieldErrorList;
use k8s_openapi::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
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
    /// Types the object (its unknown fields come back as the third element; an object
    /// that does not fit the type is an error), then runs `prepare_for_create`,
    /// `set_defaults` and `validate`.
    fn admit_create(&self, obj: Value) -> Result<(Value, FieldErrorList, Vec<String>), String>;
    /// Runs `prepare_for_update`, `set_defaults`, `validate` and `validate_update`.
    fn admit_update(&self, obj: Value, old: &Value) -> Result<(Value, FieldErrorList), String>;
    /// Runs `validate_status_update`.
    fn admit_status_update(
        &self,
        obj: Value,
        old: &Value,
    ) -> Result<(Value, FieldErrorList), String>;
    /// Fields a field selector may name, besides metadata.name and metadata.namespace.
    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)>;
    /// The names of the selectable fields of this kind.
    fn field_names(&self) -> Vec<&'static str>;
    /// Whether metadata.generation is maintained.
    fn has_generation(&self) -> bool;
    /// The top-level fields whose change bumps metadata.generation.
    fn generation_fields(&self) -> &'static [&'static str];

    /// Decodes a JSON request body straight into the type (no JSON tree in between),
    /// collecting unknown field paths. The error says nothing a client should see: the
    /// caller goes the tree way instead, which reports problems as it always has.
    fn decode_json(&self, body: &[u8]) -> Result<(Box<dyn TypedObject>, Vec<String>), String>;

    /// Whether `new` differs from `old` in a field that bumps generation.
    fn generation_changed(&self, new: &Value, old: &Value) -> bool {
        self.has_generation()
            && self
                .generation_fields()
                .iter()
                .any(|f| new.get(*f) != old.get(*f))
    }
}

/// An object of a stored kind, typed, behind a trait object so that the registry stays
/// generic: the create path decodes a body into one, runs its metadata steps on the
/// typed `ObjectMeta`, admits it and encodes it once.
pub trait TypedObject: Send {
    fn meta(&self) -> &ObjectMeta;
    fn meta_mut(&mut self) -> &mut ObjectMeta;
    /// Drops `status` (a client cannot set it on create).
    fn clear_status(&mut self);
    /// For what only one kind needs (a pod's default tolerations).
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// `prepare_for_create`, `set_defaults`, `validate` and `validate_create`.
    fn admit_create(&mut self) -> FieldErrorList;
    /// The object as a JSON tree, quantities canonical (what [`KindOps::admit_create`]
    /// returns).
    fn to_value(&self) -> Result<Value, String>;
    /// The object's compact JSON, quantities canonical: the same bytes as encoding
    /// [`Self::to_value`].
    fn to_json(&self) -> Result<Vec<u8>, String>;
    fn selectable_fields(&self) -> Vec<(&'static str, String)>;
}

/// Drops an object's `status`, for the kinds that have one.
pub trait ClearStatus {
    fn clear_status(&mut self) {}
}

macro_rules! with_status {
    ($($ty:ty),* $(,)?) => { $(impl ClearStatus for $ty {
        fn clear_status(&mut self) {
            self.status = None;
        }
    })* };
}

macro_rules! without_status {
    ($($ty:ty),* $(,)?) => { $(impl ClearStatus for $ty {})* };
}

with_status!(
    api::core::v1::Namespace,
    api::core::v1::Node,
    api::core::v1::PersistentVolumeClaim,
    api::core::v1::PersistentVolume,
    api::core::v1::Pod,
    api::core::v1::ReplicationController,
    api::core::v1::ResourceQuota,
    api::core::v1::Service,
    api::apps::v1::DaemonSet,
    api::apps::v1::Deployment,
    api::apps::v1::ReplicaSet,
    api::apps::v1::StatefulSet,
    api::autoscaling::v2::HorizontalPodAutoscaler,
    api::batch::v1::CronJob,
    api::batch::v1::Job,
    api::policy::v1::PodDisruptionBudget,
);

without_status!(
    api::core::v1::Binding,
    api::core::v1::ConfigMap,
    api::core::v1::Endpoints,
    api::core::v1::Event,
    api::core::v1::LimitRange,
    api::core::v1::Secret,
    api::core::v1::ServiceAccount,
    api::apps::v1::ControllerRevision,
    api::coordination::v1::Lease,
    api::discovery::v1::EndpointSlice,
    api::networking::v1::NetworkPolicy,
    api::scheduling::v1::PriorityClass,
    api::storage::v1::StorageClass,
);

impl<K: Strategy + ClearStatus> TypedObject for K {
    fn meta(&self) -> &ObjectMeta {
        k8s_openapi::Metadata::metadata(self)
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        k8s_openapi::Metadata::metadata_mut(self)
    }

    fn clear_status(&mut self) {
        ClearStatus::clear_status(self)
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn admit_create(&mut self) -> FieldErrorList {
        self.prepare_for_create();
        self.set_defaults();
        let mut errs = self.validate();
        errs.extend(self.validate_create());
        errs
    }

    fn to_value(&self) -> Result<Value, String> {
        let mut v = encode(self)?;
        canonicalize_quantities(&mut v);
        Ok(v)
    }

    fn to_json(&self) -> Result<Vec<u8>, String> {
        let mut buf = Vec::with_capacity(2048);
        serde_json::to_writer(&mut buf, self).map_err(|e| e.to_string())?;
        Ok(crate::jsonbytes::canonicalize_quantities(buf))
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        Strategy::selectable_fields(self)
    }
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
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            field_path(parent)
        }
    }
}

fn decode_typed<K: serde::de::DeserializeOwned>(obj: Value) -> Result<(K, Vec<String>), String> {
    let mut unknown = Vec::new();
    let typed: K = serde_ignored::deserialize(obj, |p| unknown.push(field_path(&p)))
        .map_err(|e| e.to_string())?;
    Ok((typed, unknown))
}

/// The JSON pointer of a selectable field: its own path, except where upstream's field
/// name is not where the value lives.
fn field_pointer(name: &str) -> String {
    match name {
        // `status.podIP` is the first of `status.podIPs` (pod's `PodToSelectableFields`).
        "status.podIP" => "/status/podIPs/0/ip".to_string(),
        // Job's `status.successful` is `status.succeeded`.
        "status.successful" => "/status/succeeded".to_string(),
        // Event's `source` is its component.
        "source" => "/source/component".to_string(),
        // PersistentVolume(Claim)'s `name`.
        "name" => "/metadata/name".to_string(),
        _ => format!("/{}", name.replace('.', "/")),
    }
}

fn encode<K: serde::Serialize>(k: &K) -> Result<Value, String> {
    serde_json::to_value(k).map_err(|e| e.to_string())
}

/// Maps whose values are resource quantities, wherever they appear (container resources,
/// PV capacity, quota hard/used, limit ranges, node capacity and allocatable).
pub(crate) const QUANTITY_MAPS: &[&str] = &[
    "requests",
    "limits",
    "capacity",
    "allocatable",
    "hard",
    "used",
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
    "overhead",
];

/// Writes quantities in their canonical form ("0.5" → "500m", "1024Mi" → "1Gi") as
/// upstream's serialization does. Values that do not parse are left for validation.
pub fn canonicalize_quantities(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if QUANTITY_MAPS.contains(&k.as_str()) {
                    if let Value::Object(q) = child {
                        for qv in q.values_mut() {
                            if let Value::String(s) = qv {
                                if let Ok(c) = bosun_api::quantity::canonicalize(s) {
                                    *s = c;
                                }
                            }
                        }
                        continue;
                    }
                }
                canonicalize_quantities(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(canonicalize_quantities),
        _ => {}
    }
}

/// The [`KindOps`] of one k8s-openapi type.
pub struct Typed<K>(PhantomData<fn() -> K>);

impl<K: Strategy + Default + ClearStatus> Typed<K> {
    pub fn new() -> Self {
        Typed(PhantomData)
    }
}

impl<K: Strategy + Default + ClearStatus> Default for Typed<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Strategy + Default + ClearStatus> KindOps for Typed<K> {
    fn decode_json(&self, body: &[u8]) -> Result<(Box<dyn TypedObject>, Vec<String>), String> {
        let mut unknown = Vec::new();
        let mut de = serde_json::Deserializer::from_slice(body);
        let typed: K = serde_ignored::deserialize(&mut de, |p| unknown.push(field_path(&p)))
            .map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok((Box::new(typed), unknown))
    }

    fn decode(&self, obj: Value) -> Result<Decoded, String> {
        let (typed, unknown_fields) = decode_typed::<K>(obj)?;
        Ok(Decoded {
            value: encode(&typed)?,
            unknown_fields,
        })
    }

    fn admit_create(&self, obj: Value) -> Result<(Value, FieldErrorList, Vec<String>), String> {
        let (mut k, unknown) = decode_typed::<K>(obj)?;
        k.prepare_for_create();
        k.set_defaults();
        let mut errs = k.validate();
        errs.extend(k.validate_create());
        let mut v = encode(&k)?;
        canonicalize_quantities(&mut v);
        Ok((v, errs, unknown))
    }

    fn admit_update(&self, obj: Value, old: &Value) -> Result<(Value, FieldErrorList), String> {
        let mut k: K = serde_json::from_value(obj).map_err(|e| e.to_string())?;
        let old: K = serde_json::from_value(old.clone()).map_err(|e| e.to_string())?;
        k.prepare_for_update(&old);
        k.set_defaults();
        let mut errs = k.validate();
        errs.extend(k.validate_update(&old));
        let mut v = encode(&k)?;
        canonicalize_quantities(&mut v);
        Ok((v, errs))
    }

    fn admit_status_update(
        &self,
        obj: Value,
        old: &Value,
    ) -> Result<(Value, FieldErrorList), String> {
        let k: K = serde_json::from_value(obj).map_err(|e| e.to_string())?;
        let old: K = serde_json::from_value(old.clone()).map_err(|e| e.to_string())?;
        let errs = k.validate_status_update(&old);
        Ok((encode(&k)?, errs))
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        // Read straight from the JSON: every write of a pod (create, status update) needs
        // these, and a typed decode of the whole object for a few strings cost more than
        // the rest of the cache's work. The empty object's fields give the defaults.
        K::default()
            .selectable_fields()
            .into_iter()
            .map(|(name, default)| {
                let v = match obj.pointer(&field_pointer(name)) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Bool(b)) => b.to_string(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => default,
                };
                (name, v)
            })
            .collect()
    }

    fn field_names(&self) -> Vec<&'static str> {
        K::default()
            .selectable_fields()
            .into_iter()
            .map(|(f, _)| f)
            .collect()
    }

    fn has_generation(&self) -> bool {
        K::has_generation()
    }

    fn generation_fields(&self) -> &'static [&'static str] {
        K::generation_fields()
    }
}

/// The [`KindOps`] of a stored kind, by (storage group, kind).
pub fn ops_for(group: &str, kind: &str) -> Option<&'static dyn KindOps> {
    KINDS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map(|(_, _, ops)| ops.as_ref())
}

type Entry = (&'static str, &'static str, Box<dyn KindOps>);

static KINDS: once_cell::sync::Lazy<Vec<Entry>> = once_cell::sync::Lazy::new(|| {
    vec![
        (
            "",
            "Binding",
            Box::new(Typed::<api::core::v1::Binding>::new()) as Box<dyn KindOps>,
        ),
        (
            "",
            "ConfigMap",
            Box::new(Typed::<api::core::v1::ConfigMap>::new()),
        ),
        (
            "",
            "Endpoints",
            Box::new(Typed::<api::core::v1::Endpoints>::new()),
        ),
        ("", "Event", Box::new(Typed::<api::core::v1::Event>::new())),
        (
            "",
            "LimitRange",
            Box::new(Typed::<api::core::v1::LimitRange>::new()),
        ),
        (
            "",
            "Namespace",
            Box::new(Typed::<api::core::v1::Namespace>::new()),
        ),
        ("", "Node", Box::new(Typed::<api::core::v1::Node>::new())),
        (
            "",
            "PersistentVolumeClaim",
            Box::new(Typed::<api::core::v1::PersistentVolumeClaim>::new()),
        ),
        (
            "",
            "PersistentVolume",
            Box::new(Typed::<api::core::v1::PersistentVolume>::new()),
        ),
        ("", "Pod", Box::new(Typed::<api::core::v1::Pod>::new())),
        (
            "",
            "ReplicationController",
            Box::new(Typed::<api::core::v1::ReplicationController>::new()),
        ),
        (
            "",
            "ResourceQuota",
            Box::new(Typed::<api::core::v1::ResourceQuota>::new()),
        ),
        (
            "",
            "Secret",
            Box::new(Typed::<api::core::v1::Secret>::new()),
        ),
        (
            "",
            "ServiceAccount",
            Box::new(Typed::<api::core::v1::ServiceAccount>::new()),
        ),
        (
            "",
            "Service",
            Box::new(Typed::<api::core::v1::Service>::new()),
        ),
        (
            "apps",
            "ControllerRevision",
            Box::new(Typed::<api::apps::v1::ControllerRevision>::new()),
        ),
        (
            "apps",
            "DaemonSet",
            Box::new(Typed::<api::apps::v1::DaemonSet>::new()),
        ),
        (
            "apps",
            "Deployment",
            Box::new(Typed::<api::apps::v1::Deployment>::new()),
        ),
        (
            "apps",
            "ReplicaSet",
            Box::new(Typed::<api::apps::v1::ReplicaSet>::new()),
        ),
        (
            "apps",
            "StatefulSet",
            Box::new(Typed::<api::apps::v1::StatefulSet>::new()),
        ),
        (
            "autoscaling",
            "HorizontalPodAutoscaler",
            Box::new(Typed::<api::autoscaling::v2::HorizontalPodAutoscaler>::new()),
        ),
        (
            "batch",
            "CronJob",
            Box::new(Typed::<api::batch::v1::CronJob>::new()),
        ),
        (
            "batch",
            "Job",
            Box::new(Typed::<api::batch::v1::Job>::new()),
        ),
        (
            "coordination.k8s.io",
            "Lease",
            Box::new(Typed::<api::coordination::v1::Lease>::new()),
        ),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            Box::new(Typed::<api::discovery::v1::EndpointSlice>::new()),
        ),
        (
            "networking.k8s.io",
            "NetworkPolicy",
            Box::new(Typed::<api::networking::v1::NetworkPolicy>::new()),
        ),
        (
            "scheduling.k8s.io",
            "PriorityClass",
            Box::new(Typed::<api::scheduling::v1::PriorityClass>::new()),
        ),
        (
            "policy",
            "PodDisruptionBudget",
            Box::new(Typed::<api::policy::v1::PodDisruptionBudget>::new()),
        ),
        (
            "storage.k8s.io",
            "StorageClass",
            Box::new(Typed::<api::storage::v1::StorageClass>::new()),
        ),
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
            .decode(
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "bogus": 1},
                "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "x"}]}}),
            )
            .expect("decodes");
        assert_eq!(
            d.unknown_fields,
            vec![
                "metadata.bogus".to_string(),
                "spec.containers[0].imagePullPolicyy".to_string()
            ]
        );
        assert!(d.value.pointer("/metadata/bogus").is_none());
    }

    /// The JSON reading of selectable fields gives what the typed objects say, for every
    /// kind that has them, set and unset.
    #[test]
    fn selectable_fields_from_json_match_the_types() {
        fn check<K: Strategy + Default + serde::de::DeserializeOwned>(group: &str, v: Value) {
            let kind = v["kind"].as_str().unwrap_or_default().to_string();
            let ops = ops_for(group, &kind).expect("ops");
            let typed: K = serde_json::from_value(v.clone()).expect("typed");
            assert_eq!(ops.selectable_fields(&v), typed.selectable_fields(), "{v}");
        }
        use api::{apps, batch, core::v1 as core};
        check::<core::Pod>("", json!({"kind": "Pod", "metadata": {"name": "a"}}));
        check::<core::Pod>(
            "",
            json!({"kind": "Pod", "metadata": {"name": "a"},
                "spec": {"nodeName": "n1", "restartPolicy": "Never", "schedulerName": "s",
                    "serviceAccountName": "sa", "hostNetwork": true, "containers": []},
                "status": {"phase": "Running", "podIP": "10.0.0.1",
                    "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                    "nominatedNodeName": "n2"}}),
        );
        check::<core::Node>("", json!({"kind": "Node", "spec": {"unschedulable": true}}));
        check::<core::Node>("", json!({"kind": "Node"}));
        check::<core::Namespace>(
            "",
            json!({"kind": "Namespace", "status": {"phase": "Terminating"}}),
        );
        check::<core::ReplicationController>(
            "",
            json!({"kind": "ReplicationController", "status": {"replicas": 3}}),
        );
        check::<apps::v1::ReplicaSet>(
            "apps",
            json!({"kind": "ReplicaSet", "status": {"replicas": 2}}),
        );
        check::<batch::v1::Job>("batch", json!({"kind": "Job", "status": {"succeeded": 4}}));
        check::<batch::v1::Job>("batch", json!({"kind": "Job"}));
        check::<core::Event>(
            "",
            json!({"kind": "Event", "metadata": {"name": "e"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d", "uid": "u",
                    "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "spec"},
                "reason": "Started", "reportingComponent": "kubelet",
                "source": {"component": "kubelet"}, "type": "Normal"}),
        );
        check::<core::Service>(
            "",
            json!({"kind": "Service", "spec": {"clusterIP": "10.96.0.5", "type": "NodePort"}}),
        );
        check::<core::Secret>("", json!({"kind": "Secret", "type": "Opaque"}));
        check::<core::PersistentVolume>(
            "",
            json!({"kind": "PersistentVolume", "metadata": {"name": "pv0003"}}),
        );
        check::<core::PersistentVolumeClaim>(
            "",
            json!({"kind": "PersistentVolumeClaim", "metadata": {"name": "c"}}),
        );
    }

    #[test]
    fn quantities_are_canonical() {
        let mut v = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"cpu": "1000m"}}}]}});
        canonicalize_quantities(&mut v);
        assert_eq!(
            v["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "500m"
        );
        assert_eq!(
            v["spec"]["containers"][0]["resources"]["requests"]["memory"],
            "1Gi"
        );
        assert_eq!(
            v["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "1"
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        let ops = ops_for("", "Pod").expect("pod ops");
        let err = ops
            .decode(json!({"metadata": {"name": "a"}, "spec": {"containers": "nope"}}))
            .err();
        assert!(err.is_some());
    }
}
