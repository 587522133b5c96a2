//! networking.k8s.io/v1 NetworkPolicy with the real kubectl v1.34: discovery and
//! api-resources, apply (create and update), get (upstream's columns), describe, 422s that
//! name the field, delete.

use bosun_testkit::TestServer;

const POLICY: &str = r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db-allow
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: db
  ingress:
  - from:
    - podSelector:
        matchLabels:
          role: client
    - namespaceSelector:
        matchLabels:
          team: blue
      podSelector:
        matchLabels:
          role: admin
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    ports:
    - port: 6379
    - protocol: UDP
      port: 5000
      endPort: 5010
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - port: 53
      protocol: UDP
"#;

const DENY_ALL: &str = r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
spec:
  podSelector: {}
"#;

fn header(out: &str) -> Vec<&str> {
    out.lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

fn row<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default()
}

fn stdin_ok(s: &TestServer, args: &[&str], input: &str) -> String {
    let out = s.kubectl_stdin(args, input);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stdin_err(s: &TestServer, args: &[&str], input: &str) -> String {
    let out = s.kubectl_stdin(args, input);
    assert!(
        !out.status.success(),
        "kubectl {args:?} unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_policies_with_kubectl() {
    let s = TestServer::start().await.expect("server starts");

    // Discovery: the group-version and the resource with its short name.
    let versions = s.kubectl_ok(&["api-versions"]);
    assert!(
        versions.lines().any(|l| l == "networking.k8s.io/v1"),
        "{versions}"
    );
    let res = s.kubectl_ok(&["api-resources", "--api-group=networking.k8s.io"]);
    let r = row(&res, "networkpolicies");
    assert_eq!(
        r,
        [
            "networkpolicies",
            "netpol",
            "networking.k8s.io/v1",
            "true",
            "NetworkPolicy"
        ],
        "{res}"
    );

    // apply creates; defaults are upstream's.
    let out = stdin_ok(&s, &["apply", "-f", "-"], POLICY);
    assert_eq!(
        out.trim(),
        "networkpolicy.networking.k8s.io/db-allow created"
    );
    stdin_ok(&s, &["apply", "-f", "-"], DENY_ALL);
    let types = s.kubectl_ok(&[
        "get",
        "netpol",
        "db-allow",
        "-o",
        "jsonpath={.spec.policyTypes} {.spec.ingress[0].ports[0].protocol}",
    ]);
    assert_eq!(types, r#"["Ingress","Egress"] TCP"#);
    let deny_types = s.kubectl_ok(&[
        "get",
        "networkpolicy",
        "default-deny",
        "-o",
        "jsonpath={.spec.policyTypes}",
    ]);
    assert_eq!(deny_types, r#"["Ingress"]"#);

    // get: upstream's columns.
    let table = s.kubectl_ok(&["get", "netpol"]);
    assert_eq!(header(&table), ["NAME", "POD-SELECTOR", "AGE"], "{table}");
    assert_eq!(&row(&table, "db-allow")[..2], ["db-allow", "app=db"]);
    assert_eq!(
        &row(&table, "default-deny")[..2],
        ["default-deny", "<none>"]
    );
    let all = s.kubectl_ok(&["get", "networkpolicies.networking.k8s.io", "-A"]);
    assert_eq!(header(&all)[0], "NAMESPACE", "{all}");

    // apply again with a change: configured, and the change is there.
    let changed = POLICY.replace("port: 6379", "port: 6380");
    let out = stdin_ok(&s, &["apply", "-f", "-"], &changed);
    assert_eq!(
        out.trim(),
        "networkpolicy.networking.k8s.io/db-allow configured"
    );
    let port = s.kubectl_ok(&[
        "get",
        "netpol",
        "db-allow",
        "-o",
        "jsonpath={.spec.ingress[0].ports[0].port}",
    ]);
    assert_eq!(port, "6380");

    // describe prints the object through the generic path.
    let desc = s.kubectl_ok(&["describe", "netpol", "db-allow"]);
    eprintln!("{desc}");
    for want in [
        "Name:",
        "db-allow",
        "Namespace:",
        "default",
        "app=db",
        "172.17.0.0/16",
    ] {
        assert!(desc.contains(want), "describe lacks {want:?}:\n{desc}");
    }

    // Invalid specs: 422 naming the field.
    let bad_except = POLICY
        .replace("name: db-allow", "name: bad")
        .replace("- 172.17.1.0/24", "- 10.1.0.0/16");
    let err = stdin_err(&s, &["apply", "-f", "-"], &bad_except);
    assert!(
        err.contains("spec.ingress[0].from[2].ipBlock.except[0]")
            && err.contains("must be a strict subset of `cidr`")
            && err.contains("is invalid"),
        "{err}"
    );
    let bad_port = POLICY
        .replace("name: db-allow", "name: bad")
        .replace("endPort: 5010", "endPort: 4000");
    let err = stdin_err(&s, &["create", "-f", "-"], &bad_port);
    assert!(
        err.contains("spec.ingress[0].ports[1].endPort")
            && err.contains("must be greater than or equal to `port`"),
        "{err}"
    );
    let bad_type = DENY_ALL.replace("name: default-deny", "name: bad").replace(
        "podSelector: {}",
        "podSelector: {}\n  policyTypes: [Sideways]",
    );
    let err = stdin_err(&s, &["create", "-f", "-"], &bad_type);
    assert!(
        err.contains("spec.policyTypes[0]") && err.contains("Unsupported value: \"Sideways\""),
        "{err}"
    );
    let raw = s.kubectl_stdin(&["create", "-f", "-", "-o", "json", "-v=6"], &bad_type);
    let log = String::from_utf8_lossy(&raw.stderr);
    assert!(log.contains("422"), "{log}");
    assert!(s
        .kubectl_err(&["get", "netpol", "bad"])
        .contains("NotFound"));

    // delete.
    let out = s.kubectl_ok(&["delete", "netpol", "db-allow", "default-deny"]);
    assert!(
        out.contains("networkpolicy.networking.k8s.io \"db-allow\" deleted"),
        "{out}"
    );
    let left = s.kubectl(&["get", "netpol"]);
    assert!(
        String::from_utf8_lossy(&left.stderr).contains("No resources found"),
        "{left:?}"
    );
}
