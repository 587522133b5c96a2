//! Containers end to end: run, logs, exit codes, isolation, sandboxes, limits, adoption.
mod common;

use std::time::Duration;

use bosun_runtime::cgroup::{pod_cgroup_path, QosClass, Resources};
use bosun_runtime::Status;
use common::*;

const T: Duration = Duration::from_secs(20);

#[test]
fn runs_and_records_exit_code_and_log() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    let st = rt
        .create(&sh("c1", "echo hi; echo oops >&2; exit 3"))
        .unwrap();
    assert_eq!(st.status, Status::Created);
    rt.start("c1").unwrap();
    let st = rt.wait("c1", T).unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(st.exit_code, Some(3));
    assert_eq!(st.reason.as_deref(), Some("Error"));
    let log = data.path().join("containers/c1/container.log");
    assert_eq!(log_lines(&log, "stdout"), vec!["hi"]);
    assert_eq!(log_lines(&log, "stderr"), vec!["oops"]);
    let raw = std::fs::read_to_string(&log).unwrap();
    let first = raw.lines().next().unwrap();
    assert!(
        first.ends_with(" stdout F hi") || first.ends_with(" stderr F oops"),
        "{first}"
    );
    assert_eq!(rt.list().unwrap().len(), 1);
    rt.delete("c1", false).unwrap();
    assert!(rt.list().unwrap().is_empty());
}

#[test]
fn isolation_env_user_and_masks() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    let mut spec = sh(
        "c2",
        "echo pid=$$; hostname; id -u; id -g; echo $FOO; pwd; \
         grep CapBnd /proc/self/status; grep NoNewPrivs /proc/self/status; \
         cat /proc/kcore | wc -c; touch /proc/sys/x 2>&1 >/dev/null || echo ro-proc-sys; \
         ls /dev; mount | grep -c ' / ' ",
    );
    spec.env = vec!["FOO=bar".into()];
    spec.hostname = Some("box".into());
    spec.working_dir = Some("/work".into());
    spec.run_as_user = Some(1000);
    spec.run_as_group = Some(1000);
    spec.no_new_privileges = true;
    rt.create(&spec).unwrap();
    rt.start("c2").unwrap();
    let st = rt.wait("c2", T).unwrap();
    let log = data.path().join("containers/c2/container.log");
    let out = log_lines(&log, "stdout");
    assert_eq!(
        st.exit_code,
        Some(0),
        "{out:?} {:?}",
        log_lines(&log, "stderr")
    );
    assert_eq!(out[0], "pid=1");
    assert_eq!(out[1], "box");
    assert_eq!(out[2], "1000");
    assert_eq!(out[3], "1000");
    assert_eq!(out[4], "bar");
    assert_eq!(out[5], "/work");
    // containerd's default set: CHOWN..AUDIT_WRITE = 0x a80425fb
    assert_eq!(out[6], "CapBnd:\t00000000a80425fb");
    assert_eq!(out[7], "NoNewPrivs:\t1");
    assert_eq!(out[8], "0", "/proc/kcore is masked");
    assert!(out.contains(&"ro-proc-sys".to_string()), "{out:?}");
    for d in ["null", "zero", "urandom", "pts", "shm", "ptmx"] {
        assert!(out.contains(&d.to_string()), "/dev/{d} missing: {out:?}");
    }
    rt.delete("c2", false).unwrap();
}

#[test]
fn start_error_for_missing_program() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    let mut spec = sh("c3", "");
    spec.command = Some(vec!["no-such-program".into()]);
    rt.create(&spec).unwrap();
    let err = rt.start("c3").unwrap_err().to_string();
    assert!(err.contains("executable file not found"), "{err}");
    let st = rt.wait("c3", T).unwrap();
    assert_eq!(st.reason.as_deref(), Some("StartError"));
    rt.delete("c3", false).unwrap();
}

#[test]
fn sandbox_shares_network_and_hostname() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    let sb = rt.create_sandbox("pod1", Some("pod-one")).unwrap();
    let mut server = sh("srv", "echo hello | nc -l -p 8080; sleep 1");
    server.namespaces = sb.namespaces();
    let mut client = sh("cli", "hostname; for i in 1 2 3 4 5 6 7 8 9 10; do nc 127.0.0.1 8080 && exit 0; sleep 0.2; done; exit 1");
    client.namespaces = sb.namespaces();
    rt.create(&server).unwrap();
    rt.start("srv").unwrap();
    rt.create(&client).unwrap();
    rt.start("cli").unwrap();
    let st = rt.wait("cli", T).unwrap();
    let out = log_lines(&data.path().join("containers/cli/container.log"), "stdout");
    assert_eq!(st.exit_code, Some(0), "{out:?}");
    assert_eq!(out, vec!["pod-one", "hello"]);
    rt.wait("srv", T).unwrap();
    rt.delete("srv", false).unwrap();
    rt.delete("cli", false).unwrap();
    rt.remove_sandbox("pod1").unwrap();
    assert!(rt.sandbox("pod1").unwrap().is_none());
}

#[test]
fn memory_limit_oom_killed() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    let pod = pod_cgroup_path(QosClass::Burstable, "test-oom-pod");
    let mut spec = sh("oom", "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do x=$x$x; done");
    spec.cgroup_path = Some(format!("{pod}/oom"));
    spec.resources = Resources::from_requests_limits(None, None, Some(16 << 20));
    rt.create(&spec).unwrap();
    rt.start("oom").unwrap();
    let st = rt.wait("oom", T).unwrap();
    assert_eq!(st.reason.as_deref(), Some("OOMKilled"), "{st:?}");
    assert_eq!(st.exit_code, Some(137));
    rt.delete("oom", false).unwrap();
    rt.cgroups().remove(&pod).unwrap();
}

#[test]
fn cpu_limit_holds() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    let pod = pod_cgroup_path(QosClass::Burstable, "test-cpu-pod");
    let mut spec = sh("cpu", "while true; do :; done");
    spec.cgroup_path = Some(format!("{pod}/cpu"));
    spec.resources = Resources::from_requests_limits(Some(100), Some(200), None);
    rt.create(&spec).unwrap();
    rt.start("cpu").unwrap();
    let before = rt.stats("cpu").unwrap().cpu_usage_ns;
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let used = rt.stats("cpu").unwrap().cpu_usage_ns - before;
    let wall = t0.elapsed().as_nanos() as f64;
    let share = used as f64 / wall;
    eprintln!("cpu limit 200m: measured {share:.3} cpus");
    assert!(
        share > 0.1 && share < 0.3,
        "usage {share:.3} cpus with a 0.2 cpu limit"
    );
    rt.delete("cpu", true).unwrap();
    rt.cgroups().remove(&pod).unwrap();
}

#[test]
fn restarted_runtime_adopts_running_containers() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    rt.create(&sh("long", "echo started; sleep 1000")).unwrap();
    rt.start("long").unwrap();
    let before = rt.state("long").unwrap();
    drop(rt);

    let rt = runtime(data.path());
    let st = rt.state("long").unwrap();
    assert_eq!(st.status, Status::Running);
    assert_eq!(st.pid, before.pid);
    assert_eq!(st.shim_pid, before.shim_pid);
    let ids: Vec<_> = rt.list().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, vec!["long"]);
    // The kill goes through the same shim; the exit is recorded.
    rt.kill("long", libc::SIGKILL).unwrap();
    let st = rt.wait("long", T).unwrap();
    assert_eq!(st.exit_code, Some(137));
    assert_eq!(
        log_lines(&data.path().join("containers/long/container.log"), "stdout"),
        vec!["started"]
    );
    rt.delete("long", false).unwrap();
}

#[test]
fn image_in_use_is_not_removed() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    rt.create(&sh("keep", "true")).unwrap();
    assert!(matches!(
        rt.images().remove(BUSYBOX),
        Err(bosun_runtime::Error::ImageInUse { .. })
    ));
    rt.delete("keep", true).unwrap();
    rt.images().remove(BUSYBOX).unwrap();
    rt.images().gc().unwrap();
}

/// CPU time (user + system, clock ticks) of process `pid` from /proc/PID/stat.
fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A container that closes its stdout and stderr and keeps running must not make its shim
/// spin (a closed pipe stays readable as a hang-up to poll), and `wait` returns once it exits.
#[test]
fn shim_idles_while_a_container_without_stdio_runs() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    let st = rt.create(&sh("quiet", "exec >&- 2>&-; sleep 1.5")).unwrap();
    rt.start("quiet").unwrap();
    let before = cpu_ticks(st.shim_pid);
    std::thread::sleep(Duration::from_millis(1000));
    let used = cpu_ticks(st.shim_pid) - before;
    // Clock ticks are 10 ms; a spinning shim uses ~100 in this second, an idle one ~0.
    assert!(
        used <= 10,
        "shim used {used} ticks of CPU in 1 s while its container slept"
    );
    let t = std::time::Instant::now();
    let st = rt.wait("quiet", T).unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(st.exit_code, Some(0));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    rt.delete("quiet", false).unwrap();
}
