//! The HTTP layer: routes every request to discovery, OpenAPI, health, metrics or the
//! registry, negotiates the response format (JSON, YAML, Table), streams watches, and
//! turns every error into a meta/v1 Status body.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bosun_api::printers;
use bosun_api::StatusError;
use bytes::Bytes;
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::cache::{self, CacheEvent, CachedObject, WatchEventType};
use crate::codec::{self, Accept};
use crate::convert;
use crate::discovery;
use crate::filter::Filter;
use crate::metrics::Metrics;
use crate::registry::{storage_def, ListReply, Registry, Reply};
use crate::request::{parse_resource_path, Query, ResourcePath};

/// Everything a handler needs.
pub struct ApiState {
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// host:port clients reach this server at (for /api's serverAddressByClientCIDRs).
    pub advertise: String,
    /// Client for kubelets (`pods/log` is proxied to the pod's node).
    pub kubelet: Arc<crate::kubelet_proxy::KubeletClient>,
    /// metrics.k8s.io: the cache of kubelet summaries.
    pub metrics_api: crate::metrics_api::MetricsApi,
}

pub type SharedState = Arc<ApiState>;

/// The API router.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi/v3", get(openapi_index))
        .route("/openapi/v3/{*path}", get(openapi_doc))
        .route("/openapi/v2", get(openapi_v2))
        .fallback(dispatch)
        .with_state(state)
}

async fn version() -> Response {
    json_response(200, &discovery::version())
}

async fn healthz() -> Response {
    text(200, "ok")
}

async fn readyz(State(st): State<SharedState>) -> Response {
    match st.registry.cache.sync().await {
        Ok(_) => text(200, "ok"),
        Err(e) => text(500, &format!("[-]watch-cache failed: {e}")),
    }
}

async fn metrics(State(st): State<SharedState>) -> Response {
    let mut resp = Response::new(Body::from(st.metrics.render()));
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

async fn openapi_index() -> Response {
    json_response(200, &crate::openapi_glue::index())
}

async fn openapi_doc(req: Request) -> Response {
    let path = req
        .uri()
        .path()
        .trim_start_matches("/openapi/v3/")
        .to_string();
    match crate::openapi_glue::document(&path, req.uri().query()) {
        Some(resp) => resp,
        None => error_response(&StatusError::path_not_found()),
    }
}

async fn openapi_v2() -> Response {
    error_response(&StatusError::path_not_found())
}

fn text(code: u16, s: &str) -> Response {
    let mut resp = Response::new(Body::from(s.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub fn json_response(code: u16, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    bytes_response(code, Bytes::from(body), "application/json")
}

fn bytes_response(code: u16, body: Bytes, ct: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(ct));
    resp
}

pub fn error_response(e: &StatusError) -> Response {
    json_response(e.code, &e.to_status())
}

fn encode_as(accept: Accept, v: &Value, code: u16) -> Response {
    match accept {
        Accept::Yaml => match serde_yaml::to_string(v) {
            Ok(y) => bytes_response(code, Bytes::from(y), "application/yaml"),
            Err(e) => error_response(&StatusError::internal(e.to_string())),
        },
        _ => json_response(code, v),
    }
}

fn add_warnings(resp: &mut Response, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(h) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append("warning", h);
        }
    }
}

/// The verb of a request, as metrics and audit name it.
fn verb_of(method: &Method, rp: Option<&ResourcePath>, q: &Query) -> &'static str {
    let named = rp.map(|r| r.name.is_some()).unwrap_or(false);
    match *method {
        Method::GET if q.flag("watch") => "WATCH",
        Method::GET if named => "GET",
        Method::GET => "LIST",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE if named => "DELETE",
        Method::DELETE => "DELETECOLLECTION",
        _ => "OTHER",
    }
}

async fn dispatch(State(st): State<SharedState>, req: Request) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let q = Query::parse(req.uri().query());
    let headers = req.headers().clone();
    if crate::metrics_api::handles(&path) {
        let resp = crate::metrics_api::handle(&st, &method, &path, &q).await;
        let verb = if method == Method::GET {
            "GET"
        } else {
            "OTHER"
        };
        st.metrics.observe(
            verb,
            "metrics.k8s.io",
            resp.status().as_u16(),
            start.elapsed(),
        );
        return resp;
    }
    let rp = match parse_resource_path(&path) {
        Ok(rp) => rp,
        Err(e) => return error_response(&e),
    };
    let verb = verb_of(&method, rp.as_ref(), &q);
    let resource = rp.as_ref().map(|r| r.def.plural).unwrap_or("");
    let resp = match rp {
        None => discovery_request(&st, &path, &headers),
        Some(rp) => {
            let span = tracing::debug_span!(
                "request",
                verb,
                resource = rp.def.plural,
                namespace = rp.namespace.as_deref().unwrap_or(""),
                name = rp.name.as_deref().unwrap_or("")
            );
            let _g = span.enter();
            drop(_g);
            // A bug must never take the server down: a panicking request answers 500.
            let fut =
                std::panic::AssertUnwindSafe(resource_request(&st, &method, rp, &q, &headers, req));
            match futures::FutureExt::catch_unwind(fut).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => error_response(&e),
                Err(_) => {
                    tracing::error!(%method, path, "request handler panicked");
                    error_response(&StatusError::internal(
                        "the server hit an unexpected error while handling the request",
                    ))
                }
            }
        }
    };
    if verb != "WATCH" {
        st.metrics
            .observe(verb, resource, resp.status().as_u16(), start.elapsed());
    }
    resp
}

fn discovery_request(st: &ApiState, path: &str, headers: &HeaderMap) -> Response {
    let accept = match codec::negotiate(header(headers, "accept")) {
        Ok(a) => a,
        Err(e) => return error_response(&e),
    };
    let p = path.trim_end_matches('/');
    let aggregated = |items: Value, beta: bool| {
        let mut resp = json_response(200, &items);
        let ct = if beta {
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        } else {
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        };
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static(ct));
        resp
    };
    match (p, accept) {
        ("/api", Accept::DiscoveryV2 { beta }) => {
            aggregated(discovery::aggregated(true, beta), beta)
        }
        ("/apis", Accept::DiscoveryV2 { beta }) => {
            aggregated(discovery::aggregated(false, beta), beta)
        }
        ("/api", _) => json_response(200, &discovery::api_versions(&st.advertise)),
        ("/apis", _) => json_response(200, &discovery::api_group_list()),
        _ => {
            let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            let found = match segs.as_slice() {
                ["api", v] => discovery::resource_list("", v),
                ["apis", g, v] => discovery::resource_list(g, v),
                ["apis", g] => discovery::api_group(g),
                _ => None,
            };
            match found {
                Some(v) => json_response(200, &v),
                None => error_response(&StatusError::path_not_found()),
            }
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn read_body(req: Request) -> Result<Bytes, StatusError> {
    let limited = http_body_util::Limited::new(req.into_body(), codec::MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(StatusError::too_large(
                    "Request entity too large: limit is 3145728",
                ))
            } else {
                Err(StatusError::bad_request(format!(
                    "reading the request body: {e}"
                )))
            }
        }
    }
}

async fn resource_request(
    st: &ApiState,
    method: &Method,
    rp: ResourcePath,
    q: &Query,
    headers: &HeaderMap,
    req: Request,
) -> Result<Response, StatusError> {
    let reg = &st.registry;
    let ct = header(headers, "content-type").map(str::to_string);
    let sub = rp.subresource.clone();
    let named = rp.name.is_some();
    let allowed = |verb| {
        if rp.def.has_verb(verb) {
            Ok(())
        } else {
            Err(StatusError::method_not_allowed())
        }
    };
    use bosun_api::resources::Verb;
    match (method.clone(), sub.as_deref()) {
        (Method::GET, None) if !named && q.flag("watch") => {
            allowed(Verb::Watch)?;
            watch(st, rp, q, headers).await
        }
        (Method::GET, None) if named && q.flag("watch") => {
            // Legacy form: watch of one object by name.
            allowed(Verb::Watch)?;
            watch(st, rp, q, headers).await
        }
        (Method::GET, None) if named => {
            allowed(Verb::Get)?;
            let accept = codec::negotiate(header(headers, "accept"))?;
            if accept == Accept::Json && rp.def.is_storage_version() {
                // The cached bytes are the answer: no decode, no re-encode.
                let obj = reg.get_cached(&rp, q).await?;
                return Ok(bytes_response(200, obj.bytes.clone(), "application/json"));
            }
            let obj = reg.get(&rp, q).await?;
            respond_object(&rp, accept, q, obj, 200)
        }
        (Method::GET, None) => {
            allowed(Verb::List)?;
            let accept = codec::negotiate(header(headers, "accept"))?;
            let filter = Filter::from_query(&rp, q)?;
            let list = reg.list(&rp, q, &filter).await?;
            respond_list(&rp, accept, q, list)
        }
        (Method::POST, None) if !named => {
            allowed(Verb::Create)?;
            if rp.def.plural == "bindings" {
                let body = read_body(req).await?;
                let r = reg.bind(&rp, &body, ct.as_deref()).await?;
                return Ok(reply(r, Accept::Json));
            }
            let accept = codec::negotiate(header(headers, "accept"))?;
            let body = read_body(req).await?;
            let r = reg.create(&rp, q, &body, ct.as_deref()).await?;
            Ok(reply(r, accept))
        }
        (Method::PUT, None | Some("status") | Some("finalize")) if named => {
            allowed(Verb::Update)?;
            let accept = codec::negotiate(header(headers, "accept"))?;
            let body = read_body(req).await?;
            let r = reg.update(&rp, q, &body, ct.as_deref()).await?;
            Ok(reply(r, accept))
        }
        (Method::PATCH, None | Some("status")) if named => {
            allowed(Verb::Patch)?;
            let accept = codec::negotiate(header(headers, "accept"))?;
            let body = read_body(req).await?;
            let r = reg.patch(&rp, q, &body, ct.as_deref()).await?;
            Ok(reply(r, accept))
        }
        (Method::DELETE, None) if named => {
            allowed(Verb::Delete)?;
            let accept = codec::negotiate(header(headers, "accept"))?;
            let body = read_body(req).await?;
            let r = reg.delete(&rp, q, &body).await?;
            Ok(reply(r, accept))
        }
        (Method::DELETE, None) => {
            allowed(Verb::DeleteCollection)?;
            let filter = Filter::from_query(&rp, q)?;
            let body = read_body(req).await?;
            let r = reg.delete_collection(&rp, q, &body, &filter).await?;
            Ok(reply(r, Accept::Json))
        }
        (Method::GET, Some("status")) => {
            let accept = codec::negotiate(header(headers, "accept"))?;
            let mut parent = rp.clone();
            parent.subresource = None;
            let obj = reg.get(&parent, q).await?;
            respond_object(&rp, accept, q, obj, 200)
        }
        (Method::GET, Some("scale")) => Ok(json_response(200, &reg.get_scale(&rp, q).await?)),
        (Method::PUT, Some("scale")) => {
            let body = read_body(req).await?;
            Ok(reply(
                reg.update_scale(&rp, q, &body, ct.as_deref(), false)
                    .await?,
                Accept::Json,
            ))
        }
        (Method::PATCH, Some("scale")) => {
            let body = read_body(req).await?;
            Ok(reply(
                reg.update_scale(&rp, q, &body, ct.as_deref(), true).await?,
                Accept::Json,
            ))
        }
        (Method::POST, Some("binding")) => {
            let body = read_body(req).await?;
            Ok(reply(
                reg.bind(&rp, &body, ct.as_deref()).await?,
                Accept::Json,
            ))
        }
        (Method::POST, Some("eviction")) => {
            let body = read_body(req).await?;
            let status = crate::eviction::evict(reg, &rp, q, &body, ct.as_deref()).await?;
            Ok(json_response(201, &status))
        }
        (Method::GET, Some("log")) if rp.def.plural == "pods" => {
            crate::kubelet_proxy::pod_log(st, &rp, q).await
        }
        (Method::GET | Method::POST, Some("exec" | "attach" | "portforward"))
            if rp.def.plural == "pods" =>
        {
            crate::kubelet_proxy::pod_stream(st, &rp, req).await
        }
        (_, Some(s)) if ["log", "exec", "attach", "portforward", "proxy"].contains(&s) => {
            Err(StatusError::service_unavailable(format!(
                "the {s} subresource needs a node agent, and no agent serves pod {:?}",
                rp.name.as_deref().unwrap_or("")
            )))
        }
        _ => Err(StatusError::method_not_allowed()),
    }
}

fn reply(r: Reply, accept: Accept) -> Response {
    let mut resp = match (accept, r.encoded) {
        (Accept::Json, Some(bytes)) => bytes_response(r.code, bytes, "application/json"),
        // A typed create leaves only the bytes: other formats start from them.
        (_, Some(bytes)) if r.body.is_null() => match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => encode_as(accept, &v, r.code),
            Err(e) => error_response(&StatusError::internal(e.to_string())),
        },
        _ => encode_as(accept, &r.body, r.code),
    };
    add_warnings(&mut resp, &r.warnings);
    resp
}

/// One object as JSON, YAML or a one-row Table.
fn respond_object(
    rp: &ResourcePath,
    accept: Accept,
    q: &Query,
    obj: Value,
    code: u16,
) -> Result<Response, StatusError> {
    match accept {
        Accept::Table { v1beta1 } => {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(json!(""));
            let storage = convert::to_storage(rp.def, obj.clone());
            let rows = vec![table_row(rp, q, &storage, &obj)?];
            Ok(json_response(code, &table(rp, v1beta1, rv, rows, true)))
        }
        Accept::PartialObjectMetadata => Ok(json_response(code, &partial_metadata(&obj))),
        _ => Ok(encode_as(accept, &obj, code)),
    }
}

fn partial_metadata(obj: &Value) -> Value {
    partial_object(obj.get("metadata").cloned())
}

/// A PartialObjectMetadata holding `metadata`.
fn partial_object(metadata: Option<Value>) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata.unwrap_or_else(|| json!({}))})
}

/// A Table row from its printed cells and conditions and the row's object, if any.
fn row_value(printed: printers::PrintedRow, object: Option<Value>) -> Value {
    let mut row = json!({"cells": printed.cells});
    if !printed.conditions.is_empty() {
        row["conditions"] = Value::Array(printed.conditions);
    }
    if let Some(o) = object {
        row["object"] = o;
    }
    row
}

fn table_row(
    rp: &ResourcePath,
    q: &Query,
    storage: &Value,
    served: &Value,
) -> Result<Value, StatusError> {
    let def = storage_def(rp.def);
    let printed = printers::row_for(&def.api_version(), def.kind, storage, Utc::now())
        .map_err(|e| StatusError::internal(e.to_string()))?;
    let object = match q.get("includeObject") {
        Some("None") => None,
        Some("Object") => Some(served.clone()),
        _ => Some(partial_metadata(served)),
    };
    Ok(row_value(printed, object))
}

/// [`table_row`] for an object at the storage version, decoded from its cached bytes (no
/// JSON tree; only its metadata is kept as a value, for the row's partial object).
fn table_row_from_bytes(rp: &ResourcePath, q: &Query, bytes: &[u8]) -> Result<Value, StatusError> {
    let def = storage_def(rp.def);
    let printed = printers::row_for_json(&def.api_version(), def.kind, bytes, Utc::now())
        .map_err(|e| StatusError::internal(e.to_string()))?;
    let object = if q.get("includeObject") == Some("None") {
        None
    } else {
        #[derive(serde::Deserialize)]
        struct MetaOnly {
            metadata: Option<Value>,
        }
        let m: MetaOnly = serde_json::from_slice(bytes)
            .map_err(|e| StatusError::internal(format!("decoding a cached object: {e}")))?;
        Some(partial_object(m.metadata))
    };
    Ok(row_value(printed, object))
}

fn table(
    rp: &ResourcePath,
    v1beta1: bool,
    rv: Value,
    rows: Vec<Value>,
    with_columns: bool,
) -> Value {
    let def = storage_def(rp.def);
    let columns = if with_columns {
        printers::column_definitions(printers::columns_for(&def.api_version(), def.kind))
    } else {
        Vec::new()
    };
    let mut t = json!({
        "kind": "Table",
        "apiVersion": if v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
        "metadata": {"resourceVersion": rv},
        "rows": rows,
    });
    if with_columns {
        t["columnDefinitions"] = Value::Array(columns);
    }
    t
}

/// A list, streamed from the cached bytes without re-encoding when possible.
fn respond_list(
    rp: &ResourcePath,
    accept: Accept,
    q: &Query,
    list: ListReply,
) -> Result<Response, StatusError> {
    let mut meta = serde_json::Map::new();
    meta.insert("resourceVersion".into(), json!(list.rv.to_string()));
    if let Some(c) = &list.continue_token {
        meta.insert("continue".into(), json!(c));
    }
    if let Some(r) = list.remaining {
        meta.insert("remainingItemCount".into(), json!(r));
    }
    match accept {
        Accept::Table { v1beta1 } => {
            let mut rows = Vec::with_capacity(list.items.len());
            let whole_object = q.get("includeObject") == Some("Object");
            for o in &list.items {
                if rp.def.is_storage_version() && !whole_object {
                    // The row and the object's metadata straight from the cached bytes.
                    rows.push(table_row_from_bytes(rp, q, &o.bytes)?);
                    continue;
                }
                let storage = o.value()?;
                let served = convert::from_storage(rp.def, storage.clone());
                rows.push(table_row(rp, q, &storage, &served)?);
            }
            let mut t = table(rp, v1beta1, json!(list.rv.to_string()), rows, true);
            t["metadata"] = Value::Object(meta);
            Ok(json_response(200, &t))
        }
        Accept::Json if rp.def.is_storage_version() => {
            // Fast path: splice the cached bytes into the list.
            let mut out = Vec::with_capacity(
                list.items.iter().map(|o| o.bytes.len() + 1).sum::<usize>() + 256,
            );
            out.extend_from_slice(
                format!(
                    "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":",
                    rp.def.kind,
                    rp.def.api_version()
                )
                .as_bytes(),
            );
            out.extend_from_slice(&serde_json::to_vec(&meta).unwrap_or_default());
            out.extend_from_slice(b",\"items\":[");
            for (i, o) in list.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&o.bytes);
            }
            out.extend_from_slice(b"]}");
            Ok(bytes_response(200, Bytes::from(out), "application/json"))
        }
        _ => {
            let mut items = Vec::with_capacity(list.items.len());
            for o in &list.items {
                let v = convert::from_storage(rp.def, o.value()?);
                items.push(if accept == Accept::PartialObjectMetadata {
                    partial_metadata(&v)
                } else {
                    v
                });
            }
            let kind = if accept == Accept::PartialObjectMetadata {
                "PartialObjectMetadataList".to_string()
            } else {
                format!("{}List", rp.def.kind)
            };
            let api_version = if accept == Accept::PartialObjectMetadata {
                "meta.k8s.io/v1".to_string()
            } else {
                rp.def.api_version()
            };
            Ok(encode_as(
                accept,
                &json!({"kind": kind, "apiVersion": api_version, "metadata": meta, "items": items}),
                200,
            ))
        }
    }
}

/// How a watcher sees one event, given its filter.
fn event_for(ev: &CacheEvent, filter: &Filter) -> Option<WatchEventType> {
    let now = filter.matches(&ev.object);
    let before = ev.prev.as_ref().map(|p| filter.matches(p)).unwrap_or(false);
    match ev.event_type {
        WatchEventType::Added => now.then_some(WatchEventType::Added),
        WatchEventType::Modified => match (before, now) {
            (true, true) => Some(WatchEventType::Modified),
            (false, true) => Some(WatchEventType::Added),
            (true, false) => Some(WatchEventType::Deleted),
            (false, false) => None,
        },
        WatchEventType::Deleted => (before || now).then_some(WatchEventType::Deleted),
    }
}

/// Encodes a watch line for one object, converting it for the watcher.
struct WatchEncoder {
    rp: ResourcePath,
    accept: Accept,
    q: Query,
    sent_columns: bool,
}

impl WatchEncoder {
    fn encode(
        &mut self,
        ty: WatchEventType,
        obj: &CachedObject,
        shared: Option<&Bytes>,
    ) -> Option<Bytes> {
        if let (Some(line), Accept::Json) = (shared, self.accept) {
            if self.rp.def.is_storage_version() {
                return Some(line.clone());
            }
        }
        match self.accept {
            Accept::Json if self.rp.def.is_storage_version() => {
                Some(cache::watch_line(ty.as_str(), &obj.bytes))
            }
            Accept::Table { v1beta1 } => {
                let storage = obj.value().ok()?;
                let served = convert::from_storage(self.rp.def, storage.clone());
                let row = table_row(&self.rp, &self.q, &storage, &served).ok()?;
                let t = table(
                    &self.rp,
                    v1beta1,
                    json!(obj.rv.to_string()),
                    vec![row],
                    !self.sent_columns,
                );
                self.sent_columns = true;
                Some(cache::watch_line(
                    ty.as_str(),
                    &serde_json::to_vec(&t).ok()?,
                ))
            }
            _ => {
                let served = convert::from_storage(self.rp.def, obj.value().ok()?);
                let v = if self.accept == Accept::PartialObjectMetadata {
                    partial_metadata(&served)
                } else {
                    served
                };
                Some(cache::watch_line(
                    ty.as_str(),
                    &serde_json::to_vec(&v).ok()?,
                ))
            }
        }
    }

    fn bookmark(&self, rv: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.rp.def.kind, "apiVersion": self.rp.def.api_version(), "metadata": meta});
        cache::watch_line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
    }
}

/// The whole answer to a watch that cannot start from its resourceVersion: 200, then one
/// ERROR event with the Status, then the end of the stream (as upstream's cacher).
fn expired_watch(e: &StatusError) -> Response {
    let line = cache::watch_line("ERROR", e.to_status().to_string().as_bytes());
    let mut resp = Response::new(Body::from(line));
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

async fn watch(
    st: &ApiState,
    rp: ResourcePath,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Response, StatusError> {
    let accept = codec::negotiate(header(headers, "accept"))?;
    let mut filter = Filter::from_query(&rp, q)?;
    if let Some(n) = &rp.name {
        filter.name = Some(n.clone());
    }
    let reg = &st.registry;
    let rc = reg
        .cache
        .resource(rp.def)
        .ok_or_else(StatusError::path_not_found)?
        .clone();
    let send_initial = match q.get("sendInitialEvents") {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    if send_initial.is_some() && !bookmarks {
        return Err(StatusError::invalid(
            "",
            "ListOptions",
            "",
            &[bosun_api::FieldError::forbidden(
                &bosun_api::Path::root("allowWatchBookmarks"),
                "allowWatchBookmarks must be set to true when sendInitialEvents is specified",
            )],
        ));
    }
    let rv_param = q.get("resourceVersion").filter(|s| !s.is_empty());
    let from: Option<i64> = match (rv_param, send_initial) {
        (_, Some(true)) => None,
        (None, Some(false)) => Some(reg.cache.sync().await?),
        (None, None) => {
            reg.cache.sync().await?;
            None
        }
        (Some("0"), None) => None,
        (Some(rv), _) => {
            let rv: i64 = rv
                .parse()
                .map_err(|_| StatusError::bad_request(format!("invalid resource version: {rv}")))?;
            Some(rv)
        }
    };
    if send_initial == Some(true) {
        if let Some(rv) = rv_param
            .and_then(|r| r.parse::<i64>().ok())
            .filter(|r| *r > 0)
        {
            reg.cache.wait_for(rv, Duration::from_secs(3)).await?;
        } else {
            reg.cache.sync().await?;
        }
    }
    if let Some(rv) = from {
        if rv > reg.cache.rv() {
            reg.cache.wait_for(rv, Duration::from_secs(3)).await?;
        }
    }
    let prefix = cache::resource_prefix(rp.def, rp.namespace.as_deref());
    let (sub, snapshot) = match rc.subscribe(from, &prefix) {
        Ok(s) => s,
        // A resourceVersion the cache no longer holds: upstream's cacher answers 200 with one
        // ERROR event carrying the 410 Status (`newErrWatcher`), and that event is what
        // client-go's reflector and kube-runtime's watcher relist on. An HTTP 410 at watch
        // start is retried as it is, from the same version, for ever: a controller whose
        // watch lagged behind the cache never caught up again.
        Err(e) if e.code == 410 => return Ok(expired_watch(&e)),
        Err(e) => return Err(e),
    };
    let timeout = match q.int("timeoutSeconds")? {
        Some(t) if t > 0 => Duration::from_secs(t as u64),
        _ => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let mut enc = WatchEncoder {
        rp: rp.clone(),
        accept,
        q: q.clone(),
        sent_columns: false,
    };
    let metrics = st.metrics.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(async move {
        metrics.watch_started(enc.rp.def.plural);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmark_tick = tokio::time::interval(Duration::from_secs(60));
        bookmark_tick.tick().await;
        let mut last_rv = sub.after;
        let mut rx_events = sub.rx;
        'run: {
            if let Some(snap) = snapshot {
                for o in &snap.objects {
                    if filter.matches(o) {
                        if let Some(line) = enc.encode(WatchEventType::Added, o, None) {
                            if tx.send(Ok(line)).await.is_err() {
                                break 'run;
                            }
                        }
                    }
                }
                last_rv = snap.rv;
                if send_initial == Some(true)
                    && tx.send(Ok(enc.bookmark(snap.rv, true))).await.is_err()
                {
                    break 'run;
                }
            }
            for ev in &sub.backlog {
                if let Some(ty) = event_for(ev, &filter) {
                    let shared = (ty == ev.event_type).then(|| ev.line());
                    if let Some(line) = enc.encode(ty, &ev.object, shared) {
                        if tx.send(Ok(line)).await.is_err() {
                            break 'run;
                        }
                    }
                }
                last_rv = ev.rv;
            }
            loop {
                tokio::select! {
                    ev = rx_events.recv() => match ev {
                        Ok(ev) => {
                            if ev.rv <= sub.after {
                                continue;
                            }
                            last_rv = ev.rv;
                            if let Some(ty) = event_for(&ev, &filter) {
                                let shared = (ty == ev.event_type).then(|| ev.line());
                                if let Some(line) = enc.encode(ty, &ev.object, shared) {
                                    if tx.send(Ok(line)).await.is_err() {
                                        break 'run;
                                    }
                                }
                            }
                        }
                        // A watcher too slow to keep up is ended; the client resumes
                        // from the last resourceVersion it saw.
                        Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => break 'run,
                    },
                    _ = bookmark_tick.tick(), if bookmarks => {
                        let rv = rc.bookmark_rv(&rx_events, last_rv);
                        if tx.send(Ok(enc.bookmark(rv, false))).await.is_err() {
                            break 'run;
                        }
                    }
                    _ = &mut deadline => break 'run,
                    _ = tx.closed() => break 'run,
                }
            }
        }
        metrics.watch_ended(enc.rp.def.plural);
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    Ok(resp)
}
