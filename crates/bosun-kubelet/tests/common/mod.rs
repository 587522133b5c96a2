//! Helpers for the kubelet's end-to-end tests: an in-process API server, an in-process agent
//! over a temporary data dir with the busybox test image imported, wait helpers.
#![allow(dead_code)]
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bosun_kubelet::KubeletConfig;
use bosun_testkit::TestServer;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::Value;

pub const BUSYBOX: &str = "bosun.test/busybox:latest";

/// Fails loudly (never skips) when not root: the agent mounts, unshares and writes cgroups.
pub fn require_root() {
    assert!(
        bosun_kubelet::is_root(),
        "bosun-kubelet integration tests must run as root (the agent mounts overlays, creates \
         namespaces and cgroups); run them as root, as CI does"
    );
}

pub use bosun_testkit::busybox_archive;

/// A change to the agent's config.
pub type Tweak = std::sync::Arc<dyn Fn(&mut KubeletConfig) + Send + Sync>;

/// A server plus one agent (node `node_name`) running as a task of this test's runtime.
pub struct Cluster {
    /// Changes the agent's config before it starts (see [`Cluster::start_with`]).
    pub tweak: Option<Tweak>,
    pub ts: TestServer,
    pub data: tempfile::TempDir,
    pub node: String,
    pub agent: Option<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    pub async fn start() -> Cluster {
        Cluster::start_inner(None).await
    }

    /// As [`Cluster::start`], with the agent's config changed by `tweak`.
    pub async fn start_with(tweak: Tweak) -> Cluster {
        Cluster::start_inner(Some(tweak)).await
    }

    async fn start_inner(tweak: Option<Tweak>) -> Cluster {
        require_root();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let ts = TestServer::start().await.expect("start server");
        let data = tempfile::tempdir().expect("tempdir");
        let store = bosun_runtime::image::ImageStore::open(data.path()).expect("image store");
        store
            .import(&busybox_archive(), None)
            .expect("import busybox");
        let node = format!("node-{}", &uuid_like()[..8]);
        let mut c = Cluster {
            ts,
            data,
            node,
            agent: None,
            tweak,
        };
        c.start_agent().await;
        c.wait_node_ready().await;
        c
    }

    pub fn config(&self) -> KubeletConfig {
        let mut cfg = KubeletConfig::new(
            self.node.clone(),
            self.data.path(),
            self.ts.server.pki.ca_cert_pem.clone(),
        );
        cfg.node_ip = Some("127.0.0.1".parse().unwrap());
        cfg.bind_address = "127.0.0.1".parse().unwrap();
        cfg.port = 0;
        cfg.shim_program = Some(PathBuf::from(env!("CARGO_BIN_EXE_bosun-kubelet-shim")));
        cfg.shim_args = Some(vec![]);
        // Traffic in tests stays on this machine: no registry lookups.
        cfg.pull_images = false;
        // Stats every second, so CPU rates exist soon after a pod starts.
        cfg.stats_interval = std::time::Duration::from_secs(1);
        // The shared test machine's disk and memory must not make the agent evict test pods.
        cfg.eviction.memory_available_bytes = 1 << 20;
        cfg.eviction.nodefs_available_percent = 1;
        // Nor collect its images (image GC at 85 % disk use would remove the test image
        // between pods); tests of image GC turn it on with their own thresholds.
        cfg.image_gc.high_threshold_percent = 100;
        if let Some(t) = &self.tweak {
            t(&mut cfg);
        }
        cfg
    }

    /// Starts the agent with the node join token and the cluster CA, as `bosun agent` does.
    pub async fn start_agent(&mut self) {
        let client = token_client(&self.ts).await;
        let cfg = self.config();
        self.agent = Some(tokio::spawn(async move {
            if let Err(e) = bosun_kubelet::run(client, cfg).await {
                panic!("agent failed: {e}");
            }
        }));
    }

    /// Drops the agent like a SIGKILL would: its tasks stop, its containers keep running.
    pub async fn kill_agent(&mut self) {
        if let Some(a) = self.agent.take() {
            a.abort();
            let _ = a.await;
        }
    }

    pub async fn wait_node_ready(&self) {
        let out = self.ts.kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("node/{}", self.node),
            "--timeout=60s",
        ]);
        assert!(out.contains("condition met"), "{out}");
    }

    pub async fn client(&self) -> kube::Client {
        self.ts.client().await.expect("client")
    }

    pub fn apply(&self, yaml: &str) {
        let y = yaml.replace("NODE", &self.node);
        let out = self.ts.kubectl_stdin(&["apply", "-f", "-"], &y);
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Polls the pod until `f` holds on its JSON, or panics after `secs` with the last seen.
    pub async fn wait_pod(&self, name: &str, secs: u64, f: impl Fn(&Value) -> bool) -> Value {
        let api: Api<Pod> = Api::namespaced(self.client().await, "default");
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Ok(Some(p)) = api.get_opt(name).await {
                last = serde_json::to_value(&p).unwrap();
                if f(&last) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "pod {name}: condition not met in {secs}s; last seen:\n{}",
            serde_json::to_string_pretty(&last["status"]).unwrap()
        );
    }

    /// Removes every container and sandbox the agent made (tests must not leak them).
    pub async fn shutdown(mut self) {
        self.kill_agent().await;
        let mut rc = bosun_runtime::RuntimeConfig::new(self.data.path());
        rc.shim_program = PathBuf::from(env!("CARGO_BIN_EXE_bosun-kubelet-shim"));
        rc.shim_args = vec![];
        let data = self.data.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let rt = bosun_runtime::Runtime::new(rc).expect("runtime");
            for c in rt.list().unwrap_or_default() {
                let _ = rt.delete(&c.id, true);
            }
            if let Ok(rd) = std::fs::read_dir(data.join("sandboxes")) {
                for e in rd.flatten() {
                    let _ = rt.remove_sandbox(&e.file_name().to_string_lossy());
                }
            }
            if let Ok(rd) = std::fs::read_dir(data.join("pods")) {
                for e in rd.flatten() {
                    let v = e.path().join("volumes");
                    if let Ok(vs) = std::fs::read_dir(&v) {
                        for x in vs.flatten() {
                            let _ =
                                nix::mount::umount2(&x.path(), nix::mount::MntFlags::MNT_DETACH);
                        }
                    }
                }
            }
        })
        .await
        .unwrap();
    }
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:016x}", t ^ (std::process::id() as u128) << 64)
        .chars()
        .rev()
        .collect()
}

/// A client that authenticates as the agent does: the node join token, the cluster CA.
pub async fn token_client(ts: &TestServer) -> kube::Client {
    let url: http::Uri = ts.server.url.parse().unwrap();
    let mut cfg = kube::Config::new(url);
    let der = rustls_pemfile_der(&ts.server.pki.ca_cert_pem);
    cfg.root_cert = Some(vec![der]);
    cfg.auth_info.token = Some(ts.server.pki.node_token.clone().into());
    kube::Client::try_from(cfg).expect("token client")
}

fn rustls_pemfile_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("CA PEM")
}

pub fn status_of<'a>(pod: &'a Value, container: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == container))
        .unwrap_or(&Value::Null)
}

pub fn condition(pod: &Value, ty: &str) -> String {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_string()
}
