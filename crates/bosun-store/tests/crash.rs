//! Crash test: a child process writes into a SQLite store and prints every acknowledged
//! write; it is killed with SIGKILL mid-stream; the store, reopened, must hold every
//! acknowledged write at its revision and go on with higher revisions. Repeated on the same
//! store, killing at a different point each time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use bosun_store::sqlite::{SqliteOptions, SqliteStore};
use bosun_store::{ListOptions, Revision, Store};
use bytes::Bytes;

#[derive(Debug)]
struct Ack {
    op: char,
    revision: Revision,
    key: String,
    value: String,
}

fn parse(line: &str) -> Ack {
    let mut parts = line.splitn(4, ' ');
    let mut next = || {
        parts
            .next()
            .unwrap_or_else(|| panic!("short ack line {line:?}"))
    };
    let op = next().chars().next().unwrap_or('?');
    let revision = next()
        .parse()
        .unwrap_or_else(|e| panic!("bad revision in {line:?}: {e}"));
    let key = next().to_string();
    let value = next().to_string();
    Ack {
        op,
        revision,
        key,
        value,
    }
}

/// Runs the writer until `kill_after` acknowledgements, kills it, and returns every
/// acknowledgement it printed (those after `kill_after` included: they were printed after
/// their write was acknowledged, too).
fn run_and_kill(path: &std::path::Path, tag: &str, kill_after: usize) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bosun-store-crash-writer"))
        .arg(path)
        .arg(tag)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start crash writer");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut acks = Vec::new();
    while acks.len() < kill_after {
        match lines.next() {
            Some(Ok(line)) => acks.push(parse(&line)),
            other => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "writer stopped after {} acks ({other:?}); stderr: {err}",
                    acks.len()
                );
            }
        }
    }
    // SIGKILL on unix: no destructor, no flush of anything the writer holds.
    child.kill().expect("kill writer");
    let status = child.wait().expect("wait for writer");
    assert!(
        !status.success(),
        "writer was killed, not finished: {status}"
    );
    for line in lines.map_while(Result::ok) {
        // A line cut by the kill cannot be a complete acknowledgement.
        if line.split(' ').count() == 4 {
            acks.push(parse(&line));
        }
    }
    acks
}

fn check_integrity(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).expect("open raw connection");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(ok, "ok", "sqlite integrity check");
    // The current table is exactly the latest non-deleted row of every key.
    let mismatched: i64 = conn
        .query_row(
            "SELECT
               (SELECT count(*) FROM current c WHERE c.revision IS NOT
                  (SELECT l.revision FROM log l WHERE l.key = c.key AND l.deleted = 0
                   AND l.revision = (SELECT max(revision) FROM log WHERE key = c.key)))
             + abs((SELECT count(*) FROM current) -
                   (SELECT count(*) FROM (SELECT key, max(revision) AS r FROM log GROUP BY key) m
                    JOIN log l ON l.revision = m.r WHERE l.deleted = 0))",
            [],
            |r| r.get(0),
        )
        .expect("compare current with log");
    assert_eq!(mismatched, 0, "current table disagrees with the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.db");
    let mut floor: Revision = 0;
    for (round, kill_after) in [300usize, 1200, 40, 700].into_iter().enumerate() {
        let tag = format!("r{round}");
        let acks = run_and_kill(&path, &tag, kill_after);
        assert!(acks.len() >= kill_after, "round {round}: acks read");

        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen store");
        let current = store.current_revision().await.expect("current revision");
        let max_acked = acks.iter().map(|a| a.revision).max().unwrap_or(0);
        assert!(
            current >= max_acked,
            "round {round}: current revision {current} below the last acknowledged {max_acked}"
        );
        let min_acked = acks.iter().map(|a| a.revision).min().unwrap_or(0);
        assert!(
            min_acked > floor,
            "round {round}: revision {min_acked} not above the previous run's {floor}"
        );

        // Every acknowledged write is in the history at its revision.
        for a in &acks {
            let at = store
                .list(
                    &a.key,
                    ListOptions {
                        revision: Some(a.revision),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("round {round}: list {} at {}: {e}", a.key, a.revision));
            let found = at.kvs.iter().find(|kv| kv.key == a.key);
            match a.op {
                'D' => assert!(
                    found.is_none(),
                    "round {round}: acknowledged delete of {} at {} is not there",
                    a.key,
                    a.revision
                ),
                _ => {
                    let kv = found.unwrap_or_else(|| {
                        panic!(
                            "round {round}: acknowledged {} of {} at {} is lost",
                            a.op, a.key, a.revision
                        )
                    });
                    assert_eq!(
                        kv.mod_revision, a.revision,
                        "round {round}: revision of {}",
                        a.key
                    );
                    assert_eq!(
                        kv.value,
                        Bytes::from(a.value.clone()),
                        "round {round}: value of {}",
                        a.key
                    );
                }
            }
        }

        // The latest state is at least as new as the last acknowledgement of each key.
        let mut last: BTreeMap<&str, &Ack> = BTreeMap::new();
        for a in &acks {
            let e = last.entry(a.key.as_str()).or_insert(a);
            if a.revision > e.revision {
                *e = a;
            }
        }
        for (key, a) in &last {
            // Absent is fine: deleted, by this acknowledgement or a later unacknowledged one.
            if let Some(kv) = store.get(key).await.expect("get") {
                assert!(
                    kv.mod_revision >= a.revision && a.op != 'D',
                    "round {round}: {key} is at {} after the acknowledged {} at {}",
                    kv.mod_revision,
                    a.op,
                    a.revision
                );
            }
        }

        // Nothing is newer than the current revision, and writes go on above it.
        let all = store
            .list("", ListOptions::default())
            .await
            .expect("list all");
        assert!(
            all.kvs.iter().all(|kv| kv.mod_revision <= current),
            "round {round}: a key is newer than the current revision {current}"
        );
        let next = store
            .create(&format!("/after/{round}"), Bytes::from_static(b"x"))
            .await
            .expect("write after reopen");
        assert!(
            next.mod_revision > current,
            "round {round}: write after reopen"
        );
        floor = next.mod_revision;
        drop(store);
        check_integrity(&path);
    }
}
