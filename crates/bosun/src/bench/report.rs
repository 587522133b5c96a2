//! The benchmark's result: every figure per backend, the targets with a verdict each, and
//! the machine; printed as a table or serialized as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::machine::Machine;
use super::scenarios::{Creates, Fanout, Gets, List};
use super::server::Memory;

/// The sizes the run used.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    pub pods: usize,
    pub watchers: usize,
    pub clients: Vec<usize>,
    pub gets: usize,
    pub get_callers: usize,
    pub get_connections: usize,
    pub watch_connections: usize,
    pub watch_writes: usize,
    pub list_runs: usize,
    pub baseline_inserts: usize,
}

/// The targets of the issue.
#[derive(Debug, Serialize)]
pub struct Targets {
    pub creates_per_sec: f64,
    pub create_p99_ms: f64,
    pub gets_per_sec: f64,
    pub fanout_p99_ms: f64,
    pub rss_mib: f64,
    /// The pod count the RSS target is stated for.
    pub rss_at_pods: usize,
}

const TARGETS: Targets = Targets {
    creates_per_sec: 5_000.0,
    create_p99_ms: 50.0,
    gets_per_sec: 30_000.0,
    fanout_p99_ms: 100.0,
    rss_mib: 300.0,
    rss_at_pods: 10_000,
};

/// Everything measured against one server (one store backend).
#[derive(Debug, Serialize)]
pub struct Backend {
    pub server_pid: u32,
    /// Durable writes per second of the bare store, for the ratio.
    pub raw_store_per_sec: Option<f64>,
    pub raw_store_what: String,
    pub creates: Vec<Creates>,
    pub gets: Option<Gets>,
    pub lists: Vec<List>,
    pub fanout: Option<Fanout>,
    pub rss_idle: Option<Memory>,
    pub rss_at_pods: Option<Memory>,
    pub rss_after_lists: Option<Memory>,
    pub rss_end: Option<Memory>,
    pub cpu: Vec<PhaseCpu>,
    /// Why the run stopped early.
    pub error: Option<String>,
    pub server_log_tail: Option<String>,
}

impl Backend {
    pub fn new(server_pid: u32) -> Backend {
        Backend {
            server_pid,
            raw_store_per_sec: None,
            raw_store_what: String::new(),
            creates: Vec::new(),
            gets: None,
            lists: Vec::new(),
            fanout: None,
            rss_idle: None,
            rss_at_pods: None,
            rss_after_lists: None,
            rss_end: None,
            cpu: Vec::new(),
            error: None,
            server_log_tail: None,
        }
    }

    /// The create level that meets the latency target with the highest rate, else the
    /// fastest one.
    fn best_creates(&self) -> Option<&Creates> {
        let clean = |c: &&Creates| c.failures.count == 0;
        let by_rate = |a: &&Creates, b: &&Creates| a.per_sec.total_cmp(&b.per_sec);
        self.creates
            .iter()
            .filter(clean)
            .filter(|c| c.latency.p99_ms <= TARGETS.create_p99_ms)
            .max_by(by_rate)
            .or_else(|| self.creates.iter().filter(clean).max_by(by_rate))
    }

    /// The resident memory with all pods present: the larger of right after the creates
    /// and after the LISTs (whose buffers may stay with the allocator).
    fn rss_loaded(&self) -> Option<f64> {
        [self.rss_at_pods, self.rss_after_lists]
            .iter()
            .flatten()
            .map(|m| m.rss_mib)
            .max_by(f64::total_cmp)
    }
}

/// CPU spent on one phase by the server and by the benchmark client (which share the
/// machine's cores).
#[derive(Debug, Serialize)]
pub struct PhaseCpu {
    pub phase: String,
    pub ops: usize,
    pub wall_s: f64,
    pub server_cpu_s: f64,
    pub client_cpu_s: f64,
    pub server_us_per_op: f64,
    pub client_us_per_op: f64,
    /// Cores the server kept busy on average.
    pub server_cores: f64,
}

/// One target and whether the run met it.
#[derive(Debug, Serialize)]
pub struct Verdict {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub client: &'static str,
    pub sizes: Sizes,
    pub targets: Targets,
    pub verdicts: Vec<Verdict>,
    pub sqlite: Backend,
    pub etcd: Option<Backend>,
    /// Why there is no etcd column.
    pub etcd_missing: Option<String>,
}

const CLIENT: &str = "hyper HTTP/2 over TLS with the admin client certificate (as kubectl); \
creates: one connection per client; GETs: callers multiplexed over a few connections; \
watchers: spread over a few connections; server: `bosun server` child process";

impl Report {
    pub fn new(
        machine: Machine,
        sizes: Sizes,
        sqlite: Backend,
        etcd: Result<Backend, String>,
    ) -> Report {
        let verdicts = verdicts(&sqlite, &sizes);
        let (etcd, etcd_missing) = match etcd {
            Ok(b) => (Some(b), None),
            Err(why) => (None, Some(why)),
        };
        Report {
            machine,
            client: CLIENT,
            sizes,
            targets: TARGETS,
            verdicts,
            sqlite,
            etcd,
            etcd_missing,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "bosun bench api  {}  {} CPUs ({}), {:.1} GiB, Linux {}\ndata on {}",
            m.date, m.cpus, m.cpu_model, m.memory_gib, m.kernel, m.filesystem
        );
        let _ = writeln!(
            out,
            "load average before / after: {} / {}",
            m.load_before, m.load_after
        );
        let _ = writeln!(out, "client: {}\n", self.client);
        let mut t = Table::default();
        t.row(["", "embedded SQLite", "etcd", "target"].map(String::from));
        let e = self.etcd.as_ref();
        let s = &self.sqlite;
        t.row([
            "store baseline, durable writes/s".into(),
            opt(s.raw_store_per_sec.map(thousands)),
            opt(e.and_then(|e| e.raw_store_per_sec).map(thousands)),
            String::new(),
        ]);
        for (i, c) in s.creates.iter().enumerate() {
            let ec = e.and_then(|e| e.creates.get(i));
            let ratio = |b: &Backend, c: &Creates| match b.raw_store_per_sec {
                Some(r) if r > 0.0 => format!("{} ({:.1}x)", thousands(c.per_sec), c.per_sec / r),
                _ => thousands(c.per_sec),
            };
            t.row([
                format!("creates/s, {} clients ({} pods)", c.clients, c.pods),
                ratio(s, c),
                opt(e.zip(ec).map(|(b, c)| ratio(b, c))),
                format!("≥ {}", thousands(TARGETS.creates_per_sec)),
            ]);
            t.row([
                "  latency p50 / p99 ms".into(),
                p50_p99(c.latency.p50_ms, c.latency.p99_ms),
                opt(ec.map(|c| p50_p99(c.latency.p50_ms, c.latency.p99_ms))),
                format!("p99 ≤ {}", TARGETS.create_p99_ms),
            ]);
            for (b, c) in [(Some(s), Some(c)), (e, ec)] {
                if let (Some(_), Some(c)) = (b, c) {
                    if c.failures.count > 0 {
                        t.row([
                            "  failed creates".into(),
                            c.failures.count.to_string(),
                            String::new(),
                            String::new(),
                        ]);
                    }
                }
            }
        }
        if let Some(g) = &s.gets {
            t.row([
                format!(
                    "cached GETs/s ({} callers, {} conns)",
                    g.callers, g.connections
                ),
                thousands(g.per_sec),
                String::new(),
                format!("≥ {}", thousands(TARGETS.gets_per_sec)),
            ]);
            t.row([
                "  latency p50 / p99 ms".into(),
                p50_p99(g.latency.p50_ms, g.latency.p99_ms),
                String::new(),
                String::new(),
            ]);
        }
        for l in &s.lists {
            t.row([
                format!("LIST {} pods, {} ms p50 / max", l.items, l.variant),
                format!("{:.0} / {:.0}", l.latency.p50_ms, l.latency.max_ms),
                String::new(),
                String::new(),
            ]);
            t.row([
                "  pages, MiB per LIST".into(),
                format!("{}, {:.1}", l.pages, l.bytes as f64 / (1 << 20) as f64),
                String::new(),
                String::new(),
            ]);
        }
        if let Some(f) = &s.fanout {
            t.row([
                format!(
                    "fan-out to {} watchers ({} conns), ms p50 / p99",
                    f.watchers, f.connections
                ),
                p50_p99(f.after_response.p50_ms, f.after_response.p99_ms),
                String::new(),
                format!("p99 ≤ {}", TARGETS.fanout_p99_ms),
            ]);
            t.row([
                "  from the write's request, p50 / p99".into(),
                p50_p99(f.after_request.p50_ms, f.after_request.p99_ms),
                String::new(),
                String::new(),
            ]);
            t.row([
                "  first watcher from request, p50 / p99".into(),
                p50_p99(f.first_watcher.p50_ms, f.first_watcher.p99_ms),
                String::new(),
                String::new(),
            ]);
            t.row([
                format!(
                    "  writes timed / incomplete ({} missed events)",
                    f.missed_events
                ),
                format!("{} / {}", f.after_response.samples, f.incomplete_writes),
                String::new(),
                String::new(),
            ]);
        }
        let mem = |m: Option<Memory>| opt(m.map(|m| format!("{:.0}", m.rss_mib)));
        t.row([
            "server RSS MiB, idle".into(),
            mem(s.rss_idle),
            mem(e.and_then(|e| e.rss_idle)),
            String::new(),
        ]);
        t.row([
            format!("  with {} pods", self.sizes.pods),
            mem(s.rss_at_pods),
            mem(e.and_then(|e| e.rss_at_pods)),
            format!(
                "≤ {} at {}",
                TARGETS.rss_mib,
                thousands(TARGETS.rss_at_pods as f64)
            ),
        ]);
        t.row([
            "  after the LISTs".into(),
            mem(s.rss_after_lists),
            String::new(),
            String::new(),
        ]);
        if let Some(f) = &s.fanout {
            t.row([
                format!("  with {} watchers open", f.watchers),
                mem(f.memory_with_watchers),
                String::new(),
                String::new(),
            ]);
        }
        t.row([
            "  peak (VmHWM)".into(),
            opt(s
                .rss_end
                .or(s.rss_after_lists)
                .map(|m| format!("{:.0}", m.peak_mib))),
            opt(e
                .and_then(|e| e.rss_at_pods)
                .map(|m| format!("{:.0}", m.peak_mib))),
            String::new(),
        ]);
        out.push_str(&t.render());
        out.push('\n');
        for (name, b) in [("embedded SQLite", Some(s)), ("etcd", e)] {
            let Some(b) = b.filter(|b| !b.cpu.is_empty()) else {
                continue;
            };
            let mut t = Table::default();
            t.row([
                format!("CPU per op, {name}"),
                "server µs/op".into(),
                "client µs/op".into(),
                "server cores".into(),
            ]);
            for c in &b.cpu {
                t.row([
                    format!("{} ({} ops)", c.phase, c.ops),
                    format!("{:.0}", c.server_us_per_op),
                    format!("{:.0}", c.client_us_per_op),
                    format!("{:.2}", c.server_cores),
                ]);
            }
            out.push_str(&t.render());
            out.push('\n');
        }
        for v in &self.verdicts {
            let _ = writeln!(
                out,
                "[{}] {}: {}",
                if v.met { " met " } else { "MISSED" },
                v.target,
                v.measured
            );
        }
        if let Some(why) = &self.etcd_missing {
            let _ = writeln!(out, "etcd column empty: {why}");
        }
        for (name, b) in [("embedded SQLite", Some(s)), ("etcd", e)] {
            let Some(b) = b else { continue };
            if let Some(err) = &b.error {
                let _ = writeln!(out, "{name} run stopped early: {err}");
                if let Some(log) = &b.server_log_tail {
                    let _ = writeln!(out, "server log:\n{log}");
                }
            }
            for c in &b.creates {
                if let Some(f) = &c.failures.first {
                    let _ = writeln!(out, "{name}: first failed create: {f}");
                }
            }
        }
        out
    }
}

fn verdicts(s: &Backend, sizes: &Sizes) -> Vec<Verdict> {
    let mut v = Vec::new();
    let t = &TARGETS;
    v.push(match s.best_creates() {
        Some(c) => Verdict {
            target: format!(
                "creates ≥ {}/s with p99 ≤ {} ms",
                thousands(t.creates_per_sec),
                t.create_p99_ms
            ),
            measured: format!(
                "best {}/s with p99 {:.1} ms at {} clients",
                thousands(c.per_sec),
                c.latency.p99_ms,
                c.clients
            ),
            met: c.per_sec >= t.creates_per_sec && c.latency.p99_ms <= t.create_p99_ms,
        },
        None => not_measured("creates"),
    });
    v.push(match &s.gets {
        Some(g) => Verdict {
            target: format!("cached GETs ≥ {}/s", thousands(t.gets_per_sec)),
            measured: format!("{}/s", thousands(g.per_sec)),
            met: g.per_sec >= t.gets_per_sec && g.failures.count == 0,
        },
        None => not_measured("cached GETs"),
    });
    v.push(match &s.fanout {
        Some(f) => Verdict {
            target: format!("watch fan-out p99 ≤ {} ms", t.fanout_p99_ms),
            measured: format!(
                "p99 {:.1} ms to the last of {} watchers, {} of {} writes incomplete",
                f.after_response.p99_ms, f.watchers, f.incomplete_writes, f.writes
            ),
            met: f.after_response.p99_ms <= t.fanout_p99_ms
                && f.incomplete_writes == 0
                && f.after_response.samples > 0,
        },
        None => not_measured("watch fan-out"),
    });
    v.push(match s.rss_loaded() {
        Some(rss) => Verdict {
            target: format!(
                "server RSS ≤ {} MiB at {} pods",
                t.rss_mib,
                thousands(t.rss_at_pods as f64)
            ),
            measured: format!("{rss:.0} MiB at {} pods", thousands(sizes.pods as f64)),
            met: rss <= t.rss_mib,
        },
        None => not_measured("server RSS"),
    });
    v
}

fn not_measured(what: &str) -> Verdict {
    Verdict {
        target: what.to_string(),
        measured: "not measured (the run stopped early)".into(),
        met: false,
    }
}

fn opt(s: Option<String>) -> String {
    s.unwrap_or_else(|| "-".into())
}

fn p50_p99(p50: f64, p99: f64) -> String {
    format!("{p50:.1} / {p99:.1}")
}

/// `12345.6` as `12,346`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Left-aligned first column, right-aligned others.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 4]>,
}

impl Table {
    fn row(&mut self, r: [String; 4]) {
        self.rows.push(r);
    }

    fn render(&self) -> String {
        let mut w = [0usize; 4];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &self.rows {
            let pad = |s: &str, n: usize| " ".repeat(n.saturating_sub(s.chars().count()));
            let _ = write!(out, "{}{}", r[0], pad(&r[0], w[0]));
            for i in 1..4 {
                let _ = write!(out, "  {}{}", pad(&r[i], w[i]), r[i]);
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::default();
        t.row(["a".into(), "1".into(), "22".into(), "".into()]);
        t.row(["long name".into(), "333".into(), "4".into(), "x".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].chars().count(), lines[1].chars().count());
        assert!(lines[1].starts_with("long name"));
    }

    #[test]
    fn best_create_level_prefers_meeting_the_latency_target() {
        let level = |clients, per_sec, p99| Creates {
            clients,
            pods: 10,
            seconds: 1.0,
            per_sec,
            latency: crate::bench::stats::Latency {
                samples: 10,
                p50_ms: 1.0,
                p99_ms: p99,
                max_ms: p99,
            },
            failures: Default::default(),
            names: Vec::new(),
        };
        let mut b = Backend::new(1);
        b.creates = vec![level(8, 4_000.0, 10.0), level(64, 6_000.0, 80.0)];
        assert_eq!(b.best_creates().map(|c| c.clients), Some(8));
        b.creates = vec![level(8, 4_000.0, 90.0), level(64, 6_000.0, 80.0)];
        assert_eq!(b.best_creates().map(|c| c.clients), Some(64));
    }
}
