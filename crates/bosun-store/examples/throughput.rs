//! Throughput check of the SQLite store: durable writes per second with 1 and 64
//! concurrent writers against the raw SQLite baseline on the same disk, then read latency
//! at 100k keys.
//!
//! `cargo run --release -p bosun-store --example throughput [dir] [keys]` (default: a
//! temporary directory under /tmp, 100000 keys).

use std::sync::Arc;
use std::time::Instant;

use bosun_store::sqlite::{raw_sqlite_durable_inserts, SqliteOptions, SqliteStore};
use bosun_store::{ListOptions, Store};
use bytes::Bytes;

const VALUE_SIZE: usize = 2048;

async fn concurrent_creates(
    store: &Arc<SqliteStore>,
    prefix: &str,
    writers: usize,
    per_writer: usize,
) -> f64 {
    let value = Bytes::from(vec![b'v'; VALUE_SIZE]);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let store = store.clone();
        let value = value.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let key = format!("{prefix}/{w:03}/{i:06}");
                if let Err(e) = store.create(&key, value.clone()).await {
                    panic!("create {key}: {e}");
                }
            }
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            panic!("writer task: {e}");
        }
    }
    (writers * per_writer) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tmp = tempfile::tempdir_in("/tmp").unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = args
        .get(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let keys: usize = args.get(2).and_then(|k| k.parse().ok()).unwrap_or(100_000);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));

    let raw = raw_sqlite_durable_inserts(&dir, 1000).unwrap_or_else(|e| panic!("{e}"));
    println!("raw sqlite durable inserts (1 txn each, 2 KiB): {raw:.0}/s");

    let path = dir.join("throughput.db");
    // A third argument `nofsync` shows the ceiling set by CPU rather than by the disk.
    let fsync = args.get(3).map(String::as_str) != Some("nofsync");
    let opts = SqliteOptions {
        fsync,
        ..Default::default()
    };
    println!("fsync: {fsync}");
    let store = Arc::new(SqliteStore::open(&path, opts).unwrap_or_else(|e| panic!("{e}")));
    let one = concurrent_creates(&store, "/one", 1, 1000).await;
    println!("store durable writes, 1 writer:   {one:.0}/s");
    let many = concurrent_creates(&store, "/many", 64, 200).await;
    println!("store durable writes, 64 writers: {many:.0}/s");

    // Fill up to `keys` keys with 64 writers, then time reads.
    let have = store.count("").await.unwrap_or(0) as usize;
    let per = keys.saturating_sub(have).div_ceil(64).max(1);
    if keys > have {
        let fill = concurrent_creates(&store, "/registry/pods/ns", 64, per).await;
        println!(
            "filled to {} keys at {fill:.0} writes/s",
            store.count("").await.unwrap_or(0)
        );
    }
    let rev_before = store.current_revision().await.unwrap_or(0);
    // Some history on top, so that old-revision reads have something to skip.
    concurrent_creates(&store, "/registry/pods/later", 64, 20).await;

    let n = 2000;
    let started = Instant::now();
    for i in 0..n {
        let key = format!("/registry/pods/ns/{:03}/{:06}", i % 64, (i * 7) % per);
        if store.get(&key).await.unwrap_or(None).is_none() {
            panic!("missing {key}");
        }
    }
    println!(
        "get at {keys} keys: {:.1} us each",
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    );

    let started = Instant::now();
    let r = store
        .list("/registry/pods/ns/007/", ListOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "list of one prefix ({} keys): {:.2} ms",
        r.kvs.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let started = Instant::now();
    let r = store
        .list(
            "/registry/pods/",
            ListOptions {
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "list page of 500 at the current revision: {:.2} ms (remaining {:?})",
        started.elapsed().as_secs_f64() * 1e3,
        r.remaining
    );
    let started = Instant::now();
    let r = store
        .list(
            "/registry/pods/",
            ListOptions {
                limit: 500,
                revision: Some(rev_before),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "list page of 500 at an older revision: {:.2} ms ({} keys)",
        started.elapsed().as_secs_f64() * 1e3,
        r.kvs.len()
    );
    let started = Instant::now();
    let all = store
        .list("/registry/pods/", ListOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "full list of {} keys: {:.0} ms",
        all.kvs.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    for (prefix, want) in [
        ("/registry/pods/ns/007/", None),
        ("/nothing/", Some(0usize)),
    ] {
        let started = Instant::now();
        let mut w = store
            .watch(prefix, 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let expect = want.unwrap_or_else(|| {
            all.kvs
                .iter()
                .filter(|kv| kv.key.starts_with(prefix))
                .count()
        });
        let mut seen = 0;
        while seen < expect {
            match futures::StreamExt::next(&mut w).await {
                Some(Ok(batch)) => seen += batch.len(),
                other => panic!("watch {prefix}: {other:?}"),
            }
        }
        println!(
            "watch {prefix} from revision 0: {seen} events replayed in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    let started = Instant::now();
    let c = store.count("/registry/pods/").await.unwrap_or(0);
    println!(
        "count of {c} keys: {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
}
