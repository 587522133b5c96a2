//! End to end with the real kubectl through the API server to the kubelet: `exec` (exit
//! codes, stdin, tty with resize, the container's namespaces), `cp` both ways, `attach` and
//! `port-forward`; kube-rs's `Api::portforward` (the WebSocket channel protocol). Root
//! required (fails, never skips, without it).
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{status_of, Cluster};

fn kubectl(c: &Cluster, args: &[&str]) -> Command {
    let mut cmd = Command::new(bosun_testkit::kubectl_path());
    cmd.arg("--kubeconfig").arg(c.ts.kubeconfig()).args(args);
    cmd.env("KUBECACHEDIR", c.data.path().join("kubecache"));
    cmd
}

/// Runs kubectl off the async runtime (the server and agent live on it).
async fn run(mut cmd: Command, stdin: Option<Vec<u8>>) -> Output {
    tokio::task::spawn_blocking(move || {
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start kubectl");
        if let (Some(input), Some(mut si)) = (stdin, child.stdin.take()) {
            si.write_all(&input).expect("write kubectl stdin");
        }
        child.wait_with_output().expect("wait for kubectl")
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn wait_ready(c: &Cluster, pod: &str, containers: &[&str]) {
    let names: Vec<String> = containers.iter().map(|s| s.to_string()).collect();
    c.wait_pod(pod, 60, move |p| {
        names
            .iter()
            .all(|n| status_of(p, n)["state"]["running"].is_object())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_stdin_tty_and_cp() {
    let c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  nodeName: NODE
  containers:
  - {name: main, image: bosun.test/busybox:latest, command: [sh, -c, "exec sleep 3600"], env: [{name: GREETING, value: hello-env}]}
  - {name: side, image: bosun.test/busybox:latest, command: [sh, -c, "exec sleep 3600"]}
"#,
    );
    wait_ready(&c, "box", &["main", "side"]).await;

    // Output on both streams and the exit code.
    let out = run(
        kubectl(
            &c,
            &[
                "exec",
                "box",
                "-c",
                "main",
                "--",
                "sh",
                "-c",
                "echo hi; echo oops >&2; exit 3",
            ],
        ),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    assert!(text(&out.stderr).contains("oops"), "{}", text(&out.stderr));

    let out = run(
        kubectl(&c, &["exec", "box", "-c", "main", "--", "true"]),
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Inside the container: its hostname (the pod's), its PID namespace (pid 1 is its
    // command), its env, its root filesystem.
    let out = run(
        kubectl(
            &c,
            &[
                "exec",
                "box",
                "-c",
                "main",
                "--",
                "sh",
                "-c",
                "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $GREETING; id -u; test -f /bin/busybox && echo rootfs",
            ],
        ),
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines[0], "box", "{lines:?}");
    assert_eq!(lines[1].trim(), "sleep 3600", "{lines:?}");
    assert_eq!(lines[2], "hello-env");
    assert_eq!(lines[3], "0");
    assert_eq!(lines[4], "rootfs");

    // A command that does not exist.
    let out = run(
        kubectl(&c, &["exec", "box", "-c", "main", "--", "no-such-command"]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );

    // stdin, closed at its end (v5's CLOSE signal).
    let out = run(
        kubectl(
            &c,
            &[
                "exec",
                "-i",
                "box",
                "-c",
                "side",
                "--",
                "sh",
                "-c",
                "cat; echo done",
            ],
        ),
        Some(b"line one\nline two\n".to_vec()),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "line one\nline two\ndone\n");

    // A tty: kubectl needs a terminal as its stdin; the size it reports reaches the pty.
    let (master, slave) = bosun_runtime::exec::open_pty().unwrap();
    bosun_runtime::exec::set_window_size(&slave, 101, 33).unwrap();
    let mut cmd = kubectl(
        &c,
        &[
            "exec",
            "-ti",
            "box",
            "-c",
            "main",
            "--",
            "sh",
            "-c",
            "test -t 0 && echo tty-yes; sleep 1; stty size; exit 4",
        ],
    );
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let (status, seen) = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("start kubectl");
        drop(cmd);
        // Read the terminal until kubectl is done and the pty reports EOF/EIO.
        let mut f = std::fs::File::from(master);
        let mut seen = Vec::new();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            seen
        });
        let status = child.wait().expect("wait for kubectl");
        (status, reader.join().unwrap())
    })
    .await
    .unwrap();
    let seen = text(&seen);
    assert!(seen.contains("tty-yes"), "{seen}");
    assert!(seen.contains("33 101"), "{seen}");
    assert_eq!(status.code(), Some(4), "{seen}");

    // cp both ways (tar through exec).
    let local = c.data.path().join("up.txt");
    let content = "copied by kubectl cp\n".repeat(1000);
    std::fs::write(&local, &content).unwrap();
    let out = run(
        kubectl(
            &c,
            &[
                "cp",
                local.to_str().unwrap(),
                "default/box:/tmp/up.txt",
                "-c",
                "main",
            ],
        ),
        None,
    )
    .await;
    assert!(out.status.success(), "cp up: {}", text(&out.stderr));
    let out = run(
        kubectl(
            &c,
            &["exec", "box", "-c", "main", "--", "wc", "-c", "/tmp/up.txt"],
        ),
        None,
    )
    .await;
    assert!(
        text(&out.stdout).starts_with(&content.len().to_string()),
        "{}",
        text(&out.stdout)
    );
    let back = c.data.path().join("down.txt");
    let out = run(
        kubectl(
            &c,
            &[
                "cp",
                "default/box:/tmp/up.txt",
                back.to_str().unwrap(),
                "-c",
                "main",
            ],
        ),
        None,
    )
    .await;
    assert!(out.status.success(), "cp down: {}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&back).unwrap(), content);

    // Errors are Status bodies kubectl prints.
    let out = run(kubectl(&c, &["exec", "nope", "--", "true"]), None).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        kubectl(&c, &["exec", "box", "-c", "ghost", "--", "true"]),
        None,
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("container ghost is not valid"),
        "{}",
        text(&out.stderr)
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_port_forward() {
    let c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: NODE
  containers:
  - name: httpd
    image: bosun.test/busybox:latest
    command: [sh, -c, "mkdir -p /www; echo hello-from-pod > /www/index.html; exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - {name: main, image: bosun.test/busybox:latest, command: [sh, -c, "sleep 4; for i in 1 2 3; do echo tick $i; echo tock $i >&2; sleep 1; done"]}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - {name: main, image: bosun.test/busybox:latest, stdin: true, stdinOnce: true, command: [sh, -c, "read line; echo got:$line; cat; echo end"]}
"#,
    );
    wait_ready(&c, "ticker", &["main"]).await;

    // attach: what the container writes from now on, until it exits.
    let out = run(kubectl(&c, &["attach", "ticker", "-c", "main"]), None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("tick 3\n"), "{stdout}");
    assert!(!stdout.contains("tock"), "{stdout}");
    assert!(
        text(&out.stderr).contains("tock 3"),
        "{}",
        text(&out.stderr)
    );

    // attach -i: stdin reaches the container; its end closes a stdinOnce container's stdin.
    wait_ready(&c, "reader", &["main"]).await;
    let out = run(
        kubectl(&c, &["attach", "-i", "reader", "-c", "main"]),
        Some(b"hello\nmore input\n".to_vec()),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "got:hello\nmore input\nend\n");
    let p = c
        .wait_pod("reader", 30, |p| p["status"]["phase"] == "Succeeded")
        .await;
    assert_eq!(status_of(&p, "main")["state"]["terminated"]["exitCode"], 0);

    // port-forward: kubectl picks a local port and tunnels SPDY in a WebSocket.
    wait_ready(&c, "web", &["httpd"]).await;
    let mut pf = kubectl(&c, &["port-forward", "pod/web", ":8080"]);
    pf.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = pf.spawn().expect("start kubectl port-forward");
    let stdout = child.stdout.take().unwrap();
    let port = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        // "Forwarding from 127.0.0.1:PORT -> 8080"
        while let Some(Ok(l)) = lines.next() {
            if let Some(rest) = l.strip_prefix("Forwarding from 127.0.0.1:") {
                let port: u16 = rest.split_whitespace().next()?.parse().ok()?;
                // Keep draining so kubectl never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines.by_ref() {});
                return Some(port);
            }
        }
        None
    })
    .await
    .unwrap();
    let Some(port) = port else {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("no local port from kubectl: {}", text(&out.stderr));
    };
    for round in 0..3 {
        let body = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET /index.html HTTP/1.0\r\nHost: web\r\n\r\n")
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while Instant::now() < deadline {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            text(&got)
        })
        .await
        .unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK"), "round {round}: {body}");
        assert!(body.contains("hello-from-pod"), "round {round}: {body}");
    }
    // Several connections at once share the one tunnel.
    let mut handles = Vec::new();
    for _ in 0..4 {
        handles.push(tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
            let mut got = String::new();
            let _ = s.read_to_string(&mut got);
            got
        }));
    }
    for h in handles {
        let got = h.await.unwrap();
        assert!(got.contains("hello-from-pod"), "{got}");
    }
    let _ = child.kill();
    let _ = child.wait();
    c.shutdown().await;
}

/// One HTTP/1.0 GET of /index.html over a forwarded stream; the reply up to the pod's close.
async fn get_index(mut s: tokio::io::DuplexStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: web\r\n\r\n")
        .await
        .expect("write to the forwarded port");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got))
        .await
        .expect("the pod answered and closed in time")
        .expect("read the forwarded port");
    text(&got)
}

/// kube-rs's `Api::portforward`: upstream's WebSocket channel protocol (`v4.channel.k8s.io`,
/// ports in the query, channel 2i data and 2i+1 errors) through the API server to the
/// kubelet, not kubectl's SPDY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_port_forward() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::Api;

    let c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: NODE
  containers:
  - name: httpd
    image: bosun.test/busybox:latest
    command: [sh, -c, "mkdir -p /www; echo hello-from-pod > /www/index.html; exec httpd -f -p 8080 -h /www"]
"#,
    );
    wait_ready(&c, "web", &["httpd"]).await;
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");

    for round in 0..2 {
        let mut pf = pods.portforward("web", &[8080]).await.expect("portforward");
        let s = pf.take_stream(8080).expect("stream for 8080");
        let body = get_index(s).await;
        assert!(body.starts_with("HTTP/1.1 200 OK"), "round {round}: {body}");
        assert!(body.contains("hello-from-pod"), "round {round}: {body}");
    }

    // Two ports on one WebSocket: one nothing listens on fails on its error channel, the
    // other still answers.
    let mut pf = pods
        .portforward("web", &[9, 8080])
        .await
        .expect("portforward two ports");
    let err = pf.take_error(9).expect("error future for 9");
    let msg = tokio::time::timeout(Duration::from_secs(20), err)
        .await
        .expect("error in time")
        .expect("an error message for port 9");
    assert!(
        msg.starts_with("error forwarding port 9 to pod web, uid ") && msg.contains("refused"),
        "{msg}"
    );
    let body = get_index(pf.take_stream(8080).expect("stream for 8080")).await;
    assert!(body.contains("hello-from-pod"), "{body}");

    // A pod that does not exist is the API server's 404, before any upgrade.
    let e = pods
        .portforward("nope", &[8080])
        .await
        .err()
        .expect("no such pod");
    assert!(matches!(&e, kube::Error::Api(s) if s.code == 404), "{e:?}");
    c.shutdown().await;
}
