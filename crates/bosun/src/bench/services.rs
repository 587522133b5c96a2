//! `bosun bench services`: issue 5's figures, measured on bosun-net's real pieces in network
//! namespaces this command creates (and deletes), never touching the host's own network:
//!
//! - **rule programming**: N Services (2 endpoints each) programmed by the proxy into a
//!   scratch namespace; then one Service's endpoints change at a time and the time from the
//!   change to the new ruleset committed in the kernel (`nft -f` returned) is taken,
//!   p50/p99, at each `--services` size. (The watch delay from the API server is not in it.)
//! - **ClusterIP vs direct**: TCP bulk transfer between two pods of a node namespace, to the
//!   server pod's IP and to a ClusterIP in front of it, as a ratio from the same run.
//! - **DNS**: queries per second answered by the DNS server on a current-thread runtime (one
//!   core), A queries for Service names of a zone of 1,000 Services, over UDP on loopback.
//!
//! Rule programming and throughput need root, `ip` and `nft`; DNS runs anywhere.
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bosun_net::proxy::{Proxier, ProxyConfig};
use bosun_net::{DnsConfig, DnsServer, NetConfig, PodNetwork};
use clap::Args;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;
use serde_json::json;

use super::machine::{self, Machine};
use super::stats::Latency;

#[derive(Args, Clone, Debug)]
pub struct ServicesArgs {
    /// Service counts for rule programming (issue 5: 1,000 and 10,000).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub services: Vec<usize>,
    /// Endpoint changes timed per size.
    #[arg(long, default_value_t = 50)]
    pub changes: usize,
    /// MiB sent per throughput run (three runs each way, best kept).
    #[arg(long, default_value_t = 512)]
    pub transfer_mib: usize,
    /// Seconds of DNS load.
    #[arg(long, default_value_t = 5)]
    pub dns_seconds: u64,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Programming {
    services: usize,
    endpoints: usize,
    first_sync_ms: f64,
    change: Latency,
}

#[derive(Debug, Serialize)]
struct Throughput {
    direct_mib_s: f64,
    cluster_ip_mib_s: f64,
    ratio: f64,
}

#[derive(Debug, Serialize)]
struct Dns {
    /// Answers per second of wall time (the clients share the machine's cores with it).
    qps: f64,
    answered: u64,
    seconds: f64,
    client_threads: usize,
    /// CPU time the server's thread used meanwhile.
    server_cpu_seconds: Option<f64>,
    /// Answers per second of the server's own CPU time: queries per second on one core.
    qps_per_core: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    programming: Vec<Programming>,
    throughput: Option<Throughput>,
    dns: Dns,
}

pub async fn run(args: ServicesArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().context("temporary directory")?;
    let mut machine = Machine::probe(tmp.path());
    let root = nix_is_root();
    let mut programming = Vec::new();
    let mut throughput = None;
    if root {
        for &n in &args.services {
            eprintln!("bench services: programming {n} Services…");
            programming.push(bench_programming(n, args.changes).await?);
        }
        eprintln!("bench services: ClusterIP vs direct throughput…");
        throughput = Some(bench_throughput(tmp.path(), args.transfer_mib).await?);
    } else {
        eprintln!("bench services: not root, so no rule programming or throughput figures");
    }
    eprintln!("bench services: DNS queries per second…");
    let dns = bench_dns(Duration::from_secs(args.dns_seconds)).await?;
    machine.load_after = machine::load_average();
    let report = Report {
        machine,
        programming,
        throughput,
        dns,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn print_table(r: &Report) {
    let m = &r.machine;
    println!(
        "machine: {} CPUs ({}), {:.1} GiB, kernel {}, {}; load {} → {}",
        m.cpus, m.cpu_model, m.memory_gib, m.kernel, m.date, m.load_before, m.load_after
    );
    println!();
    println!(
        "{:<44} {:>12} {:>12} {:>12}",
        "figure", "p50", "p99", "target"
    );
    for p in &r.programming {
        let change = format!("endpoint change → rules in kernel, {} svc", p.services);
        let first = format!("first full sync, {} svc / {} eps", p.services, p.endpoints);
        println!(
            "{change:<44} {:>9.1} ms {:>9.1} ms {:>12}",
            p.change.p50_ms, p.change.p99_ms, "p99 ≤ 1 s"
        );
        println!("{first:<44} {:>9.1} ms", p.first_sync_ms);
    }
    if let Some(t) = &r.throughput {
        let label = format!(
            "ClusterIP / direct ({:.0} / {:.0} MiB/s)",
            t.cluster_ip_mib_s, t.direct_mib_s
        );
        let ratio = format!("{:.2}×", t.ratio);
        println!("{label:<44} {ratio:>12} {:>12} {:>12}", "", "≥ 0.9×");
    }
    let label = format!("DNS, wall ({} client threads)", r.dns.client_threads);
    let qps = format!("{:.0} qps", r.dns.qps);
    println!("{label:<44} {qps:>12}");
    if let (Some(per_core), Some(cpu)) = (r.dns.qps_per_core, r.dns.server_cpu_seconds) {
        let label = format!("DNS per core (server thread {cpu:.2} CPU s)");
        let qps = format!("{per_core:.0} qps");
        println!("{label:<44} {qps:>12} {:>12} {:>12}", "", "≥ 20000 qps");
    }
}

fn service(i: usize) -> Service {
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + 100 + i as u32);
    serde_json::from_value(json!({
        "metadata": {"namespace": "bench", "name": format!("svc-{i}")},
        "spec": {"type": "ClusterIP", "clusterIP": ip.to_string(),
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
    }))
    .unwrap_or_default()
}

fn slice(i: usize, generation: usize) -> EndpointSlice {
    let base = u32::from(Ipv4Addr::new(10, 244, 0, 0)) + ((i as u32 * 2) % 65_000) + 2;
    let eps: Vec<_> = (0..2u32)
        .map(|k| {
            let ip = Ipv4Addr::from(base + k + (generation as u32 % 2) * 7);
            json!({"addresses": [ip.to_string()], "conditions": {"ready": true}, "nodeName": "n"})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": "bench", "name": format!("svc-{i}-x"),
                     "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": eps
    }))
    .unwrap_or_else(|_| EndpointSlice {
        address_type: "IPv4".into(),
        ..Default::default()
    })
}

/// A network namespace made for the run, deleted on drop.
struct Netns {
    name: String,
    path: PathBuf,
}

impl Netns {
    fn new(tag: &str) -> anyhow::Result<Self> {
        let name = format!("bosun-bench-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .context("running ip netns add (install iproute2)")?;
        if !out.status.success() {
            bail!(
                "ip netns add {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let ns = Self {
            path: PathBuf::from(format!("/var/run/netns/{name}")),
            name,
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn ip(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .context("running ip")?;
        if !out.status.success() {
            bail!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

async fn bench_programming(n: usize, changes: usize) -> anyhow::Result<Programming> {
    let ns = Netns::new("rules")?;
    let mut cfg = ProxyConfig::new("n");
    cfg.netns = Some(ns.path.clone());
    let mut proxier = Proxier::new(cfg);
    let services: Vec<Service> = (0..n).map(service).collect();
    let mut slices: Vec<EndpointSlice> = (0..n).map(|i| slice(i, 0)).collect();
    let t = Instant::now();
    proxier
        .sync(&services, &slices)
        .await
        .context("first proxy sync")?;
    let first = t.elapsed();
    let mut samples = Vec::with_capacity(changes);
    for c in 0..changes {
        let i = (c * 7919) % n.max(1);
        slices[i] = slice(i, c + 1);
        let t = Instant::now();
        proxier
            .sync(&services, &slices)
            .await
            .context("proxy sync")?;
        samples.push(t.elapsed());
    }
    Ok(Programming {
        services: n,
        endpoints: n * 2,
        first_sync_ms: first.as_secs_f64() * 1e3,
        change: Latency::of(&mut samples),
    })
}

/// Runs `f` on a thread inside the namespace at `ns`.
fn in_netns<T: Send + 'static>(
    ns: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::thread::JoinHandle<std::io::Result<T>> {
    let ns = ns.to_path_buf();
    std::thread::spawn(move || {
        bosun_net::netns::enter(&ns).map_err(std::io::Error::other)?;
        f()
    })
}

async fn bench_throughput(dir: &Path, mib: usize) -> anyhow::Result<Throughput> {
    let node = Netns::new("tpnode")?;
    let server = Netns::new("tpsrv")?;
    let client = Netns::new("tpcli")?;
    let net = PodNetwork::new(
        NetConfig {
            data_dir: dir.to_path_buf(),
            node_netns: Some(node.path.clone()),
            ..NetConfig::default()
        },
        "10.244.7.0/24".parse().context("cidr")?,
    )
    .await
    .context("pod network")?;
    let srv = net.setup("bench-server", &server.path).await?;
    net.setup("bench-client", &client.path).await?;
    let vip = Ipv4Addr::new(10, 96, 0, 50);
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"namespace": "bench", "name": "sink"},
        "spec": {"type": "ClusterIP", "clusterIP": vip.to_string(),
                 "ports": [{"name": "tcp", "port": 80, "protocol": "TCP", "targetPort": 5001}]}
    }))?;
    let eps: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"namespace": "bench", "name": "sink-x",
                     "labels": {"kubernetes.io/service-name": "sink"}},
        "addressType": "IPv4",
        "ports": [{"name": "tcp", "port": 5001, "protocol": "TCP"}],
        "endpoints": [{"addresses": [srv.ip.to_string()], "conditions": {"ready": true}, "nodeName": "n"}]
    }))?;
    let mut cfg = ProxyConfig::new("n");
    cfg.netns = Some(node.path.clone());
    Proxier::new(cfg)
        .sync(&[svc], &[eps])
        .await
        .context("proxy sync")?;

    // The sink: accepts connections and reads them to the end, forever (the namespace's
    // deletion does not stop the thread, so it is left to the process's exit).
    let (tx, rx) = std::sync::mpsc::channel();
    let _sink = in_netns(&server.path, move || {
        let l = TcpListener::bind(("0.0.0.0", 5001))?;
        let _ = tx.send(());
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                let _ = s.write_all(b"k");
            });
        }
        Ok(())
    });
    rx.recv_timeout(Duration::from_secs(5))
        .context("the sink did not start")?;
    let send = |addr: SocketAddr| -> anyhow::Result<f64> {
        let h = in_netns(&client.path, move || {
            let buf = vec![0x5au8; 1 << 16];
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
            let t = Instant::now();
            for _ in 0..(mib * 16) {
                s.write_all(&buf)?;
            }
            s.shutdown(std::net::Shutdown::Write)?;
            let mut ack = [0u8; 1];
            s.read_exact(&mut ack)?;
            Ok(mib as f64 / t.elapsed().as_secs_f64())
        });
        h.join()
            .map_err(|_| anyhow::anyhow!("sender thread panicked"))?
            .with_context(|| format!("sending to {addr}"))
    };
    let (mut direct, mut via) = (0f64, 0f64);
    for _ in 0..3 {
        direct = direct.max(send((srv.ip, 5001).into())?);
        via = via.max(send((vip, 80).into())?);
    }
    Ok(Throughput {
        direct_mib_s: direct,
        cluster_ip_mib_s: via,
        ratio: if direct > 0.0 { via / direct } else { 0.0 },
    })
}

/// CPU time (user + system) thread `tid` of this process has used so far.
fn thread_cpu(tid: i64) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) in parentheses: utime is the 14th
    // field of the line, stime the 15th, in clock ticks.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

async fn bench_dns(duration: Duration) -> anyhow::Result<Dns> {
    let zone_size = 1000;
    let services: Vec<Service> = (0..zone_size).map(service).collect();
    let slices: Vec<EndpointSlice> = (0..zone_size).map(|i| slice(i, 0)).collect();
    // The server on its own current-thread runtime: one core's worth of work.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-dns".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(anyhow::anyhow!("dns runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                let server = DnsServer::new(DnsConfig {
                    listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                    ..DnsConfig::default()
                });
                server.update(&services, &slices);
                match server.bind().await {
                    Ok((addr, task)) => {
                        // SAFETY: gettid has no preconditions and cannot fail.
                        let tid = i64::from(unsafe { libc::gettid() });
                        let _ = tx.send(Ok((addr, tid)));
                        let _ = task.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(anyhow::anyhow!("dns bind: {e}")));
                    }
                }
            });
        })
        .context("dns server thread")?;
    let (addr, server_tid) = rx
        .recv_timeout(Duration::from_secs(10))
        .context("the DNS server did not start")??;
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads = 2;
    let window = 32;
    let mut handles = Vec::new();
    for t in 0..threads {
        let answered = answered.clone();
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || -> std::io::Result<()> {
            let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
            sock.connect(addr)?;
            sock.set_read_timeout(Some(Duration::from_millis(200)))?;
            let mut buf = [0u8; 1500];
            let mut i = t * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..window {
                    let name = format!("svc-{}.bench.svc.cluster.local", i % zone_size);
                    sock.send(&bosun_net::dns::wire::query(i as u16, &name, 1))?;
                    i += 1;
                }
                for _ in 0..window {
                    match sock.recv(&mut buf) {
                        Ok(n) if n > 12 => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }
            Ok(())
        }));
    }
    let t = Instant::now();
    let cpu0 = thread_cpu(server_tid);
    let n0 = answered.load(Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    let n = answered.load(Ordering::Relaxed) - n0;
    let cpu = thread_cpu(server_tid)
        .zip(cpu0)
        .map(|(b, a)| b.saturating_sub(a).as_secs_f64());
    let seconds = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    Ok(Dns {
        qps: n as f64 / seconds,
        answered: n,
        seconds,
        client_threads: threads,
        server_cpu_seconds: cpu,
        qps_per_core: cpu.filter(|c| *c > 0.0).map(|c| n as f64 / c),
    })
}
