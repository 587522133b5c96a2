//! kube-rs against the API server: typed CRUD, the three patch types, status and scale
//! subresources, raw watches, and a `kube::runtime::watcher` that must see every object
//! state across a server restart on the same data directory and port.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_testkit::TestServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec};
use k8s_openapi::api::core::v1::{
    Namespace, Pod, PodStatus, ReplicationController, ReplicationControllerStatus,
};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;

/// How long a test waits for the server or a watcher to catch up before failing: a guard
/// against hangs, never a measurement.
const PATIENCE: Duration = Duration::from_secs(60);

fn typed<T: k8s_openapi::serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("test fixture matches its type")
}

fn pod(name: &str, labels: serde_json::Value) -> Pod {
    typed(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                  "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}]}
    }))
}

fn deployment(name: &str) -> Deployment {
    typed(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        }
    }))
}

fn seed_rc() -> ReplicationController {
    typed(json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "myweb"},
        "spec": {
            "replicas": 5,
            "selector": {"app": "myweb"},
            "template": {"metadata": {"labels": {"app": "myweb"}},
                         "spec": {"containers": [{"name": "myweb", "image": "kubeguide/tomcat-app:v1",
                                                  "ports": [{"containerPort": 8080}]}]}}
        }
    }))
}

/// The API error behind a kube error, or a panic naming what was expected.
fn api_err(e: kube::Error, what: &str) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("{what}: expected an API Status error, got {other:?}"),
    }
}

async fn make_namespace(client: &kube::Client, name: &str) {
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &typed(json!({"metadata": {"name": name}})),
    )
    .await
    .expect("namespace created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_crud_patch_status_and_watch() {
    let s = TestServer::start().await.expect("server starts");
    let client = s.client().await.expect("client");
    make_namespace(&client, "kr").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kr");
    let pp = PostParams::default();

    let list_rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list resourceVersion");
    let mut raw = pods
        .watch(&WatchParams::default().timeout(30), &list_rv)
        .await
        .expect("watch opens")
        .boxed();

    let created = pods
        .create(&pp, &pod("a", json!({"app": "a", "n": "0"})))
        .await
        .expect("create");
    assert_eq!(created.namespace().as_deref(), Some("kr"));
    assert!(created.uid().is_some(), "created pod has a uid");
    let c0 = &created.spec.as_ref().expect("spec").containers[0];
    assert_eq!(
        c0.image_pull_policy.as_deref(),
        Some("Always"),
        "defaults applied"
    );
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    pods.create(&pp, &pod("b", json!({"app": "b"})))
        .await
        .expect("create b");

    let e = pods
        .create(&pp, &pod("a", json!({})))
        .await
        .expect_err("a second create of the same name fails");
    let st = api_err(e, "already exists");
    assert_eq!(
        (st.code, st.reason.as_str()),
        (409, "AlreadyExists"),
        "{st:?}"
    );

    let got = pods.get("a").await.expect("get");
    assert_eq!(got.resource_version(), created.resource_version());
    let st = api_err(pods.get("zzz").await.expect_err("missing"), "get missing");
    assert_eq!((st.code, st.reason.as_str()), (404, "NotFound"), "{st:?}");
    assert_eq!(st.message, r#"pods "zzz" not found"#);
    assert_eq!(pods.get_opt("zzz").await.expect("get_opt"), None);

    let only_a = pods
        .list(&ListParams::default().labels("app=a"))
        .await
        .expect("label list");
    assert_eq!(
        only_a
            .items
            .iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>(),
        ["a"]
    );
    let by_field = pods
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .expect("field list");
    assert_eq!(
        by_field
            .items
            .iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>(),
        ["b"]
    );

    // Strategic merge: the container list merges by name, so the limits survive.
    let sp = pods
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "metadata": {"labels": {"n": "1"}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}
            })),
        )
        .await
        .expect("strategic patch");
    let c = &sp.spec.as_ref().expect("spec").containers[0];
    assert_eq!(c.image.as_deref(), Some("busybox:1.36"));
    assert!(
        c.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .is_some_and(|l| l.contains_key("cpu")),
        "strategic patch kept the container's limits: {c:?}"
    );

    let mp = pods
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": null, "n": "2"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        mp.labels(),
        &BTreeMap::from([("n".to_string(), "2".to_string())])
    );

    let jp: json_patch::Patch = typed(json!([
        {"op": "replace", "path": "/metadata/labels/n", "value": "3"},
        {"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}
    ]));
    let jpd = pods
        .patch("a", &PatchParams::default(), &Patch::Json::<()>(jp))
        .await
        .expect("json patch");
    assert_eq!(jpd.labels().get("n").map(String::as_str), Some("3"));
    assert_eq!(jpd.annotations().get("k").map(String::as_str), Some("v"));
    let bad: json_patch::Patch =
        typed(json!([{"op": "test", "path": "/metadata/name", "value": "other"}]));
    let st = api_err(
        pods.patch("a", &PatchParams::default(), &Patch::Json::<()>(bad))
            .await
            .expect_err("failed json patch test"),
        "json patch test op",
    );
    assert_eq!(st.code, 422, "{st:?}");

    // Dry run changes nothing.
    let dry = pods
        .patch(
            "a",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"metadata": {"labels": {"dry": "1"}}})),
        )
        .await
        .expect("dry-run patch");
    assert_eq!(dry.labels().get("dry").map(String::as_str), Some("1"));
    assert!(!pods
        .get("a")
        .await
        .expect("get")
        .labels()
        .contains_key("dry"));

    // Replace with the current resourceVersion succeeds; with a stale one, 409.
    let mut cur = pods.get("a").await.expect("get");
    let stale = cur.resource_version();
    cur.labels_mut().insert("n".into(), "4".into());
    let replaced = pods.replace("a", &pp, &cur).await.expect("replace");
    assert_ne!(replaced.resource_version(), stale);
    cur.labels_mut().insert("n".into(), "x".into());
    let st = api_err(
        pods.replace("a", &pp, &cur)
            .await
            .expect_err("stale replace"),
        "stale replace",
    );
    assert_eq!((st.code, st.reason.as_str()), (409, "Conflict"), "{st:?}");

    // Status: written through /status, ignored by a plain update. The qosClass is carried
    // over as a kubelet does.
    let mut st_pod = pods.get_status("a").await.expect("get_status");
    let qos = st_pod.status.as_ref().and_then(|s| s.qos_class.clone());
    assert_eq!(
        qos.as_deref(),
        Some("Guaranteed"),
        "qosClass set at creation (requests default to the limits)"
    );
    st_pod.status = Some(typed(json!({
        "phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
        "conditions": [{"type": "Ready", "status": "True"}], "qosClass": qos
    })));
    let after = pods
        .replace_status("a", &pp, &st_pod)
        .await
        .expect("replace_status");
    let phase = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.clone());
    assert_eq!(phase(&after).as_deref(), Some("Running"));
    let mut plain = pods.get("a").await.expect("get");
    plain.status = Some(PodStatus {
        phase: Some("Failed".into()),
        ..Default::default()
    });
    let after = pods.replace("a", &pp, &plain).await.expect("replace");
    assert_eq!(
        phase(&after).as_deref(),
        Some("Running"),
        "a plain update ignores status"
    );
    let after = pods
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
        )
        .await
        .expect("patch_status");
    assert_eq!(phase(&after).as_deref(), Some("Succeeded"));

    // Delete: the pod was never scheduled, so it goes at once.
    pods.delete("b", &DeleteParams::default())
        .await
        .expect("delete");
    let st = api_err(pods.get("b").await.expect_err("deleted"), "get deleted");
    assert_eq!(st.code, 404);

    // The raw watch saw every change to "a" and "b" in order.
    let mut seen: Vec<(String, String, String)> = Vec::new();
    while !seen.iter().any(|(t, n, _)| t == "DELETED" && n == "b") {
        let ev = tokio::time::timeout(PATIENCE, raw.next())
            .await
            .unwrap_or_else(|_| panic!("watch stalled; saw {seen:?}"))
            .unwrap_or_else(|| panic!("watch ended early; saw {seen:?}"))
            .expect("watch event");
        match ev {
            WatchEvent::Added(p) => seen.push(("ADDED".into(), p.name_any(), rv_of(&p))),
            WatchEvent::Modified(p) => seen.push(("MODIFIED".into(), p.name_any(), rv_of(&p))),
            WatchEvent::Deleted(p) => seen.push(("DELETED".into(), p.name_any(), rv_of(&p))),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error event {e:?}; saw {seen:?}"),
        }
    }
    let kinds: Vec<(&str, &str)> = seen
        .iter()
        .map(|(t, n, _)| (t.as_str(), n.as_str()))
        .collect();
    // a: create, strategic, merge, json, replace, replace_status, patch_status (the plain
    // replace that only touched status changed nothing and is not an event upstream).
    assert_eq!(
        kinds,
        [
            ("ADDED", "a"),
            ("ADDED", "b"),
            ("MODIFIED", "a"),
            ("MODIFIED", "a"),
            ("MODIFIED", "a"),
            ("MODIFIED", "a"),
            ("MODIFIED", "a"),
            ("MODIFIED", "a"),
            ("DELETED", "b"),
        ],
        "{seen:?}"
    );
    let rvs: Vec<u64> = seen
        .iter()
        .map(|(_, _, rv)| rv.parse().expect("numeric resourceVersion"))
        .collect();
    assert!(
        rvs.windows(2).all(|w| w[0] < w[1]),
        "resourceVersions increase: {rvs:?}"
    );

    // Upstream lets a status update leave qosClass empty (for kubelets that dropped it,
    // kubernetes#127744); only changing it to another class is refused.
    let mut no_qos = pods.get_status("a").await.expect("get_status");
    if let Some(st) = no_qos.status.as_mut() {
        st.qos_class = None;
    }
    pods.replace_status("a", &pp, &no_qos)
        .await
        .expect("a status update without qosClass is accepted");
    let mut other_qos = pods.get_status("a").await.expect("get_status");
    if let Some(st) = other_qos.status.as_mut() {
        st.qos_class = Some("BestEffort".into());
    }
    let st = api_err(
        pods.replace_status("a", &pp, &other_qos)
            .await
            .expect_err("qosClass change"),
        "qosClass change",
    );
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{st:?}");
}

fn rv_of<K: kube::Resource>(k: &K) -> String {
    k.resource_version().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_status_and_scale() {
    let s = TestServer::start().await.expect("server starts");
    let client = s.client().await.expect("client");
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();

    let d = deps
        .create(&pp, &deployment("web"))
        .await
        .expect("create deployment");
    assert_eq!(d.metadata.generation, Some(1));
    let spec = d.spec.as_ref().expect("spec");
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));

    let listed = deps
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);

    // Status through the subresource; generation does not move for status.
    let mut with_status = deps.get("web").await.expect("get");
    with_status.status = Some(DeploymentStatus {
        observed_generation: Some(1),
        replicas: Some(1),
        ready_replicas: Some(1),
        ..Default::default()
    });
    let after = deps
        .replace_status("web", &pp, &with_status)
        .await
        .expect("replace_status");
    assert_eq!(after.metadata.generation, Some(1));
    assert_eq!(after.status.as_ref().and_then(|s| s.replicas), Some(1));

    // Scale: read, merge-patch, replace, stale replace.
    let scale = deps.get_scale("web").await.expect("get_scale");
    assert_eq!(scale.spec.as_ref().and_then(|s| s.replicas), Some(1));
    let status = scale.status.as_ref().expect("scale status");
    assert_eq!(status.replicas, 1);
    assert_eq!(status.selector.as_deref(), Some("app=web"));
    let patched = deps
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("patch_scale");
    assert_eq!(patched.spec.as_ref().and_then(|s| s.replicas), Some(3));
    let d = deps.get("web").await.expect("get");
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(
        d.metadata.generation,
        Some(2),
        "a scale change is a spec change"
    );

    let current = deps.get_scale("web").await.expect("get_scale");
    let new_scale = Scale {
        metadata: current.metadata.clone(),
        spec: Some(ScaleSpec { replicas: Some(4) }),
        status: None,
    };
    let replaced = deps
        .replace_scale("web", &pp, &new_scale)
        .await
        .expect("replace_scale");
    assert_eq!(replaced.spec.as_ref().and_then(|s| s.replicas), Some(4));
    let st = api_err(
        deps.replace_scale("web", &pp, &new_scale)
            .await
            .expect_err("stale scale replace"),
        "stale scale replace",
    );
    assert_eq!((st.code, st.reason.as_str()), (409, "Conflict"), "{st:?}");

    // Strategic patch of the template adds a container; merge replaces the list.
    let sp = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "image": "busybox"}]}}}})),
        )
        .await
        .expect("strategic patch");
    let names = |d: &Deployment| -> Vec<String> {
        d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default()
    };
    let mut n = names(&sp);
    n.sort();
    assert_eq!(n, ["sidecar", "web"]);
    let mp = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "only", "image": "nginx"}]}}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(names(&mp), ["only"]);
    let jp: json_patch::Patch = typed(json!([
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"}
    ]));
    let jd = deps
        .patch("web", &PatchParams::default(), &Patch::Json::<()>(jp))
        .await
        .expect("json patch");
    assert_eq!(
        jd.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers[0].image.as_deref()),
        Some("nginx:1.27")
    );

    // An invalid update: the selector is immutable in apps/v1.
    let st = api_err(
        deps.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": {"matchLabels": {"app": "other"}}}})),
        )
        .await
        .expect_err("selector change"),
        "selector change",
    );
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{st:?}");
    assert!(st.message.contains("field is immutable"), "{st:?}");

    deps.delete("web", &DeleteParams::background())
        .await
        .expect("delete");
    assert_eq!(deps.get_opt("web").await.expect("get_opt"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controllers_status_and_scale() {
    let s = TestServer::start().await.expect("server starts");
    let client = s.client().await.expect("client");
    let rcs: Api<ReplicationController> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();

    let rc = rcs.create(&pp, &seed_rc()).await.expect("create rc");
    assert_eq!(
        rc.labels(),
        &BTreeMap::from([("app".to_string(), "myweb".to_string())]),
        "labels defaulted from the template"
    );
    assert_eq!(rc.spec.as_ref().and_then(|s| s.replicas), Some(5));

    let mut with_status = rcs.get("myweb").await.expect("get");
    with_status.status = Some(ReplicationControllerStatus {
        replicas: 5,
        ready_replicas: Some(3),
        observed_generation: Some(1),
        ..Default::default()
    });
    let after = rcs
        .replace_status("myweb", &pp, &with_status)
        .await
        .expect("replace_status");
    assert_eq!(after.status.as_ref().map(|s| s.replicas), Some(5));

    let scale = rcs.get_scale("myweb").await.expect("get_scale");
    assert_eq!(scale.spec.as_ref().and_then(|s| s.replicas), Some(5));
    assert_eq!(scale.status.as_ref().map(|s| s.replicas), Some(5));
    assert_eq!(
        scale.status.as_ref().and_then(|s| s.selector.as_deref()),
        Some("app=myweb")
    );
    rcs.patch_scale(
        "myweb",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("patch_scale");
    let rc = rcs.get("myweb").await.expect("get");
    assert_eq!(rc.spec.as_ref().and_then(|s| s.replicas), Some(2));

    let sp = rcs
        .patch(
            "myweb",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "myweb", "env": [{"name": "A", "value": "1"}]}]}}}})),
        )
        .await
        .expect("strategic patch");
    let c = &sp
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .expect("template spec")
        .containers[0];
    assert_eq!(c.image.as_deref(), Some("kubeguide/tomcat-app:v1"));
    assert_eq!(c.env.as_ref().map(Vec::len), Some(1));

    let st = api_err(
        rcs.patch(
            "myweb",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await
        .expect_err("negative replicas"),
        "negative replicas",
    );
    assert_eq!(st.code, 422, "{st:?}");

    rcs.delete("myweb", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(rcs.get_opt("myweb").await.expect("get_opt"), None);
}

/// One object state a watcher delivered.
#[derive(Clone, Debug)]
struct Seen {
    name: String,
    /// The pod's `n` label: the test's change counter.
    n: Option<u32>,
    deleted: bool,
}

/// What the watcher task has seen so far: states, and the errors it recovered from.
#[derive(Default)]
struct Observed {
    /// How many initial lists (or streaming-list initial event sets) completed.
    init_done: usize,
    states: Vec<Seen>,
    errors: Vec<String>,
}

fn spawn_recorder(pods: Api<Pod>, config: watcher::Config) -> Arc<Mutex<Observed>> {
    let observed = Arc::new(Mutex::new(Observed::default()));
    let out = observed.clone();
    tokio::spawn(async move {
        let mut stream = watcher(pods, config).default_backoff().boxed();
        while let Some(item) = stream.next().await {
            let mut o = out.lock().expect("recorder lock");
            match item {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                    o.states.push(Seen {
                        name: p.name_any(),
                        n: p.labels().get("n").and_then(|v| v.parse().ok()),
                        deleted: false,
                    })
                }
                Ok(watcher::Event::Delete(p)) => o.states.push(Seen {
                    name: p.name_any(),
                    n: p.labels().get("n").and_then(|v| v.parse().ok()),
                    deleted: true,
                }),
                Ok(watcher::Event::InitDone) => o.init_done += 1,
                Ok(watcher::Event::Init) => {}
                Err(e) => o.errors.push(e.to_string()),
            }
        }
    });
    observed
}

/// Waits until `done` holds for what was observed; fails with the observations if it never does.
async fn wait_for(obs: &Arc<Mutex<Observed>>, what: &str, done: impl Fn(&Observed) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        {
            let o = obs.lock().expect("recorder lock");
            if done(&o) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "watcher never observed {what}\nstates: {:?}\nerrors: {:?}",
                    o.states, o.errors
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last state of each pod the watcher reported.
fn last_states(o: &Observed) -> HashMap<String, Seen> {
    let mut last = HashMap::new();
    for s in &o.states {
        last.insert(s.name.clone(), s.clone());
    }
    last
}

async fn bump(pods: &Api<Pod>, name: &str, n: u32) {
    pods.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"n": n.to_string()}}})),
    )
    .await
    .unwrap_or_else(|e| panic!("patching {name} to n={n}: {e}"));
}

/// A watcher started before N changes sees every state through a restart of the server
/// on the same data directory and port, and M more changes after it.
async fn watcher_survives_restart(config: watcher::Config) {
    const BEFORE: u32 = 5;
    const AFTER: u32 = 5;
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = TestServer::start_in(tmp.path(), 0)
        .await
        .expect("server starts");
    let port = s.server.addr.port();
    let client = s.client().await.expect("client");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let obs = spawn_recorder(pods.clone(), config);
    // The watcher's first list must be done before the changes, so that it can only learn
    // of them through its watch: wait for its (empty) initial state.
    wait_for(&obs, "the initial list", |o| o.init_done > 0).await;

    let names = ["w0", "w1", "w2"];
    for name in names {
        pods.create(&PostParams::default(), &pod(name, json!({"n": "0"})))
            .await
            .expect("create");
    }
    for n in 1..=BEFORE {
        for name in names {
            bump(&pods, name, n).await;
        }
    }
    wait_for(&obs, "every pod at the pre-restart state", |o| {
        let last = last_states(o);
        names
            .iter()
            .all(|n| last.get(*n).is_some_and(|s| s.n == Some(BEFORE)))
    })
    .await;

    s.server.stop().await;
    let s = TestServer::start_in(tmp.path(), port)
        .await
        .expect("server restarts on the same port");
    assert_eq!(s.server.addr.port(), port);

    for n in BEFORE + 1..=BEFORE + AFTER {
        for name in names {
            bump(&pods, name, n).await;
        }
    }
    pods.create(
        &PostParams::default(),
        &pod("w3", json!({"n": (BEFORE + AFTER).to_string()})),
    )
    .await
    .expect("create after restart");
    pods.delete("w0", &DeleteParams::default())
        .await
        .expect("delete after restart");

    let final_n = BEFORE + AFTER;
    wait_for(&obs, "every pod at its final state", |o| {
        let last = last_states(o);
        last.get("w0").is_some_and(|s| s.deleted)
            && ["w1", "w2", "w3"].iter().all(|n| {
                last.get(*n)
                    .is_some_and(|s| s.n == Some(final_n) && !s.deleted)
            })
    })
    .await;

    let o = obs.lock().expect("recorder lock");
    for name in names {
        // A re-list may deliver a state twice, never out of order; every state must appear.
        let seq: Vec<u32> = o
            .states
            .iter()
            .filter(|s| s.name == name && !s.deleted)
            .filter_map(|s| s.n)
            .collect();
        assert!(
            seq.windows(2).all(|w| w[0] <= w[1]),
            "{name}: states out of order: {seq:?}\nerrors: {:?}",
            o.errors
        );
        let mut distinct = seq.clone();
        distinct.dedup();
        let expected: Vec<u32> = (0..=final_n).collect();
        assert_eq!(
            distinct, expected,
            "{name}: states lost across the restart (saw {seq:?})\nerrors: {:?}",
            o.errors
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_every_state_across_a_restart() {
    watcher_survives_restart(watcher::Config::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_watcher_sees_every_state_across_a_restart() {
    watcher_survives_restart(watcher::Config::default().streaming_lists()).await;
}

/// A raw watch with sendInitialEvents: synthetic ADDED for what exists, then a bookmark
/// annotated `k8s.io/initial-events-end`, then live events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_initial_events_end_with_a_bookmark() {
    let s = TestServer::start().await.expect("server starts");
    let client = s.client().await.expect("client");
    let pods: Api<Pod> = Api::default_namespaced(client);
    for name in ["s0", "s1"] {
        pods.create(&PostParams::default(), &pod(name, json!({})))
            .await
            .expect("create");
    }
    let wp = WatchParams::default().initial_events().timeout(30);
    let mut stream = pods.watch(&wp, "").await.expect("watch opens").boxed();
    let mut added = Vec::new();
    loop {
        let ev = tokio::time::timeout(PATIENCE, stream.try_next())
            .await
            .expect("initial events arrive")
            .expect("watch event")
            .expect("stream open");
        match ev {
            WatchEvent::Added(p) => added.push(p.name_any()),
            WatchEvent::Bookmark(b) => {
                assert!(
                    b.metadata
                        .annotations
                        .contains_key("k8s.io/initial-events-end"),
                    "first bookmark marks the end of initial events: {:?}",
                    b.metadata.annotations
                );
                assert!(!b.metadata.resource_version.is_empty());
                break;
            }
            WatchEvent::Modified(p) | WatchEvent::Deleted(p) => {
                panic!(
                    "only ADDED may come before the bookmark, got {}",
                    p.name_any()
                )
            }
            WatchEvent::Error(e) => panic!("watch error during initial events: {e:?}"),
        }
    }
    added.sort();
    assert_eq!(added, ["s0", "s1"]);
    pods.create(&PostParams::default(), &pod("s2", json!({})))
        .await
        .expect("create");
    let ev = tokio::time::timeout(PATIENCE, stream.try_next())
        .await
        .expect("live event arrives")
        .expect("watch event")
        .expect("stream open");
    match ev {
        WatchEvent::Added(p) => assert_eq!(p.name_any(), "s2"),
        WatchEvent::Error(e) => panic!("expected ADDED s2, got an error {e:?}"),
        _ => panic!("expected ADDED s2, got another event"),
    }
}

/// Status updates: a pod's (core kind) labels and annotations change with its status, as
/// kubelets rely on; a Deployment's (apps) metadata stays as stored. An EndpointSlice has a
/// generation that its endpoints bump.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_updates_and_generations_follow_upstream_strategies() {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let s = TestServer::start().await.expect("server starts");
    let client = s.client().await.expect("client");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod("st", json!({"a": "1"})))
        .await
        .expect("create pod");
    let patch = json!({"metadata": {"annotations": {"note": "from-status"}, "labels": {"a": "2"}},
                       "status": {"phase": "Running"}});
    let p = pods
        .patch_status("st", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch pod status");
    assert_eq!(
        p.annotations().get("note").map(String::as_str),
        Some("from-status")
    );
    assert_eq!(p.labels().get("a").map(String::as_str), Some("2"));
    assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Running"));

    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    deps.create(&PostParams::default(), &deployment("stdep"))
        .await
        .expect("create deployment");
    let patch = json!({"metadata": {"annotations": {"note": "x"}}, "status": {"replicas": 3}});
    let d = deps
        .patch_status("stdep", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch deployment status");
    assert!(d.annotations().get("note").is_none(), "{:?}", d.metadata);
    assert_eq!(d.status.and_then(|s| s.replicas), Some(3));

    let slices: Api<EndpointSlice> = Api::default_namespaced(client);
    let es: EndpointSlice = typed(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "es"}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.5"]}], "ports": [{"name": "", "port": 80}]
    }));
    let es = slices
        .create(&PostParams::default(), &es)
        .await
        .expect("create slice");
    assert_eq!(es.metadata.generation, Some(1));
    let es = slices
        .patch(
            "es",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("label slice");
    assert_eq!(
        es.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let es = slices
        .patch(
            "es",
            &PatchParams::default(),
            &Patch::Merge(json!({"endpoints": [{"addresses": ["10.244.0.6"]}]})),
        )
        .await
        .expect("change endpoints");
    assert_eq!(es.metadata.generation, Some(2));
}

/// apps/v1 ControllerRevision (DaemonSet and StatefulSet history): created, listed, its data
/// immutable (422 naming the field), shown with upstream's columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_revisions_store_history() {
    use k8s_openapi::api::apps::v1::ControllerRevision;
    let s = TestServer::start().await.expect("server starts");
    let client = s.client().await.expect("client");
    let revs: Api<ControllerRevision> = Api::default_namespaced(client);
    let rev: ControllerRevision = typed(json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "web-6d4b9c8f7", "labels": {"app": "web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                        "name": "web", "uid": "0d3a3c6e-0000-4000-8000-000000000001",
                        "controller": true}]},
        "data": {"spec": {"template": {"metadata": {"labels": {"app": "web"}}}}},
        "revision": 1
    }));
    revs.create(&PostParams::default(), &rev)
        .await
        .expect("create");
    let listed = revs
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].revision, 1);
    let err = revs
        .patch(
            "web-6d4b9c8f7",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"other": 1}})),
        )
        .await
        .expect_err("data is immutable");
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 422);
            assert!(e.message.contains("data"), "{}", e.message);
        }
        other => panic!("unexpected error {other}"),
    }
    let out = s.kubectl(&["get", "controllerrevisions"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = text;
    assert!(
        out.contains("statefulset.apps/web") && out.contains("CONTROLLER"),
        "{out}"
    );
}
