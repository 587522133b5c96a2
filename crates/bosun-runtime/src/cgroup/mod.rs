//! cgroups: one [`CgroupManager`] trait, a v1 implementation (one hierarchy per controller,
//! as on this machine) and a v2 one (unified hierarchy), both rooted at a directory so tests can
//! point them at a fake cgroup filesystem in a tempdir.
//!
//! Paths are relative to the root, as the kubelet's cgroupfs driver lays them out:
//! `kubepods/pod<uid>` (Guaranteed), `kubepods/burstable/pod<uid>`,
//! `kubepods/besteffort/pod<uid>`, and one child per container.
mod v1;
mod v2;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use v1::CgroupV1;
pub use v2::CgroupV2;

/// The kernel's cgroup interface version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// A pod's quality-of-service class (decides where its cgroup lives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

/// The parent of all pod cgroups (kubelet's `--cgroup-root` default plus `kubepods`).
pub const KUBEPODS: &str = "kubepods";

/// The cgroup path of a pod: `kubepods[/burstable|/besteffort]/pod<uid>`.
pub fn pod_cgroup_path(qos: QosClass, pod_uid: &str) -> String {
    match qos {
        QosClass::Guaranteed => format!("{KUBEPODS}/pod{pod_uid}"),
        QosClass::Burstable => format!("{KUBEPODS}/burstable/pod{pod_uid}"),
        QosClass::BestEffort => format!("{KUBEPODS}/besteffort/pod{pod_uid}"),
    }
}

/// Limits to apply to one cgroup. `None` leaves the kernel's default (unlimited).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// v1 `cpu.shares` (v2 weight derived from it).
    pub cpu_shares: Option<u64>,
    /// CFS quota in µs per period.
    pub cpu_quota_us: Option<i64>,
    /// CFS period in µs; the kubelet's default is 100 ms.
    pub cpu_period_us: Option<u64>,
    pub memory_limit_bytes: Option<i64>,
    pub pids_limit: Option<i64>,
}

/// Kubernetes' minimum and maximum cpu.shares (pkg/kubelet/cm/helpers_linux.go).
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262144;
/// The kubelet's default CFS period (100 ms) and minimum quota (1 ms).
pub const DEFAULT_CPU_PERIOD_US: u64 = 100_000;
const MIN_QUOTA_US: i64 = 1000;

impl Resources {
    /// What the kubelet derives from a container's requests and limits: shares from the CPU
    /// request (or from the limit when only that is set), quota from the CPU limit, the memory
    /// limit as is.
    pub fn from_requests_limits(
        cpu_request_milli: Option<u64>,
        cpu_limit_milli: Option<u64>,
        memory_limit_bytes: Option<i64>,
    ) -> Self {
        let shares_from = cpu_request_milli.or(cpu_limit_milli);
        Resources {
            cpu_shares: Some(milli_to_shares(shares_from.unwrap_or(0))),
            cpu_quota_us: cpu_limit_milli.map(|m| milli_to_quota(m, DEFAULT_CPU_PERIOD_US)),
            cpu_period_us: cpu_limit_milli.map(|_| DEFAULT_CPU_PERIOD_US),
            memory_limit_bytes,
            pids_limit: None,
        }
    }
}

/// `MilliCPUToShares`: 1 CPU = 1024 shares, at least 2.
pub fn milli_to_shares(milli: u64) -> u64 {
    if milli == 0 {
        return MIN_SHARES;
    }
    (milli * 1024 / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// `MilliCPUToQuota`: quota per period, at least 1 ms.
pub fn milli_to_quota(milli: u64, period_us: u64) -> i64 {
    let q = (milli * period_us / 1000) as i64;
    q.max(MIN_QUOTA_US)
}

/// The v2 weight for v1 shares (the formula runc and the kubelet use).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(MIN_SHARES, MAX_SHARES) - 2) * 9999 / 262142
}

/// Usage figures of one cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStats {
    /// Cumulative CPU time in nanoseconds.
    pub cpu_usage_ns: u64,
    pub memory_usage_bytes: u64,
    /// Usage minus inactive file pages: what the kubelet reports and evicts on.
    pub memory_working_set_bytes: u64,
    /// How many times the OOM killer killed a process in this cgroup.
    pub oom_kills: u64,
    pub pids: u64,
}

/// The seam between the runtime and the kernel's cgroup files.
pub trait CgroupManager: Send + Sync + std::fmt::Debug {
    fn version(&self) -> CgroupVersion;
    /// Creates the cgroup (and its parents) and applies `resources`.
    fn create(&self, path: &str, resources: &Resources) -> Result<()>;
    /// Applies `resources` to an existing cgroup.
    fn update(&self, path: &str, resources: &Resources) -> Result<()>;
    /// The `cgroup.procs` files a process writes `0` to, to move itself in.
    fn procs_files(&self, path: &str) -> Vec<PathBuf>;
    /// Moves process `pid` into the cgroup.
    fn add_process(&self, path: &str, pid: i32) -> Result<()> {
        for f in self.procs_files(path) {
            write_file(&f, &pid.to_string())?;
        }
        Ok(())
    }
    /// The processes in the cgroup.
    fn pids(&self, path: &str) -> Result<Vec<i32>>;
    fn stats(&self, path: &str) -> Result<CgroupStats>;
    /// Usage of the whole machine from the root cgroup (cadvisor's `/` container): CPU time
    /// of every task, memory usage and working set (usage − inactive file pages).
    fn node_stats(&self) -> Result<CgroupStats>;
    /// Removes the cgroup; it must have no processes. A missing cgroup is fine.
    fn remove(&self, path: &str) -> Result<()>;
}

/// The manager for the host: v2 if `/sys/fs/cgroup` is the unified hierarchy, else v1.
pub fn detect() -> Box<dyn CgroupManager> {
    detect_at(Path::new("/sys/fs/cgroup"))
}

/// As [`detect`], at another root.
pub fn detect_at(root: &Path) -> Box<dyn CgroupManager> {
    if root.join("cgroup.controllers").exists() {
        Box::new(CgroupV2::new(root))
    } else {
        Box::new(CgroupV1::new(root))
    }
}

/// Checks a relative cgroup path (no `..`, not absolute).
pub(crate) fn check_path(path: &str) -> Result<&str> {
    let p = Path::new(path);
    if p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(Error::Cgroup {
            path: PathBuf::from(path),
            msg: "cgroup paths are relative, without . or ..".into(),
        });
    }
    Ok(path)
}

pub(crate) fn write_file(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|e| Error::Cgroup {
        path: path.to_owned(),
        msg: format!("write {value:?}: {e}"),
    })
}

pub(crate) fn read_file(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::Cgroup {
        path: path.to_owned(),
        msg: format!("read: {e}"),
    })
}

pub(crate) fn read_u64(path: &Path) -> Result<u64> {
    let s = read_file(path)?;
    let t = s.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|e| Error::Cgroup {
        path: path.to_owned(),
        msg: format!("parse {t:?}: {e}"),
    })
}

/// A `key value` line from files like `memory.stat`, `cpu.stat`, `memory.events`.
pub(crate) fn keyed_value(path: &Path, key: &str) -> Result<Option<u64>> {
    let s = read_file(path)?;
    Ok(s.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    }))
}

/// A `Key:   value kB` line of `/proc/meminfo`, in bytes.
pub(crate) fn meminfo_bytes(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>> {
    Ok(read_file(path)?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// rmdir with a few retries: the kernel may still be releasing exiting tasks.
pub(crate) fn rmdir(path: &Path) -> Result<()> {
    for attempt in 0..50 {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 49 => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => {
                return Err(Error::Cgroup {
                    path: path.to_owned(),
                    msg: format!("remove: {e}"),
                })
            }
        }
    }
    Ok(())
}

/// The manager of a given version rooted at `root` (what a container's config recorded).
pub fn manager(version: CgroupVersion, root: &Path) -> Box<dyn CgroupManager> {
    match version {
        CgroupVersion::V1 => Box::new(CgroupV1::new(root)),
        CgroupVersion::V2 => Box::new(CgroupV2::new(root)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_conversions() {
        assert_eq!(milli_to_shares(0), 2);
        assert_eq!(milli_to_shares(1), 2);
        assert_eq!(milli_to_shares(100), 102);
        assert_eq!(milli_to_shares(1000), 1024);
        assert_eq!(milli_to_quota(500, 100_000), 50_000);
        assert_eq!(milli_to_quota(1, 100_000), 1000);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        let r = Resources::from_requests_limits(Some(250), Some(500), Some(64 << 20));
        assert_eq!(r.cpu_shares, Some(256));
        assert_eq!(r.cpu_quota_us, Some(50_000));
        assert_eq!(r.cpu_period_us, Some(100_000));
        let be = Resources::from_requests_limits(None, None, None);
        assert_eq!(be.cpu_shares, Some(2));
        assert_eq!(be.cpu_quota_us, None);
        assert_eq!(
            pod_cgroup_path(QosClass::Burstable, "u1"),
            "kubepods/burstable/podu1"
        );
        assert_eq!(
            pod_cgroup_path(QosClass::Guaranteed, "u1"),
            "kubepods/podu1"
        );
        assert!(check_path("../x").is_err());
        assert!(check_path("/x").is_err());
    }
}
