//! Registry pulls against a real registry on loopback: Debian's `docker-registry` (the CNCF
//! distribution registry), filled with `skopeo` from the busybox test image. Anonymous, basic
//! auth (htpasswd) and Docker's bearer-token flow (a token front written here, in front of the
//! real registry). All traffic stays on 127.0.0.1.
mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bosun_runtime::image::{ImageStore, PullErrorKind, PullOptions};
use common::*;

const USER: &str = "bosun";
const PASSWORD: &str = "bosun-secret";
/// bcrypt (cost 4, so each request stays cheap) of PASSWORD, as `htpasswd -B` writes it.
const HTPASSWD: &str = "bosun:$2b$04$8LySPxTgm/7s4baocj0pgusCCd/VYkhjOn03KHj0tdAJg4gbaUGmG\n";

/// Fails loudly when the registry tools are missing: this test must never be skipped.
fn require_tools() {
    for tool in ["docker-registry", "skopeo"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{tool} is not installed: run scripts/install-registry.sh (apt-get install -y \
             docker-registry skopeo)"
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `docker-registry serve` on a free loopback port with its storage in a tempdir, killed on
/// drop.
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    creds: Option<(&'static str, &'static str)>,
}

impl Registry {
    fn start(htpasswd: bool) -> Self {
        require_tools();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  \
             filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: \
             bosun-test\n",
            dir.path().join("data").display()
        );
        if htpasswd {
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, HTPASSWD).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: bosun-test\n    path: {}\n",
                path.display()
            ));
        }
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
        let mut reg = Registry {
            child,
            port,
            dir,
            creds: htpasswd.then_some((USER, PASSWORD)),
        };
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

    /// Pushes the busybox test image as `busybox:<tag>`, converting it with `--format`.
    fn push(&self, tag: &str, format: Option<&str>) {
        let archive = images_dir().join("busybox.oci.tar");
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if let Some((u, p)) = self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        if let Some(f) = format {
            cmd.args(["--format", f]);
        }
        cmd.arg(format!("oci-archive:{}", archive.display()));
        cmd.arg(format!("docker://{}/busybox:{tag}", self.host()));
        let out = cmd.output().expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// PUTs a manifest or index under `busybox:<tag>` (what `docker manifest push` does).
    fn put_manifest(&self, tag: &str, media_type: &str, body: &[u8]) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut head = format!(
            "PUT /v2/busybox/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nContent-Type: \
             {media_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.host(),
            body.len()
        );
        if let Some((u, p)) = self.creds {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            head.push_str(&format!("Authorization: Basic {b}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 201"), "PUT {tag}: {resp}");
    }

    fn insecure(&self) -> PullOptions {
        PullOptions {
            insecure_registries: vec![self.host()],
            ..Default::default()
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn blob_bytes(store: &ImageStore, digest: &str) -> Vec<u8> {
    std::fs::read(store.blob_path(digest).unwrap()).unwrap()
}

fn no_temp_files(store: &ImageStore) {
    let dir = store.root().join("blobs/sha256");
    let tmp: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The image ID the busybox archive has when imported, to compare pulls with.
fn imported_config_digest() -> String {
    let data = tempfile::tempdir().unwrap();
    let store = ImageStore::open(data.path()).unwrap();
    store
        .import(&images_dir().join("busybox.oci.tar"), None)
        .unwrap()[0]
        .config_digest
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_from_an_anonymous_registry() {
    require_root();
    let reg = Registry::start(false);
    reg.push("latest", None);
    reg.push("v2s2", Some("v2s2"));
    let opts = reg.insecure();
    let host = reg.host();
    let data = tempfile::tempdir().unwrap();
    let store = ImageStore::open(data.path()).unwrap();
    let image_id = imported_config_digest();

    // By tag: the config and the one layer are downloaded, verified, unpacked.
    let first = store
        .pull_with_report(&format!("{host}/busybox:latest"), &opts)
        .await
        .unwrap();
    assert_eq!(first.image.reference, format!("{host}/busybox:latest"));
    assert_eq!(first.image.config_digest, image_id);
    assert_eq!(first.blobs_downloaded, 2, "{first:?}");
    assert!(first.bytes_downloaded > 100_000);
    let img = store.resolve(&format!("{host}/busybox")).unwrap();
    assert!(img.layer_dirs[0].join("bin/busybox").is_file());
    no_temp_files(&store);

    // Again: only the manifest is fetched, nothing is downloaded.
    let again = store
        .pull_with_report(&format!("{host}/busybox:latest"), &opts)
        .await
        .unwrap();
    assert_eq!(again.blobs_downloaded, 0);
    assert_eq!(again.image, first.image);

    // The same content as a Docker v2 schema 2 manifest: a new manifest, blobs already here.
    let v2 = store
        .pull_with_report(&format!("{host}/busybox:v2s2"), &opts)
        .await
        .unwrap();
    assert_ne!(v2.image.manifest_digest, first.image.manifest_digest);
    assert_eq!(v2.image.config_digest, image_id);
    assert_eq!(v2.blobs_downloaded, 0, "layer and config are shared");
    let m: serde_json::Value =
        serde_json::from_slice(&blob_bytes(&store, &v2.image.manifest_digest)).unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    // By digest, into an empty store; then again with no registry at all.
    let by_digest = format!("{host}/busybox@{}", first.image.manifest_digest);
    let data2 = tempfile::tempdir().unwrap();
    let store2 = ImageStore::open(data2.path()).unwrap();
    let d = store2.pull_with_report(&by_digest, &opts).await.unwrap();
    assert_eq!(d.image.manifest_digest, first.image.manifest_digest);
    assert_eq!(d.image.reference, by_digest);
    assert_eq!(d.blobs_downloaded, 2);
    assert!(store2.exists(&by_digest).unwrap());

    // An OCI index and a Docker manifest list: the entry for this machine is pulled.
    let entry = |digest: &str, media: &str, arch: &str| {
        serde_json::json!({
            "mediaType": media,
            "digest": digest,
            "size": blob_bytes(&store, digest).len(),
            "platform": {"architecture": arch, "os": "linux"},
        })
    };
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let other_arch = if host_arch() == "s390x" {
        "ppc64le"
    } else {
        "s390x"
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            entry(&first.image.manifest_digest, oci, other_arch),
            entry(&v2.image.manifest_digest, docker, host_arch()),
        ],
    });
    reg.put_manifest(
        "multi",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            entry(&v2.image.manifest_digest, docker, other_arch),
            entry(&first.image.manifest_digest, oci, host_arch()),
        ],
    });
    reg.put_manifest(
        "list",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        &serde_json::to_vec(&list).unwrap(),
    );
    let multi = store
        .pull(&format!("{host}/busybox:multi"), &opts)
        .await
        .unwrap();
    assert_eq!(multi.manifest_digest, v2.image.manifest_digest);
    let listed = store
        .pull(&format!("{host}/busybox:list"), &opts)
        .await
        .unwrap();
    assert_eq!(listed.manifest_digest, first.image.manifest_digest);
    // An index with nothing for this machine.
    let foreign = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&first.image.manifest_digest, oci, other_arch)],
    });
    reg.put_manifest(
        "foreign",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&foreign).unwrap(),
    );
    let e = store
        .pull(&format!("{host}/busybox:foreign"), &opts)
        .await
        .unwrap_err();
    assert_eq!(e.pull_error_kind(), PullErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(other_arch), "{e}");

    // A tag or a repository that does not exist.
    for missing in [
        format!("{host}/busybox:nope"),
        format!("{host}/nothere:latest"),
    ] {
        let e = store.pull(&missing, &opts).await.unwrap_err();
        eprintln!("missing: {e}");
        assert_eq!(e.pull_error_kind(), PullErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains(&missing), "{e}");
        assert!(!store.exists(&missing).unwrap());
    }

    // Not configured as insecure: HTTPS is spoken, and fails against a plain HTTP registry.
    let e = store
        .pull(&format!("{host}/busybox:latest"), &PullOptions::default())
        .await
        .unwrap_err();
    eprintln!("https to a plain registry: {e}");
    assert_eq!(e.pull_error_kind(), PullErrorKind::Unreachable, "{e}");

    // Nothing listens: unreachable, naming the registry and the reference.
    let closed = format!("127.0.0.1:{}", free_port());
    let reference = format!("{closed}/busybox:latest");
    let opts_closed = PullOptions {
        insecure_registries: vec![closed.clone()],
        ..Default::default()
    };
    let e = store.pull(&reference, &opts_closed).await.unwrap_err();
    eprintln!("closed port: {e}");
    assert_eq!(e.pull_error_kind(), PullErrorKind::Unreachable, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&reference) && msg.contains("unreachable"),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");

    // A malformed reference never reaches the network.
    let e = store.pull("Bad Name", &opts).await.unwrap_err();
    assert_eq!(e.pull_error_kind(), PullErrorKind::InvalidReference);
    no_temp_files(&store);
}

fn docker_config(host: &str, user: &str, password: &str) -> Vec<u8> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    serde_json::to_vec(&serde_json::json!({"auths": {host: {"auth": auth}}})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_with_basic_auth() {
    require_root();
    let reg = Registry::start(true);
    reg.push("latest", None);
    let host = reg.host();
    let reference = format!("{host}/busybox:latest");
    let data = tempfile::tempdir().unwrap();
    let store = ImageStore::open(data.path()).unwrap();

    // No credentials.
    let e = store.pull(&reference, &reg.insecure()).await.unwrap_err();
    assert_eq!(e.pull_error_kind(), PullErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains(&reference), "{e}");

    // Wrong credentials, from an imagePullSecret's .dockerconfigjson.
    let mut wrong = reg.insecure();
    wrong
        .add_docker_config(&docker_config(&host, USER, "wrong"))
        .unwrap();
    let e = store.pull(&reference, &wrong).await.unwrap_err();
    eprintln!("wrong credentials: {e}");
    assert_eq!(e.pull_error_kind(), PullErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains("bosun"), "names the user: {e}");

    // Right credentials.
    let mut right = reg.insecure();
    right
        .add_docker_config(&docker_config(&format!("http://{host}"), USER, PASSWORD))
        .unwrap();
    let info = store.pull(&reference, &right).await.unwrap();
    assert_eq!(info.config_digest, imported_config_digest());

    // Several secrets: the most specific (wrong) one is tried first, then the next, as the
    // kubelet does.
    let data2 = tempfile::tempdir().unwrap();
    let store2 = ImageStore::open(data2.path()).unwrap();
    let mut both = reg.insecure();
    both.add_docker_config(&docker_config(&format!("{host}/busybox"), USER, "wrong"))
        .unwrap();
    both.add_docker_config(&docker_config(&host, USER, PASSWORD))
        .unwrap();
    let info2 = store2.pull(&reference, &both).await.unwrap();
    assert_eq!(info2.manifest_digest, info.manifest_digest);
}

/// A token-auth front for a registry, as Docker Hub is: requests without the bearer token get
/// a 401 with a `Bearer realm=…` challenge; `/token` hands the token out for the right basic
/// credentials; everything else is forwarded to the registry, one request per connection.
struct TokenFront {
    port: u16,
    token_requests: Arc<AtomicUsize>,
}

const TOKEN: &str = "bosun-test-token";

impl TokenFront {
    async fn start(backend: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let token_requests = Arc::new(AtomicUsize::new(0));
        let counter = token_requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve_front(conn, port, backend, counter.clone()));
            }
        });
        Self {
            port,
            token_requests,
        }
    }
}

async fn serve_front(
    mut conn: tokio::net::TcpStream,
    port: u16,
    backend: u16,
    tokens: Arc<AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let path = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let headers: Vec<(String, String)> = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let auth = headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let reply = |status: &str, extra: String, body: String| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    let resp = if path.starts_with("/token") {
        tokens.fetch_add(1, Ordering::SeqCst);
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
        );
        let scope_ok = path.contains("scope=repository%3Abusybox%3Apull");
        if auth == want && scope_ok {
            reply(
                "200 OK",
                String::new(),
                format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#),
            )
        } else {
            reply(
                "401 Unauthorized",
                String::new(),
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
            )
        }
    } else if auth != format!("Bearer {TOKEN}") {
        reply(
            "401 Unauthorized",
            format!(
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",\
                 service=\"bosun-test\",scope=\"repository:busybox:pull\"\r\n"
            ),
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.into(),
        )
    } else {
        let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await else {
            return;
        };
        let mut fwd = format!("{request_line}\r\n");
        for (k, v) in &headers {
            if k != "authorization" && k != "connection" {
                fwd.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        fwd.push_str("Connection: close\r\n\r\n");
        if up.write_all(fwd.as_bytes()).await.is_err() {
            return;
        }
        let _ = tokio::io::copy(&mut up, &mut conn).await;
        let _ = conn.shutdown().await;
        return;
    };
    let _ = conn.write_all(resp.as_bytes()).await;
    let _ = conn.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_through_the_bearer_token_flow() {
    require_root();
    let reg = Registry::start(false);
    reg.push("latest", None);
    let front = TokenFront::start(reg.port).await;
    let host = format!("127.0.0.1:{}", front.port);
    let reference = format!("{host}/busybox:latest");
    let opts = PullOptions {
        insecure_registries: vec![host.clone()],
        ..Default::default()
    };
    let data = tempfile::tempdir().unwrap();
    let store = ImageStore::open(data.path()).unwrap();

    // Anonymous: the token service refuses, and the pull says so.
    let e = store.pull(&reference, &opts).await.unwrap_err();
    assert_eq!(e.pull_error_kind(), PullErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains("token service"), "{e}");

    // With credentials: one token for the manifest and the blobs.
    let before = front.token_requests.load(Ordering::SeqCst);
    let mut with = opts.clone();
    with.add_docker_config(&docker_config(&host, USER, PASSWORD))
        .unwrap();
    let r = store.pull_with_report(&reference, &with).await.unwrap();
    assert_eq!(r.blobs_downloaded, 2);
    assert_eq!(r.image.config_digest, imported_config_digest());
    assert_eq!(front.token_requests.load(Ordering::SeqCst) - before, 1);
    no_temp_files(&store);
}
