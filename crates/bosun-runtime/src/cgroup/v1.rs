//! cgroup v1: one hierarchy per controller (`/sys/fs/cgroup/{cpu,cpuacct,memory,pids}`, or
//! co-mounted like `cpu,cpuacct`); a cgroup exists once in each.
use std::fs;
use std::path::{Path, PathBuf};

use super::{
    check_path, keyed_value, read_pids, read_u64, rmdir, write_file, CgroupManager, CgroupStats,
    CgroupVersion, Resources,
};
use crate::error::{Error, Result};

/// The controllers bosun uses on v1. `cpuset` and `devices` are left out: `cpuset` needs its
/// cpus/mems copied down every level, and device access is decided by the `/dev` we build.
const CONTROLLERS: [&str; 4] = ["cpu", "cpuacct", "memory", "pids"];

#[derive(Debug, Clone)]
pub struct CgroupV1 {
    /// controller → hierarchy mount point.
    mounts: Vec<(&'static str, PathBuf)>,
}

impl CgroupV1 {
    /// Finds each controller's hierarchy under `root` (a directory named after it, or a
    /// co-mounted `a,b` one). Controllers without a hierarchy are skipped.
    pub fn new(root: &Path) -> Self {
        let mut mounts = Vec::new();
        let entries: Vec<String> = fs::read_dir(root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        for c in CONTROLLERS {
            if root.join(c).is_dir() {
                mounts.push((c, root.join(c)));
            } else if let Some(e) = entries.iter().find(|e| e.split(',').any(|p| p == c)) {
                mounts.push((c, root.join(e)));
            }
        }
        Self { mounts }
    }

    fn dir(&self, controller: &str, path: &str) -> Option<PathBuf> {
        self.mounts
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, m)| m.join(path))
    }

    /// Distinct hierarchy directories for `path` (co-mounted controllers share one).
    fn dirs(&self, path: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for (_, m) in &self.mounts {
            let d = m.join(path);
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }
}

impl CgroupManager for CgroupV1 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(&self, path: &str, resources: &Resources) -> Result<()> {
        check_path(path)?;
        for d in self.dirs(path) {
            fs::create_dir_all(&d).map_err(|e| Error::Cgroup {
                path: d.clone(),
                msg: format!("create: {e}"),
            })?;
        }
        self.update(path, resources)
    }

    fn update(&self, path: &str, r: &Resources) -> Result<()> {
        check_path(path)?;
        if let Some(cpu) = self.dir("cpu", path) {
            if let Some(s) = r.cpu_shares {
                write_file(&cpu.join("cpu.shares"), &s.to_string())?;
            }
            if let Some(p) = r.cpu_period_us {
                write_file(&cpu.join("cpu.cfs_period_us"), &p.to_string())?;
            }
            if let Some(q) = r.cpu_quota_us {
                write_file(&cpu.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
        }
        if let (Some(mem), Some(limit)) = (self.dir("memory", path), r.memory_limit_bytes) {
            write_file(&mem.join("memory.limit_in_bytes"), &limit.to_string())?;
            // Swap would let a container use more than its limit; Kubernetes runs without.
            let swap = mem.join("memory.memsw.limit_in_bytes");
            if swap.exists() {
                write_file(&swap, &limit.to_string())?;
            }
        }
        if let (Some(pids), Some(limit)) = (self.dir("pids", path), r.pids_limit) {
            write_file(&pids.join("pids.max"), &limit.to_string())?;
        }
        Ok(())
    }

    fn procs_files(&self, path: &str) -> Vec<PathBuf> {
        self.dirs(path)
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    fn pids(&self, path: &str) -> Result<Vec<i32>> {
        check_path(path)?;
        match self.dirs(path).first() {
            Some(d) => read_pids(&d.join("cgroup.procs")),
            None => Ok(Vec::new()),
        }
    }

    fn stats(&self, path: &str) -> Result<CgroupStats> {
        check_path(path)?;
        let mut s = CgroupStats::default();
        if let Some(acct) = self.dir("cpuacct", path) {
            s.cpu_usage_ns = read_u64(&acct.join("cpuacct.usage"))?;
        }
        if let Some(mem) = self.dir("memory", path) {
            s.memory_usage_bytes = read_u64(&mem.join("memory.usage_in_bytes"))?;
            let inactive =
                keyed_value(&mem.join("memory.stat"), "total_inactive_file")?.unwrap_or(0);
            s.memory_working_set_bytes = s.memory_usage_bytes.saturating_sub(inactive);
            s.oom_kills = keyed_value(&mem.join("memory.oom_control"), "oom_kill")?.unwrap_or(0);
        }
        if let Some(pids) = self.dir("pids", path) {
            s.pids = read_u64(&pids.join("pids.current"))?;
        }
        Ok(s)
    }

    fn node_stats(&self) -> Result<CgroupStats> {
        // The root cgroup of each hierarchy accounts every task of the machine; the root
        // of the pids hierarchy has no `pids.current`.
        let mut s = CgroupStats::default();
        if let Some(acct) = self.dir("cpuacct", "") {
            s.cpu_usage_ns = read_u64(&acct.join("cpuacct.usage"))?;
        }
        if let Some(mem) = self.dir("memory", "") {
            s.memory_usage_bytes = read_u64(&mem.join("memory.usage_in_bytes"))?;
            let inactive =
                keyed_value(&mem.join("memory.stat"), "total_inactive_file")?.unwrap_or(0);
            s.memory_working_set_bytes = s.memory_usage_bytes.saturating_sub(inactive);
        }
        Ok(s)
    }

    fn remove(&self, path: &str) -> Result<()> {
        check_path(path)?;
        for d in self.dirs(path) {
            rmdir(&d)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_v1_files_on_a_fake_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        for c in ["cpu,cpuacct", "memory", "pids"] {
            fs::create_dir(tmp.path().join(c)).unwrap();
        }
        let cg = CgroupV1::new(tmp.path());
        let path = "kubepods/burstable/podx/c1";
        let r = Resources {
            cpu_shares: Some(512),
            cpu_quota_us: Some(20_000),
            cpu_period_us: Some(100_000),
            memory_limit_bytes: Some(1 << 20),
            pids_limit: Some(100),
        };
        cg.create(path, &r).unwrap();
        let cpu = tmp.path().join("cpu,cpuacct").join(path);
        assert_eq!(fs::read_to_string(cpu.join("cpu.shares")).unwrap(), "512");
        assert_eq!(
            fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap(),
            "20000"
        );
        let mem = tmp.path().join("memory").join(path);
        assert_eq!(
            fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap(),
            "1048576"
        );
        assert_eq!(
            cg.procs_files(path).len(),
            3,
            "co-mounted cpu,cpuacct counted once"
        );
        fs::write(cpu.join("cpuacct.usage"), "123\n").unwrap();
        fs::write(mem.join("memory.usage_in_bytes"), "1000\n").unwrap();
        fs::write(
            mem.join("memory.stat"),
            "cache 1\ntotal_inactive_file 300\n",
        )
        .unwrap();
        fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        fs::write(
            tmp.path().join("pids").join(path).join("pids.current"),
            "4\n",
        )
        .unwrap();
        let s = cg.stats(path).unwrap();
        assert_eq!(
            s,
            CgroupStats {
                cpu_usage_ns: 123,
                memory_usage_bytes: 1000,
                memory_working_set_bytes: 700,
                oom_kills: 2,
                pids: 4
            }
        );

        let cpu_root = tmp.path().join("cpu,cpuacct");
        let mem_root = tmp.path().join("memory");
        fs::write(cpu_root.join("cpuacct.usage"), "9000\n").unwrap();
        fs::write(mem_root.join("memory.usage_in_bytes"), "5000\n").unwrap();
        fs::write(
            mem_root.join("memory.stat"),
            "inactive_file 10\ntotal_inactive_file 1200\n",
        )
        .unwrap();
        let n = cg.node_stats().unwrap();
        assert_eq!(n.cpu_usage_ns, 9000);
        assert_eq!(n.memory_usage_bytes, 5000);
        assert_eq!(
            n.memory_working_set_bytes, 3800,
            "the hierarchy's total_inactive_file, not the root's own"
        );
    }
}
