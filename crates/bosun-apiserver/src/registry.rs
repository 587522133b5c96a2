//! The generic registry: create, read, update, patch and delete of any resource, on JSON,
//! with upstream's object semantics (uid, generateName, resourceVersion and optimistic
//! concurrency, generation, status and scale subresources, graceful deletion and
//! finalizers, namespace lifecycle), calling the kind's strategy through [`KindOps`].

use std::sync::Arc;
use std::time::Duration;

use bosun_api::errors::qualified;
use bosun_api::resources::{self, ResourceDef};
use bosun_api::{FieldError, Path, StatusError};
use bosun_store::{Error as StoreError, KeyValue, Revision, Store};
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::alloc::Allocator;
use crate::cache::{self, Cache, CachedObject, Prepared as CachedPrepared};
use crate::codec::{self, BodyType};
use crate::convert;
use crate::filter::Filter;
use crate::kinds::{self, KindOps};
use crate::request::{FieldValidation, Query, ResourcePath};

/// The outcome of a write: the object as the client sees it, the HTTP code, warnings.
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
    /// `body` already encoded as JSON, when it is at the storage version (the bytes the
    /// watch cache holds): sent as they are, without encoding `body` again.
    pub encoded: Option<Bytes>,
}

/// The objects of a list, in key order, with the list's metadata.
pub struct ListReply {
    pub items: Vec<Arc<CachedObject>>,
    pub rv: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// The server's state shared by all requests.
pub struct Registry {
    pub store: Arc<dyn Store>,
    pub cache: Arc<Cache>,
    pub alloc: Allocator,
    pub admission: crate::admission::AdmissionConfig,
}

fn store_err(e: StoreError) -> StatusError {
    StatusError::internal(e.to_string())
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A five-character random suffix from upstream's alphabet (no vowels, no confusables).
fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Decodes a stored value and sets its resourceVersion.
fn stored_value(kv: &KeyValue) -> Result<Value, StatusError> {
    let mut v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| StatusError::internal(format!("decoding {}: {e}", kv.key)))?;
    set_meta(
        &mut v,
        "resourceVersion",
        Value::String(kv.mod_revision.to_string()),
    );
    Ok(v)
}

fn meta(v: &Value) -> Option<&Map<String, Value>> {
    v.get("metadata").and_then(Value::as_object)
}

fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    meta(v).and_then(|m| m.get(field)).and_then(Value::as_str)
}

fn meta_mut(v: &mut Value) -> Option<&mut Map<String, Value>> {
    let obj = v.as_object_mut()?;
    let m = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut()
}

fn set_meta(v: &mut Value, field: &str, val: Value) {
    if let Some(m) = meta_mut(v) {
        m.insert(field.into(), val);
    }
}

fn remove_meta(v: &mut Value, field: &str) {
    if let Some(m) = meta_mut(v) {
        m.remove(field);
    }
}

fn finalizers(v: &Value) -> Vec<String> {
    meta(v)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the name of an object as upstream's `ValidatePathSegmentName` does.
/// The create error for an object with neither a name nor a generateName.
fn name_required(rp: &ResourcePath) -> StatusError {
    StatusError::invalid(
        rp.def.group,
        rp.def.kind,
        "",
        &[FieldError::required(
            &Path::root("metadata").child("name"),
            "name or generateName is required",
        )],
    )
}

/// The create error for a name that cannot be a path segment (`why` says how).
fn bad_name(rp: &ResourcePath, name: &str, why: String) -> StatusError {
    StatusError::invalid(
        rp.def.group,
        rp.def.kind,
        name,
        &[FieldError::invalid(
            &Path::root("metadata").child("name"),
            name.to_owned(),
            why,
        )],
    )
}

fn check_path_segment(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    if name.contains('/') {
        return Some("may not contain '/'".into());
    }
    if name.contains('%') {
        return Some("may not contain '%'".into());
    }
    None
}

fn has_status(def: &ResourceDef) -> bool {
    def.subresource("status").is_some()
}

/// The storage definition of a served resource.
pub fn storage_def(def: &ResourceDef) -> &'static ResourceDef {
    resources::find(def.storage_group, def.storage_version, def.plural).unwrap_or_else(|| {
        // The resource table test guarantees every storage version is served.
        resources::RESOURCES
            .iter()
            .find(|r| r.plural == def.plural && r.is_storage_version())
            .unwrap_or(&resources::RESOURCES[0])
    })
}

fn ops(def: &ResourceDef) -> Result<&'static dyn KindOps, StatusError> {
    kinds::ops_for(def.storage_group, def.kind).ok_or_else(StatusError::method_not_allowed)
}

/// Options of a delete, from the body (DeleteOptions) and the query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn parse(q: &Query, body: &[u8]) -> Result<DeleteOptions, StatusError> {
        let mut o = DeleteOptions {
            grace_period: q.int("gracePeriodSeconds")?,
            dry_run: q.dry_run()?,
            ..Default::default()
        };
        o.propagation = q.get("propagationPolicy").map(str::to_string);
        if q.get("orphanDependents") == Some("true") {
            o.propagation = Some("Orphan".into());
        }
        if !body.iter().all(|b| b.is_ascii_whitespace()) {
            let (v, _) = codec::decode_body(body, BodyType::Json, false)?;
            if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
                o.grace_period = Some(g);
            }
            if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
                o.propagation = Some(p.to_string());
            }
            if v.get("orphanDependents").and_then(Value::as_bool) == Some(true)
                && o.propagation.is_none()
            {
                o.propagation = Some("Orphan".into());
            }
            o.precondition_uid = v
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            o.precondition_rv = v
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(d) = v.get("dryRun").and_then(Value::as_array) {
                o.dry_run |= d.iter().any(|x| x == "All");
            }
        }
        match o.propagation.as_deref() {
            None | Some("Orphan" | "Background" | "Foreground") => {}
            Some(p) => {
                return Err(StatusError::invalid(
                    "",
                    "DeleteOptions",
                    "",
                    &[FieldError::not_supported(
                        &Path::root("propagationPolicy"),
                        p,
                        &["Foreground", "Background", "Orphan"],
                    )],
                ))
            }
        }
        if let Some(g) = o.grace_period {
            if g < 0 {
                o.grace_period = Some(1);
            }
        }
        Ok(o)
    }
}

/// What the create path still has to check about the request body once it is typed.
pub struct Decoding {
    /// Paths of duplicate fields in the body.
    pub dups: Vec<String>,
    pub fv: FieldValidation,
}

impl Decoding {
    /// An object built by the server itself: nothing to report.
    pub fn trusted() -> Decoding {
        Decoding {
            dups: Vec::new(),
            fv: FieldValidation::Ignore,
        }
    }
}

/// The 400 for a body that does not fit the kind's type.
fn undecodable(def: &ResourceDef, e: &str) -> StatusError {
    StatusError::bad_request(format!(
        "{} in version {:?} cannot be handled as a {}: {e}",
        def.kind, def.version, def.kind
    ))
}

/// The body's kind and apiVersion (when strings) against the URL's. A missing kind or
/// apiVersion takes the URL's, as upstream's decoder defaults them.
fn check_type_meta(
    def: &ResourceDef,
    kind: Option<&str>,
    api_version: Option<&str>,
) -> Result<(), StatusError> {
    let kind = kind.filter(|k| !k.is_empty()).unwrap_or(def.kind);
    let api_version = api_version.unwrap_or("");
    if kind != def.kind {
        return Err(StatusError::bad_request(format!(
            "{kind} in version {:?} cannot be handled as a {}: the kind in the data ({kind}) does not match the expected kind ({})",
            api_version, def.kind, def.kind
        )));
    }
    if !api_version.is_empty() && api_version != def.api_version() {
        return Err(StatusError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    Ok(())
}

/// Unknown and duplicate fields per `fieldValidation`: a 400 when strict, warnings when
/// asked for, nothing when ignored.
fn field_problems(
    def: &ResourceDef,
    unknown: &[String],
    dups: &[String],
    fv: FieldValidation,
) -> Result<Vec<String>, StatusError> {
    let mut problems: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    problems.extend(dups.iter().map(|f| format!("duplicate field {f:?}")));
    match fv {
        FieldValidation::Strict if !problems.is_empty() => Err(StatusError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
            def.kind,
            def.version,
            def.kind,
            problems.join(", ")
        ))),
        FieldValidation::Warn => Ok(problems),
        _ => Ok(Vec::new()),
    }
}

impl Registry {
    pub fn new(store: Arc<dyn Store>, cache: Arc<Cache>, alloc: Allocator) -> Registry {
        Registry {
            store,
            cache,
            alloc,
            admission: Default::default(),
        }
    }

    fn not_found(rp: &ResourcePath, name: &str) -> StatusError {
        StatusError::not_found(rp.def.group, rp.def.plural, name)
    }

    /// The bytes to write for `obj`, announced to the watch cache so that it takes the
    /// object as encoded here instead of parsing the stored bytes again.
    fn encode_for_store(
        &self,
        def: &'static ResourceDef,
        key: &str,
        obj: &Value,
    ) -> Result<(Bytes, Option<cache::Expected>), StatusError> {
        let internal = |e: serde_json::Error| StatusError::internal(e.to_string());
        let ops = kinds::ops_for(def.storage_group, def.kind).map(|o| o as &dyn KindOps);
        match CachedPrepared::encode(key, obj, ops).map_err(internal)? {
            Some(p) => {
                let expected = self.cache.expect(p);
                Ok((expected.prepared.stored.clone(), Some(expected)))
            }
            None => Ok((
                Bytes::from(serde_json::to_vec(obj).map_err(internal)?),
                None,
            )),
        }
    }

    /// The reply's bytes for a write acknowledged at `rv`, when the request's version is
    /// the storage version (otherwise the reply is converted and encoded from its value).
    fn encoded_reply(
        rp: &ResourcePath,
        expected: Option<cache::Expected>,
        rv: Revision,
    ) -> Option<Bytes> {
        let expected = expected?;
        let bytes = rp
            .def
            .is_storage_version()
            .then(|| expected.prepared.with_rv(rv));
        expected.written();
        bytes
    }

    fn key(rp: &ResourcePath, name: &str) -> String {
        cache::object_key(rp.def, rp.namespace.as_deref().unwrap_or(""), name)
    }

    /// Waits for the cache as the request's resourceVersion asks (unset: consistent).
    async fn sync_for(&self, q: &Query) -> Result<(), StatusError> {
        match q.get("resourceVersion") {
            None | Some("") => {
                self.cache.sync().await?;
            }
            Some("0") => {}
            Some(rv) => {
                let rv: Revision = rv.parse().map_err(|_| {
                    StatusError::bad_request(format!("invalid resource version: {rv}"))
                })?;
                self.cache.wait_for(rv, Duration::from_secs(3)).await?;
            }
        }
        Ok(())
    }

    /// GET of one object, from the cache.
    pub async fn get(&self, rp: &ResourcePath, q: &Query) -> Result<Value, StatusError> {
        let obj = self.get_cached(rp, q).await?;
        Ok(convert::from_storage(rp.def, obj.value()?))
    }

    /// GET of one object as the cache holds it: its JSON at the storage version, encoded
    /// once when it was written.
    pub async fn get_cached(
        &self,
        rp: &ResourcePath,
        q: &Query,
    ) -> Result<Arc<cache::CachedObject>, StatusError> {
        let name = rp.name.as_deref().unwrap_or_default();
        self.sync_for(q).await?;
        let rc = self
            .cache
            .resource(rp.def)
            .ok_or_else(StatusError::path_not_found)?;
        let (obj, _) = rc.get(&Self::key(rp, name));
        obj.ok_or_else(|| Self::not_found(rp, name))
    }

    /// LIST, from the cache, with selectors and pagination.
    pub async fn list(
        &self,
        rp: &ResourcePath,
        q: &Query,
        filter: &Filter,
    ) -> Result<ListReply, StatusError> {
        let rc = self
            .cache
            .resource(rp.def)
            .ok_or_else(StatusError::path_not_found)?;
        let limit = q.int("limit")?.unwrap_or(0).max(0) as usize;
        let prefix = cache::resource_prefix(rp.def, rp.namespace.as_deref());
        let cont = q
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(ContinueToken::decode)
            .transpose()?;
        let (objects, rv, start_after) = match &cont {
            Some(tok) => {
                // Continue from the cache if it has not moved; otherwise read the store
                // at the token's revision.
                if !rc.changed_since(tok.rv) {
                    let snap = rc.snapshot(&prefix);
                    (snap.objects, tok.rv, Some(tok.start.clone()))
                } else {
                    return self.list_from_store(rp, &prefix, tok, limit, filter).await;
                }
            }
            None => {
                match (q.get("resourceVersion"), q.get("resourceVersionMatch")) {
                    (Some(rv), Some("Exact")) if !rv.is_empty() && rv != "0" => {
                        let rv: Revision = rv.parse().map_err(|_| {
                            StatusError::bad_request(format!("invalid resource version: {rv}"))
                        })?;
                        if rc.changed_since(rv) || rv > rc.rv() {
                            let tok = ContinueToken {
                                rv,
                                start: String::new(),
                            };
                            return self.list_from_store(rp, &prefix, &tok, limit, filter).await;
                        }
                    }
                    (None | Some(""), Some(m)) if !m.is_empty() => {
                        return Err(StatusError::bad_request(
                            "resourceVersionMatch is forbidden unless resourceVersion is provided",
                        ));
                    }
                    _ => self.sync_for(q).await?,
                }
                let snap = rc.snapshot(&prefix);
                (snap.objects, snap.rv, None)
            }
        };
        let mut items = Vec::new();
        let mut more = false;
        let mut remaining = 0i64;
        for o in objects.into_iter() {
            if let Some(s) = &start_after {
                if o.key.as_str() <= s.as_str() {
                    continue;
                }
            }
            if !filter.matches(&o) {
                continue;
            }
            if limit > 0 && items.len() >= limit {
                more = true;
                remaining += 1;
                continue;
            }
            items.push(o);
        }
        let continue_token = if more {
            items.last().map(|o| {
                ContinueToken {
                    rv,
                    start: o.key.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(ListReply {
            items,
            rv,
            continue_token,
            remaining: more.then_some(remaining),
        })
    }

    async fn list_from_store(
        &self,
        rp: &ResourcePath,
        prefix: &str,
        tok: &ContinueToken,
        limit: usize,
        filter: &Filter,
    ) -> Result<ListReply, StatusError> {
        let ops = kinds::ops_for(rp.def.storage_group, rp.def.kind);
        let mut items = Vec::new();
        let mut start = if tok.start.is_empty() {
            None
        } else {
            Some(tok.start.clone())
        };
        loop {
            let page = self
                .store
                .list(prefix, bosun_store::ListOptions { revision: Some(tok.rv), start_after: start.clone(), limit: 1000 })
                .await
                .map_err(|e| match e {
                    StoreError::Compacted { .. } => StatusError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ),
                    StoreError::FutureRevision { .. } => StatusError::timeout(format!("Too large resource version: {}", tok.rv)),
                    e => store_err(e),
                })?;
            for kv in &page.kvs {
                if let Some(o) = CachedObject::from_store(kv, ops) {
                    if filter.matches(&o) {
                        if limit > 0 && items.len() >= limit {
                            let last = items
                                .last()
                                .map(|l: &Arc<CachedObject>| l.key.clone())
                                .unwrap_or_default();
                            let token = ContinueToken {
                                rv: tok.rv,
                                start: last,
                            }
                            .encode();
                            return Ok(ListReply {
                                items,
                                rv: tok.rv,
                                continue_token: Some(token),
                                remaining: None,
                            });
                        }
                        items.push(Arc::new(o));
                    }
                }
            }
            if !page.more {
                break;
            }
            start = page.kvs.last().map(|kv| kv.key.clone());
        }
        Ok(ListReply {
            items,
            rv: tok.rv,
            continue_token: None,
            remaining: None,
        })
    }

    /// Checks that a namespaced write goes to a namespace that exists and is not
    /// terminating.
    async fn check_namespace(&self, rp: &ResourcePath, name: &str) -> Result<(), StatusError> {
        let Some(ns) = rp.namespace.as_deref() else {
            return Ok(());
        };
        let ns_def =
            resources::find("", "v1", "namespaces").ok_or_else(StatusError::path_not_found)?;
        let rc = self
            .cache
            .resource(ns_def)
            .ok_or_else(StatusError::path_not_found)?;
        let key = cache::object_key(ns_def, "", ns);
        let mut found = rc.get(&key).0;
        if found.is_none() {
            // It may have been created a moment ago: read consistently before refusing.
            self.cache.sync().await?;
            found = rc.get(&key).0;
        }
        let Some(nsobj) = found else {
            return Err(StatusError::not_found("", "namespaces", ns));
        };
        let v = nsobj.value()?;
        if meta(&v)
            .map(|m| m.contains_key("deletionTimestamp"))
            .unwrap_or(false)
            || v.pointer("/status/phase") == Some(&json!("Terminating"))
        {
            let mut e = StatusError::forbidden(
                rp.def.group,
                rp.def.plural,
                name,
                format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            );
            if let Some(d) = e.details.as_mut() {
                d.causes.push(json!({"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}));
            }
            return Err(e);
        }
        Ok(())
    }

    /// Decodes a request body for `rp`, converts it to the storage version and runs it
    /// through the kind's type (unknown fields per `fieldValidation`).
    fn decode_object(
        &self,
        rp: &ResourcePath,
        body: &[u8],
        ct: Option<&str>,
        q: &Query,
    ) -> Result<(Value, Vec<String>), StatusError> {
        let (v, dups, fv) = Self::parse_body(body, ct, q)?;
        self.check_object(rp, v, dups, fv)
    }

    /// Parses an object body in any accepted content type, noting duplicate fields unless
    /// `fieldValidation` ignores them.
    fn parse_body(
        body: &[u8],
        ct: Option<&str>,
        q: &Query,
    ) -> Result<(Value, Vec<String>, FieldValidation), StatusError> {
        let ty = BodyType::from_content_type(ct)?;
        match ty {
            BodyType::Json | BodyType::Yaml | BodyType::Protobuf => {}
            BodyType::ApplyPatch => return Err(apply_unsupported()),
            _ => return Err(StatusError::unsupported_media_type("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")),
        }
        let fv = q.field_validation()?;
        let (v, dups) = codec::decode_body(body, ty, fv != FieldValidation::Ignore)?;
        Ok((v, dups, fv))
    }

    /// Checks kind/apiVersion against the URL and types the object.
    fn check_object(
        &self,
        rp: &ResourcePath,
        v: Value,
        dups: Vec<String>,
        fv: FieldValidation,
    ) -> Result<(Value, Vec<String>), StatusError> {
        let def = rp.def;
        let v = self.check_object_untyped(rp, v)?;
        let decoded = ops(storage_def(def))?
            .decode(v)
            .map_err(|e| undecodable(def, &e))?;
        let warnings = field_problems(def, &decoded.unknown_fields, &dups, fv)?;
        Ok((decoded.value, warnings))
    }

    /// Checks kind/apiVersion against the URL and converts to the storage version, leaving
    /// the typed decode (unknown fields, wrong types) to the caller.
    fn check_object_untyped(&self, rp: &ResourcePath, v: Value) -> Result<Value, StatusError> {
        let def = rp.def;
        if !v.is_object() {
            return Err(StatusError::bad_request(format!(
                "the body of the request must be a {} object",
                def.kind
            )));
        }
        check_type_meta(
            def,
            v.get("kind").and_then(Value::as_str),
            v.get("apiVersion").and_then(Value::as_str),
        )?;
        let mut v = v;
        if let Some(m) = v.as_object_mut() {
            m.insert("apiVersion".into(), Value::String(def.api_version()));
        }
        Ok(convert::to_storage(def, v))
    }

    /// POST: create an object.
    pub async fn create(
        &self,
        rp: &ResourcePath,
        q: &Query,
        body: &[u8],
        ct: Option<&str>,
    ) -> Result<Reply, StatusError> {
        if let Some(reply) = self.create_typed(rp, q, body, ct).await? {
            return Ok(reply);
        }
        let (v, dups, fv) = Self::parse_body(body, ct, q)?;
        let obj = self.check_object_untyped(rp, v)?;
        // The typed decode (unknown fields, wrong types) happens once, in admission.
        self.create_value(rp, q, obj, Decoding { dups, fv }).await
    }

    /// POST of a JSON body at the storage version, typed once: the body is decoded
    /// straight into the kind's type, the metadata steps of [`Self::create_value`] run on
    /// its `ObjectMeta`, and it is encoded once for the store, the watch cache and the
    /// reply. None when the request needs the JSON tree way (another content type or
    /// version, Services and their allocations, admission that works on the tree, a body
    /// that does not type): that way then answers, with the same results.
    async fn create_typed(
        &self,
        rp: &ResourcePath,
        q: &Query,
        body: &[u8],
        ct: Option<&str>,
    ) -> Result<Option<Reply>, StatusError> {
        let def = storage_def(rp.def);
        if BodyType::from_content_type(ct)? != BodyType::Json
            || !rp.def.is_storage_version()
            || def.kind == "Service"
            || crate::admission::needs_tree(self, rp)
        {
            return Ok(None);
        }
        let Some(kops) = kinds::ops_for(def.storage_group, def.kind) else {
            return Ok(None);
        };
        let fv = q.field_validation()?;
        let scan = codec::scan_body(body, fv != FieldValidation::Ignore)?;
        if !scan.plain_object {
            return Ok(None);
        }
        check_type_meta(def, scan.kind.as_deref(), scan.api_version.as_deref())?;
        let Ok((mut obj, unknown)) = kops.decode_json(body) else {
            return Ok(None);
        };
        // The metadata steps of `create_value`, in the same order, on the typed metadata.
        let mut deferred: Option<StatusError> = None;
        let meta = obj.meta_mut();
        if let Some(ns) = &rp.namespace {
            match meta.namespace.as_deref() {
                Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                    deferred = Some(StatusError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
                }
                _ => meta.namespace = Some(ns.clone()),
            }
        } else {
            meta.namespace = None;
        }
        let mut name = meta.name.clone().unwrap_or_default();
        if name.is_empty() {
            let gen = meta.generate_name.as_deref().unwrap_or("");
            if gen.is_empty() {
                deferred.get_or_insert_with(|| name_required(rp));
            } else {
                name = format!("{gen}{}", random_suffix());
                meta.name = Some(name.clone());
            }
        }
        if let Some(why) = check_path_segment(&name).filter(|_| !name.is_empty()) {
            deferred.get_or_insert_with(|| bad_name(rp, &name, why));
        }
        meta.resource_version = None;
        meta.deletion_timestamp = None;
        meta.deletion_grace_period_seconds = None;
        meta.managed_fields = None;
        meta.self_link = None;
        meta.uid = Some(uuid::Uuid::new_v4().to_string());
        meta.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            // Whole seconds, as `now_rfc3339` and the wire format have them.
            k8s_openapi::jiff::Timestamp::from_second(Utc::now().timestamp())
                .map_err(|e| StatusError::internal(e.to_string()))?,
        ));
        meta.generation = (kops.has_generation()
            && kops
                .generation_fields()
                .iter()
                .any(|f| scan.top_fields.iter().any(|t| t == f)))
        .then_some(1);
        if has_status(def) && def.kind != "Node" {
            obj.clear_status();
        }
        if let Some(pod) = obj
            .as_any_mut()
            .downcast_mut::<k8s_openapi::api::core::v1::Pod>()
        {
            crate::admission::default_pod_tolerations(pod, &self.admission);
        }
        let errs = obj.admit_create();
        let warnings = field_problems(rp.def, &unknown, &scan.dups, fv)?;
        if let Some(e) = deferred {
            return Err(e);
        }
        if !errs.is_empty() {
            return Err(StatusError::invalid(
                rp.def.group,
                rp.def.kind,
                &name,
                &errs,
            ));
        }
        // Admission has nothing to do here (`needs_tree` said so).
        let dry_run = q.dry_run()?;
        self.check_namespace(rp, &name).await?;
        if dry_run {
            return Ok(Some(Reply {
                code: 201,
                body: obj.to_value().map_err(StatusError::internal)?,
                warnings,
                encoded: None,
            }));
        }
        let key = Self::key(rp, &name);
        let json = obj.to_json().map_err(StatusError::internal)?;
        let meta = obj.meta();
        let prepared = CachedPrepared::from_json(
            &key,
            json,
            meta.namespace.clone().unwrap_or_default(),
            name.clone(),
            meta.labels.clone().unwrap_or_default(),
            obj.selectable_fields(),
        )
        .ok_or_else(|| StatusError::internal("encoding an object lost its metadata"))?;
        let expected = self.cache.expect(prepared);
        let bytes = expected.prepared.stored.clone();
        match self.store.create(&key, bytes).await {
            Ok(kv) => Ok(Some(Reply {
                code: 201,
                encoded: Self::encoded_reply(rp, Some(expected), kv.mod_revision),
                // The encoded bytes are the reply; handlers decode them for other formats.
                body: Value::Null,
                warnings,
            })),
            Err(StoreError::AlreadyExists { .. }) => Err(StatusError::already_exists(
                rp.def.group,
                rp.def.plural,
                &name,
            )),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Creates a decoded object (storage version).
    pub async fn create_value(
        &self,
        rp: &ResourcePath,
        q: &Query,
        mut obj: Value,
        decoding: Decoding,
    ) -> Result<Reply, StatusError> {
        let def = storage_def(rp.def);
        let kops = ops(def)?;
        // Errors in metadata are reported after the typed decode, whose errors (400) come
        // first upstream, where decoding precedes everything else.
        let mut deferred: Option<StatusError> = None;
        // Namespace from the URL.
        if let Some(ns) = &rp.namespace {
            match meta_str(&obj, "namespace") {
                Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                    deferred = Some(StatusError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
                }
                _ => set_meta(&mut obj, "namespace", Value::String(ns.clone())),
            }
        } else {
            remove_meta(&mut obj, "namespace");
        }
        // Name, or one generated.
        let mut name = meta_str(&obj, "name").unwrap_or("").to_string();
        if name.is_empty() {
            let gen = meta_str(&obj, "generateName").unwrap_or("").to_string();
            if gen.is_empty() {
                deferred.get_or_insert_with(|| name_required(rp));
            } else {
                name = format!("{gen}{}", random_suffix());
                set_meta(&mut obj, "name", Value::String(name.clone()));
            }
        }
        if let Some(why) = check_path_segment(&name).filter(|_| !name.is_empty()) {
            deferred.get_or_insert_with(|| bad_name(rp, &name, why));
        }
        for f in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            remove_meta(&mut obj, f);
        }
        set_meta(
            &mut obj,
            "uid",
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        set_meta(&mut obj, "creationTimestamp", Value::String(now_rfc3339()));
        if kops.has_generation()
            && kops
                .generation_fields()
                .iter()
                .any(|f| obj.get(*f).is_some())
        {
            set_meta(&mut obj, "generation", json!(1));
        } else {
            remove_meta(&mut obj, "generation");
        }
        if has_status(def) && def.kind != "Node" {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        if def.kind == "Pod" && def.group.is_empty() {
            crate::admission::default_toleration_seconds(&mut obj, &self.admission);
        }
        let (obj, errs, unknown) = kops
            .admit_create(obj)
            .map_err(|e| undecodable(rp.def, &e))?;
        let warnings = field_problems(rp.def, &unknown, &decoding.dups, decoding.fv)?;
        if let Some(e) = deferred {
            return Err(e);
        }
        if !errs.is_empty() {
            return Err(StatusError::invalid(
                rp.def.group,
                rp.def.kind,
                &name,
                &errs,
            ));
        }
        let mut obj =
            crate::admission::admit_create(self, rp, kops, &name, obj, q.dry_run()?).await?;
        self.check_namespace(rp, &name).await?;
        let key = Self::key(rp, &name);
        let dry_run = q.dry_run()?;
        if def.kind == "Service" {
            // Name clashes are reported as such, before allocation can report the clash of
            // the existing object's IP or ports.
            if self.store.get(&key).await.map_err(store_err)?.is_some() {
                return Err(StatusError::already_exists(
                    rp.def.group,
                    rp.def.plural,
                    &name,
                ));
            }
        }
        let allocated = if def.kind == "Service" && !dry_run {
            self.allocate_service(rp, &key, &mut obj, None).await?
        } else {
            Vec::new()
        };
        if dry_run {
            return Ok(Reply {
                code: 201,
                body: convert::from_storage(rp.def, obj),
                warnings,
                encoded: None,
            });
        }
        let (bytes, expected) = self.encode_for_store(def, &key, &obj)?;
        match self.store.create(&key, bytes).await {
            Ok(kv) => {
                set_meta(
                    &mut obj,
                    "resourceVersion",
                    Value::String(kv.mod_revision.to_string()),
                );
                Ok(Reply {
                    code: 201,
                    encoded: Self::encoded_reply(rp, expected, kv.mod_revision),
                    body: convert::from_storage(rp.def, obj),
                    warnings,
                })
            }
            Err(e) => {
                self.release(allocated).await;
                Err(match e {
                    StoreError::AlreadyExists { .. } => {
                        StatusError::already_exists(rp.def.group, rp.def.plural, &name)
                    }
                    e => store_err(e),
                })
            }
        }
    }

    /// PUT: replace an object (or its status / finalize subresource).
    pub async fn update(
        &self,
        rp: &ResourcePath,
        q: &Query,
        body: &[u8],
        ct: Option<&str>,
    ) -> Result<Reply, StatusError> {
        let name = rp.name.clone().unwrap_or_default();
        let (obj, warnings) = self.decode_object(rp, body, ct, q)?;
        if let Some(body_name) = meta_str(&obj, "name") {
            if !body_name.is_empty() && body_name != name {
                return Err(StatusError::bad_request(format!("the name of the object ({body_name}) does not match the name on the URL ({name})")));
            }
        }
        if let (Some(ns), Some(body_ns)) = (&rp.namespace, meta_str(&obj, "namespace")) {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(StatusError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
            }
        }
        let precondition = meta_str(&obj, "resourceVersion")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let dry_run = q.dry_run()?;
        let mut reply = self
            .update_with(rp, precondition, dry_run, |_old| Ok(obj.clone()))
            .await?;
        reply.warnings = warnings;
        Ok(reply)
    }

    /// PATCH: apply a patch to the current object and store the result.
    pub async fn patch(
        &self,
        rp: &ResourcePath,
        q: &Query,
        body: &[u8],
        ct: Option<&str>,
    ) -> Result<Reply, StatusError> {
        let ty = BodyType::from_content_type(ct)?;
        if ty == BodyType::ApplyPatch {
            return Err(apply_unsupported());
        }
        if matches!(ty, BodyType::Json | BodyType::Yaml) {
            return Err(StatusError::unsupported_media_type("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"));
        }
        if body.len() > codec::MAX_BODY {
            return Err(StatusError::too_large(
                "Request entity too large: limit is 3145728",
            ));
        }
        let patch: Value = serde_json::from_slice(body)
            .map_err(|e| StatusError::bad_request(format!("error decoding patch: {e}")))?;
        let fv = q.field_validation()?;
        let dry_run = q.dry_run()?;
        let precondition = patch
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        let def = rp.def;
        let warnings = std::sync::Mutex::new(Vec::new());
        let mut reply = self
            .update_with(rp, precondition, dry_run, |old| {
                // Patches apply to the object at the version the client speaks.
                let current = convert::from_storage(def, old.clone());
                let patched = crate::patching::apply_to(def, ty, &current, body)?;
                let (v, w) = self.check_object(rp, patched, Vec::new(), fv)?;
                if let Ok(mut g) = warnings.lock() {
                    *g = w;
                }
                Ok(v)
            })
            .await?;
        reply.warnings = warnings.into_inner().unwrap_or_default();
        Ok(reply)
    }

    /// The update loop (upstream's GuaranteedUpdate): read the current object, compute the
    /// new one with `f`, write it with compare-and-swap, and retry on a conflict unless the
    /// client pinned a resourceVersion.
    async fn update_with<F>(
        &self,
        rp: &ResourcePath,
        precondition: Option<String>,
        dry_run: bool,
        f: F,
    ) -> Result<Reply, StatusError>
    where
        F: Fn(&Value) -> Result<Value, StatusError>,
    {
        let name = rp.name.clone().unwrap_or_default();
        let def = storage_def(rp.def);
        let kops = ops(def)?;
        let key = Self::key(rp, &name);
        let sub = rp.subresource.as_deref();
        for _attempt in 0..64 {
            let Some(kv) = self.store.get(&key).await.map_err(store_err)? else {
                return Err(Self::not_found(rp, &name));
            };
            let old = stored_value(&kv)?;
            if let Some(pre) = &precondition {
                if *pre != kv.mod_revision.to_string() {
                    return Err(StatusError::stale(rp.def.group, rp.def.plural, &name));
                }
            }
            let mut new = f(&old)?;
            if let Some(uid) = meta_str(&new, "uid") {
                if !uid.is_empty() && Some(uid) != meta_str(&old, "uid") {
                    return Err(StatusError::conflict(
                        rp.def.group,
                        rp.def.plural,
                        &name,
                        format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta_str(&old, "uid").unwrap_or("")),
                    ));
                }
            }
            // Fields only the server sets.
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ] {
                match meta(&old).and_then(|m| m.get(f)).cloned() {
                    Some(v) => set_meta(&mut new, f, v),
                    None => remove_meta(&mut new, f),
                }
            }
            remove_meta(&mut new, "managedFields");
            remove_meta(&mut new, "selfLink");
            let (mut new, errs) = match sub {
                Some("status") => {
                    // Only status changes; the rest comes from the stored object.
                    let mut merged = old.clone();
                    if let Some(m) = merged.as_object_mut() {
                        match new.get("status") {
                            Some(s) => m.insert("status".into(), s.clone()),
                            None => m.remove("status"),
                        };
                    }
                    // The core kinds' status strategies (pods, nodes, services, …) keep the
                    // new object's labels and annotations (kubelets set them this way); the
                    // newer groups reset all metadata (ResetObjectMetaForStatus).
                    if def.group.is_empty() {
                        for f in ["labels", "annotations"] {
                            match meta(&new).and_then(|m| m.get(f)).cloned() {
                                Some(v) => set_meta(&mut merged, f, v),
                                None => remove_meta(&mut merged, f),
                            }
                        }
                    }
                    // Pod QoS is set at creation; old kubelets drop it from status updates, so
                    // upstream backfills it from the stored pod.
                    if def.kind == "Pod" {
                        let missing = merged
                            .pointer("/status/qosClass")
                            .and_then(Value::as_str)
                            .map(str::is_empty)
                            .unwrap_or(true);
                        if let (true, Some(q)) = (missing, old.pointer("/status/qosClass").cloned())
                        {
                            if let Some(st) =
                                merged.get_mut("status").and_then(Value::as_object_mut)
                            {
                                st.insert("qosClass".into(), q);
                            }
                        }
                    }
                    kops.admit_status_update(merged, &old)
                        .map_err(StatusError::internal)?
                }
                // Binding sets spec.nodeName, which a pod update may not change; the
                // closure in `bind` built exactly the new object.
                Some("binding") => (new, Vec::new()),
                Some("finalize") => {
                    let mut merged = old.clone();
                    if let (Some(m), Some(f)) =
                        (merged.as_object_mut(), new.pointer("/spec/finalizers"))
                    {
                        if let Some(spec) = m.get_mut("spec").and_then(Value::as_object_mut) {
                            spec.insert("finalizers".into(), f.clone());
                        }
                    }
                    (merged, Vec::new())
                }
                _ => {
                    if has_status(def) && def.kind != "Node" {
                        if let Some(m) = new.as_object_mut() {
                            match old.get("status") {
                                Some(s) => m.insert("status".into(), s.clone()),
                                None => m.remove("status"),
                            };
                        }
                    }
                    kops.admit_update(new, &old)
                        .map_err(StatusError::internal)?
                }
            };
            if !errs.is_empty() {
                return Err(StatusError::invalid(
                    rp.def.group,
                    rp.def.kind,
                    &name,
                    &errs,
                ));
            }
            if sub.is_none() && kops.generation_changed(&new, &old) {
                let g = meta(&old)
                    .and_then(|m| m.get("generation"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                set_meta(&mut new, "generation", json!(g + 1));
            }
            let mut allocated = Vec::new();
            if def.kind == "Service" && sub.is_none() && !dry_run {
                allocated = self
                    .allocate_service(rp, &key, &mut new, Some(&old))
                    .await?;
            }
            set_meta(
                &mut new,
                "resourceVersion",
                Value::String(kv.mod_revision.to_string()),
            );
            if new == old {
                // A no-op update writes nothing, as upstream.
                return Ok(Reply {
                    code: 200,
                    body: convert::from_storage(rp.def, old),
                    warnings: Vec::new(),
                    encoded: None,
                });
            }
            if dry_run {
                return Ok(Reply {
                    code: 200,
                    body: convert::from_storage(rp.def, new),
                    warnings: Vec::new(),
                    encoded: None,
                });
            }
            // An object being deleted whose last finalizer went away is deleted now.
            let deleting = meta(&new)
                .map(|m| m.contains_key("deletionTimestamp"))
                .unwrap_or(false);
            let grace = meta(&new)
                .and_then(|m| m.get("deletionGracePeriodSeconds"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let namespace_pending = def.kind == "Namespace"
                && new
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .map(|a| !a.is_empty())
                    .unwrap_or(false);
            if deleting && finalizers(&new).is_empty() && grace == 0 && !namespace_pending {
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(_) => {
                        self.released_object(def, &new).await;
                        return Ok(Reply {
                            code: 200,
                            body: convert::from_storage(rp.def, new),
                            warnings: Vec::new(),
                            encoded: None,
                        });
                    }
                    Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
                    Err(StoreError::Conflict { .. }) => {
                        return Err(StatusError::stale(rp.def.group, rp.def.plural, &name))
                    }
                    Err(StoreError::NotFound { .. }) => return Err(Self::not_found(rp, &name)),
                    Err(e) => return Err(store_err(e)),
                }
            }
            remove_meta(&mut new, "resourceVersion");
            let (bytes, expected) = self.encode_for_store(def, &key, &new)?;
            match self.store.update(&key, bytes, kv.mod_revision).await {
                Ok(kv2) => {
                    if def.kind == "Service" {
                        self.release_replaced_service_allocations(&old, &new).await;
                    }
                    set_meta(
                        &mut new,
                        "resourceVersion",
                        Value::String(kv2.mod_revision.to_string()),
                    );
                    return Ok(Reply {
                        code: 200,
                        encoded: Self::encoded_reply(rp, expected, kv2.mod_revision),
                        body: convert::from_storage(rp.def, new),
                        warnings: Vec::new(),
                    });
                }
                Err(StoreError::Conflict { .. }) => {
                    self.release(allocated).await;
                    if precondition.is_some() {
                        return Err(StatusError::stale(rp.def.group, rp.def.plural, &name));
                    }
                    continue;
                }
                Err(StoreError::NotFound { .. }) => {
                    self.release(allocated).await;
                    return Err(Self::not_found(rp, &name));
                }
                Err(e) => {
                    self.release(allocated).await;
                    return Err(store_err(e));
                }
            }
        }
        Err(StatusError::conflict(
            rp.def.group,
            rp.def.plural,
            &name,
            "too many concurrent updates; try again",
        ))
    }

    /// DELETE of one object, with graceful deletion for pods and finalizers.
    pub async fn delete(
        &self,
        rp: &ResourcePath,
        q: &Query,
        body: &[u8],
    ) -> Result<Reply, StatusError> {
        let opts = DeleteOptions::parse(q, body)?;
        let name = rp.name.clone().unwrap_or_default();
        let key = Self::key(rp, &name);
        let def = storage_def(rp.def);
        if def.kind == "Namespace"
            && ["default", "kube-system", "kube-public"].contains(&name.as_str())
        {
            return Err(StatusError::forbidden(
                "",
                "namespaces",
                &name,
                "this namespace may not be deleted",
            ));
        }
        for _attempt in 0..64 {
            let Some(kv) = self.store.get(&key).await.map_err(store_err)? else {
                return Err(Self::not_found(rp, &name));
            };
            let mut obj = stored_value(&kv)?;
            if let Some(uid) = &opts.precondition_uid {
                if Some(uid.as_str()) != meta_str(&obj, "uid") {
                    return Err(StatusError::conflict(
                        rp.def.group,
                        rp.def.plural,
                        &name,
                        format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&obj, "uid").unwrap_or("")
                    ),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_rv {
                if *rv != kv.mod_revision.to_string() {
                    return Err(StatusError::conflict(rp.def.group, rp.def.plural, &name, format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    )));
                }
            }
            let already = meta(&obj)
                .map(|m| m.contains_key("deletionTimestamp"))
                .unwrap_or(false);
            // Graceful deletion: pods on a node get their grace period.
            let mut grace = 0i64;
            if def.kind == "Pod" {
                let on_node = obj
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .map(|n| !n.is_empty())
                    .unwrap_or(false);
                let phase = obj
                    .pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let terminal = phase == "Succeeded" || phase == "Failed";
                let spec_grace = obj
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30);
                grace = opts.grace_period.unwrap_or(spec_grace);
                if !on_node || terminal {
                    grace = 0;
                }
                if already {
                    // A later delete may only shorten the grace period.
                    let current = meta(&obj)
                        .and_then(|m| m.get("deletionGracePeriodSeconds"))
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if opts.grace_period.is_none() || grace >= current {
                        return Ok(Reply {
                            code: 200,
                            body: convert::from_storage(rp.def, obj),
                            warnings: Vec::new(),
                            encoded: None,
                        });
                    }
                }
            }
            let mut fins = finalizers(&obj);
            match opts.propagation.as_deref() {
                Some("Orphan") if !fins.iter().any(|f| f == "orphan") && !already => {
                    fins.push("orphan".into())
                }
                Some("Foreground")
                    if !fins.iter().any(|f| f == "foregroundDeletion") && !already =>
                {
                    fins.push("foregroundDeletion".into())
                }
                _ => {}
            }
            let namespace_pending = def.kind == "Namespace"
                && obj
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .map(|a| !a.is_empty())
                    .unwrap_or(false);
            if grace > 0 || !fins.is_empty() || namespace_pending {
                if already && grace == 0 {
                    return Ok(Reply {
                        code: 200,
                        body: convert::from_storage(rp.def, obj),
                        warnings: Vec::new(),
                        encoded: None,
                    });
                }
                let when = Utc::now() + chrono::Duration::seconds(grace);
                set_meta(
                    &mut obj,
                    "deletionTimestamp",
                    Value::String(when.to_rfc3339_opts(SecondsFormat::Secs, true)),
                );
                set_meta(&mut obj, "deletionGracePeriodSeconds", json!(grace));
                if !fins.is_empty() {
                    set_meta(&mut obj, "finalizers", json!(fins));
                }
                if def.kind == "Namespace" {
                    if let Some(m) = obj.as_object_mut() {
                        m.insert("status".into(), json!({"phase": "Terminating"}));
                    }
                }
                if opts.dry_run {
                    return Ok(Reply {
                        code: 200,
                        body: convert::from_storage(rp.def, obj),
                        warnings: Vec::new(),
                        encoded: None,
                    });
                }
                remove_meta(&mut obj, "resourceVersion");
                let bytes = Bytes::from(
                    serde_json::to_vec(&obj).map_err(|e| StatusError::internal(e.to_string()))?,
                );
                match self.store.update(&key, bytes, kv.mod_revision).await {
                    Ok(kv2) => {
                        set_meta(
                            &mut obj,
                            "resourceVersion",
                            Value::String(kv2.mod_revision.to_string()),
                        );
                        return Ok(Reply {
                            code: 200,
                            body: convert::from_storage(rp.def, obj),
                            warnings: Vec::new(),
                            encoded: None,
                        });
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(StoreError::NotFound { .. }) => return Err(Self::not_found(rp, &name)),
                    Err(e) => return Err(store_err(e)),
                }
            }
            if opts.dry_run {
                return Ok(Reply {
                    code: 200,
                    body: convert::from_storage(rp.def, obj),
                    warnings: Vec::new(),
                    encoded: None,
                });
            }
            match self.store.delete(&key, Some(kv.mod_revision)).await {
                Ok(deleted) => {
                    self.released_object(def, &obj).await;
                    set_meta(
                        &mut obj,
                        "resourceVersion",
                        Value::String(deleted.mod_revision.to_string()),
                    );
                    return Ok(Reply {
                        code: 200,
                        body: deleted_body(rp.def, obj),
                        warnings: Vec::new(),
                        encoded: None,
                    });
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound { .. }) => return Err(Self::not_found(rp, &name)),
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(StatusError::conflict(
            rp.def.group,
            rp.def.plural,
            &name,
            "too many concurrent updates; try again",
        ))
    }

    /// DELETE of a collection: every object the selectors match.
    pub async fn delete_collection(
        &self,
        rp: &ResourcePath,
        q: &Query,
        body: &[u8],
        filter: &Filter,
    ) -> Result<Reply, StatusError> {
        let list = self.list(rp, &Query::default(), filter).await?;
        let mut items = Vec::new();
        for o in list.items {
            let one = ResourcePath {
                def: rp.def,
                namespace: (!o.namespace.is_empty()).then(|| o.namespace.clone()),
                name: Some(o.name.clone()),
                subresource: None,
            };
            match self.delete(&one, q, body).await {
                Ok(r) => items.push(r.body),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let kind_list = format!("{}List", rp.def.kind);
        Ok(Reply {
            code: 200,
            body: json!({"kind": kind_list, "apiVersion": rp.def.api_version(), "metadata": {}, "items": items}),
            warnings: Vec::new(),
            encoded: None,
        })
    }

    /// Releases the IPs and ports of a deleted service.
    async fn released_object(&self, def: &ResourceDef, obj: &Value) {
        if def.kind != "Service" {
            return;
        }
        for ip in service_ips(obj) {
            self.alloc.release_ip(&ip).await;
        }
        for p in node_ports(obj) {
            self.alloc.release_port(p).await;
        }
    }

    async fn release(&self, allocated: Vec<Allocation>) {
        for a in allocated {
            match a {
                Allocation::Ip(ip) => self.alloc.release_ip(&ip).await,
                Allocation::Port(p) => self.alloc.release_port(p).await,
            }
        }
    }

    async fn release_replaced_service_allocations(&self, old: &Value, new: &Value) {
        let new_ips = service_ips(new);
        for ip in service_ips(old) {
            if !new_ips.contains(&ip) {
                self.alloc.release_ip(&ip).await;
            }
        }
        let new_ports = node_ports(new);
        for p in node_ports(old) {
            if !new_ports.contains(&p) {
                self.alloc.release_port(p).await;
            }
        }
    }

    /// Allocates the ClusterIP and node ports a service needs (keeping those it has).
    async fn allocate_service(
        &self,
        rp: &ResourcePath,
        key: &str,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<Vec<Allocation>, StatusError> {
        let name = meta_str(obj, "name").unwrap_or_default().to_string();
        let invalid = |field: Path, value: Value, detail: String| {
            StatusError::invalid(
                rp.def.group,
                rp.def.kind,
                &name,
                &[FieldError::invalid(&field, value, detail)],
            )
        };
        let mut allocated = Vec::new();
        let ty = obj
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        let old_ips = old.map(service_ips).unwrap_or_default();
        let old_ports = old.map(node_ports).unwrap_or_default();
        let result: Result<(), StatusError> = async {
            if ty != "ExternalName" {
                let requested = obj
                    .pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if requested != "None" {
                    if let Some(old) = old {
                        // clusterIP is immutable; keep the old one when the client left it out.
                        let old_ip = old
                            .pointer("/spec/clusterIP")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        if requested.is_empty() && !old_ip.is_empty() {
                            set_spec(obj, "clusterIP", json!(old_ip));
                            set_spec(obj, "clusterIPs", json!([old_ip]));
                        } else if !old_ip.is_empty() && requested != old_ip {
                            return Err(invalid(
                                Path::root("spec").child("clusterIPs").index(0),
                                json!(requested),
                                "may not change once set".into(),
                            ));
                        }
                    }
                    let current = obj
                        .pointer("/spec/clusterIP")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    if current.is_empty() || !old_ips.contains(&current) {
                        let want = (!current.is_empty()).then_some(current.as_str());
                        match self.alloc.allocate_ip(want, key).await {
                            Ok(ip) => {
                                let ip = ip.to_string();
                                set_spec(obj, "clusterIP", json!(ip));
                                set_spec(obj, "clusterIPs", json!([ip]));
                                allocated.push(Allocation::Ip(ip));
                            }
                            Err(e) => {
                                return Err(invalid(
                                    Path::root("spec").child("clusterIPs"),
                                    json!([current]),
                                    format!("failed to allocate IP {current}: {e}"),
                                ))
                            }
                        }
                    }
                } else {
                    set_spec(obj, "clusterIPs", json!(["None"]));
                }
            }
            let wants_node_ports = ty == "NodePort" || ty == "LoadBalancer";
            let ports = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut new_ports = Vec::with_capacity(ports.len());
            for (i, mut p) in ports.into_iter().enumerate() {
                if wants_node_ports {
                    let mut requested = p
                        .get("nodePort")
                        .and_then(Value::as_i64)
                        .filter(|n| *n != 0)
                        .map(|n| n as i32);
                    if requested.is_none() {
                        // On update, keep the port this service port had.
                        if let Some(old) = old {
                            let port = p.get("port").cloned();
                            requested = old
                                .pointer("/spec/ports")
                                .and_then(Value::as_array)
                                .and_then(|a| {
                                    a.iter()
                                        .find(|op| op.get("port") == port.as_ref())
                                        .and_then(|op| op.get("nodePort"))
                                        .and_then(Value::as_i64)
                                        .map(|n| n as i32)
                                });
                        }
                    }
                    match requested {
                        Some(n) if old_ports.contains(&n) => {
                            p["nodePort"] = json!(n);
                        }
                        _ => match self.alloc.allocate_port(requested, key).await {
                            Ok(n) => {
                                p["nodePort"] = json!(n);
                                allocated.push(Allocation::Port(n));
                            }
                            Err(e) => {
                                return Err(invalid(
                                    Path::root("spec").child("ports").index(i).child("nodePort"),
                                    json!(requested.unwrap_or(0)),
                                    e.to_string(),
                                ))
                            }
                        },
                    }
                } else if let Some(m) = p.as_object_mut() {
                    m.remove("nodePort");
                }
                new_ports.push(p);
            }
            if !new_ports.is_empty() {
                set_spec(obj, "ports", Value::Array(new_ports));
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(allocated),
            Err(e) => {
                self.release(allocated).await;
                Err(e)
            }
        }
    }

    /// Binding a pod to a node (`pods/binding` and `bindings`).
    pub async fn bind(
        &self,
        rp: &ResourcePath,
        body: &[u8],
        ct: Option<&str>,
    ) -> Result<Reply, StatusError> {
        let ty = BodyType::from_content_type(ct)?;
        let (b, _) = codec::decode_body(body, ty, false)?;
        let pod_name = rp
            .name
            .clone()
            .or_else(|| meta_str(&b, "name").map(str::to_string))
            .unwrap_or_default();
        let node = b
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if node.is_empty() {
            return Err(StatusError::invalid(
                "",
                "Binding",
                &pod_name,
                &[FieldError::required(
                    &Path::root("target").child("name"),
                    "",
                )],
            ));
        }
        let annotations = meta(&b).and_then(|m| m.get("annotations")).cloned();
        let pods = resources::find("", "v1", "pods").ok_or_else(StatusError::path_not_found)?;
        let prp = ResourcePath {
            def: pods,
            namespace: rp.namespace.clone(),
            name: Some(pod_name.clone()),
            subresource: Some("binding".into()),
        };
        let node2 = node.clone();
        self.update_with(&prp, None, false, move |old| {
            let mut pod = old.clone();
            if meta(&pod)
                .map(|m| m.contains_key("deletionTimestamp"))
                .unwrap_or(false)
            {
                return Err(StatusError::conflict(
                    "",
                    "pods",
                    &pod_name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            if let Some(n) = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(StatusError::conflict(
                    "",
                    "pods",
                    &pod_name,
                    format!("pod {pod_name} is already assigned to node {n:?}"),
                ));
            }
            set_spec(&mut pod, "nodeName", json!(node2));
            if let (Some(Value::Object(a)), Some(m)) = (&annotations, meta_mut(&mut pod)) {
                let ann = m.entry("annotations").or_insert_with(|| json!({}));
                if let Some(am) = ann.as_object_mut() {
                    for (k, v) in a {
                        am.insert(k.clone(), v.clone());
                    }
                }
            }
            set_condition(&mut pod, "PodScheduled", "True", None);
            Ok(pod)
        })
        .await?;
        Ok(Reply {
            code: 201,
            body: success_status(),
            warnings: Vec::new(),
            encoded: None,
        })
    }

    /// GET of a scale subresource.
    pub async fn get_scale(&self, rp: &ResourcePath, q: &Query) -> Result<Value, StatusError> {
        let mut parent = rp.clone();
        parent.subresource = None;
        let obj = self.get(&parent, q).await?;
        Ok(scale_of(&obj))
    }

    /// PUT or PATCH of a scale subresource: changes the parent's spec.replicas.
    pub async fn update_scale(
        &self,
        rp: &ResourcePath,
        q: &Query,
        body: &[u8],
        ct: Option<&str>,
        is_patch: bool,
    ) -> Result<Reply, StatusError> {
        let ty = BodyType::from_content_type(ct)?;
        let (incoming, _) =
            codec::decode_body(body, if is_patch { BodyType::Json } else { ty }, false)?;
        let name = rp.name.clone().unwrap_or_default();
        let precondition = if is_patch {
            None
        } else {
            meta_str(&incoming, "resourceVersion")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let mut parent = rp.clone();
        parent.subresource = None;
        let def = rp.def;
        let reply = self
            .update_with(&parent, precondition, q.dry_run()?, |old| {
                let current_scale = scale_of(&convert::from_storage(def, old.clone()));
                let new_scale = if is_patch {
                    crate::patching::apply(ty, &current_scale, body, "autoscaling", "v1", "Scale")?
                } else {
                    incoming.clone()
                };
                let replicas = new_scale
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if replicas < 0 {
                    return Err(StatusError::invalid(
                        "autoscaling",
                        "Scale",
                        &name,
                        &[FieldError::invalid(
                            &Path::root("spec").child("replicas"),
                            replicas,
                            "must be greater than or equal to 0",
                        )],
                    ));
                }
                let mut new = old.clone();
                set_spec(&mut new, "replicas", json!(replicas));
                Ok(new)
            })
            .await?;
        Ok(Reply {
            code: 200,
            body: scale_of(&reply.body),
            warnings: Vec::new(),
            encoded: None,
        })
    }
}

enum Allocation {
    Ip(String),
    Port(i32),
}

fn set_spec(obj: &mut Value, field: &str, v: Value) {
    if let Some(m) = obj.as_object_mut() {
        let spec = m.entry("spec").or_insert_with(|| json!({}));
        if let Some(s) = spec.as_object_mut() {
            s.insert(field.into(), v);
        }
    }
}

/// Sets a condition in `status.conditions`, keeping the transition time when unchanged.
pub fn set_condition(obj: &mut Value, ty: &str, status: &str, reason: Option<&str>) {
    let Some(m) = obj.as_object_mut() else { return };
    let st = m.entry("status").or_insert_with(|| json!({}));
    let Some(st) = st.as_object_mut() else { return };
    let conds = st.entry("conditions").or_insert_with(|| json!([]));
    let Some(conds) = conds.as_array_mut() else {
        return;
    };
    let now = now_rfc3339();
    if let Some(c) = conds
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
    {
        if c.get("status").and_then(Value::as_str) != Some(status) {
            c["status"] = json!(status);
            c["lastTransitionTime"] = json!(now);
        }
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        c["lastProbeTime"] = Value::Null;
    } else {
        let mut c =
            json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        conds.push(c);
    }
}

fn service_ips(obj: &Value) -> Vec<String> {
    obj.pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "None")
        .map(|s| vec![s.to_string()])
        .unwrap_or_default()
}

fn node_ports(obj: &Value) -> Vec<i32> {
    obj.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
                .filter(|n| *n != 0)
                .map(|n| n as i32)
                .collect()
        })
        .unwrap_or_default()
}

/// The autoscaling/v1 Scale of a replicated object.
pub fn scale_of(obj: &Value) -> Value {
    let m = meta(obj).cloned().unwrap_or_default();
    let selector = match obj.pointer("/spec/selector") {
        Some(Value::Object(sel))
            if sel.contains_key("matchLabels") || sel.contains_key("matchExpressions") =>
        {
            crate::filter::label_selector_string(&Value::Object(sel.clone()))
        }
        Some(Value::Object(sel)) => sel
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    let mut scale_meta = Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(f) {
            scale_meta.insert(f.into(), v.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {"replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0), "selector": selector},
    })
}

fn success_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

/// What a successful immediate delete returns: the object for kinds upstream returns it
/// for, a Success Status with details otherwise.
fn deleted_body(def: &ResourceDef, obj: Value) -> Value {
    if matches!(
        def.kind,
        "Pod" | "Service" | "Namespace" | "Node" | "PersistentVolume" | "PersistentVolumeClaim"
    ) {
        return convert::from_storage(def, obj);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": meta_str(&obj, "name").unwrap_or(""), "group": def.group, "kind": def.plural, "uid": meta_str(&obj, "uid").unwrap_or("")},
    })
}

fn apply_unsupported() -> StatusError {
    StatusError::unsupported_media_type(
        "server-side apply is not supported yet by bosun: use client-side apply (kubectl apply without --server-side)",
    )
}

/// A continue token: the list's revision and the last key returned.
#[derive(Debug, Clone)]
pub struct ContinueToken {
    pub rv: Revision,
    pub start: String,
}

impl ContinueToken {
    pub fn encode(&self) -> String {
        use base64::Engine;
        let v = json!({"v": "meta.k8s.io/v1", "rv": self.rv, "start": self.start});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }
    pub fn decode(s: &str) -> Result<ContinueToken, StatusError> {
        use base64::Engine;
        let bad = || StatusError::bad_request(format!("continue key is not valid: {s:?}"));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| bad())?;
        let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
        let rv = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
        let start = v
            .get("start")
            .and_then(Value::as_str)
            .ok_or_else(bad)?
            .to_string();
        Ok(ContinueToken { rv, start })
    }
}

/// Upstream's qualified resource for messages.
pub fn qualified_resource(def: &ResourceDef) -> String {
    qualified(def.group, def.plural)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse_resource_path;

    async fn registry() -> Registry {
        let store: Arc<dyn Store> =
            Arc::new(bosun_store::sqlite::SqliteStore::open_in_memory().expect("store"));
        let cache = Cache::start(store.clone(), 100).await.expect("cache");
        let cidr = crate::alloc::Cidr::parse("10.96.0.0/12").expect("cidr");
        let alloc = Allocator::new(store.clone(), cidr, (30000, 32767));
        Registry::new(store, cache, alloc)
    }

    fn rp(path: &str) -> ResourcePath {
        parse_resource_path(path)
            .expect("path")
            .expect("a resource path")
    }

    fn query(s: &str) -> Query {
        Query::parse(Some(s))
    }

    /// The create the JSON tree way (what `create` did before it typed bodies directly).
    async fn create_tree(
        reg: &Registry,
        rp: &ResourcePath,
        q: &Query,
        body: &[u8],
    ) -> Result<Reply, StatusError> {
        let (v, dups, fv) = Registry::parse_body(body, None, q)?;
        let obj = reg.check_object_untyped(rp, v)?;
        reg.create_value(rp, q, obj, Decoding { dups, fv }).await
    }

    /// The reply's object without what differs between two creates of the same body.
    fn normalized(r: &Reply) -> String {
        let mut v: Value = match &r.encoded {
            Some(b) => serde_json::from_slice(b).expect("json"),
            None => r.body.clone(),
        };
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in [
                "uid",
                "creationTimestamp",
                "resourceVersion",
                "name",
                "generateName",
            ] {
                m.remove(f);
            }
        }
        serde_json::to_string(&v).expect("json")
    }

    /// A body typed directly is stored, cached and answered byte for byte as the tree
    /// way stores it (uid, creation time, name and resourceVersion aside), with the same
    /// warnings; what it cannot handle, and every error, goes the tree way.
    #[tokio::test]
    async fn typed_creates_match_the_tree_way() {
        let reg = registry().await;
        let q = Query::default();
        reg.create(
            &rp("/api/v1/namespaces"),
            &q,
            br#"{"metadata":{"name":"d"}}"#,
            None,
        )
        .await
        .expect("namespace");
        let cases: &[(&str, &str)] = &[
            (
                "/api/v1/namespaces/d/pods",
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"NAME","labels":{"app":"x"},"resourceVersion":"7","uid":"u","generation":4,"annotations":{"a":"{\"requests\":{\"cpu\":\"0.5\"}}"}},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox","bogus":1,"resources":{"requests":{"cpu":"0.5","memory":"1024Mi"},"limits":{"cpu":"1"}}}],"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute"}]},"status":{"phase":"Running"}}"#,
            ),
            (
                "/api/v1/namespaces/d/pods",
                r#"{"metadata":{"name":"NAME","namespace":"d","name":"NAME"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
            ),
            (
                "/apis/apps/v1/namespaces/d/deployments",
                r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"NAME"},"spec":{"replicas":2,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"memory":"0.5Gi"}}}]}}}}"#,
            ),
            (
                "/api/v1/namespaces/d/configmaps",
                r#"{"metadata":{"generateName":"NAME-"},"data":{"a":"b"}}"#,
            ),
            (
                "/api/v1/nodes",
                r#"{"kind":"Node","metadata":{"name":"NAME","namespace":"x"},"status":{"capacity":{"cpu":"2000m"}}}"#,
            ),
        ];
        for (i, (path, body)) in cases.iter().enumerate() {
            let rp = rp(path);
            let typed = reg
                .create(
                    &rp,
                    &q,
                    body.replace("NAME", &format!("typed{i}")).as_bytes(),
                    None,
                )
                .await
                .expect("typed create");
            assert!(typed.body.is_null(), "{path}: went the typed way");
            let tree = create_tree(
                &reg,
                &rp,
                &q,
                body.replace("NAME", &format!("tree{i}")).as_bytes(),
            )
            .await
            .expect("tree create");
            assert_eq!(normalized(&typed), normalized(&tree), "{path}");
            assert_eq!(typed.warnings, tree.warnings, "{path}");
            // The cache holds the reply's bytes.
            let name = serde_json::from_slice::<Value>(typed.encoded.as_deref().expect("bytes"))
                .expect("json")["metadata"]["name"]
                .as_str()
                .expect("name")
                .to_string();
            let mut one = rp.clone();
            one.name = Some(name);
            let cached = reg.get_cached(&one, &q).await.expect("cached");
            assert_eq!(Some(&cached.bytes), typed.encoded.as_ref(), "{path}");
        }
        // Errors are the tree way's, whichever check finds them first.
        let errors: &[(&str, &str, &str)] = &[
            (
                "/api/v1/namespaces/d/pods",
                "fieldValidation=Strict",
                r#"{"metadata":{"name":"e","name":"e"},"spec":{"containers":[{"name":"c","image":"i","x":1}]}}"#,
            ),
            (
                "/api/v1/namespaces/d/pods",
                "",
                r#"{"metadata":{"name":"e"},"spec":{"containers":"no"}}"#,
            ),
            (
                "/api/v1/namespaces/d/pods",
                "",
                r#"{"kind":"Service","metadata":{"name":"e"}}"#,
            ),
            (
                "/api/v1/namespaces/d/pods",
                "",
                r#"{"apiVersion":"v2","metadata":{"name":"e"}}"#,
            ),
            (
                "/api/v1/namespaces/d/pods",
                "",
                r#"{"kind":"","metadata":{"name":"e"}}"#,
            ),
            (
                "/api/v1/namespaces/d/pods",
                "",
                r#"{"metadata":{"namespace":"x"},"spec":{"containers":[]}}"#,
            ),
            (
                "/api/v1/namespaces/d/pods",
                "",
                r#"{"metadata":{"name":"E"},"spec":{"containers":[]}}"#,
            ),
            (
                "/api/v1/namespaces/d/pods",
                "dryRun=x",
                r#"{"metadata":{"name":"e"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
            ),
            (
                "/api/v1/namespaces/nope/pods",
                "",
                r#"{"metadata":{"name":"e"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
            ),
            (
                "/api/v1/namespaces/d/pods",
                "",
                r#"{"metadata":{"name":"typed0"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
            ),
            (
                "/api/v1/namespaces/d/pods",
                "",
                r#"{"metadata":{"name":"e"},"spec":{"containers":[{"name":"c","image":"i"}]}} x"#,
            ),
            ("/api/v1/namespaces/d/pods", "", "[]"),
        ];
        for (path, qs, body) in errors {
            let (rp, q) = (rp(path), query(qs));
            let typed = reg.create(&rp, &q, body.as_bytes(), None).await.err();
            let tree = create_tree(&reg, &rp, &q, body.as_bytes()).await.err();
            let show = |e: &Option<StatusError>| e.as_ref().map(|e| (e.code, e.message.clone()));
            assert!(typed.is_some(), "{body}: refused");
            assert_eq!(show(&typed), show(&tree), "{body}");
        }
        // A dry run answers the object and stores nothing.
        let p = rp("/api/v1/namespaces/d/pods");
        let dry = reg
            .create(
                &p,
                &query("dryRun=All"),
                br#"{"metadata":{"name":"dry"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
                None,
            )
            .await
            .expect("dry run");
        assert_eq!(dry.body["metadata"]["name"], "dry");
        assert!(reg
            .store
            .get("/registry/pods/d/dry")
            .await
            .expect("get")
            .is_none());
    }
}
