//! `bosun up` end to end (root): the binary started as a process on a temporary data dir and a
//! free loopback port, waits for Ready, runs a pod from the imported busybox test image, stops
//! on SIGTERM, starts again on the same data dir and finds the same pod running with the same
//! container (containers outlive `bosun up`). Also the one-line errors for a taken port and a
//! data directory in use, and `bosun down`: refused while `bosun up` runs; once it has stopped,
//! it stops the pod's container and leaves no shim, mount or network state behind, and the
//! next `bosun up` starts the pod again.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{bosun_ctl, free_port, kubectl, Up, BOSUN};

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

fn wait_until(what: &str, secs: u64, f: impl FnMut() -> bool) {
    common::wait_until(what, secs, Duration::from_millis(200), f)
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
    common::require_root("the bosun up test");
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    common::import_busybox(&data, &[]);
    let port = free_port();
    let mut up = Up::start(&data, port, "up-test", &[]);
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

    // A data directory written by a newer bosun: refused before anything starts.
    let newer = tmp.path().join("newer");
    std::fs::create_dir_all(&newer).expect("mkdir");
    std::fs::write(newer.join("version"), "2\n").expect("version file");
    let fourth = Command::new(BOSUN)
        .arg("up")
        .arg("--data-dir")
        .arg(&newer)
        .args(["--bind-address", "127.0.0.1", "--secure-port", "0"])
        .args(["--kubelet-port", "0"])
        .output()
        .expect("bosun up on a newer data directory");
    let err = String::from_utf8_lossy(&fourth.stderr);
    assert!(
        !fourth.status.success()
            && err.trim().starts_with("bosun up: the data directory")
            && err.contains("is from a newer bosun (data version 2")
            && err.trim().lines().count() == 1,
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
        let (ok, out, err) = bosun_ctl(&kc, args, None);
        assert!(ok, "bosun ctl {args:?}: {err}");
        out
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

    let mut up = Up::start(&data, port, "up-test", &[]);
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

    // `bosun down` while `bosun up` runs: refused in one line, nothing touched.
    let (ok, out, err) = common::bosun_down(&data);
    assert!(
        !ok && err.trim().starts_with("bosun down: ")
            && err.contains("is in use by a running bosun")
            && err.trim().lines().count() == 1,
        "{out}{err}"
    );
    assert_eq!(
        pod_field(&kc, "{.status.containerStatuses[0].ready}"),
        "true"
    );

    // Stopped with the pod running: its container and shim outlive `bosun up`, then
    // `bosun down` stops them and removes the host state.
    let uid = pod_field(&kc, "{.metadata.uid}");
    assert!(pod_cgroup_exists(&uid), "up-pod has no cgroup pod{uid}");
    up.stop();
    assert!(
        !common::processes_naming(&data).is_empty(),
        "the pod's shim should outlive bosun up"
    );
    down_leaves_nothing(&data);
    assert!(
        !pod_cgroup_exists(&uid),
        "up-pod's cgroup left after bosun down"
    );

    // The cluster's state is kept: the next `bosun up` starts the pod again (a new
    // container, as after a reboot).
    let mut up = Up::start(&data, port, "up-test", &[]);
    up.wait_ready();
    wait_until("up-pod running again after bosun down", 60, || {
        pod_field(&kc, "{.status.phase}/{.status.containerStatuses[0].ready}") == "Running/true"
    });
    assert_ne!(
        pod_field(&kc, "{.status.containerStatuses[0].containerID}"),
        container
    );
    let (ok, _, err) = kubectl(&kc, &["delete", "pod", "up-pod", "--timeout=60s"], None);
    assert!(ok, "kubectl delete: {err}");
    up.stop();
    down_leaves_nothing(&data);
    // Nothing left to do: a second run succeeds and removes nothing.
    let (ok, out, err) = common::bosun_down(&data);
    assert!(
        ok && out.contains("bosun down: 0 containers stopped, 0 mounts unmounted, 0 network"),
        "{out}{err}"
    );
}

/// Runs `bosun down` on a stopped cluster and checks that no process, mount or network
/// state of it is left.
fn down_leaves_nothing(data: &Path) {
    let (ok, out, err) = common::bosun_down(data);
    assert!(ok, "bosun down failed:\n{out}{err}");
    println!("bosun down:\n{out}");
    let procs = common::processes_naming(data);
    assert!(procs.is_empty(), "left running after bosun down: {procs:?}");
    let mounts = common::mounts_under(data);
    assert!(
        mounts.is_empty(),
        "left mounted after bosun down: {mounts:?}"
    );
    let net = common::host_network_state();
    assert!(net.is_empty(), "left after bosun down: {net:?}");
}

/// Whether a cgroup `pod<uid>` exists under `kubepods` (v1: in any hierarchy; v2: the root).
fn pod_cgroup_exists(uid: &str) -> bool {
    let root = Path::new("/sys/fs/cgroup");
    let mut bases = vec![root.to_path_buf()];
    bases.extend(
        std::fs::read_dir(root)
            .expect("/sys/fs/cgroup")
            .flatten()
            .map(|e| e.path()),
    );
    bases.iter().any(|b| {
        ["", "burstable/", "besteffort/"]
            .iter()
            .any(|q| b.join(format!("kubepods/{q}pod{uid}")).is_dir())
    })
}
