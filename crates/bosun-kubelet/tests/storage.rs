//! Dynamic provisioning end to end (root): a server with the PV binder and the scheduler, a
//! real agent. A claim without a class gets the default `local-path` (WaitForFirstConsumer);
//! a pod using it is scheduled, the claim gets the pod's node, the agent's provisioner makes
//! the directory and the volume, the claim binds, the pod writes a file; after that pod is
//! deleted a new pod of the same claim (mounted read-only) reads the file and cannot write;
//! deleting the claim removes the volume and its directory on the node.

mod common;

use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::Api;

const CLAIM: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
"#;

fn pod(name: &str, script: &str, read_only: bool) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: [sh, -c, '{script}']
    volumeMounts: [{{name: d, mountPath: /data}}]
  volumes:
  - name: d
    persistentVolumeClaim: {{claimName: data, readOnly: {read_only}}}
"#
    )
}

async fn wait_until<F: Fn() -> bool>(secs: u64, what: &str, f: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what}: not within {secs}s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_claim_keeps_data_across_pods_and_goes_with_the_claim() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let mut opts = bosun_controllers::ControllerOptions::without_leader_election();
    opts.controllers = vec!["persistentvolume-binder".into()];
    let cc = client.clone();
    let controllers = tokio::spawn(async move {
        if let Err(e) = bosun_controllers::run(cc, opts).await {
            panic!("controllers stopped: {e}");
        }
    });
    let sched = bosun_scheduler::start(
        client.clone(),
        bosun_scheduler::SchedulerOptions {
            pod_initial_backoff: Duration::from_millis(200),
            pod_max_backoff: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .expect("scheduler starts");

    c.apply(CLAIM);
    c.apply(&pod("writer", "echo persisted > /data/file", false));
    let done = |p: &serde_json::Value| p["status"]["phase"] == "Succeeded";
    let writer = c.wait_pod("writer", 90, done).await;
    assert_eq!(writer["spec"]["nodeName"], c.node.as_str());

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claim = pvcs.get("data").await.expect("claim");
    let uid = claim.metadata.uid.clone().unwrap_or_default();
    let spec = claim.spec.clone().unwrap_or_default();
    assert_eq!(spec.storage_class_name.as_deref(), Some("local-path"));
    assert_eq!(spec.volume_name, Some(format!("pvc-{uid}")));
    assert_eq!(
        claim
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("volume.kubernetes.io/selected-node")),
        Some(&c.node)
    );
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs.get(&format!("pvc-{uid}")).await.expect("volume");
    let dir = c
        .data
        .path()
        .join("storage")
        .join(format!("pvc-{uid}_default_data"));
    let pv_spec = pv.spec.clone().unwrap_or_default();
    assert_eq!(
        pv_spec.host_path.as_ref().map(|h| h.path.clone()),
        Some(dir.to_string_lossy().to_string())
    );
    assert_eq!(
        pv_spec.capacity.and_then(|c| c.get("storage").cloned()),
        Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
            "64Mi".into()
        ))
    );
    assert_eq!(
        pv_spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );
    assert_eq!(
        pv.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("pv.kubernetes.io/provisioned-by"))
            .map(String::as_str),
        Some("bosun.io/local-path")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("file")).expect("the file is on the node"),
        "persisted\n"
    );

    // A new pod of the same claim sees what the first one wrote; its claim volume is
    // read-only (`persistentVolumeClaim.readOnly`), so it cannot write (exit 3 if it could).
    c.ts.kubectl_ok(&["delete", "pod", "writer", "--wait=true"]);
    c.apply(&pod(
        "reader",
        "cat /data/file; if touch /data/nope 2>/dev/null; then exit 3; fi",
        true,
    ));
    c.wait_pod("reader", 90, done).await;
    let logs = c.ts.kubectl_ok(&["logs", "reader"]);
    assert_eq!(logs, "persisted\n");
    c.ts.kubectl_ok(&["delete", "pod", "reader", "--wait=true"]);

    // Deleting the claim removes the volume and its directory.
    c.ts.kubectl_ok(&["delete", "pvc", "data", "--wait=true"]);
    let name = format!("pvc-{uid}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if pvs.get_opt(&name).await.expect("get volume").is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "volume {name} not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_until(10, "directory removed", || !dir.exists()).await;

    drop(sched);
    controllers.abort();
    c.shutdown().await;
}
