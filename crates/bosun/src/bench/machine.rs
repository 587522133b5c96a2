//! What machine the figures came from: CPUs, memory, kernel, disk, date.

use std::path::Path;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// The filesystem the data directories are on (from /proc/mounts).
    pub filesystem: String,
    pub date: String,
    /// /proc/loadavg's 1-, 5- and 15-minute figures when the run started: other work on
    /// the machine takes cores from the server and the client.
    pub load_before: String,
    pub load_after: String,
}

impl Machine {
    /// Reads /proc; a value that cannot be read is reported as `unknown`.
    pub fn probe(data_dir: &Path) -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let meminfo = read("/proc/meminfo");
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_else(|| "unknown".into()),
            memory_gib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / (1024.0 * 1024.0)),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            filesystem: filesystem_of(data_dir, &read("/proc/mounts")),
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            load_before: load_average(),
            load_after: String::new(),
        }
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<&str> = text.split_whitespace().take(3).collect();
    if v.is_empty() {
        "unknown".into()
    } else {
        v.join(" ")
    }
}

/// `DEVICE (TYPE) on MOUNTPOINT` for the longest mount point that contains `path`.
fn filesystem_of(path: &Path, mounts: &str) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, at, fstype) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(at)
                .then_some((at.len(), format!("{dev} ({fstype}) on {at}")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, s)| s)
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_mount_point_wins() {
        let mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\nproc /proc proc rw 0 0\n";
        assert_eq!(
            filesystem_of(Path::new("/tmp/x/y"), mounts),
            "tmpfs (tmpfs) on /tmp"
        );
        assert_eq!(
            filesystem_of(Path::new("/var/lib"), mounts),
            "/dev/vda (ext4) on /"
        );
    }
}
