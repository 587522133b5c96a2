//! The measured workloads: concurrent creates, cached GETs, LISTs (whole and paged as
//! kubectl pages), and watch fan-out. Each returns its figures; a failed request is counted
//! and its first error kept, never retried, so a figure is never flattered by retries.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::future::try_join_all;
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::client::{Conn, Endpoint};
use super::pods;
use super::server::{Memory, ServerError};
use super::stats::Latency;

const JSON: &str = "application/json";
/// What `kubectl get` asks for: a server-side Table, falling back to JSON.
const KUBECTL_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
/// kubectl's default `--chunk-size`.
const KUBECTL_CHUNK: usize = 500;
/// How long one write may take to reach every watcher before it counts as missed.
const FANOUT_DEADLINE: Duration = Duration::from_secs(10);
/// How long the watchers may take to open.
const WATCH_OPEN_DEADLINE: Duration = Duration::from_secs(60);

/// Requests that failed, and the first failure.
#[derive(Debug, Default, Serialize)]
pub struct Failures {
    pub count: usize,
    pub first: Option<String>,
}

impl Failures {
    fn add(&mut self, what: String) {
        self.count += 1;
        self.first.get_or_insert(what);
    }

    fn merge(&mut self, other: Failures) {
        self.count += other.count;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

fn unexpected(method: &str, path: &str, status: StatusCode, body: &[u8]) -> String {
    let body = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    format!("{method} {path}: {status}: {body}")
}

/// Creates the namespace the benchmark works in (an existing one is fine).
pub async fn create_namespace(ep: &Endpoint, ns: &str) -> anyhow::Result<()> {
    let conn = ep.connect().await?;
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
    });
    let body = Bytes::from(serde_json::to_vec(&body).context("encoding the namespace")?);
    let path = "/api/v1/namespaces";
    let (status, resp) = conn.call(Method::POST, path, JSON, Some(body)).await?;
    if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
        anyhow::bail!("{}", unexpected("POST", path, status, &resp));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct Creates {
    pub clients: usize,
    pub pods: usize,
    pub seconds: f64,
    pub per_sec: f64,
    pub latency: Latency,
    pub failures: Failures,
    #[serde(skip)]
    pub names: Vec<String>,
}

/// `n` pod creates by `clients` concurrent callers, each on its own HTTP/2 connection (as
/// that many separate kubectl processes or controllers would be). Connections are opened
/// before the clock starts.
pub async fn creates(
    ep: &Endpoint,
    ns: &str,
    clients: usize,
    n: usize,
    tag: &str,
) -> anyhow::Result<Creates> {
    let conns = try_join_all((0..clients).map(|_| ep.connect())).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let path: Arc<str> = format!("/api/v1/namespaces/{ns}/pods").into();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for conn in conns {
        let (next, path, ns, tag) = (next.clone(), path.clone(), ns.to_string(), tag.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut names = Vec::new();
            let mut failures = Failures::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let name = format!("bench-{tag}-{i:06}");
                let body = pods::pod(&ns, &name);
                let t = Instant::now();
                match conn.call(Method::POST, &path, JSON, Some(body)).await {
                    Ok((StatusCode::CREATED, _)) => {
                        lat.push(t.elapsed());
                        names.push(name);
                    }
                    Ok((status, body)) => failures.add(unexpected("POST", &path, status, &body)),
                    Err(e) => failures.add(e.to_string()),
                }
            }
            (lat, names, failures)
        }));
    }
    let mut lat = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut failures = Failures::default();
    for t in tasks {
        let (l, nm, f) = t.await.context("a create task failed")?;
        lat.extend(l);
        names.extend(nm);
        failures.merge(f);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Creates {
        clients,
        pods: names.len(),
        seconds,
        per_sec: names.len() as f64 / seconds.max(f64::MIN_POSITIVE),
        latency: Latency::of(&mut lat),
        failures,
        names,
    })
}

#[derive(Debug, Serialize)]
pub struct Gets {
    pub callers: usize,
    pub connections: usize,
    pub requests: usize,
    pub seconds: f64,
    pub per_sec: f64,
    pub latency: Latency,
    pub failures: Failures,
}

/// `count` GETs of existing pods by `callers` concurrent callers multiplexed over
/// `connections` HTTP/2 connections (as controllers share one client-go connection).
pub async fn gets(
    ep: &Endpoint,
    ns: &str,
    names: Arc<Vec<String>>,
    callers: usize,
    connections: usize,
    count: usize,
) -> anyhow::Result<Gets> {
    anyhow::ensure!(!names.is_empty(), "no pods to GET");
    let conns = try_join_all((0..connections).map(|_| ep.connect())).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(callers);
    for c in 0..callers {
        let conn = conns[c % conns.len()].clone();
        let (next, names, ns) = (next.clone(), names.clone(), ns.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failures = Failures::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                // Spread over all pods rather than walking them in creation order.
                let name = &names[scatter(i) % names.len()];
                let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
                let t = Instant::now();
                match conn.call(Method::GET, &path, JSON, None).await {
                    Ok((StatusCode::OK, _)) => lat.push(t.elapsed()),
                    Ok((status, body)) => failures.add(unexpected("GET", &path, status, &body)),
                    Err(e) => failures.add(e.to_string()),
                }
            }
            (lat, failures)
        }));
    }
    let mut lat = Vec::with_capacity(count);
    let mut failures = Failures::default();
    for t in tasks {
        let (l, f) = t.await.context("a GET task failed")?;
        lat.extend(l);
        failures.merge(f);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Gets {
        callers,
        connections,
        requests: lat.len(),
        seconds,
        per_sec: lat.len() as f64 / seconds.max(f64::MIN_POSITIVE),
        latency: Latency::of(&mut lat),
        failures,
    })
}

/// A fixed permutation-like spread of request numbers over indexes.
fn scatter(i: usize) -> usize {
    (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29) as usize
}

#[derive(Debug, Serialize)]
pub struct List {
    /// `full`, `paged-500` or `table-paged-500`.
    pub variant: &'static str,
    pub runs: usize,
    /// Objects (or table rows) one run returned.
    pub items: usize,
    /// Requests one run took.
    pub pages: usize,
    /// Response bytes one run read.
    pub bytes: usize,
    pub latency: Latency,
}

/// The page of a LIST that the client needs: how many items, and where to go on.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    items: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    rows: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    metadata: PageMeta,
}

#[derive(Deserialize, Default)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    next: Option<String>,
}

/// Times `runs` LISTs of the namespace's pods three ways: one request without a limit, pages
/// of 500 as JSON, and pages of 500 as the Table `kubectl get pods` asks for. Each run ends
/// when the last page is read and parsed far enough to find the continue token.
pub async fn lists(
    ep: &Endpoint,
    ns: &str,
    runs: usize,
    expected: usize,
) -> anyhow::Result<Vec<List>> {
    let conn = ep.connect().await?;
    let base = format!("/api/v1/namespaces/{ns}/pods");
    let mut out = Vec::new();
    for (variant, limit, accept) in [
        ("full", None, JSON),
        ("paged-500", Some(KUBECTL_CHUNK), JSON),
        ("table-paged-500", Some(KUBECTL_CHUNK), KUBECTL_TABLE),
    ] {
        let mut lat = Vec::with_capacity(runs);
        let mut shape = (0, 0, 0);
        for _ in 0..runs {
            let t = Instant::now();
            shape = list_once(&conn, &base, limit, accept).await?;
            lat.push(t.elapsed());
        }
        let (items, pages, bytes) = shape;
        anyhow::ensure!(
            items >= expected,
            "LIST {base} ({variant}) returned {items} items, expected at least {expected}"
        );
        out.push(List {
            variant,
            runs,
            items,
            pages,
            bytes,
            latency: Latency::of(&mut lat),
        });
    }
    Ok(out)
}

/// One LIST to the end: (items, pages, bytes).
async fn list_once(
    conn: &Conn,
    base: &str,
    limit: Option<usize>,
    accept: &str,
) -> anyhow::Result<(usize, usize, usize)> {
    let (mut items, mut pages, mut bytes) = (0, 0, 0);
    let mut cont: Option<String> = None;
    loop {
        let mut path = base.to_string();
        if let Some(l) = limit {
            path.push_str(&format!("?limit={l}"));
            if let Some(c) = &cont {
                path.push_str("&continue=");
                path.push_str(&query_escape(c));
            }
        }
        let (status, body) = conn.call(Method::GET, &path, accept, None).await?;
        if status != StatusCode::OK {
            anyhow::bail!("{}", unexpected("GET", &path, status, &body));
        }
        let page: Page = serde_json::from_slice(&body)
            .with_context(|| format!("GET {path}: the response is not a list"))?;
        items += page.items.len() + page.rows.len();
        pages += 1;
        bytes += body.len();
        match page.metadata.next.filter(|c| !c.is_empty()) {
            Some(c) if limit.is_some() => cont = Some(c),
            _ => return Ok((items, pages, bytes)),
        }
    }
}

/// Percent-encodes a query parameter value (continue tokens are base64, with `=`, `+`, `/`).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Fanout {
    pub watchers: usize,
    pub connections: usize,
    pub writes: usize,
    /// From the write's response to the moment the last watcher had the event.
    pub after_response: Latency,
    /// From sending the write to the moment the last watcher had the event.
    pub after_request: Latency,
    /// From sending the write to the moment the first watcher had the event.
    pub first_watcher: Latency,
    /// The writes themselves (pod creates).
    pub write_latency: Latency,
    /// Writes some watcher had not seen within the deadline (left out of the latencies).
    pub incomplete_writes: usize,
    /// Watch events that never arrived, summed over those writes.
    pub missed_events: usize,
    /// The server while every watcher is open.
    pub memory_with_watchers: Option<Memory>,
    pub failures: Failures,
}

/// The part of a watch event line the watcher looks at.
#[derive(Deserialize)]
struct WatchLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    object: WatchObject<'a>,
}

#[derive(Deserialize)]
struct WatchObject<'a> {
    #[serde(borrow)]
    metadata: WatchMeta<'a>,
}

#[derive(Deserialize)]
struct WatchMeta<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

const FANOUT_PREFIX: &str = "fanout-";

/// The write number an ADDED event of a fan-out pod carries.
fn fanout_write(line: &[u8]) -> Option<usize> {
    let ev: WatchLine = serde_json::from_slice(line).ok()?;
    if ev.kind != "ADDED" {
        return None;
    }
    ev.object
        .metadata
        .name?
        .strip_prefix(FANOUT_PREFIX)?
        .parse()
        .ok()
}

/// `watchers` watches of the namespace's pods spread over `connections` HTTP/2 connections,
/// then `writes` pod creates one after another; each write waits until every watcher has its
/// event (or [`FANOUT_DEADLINE`] passes) before the next one. `memory` samples the server
/// while every watcher is open.
pub async fn fanout(
    ep: &Endpoint,
    ns: &str,
    watchers: usize,
    connections: usize,
    writes: usize,
    memory: impl Fn() -> Result<Memory, ServerError>,
) -> anyhow::Result<Fanout> {
    let conns = try_join_all((0..connections).map(|_| ep.connect())).await?;
    let pods_path = format!("/api/v1/namespaces/{ns}/pods");
    // Watch from the current revision so no watcher replays the existing pods.
    let (status, body) = conns[0]
        .call(Method::GET, &format!("{pods_path}?limit=1"), JSON, None)
        .await?;
    if status != StatusCode::OK {
        anyhow::bail!("{}", unexpected("GET", &pods_path, status, &body));
    }
    let list: serde_json::Value =
        serde_json::from_slice(&body).context("the pod list is not JSON")?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("the pod list has no metadata.resourceVersion")?
        .to_string();
    let watch_path = format!(
        "{pods_path}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=1800"
    );

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let (open_tx, mut open_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let mut tasks = Vec::with_capacity(watchers);
    for w in 0..watchers {
        let conn = conns[w % conns.len()].clone();
        let (seen_tx, open_tx, path) = (seen_tx.clone(), open_tx.clone(), watch_path.clone());
        tasks.push(tokio::spawn(async move {
            let resp = match conn.open(Method::GET, &path, JSON, None).await {
                Ok(r) if r.status() == StatusCode::OK => r,
                Ok(r) => {
                    let _ = open_tx.send(Err(format!("GET {path}: {}", r.status())));
                    return;
                }
                Err(e) => {
                    let _ = open_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = open_tx.send(Ok(()));
            drop(open_tx);
            let mut body = resp.into_body();
            let mut buf: Vec<u8> = Vec::new();
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { return };
                let at = Instant::now();
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                let mut start = 0;
                while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
                    if let Some(k) = fanout_write(&buf[start..start + nl]) {
                        if seen_tx.send((k, at)).is_err() {
                            return;
                        }
                    }
                    start += nl + 1;
                }
                buf.drain(..start);
            }
        }));
    }
    drop((seen_tx, open_tx));
    let mut failures = Failures::default();
    let deadline = tokio::time::Instant::now() + WATCH_OPEN_DEADLINE;
    let mut opened = 0;
    for _ in 0..watchers {
        match tokio::time::timeout_at(deadline, open_rx.recv()).await {
            Ok(Some(Ok(()))) => opened += 1,
            Ok(Some(Err(e))) => failures.add(e),
            Ok(None) | Err(_) => break,
        }
    }
    if opened < watchers {
        for t in &tasks {
            t.abort();
        }
        anyhow::bail!(
            "only {opened} of {watchers} watches opened: {}",
            failures.first.unwrap_or_else(|| "timed out".into())
        );
    }
    let memory_with_watchers = memory().ok();

    let writer = &conns[0];
    let (mut after_resp, mut after_req, mut first, mut write_lat) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut incomplete, mut missed) = (0, 0);
    // Per write: how many watchers had it, the first and the last arrival.
    let mut seen: HashMap<usize, (usize, Instant, Instant)> = HashMap::new();
    for k in 0..writes {
        let name = format!("{FANOUT_PREFIX}{k:05}");
        let body = pods::pod(ns, &name);
        let sent = Instant::now();
        let (status, resp) = writer
            .call(Method::POST, &pods_path, JSON, Some(body))
            .await?;
        let answered = Instant::now();
        if status != StatusCode::CREATED {
            failures.add(unexpected("POST", &pods_path, status, &resp));
            continue;
        }
        write_lat.push(answered - sent);
        let until = tokio::time::Instant::now() + FANOUT_DEADLINE;
        loop {
            if seen.get(&k).is_some_and(|s| s.0 >= watchers) {
                break;
            }
            match tokio::time::timeout_at(until, seen_rx.recv()).await {
                Ok(Some((j, at))) => {
                    let e = seen.entry(j).or_insert((0, at, at));
                    e.0 += 1;
                    e.1 = e.1.min(at);
                    e.2 = e.2.max(at);
                }
                Ok(None) | Err(_) => break,
            }
        }
        match seen.get(&k) {
            Some(&(n, lo, hi)) if n >= watchers => {
                after_resp.push(hi.saturating_duration_since(answered));
                after_req.push(hi.saturating_duration_since(sent));
                first.push(lo.saturating_duration_since(sent));
            }
            other => {
                incomplete += 1;
                missed += watchers - other.map_or(0, |s| s.0);
            }
        }
    }
    for t in &tasks {
        t.abort();
    }
    Ok(Fanout {
        watchers,
        connections,
        writes,
        after_response: Latency::of(&mut after_resp),
        after_request: Latency::of(&mut after_req),
        first_watcher: Latency::of(&mut first),
        write_latency: Latency::of(&mut write_lat),
        incomplete_writes: incomplete,
        missed_events: missed,
        memory_with_watchers,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_lines_name_their_write() {
        let line = br#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"fanout-00042","labels":{"a":"b"}},"spec":{}}}"#;
        assert_eq!(fanout_write(line), Some(42));
        let modified = br#"{"type":"MODIFIED","object":{"metadata":{"name":"fanout-00042"}}}"#;
        assert_eq!(fanout_write(modified), None);
        let bookmark =
            br#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12"}}}"#;
        assert_eq!(fanout_write(bookmark), None);
        let other = br#"{"type":"ADDED","object":{"metadata":{"name":"bench-c8-000001"}}}"#;
        assert_eq!(fanout_write(other), None);
        assert_eq!(fanout_write(b"not json"), None);
    }

    #[test]
    fn continue_tokens_are_escaped() {
        assert_eq!(query_escape("eyJ2Ijo=+/"), "eyJ2Ijo%3D%2B%2F");
        assert_eq!(query_escape("a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn scatter_reaches_every_index() {
        let n = 97;
        let mut hit = vec![false; n];
        for i in 0..10 * n {
            hit[scatter(i) % n] = true;
        }
        assert!(hit.iter().all(|&h| h));
    }

    #[test]
    fn pages_find_items_rows_and_continue() {
        let p: Page =
            serde_json::from_slice(br#"{"items":[{},{}],"metadata":{"continue":"x"}}"#).unwrap();
        assert_eq!((p.items.len(), p.metadata.next.as_deref()), (2, Some("x")));
        let t: Page =
            serde_json::from_slice(br#"{"kind":"Table","rows":[{}],"metadata":{}}"#).unwrap();
        assert_eq!((t.rows.len(), t.metadata.next), (1, None));
    }
}
