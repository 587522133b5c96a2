//! cgroup v2: one unified hierarchy; controllers are enabled for children through each
//! parent's `cgroup.subtree_control`.
use std::fs;
use std::path::{Path, PathBuf};

use super::{
    check_path, keyed_value, meminfo_bytes, read_file, read_pids, read_u64, rmdir,
    shares_to_weight, write_file, CgroupManager, CgroupStats, CgroupVersion, Resources,
};
use crate::error::{Error, Result};

const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

#[derive(Debug, Clone)]
pub struct CgroupV2 {
    root: PathBuf,
    /// Where the machine's memory figures come from when the root cgroup has no
    /// `memory.current` (it never has on a real v2 root): `/proc/meminfo`.
    meminfo: PathBuf,
}

impl CgroupV2 {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            meminfo: PathBuf::from("/proc/meminfo"),
        }
    }

    /// The same manager reading machine memory from another `meminfo` file (tests).
    pub fn with_meminfo(mut self, path: &Path) -> Self {
        self.meminfo = path.to_owned();
        self
    }

    /// Enables our controllers for the children of `dir`, those the kernel offers there.
    fn enable_controllers(&self, dir: &Path) -> Result<()> {
        let available = read_file(&dir.join("cgroup.controllers")).unwrap_or_default();
        let enabled = read_file(&dir.join("cgroup.subtree_control")).unwrap_or_default();
        let want: Vec<String> = CONTROLLERS
            .iter()
            .filter(|c| available.split_whitespace().any(|a| a == **c))
            .filter(|c| !enabled.split_whitespace().any(|a| a == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if !want.is_empty() {
            write_file(&dir.join("cgroup.subtree_control"), &want.join(" "))?;
        }
        Ok(())
    }
}

impl CgroupManager for CgroupV2 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(&self, path: &str, resources: &Resources) -> Result<()> {
        check_path(path)?;
        let mut dir = self.root.clone();
        for part in Path::new(path).components() {
            self.enable_controllers(&dir)?;
            dir.push(part);
            if !dir.exists() {
                fs::create_dir(&dir).map_err(|e| Error::Cgroup {
                    path: dir.clone(),
                    msg: format!("create: {e}"),
                })?;
            }
        }
        self.update(path, resources)
    }

    fn update(&self, path: &str, r: &Resources) -> Result<()> {
        check_path(path)?;
        let dir = self.root.join(path);
        if let Some(s) = r.cpu_shares {
            write_file(&dir.join("cpu.weight"), &shares_to_weight(s).to_string())?;
        }
        if r.cpu_quota_us.is_some() || r.cpu_period_us.is_some() {
            let quota = match r.cpu_quota_us {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_owned(),
            };
            let period = r.cpu_period_us.unwrap_or(super::DEFAULT_CPU_PERIOD_US);
            write_file(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
        }
        if let Some(m) = r.memory_limit_bytes {
            write_file(&dir.join("memory.max"), &m.to_string())?;
            let swap = dir.join("memory.swap.max");
            if swap.exists() {
                write_file(&swap, "0")?;
            }
        }
        if let Some(p) = r.pids_limit {
            write_file(&dir.join("pids.max"), &p.to_string())?;
        }
        Ok(())
    }

    fn procs_files(&self, path: &str) -> Vec<PathBuf> {
        vec![self.root.join(path).join("cgroup.procs")]
    }

    fn pids(&self, path: &str) -> Result<Vec<i32>> {
        check_path(path)?;
        read_pids(&self.root.join(path).join("cgroup.procs"))
    }

    fn stats(&self, path: &str) -> Result<CgroupStats> {
        check_path(path)?;
        let dir = self.root.join(path);
        let usage = read_u64(&dir.join("memory.current"))?;
        let inactive = keyed_value(&dir.join("memory.stat"), "inactive_file")?.unwrap_or(0);
        Ok(CgroupStats {
            cpu_usage_ns: keyed_value(&dir.join("cpu.stat"), "usage_usec")?.unwrap_or(0) * 1000,
            memory_usage_bytes: usage,
            memory_working_set_bytes: usage.saturating_sub(inactive),
            oom_kills: keyed_value(&dir.join("memory.events"), "oom_kill")?.unwrap_or(0),
            pids: read_u64(&dir.join("pids.current")).unwrap_or(0),
        })
    }

    fn node_stats(&self) -> Result<CgroupStats> {
        // The v2 root has `cpu.stat` but no `memory.current`; like runc's
        // `rootStatsFromMeminfo`, usage is MemTotal − MemFree and the inactive file pages
        // come from the root's `memory.stat` or else from meminfo's `Inactive(file)`.
        let root = &self.root;
        let cpu_usage_ns = keyed_value(&root.join("cpu.stat"), "usage_usec")?.unwrap_or(0) * 1000;
        let current = root.join("memory.current");
        let (usage, mut inactive) = if current.exists() {
            (read_u64(&current)?, None)
        } else {
            let text = read_file(&self.meminfo)?;
            let total = meminfo_bytes(&text, "MemTotal").unwrap_or(0);
            let free = meminfo_bytes(&text, "MemFree").unwrap_or(0);
            (
                total.saturating_sub(free),
                meminfo_bytes(&text, "Inactive(file)"),
            )
        };
        let stat = root.join("memory.stat");
        if stat.exists() {
            if let Some(v) = keyed_value(&stat, "inactive_file")? {
                inactive = Some(v);
            }
        }
        Ok(CgroupStats {
            cpu_usage_ns,
            memory_usage_bytes: usage,
            memory_working_set_bytes: usage.saturating_sub(inactive.unwrap_or(0)),
            oom_kills: 0,
            pids: 0,
        })
    }

    fn remove(&self, path: &str) -> Result<()> {
        check_path(path)?;
        rmdir(&self.root.join(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake v2 tree: plain directories and files stand in for cgroupfs.
    #[test]
    fn writes_v2_files_on_a_fake_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        let cg = super::super::detect_at(root);
        assert_eq!(cg.version(), CgroupVersion::V2);
        let pod = "kubepods/burstable/podabc";
        cg.create(pod, &Resources::default()).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
            "+cpu +memory +pids"
        );
        let path = "kubepods/burstable/podabc/c1";
        let r = Resources::from_requests_limits(Some(1000), Some(500), Some(32 << 20));
        cg.create(path, &r).unwrap();
        let dir = root.join(path);
        assert_eq!(fs::read_to_string(dir.join("cpu.weight")).unwrap(), "39");
        assert_eq!(
            fs::read_to_string(dir.join("cpu.max")).unwrap(),
            "50000 100000"
        );
        assert_eq!(
            fs::read_to_string(dir.join("memory.max")).unwrap(),
            "33554432"
        );
        assert_eq!(cg.procs_files(path), vec![dir.join("cgroup.procs")]);

        fs::write(dir.join("cpu.stat"), "usage_usec 250\nuser_usec 200\n").unwrap();
        fs::write(dir.join("memory.current"), "4096\n").unwrap();
        fs::write(dir.join("memory.stat"), "anon 1\ninactive_file 1024\n").unwrap();
        fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        fs::write(dir.join("cgroup.procs"), "12\n13\n").unwrap();
        let s = cg.stats(path).unwrap();
        assert_eq!(s.cpu_usage_ns, 250_000);
        assert_eq!(s.memory_working_set_bytes, 3072);
        assert_eq!(s.oom_kills, 1);
        assert_eq!(cg.pids(path).unwrap(), vec![12, 13]);

        for f in [
            "cpu.stat",
            "memory.current",
            "memory.stat",
            "memory.events",
            "cgroup.procs",
            "cpu.weight",
            "cpu.max",
            "memory.max",
        ] {
            fs::remove_file(dir.join(f)).unwrap();
        }
        cg.remove(path).unwrap();
        assert!(!dir.exists());
    }

    /// The machine's figures on a fake v2 root: CPU from the root's `cpu.stat`, memory from
    /// meminfo (a real v2 root has no `memory.current`), inactive file pages from the root's
    /// `memory.stat` when it has one.
    #[test]
    fn node_stats_on_a_fake_v2_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cg");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(root.join("cpu.stat"), "usage_usec 7000\nuser_usec 5000\n").unwrap();
        let meminfo = tmp.path().join("meminfo");
        fs::write(
            &meminfo,
            "MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    500 kB\nInactive(file):   100 kB\n",
        )
        .unwrap();
        let cg = CgroupV2::new(&root).with_meminfo(&meminfo);
        let n = cg.node_stats().unwrap();
        assert_eq!(n.cpu_usage_ns, 7_000_000);
        assert_eq!(n.memory_usage_bytes, 800 * 1024);
        assert_eq!(n.memory_working_set_bytes, 700 * 1024);
        fs::write(root.join("memory.stat"), "anon 5\ninactive_file 204800\n").unwrap();
        let n = cg.node_stats().unwrap();
        assert_eq!(n.memory_working_set_bytes, 800 * 1024 - 204800);
    }
}
