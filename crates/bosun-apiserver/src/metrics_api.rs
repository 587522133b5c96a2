//! `metrics.k8s.io/v1beta1`, the resource metrics API that metrics-server serves upstream,
//! served by the API server itself: NodeMetrics and PodMetrics (get and list, pods per
//! namespace or across all, label and field selectors), built from each node's kubelet
//! `/stats/summary` (the kubelet's own CPU rate in nano-cores and memory working set),
//! fetched through the same kubelet client as `pods/log` and kept for [`SCRAPE_TTL`].
//! `kubectl top nodes|pods` and the HPA controller read it.
//!
//! As metrics-server does, a node or pod whose CPU rate is not known yet (the kubelet has
//! taken one sample only) is left out rather than reported as zero, and a pod is reported
//! only with every running container's figures.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use axum::response::Response;
use bosun_api::StatusError;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use serde_json::{json, Value};

use crate::filter::Filter;
use crate::handlers::{json_response, ApiState};
use crate::request::{Query, ResourcePath};

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
const API_VERSION: &str = "metrics.k8s.io/v1beta1";
/// How long one node's summary is reused: `kubectl top` and the HPA (every 15 s) share one
/// scrape; the kubelet itself samples every 10 s.
pub const SCRAPE_TTL: Duration = Duration::from_secs(5);
/// The window the kubelet's CPU rate covers (its sampling period, 10 s by default).
const WINDOW: &str = "10s";
/// How long one scrape may take before the node counts as unavailable.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest summary accepted (a node with 110 pods answers well under 1 MiB).
const MAX_SUMMARY: usize = 16 << 20;

/// One node's summary: when it was fetched, from which kubelet address, and the JSON.
type Scrape = (Instant, String, Arc<Value>);

/// The scrape cache: node name → its last summary.
#[derive(Default)]
pub struct MetricsApi {
    scrapes: Mutex<HashMap<String, Scrape>>,
}

/// The APIGroup entry of discovery.
pub fn group_entry() -> Value {
    json!({
        "name": GROUP,
        "versions": [{"groupVersion": API_VERSION, "version": VERSION}],
        "preferredVersion": {"groupVersion": API_VERSION, "version": VERSION},
    })
}

const RESOURCES: [(&str, &str, &str, bool); 2] = [
    ("nodes", "node", "NodeMetrics", false),
    ("pods", "pod", "PodMetrics", true),
];

/// `GET /apis/metrics.k8s.io/v1beta1` (metrics-server lists only get and list).
pub fn resource_list() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(plural, singular, kind, namespaced)| {
            json!({"name": plural, "singularName": singular, "namespaced": namespaced,
                   "kind": kind, "verbs": ["get", "list"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION,
           "resources": resources})
}

/// The group's item in aggregated discovery (`/apis`).
pub fn aggregated_item() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(plural, singular, kind, namespaced)| {
            json!({
                "resource": plural,
                "responseKind": {"group": GROUP, "version": VERSION, "kind": kind},
                "scope": if *namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": singular,
                "verbs": ["get", "list"],
            })
        })
        .collect();
    json!({
        "metadata": {"name": GROUP, "creationTimestamp": null},
        "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}],
    })
}

/// What a request under `/apis/metrics.k8s.io/v1beta1/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Nodes(Option<String>),
    /// (namespace, name); no namespace means all namespaces.
    Pods(Option<String>, Option<String>),
}

fn parse_target(path: &str) -> Option<Target> {
    let rest = path
        .strip_prefix("/apis/metrics.k8s.io/v1beta1/")?
        .trim_end_matches('/');
    let segs: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["nodes"] => Some(Target::Nodes(None)),
        ["nodes", n] => Some(Target::Nodes(Some(n.to_string()))),
        ["pods"] => Some(Target::Pods(None, None)),
        ["namespaces", ns, "pods"] => Some(Target::Pods(Some(ns.to_string()), None)),
        ["namespaces", ns, "pods", n] => {
            Some(Target::Pods(Some(ns.to_string()), Some(n.to_string())))
        }
        _ => None,
    }
}

/// Whether `path` belongs to this API (below its discovery document).
pub fn handles(path: &str) -> bool {
    path.strip_prefix("/apis/metrics.k8s.io/v1beta1/")
        .is_some_and(|rest| !rest.trim_matches('/').is_empty())
}

/// Serves one request under `/apis/metrics.k8s.io/v1beta1/`.
pub async fn handle(st: &ApiState, method: &Method, path: &str, q: &Query) -> Response {
    match serve(st, method, path, q).await {
        Ok(v) => json_response(200, &v),
        Err(e) => crate::handlers::error_response(&e),
    }
}

async fn serve(
    st: &ApiState,
    method: &Method,
    path: &str,
    q: &Query,
) -> Result<Value, StatusError> {
    let target = parse_target(path).ok_or_else(StatusError::path_not_found)?;
    if *method != Method::GET {
        return Err(StatusError::method_not_allowed());
    }
    if q.flag("watch") {
        return Err(StatusError::method_not_allowed());
    }
    match target {
        Target::Nodes(name) => nodes(st, name, q).await,
        Target::Pods(ns, name) => pods(st, ns, name, q).await,
    }
}

fn def(plural: &str) -> Result<&'static bosun_api::resources::ResourceDef, StatusError> {
    bosun_api::resources::find("", "v1", plural)
        .ok_or_else(|| StatusError::internal(format!("no {plural} resource")))
}

/// The objects of `plural` (in `namespace`) selected by the query's selectors, as JSON.
async fn select(
    st: &ApiState,
    plural: &str,
    namespace: Option<String>,
    name: Option<&str>,
    q: &Query,
) -> Result<Vec<Value>, StatusError> {
    let rp = ResourcePath {
        def: def(plural)?,
        namespace,
        name: None,
        subresource: None,
    };
    let mut filter = Filter::from_query(&rp, q)?;
    filter.name = name.map(str::to_string);
    let mut list_q = Query::default();
    if let Some(rv) = q.get("resourceVersion") {
        list_q.0.insert("resourceVersion".into(), rv.to_string());
    }
    let list = st.registry.list(&rp, &list_q, &filter).await?;
    Ok(list
        .items
        .iter()
        .filter_map(|o| serde_json::from_slice(&o.bytes).ok())
        .collect())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `{"cpu": "<n>n", "memory": "<k>Ki"}` from a summary's cpu and memory, if the CPU rate
/// is known.
fn usage(stats: &Value) -> Option<Value> {
    let cpu = stats.pointer("/cpu/usageNanoCores")?.as_u64()?;
    let mem = stats
        .pointer("/memory/workingSetBytes")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some(json!({"cpu": format!("{cpu}n"), "memory": format!("{}Ki", mem / 1024)}))
}

fn meta(obj: &Value) -> Value {
    let mut m = json!({
        "name": obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "creationTimestamp": now(),
    });
    if let Some(ns) = obj.pointer("/metadata/namespace") {
        m["namespace"] = ns.clone();
    }
    if let Some(l) = obj.pointer("/metadata/labels") {
        m["labels"] = l.clone();
    }
    m
}

fn list_of(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": API_VERSION, "metadata": {}, "items": items})
}

async fn nodes(st: &ApiState, name: Option<String>, q: &Query) -> Result<Value, StatusError> {
    let nodes = select(st, "nodes", None, name.as_deref(), q).await?;
    let names: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let summaries = scrape_all(st, &nodes).await;
    let mut items = Vec::new();
    for (node, n) in nodes.iter().zip(&names) {
        let Some(s) = summaries.get(n) else { continue };
        let Some(u) = s.get("node").and_then(usage) else {
            continue;
        };
        let ts = s
            .pointer("/node/cpu/time")
            .cloned()
            .unwrap_or_else(|| json!(now()));
        items.push(json!({
            "kind": "NodeMetrics", "apiVersion": API_VERSION,
            "metadata": meta(node), "timestamp": ts, "window": WINDOW, "usage": u,
        }));
    }
    match name {
        Some(n) => items
            .pop()
            .ok_or_else(|| StatusError::not_found(GROUP, "nodes", &n)),
        None => Ok(list_of("NodeMetricsList", items)),
    }
}

async fn pods(
    st: &ApiState,
    ns: Option<String>,
    name: Option<String>,
    q: &Query,
) -> Result<Value, StatusError> {
    let pods = select(st, "pods", ns, name.as_deref(), q).await?;
    let node_names: Vec<String> = {
        let mut v: Vec<String> = pods
            .iter()
            .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
            .filter_map(|p| p.pointer("/spec/nodeName").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let mut nodes = Vec::new();
    for n in &node_names {
        if let Ok(mut found) = select(st, "nodes", None, Some(n), &Query::default()).await {
            nodes.append(&mut found);
        }
    }
    let summaries = scrape_all(st, &nodes).await;
    // (namespace, name, uid) → the pod's stats in its node's summary.
    let mut by_pod: HashMap<(String, String, String), Value> = HashMap::new();
    for s in summaries.values() {
        for p in s["pods"].as_array().into_iter().flatten() {
            let r = &p["podRef"];
            let key = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            by_pod.insert((key("namespace"), key("name"), key("uid")), p.clone());
        }
    }
    let mut items = Vec::new();
    for pod in &pods {
        let key = |p: &str| {
            pod.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let k = (
            key("/metadata/namespace"),
            key("/metadata/name"),
            key("/metadata/uid"),
        );
        let Some(ps) = by_pod.get(&k) else { continue };
        let mut containers = Vec::new();
        let mut complete = true;
        for c in ps["containers"].as_array().into_iter().flatten() {
            match usage(c) {
                Some(u) => containers.push(json!({"name": c["name"], "usage": u})),
                None => complete = false,
            }
        }
        if !complete || containers.is_empty() {
            continue;
        }
        let ts = ps
            .pointer("/cpu/time")
            .cloned()
            .unwrap_or_else(|| json!(now()));
        items.push(json!({
            "kind": "PodMetrics", "apiVersion": API_VERSION,
            "metadata": meta(pod), "timestamp": ts, "window": WINDOW,
            "containers": containers,
        }));
    }
    match name {
        Some(n) => items
            .pop()
            .ok_or_else(|| StatusError::not_found(GROUP, "pods", &n)),
        None => Ok(list_of("PodMetricsList", items)),
    }
}

/// The summaries of `nodes` that answered, by node name (scraped in parallel, or cached).
async fn scrape_all(st: &ApiState, nodes: &[Value]) -> HashMap<String, Arc<Value>> {
    let futs = nodes.iter().filter_map(|node| {
        let name = node.pointer("/metadata/name")?.as_str()?.to_string();
        let addr = crate::kubelet_proxy::kubelet_address(node)?;
        Some(async move {
            let r = scrape(st, &name, &addr).await;
            if let Err(e) = &r {
                tracing::debug!(node = %name, error = %e, "scraping the kubelet's stats failed");
            }
            r.ok().map(|s| (name, s))
        })
    });
    futures::future::join_all(futs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn scrape(st: &ApiState, node: &str, addr: &str) -> Result<Arc<Value>, String> {
    if let Some((at, a, s)) = st.metrics_api.scrapes.lock().get(node) {
        if at.elapsed() < SCRAPE_TTL && a == addr {
            return Ok(s.clone());
        }
    }
    let body = tokio::time::timeout(SCRAPE_TIMEOUT, fetch(st, addr, "/stats/summary"))
        .await
        .map_err(|_| format!("no answer from {addr} in {SCRAPE_TIMEOUT:?}"))??;
    let v: Arc<Value> =
        Arc::new(serde_json::from_slice(&body).map_err(|e| format!("summary from {addr}: {e}"))?);
    let mut scrapes = st.metrics_api.scrapes.lock();
    scrapes.retain(|_, (at, _, _)| at.elapsed() < SCRAPE_TTL * 4);
    scrapes.insert(
        node.to_string(),
        (Instant::now(), addr.to_string(), v.clone()),
    );
    Ok(v)
}

/// `GET path` on the kubelet at `addr` (`host:port`), with the API server's client
/// certificate; the body of a 200 answer.
async fn fetch(st: &ApiState, addr: &str, path: &str) -> Result<bytes::Bytes, String> {
    let host = addr
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']))
        .unwrap_or(addr)
        .to_string();
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("dial {addr}: {e}"))?;
    let server_name = ServerName::try_from(host)
        .map_err(|e| e.to_string())?
        .to_owned();
    let tls = st.kubelet.tls().map_err(|e| e.message.clone())?;
    let tls = tokio_rustls::TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(path)
        .header("host", addr)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("{path} on {addr}: {}", resp.status()));
    }
    let body = http_body_util::Limited::new(resp.into_body(), MAX_SUMMARY)
        .collect()
        .await
        .map_err(|e| format!("reading {path} from {addr}: {e}"))?;
    Ok(body.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_target("/apis/metrics.k8s.io/v1beta1/nodes"),
            Some(Target::Nodes(None))
        );
        assert_eq!(
            parse_target("/apis/metrics.k8s.io/v1beta1/nodes/n1"),
            Some(Target::Nodes(Some("n1".into())))
        );
        assert_eq!(
            parse_target("/apis/metrics.k8s.io/v1beta1/pods"),
            Some(Target::Pods(None, None))
        );
        assert_eq!(
            parse_target("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/p"),
            Some(Target::Pods(Some("default".into()), Some("p".into())))
        );
        assert_eq!(
            parse_target("/apis/metrics.k8s.io/v1beta1/namespaces/default/services"),
            None
        );
        assert!(handles("/apis/metrics.k8s.io/v1beta1/nodes"));
        assert!(!handles("/apis/metrics.k8s.io/v1beta1"));
        assert!(!handles("/apis/metrics.k8s.io/v1beta1/"));
    }

    #[test]
    fn usage_needs_a_cpu_rate() {
        let s = json!({"cpu": {"usageCoreNanoSeconds": 5}, "memory": {"workingSetBytes": 4096}});
        assert_eq!(usage(&s), None);
        let s = json!({"cpu": {"usageNanoCores": 1500000, "usageCoreNanoSeconds": 5},
                       "memory": {"workingSetBytes": 4096}});
        assert_eq!(usage(&s), Some(json!({"cpu": "1500000n", "memory": "4Ki"})));
    }

    #[test]
    fn discovery_documents() {
        let l = resource_list();
        assert_eq!(l["groupVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(l["resources"][0]["kind"], "NodeMetrics");
        assert_eq!(l["resources"][1]["namespaced"], true);
        assert_eq!(aggregated_item()["metadata"]["name"], GROUP);
        assert_eq!(group_entry()["preferredVersion"]["version"], VERSION);
    }
}
