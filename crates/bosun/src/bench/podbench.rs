//! `bosun bench pods`: the node agent's figures (issue 4's benchmark) on one machine, with
//! the image already present:
//!
//! - **pod startup**: a `bosun server` child process (scheduler and controllers on) and a
//!   `bosun agent` child process; a batch of pods created at once, each timed from just
//!   before its POST to the watch event that shows it `Running` (p50/p99; the Kubernetes SLO
//!   is p99 ≤ 5 s, ours 1 s);
//! - **agent memory**: the agent's RSS with `--rss-pods` pods running, the shims' RSS apart;
//! - **container lifecycle**: create + start + wait for exit + delete of `true` through
//!   bosun's runtime, median over `--lifecycle` runs, and `crun`/`runc run` on an OCI bundle
//!   of the same image in the same run, as a ratio (or why not).
//!
//! Needs root (the agent and the runtime mount and unshare). The pod network is left off
//! (`--disable-network`) so that the host's network is not touched.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use serde::Serialize;
use serde_json::json;

use super::machine::{self, Machine};
use super::progress;
use super::server::ServerChild;
use super::stats::Latency;

/// The image the pods run (what `scripts/build-test-images.sh` builds).
const IMAGE: &str = "bosun.test/busybox:latest";
const NAMESPACE: &str = "bench-pods";
const NODE: &str = "bench-node";

#[derive(Args, Clone, Debug)]
pub struct PodsArgs {
    /// Pods created at once for the startup latency (issue 4: 30).
    #[arg(long, default_value_t = 30)]
    pub batch: usize,
    /// Pods running when the agent's RSS is read (issue 4: 100; the node allows 110).
    #[arg(long, default_value_t = 100)]
    pub rss_pods: usize,
    /// Container lifecycles timed, for bosun and for crun/runc each.
    #[arg(long, default_value_t = 100)]
    pub lifecycle: usize,
    /// The busybox OCI archive (default: ~/.cache/bosun/images/busybox.oci.tar, made by
    /// scripts/build-test-images.sh).
    #[arg(long)]
    pub image_archive: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Where the data directories go (default: the system temp directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The binary run as `BIN server` / `BIN agent` (default: this executable).
    #[arg(long, hide = true)]
    pub server_bin: Option<PathBuf>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Startup {
    pods: usize,
    latency: Latency,
    /// From the first POST to the last pod Running.
    batch_seconds: f64,
    /// Where each pod's time went, median and max over the batch (milliseconds), in order.
    breakdown: Vec<Step>,
    /// CPU seconds used during the batch (first POST to last Running) by the server, by the
    /// agent (with the helpers it waited for) and by the batch's shims and containers (their
    /// set-up before the exec): whether the batch waited on the machine's two cores or on
    /// something else.
    cpu: BatchCpu,
}

#[derive(Serialize, Clone, Copy, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct BatchCpu {
    server_seconds: f64,
    agent_seconds: f64,
    shims_seconds: f64,
}

/// utime + stime (+ cutime + cstime with `children`) of `pid`, in seconds.
fn cpu_seconds(pid: u32, children: bool) -> f64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(at) = text.rfind(')') else {
        return 0.0;
    };
    // After the name: utime, stime, cutime, cstime are fields 14-17 (state is field 3).
    let f: Vec<u64> = text[at + 1..]
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse().ok())
        .collect();
    let ticks: u64 = f.iter().take(if children { 4 } else { 2 }).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 }
}

/// One part of the pod startup latency over the batch.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Step {
    step: String,
    median_ms: f64,
    max_ms: f64,
}

/// Wall-clock instants of one pod's startup (µs since the epoch; one machine, one clock).
#[derive(Clone, Copy, Debug, Default)]
struct PodTimes {
    /// Just before the POST.
    post: u128,
    /// The POST answered.
    created: u128,
    /// The benchmark's watch first saw `spec.nodeName`.
    bound: Option<u128>,
    /// The benchmark's watch saw `Running`.
    running: u128,
}

fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// One `pod startup trace` line of the agent's log (`bosun_kubelet::startup` at debug):
/// when the pod's worker started and the agent's steps in milliseconds.
#[derive(Clone, Debug, Default, PartialEq)]
struct AgentTrace {
    seen_unix_us: u128,
    total_ms: f64,
    steps: Vec<(String, f64)>,
}

/// The traces in an agent log, by pod name.
fn agent_traces(log: &str) -> HashMap<String, AgentTrace> {
    let field = |line: &str, key: &str| -> Option<String> {
        let at = line.find(&format!(" {key}="))? + key.len() + 2;
        let rest = &line[at..];
        let v = if let Some(q) = rest.strip_prefix('"') {
            q.split('"').next()?
        } else {
            rest.split_whitespace().next()?
        };
        Some(v.to_string())
    };
    let mut out = HashMap::new();
    for line in log.lines().filter(|l| l.contains("pod startup trace")) {
        let line = strip_ansi(line);
        let line = line.as_str();
        let (Some(pod), Some(seen), Some(total), Some(steps)) = (
            field(line, "pod"),
            field(line, "seen_unix_us"),
            field(line, "total_ms"),
            field(line, "steps"),
        ) else {
            continue;
        };
        let steps = steps
            .split(',')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        out.insert(
            pod,
            AgentTrace {
                seen_unix_us: seen.parse().unwrap_or(0),
                total_ms: total.parse().unwrap_or(0.0),
                steps,
            },
        );
    }
    out
}

/// `s` without ANSI colour sequences (`ESC [ ... m`), which the log may carry.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Per step, the median and max over the pods: the API's create, scheduling (seen bound on
/// a watch), delivery to the agent's worker, the agent's own steps, and the status write
/// reaching a watcher.
fn breakdown(times: &HashMap<String, PodTimes>, traces: &HashMap<String, AgentTrace>) -> Vec<Step> {
    let mut order: Vec<String> = Vec::new();
    let mut samples: HashMap<String, Vec<f64>> = HashMap::new();
    let mut add = |order: &mut Vec<String>, k: &str, v: f64| {
        if !order.iter().any(|o| o == k) {
            order.push(k.to_string());
        }
        samples.entry(k.to_string()).or_default().push(v);
    };
    let ms = |a: u128, b: u128| (b as f64 - a as f64) / 1e3;
    for (name, t) in times {
        add(
            &mut order,
            "API create (POST → answer)",
            ms(t.post, t.created),
        );
        let Some(bound) = t.bound else { continue };
        add(
            &mut order,
            "scheduling (answer → bound, on a watch)",
            ms(t.created, bound),
        );
        let Some(tr) = traces.get(name) else { continue };
        add(
            &mut order,
            "delivery to the agent (bound → worker)",
            ms(bound, tr.seen_unix_us),
        );
        for (k, v) in &tr.steps {
            add(&mut order, &format!("agent: {k}"), *v);
        }
        let written = tr.seen_unix_us as f64 + tr.total_ms * 1e3;
        add(
            &mut order,
            "status → watcher sees Running",
            (t.running as f64 - written) / 1e3,
        );
    }
    order
        .into_iter()
        .map(|k| {
            let mut v = samples.remove(&k).unwrap_or_default();
            v.sort_by(|a, b| a.total_cmp(b));
            Step {
                median_ms: v.get(v.len() / 2).copied().unwrap_or(0.0),
                max_ms: v.last().copied().unwrap_or(0.0),
                step: k,
            }
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AgentMemory {
    pods_running: usize,
    agent_rss_mib: f64,
    agent_peak_rss_mib: f64,
    shims: usize,
    shims_rss_mib: f64,
    shim_avg_rss_mib: f64,
    /// Proportional set size: the shims share the binary's pages, RSS counts them in each.
    shims_pss_mib: f64,
    shim_avg_pss_mib: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Lifecycle {
    bosun: bosun_runtime::bench::LifecycleFigures,
    oci: Option<bosun_runtime::bench::LifecycleFigures>,
    /// bosun's median / the OCI runtime's.
    ratio: Option<f64>,
    /// Why there is no OCI runtime figure.
    oci_note: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    machine: Machine,
    startup: Startup,
    memory: AgentMemory,
    lifecycle: Lifecycle,
    /// What the agent ran with.
    agent_flags: Vec<String>,
}

/// A `bosun agent` child process; killed when dropped (its containers are removed by
/// [`cleanup_node`]).
struct AgentChild {
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl AgentChild {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for AgentChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_kib(pid: u32, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// `Pss:` of /proc/PID/smaps_rollup, in KiB.
fn pss_kib(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// CPU seconds of the shims of containers under `data_dir` that run now and of their
/// children, the containers (whose set-up before the exec, the container init, counts there).
fn shims_cpu(data_dir: &Path) -> f64 {
    shim_pids(data_dir)
        .into_iter()
        .map(|p| {
            let children =
                std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
            cpu_seconds(p, false)
                + children
                    .split_whitespace()
                    .filter_map(|c| c.parse().ok())
                    .map(|c| cpu_seconds(c, false))
                    .sum::<f64>()
        })
        .sum()
}

/// (count, total RSS MiB, total PSS MiB) of the shims of containers under `data_dir`.
fn shims_rss(data_dir: &Path) -> (usize, f64, f64) {
    let mut n = 0;
    let mut kib = 0.0;
    let mut pss = 0.0;
    for pid in shim_pids(data_dir) {
        if let Some(k) = status_kib(pid, "VmRSS") {
            n += 1;
            kib += k;
            pss += pss_kib(pid).unwrap_or(0.0);
        }
    }
    (n, kib / 1024.0, pss / 1024.0)
}

/// The shims of containers under `data_dir`.
fn shim_pids(data_dir: &Path) -> Vec<u32> {
    let want = data_dir.join("containers").to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // `bosun-shim --dir DATA_DIR/containers/<id>` or `bosun shim --dir ...` (not its
        // forked container init, which execs the container's program).
        let shim_prog = args.first().is_some_and(|a| a.ends_with("bosun-shim"))
            || args.iter().any(|a| a == "shim");
        let is_shim = shim_prog && args.iter().any(|a| a.starts_with(&want));
        if is_shim {
            out.push(pid);
        }
    }
    out
}

fn pod(name: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"bench": "pods"}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "main",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sleep", "36000"],
            }],
        },
    }))?)
}

/// Creates `names` at once and returns, per pod, the time from just before its POST to the
/// watch event showing it Running, and the instants in between.
async fn start_pods(
    client: &kube::Client,
    names: &[String],
) -> anyhow::Result<(Vec<Duration>, HashMap<String, PodTimes>)> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant, u128)>();
    let (btx, mut brx) = tokio::sync::mpsc::unbounded_channel::<(String, u128)>();
    let watch_api = api.clone();
    let watch = tokio::spawn(async move {
        let mut s = watcher::watcher(watch_api, watcher::Config::default()).boxed();
        while let Some(ev) = s.next().await {
            let pods = match ev {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => vec![p],
                _ => continue,
            };
            for p in pods {
                let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                let name = p.metadata.name.clone().unwrap_or_default();
                if running {
                    let _ = tx.send((name, Instant::now(), now_us()));
                } else if p.spec.as_ref().is_some_and(|s| s.node_name.is_some()) {
                    let _ = btx.send((name, now_us()));
                }
            }
        }
    });
    // Let the watch establish before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut started: HashMap<String, Instant> = HashMap::new();
    let creates = names.iter().map(|n| {
        let api = api.clone();
        async move {
            let p = pod(n)?;
            let t0 = Instant::now();
            let post = now_us();
            api.create(&PostParams::default(), &p)
                .await
                .with_context(|| format!("creating pod {n}"))?;
            let created = now_us();
            anyhow::Ok((n.clone(), t0, post, created))
        }
    });
    let mut times: HashMap<String, PodTimes> = HashMap::new();
    for r in futures::future::join_all(creates).await {
        let (n, t0, post, created) = r?;
        started.insert(n.clone(), t0);
        times.insert(
            n,
            PodTimes {
                post,
                created,
                ..Default::default()
            },
        );
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.len() < names.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((n, at, at_us))) = tokio::time::timeout(left, rx.recv()).await else {
            watch.abort();
            bail!("{} of {} pods Running after 300 s", seen.len(), names.len());
        };
        if let Some(t0) = started.get(&n) {
            if seen.insert(n.clone()) {
                out.push(at.saturating_duration_since(*t0));
                if let Some(t) = times.get_mut(&n) {
                    t.running = at_us;
                }
            }
        }
    }
    watch.abort();
    while let Ok((n, at)) = brx.try_recv() {
        if let Some(t) = times.get_mut(&n) {
            t.bound.get_or_insert(at);
        }
    }
    Ok((out, times))
}

/// Removes every container and sandbox under `data_dir` (the agent is gone by then).
fn cleanup_node(data_dir: &Path) {
    let Ok(rt) = bosun_runtime::Runtime::new(bosun_runtime::RuntimeConfig::new(data_dir)) else {
        return;
    };
    for c in rt.list().unwrap_or_default() {
        let _ = rt.delete(&c.id, true);
    }
    if let Ok(rd) = std::fs::read_dir(data_dir.join("sandboxes")) {
        for e in rd.flatten() {
            let _ = rt.remove_sandbox(&e.file_name().to_string_lossy());
        }
    }
    for cg in ["kubepods/besteffort", "kubepods/burstable", "kubepods"] {
        if let Ok(rd) = std::fs::read_dir(Path::new("/sys/fs/cgroup/memory").join(cg)) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("pod") {
                    let _ = rt.cgroups().remove(&format!("{cg}/{name}"));
                }
            }
        }
    }
}

fn lifecycle(dir: &Path, archive: &Path, n: usize) -> anyhow::Result<Lifecycle> {
    let rt = bosun_runtime::Runtime::new(bosun_runtime::RuntimeConfig::new(dir))
        .context("opening the lifecycle runtime")?;
    rt.images()
        .import(archive, None)
        .context("importing the image for the lifecycle benchmark")?;
    // One untimed run first: page cache and the shim binary warm, as in steady operation.
    bosun_runtime::bench::bench_lifecycle(&rt, IMAGE, 1)?;
    let bosun = bosun_runtime::bench::bench_lifecycle(&rt, IMAGE, n)?;
    // crun first (the fastest published), then runc; the first that runs here is compared.
    let candidates: Vec<PathBuf> = ["/usr/bin/crun", "/usr/sbin/runc", "/usr/bin/runc"]
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    let mut notes = Vec::new();
    let mut oci = None;
    if !candidates.is_empty() {
        let bundle = dir.join("bundle");
        bosun_runtime::bench::write_bundle(&rt, IMAGE, &bundle)?;
        for prog in candidates {
            match bosun_runtime::bench::bench_oci_runtime(&prog, &bundle, 1)
                .and_then(|_| bosun_runtime::bench::bench_oci_runtime(&prog, &bundle, n))
            {
                Ok(f) => {
                    oci = Some(f);
                    break;
                }
                Err(e) => notes.push(format!("{} could not run here: {e}", prog.display())),
            }
        }
    } else {
        notes.push("no crun or runc installed (apt-get install crun or runc)".to_string());
    }
    let oci_note = (!notes.is_empty()).then(|| notes.join("; "));
    let ratio = oci
        .as_ref()
        .filter(|o| o.median_ms > 0.0)
        .map(|o| bosun.median_ms / o.median_ms);
    Ok(Lifecycle {
        bosun,
        oci,
        ratio,
        oci_note,
    })
}

pub async fn run(args: PodsArgs) -> anyhow::Result<()> {
    if !bosun_kubelet::is_root() {
        bail!("bosun bench pods runs a real agent and containers: run it as root");
    }
    let bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("finding this executable")?,
    };
    let archive = match &args.image_archive {
        Some(a) => a.clone(),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
            .join(".cache/bosun/images/busybox.oci.tar"),
    };
    if !archive.is_file() {
        bail!(
            "no image archive at {}: run scripts/build-test-images.sh (or pass --image-archive)",
            archive.display()
        );
    }
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("creating the benchmark directory {}", parent.display()))?;
    let mut machine = Machine::probe(&parent);
    let work = tempfile::Builder::new()
        .prefix("bosun-bench-pods-")
        .tempdir_in(&parent)
        .context("creating the benchmark directory")?;

    progress("container lifecycle: bosun's runtime and crun/runc on the same image");
    let lc_dir = work.path().join("lifecycle");
    let (a, n) = (archive.clone(), args.lifecycle.max(1));
    let d = lc_dir.clone();
    let lifecycle = tokio::task::spawn_blocking(move || lifecycle(&d, &a, n))
        .await
        .context("lifecycle task")??;

    progress("starting a server and an agent");
    let server = ServerChild::start(&bin, &parent, None, true).await?;
    let server_dir = server
        .kubeconfig
        .parent()
        .context("server data directory")?
        .to_path_buf();
    let token = std::fs::read_to_string(server_dir.join("node-token"))
        .context("reading the node token")?
        .trim()
        .to_string();
    let agent_dir = work.path().join("agent");
    std::fs::create_dir_all(&agent_dir)?;
    let (a, d) = (archive.clone(), agent_dir.clone());
    tokio::task::spawn_blocking(move || {
        bosun_runtime::image::ImageStore::open(&d).and_then(|s| s.import(&a, None))
    })
    .await
    .context("import task")?
    .context("importing the image into the agent's store")?;
    let help = Command::new(&bin).args(["agent", "--help"]).output()?;
    let mut flags = vec![
        "--node-name".to_string(),
        NODE.into(),
        "--node-ip".into(),
        "127.0.0.1".into(),
        "--kubelet-port".into(),
        "0".into(),
        "--disable-image-pull".into(),
        // A nearly full disk must not taint the node and keep the pods off it.
        "--eviction-hard".into(),
        "memory.available<1Mi,nodefs.available<1%".into(),
        // Nor image GC remove the benchmark's image.
        "--image-gc-high-threshold".into(),
        "100".into(),
    ];
    if String::from_utf8_lossy(&help.stdout).contains("--disable-network") {
        flags.push("--disable-network".into());
    }
    let log = work.path().join("agent.log");
    let out = std::fs::File::create(&log)?;
    let child = Command::new(&bin)
        .arg("agent")
        .arg("--server")
        .arg(&server.url)
        .arg("--server-ca")
        .arg(server_dir.join("tls/ca.crt"))
        .arg("--data-dir")
        .arg(&agent_dir)
        .args(&flags)
        .env("BOSUN_TOKEN", &token)
        // The worker's per-pod startup trace, for the breakdown.
        .env("BOSUN_LOG", "info,bosun_kubelet::startup=debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .spawn()
        .context("starting the agent")?;
    let agent = AgentChild {
        pid: child.id(),
        child,
        log,
    };
    let client = crate::admin_client(&server.kubeconfig).await?;
    let result = measure(&client, &agent, &agent_dir, &args, server.pid).await;
    // Pods go first, so the agent removes its containers; whatever is left is removed here.
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let _ = api
        .delete_collection(
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
            &ListParams::default(),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        match api.list(&ListParams::default()).await {
            Ok(l) if l.items.is_empty() => break,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    drop(agent);
    let d = agent_dir.clone();
    let _ = tokio::task::spawn_blocking(move || cleanup_node(&d)).await;
    drop(server);
    let (startup, memory) = result?;
    machine.load_after = machine::load_average();
    let report = Report {
        machine,
        startup,
        memory,
        lifecycle,
        agent_flags: flags,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

async fn measure(
    client: &kube::Client,
    agent: &AgentChild,
    agent_dir: &Path,
    args: &PodsArgs,
    server_pid: u32,
) -> anyhow::Result<(Startup, AgentMemory)> {
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = nodes.get_opt(NODE).await.ok().flatten().is_some_and(|n| {
            n.status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the agent's node is not Ready after 60 s; agent log:\n{}",
                agent.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .context("creating the benchmark namespace")?;
    // The default ServiceAccount is made by a controller; wait for it like a user would.
    tokio::time::sleep(Duration::from_secs(2)).await;

    progress(&format!("pod startup: {} pods at once", args.batch));
    let names: Vec<String> = (0..args.batch).map(|i| format!("batch-{i}")).collect();
    let cpu0 = (cpu_seconds(server_pid, false), cpu_seconds(agent.pid, true));
    let t = Instant::now();
    let (mut lat, times) = start_pods(client, &names)
        .await
        .with_context(|| format!("agent log:\n{}", agent.log_tail()))?;
    let batch_seconds = t.elapsed().as_secs_f64();
    let cpu = BatchCpu {
        server_seconds: cpu_seconds(server_pid, false) - cpu0.0,
        agent_seconds: cpu_seconds(agent.pid, true) - cpu0.1,
        // The shims started with the batch: all their CPU is the batch's (and after).
        shims_seconds: shims_cpu(agent_dir),
    };
    let traces = agent_traces(&std::fs::read_to_string(&agent.log).unwrap_or_default());
    let startup = Startup {
        pods: names.len(),
        latency: Latency::of(&mut lat),
        batch_seconds,
        breakdown: breakdown(&times, &traces),
        cpu,
    };

    let more = args.rss_pods.saturating_sub(args.batch);
    progress(&format!(
        "agent memory: {more} more pods, {} running",
        args.rss_pods
    ));
    let names: Vec<String> = (0..more).map(|i| format!("rss-{i}")).collect();
    for chunk in names.chunks(25) {
        start_pods(client, chunk)
            .await
            .with_context(|| format!("agent log:\n{}", agent.log_tail()))?;
    }
    // Let the agent settle (status writes, probes of nothing, the stats sampler).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (shims, shims_mib, shims_pss) = shims_rss(agent_dir);
    let memory = AgentMemory {
        pods_running: args.rss_pods.max(args.batch),
        agent_rss_mib: status_kib(agent.pid, "VmRSS").unwrap_or(0.0) / 1024.0,
        agent_peak_rss_mib: status_kib(agent.pid, "VmHWM").unwrap_or(0.0) / 1024.0,
        shims,
        shims_rss_mib: shims_mib,
        shim_avg_rss_mib: if shims > 0 {
            shims_mib / shims as f64
        } else {
            0.0
        },
        shims_pss_mib: shims_pss,
        shim_avg_pss_mib: if shims > 0 {
            shims_pss / shims as f64
        } else {
            0.0
        },
    };
    Ok((startup, memory))
}

fn print_table(r: &Report) {
    let m = &r.machine;
    println!(
        "bosun bench pods — {} × {}, {:.1} GiB, kernel {}, {} ({}); load before {} / after {}",
        m.cpus,
        m.cpu_model,
        m.memory_gib,
        m.kernel,
        m.filesystem,
        m.date,
        m.load_before,
        m.load_after
    );
    println!();
    println!("{:<58} {:>12} {:>16}", "figure", "value", "target");
    let s = &r.startup;
    println!(
        "{:<58} {:>9.0} ms {:>16}",
        format!("pod startup p50 ({} pods at once, image present)", s.pods),
        s.latency.p50_ms,
        ""
    );
    println!(
        "{:<58} {:>9.0} ms {:>16}",
        "pod startup p99", s.latency.p99_ms, "≤ 1000 ms"
    );
    println!(
        "{:<58} {:>10.2} s {:>16}",
        "whole batch, first POST to last Running", s.batch_seconds, ""
    );
    println!(
        "{:<58} {:>12} {:>16}",
        "CPU during the batch: server / agent / shims+containers",
        format!(
            "{:.2}/{:.2}/{:.2} s",
            s.cpu.server_seconds, s.cpu.agent_seconds, s.cpu.shims_seconds
        ),
        ""
    );
    for st in &s.breakdown {
        println!(
            "{:<58} {:>9.1} ms {:>16}",
            format!("  {} (median; max {:.0} ms)", st.step, st.max_ms),
            st.median_ms,
            ""
        );
    }
    let l = &r.lifecycle;
    println!(
        "{:<58} {:>9.1} ms {:>16}",
        format!(
            "container create+start+stop+delete, bosun (median of {})",
            l.bosun.n
        ),
        l.bosun.median_ms,
        "≤ 50 ms"
    );
    for st in &l.bosun.steps {
        println!(
            "{:<58} {:>9.1} ms {:>16}",
            format!("  {} (median)", st.step),
            st.median_ms,
            ""
        );
    }
    if let (Some(o), Some(ratio)) = (&l.oci, l.ratio) {
        println!(
            "{:<58} {:>9.1} ms {:>16}",
            format!("  the same with {} run (median of {})", o.runtime, o.n),
            o.median_ms,
            ""
        );
        println!(
            "{:<58} {:>12.2} {:>16}",
            format!("  bosun / {}", o.runtime),
            ratio,
            ""
        );
    }
    if let Some(note) = &l.oci_note {
        println!("  {note}");
    }
    let mem = &r.memory;
    let target = 50.0 + mem.pods_running as f64;
    println!(
        "{:<58} {:>8.1} MiB {:>16}",
        format!("agent RSS with {} pods", mem.pods_running),
        mem.agent_rss_mib,
        format!("≤ {target:.0} MiB")
    );
    println!(
        "{:<58} {:>8.1} MiB {:>16}",
        format!("shims: {} processes, total", mem.shims),
        mem.shims_rss_mib,
        ""
    );
    println!(
        "{:<58} {:>8.2} MiB {:>16}",
        "  per shim (RSS)", mem.shim_avg_rss_mib, ""
    );
    println!(
        "{:<58} {:>8.1} MiB {:>16}",
        "shims, total PSS (shared binary pages counted once)", mem.shims_pss_mib, ""
    );
    println!(
        "{:<58} {:>8.2} MiB {:>16}",
        "  per shim (PSS)", mem.shim_avg_pss_mib, ""
    );
    println!("agent flags: {}", r.agent_flags.join(" "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_agents_startup_traces() {
        let log = "2026-11-28T18:00:00.1Z DEBUG bosun_kubelet::startup: pod startup trace \
                   pod=batch-3 seen_unix_us=1000000 total_ms=\"12.5\" \
                   steps=sandbox=4.0,volumes+cgroup=1.5,status=7.0\n\
                   2026-11-28T18:00:00.2Z  INFO bosun_kubelet::worker: something else pod=x\n\
                   \u{1b}[2m2026\u{1b}[0m DEBUG pod startup trace \u{1b}[3mpod\u{1b}[0m\u{1b}[2m=\u{1b}[0mc \
                   seen_unix_us=5 total_ms=1.0 steps=status=1.0\n";
        let t = agent_traces(log);
        assert_eq!(t.len(), 2);
        assert_eq!(t["c"].seen_unix_us, 5, "colours stripped");
        let b = &t["batch-3"];
        assert_eq!(b.seen_unix_us, 1_000_000);
        assert_eq!(b.total_ms, 12.5);
        assert_eq!(b.steps[1], ("volumes+cgroup".to_string(), 1.5));

        let mut times = HashMap::new();
        times.insert(
            "batch-3".to_string(),
            PodTimes {
                post: 900_000,
                created: 950_000,
                bound: Some(990_000),
                running: 1_020_000,
            },
        );
        let steps = breakdown(&times, &t);
        let get = |k: &str| {
            steps
                .iter()
                .find(|s| s.step.starts_with(k))
                .map(|s| s.median_ms)
        };
        assert_eq!(get("API create"), Some(50.0));
        assert_eq!(get("scheduling"), Some(40.0));
        assert_eq!(get("delivery"), Some(10.0));
        assert_eq!(get("agent: sandbox"), Some(4.0));
        assert_eq!(
            get("status"),
            Some(7.5),
            "1,020,000 - (1,000,000 + 12,500) µs"
        );
    }
}
