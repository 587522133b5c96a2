//! A throw-away one-member etcd on loopback ports, for tests and benchmarks: started from
//! the `etcd` binary (Debian's `etcd-server` puts it at /usr/bin/etcd; scripts/install-etcd.sh
//! installs it), its data in a temporary directory, killed when the handle is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::Client;

/// Where the binary is looked for when `BOSUN_ETCD_BIN` is not set.
pub const DEFAULT_ETCD_BIN: &str = "/usr/bin/etcd";

/// How long a fresh member may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Ports are picked free and then handed to etcd, so another process can take them in
/// between: try a few times.
const START_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum LocalEtcdError {
    #[error(
        "etcd binary not found at {path} (set BOSUN_ETCD_BIN or run scripts/install-etcd.sh to install Debian's etcd-server)"
    )]
    BinaryMissing { path: String },
    #[error("temporary directory for etcd data: {0}")]
    TempDir(std::io::Error),
    #[error("free loopback port for etcd: {0}")]
    Port(std::io::Error),
    #[error("starting etcd from {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    #[error("etcd at {endpoint} exited during start-up ({status}); its log:\n{log}")]
    Exited {
        endpoint: String,
        status: String,
        log: String,
    },
    #[error("etcd at {endpoint} did not answer within {timeout:?}; its log:\n{log}")]
    NoAnswer {
        endpoint: String,
        timeout: Duration,
        log: String,
    },
}

/// A running one-member etcd. Dropping it kills the process and removes its data.
pub struct LocalEtcd {
    /// `None` while stopped by [`LocalEtcd::stop`].
    child: Option<Child>,
    bin: PathBuf,
    client_url: String,
    peer_url: String,
    log: PathBuf,
    // Dropped after the process is killed (fields drop after `Drop::drop`).
    dir: tempfile::TempDir,
}

impl LocalEtcd {
    /// Starts etcd on free loopback ports and waits until it serves requests.
    pub async fn start() -> Result<LocalEtcd, LocalEtcdError> {
        let bin = etcd_binary()?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&bin).await {
                Ok(etcd) => return Ok(etcd),
                // A port taken between picking and binding shows as an early exit.
                Err(e @ LocalEtcdError::Exited { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(LocalEtcdError::BinaryMissing {
            path: bin.display().to_string(),
        }))
    }

    async fn start_once(bin: &Path) -> Result<LocalEtcd, LocalEtcdError> {
        let dir = tempfile::Builder::new()
            .prefix("bosun-etcd-")
            .tempdir()
            .map_err(LocalEtcdError::TempDir)?;
        let log = dir.path().join("etcd.log");
        let mut etcd = LocalEtcd {
            child: None,
            bin: bin.to_path_buf(),
            client_url: format!("http://127.0.0.1:{}", free_port()?),
            peer_url: format!("http://127.0.0.1:{}", free_port()?),
            log,
            dir,
        };
        etcd.spawn().await?;
        Ok(etcd)
    }

    /// Starts the process on this member's ports and data and waits until it answers.
    async fn spawn(&mut self) -> Result<(), LocalEtcdError> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(LocalEtcdError::TempDir)?;
        let log_err = log_file.try_clone().map_err(LocalEtcdError::TempDir)?;
        let mut command = Command::new(&self.bin);
        // etcd also reads its flags from ETCD_* variables; the caller's must not leak in.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(name);
            }
        }
        let (client_url, peer_url) = (&self.client_url, &self.peer_url);
        let child = command
            .arg("--name=default")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            // Ignored by etcd once the data directory holds a member (on restart).
            .arg("--initial-cluster-state=new")
            .arg("--enable-v2=false")
            // Room for tests that write a lot, beyond the 2 GiB default.
            .arg("--quota-backend-bytes=4294967296")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|source| LocalEtcdError::Spawn {
                path: self.bin.display().to_string(),
                source,
            })?;
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Kills the process, keeping its data and ports for [`LocalEtcd::restart`] (to test
    /// what clients do while the store is down).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process if it runs and starts it again on the same data and ports.
    pub async fn restart(&mut self) -> Result<(), LocalEtcdError> {
        self.stop();
        self.spawn().await
    }

    /// Polls until a read succeeds, failing early when the process dies.
    async fn wait_ready(&mut self) -> Result<(), LocalEtcdError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().ok().flatten().map(|s| s.to_string()),
                None => Some("not running".to_string()),
            };
            if let Some(status) = exited {
                return Err(LocalEtcdError::Exited {
                    endpoint: self.client_url.clone(),
                    status,
                    log: self.log_tail(),
                });
            }
            if self.answers().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LocalEtcdError::NoAnswer {
                    endpoint: self.client_url.clone(),
                    timeout: START_TIMEOUT,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn answers(&self) -> bool {
        let attempt = async {
            let mut client = Client::connect([self.client_url.as_str()], None)
                .await
                .ok()?;
            client.get("/", None).await.ok()
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), attempt).await,
            Ok(Some(_))
        )
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.client_url
    }

    /// The client URLs, in the form [`crate::EtcdStore::connect`] takes.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.client_url.clone()]
    }

    /// The last lines etcd logged (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `BOSUN_ETCD_BIN`, else /usr/bin/etcd, else `etcd` on the PATH.
fn etcd_binary() -> Result<PathBuf, LocalEtcdError> {
    if let Some(path) = std::env::var_os("BOSUN_ETCD_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(LocalEtcdError::BinaryMissing {
                path: path.display().to_string(),
            })
        };
    }
    let default = PathBuf::from(DEFAULT_ETCD_BIN);
    if default.is_file() {
        return Ok(default);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("etcd");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(LocalEtcdError::BinaryMissing {
        path: DEFAULT_ETCD_BIN.to_string(),
    })
}

fn free_port() -> Result<u16, LocalEtcdError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(LocalEtcdError::Port)?;
    let port = listener.local_addr().map_err(LocalEtcdError::Port)?.port();
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_loopback_and_nonzero() {
        let port = free_port().expect("free port");
        assert_ne!(port, 0);
    }

    #[test]
    fn missing_binary_names_the_install_script() {
        let err = LocalEtcdError::BinaryMissing {
            path: "/nonexistent/etcd".to_string(),
        };
        assert!(err.to_string().contains("scripts/install-etcd.sh"));
    }
}
