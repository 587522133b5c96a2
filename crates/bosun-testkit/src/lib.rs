//! Test harness: a bosun API server in-process on a free loopback port, over a real
//! SQLite store in a temporary directory, reachable with kube-rs and the real kubectl.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use anyhow::Context;
use bosun_apiserver::{Config, Server};
use bosun_store::sqlite::SqliteStore;

/// A server started for one test; stopped when dropped with the runtime.
pub struct TestServer {
    pub server: Server,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A fresh server in a new temporary directory.
    pub async fn start() -> anyhow::Result<TestServer> {
        let tmp = tempfile::tempdir().context("creating a temporary directory")?;
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in(&dir, 0).await?;
        s._tmp = Some(tmp);
        Ok(s)
    }

    /// A server on the data directory `dir` (to test restarts), on `port` (0 = any).
    pub async fn start_in(dir: &Path, port: u16) -> anyhow::Result<TestServer> {
        std::fs::create_dir_all(dir.join("db"))?;
        let store = SqliteStore::open(&dir.join("db").join("state.db"), Default::default())
            .context("opening the store")?;
        Self::start_with_store(dir, port, Arc::new(store)).await
    }

    /// A server over any store (an etcd cluster shared with other servers, say).
    pub async fn start_with_store(
        dir: &Path,
        port: u16,
        store: Arc<dyn bosun_store::Store>,
    ) -> anyhow::Result<TestServer> {
        std::fs::create_dir_all(dir)?;
        let config = Config {
            data_dir: dir.to_path_buf(),
            bind_address: "127.0.0.1".parse()?,
            secure_port: port,
            ..Default::default()
        };
        let server = Server::start(config, store)
            .await
            .context("starting the server")?;
        Ok(TestServer {
            server,
            dir: dir.to_path_buf(),
            _tmp: None,
        })
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.server.kubeconfig
    }

    /// A kube-rs client with the admin credentials.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        client_for(self.kubeconfig()).await
    }

    /// Runs the real kubectl against this server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(self.kubeconfig(), args, None)
    }

    /// Runs kubectl with `stdin` as its standard input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        kubectl_with(self.kubeconfig(), args, Some(stdin))
    }

    /// Runs kubectl and returns stdout, failing with stderr when it exits non-zero.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure, returning stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        expect_failure(args, self.kubectl(args))
    }

    /// Runs kubectl with `stdin`, returning stdout, failing with stderr when it exits
    /// non-zero.
    pub fn kubectl_stdin_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_stdin(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl with `stdin` expecting failure, returning stderr.
    pub fn kubectl_stdin_err(&self, args: &[&str], stdin: &str) -> String {
        expect_failure(args, self.kubectl_stdin(args, stdin))
    }
}

fn expect_failure(args: &[&str], out: Output) -> String {
    assert!(
        !out.status.success(),
        "kubectl {} unexpectedly succeeded: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The column names of a kubectl table (its first line).
pub fn table_header(out: &str) -> Vec<&str> {
    out.lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

/// The cells of the kubectl table row whose first cell is `name` (empty when none is).
pub fn table_row<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default()
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).context("reading the kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("building the client config")?;
    Ok(kube::Client::try_from(config)?)
}

/// Where the real kubectl is: `$BOSUN_KUBECTL`, else `~/.cache/bosun/bin/kubectl`
/// (scripts/fetch-clients.sh puts it there).
pub fn kubectl_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BOSUN_KUBECTL") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("BOSUN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/bosun")
        });
    cache.join("bin/kubectl")
}

fn kubectl_with(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let path = kubectl_path();
    assert!(
        path.exists(),
        "kubectl not found at {}: run scripts/fetch-clients.sh (or set BOSUN_KUBECTL)",
        path.display()
    );
    let mut cmd = Command::new(&path);
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    cmd.env(
        "KUBECACHEDIR",
        kubeconfig
            .parent()
            .unwrap_or(Path::new("/tmp"))
            .join("kubecache"),
    );
    output_within(cmd, stdin, CLIENT_DEADLINE)
}

/// How long a client process a test starts may run before it is killed. A real kubectl
/// waiting on a server that never answers would otherwise hang the whole test run.
pub const CLIENT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(240);

/// Runs a blocking closure from a test. Inside a multi-threaded tokio runtime (where the
/// in-process server runs) it goes through `block_in_place`, so the worker's queued tasks
/// (the server's, among them the one in its LIFO slot that no other worker may steal) move
/// to another thread instead of waiting behind the blocked call.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Runs `cmd` to completion with `stdin` as its input, collecting stdout and stderr; kills
/// it after `deadline` (the output then ends with a line saying so, and the exit status is
/// the kill's). Safe to call from async tests: see [`blocking`].
pub fn output_within(
    mut cmd: Command,
    stdin: Option<&str>,
    deadline: std::time::Duration,
) -> Output {
    use std::io::{Read, Write};
    blocking(move || {
        cmd.stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        });
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", cmd.get_program()));
        if let (Some(input), Some(mut si)) = (stdin, child.stdin.take()) {
            let _ = si.write_all(input.as_bytes());
        }
        let reader = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = reader(
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        );
        let err = reader(
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        );
        let start = std::time::Instant::now();
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if start.elapsed() >= deadline && !killed => {
                    let _ = child.kill();
                    killed = true;
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Err(e) => panic!("waiting for {:?}: {e}", cmd.get_program()),
            }
        };
        let stdout = out.join().unwrap_or_default();
        let mut stderr = err.join().unwrap_or_default();
        if killed {
            stderr.extend_from_slice(
                format!(
                    "\n[testkit: {:?} killed after {} s]\n",
                    cmd.get_program(),
                    deadline.as_secs()
                )
                .as_bytes(),
            );
        }
        Output {
            status,
            stdout,
            stderr,
        }
    })
}

/// The root of the repository (for scripts and fixtures under `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the venv python with the official `kubernetes` client is: `$BOSUN_PYTHON`, else
/// `~/.cache/bosun/py/bin/python` (scripts/fetch-clients.sh creates it).
pub fn python_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BOSUN_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("BOSUN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/bosun")
        });
    cache.join("py/bin/python")
}

/// Runs `script` (relative to the repository root) with the client venv's python and `args`,
/// panicking with a message naming the fix when the venv or its `kubernetes` package is missing:
/// a compatibility test must fail, not skip, when its client is absent.
pub fn run_python(script: &str, args: &[&Path]) -> Output {
    let python = python_path();
    assert!(
        python.exists(),
        "python client venv not found at {}: run scripts/fetch-clients.sh (or set BOSUN_PYTHON)",
        python.display()
    );
    let probe = Command::new(&python)
        .args(["-c", "import kubernetes"])
        .output()
        .unwrap_or_else(|e| panic!("starting {}: {e}", python.display()));
    assert!(
        probe.status.success(),
        "the kubernetes package is not importable with {}: run scripts/fetch-clients.sh\n{}",
        python.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    let script = repo_root().join(script);
    Command::new(&python)
        .arg(&script)
        .args(args)
        // Unbuffered, so the step log and the failure arrive in order in the test output.
        .env("PYTHONUNBUFFERED", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {} {}: {e}", python.display(), script.display()))
}

/// Builds the project's test images once per process (`scripts/build-test-images.sh`) and
/// returns the OCI archive of busybox (`$BOSUN_IMAGES_DIR`, default `~/.cache/bosun/images`).
pub fn busybox_archive() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    BUILD.call_once(|| {
        let status = Command::new("bash")
            .arg(root.join("scripts/build-test-images.sh"))
            .status()
            .expect("run scripts/build-test-images.sh");
        assert!(status.success(), "scripts/build-test-images.sh failed");
    });
    let dir = std::env::var_os("BOSUN_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or("/root".into()))
                .join(".cache/bosun/images")
        });
    let f = dir.join("busybox.oci.tar");
    assert!(f.is_file(), "no busybox.oci.tar in {}", dir.display());
    f
}
