//! A small cluster for the workload controller tests: an in-process API server, hollow
//! nodes (which run bound pods and finish them on request), the scheduler, and the
//! controllers named by the test.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use bosun_controllers::ControllerOptions;
use bosun_hollow::{HollowHandle, HollowOptions};
use bosun_scheduler::{SchedulerHandle, SchedulerOptions};
use bosun_testkit::TestServer;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};
use kube::Client;

pub struct Cluster {
    pub server: TestServer,
    pub client: Client,
    pub hollow: HollowHandle,
    _scheduler: SchedulerHandle,
    controllers: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(c) = &self.controllers {
            c.abort();
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

/// A server with `nodes` hollow nodes, the scheduler, and the given controllers (none:
/// the test runs its own).
pub async fn cluster(nodes: usize, controllers: &[&str]) -> anyhow::Result<Cluster> {
    init_tracing();
    let server = TestServer::start().await?;
    let client = server.client().await?;
    let hollow = bosun_hollow::run(
        client.clone(),
        HollowOptions {
            nodes,
            ..Default::default()
        },
    )
    .await?;
    let scheduler = bosun_scheduler::start(
        client.clone(),
        SchedulerOptions {
            pod_initial_backoff: Duration::from_millis(100),
            pod_max_backoff: Duration::from_millis(500),
            ..Default::default()
        },
    )?;
    let controllers = if controllers.is_empty() {
        None
    } else {
        let mut opts = ControllerOptions::without_leader_election();
        opts.controllers = controllers.iter().map(|c| c.to_string()).collect();
        let c = client.clone();
        Some(tokio::spawn(async move {
            if let Err(e) = bosun_controllers::run(c, opts).await {
                panic!("controllers stopped: {e}");
            }
        }))
    };
    Ok(Cluster {
        server,
        client,
        hollow,
        _scheduler: scheduler,
        controllers,
    })
}

/// Polls `f` every 100 ms until it returns `Some`, failing after `secs` seconds.
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

/// Pods in `ns` matching `selector`.
pub async fn pods(client: &Client, ns: &str, selector: &str) -> anyhow::Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    Ok(api
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
}

/// The reasons of the events about the object `name` in `ns`.
pub async fn event_reasons(client: &Client, ns: &str, name: &str) -> anyhow::Result<Vec<String>> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await?;
    Ok(list.items.into_iter().filter_map(|e| e.reason).collect())
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
