//! `bosun up` end to end (root): the binary started as a process on a temporary data dir and a
//! free loopback port, waits for Ready, runs a pod from the imported busybox test image, stops
//! on SIGTERM, starts again on the same data dir and finds the same pod running with the same
//! container (containers outlive `bosun up`). Also the one-line errors for a taken port and a
//! data directory in use.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BOSUN: &str = env!("CARGO_BIN_EXE_bosun");

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "the bosun up test must run as root (the agent mounts, unshares and writes cgroups); run \
         it as root, as CI does"
    );
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cache_dir() -> PathBuf {
    std::env::var_os("BOSUN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/bosun")
        })
}

fn busybox_archive() -> PathBuf {
    let status = Command::new("bash")
        .arg(repo_root().join("scripts/build-test-images.sh"))
        .status()
        .expect("running scripts/build-test-images.sh");
    assert!(status.success(), "scripts/build-test-images.sh failed");
    let dir = std::env::var_os("BOSUN_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("images"));
    dir.join("busybox.oci.tar")
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let path = std::env::var_os("BOSUN_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("bin/kubectl"));
    assert!(
        path.exists(),
        "kubectl not found at {}: run scripts/fetch-clients.sh",
        path.display()
    );
    let mut child = Command::new(&path)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting kubectl");
    let mut si = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        si.write_all(s.as_bytes()).expect("writing kubectl's stdin");
    }
    drop(si);
    let out = child.wait_with_output().expect("waiting for kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `bosun up`; its stdout lines arrive on `lines`.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Up {
    fn start(data: &Path, port: u16) -> Up {
        let mut child = Command::new(BOSUN)
            .arg("up")
            .arg("--data-dir")
            .arg(data)
            .args(["--bind-address", "127.0.0.1", "--secure-port"])
            .arg(port.to_string())
            .args([
                "--kubelet-port",
                "0",
                "--node-ip",
                "127.0.0.1",
                "--node-name",
                "up-test",
                "--disable-image-pull",
                // The shared disk is often nearly full: upstream's nodefs.available<10%
                // would report DiskPressure and keep the test pod off the node.
                "--eviction-hard",
                "memory.available<1Mi,nodefs.available<1%",
            ])
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
        Up { child, lines }
    }

    /// Waits for the "bosun is up" line and returns the start→Ready figure it reports.
    fn wait_ready(&mut self) -> String {
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

    /// SIGTERM, then waits for a clean exit.
    fn stop(mut self) {
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

fn pod_field(kc: &Path, jsonpath: &str) -> String {
    let (_, out, _) = kubectl(
        kc,
        &[
            "get",
            "pod",
            "up-pod",
            "-o",
            &format!("jsonpath={jsonpath}"),
        ],
        None,
    );
    out
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what}: not within {secs} s");
}

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: up-pod
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: bosun.test/busybox:latest
    imagePullPolicy: Never
    command: ["sh", "-c", "echo started; exec sleep 3600"]
"#;

#[test]
fn up_runs_a_pod_and_brings_it_back_after_a_restart() {
    require_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let import = Command::new(BOSUN)
        .args(["image", "import", "--data-dir"])
        .arg(data.join("agent"))
        .arg(busybox_archive())
        .output()
        .expect("bosun image import");
    assert!(
        import.status.success(),
        "bosun image import: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let port = free_port();
    let mut up = Up::start(&data, port);
    let ready = up.wait_ready();
    assert!(ready.contains("node up-test Ready in"), "{ready}");
    let kc = data.join("kubeconfig.yaml");
    assert_eq!(
        std::fs::read_to_string(data.join("version")).expect("version file"),
        "1\n"
    );

    // A second `bosun up` on the same port: one line saying what is wrong and what to do.
    let other = tmp.path().join("other");
    let second = Command::new(BOSUN)
        .arg("up")
        .arg("--data-dir")
        .arg(&other)
        .args(["--bind-address", "127.0.0.1", "--secure-port"])
        .arg(port.to_string())
        .output()
        .expect("second bosun up");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(
        err.trim()
            .starts_with(&format!("bosun up: port {port} is already in use"))
            && err.trim().lines().count() == 1,
        "{err}"
    );
    // Same data directory, another port: the data directory is in use.
    let third = Command::new(BOSUN)
        .arg("up")
        .arg("--data-dir")
        .arg(&data)
        .args(["--bind-address", "127.0.0.1", "--secure-port", "0"])
        .args(["--kubelet-port", "0"])
        .output()
        .expect("third bosun up");
    let err = String::from_utf8_lossy(&third.stderr);
    assert!(!third.status.success());
    assert!(
        err.contains("is in use by another bosun process") && err.trim().lines().count() == 1,
        "{err}"
    );

    let (ok, _, err) = kubectl(&kc, &["get", "svc", "kubernetes"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl(&kc, &["apply", "-f", "-"], Some(POD));
    assert!(ok, "kubectl apply: {err}");
    wait_until("up-pod Running", 60, || {
        pod_field(&kc, "{.status.phase}") == "Running"
    });
    let container = pod_field(&kc, "{.status.containerStatuses[0].containerID}");
    assert!(container.starts_with("bosun://"), "{container}");
    let (ok, logs, err) = kubectl(&kc, &["logs", "up-pod"], None);
    assert!(ok && logs.contains("started"), "{logs}{err}");

    // The same through `bosun ctl`.
    let ctl = |args: &[&str]| {
        let o = Command::new(BOSUN)
            .arg("ctl")
            .arg("--kubeconfig")
            .arg(&kc)
            .args(args)
            .output()
            .expect("bosun ctl");
        assert!(
            o.status.success(),
            "bosun ctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(ctl(&["logs", "up-pod"]).contains("started"));
    let nodes = ctl(&["get", "nodes"]);
    assert!(
        nodes.starts_with("NAME") && nodes.contains("up-test   Ready"),
        "{nodes}"
    );
    assert_eq!(
        ctl(&["get", "pod", "up-pod", "-o", "jsonpath={.status.phase}"]),
        "Running"
    );

    up.stop();

    let mut up = Up::start(&data, port);
    up.wait_ready();
    let (ok, nodes, err) = kubectl(&kc, &["get", "nodes"], None);
    assert!(
        ok && nodes.contains("up-test") && nodes.contains("Ready"),
        "{nodes}{err}"
    );
    // The same container, adopted, not restarted.
    wait_until("up-pod Running and ready after the restart", 30, || {
        pod_field(&kc, "{.status.phase}/{.status.containerStatuses[0].ready}") == "Running/true"
    });
    assert_eq!(
        pod_field(&kc, "{.status.containerStatuses[0].containerID}"),
        container
    );
    assert_eq!(
        pod_field(&kc, "{.status.containerStatuses[0].restartCount}"),
        "0"
    );

    // Leave nothing running: delete the pod through the cluster, then stop.
    let (ok, _, err) = kubectl(&kc, &["delete", "pod", "up-pod", "--timeout=60s"], None);
    assert!(ok, "kubectl delete: {err}");
    up.stop();
}
