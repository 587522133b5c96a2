//! Two API servers on one etcd cluster serve the same objects, and a watch on either sees
//! writes made through the other (the HA control plane's storage contract).

use std::sync::Arc;
use std::time::Duration;

use bosun_store_etcd::local::LocalEtcd;
use bosun_store_etcd::EtcdStore;
use bosun_testkit::TestServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_etcd_share_objects_and_watches() {
    let etcd = LocalEtcd::start()
        .await
        .expect("etcd starts (run scripts/install-etcd.sh if it is missing)");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut servers = Vec::new();
    for i in 0..2 {
        let store = EtcdStore::connect(&etcd.endpoints(), "/bosun-test")
            .await
            .expect("connects to etcd");
        let dir = tmp.path().join(format!("server{i}"));
        servers.push(
            TestServer::start_with_store(&dir, 0, Arc::new(store))
                .await
                .expect("server starts"),
        );
    }
    let a: Api<ConfigMap> =
        Api::namespaced(servers[0].client().await.expect("client a"), "default");
    let b: Api<ConfigMap> =
        Api::namespaced(servers[1].client().await.expect("client b"), "default");

    // A watch on server B, opened before the write through server A.
    let mut events = b
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch on b")
        .boxed();
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "shared"}, "data": {"k": "v"}
    }))
    .expect("configmap");
    let created = a
        .create(&PostParams::default(), &cm)
        .await
        .expect("create through a");

    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(ev) = events.try_next().await.expect("watch stream") {
            if let WatchEvent::Added(o) = ev {
                if o.metadata.name.as_deref() == Some("shared") {
                    return o;
                }
            }
        }
        panic!("watch on b ended without seeing the configmap");
    })
    .await
    .expect("b's watch sees a's write in time");
    assert_eq!(
        seen.metadata.resource_version,
        created.metadata.resource_version
    );

    // A read through B returns the object written through A, and both agree on allocations.
    let got = b.get("shared").await.expect("get through b");
    assert_eq!(
        got.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("v")
    );
    let svc_a = servers[0].kubectl_ok(&[
        "get",
        "svc",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let svc_b = servers[1].kubectl_ok(&[
        "get",
        "svc",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert_eq!((svc_a.as_str(), svc_b.as_str()), ("10.96.0.1", "10.96.0.1"));
}
