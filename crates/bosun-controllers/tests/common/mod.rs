//! Shared test harness: an in-process API server, the controllers running against it, and
//! a stand-in kubelet (no real kubelet or scheduler exists in these tests).
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use bosun_controllers::ControllerOptions;
use bosun_testkit::TestServer;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

pub struct Harness {
    pub server: TestServer,
    pub client: Client,
    controllers: tokio::task::JoinHandle<()>,
    kubelet: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.controllers.abort();
        if let Some(k) = &self.kubelet {
            k.abort();
        }
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A server with the given controllers running (leader election off).
pub async fn start_with(opts: ControllerOptions) -> anyhow::Result<Harness> {
    init_tracing();
    let server = TestServer::start().await?;
    let client = server.client().await?;
    let c = client.clone();
    let controllers = tokio::spawn(async move {
        if let Err(e) = bosun_controllers::run(c, opts).await {
            panic!("controllers stopped: {e}");
        }
    });
    Ok(Harness {
        server,
        client,
        controllers,
        kubelet: None,
    })
}

pub async fn start() -> anyhow::Result<Harness> {
    start_with(ControllerOptions::without_leader_election()).await
}

impl Harness {
    /// Starts the stand-in kubelet: binds every new pod to `node-1`, marks it Running and
    /// Ready, and finishes graceful deletions.
    pub async fn with_kubelet(mut self) -> anyhow::Result<Harness> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
        }))?;
        nodes.create(&PostParams::default(), &node).await?;
        self.kubelet = Some(tokio::spawn(fake_kubelet(self.client.clone())));
        Ok(self)
    }
}

/// Plays scheduler and kubelet for every pod.
async fn fake_kubelet(client: Client) {
    let all: Api<Pod> = Api::all(client.clone());
    let mut stream = std::pin::pin!(watcher(all, watcher::Config::default()));
    while let Some(ev) = stream.next().await {
        let pods = match ev {
            Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => vec![p],
            _ => continue,
        };
        for p in pods {
            let client = client.clone();
            tokio::spawn(async move {
                if let Err(e) = kubelet_step(client, p).await {
                    tracing::warn!(error = %e, "fake kubelet step failed");
                }
            });
        }
    }
}

async fn kubelet_step(client: Client, p: Pod) -> anyhow::Result<()> {
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let api: Api<Pod> = Api::namespaced(client, &ns);
    if p.metadata.deletion_timestamp.is_some() {
        api.delete(&name, &DeleteParams::default().grace_period(0))
            .await?;
        return Ok(());
    }
    let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
    if node.is_none() {
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": ns},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
        });
        let body = serde_json::to_vec(&binding)?;
        let req = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/binding"))
            .header("content-type", "application/json")
            .body(body)?;
        // Until the API server's pods/binding works, a pod that cannot be bound runs
        // unbound (its deletion is then immediate instead of graceful).
        let bound: Result<serde_json::Value, _> = api.clone().into_client().request(req).await;
        match bound {
            Ok(_) => return Ok(()),
            Err(e) => tracing::debug!(error = %e, "binding failed"),
        }
    }
    let phase = p.status.as_ref().and_then(|s| s.phase.clone());
    if phase.as_deref() == Some("Running") {
        return Ok(());
    }
    set_ready(&api, &name, true).await
}

/// Marks the pod Running and Ready (or not ready) through pods/status.
pub async fn set_ready(api: &Api<Pod>, name: &str, ready: bool) -> anyhow::Result<()> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = if ready { "True" } else { "False" };
    let ip = format!("10.244.0.{}", 2 + rand_octet());
    let patch = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "hostIP": "127.0.0.1",
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
            {"type": "Ready", "status": status, "lastTransitionTime": now},
        ],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn rand_octet() -> u8 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        % 250) as u8
}

/// Polls `f` every 100 ms until it returns `Some`, failing after `secs` seconds with the
/// last state `what` describes.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("timed out waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pods in `ns` matching `selector` that are not being deleted.
pub async fn active_pods(client: &Client, ns: &str, selector: &str) -> anyhow::Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default().labels(selector)).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

/// Waits until exactly `n` active pods match.
pub async fn wait_pods(
    client: &Client,
    ns: &str,
    selector: &str,
    n: usize,
) -> anyhow::Result<Vec<Pod>> {
    wait_for(60, &format!("{n} pods with {selector}"), || async {
        let pods = active_pods(client, ns, selector).await?;
        Ok((pods.len() == n).then_some(pods))
    })
    .await
}

/// `kubectl apply -f -` of `yaml`, failing the test when kubectl fails.
pub fn apply(server: &TestServer, yaml: &str) {
    let out = server.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
