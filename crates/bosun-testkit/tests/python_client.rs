//! The official Python client (`kubernetes` on PyPI) against the API server: CRUD, patches,
//! conflicts, Status errors, selectors and watch, run by tests/python/client_compat.py.

use bosun_testkit::{run_python, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_works_unchanged() {
    let s = TestServer::start().await.expect("server starts");
    let kubeconfig = s.kubeconfig().to_path_buf();
    // The script blocks on HTTP; run it off the runtime so the server keeps serving.
    let out = tokio::task::spawn_blocking(move || {
        run_python("tests/python/client_compat.py", &[kubeconfig.as_path()])
    })
    .await
    .expect("python runner thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the python client script failed ({}):\n{stderr}\n--- steps run:\n{stdout}",
        out.status
    );
    assert!(
        stdout.contains("python client: all checks passed"),
        "the script exited 0 without finishing:\n{stdout}\n{stderr}"
    );
}
