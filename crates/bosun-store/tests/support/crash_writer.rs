//! Test helper for `tests/crash.rs`: writes a stream of creates, updates and deletes into a
//! SQLite store from several tasks at once and prints each acknowledged write as
//! `<op> <revision> <key> <value>` on stdout, flushed, until it is killed.
//!
//! Usage: `bosun-store-crash-writer <database path> <tag>`. It stops by itself after a
//! bounded number of writes, or when stdout is closed.

use std::io::Write;
use std::sync::Arc;

use bosun_store::sqlite::{SqliteOptions, SqliteStore};
use bosun_store::Store;
use bytes::Bytes;

const TASKS: usize = 8;
const MAX_KEYS_PER_TASK: usize = 20_000;

fn ack(out: &std::sync::Mutex<std::io::Stdout>, line: String) {
    let out = out.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = out.lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        // Nobody reads any more: the test is gone.
        std::process::exit(0);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(tag)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bosun-store-crash-writer <database path> <tag>");
        std::process::exit(2);
    };
    let store = match SqliteStore::open(std::path::Path::new(path), SqliteOptions::default()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("open {path}: {e}");
            std::process::exit(1);
        }
    };
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let out = out.clone();
        let tag = tag.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..MAX_KEYS_PER_TASK {
                let key = format!("/crash/{tag}/{t}/{i:05}");
                let value = format!("{tag}-{t}-{i}-created");
                let kv = match store.create(&key, Bytes::from(value.clone())).await {
                    Ok(kv) => kv,
                    Err(e) => {
                        eprintln!("create {key}: {e}");
                        std::process::exit(1);
                    }
                };
                ack(&out, format!("C {} {key} {value}", kv.mod_revision));
                if i % 3 == 0 {
                    let value = format!("{tag}-{t}-{i}-updated");
                    match store
                        .update(&key, Bytes::from(value.clone()), kv.mod_revision)
                        .await
                    {
                        Ok(kv) => ack(&out, format!("U {} {key} {value}", kv.mod_revision)),
                        Err(e) => {
                            eprintln!("update {key}: {e}");
                            std::process::exit(1);
                        }
                    }
                }
                if i % 5 == 0 {
                    match store.delete(&key, None).await {
                        Ok(kv) => ack(&out, format!("D {} {key} -", kv.mod_revision)),
                        Err(e) => {
                            eprintln!("delete {key}: {e}");
                            std::process::exit(1);
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            eprintln!("writer task: {e}");
            std::process::exit(1);
        }
    }
}
