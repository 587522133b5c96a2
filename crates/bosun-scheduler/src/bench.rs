//! The scheduler benchmark, shaped as upstream scheduler_perf's SchedulingBasic: hollow
//! nodes (4 cpu, 32Gi, 110 pods), some pods placed first, then many pods created as fast
//! as a client can; every binding goes through the API server and its store. It reports
//! pods per second and creation→bound latency percentiles, and the process's peak RSS
//! (the server's too when it runs in the same process).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;
use serde_json::json;
use tokio::time::Instant;

use crate::{Error, Result, SchedulerOptions, StatsSnapshot};

/// The benchmark's shape.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Hollow nodes (SchedulingBasic: 5,000).
    pub nodes: usize,
    /// Pods placed before measuring (SchedulingBasic: 1,000).
    pub initial_pods: usize,
    /// Pods measured (SchedulingBasic: 10,000).
    pub pods: usize,
    /// The namespace the pods go to (created when missing).
    pub namespace: String,
    /// Pod creations in flight at once.
    pub create_concurrency: usize,
    /// Start a scheduler in this process (off when one already serves the server).
    pub start_scheduler: bool,
    pub scheduler: SchedulerOptions,
    /// Let the hollow nodes run the pods too (status writes compete with bindings);
    /// off by default, as in scheduler_perf where bound pods stay Pending.
    pub run_pods: bool,
    /// Give up waiting for bindings after this long.
    pub timeout: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            nodes: 5000,
            initial_pods: 1000,
            pods: 10000,
            namespace: "sched-bench".into(),
            create_concurrency: 32,
            start_scheduler: true,
            scheduler: SchedulerOptions {
                // scheduler_perf runs without events' cost being measured separately;
                // keep them on: they are part of a real scheduler's work.
                ..Default::default()
            },
            run_pods: false,
            timeout: Duration::from_secs(600),
        }
    }
}

/// The figures.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    pub nodes: usize,
    pub initial_pods: usize,
    pub pods: usize,
    pub bound: usize,
    /// Seconds from the first measured creation to the last binding seen.
    pub seconds: f64,
    pub pods_per_second: f64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// Seconds until the last measured creation returned: when close to `seconds`,
    /// creating the pods, not scheduling them, set the pace.
    pub create_seconds: f64,
    /// Seconds to register the hollow nodes.
    pub setup_seconds: f64,
    pub peak_rss_mib: f64,
    pub scheduler: Option<StatsSnapshot>,
}

impl BenchReport {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "nodes": self.nodes,
            "initialPods": self.initial_pods,
            "pods": self.pods,
            "bound": self.bound,
            "seconds": self.seconds,
            "podsPerSecond": self.pods_per_second,
            "latencyMs": {"p50": self.latency_p50_ms, "p90": self.latency_p90_ms,
                          "p99": self.latency_p99_ms, "max": self.latency_max_ms},
            "createSeconds": self.create_seconds,
            "setupSeconds": self.setup_seconds,
            "schedulingCycleMicrosPerPod": self.scheduler.map(|s| s.cycle_nanos as f64 / 1000.0 / s.attempts.max(1) as f64),
            "peakRssMiB": self.peak_rss_mib,
        })
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "scheduler benchmark (SchedulingBasic shape)")?;
        writeln!(f, "  nodes            {:>10}", self.nodes)?;
        writeln!(f, "  initial pods     {:>10}", self.initial_pods)?;
        writeln!(
            f,
            "  measured pods    {:>10}   bound {}",
            self.pods, self.bound
        )?;
        writeln!(f, "  node setup       {:>10.1} s", self.setup_seconds)?;
        writeln!(f, "  duration         {:>10.2} s", self.seconds)?;
        writeln!(f, "  creating took    {:>10.2} s", self.create_seconds)?;
        writeln!(
            f,
            "  throughput       {:>10.0} pods/s",
            self.pods_per_second
        )?;
        writeln!(
            f,
            "  create→bound     p50 {:.0} ms   p90 {:.0} ms   p99 {:.0} ms   max {:.0} ms",
            self.latency_p50_ms, self.latency_p90_ms, self.latency_p99_ms, self.latency_max_ms
        )?;
        writeln!(
            f,
            "  peak RSS         {:>10.0} MiB (this process)",
            self.peak_rss_mib
        )
    }
}

fn bench_err(step: &'static str) -> impl Fn(kube::Error) -> Error {
    move |e| Error::Bench {
        step,
        source: Box::new(e),
    }
}

/// This process's resident set size in MiB.
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn pod(name: &str, ns: &str) -> Result<Pod> {
    // scheduler_perf's pod-default.yaml.
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "sched-bench"}},
        "spec": {"containers": [{
            "name": "pause", "image": "registry.k8s.io/pause:3.10",
            "ports": [{"containerPort": 80}],
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"},
                          "limits": {"cpu": "100m", "memory": "500Mi"}},
        }]},
    }))
    .map_err(|e| Error::Bench {
        step: "building a pod",
        source: Box::new(e),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Creates `names` with `concurrency` in flight, noting when each request was sent.
async fn create_all(
    api: &Api<Pod>,
    ns: &str,
    names: Vec<String>,
    concurrency: usize,
    sent: &Mutex<HashMap<String, Instant>>,
) -> Result<()> {
    let mut results = futures::stream::iter(names)
        .map(|name| async move {
            let p = pod(&name, ns)?;
            sent.lock().insert(name, Instant::now());
            api.create(&PostParams::default(), &p)
                .await
                .map(|_| ())
                .map_err(bench_err("creating pods"))
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(())
}

/// Runs the benchmark against the server `client` talks to.
pub async fn run(client: kube::Client, opts: BenchOptions) -> Result<BenchReport> {
    let ns = opts.namespace.clone();
    let nsapi: Api<Namespace> = Api::all(client.clone());
    let nsobj: Namespace =
        serde_json::from_value(json!({"metadata": {"name": ns}})).map_err(|e| Error::Bench {
            step: "building the namespace",
            source: Box::new(e),
        })?;
    match nsapi.create(&PostParams::default(), &nsobj).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(bench_err("creating the namespace")(e)),
    }

    let peak = Arc::new(Mutex::new(rss_mib()));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let r = rss_mib();
                {
                    let mut p = peak.lock();
                    if r > *p {
                        *p = r;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let setup = Instant::now();
    let hollow = bosun_hollow::run(
        client.clone(),
        bosun_hollow::HollowOptions {
            nodes: opts.nodes,
            name_prefix: "bench-node-".into(),
            cpu: "4".into(),
            memory: "32Gi".into(),
            pods: 110,
            manage_pods: opts.run_pods,
            register_inflight: 32,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| Error::Bench {
        step: "starting hollow nodes",
        source: Box::new(e),
    })?;
    let setup_seconds = setup.elapsed().as_secs_f64();

    let sched = if opts.start_scheduler {
        Some(crate::start(client.clone(), opts.scheduler.clone())?)
    } else {
        None
    };

    // One watch sees every binding in the namespace: the first event with a nodeName.
    let bound_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let notify = Arc::new(tokio::sync::Notify::new());
    let watch_task = {
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let bound_at = bound_at.clone();
        let notify = notify.clone();
        tokio::spawn(async move {
            let cfg = watcher::Config::default().fields("spec.nodeName!=");
            let mut s = watcher::watcher(api, cfg).boxed();
            while let Some(ev) = s.next().await {
                if let Ok(Event::Apply(p)) | Ok(Event::InitApply(p)) = ev {
                    if let Some(name) = p.metadata.name {
                        bound_at.lock().entry(name).or_insert_with(Instant::now);
                        notify.notify_waiters();
                    }
                }
            }
        })
    };

    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let sent = Mutex::new(HashMap::new());
    let initial: Vec<String> = (0..opts.initial_pods)
        .map(|i| format!("init-{i}"))
        .collect();
    create_all(&api, &ns, initial, opts.create_concurrency, &sent).await?;
    let deadline = Instant::now() + opts.timeout;
    while bound_at.lock().len() < opts.initial_pods && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(200), notify.notified()).await;
    }

    let measured: Vec<String> = (0..opts.pods).map(|i| format!("pod-{i}")).collect();
    let sent = Mutex::new(HashMap::new());
    let start = Instant::now();
    create_all(&api, &ns, measured.clone(), opts.create_concurrency, &sent).await?;
    let create_seconds = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + opts.timeout;
    let want = opts.initial_pods + opts.pods;
    while bound_at.lock().len() < want && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(200), notify.notified()).await;
    }
    watch_task.abort();
    sampler.abort();

    let bound = bound_at.lock();
    let sent = sent.lock();
    let mut lat: Vec<f64> = Vec::with_capacity(opts.pods);
    let mut last = start;
    for name in &measured {
        if let (Some(s), Some(b)) = (sent.get(name), bound.get(name)) {
            lat.push(b.saturating_duration_since(*s).as_secs_f64() * 1000.0);
            if *b > last {
                last = *b;
            }
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let seconds = last.duration_since(start).as_secs_f64();
    let report = BenchReport {
        nodes: opts.nodes,
        initial_pods: opts.initial_pods,
        pods: opts.pods,
        bound: lat.len(),
        seconds,
        pods_per_second: if seconds > 0.0 {
            lat.len() as f64 / seconds
        } else {
            0.0
        },
        latency_p50_ms: percentile(&lat, 0.50),
        latency_p90_ms: percentile(&lat, 0.90),
        latency_p99_ms: percentile(&lat, 0.99),
        latency_max_ms: lat.last().copied().unwrap_or(0.0),
        create_seconds,
        setup_seconds,
        peak_rss_mib: *peak.lock(),
        scheduler: sched.as_ref().map(|s| s.stats()),
    };
    drop(hollow);
    drop(sched);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
