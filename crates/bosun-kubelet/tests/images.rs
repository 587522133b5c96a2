//! Images through pods: imagePullSecrets against a real registry with basic auth on loopback
//! (Debian's `docker-registry`, filled with `skopeo`, as bosun-runtime's pull tests do).
//! Root required; all traffic stays on 127.0.0.1.
mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{status_of, Cluster};

const USER: &str = "bosun";
const PASSWORD: &str = "bosun-secret";
/// bcrypt (cost 4) of PASSWORD, as `htpasswd -B` writes it.
const HTPASSWD: &str = "bosun:$2b$04$8LySPxTgm/7s4baocj0pgusCCd/VYkhjOn03KHj0tdAJg4gbaUGmG\n";

/// A `docker-registry serve` with htpasswd auth on a free loopback port, killed on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        for tool in ["docker-registry", "skopeo"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                found,
                "{tool} is not installed: run scripts/install-registry.sh"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, HTPASSWD).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  \
             filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: \
             bosun-test\nauth:\n  htpasswd:\n    realm: bosun-test\n    path: {}\n",
            dir.path().join("data").display(),
            htpasswd.display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut reg = Registry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = reg.child.try_wait() {
                panic!("docker-registry exited with {status}: {}", reg.log());
            }
            assert!(Instant::now() < deadline, "registry not up: {}", reg.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes the busybox test image as `busybox:<tag>`.
    fn push(&self, tag: &str) {
        let out = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
            ])
            .arg(format!("--dest-creds={USER}:{PASSWORD}"))
            .arg(format!(
                "oci-archive:{}",
                common::busybox_archive().display()
            ))
            .arg(format!("docker://{}/busybox:{tag}", self.host()))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pod_yaml(name: &str, image: &str, secret: Option<&str>) -> String {
    let secrets = secret
        .map(|s| format!("  imagePullSecrets: [{{name: {s}}}]\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: NODE\n  \
         terminationGracePeriodSeconds: 0\n{secrets}  containers:\n  - {{name: main, image: \
         {image}, command: [sleep, \"3600\"]}}\n"
    )
}

/// Without a secret the pull is refused (ErrImagePull, then ImagePullBackOff, saying
/// unauthorized); with the pod's imagePullSecret, and then with the service account's, the
/// pod runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_secrets_authenticate_pulls() {
    common::require_root();
    let reg = Registry::start();
    reg.push("latest");
    reg.push("sa");
    let host = reg.host();
    let h = host.clone();
    let c = Cluster::start_with(std::sync::Arc::new(move |cfg| {
        cfg.pull_images = true;
        cfg.insecure_registries = vec![h.clone()];
    }))
    .await;

    let image = format!("{host}/busybox:latest");
    c.apply(&pod_yaml("no-secret", &image, None));
    let p = c
        .wait_pod("no-secret", 60, |p| {
            let r = &status_of(p, "main")["state"]["waiting"]["reason"];
            r == "ErrImagePull" || r == "ImagePullBackOff"
        })
        .await;
    let msg = status_of(&p, "main")["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("unauthorized"), "{msg}");
    assert!(msg.contains(&image), "names the image: {msg}");
    c.wait_pod("no-secret", 30, |p| {
        status_of(p, "main")["state"]["waiting"]["reason"] == "ImagePullBackOff"
    })
    .await;

    c.ts.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={host}"),
        &format!("--docker-username={USER}"),
        &format!("--docker-password={PASSWORD}"),
    ]);
    c.apply(&pod_yaml("with-secret", &image, Some("regcred")));
    c.wait_pod("with-secret", 60, |p| p["status"]["phase"] == "Running")
        .await;

    // The service account's imagePullSecrets count for pods that name none.
    c.ts.kubectl_ok(&["create", "serviceaccount", "puller"]);
    c.ts.kubectl_ok(&[
        "patch",
        "serviceaccount",
        "puller",
        "-p",
        r#"{"imagePullSecrets": [{"name": "regcred"}]}"#,
    ]);
    let yaml = pod_yaml("via-sa", &format!("{host}/busybox:sa"), None).replace(
        "  nodeName: NODE\n",
        "  nodeName: NODE\n  serviceAccountName: puller\n",
    );
    c.apply(&yaml);
    c.wait_pod("via-sa", 60, |p| p["status"]["phase"] == "Running")
        .await;

    c.ts.kubectl_ok(&[
        "delete",
        "pod",
        "no-secret",
        "with-secret",
        "via-sa",
        "--wait=true",
    ]);
    c.shutdown().await;
}

/// An OCI layout directory holding one small image of its own (one layer with `bytes` of
/// data), so that it shares nothing with busybox.
fn own_image(dir: &std::path::Path, bytes: usize) -> std::path::PathBuf {
    use sha2::{Digest, Sha256};
    let content = dir.join("content");
    std::fs::create_dir_all(&content).unwrap();
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(content.join("gc-test.bin"), data).unwrap();
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let layer = dir.join("layer.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&layer)
        .arg("-C")
        .arg(&content)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = format!("{:x}", Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (layer_digest, layer_size) = put(&std::fs::read(&layer).unwrap());
    let config = serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "config": {"Cmd": ["/gc-test.bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_size}],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    layout
}

/// With the disk (as the stats report it) above the high threshold, unused images are
/// removed until the low threshold would be reached, with an event; images of running
/// containers stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_images_are_collected_under_disk_pressure() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let pressure = Arc::new(AtomicBool::new(false));
    let p = pressure.clone();
    let c = Cluster::start_with(Arc::new(move |cfg| {
        cfg.image_gc = bosun_kubelet::imagegc::ImageGcPolicy {
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            min_age: Duration::ZERO,
            period: Duration::from_millis(500),
        };
        let p = p.clone();
        cfg.stats_override = Some(bosun_kubelet::stats::StatsOverride(Arc::new(move |s| {
            // 50 % used of 10 MB (whatever the real disk is) until the switch; then 90 %:
            // 500 kB to free to get to 80 %.
            let available = if p.load(Ordering::SeqCst) {
                1_000_000
            } else {
                5_000_000
            };
            s.node.fs.capacity_bytes = 10_000_000;
            s.node.fs.available_bytes = available;
            s.node.fs.used_bytes = 10_000_000 - available;
        })));
    }))
    .await;
    let work = tempfile::tempdir().unwrap();
    let store = bosun_runtime::image::ImageStore::open(c.data.path()).unwrap();
    store
        .import(
            &own_image(work.path(), 1_500_000),
            Some("bosun.test/gc-victim:1"),
        )
        .unwrap();
    c.apply(&pod_yaml("keeps-busybox", common::BUSYBOX, None));
    c.wait_pod("keeps-busybox", 60, |p| p["status"]["phase"] == "Running")
        .await;

    pressure.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    let refs = || -> Vec<String> {
        store
            .list()
            .unwrap()
            .into_iter()
            .map(|i| i.reference)
            .collect()
    };
    while refs().iter().any(|r| r.contains("gc-victim")) {
        assert!(
            Instant::now() < deadline,
            "gc-victim still there: {:?}",
            refs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        refs().iter().any(|r| r.contains("bosun.test/busybox")),
        "the running pod's image stays: {:?}",
        refs()
    );
    let events = c.ts.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={}", c.node),
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = events;
    while !events.contains("ImageGCFreed") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        events = c.ts.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={}", c.node),
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ]);
    }
    assert!(events.contains("ImageGCFreed"), "{events}");
    assert!(events.contains("gc-victim"), "{events}");
    assert!(
        !events.contains("FreeDiskSpaceFailed"),
        "1.5 MB was enough: {events}"
    );
    assert_eq!(
        status_of(
            &c.wait_pod("keeps-busybox", 5, |p| p["status"]["phase"] == "Running")
                .await,
            "main"
        )["restartCount"],
        0
    );
    c.ts.kubectl_ok(&["delete", "pod", "keeps-busybox", "--wait=true"]);
    c.shutdown().await;
}
