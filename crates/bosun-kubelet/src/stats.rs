//! Resource stats, as the kubelet's summary API (`/stats/summary`, upstream
//! `pkg/kubelet/apis/stats/v1alpha1`) reports them: CPU (cumulative core-nanoseconds and a
//! rate in nano-cores) and memory (usage, working set = usage − inactive file pages) per
//! container, per pod (its cgroup) and for the node (the root cgroup), plus the node's
//! filesystem.
//!
//! A rate needs two samples, so a [`Sampler`] task reads everything every
//! `stats_interval` (10 s, the kubelet's cadvisor housekeeping period) and keeps the latest
//! [`Summary`]; the HTTP route serves that one, the eviction manager decides on it, and the
//! API server's `metrics.k8s.io` is built from it. Tests can adjust each summary before it
//! is published ([`StatsOverride`]), to simulate pressure without filling the machine.
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bosun_runtime::Status;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::Ctx;

/// `CPUStats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    pub time: String,
    /// Average usage over the last sampling window; absent until two samples exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_nano_cores: Option<u64>,
    pub usage_core_nano_seconds: u64,
}

/// `MemoryStats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub time: String,
    /// Capacity − working set (node) or limit − working set (when limited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    pub usage_bytes: u64,
    pub working_set_bytes: u64,
}

/// `FsStats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsStats {
    pub time: String,
    pub available_bytes: u64,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStats {
    pub image_fs: FsStats,
}

/// `NodeStats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    pub node_name: String,
    pub start_time: String,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub fs: FsStats,
    pub runtime: RuntimeStats,
}

/// `PodReference`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRef {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

/// `ContainerStats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    pub name: String,
    pub start_time: String,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
}

/// `PodStats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    pub pod_ref: PodRef,
    pub start_time: String,
    pub containers: Vec<ContainerStats>,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
}

/// The summary API's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub node: NodeStats,
    pub pods: Vec<PodStats>,
}

/// Adjusts every summary before it is published (tests: simulated pressure).
#[derive(Clone)]
pub struct StatsOverride(pub Arc<dyn Fn(&mut Summary) + Send + Sync>);

impl fmt::Debug for StatsOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatsOverride(..)")
    }
}

/// The latest summary and the cumulative CPU samples the next rate is computed from.
#[derive(Default)]
pub(crate) struct Sampler {
    latest: Mutex<Option<Arc<Summary>>>,
    /// cgroup path ("" for the node) → (when, cumulative CPU ns).
    previous: Mutex<HashMap<String, (Instant, u64)>>,
    /// Wakes tasks waiting for a new summary (the eviction manager).
    pub(crate) updated: tokio::sync::Notify,
}

impl Sampler {
    /// The summary of the last sample, if one was taken.
    pub(crate) fn latest(&self) -> Option<Arc<Summary>> {
        self.latest.lock().ok().and_then(|l| l.clone())
    }

    /// The rate since the previous sample of `key`, and records this one.
    fn rate(&self, key: &str, now: Instant, cpu_ns: u64) -> Option<u64> {
        let mut prev = self.previous.lock().ok()?;
        let last = prev.insert(key.to_string(), (now, cpu_ns));
        let (then, ns) = last?;
        nano_cores(then, ns, now, cpu_ns)
    }
}

/// Nano-cores used between two cumulative samples (none if time did not move or the
/// counter went back, as after a container restart).
pub(crate) fn nano_cores(then: Instant, ns_then: u64, now: Instant, ns_now: u64) -> Option<u64> {
    let dt = now.checked_duration_since(then)?.as_nanos();
    if dt == 0 || ns_now < ns_then {
        return None;
    }
    Some(((ns_now - ns_then) as u128 * 1_000_000_000 / dt) as u64)
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What one container contributes: its name, start time and cgroup figures.
struct ContainerSample {
    name: String,
    started_at: String,
    cgroup: String,
    stats: bosun_runtime::cgroup::CgroupStats,
}

/// Reads every figure once (blocking: cgroup files, statvfs) and builds a summary.
pub(crate) fn collect(ctx: &Ctx) -> Summary {
    let now = Instant::now();
    let time = rfc3339(Utc::now());
    let rt = &ctx.runtime;
    let machine = crate::node::Machine::read(&ctx.cfg.data_dir, ctx.cfg.eviction);
    let node_cg = rt.cgroups().node_stats().unwrap_or_default();
    let cpu = |key: &str, ns: u64| CpuStats {
        time: time.clone(),
        usage_nano_cores: ctx.stats.rate(key, now, ns),
        usage_core_nano_seconds: ns,
    };
    let fs = FsStats {
        time: time.clone(),
        available_bytes: machine.disk_available_bytes,
        capacity_bytes: machine.disk_bytes,
        used_bytes: machine
            .disk_bytes
            .saturating_sub(machine.disk_available_bytes),
    };
    let node = NodeStats {
        node_name: ctx.cfg.node_name.clone(),
        start_time: boot_time().map(rfc3339).unwrap_or_else(|| time.clone()),
        cpu: cpu("", node_cg.cpu_usage_ns),
        memory: MemoryStats {
            time: time.clone(),
            available_bytes: Some(
                machine
                    .memory_bytes
                    .saturating_sub(node_cg.memory_working_set_bytes),
            ),
            usage_bytes: node_cg.memory_usage_bytes,
            working_set_bytes: node_cg.memory_working_set_bytes,
        },
        fs: fs.clone(),
        runtime: RuntimeStats { image_fs: fs },
    };
    let pods: Vec<((String, String), crate::PodEntry)> = ctx
        .pods
        .lock()
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for ((namespace, name), entry) in pods {
        let mut containers = Vec::new();
        let mut pod_cgroup = None;
        let mut ids: Vec<(&String, &(String, u32))> = entry.containers.iter().collect();
        ids.sort();
        for (cname, (id, _)) in ids {
            let Ok(st) = rt.state(id) else { continue };
            if st.status != Status::Running {
                continue;
            }
            let Ok(cfg) = rt.config(id) else { continue };
            let Some(cg) = cfg.cgroup_path.clone() else {
                continue;
            };
            if pod_cgroup.is_none() {
                pod_cgroup = cg.rsplit_once('/').map(|(p, _)| p.to_string());
            }
            let Ok(stats) = rt.cgroups().stats(&cg) else {
                continue;
            };
            containers.push(ContainerSample {
                name: cname.clone(),
                started_at: st
                    .started_at
                    .clone()
                    .unwrap_or_else(|| st.created_at.clone()),
                cgroup: cg,
                stats,
            });
        }
        let Some(pod_cg) = pod_cgroup else { continue };
        let Ok(ps) = rt.cgroups().stats(&pod_cg) else {
            continue;
        };
        seen.push(pod_cg.clone());
        let start = containers
            .iter()
            .map(|c| c.started_at.clone())
            .min()
            .map(|t| trim_ts(&t))
            .unwrap_or_else(|| time.clone());
        let containers = containers
            .into_iter()
            .map(|c| {
                seen.push(c.cgroup.clone());
                ContainerStats {
                    name: c.name,
                    start_time: trim_ts(&c.started_at),
                    cpu: cpu(&c.cgroup, c.stats.cpu_usage_ns),
                    memory: memory(&time, &c.stats),
                }
            })
            .collect();
        out.push(PodStats {
            pod_ref: PodRef {
                name,
                namespace,
                uid: entry.uid.clone(),
            },
            start_time: start,
            containers,
            cpu: cpu(&pod_cg, ps.cpu_usage_ns),
            memory: memory(&time, &ps),
        });
    }
    // Forget samples of cgroups that are gone, so the map does not grow with churn.
    if let Ok(mut prev) = ctx.stats.previous.lock() {
        prev.retain(|k, _| k.is_empty() || seen.contains(k));
    }
    out.sort_by(|a, b| {
        (&a.pod_ref.namespace, &a.pod_ref.name).cmp(&(&b.pod_ref.namespace, &b.pod_ref.name))
    });
    Summary { node, pods: out }
}

fn memory(time: &str, s: &bosun_runtime::cgroup::CgroupStats) -> MemoryStats {
    MemoryStats {
        time: time.to_string(),
        available_bytes: None,
        usage_bytes: s.memory_usage_bytes,
        working_set_bytes: s.memory_working_set_bytes,
    }
}

/// RFC 3339 with whole seconds (the runtime records nanoseconds).
fn trim_ts(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| rfc3339(d.with_timezone(&Utc)))
        .unwrap_or_else(|_| t.to_string())
}

/// When the machine booted (`btime` in /proc/stat): the node's startTime.
fn boot_time() -> Option<chrono::DateTime<Utc>> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    chrono::DateTime::from_timestamp(secs, 0)
}

/// Takes one sample now and publishes it.
pub(crate) async fn sample(ctx: &Arc<Ctx>) -> Option<Arc<Summary>> {
    let c = ctx.clone();
    let mut s = tokio::task::spawn_blocking(move || collect(&c))
        .await
        .ok()?;
    if let Some(o) = &ctx.cfg.stats_override {
        (o.0)(&mut s);
    }
    let s = Arc::new(s);
    if let Ok(mut l) = ctx.stats.latest.lock() {
        *l = Some(s.clone());
    }
    ctx.stats.updated.notify_waiters();
    Some(s)
}

/// `GET /stats/summary`: the latest sample (one is taken now if none exists yet).
pub(crate) async fn summary_handler(
    axum::extract::State(ctx): axum::extract::State<Arc<Ctx>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let s = match ctx.stats.latest() {
        Some(s) => Some(s),
        None => sample(&ctx).await,
    };
    match s {
        Some(s) => axum::Json(s.as_ref().clone()).into_response(),
        None => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "collecting stats failed",
        )
            .into_response(),
    }
}

/// Samples every `stats_interval` until the agent stops.
pub(crate) async fn run(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(ctx.cfg.stats_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sample(&ctx).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nano_cores_from_two_samples() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(2);
        // One full core for two seconds.
        assert_eq!(nano_cores(t0, 0, t1, 2_000_000_000), Some(1_000_000_000));
        assert_eq!(
            nano_cores(t0, 500, t1, 500 + 500_000_000),
            Some(250_000_000)
        );
        assert_eq!(nano_cores(t0, 10, t0, 20), None, "no time passed");
        assert_eq!(nano_cores(t0, 20, t1, 10), None, "counter went back");
        assert_eq!(nano_cores(t1, 0, t0, 10), None);
    }

    #[test]
    fn summary_has_upstream_field_names() {
        let s = Summary {
            node: NodeStats {
                node_name: "n1".into(),
                cpu: CpuStats {
                    usage_nano_cores: Some(5),
                    usage_core_nano_seconds: 9,
                    ..Default::default()
                },
                memory: MemoryStats {
                    available_bytes: Some(1),
                    working_set_bytes: 2,
                    ..Default::default()
                },
                ..Default::default()
            },
            pods: vec![PodStats {
                pod_ref: PodRef {
                    name: "p".into(),
                    namespace: "default".into(),
                    uid: "u".into(),
                },
                containers: vec![ContainerStats {
                    name: "c".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["node"]["nodeName"], "n1");
        assert_eq!(v["node"]["cpu"]["usageNanoCores"], 5);
        assert_eq!(v["node"]["cpu"]["usageCoreNanoSeconds"], 9);
        assert_eq!(v["node"]["memory"]["workingSetBytes"], 2);
        assert_eq!(v["node"]["memory"]["availableBytes"], 1);
        assert!(v["node"]["runtime"]["imageFs"]["capacityBytes"].is_u64());
        assert_eq!(v["pods"][0]["podRef"]["namespace"], "default");
        assert_eq!(v["pods"][0]["containers"][0]["name"], "c");
        assert!(v["pods"][0]["cpu"].get("usageNanoCores").is_none());
        let back: Summary = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
