//! The seed's walkthrough against the API server with the real kubectl v1.34: its own
//! manifests (examples/seed) created verbatim, read back with the seed's columns, and
//! changed with every verb the walkthrough and everyday use need.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bosun_testkit::{table_header, table_row, TestServer};

fn seed(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/seed")
        .join(name);
    p.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_manifests_create_and_read_back_with_the_seed_columns() {
    let s = TestServer::start().await.expect("server starts");
    let files = [
        "development-ns.yaml",
        "mysql-rc.yaml",
        "mysql-svc.yaml",
        "myweb-rc.yaml",
        "myweb-svc.yaml",
        "tomcat-deployment.yaml",
        "tomcat-service.yaml",
        "php-apache-hpa.yaml",
        "pv0003.yaml",
        "busybox-pod.yaml",
        "myweb-pod.yaml",
        "resources-pod.yaml",
    ];
    for f in files {
        let out = s.kubectl_ok(&["create", "-f", &seed(f)]);
        assert!(out.contains("created"), "{f}: {out}");
    }

    let rc = s.kubectl_ok(&["get", "rc"]);
    assert_eq!(
        table_header(&rc),
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    );
    assert_eq!(&table_row(&rc, "myweb")[..2], ["myweb", "5"]);

    let svc = s.kubectl_ok(&["get", "svc"]);
    assert_eq!(
        table_header(&svc),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let myweb = table_row(&svc, "myweb");
    assert_eq!(myweb[1], "NodePort");
    assert_eq!(myweb[4], "8080:30001/TCP");
    assert!(
        myweb[2].starts_with("10."),
        "cluster IP from 10.96.0.0/12: {svc}"
    );
    assert_eq!(table_row(&svc, "kubernetes")[2], "10.96.0.1");
    assert_eq!(table_row(&svc, "mysql")[4], "3306/TCP");

    let pods = s.kubectl_ok(&["get", "pods"]);
    assert_eq!(
        table_header(&pods),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert_eq!(
        &table_row(&pods, "myweb")[..4],
        ["myweb", "0/1", "Pending", "0"]
    );
    let wide = s.kubectl_ok(&["get", "pods", "-o", "wide"]);
    assert!(
        table_header(&wide).contains(&"IP") && table_header(&wide).contains(&"NODE"),
        "{wide}"
    );

    let deploy = s.kubectl_ok(&["get", "deployments"]);
    assert_eq!(
        table_header(&deploy),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(&table_row(&deploy, "frontend")[..2], ["frontend", "0/1"]);
    // The extensions/v1beta1 manifest is stored as apps/v1 with its selector kept.
    let sel = s.kubectl_ok(&[
        "get",
        "deployment.apps",
        "frontend",
        "-o",
        "jsonpath={.spec.selector.matchExpressions[0].operator} {.spec.selector.matchLabels.tier}",
    ]);
    assert_eq!(sel, "In frontend");
    let legacy = s.kubectl_ok(&[
        "get",
        "deployments.v1beta1.extensions",
        "frontend",
        "-o",
        "jsonpath={.apiVersion}",
    ]);
    assert_eq!(legacy, "extensions/v1beta1");

    let rs = s.kubectl_ok(&["get", "rs"]);
    assert!(
        rs.trim().is_empty() || table_header(&rs) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        "{rs}"
    );

    let hpa = s.kubectl_ok(&["get", "hpa"]);
    assert_eq!(
        table_header(&hpa),
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ]
    );
    assert!(
        hpa.contains("Deployment/php-apache") && hpa.contains("/90%"),
        "{hpa}"
    );

    let pv = s.kubectl_ok(&["get", "pv"]);
    assert_eq!(
        &table_row(&pv, "pv0003")[..5],
        ["pv0003", "5Gi", "RWO", "Retain", "Pending"]
    );

    let ns = s.kubectl_ok(&["get", "namespaces"]);
    for n in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "development",
    ] {
        assert_eq!(table_row(&ns, n).get(1).copied(), Some("Active"), "{ns}");
    }
    let dev = s.kubectl_ok(&["get", "pods", "--namespace=development"]);
    assert_eq!(table_row(&dev, "busybox")[0], "busybox");

    // Requests and limits are canonical and make the pod Burstable.
    let qos = s.kubectl_ok(&["get", "pod", "db", "-o", "jsonpath={.status.qosClass} {.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.limits.memory}"]);
    assert_eq!(qos, "Burstable 250m 128Mi");

    // Output formats.
    let y = s.kubectl_ok(&["get", "svc", "myweb", "-o", "yaml"]);
    let v: serde_yaml::Value = serde_yaml::from_str(&y).expect("yaml");
    assert_eq!(
        v["spec"]["ports"][0]["targetPort"],
        serde_yaml::Value::from(8080)
    );
    assert_eq!(v["spec"]["sessionAffinity"].as_str(), Some("None"));
    let j = s.kubectl_ok(&["get", "rc", "mysql", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&j).expect("json");
    assert_eq!(v["spec"]["selector"]["app"], "mysql");
    assert!(v["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    let names = s.kubectl_ok(&["get", "rc,svc", "-o", "name"]);
    assert!(
        names.contains("replicationcontroller/myweb") && names.contains("service/mysql"),
        "{names}"
    );

    // describe reads the objects the way the seed shows them.
    let d = s.kubectl_ok(&["describe", "svc", "myweb"]);
    assert!(
        d.contains("NodePort:")
            && d.contains("30001/TCP")
            && d.contains("Selector:")
            && d.contains("app=myweb"),
        "{d}"
    );
    let d = s.kubectl_ok(&["describe", "rc", "myweb"]);
    assert!(d.contains("Replicas:") && d.contains("5 desired"), "{d}");
    let d = s.kubectl_ok(&["describe", "pod", "db"]);
    assert!(d.contains("QoS Class:") && d.contains("Burstable"), "{d}");

    // Label selectors as the seed uses them.
    s.kubectl_ok(&["label", "pod", "myweb", "release=stable", "tier=frontend"]);
    let sel = s.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "release=stable,tier in (frontend,backend)",
        "-o",
        "name",
    ]);
    assert_eq!(sel.trim(), "pod/myweb");
    let none = s.kubectl_ok(&["get", "pods", "-l", "release!=stable", "-o", "name"]);
    assert!(!none.contains("myweb"), "{none}");
    let by_field = s.kubectl_ok(&[
        "get",
        "pods",
        "--field-selector",
        "metadata.name=db",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "pod/db");
    let all = s.kubectl_ok(&["get", "all"]);
    assert!(
        all.contains("replicationcontroller/myweb")
            && all.contains("service/myweb")
            && all.contains("deployment.apps/frontend"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_changes_objects_with_every_verb() {
    let s = TestServer::start().await.expect("server starts");
    s.kubectl_ok(&["create", "-f", &seed("myweb-rc.yaml")]);
    s.kubectl_ok(&["apply", "-f", &seed("tomcat-deployment.yaml")]);
    let gen = |s: &TestServer| {
        s.kubectl_ok(&[
            "get",
            "deploy",
            "frontend",
            "-o",
            "jsonpath={.metadata.generation} {.spec.template.spec.containers[0].image}",
        ])
    };
    assert_eq!(gen(&s), "1 tomcat");

    // apply twice: the second with a change becomes a strategic merge patch.
    let changed = std::fs::read_to_string(seed("tomcat-deployment.yaml"))
        .expect("read")
        .replace("image: tomcat", "image: tomcat:10");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &changed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(gen(&s), "2 tomcat:10");
    let unchanged = s.kubectl_stdin(&["apply", "-f", "-"], &changed);
    assert!(String::from_utf8_lossy(&unchanged.stdout).contains("unchanged"));
    assert_eq!(gen(&s), "2 tomcat:10");

    s.kubectl_ok(&[
        "set",
        "image",
        "deployment/frontend",
        "tomcat-demo=tomcat:11",
    ]);
    assert_eq!(gen(&s), "3 tomcat:11");

    // Three patch types.
    s.kubectl_ok(&["patch", "deploy", "frontend", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"tomcat-demo","env":[{"name":"A","value":"1"}]}]}}}}"#]);
    let c = s.kubectl_ok(&["get", "deploy", "frontend", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].name}"]);
    assert_eq!(
        c, "tomcat:11 A",
        "strategic merge keeps the container and adds env"
    );
    s.kubectl_ok(&[
        "patch",
        "rc",
        "myweb",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"patched":"merge"}}}"#,
    ]);
    s.kubectl_ok(&[
        "patch",
        "rc",
        "myweb",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ]);
    let rc = s.kubectl_ok(&[
        "get",
        "rc",
        "myweb",
        "-o",
        "jsonpath={.metadata.labels.patched} {.spec.replicas}",
    ]);
    assert_eq!(rc, "merge 4");

    // label, annotate, scale.
    s.kubectl_ok(&["label", "rc", "myweb", "env=qa"]);
    let err = s.kubectl_err(&["label", "rc", "myweb", "env=prod"]);
    assert!(err.contains("already has a value"), "{err}");
    s.kubectl_ok(&["label", "rc", "myweb", "env=prod", "--overwrite"]);
    s.kubectl_ok(&["annotate", "rc", "myweb", "owner=seed"]);
    s.kubectl_ok(&["scale", "rc", "myweb", "--replicas=2"]);
    let rc = s.kubectl_ok(&["get", "rc", "myweb", "-o", "jsonpath={.metadata.labels.env} {.metadata.annotations.owner} {.spec.replicas} {.metadata.generation}"]);
    assert_eq!(rc, "prod seed 2 3");
    s.kubectl_ok(&["scale", "deployment", "frontend", "--replicas=3"]);
    assert_eq!(
        s.kubectl_ok(&[
            "get",
            "deploy",
            "frontend",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "3"
    );

    // api-resources and explain come from discovery and OpenAPI v3.
    let ar = s.kubectl_ok(&["api-resources"]);
    assert!(
        ar.contains("replicationcontrollers")
            && ar.contains("rc")
            && ar.contains("horizontalpodautoscalers"),
        "{ar}"
    );
    let ex = s.kubectl_ok(&["explain", "pods.spec.containers.resources"]);
    assert!(ex.contains("limits") && ex.contains("requests"), "{ex}");

    // delete.
    s.kubectl_ok(&["delete", "rc", "myweb"]);
    let err = s.kubectl_err(&["get", "rc", "myweb"]);
    assert!(
        err.contains("replicationcontrollers \"myweb\" not found"),
        "{err}"
    );
    s.kubectl_ok(&["delete", "-f", &seed("tomcat-deployment.yaml")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_sees_changes() {
    let s = TestServer::start().await.expect("server starts");
    let kubectl = bosun_testkit::kubectl_path();
    let mut watch = std::process::Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args(["get", "pods", "-w", "-o", "json", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kubectl_ok(&["create", "-f", &seed("myweb-pod.yaml")]);
    s.kubectl_ok(&["label", "pod", "myweb", "seen=yes"]);
    s.kubectl_ok(&["delete", "pod", "myweb"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = watch.kill();
    let out = watch.wait_with_output().expect("kubectl output");
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<String> = serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .filter_map(Result::ok)
        .map(|e| {
            format!(
                "{} {}",
                e["type"].as_str().unwrap_or(""),
                e["object"]["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        events,
        ["ADDED myweb", "MODIFIED myweb", "DELETED myweb"],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_pages_through_long_lists() {
    let s = TestServer::start().await.expect("server starts");
    for i in 0..7 {
        let cm = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm{i}"}},"data":{{"k":"v"}}}}"#
        );
        let out = s.kubectl_stdin(&["create", "-f", "-"], &cm);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A write elsewhere between pages must not disturb the list.
    let out = s.kubectl_ok(&["get", "configmaps", "--chunk-size=3", "-o", "name"]);
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(
        names,
        (0..7)
            .map(|i| format!("configmap/cm{i}"))
            .collect::<Vec<_>>(),
        "{out}"
    );
    let out = s.kubectl_ok(&[
        "get",
        "configmaps",
        "--chunk-size=2",
        "-l",
        "missing!=x",
        "-o",
        "name",
    ]);
    assert_eq!(out.lines().count(), 7, "{out}");
}

/// kubectl's typed-client commands send protobuf bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_typed_commands_send_protobuf_and_work() {
    let s = TestServer::start().await.expect("server starts");
    s.kubectl_ok(&["create", "namespace", "development"]);
    s.kubectl_ok(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=b",
        "-n",
        "development",
    ]);
    s.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "pw",
        "--from-literal=MYSQL_ROOT_PASSWORD=123456",
    ]);
    s.kubectl_ok(&[
        "create",
        "deployment",
        "php-apache",
        "--image=registry.example/php-apache",
        "--replicas=0",
    ]);
    // The seed's own command.
    s.kubectl_ok(&[
        "autoscale",
        "deployment",
        "php-apache",
        "--cpu-percent=90",
        "--min=1",
        "--max=10",
    ]);
    let hpa = s.kubectl_ok(&[
        "get",
        "hpa",
        "php-apache",
        "-o",
        "jsonpath={.spec.scaleTargetRef.name} {.spec.maxReplicas}",
    ]);
    assert_eq!(hpa, "php-apache 10");
    assert_eq!(
        s.kubectl_ok(&[
            "get",
            "cm",
            "cfg",
            "-n",
            "development",
            "-o",
            "jsonpath={.data.a}"
        ]),
        "b"
    );
    assert_eq!(
        s.kubectl_ok(&[
            "get",
            "secret",
            "pw",
            "-o",
            "jsonpath={.data.MYSQL_ROOT_PASSWORD}"
        ]),
        "MTIzNDU2"
    );
    assert_eq!(
        s.kubectl_ok(&[
            "get",
            "deploy",
            "php-apache",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "0"
    );
}

/// `pods/binding`, as the scheduler uses it: sets spec.nodeName once, then refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_assigns_a_pod_once() {
    let s = TestServer::start().await.expect("server starts");
    s.kubectl_ok(&["create", "-f", &seed("myweb-pod.yaml")]);
    let binding = std::env::temp_dir().join(format!("binding-{}.json", std::process::id()));
    std::fs::write(&binding, r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"myweb"},"target":{"kind":"Node","name":"node-1"}}"#).expect("write binding");
    let path = "/api/v1/namespaces/default/pods/myweb/binding";
    s.kubectl_ok(&[
        "create",
        "--raw",
        path,
        "-f",
        binding.to_str().unwrap_or_default(),
    ]);
    let pod = s.kubectl_ok(&[
        "get",
        "pod",
        "myweb",
        "-o",
        "jsonpath={.spec.nodeName} {.status.conditions[?(@.type==\"PodScheduled\")].status}",
    ]);
    assert_eq!(pod, "node-1 True");
    let err = s.kubectl_err(&[
        "create",
        "--raw",
        path,
        "-f",
        binding.to_str().unwrap_or_default(),
    ]);
    assert!(err.contains("already assigned to node"), "{err}");
    let _ = std::fs::remove_file(binding);
}
