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
