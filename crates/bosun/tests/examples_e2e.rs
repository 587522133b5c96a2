//! The seed's walkthrough, runnable here (`examples/local`), end to end on `bosun up` (root):
//! applied with the real kubectl and then with `bosun ctl`, each time checking what the seed
//! shows — the myweb RC's five ready replicas, the "Congratulations!!" page with the rows of
//! the database stand-in on NodePort 30001, label selector queries, the PVC bound to
//! pv0003, the liveness probe's events, the busybox pod in `development`, the frontend
//! Deployment rolled to a new image and back, the php-apache HPA's TARGETS as a percentage
//! and `top pod`; with each CLI the HPA scaling php-apache up under the load generator and
//! back down without it. With `bosun ctl` also `exec` and the seed's `rolling-update` of
//! the myweb RC. Traffic goes only to this machine's own node address and to the cluster's
//! own pods.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::Up;

fn repo_root() -> std::path::PathBuf {
    bosun_testkit::repo_root()
}

/// Which command line client drives the walkthrough.
#[derive(Clone, Copy, Debug)]
enum Cli {
    Kubectl,
    BosunCtl,
}

struct Cluster {
    up: Up,
}

impl Drop for Cluster {
    /// Containers outlive `bosun up` (by design): remove the workloads first, so a failed
    /// run leaves no containers behind, then stop it.
    fn drop(&mut self) {
        if self.up.running() {
            for args in [
                &[
                    "delete",
                    "rc,deploy,rs,svc,hpa,pod,pvc",
                    "--all",
                    "-n",
                    "default",
                    "--wait=true",
                    "--timeout=90s",
                ][..],
                &[
                    "delete",
                    "ns",
                    "development",
                    "--ignore-not-found",
                    "--wait=true",
                    "--timeout=90s",
                ][..],
            ] {
                let _ = self.run(Cli::Kubectl, args);
            }
        }
        // Dropping `up` kills it.
    }
}

impl Cluster {
    fn run(&self, cli: Cli, args: &[&str]) -> (bool, String, String) {
        match cli {
            Cli::Kubectl => common::kubectl(&self.up.kubeconfig, args, None),
            Cli::BosunCtl => common::bosun_ctl(&self.up.kubeconfig, args, None),
        }
    }

    fn ok(&self, cli: Cli, args: &[&str]) -> String {
        let (ok, out, err) = self.run(cli, args);
        assert!(ok, "{cli:?} {}: {out}{err}", args.join(" "));
        out
    }

    fn field(&self, args: &[&str], jsonpath: &str) -> String {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        let jp = format!("jsonpath={jsonpath}");
        a.extend(["-o", jp.as_str()]);
        self.run(Cli::Kubectl, &a).1
    }
}

fn wait_until(what: &str, secs: u64, f: impl FnMut() -> bool) {
    common::wait_until(what, secs, Duration::from_millis(500), f)
}

/// `GET /` on the node's own address and the NodePort.
fn http_get(addr: &str) -> Option<String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: myweb\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn walkthrough(c: &Cluster, cli: Cli, node_ip: &str) {
    let dir = repo_root().join("examples/local");
    let d = |f: &str| dir.join(f).to_str().expect("path").to_string();
    c.ok(cli, &["apply", "-f", &d("development-ns.yaml")]);
    let out = c.ok(cli, &["apply", "-f", dir.to_str().expect("path")]);
    for created in [
        "replicationcontroller/mysql",
        "service/mysql",
        "replicationcontroller/myweb",
        "service/myweb",
        "deployment.apps/frontend",
        "deployment.apps/php-apache",
        "horizontalpodautoscaler.autoscaling/php-apache",
        "persistentvolume/pv0003",
        "persistentvolumeclaim/myclaim",
        "pod/liveness",
        "pod/busybox",
    ] {
        assert!(
            out.contains(created),
            "{cli:?} apply: {created} missing in\n{out}"
        );
    }
    wait_until("myweb: 5 ready replicas", 120, || {
        c.field(&["rc", "myweb"], "{.status.readyReplicas}") == "5"
    });
    let rc = c.ok(cli, &["get", "rc", "myweb"]);
    let mut lines = rc.lines();
    assert_eq!(
        lines
            .next()
            .map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"]),
        "{rc}"
    );
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>()),
        Some(vec!["myweb", "5", "5", "5"]),
        "{rc}"
    );
    let svc = c.ok(cli, &["get", "svc", "myweb"]);
    assert!(
        svc.contains("NodePort") && svc.contains("8080:30001/TCP"),
        "{svc}"
    );
    // Label selector queries.
    let names = c.ok(cli, &["get", "pods", "-l", "app=myweb", "-o", "name"]);
    assert_eq!(names.lines().count(), 5, "{names}");
    let none = c.ok(
        cli,
        &["get", "pods", "-l", "app=myweb,app!=myweb", "-o", "name"],
    );
    assert_eq!(none, "");
    // The page, with the database's rows.
    let addr = format!("{node_ip}:30001");
    let mut page = String::new();
    wait_until("the myweb page lists the database's rows", 60, || {
        page = http_get(&addr).unwrap_or_default();
        page.contains("<td>borg</td><td>google</td>")
    });
    assert!(
        page.contains("200 OK") && page.contains("<h1>Congratulations!!</h1>"),
        "{page}"
    );
    assert!(page.contains("<td>kubernetes</td><td>seed</td>"), "{page}");
    // Volumes, the development namespace, requests and limits, a failing liveness probe.
    wait_until("myclaim bound to pv0003", 60, || {
        c.field(&["pvc", "myclaim"], "{.status.phase}/{.spec.volumeName}") == "Bound/pv0003"
    });
    wait_until("busybox Running in development", 60, || {
        c.field(&["pod", "busybox", "-n", "development"], "{.status.phase}") == "Running"
    });
    assert_eq!(
        c.field(
            &["rc", "myweb"],
            "{.spec.template.spec.containers[0].resources.limits.cpu}"
        ),
        "200m"
    );
    wait_until("the liveness probe's events", 60, || {
        let ev = c.run(
            cli,
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=liveness",
            ],
        );
        ev.1.contains("Unhealthy") && ev.1.contains("Killing")
    });
    // The frontend Deployment to a new image and back.
    wait_until("frontend available", 120, || {
        c.field(&["deploy", "frontend"], "{.status.availableReplicas}") == "2"
    });
    match cli {
        Cli::Kubectl => {
            c.ok(
                cli,
                &[
                    "set",
                    "image",
                    "deploy/frontend",
                    "tomcat-demo=bosun.test/frontend:v2",
                ],
            );
        }
        Cli::BosunCtl => {
            c.ok(
                cli,
                &[
                    "patch",
                    "deploy",
                    "frontend",
                    "-p",
                    r#"{"spec":{"template":{"spec":{"containers":[{"name":"tomcat-demo","image":"bosun.test/frontend:v2"}]}}}}"#,
                ],
            );
        }
    }
    let status = c.ok(
        cli,
        &["rollout", "status", "deploy/frontend", "--timeout=180s"],
    );
    assert!(
        status.contains("deployment \"frontend\" successfully rolled out"),
        "{status}"
    );
    let images = || {
        c.field(
            &["pods", "-l", "tier=frontend"],
            "{range .items[*]}{.spec.containers[0].image} {end}",
        )
    };
    wait_until("frontend pods on v2", 120, || {
        let i = images();
        !i.is_empty() && i.split_whitespace().all(|x| x == "bosun.test/frontend:v2")
    });
    assert_eq!(
        c.ok(cli, &["rollout", "undo", "deploy/frontend"]),
        "deployment.apps/frontend rolled back\n"
    );
    c.ok(
        cli,
        &["rollout", "status", "deploy/frontend", "--timeout=180s"],
    );
    wait_until("frontend pods back on v1", 120, || {
        let i = images();
        !i.is_empty() && i.split_whitespace().all(|x| x == "bosun.test/frontend:v1")
    });

    // The HPA reads php-apache's CPU from the metrics API (the kubelet's stats, sampled
    // every 10 s): TARGETS turns from `<unknown>` into a percentage of the request.
    let mut hpa = String::new();
    wait_until("the HPA shows php-apache's CPU in TARGETS", 120, || {
        hpa = c.run(cli, &["get", "hpa", "php-apache"]).1;
        hpa_row(&hpa).is_some()
    });
    assert_eq!(
        hpa.lines()
            .next()
            .map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ]),
        "{hpa}"
    );
    let top = c.ok(cli, &["top", "pod", "-l", "run=php-apache"]);
    assert!(
        top.starts_with("NAME") && top.contains("CPU(cores)") && top.contains("php-apache-"),
        "{top}"
    );
}

/// The php-apache row of `get hpa` when TARGETS is a percentage: (CPU %, replicas).
fn hpa_row(table: &str) -> Option<(u32, u32)> {
    let row: Vec<&str> = table.lines().nth(1)?.split_whitespace().collect();
    let [name, reference, "cpu:", target, min, max, replicas, ..] = row[..] else {
        return None;
    };
    if (name, reference, min, max) != ("php-apache", "Deployment/php-apache", "1", "10") {
        return None;
    }
    let percent = target.strip_suffix("%/50%")?.parse().ok()?;
    Some((percent, replicas.parse().ok()?))
}

/// The seed's autoscaler at work, as upstream's HPA walkthrough runs it: a load generator
/// requests php-apache's page in a loop through the Service's DNS name, the HPA scales the
/// Deployment up; without the load it scales back down to one replica once the manifest's
/// 30 s scale-down stabilization window has passed.
fn hpa_under_load(c: &Cluster, cli: Cli) {
    let load = repo_root().join("examples/local/load");
    let load = load.to_str().expect("path");
    let out = c.ok(cli, &["apply", "-f", load]);
    assert!(out.contains("pod/load-generator created"), "{out}");
    let mut hpa = String::new();
    wait_until("php-apache scaled up under load", 240, || {
        hpa = c.run(cli, &["get", "hpa", "php-apache"]).1;
        hpa_row(&hpa).is_some_and(|(_, replicas)| replicas > 1)
    });
    println!("under load:\n{hpa}");
    // The new replicas show up in `top` once the kubelet has sampled them twice.
    let top = c.ok(cli, &["top", "pod", "-l", "run=php-apache"]);
    println!("{top}");
    assert!(
        top.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 3 && f[0].starts_with("php-apache-") && f[1].ends_with('m')
        }),
        "{top}"
    );
    c.ok(cli, &["delete", "-f", load, "--wait=true"]);
    let rescale_events = || {
        c.ok(
            cli,
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=php-apache",
            ],
        )
    };
    let load_gone = std::time::Instant::now();
    let deadline = load_gone + Duration::from_secs(300);
    loop {
        hpa = c.run(cli, &["get", "hpa", "php-apache"]).1;
        if hpa_row(&hpa).is_some_and(|(_, replicas)| replicas == 1) {
            break;
        }
        if std::time::Instant::now() > deadline {
            // What the autoscaler saw: its status, the pods' metrics, its events.
            let what = [
                vec!["get", "hpa", "php-apache", "-o", "yaml"],
                vec!["top", "pod"],
                vec!["get", "pods", "-o", "wide"],
                vec![
                    "get",
                    "--raw",
                    "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
                ],
                vec![
                    "get",
                    "pods",
                    "-l",
                    "run=php-apache",
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.startTime} {.status.conditions[?(@.type==\"Ready\")]}{\"\\n\"}{end}",
                ],
                vec!["describe", "hpa", "php-apache"],
            ]
            .iter()
            .map(|a| {
                let (_, out, err) = c.run(Cli::Kubectl, a);
                format!("$ kubectl {}\n{out}{err}", a.join(" "))
            })
            .collect::<Vec<_>>()
            .join("\n");
            panic!("php-apache scaled back down to 1 replica: not within 300 s\n{hpa}\n{what}");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    println!(
        "without load ({:?} after the load generator was deleted):\n{hpa}",
        load_gone.elapsed()
    );
    wait_until("one php-apache pod left", 120, || {
        c.field(
            &["pods", "-l", "run=php-apache"],
            "{.items[*].metadata.name}",
        )
        .split_whitespace()
        .count()
            == 1
    });
    let events = rescale_events();
    assert!(
        events.contains("SuccessfulRescale")
            && events.contains("above target")
            && events.contains("All metrics below target"),
        "{events}"
    );
}

#[test]
fn the_seed_walkthrough_with_kubectl_and_bosun_ctl() {
    common::require_root("the examples test");
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    common::import_busybox(&data, &["bosun.test/frontend:v1", "bosun.test/frontend:v2"]);
    let mut up = Up::start(&data, common::free_port(), "examples-e2e", &[]);
    up.wait_ready();
    let c = Cluster { up };
    let node_ip = c.field(
        &["node", "examples-e2e"],
        "{.status.addresses[?(@.type==\"InternalIP\")].address}",
    );
    assert!(!node_ip.is_empty(), "the node has no InternalIP");

    walkthrough(&c, Cli::Kubectl, &node_ip);
    hpa_under_load(&c, Cli::Kubectl);
    let dir = repo_root().join("examples/local");
    c.ok(
        Cli::Kubectl,
        &["delete", "-f", dir.to_str().expect("path"), "--wait=true"],
    );
    wait_until("the kubectl run's objects gone", 180, || {
        !c.run(Cli::Kubectl, &["get", "ns", "development"]).0
            && !c.run(Cli::Kubectl, &["get", "pv", "pv0003"]).0
    });
    walkthrough(&c, Cli::BosunCtl, &node_ip);
    // The autoscaler again through bosun ctl (apply, get hpa, top pod, delete --wait, get
    // events), up under the load and back down.
    hpa_under_load(&c, Cli::BosunCtl);

    // bosun ctl exec: output and exit code.
    let pod = c.field(&["pods", "-l", "app=myweb"], "{.items[0].metadata.name}");
    let page = c.ok(
        Cli::BosunCtl,
        &["exec", &pod, "--", "cat", "/www/index.html"],
    );
    assert!(page.contains("Congratulations!!"), "{page}");
    let (ok, _, err) = c.run(Cli::BosunCtl, &["exec", &pod, "--", "sh", "-c", "exit 3"]);
    assert!(
        !ok && err.contains("command terminated with exit code 3"),
        "{err}"
    );

    // The seed's rolling update: one new pod up, one old pod down, the count kept.
    let out = c.ok(
        Cli::BosunCtl,
        &[
            "rolling-update",
            "myweb",
            "--image=bosun.test/frontend:v2",
            "--update-period=1s",
            "--poll-interval=1s",
        ],
    );
    assert!(
        out.contains("keep 5 pods available, don't exceed 6 pods")
            && out.contains("Update succeeded. Deleting old controller: myweb")
            && out.ends_with("replicationcontroller/myweb rolling updated\n"),
        "{out}"
    );
    wait_until("myweb renamed, 5 ready on the new image", 120, || {
        c.field(
            &["rc", "myweb"],
            "{.status.readyReplicas} {.spec.template.spec.containers[0].image}",
        ) == "5 bosun.test/frontend:v2"
    });
    let addr = format!("{node_ip}:30001");
    wait_until("the page after the rolling update", 60, || {
        http_get(&addr).is_some_and(|p| p.contains("<td>borg</td><td>google</td>"))
    });

    // Leave nothing running: containers outlive `bosun up`.
    c.ok(
        Cli::BosunCtl,
        &["delete", "-f", dir.to_str().expect("path")],
    );
    c.ok(
        Cli::BosunCtl,
        &["delete", "rc", "myweb", "--ignore-not-found"],
    );
    wait_until("every pod gone", 180, || {
        c.field(&["pods", "-A"], "{.items[*].metadata.name}")
            .is_empty()
    });
}
