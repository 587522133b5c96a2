//! networking.k8s.io/v1 NetworkPolicy with the real kubectl v1.34: discovery and
//! api-resources, apply (create and update), get (upstream's columns), describe, 422s that
//! name the field, delete.

use bosun_testkit::{table_header, table_row, TestServer};

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
    let r = table_row(&res, "networkpolicies");
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
    let out = s.kubectl_stdin_ok(&["apply", "-f", "-"], POLICY);
    assert_eq!(
        out.trim(),
        "networkpolicy.networking.k8s.io/db-allow created"
    );
    s.kubectl_stdin_ok(&["apply", "-f", "-"], DENY_ALL);
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
    assert_eq!(
        table_header(&table),
        ["NAME", "POD-SELECTOR", "AGE"],
        "{table}"
    );
    assert_eq!(&table_row(&table, "db-allow")[..2], ["db-allow", "app=db"]);
    assert_eq!(
        &table_row(&table, "default-deny")[..2],
        ["default-deny", "<none>"]
    );
    let all = s.kubectl_ok(&["get", "networkpolicies.networking.k8s.io", "-A"]);
    assert_eq!(table_header(&all)[0], "NAMESPACE", "{all}");

    // apply again with a change: configured, and the change is there.
    let changed = POLICY.replace("port: 6379", "port: 6380");
    let out = s.kubectl_stdin_ok(&["apply", "-f", "-"], &changed);
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
    let err = s.kubectl_stdin_err(&["apply", "-f", "-"], &bad_except);
    assert!(
        err.contains("spec.ingress[0].from[2].ipBlock.except[0]")
            && err.contains("must be a strict subset of `cidr`")
            && err.contains("is invalid"),
        "{err}"
    );
    let bad_port = POLICY
        .replace("name: db-allow", "name: bad")
        .replace("endPort: 5010", "endPort: 4000");
    let err = s.kubectl_stdin_err(&["create", "-f", "-"], &bad_port);
    assert!(
        err.contains("spec.ingress[0].ports[1].endPort")
            && err.contains("must be greater than or equal to `port`"),
        "{err}"
    );
    let bad_type = DENY_ALL.replace("name: default-deny", "name: bad").replace(
        "podSelector: {}",
        "podSelector: {}\n  policyTypes: [Sideways]",
    );
    let err = s.kubectl_stdin_err(&["create", "-f", "-"], &bad_type);
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
