//! The OpenAPI v3 documents the API server publishes under `/openapi/v3`, one per served
//! group-version, shaped as kubectl v1.34 reads them: `apply` finds the PATCH operation of a kind
//! by its `x-kubernetes-group-version-kind` (to build strategic merge patches from
//! `x-kubernetes-patch-*` and to send `fieldValidation=Strict` when the operation lists that
//! parameter), and `explain` finds the schema whose `x-kubernetes-group-version-kind` names the
//! kind and walks its properties through `allOf`/`$ref`.
//!
//! Documents are built once, on first use, from the k8s-openapi schemas, with keys sorted so the
//! bytes (and the hash in their URL, which kubectl's cache keys on) are stable.

use std::collections::{BTreeMap, HashMap};

use once_cell::sync::Lazy;
use serde_json::{json, Map, Value};

use crate::patch::schema::{DELETE_OPTIONS, LIST_META, PATCH, REF_PREFIX, REGISTRY, STATUS};
use crate::patch::tables::{LIST_TYPES, MAP_TYPES, PATCH_META};
use crate::resources::{self, ResourceDef, Verb};

/// The definition of the `Scale` subresource's kind.
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// One group-version document, serialized once.
#[derive(Debug)]
pub struct V3Document {
    /// `api/v1` or `apis/apps/v1`: the key in the index.
    pub path: String,
    pub group: &'static str,
    pub version: &'static str,
    /// The document as JSON bytes, keys sorted.
    pub json: Vec<u8>,
    /// A stable digest of `json`, uppercase hex.
    pub hash: String,
}

impl V3Document {
    /// `/openapi/v3/apis/apps/v1?hash=<HASH>`, as the index lists it.
    pub fn server_relative_url(&self) -> String {
        format!("/openapi/v3/{}?hash={}", self.path, self.hash)
    }

    /// The quoted entity tag for the `ETag` header.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.hash)
    }

    /// The document parsed back into JSON.
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

static DOCUMENTS: Lazy<BTreeMap<String, V3Document>> = Lazy::new(|| {
    resources::groups()
        .into_iter()
        .flat_map(|(group, versions)| versions.into_iter().map(move |version| (group, version)))
        .map(|(group, version)| {
            let path = gv_path(group, version);
            let json = serde_json::to_vec(&build_document(group, version)).unwrap_or_default();
            let hash = digest(&json);
            (
                path.clone(),
                V3Document {
                    path,
                    group,
                    version,
                    json,
                    hash,
                },
            )
        })
        .collect()
});

/// `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}`
/// for every served group-version.
pub fn v3_index() -> Value {
    let mut paths = Map::new();
    for (path, doc) in DOCUMENTS.iter() {
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": doc.server_relative_url()}),
        );
    }
    json!({ "paths": paths })
}

/// The document of one group-version: `api/v1`, `apis/apps/v1` (a leading `/` or
/// `openapi/v3/` is accepted).
pub fn v3_document(gv_path: &str) -> Option<&'static V3Document> {
    let p = gv_path.trim_matches('/');
    let p = p.strip_prefix("openapi/v3/").unwrap_or(p);
    DOCUMENTS.get(p)
}

/// Every document, in index order.
pub fn v3_documents() -> impl Iterator<Item = &'static V3Document> {
    DOCUMENTS.values()
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// FNV-1a, 128 bits: stable across builds and platforms, which is all the URL hash needs.
fn digest(bytes: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let mut h = OFFSET;
    for b in bytes {
        h ^= u128::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:032X}")
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// `coordination.k8s.io` → `Coordination`, `` → `Core`: upstream's operation id prefix.
fn group_camel(group: &str) -> String {
    let first = group.split('.').next().unwrap_or("");
    if first.is_empty() {
        return "Core".to_string();
    }
    capitalize(first)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn tag(group: &str, version: &str) -> String {
    let g = group
        .split('.')
        .next()
        .filter(|g| !g.is_empty())
        .unwrap_or("core");
    format!("{g}_{version}")
}

fn param(name: &str, location: &str, ty: &str, description: &str) -> Value {
    let mut p = json!({"description": description, "in": location, "name": name, "schema": {"type": ty, "uniqueItems": true}});
    if location == "path" {
        p["required"] = Value::Bool(true);
    }
    p
}

fn query(name: &str) -> Value {
    let (ty, description) = match name {
        "allowWatchBookmarks" => ("boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion."),
        "continue" => ("string", "The continue option should be set when retrieving more results from the server, with the value of the continue field of the previous list response."),
        "fieldSelector" => ("string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
        "labelSelector" => ("string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
        "limit" => ("integer", "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata."),
        "resourceVersion" => ("string", "resourceVersion sets a constraint on what resource versions a request may be served from. Defaults to unset."),
        "resourceVersionMatch" => ("string", "resourceVersionMatch determines how resourceVersion is applied to list calls. Defaults to unset."),
        "sendInitialEvents" => ("boolean", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection."),
        "timeoutSeconds" => ("integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."),
        "watch" => ("boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."),
        "dryRun" => ("string", "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed"),
        "fieldManager" => ("string", "fieldManager is a name associated with the actor or entity that is making these changes."),
        "fieldValidation" => ("string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered."),
        "force" => ("boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."),
        "gracePeriodSeconds" => ("integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately."),
        "ignoreStoreReadErrorWithClusterBreakingPotential" => ("boolean", "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error."),
        "orphanDependents" => ("boolean", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned."),
        "propagationPolicy" => ("string", "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'."),
        "pretty" => ("string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."),
        _ => ("string", ""),
    };
    param(name, "query", ty, description)
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
const DELETE_COLLECTION_PARAMS: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];

fn queries(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|n| query(n)).collect())
}

fn responses(codes: &[(&str, &str)], schema: &str) -> Value {
    let mut out = Map::new();
    for (code, description) in codes {
        out.insert(
            code.to_string(),
            json!({"content": {"application/json": {"schema": schema_ref(schema)}, "application/yaml": {"schema": schema_ref(schema)}}, "description": description}),
        );
    }
    out.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(out)
}

const OK: (&str, &str) = ("200", "OK");
const CREATED: (&str, &str) = ("201", "Created");
const ACCEPTED: (&str, &str) = ("202", "Accepted");

/// Names one operation of one kind.
struct OpName<'a> {
    group: &'a str,
    version: &'a str,
    /// The kind the operation takes and returns, for `x-kubernetes-group-version-kind`.
    gvk: Value,
    /// `Deployment`, `DeploymentStatus`, `DeploymentScale`.
    subject: String,
    namespaced: bool,
}

impl OpName<'_> {
    fn operation(
        &self,
        verb: &str,
        action: &str,
        description: String,
        params: Value,
        body: Option<Value>,
        responses: Value,
    ) -> Value {
        let scope = if self.namespaced && !verb.ends_with("ForAllNamespaces") {
            "Namespaced"
        } else {
            ""
        };
        let (verb, suffix) = match verb.strip_suffix("ForAllNamespaces") {
            Some(v) => (v, "ForAllNamespaces"),
            None => (verb, ""),
        };
        let id = format!(
            "{verb}{}{}{scope}{}{suffix}",
            group_camel(self.group),
            capitalize(self.version),
            self.subject
        );
        let mut op = json!({
            "description": description,
            "operationId": id,
            "parameters": params,
            "responses": responses,
            "tags": [tag(self.group, self.version)],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": self.gvk,
        });
        if let Some(body) = body {
            op["requestBody"] = body;
        }
        op
    }
}

fn body_of(schema: &str) -> Value {
    json!({"content": {"*/*": {"schema": schema_ref(schema)}}, "required": true})
}

fn patch_body() -> Value {
    let mut content = Map::new();
    for ty in [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        content.insert(ty.to_string(), json!({"schema": schema_ref(PATCH)}));
    }
    json!({"content": content, "required": true})
}

fn path_params(namespaced: bool, named: Option<&str>) -> Value {
    let mut out = Vec::new();
    if let Some(kind) = named {
        out.push(param(
            "name",
            "path",
            "string",
            &format!("name of the {kind}"),
        ));
    }
    if namespaced {
        out.push(param(
            "namespace",
            "path",
            "string",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    out.push(query("pretty"));
    Value::Array(out)
}

/// The paths of one resource: collection, item, and its status and scale subresources.
fn resource_paths(r: &ResourceDef, definition: &str, paths: &mut Map<String, Value>) {
    let base = r.gv_path();
    let collection = if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{base}/{}", r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let name = OpName {
        group: r.group,
        version: r.version,
        gvk: gvk(r.group, r.version, r.kind),
        subject: r.kind.to_string(),
        namespaced: r.namespaced,
    };
    let list = format!("{definition}List");
    let kind = r.kind;

    let mut coll = Map::new();
    if r.has_verb(Verb::List) {
        coll.insert(
            "get".into(),
            name.operation(
                "list",
                "list",
                format!("list or watch objects of kind {kind}"),
                queries(LIST_PARAMS),
                None,
                responses(&[OK], &list),
            ),
        );
    }
    if r.has_verb(Verb::Create) {
        coll.insert(
            "post".into(),
            name.operation(
                "create",
                "post",
                format!("create a {kind}"),
                queries(WRITE_PARAMS),
                Some(body_of(definition)),
                responses(&[OK, CREATED, ACCEPTED], definition),
            ),
        );
    }
    if r.has_verb(Verb::DeleteCollection) {
        coll.insert(
            "delete".into(),
            name.operation(
                "deleteCollection",
                "deletecollection",
                format!("delete collection of {kind}"),
                queries(DELETE_COLLECTION_PARAMS),
                Some(json!({"content": {"*/*": {"schema": schema_ref(DELETE_OPTIONS)}}})),
                responses(&[OK], STATUS),
            ),
        );
    }
    if !coll.is_empty() {
        coll.insert("parameters".into(), path_params(r.namespaced, None));
        paths.insert(collection.clone(), Value::Object(coll));
    }

    let mut one = Map::new();
    if r.has_verb(Verb::Get) {
        one.insert(
            "get".into(),
            name.operation(
                "read",
                "get",
                format!("read the specified {kind}"),
                json!([]),
                None,
                responses(&[OK], definition),
            ),
        );
    }
    if r.has_verb(Verb::Update) {
        one.insert(
            "put".into(),
            name.operation(
                "replace",
                "put",
                format!("replace the specified {kind}"),
                queries(WRITE_PARAMS),
                Some(body_of(definition)),
                responses(&[OK, CREATED], definition),
            ),
        );
    }
    if r.has_verb(Verb::Patch) {
        one.insert(
            "patch".into(),
            name.operation(
                "patch",
                "patch",
                format!("partially update the specified {kind}"),
                queries(PATCH_PARAMS),
                Some(patch_body()),
                responses(&[OK, CREATED], definition),
            ),
        );
    }
    if r.has_verb(Verb::Delete) {
        one.insert(
            "delete".into(),
            name.operation(
                "delete",
                "delete",
                format!("delete a {kind}"),
                queries(DELETE_PARAMS),
                Some(json!({"content": {"*/*": {"schema": schema_ref(DELETE_OPTIONS)}}})),
                responses(&[OK, ACCEPTED], STATUS),
            ),
        );
    }
    if !one.is_empty() {
        one.insert("parameters".into(), path_params(r.namespaced, Some(kind)));
        paths.insert(item.clone(), Value::Object(one));
    }

    if r.namespaced && r.has_verb(Verb::List) {
        let all = OpName {
            group: r.group,
            version: r.version,
            gvk: gvk(r.group, r.version, r.kind),
            subject: r.kind.to_string(),
            namespaced: true,
        };
        let get = all.operation(
            "listForAllNamespaces",
            "list",
            format!("list or watch objects of kind {kind}"),
            queries(LIST_PARAMS),
            None,
            responses(&[OK], &list),
        );
        paths.insert(
            format!("{base}/{}", r.plural),
            json!({"get": get, "parameters": [query("pretty")]}),
        );
    }

    for sub in r.subresources {
        let (schema, sub_gvk, subject) = match sub.name {
            "status" => (
                definition,
                gvk(r.group, r.version, r.kind),
                format!("{kind}Status"),
            ),
            "scale" => (
                SCALE,
                gvk("autoscaling", "v1", "Scale"),
                format!("{kind}Scale"),
            ),
            _ => continue,
        };
        let sub_name = OpName {
            group: r.group,
            version: r.version,
            gvk: sub_gvk,
            subject,
            namespaced: r.namespaced,
        };
        let what = format!("{} of the specified {kind}", sub.name);
        let mut ops = Map::new();
        if sub.verbs.contains(&"get") {
            ops.insert(
                "get".into(),
                sub_name.operation(
                    "read",
                    "get",
                    format!("read {what}"),
                    json!([]),
                    None,
                    responses(&[OK], schema),
                ),
            );
        }
        if sub.verbs.contains(&"update") {
            ops.insert(
                "put".into(),
                sub_name.operation(
                    "replace",
                    "put",
                    format!("replace {what}"),
                    queries(WRITE_PARAMS),
                    Some(body_of(schema)),
                    responses(&[OK, CREATED], schema),
                ),
            );
        }
        if sub.verbs.contains(&"patch") {
            ops.insert(
                "patch".into(),
                sub_name.operation(
                    "patch",
                    "patch",
                    format!("partially update {what}"),
                    queries(PATCH_PARAMS),
                    Some(patch_body()),
                    responses(&[OK, CREATED], schema),
                ),
            );
        }
        ops.insert("parameters".into(), path_params(r.namespaced, Some(kind)));
        paths.insert(format!("{item}/{}", sub.name), Value::Object(ops));
    }
}

/// One extension on a definition: the property it goes on (empty for the definition itself),
/// its key and its value.
type Extension = (&'static str, &'static str, Value);

/// The upstream extensions of every definition: patch strategies, list and map types.
static EXTENSIONS: Lazy<HashMap<&'static str, Vec<Extension>>> = Lazy::new(|| {
    let mut out: HashMap<&'static str, Vec<Extension>> = HashMap::new();
    for (def, prop, strategy, key) in PATCH_META {
        let e = out.entry(def).or_default();
        e.push((prop, "x-kubernetes-patch-strategy", Value::from(*strategy)));
        if !key.is_empty() {
            e.push((prop, "x-kubernetes-patch-merge-key", Value::from(*key)));
        }
    }
    for (def, prop, list_type, keys) in LIST_TYPES {
        let e = out.entry(def).or_default();
        e.push((prop, "x-kubernetes-list-type", Value::from(*list_type)));
        if !keys.is_empty() {
            e.push((
                prop,
                "x-kubernetes-list-map-keys",
                Value::from(keys.to_vec()),
            ));
        }
    }
    for (def, prop, map_type) in MAP_TYPES {
        out.entry(def)
            .or_default()
            .push((prop, "x-kubernetes-map-type", Value::from(*map_type)));
    }
    out
});

fn decorate(name: &str, schema: &mut Value) {
    let Some(extensions) = EXTENSIONS.get(name) else {
        return;
    };
    for (prop, key, value) in extensions {
        let target = if prop.is_empty() {
            Some(&mut *schema)
        } else {
            schema.get_mut("properties").and_then(|p| p.get_mut(*prop))
        };
        if let Some(Value::Object(t)) = target {
            t.insert(key.to_string(), value.clone());
        }
    }
}

fn list_schema(item: &str, kind: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "properties": {
            "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"},
            "items": {"description": format!("items is the list of {kind} objects."), "items": {"allOf": [schema_ref(item)], "default": {}}, "type": "array"},
            "kind": {"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"},
            "metadata": {"allOf": [schema_ref(LIST_META)], "default": {}, "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"},
        },
        "required": ["items"],
        "type": "object",
    })
}

/// Builds the document of one group-version.
fn build_document(group: &'static str, version: &'static str) -> Value {
    let reg = &*REGISTRY;
    let mut paths = Map::new();
    let mut roots: Vec<String> = vec![
        DELETE_OPTIONS.into(),
        STATUS.into(),
        PATCH.into(),
        LIST_META.into(),
    ];
    // Definition name → the kinds it carries in this document.
    let mut kinds: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut lists: BTreeMap<String, (String, String)> = BTreeMap::new();
    kinds
        .entry(STATUS.into())
        .or_default()
        .push(gvk("", "v1", "Status"));
    kinds
        .entry(DELETE_OPTIONS.into())
        .or_default()
        .push(gvk(group, version, "DeleteOptions"));

    for r in resources::in_group_version(group, version) {
        let Some(k) = reg.kind(r.group, r.version, r.kind) else {
            continue;
        };
        let definition = k.definition.clone();
        resource_paths(r, &definition, &mut paths);
        roots.push(definition.clone());
        kinds
            .entry(definition.clone())
            .or_default()
            .push(gvk(r.group, r.version, r.kind));
        if r.has_verb(Verb::List) {
            let list = format!("{definition}List");
            kinds.entry(list.clone()).or_default().push(gvk(
                r.group,
                r.version,
                &format!("{}List", r.kind),
            ));
            lists.insert(list, (definition.clone(), r.kind.to_string()));
        }
        if r.subresource("scale").is_some() {
            roots.push(SCALE.into());
            let scale = kinds.entry(SCALE.into()).or_default();
            let want = gvk("autoscaling", "v1", "Scale");
            if !scale.contains(&want) {
                scale.push(want);
            }
        }
    }

    let mut schemas = BTreeMap::new();
    for name in reg.closure(roots.iter().map(String::as_str)) {
        if let Some(schema) = reg.definitions.get(&name) {
            let mut schema = schema.clone();
            decorate(&name, &mut schema);
            schemas.insert(name, schema);
        }
    }
    for (list, (item, kind)) in lists {
        schemas.insert(list, list_schema(&item, &kind));
    }
    for (name, gvks) in kinds {
        if let Some(Value::Object(s)) = schemas.get_mut(&name) {
            s.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
        }
    }

    let doc = json!({
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"description": "Bearer Token authentication", "in": "header", "name": "authorization", "type": "apiKey"}},
        },
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "openapi": "3.0.0",
        "paths": paths,
        "security": [{"BearerToken": []}],
    });
    sorted(doc)
}

/// The same JSON with every object's keys sorted, as Go's encoder writes maps.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str) -> Value {
        v3_document(path)
            .unwrap_or_else(|| panic!("no document {path}"))
            .to_value()
    }

    /// `$ref` → the schema, resolving as kubectl's `resolveRef` does.
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        let mut s = schema;
        if let Some(first) = s.get("allOf").and_then(|a| a.get(0)) {
            s = first;
        }
        match s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(REF_PREFIX))
        {
            Some(name) => doc
                .pointer(&format!("/components/schemas/{}", name.replace('/', "~1")))
                .unwrap_or(&Value::Null),
            None => s,
        }
    }

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap_or_default().to_string());
                    } else {
                        refs(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn index_lists_every_group_version() {
        let index = v3_index();
        let paths = index["paths"].as_object().expect("paths");
        let mut want = 0;
        for (group, versions) in resources::groups() {
            for version in versions {
                want += 1;
                let p = gv_path(group, version);
                let url = paths[&p]["serverRelativeURL"].as_str().expect("url");
                let doc = v3_document(&p).expect("document");
                assert_eq!(url, format!("/openapi/v3/{p}?hash={}", doc.hash));
                assert!(v3_document(&format!("/{p}")).is_some());
            }
        }
        assert_eq!(paths.len(), want);
        assert!(paths.contains_key("apis/extensions/v1beta1") && paths.contains_key("api/v1"));
        assert!(v3_document("apis/apps/v2").is_none());
    }

    #[test]
    fn apps_v1_has_deployment_schema_and_patch_with_field_validation() {
        let d = doc("apis/apps/v1");
        assert_eq!(d["openapi"], json!("3.0.0"));
        let deployment = &d["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        assert_eq!(
            d["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentList"]
                ["x-kubernetes-group-version-kind"][0]["kind"],
            json!("DeploymentList")
        );

        // kubectl's supportsQueryParamV3 and gvkSupportsPatchOpenAPIV3: the first PATCH whose
        // single GVK is the kind must list fieldValidation and take strategic merge patches.
        let want = gvk("apps", "v1", "Deployment");
        let mut found = 0;
        for (path, item) in d["paths"].as_object().expect("paths") {
            let Some(patch) = item.get("patch") else {
                continue;
            };
            if patch["x-kubernetes-group-version-kind"] != want {
                continue;
            }
            found += 1;
            let params: Vec<&str> = patch["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert!(params.contains(&"fieldValidation"), "{path}: {params:?}");
            assert!(
                patch["requestBody"]["content"]
                    .get("application/strategic-merge-patch+json")
                    .is_some(),
                "{path}"
            );
        }
        assert_eq!(found, 2, "deployment and its status");
        let scale =
            &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
        assert_eq!(
            scale["x-kubernetes-group-version-kind"],
            gvk("autoscaling", "v1", "Scale")
        );
        assert_eq!(
            scale["operationId"],
            json!("patchAppsV1NamespacedDeploymentScale")
        );
        assert_eq!(
            d["components"]["schemas"][SCALE]["x-kubernetes-group-version-kind"],
            json!([gvk("autoscaling", "v1", "Scale")])
        );
        let list_all = &d["paths"]["/apis/apps/v1/deployments"]["get"];
        assert_eq!(
            list_all["operationId"],
            json!("listAppsV1DeploymentForAllNamespaces")
        );
    }

    #[test]
    fn every_ref_resolves_inside_its_document() {
        for document in v3_documents() {
            let d = document.to_value();
            let schemas = d["components"]["schemas"].as_object().expect("schemas");
            let mut all = Vec::new();
            refs(&d, &mut all);
            assert!(!all.is_empty());
            for r in all {
                let name = r
                    .strip_prefix(REF_PREFIX)
                    .unwrap_or_else(|| panic!("{}: foreign ref {r}", document.path));
                assert!(
                    schemas.contains_key(name),
                    "{}: {r} does not resolve",
                    document.path
                );
            }
        }
    }

    #[test]
    fn core_v1_carries_patch_and_list_metadata() {
        let d = doc("api/v1");
        let containers =
            &d["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], json!("name"));
        assert_eq!(containers["x-kubernetes-patch-strategy"], json!("merge"));
        assert_eq!(containers["x-kubernetes-list-type"], json!("map"));
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        let volumes =
            &d["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
        assert_eq!(
            volumes["x-kubernetes-patch-strategy"],
            json!("merge,retainKeys")
        );
        let selector =
            &d["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"];
        assert_eq!(selector["x-kubernetes-map-type"], json!("atomic"));
        let pod = &d["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        // Binding can only be created: no PATCH, so kubectl validates it on the client.
        let bindings = &d["paths"]["/api/v1/namespaces/{namespace}/bindings"];
        assert!(bindings.get("post").is_some() && bindings.get("get").is_none());
        assert!(d["paths"]
            .get("/api/v1/namespaces/{namespace}/bindings/{name}")
            .is_none());
        // Cluster-scoped kinds have no namespace segment or parameter.
        let node = &d["paths"]["/api/v1/nodes/{name}"];
        assert_eq!(node["patch"]["operationId"], json!("patchCoreV1Node"));
        assert!(!node["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "namespace"));
    }

    #[test]
    fn explain_pods_spec_containers_walks_to_container_fields() {
        // kubectl explain's template: the GVK of a GET on the resource's paths, then the
        // schema carrying it, then properties through allOf/$ref/items.
        let d = doc("api/v1");
        let op_gvk = &d["paths"]["/api/v1/namespaces/{namespace}/pods"]["get"]
            ["x-kubernetes-group-version-kind"];
        let schema = d["components"]["schemas"]
            .as_object()
            .expect("schemas")
            .values()
            .find(|s| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|a| a.contains(op_gvk))
            })
            .expect("pod schema");
        let spec = resolve(&d, &schema["properties"]["spec"]);
        let containers = &spec["properties"]["containers"];
        let container = resolve(&d, &containers["items"]);
        assert!(container["properties"]["image"]["description"]
            .as_str()
            .is_some_and(|s| !s.is_empty()));
        assert!(container["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("name"))));
    }

    #[test]
    fn extensions_v1beta1_shares_apps_schemas() {
        let d = doc("apis/extensions/v1beta1");
        let deployment = &d["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "extensions", "kind": "Deployment", "version": "v1beta1"}])
        );
        let patch = &d["paths"]
            ["/apis/extensions/v1beta1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            gvk("extensions", "v1beta1", "Deployment")
        );
        assert_eq!(
            patch["operationId"],
            json!("patchExtensionsV1beta1NamespacedDeployment")
        );
        let events = doc("apis/events.k8s.io/v1");
        assert!(events["components"]["schemas"]
            .get("io.k8s.api.events.v1.Event")
            .is_some());
        assert_eq!(
            events["paths"]["/apis/events.k8s.io/v1/namespaces/{namespace}/events/{name}"]["patch"]
                ["tags"],
            json!(["events_v1"])
        );
    }

    #[test]
    fn documents_are_stable() {
        for document in v3_documents() {
            let again = serde_json::to_vec(&build_document(document.group, document.version))
                .expect("serializes");
            assert!(
                again == document.json,
                "{} changed between builds",
                document.path
            );
            assert_eq!(digest(&again), document.hash);
        }
        assert_ne!(digest(b"a"), digest(b"b"));
        assert_eq!(digest(b"").len(), 32);
    }
}
