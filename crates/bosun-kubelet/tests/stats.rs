//! Resource stats end to end (root): the kubelet's `/stats/summary` feeds the API server's
//! `metrics.k8s.io`, which the real `kubectl top` and the HPA controller read.
mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Millicores from `kubectl top`'s `123m` (or whole cores).
fn millicores(s: &str) -> f64 {
    match s.strip_suffix('m') {
        Some(m) => m.parse().unwrap_or(-1.0),
        None => s.parse::<f64>().map(|c| c * 1000.0).unwrap_or(-1.0),
    }
}

/// Runs `kubectl args` until it succeeds with output `f` accepts (metrics need two
/// samples), or panics after `secs` with the last output.
fn kubectl_until(c: &Cluster, args: &[&str], secs: u64, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = c.ts.kubectl(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() && f(&text) {
            return text;
        }
        last = text;
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("kubectl {args:?}: not as expected in {secs}s; last output:\n{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_top_reads_cpu_and_memory_and_a_cpu_limit_holds() {
    let c = Cluster::start().await;
    // Burns CPU against a 300m limit, and holds ~20 MiB in a tmpfs-backed file.
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: burn, labels: {app: burn}}
spec:
  nodeName: NODE
  containers:
  - name: main
    image: bosun.test/busybox:latest
    command: [sh, -c, "head -c 20971520 /dev/zero > /dev/shm/fill; while :; do :; done"]
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: 300m, memory: 128Mi}
  - name: idle
    image: bosun.test/busybox:latest
    command: [sleep, "3600"]
"#,
    );
    c.wait_pod("burn", 60, |p| p["status"]["phase"] == "Running")
        .await;

    // Discovery lists the group, as `kubectl top` checks first.
    let groups = c.ts.kubectl_ok(&["api-versions"]);
    assert!(groups.contains("metrics.k8s.io/v1beta1"), "{groups}");
    let resources =
        c.ts.kubectl_ok(&["api-resources", "--api-group=metrics.k8s.io"]);
    assert!(
        resources.contains("NodeMetrics") && resources.contains("PodMetrics"),
        "{resources}"
    );

    // The rate settles over a few samples; the CFS quota keeps it at or under 300m.
    let mut cpu = 0.0;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let out = kubectl_until(
            &c,
            &["top", "pod", "burn", "--containers", "--no-headers"],
            60,
            |t| t.contains("burn"),
        );
        let line = out
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some("main"))
            .unwrap_or_else(|| panic!("no main container in:\n{out}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        cpu = millicores(cols[2]);
        let mem = cols[3];
        assert!(mem.ends_with("Mi"), "{line}");
        let mi: f64 = mem.trim_end_matches("Mi").parse().unwrap();
        assert!(
            mi >= 19.0,
            "working set counts the 20 MiB in /dev/shm: {line}"
        );
        seen.push(cpu);
        if cpu >= 150.0 {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        cpu >= 150.0,
        "the busy loop shows as CPU usage, samples: {seen:?}"
    );
    assert!(
        seen.iter().all(|c| *c <= 330.0),
        "the 300m limit holds (CFS quota), samples: {seen:?}"
    );

    // The raw API: PodMetrics per container, NodeMetrics with the node's labels.
    let raw = c.ts.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burn",
    ]);
    let pm: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(pm["kind"], "PodMetrics");
    assert_eq!(pm["metadata"]["labels"]["app"], "burn");
    let names: Vec<&str> = pm["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["idle", "main"]);
    let listed = c.ts.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3Dnone",
    ]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["kind"], "PodMetricsList");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(0));
    let missing = c.ts.kubectl_err(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope",
    ]);
    assert!(
        missing.contains("NotFound") || missing.contains("not found"),
        "{missing}"
    );

    let top_pods = c.ts.kubectl_ok(&["top", "pods"]);
    assert!(top_pods.contains("burn"), "{top_pods}");
    let top_nodes = kubectl_until(&c, &["top", "nodes", "--no-headers"], 30, |t| {
        t.contains(&c.node)
    });
    let line = top_nodes.lines().find(|l| l.starts_with(&c.node)).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    // NAME CPU(cores) CPU% MEMORY(bytes) MEMORY%
    assert!(millicores(cols[1]) > 0.0, "{line}");
    assert!(cols[2].ends_with('%') && cols[4].ends_with('%'), "{line}");
    let nm: Value = serde_json::from_str(&c.ts.kubectl_ok(&[
        "get",
        "--raw",
        &format!("/apis/metrics.k8s.io/v1beta1/nodes/{}", c.node),
    ]))
    .unwrap();
    assert_eq!(nm["kind"], "NodeMetrics");
    assert_eq!(nm["metadata"]["labels"]["kubernetes.io/hostname"], c.node);
    assert!(nm["usage"]["memory"].as_str().unwrap().ends_with("Ki"));

    c.ts.kubectl_ok(&["delete", "pod", "burn", "--grace-period=1"]);
    c.shutdown().await;
}

/// The HPA controller's default metrics source is metrics.k8s.io: a Deployment whose pod
/// burns far over its CPU request is scaled up from real kubelet figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_scales_on_real_pod_metrics() {
    let c = Cluster::start().await;
    let mut opts = bosun_controllers::ControllerOptions::without_leader_election();
    opts.controllers = vec![
        "deployment".into(),
        "replicaset".into(),
        "horizontal-pod-autoscaler".into(),
    ];
    opts.hpa.sync_period = Duration::from_secs(2);
    let client = c.ts.client().await.unwrap();
    let controllers = tokio::spawn(async move {
        if let Err(e) = bosun_controllers::run(client, opts).await {
            panic!("controllers stopped: {e}");
        }
    });
    c.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: hot}
spec:
  replicas: 1
  selector: {matchLabels: {app: hot}}
  template:
    metadata: {labels: {app: hot}}
    spec:
      nodeName: NODE
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: bosun.test/busybox:latest
        command: [sh, -c, "while :; do :; done"]
        resources:
          requests: {cpu: 20m}
          limits: {cpu: 200m}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hot}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: hot}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
"#,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    let mut scaled = false;
    while Instant::now() < deadline {
        let out = c.ts.kubectl(&["get", "hpa", "hot", "-o", "json"]);
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            last = serde_json::to_string_pretty(&v["status"]).unwrap();
            if v["status"]["desiredReplicas"].as_i64() == Some(2) {
                let current = v["status"]["currentMetrics"][0]["resource"]["current"]
                    ["averageUtilization"]
                    .as_i64()
                    .unwrap_or(0);
                assert!(current > 50, "scaled on a real utilisation: {last}");
                scaled = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        scaled,
        "the HPA did not scale up on real metrics; last status:\n{last}"
    );
    let described = c.ts.kubectl_ok(&["describe", "hpa", "hot"]);
    assert!(described.contains("SuccessfulRescale"), "{described}");
    controllers.abort();
    c.ts.kubectl_ok(&["delete", "deployment", "hot"]);
    c.ts.kubectl_ok(&["delete", "pods", "-l", "app=hot", "--grace-period=1"]);
    c.shutdown().await;
}
