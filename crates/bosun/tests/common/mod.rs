//! What the `bosun up` tests share (`up.rs`, `examples_e2e.rs`): `bosun up` as a child
//! process on a temporary data directory and a free loopback port, the real kubectl, the
//! busybox test image imported into the agent's image store, polling, and what a stopped
//! cluster may leave on the host.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BOSUN: &str = env!("CARGO_BIN_EXE_bosun");

/// Fails (never skips) when not root: `bosun up` mounts, unshares and programs the network.
pub fn require_root(test: &str) {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "{test} runs bosun up and must run as root (the agent mounts, unshares and writes \
         cgroups); run it as root, as CI does"
    );
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Imports the busybox test image into `data`'s agent store under its own name and under
/// each of `names`.
pub fn import_busybox(data: &Path, names: &[&str]) {
    let archive = bosun_testkit::busybox_archive();
    for name in std::iter::once(None).chain(names.iter().map(Some)) {
        let mut cmd = Command::new(BOSUN);
        cmd.args(["image", "import", "--data-dir"])
            .arg(data.join("agent"));
        if let Some(n) = name {
            cmd.args(["--name", n]);
        }
        let o = cmd.arg(&archive).output().expect("bosun image import");
        assert!(
            o.status.success(),
            "bosun image import: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The real kubectl: (success, stdout, stderr).
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let path = bosun_testkit::kubectl_path();
    assert!(
        path.exists(),
        "kubectl not found at {}: run scripts/fetch-clients.sh",
        path.display()
    );
    client(Command::new(path), kubeconfig, args, stdin)
}

/// `bosun ctl`: (success, stdout, stderr).
pub fn bosun_ctl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(BOSUN);
    cmd.arg("ctl");
    client(cmd, kubeconfig, args, stdin)
}

fn client(
    mut cmd: Command,
    kubeconfig: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut child = cmd
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the client");
    if let (Some(input), Some(mut si)) = (stdin, child.stdin.take()) {
        si.write_all(input.as_bytes())
            .expect("writing the client's stdin");
    }
    let out = child.wait_with_output().expect("waiting for the client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `f` every `every` until it holds; panics after `secs`.
pub fn wait_until(what: &str, secs: u64, every: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(every);
    }
    panic!("{what}: not within {secs} s");
}

/// A running `bosun up` (killed if dropped); its stdout lines arrive on `lines`.
pub struct Up {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub kubeconfig: PathBuf,
}

impl Up {
    /// `bosun up` on `data`, the API on 127.0.0.1:`port`, the kubelet on a free port,
    /// images only imported, and eviction thresholds low enough for the shared, often nearly
    /// full disk (upstream's nodefs.available<10% would report DiskPressure and keep test
    /// pods off the node).
    pub fn start(data: &Path, port: u16, node_name: &str, extra: &[&str]) -> Up {
        let mut child = Command::new(BOSUN)
            .arg("up")
            .arg("--data-dir")
            .arg(data)
            .args(["--bind-address", "127.0.0.1", "--secure-port"])
            .arg(port.to_string())
            .args([
                "--kubelet-port",
                "0",
                "--node-name",
                node_name,
                "--disable-image-pull",
                "--eviction-hard",
                "memory.available<1Mi,nodefs.available<1%",
                // Nor image GC remove the imported test images between pods.
                "--image-gc-high-threshold",
                "100",
            ])
            .args(extra)
            .env("BOSUN_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting bosun up");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("bosun up: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Up {
            child,
            lines,
            kubeconfig: data.join("kubeconfig.yaml"),
        }
    }

    /// Waits for the "bosun is up" line and returns it.
    pub fn wait_ready(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(l) if l.starts_with("bosun is up") => return l,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(st)) = self.child.try_wait() {
                        panic!("bosun up exited before Ready: {st}");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let st = self.child.wait();
                    panic!("bosun up closed its output before Ready: {st:?}");
                }
            }
        }
        panic!("bosun up was not Ready in 60 s");
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self) {
        // SAFETY: kill with a pid of our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().expect("waiting for bosun up") {
                assert!(st.success(), "bosun up exited with {st} after SIGTERM");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "bosun up did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bosun down --data-dir DATA`: (success, stdout, stderr).
pub fn bosun_down(data: &Path) -> (bool, String, String) {
    let o = Command::new(BOSUN)
        .arg("down")
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("running bosun down");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Processes whose command line names `dir` (shims, containers' helpers): pid and command.
pub fn processes_naming(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            out.push((pid, cmd));
        }
    }
    out
}

/// Mount points at or under `dir` in this mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("/proc/self/mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&needle))
        .map(str::to_string)
        .collect()
}

/// The output of a command (`ip`, `nft`) that must succeed.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(
        o.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What of the agent's host network state is present (bridge, rule, routes, DNS address,
/// nftables tables), one entry per item.
pub fn host_network_state() -> Vec<String> {
    let mut found = Vec::new();
    if Command::new("ip")
        .args(["link", "show", "bosun0"])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
    {
        found.push("link bosun0".to_string());
    }
    for l in run("ip", &["-br", "link"]).lines() {
        if l.starts_with("bv") {
            found.push(format!("link {l}"));
        }
    }
    for l in run("ip", &["-4", "rule"]).lines() {
        if l.starts_with("181:") {
            found.push(format!("rule {l}"));
        }
    }
    for l in run(
        "ip",
        &["-4", "route", "show", "table", "all", "proto", "181"],
    )
    .lines()
    {
        found.push(format!("route {l}"));
    }
    if run("ip", &["-4", "addr", "show", "dev", "lo"]).contains("10.96.0.10/32") {
        found.push("address 10.96.0.10/32 on lo".into());
    }
    for l in run("nft", &["list", "tables"]).lines() {
        let t = l.trim();
        if ["bosun", "bosun-net", "bosun-hostports", "bosun-netpol"]
            .iter()
            .any(|n| t == format!("table ip {n}"))
        {
            found.push(t.to_string());
        }
    }
    found
}
