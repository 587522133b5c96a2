//! `bosun ctl` against an in-process bosun server, compared with the real kubectl (v1.34) on
//! the same objects: the seed's manifests, then every verb.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bosun_testkit::TestServer;

fn ctl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bosun-ctl"));
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    // bosun ctl reads stdin for `-f -`; an empty one when the test gives none.
    bosun_testkit::output_within(
        cmd,
        Some(stdin.unwrap_or("")),
        bosun_testkit::CLIENT_DEADLINE,
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn seed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed")
}

/// Runs both CLIs with `args` until their stdout and stderr agree (ages in the tables may tick
/// over between the two runs), at most three times.
fn same(ts: &TestServer, args: &[&str]) -> String {
    let mut last = (String::new(), String::new());
    for _ in 0..3 {
        let k = ts.kubectl(args);
        let b = ctl(ts.kubeconfig(), args, None);
        let (ks, bs) = (text(&k.stdout), text(&b.stdout));
        let (ke, be) = (text(&k.stderr), text(&b.stderr));
        if ks == bs && ke == be && k.status.success() == b.status.success() {
            return ks;
        }
        last = (
            format!("kubectl ({}):\n{ks}{ke}", k.status),
            format!("bosun ctl ({}):\n{bs}{be}", b.status),
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    panic!("`{}` differs\n{}\n{}", args.join(" "), last.0, last.1);
}

fn ok(ts: &TestServer, args: &[&str]) -> String {
    let o = ctl(ts.kubeconfig(), args, None);
    assert!(
        o.status.success(),
        "bosun ctl {} failed:\n{}{}",
        args.join(" "),
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn get_prints_what_kubectl_prints() {
    let ts = TestServer::start().await.expect("server");
    let s = seed();
    for f in [
        "mysql-rc.yaml",
        "mysql-svc.yaml",
        "myweb-rc.yaml",
        "myweb-svc.yaml",
        "tomcat-deployment.yaml",
        "php-apache-hpa.yaml",
        "pv0003.yaml",
        "development-ns.yaml",
    ] {
        let out = ok(&ts, &["create", "-f", s.join(f).to_str().unwrap()]);
        assert!(out.trim_end().ends_with("created"), "{out}");
    }
    for args in [
        vec!["get", "rc,svc"],
        vec!["get", "rc"],
        vec!["get", "svc", "-o", "wide"],
        vec!["get", "rc", "-o", "wide"],
        vec!["get", "pods"],
        vec!["get", "all"],
        vec!["get", "svc", "-A"],
        vec!["get", "ns"],
        vec!["get", "pv"],
        vec!["get", "deploy"],
        vec!["get", "hpa"],
        vec!["get", "svc", "--show-labels"],
        vec!["get", "rc", "-l", "app=mysql"],
        vec!["get", "rc", "-l", "app=nothing"],
        vec!["get", "rc,svc", "-o", "name"],
        vec![
            "get",
            "svc",
            "myweb",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ],
        vec!["get", "svc/mysql", "rc/mysql"],
        vec!["get", "pods", "-n", "development"],
        vec!["get", "pod", "nosuch"],
        vec!["get", "svc", "mysql", "--no-headers"],
        vec!["get", "nosuchtype"],
    ] {
        same(&ts, &args);
    }
    // yaml and json: the same objects (key order and formatting may differ in places).
    for o in ["json", "yaml"] {
        let k: serde_json::Value =
            serde_yaml::from_str(&ts.kubectl_ok(&["get", "rc", "mysql", "-o", o])).unwrap();
        let b: serde_json::Value =
            serde_yaml::from_str(&ok(&ts, &["get", "rc", "mysql", "-o", o])).unwrap();
        assert_eq!(k, b, "-o {o}");
        let k: serde_json::Value =
            serde_yaml::from_str(&ts.kubectl_ok(&["get", "svc", "-o", o])).unwrap();
        let b: serde_json::Value =
            serde_yaml::from_str(&ok(&ts, &["get", "svc", "-o", o])).unwrap();
        assert_eq!(k, b, "list -o {o}");
    }
    same(&ts, &["get", "svc", "mysql", "-o", "json"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn verbs_behave_like_kubectl() {
    let ts = TestServer::start().await.expect("server");
    let s = seed();
    let rc = s.join("myweb-rc.yaml");
    let rc = rc.to_str().unwrap();
    // apply: created, unchanged, configured; the annotation is kubectl's, so each CLI can
    // take over from the other.
    assert_eq!(
        ok(&ts, &["apply", "-f", rc]),
        "replicationcontroller/myweb created\n"
    );
    assert_eq!(
        ts.kubectl_ok(&["apply", "-f", rc]),
        "replicationcontroller/myweb unchanged\n"
    );
    assert_eq!(
        ok(&ts, &["apply", "-f", rc]),
        "replicationcontroller/myweb unchanged\n"
    );
    let changed = std::fs::read_to_string(rc)
        .unwrap()
        .replace("replicas: 5", "replicas: 3");
    let o = ctl(ts.kubeconfig(), &["apply", "-f", "-"], Some(&changed));
    assert_eq!(
        text(&o.stdout),
        "replicationcontroller/myweb configured\n",
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        ts.kubectl_ok(&["get", "rc", "myweb", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    assert_eq!(
        // kubectl takes over from bosun ctl's apply: back to the file's 5 replicas.
        ts.kubectl_ok(&["apply", "-f", rc]),
        "replicationcontroller/myweb configured\n"
    );
    // A directory (its namespace first: the files go in name order).
    ok(
        &ts,
        &[
            "create",
            "-f",
            s.join("development-ns.yaml").to_str().unwrap(),
        ],
    );
    let out = ok(&ts, &["apply", "-f", s.to_str().unwrap()]);
    assert!(
        out.contains("service/myweb created") && out.contains("pod/busybox created"),
        "{out}"
    );

    assert_eq!(
        ok(&ts, &["scale", "rc", "myweb", "--replicas=2"]),
        "replicationcontroller/myweb scaled\n"
    );
    assert_eq!(
        ts.kubectl_ok(&["get", "rc", "myweb", "-o", "jsonpath={.spec.replicas}"]),
        "2"
    );
    assert_eq!(
        ok(&ts, &["label", "svc", "myweb", "tier=web"]),
        "service/myweb labeled\n"
    );
    let e = ctl(ts.kubeconfig(), &["label", "svc", "myweb", "tier=db"], None);
    assert_eq!(
        text(&e.stderr),
        "error: 'tier' already has a value (web), and --overwrite is false\n"
    );
    assert_eq!(
        ok(&ts, &["label", "svc/myweb", "tier=db", "--overwrite"]),
        "service/myweb labeled\n"
    );
    assert_eq!(
        ts.kubectl_ok(&[
            "get",
            "svc",
            "myweb",
            "-o",
            "jsonpath={.metadata.labels.tier}"
        ]),
        "db"
    );
    assert_eq!(
        ok(&ts, &["label", "svc", "myweb", "tier-"]),
        "service/myweb labeled\n"
    );
    assert_eq!(
        ok(&ts, &["annotate", "svc", "myweb", "note=hi"]),
        "service/myweb annotated\n"
    );
    assert_eq!(
        ts.kubectl_ok(&[
            "get",
            "svc",
            "myweb",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "hi"
    );
    assert_eq!(
        ok(
            &ts,
            &["patch", "rc", "myweb", "-p", "{\"spec\":{\"replicas\":4}}"]
        ),
        "replicationcontroller/myweb patched\n"
    );
    assert_eq!(
        ts.kubectl_ok(&["get", "rc", "myweb", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    assert_eq!(
        ok(
            &ts,
            &[
                "patch",
                "rc",
                "myweb",
                "--type",
                "merge",
                "-p",
                "{\"spec\":{\"replicas\":4}}"
            ]
        ),
        "replicationcontroller/myweb patched (no change)\n"
    );

    // Nodes: cordon, taint (a Node object stands in for an agent).
    ts.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n",
    );
    assert_eq!(ok(&ts, &["cordon", "n1"]), "node/n1 cordoned\n");
    assert_eq!(ok(&ts, &["cordon", "n1"]), "node/n1 already cordoned\n");
    assert_eq!(
        ts.kubectl_ok(&["get", "node", "n1", "-o", "jsonpath={.spec.unschedulable}"]),
        "true"
    );
    assert_eq!(ok(&ts, &["uncordon", "n1"]), "node/n1 uncordoned\n");
    assert_eq!(
        ok(&ts, &["taint", "nodes", "n1", "dedicated=db:NoSchedule"]),
        "node/n1 tainted\n"
    );
    assert_eq!(
        ts.kubectl_ok(&[
            "get",
            "node",
            "n1",
            "-o",
            "jsonpath={.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect}"
        ]),
        "dedicated=db:NoSchedule"
    );
    assert_eq!(
        ok(&ts, &["taint", "node/n1", "dedicated:NoSchedule-"]),
        "node/n1 untainted\n"
    );

    // Deployments: rollout restart, pause/resume, history.
    assert_eq!(
        ok(&ts, &["rollout", "pause", "deploy/frontend"]),
        "deployment.apps/frontend paused\n"
    );
    assert_eq!(
        ok(&ts, &["rollout", "resume", "deploy/frontend"]),
        "deployment.apps/frontend resumed\n"
    );
    assert_eq!(
        ok(&ts, &["rollout", "restart", "deployment", "frontend"]),
        "deployment.apps/frontend restarted\n"
    );
    assert!(ts
        .kubectl_ok(&[
            "get",
            "deploy",
            "frontend",
            "-o",
            "jsonpath={.spec.template.metadata.annotations}"
        ])
        .contains("restartedAt"));

    // describe: kubectl's Service describer, events section included.
    let d = same(&ts, &["describe", "svc", "myweb"]);
    assert!(d.contains("30001/TCP") && d.contains("Events:"), "{d}");

    // api-resources and errors as kubectl prints them.
    same(&ts, &["api-resources", "-o", "name"]);
    let ar = ok(&ts, &["api-resources"]);
    assert!(
        ar.starts_with("NAME")
            && ar
                .lines()
                .any(|l| l.starts_with("replicationcontrollers ") && l.contains(" rc ")),
        "{ar}"
    );
    same(&ts, &["delete", "pod", "nosuch"]);
    same(&ts, &["delete", "svc", "mysql-none", "--ignore-not-found"]);

    // delete: by name, by file, by label.
    same(&ts, &["delete", "rc", "myweb"]);
    let out = ok(
        &ts,
        &["delete", "-f", s.join("myweb-svc.yaml").to_str().unwrap()],
    );
    assert_eq!(out, "service \"myweb\" deleted\n");
    same(&ts, &["delete", "svc", "-l", "app=nothing"]);

    // config
    same(&ts, &["config", "get-contexts"]);
    same(&ts, &["config", "current-context"]);
    same(&ts, &["config", "view"]);
}

/// Runs `bosun ctl` with extra environment (an editor script).
fn ctl_env(kubeconfig: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bosun-ctl"));
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .envs(env.iter().copied());
    bosun_testkit::output_within(cmd, None, bosun_testkit::CLIENT_DEADLINE)
}

fn kubectl_env(ts: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bosun_testkit::kubectl_path());
    cmd.arg("--kubeconfig")
        .arg(ts.kubeconfig())
        .args(args)
        .envs(env.iter().copied());
    bosun_testkit::output_within(cmd, None, bosun_testkit::CLIENT_DEADLINE)
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_prints_what_kubectl_prints() {
    let ts = TestServer::start().await.expect("server");
    for path in [
        "pods",
        "pods.spec.containers",
        "pods.spec.containers.resources.limits",
        "pods.spec.containers.livenessProbe.httpGet.port",
        "svc.spec",
        "deploy",
        "deploy.spec.strategy",
        "rc.spec.template.spec",
        "hpa.spec",
        "pv.spec",
        "pvc",
        "nodes.status.conditions",
        "events",
        "pods.nosuch",
        "nosuchtype",
    ] {
        same(&ts, &["explain", path]);
    }
    same(&ts, &["explain", "rc", "--recursive"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn autoscale_edit_drain_top_like_kubectl() {
    let ts = TestServer::start().await.expect("server");
    let s = seed();
    ok(
        &ts,
        &["create", "-f", s.join("myweb-rc.yaml").to_str().unwrap()],
    );

    // autoscale: the same autoscaling/v2 object as kubectl's, under another name.
    for (k, b, flags) in [
        ("k1", "b1", vec!["--min=1", "--max=10", "--cpu-percent=50"]),
        ("k2", "b2", vec!["--max=3"]),
        ("k3", "b3", vec!["--min=2", "--max=5", "--cpu=500m"]),
    ] {
        let mut ka = vec!["autoscale", "rc", "myweb", "--name", k];
        ka.extend(flags.iter().copied());
        let mut ba = vec!["autoscale", "rc", "myweb", "--name", b];
        ba.extend(flags.iter().copied());
        let ko = ts.kubectl(&ka);
        let bo = ctl(ts.kubeconfig(), &ba, None);
        assert_eq!(
            text(&ko.stdout).replace(k, b),
            text(&bo.stdout),
            "{}",
            text(&bo.stderr)
        );
        assert_eq!(text(&ko.stderr), text(&bo.stderr));
        let spec = |n: &str| {
            serde_json::from_str::<serde_json::Value>(&ts.kubectl_ok(&[
                "get",
                "hpa",
                n,
                "-o",
                "jsonpath={.spec}",
            ]))
            .unwrap()
        };
        assert_eq!(spec(k), spec(b), "{flags:?}");
    }
    let ko = ts.kubectl(&["autoscale", "rc", "myweb", "--name", "b1", "--max=2"]);
    let bo = ctl(
        ts.kubeconfig(),
        &["autoscale", "rc", "myweb", "--name", "b1", "--max=2"],
        None,
    );
    assert!(!ko.status.success() && !bo.status.success());
    assert!(
        text(&bo.stderr).contains("Error from server (AlreadyExists)"),
        "{}",
        text(&bo.stderr)
    );
    same(&ts, &["autoscale", "rc", "myweb", "--max=0"]);

    // edit: an editor script changes the replicas; an invalid edit is re-opened with the
    // server's error on top, and saving it unchanged gives up.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.sh");
    std::fs::write(
        &good,
        "#!/bin/sh\nsed -i 's/replicas: 5/replicas: 4/; s/replicas: 4$/replicas: 4/' \"$1\"\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.sh");
    std::fs::write(
        &bad,
        format!(
            "#!/bin/sh\nn=$(ls {d}/seen.* 2>/dev/null | wc -l)\ncp \"$1\" {d}/seen.$n\nsed -i 's/replicas: [0-9]*$/replicas: -1/' \"$1\"\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    for f in [&good, &bad] {
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(f)
            .status()
            .unwrap();
    }
    let good = good.to_str().unwrap();
    let o = ctl_env(
        ts.kubeconfig(),
        &["edit", "rc", "myweb"],
        &[("EDITOR", good)],
    );
    assert_eq!(
        text(&o.stdout),
        "replicationcontroller/myweb edited\n",
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        ts.kubectl_ok(&["get", "rc", "myweb", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    // Nothing to change now: both say so.
    let k = kubectl_env(&ts, &["edit", "rc", "myweb"], &[("EDITOR", good)]);
    let b = ctl_env(
        ts.kubeconfig(),
        &["edit", "rc", "myweb"],
        &[("EDITOR", good)],
    );
    assert_eq!(text(&k.stderr), text(&b.stderr));
    assert_eq!(text(&b.stderr), "Edit cancelled, no changes made.\n");
    let bad = bad.to_str().unwrap();
    let mut reopened = Vec::new();
    let mut stderrs = Vec::new();
    for run in 0..2 {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if f.file_name().to_string_lossy().starts_with("seen.") {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
        let o = if run == 0 {
            kubectl_env(&ts, &["edit", "rc", "myweb"], &[("KUBE_EDITOR", bad)])
        } else {
            ctl_env(
                ts.kubeconfig(),
                &["edit", "rc", "myweb"],
                &[("KUBE_EDITOR", bad)],
            )
        };
        assert!(!o.status.success());
        let second = std::fs::read_to_string(dir.path().join("seen.1")).unwrap();
        reopened.push(second.lines().take(7).collect::<Vec<_>>().join("\n"));
        // The copy's path differs (kubectl-edit-N vs bosun-edit-N).
        stderrs.push(
            text(&o.stderr)
                .lines()
                .map(|l| {
                    if l.starts_with("A copy of your changes") {
                        "A copy".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(reopened[0], reopened[1]);
    assert!(
        reopened[1].contains("# * spec.replicas: Invalid value: -1"),
        "{}",
        reopened[1]
    );
    assert_eq!(stderrs[0], stderrs[1]);

    // drain: the same pods on two nodes, drained by kubectl and by bosun ctl.
    let pods = |n: &str| {
        format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata:\n  name: bare-{n}\nspec:\n  nodeName: {n}\n  containers:\n  - name: c\n    image: x\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata:\n  name: ed-{n}\n  ownerReferences:\n  - apiVersion: v1\n    kind: ReplicationController\n    name: myweb\n    uid: 00000000-0000-0000-0000-000000000000\n    controller: true\nspec:\n  nodeName: {n}\n  volumes:\n  - name: d\n    emptyDir: {{}}\n  containers:\n  - name: c\n    image: x\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata:\n  name: ds-{n}\n  ownerReferences:\n  - apiVersion: apps/v1\n    kind: DaemonSet\n    name: gone\n    uid: 00000000-0000-0000-0000-000000000001\n    controller: true\nspec:\n  nodeName: {n}\n  containers:\n  - name: c\n    image: x\n"
        )
    };
    for n in ["n1", "n2"] {
        ts.kubectl_stdin(&["create", "-f", "-"], &pods(n));
    }
    // kubectl groups the errors in a Go map: their order in the aggregate is random.
    let sorted = |s: &str| {
        let mut l: Vec<String> = s
            .lines()
            .map(|l| match (l.find(": ["), l.rfind("], continuing")) {
                (Some(a), Some(b)) if a < b => {
                    let inner = &l[a + 3..b];
                    let inner = inner.strip_prefix("cannot delete ").unwrap_or(inner);
                    let mut parts: Vec<&str> = inner.split(", cannot delete ").collect();
                    parts.sort();
                    format!("{}{}{}", &l[..a + 3], parts.join(" | "), &l[b..])
                }
                _ => l.to_string(),
            })
            .collect();
        l.sort();
        l
    };
    for flags in [
        vec![],
        vec!["--ignore-daemonsets"],
        vec!["--force"],
        vec!["--force", "--delete-emptydir-data", "--grace-period=0"],
    ] {
        let mut ka = vec!["drain", "n1"];
        ka.extend(flags.iter().copied());
        let mut ba = vec!["drain", "n2"];
        ba.extend(flags.iter().copied());
        let k = ts.kubectl(&ka);
        let b = ctl(ts.kubeconfig(), &ba, None);
        assert_eq!(
            sorted(&text(&k.stdout).replace("n1", "n2")),
            sorted(&text(&b.stdout)),
            "drain {flags:?}"
        );
        assert_eq!(
            sorted(&text(&k.stderr).replace("n1", "n2")),
            sorted(&text(&b.stderr)),
            "drain {flags:?}"
        );
        assert_eq!(k.status.success(), b.status.success(), "drain {flags:?}");
    }
    for n in ["n1", "n2"] {
        assert_eq!(
            ts.kubectl_ok(&[
                "get",
                "pods",
                &format!("--field-selector=spec.nodeName={n}"),
                "-o",
                "name"
            ]),
            "",
            "pods left on {n}"
        );
    }

    // top without metrics yet.
    same(&ts, &["top", "node", "n1"]);
    same(&ts, &["top", "pod", "bare-n1"]);
    same(&ts, &["top", "pod", "-n", "kube-system"]);
}

/// A server with one hollow node (pods become Running and Ready without containers), the
/// scheduler and every controller: what `describe`, `set image` and `rolling-update` need
/// to see pods, ReplicaSets, endpoints and events.
struct Cluster {
    ts: TestServer,
    _hollow: bosun_hollow::HollowHandle,
    _scheduler: bosun_scheduler::SchedulerHandle,
    controllers: tokio::task::JoinHandle<()>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.controllers.abort();
    }
}

async fn cluster() -> Cluster {
    let ts = TestServer::start().await.expect("server");
    let client = ts.client().await.expect("client");
    let hollow = bosun_hollow::run(
        client.clone(),
        bosun_hollow::HollowOptions {
            nodes: 1,
            // No heartbeat between the two CLIs' runs: the Lease and conditions stay put.
            heartbeat: std::time::Duration::from_secs(600),
            lease_duration_seconds: 3600,
            status_interval: std::time::Duration::from_secs(600),
            ..Default::default()
        },
    )
    .await
    .expect("hollow node");
    let scheduler = bosun_scheduler::start(
        client.clone(),
        bosun_scheduler::SchedulerOptions {
            pod_initial_backoff: std::time::Duration::from_millis(100),
            pod_max_backoff: std::time::Duration::from_millis(500),
            ..Default::default()
        },
    )
    .expect("scheduler");
    let opts = bosun_controllers::ControllerOptions::without_leader_election();
    let controllers = tokio::spawn(async move {
        if let Err(e) = bosun_controllers::run(client, opts).await {
            panic!("controllers stopped: {e}");
        }
    });
    Cluster {
        ts,
        _hollow: hollow,
        _scheduler: scheduler,
        controllers,
    }
}

/// Polls `check` (a kubectl command's output) every 200 ms until it holds, for at most `secs`.
async fn until(
    ts: &TestServer,
    secs: u64,
    what: &str,
    args: &[&str],
    check: impl Fn(&str) -> bool,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let out = text(&ts.kubectl(args).stdout);
        if check(&out) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; last `kubectl {}`:\n{out}",
            args.join(" ")
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// What may differ between two runs a moment apart, made equal: ages (`7s`, `3m2s`,
/// `10s)` in `(x3 over 10s)`) become `AGE`, and runs of blanks (column widths follow the
/// ages) become one blank. Timestamps are printed absolute (RFC 1123) and stay.
fn normalise(s: &str) -> Vec<String> {
    fn is_age(t: &str) -> bool {
        let t = t.trim_end_matches(')');
        !t.is_empty()
            && t.starts_with(|c: char| c.is_ascii_digit())
            && t.ends_with(['s', 'm', 'h', 'd', 'y'])
            && t.chars().all(|c| c.is_ascii_digit() || "smhdy".contains(c))
    }
    s.lines()
        .map(|l| {
            l.split_whitespace()
                .map(|t| if is_age(t) { "AGE" } else { t })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Both CLIs print the same, exactly, or (if ages ticked over between the runs) line for
/// line after [`normalise`]. Returns kubectl's output.
fn same_but_ages(ts: &TestServer, args: &[&str]) -> String {
    let mut last = String::new();
    for _ in 0..3 {
        let k = ts.kubectl(args);
        let b = ctl(ts.kubeconfig(), args, None);
        let (ks, bs) = (text(&k.stdout), text(&b.stdout));
        if k.status.success() == b.status.success()
            && text(&k.stderr) == text(&b.stderr)
            && (ks == bs || normalise(&ks) == normalise(&bs))
        {
            return ks;
        }
        let diff: Vec<String> = normalise(&ks)
            .iter()
            .zip(normalise(&bs).iter())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(n, (a, b))| format!("line {}:\n  kubectl:   {a}\n  bosun ctl: {b}", n + 1))
            .collect();
        last = format!(
            "kubectl ({}):\n{ks}{}\nbosun ctl ({}):\n{bs}{}\nfirst differences:\n{}",
            k.status,
            text(&k.stderr),
            b.status,
            text(&b.stderr),
            diff.join("\n")
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    panic!("`{}` differs\n{last}", args.join(" "));
}

#[test]
fn normalise_makes_ages_equal_and_nothing_else() {
    assert_eq!(
        normalise("  Normal  Scheduled  9s    sched  ok\n  Warning  Unhealthy  3m2s (x3 over 10m)  k  bad"),
        normalise("  Normal  Scheduled  10s   sched  ok\n  Warning  Unhealthy  3m9s (x3 over 11m)  k  bad")
    );
    assert_ne!(
        normalise("Replicas:  2 current"),
        normalise("Replicas:  3 current")
    );
    assert_ne!(normalise("Port:  80/TCP"), normalise("Port:  81/TCP"));
}

/// A pod with most of what the Pod describer prints: an init container, ports, a command,
/// probes of each kind, limits and requests, every kind of env, envFrom, mounts of several
/// volume kinds, tolerations, a node selector, long and multi-line annotations.
const BUSY_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: busy
  labels: {app: busy, tier: backend}
  annotations:
    short: hello
    long: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    multi: "line one\nline two\n"
spec:
  nodeSelector: {kubernetes.io/os: linux}
  tolerations:
  - {key: dedicated, operator: Equal, value: db, effect: NoSchedule}
  - {operator: Exists}
  - {key: gpu, operator: Exists, effect: NoExecute, tolerationSeconds: 60}
  initContainers:
  - name: init
    image: busybox:1.36
    command: ["sh", "-c", "echo init"]
  containers:
  - name: web
    image: busybox:1.36
    command: ["httpd", "-f"]
    args: ["-p", "8080", "multi\nline"]
    ports:
    - {name: http, containerPort: 8080}
    - {containerPort: 9090, hostPort: 19090, protocol: UDP}
    resources:
      limits: {cpu: 500m, memory: 256Mi}
      requests: {cpu: 250m, memory: 128Mi}
    livenessProbe:
      httpGet: {path: /healthz, port: 8080}
      initialDelaySeconds: 3
    readinessProbe:
      tcpSocket: {port: http}
    startupProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      failureThreshold: 30
    env:
    - {name: PLAIN, value: "x"}
    - {name: MULTI, value: "a\nb"}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: MEM
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
    - name: PASS
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: MODE
      valueFrom: {configMapKeyRef: {name: conf, key: mode, optional: true}}
    envFrom:
    - configMapRef: {name: conf}
    - prefix: S_
      secretRef: {name: creds, optional: true}
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: conf, mountPath: /etc/conf, readOnly: true}
    - {name: host, mountPath: /host, subPath: sub}
    - {name: claim, mountPath: /claim}
    - {name: info, mountPath: /info}
  - name: side
    image: busybox:1.36
  volumes:
  - name: data
    emptyDir: {sizeLimit: 1Gi}
  - name: conf
    configMap: {name: conf}
  - name: secret
    secret: {secretName: creds}
  - name: host
    hostPath: {path: /tmp, type: Directory}
  - name: claim
    persistentVolumeClaim: {claimName: myclaim}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
"#;

/// A Job, a CronJob, a DaemonSet, a StatefulSet (with claim templates), two
/// PodDisruptionBudgets and two StorageClasses: the kinds whose describers came last.
const WORKLOADS: &str = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
  labels: {app: pi}
spec:
  completionMode: Indexed
  completions: 3
  parallelism: 2
  backoffLimit: 2
  ttlSecondsAfterFinished: 100
  activeDeadlineSeconds: 600
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: pi
          image: bosun.test/busybox:latest
          command: ["sh", "-c", "sleep 3600"]
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "*/5 * * * *"
  suspend: true
  startingDeadlineSeconds: 30
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      completions: 1
      template:
        metadata:
          labels: {app: tick}
        spec:
          restartPolicy: OnFailure
          containers:
            - name: tick
              image: bosun.test/busybox:latest
              command: ["date"]
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  annotations: {team: infra}
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      nodeSelector: {kubernetes.io/os: linux}
      containers:
        - name: agent
          image: bosun.test/busybox:latest
          resources:
            requests: {cpu: 10m}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 2
  selector:
    matchLabels: {app: web}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {partition: 1}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: bosun.test/busybox:latest
          volumeMounts:
            - {name: www, mountPath: /www}
  volumeClaimTemplates:
    - metadata:
        name: www
        labels: {tier: data}
        annotations: {note: kept}
      spec:
        accessModes: [ReadWriteOnce]
        storageClassName: fast
        resources:
          requests: {storage: 1Gi}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: agent-pdb
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: agent}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web-pdb
spec:
  maxUnavailable: 50%
  selector:
    matchExpressions:
      - {key: app, operator: In, values: [web, www]}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast
  annotations: {storageclass.kubernetes.io/is-default-class: "false", owner: ops}
provisioner: example.com/fast
parameters: {type: ssd, zone: a}
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
mountOptions: [noatime, discard]
allowedTopologies:
  - matchLabelExpressions:
      - {key: topology.kubernetes.io/zone, values: [a, b]}
      - {key: kubernetes.io/hostname, values: [n1]}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: slow
provisioner: example.com/slow
"#;

#[tokio::test(flavor = "multi_thread")]
async fn describe_workloads_like_kubectl() {
    let c = cluster().await;
    let ts = &c.ts;
    ts.kubectl_stdin_ok(&["create", "-f", "-"], WORKLOADS);
    until(
        ts,
        60,
        "the job's two pods running",
        &["get", "pods", "-l", "job-name=pi"],
        |o| o.matches(" Running ").count() == 2,
    )
    .await;
    until(
        ts,
        60,
        "the daemon set's pod running",
        &["get", "ds", "agent"],
        |o| {
            o.lines().nth(1).is_some_and(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(1..6) == Some(&["1", "1", "1", "1", "1"][..])
            })
        },
    )
    .await;
    until(
        ts,
        60,
        "the stateful set's first pod",
        &["get", "pods", "-l", "app=web"],
        |o| o.contains("web-0"),
    )
    .await;
    // Let the stateful set's pod and claims settle (a claim of an unprovisioned class stays
    // Pending, and so may its pod), then compare what stays put.
    let last = std::cell::RefCell::new(String::new());
    until(
        ts,
        30,
        "the stateful set settled",
        &["get", "sts,pods,pvc", "-l", "app=web", "-o", "wide"],
        |o| {
            let settled = o == last.borrow().as_str();
            *last.borrow_mut() = o.to_string();
            settled
        },
    )
    .await;
    for args in [
        vec!["describe", "job", "pi"],
        vec!["describe", "jobs"],
        vec!["describe", "cronjob", "tick"],
        vec!["describe", "ds", "agent"],
        vec!["describe", "sts", "web"],
        vec!["describe", "pdb"],
        vec!["describe", "pdb", "web-pdb"],
        vec!["describe", "storageclass", "fast"],
        vec!["describe", "sc", "slow"],
    ] {
        same_but_ages(ts, &args);
    }
    // What the describers show is there (not only equal to kubectl).
    for (args, wants) in [
        (
            vec!["describe", "job", "pi"],
            vec![
                "Completion Mode: Indexed",
                "Pods Statuses: 2 Active",
                "Completed Indexes: <none>",
                "Active Deadline Seconds: 600s",
            ],
        ),
        (
            vec!["describe", "cronjob", "tick"],
            vec![
                "Suspend: True",
                "Starting Deadline Seconds: 30s",
                "Last Schedule Time: <unset>",
                "Active Jobs: <none>",
            ],
        ),
        (
            vec!["describe", "ds", "agent"],
            vec![
                "Node-Selector: kubernetes.io/os=linux",
                "Desired Number of Nodes Scheduled: 1",
                "Pods Status: 1 Running / 0 Waiting / 0 Succeeded / 0 Failed",
            ],
        ),
        (
            vec!["describe", "sts", "web"],
            vec![
                "Partition: 1",
                "Volume Claims:",
                "StorageClass: fast",
                "Annotations: note=kept",
                "Access Modes: [ReadWriteOnce]",
            ],
        ),
        (
            vec!["describe", "pdb", "web-pdb"],
            vec!["Max unavailable: 50%", "Selector: app in (web,www)"],
        ),
        (
            vec!["describe", "sc", "fast"],
            vec![
                "IsDefaultClass: No",
                "AllowVolumeExpansion: True",
                "Term 0: topology.kubernetes.io/zone in [a, b]",
            ],
        ),
    ] {
        let d = same_but_ages(ts, &args);
        // Column widths aside.
        let lines: Vec<String> = d
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        for want in wants {
            assert!(
                lines.iter().any(|l| l.contains(want)),
                "`{}` lacks {want:?}:\n{d}",
                args.join(" ")
            );
        }
    }
}

/// NetworkPolicies (every kind of peer, ports, port ranges, a protocol without a port,
/// isolation either way), PriorityClasses, a LimitRange of three types, ResourceQuotas
/// with scopes and usage, EndpointSlices set and empty.
const POLICIES: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-allow
  labels: {team: a}
spec:
  podSelector:
    matchLabels: {app: web}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector: {matchLabels: {role: fe}}
    - namespaceSelector: {matchLabels: {env: prod}}
      podSelector: {matchExpressions: [{key: tier, operator: In, values: [a, b]}]}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.2.0.0/16]}
    - namespaceSelector: {}
    ports:
    - {port: 80}
    - {port: http, protocol: UDP}
    - {port: 8000, endPort: 8100, protocol: TCP}
  - {}
  egress:
  - to:
    - ipBlock: {cidr: 192.168.0.0/16}
    ports:
    - {protocol: SCTP}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-egress
spec:
  podSelector: {matchLabels: {a: b}}
  policyTypes: [Egress]
  egress: []
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high
  annotations: {note: x}
value: 1000
description: "for important pods"
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: low-default
value: -5
globalDefault: true
preemptionPolicy: Never
---
apiVersion: v1
kind: LimitRange
metadata:
  name: limits
spec:
  limits:
  - type: Container
    max: {cpu: "2"}
    min: {cpu: 100m}
    defaultRequest: {cpu: 200m}
    maxLimitRequestRatio: {cpu: "4"}
  - type: Pod
    max: {memory: 1Gi}
  - type: PersistentVolumeClaim
    min: {storage: 1Gi}
---
apiVersion: v1
kind: ResourceQuota
metadata:
  name: quota
spec:
  hard:
    pods: "10"
    requests.cpu: "2"
    requests.memory: 1Gi
    count/configmaps: "5"
---
apiVersion: v1
kind: ResourceQuota
metadata:
  name: scoped
spec:
  hard: {pods: "3"}
  scopes: [NotTerminating, BestEffort]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, port: 80, protocol: TCP}
- {port: 443, protocol: TCP}
endpoints:
- addresses: [10.244.0.5]
  conditions: {ready: true, serving: true, terminating: false}
  hostname: pod-a
  nodeName: node-1
  zone: z1
  targetRef: {kind: Pod, name: web-1, namespace: default}
- addresses: [10.244.0.6, 10.244.0.7]
  conditions: {}
  hints: {forZones: [{name: z1}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: empty
addressType: IPv6
ports: []
---
apiVersion: v1
kind: Pod
metadata: {name: quota-user}
spec:
  containers:
  - name: c
    image: busybox
    resources:
      requests: {cpu: 250m, memory: 100M}
      limits: {cpu: 500m, memory: 100M}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn describe_policies_and_slices_like_kubectl() {
    let c = cluster().await;
    let ts = &c.ts;
    ts.kubectl_stdin_ok(&["create", "-f", "-"], POLICIES);
    // The quota controller has counted the pod.
    until(
        ts,
        60,
        "the quota's usage",
        &[
            "get",
            "quota",
            "quota",
            "-o",
            "jsonpath={.status.used.pods}",
        ],
        |o| o == "1",
    )
    .await;
    for args in [
        vec!["describe", "netpol"],
        vec!["describe", "networkpolicy", "web-allow"],
        vec!["describe", "pc"],
        vec!["describe", "priorityclass", "high"],
        vec!["describe", "limits", "limits"],
        vec!["describe", "quota"],
        vec!["describe", "endpointslices"],
        vec!["describe", "endpointslice", "web-abc"],
    ] {
        same_but_ages(ts, &args);
    }
    // Nothing to describe: kubectl's line on stderr.
    same(ts, &["describe", "controllerrevisions"]);
    same(ts, &["describe", "controllerrevisions", "-A"]);
    same(
        ts,
        &["describe", "pods", "-l", "none=here", "-n", "kube-system"],
    );
    // What the describers show is there (not only equal to kubectl).
    for (args, wants) in [
        (
            vec!["describe", "netpol", "web-allow"],
            vec![
                "PodSelector: app=web",
                "To Port Range: 8000-8100/TCP",
                "To Port: <nil>/SCTP",
                "NamespaceSelector: env=prod",
                "Except: 10.1.0.0/16, 10.2.0.0/16",
                "From: <any> (traffic not restricted by source)",
                "Policy Types: Ingress, Egress",
            ],
        ),
        (
            vec!["describe", "netpol", "deny-all"],
            vec![
                "<none> (Selected pods are isolated for ingress connectivity)",
                "Not affecting egress traffic",
            ],
        ),
        (
            vec!["describe", "pc", "low-default"],
            vec![
                "Value: -5",
                "GlobalDefault: true",
                "PreemptionPolicy: Never",
            ],
        ),
        (
            vec!["describe", "limits", "limits"],
            vec![
                "Container cpu 100m 2 200m 2 4",
                "PersistentVolumeClaim storage 1Gi - - - -",
            ],
        ),
        (
            vec!["describe", "quota", "quota"],
            vec!["requests.cpu 250m 2", "requests.memory 100000000 1Gi"],
        ),
        (
            vec!["describe", "quota", "scoped"],
            vec![
                "Scopes: BestEffort, NotTerminating",
                "* Matches all pods that do not have an active deadline.",
            ],
        ),
        (
            vec!["describe", "endpointslice", "web-abc"],
            vec!["<unset> 443 TCP", "TargetRef: Pod/web-1", "Ready: <unset>"],
        ),
    ] {
        let d = same_but_ages(ts, &args);
        let lines: Vec<String> = d
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        for want in wants {
            assert!(
                lines.iter().any(|l| l.contains(want)),
                "`{}` lacks {want:?}:\n{d}",
                args.join(" ")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_prints_what_kubectl_prints() {
    let c = cluster().await;
    let ts = &c.ts;
    let s = seed();
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/local");
    for f in [
        s.join("mysql-rc.yaml"),
        s.join("mysql-svc.yaml"),
        s.join("myweb-rc.yaml"),
        s.join("myweb-svc.yaml"),
        s.join("tomcat-deployment.yaml"),
        s.join("php-apache-hpa.yaml"),
        s.join("pv0003.yaml"),
        s.join("development-ns.yaml"),
        s.join("resources-pod.yaml"),
        local.join("pvc.yaml"),
        local.join("liveness-pod.yaml"),
    ] {
        ts.kubectl_ok(&["create", "-f", f.to_str().unwrap()]);
    }
    ts.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=s3cret",
    ]);
    ts.kubectl_ok(&[
        "create",
        "configmap",
        "conf",
        "--from-literal=mode=fast",
        "--from-literal=text=a\nb",
    ]);
    ts.kubectl_stdin_ok(&["create", "-f", "-"], BUSY_POD);
    until(
        ts,
        60,
        "5 running myweb pods",
        &["get", "pods", "-l", "app=myweb"],
        |o| o.matches(" Running ").count() == 5,
    )
    .await;
    until(ts, 60, "busy running", &["get", "pod", "busy"], |o| {
        o.contains("Running")
    })
    .await;
    until(
        ts,
        60,
        "frontend available",
        &["get", "deploy", "frontend"],
        |o| o.contains(" 1/1 "),
    )
    .await;
    // An event repeated three times about a container (count, fieldPath), as kubelets
    // record probe failures.
    let uid = ts.kubectl_ok(&["get", "pod", "liveness", "-o", "jsonpath={.metadata.uid}"]);
    let now = chrono::Utc::now();
    let ev = format!(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: liveness.probe\ninvolvedObject:\n  kind: Pod\n  name: liveness\n  namespace: default\n  uid: {uid}\n  fieldPath: spec.containers{{liveness}}\nreason: Unhealthy\nmessage: 'Liveness probe failed: cat: can''t open ''/tmp/healthy''  '\ntype: Warning\ncount: 3\nfirstTimestamp: {}\nlastTimestamp: {}\nsource:\n  component: kubelet\n  host: hollow-node-0\n",
        (now - chrono::Duration::seconds(200)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        (now - chrono::Duration::seconds(20)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    ts.kubectl_stdin_ok(&["create", "-f", "-"], &ev);
    let rs = ts.kubectl_ok(&["get", "rs", "-o", "name"]);
    let rs = rs.lines().next().expect("frontend's ReplicaSet");
    let myweb = ts.kubectl_ok(&["get", "pods", "-l", "app=myweb", "-o", "name"]);
    let myweb = myweb.lines().next().expect("a myweb pod");
    for args in [
        vec!["describe", "pod", "busy"],
        vec!["describe", "pod", "liveness"],
        vec!["describe", "pod", "db"],
        vec!["describe", myweb],
        vec!["describe", "pods"],
        vec!["describe", "pods", "-l", "app=mysql"],
        vec!["describe", "pods", "myweb"],
        vec!["describe", "rc"],
        vec!["describe", "rc", "mysql"],
        vec!["describe", rs],
        vec!["describe", "deploy", "frontend"],
        vec!["describe", "svc"],
        vec!["describe", "svc", "myweb"],
        vec!["describe", "svc", "kubernetes"],
        vec!["describe", "nodes"],
        vec!["describe", "ns", "development"],
        vec!["describe", "ns", "default"],
        vec!["describe", "pv", "pv0003"],
        vec!["describe", "pvc", "myclaim"],
        vec!["describe", "hpa", "php-apache"],
        vec!["describe", "endpoints", "mysql"],
        vec!["describe", "configmap", "conf"],
        vec!["describe", "secret", "creds"],
        vec!["describe", "sa", "default"],
        vec!["describe", "pod", "nosuch"],
        vec!["describe", "svc/mysql", "rc/mysql"],
    ] {
        same_but_ages(ts, &args);
    }
    // What the describers show is there (not only equal to kubectl).
    let d = same_but_ages(ts, &["describe", "pod", "busy"]);
    for want in [
        "Init Containers:",
        "    Liveness:   http-get http://:8080/healthz delay=3s timeout=1s period=10s #success=1 #failure=3",
        "      /data from data (rw)",
        "QoS Class:       Burstable",
        "                 gpu:NoExecute op=Exists for 60s",
    ] {
        assert!(d.contains(want), "describe pod busy lacks {want:?}:\n{d}");
    }
    let d = same_but_ages(ts, &["describe", "pod", "liveness"]);
    assert!(
        d.contains("(x3 over ") && d.contains("kubelet            Liveness probe failed"),
        "{d}"
    );
    let d = same_but_ages(ts, &["describe", "deploy", "frontend"]);
    assert!(d.contains("NewReplicaSet:   frontend-"), "{d}");
    let d = same_but_ages(ts, &["describe", "node"]);
    assert!(
        d.contains("Non-terminated Pods:") && d.contains("busy"),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn get_label_columns_like_kubectl() {
    let ts = TestServer::start().await.expect("server");
    let s = seed();
    for f in [
        "mysql-rc.yaml",
        "myweb-rc.yaml",
        "mysql-svc.yaml",
        "tomcat-deployment.yaml",
    ] {
        ok(&ts, &["create", "-f", s.join(f).to_str().unwrap()]);
    }
    ts.kubectl_ok(&[
        "label",
        "rc",
        "mysql",
        "app.kubernetes.io/name=db",
        "tier=backend",
    ]);
    for args in [
        vec!["get", "rc", "-L", "app"],
        vec![
            "get",
            "rc",
            "-L",
            "app,tier",
            "-L",
            "app.kubernetes.io/name",
        ],
        vec!["get", "rc", "-L", "tier", "--show-labels"],
        vec!["get", "rc", "-L", "app", "-o", "wide"],
        vec!["get", "rc", "mysql", "-L", "nosuch", "--no-headers"],
        vec!["get", "rc,svc,deploy", "-L", "app"],
        vec!["get", "rc", "-A", "--label-columns=app"],
    ] {
        same(&ts, &args);
    }
    let t = same(&ts, &["get", "rc", "-L", "app,app.kubernetes.io/name"]);
    assert_eq!(
        bosun_testkit::table_header(&t),
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "APP", "NAME"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn set_image_like_kubectl() {
    let ts = TestServer::start().await.expect("server");
    let s = seed();
    // Two copies of each object: kubectl changes one, bosun ctl the other; the results and
    // what each printed must agree.
    let deploy = std::fs::read_to_string(s.join("tomcat-deployment.yaml")).unwrap();
    let rc = std::fs::read_to_string(s.join("myweb-rc.yaml")).unwrap();
    let pod = std::fs::read_to_string(s.join("myweb-pod.yaml")).unwrap();
    let cronjob = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: NAME\nspec:\n  schedule: '*/5 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          initContainers:\n          - {name: init, image: busybox:1}\n          containers:\n          - {name: job, image: busybox:1}\n          - {name: side, image: busybox:1}\n";
    for name in ["kfront", "bfront"] {
        ts.kubectl_stdin_ok(
            &["create", "-f", "-"],
            &deploy.replacen("name: frontend", &format!("name: {name}"), 1),
        );
    }
    for name in ["kweb", "bweb"] {
        ts.kubectl_stdin_ok(
            &["create", "-f", "-"],
            &rc.replacen("name: myweb\n", &format!("name: {name}\n"), 1),
        );
    }
    for name in ["kpod", "bpod"] {
        ts.kubectl_stdin_ok(
            &["create", "-f", "-"],
            &pod.replacen("name: myweb", &format!("name: {name}"), 1),
        );
    }
    for name in ["kcron", "bcron"] {
        ts.kubectl_stdin_ok(&["create", "-f", "-"], &cronjob.replace("NAME", name));
    }
    let spec = |kind: &str, name: &str| -> serde_json::Value {
        serde_json::from_str(&ts.kubectl_ok(&["get", kind, name, "-o", "jsonpath={.spec}"]))
            .unwrap()
    };
    let container = |kind: &str, name: &str| -> String {
        let s = spec(kind, name);
        let s = if kind == "pod" {
            s
        } else {
            s["template"]["spec"].clone()
        };
        s["containers"][0]["name"].as_str().unwrap().to_string()
    };
    let (dc, rcc, pc) = (
        container("deploy", "kfront"),
        container("rc", "kweb"),
        container("pod", "kpod"),
    );
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec!["deployment/kfront".into(), format!("{dc}=nginx:1.25")],
            vec!["deployment/bfront".into(), format!("{dc}=nginx:1.25")],
        ),
        // Unchanged: nothing sent, nothing printed.
        (
            vec!["deployment/kfront".into(), format!("{dc}=nginx:1.25")],
            vec!["deployment/bfront".into(), format!("{dc}=nginx:1.25")],
        ),
        (
            vec!["deploy".into(), "kfront".into(), "nosuch=x:1".into()],
            vec!["deploy".into(), "bfront".into(), "nosuch=x:1".into()],
        ),
        (
            vec!["rc/kweb".into(), "*=busybox:2".into()],
            vec!["rc/bweb".into(), "*=busybox:2".into()],
        ),
        (
            vec!["pod".into(), "kpod".into(), format!("{pc}=busybox:3")],
            vec!["pod".into(), "bpod".into(), format!("{pc}=busybox:3")],
        ),
        (
            vec![
                "cronjob/kcron".into(),
                "job=busybox:4".into(),
                "init=busybox:5".into(),
            ],
            vec![
                "cronjob/bcron".into(),
                "job=busybox:4".into(),
                "init=busybox:5".into(),
            ],
        ),
        (
            vec![
                "rc/kweb".into(),
                format!("{rcc}=busybox:6"),
                "-o".into(),
                "name".into(),
            ],
            vec![
                "rc/bweb".into(),
                format!("{rcc}=busybox:6"),
                "-o".into(),
                "name".into(),
            ],
        ),
    ];
    for (k, b) in &cases {
        let mut ka = vec!["set", "image"];
        ka.extend(k.iter().map(String::as_str));
        let mut ba = vec!["set", "image"];
        ba.extend(b.iter().map(String::as_str));
        let ko = ts.kubectl(&ka);
        let bo = ctl(ts.kubeconfig(), &ba, None);
        let swap = |s: String| {
            s.replace("kfront", "bfront")
                .replace("kweb", "bweb")
                .replace("kpod", "bpod")
                .replace("kcron", "bcron")
        };
        assert_eq!(swap(text(&ko.stdout)), text(&bo.stdout), "set image {b:?}");
        assert_eq!(swap(text(&ko.stderr)), text(&bo.stderr), "set image {b:?}");
        assert_eq!(ko.status.success(), bo.status.success(), "set image {b:?}");
    }
    for (kind, k, b) in [
        ("deploy", "kfront", "bfront"),
        ("rc", "kweb", "bweb"),
        ("pod", "kpod", "bpod"),
        ("cronjob", "kcron", "bcron"),
    ] {
        assert_eq!(spec(kind, k), spec(kind, b), "{kind} {k} vs {b}");
    }
    assert_eq!(
        ts.kubectl_ok(&[
            "get",
            "deploy",
            "bfront",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "nginx:1.25"
    );
    // By label, --all and file: each CLI sets another image, so that each has a change to
    // make and report.
    let f = s.join("myweb-rc.yaml");
    ts.kubectl_stdin_ok(&["create", "-f", "-"], &rc);
    let f = f.to_str().unwrap();
    for (k, b) in [
        (
            vec!["set", "image", "rc", "-l", "app=myweb", "*=busybox:7"],
            vec!["set", "image", "rc", "-l", "app=myweb", "*=busybox:8"],
        ),
        (
            vec!["set", "image", "rc", "--all", "*=busybox:9"],
            vec!["set", "image", "rc", "--all", "*=busybox:10"],
        ),
        (
            vec!["set", "image", "-f", f, "*=busybox:11"],
            vec!["set", "image", "-f", f, "*=busybox:12"],
        ),
    ] {
        let (ko, bo) = (ts.kubectl(&k), ctl(ts.kubeconfig(), &b, None));
        assert_eq!(text(&ko.stdout), text(&bo.stdout), "{b:?}");
        assert_eq!(text(&ko.stderr), text(&bo.stderr), "{b:?}");
        assert!(text(&bo.stdout).contains("replicationcontroller/myweb image updated"));
    }
    same(&ts, &["set", "image", "deploy/nosuch", "a=b"]);
    same(&ts, &["set", "image", "deploy/kfront"]);
    same(&ts, &["set", "image", "svc/kubernetes", "a=b"]);
    same(&ts, &["set", "image", "rc", "kweb", "*=a", "b=c"]);
}

/// `rolling-update -f`: the seed's RC update, one old pod replaced by one new pod at a time
/// (never fewer ready pods than wanted, never more than one extra), the old controller
/// deleted at the end and the new one keeping the file's name.
#[tokio::test(flavor = "multi_thread")]
async fn rolling_update_from_a_file_replaces_one_pod_at_a_time() {
    let c = cluster().await;
    let ts = &c.ts;
    let rc = |name: &str, version: &str, image: &str| {
        format!(
            "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: {name}\nspec:\n  replicas: 3\n  selector:\n    app: web\n    version: {version}\n  template:\n    metadata:\n      labels:\n        app: web\n        version: {version}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
        )
    };
    ts.kubectl_stdin_ok(&["create", "-f", "-"], &rc("web", "v1", "busybox:1"));
    let ready = &["get", "pods", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.metadata.labels.version} {.metadata.deletionTimestamp} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"];
    until(ts, 60, "3 ready v1 pods", ready, |o| {
        o.matches("v1  True").count() == 3
    })
    .await;

    // Sample the pods while the update runs: (ready, not being deleted) and all not being
    // deleted, per version.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(usize, usize, usize)>::new()));
    let sampler = {
        let (stop, samples) = (stop.clone(), samples.clone());
        let kubeconfig = ts.kubeconfig().to_path_buf();
        let args: Vec<String> = ready.iter().map(|s| s.to_string()).collect();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let o = Command::new(bosun_testkit::kubectl_path())
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .args(&args)
                    .output()
                    .expect("kubectl");
                let out = text(&o.stdout);
                let live: Vec<&str> = out.lines().filter(|l| l.contains("  ")).collect();
                let ready = live.iter().filter(|l| l.ends_with("True")).count();
                let v2 = live.iter().filter(|l| l.starts_with("v2")).count();
                samples.lock().unwrap().push((ready, live.len(), v2));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web-v2.yaml");
    std::fs::write(&file, rc("web-v2", "v2", "busybox:2")).unwrap();
    let out = ctl(
        ts.kubeconfig(),
        &[
            "rolling-update",
            "web",
            "-f",
            file.to_str().unwrap(),
            "--update-period=1s",
            "--poll-interval=200ms",
            "--timeout=60s",
        ],
        None,
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    sampler.join().unwrap();
    assert!(
        out.status.success(),
        "rolling-update failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // One new pod up, then one old pod down, three times.
    assert_eq!(
        text(&out.stdout),
        "Created web-v2\n\
         Scaling up web-v2 from 0 to 3, scaling down web from 3 to 0 (keep 3 pods available, don't exceed 4 pods)\n\
         Scaling web-v2 up to 1\n\
         Scaling web down to 2\n\
         Scaling web-v2 up to 2\n\
         Scaling web down to 1\n\
         Scaling web-v2 up to 3\n\
         Scaling web down to 0\n\
         Update succeeded. Deleting old controller: web\n\
         replicationcontroller/web rolling updated to \"web-v2\"\n"
    );
    let samples = samples.lock().unwrap().clone();
    assert!(samples.len() >= 5, "too few samples: {samples:?}");
    for (ready, live, _) in &samples {
        assert!(
            *ready >= 3,
            "fewer than 3 ready pods during the update: {samples:?}"
        );
        assert!(
            *live <= 4,
            "more than 4 pods during the update: {samples:?}"
        );
    }
    // The new pods came one at a time: the count of v2 pods never jumped by more than one.
    for w in samples.windows(2) {
        assert!(w[1].2 <= w[0].2 + 1, "v2 pods jumped: {samples:?}");
    }
    // The old controller is gone; the new one, under the file's name, has 3 ready v2 pods.
    let e = ts.kubectl(&["get", "rc", "web"]);
    assert!(text(&e.stderr).contains("NotFound"), "{}", text(&e.stderr));
    assert_eq!(
        ts.kubectl_ok(&["get", "rc", "web-v2", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    until(ts, 60, "only the 3 v2 pods left", ready, |o| {
        o.lines().count() == 3 && o.matches("v2  True").count() == 3
    })
    .await;
    // Same name twice, or a selector the old controller would share: refused up front.
    let same_name = dir.path().join("web-v2b.yaml");
    std::fs::write(&same_name, rc("web-v2", "v2", "busybox:3")).unwrap();
    let e = ctl(
        ts.kubeconfig(),
        &[
            "rolling-update",
            "web-v2",
            "-f",
            same_name.to_str().unwrap(),
        ],
        None,
    );
    assert!(!e.status.success());
    assert!(
        text(&e.stderr)
            .contains("cannot have the same name as the existing ReplicationController web-v2"),
        "{}",
        text(&e.stderr)
    );
}

/// A Deployment whose two pods wait for a node labelled `pulls=done`: they stay Pending
/// (and the rollout unfinished) until the test labels the hollow node.
const PULLS_DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pulls
spec:
  replicas: 2
  selector:
    matchLabels: {app: pulls}
  template:
    metadata:
      labels: {app: pulls}
    spec:
      nodeSelector: {pulls: done}
      containers:
        - name: app
          image: registry.test/app:1
---
apiVersion: v1
kind: Pod
metadata:
  name: bystander
  labels: {app: other}
spec:
  nodeSelector: {pulls: done}
  containers:
    - name: app
      image: registry.test/app:1
"#;

/// A core/v1 Event about a pod's container, as the kubelet records it.
fn pod_event(name: &str, pod: &str, uid: &str, ty: &str, reason: &str, message: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {
            "apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": "default", "uid": uid,
            "fieldPath": "spec.containers{app}",
        },
        "reason": reason,
        "message": message,
        "type": ty,
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": {"component": "kubelet", "host": "hollow-node-0"},
    })
    .to_string()
}

/// Lines a child process prints, as they come.
struct LiveLines {
    rx: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl LiveLines {
    /// Waits until `check` holds for the lines so far, for at most `secs`.
    async fn until(&mut self, secs: u64, what: &str, check: impl Fn(&[String]) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            while let Ok(l) = self.rx.try_recv() {
                self.seen.push(l);
            }
            if check(&self.seen) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; output so far:\n{}",
                self.seen.join("\n")
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_status_shows_image_pulls_from_events() {
    let c = cluster().await;
    let ts = &c.ts;
    ts.kubectl_stdin_ok(&["create", "-f", "-"], PULLS_DEPLOY);
    until(
        ts,
        60,
        "two pending pulls pods",
        &["get", "pods", "-l", "app=pulls"],
        |o| o.matches(" Pending ").count() == 2,
    )
    .await;
    let pods = ts.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=pulls",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.uid}{\"\\n\"}{end}",
    ]);
    let pods: Vec<(String, String)> = pods
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, u)| (n.to_string(), u.to_string()))
        .collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let (a, b) = (&pods[0], &pods[1]);
    let bystander = ts.kubectl_ok(&["get", "pod", "bystander", "-o", "jsonpath={.metadata.uid}"]);

    // `bosun ctl rollout status` with its stdout a pipe (not a terminal): one line per
    // state change.
    let mut child = Command::new(env!("CARGO_BIN_EXE_bosun-ctl"))
        .arg("--kubeconfig")
        .arg(ts.kubeconfig())
        .args(["rollout", "status", "deploy/pulls", "--timeout=120s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bosun-ctl");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = LiveLines {
        rx,
        seen: Vec::new(),
    };
    // The first status line is printed once the events are being followed.
    out.until(30, "the first status line", |l| {
        l.iter()
            .any(|l| l.starts_with("Waiting for deployment \"pulls\" rollout to finish"))
    })
    .await;

    let image = "registry.test/app:1";
    let pulling = format!("Pulling image \"{image}\"");
    let pulled = format!("Successfully pulled image \"{image}\" in 1.204s (1.204s including waiting). Image size: 4178432 bytes.");
    let failed = format!("Failed to pull image \"{image}\": manifest unknown");
    let backoff = format!("Back-off pulling image \"{image}\"");
    let present = format!("Container image \"{image}\" already present on machine");
    for (n, (pod, uid), ty, reason, msg) in [
        (1, a, "Normal", "Pulling", pulling.as_str()),
        (2, b, "Normal", "Pulling", pulling.as_str()),
        (3, a, "Normal", "Pulled", pulled.as_str()),
        // Not a pull: an image already on the node.
        (4, a, "Normal", "Pulled", present.as_str()),
        (5, b, "Warning", "Failed", failed.as_str()),
        // Repeats the failure: not shown again.
        (6, b, "Warning", "Failed", "Error: ErrImagePull"),
        (7, b, "Normal", "BackOff", backoff.as_str()),
        (8, b, "Normal", "Pulling", pulling.as_str()),
        (9, b, "Normal", "Pulled", pulled.as_str()),
    ] {
        let ev = pod_event(&format!("{pod}.{n}"), pod, uid, ty, reason, msg);
        ts.kubectl_stdin_ok(&["create", "-f", "-"], &ev);
    }
    // A pod the rollout does not wait on.
    let ev = pod_event(
        "bystander.1",
        "bystander",
        &bystander,
        "Normal",
        "Pulling",
        &pulling,
    );
    ts.kubectl_stdin_ok(&["create", "-f", "-"], &ev);
    let want = vec![
        format!("pod/{}: pulling image \"{image}\"...", a.0),
        format!("pod/{}: pulling image \"{image}\"...", b.0),
        format!("pod/{}: {pulled}", a.0),
        format!("pod/{}: ErrImagePull: {failed}", b.0),
        format!("pod/{}: ImagePullBackOff: {backoff}", b.0),
        format!("pod/{}: pulling image \"{image}\"...", b.0),
        format!("pod/{}: {pulled}", b.0),
    ];
    let pull_lines = |l: &[String]| -> Vec<String> {
        l.iter()
            .filter(|l| l.starts_with("pod/"))
            .cloned()
            .collect()
    };
    out.until(30, "the pull lines", |l| pull_lines(l).len() >= want.len())
        .await;

    // The pods may run now: the rollout finishes.
    ts.kubectl_ok(&["label", "node", "hollow-node-0", "pulls=done"]);
    out.until(60, "the rollout's end", |l| {
        l.last()
            .is_some_and(|l| l == "deployment \"pulls\" successfully rolled out")
    })
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("bosun ctl rollout status did not exit");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The reader thread has the rest.
    out.until(5, "end of output", |l| !l.is_empty()).await;
    assert!(status.success(), "{status}\n{}", out.seen.join("\n"));
    assert_eq!(pull_lines(&out.seen), want, "\n{}", out.seen.join("\n"));
    // kubectl's own lines come before and after the pull lines, unchanged.
    assert!(
        out.seen[0].starts_with("Waiting for deployment \"pulls\" rollout to finish: "),
        "{}",
        out.seen.join("\n")
    );
    // No pull now: the same as kubectl.
    same(ts, &["rollout", "status", "deploy/pulls"]);
}

/// What a terminal shows after `bytes`: `\r` returns to the line's start, `\n` goes down,
/// `ESC[K` erases to the end of the line, `ESC[1A` goes up one line (all `Progress` uses).
fn screen(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                if lines.len() <= row {
                    lines.push(Vec::new());
                }
            }
            '\x1b' => {
                let mut seq = String::new();
                if chars.peek() == Some(&'[') {
                    chars.next();
                    while let Some(&d) = chars.peek() {
                        chars.next();
                        seq.push(d);
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                match seq.as_str() {
                    "K" => lines[row].truncate(col),
                    "1A" => row = row.saturating_sub(1),
                    other => panic!("unexpected escape sequence ESC[{other}"),
                }
            }
            c => {
                let line = &mut lines[row];
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.resize(col, ' ');
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    let mut out: Vec<String> = lines.into_iter().map(|l| l.into_iter().collect()).collect();
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

#[test]
fn screen_follows_the_escapes_progress_uses() {
    let s =
        screen(b"a\r\nlive 0s\r\x1b[Klive 1s\r\x1b[Kdone\r\nx\ny1\ny2\r\x1b[K\x1b[1A\r\x1b[Kz\n");
    assert_eq!(s, vec!["a", "done", "x", "z"]);
}

/// On a terminal, `rollout status` shows a pull in progress as one live line whose seconds
/// tick (redrawn with `\r ESC[K`), replaced by the pull's outcome; kubectl's own lines
/// stay as kubectl prints them, the last one included.
#[tokio::test(flavor = "multi_thread")]
async fn rollout_status_live_line_on_a_terminal() {
    use std::io::Read;
    let c = cluster().await;
    let ts = &c.ts;
    ts.kubectl_stdin_ok(&["create", "-f", "-"], PULLS_DEPLOY);
    until(
        ts,
        60,
        "two pending pulls pods",
        &["get", "pods", "-l", "app=pulls"],
        |o| o.matches(" Pending ").count() == 2,
    )
    .await;
    let pod = ts.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=pulls",
        "-o",
        "jsonpath={.items[0].metadata.name} {.items[0].metadata.uid}",
    ]);
    let (name, uid) = pod.split_once(' ').expect("name and uid");

    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bosun-ctl"))
        .arg("--kubeconfig")
        .arg(ts.kubeconfig())
        .args(["rollout", "status", "deploy/pulls", "--timeout=120s"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave))
        .stderr(Stdio::piped())
        .spawn()
        .expect("bosun-ctl");
    // The child holds the terminal's other end now: reading ends (EIO) when it exits.
    let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = bytes.clone();
    let mut master = std::fs::File::from(pty.master);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut b) = sink.lock() {
                b.extend_from_slice(&buf[..n]);
            }
        }
    });
    let raw = || String::from_utf8_lossy(&bytes.lock().expect("lock")).into_owned();
    let wait_raw = |secs: u64, what: &'static str, check: Box<dyn Fn(&str) -> bool>| {
        let raw = &raw;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
            loop {
                let r = raw();
                if check(&r) {
                    return r;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "timed out waiting for {what}; the terminal got:\n{r:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    wait_raw(
        30,
        "the first status line",
        Box::new(|r| r.contains("Waiting for deployment \"pulls\" rollout to finish")),
    )
    .await;

    let image = "registry.test/app:1";
    let ev = pod_event(
        &format!("{name}.1"),
        name,
        uid,
        "Normal",
        "Pulling",
        &format!("Pulling image \"{image}\""),
    );
    ts.kubectl_stdin_ok(&["create", "-f", "-"], &ev);
    let live = format!("pod/{name}: pulling image \"{image}\"...");
    // The live line, redrawn in place until its counter reached 2 s.
    let ticked = format!("\r\x1b[K{live} 2s");
    let r = wait_raw(
        30,
        "the live line ticking to 2s",
        Box::new(move |r| r.contains(&ticked)),
    )
    .await;
    assert!(
        r.contains(&format!("{live} 0s")) && r.contains(&format!("\r\x1b[K{live} 1s")),
        "{r:?}"
    );
    // A terminal shows it as one line, below kubectl's.
    let shown = screen(r.as_bytes());
    assert_eq!(
        shown.last(),
        Some(&format!("{live} 2s")),
        "{shown:#?}\n{r:?}"
    );
    assert_eq!(
        shown.iter().filter(|l| l.starts_with("pod/")).count(),
        1,
        "{shown:#?}"
    );

    let pulled = format!("Successfully pulled image \"{image}\" in 2.5s (2.5s including waiting). Image size: 4178432 bytes.");
    let ev = pod_event(&format!("{name}.2"), name, uid, "Normal", "Pulled", &pulled);
    ts.kubectl_stdin_ok(&["create", "-f", "-"], &ev);
    let done = format!("pod/{name}: {pulled}");
    let d = done.clone();
    wait_raw(30, "the pull's outcome", Box::new(move |r| r.contains(&d))).await;
    ts.kubectl_ok(&["label", "node", "hollow-node-0", "pulls=done"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "bosun ctl rollout status did not exit; the terminal got:\n{:?}",
                raw()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let r = wait_raw(
        5,
        "kubectl's last line",
        Box::new(|r| r.contains("successfully rolled out")),
    )
    .await;
    assert!(status.success(), "{status}\n{r:?}");
    // What the terminal shows in the end: kubectl's lines, the pull's outcome in place of
    // its live line, no live line left, kubectl's last line last.
    let shown = screen(r.as_bytes());
    assert!(
        shown[0].starts_with("Waiting for deployment \"pulls\" rollout to finish: "),
        "{shown:#?}"
    );
    assert_eq!(
        shown.iter().filter(|l| **l == done).count(),
        1,
        "{shown:#?}"
    );
    assert!(
        !shown.iter().any(|l| l.contains("pulling image")),
        "{shown:#?}"
    );
    assert_eq!(
        shown.last().map(String::as_str),
        Some("deployment \"pulls\" successfully rolled out"),
        "{shown:#?}"
    );
    assert!(
        shown.iter().all(|l| l.starts_with("Waiting for deployment")
            || l.starts_with("pod/")
            || l.starts_with("deployment ")),
        "{shown:#?}"
    );
}
