//! Error responses as the real kubectl shows them: invalid and unknown fields, conflicts,
//! missing objects and resources, malformed and hostile bodies, unsupported server-side
//! apply. After each, the server must still answer.

use std::path::PathBuf;

use bosun_testkit::TestServer;

const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;

/// The server still serves after the previous request.
fn still_up(s: &TestServer, after: &str) {
    let out = s.kubectl(&["get", "--raw", "/api/v1/namespaces/default"]);
    assert!(
        out.status.success(),
        "the server stopped answering after {after}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs kubectl with `stdin`, expecting failure; returns stderr.
fn fails_with_stdin(s: &TestServer, args: &[&str], stdin: &str) -> String {
    let out = s.kubectl_stdin(args, stdin);
    assert!(
        !out.status.success(),
        "kubectl {} unexpectedly succeeded: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_contains(haystack: &str, needle: &str, case: &str) {
    assert!(
        haystack.contains(needle),
        "{case}: expected {needle:?} in kubectl's output:\n{haystack}"
    );
}

/// Writes `body` to a file beside the test's kubeconfig and returns its path.
fn body_file(s: &TestServer, name: &str, body: &[u8]) -> PathBuf {
    let p = s.dir.join(name);
    std::fs::write(&p, body).expect("writing a request body file");
    p
}

/// `kubectl create --raw PATH -f FILE`: POSTs the file as it is, so the server (not
/// kubectl's own parser) judges it. Returns stderr; the call must fail.
fn raw_create_fails(s: &TestServer, path: &str, file: &std::path::Path) -> String {
    let file = file.to_string_lossy();
    let out = s.kubectl(&["create", "--raw", path, "-f", &file]);
    assert!(
        !out.status.success(),
        "kubectl create --raw {path} unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_object_names_the_field() {
    let s = TestServer::start().await.expect("server starts");
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":[{"name":"c"}]}}"#;
    let err = fails_with_stdin(&s, &["create", "-f", "-"], pod);
    // kubectl prints an Invalid Status without the "Error from server" prefix.
    assert_contains(
        &err,
        r#"The Pod "x" is invalid: spec.containers[0].image: Required value"#,
        "invalid pod",
    );
    still_up(&s, "an invalid pod");

    // Several causes are listed together, each with its field path.
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name"},"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":70000}]}]}}"#;
    let err = fails_with_stdin(&s, &["create", "-f", "-"], pod);
    assert_contains(&err, r#"The Pod "Bad_Name" is invalid"#, "two causes");
    assert_contains(&err, "metadata.name: Invalid value", "two causes");
    assert_contains(
        &err,
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000",
        "two causes",
    );
    still_up(&s, "a pod with two invalid fields");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_field_is_rejected_by_default_strict_validation() {
    let s = TestServer::start().await.expect("server starts");
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"foo":1,"containers":[{"name":"c","image":"busybox"}]}}"#;
    let err = fails_with_stdin(&s, &["create", "-f", "-"], pod);
    assert_contains(&err, "Error from server (BadRequest)", "unknown field");
    assert_contains(
        &err,
        r#"strict decoding error: unknown field "spec.foo""#,
        "unknown field",
    );
    still_up(&s, "an unknown field");

    // --validate=false sends fieldValidation=Ignore: the field is dropped, the pod created.
    let out = s.kubectl_stdin(&["create", "--validate=false", "-f", "-"], pod);
    assert!(
        out.status.success(),
        "--validate=false: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = s.kubectl_ok(&["get", "pod", "x", "-o", "json"]);
    assert!(
        !got.contains("\"foo\""),
        "an ignored field was stored: {got}"
    );

    // --validate=warn creates it and prints the server's warning.
    let pod2 = pod.replace(r#""name":"x""#, r#""name":"y""#);
    let out = s.kubectl_stdin(&["create", "--validate=warn", "-f", "-"], &pod2);
    assert!(
        out.status.success(),
        "--validate=warn: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_contains(
        &String::from_utf8_lossy(&out.stderr),
        r#"unknown field "spec.foo""#,
        "warning for an unknown field",
    );

    // A field given twice is a strict decoding error too.
    let dup = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"d","name":"d"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    let f = body_file(&s, "dup.json", dup.as_bytes());
    let err = raw_create_fails(
        &s,
        "/api/v1/namespaces/default/pods?fieldValidation=Strict",
        &f,
    );
    assert_contains(
        &err,
        r#"duplicate field "metadata.name""#,
        "duplicate field",
    );
    still_up(&s, "a duplicate field");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_exists_conflict_and_not_found() {
    let s = TestServer::start().await.expect("server starts");
    let out = s.kubectl_stdin(&["create", "-f", "-"], POD);
    assert!(out.status.success());

    let err = fails_with_stdin(&s, &["create", "-f", "-"], POD);
    assert_contains(
        &err,
        r#"Error from server (AlreadyExists): error when creating "STDIN": pods "x" already exists"#,
        "already exists",
    );
    still_up(&s, "already exists");

    // Replace with the resourceVersion read before another write: a conflict.
    let current = s.kubectl_ok(&["get", "pod", "x", "-o", "json"]);
    s.kubectl_ok(&["label", "pod", "x", "changed=1"]);
    let err = fails_with_stdin(&s, &["replace", "-f", "-"], &current);
    assert_contains(
        &err,
        r#"Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on pods "x": the object has been modified; please apply your changes to the latest version and try again"#,
        "stale replace",
    );
    still_up(&s, "a conflict");

    let err = s.kubectl_err(&["get", "pod", "nope"]);
    assert_contains(
        &err,
        r#"Error from server (NotFound): pods "nope" not found"#,
        "get missing",
    );
    let err = s.kubectl_err(&["delete", "deployment", "nope"]);
    assert_contains(
        &err,
        r#"Error from server (NotFound): deployments.apps "nope" not found"#,
        "delete missing",
    );
    // The server answers `pods "x" not found`; kubectl 1.34 then looks the namespace up and
    // reports that instead.
    let err = s.kubectl_err(&["get", "pod", "x", "-n", "no-such-ns"]);
    assert_contains(
        &err,
        r#"Error from server (NotFound): namespaces "no-such-ns" not found"#,
        "missing namespace",
    );
    let err = s.kubectl_err(&["get", "--raw", "/api/v1/namespaces/no-such-ns/pods/x"]);
    assert_contains(
        &err,
        r#"pods "x" not found"#,
        "raw get in a missing namespace",
    );
    still_up(&s, "not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_bad_requests() {
    let s = TestServer::start().await.expect("server starts");
    let pods = "/api/v1/namespaces/default/pods";

    // kubectl's own parser stops malformed YAML before it reaches the server.
    let err = fails_with_stdin(
        &s,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\n  bad: [",
    );
    assert_contains(&err, "error", "malformed YAML");
    still_up(&s, "malformed YAML on the client");

    for (name, body) in [
        (
            "truncated.json",
            &br#"{"apiVersion":"v1","kind":"Pod","metadata":{"#[..],
        ),
        ("garbage.json", &b"\x00\xff not json"[..]),
        ("array.json", &b"[1,2,3]"[..]),
        ("number.json", &b"42"[..]),
        ("trailing.json", &br#"{"kind":"Pod"} {"kind":"Pod"}"#[..]),
        (
            "bad-utf8.json",
            &b"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"\xc3\x28\"}}"[..],
        ),
    ] {
        let f = body_file(&s, name, body);
        let err = raw_create_fails(&s, pods, &f);
        assert_contains(&err, "Error from server (BadRequest)", name);
        still_up(&s, name);
    }

    // The wrong field type inside a well-formed object.
    let f = body_file(
        &s,
        "wrong-type.json",
        br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"t"},"spec":{"containers":"no"}}"#,
    );
    let err = raw_create_fails(&s, pods, &f);
    assert_contains(&err, "Error from server (BadRequest)", "wrong type");
    assert_contains(&err, "cannot be handled as a Pod", "wrong type");
    still_up(&s, "a field of the wrong type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_that_does_not_match_the_url() {
    let s = TestServer::start().await.expect("server starts");
    let svc = br#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"port":80}]}}"#;
    let f = body_file(&s, "svc.json", svc);
    let err = raw_create_fails(&s, "/api/v1/namespaces/default/pods", &f);
    assert_contains(&err, "Error from server (BadRequest)", "kind mismatch");
    assert_contains(&err, "cannot be handled as a Pod", "kind mismatch");
    still_up(&s, "a kind mismatch");

    let dep = br#"{"apiVersion":"apps/v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#;
    let f = body_file(&s, "pod-apps.json", dep);
    let err = raw_create_fails(&s, "/api/v1/namespaces/default/pods", &f);
    assert_contains(
        &err,
        "Error from server (BadRequest)",
        "apiVersion mismatch",
    );
    assert_contains(
        &err,
        "the API version in the data (apps/v1) does not match the expected API version (v1)",
        "apiVersion mismatch",
    );
    still_up(&s, "an apiVersion mismatch");

    // Upstream takes a missing kind and apiVersion from the URL (the decoder's default GVK).
    let f = body_file(
        &s,
        "no-type-meta.json",
        br#"{"metadata":{"name":"nokind"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
    );
    let out = s.kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods",
        "-f",
        &f.to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "a pod without kind/apiVersion POSTed to the pods URL must be created as upstream does: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = String::from_utf8_lossy(&out.stdout);
    assert_contains(&body, r#""kind":"Pod""#, "defaulted kind in the response");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resources_are_not_found() {
    let s = TestServer::start().await.expect("server starts");
    let err = s.kubectl_err(&["get", "--raw", "/api/v1/namespaces/default/foos"]);
    assert_contains(
        &err,
        "Error from server (NotFound): the server could not find the requested resource",
        "unknown resource",
    );
    let err = s.kubectl_err(&["get", "--raw", "/apis/nosuch.example.com/v1/things"]);
    assert_contains(&err, "(NotFound)", "unknown group");
    let err = s.kubectl_err(&["get", "--raw", "/api/v1/namespaces/default/pods/x/nosub"]);
    assert_contains(&err, "(NotFound)", "unknown subresource");
    let err = s.kubectl_err(&["get", "foos"]);
    assert_contains(
        &err,
        r#"the server doesn't have a resource type "foos""#,
        "unknown resource type through discovery",
    );
    still_up(&s, "unknown resources");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_deeply_nested_bodies() {
    let s = TestServer::start().await.expect("server starts");
    let pods = "/api/v1/namespaces/default/pods";

    // Over 3 MiB: 413, whatever the content.
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"big","annotations":{{"a":"{}"}}}},"spec":{{"containers":[{{"name":"c","image":"i"}}]}}}}"#,
        "x".repeat(3 * 1024 * 1024 + 10)
    );
    let f = body_file(&s, "big.json", big.as_bytes());
    let err = raw_create_fails(&s, pods, &f);
    assert_contains(&err, "(RequestEntityTooLarge)", "3 MiB body");
    still_up(&s, "a body over 3 MiB");

    // The same through kubectl's own create path.
    let err = s.kubectl_err(&["create", "-f", &f.to_string_lossy()]);
    assert_contains(
        &err,
        "Request entity too large",
        "3 MiB pod via kubectl create",
    );
    still_up(&s, "a 3 MiB pod via kubectl create");

    // Deep nesting: a 400, and the server stays up (no stack overflow).
    for (name, depth) in [
        ("deep-arrays.json", 100_000usize),
        ("deep-objects.json", 50_000),
    ] {
        let body = if name.contains("arrays") {
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
        };
        let f = body_file(&s, name, body.as_bytes());
        let err = raw_create_fails(&s, pods, &f);
        assert_contains(&err, "Error from server (BadRequest)", name);
        still_up(&s, name);
    }
    // Nesting inside a real pod (under a field that keeps any JSON would be too deep too).
    let nested = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"n"}},"spec":{{"containers":[{{"name":"c","image":"i"}}]}},"x":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let f = body_file(&s, "deep-in-pod.json", nested.as_bytes());
    let err = raw_create_fails(&s, pods, &f);
    assert_contains(
        &err,
        "Error from server (BadRequest)",
        "deep field in a pod",
    );
    still_up(&s, "a deeply nested field in a pod");

    // YAML bodies go through another decoder: deep nesting, and an alias bomb.
    let client = s.client().await.expect("client");
    let deep_yaml = format!("{}1{}", "[".repeat(50_000), "]".repeat(50_000));
    let mut bomb = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    for (i, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("{i}: &{i} [{refs}]\n"));
    }
    for (name, body) in [("deep YAML", deep_yaml), ("YAML alias bomb", bomb)] {
        let req = http::Request::post(pods)
            .header("content-type", "application/yaml")
            .body(body.into_bytes())
            .expect("request");
        let res = client.request_text(req).await;
        match res {
            Err(kube::Error::Api(st)) => {
                assert_eq!(st.code, 400, "{name}: {st:?}")
            }
            other => panic!("{name}: expected a 400 Status, got {other:?}"),
        }
        still_up(&s, name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_is_refused_clearly() {
    let s = TestServer::start().await.expect("server starts");
    let err = fails_with_stdin(&s, &["apply", "--server-side", "-f", "-"], POD);
    // kubectl turns the 415 into its own sentence, carrying the server's message.
    assert_contains(
        &err,
        "Server-side apply not available on the server: (server-side apply is not supported",
        "server-side apply",
    );
    still_up(&s, "server-side apply");
    // Client-side apply still works.
    let out = s.kubectl_stdin(&["apply", "-f", "-"], POD);
    assert!(
        out.status.success(),
        "client-side apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
