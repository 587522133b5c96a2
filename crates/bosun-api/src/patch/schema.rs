//! The schema graph of every served kind, built once from the k8s-openapi schemars schemas: the
//! OpenAPI definitions the server publishes, and the typed view strategic merge patch walks to
//! know, at every path, which definition it is in and how each list is merged.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authn, autoscaling::v1 as autoscaling_v1,
    autoscaling::v2 as autoscaling_v2, batch::v1 as batch, coordination::v1 as coordination,
    core::v1 as core, discovery::v1 as discovery, events::v1 as events,
    networking::v1 as networking, policy::v1 as policy, scheduling::v1 as scheduling,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::{generate::SchemaSettings, JsonSchema, SchemaGenerator};
use once_cell::sync::Lazy;
use serde_json::{Map, Value};

use super::tables::PATCH_META;

/// The prefix of every `$ref` in the generated definitions.
pub const REF_PREFIX: &str = "#/components/schemas/";

type Register = fn(&mut SchemaGenerator) -> String;

fn register<T: JsonSchema>(gen: &mut SchemaGenerator) -> String {
    gen.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// Every kind with a published schema: the served kinds, the kinds their subresources take, and
/// the legacy `extensions/v1beta1` kinds, which share the `apps/v1` definitions.
static KINDS: &[(&str, &str, &str, Register)] = &[
    ("", "v1", "Binding", register::<core::Binding>),
    ("", "v1", "ConfigMap", register::<core::ConfigMap>),
    ("", "v1", "Endpoints", register::<core::Endpoints>),
    ("", "v1", "Event", register::<core::Event>),
    ("", "v1", "LimitRange", register::<core::LimitRange>),
    ("", "v1", "Namespace", register::<core::Namespace>),
    ("", "v1", "Node", register::<core::Node>),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        register::<core::PersistentVolumeClaim>,
    ),
    (
        "",
        "v1",
        "PersistentVolume",
        register::<core::PersistentVolume>,
    ),
    ("", "v1", "Pod", register::<core::Pod>),
    (
        "",
        "v1",
        "ReplicationController",
        register::<core::ReplicationController>,
    ),
    ("", "v1", "ResourceQuota", register::<core::ResourceQuota>),
    ("", "v1", "Secret", register::<core::Secret>),
    ("", "v1", "ServiceAccount", register::<core::ServiceAccount>),
    ("", "v1", "Service", register::<core::Service>),
    (
        "apps",
        "v1",
        "ControllerRevision",
        register::<apps::ControllerRevision>,
    ),
    ("apps", "v1", "DaemonSet", register::<apps::DaemonSet>),
    ("apps", "v1", "Deployment", register::<apps::Deployment>),
    ("apps", "v1", "ReplicaSet", register::<apps::ReplicaSet>),
    ("apps", "v1", "StatefulSet", register::<apps::StatefulSet>),
    (
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        register::<autoscaling_v1::HorizontalPodAutoscaler>,
    ),
    (
        "autoscaling",
        "v1",
        "Scale",
        register::<autoscaling_v1::Scale>,
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        register::<autoscaling_v2::HorizontalPodAutoscaler>,
    ),
    ("batch", "v1", "CronJob", register::<batch::CronJob>),
    ("batch", "v1", "Job", register::<batch::Job>),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        register::<coordination::Lease>,
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        register::<discovery::EndpointSlice>,
    ),
    ("events.k8s.io", "v1", "Event", register::<events::Event>),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        register::<networking::NetworkPolicy>,
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        register::<scheduling::PriorityClass>,
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        register::<policy::PodDisruptionBudget>,
    ),
    ("policy", "v1", "Eviction", register::<policy::Eviction>),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        register::<k8s_openapi::api::storage::v1::StorageClass>,
    ),
    (
        "authentication.k8s.io",
        "v1",
        "TokenRequest",
        register::<authn::TokenRequest>,
    ),
    (
        "extensions",
        "v1beta1",
        "Deployment",
        register::<apps::Deployment>,
    ),
    (
        "extensions",
        "v1beta1",
        "ReplicaSet",
        register::<apps::ReplicaSet>,
    ),
];

/// Definitions every group-version document refers to from its operations.
static SUPPORT: &[Register] = &[
    register::<meta::DeleteOptions>,
    register::<meta::Status>,
    register::<meta::ListMeta>,
    register::<meta::Patch>,
];

/// The definition names of the support definitions, in [`SUPPORT`] order.
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// One kind and the definition that describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindSchema {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The definition name, like `io.k8s.api.apps.v1.Deployment`.
    pub definition: String,
}

/// How a value is shaped at one place in the schema.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Shape {
    /// A named definition.
    Ref(String),
    Array(Box<Shape>),
    /// An object with arbitrary keys (`map[string]T`).
    Map(Box<Shape>),
    /// A string, number, boolean, int-or-string, quantity or time.
    Scalar,
    /// A free-form object (`FieldsV1`, `RawExtension`).
    Any,
}

/// A property of a struct definition with its patch metadata.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub shape: Shape,
    /// `merge`, `replace`, `retainKeys`, or two of them; empty for the default (replace lists,
    /// merge maps).
    pub strategies: Vec<&'static str>,
    /// The merge key of a merged list of objects; empty otherwise.
    pub merge_key: &'static str,
}

#[derive(Debug)]
pub(crate) enum Def {
    Struct {
        name: String,
        fields: HashMap<String, Field>,
    },
    Other(Shape),
}

/// All generated definitions, parsed once.
pub struct Registry {
    /// Every definition as JSON, with refs of the form `#/components/schemas/<name>`.
    pub definitions: Map<String, Value>,
    kinds: Vec<KindSchema>,
    defs: HashMap<String, Def>,
}

/// The registry, computed on first use.
pub static REGISTRY: Lazy<Registry> = Lazy::new(Registry::build);

impl Registry {
    fn build() -> Registry {
        let mut gen = SchemaGenerator::new(SchemaSettings::openapi3());
        let mut kinds = Vec::with_capacity(KINDS.len());
        for (group, version, kind, reg) in KINDS {
            let definition = reg(&mut gen);
            kinds.push(KindSchema {
                group,
                version,
                kind,
                definition,
            });
        }
        for reg in SUPPORT {
            reg(&mut gen);
        }
        let definitions = gen.take_definitions(true);
        let mut meta: HashMap<(&str, &str), (&'static str, &'static str)> = HashMap::new();
        for (def, prop, strategy, key) in PATCH_META {
            meta.insert((def, prop), (strategy, key));
        }
        let mut defs = HashMap::with_capacity(definitions.len());
        for (name, schema) in &definitions {
            let def = match schema.get("properties").and_then(Value::as_object) {
                Some(props) => {
                    let mut fields = HashMap::with_capacity(props.len());
                    for (prop, prop_schema) in props {
                        let (strategy, merge_key) = meta
                            .get(&(name.as_str(), prop.as_str()))
                            .copied()
                            .unwrap_or(("", ""));
                        let strategies = if strategy.is_empty() {
                            Vec::new()
                        } else {
                            strategy.split(',').collect()
                        };
                        fields.insert(
                            prop.clone(),
                            Field {
                                shape: parse_shape(prop_schema),
                                strategies,
                                merge_key,
                            },
                        );
                    }
                    Def::Struct {
                        name: name.clone(),
                        fields,
                    }
                }
                None => Def::Other(parse_shape(schema)),
            };
            defs.insert(name.clone(), def);
        }
        Registry {
            definitions,
            kinds,
            defs,
        }
    }

    /// Every kind with a schema.
    pub fn kinds(&self) -> &[KindSchema] {
        &self.kinds
    }

    /// The kind at this group and version.
    pub fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&KindSchema> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.kind == kind)
    }

    /// The names of every definition reachable from `roots` through `$ref`s, roots included.
    pub fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = roots.into_iter().map(str::to_string).collect();
        while let Some(name) = stack.pop() {
            if seen.contains(&name) {
                continue;
            }
            if let Some(schema) = self.definitions.get(&name) {
                collect_refs(schema, &mut stack);
                seen.insert(name);
            }
        }
        seen
    }

    /// The node of a named definition.
    pub(crate) fn definition_node(&self, name: &str) -> Node<'_> {
        match self.defs.get(name) {
            Some(Def::Struct { name, fields }) => Node::Struct(name, fields),
            Some(Def::Other(shape)) => self.node(shape),
            None => Node::Any,
        }
    }

    pub(crate) fn node<'a>(&'a self, shape: &'a Shape) -> Node<'a> {
        // Named definitions may alias other shapes; the depth bound only guards against a
        // cyclic alias, which the generated schemas never contain.
        let mut shape = shape;
        for _ in 0..8 {
            match shape {
                Shape::Ref(name) => match self.defs.get(name) {
                    Some(Def::Struct { name, fields }) => return Node::Struct(name, fields),
                    Some(Def::Other(inner)) => shape = inner,
                    None => return Node::Any,
                },
                Shape::Array(item) => return Node::Array(item),
                Shape::Map(value) => return Node::Map(value),
                Shape::Scalar => return Node::Scalar,
                Shape::Any => return Node::Any,
            }
        }
        Node::Any
    }
}

fn collect_refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(obj) => {
            for (k, v) in obj {
                if k == "$ref" {
                    if let Some(name) = v.as_str().and_then(|r| r.strip_prefix(REF_PREFIX)) {
                        out.push(name.to_string());
                    }
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Reads the shape of a schema the way kubectl's `PatchMetaFromOpenAPIV3` resolves one: the first
/// `allOf` entry, then its `$ref`.
pub(crate) fn parse_shape(schema: &Value) -> Shape {
    let Some(obj) = schema.as_object() else {
        return Shape::Any;
    };
    if let Some(name) = obj
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(REF_PREFIX))
    {
        return Shape::Ref(name.to_string());
    }
    if let Some(first) = obj
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return parse_shape(first);
    }
    let ty = obj.get("type").and_then(Value::as_str);
    if ty == Some("array") || obj.contains_key("items") {
        return Shape::Array(Box::new(
            obj.get("items").map(parse_shape).unwrap_or(Shape::Any),
        ));
    }
    if let Some(value) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        return Shape::Map(Box::new(parse_shape(value)));
    }
    if ty == Some("object") || obj.contains_key("properties") {
        return Shape::Any;
    }
    Shape::Scalar
}

/// Where a strategic merge patch is in the schema graph.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Node<'a> {
    /// A named struct definition and its fields.
    Struct(&'a str, &'a HashMap<String, Field>),
    Array(&'a Shape),
    Map(&'a Shape),
    Scalar,
    Any,
}

/// The patch metadata of one field.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PatchMeta<'a> {
    pub strategies: &'a [&'static str],
    pub merge_key: &'static str,
}

/// Why a field could not be looked up, in upstream's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LookupError {
    UnknownField { definition: String, field: String },
    NotAnObject { kind: &'static str },
    NotAList { field: String },
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::UnknownField { definition, field } => {
                write!(f, "unable to find api field in struct {definition} for the json field \"{field}\"")
            }
            LookupError::NotAnObject { kind } => {
                write!(f, "merging an object in json but data type is not map or struct, instead is: {kind}")
            }
            LookupError::NotAList { field } => write!(
                f,
                "field \"{field}\" is a list in the patch but not in the schema"
            ),
        }
    }
}

impl<'a> Node<'a> {
    fn kind_name(&self) -> &'static str {
        match self {
            Node::Struct(..) => "struct",
            Node::Array(_) => "slice",
            Node::Map(_) => "map",
            Node::Scalar => "string",
            Node::Any => "interface",
        }
    }

    /// The schema of `key` inside this object, as `LookupPatchMetadataForStruct` finds it.
    pub(crate) fn lookup_struct(
        &self,
        reg: &'a Registry,
        key: &str,
    ) -> Result<(Node<'a>, PatchMeta<'a>), LookupError> {
        match *self {
            Node::Struct(name, fields) => match fields.get(key) {
                Some(field) => Ok((
                    reg.node(&field.shape),
                    PatchMeta {
                        strategies: &field.strategies,
                        merge_key: field.merge_key,
                    },
                )),
                None => Err(LookupError::UnknownField {
                    definition: short_name(name).to_string(),
                    field: key.to_string(),
                }),
            },
            Node::Map(value) => Ok((reg.node(value), PatchMeta::default())),
            Node::Any => Ok((Node::Any, PatchMeta::default())),
            Node::Array(_) | Node::Scalar => Err(LookupError::NotAnObject {
                kind: self.kind_name(),
            }),
        }
    }

    /// The schema of the items of the list `key` inside this object, as
    /// `LookupPatchMetadataForSlice` finds it.
    pub(crate) fn lookup_slice(
        &self,
        reg: &'a Registry,
        key: &str,
    ) -> Result<(Node<'a>, PatchMeta<'a>), LookupError> {
        let (node, meta) = self.lookup_struct(reg, key)?;
        match node {
            Node::Array(item) => Ok((reg.node(item), meta)),
            Node::Any => Ok((Node::Any, meta)),
            _ => Err(LookupError::NotAList {
                field: key.to_string(),
            }),
        }
    }

    /// The definition name when this is a struct.
    pub(crate) fn definition(&self) -> Option<&'a str> {
        match self {
            Node::Struct(name, _) => Some(name),
            _ => None,
        }
    }
}

/// `io.k8s.api.core.v1.PodSpec` → `PodSpec`, as Go names the struct in its errors.
fn short_name(definition: &str) -> &str {
    definition.rsplit('.').next().unwrap_or(definition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::tables::{LIST_TYPES, MAP_TYPES};
    use crate::resources::RESOURCES;

    #[test]
    fn every_served_kind_has_a_schema() {
        for r in RESOURCES {
            let k = REGISTRY
                .kind(r.group, r.version, r.kind)
                .unwrap_or_else(|| panic!("no schema for {}/{} {}", r.group, r.version, r.kind));
            assert!(
                REGISTRY.definitions.contains_key(&k.definition),
                "{} not generated",
                k.definition
            );
        }
        assert_eq!(
            REGISTRY
                .kind("extensions", "v1beta1", "Deployment")
                .map(|k| k.definition.as_str()),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        for name in [DELETE_OPTIONS, STATUS, LIST_META, PATCH] {
            assert!(REGISTRY.definitions.contains_key(name), "{name}");
        }
    }

    #[test]
    fn every_table_entry_names_a_generated_property() {
        // The tables come from upstream's OpenAPI; k8s-openapi's schemas must have the same
        // definitions and properties, or a merge key would silently be lost.
        let check = |def: &str, prop: &str| {
            let schema = REGISTRY
                .definitions
                .get(def)
                .unwrap_or_else(|| panic!("{def} missing"));
            if !prop.is_empty() {
                assert!(
                    schema.pointer(&format!("/properties/{prop}")).is_some(),
                    "{def}.{prop} missing"
                );
            }
        };
        for (def, prop, _, _) in PATCH_META {
            check(def, prop);
        }
        for (def, prop, _, _) in LIST_TYPES {
            check(def, prop);
        }
        for (def, prop, _) in MAP_TYPES {
            check(def, prop);
        }
    }

    #[test]
    fn refs_resolve_and_no_inline_objects() {
        for (name, schema) in &REGISTRY.definitions {
            let mut refs = Vec::new();
            collect_refs(schema, &mut refs);
            for r in refs {
                assert!(
                    REGISTRY.definitions.contains_key(&r),
                    "{name} refers to missing {r}"
                );
            }
            // Strategic merge patch walks named definitions only; an inline object schema would
            // hide its fields' merge keys.
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (prop, s) in props {
                    assert!(
                        s.get("properties").is_none(),
                        "{name}.{prop} is an inline object"
                    );
                }
            }
        }
    }

    #[test]
    fn lookups_follow_refs_and_merge_keys() {
        let reg = &*REGISTRY;
        let pod = reg.definition_node("io.k8s.api.core.v1.Pod");
        let (spec, _) = pod.lookup_struct(reg, "spec").expect("spec");
        assert_eq!(spec.definition(), Some("io.k8s.api.core.v1.PodSpec"));
        let (container, meta) = spec.lookup_slice(reg, "containers").expect("containers");
        assert_eq!(container.definition(), Some("io.k8s.api.core.v1.Container"));
        assert_eq!((meta.strategies, meta.merge_key), (&["merge"][..], "name"));
        let (_, meta) = spec.lookup_slice(reg, "volumes").expect("volumes");
        assert_eq!(meta.strategies, &["merge", "retainKeys"][..]);
        let (_, meta) = container.lookup_slice(reg, "ports").expect("ports");
        assert_eq!(meta.merge_key, "containerPort");
        let (labels, _) = pod
            .lookup_struct(reg, "metadata")
            .and_then(|(m, _)| m.lookup_struct(reg, "labels"))
            .expect("labels");
        assert!(matches!(labels, Node::Map(_)));
        let err = spec.lookup_struct(reg, "nope").expect_err("unknown field");
        assert_eq!(
            err.to_string(),
            "unable to find api field in struct PodSpec for the json field \"nope\""
        );
    }
}
