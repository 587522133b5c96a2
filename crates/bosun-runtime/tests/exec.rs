//! The exec helper and the attach socket against real containers (root required; fails,
//! never skips, without it).
mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use bosun_runtime::cgroup::{pod_cgroup_path, QosClass, Resources};
use common::{runtime_with_busybox, sh};

const T: Duration = Duration::from_secs(30);

fn exec(rt: &bosun_runtime::Runtime, id: &str, script: &str) -> (i32, String, String) {
    let out = rt
        .exec_command(id, &["sh".into(), "-c".into(), script.into()], false)
        .unwrap()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exec_joins_the_containers_namespaces_cgroup_and_credentials() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    let pod = pod_cgroup_path(QosClass::Burstable, "test-exec-pod");
    let mut spec = sh("ex", "echo $$ > /tmp/pid; exec sleep 300");
    spec.cgroup_path = Some(format!("{pod}/ex"));
    spec.resources = Resources::from_requests_limits(None, None, Some(64 << 20));
    spec.run_as_user = Some(1000);
    spec.hostname = Some("exec-host".into());
    spec.env = vec!["FROM_SPEC=yes".into()];
    spec.working_dir = Some("/tmp".into());
    rt.create(&spec).unwrap();
    rt.start("ex").unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let (code, out, err) = exec(
        &rt,
        "ex",
        "id -u; hostname; echo $FROM_SPEC; pwd; cat /tmp/pid; grep CapEff /proc/self/status; cat /proc/self/cgroup",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "exec-host");
    assert_eq!(lines[2], "yes");
    assert_eq!(lines[3], "/tmp");
    // The container's first process is pid 1 of the namespace the exec joined.
    assert_eq!(lines[4], "1");
    // uid 1000 without ambient capabilities: nothing effective.
    assert!(lines[5].ends_with("0000000000000000"), "{out}");
    // The cgroup namespace is the container's: its own cgroup is the root there, while the
    // host sees the exec in the container's cgroup.
    assert!(lines[6..].iter().any(|l| l.ends_with(":/")), "{out}");

    let (code, _, err) = exec(&rt, "ex", "exit 7");
    assert_eq!(code, 7, "{err}");
    let out = rt
        .exec_command("ex", &["no-such-program".into()], false)
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    rt.kill("ex", libc::SIGKILL).unwrap();
    rt.wait("ex", T).unwrap();
    // A stopped container cannot be entered.
    assert!(rt.exec_command("ex", &["true".into()], false).is_err());
    rt.delete("ex", false).unwrap();
    rt.cgroups().remove(&pod).unwrap();
}

#[test]
fn attach_socket_streams_output_and_feeds_stdin_once() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    let mut spec = sh("att", "read a; echo got:$a; echo warn >&2; cat; echo end");
    spec.stdin = true;
    spec.stdin_once = true;
    rt.create(&spec).unwrap();
    rt.start("att").unwrap();
    let mut s = rt.attach("att").unwrap().expect("attach socket");
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"first\nsecond\n").unwrap();
    // End of input: stdinOnce closes the container's stdin, so `cat` ends.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut frames = Vec::new();
    s.read_to_end(&mut frames).unwrap();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut rest = &frames[..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let data = &rest[5..5 + len];
        match rest[0] {
            1 => stdout.extend_from_slice(data),
            2 => stderr.extend_from_slice(data),
            other => panic!("unknown stream {other}"),
        }
        rest = &rest[5 + len..];
    }
    assert!(rest.is_empty());
    assert_eq!(String::from_utf8_lossy(&stdout), "got:first\nsecond\nend\n");
    assert_eq!(String::from_utf8_lossy(&stderr), "warn\n");
    let st = rt.wait("att", T).unwrap();
    assert_eq!(st.exit_code, Some(0));
    // The log has it all too.
    let log = std::fs::read_to_string(rt.config("att").unwrap().log_path).unwrap();
    assert!(log.contains("stdout F got:first"), "{log}");
    rt.delete("att", false).unwrap();

    // Without stdin the container reads /dev/null.
    let spec = sh("nostdin", "cat; echo eof");
    rt.create(&spec).unwrap();
    rt.start("nostdin").unwrap();
    let st = rt.wait("nostdin", T).unwrap();
    assert_eq!(st.exit_code, Some(0));
    rt.delete("nostdin", false).unwrap();
}
