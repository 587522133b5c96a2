//! Probes (upstream `pkg/kubelet/prober`): one task per probe of a running container runs it
//! every `periodSeconds` after `initialDelaySeconds`, counts consecutive results against the
//! thresholds, and publishes the outcome in [`ProbeState`] for the pod worker. Liveness and
//! readiness wait for the startup probe. exec runs the command in the container's namespaces
//! and root (`nsenter`); httpGet and tcpSocket connect from a thread that joined the pod's
//! network namespace (the pod has no routable IP yet, so the host is 127.0.0.1 there).
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::Notify;

/// What the probes of one container found so far.
#[derive(Debug, Default)]
pub(crate) struct ProbeState {
    /// Readiness (true without a readiness probe once started).
    pub ready: AtomicBool,
    /// The startup probe has succeeded (true without one).
    pub started: AtomicBool,
    /// Liveness or startup failed: the container must be restarted.
    pub failed: AtomicBool,
    /// Message of the failure that set `failed`.
    pub failure: Mutex<String>,
}

/// Where and how to probe one container.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Host pid of the container's first process (for exec).
    pub pid: i32,
    /// The container's env (for exec).
    pub env: Vec<String>,
    /// The pod's network namespace; `None` for hostNetwork.
    pub netns: Option<PathBuf>,
    pub container: Container,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }
}

/// Called with (kind, message) for each failed probe (the `Unhealthy` event).
pub(crate) type OnFailure = Arc<dyn Fn(&'static str, String) + Send + Sync>;

/// Starts the probe tasks of a running container; abort the returned handles when the
/// container goes away.
pub(crate) fn start(
    target: Target,
    state: Arc<ProbeState>,
    wake: Arc<Notify>,
    on_failure: OnFailure,
) -> Vec<tokio::task::AbortHandle> {
    let c = &target.container;
    if c.startup_probe.is_none() {
        state.started.store(true, Ordering::SeqCst);
    }
    if c.readiness_probe.is_none() {
        state.ready.store(true, Ordering::SeqCst);
    }
    let mut out = Vec::new();
    for (kind, probe) in [
        (Kind::Startup, c.startup_probe.clone()),
        (Kind::Liveness, c.liveness_probe.clone()),
        (Kind::Readiness, c.readiness_probe.clone()),
    ] {
        if let Some(p) = probe {
            let t = target.clone();
            let s = state.clone();
            let w = wake.clone();
            let f = on_failure.clone();
            out.push(tokio::spawn(worker(kind, p, t, s, w, f)).abort_handle());
        }
    }
    if !out.is_empty() || c.readiness_probe.is_none() {
        wake.notify_one();
    }
    out
}

async fn worker(
    kind: Kind,
    p: Probe,
    target: Target,
    state: Arc<ProbeState>,
    wake: Arc<Notify>,
    on_failure: OnFailure,
) {
    let period = Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64);
    let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
    let success_threshold = p.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = p.failure_threshold.unwrap_or(3).max(1);
    tokio::time::sleep(Duration::from_secs(
        p.initial_delay_seconds.unwrap_or(0).max(0) as u64,
    ))
    .await;
    let (mut successes, mut failures) = (0, 0);
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        if kind != Kind::Startup && !state.started.load(Ordering::SeqCst) {
            continue;
        }
        let result = run(&p, &target, timeout).await;
        match result {
            Ok(()) => {
                successes += 1;
                failures = 0;
            }
            Err(msg) => {
                failures += 1;
                successes = 0;
                on_failure(kind.name(), format!("{} probe failed: {msg}", kind.name()));
            }
        }
        match kind {
            Kind::Startup if successes >= 1 => {
                state.started.store(true, Ordering::SeqCst);
                wake.notify_one();
                return;
            }
            Kind::Readiness => {
                let before = state.ready.load(Ordering::SeqCst);
                let now = if successes >= success_threshold {
                    true
                } else if failures >= failure_threshold {
                    false
                } else {
                    before
                };
                if now != before {
                    state.ready.store(now, Ordering::SeqCst);
                    wake.notify_one();
                }
            }
            Kind::Liveness | Kind::Startup if failures >= failure_threshold => {
                if let Ok(mut m) = state.failure.lock() {
                    *m = format!(
                        "Container {} failed {} probe, will be restarted",
                        target.container.name,
                        kind.name().to_lowercase()
                    );
                }
                state.failed.store(true, Ordering::SeqCst);
                wake.notify_one();
                return;
            }
            _ => {}
        }
    }
}

fn port_of(port: &IntOrString, c: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("no container port named {name:?}")),
    }
}

/// Runs one probe once.
pub(crate) async fn run(p: &Probe, t: &Target, timeout: Duration) -> Result<(), String> {
    if let Some(e) = &p.exec {
        let cmd = e.command.clone().unwrap_or_default();
        if cmd.is_empty() {
            return Err("empty exec command".into());
        }
        let mut c = tokio::process::Command::new("nsenter");
        c.arg("-t")
            .arg(t.pid.to_string())
            .args(["-m", "-u", "-i", "-n", "-p", "-r", "-w", "--"])
            .args(&cmd)
            .env_clear()
            .envs(t.env.iter().filter_map(|kv| kv.split_once('=')))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        return match tokio::time::timeout(timeout, c.output()).await {
            Err(_) => Err(format!("command {cmd:?} timed out")),
            Ok(Err(e)) => Err(format!("running nsenter: {e}")),
            Ok(Ok(out)) if out.status.success() => Ok(()),
            Ok(Ok(out)) => {
                let mut msg = String::from_utf8_lossy(&out.stdout).into_owned();
                msg.push_str(&String::from_utf8_lossy(&out.stderr));
                let msg = msg.trim().to_string();
                Err(if msg.is_empty() {
                    format!(
                        "command {cmd:?} exited with {}",
                        out.status.code().unwrap_or(-1)
                    )
                } else {
                    msg
                })
            }
        };
    }
    let (port, http) = if let Some(h) = &p.http_get {
        (port_of(&h.port, &t.container)?, Some(h.clone()))
    } else if let Some(s) = &p.tcp_socket {
        (port_of(&s.port, &t.container)?, None)
    } else if p.grpc.is_some() {
        return Err("grpc probes are not supported by bosun yet".into());
    } else {
        return Err("probe has no handler".into());
    };
    let host = http
        .as_ref()
        .and_then(|h| h.host.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| {
            p.tcp_socket
                .as_ref()
                .and_then(|s| s.host.clone())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "127.0.0.1".into());
    let netns = t.netns.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| -> Result<(), String> {
            if let Some(ns) = &netns {
                // Only this thread enters the pod's network namespace; it exits afterwards.
                let f =
                    std::fs::File::open(ns).map_err(|e| format!("open {}: {e}", ns.display()))?;
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("enter the pod network namespace: {e}"))?;
            }
            let ip: std::net::IpAddr = host
                .parse()
                .map_err(|_| format!("host {host:?} is not an IP address"))?;
            let addr = SocketAddr::new(ip, port);
            let mut s = TcpStream::connect_timeout(&addr, timeout)
                .map_err(|e| format!("dial tcp {addr}: {e}"))?;
            let Some(h) = http else { return Ok(()) };
            s.set_read_timeout(Some(timeout)).ok();
            s.set_write_timeout(Some(timeout)).ok();
            let path = h.path.clone().unwrap_or_else(|| "/".into());
            let mut req = format!(
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.34\r\nAccept: */*\r\nConnection: close\r\n"
            );
            for hh in h.http_headers.iter().flatten() {
                req.push_str(&format!("{}: {}\r\n", hh.name, hh.value));
            }
            req.push_str("\r\n");
            s.write_all(req.as_bytes())
                .map_err(|e| format!("write to {addr}: {e}"))?;
            let mut buf = [0u8; 512];
            let mut got = Vec::new();
            while !got.windows(2).any(|w| w == b"\r\n") && got.len() < 512 {
                let n = s
                    .read(&mut buf)
                    .map_err(|e| format!("read from {addr}: {e}"))?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let line = String::from_utf8_lossy(&got);
            let code: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("bad HTTP response from {addr}"))?;
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
        })();
        let _ = tx.send(r);
    });
    match tokio::time::timeout(timeout + Duration::from_secs(1), rx).await {
        Ok(Ok(r)) => r,
        _ => Err("probe timed out".into()),
    }
}
