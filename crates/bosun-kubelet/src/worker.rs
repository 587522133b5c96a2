//! One pod worker per pod (upstream `pod_workers.go` + `kuberuntime_manager.go`): a task that
//! owns the pod's sandbox and containers and moves the pod through its lifecycle.
//!
//! ```text
//!  Syncing ──(deletionTimestamp)──▶ Terminating ──▶ Terminated ──▶ (pod deleted, worker ends)
//!     │                               ▲
//!     └──────────(pod gone from the API)┘
//! ```
//!
//! While syncing, every tick (a second, or at once when the pod changes or a probe result
//! changes) it: ensures the sandbox and volumes, runs init containers in order, starts or
//! restarts containers under the restart policy with upstream's back-off (10 s doubling to
//! 5 min; the first restart is immediate), kills containers whose liveness or startup probe
//! failed, and publishes the pod status when it changed. Container ids and attempts live in
//! the runtime's container labels, so a restarted agent adopts running containers with their
//! restart counts.
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_runtime::cgroup::{pod_cgroup_path, QosClass, Resources};
use bosun_runtime::sandbox::Sandbox;
use bosun_runtime::spec::{ContainerConfig, ContainerSpec, DEFAULT_CAPABILITIES};
use bosun_runtime::{ContainerState, Status};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::events::{self, NORMAL, WARNING};
use crate::probe::{self, ProbeState};
use crate::status;
use crate::volumes::{self, Volumes};
use crate::{envvars, Ctx, PodEntry};

/// Labels on every container the kubelet creates (as the CRI's `io.kubernetes.*` labels).
pub(crate) const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub(crate) const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub(crate) const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub(crate) const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// The container's restart count when it was created.
pub(crate) const LABEL_ATTEMPT: &str = "io.bosun.container.attempt";

/// Upstream's crash-loop back-off: 10 s initial, doubled, capped at 5 min.
const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A container that ran this long resets its back-off (upstream: 2 × the cap).
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// Image pulls back off the same way.
const PULL_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// Upstream's minimum grace period for a kill.
const MIN_GRACE: Duration = Duration::from_secs(2);
/// How often configMap, secret and downwardAPI volumes are rewritten.
const VOLUME_REFRESH: Duration = Duration::from_secs(60);

/// What the pod manager tells a worker.
#[derive(Debug, Clone)]
pub(crate) enum Update {
    Pod(Arc<Pod>),
    /// The pod is gone from the API (force-deleted, or deleted while the agent was down).
    Gone,
}

/// A runtime container found on disk when the agent started.
pub(crate) type Adopted = (ContainerState, ContainerConfig);

#[derive(Debug, Clone)]
struct Attempt {
    id: String,
    n: u32,
    image_id: String,
}

#[derive(Default)]
struct CState {
    current: Option<Attempt>,
    previous: Option<Attempt>,
    /// (delay, last restart): the crash-loop back-off.
    backoff: Option<(Duration, Instant)>,
    /// Why no container could be created (image, config): (reason, message).
    waiting: Option<(String, String)>,
    /// (delay, last failure): the image pull back-off.
    pull_backoff: Option<(Duration, Instant)>,
    last_backoff_event: Option<Instant>,
    /// Probe results of the current container, and the tasks producing them.
    probes: Option<(String, Arc<ProbeState>, Vec<tokio::task::AbortHandle>)>,
    /// A liveness kill was sent to the current container.
    killing: bool,
}

impl CState {
    fn stop_probes(&mut self) {
        if let Some((_, _, handles)) = self.probes.take() {
            for h in handles {
                h.abort();
            }
        }
    }
}

struct Worker {
    ctx: Arc<Ctx>,
    uid: String,
    pod: Arc<Pod>,
    cs: BTreeMap<String, CState>,
    sandbox: Option<Sandbox>,
    volumes: Option<Volumes>,
    volumes_at: Option<Instant>,
    volume_error: Option<String>,
    sandbox_error: Option<String>,
    /// The pod cgroup has its limits ([`crate::podcgroup`]); the error while it has not.
    pod_cgroup: Result<(), String>,
    /// The pod's address on the pod network (not for hostNetwork pods).
    pod_ip: Option<std::net::Ipv4Addr>,
    last_status: Value,
    terminal: bool,
    wake: Arc<Notify>,
    /// Where the time went from the worker's start to the first status saying Running.
    trace: Option<StartupTrace>,
}

/// Timestamps of a pod's way to Running, logged once at debug level under the target
/// `bosun_kubelet::startup` (what `bosun bench pods` breaks its startup latency down with).
struct StartupTrace {
    /// Wall clock when the worker started, comparable with the API's timestamps and the
    /// benchmark's clock on the same machine.
    seen_unix_us: u128,
    at: Instant,
    /// (step, milliseconds since the previous mark).
    steps: Vec<(&'static str, f64)>,
    last: Instant,
}

/// When the agent's pod watch delivered a pod (the start of its [`StartupTrace`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    unix_us: u128,
    at: Instant,
}

impl Seen {
    pub(crate) fn now() -> Self {
        Seen {
            unix_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0),
            at: Instant::now(),
        }
    }
}

impl StartupTrace {
    /// A trace from `seen`, with the wait for the worker's first run as its first step.
    fn new(seen: Seen) -> Self {
        let mut t = StartupTrace {
            seen_unix_us: seen.unix_us,
            at: seen.at,
            steps: Vec::new(),
            last: seen.at,
        };
        t.mark("worker");
        t
    }

    fn mark(&mut self, step: &'static str) {
        let now = Instant::now();
        self.steps
            .push((step, now.duration_since(self.last).as_secs_f64() * 1e3));
        self.last = now;
    }
}

fn spec_of(pod: &Pod) -> k8s_openapi::api::core::v1::PodSpec {
    pod.spec.clone().unwrap_or_default()
}

fn pod_key(pod: &Pod) -> (String, String) {
    (
        pod.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

fn qos(pod: &Pod) -> QosClass {
    match bosun_api::strategy::pod_qos_class(&spec_of(pod)) {
        "Guaranteed" => QosClass::Guaranteed,
        "Burstable" => QosClass::Burstable,
        _ => QosClass::BestEffort,
    }
}

fn grace_of(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or(pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30);
    Duration::from_secs(secs.max(0) as u64).max(MIN_GRACE)
}

/// Runs the worker of one pod until the pod is gone; `seen` is when the pod was delivered.
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    pod: Arc<Pod>,
    adopted: Vec<Adopted>,
    mut rx: watch::Receiver<Update>,
    seen: Seen,
) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let mut w = Worker {
        ctx,
        uid,
        pod,
        cs: BTreeMap::new(),
        sandbox: None,
        volumes: None,
        volumes_at: None,
        volume_error: None,
        sandbox_error: None,
        pod_cgroup: Err(String::new()),
        pod_ip: None,
        last_status: pod_status_seed(),
        terminal: false,
        wake: Arc::new(Notify::new()),
        trace: adopted.is_empty().then(|| StartupTrace::new(seen)),
    };
    w.adopt(adopted).await;
    loop {
        let update = rx.borrow_and_update().clone();
        match update {
            Update::Gone => {
                let grace = grace_of(&w.pod);
                w.terminate(grace).await;
                w.cleanup().await;
                return;
            }
            Update::Pod(p) => {
                w.pod = p;
                if w.pod.metadata.deletion_timestamp.is_some() {
                    let grace = grace_of(&w.pod);
                    w.terminate(grace).await;
                    w.publish().await;
                    w.cleanup().await;
                    w.finish_deletion().await;
                    return;
                }
                w.sync().await;
            }
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = w.wake.notified() => {}
            _ = tokio::time::sleep(w.ctx.cfg.sync_period) => {}
        }
    }
}

fn pod_status_seed() -> Value {
    Value::Null
}

impl Worker {
    fn mark(&mut self, step: &'static str) {
        if let Some(t) = &mut self.trace {
            t.mark(step);
        }
    }

    fn name(&self) -> String {
        self.pod.metadata.name.clone().unwrap_or_default()
    }

    fn all_containers(&self) -> Vec<(Container, bool)> {
        let spec = spec_of(&self.pod);
        spec.init_containers
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c, true))
            .chain(spec.containers.into_iter().map(|c| (c, false)))
            .collect()
    }

    fn state(&self, id: &str) -> Option<ContainerState> {
        self.ctx.runtime.state(id).ok()
    }

    fn publish_entry(&self) {
        let mut entry = PodEntry {
            uid: self.uid.clone(),
            containers: HashMap::new(),
        };
        for (name, c) in &self.cs {
            if let Some(a) = &c.current {
                entry.containers.insert(name.clone(), (a.id.clone(), a.n));
            }
        }
        if let Ok(mut pods) = self.ctx.pods.lock() {
            pods.insert(pod_key(&self.pod), entry);
        }
    }

    /// Takes over the containers a previous agent left: per container name, the highest
    /// attempt is current, the one before it previous; older ones are removed.
    async fn adopt(&mut self, adopted: Vec<Adopted>) {
        let mut by_name: BTreeMap<String, Vec<Attempt>> = BTreeMap::new();
        for (st, cfg) in adopted {
            let name = cfg
                .labels
                .get(LABEL_CONTAINER_NAME)
                .cloned()
                .unwrap_or_default();
            let n = cfg
                .labels
                .get(LABEL_ATTEMPT)
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            by_name.entry(name).or_default().push(Attempt {
                id: st.id.clone(),
                n,
                image_id: cfg.image_id.clone(),
            });
        }
        for (name, mut attempts) in by_name {
            attempts.sort_by_key(|a| std::cmp::Reverse(a.n));
            let mut it = attempts.into_iter();
            let pod_name = self.name();
            let cs = self.cs.entry(name.clone()).or_default();
            cs.current = it.next();
            cs.previous = it.next();
            for old in it {
                let rt = self.ctx.runtime.clone();
                let _ = tokio::task::spawn_blocking(move || rt.delete(&old.id, true)).await;
            }
            tracing::info!(pod = %pod_name, container = %name, id = ?cs.current.as_ref().map(|a| &a.id), "adopted container");
        }
        if let Ok(Some(sb)) = self.ctx.runtime.sandbox(&self.uid) {
            self.sandbox = Some(sb);
        }
        self.publish_entry();
    }

    async fn sync(&mut self) {
        if crate::eviction::is_evicted(&self.pod) {
            // Evicted under node pressure: killed at once, and it stays Failed.
            if !self.terminal {
                self.terminate(Duration::ZERO).await;
                self.terminal = true;
            }
            return;
        }
        if self.terminal {
            self.publish().await;
            return;
        }
        let first = self.sandbox.is_none();
        if !self.ensure_sandbox().await {
            self.publish().await;
            return;
        }
        if first {
            self.mark("sandbox");
        }
        let first = self.volumes.is_none() || self.pod_cgroup.is_err();
        if !self.ensure_volumes().await || !self.ensure_pod_cgroup().await {
            self.publish().await;
            return;
        }
        if first {
            self.mark("volumes+cgroup");
        }
        let spec = spec_of(&self.pod);
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let mut init_done = true;
        for c in spec.init_containers.clone().unwrap_or_default() {
            let st = self
                .cs
                .get(&c.name)
                .and_then(|s| s.current.clone())
                .and_then(|a| self.state(&a.id));
            match st {
                None => {
                    self.start_container(&c, 0).await;
                    init_done = false;
                    break;
                }
                Some(s) if matches!(s.status, Status::Created | Status::Running) => {
                    init_done = false;
                    break;
                }
                Some(s) if s.status == Status::Stopped && s.exit_code == Some(0) => continue,
                Some(s) => {
                    init_done = false;
                    if policy != "Never" {
                        self.maybe_restart(&c, &s).await;
                    }
                    break;
                }
            }
        }
        if init_done {
            for c in spec.containers.clone() {
                let cur = self.cs.get(&c.name).and_then(|s| s.current.clone());
                let st = cur.as_ref().and_then(|a| self.state(&a.id));
                match st {
                    None => {
                        self.start_container(&c, cur.map(|a| a.n + 1).unwrap_or(0))
                            .await
                    }
                    Some(s) if s.status == Status::Running => self.check_probes(&c, &s).await,
                    Some(s) if matches!(s.status, Status::Stopped | Status::Unknown) => {
                        if let Some(cs) = self.cs.get_mut(&c.name) {
                            cs.stop_probes();
                        }
                        let restart = match policy.as_str() {
                            "Always" => true,
                            "OnFailure" => s.exit_code != Some(0),
                            _ => false,
                        };
                        if restart {
                            self.maybe_restart(&c, &s).await;
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        self.publish().await;
    }

    async fn ensure_sandbox(&mut self) -> bool {
        if self.sandbox.is_some() {
            return self.ensure_pod_network().await;
        }
        let rt = self.ctx.runtime.clone();
        let uid = self.uid.clone();
        let h = self.hostname();
        let r = tokio::task::spawn_blocking(move || match rt.sandbox(&uid) {
            Ok(Some(sb)) => Ok(sb),
            _ => rt.create_sandbox(&uid, Some(&h)),
        })
        .await;
        match r {
            Ok(Ok(sb)) => {
                self.sandbox = Some(sb);
                self.sandbox_error = None;
                self.write_etc();
                self.ensure_pod_network().await
            }
            Ok(Err(e)) => {
                let msg = format!("Failed to create pod sandbox: {e}");
                if self.sandbox_error.as_deref() != Some(&msg) {
                    events::record(
                        &self.ctx,
                        &self.pod,
                        None,
                        WARNING,
                        "FailedCreatePodSandBox",
                        msg.clone(),
                    );
                }
                self.sandbox_error = Some(msg);
                false
            }
            Err(e) => {
                self.sandbox_error = Some(format!("Failed to create pod sandbox: {e}"));
                false
            }
        }
    }

    /// Creates the pod's cgroup with the pod-level limits before its first container (upstream's
    /// pod container manager `EnsureExists`). Once per worker: an adopted pod gets the same
    /// values again, which the kernel accepts.
    async fn ensure_pod_cgroup(&mut self) -> bool {
        if self.pod_cgroup.is_ok() {
            return true;
        }
        let spec = spec_of(&self.pod);
        let res = crate::podcgroup::pod_resources(&spec, bosun_api::strategy::pod_qos_class(&spec));
        let path = pod_cgroup_path(qos(&self.pod), &self.uid);
        let rt = self.ctx.runtime.clone();
        let r = tokio::task::spawn_blocking(move || rt.cgroups().create(&path, &res))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(e) = &r {
            let msg = format!("Failed to create the pod cgroup: {e}");
            if self.pod_cgroup.as_ref().err() != Some(&msg) {
                events::record(
                    &self.ctx,
                    &self.pod,
                    None,
                    WARNING,
                    "FailedCreatePodContainer",
                    msg.clone(),
                );
            }
            self.pod_cgroup = Err(msg);
            return false;
        }
        self.pod_cgroup = Ok(());
        true
    }

    fn hostname(&self) -> String {
        spec_of(&self.pod)
            .hostname
            .clone()
            .unwrap_or_else(|| self.name())
            .chars()
            .take(63)
            .collect()
    }

    /// The pod's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.
    fn write_etc(&self) {
        let dir = self.ctx.pod_dir(&self.uid);
        let pod_ip = self.pod_ip.map(|ip| ip.to_string());
        if let Err(e) = volumes::write_etc(
            &self.pod,
            &dir,
            &self.hostname(),
            pod_ip.as_deref(),
            &self.ctx.cfg.cluster_dns,
            &self.ctx.cfg.cluster_domain,
        ) {
            tracing::warn!(pod = %self.name(), error = %e.0, "writing /etc files");
        }
    }

    /// Connects the sandbox to the pod network (once; hostNetwork pods and agents without a
    /// pod network need nothing). False, with the reason recorded, while it cannot be done.
    async fn ensure_pod_network(&mut self) -> bool {
        let Some(net) = self.ctx.net.clone() else {
            return true;
        };
        if self.pod_ip.is_some() || spec_of(&self.pod).host_network == Some(true) {
            return true;
        }
        let Some(netns) = self.sandbox.as_ref().map(|s| s.netns()) else {
            return false;
        };
        match net.setup_pod(&self.pod, &self.uid, &netns).await {
            Ok(ip) => {
                self.pod_ip = Some(ip);
                self.sandbox_error = None;
                self.write_etc();
                true
            }
            Err(e) => {
                let msg = format!("Failed to create pod sandbox: {e}");
                if self.sandbox_error.as_deref() != Some(&msg) {
                    events::record(
                        &self.ctx,
                        &self.pod,
                        None,
                        WARNING,
                        "FailedCreatePodSandBox",
                        msg.clone(),
                    );
                }
                self.sandbox_error = Some(msg);
                false
            }
        }
    }

    async fn ensure_volumes(&mut self) -> bool {
        let due = self
            .volumes_at
            .is_none_or(|t| t.elapsed() >= VOLUME_REFRESH);
        if !due && self.volumes.is_some() {
            return true;
        }
        let alloc = self.allocatable();
        let dir = self.ctx.pod_dir(&self.uid);
        let host_ip = self.ctx.node_ip.to_string();
        match volumes::prepare(&self.ctx.client, &self.pod, &dir, &host_ip, &alloc).await {
            Ok(v) => {
                self.volumes = Some(v);
                self.volumes_at = Some(Instant::now());
                self.volume_error = None;
                true
            }
            Err(e) => {
                if self.volume_error.as_deref() != Some(&e.0) {
                    events::record(
                        &self.ctx,
                        &self.pod,
                        None,
                        WARNING,
                        "FailedMount",
                        format!("MountVolume.SetUp failed: {}", e.0),
                    );
                }
                self.volume_error = Some(e.0);
                self.volumes_at = Some(Instant::now());
                // A refresh failure keeps the volumes already set up.
                self.volumes.is_some()
            }
        }
    }

    fn allocatable(&self) -> BTreeMap<String, String> {
        self.ctx.allocatable()
    }

    /// Restarts a stopped container unless it is in crash-loop back-off.
    async fn maybe_restart(&mut self, c: &Container, st: &ContainerState) {
        let name = self.name();
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        let uid = self.uid.clone();
        let Some(cs) = self.cs.get_mut(&c.name) else {
            return;
        };
        let Some(cur) = cs.current.clone() else {
            return;
        };
        let ran = match (&st.started_at, &st.finished_at) {
            (Some(a), Some(b)) => match (
                chrono::DateTime::parse_from_rfc3339(a),
                chrono::DateTime::parse_from_rfc3339(b),
            ) {
                (Ok(a), Ok(b)) => (b - a).to_std().unwrap_or_default(),
                _ => Duration::ZERO,
            },
            _ => Duration::ZERO,
        };
        if ran >= BACKOFF_RESET {
            cs.backoff = None;
        }
        if let Some((delay, since)) = cs.backoff {
            if since.elapsed() < delay {
                let due = cs.last_backoff_event.is_none_or(|t| t.elapsed() >= delay);
                if due {
                    cs.last_backoff_event = Some(Instant::now());
                    events::record(
                        &self.ctx,
                        &self.pod,
                        Some(&c.name),
                        WARNING,
                        "BackOff",
                        format!(
                            "Back-off restarting failed container {} in pod {name}_{ns}({uid})",
                            c.name
                        ),
                    );
                }
                return;
            }
        }
        cs.backoff = Some(match cs.backoff {
            None => (BACKOFF_INITIAL, Instant::now()),
            Some((d, _)) => ((d * 2).min(BACKOFF_MAX), Instant::now()),
        });
        self.start_container(c, cur.n + 1).await;
    }

    /// Kills the container when its liveness or startup probe failed.
    async fn check_probes(&mut self, c: &Container, st: &ContainerState) {
        let netns = if spec_of(&self.pod).host_network == Some(true) {
            None
        } else {
            self.sandbox.as_ref().map(|s| s.netns())
        };
        let has_probes =
            c.liveness_probe.is_some() || c.readiness_probe.is_some() || c.startup_probe.is_some();
        let ctx = self.ctx.clone();
        let pod = self.pod.clone();
        let wake = self.wake.clone();
        let Some(cs) = self.cs.get_mut(&c.name) else {
            return;
        };
        if cs.probes.as_ref().is_none_or(|p| p.0 != st.id) {
            cs.stop_probes();
            cs.killing = false;
            let state = Arc::new(ProbeState::default());
            let env = ctx
                .runtime
                .config(&st.id)
                .map(|c| c.env)
                .unwrap_or_default();
            let cname = c.name.clone();
            let (ctx2, pod2) = (ctx.clone(), pod.clone());
            let handles = probe::start(
                probe::Target {
                    pid: st.pid,
                    env,
                    netns,
                    container: c.clone(),
                },
                state.clone(),
                wake,
                Arc::new(move |_kind, msg| {
                    events::record(&ctx2, &pod2, Some(&cname), WARNING, "Unhealthy", msg);
                }),
            );
            let _ = has_probes;
            cs.probes = Some((st.id.clone(), state, handles));
        }
        let Some((_, ps, _)) = &cs.probes else { return };
        if ps.failed.load(Ordering::SeqCst) && !cs.killing {
            cs.killing = true;
            let msg = ps.failure.lock().map(|m| m.clone()).unwrap_or_default();
            events::record(&ctx, &pod, Some(&c.name), NORMAL, "Killing", msg);
            let grace = Duration::from_secs(
                spec_of(&pod)
                    .termination_grace_period_seconds
                    .unwrap_or(30)
                    .max(0) as u64,
            )
            .max(MIN_GRACE);
            let rt = ctx.runtime.clone();
            let id = st.id.clone();
            let netns = (spec_of(&pod).host_network != Some(true))
                .then(|| self.sandbox.as_ref().map(|s| s.netns()))
                .flatten();
            tokio::spawn(async move {
                let ids = vec![id];
                let grace = crate::hooks::pre_stop(&ctx, &pod, netns, &ids, grace).await;
                kill_gracefully(rt, ids, grace).await
            });
        }
    }

    /// Checks the image, builds the container's spec, creates and starts it (attempt `n`).
    async fn start_container(&mut self, c: &Container, n: u32) {
        let image = c.image.clone().unwrap_or_default();
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| "IfNotPresent".into());
        // Off the async threads: the image store takes a file lock an image pull or GC may hold.
        let rt = self.ctx.runtime.clone();
        let img = image.clone();
        let present = tokio::task::spawn_blocking(move || rt.images().exists(&img))
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or(false);
        if !present {
            if !self.image_missing(c, &image, &policy).await {
                return;
            }
        } else {
            events::record(
                &self.ctx,
                &self.pod,
                Some(&c.name),
                NORMAL,
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            );
        }
        self.mark("image");
        let spec = match self.container_spec(c, n).await {
            Ok(s) => s,
            Err(msg) => {
                self.set_waiting(c, "CreateContainerConfigError", &msg);
                events::record(
                    &self.ctx,
                    &self.pod,
                    Some(&c.name),
                    WARNING,
                    "Failed",
                    format!("Error: {msg}"),
                );
                return;
            }
        };
        self.mark("config");
        let rt = self.ctx.runtime.clone();
        let id = spec.id.clone();
        let created = tokio::task::spawn_blocking(move || rt.create(&spec)).await;
        self.mark("create");
        match created {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let msg = e.to_string();
                self.set_waiting(c, "CreateContainerError", &msg);
                events::record(
                    &self.ctx,
                    &self.pod,
                    Some(&c.name),
                    WARNING,
                    "Failed",
                    format!("Error: {msg}"),
                );
                return;
            }
            Err(e) => {
                self.set_waiting(c, "CreateContainerError", &e.to_string());
                return;
            }
        }
        events::record(
            &self.ctx,
            &self.pod,
            Some(&c.name),
            NORMAL,
            "Created",
            format!("Created container: {}", c.name),
        );
        let image_id = self
            .ctx
            .runtime
            .config(&id)
            .map(|c| c.image_id)
            .unwrap_or_default();
        {
            let cs = self.cs.entry(c.name.clone()).or_default();
            cs.stop_probes();
            cs.killing = false;
            cs.waiting = None;
            cs.pull_backoff = None;
            let old = cs.previous.take();
            cs.previous = cs.current.take();
            cs.current = Some(Attempt {
                id: id.clone(),
                n,
                image_id,
            });
            if let Some(old) = old {
                let rt = self.ctx.runtime.clone();
                tokio::task::spawn_blocking(move || rt.delete(&old.id, true));
            }
        }
        self.publish_entry();
        let rt = self.ctx.runtime.clone();
        let id2 = id.clone();
        let started = tokio::task::spawn_blocking(move || rt.start(&id2)).await;
        self.mark("start");
        match started {
            Ok(Ok(())) => {
                events::record(
                    &self.ctx,
                    &self.pod,
                    Some(&c.name),
                    NORMAL,
                    "Started",
                    format!("Started container {}", c.name),
                );
                let netns = (spec_of(&self.pod).host_network != Some(true))
                    .then(|| self.sandbox.as_ref().map(|s| s.netns()))
                    .flatten();
                let grace = grace_of(&self.pod);
                crate::hooks::post_start(&self.ctx, &self.pod, c, &id, netns, grace).await;
            }
            Ok(Err(e)) => {
                events::record(
                    &self.ctx,
                    &self.pod,
                    Some(&c.name),
                    WARNING,
                    "Failed",
                    format!("Error: {e}"),
                );
            }
            Err(e) => tracing::warn!(error = %e, "start task failed"),
        }
    }

    fn set_waiting(&mut self, c: &Container, reason: &str, msg: &str) {
        let cs = self.cs.entry(c.name.clone()).or_default();
        cs.waiting = Some((reason.to_string(), msg.to_string()));
    }

    /// The image is not on the node: Never → ErrImageNeverPull; otherwise a pull from its
    /// registry (when this node pulls) → Pulled, or ErrImagePull then ImagePullBackOff while
    /// backing off. Returns whether the image is now present.
    async fn image_missing(&mut self, c: &Container, image: &str, policy: &str) -> bool {
        let ctx = self.ctx.clone();
        let pod = self.pod.clone();
        let cs = self.cs.entry(c.name.clone()).or_default();
        if policy == "Never" {
            let msg =
                format!("Container image \"{image}\" is not present with pull policy of Never");
            if cs.waiting.as_ref().map(|w| w.0.as_str()) != Some("ErrImageNeverPull") {
                events::record(
                    &ctx,
                    &pod,
                    Some(&c.name),
                    WARNING,
                    "ErrImageNeverPull",
                    msg.clone(),
                );
            }
            cs.waiting = Some(("ErrImageNeverPull".into(), msg));
            return false;
        }
        let disabled_msg = format!(
            "image \"{image}\" is not present on node {} and this node does not pull images from registries; import it on the node with `bosun image import FILE --name {image}`",
            ctx.cfg.node_name
        );
        let last_msg = cs
            .waiting
            .as_ref()
            .filter(|w| w.0 == "ErrImagePull" || w.0 == "ImagePullBackOff")
            .map(|w| w.1.clone());
        if let Some((delay, since)) = cs.pull_backoff {
            if since.elapsed() < delay {
                if cs.waiting.as_ref().map(|w| w.0.as_str()) != Some("ImagePullBackOff") {
                    events::record(
                        &ctx,
                        &pod,
                        Some(&c.name),
                        NORMAL,
                        "BackOff",
                        format!("Back-off pulling image \"{image}\""),
                    );
                }
                let why = last_msg
                    .map(|m| {
                        m.split_once("ErrImagePull: ")
                            .map(|x| x.1.to_string())
                            .unwrap_or(m)
                    })
                    .unwrap_or_else(|| disabled_msg.clone());
                cs.waiting = Some((
                    "ImagePullBackOff".into(),
                    format!("Back-off pulling image \"{image}\": ErrImagePull: {why}"),
                ));
                return false;
            }
        }
        events::record(
            &ctx,
            &pod,
            Some(&c.name),
            NORMAL,
            "Pulling",
            format!("Pulling image \"{image}\""),
        );
        let pull_msg = if ctx.cfg.pull_images {
            let store = ctx.runtime.images().clone();
            let (credentials, warnings) = crate::pull_secrets::for_pod(&ctx.client, &pod).await;
            for w in warnings {
                // Upstream's message when some pull secrets cannot be read; the pull goes on.
                events::record(
                    &ctx,
                    &pod,
                    None,
                    WARNING,
                    "FailedToRetrieveImagePullSecret",
                    format!("Unable to retrieve some image pull secrets ({w}); attempting to pull the image may not succeed."),
                );
            }
            let opts = bosun_runtime::image::registry::PullOptions {
                insecure_registries: ctx.cfg.insecure_registries.clone(),
                credentials,
                ..Default::default()
            };
            let started = Instant::now();
            match store.pull(image, &opts).await {
                Ok(_) => {
                    events::record(
                        &ctx,
                        &pod,
                        Some(&c.name),
                        NORMAL,
                        "Pulled",
                        format!(
                            "Successfully pulled image \"{image}\" in {:.3}s",
                            started.elapsed().as_secs_f64()
                        ),
                    );
                    let cs = self.cs.entry(c.name.clone()).or_default();
                    cs.pull_backoff = None;
                    cs.waiting = None;
                    return true;
                }
                Err(e) => e.to_string(),
            }
        } else {
            disabled_msg
        };
        let cs = self.cs.entry(c.name.clone()).or_default();
        events::record(
            &ctx,
            &pod,
            Some(&c.name),
            WARNING,
            "Failed",
            format!("Failed to pull image \"{image}\": {pull_msg}"),
        );
        events::record(
            &ctx,
            &pod,
            Some(&c.name),
            WARNING,
            "Failed",
            "Error: ErrImagePull".into(),
        );
        cs.pull_backoff = Some(match cs.pull_backoff {
            None => (PULL_BACKOFF_INITIAL, Instant::now()),
            Some((d, _)) => ((d * 2).min(BACKOFF_MAX), Instant::now()),
        });
        cs.waiting = Some(("ErrImagePull".into(), pull_msg));
        false
    }

    async fn container_spec(&self, c: &Container, n: u32) -> Result<ContainerSpec, String> {
        let pod = &self.pod;
        let spec = spec_of(pod);
        let host_ip = self.ctx.node_ip.to_string();
        let pod_ip = if spec.host_network == Some(true) {
            Some(host_ip.clone())
        } else {
            self.pod_ip.map(|ip| ip.to_string())
        };
        let src = envvars::Sources::fetch(&self.ctx.client, Some(&self.ctx.services), pod, c)
            .await
            .map_err(|e| e.0)?;
        let env = envvars::build(
            pod,
            c,
            &src,
            &host_ip,
            pod_ip.as_deref(),
            &self.allocatable(),
        )
        .map_err(|e| e.0)?;
        let dir = self.ctx.pod_dir(&self.uid);
        let empty = Volumes::new();
        let mounts = volumes::container_mounts(c, self.volumes.as_ref().unwrap_or(&empty), &dir)
            .map_err(|e| e.0)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut namespaces = self
            .sandbox
            .as_ref()
            .map(|s| s.namespaces())
            .unwrap_or_default();
        // The host's namespaces are the agent's own: pid 1's are not when the node is
        // itself a namespace (the network tests), and may not be open-able at all.
        let own = |kind: &str| Some(format!("/proc/{}/ns/{kind}", std::process::id()).into());
        if spec.host_network == Some(true) {
            namespaces.net = own("net");
            namespaces.uts = own("uts");
        }
        if spec.host_ipc == Some(true) {
            namespaces.ipc = own("ipc");
        }
        let sc = c.security_context.clone().unwrap_or_default();
        let psc = spec.security_context.clone().unwrap_or_default();
        let res = c.resources.clone().unwrap_or_default();
        let q = |m: &Option<
            BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >,
                 k: &str| {
            m.as_ref()
                .and_then(|m| m.get(k))
                .and_then(|q| bosun_api::quantity::Quantity::parse(&q.0).ok())
        };
        let resources = Resources::from_requests_limits(
            q(&res.requests, "cpu").map(|v| v.milli_value().max(0) as u64),
            q(&res.limits, "cpu").map(|v| v.milli_value().max(0) as u64),
            q(&res.limits, "memory").map(|v| v.value()),
        );
        let capabilities = sc.capabilities.as_ref().map(|caps| {
            let norm = |s: &String| {
                let u = s.to_uppercase();
                if u.starts_with("CAP_") {
                    u
                } else {
                    format!("CAP_{u}")
                }
            };
            let drop: Vec<String> = caps.drop.iter().flatten().map(norm).collect();
            let mut set: Vec<String> = if drop.iter().any(|d| d == "CAP_ALL") {
                Vec::new()
            } else {
                DEFAULT_CAPABILITIES
                    .iter()
                    .map(|s| s.to_string())
                    .filter(|s| !drop.contains(s))
                    .collect()
            };
            for a in caps.add.iter().flatten().map(norm) {
                if !set.contains(&a) {
                    set.push(a);
                }
            }
            set
        });
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_POD_UID.to_string(), self.uid.clone());
        labels.insert(LABEL_POD_NAME.to_string(), self.name());
        labels.insert(
            LABEL_POD_NAMESPACE.to_string(),
            pod.metadata.namespace.clone().unwrap_or_default(),
        );
        labels.insert(LABEL_CONTAINER_NAME.to_string(), c.name.clone());
        labels.insert(LABEL_ATTEMPT.to_string(), n.to_string());
        Ok(ContainerSpec {
            id: id.clone(),
            image: c.image.clone().unwrap_or_default(),
            command: envvars::expand_args(&c.command, &env),
            args: envvars::expand_args(&c.args, &env),
            env,
            working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
            run_as_user: sc.run_as_user.or(psc.run_as_user).map(|u| u as u32),
            run_as_group: sc.run_as_group.or(psc.run_as_group).map(|g| g as u32),
            supplemental_groups: psc
                .supplemental_groups
                .iter()
                .flatten()
                .chain(psc.fs_group.iter())
                .map(|g| *g as u32)
                .collect(),
            hostname: None,
            namespaces,
            cgroup_path: Some(format!("{}/{id}", pod_cgroup_path(qos(pod), &self.uid))),
            resources,
            log_path: Some(crate::logs::log_path(&dir, &c.name, n)),
            mounts,
            readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
            privileged: sc.privileged.unwrap_or(false),
            no_new_privileges: sc.allow_privilege_escalation == Some(false),
            capabilities,
            labels,
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
        })
    }

    /// Builds the pod status and writes it when it changed.
    async fn publish(&mut self) {
        let spec = spec_of(&self.pod);
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let init_names: Vec<String> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect();
        let mut init_statuses = Vec::new();
        let mut statuses = Vec::new();
        let mut init_done = true;
        for (c, is_init) in self.all_containers() {
            let s = self.container_status(&c, is_init, &policy, init_done);
            if is_init {
                if s.pointer("/state/terminated/exitCode")
                    .and_then(Value::as_i64)
                    != Some(0)
                {
                    init_done = false;
                }
                init_statuses.push(s);
            } else {
                statuses.push(s);
            }
        }
        let _ = init_names;
        let phase = status::phase(&init_statuses, &statuses, &policy);
        let unready: Vec<String> = statuses
            .iter()
            .filter(|s| s["ready"] != true)
            .map(|s| s["name"].as_str().unwrap_or_default().to_string())
            .collect();
        let uninit: Vec<String> = init_statuses
            .iter()
            .filter(|s| {
                s.pointer("/state/terminated/exitCode")
                    .and_then(Value::as_i64)
                    != Some(0)
            })
            .map(|s| s["name"].as_str().unwrap_or_default().to_string())
            .collect();
        let terminal = phase == "Succeeded" || phase == "Failed";
        let cond = |ty: &str, ok: bool, reason: &str, msg: String| {
            let mut c = json!({"type": ty, "status": if ok { "True" } else { "False" }});
            if !ok && !reason.is_empty() {
                c["reason"] = json!(reason);
                if !msg.is_empty() {
                    c["message"] = json!(msg);
                }
            }
            c
        };
        let ready_reason = if terminal {
            "PodCompleted"
        } else {
            "ContainersNotReady"
        };
        let ready_msg = if terminal {
            String::new()
        } else {
            format!("containers with unready status: [{}]", unready.join(" "))
        };
        let init_reason = if terminal && uninit.is_empty() {
            "PodCompleted"
        } else {
            "ContainersNotInitialized"
        };
        let mut conditions = vec![
            cond(
                "PodReadyToStartContainers",
                self.sandbox.is_some(),
                "",
                String::new(),
            ),
            cond(
                "Initialized",
                uninit.is_empty(),
                init_reason,
                format!("containers with incomplete status: [{}]", uninit.join(" ")),
            ),
            cond(
                "Ready",
                unready.is_empty() && !terminal,
                ready_reason,
                ready_msg.clone(),
            ),
            cond(
                "ContainersReady",
                unready.is_empty() && !terminal,
                ready_reason,
                ready_msg,
            ),
            cond("PodScheduled", true, "", String::new()),
        ];
        let now = crate::node::now();
        let prev_conds = self
            .pod
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(&s.conditions).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        for c in &mut conditions {
            let prev = prev_conds.iter().find(|p| p["type"] == c["type"]);
            c["lastProbeTime"] = Value::Null;
            c["lastTransitionTime"] = match prev {
                Some(p) if p["status"] == c["status"] && p["lastTransitionTime"].is_string() => {
                    p["lastTransitionTime"].clone()
                }
                _ => json!(now),
            };
        }
        let start_time = self
            .pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or_else(|| json!(now));
        let host_ip = self.ctx.node_ip.to_string();
        let mut st = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "startTime": start_time,
            "qosClass": bosun_api::strategy::pod_qos_class(&spec),
            "containerStatuses": statuses,
        });
        if !init_statuses.is_empty() {
            st["initContainerStatuses"] = json!(init_statuses);
        }
        if spec.host_network == Some(true) {
            st["podIP"] = json!(host_ip);
            st["podIPs"] = json!([{"ip": host_ip}]);
        } else if let Some(ip) = self.pod_ip {
            st["podIP"] = json!(ip.to_string());
            st["podIPs"] = json!([{"ip": ip.to_string()}]);
        }
        if let Some(e) = self.sandbox_error.as_ref().or(self.volume_error.as_ref()) {
            if self.sandbox.is_none() || self.volumes.is_none() {
                st["message"] = json!(e);
            }
        }
        // Transition times of conditions are stable, so comparing the whole status is exact.
        let mut cmp = st.clone();
        let mut last = self.last_status.clone();
        for v in [&mut cmp, &mut last] {
            if let Some(cs) = v.get_mut("conditions").and_then(Value::as_array_mut) {
                for c in cs {
                    c.as_object_mut().map(|o| o.remove("lastTransitionTime"));
                }
            }
        }
        if cmp == last {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &pod_key(&self.pod).0);
        match api
            .patch_status(
                &self.name(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": st })),
            )
            .await
        {
            Ok(p) => {
                let running = st.get("phase").and_then(Value::as_str) == Some("Running");
                self.last_status = st;
                self.terminal = terminal;
                self.pod = Arc::new(p);
                if running {
                    if let Some(mut t) = self.trace.take() {
                        t.mark("status");
                        let steps: Vec<String> =
                            t.steps.iter().map(|(k, v)| format!("{k}={v:.1}")).collect();
                        tracing::debug!(
                            target: "bosun_kubelet::startup",
                            pod = %self.name(),
                            seen_unix_us = t.seen_unix_us as u64,
                            total_ms = %format!("{:.1}", t.at.elapsed().as_secs_f64() * 1e3),
                            steps = %steps.join(","),
                            "pod startup trace"
                        );
                    }
                }
            }
            Err(e) => tracing::debug!(pod = %self.name(), error = %e, "pod status update failed"),
        }
    }

    fn container_status(
        &self,
        c: &Container,
        is_init: bool,
        policy: &str,
        init_done: bool,
    ) -> Value {
        let cs = self.cs.get(&c.name);
        let cur = cs.and_then(|s| s.current.clone());
        let st = cur.as_ref().and_then(|a| self.state(&a.id));
        let prev_state = cs
            .and_then(|s| s.previous.as_ref())
            .and_then(|a| self.state(&a.id))
            .map(|s| status::terminated_json(&s));
        let waiting = cs.and_then(|s| s.waiting.clone());
        let (state, last) = match (&st, &waiting) {
            (None, Some((r, m)))
            | (
                Some(ContainerState {
                    status: Status::Stopped | Status::Unknown,
                    ..
                }),
                Some((r, m)),
            ) => (
                json!({"waiting": {"reason": r, "message": m}}),
                st.as_ref().map(status::terminated_json).or(prev_state),
            ),
            (None, None) => {
                let reason = if !is_init && !init_done {
                    "PodInitializing"
                } else {
                    "ContainerCreating"
                };
                (json!({"waiting": {"reason": reason}}), prev_state)
            }
            (Some(s), _) if matches!(s.status, Status::Stopped | Status::Unknown) => {
                let restart = !self.terminal
                    && match policy {
                        "Always" => !is_init,
                        "Never" => false,
                        _ => s.exit_code != Some(0),
                    }
                    || (is_init && policy != "Never" && s.exit_code != Some(0));
                let backing_off = cs
                    .and_then(|c| c.backoff)
                    .is_some_and(|(d, since)| since.elapsed() < d);
                if restart && backing_off {
                    let d = cs.and_then(|c| c.backoff).map(|b| b.0).unwrap_or_default();
                    let msg = format!(
                        "back-off {}s restarting failed container={} pod={}_{}({})",
                        d.as_secs(),
                        c.name,
                        self.name(),
                        pod_key(&self.pod).0,
                        self.uid
                    );
                    (
                        json!({"waiting": {"reason": "CrashLoopBackOff", "message": msg}}),
                        Some(status::terminated_json(s)),
                    )
                } else {
                    (status::terminated_json(s), prev_state)
                }
            }
            (Some(s), _) => (status::state_json(s), prev_state),
        };
        let running = st.as_ref().is_some_and(|s| s.status == Status::Running);
        let probes = cs
            .and_then(|s| s.probes.as_ref())
            .filter(|p| Some(&p.0) == cur.as_ref().map(|a| &a.id));
        let started = running && probes.is_none_or(|p| p.1.started.load(Ordering::SeqCst));
        let ready = running
            && if c.readiness_probe.is_some() {
                probes.is_some_and(|p| p.1.ready.load(Ordering::SeqCst))
            } else {
                started
            };
        let mut out = json!({
            "name": c.name,
            "state": state,
            "lastState": last.unwrap_or_else(|| json!({})),
            "ready": ready && !is_init,
            "restartCount": cur.as_ref().map(|a| a.n).unwrap_or(0),
            "image": c.image.clone().unwrap_or_default(),
            "imageID": cur.as_ref().map(|a| a.image_id.clone()).unwrap_or_default(),
            "started": started,
        });
        if is_init {
            out["ready"] = json!(st
                .as_ref()
                .is_some_and(|s| s.status == Status::Stopped && s.exit_code == Some(0)));
        }
        if let Some(a) = &cur {
            out["containerID"] = json!(status::container_id(&a.id));
        }
        out
    }

    /// SIGTERM to every live container, SIGKILL after `grace`.
    async fn terminate(&mut self, grace: Duration) {
        let mut ids = Vec::new();
        let pod = self.pod.clone();
        for (name, cs) in self.cs.iter_mut() {
            cs.stop_probes();
            if let Some(a) = &cs.current {
                if let Ok(st) = self.ctx.runtime.state(&a.id) {
                    if matches!(st.status, Status::Running | Status::Created) {
                        events::record(
                            &self.ctx,
                            &pod,
                            Some(name),
                            NORMAL,
                            "Killing",
                            format!("Stopping container {name}"),
                        );
                        ids.push(a.id.clone());
                    }
                }
            }
        }
        let netns = (spec_of(&self.pod).host_network != Some(true))
            .then(|| self.sandbox.as_ref().map(|s| s.netns()))
            .flatten();
        let grace = crate::hooks::pre_stop(&self.ctx, &self.pod, netns, &ids, grace).await;
        kill_gracefully(self.ctx.runtime.clone(), ids, grace).await;
    }

    /// Removes the pod's containers, sandbox, volumes, cgroup and directory.
    async fn cleanup(&mut self) {
        let mut ids = Vec::new();
        for cs in self.cs.values_mut() {
            cs.stop_probes();
            ids.extend(cs.current.take().map(|a| a.id));
            ids.extend(cs.previous.take().map(|a| a.id));
        }
        if let Some(net) = &self.ctx.net {
            if spec_of(&self.pod).host_network != Some(true) {
                net.teardown_pod(&self.uid).await;
            }
        }
        self.pod_ip = None;
        let rt = self.ctx.runtime.clone();
        let uid = self.uid.clone();
        let dir = self.ctx.pod_dir(&self.uid);
        let cg = pod_cgroup_path(qos(&self.pod), &self.uid);
        let r = tokio::task::spawn_blocking(move || {
            for id in ids {
                if let Err(e) = rt.delete(&id, true) {
                    tracing::warn!(container = %id, error = %e, "removing container");
                }
            }
            if rt.sandbox(&uid).ok().flatten().is_some() {
                if let Err(e) = rt.remove_sandbox(&uid) {
                    tracing::warn!(pod_uid = %uid, error = %e, "removing sandbox");
                }
            }
            let _ = rt.cgroups().remove(&cg);
            volumes::teardown(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        })
        .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "cleanup task failed");
        }
        self.sandbox = None;
        if let Ok(mut pods) = self.ctx.pods.lock() {
            pods.remove(&pod_key(&self.pod));
        }
    }

    /// Deletes the pod object for good (grace 0, uid precondition), as the kubelet's status
    /// manager does once its containers are gone.
    async fn finish_deletion(&self) {
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &pod_key(&self.pod).0);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        if let Err(e) = api.delete(&self.name(), &dp).await {
            tracing::debug!(pod = %self.name(), error = %e, "final pod deletion");
        }
    }
}

/// SIGTERM to `ids`, then SIGKILL to whatever still runs after `grace`.
pub(crate) async fn kill_gracefully(
    rt: Arc<bosun_runtime::Runtime>,
    ids: Vec<String>,
    grace: Duration,
) {
    if ids.is_empty() {
        return;
    }
    for id in &ids {
        let _ = rt.kill(id, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let alive = |rt: &bosun_runtime::Runtime, id: &str| {
        rt.state(id)
            .is_ok_and(|s| matches!(s.status, Status::Running | Status::Created))
    };
    while Instant::now() < deadline && ids.iter().any(|id| alive(&rt, id)) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        if alive(&rt, id) {
            let _ = rt.kill(id, libc::SIGKILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && ids.iter().any(|id| alive(&rt, id)) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
