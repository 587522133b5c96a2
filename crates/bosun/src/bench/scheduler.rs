//! `bosun bench scheduler`: upstream scheduler_perf's SchedulingBasic shape against a
//! `bosun server` child process (hollow nodes, then pods already placed, then measured pods;
//! every binding goes through the API server and its store), and a large Deployment rolled
//! out from zero on hollow nodes by the server's own controllers and scheduler.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use serde::Serialize;
use serde_json::json;

use super::machine::{self, Machine};
use super::progress;
use super::server::ServerChild;

#[derive(Args, Clone, Debug)]
pub struct SchedulerArgs {
    /// Hollow nodes for SchedulingBasic (upstream: 5,000).
    #[arg(long, default_value_t = 5_000)]
    pub nodes: usize,
    /// Pods placed before measuring (upstream: 1,000).
    #[arg(long, default_value_t = 1_000)]
    pub initial_pods: usize,
    /// Pods measured (upstream: 10,000).
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Pod creations in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Replicas of the Deployment scenario (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    pub deployment_replicas: usize,
    /// Hollow nodes of the Deployment scenario.
    #[arg(long, default_value_t = 1_000)]
    pub deployment_nodes: usize,
    /// Small sizes for a quick check (500 nodes, 100 + 1,000 pods, 1,000 replicas on 100 nodes).
    #[arg(long)]
    pub quick: bool,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Where the servers' data directories go (default: the system temp directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The binary run as `SERVER_BIN server ...` (default: this executable).
    #[arg(long, hide = true)]
    pub server_bin: Option<PathBuf>,
}

impl SchedulerArgs {
    fn apply_quick(&mut self) {
        if self.quick {
            self.nodes = 500;
            self.initial_pods = 100;
            self.pods = 1_000;
            self.deployment_replicas = self.deployment_replicas.min(1_000);
            self.deployment_nodes = 100;
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentRun {
    replicas: usize,
    nodes: usize,
    /// From the Deployment's creation to every replica available.
    seconds: f64,
    server_peak_rss_mib: f64,
    /// The server's CPU time over the whole run (controllers and scheduler included).
    server_cpu_seconds: f64,
    /// Writes the server answered during the run, by resource (from its `/metrics`): what a
    /// replica costs besides its own create.
    writes: std::collections::BTreeMap<String, u64>,
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    machine: Machine,
    scheduling_basic: serde_json::Value,
    server_peak_rss_mib: f64,
    server_cpu_seconds: f64,
    deployment: Option<DeploymentRun>,
}

pub async fn run(mut args: SchedulerArgs) -> anyhow::Result<()> {
    args.apply_quick();
    let bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("finding this executable")?,
    };
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("creating the benchmark directory {}", parent.display()))?;
    let mut machine = Machine::probe(&parent);

    progress(&format!(
        "SchedulingBasic: {} hollow nodes, {} pods placed, {} pods measured",
        args.nodes, args.initial_pods, args.pods
    ));
    // Controllers and the server's scheduler off: the benchmark runs its own scheduler, so
    // that its counters can be read, and nothing else writes.
    let child = ServerChild::start(&bin, &parent, None, false).await?;
    let client = crate::admin_client(&child.kubeconfig).await?;
    let opts = bosun_scheduler::bench::BenchOptions {
        nodes: args.nodes,
        initial_pods: args.initial_pods,
        pods: args.pods,
        create_concurrency: args.concurrency.max(1),
        ..Default::default()
    };
    let basic = bosun_scheduler::bench::run(client, opts)
        .await
        .with_context(|| format!("SchedulingBasic failed; server log:\n{}", child.log_tail()))?;
    let mem = child.memory()?;
    let cpu = child.cpu_seconds()?;
    drop(child);

    let deployment = if args.deployment_replicas > 0 {
        progress(&format!(
            "Deployment: {} replicas on {} hollow nodes (server's controllers and scheduler)",
            args.deployment_replicas, args.deployment_nodes
        ));
        Some(
            deployment_run(
                &bin,
                &parent,
                args.deployment_replicas,
                args.deployment_nodes,
            )
            .await?,
        )
    } else {
        None
    };

    machine.load_after = machine::load_average();
    let mut basic_json = basic.to_json();
    if let Some(obj) = basic_json.as_object_mut() {
        // The bench process also holds the hollow nodes and the scheduler: name it apart
        // from the server's figure.
        if let Some(v) = obj.remove("peakRssMiB") {
            obj.insert("benchProcessPeakRssMiB".into(), v);
        }
    }
    let report = Report {
        machine,
        scheduling_basic: basic_json,
        server_peak_rss_mib: mem.peak_mib,
        server_cpu_seconds: cpu,
        deployment,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{basic}");
        if let Some(s) = basic.scheduler {
            println!(
                "  scheduler        attempts {} bound {} unschedulable {} bind errors {}",
                s.attempts, s.bound, s.unschedulable, s.bind_errors
            );
        }
        println!(
            "  server           peak RSS {:.0} MiB, CPU {:.1} s",
            report.server_peak_rss_mib, report.server_cpu_seconds
        );
        if let Some(d) = &report.deployment {
            match &d.error {
                None => println!(
                    "Deployment {} replicas on {} hollow nodes: all available in {:.1} s (server peak RSS {:.0} MiB)",
                    d.replicas, d.nodes, d.seconds, d.server_peak_rss_mib
                ),
                Some(e) => println!("Deployment scenario failed: {e}"),
            }
            let total: u64 = d.writes.values().sum();
            println!(
                "  server CPU {:.1} s; {} writes ({:.2} per replica):",
                d.server_cpu_seconds,
                total,
                total as f64 / d.replicas.max(1) as f64
            );
            for (k, n) in &d.writes {
                println!("    {k:<40} {n:>8}");
            }
        }
        println!(
            "machine: {} CPUs ({}), load {} -> {}",
            report.machine.cpus,
            report.machine.cpu_model,
            report.machine.load_before,
            report.machine.load_after
        );
    }
    Ok(())
}

/// A Deployment of `replicas` from zero to all available on `nodes` hollow nodes that run
/// their pods, with the server's own controllers and scheduler.
async fn deployment_run(
    bin: &std::path::Path,
    parent: &std::path::Path,
    replicas: usize,
    nodes: usize,
) -> anyhow::Result<DeploymentRun> {
    let child = ServerChild::start(bin, parent, None, true).await?;
    let client = crate::admin_client(&child.kubeconfig).await?;
    let hollow = bosun_hollow::run(
        client.clone(),
        bosun_hollow::HollowOptions {
            nodes,
            name_prefix: "deploy-node-".into(),
            cpu: "32".into(),
            memory: "256Gi".into(),
            pods: 110,
            manage_pods: true,
            register_inflight: 32,
            ..Default::default()
        },
    )
    .await
    .context("starting hollow nodes")?;
    let ns = "deploy-bench";
    let nsapi: Api<Namespace> = Api::all(client.clone());
    nsapi
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await
        .context("creating the namespace")?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "big"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {"containers": [{"name": "c", "image": "busybox",
                         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
            }
        }
    }))?;
    let start = Instant::now();
    api.create(&PostParams::default(), &d)
        .await
        .context("creating the Deployment")?;
    let timeout = Duration::from_secs(600);
    let mut peak = 0.0f64;
    let mut stream =
        watcher::watcher(api, watcher::Config::default().fields("metadata.name=big")).boxed();
    let mut error = None;
    let mut seconds = 0.0;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_progress = Instant::now();
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        if let Ok(m) = child.memory() {
            peak = peak.max(m.peak_mib);
        }
        match next {
            Err(_) => {
                error = Some(format!("not all available after {timeout:?}"));
                break;
            }
            Ok(None) => {
                error = Some("the watch ended".into());
                break;
            }
            Ok(Some(Err(_))) => continue,
            Ok(Some(Ok(ev))) => {
                let objs: Vec<Deployment> = match ev {
                    watcher::Event::Apply(d) | watcher::Event::InitApply(d) => vec![d],
                    _ => Vec::new(),
                };
                for d in objs {
                    let avail = d
                        .status
                        .as_ref()
                        .and_then(|s| s.available_replicas)
                        .unwrap_or(0) as usize;
                    if last_progress.elapsed() > Duration::from_secs(5) {
                        progress(&format!("{avail}/{replicas} available"));
                        last_progress = Instant::now();
                    }
                    if avail >= replicas {
                        seconds = start.elapsed().as_secs_f64();
                    }
                }
                if seconds > 0.0 {
                    break;
                }
            }
        }
    }
    hollow.stop();
    let writes = match server_metrics(&client).await {
        Ok(text) => writes_by_resource(&text),
        Err(e) => {
            progress(&format!("reading the server's /metrics failed: {e}"));
            Default::default()
        }
    };
    Ok(DeploymentRun {
        replicas,
        nodes,
        seconds,
        server_peak_rss_mib: peak,
        server_cpu_seconds: child.cpu_seconds().unwrap_or(0.0),
        writes,
        error,
    })
}

async fn server_metrics(client: &kube::Client) -> anyhow::Result<String> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    Ok(client.request_text(req).await?)
}

/// Sums `apiserver_request_total` over codes for the writing verbs, keyed `VERB resource`.
fn writes_by_resource(metrics: &str) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix("=\""))
                .map(|v| v.trim_end_matches('"').to_owned())
        };
        let (Some(verb), Some(res)) = (label("verb"), label("resource")) else {
            continue;
        };
        if !matches!(verb.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
            continue;
        }
        let n: u64 = value.trim().parse().unwrap_or(0);
        *out.entry(format!("{verb} {res}")).or_insert(0) += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::writes_by_resource;

    #[test]
    fn writes_are_summed_over_codes_and_reads_left_out() {
        let text = "# TYPE apiserver_request_total counter\n\
            apiserver_request_total{verb=\"POST\",resource=\"pods\",code=\"201\"} 7\n\
            apiserver_request_total{verb=\"POST\",resource=\"pods\",code=\"409\"} 2\n\
            apiserver_request_total{verb=\"PUT\",resource=\"replicasets\",code=\"200\"} 3\n\
            apiserver_request_total{verb=\"GET\",resource=\"pods\",code=\"200\"} 100\n\
            apiserver_request_total{verb=\"WATCH\",resource=\"pods\",code=\"200\"} 4\n";
        let w = writes_by_resource(text);
        assert_eq!(w.get("POST pods"), Some(&9));
        assert_eq!(w.get("PUT replicasets"), Some(&3));
        assert_eq!(w.len(), 2);
    }
}
