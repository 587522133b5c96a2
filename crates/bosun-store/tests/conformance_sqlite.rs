//! Runs the store conformance suite on the SQLite backend, file-backed and in memory.

use bosun_store::conformance;
use bosun_store::sqlite::{SqliteOptions, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_backed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(format!("store-{n}.db"));
        async move { SqliteStore::open(&path, SqliteOptions::default()).expect("open store") }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory() {
    conformance::run_all(|| async { SqliteStore::open_in_memory().expect("open store") }).await;
}
