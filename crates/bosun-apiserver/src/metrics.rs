//! Prometheus metrics: requests by verb, resource and code, request latency histograms,
//! open watches, and store operation latency. Every label is a `&'static str`, so
//! recording one request allocates nothing.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use parking_lot::Mutex;

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    latency: BTreeMap<(&'static str, &'static str), Histogram>,
    watches: BTreeMap<&'static str, i64>,
    store: BTreeMap<&'static str, Histogram>,
}

/// The server's metrics registry.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn observe(&self, verb: &'static str, resource: &'static str, code: u16, d: Duration) {
        let mut g = self.inner.lock();
        *g.requests.entry((verb, resource, code)).or_default() += 1;
        g.latency
            .entry((verb, resource))
            .or_default()
            .observe(d.as_secs_f64());
    }
    pub fn observe_store(&self, op: &'static str, d: Duration) {
        self.inner
            .lock()
            .store
            .entry(op)
            .or_default()
            .observe(d.as_secs_f64());
    }
    pub fn watch_started(&self, resource: &'static str) {
        *self.inner.lock().watches.entry(resource).or_default() += 1;
    }
    pub fn watch_ended(&self, resource: &'static str) {
        *self.inner.lock().watches.entry(resource).or_default() -= 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let g = self.inner.lock();
        let mut s = String::new();
        let _ = writeln!(s, "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, resource and HTTP response code.");
        let _ = writeln!(s, "# TYPE apiserver_request_total counter");
        for ((verb, res, code), n) in &g.requests {
            let _ = writeln!(
                s,
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{res}\",code=\"{code}\"}} {n}"
            );
        }
        let _ = writeln!(s, "# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb and resource.");
        let _ = writeln!(s, "# TYPE apiserver_request_duration_seconds histogram");
        for ((verb, res), h) in &g.latency {
            write_histogram(
                &mut s,
                "apiserver_request_duration_seconds",
                &format!("verb=\"{verb}\",resource=\"{res}\""),
                h,
            );
        }
        let _ = writeln!(s, "# HELP apiserver_longrunning_requests Gauge of all active long-running apiserver requests (watches).");
        let _ = writeln!(s, "# TYPE apiserver_longrunning_requests gauge");
        for (res, n) in &g.watches {
            let _ = writeln!(
                s,
                "apiserver_longrunning_requests{{verb=\"WATCH\",resource=\"{res}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP bosun_store_operation_duration_seconds Store operation latency in seconds."
        );
        let _ = writeln!(s, "# TYPE bosun_store_operation_duration_seconds histogram");
        for (op, h) in &g.store {
            write_histogram(
                &mut s,
                "bosun_store_operation_duration_seconds",
                &format!("operation=\"{op}\""),
                h,
            );
        }
        s
    }
}

fn write_histogram(s: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (i, b) in BUCKETS.iter().enumerate() {
        let _ = writeln!(
            s,
            "{name}_bucket{{{labels},le=\"{b}\"}} {}",
            h.counts.get(i).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(s, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(s, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(s, "{name}_count{{{labels}}} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe("POST", "pods", 201, Duration::from_millis(3));
        m.watch_started("pods");
        let out = m.render();
        assert!(
            out.contains("apiserver_request_total{verb=\"POST\",resource=\"pods\",code=\"201\"} 1")
        );
        assert!(out.contains("apiserver_request_duration_seconds_bucket{verb=\"POST\",resource=\"pods\",le=\"0.005\"} 1"));
        assert!(out.contains("apiserver_longrunning_requests{verb=\"WATCH\",resource=\"pods\"} 1"));
    }
}
