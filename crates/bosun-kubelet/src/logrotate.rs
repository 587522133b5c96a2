//! Container log rotation by size, as upstream's container log manager
//! (pkg/kubelet/logs/container_log_manager.go): every `monitor_interval` (10 s), the log of
//! each running container that is larger than `containerLogMaxSize` (10Mi) is renamed to
//! `<log>.<YYYYMMDD-HHMMSS.ffffff>` and its shim reopens a new file at the path (CRI's
//! `ReopenContainerLog`; if that fails the rename is undone); then the oldest rotated files
//! are removed so that at most `containerLogMaxFiles` (5) files, the current one included,
//! remain. `kubectl logs` reads the current file; follow moves on to the new file.
//! Differs from upstream: rotated files are not gzip-compressed.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::Ctx;

/// Rotation settings (upstream's KubeletConfiguration defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    /// `containerLogMaxSize`: 10Mi.
    pub max_size_bytes: u64,
    /// `containerLogMaxFiles`: 5 (at least 2: the current file and one rotated).
    pub max_files: usize,
    /// How often sizes are checked (upstream's `ContainerLogMonitorInterval`, 10 s).
    pub monitor_interval: Duration,
}

impl Default for LogRotation {
    fn default() -> Self {
        LogRotation {
            max_size_bytes: 10 << 20,
            max_files: 5,
            monitor_interval: Duration::from_secs(10),
        }
    }
}

/// A size in Kubernetes quantity form (`10Mi`, `500Ki`, `1G`, bytes).
pub fn parse_size(q: &str) -> Result<u64, String> {
    let v = bosun_api::quantity::Quantity::parse(q)
        .map_err(|e| format!("{q:?} is not a quantity: {e}"))?
        .value();
    u64::try_from(v).map_err(|_| format!("{q:?} is negative"))
}

/// The rotated files of `log` (`<log>.<timestamp>`), oldest first.
pub fn rotated_files(log: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix(&prefix)
                .is_some_and(|ts| !ts.is_empty() && !ts.ends_with(".tmp"))
        })
        .map(|e| e.path())
        .collect();
    // The suffix is a sortable timestamp (with a counter should two be equal).
    out.sort();
    out
}

/// Removes the oldest rotated files of `log` beyond `max_files - 1`.
pub fn remove_excess(log: &Path, max_files: usize) {
    let rotated = rotated_files(log);
    let keep = max_files.saturating_sub(1);
    if rotated.len() > keep {
        for p in &rotated[..rotated.len() - keep] {
            if let Err(e) = std::fs::remove_file(p) {
                tracing::warn!(path = %p.display(), error = %e, "removing a rotated container log");
            }
        }
    }
}

/// A free name for the next rotated file of `log`: upstream's `YYYYMMDD-HHMMSS` plus
/// microseconds, so that names sort in rotation order even for several rotations in one
/// second (a pruned name is never taken again by a later rotation).
fn rotated_name(log: &Path) -> PathBuf {
    let ts = chrono::Utc::now().format("%Y%m%d-%H%M%S%.6f").to_string();
    let base = PathBuf::from(format!("{}.{ts}", log.display()));
    if !base.exists() {
        return base;
    }
    (1..)
        .map(|i| PathBuf::from(format!("{}.{ts}-{i:03}", log.display())))
        .find(|p| !p.exists())
        .unwrap_or(base)
}

/// Rotates `log` if it is larger than the limit: rename, `reopen` (the shim's new file),
/// prune. Returns whether it rotated.
pub fn rotate_if_needed(
    log: &Path,
    cfg: &LogRotation,
    reopen: impl FnOnce() -> Result<(), String>,
) -> Result<bool, String> {
    let size = match std::fs::metadata(log) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("stat {}: {e}", log.display())),
    };
    // Files left from an earlier rotation are pruned even when nothing rotates now (a lower
    // max_files after a restart, as upstream's cleanup does).
    if size <= cfg.max_size_bytes {
        remove_excess(log, cfg.max_files);
        return Ok(false);
    }
    let to = rotated_name(log);
    std::fs::rename(log, &to)
        .map_err(|e| format!("rename {} to {}: {e}", log.display(), to.display()))?;
    if let Err(e) = reopen() {
        // As upstream: put the file back so the shim's writes stay visible.
        let _ = std::fs::rename(&to, log);
        return Err(format!("reopen {}: {e}", log.display()));
    }
    remove_excess(log, cfg.max_files);
    Ok(true)
}

/// The rotation loop of the agent.
pub(crate) async fn run(ctx: Arc<Ctx>) {
    let cfg = ctx.cfg.log_rotation;
    if cfg.max_size_bytes == 0 {
        // Off; the agent's tasks all run until it stops.
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(cfg.monitor_interval).await;
        let containers: Vec<String> = match ctx.pods.lock() {
            Ok(pods) => pods
                .values()
                .flat_map(|e| e.containers.values().map(|(id, _)| id.clone()))
                .collect(),
            Err(_) => continue,
        };
        let rt = ctx.runtime.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in containers {
                let running = rt
                    .state(&id)
                    .is_ok_and(|s| s.status == bosun_runtime::Status::Running);
                if !running {
                    continue;
                }
                let Ok(c) = rt.config(&id) else { continue };
                let r = rotate_if_needed(&c.log_path, &cfg, || {
                    rt.reopen_log(&id).map_err(|e| e.to_string())
                });
                match r {
                    Ok(true) => tracing::debug!(container = %id, "rotated container log"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(container = %id, error = %e, "rotating container log"),
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_over_the_limit_and_keeps_max_files() {
        let d = tempfile::tempdir().expect("tempdir");
        let log = d.path().join("0.log");
        let cfg = LogRotation {
            max_size_bytes: 10,
            max_files: 3,
            monitor_interval: Duration::from_secs(1),
        };
        std::fs::write(&log, "short").expect("write");
        assert_eq!(rotate_if_needed(&log, &cfg, || Ok(())), Ok(false));
        for i in 0..4 {
            std::fs::write(&log, format!("a longer line {i}")).expect("write");
            let mut reopened = false;
            let r = rotate_if_needed(&log, &cfg, || {
                reopened = true;
                std::fs::write(&log, "").map_err(|e| e.to_string())
            });
            assert_eq!(r, Ok(true));
            assert!(reopened);
        }
        let rotated = rotated_files(&log);
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        // The newest two survive: lines 2 and 3.
        let last = std::fs::read_to_string(&rotated[1]).expect("read");
        assert_eq!(last, "a longer line 3");
        let before = std::fs::read_to_string(&rotated[0]).expect("read");
        assert_eq!(before, "a longer line 2");
        assert!(log.exists());
    }

    #[test]
    fn sizes_are_quantities() {
        assert_eq!(parse_size("10Mi"), Ok(10 << 20));
        assert_eq!(parse_size("2k"), Ok(2000));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("ten").is_err());
    }

    #[test]
    fn a_failed_reopen_puts_the_file_back() {
        let d = tempfile::tempdir().expect("tempdir");
        let log = d.path().join("1.log");
        std::fs::write(&log, "0123456789abcdef").expect("write");
        let cfg = LogRotation {
            max_size_bytes: 4,
            ..Default::default()
        };
        let r = rotate_if_needed(&log, &cfg, || Err("shim gone".into()));
        assert!(r.is_err_and(|e| e.contains("shim gone")));
        assert_eq!(
            std::fs::read_to_string(&log).expect("read"),
            "0123456789abcdef"
        );
        assert!(rotated_files(&log).is_empty());
    }
}
