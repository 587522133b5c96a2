//! `bosun bench`: load benchmarks of a real `bosun server` child process, printed as a table
//! (or JSON) next to the targets the project holds itself to. See BENCHMARKS.md.

mod client;
mod machine;
mod podbench;
mod pods;
mod report;
mod scenarios;
mod scheduler;
mod server;
mod services;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use client::Endpoint;
use report::{Backend, PhaseCpu, Report, Sizes};
use server::ServerChild;

/// The namespace every benchmark object lives in.
const NAMESPACE: &str = "bench";

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// API server throughput, latency, watch fan-out and memory against a `bosun server`
    /// child process on the embedded store (fsync on), and on etcd when it is installed.
    Api(ApiArgs),
    /// Scheduler throughput and latency (upstream's SchedulingBasic on hollow nodes) and a
    /// large Deployment rolled out from zero, against a `bosun server` child process.
    Scheduler(scheduler::SchedulerArgs),
    /// The node agent: pod startup latency (30 pods at once, p50/p99), container
    /// create+start+stop+delete against crun/runc, agent and shim memory with 100 pods.
    /// Needs root.
    Pods(podbench::PodsArgs),
    /// The service proxy and DNS (issue 5): rule programming latency at 1,000 and 10,000
    /// Services, ClusterIP against direct throughput, DNS queries per second on one core.
    /// Rule programming and throughput need root (scratch network namespaces).
    Services(services::ServicesArgs),
}

/// Whether to add the etcd column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EtcdMode {
    /// When the etcd binary exists (else the column says why it is empty).
    Auto,
    /// Never.
    Off,
    /// Always; fail when etcd cannot be started.
    On,
}

#[derive(Args, Clone, Debug)]
pub struct ApiArgs {
    /// Pods created in total (split evenly over the client counts); LIST and RSS are measured
    /// at this many pods.
    #[arg(long)]
    pub pods: Option<usize>,
    /// Concurrent watchers for the fan-out figure.
    #[arg(long)]
    pub watchers: Option<usize>,
    /// Small sizes for a fast smoke run (explicit sizes still win).
    #[arg(long)]
    pub quick: bool,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Concurrent create clients, one HTTP/2 connection each.
    #[arg(long, value_delimiter = ',')]
    pub clients: Option<Vec<usize>>,
    /// Cached GETs issued in total.
    #[arg(long)]
    pub gets: Option<usize>,
    /// Concurrent GET callers (spread over --get-connections).
    #[arg(long, default_value_t = 64)]
    pub get_callers: usize,
    /// HTTP/2 connections the GET callers share.
    #[arg(long, default_value_t = 8)]
    pub get_connections: usize,
    /// HTTP/2 connections the watchers share (the server allows 250 streams on each).
    #[arg(long, default_value_t = 8)]
    pub watch_connections: usize,
    /// Writes whose fan-out to every watcher is timed.
    #[arg(long)]
    pub watch_writes: Option<usize>,
    /// Runs of each LIST variant.
    #[arg(long)]
    pub list_runs: Option<usize>,
    /// Inserts for the raw SQLite baseline.
    #[arg(long)]
    pub baseline_inserts: Option<usize>,
    /// The etcd column.
    #[arg(long, value_enum, default_value_t = EtcdMode::Auto)]
    pub etcd: EtcdMode,
    /// Where the temporary data directories go (default: the system temp dir); the raw
    /// SQLite baseline runs on the same disk.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the controllers and the scheduler running in the server under test (off by
    /// default: they would add their own writes, e.g. a scheduling status per pod).
    #[arg(long)]
    pub control_loops: bool,
    /// The binary run as `SERVER_BIN server ...` (default: this executable).
    #[arg(long, hide = true)]
    pub server_bin: Option<PathBuf>,
}

impl ApiArgs {
    fn sizes(&self) -> Sizes {
        let q = self.quick;
        let pick =
            |v: Option<usize>, quick: usize, full: usize| v.unwrap_or(if q { quick } else { full });
        let clients = self
            .clients
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| if q { vec![8, 32] } else { vec![8, 16, 32, 64] });
        Sizes {
            pods: pick(self.pods, 1_000, 10_000).max(clients.len()),
            watchers: pick(self.watchers, 100, 1_000).max(1),
            clients: clients.into_iter().map(|c| c.max(1)).collect(),
            gets: pick(self.gets, 5_000, 100_000).max(1),
            get_callers: self.get_callers.max(1),
            get_connections: self.get_connections.max(1),
            watch_connections: self.watch_connections.max(1),
            watch_writes: pick(self.watch_writes, 10, 50).max(1),
            list_runs: pick(self.list_runs, 2, 5).max(1),
            baseline_inserts: pick(self.baseline_inserts, 200, 1_000).max(1),
        }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Api(a) => api(a).await,
        BenchCommand::Scheduler(a) => scheduler::run(a).await,
        BenchCommand::Pods(a) => podbench::run(a).await,
        BenchCommand::Services(a) => services::run(a).await,
    }
}

/// Progress goes to stderr so stdout holds only the table or the JSON.
fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let sizes = args.sizes();
    let bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("finding this executable")?,
    };
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("creating the benchmark directory {}", parent.display()))?;
    let machine = machine::Machine::probe(&parent);

    progress(&format!(
        "raw SQLite baseline: {} durable inserts in {}",
        sizes.baseline_inserts,
        parent.display()
    ));
    let scratch = tempfile::Builder::new()
        .prefix("bosun-bench-baseline-")
        .tempdir_in(&parent)
        .context("creating the baseline directory")?;
    let scratch_path = scratch.path().to_path_buf();
    let n = sizes.baseline_inserts;
    let raw_sqlite = tokio::task::spawn_blocking(move || {
        bosun_store::sqlite::raw_sqlite_durable_inserts(&scratch_path, n)
    })
    .await
    .context("the baseline task failed")?
    .context("raw SQLite baseline")?;
    drop(scratch);

    progress("starting `bosun server` on the embedded store");
    let sqlite = {
        let child = ServerChild::start(&bin, &parent, None, args.control_loops).await?;
        let mut b = backend_run(&child, &sizes, true).await;
        b.raw_store_per_sec = Some(raw_sqlite);
        b.raw_store_what = format!(
            "raw SQLite: one row per fsynced transaction, 1 writer, {} inserts",
            sizes.baseline_inserts
        );
        b.server_log_tail = child.log_tail_if(b.error.is_some());
        b
    };

    let etcd = etcd_column(&args, &bin, &parent, &sizes).await?;

    let mut machine = machine;
    machine.load_after = machine::load_average();
    let report = Report::new(machine, sizes, sqlite, etcd);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        );
    } else {
        print!("{}", report.table());
    }
    if let Some(e) = report.sqlite.error.as_ref() {
        anyhow::bail!("the embedded-store run failed: {e}");
    }
    Ok(())
}

/// The etcd column, or why it is empty.
async fn etcd_column(
    args: &ApiArgs,
    bin: &std::path::Path,
    parent: &std::path::Path,
    sizes: &Sizes,
) -> anyhow::Result<Result<Backend, String>> {
    if args.etcd == EtcdMode::Off {
        return Ok(Err("skipped (--etcd off)".into()));
    }
    let etcd_bin = std::env::var_os("BOSUN_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(bosun_store_etcd::local::DEFAULT_ETCD_BIN));
    if args.etcd == EtcdMode::Auto && !etcd_bin.exists() {
        return Ok(Err(format!(
            "no etcd binary at {} (scripts/install-etcd.sh installs Debian's etcd-server)",
            etcd_bin.display()
        )));
    }
    progress("starting a throw-away etcd");
    let etcd = match bosun_store_etcd::local::LocalEtcd::start().await {
        Ok(e) => e,
        Err(e) if args.etcd == EtcdMode::Auto => {
            return Ok(Err(format!("etcd did not start: {e}")))
        }
        Err(e) => return Err(e).context("starting etcd"),
    };
    let endpoints = etcd.endpoints();
    let raw_n = sizes.pods.clamp(100, 5_000);
    let raw_c = sizes.clients.iter().copied().max().unwrap_or(64);
    progress(&format!(
        "raw etcd baseline: {raw_n} creates, {raw_c} callers"
    ));
    let raw = bosun_store_etcd::bench_creates(&endpoints, raw_n, raw_c).await;
    progress("starting `bosun server` on etcd");
    let child = ServerChild::start(bin, parent, Some(etcd.endpoint()), args.control_loops).await?;
    let mut b = backend_run(&child, sizes, false).await;
    match raw {
        Ok(r) => b.raw_store_per_sec = Some(r),
        Err(e) => b.raw_store_what = format!("raw etcd baseline failed: {e}"),
    }
    if b.raw_store_per_sec.is_some() {
        b.raw_store_what =
            format!("raw etcd: kube-style creates (txn if absent), {raw_c} callers, {raw_n} keys");
    }
    b.server_log_tail = child.log_tail_if(b.error.is_some());
    drop(child);
    drop(etcd);
    Ok(Ok(b))
}

/// Everything measured against one server child. Failures are recorded in the result (so
/// the figures gathered before them are still printed).
async fn backend_run(child: &ServerChild, sizes: &Sizes, full: bool) -> Backend {
    let mut b = Backend::new(child.pid);
    if let Err(e) = backend_steps(child, sizes, full, &mut b).await {
        b.error = Some(format!("{e:#}"));
    }
    b
}

async fn backend_steps(
    child: &ServerChild,
    sizes: &Sizes,
    full: bool,
    b: &mut Backend,
) -> anyhow::Result<()> {
    let endpoint = Arc::new(Endpoint::from_kubeconfig(&child.kubeconfig)?);
    // Let start-up garbage settle before the idle figure.
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.rss_idle = Some(child.memory()?);
    scenarios::create_namespace(&endpoint, NAMESPACE).await?;

    let levels = sizes.clients.len();
    let mut names = Vec::with_capacity(sizes.pods);
    for (i, &clients) in sizes.clients.iter().enumerate() {
        // The levels add up to exactly --pods, so LIST and RSS see that many.
        let n = sizes.pods / levels + usize::from(i < sizes.pods % levels);
        progress(&format!("creates: {n} pods with {clients} clients"));
        let m = Meter::start(child);
        let r =
            scenarios::creates(&endpoint, NAMESPACE, clients, n, &format!("c{clients}")).await?;
        b.cpu
            .push(m.finish(child, format!("creates, {clients} clients"), r.pods));
        names.extend(r.names.iter().cloned());
        b.creates.push(r);
    }
    b.rss_at_pods = Some(child.memory()?);
    if !full {
        return Ok(());
    }
    let names = Arc::new(names);

    progress(&format!(
        "cached GETs: {} by {} callers over {} connections",
        sizes.gets, sizes.get_callers, sizes.get_connections
    ));
    let m = Meter::start(child);
    let gets = scenarios::gets(
        &endpoint,
        NAMESPACE,
        names.clone(),
        sizes.get_callers,
        sizes.get_connections,
        sizes.gets,
    )
    .await?;
    b.cpu
        .push(m.finish(child, "cached GETs".into(), gets.requests));
    b.gets = Some(gets);

    progress(&format!(
        "LIST of {} pods, {} runs each",
        names.len(),
        sizes.list_runs
    ));
    let m = Meter::start(child);
    b.lists = scenarios::lists(&endpoint, NAMESPACE, sizes.list_runs, names.len()).await?;
    let lists = b.lists.iter().map(|l| l.runs).sum();
    b.cpu
        .push(m.finish(child, "LISTs (all variants)".into(), lists));
    b.rss_after_lists = Some(child.memory()?);

    progress(&format!(
        "watch fan-out: {} watchers over {} connections, {} writes",
        sizes.watchers, sizes.watch_connections, sizes.watch_writes
    ));
    let m = Meter::start(child);
    let fanout = scenarios::fanout(
        &endpoint,
        NAMESPACE,
        sizes.watchers,
        sizes.watch_connections,
        sizes.watch_writes,
        || child.memory(),
    )
    .await?;
    b.cpu.push(m.finish(
        child,
        "watch fan-out (opening watches, then writes)".into(),
        fanout.writes,
    ));
    b.fanout = Some(fanout);
    b.rss_end = Some(child.memory()?);
    Ok(())
}

/// CPU time of the server and of this process over one phase: the figure that does not
/// depend on what else the machine runs.
struct Meter {
    wall: std::time::Instant,
    server: Option<f64>,
    client: f64,
}

impl Meter {
    fn start(child: &ServerChild) -> Meter {
        Meter {
            wall: std::time::Instant::now(),
            server: child.cpu_seconds().ok(),
            client: server::own_cpu_seconds(),
        }
    }

    fn finish(self, child: &ServerChild, phase: String, ops: usize) -> PhaseCpu {
        let wall_s = self.wall.elapsed().as_secs_f64();
        let server_cpu_s = match (self.server, child.cpu_seconds().ok()) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        };
        let client_cpu_s = server::own_cpu_seconds() - self.client;
        let per_op = |cpu: f64| cpu * 1e6 / ops.max(1) as f64;
        PhaseCpu {
            phase,
            ops,
            wall_s,
            server_cpu_s,
            client_cpu_s,
            server_us_per_op: per_op(server_cpu_s),
            client_us_per_op: per_op(client_cpu_s),
            server_cores: server_cpu_s / wall_s.max(f64::MIN_POSITIVE),
        }
    }
}
