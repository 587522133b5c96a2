//! Patches as the API server applies them: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch.
//!
//! Each takes the stored object as JSON and the decoded patch and returns the patched JSON; the
//! caller decodes, defaults and validates the result as for an update. Errors carry the HTTP
//! status upstream answers with ([`PatchError::status_code`]).

pub mod schema;
mod strategic;
pub(crate) mod tables;

use serde_json::{Map, Value};

use self::schema::{Node, REGISTRY};

/// The patch types a PATCH request may name in its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply; not applied here).
    Apply,
}

impl PatchType {
    /// The patch type of a request's `Content-Type`, parameters ignored.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a patch of this type at all (400).
    #[error("invalid patch body: {0}")]
    InvalidBody(String),
    /// A JSON patch operation does not apply to the object (422).
    #[error("json patch operation {index} ({op} {path}): {reason}")]
    JsonPatchOperation {
        index: usize,
        op: String,
        path: String,
        reason: String,
    },
    /// A strategic merge patch directive is malformed (400, as upstream's `ErrBadPatchFormat*`).
    #[error("{}{message}", at(.path))]
    BadRequest { path: String, message: String },
    /// The strategic merge patch is well-formed but cannot apply (422, as upstream's
    /// `ErrNoListOfLists`).
    #[error("{}{message}", at(.path))]
    Unprocessable { path: String, message: String },
    /// The strategic merge patch does not fit the object or its schema: an unknown field, a
    /// missing merge key, a list of mixed types. Upstream returns these unclassified, which its
    /// API server answers as 500 with an empty reason; [`PatchError::status_code`] does the same.
    #[error("{}{message}", at(.path))]
    Unmergeable { path: String, message: String },
    /// Strategic merge patch needs a built-in kind (415, as for custom resources upstream).
    #[error("strategic merge patch is not supported for {0}")]
    StrategicUnsupported(String),
    /// The patch type is not applied by this module (415).
    #[error("patch type {0} is not supported here")]
    UnsupportedType(&'static str),
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

impl PatchError {
    /// The HTTP status upstream answers this error with.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::InvalidBody(_) | PatchError::BadRequest { .. } => 400,
            PatchError::JsonPatchOperation { .. } | PatchError::Unprocessable { .. } => 422,
            PatchError::Unmergeable { .. } => 500,
            PatchError::StrategicUnsupported(_) | PatchError::UnsupportedType(_) => 415,
        }
    }
}

/// Where a strategic merge patch starts in the schema graph: the root definition of a kind.
#[derive(Clone, Copy, Debug)]
pub struct PatchSchema {
    node: Node<'static>,
}

impl PatchSchema {
    /// The schema of a served kind (`("apps", "v1", "Deployment")`); subresource kinds
    /// (`autoscaling/v1 Scale`) and the legacy `extensions/v1beta1` kinds included.
    pub fn for_kind(group: &str, version: &str, kind: &str) -> Option<PatchSchema> {
        let k = REGISTRY.kind(group, version, kind)?;
        PatchSchema::for_definition(&k.definition)
    }

    /// The schema of a named definition (`io.k8s.api.core.v1.Pod`).
    pub fn for_definition(name: &str) -> Option<PatchSchema> {
        let reg: &'static schema::Registry = &REGISTRY;
        match reg.definition_node(name) {
            node @ Node::Struct(..) => Some(PatchSchema { node }),
            _ => None,
        }
    }

    /// The definition this schema starts at.
    pub fn definition(&self) -> &'static str {
        self.node.definition().unwrap_or("")
    }
}

/// Applies a JSON patch (RFC 6902) given as its decoded JSON array.
pub fn apply_json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    if patch.is_null() {
        // Go decodes `null` into an empty patch.
        return Ok(original.clone());
    }
    let ops: Vec<json_patch::PatchOperation> = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::InvalidBody(format!("json patch: {e}")))?;
    let mut doc = original.clone();
    for (index, op) in ops.iter().enumerate() {
        json_patch::patch(&mut doc, std::slice::from_ref(op))
            .map_err(|e| json_patch_error(index, op, &e))?;
    }
    Ok(doc)
}

fn json_patch_error(
    index: usize,
    op: &json_patch::PatchOperation,
    e: &json_patch::PatchError,
) -> PatchError {
    use json_patch::{PatchErrorKind, PatchOperation as Op};
    let (name, from) = match op {
        Op::Add(_) => ("add", None),
        Op::Remove(_) => ("remove", None),
        Op::Replace(_) => ("replace", None),
        Op::Move(m) => ("move", Some(m.from.to_string())),
        Op::Copy(c) => ("copy", Some(c.from.to_string())),
        Op::Test(_) => ("test", None),
    };
    let path = op.path().to_string();
    let reason = match &e.kind {
        PatchErrorKind::TestFailed => format!("the value at {path} does not match"),
        PatchErrorKind::InvalidFromPointer => {
            format!("\"from\" path {} does not exist", from.unwrap_or_default())
        }
        PatchErrorKind::InvalidPointer if name == "add" => {
            format!("the parent of {path} does not exist or the index is out of range")
        }
        PatchErrorKind::InvalidPointer => format!("path {path} does not exist"),
        PatchErrorKind::CannotMoveInsideItself => "cannot move a value inside itself".to_string(),
        other => other.to_string(),
    };
    PatchError::JsonPatchOperation {
        index,
        op: name.to_string(),
        path,
        reason,
    }
}

/// Applies a JSON merge patch (RFC 7386) as evanphx/json-patch's `MergePatch` does for the API
/// server: objects merge, `null` deletes, anything else replaces; nulls are pruned from values
/// that land where nothing (or no object) was.
pub fn apply_merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        // Upstream's ErrBadJSONPatch; `null` is one too.
        return Err(PatchError::InvalidBody("Invalid JSON Patch".to_string()));
    };
    match original {
        Value::Object(doc) => {
            let mut doc = doc.clone();
            merge_docs(&mut doc, patch.clone());
            Ok(Value::Object(doc))
        }
        _ => {
            let mut v = Value::Object(patch.clone());
            prune_nulls(&mut v);
            Ok(v)
        }
    }
}

fn merge_docs(doc: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            doc.shift_remove(&k);
            continue;
        }
        match doc.get_mut(&k) {
            Some(cur) if !cur.is_null() => {
                let taken = cur.take();
                *cur = merge_value(taken, v);
            }
            _ => {
                let mut v = v;
                prune_nulls(&mut v);
                doc.insert(k, v);
            }
        }
    }
}

fn merge_value(cur: Value, patch: Value) -> Value {
    match (cur, patch) {
        (Value::Object(mut c), Value::Object(p)) => {
            merge_docs(&mut c, p);
            Value::Object(c)
        }
        (Value::Object(_), p) => p,
        (_, mut p) => {
            prune_nulls(&mut p);
            p
        }
    }
}

/// Drops null members of objects, also inside arrays (evanphx's `pruneNulls`).
fn prune_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(prune_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// Applies a strategic merge patch to an object of the kind `schema` describes, exactly as the
/// API server does (`StrategicMergeMapPatch`): lists with a merge key merge by key, merged lists
/// of primitives merge as sets, other lists are replaced, `null` deletes, and the directives
/// `$patch`, `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>` apply.
pub fn apply_strategic_merge_patch(
    original: &Value,
    patch: &Value,
    schema: &PatchSchema,
) -> Result<Value, PatchError> {
    let patch = match patch {
        Value::Object(p) => p.clone(),
        // Go decodes `null` into an empty patch.
        Value::Null => return Ok(original.clone()),
        other => {
            return Err(PatchError::InvalidBody(format!(
                "strategic merge patch must be a JSON object, not {}",
                json_type(other)
            )))
        }
    };
    let original = match original {
        Value::Object(o) => o.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::InvalidBody(format!(
                "cannot patch a {} with a strategic merge patch",
                json_type(other)
            )))
        }
    };
    let merger = strategic::Merger { reg: &REGISTRY };
    merger
        .merge_map(original, patch, schema.node, "")
        .map(Value::Object)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Decodes a PATCH body and applies it to `original`, an object of kind `group/version kind`.
pub fn apply_patch(
    patch_type: PatchType,
    original: &Value,
    body: &[u8],
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Value, PatchError> {
    if patch_type == PatchType::Apply {
        return Err(PatchError::UnsupportedType(PatchType::Apply.content_type()));
    }
    let patch: Value =
        serde_json::from_slice(body).map_err(|e| PatchError::InvalidBody(e.to_string()))?;
    match patch_type {
        PatchType::Json => apply_json_patch(original, &patch),
        PatchType::Merge => apply_merge_patch(original, &patch),
        PatchType::Strategic => {
            let schema = PatchSchema::for_kind(group, version, kind).ok_or_else(|| {
                PatchError::StrategicUnsupported(gvk_string(group, version, kind))
            })?;
            apply_strategic_merge_patch(original, &patch, &schema)
        }
        PatchType::Apply => Err(PatchError::UnsupportedType(PatchType::Apply.content_type())),
    }
}

fn gvk_string(group: &str, version: &str, kind: &str) -> String {
    if group.is_empty() {
        format!("{version}, Kind={kind}")
    } else {
        format!("{group}/{version}, Kind={kind}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
            Some(PatchType::Strategic)
        );
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn json_patch_applies_and_reports_the_failing_operation() {
        let obj = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"replicas": 1, "list": [1, 2]}});
        let patch = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels/y", "value": "2"},
            {"op": "remove", "path": "/spec/list/0"},
            {"op": "test", "path": "/metadata/name", "value": "a"},
            {"op": "copy", "from": "/metadata/name", "path": "/metadata/generateName"},
        ]);
        let out = apply_json_patch(&obj, &patch).expect("applies");
        assert_eq!(out["spec"], json!({"replicas": 3, "list": [2]}));
        assert_eq!(out["metadata"]["labels"], json!({"x": "1", "y": "2"}));
        assert_eq!(out["metadata"]["generateName"], json!("a"));

        let err = apply_json_patch(&obj, &json!([{"op": "test", "path": "/spec/replicas", "value": 1}, {"op": "replace", "path": "/spec/nope/x", "value": 1}])).expect_err("fails");
        assert_eq!(err.status_code(), 422);
        assert_eq!(
            err.to_string(),
            "json patch operation 1 (replace /spec/nope/x): path /spec/nope/x does not exist"
        );
        let err = apply_json_patch(
            &obj,
            &json!([{"op": "test", "path": "/spec/replicas", "value": 2}]),
        )
        .expect_err("test fails");
        assert_eq!(err.to_string(), "json patch operation 0 (test /spec/replicas): the value at /spec/replicas does not match");

        let err = apply_json_patch(&obj, &json!({"op": "add"})).expect_err("not a list");
        assert_eq!(err.status_code(), 400);
        let err = apply_json_patch(&obj, &json!([{"op": "frobnicate", "path": "/a"}]))
            .expect_err("bad op");
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            apply_json_patch(&obj, &Value::Null).expect("null is empty"),
            obj
        );
    }

    #[test]
    fn merge_patch_follows_rfc_7386_and_evanphx() {
        let obj = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let out = apply_merge_patch(
            &obj,
            &json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"x": null, "y": 1}}),
        )
        .expect("applies");
        assert_eq!(
            out,
            json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {"y": 1}})
        );
        // RFC 7386 appendix A cases.
        assert_eq!(
            apply_merge_patch(&json!({"a": [{"b": "c"}]}), &json!({"a": [1]})).expect("ok"),
            json!({"a": [1]})
        );
        assert_eq!(
            apply_merge_patch(&json!({"a": "foo"}), &json!({"a": null})).expect("ok"),
            json!({})
        );
        assert_eq!(
            apply_merge_patch(&json!({"e": null}), &json!({"a": 1})).expect("ok"),
            json!({"e": null, "a": 1})
        );
        assert_eq!(
            apply_merge_patch(&json!({"a": "foo"}), &json!({"a": {"bb": {"ccc": null}}}))
                .expect("ok"),
            json!({"a": {"bb": {}}})
        );
        // evanphx prunes nulls inside arrays that replace a non-object.
        assert_eq!(
            apply_merge_patch(&json!({"a": 1}), &json!({"a": [{"x": null, "y": 1}]})).expect("ok"),
            json!({"a": [{"y": 1}]})
        );
        let err = apply_merge_patch(&obj, &json!([1])).expect_err("not an object");
        assert_eq!(err.status_code(), 400);
        assert!(apply_merge_patch(&obj, &Value::Null).is_err());
    }

    #[test]
    fn kubectl_scale_and_apply_patch_dispatch() {
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}});
        let out = apply_patch(
            PatchType::Merge,
            &deploy,
            br#"{"spec":{"replicas":3}}"#,
            "apps",
            "v1",
            "Deployment",
        )
        .expect("scale");
        assert_eq!(out["spec"]["replicas"], json!(3));
        let out = apply_patch(
            PatchType::Strategic,
            &deploy,
            br#"{"spec":{"replicas":4}}"#,
            "extensions",
            "v1beta1",
            "Deployment",
        )
        .expect("legacy group");
        assert_eq!(out["spec"]["replicas"], json!(4));
        let err = apply_patch(
            PatchType::Strategic,
            &deploy,
            b"{}",
            "example.com",
            "v1",
            "Widget",
        )
        .expect_err("unknown kind");
        assert_eq!(err.status_code(), 415);
        let err = apply_patch(
            PatchType::Strategic,
            &deploy,
            b"{not json",
            "apps",
            "v1",
            "Deployment",
        )
        .expect_err("bad json");
        assert_eq!(err.status_code(), 400);
        let err = apply_patch(
            PatchType::Strategic,
            &deploy,
            b"[1]",
            "apps",
            "v1",
            "Deployment",
        )
        .expect_err("not an object");
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            apply_patch(
                PatchType::Strategic,
                &deploy,
                b"null",
                "apps",
                "v1",
                "Deployment"
            )
            .expect("null"),
            deploy
        );
        let scale = json!({"kind": "Scale", "spec": {"replicas": 2}});
        let out = apply_patch(
            PatchType::Strategic,
            &scale,
            br#"{"spec":{"replicas":5}}"#,
            "autoscaling",
            "v1",
            "Scale",
        )
        .expect("scale subresource");
        assert_eq!(out["spec"]["replicas"], json!(5));
    }
}
