//! A watch from a resourceVersion the watch cache no longer holds is answered as upstream's
//! cacher answers it: 200 and one ERROR event with the 410 `Expired` Status, which is what
//! kube-runtime's watcher and client-go's reflector relist on (an HTTP 410 at watch start
//! made them retry the same version for ever).

use std::sync::Arc;
use std::time::Duration;

use bosun_apiserver::{Config, Server};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};

/// Only guards against a hang turning into a stuck test run; nothing asserts on time.
const HANG_GUARD: Duration = Duration::from_secs(60);
/// Events the cache keeps per resource in this test.
const CACHE: usize = 16;

async fn start_server(dir: &std::path::Path) -> Server {
    std::fs::create_dir_all(dir.join("db")).expect("db dir");
    let store = bosun_store::sqlite::SqliteStore::open(
        &dir.join("db").join("state.db"),
        Default::default(),
    )
    .expect("opening the store");
    let config = Config {
        data_dir: dir.to_path_buf(),
        bind_address: "127.0.0.1".parse().expect("address"),
        secure_port: 0,
        watch_cache_size: CACHE,
        ..Default::default()
    };
    Server::start(config, Arc::new(store))
        .await
        .expect("starting the server")
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "data": {"k": name},
    }))
    .expect("config map")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_an_expired_version_gets_one_error_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let client = kube::Client::new(server.loopback(), "default");
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());

    let first = api
        .create(&PostParams::default(), &config_map("cm-000"))
        .await
        .expect("create");
    let first_rv = first.metadata.resource_version.expect("resourceVersion");
    for i in 1..(CACHE * 3) {
        api.create(&PostParams::default(), &config_map(&format!("cm-{i:03}")))
            .await
            .expect("create");
    }

    // The raw watch: it starts (200), and its only event is the 410 Status.
    let stream = api
        .watch(&WatchParams::default(), &first_rv)
        .await
        .expect("the watch starts even though its version is gone");
    let events: Vec<_> = tokio::time::timeout(HANG_GUARD, stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends after the error event");
    assert_eq!(events.len(), 1, "exactly one event: {events:?}");
    match &events[0] {
        Ok(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410, "{e:?}");
            assert_eq!(e.reason, "Expired", "{e:?}");
            assert!(e.message.starts_with("too old resource version"), "{e:?}");
        }
        other => panic!("expected an ERROR event with 410, got {other:?}"),
    }

    server.stop().await;
}
