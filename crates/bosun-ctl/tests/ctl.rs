//! `bosun ctl` against an in-process bosun server, compared with the real kubectl (v1.34) on
//! the same objects: the seed's manifests, then every verb.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bosun_testkit::TestServer;

fn ctl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bosun-ctl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting bosun-ctl");
    let mut si = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        si.write_all(s.as_bytes()).expect("stdin");
    }
    drop(si);
    child.wait_with_output().expect("bosun-ctl")
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

    // describe: the object and its events section.
    let d = ok(&ts, &["describe", "svc", "myweb"]);
    assert!(
        d.starts_with("Name:         myweb\nNamespace:    default\n"),
        "{d}"
    );
    assert!(
        d.contains("Node Port:  30001") && d.contains("Events:"),
        "{d}"
    );

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
    Command::new(env!("CARGO_BIN_EXE_bosun-ctl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("bosun-ctl")
}

fn kubectl_env(ts: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bosun_testkit::kubectl_path())
        .arg("--kubeconfig")
        .arg(ts.kubeconfig())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("kubectl")
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
