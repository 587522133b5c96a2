//! `bosun ctl port-forward` end to end: an in-process server and agent (root required: fails,
//! never skips, without it), a busybox httpd pod behind a service, and pages fetched through
//! the local ports `port-forward pod/NAME` and `port-forward svc/NAME` open.
//!
//! No test harness (`harness = false`): this binary is also the agent's container shim
//! (`port_forward shim ...`), which must start before any thread exists, as `bosun shim`
//! does in the real binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bosun_testkit::TestServer;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("shim") {
        std::process::exit(bosun_runtime::shim::main(argv[2..].to_vec()));
    }
    if argv.iter().any(|a| a == "--list") {
        println!("port_forward_pod_and_service: test");
        return;
    }
    assert!(
        bosun_kubelet::is_root(),
        "bosun ctl's port-forward test must run as root (the agent mounts overlays, creates \
         namespaces and cgroups); run it as root, as CI does"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(port_forward_pod_and_service());
    println!("test port_forward_pod_and_service ... ok");
}

/// A client that authenticates as the agent does: the node join token, the cluster CA.
fn token_client(ts: &TestServer) -> kube::Client {
    use base64::Engine as _;
    let url: http::Uri = ts.server.url.parse().expect("server url");
    let mut cfg = kube::Config::new(url);
    let body: String = ts
        .server
        .pki
        .ca_cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("CA PEM");
    cfg.root_cert = Some(vec![der]);
    cfg.auth_info.token = Some(ts.server.pki.node_token.clone().into());
    kube::Client::try_from(cfg).expect("token client")
}

/// Starts `bosun-ctl port-forward ARGS` and returns it with the local port of its first
/// `Forwarding from 127.0.0.1:PORT -> REMOTE` line, checking REMOTE.
fn start_forward(kubeconfig: &Path, args: &[&str], remote: u16) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bosun-ctl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("port-forward")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bosun-ctl port-forward");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut port = None;
    for l in lines.by_ref() {
        let Ok(l) = l else { break };
        if let Some(rest) = l.strip_prefix("Forwarding from 127.0.0.1:") {
            let (p, r) = rest.split_once(" -> ").expect("kubectl's line");
            assert_eq!(r, remote.to_string(), "{l}");
            port = p.parse::<u16>().ok();
            break;
        }
    }
    // Keep draining, so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let Some(port) = port else {
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        panic!(
            "no Forwarding line from bosun ctl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    (child, port)
}

/// GET /index.html through 127.0.0.1:`port`: the whole reply.
fn fetch(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: web\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

async fn port_forward_pod_and_service() {
    let ts = TestServer::start().await.expect("start server");
    let data = tempfile::tempdir().expect("tempdir");
    let archive = bosun_testkit::busybox_archive();
    bosun_runtime::image::ImageStore::open(data.path())
        .expect("image store")
        .import(&archive, None)
        .expect("import busybox");
    let node = format!("pf-{}", std::process::id());
    let mut cfg = bosun_kubelet::KubeletConfig::new(
        node.clone(),
        data.path(),
        ts.server.pki.ca_cert_pem.clone(),
    );
    cfg.node_ip = Some("127.0.0.1".parse().expect("ip"));
    cfg.bind_address = "127.0.0.1".parse().expect("ip");
    cfg.port = 0;
    let exe = std::env::current_exe().expect("current exe");
    cfg.shim_program = Some(exe.clone());
    cfg.shim_args = Some(vec!["shim".into()]);
    cfg.pull_images = false;
    // The shared test machine's disk and memory must not make the agent evict the pod.
    cfg.eviction.memory_available_bytes = 1 << 20;
    cfg.eviction.nodefs_available_percent = 1;
    // Nor remove its unused images (image GC at 85 % disk use).
    cfg.image_gc.high_threshold_percent = 100;
    let agent = tokio::spawn(bosun_kubelet::run(token_client(&ts), cfg));

    let manifest = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  nodeName: NODE
  containers:
  - name: httpd
    image: bosun.test/busybox:latest
    command: [sh, -c, "mkdir -p /www; echo hello-through-ctl > /www/index.html; exec httpd -f -p 8080 -h /www"]
    ports: [{name: web, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: web}]
"#
    .replace("NODE", &node);
    let out = ts.kubectl_stdin(&["apply", "-f", "-"], &manifest);
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pods: Api<Pod> = Api::namespaced(ts.client().await.expect("client"), "default");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let p = pods.get("web").await.expect("get pod");
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pod web not ready: {:?}",
            p.status
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let kubeconfig = ts.kubeconfig().to_path_buf();
    let body = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        // A pod by name with a random local port; the same pod by pod/NAME and a named port;
        // the service (port 80, targetPort `web`) on one of its ready pods' 8080.
        for args in [
            &["web", ":8080"][..],
            &["pod/web", ":web"][..],
            &["svc/web", ":80"][..],
        ] {
            let (mut child, port) = start_forward(&kubeconfig, args, 8080);
            // Twice over the same listener: each connection gets its own stream.
            for _ in 0..2 {
                seen.push((args.join(" "), fetch(port)));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // A service port the service does not have is refused with kubectl's message.
        let out = Command::new(env!("CARGO_BIN_EXE_bosun-ctl"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["port-forward", "svc/web", ":81"])
            .output()
            .expect("bosun-ctl");
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            "error: Service web does not have a service port 81"
        );
        seen
    })
    .await
    .expect("forwarding thread");
    for (args, reply) in body {
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{args}: {reply}");
        assert!(reply.contains("hello-through-ctl"), "{args}: {reply}");
    }

    // Stop the agent, then its containers and sandboxes.
    agent.abort();
    let _ = agent.await;
    let mut rc = bosun_runtime::RuntimeConfig::new(data.path());
    rc.shim_program = exe;
    rc.shim_args = vec!["shim".into()];
    let dir = data.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let rt = bosun_runtime::Runtime::new(rc).expect("runtime");
        for c in rt.list().unwrap_or_default() {
            let _ = rt.delete(&c.id, true);
        }
        if let Ok(rd) = std::fs::read_dir(dir.join("sandboxes")) {
            for e in rd.flatten() {
                let _ = rt.remove_sandbox(&e.file_name().to_string_lossy());
            }
        }
        if let Ok(rd) = std::fs::read_dir(dir.join("pods")) {
            for e in rd.flatten() {
                if let Ok(vs) = std::fs::read_dir(e.path().join("volumes")) {
                    for x in vs.flatten() {
                        let _ = nix::mount::umount2(&x.path(), nix::mount::MntFlags::MNT_DETACH);
                    }
                }
            }
        }
    })
    .await
    .expect("cleanup");
}
