//! The first look: kubectl reaches the server, discovers resources, creates and gets a pod.

use bosun_testkit::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_and_gets_a_pod() {
    let s = TestServer::start().await.expect("server starts");
    let out = s.kubectl_ok(&["get", "namespaces"]);
    assert!(out.contains("kube-system"), "{out}");
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    let out = s.kubectl_stdin(&["create", "-f", "-"], pod);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.kubectl_ok(&["get", "pods"]);
    assert!(out.contains("web"), "{out}");
}
