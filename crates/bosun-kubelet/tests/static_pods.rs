//! Static pods end to end (root): a file in the manifest directory runs as a pod on the node,
//! its mirror pod appears in the API (name, annotation, owner), the mirror is re-created
//! when deleted, and the pod stops and its mirror goes when the file is removed.
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_files_run_as_static_pods_with_mirrors() {
    let manifests = tempfile::tempdir().unwrap();
    let dir = manifests.path().to_path_buf();
    let d = dir.clone();
    let c = Cluster::start_with(Arc::new(move |cfg: &mut bosun_kubelet::KubeletConfig| {
        cfg.pod_manifest_path = Some(d.clone());
    }))
    .await;
    std::fs::write(
        dir.join("web.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {tier: static}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: bosun.test/busybox:latest\n    command: [sh, -c, \"echo static pod up; sleep 3600\"]\n",
    )
    .unwrap();
    let mirror = format!("web-{}", c.node);
    let p = c
        .wait_pod(&mirror, 60, |p| {
            p["status"]["phase"] == "Running"
                && status_of(p, "main")["state"]["running"].is_object()
        })
        .await;
    let ann = &p["metadata"]["annotations"];
    let hash = ann["kubernetes.io/config.mirror"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(hash.len(), 32, "{ann}");
    assert_eq!(ann["kubernetes.io/config.hash"], hash);
    assert_eq!(ann["kubernetes.io/config.source"], "file");
    assert_eq!(p["metadata"]["labels"]["tier"], "static");
    assert_eq!(p["spec"]["nodeName"], c.node);
    let owner = &p["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node");
    assert_eq!(owner["name"], c.node);
    assert_eq!(owner["controller"], true);
    // The API's pod is a mirror: its uid is not the static pod's, the containers run with
    // the static pod's (the hash), and logs reach them through the mirror's name.
    assert_ne!(p["metadata"]["uid"], hash);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.ts.kubectl(&["logs", &mirror]);
        if String::from_utf8_lossy(&out.stdout).contains("static pod up") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl logs {mirror}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Deleting the mirror does not stop the pod; the agent creates the mirror again.
    let api: Api<Pod> = Api::namespaced(c.client().await, "default");
    let old_uid = p["metadata"]["uid"].as_str().unwrap().to_string();
    c.ts.kubectl_ok(&["delete", "pod", &mirror, "--wait=false"]);
    let again = c
        .wait_pod(&mirror, 30, |p| {
            p["metadata"]["uid"].as_str().is_some_and(|u| u != old_uid)
                && p["metadata"]["deletionTimestamp"].is_null()
        })
        .await;
    assert_eq!(
        again["metadata"]["annotations"]["kubernetes.io/config.mirror"],
        hash
    );
    let restarted = c
        .wait_pod(&mirror, 30, |p| p["status"]["phase"] == "Running")
        .await;
    assert_eq!(
        status_of(&restarted, "main")["restartCount"],
        0,
        "the static pod's container kept running"
    );

    // Removing the file stops the pod and removes the mirror.
    std::fs::remove_file(dir.join("web.yaml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get_opt(&mirror).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "mirror pod {mirror} still exists"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut rc = bosun_runtime::RuntimeConfig::new(c.data.path());
    rc.shim_program = std::path::PathBuf::from(env!("CARGO_BIN_EXE_bosun-kubelet-shim"));
    rc.shim_args = vec![];
    let rt = Arc::new(bosun_runtime::Runtime::new(rc).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (rt, h) = (rt.clone(), hash.to_string());
        let left = tokio::task::spawn_blocking(move || {
            rt.list()
                .unwrap()
                .into_iter()
                .filter(|s| {
                    rt.config(&s.id)
                        .is_ok_and(|c| c.labels.get("io.kubernetes.pod.uid") == Some(&h))
                })
                .count()
        })
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} containers of the static pod remain"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    c.shutdown().await;
}
