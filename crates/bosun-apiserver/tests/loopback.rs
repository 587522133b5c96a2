//! The in-process loopback transport: a kube-rs client over `Server::loopback` creates, gets,
//! lists and watches (events streamed as they happen) on a real server, the loopback identity
//! is never what a request over the network gets, and stopping the server refuses new
//! loopback requests and ends open streams. Also, through it, the answer to a watch from a
//! resourceVersion the watch cache no longer holds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Request};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use bosun_apiserver::loopback::{Loopback, State, LOOPBACK_PEER, LOOPBACK_USER};
use bosun_apiserver::tls::{self, Authenticator, Pki, UserInfo, MASTERS_GROUP};
use bosun_apiserver::{Config, Server};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// Only guards against a hang turning into a stuck test run; nothing asserts on time.
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn start_server(dir: &std::path::Path) -> Server {
    start_server_with(dir, Config::default().watch_cache_size).await
}

/// A server whose watch cache keeps `watch_cache_size` events per resource.
async fn start_server_with(dir: &std::path::Path, watch_cache_size: usize) -> Server {
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
        watch_cache_size,
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

/// The name of the next ADDED object on a watch stream, failing on anything else.
async fn next_added<S>(events: &mut S) -> String
where
    S: futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    loop {
        let event = tokio::time::timeout(HANG_GUARD, events.next())
            .await
            .expect("a watch event in time")
            .expect("the watch is still open")
            .expect("a decodable watch event");
        match event {
            WatchEvent::Added(cm) => return cm.metadata.name.expect("name"),
            WatchEvent::Bookmark(_) => continue,
            other => panic!("unexpected watch event {other:?}"),
        }
    }
}

#[tokio::test]
async fn loopback_client_creates_gets_lists_and_watches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let client = kube::Client::new(server.loopback(), "default");
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());

    let created = api
        .create(&PostParams::default(), &config_map("first"))
        .await
        .expect("create through the loopback");
    let rv = created
        .metadata
        .resource_version
        .clone()
        .expect("a resourceVersion");
    let got = api.get("first").await.expect("get");
    assert_eq!(got.data.expect("data")["k"], "first");
    let listed = api.list(&ListParams::default()).await.expect("list");
    assert!(
        listed
            .items
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some("first")),
        "the list holds the created object"
    );

    // Each event arrives while the watch is open, before the next object even exists: the
    // response body streams through the loopback instead of being collected.
    let mut events = api
        .watch(&WatchParams::default().timeout(290), &rv)
        .await
        .expect("watch")
        .boxed();
    for name in ["second", "third"] {
        api.create(&PostParams::default(), &config_map(name))
            .await
            .expect("create while watching");
        assert_eq!(next_added(&mut events).await, name);
    }

    // The same objects over the network: the loopback reached the real store.
    let network = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&server.kubeconfig).expect("kubeconfig"),
            &Default::default(),
        )
        .await
        .expect("network client config"),
    )
    .expect("network client");
    let over_network: Api<ConfigMap> = Api::default_namespaced(network);
    over_network
        .get("third")
        .await
        .expect("get over the network");

    // Stopping the server ends the in-process watch and refuses new loopback requests.
    let loopback = server.loopback();
    server.stop().await;
    let end = tokio::time::timeout(HANG_GUARD, async {
        loop {
            match events.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(WatchEvent::Bookmark(_))) => continue,
                Some(Ok(other)) => panic!("unexpected event after stop: {other:?}"),
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the watch ended when the server stopped");
    let req = http::Request::get("/api/v1/namespaces/default/configmaps/first")
        .body(Body::empty())
        .expect("request");
    let refused = loopback.oneshot(req).await;
    assert!(
        matches!(
            refused,
            Err(bosun_apiserver::loopback::Error::Stopped { .. })
        ),
        "a request after stop is refused, not served: {:?}",
        refused.map(|r| r.status())
    );
}

async fn whoami(
    Extension(user): Extension<UserInfo>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": user.name,
        "groups": user.groups,
        "peer": peer.to_string(),
        "authorizationHeaderSeen": req.headers().contains_key(http::header::AUTHORIZATION),
    }))
}

/// A line every 50 ms, forever: an open stream (a log follow, say) for the shutdown test.
async fn endless() -> Body {
    let lines = futures::stream::unfold(0u64, |i| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Some((
            Ok::<_, std::io::Error>(Bytes::from(format!("{i}\n"))),
            i + 1,
        ))
    });
    Body::from_stream(lines)
}

fn tiny_router() -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/endless", get(endless))
}

/// A kube client over the network (TLS to `url`), trusting the CA, with `user` as the
/// kubeconfig's user entry.
async fn network_client(pki: &Pki, url: &str, user: serde_json::Value) -> kube::Client {
    let b64 = base64::engine::general_purpose::STANDARD;
    let kc: kube::config::Kubeconfig = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": url, "certificate-authority-data": b64.encode(&pki.ca_cert_pem)}}],
        "users": [{"name": "t", "user": user}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
    }))
    .expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

/// GET /whoami; `credential` adds an Authorization header of the request's own.
async fn ask(client: &kube::Client, credential: bool) -> Result<serde_json::Value, kube::Error> {
    let mut req = http::Request::get("/whoami");
    if credential {
        req = req.header(http::header::AUTHORIZATION, "Bearer made-up");
    }
    let req = req.body(Vec::new()).expect("request");
    let text = client.request_text(req).await?;
    Ok(serde_json::from_str(&text).expect("whoami JSON"))
}

#[tokio::test]
async fn loopback_identity_is_not_reachable_over_the_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = tls::ensure_pki(dir.path(), &[]).expect("pki");
    let authn = Arc::new(Authenticator::from_token_file(&pki.token_file).expect("tokens"));
    let app = tiny_router();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(tls::serve(
        listener,
        tls::server_config(&pki).expect("tls"),
        app.clone(),
        authn,
        async move {
            let _ = stopped.await;
        },
    ));
    let (loopback, _control) = Loopback::new(app);

    // Through the loopback: the privileged loopback user, whatever the request carries.
    let me = ask(&kube::Client::new(loopback, "default"), true)
        .await
        .expect("loopback whoami");
    assert_eq!(me["name"], LOOPBACK_USER);
    let groups: Vec<&str> = me["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g.as_str())
        .collect();
    assert!(groups.contains(&MASTERS_GROUP), "{groups:?}");
    assert_eq!(me["peer"], LOOPBACK_PEER.to_string());
    assert_eq!(me["authorizationHeaderSeen"], false);

    // Over the network, every way in gets its own user or 401, never the loopback user.
    let b64 = base64::engine::general_purpose::STANDARD;
    let admin = network_client(
        &pki,
        &url,
        serde_json::json!({
            "client-certificate-data": b64.encode(&pki.admin_cert_pem),
            "client-key-data": b64.encode(&pki.admin_key_pem),
        }),
    )
    .await;
    let as_admin = ask(&admin, false).await.expect("admin whoami");
    assert_eq!(as_admin["name"], tls::ADMIN_USER);
    let node = network_client(&pki, &url, serde_json::json!({"token": pki.node_token})).await;
    let as_node = ask(&node, false).await.expect("node whoami");
    assert_eq!(as_node["name"], tls::NODE_BOOTSTRAP_USER);
    for token in [LOOPBACK_USER, "made-up", ""] {
        let user = if token.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::json!({"token": token})
        };
        let client = network_client(&pki, &url, user).await;
        match ask(&client, false).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 401, "token {token:?}"),
            other => panic!("token {token:?}: expected 401, got {other:?}"),
        }
    }
    let _ = stop.send(());
    let _ = serving.await;
}

#[tokio::test]
async fn stopping_refuses_new_requests_and_cuts_open_streams() {
    let (loopback, control) = Loopback::new(tiny_router());
    let get = |path: &str| {
        http::Request::get(path)
            .body(Body::empty())
            .expect("request")
    };
    let resp = loopback
        .clone()
        .oneshot(get("/endless"))
        .await
        .expect("open stream");
    let mut body = resp.into_body().into_data_stream();
    let first = tokio::time::timeout(HANG_GUARD, body.try_next())
        .await
        .expect("a line in time")
        .expect("a line");
    assert!(first.is_some(), "the stream delivers before it ends");

    // Draining: new requests refused, the open stream goes on.
    control.set(State::Draining);
    assert!(loopback.clone().oneshot(get("/whoami")).await.is_err());
    let more = tokio::time::timeout(HANG_GUARD, body.try_next())
        .await
        .expect("a line in time")
        .expect("a line while draining");
    assert!(more.is_some());

    // Closed: the open stream ends with an error instead of running forever.
    control.set(State::Closed);
    let end = tokio::time::timeout(HANG_GUARD, async {
        loop {
            match body.try_next().await {
                Ok(Some(_)) => continue,
                Ok(None) => return false,
                Err(_) => return true,
            }
        }
    })
    .await
    .expect("the stream ended in time");
    assert!(end, "a cut stream ends with an error, not a clean end");
    assert!(loopback.oneshot(get("/whoami")).await.is_err());
}

/// Events the cache keeps per resource in `watch_from_an_expired_version_gets_one_error_event`.
const CACHE: usize = 16;

/// A watch from a resourceVersion the watch cache no longer holds is answered as upstream's
/// cacher answers it: 200 and one ERROR event with the 410 `Expired` Status, which is what
/// kube-runtime's watcher and client-go's reflector relist on (an HTTP 410 at watch start
/// made them retry the same version for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_an_expired_version_gets_one_error_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server_with(dir.path(), CACHE).await;
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
