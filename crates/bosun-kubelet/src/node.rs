//! The node's own object: registration (capacity, allocatable, addresses, nodeInfo, labels),
//! the status loop that keeps conditions honest, and the Lease in `kube-node-lease` renewed
//! every 10 s (upstream's node heartbeat).
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::Ctx;

/// Upstream `corev1.NamespaceNodeLease`.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// The hard eviction thresholds (`--eviction-hard`): they set the pressure conditions and
/// are subtracted from allocatable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    /// `memory.available<100Mi` (upstream default).
    pub memory_available_bytes: u64,
    /// `nodefs.available<10%` (upstream default).
    pub nodefs_available_percent: u64,
}

impl Default for Eviction {
    fn default() -> Self {
        Eviction {
            memory_available_bytes: 100 * 1024 * 1024,
            nodefs_available_percent: 10,
        }
    }
}

impl Eviction {
    /// Parses upstream's `--eviction-hard` form, `memory.available<100Mi,nodefs.available<10%`
    /// (other signals are accepted and ignored).
    pub fn parse(s: &str) -> Result<Eviction, String> {
        let mut e = Eviction::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('<')
                .ok_or_else(|| format!("{part:?}: want signal<quantity"))?;
            match k.trim() {
                "memory.available" => {
                    let q = bosun_api::quantity::Quantity::parse(v.trim())
                        .map_err(|e| format!("{part:?}: {e}"))?;
                    e.memory_available_bytes = q.value().max(0) as u64;
                }
                "nodefs.available" => {
                    e.nodefs_available_percent = v
                        .trim()
                        .strip_suffix('%')
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| format!("{part:?}: want a percentage"))?;
                }
                _ => {}
            }
        }
        Ok(e)
    }
}
/// `pid.available<...`: upstream has no default; we call < 1 % of pid_max pressure.
const PID_PRESSURE_PERCENT: u64 = 1;

/// What the machine has, read from /proc, /sys and the data dir's filesystem.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Machine {
    pub cpus: u64,
    pub memory_bytes: u64,
    pub memory_available_bytes: u64,
    pub disk_bytes: u64,
    pub disk_available_bytes: u64,
    /// (page size name e.g. `2Mi`, total bytes)
    pub hugepages: Vec<(String, u64)>,
    pub pid_max: u64,
    pub pids: u64,
    pub eviction: Eviction,
}

fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

impl Machine {
    pub fn read(data_dir: &Path, eviction: Eviction) -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let (disk, disk_avail) = match nix::sys::statvfs::statvfs(data_dir) {
            Ok(s) => (
                s.blocks() * s.fragment_size(),
                s.blocks_available() * s.fragment_size(),
            ),
            Err(_) => (0, 0),
        };
        let mut hugepages = Vec::new();
        for (dir, name) in [("hugepages-2048kB", "2Mi"), ("hugepages-1048576kB", "1Gi")] {
            let p = Path::new("/sys/kernel/mm/hugepages")
                .join(dir)
                .join("nr_hugepages");
            if let Ok(n) = std::fs::read_to_string(&p) {
                let n: u64 = n.trim().parse().unwrap_or(0);
                let size = if name == "2Mi" { 2 << 20 } else { 1 << 30 };
                hugepages.push((name.to_string(), n * size));
            }
        }
        let pids = std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .bytes()
                            .all(|b| b.is_ascii_digit())
                    })
                    .count() as u64
            })
            .unwrap_or(0);
        Machine {
            cpus: num_cpus(),
            memory_bytes: meminfo_kb(&meminfo, "MemTotal").unwrap_or(0) * 1024,
            memory_available_bytes: meminfo_kb(&meminfo, "MemAvailable").unwrap_or(0) * 1024,
            disk_bytes: disk,
            disk_available_bytes: disk_avail,
            hugepages,
            pid_max: std::fs::read_to_string("/proc/sys/kernel/pid_max")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(32768),
            pids,
            eviction,
        }
    }

    /// Capacity as the kubelet reports it (cadvisor's machine info).
    pub fn capacity(&self, max_pods: u32) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("cpu".into(), self.cpus.to_string());
        m.insert("memory".into(), format!("{}Ki", self.memory_bytes / 1024));
        m.insert(
            "ephemeral-storage".into(),
            format!("{}Ki", self.disk_bytes / 1024),
        );
        m.insert("pods".into(), max_pods.to_string());
        for (name, bytes) in &self.hugepages {
            m.insert(format!("hugepages-{name}"), bytes.to_string());
        }
        m
    }

    /// Capacity minus reservations (none configured) and the hard eviction thresholds, and
    /// minus hugepages from memory, as upstream's `GetNodeAllocatableReservation` does.
    pub fn allocatable(&self, max_pods: u32) -> BTreeMap<String, String> {
        let mut m = self.capacity(max_pods);
        let huge: u64 = self.hugepages.iter().map(|(_, b)| b).sum();
        let mem = self
            .memory_bytes
            .saturating_sub(self.eviction.memory_available_bytes)
            .saturating_sub(huge);
        m.insert("memory".into(), format!("{}Ki", mem / 1024));
        let disk = self.disk_bytes - self.disk_bytes * self.eviction.nodefs_available_percent / 100;
        m.insert("ephemeral-storage".into(), disk.to_string());
        m
    }

    pub fn memory_pressure(&self) -> bool {
        self.memory_bytes > 0 && self.memory_available_bytes < self.eviction.memory_available_bytes
    }

    pub fn disk_pressure(&self) -> bool {
        self.disk_bytes > 0
            && self.disk_available_bytes * 100
                < self.disk_bytes * self.eviction.nodefs_available_percent
    }

    pub fn pid_pressure(&self) -> bool {
        self.pid_max > 0
            && (self.pid_max.saturating_sub(self.pids)) * 100 < self.pid_max * PID_PRESSURE_PERCENT
    }
}

fn num_cpus() -> u64 {
    // The cpus the machine has (not this process's affinity): what cadvisor reports.
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let n = text.lines().filter(|l| l.starts_with("processor")).count() as u64;
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1)
    }
}

pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn micro_now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The first non-loopback IPv4 address of the machine (the kubelet's default node IP).
pub fn default_node_ip() -> IpAddr {
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            // Not `lo` (which holds the cluster DNS address 10.96.0.10 once the network is
            // up) nor the pod bridge (`bosun0`, the pod gateway): after an agent restart
            // either would otherwise come first.
            if a.flags
                .contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK)
                || a.interface_name.starts_with("bosun")
            {
                continue;
            }
            if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
                let ip = sin.ip();
                if !ip.is_loopback() && !ip.is_link_local() {
                    return IpAddr::V4(ip);
                }
            }
        }
    }
    IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

fn condition(ty: &str, pressure: bool, names: [(&str, &str); 2]) -> Value {
    let (reason, message) = if pressure { names[1] } else { names[0] };
    json!({
        "type": ty,
        "status": if pressure { "True" } else { "False" },
        "reason": reason,
        "message": message,
    })
}

/// Conditions in the kubelet's order; `lastTransitionTime` filled from `previous`.
fn conditions(m: &Machine, previous: &[Value]) -> Vec<Value> {
    let mut out = vec![
        condition(
            "MemoryPressure",
            m.memory_pressure(),
            [
                (
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                (
                    "KubeletHasInsufficientMemory",
                    "kubelet has insufficient memory available",
                ),
            ],
        ),
        condition(
            "DiskPressure",
            m.disk_pressure(),
            [
                ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            ],
        ),
        condition(
            "PIDPressure",
            m.pid_pressure(),
            [
                (
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                (
                    "KubeletHasInsufficientPID",
                    "kubelet has insufficient PID available",
                ),
            ],
        ),
        json!({
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
        }),
    ];
    let now = now();
    for c in &mut out {
        let prev = previous.iter().find(|p| p["type"] == c["type"]);
        let since = match prev {
            Some(p) if p["status"] == c["status"] => p["lastTransitionTime"].clone(),
            _ => json!(now),
        };
        c["lastHeartbeatTime"] = json!(now);
        c["lastTransitionTime"] = since;
    }
    out
}

pub(crate) fn node_status(ctx: &Ctx, m: &Machine, previous: &[Value]) -> Value {
    let m = &crate::eviction::with_pressure(ctx, m);
    let cfg = &ctx.cfg;
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let machine_id = std::fs::read_to_string("/etc/machine-id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    json!({
        "capacity": m.capacity(cfg.max_pods),
        "allocatable": m.allocatable(cfg.max_pods),
        "conditions": conditions(m, previous),
        "addresses": [
            {"type": "InternalIP", "address": ctx.node_ip.to_string()},
            {"type": "Hostname", "address": hostname()},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": ctx.kubelet_port}},
        "nodeInfo": {
            "machineID": machine_id,
            "systemUUID": machine_id,
            "bootID": boot_id,
            "kernelVersion": kernel,
            "osImage": os_image(),
            "containerRuntimeVersion": format!("bosun://{}", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": crate::KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": go_arch(),
        },
    })
}

fn node_labels(name: &str) -> Value {
    json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": go_arch(),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": go_arch(),
    })
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Creates the Node (or takes over an existing one of the same name, as a restarted kubelet
/// does) and writes its status.
pub(crate) async fn register(ctx: &Arc<Ctx>) -> Result<()> {
    let name = &ctx.cfg.node_name;
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels(name)},
        "spec": {},
    }))
    .map_err(|e| Error::Config(format!("node object: {e}")))?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(e) if is_status(&e, 409) => {
            nodes
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": node_labels(name)}})),
                )
                .await
                .map_err(Error::api(format!("update node {name}")))?;
        }
        Err(e) => return Err(Error::api(format!("register node {name}"))(e)),
    }
    update_status(ctx).await?;
    let uid = nodes
        .get(name)
        .await
        .map_err(Error::api(format!("get node {name}")))?
        .metadata
        .uid;
    ensure_lease(ctx, uid.as_deref()).await
}

pub(crate) async fn update_status(ctx: &Arc<Ctx>) -> Result<()> {
    let name = &ctx.cfg.node_name;
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let previous: Vec<Value> = match nodes.get_status(name).await {
        Ok(n) => serde_json::to_value(n.status.and_then(|s| s.conditions).unwrap_or_default())
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default(),
        Err(e) => return Err(Error::api(format!("get node {name}"))(e)),
    };
    let data_dir = ctx.cfg.data_dir.clone();
    let ev = ctx.cfg.eviction;
    let m = tokio::task::spawn_blocking(move || Machine::read(&data_dir, ev))
        .await
        .map_err(|e| Error::Config(format!("reading machine info: {e}")))?;
    let status = node_status(ctx, &m, &previous);
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(Error::api(format!("update status of node {name}")))?;
    Ok(())
}

async fn ensure_lease(ctx: &Ctx, node_uid: Option<&str>) -> Result<()> {
    let name = &ctx.cfg.node_name;
    let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), NODE_LEASE_NAMESPACE);
    let mut meta = json!({"name": name, "namespace": NODE_LEASE_NAMESPACE});
    if let Some(uid) = node_uid {
        meta["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}]);
    }
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": ctx.cfg.lease_duration_seconds,
            "renewTime": micro_now(),
        },
    }))
    .map_err(|e| Error::Config(format!("lease object: {e}")))?;
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 409) => renew_lease(ctx).await,
        Err(e) => Err(Error::api(format!("create lease {name}"))(e)),
    }
}

async fn renew_lease(ctx: &Ctx) -> Result<()> {
    let name = &ctx.cfg.node_name;
    let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), NODE_LEASE_NAMESPACE);
    let patch = json!({"spec": {
        "holderIdentity": name,
        "leaseDurationSeconds": ctx.cfg.lease_duration_seconds,
        "renewTime": micro_now(),
    }});
    leases
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(Error::api(format!("renew lease {name}")))
}

/// Renews the Lease every `lease_renew_interval` and writes the node status every
/// `node_status_update_frequency`; errors are logged and retried at the next tick.
pub(crate) async fn heartbeat_loop(ctx: Arc<Ctx>) {
    let mut lease_tick = tokio::time::interval(ctx.cfg.lease_renew_interval);
    let mut status_tick = tokio::time::interval(ctx.cfg.node_status_update_frequency);
    lease_tick.tick().await;
    status_tick.tick().await;
    loop {
        tokio::select! {
            _ = lease_tick.tick() => {
                if let Err(e) = renew_lease(&ctx).await {
                    tracing::warn!(error = %e, "lease renewal failed");
                    if let Err(e) = ensure_lease(&ctx, None).await {
                        tracing::warn!(error = %e, "lease re-creation failed");
                    }
                }
            }
            _ = status_tick.tick() => {
                if let Err(e) = update_status(&ctx).await {
                    tracing::warn!(error = %e, "node status update failed");
                    if let Err(e) = register(&ctx).await {
                        tracing::warn!(error = %e, "node re-registration failed");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocatable_subtracts_eviction_thresholds() {
        let m = Machine {
            cpus: 4,
            memory_bytes: 8 << 30,
            memory_available_bytes: 4 << 30,
            disk_bytes: 100 << 30,
            disk_available_bytes: 50 << 30,
            hugepages: vec![("2Mi".into(), 0)],
            pid_max: 4_000_000,
            pids: 100,
            eviction: Eviction::default(),
        };
        let cap = m.capacity(110);
        assert_eq!(cap["cpu"], "4");
        assert_eq!(cap["pods"], "110");
        assert_eq!(cap["memory"], format!("{}Ki", 8 << 20));
        let alloc = m.allocatable(110);
        assert_eq!(alloc["memory"], format!("{}Ki", (8 << 20) - 100 * 1024));
        assert_eq!(
            alloc["ephemeral-storage"],
            ((100u64 << 30) * 9 / 10).to_string()
        );
        assert!(!m.memory_pressure() && !m.disk_pressure() && !m.pid_pressure());
        let e =
            Eviction::parse("memory.available<200Mi, nodefs.available<5%,imagefs.available<15%")
                .unwrap();
        assert_eq!(e.memory_available_bytes, 200 << 20);
        assert_eq!(e.nodefs_available_percent, 5);
        assert!(Eviction::parse("nodefs.available=5").is_err());
    }

    #[test]
    fn meminfo_parses_exact_keys() {
        let t = "MemTotal:       16000 kB\nMemAvailable:    8000 kB\n";
        assert_eq!(meminfo_kb(t, "MemTotal"), Some(16000));
        assert_eq!(meminfo_kb(t, "MemAvailable"), Some(8000));
        assert_eq!(meminfo_kb(t, "Mem"), None);
    }
}
