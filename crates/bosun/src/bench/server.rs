//! The server under test as a child process (`bosun server` on loopback, a fresh data
//! directory), so that its memory is its own and the client's CPU shows apart from it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long the child may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// What `bosun server` prints once it serves.
const LISTENING: &str = "bosun API server listening on ";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("temporary data directory in {dir}: {source}")]
    TempDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("server log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting {bin} server: {source}")]
    Spawn {
        bin: PathBuf,
        source: std::io::Error,
    },
    #[error("{bin} server exited during start-up ({status}); its log:\n{log}")]
    Exited {
        bin: PathBuf,
        status: String,
        log: String,
    },
    #[error("{bin} server did not print its address within {timeout:?}; its log:\n{log}")]
    NoAnswer {
        bin: PathBuf,
        timeout: Duration,
        log: String,
    },
    #[error("reading /proc/{pid}/status: {source}")]
    Proc { pid: u32, source: std::io::Error },
    #[error("/proc/{pid}/status has no {field} line")]
    ProcField { pid: u32, field: &'static str },
}

/// Resident memory of the child, from /proc/PID/status.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Memory {
    /// VmRSS.
    pub rss_mib: f64,
    /// VmHWM: the highest RSS so far.
    pub peak_mib: f64,
}

/// A running `bosun server`; killed, and its data removed, when dropped.
pub struct ServerChild {
    child: Child,
    pub pid: u32,
    pub url: String,
    pub kubeconfig: PathBuf,
    log: PathBuf,
    // Removed after the process is killed (fields drop after `Drop::drop`).
    _dir: tempfile::TempDir,
}

impl ServerChild {
    /// Runs `BIN server` on 127.0.0.1, a free port and a data directory under `parent`
    /// (on etcd at `etcd` when given) and waits until it serves.
    /// Without `control_loops` the controllers and the scheduler are off, so that only the
    /// API server's own work is measured (the scheduler would add a status write per pod).
    pub async fn start(
        bin: &Path,
        parent: &Path,
        etcd: Option<&str>,
        control_loops: bool,
    ) -> Result<ServerChild, ServerError> {
        let dir = tempfile::Builder::new()
            .prefix("bosun-bench-server-")
            .tempdir_in(parent)
            .map_err(|source| ServerError::TempDir {
                dir: parent.to_path_buf(),
                source,
            })?;
        let data = dir.path().join("data");
        let log = dir.path().join("server.log");
        let log_err = |source| ServerError::Log {
            path: log.clone(),
            source,
        };
        let out = std::fs::File::create(&log).map_err(log_err)?;
        let err = out.try_clone().map_err(log_err)?;
        let mut cmd = Command::new(bin);
        cmd.arg("server").arg("--data-dir").arg(&data).args([
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            "0",
        ]);
        if let Some(ep) = etcd {
            cmd.arg("--datastore-endpoint").arg(ep);
        }
        if !control_loops {
            cmd.args(["--controllers=", "--disable-scheduler"]);
        }
        // The server's own flags come from the command line only.
        cmd.env_remove("BOSUN_DATA_DIR");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|source| ServerError::Spawn {
                bin: bin.to_path_buf(),
                source,
            })?;
        let pid = child.id();
        let mut me = ServerChild {
            child,
            pid,
            url: String::new(),
            kubeconfig: data.join("kubeconfig.yaml"),
            log,
            _dir: dir,
        };
        me.url = me.wait_listening(bin).await?;
        Ok(me)
    }

    async fn wait_listening(&mut self, bin: &Path) -> Result<String, ServerError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(url) = text
                .lines()
                .find_map(|l| l.strip_prefix(LISTENING))
                .map(|u| u.trim().to_string())
            {
                if self.kubeconfig.exists() {
                    return Ok(url);
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ServerError::Exited {
                    bin: bin.to_path_buf(),
                    status: status.to_string(),
                    log: self.log_tail(),
                });
            }
            if Instant::now() >= deadline {
                return Err(ServerError::NoAnswer {
                    bin: bin.to_path_buf(),
                    timeout: START_TIMEOUT,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The child's resident memory now and at its peak.
    pub fn memory(&self) -> Result<Memory, ServerError> {
        let pid = self.pid;
        let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|source| ServerError::Proc { pid, source })?;
        let field = |name: &'static str| {
            status_kib(&text, name)
                .map(|kib| kib as f64 / 1024.0)
                .ok_or(ServerError::ProcField { pid, field: name })
        };
        Ok(Memory {
            rss_mib: field("VmRSS")?,
            peak_mib: field("VmHWM")?,
        })
    }

    /// CPU time the child has used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> Result<f64, ServerError> {
        let pid = self.pid;
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|source| ServerError::Proc { pid, source })?;
        stat_cpu_ticks(&text)
            .map(|t| t as f64 / clock_ticks_per_second())
            .ok_or(ServerError::ProcField {
                pid,
                field: "utime/stime",
            })
    }

    /// The last lines the server logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The log tail when something went wrong (for the report), else nothing.
    pub fn log_tail_if(&self, failed: bool) -> Option<String> {
        failed.then(|| self.log_tail())
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of a /proc/PID/stat line, in clock ticks. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its closing parenthesis.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU time this process has used so far (user + system, all threads), in seconds.
pub fn own_cpu_seconds() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return 0.0;
    }
    // SAFETY: getrusage succeeded, so the struct is initialized.
    let ru = unsafe { ru.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// A `NAME:   123 kB` line of /proc/PID/status, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse() {
        let s = "Name:\tbosun\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nVmRSSx:\t1 kB\n";
        assert_eq!(status_kib(s, "VmRSS"), Some(102_400));
        assert_eq!(status_kib(s, "VmHWM"), Some(204_800));
        assert_eq!(status_kib(s, "VmSwap"), None);
    }

    #[test]
    fn stat_counts_fields_after_the_name() {
        let s = "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(stat_cpu_ticks(s), Some(300));
        assert_eq!(stat_cpu_ticks("42 (x) S 1"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(stat_cpu_ticks(&own).is_some());
    }

    #[test]
    fn own_memory_is_readable() {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(status_kib(&text, "VmRSS").unwrap() > 0);
    }
}
