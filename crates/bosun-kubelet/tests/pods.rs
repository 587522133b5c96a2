//! End to end: an in-process API server, an in-process agent on the real runtime, the real
//! kubectl. Root required (fails, never skips, without it).
mod common;

use std::time::{Duration, Instant};

use common::{condition, status_of, Cluster};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node};
use kube::api::{Api, ListParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_registers_and_pod_exit_codes_show() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let node = Api::<Node>::all(client.clone()).get(&c.node).await.unwrap();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["kubernetes.io/hostname"], c.node);
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert!(labels.contains_key("kubernetes.io/arch"));
    let st = node.status.clone().unwrap();
    let cap = st.capacity.clone().unwrap();
    assert_eq!(cap["pods"].0, "110");
    for k in ["cpu", "memory", "ephemeral-storage"] {
        assert!(cap.contains_key(k), "capacity lacks {k}");
        assert!(st.allocatable.as_ref().unwrap().contains_key(k));
    }
    let info = st.node_info.clone().unwrap();
    assert!(!info.kernel_version.is_empty());
    assert!(info.container_runtime_version.starts_with("bosun://"));
    let types: Vec<String> = st
        .conditions
        .unwrap()
        .iter()
        .map(|c| c.type_.clone())
        .collect();
    for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert!(types.contains(&t.to_string()), "no {t} condition");
    }
    let lease = Api::<Lease>::namespaced(client.clone(), "kube-node-lease")
        .get(&c.node)
        .await
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(c.node.as_str())
    );
    let described = c.ts.kubectl_ok(&["describe", "node", &c.node]);
    assert!(described.contains("KubeletReady"), "{described}");

    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: fails}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - {name: main, image: bosun.test/busybox:latest, command: [sh, -c, "echo hello from bosun; exit 3"]}
---
apiVersion: v1
kind: Pod
metadata: {name: works}
spec:
  nodeName: NODE
  restartPolicy: Never
  initContainers:
  - {name: init, image: bosun.test/busybox:latest, command: [sh, -c, "echo init done"]}
  containers:
  - {name: main, image: bosun.test/busybox:latest, command: ["true"]}
"#,
    );
    let p = c
        .wait_pod("fails", 60, |p| p["status"]["phase"] == "Failed")
        .await;
    let t = &status_of(&p, "main")["state"]["terminated"];
    assert_eq!(t["exitCode"], 3, "{p}");
    assert_eq!(t["reason"], "Error");
    assert!(status_of(&p, "main")["containerID"]
        .as_str()
        .unwrap()
        .starts_with("bosun://"));
    assert!(status_of(&p, "main")["imageID"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(p["status"]["hostIP"], "127.0.0.1");
    assert_eq!(p["status"]["qosClass"], "BestEffort");
    assert!(p["status"]["startTime"].is_string());
    let p = c
        .wait_pod("works", 60, |p| p["status"]["phase"] == "Succeeded")
        .await;
    assert_eq!(condition(&p, "Initialized"), "True");
    assert_eq!(
        p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );
    assert_eq!(
        status_of(&p, "main")["state"]["terminated"]["reason"],
        "Completed"
    );

    let logs = c.ts.kubectl_ok(&["logs", "fails"]);
    assert_eq!(logs, "hello from bosun\n");
    let logs = c.ts.kubectl_ok(&["logs", "works", "-c", "init"]);
    assert_eq!(logs, "init done\n");

    // Events a user sees in `kubectl describe pod`.
    let events = Api::<Event>::namespaced(client, "default")
        .list(&ListParams::default().fields("involvedObject.name=fails"))
        .await
        .unwrap();
    let reasons: Vec<String> = events
        .items
        .iter()
        .filter_map(|e| e.reason.clone())
        .collect();
    for r in ["Pulled", "Created", "Started"] {
        assert!(
            reasons.contains(&r.to_string()),
            "no {r} event in {reasons:?}"
        );
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_configmap_secret_and_volumes_visible() {
    let c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, "app.conf": "color=blue"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Service
metadata: {name: mysql}
spec:
  ports: [{port: 3306}]
"#,
    );
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: envs, labels: {app: demo}}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - name: main
    image: bosun.test/busybox:latest
    command: [sh, -c]
    args:
    - |
      echo "GREETING=$GREETING"; echo "PASSWORD=$PASSWORD"; echo "POD=$POD_NAME/$POD_NS"
      echo "MEM=$MEM_MI"; echo "MYSQL=$MYSQL_SERVICE_HOST:$MYSQL_SERVICE_PORT"; echo "CFG_greeting=$CFG_greeting"
      echo "FILE=$(cat /etc/cfg/app.conf)"; echo "SECRETFILE=$(cat /etc/creds/password)"
      echo "LABELS=$(cat /etc/podinfo/labels)"; echo "HOST=$(hostname)"
      echo x > /cache/f && echo "EMPTYDIR=$(cat /cache/f)"; echo "EXPANDED=$(GREETING)"
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: MEM_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    envFrom:
    - {configMapRef: {name: cfg}, prefix: CFG_}
    resources: {limits: {memory: 64Mi}}
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: creds, mountPath: /etc/creds}
    - {name: podinfo, mountPath: /etc/podinfo}
    - {name: cache, mountPath: /cache}
  volumes:
  - {name: cfg, configMap: {name: cfg}}
  - {name: creds, secret: {secretName: creds}}
  - {name: podinfo, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}}
  - {name: cache, emptyDir: {}}
"#,
    );
    let p = c
        .wait_pod("envs", 60, |p| {
            p["status"]["phase"] == "Succeeded" || p["status"]["phase"] == "Failed"
        })
        .await;
    let logs = c.ts.kubectl_ok(&["logs", "envs"]);
    assert_eq!(p["status"]["phase"], "Succeeded", "{logs}");
    let svc_ip =
        c.ts.kubectl_ok(&["get", "svc", "mysql", "-o", "jsonpath={.spec.clusterIP}"]);
    for want in [
        "GREETING=hello".to_string(),
        "PASSWORD=s3cret".into(),
        "POD=envs/default".into(),
        "MEM=64".into(),
        format!("MYSQL={svc_ip}:3306"),
        "CFG_greeting=hello".into(),
        "FILE=color=blue".into(),
        "SECRETFILE=s3cret".into(),
        "LABELS=app=\"demo\"".into(),
        "HOST=envs".into(),
        "EMPTYDIR=x".into(),
        "EXPANDED=hello".into(),
    ] {
        assert!(
            logs.lines().any(|l| l == want),
            "{want:?} not in logs:\n{logs}"
        );
    }
    // A missing config map is CreateContainerConfigError with upstream's message.
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: nocfg}
spec:
  nodeName: NODE
  containers:
  - name: main
    image: bosun.test/busybox:latest
    env: [{name: X, valueFrom: {configMapKeyRef: {name: absent, key: k}}}]
"#,
    );
    let p = c
        .wait_pod("nocfg", 60, |p| {
            status_of(p, "main")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
        })
        .await;
    assert_eq!(
        status_of(&p, "main")["state"]["waiting"]["message"],
        "configmap \"absent\" not found"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_tail_previous_and_crash_loop() {
    let c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  nodeName: NODE
  containers:
  - {name: main, image: bosun.test/busybox:latest, command: [sh, -c, "echo one; echo two; echo three; sleep 1; exit 1"]}
---
apiVersion: v1
kind: Pod
metadata: {name: counter}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - {name: a, image: bosun.test/busybox:latest, command: [sh, -c, "for i in 1 2 3 4 5; do echo line $i; sleep 0.5; done"]}
  - {name: b, image: bosun.test/busybox:latest, command: [sh, -c, "echo bee; sleep 30"]}
"#,
    );
    // Follow streams until the container exits.
    c.wait_pod("counter", 60, |p| {
        status_of(p, "a")["state"]["running"].is_object()
    })
    .await;
    let out = c.ts.kubectl_ok(&["logs", "-f", "counter", "-c", "a"]);
    assert_eq!(out, "line 1\nline 2\nline 3\nline 4\nline 5\n");
    let out = c.ts.kubectl_ok(&["logs", "counter", "-c", "a", "--tail=2"]);
    assert_eq!(out, "line 4\nline 5\n");
    let out =
        c.ts.kubectl_ok(&["logs", "counter", "-c", "a", "--timestamps", "--tail=1"]);
    assert!(out.ends_with(" line 5\n") && out.starts_with("20"), "{out}");

    // Restarts: the first at once, then CrashLoopBackOff; the previous container's log stays.
    let p = c
        .wait_pod("crasher", 90, |p| {
            status_of(p, "main")["restartCount"].as_i64() >= Some(2)
                && status_of(p, "main")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
        .await;
    let cs = status_of(&p, "main");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1, "{cs}");
    assert!(cs["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .contains("back-off"));
    assert_eq!(p["status"]["phase"], "Running");
    let out = c.ts.kubectl_ok(&["logs", "crasher", "--previous"]);
    assert_eq!(out, "one\ntwo\nthree\n");
    let desc = c.ts.kubectl_ok(&["describe", "pod", "crasher"]);
    assert!(desc.contains("BackOff"), "{desc}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_restarts_and_readiness_gates_ready() {
    let c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: bosun.test/busybox:latest
    command: [sh, -c, "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 600"]
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata: {name: ready}
spec:
  nodeName: NODE
  containers:
  - name: web
    image: bosun.test/busybox:latest
    command: [sh, -c, "mkdir -p /www; sleep 4; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /index.html, port: http}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: tcp}
spec:
  nodeName: NODE
  containers:
  - name: nc
    image: bosun.test/busybox:latest
    command: [sh, -c, "exec httpd -f -p 9000 -h /"]
    readinessProbe:
      tcpSocket: {port: 9000}
      periodSeconds: 1
"#,
    );
    // Readiness: running but not Ready until the server answers.
    let p = c
        .wait_pod("ready", 60, |p| {
            status_of(p, "web")["state"]["running"].is_object()
        })
        .await;
    assert_eq!(condition(&p, "Ready"), "False", "{}", p["status"]);
    assert_eq!(status_of(&p, "web")["ready"], false);
    let p = c
        .wait_pod("ready", 60, |p| condition(p, "Ready") == "True")
        .await;
    assert_eq!(condition(&p, "ContainersReady"), "True");
    assert_eq!(status_of(&p, "web")["ready"], true);
    c.wait_pod("tcp", 60, |p| condition(p, "Ready") == "True")
        .await;

    // Liveness: the container is killed and restarted after its file disappears.
    let p = c
        .wait_pod("live", 90, |p| {
            status_of(p, "main")["restartCount"].as_i64() >= Some(1)
        })
        .await;
    assert!(
        status_of(&p, "main")["lastState"]["terminated"].is_object(),
        "{}",
        p["status"]
    );
    let desc = c.ts.kubectl_ok(&["describe", "pod", "live"]);
    assert!(
        desc.contains("Unhealthy") && desc.contains("Liveness probe failed"),
        "{desc}"
    );
    assert!(
        desc.contains("failed liveness probe, will be restarted"),
        "{desc}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_agent_adopts_running_containers() {
    let mut c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  nodeName: NODE
  containers:
  - {name: main, image: bosun.test/busybox:latest, command: [sh, -c, "echo started; sleep 600"]}
"#,
    );
    let before = c
        .wait_pod("sleeper", 60, |p| {
            status_of(p, "main")["state"]["running"].is_object()
        })
        .await;
    let id = status_of(&before, "main")["containerID"].clone();
    let started = status_of(&before, "main")["state"]["running"]["startedAt"].clone();
    c.kill_agent().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.start_agent().await;
    // Give the new agent several sync rounds, then check nothing was restarted.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = c
        .wait_pod("sleeper", 30, |p| {
            status_of(p, "main")["state"]["running"].is_object()
        })
        .await;
    assert_eq!(status_of(&after, "main")["containerID"], id);
    assert_eq!(status_of(&after, "main")["restartCount"], 0);
    assert_eq!(
        status_of(&after, "main")["state"]["running"]["startedAt"],
        started
    );
    // The adopted container is still served by the new agent's log API.
    assert_eq!(c.ts.kubectl_ok(&["logs", "sleeper"]), "started\n");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_deletion_honours_the_grace_period() {
    let c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: polite}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 30
  containers:
  - {name: main, image: bosun.test/busybox:latest, command: [sh, -c, "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.2; done"]}
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 3
  containers:
  - {name: main, image: bosun.test/busybox:latest, command: [sh, -c, "trap '' TERM; while true; do sleep 0.2; done"]}
"#,
    );
    c.wait_pod("polite", 60, |p| {
        status_of(p, "main")["state"]["running"].is_object()
    })
    .await;
    c.wait_pod("stubborn", 60, |p| {
        status_of(p, "main")["state"]["running"].is_object()
    })
    .await;
    // SIGTERM handled: gone well before the 30 s grace period.
    let t = Instant::now();
    c.ts.kubectl_ok(&["delete", "pod", "polite", "--wait=true", "--timeout=60s"]);
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "polite pod took {:?}",
        t.elapsed()
    );
    // SIGTERM ignored: killed after its 3 s grace period, not before.
    let t = Instant::now();
    c.ts.kubectl_ok(&["delete", "pod", "stubborn", "--wait=true", "--timeout=60s"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "stubborn pod went after only {took:?}"
    );
    assert!(took < Duration::from_secs(30), "stubborn pod took {took:?}");
    let out = c.ts.kubectl_ok(&["get", "pods", "-o", "name"]);
    assert!(out.trim().is_empty(), "pods left: {out}");
    // Nothing left on the node either.
    let containers = std::fs::read_dir(c.data.path().join("containers"))
        .unwrap()
        .count();
    assert_eq!(containers, 0);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_backs_off_with_a_clear_message() {
    let c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  nodeName: NODE
  containers:
  - {name: main, image: "bosun.test/does-not-exist:1.0"}
---
apiVersion: v1
kind: Pod
metadata: {name: neverpull}
spec:
  nodeName: NODE
  containers:
  - {name: main, image: "bosun.test/does-not-exist:1.0", imagePullPolicy: Never}
"#,
    );
    let p = c
        .wait_pod("noimage", 60, |p| {
            status_of(p, "main")["state"]["waiting"]["reason"] == "ImagePullBackOff"
        })
        .await;
    let msg = status_of(&p, "main")["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("bosun.test/does-not-exist:1.0") && msg.contains("bosun image import"),
        "{msg}"
    );
    assert_eq!(p["status"]["phase"], "Pending");
    let get = c.ts.kubectl_ok(&["get", "pod", "noimage"]);
    assert!(
        get.contains("ImagePullBackOff") || get.contains("ErrImagePull"),
        "{get}"
    );
    let desc = c.ts.kubectl_ok(&["describe", "pod", "noimage"]);
    assert!(desc.contains("Failed to pull image"), "{desc}");
    let p = c
        .wait_pod("neverpull", 60, |p| {
            status_of(p, "main")["state"]["waiting"]["reason"] == "ErrImageNeverPull"
        })
        .await;
    assert!(status_of(&p, "main")["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .contains("is not present with pull policy of Never"));
    c.shutdown().await;
}

/// Pod-level cgroup limits as upstream's pod container manager sets them: the sum of the
/// containers' limits when all have one, shares from the sum of requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_cgroup_gets_the_sum_of_its_containers_limits() {
    let c = Cluster::start().await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: limited}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 0
  containers:
  - name: a
    image: bosun.test/busybox:latest
    command: [sleep, "3600"]
    resources: {requests: {cpu: 100m, memory: 16Mi}, limits: {cpu: 200m, memory: 32Mi}}
  - name: b
    image: bosun.test/busybox:latest
    command: [sleep, "3600"]
    resources: {requests: {cpu: 150m, memory: 16Mi}, limits: {cpu: 300m, memory: 48Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: half-limited}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 0
  containers:
  - name: a
    image: bosun.test/busybox:latest
    command: [sleep, "3600"]
    resources: {requests: {cpu: 100m}, limits: {cpu: 200m, memory: 32Mi}}
  - name: b
    image: bosun.test/busybox:latest
    command: [sleep, "3600"]
    resources: {requests: {cpu: 100m}}
"#,
    );
    let read = |ctl: &str, uid: &str, file: &str| -> String {
        let p = format!("/sys/fs/cgroup/{ctl}/kubepods/burstable/pod{uid}/{file}");
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .trim()
            .to_string()
    };
    let p = c
        .wait_pod("limited", 60, |p| p["status"]["phase"] == "Running")
        .await;
    assert_eq!(p["status"]["qosClass"], "Burstable");
    let uid = p["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(
        read("cpu", &uid, "cpu.cfs_quota_us"),
        "50000",
        "200m + 300m"
    );
    assert_eq!(read("cpu", &uid, "cpu.cfs_period_us"), "100000");
    assert_eq!(read("cpu", &uid, "cpu.shares"), "256", "250m of requests");
    assert_eq!(
        read("memory", &uid, "memory.limit_in_bytes"),
        (80u64 << 20).to_string(),
        "32Mi + 48Mi"
    );

    let p = c
        .wait_pod("half-limited", 60, |p| p["status"]["phase"] == "Running")
        .await;
    let uid = p["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(read("cpu", &uid, "cpu.shares"), "204", "200m of requests");
    assert_eq!(
        read("cpu", &uid, "cpu.cfs_quota_us"),
        "-1",
        "b has no cpu limit"
    );
    let mem: u64 = read("memory", &uid, "memory.limit_in_bytes")
        .parse()
        .unwrap();
    assert!(mem > 1 << 40, "b has no memory limit, the pod none: {mem}");
    c.ts.kubectl_ok(&["delete", "pod", "limited", "half-limited", "--wait=true"]);
    c.shutdown().await;
}

/// Log rotation by size (upstream's containerLogMaxSize / containerLogMaxFiles): the log is
/// renamed with a timestamp, the shim writes a new one without losing a line, at most
/// max_files files remain, and `kubectl logs` reads the current file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_rotate_by_size() {
    let c = Cluster::start_with(std::sync::Arc::new(|cfg| {
        cfg.log_rotation = bosun_kubelet::logrotate::LogRotation {
            max_size_bytes: 4096,
            max_files: 3,
            monitor_interval: Duration::from_millis(300),
        };
    }))
    .await;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: chatty}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: bosun.test/busybox:latest
    command: [sh, -c, 'i=0; while true; do echo "line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); sleep 0.005; done']
"#,
    );
    let p = c
        .wait_pod("chatty", 60, |p| p["status"]["phase"] == "Running")
        .await;
    let uid = p["metadata"]["uid"].as_str().unwrap().to_string();
    let log = c.data.path().join(format!("pods/{uid}/logs/main/0.log"));
    let numbers = |text: &str| -> Vec<u64> {
        text.lines()
            .filter_map(|l| l.split("line-").nth(1)?.split('-').next()?.parse().ok())
            .collect()
    };
    // Wait for two rotations at least, and check the files on the way.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut checked = false;
    while Instant::now() < deadline && !checked {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rotated = bosun_kubelet::logrotate::rotated_files(&log);
        assert!(
            rotated.len() <= 2,
            "max_files 3 keeps 2 rotated: {rotated:?}"
        );
        if rotated.len() < 2 {
            continue;
        }
        // The newest rotated file ends where the current one starts: nothing lost. A
        // rotation in between shows as a changed list; try again then.
        let (Ok(old), Ok(cur)) = (
            std::fs::read_to_string(rotated.last().unwrap()),
            std::fs::read_to_string(&log),
        ) else {
            continue;
        };
        if bosun_kubelet::logrotate::rotated_files(&log) != rotated {
            continue;
        }
        let (old, cur) = (numbers(&old), numbers(&cur));
        let (Some(last), Some(first)) = (old.last(), cur.first()) else {
            continue;
        };
        assert_eq!(last + 1, *first, "no line lost across the rotation");
        assert!(
            old.windows(2).all(|w| w[1] == w[0] + 1),
            "rotated file complete"
        );
        checked = true;
    }
    assert!(checked, "no two rotations seen in 60 s");
    let out = c.ts.kubectl_ok(&["logs", "chatty"]);
    let got = numbers(&out);
    assert!(!got.is_empty(), "{out}");
    assert!(!got.contains(&0), "line 0 was rotated away: {out}");
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{out}");
    c.ts.kubectl_ok(&["delete", "pod", "chatty", "--wait=true"]);
    c.shutdown().await;
}
