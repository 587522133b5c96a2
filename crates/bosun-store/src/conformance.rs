//! The conformance suite: every backend runs these checks.
//!
//! A backend's test calls [`run_all`] with a factory that gives a fresh, empty *namespace*
//! per call (a new SQLite database, or a unique key prefix on a shared etcd). Each check
//! takes one such store and panics with a message naming the check when the backend
//! misbehaves; the checks are also public one by one (`check_*`), so that a backend can run
//! them as separate tests.
//!
//! What the checks rely on, so that a namespace on a shared backend passes them:
//! - revisions strictly increase, but need not start at 1 nor be contiguous (other
//!   namespaces may write in between), and `current_revision` may be higher than this
//!   check's last write;
//! - the namespace is empty when the check starts, and only the check writes into it;
//! - [`check_compaction`] compacts the whole store: on a backend shared by checks running
//!   in parallel, run it alone (it is the last one [`run_all`] runs). The other checks read
//!   history only at revisions they wrote themselves after they started.
//!
//! Waiting for watch events is bounded by [`WATCH_WAIT`], only so that a missing event
//! fails the check instead of hanging it; no check measures time.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{Error, Event, EventType, KeyValue, ListOptions, Revision, Store, WatchStream};

/// How long a check waits for an expected watch event before it fails.
pub const WATCH_WAIT: Duration = Duration::from_secs(60);

/// Runs every check, each on a fresh store from `new_store`, one after the other;
/// [`check_compaction`] last.
pub async fn run_all<F, Fut, S>(new_store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: Store,
{
    check_create_get(&new_store().await).await;
    check_update(&new_store().await).await;
    check_delete(&new_store().await).await;
    check_recreate_after_delete(&new_store().await).await;
    check_list_prefix(&new_store().await).await;
    check_list_pagination(&new_store().await).await;
    check_list_at_revision(&new_store().await).await;
    check_count(&new_store().await).await;
    check_watch_from_start(&new_store().await).await;
    check_watch_from_now(&new_store().await).await;
    check_watch_from_past(&new_store().await).await;
    check_watch_prefix_isolation(&new_store().await).await;
    check_watch_while_writing(&new_store().await).await;
    check_concurrent_writers(Arc::new(new_store().await)).await;
    check_compaction(&new_store().await).await;
}

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn keys_of(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key.as_str()).collect()
}

/// Reads events from `stream` until `n` arrived, failing `check` if it ends or stalls.
pub async fn next_events(stream: &mut WatchStream, n: usize, check: &str) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(WATCH_WAIT, stream.next()).await {
            Err(_) => panic!(
                "{check}: watch delivered {} of {n} expected events, then nothing for {WATCH_WAIT:?}; got {out:#?}",
                out.len()
            ),
            Ok(None) => panic!(
                "{check}: watch stream ended after {} of {n} expected events; got {out:#?}",
                out.len()
            ),
            Ok(Some(Err(e))) => panic!(
                "{check}: watch stream failed after {} of {n} expected events: {e}",
                out.len()
            ),
            Ok(Some(Ok(batch))) => {
                assert!(!batch.is_empty(), "{check}: watch delivered an empty batch");
                out.extend(batch);
            }
        }
    }
    assert_eq!(
        out.len(),
        n,
        "{check}: watch delivered more events than written: {out:#?}"
    );
    out
}

fn assert_increasing(events: &[Event], check: &str) {
    for pair in events.windows(2) {
        assert!(
            pair[0].revision < pair[1].revision,
            "{check}: watch events out of revision order: {} then {}",
            pair[0].revision,
            pair[1].revision
        );
    }
    for e in events {
        assert_eq!(
            e.revision, e.kv.mod_revision,
            "{check}: event revision differs from kv.mod_revision for {:?}",
            e.kv.key
        );
    }
}

/// Create, get, and creating an existing key.
pub async fn check_create_get<S: Store>(store: &S) {
    const C: &str = "check_create_get";
    assert_eq!(
        store.get("/cg/a").await.expect(C),
        None,
        "{C}: get of a missing key"
    );
    let before = store.current_revision().await.expect(C);
    let a = store.create("/cg/a", val("one")).await.expect(C);
    assert_eq!(a.key, "/cg/a", "{C}: created key name");
    assert_eq!(a.value, val("one"), "{C}: created value");
    assert!(
        a.mod_revision > before,
        "{C}: create revision {} not above the revision before it ({before})",
        a.mod_revision
    );
    assert_eq!(
        a.create_revision, a.mod_revision,
        "{C}: a new key's create_revision equals its mod_revision"
    );
    assert!(
        store.current_revision().await.expect(C) >= a.mod_revision,
        "{C}: current_revision below the acknowledged create"
    );
    assert_eq!(
        store.get("/cg/a").await.expect(C),
        Some(a.clone()),
        "{C}: get after create"
    );

    match store.create("/cg/a", val("two")).await {
        Err(Error::AlreadyExists { key }) => {
            assert_eq!(key, "/cg/a", "{C}: AlreadyExists names the key")
        }
        other => panic!("{C}: second create of /cg/a answered {other:?}, want AlreadyExists"),
    }
    assert_eq!(
        store.get("/cg/a").await.expect(C),
        Some(a.clone()),
        "{C}: a failed create changed the key"
    );

    let b = store.create("/cg/b", Bytes::new()).await.expect(C);
    assert!(
        b.mod_revision > a.mod_revision,
        "{C}: revisions strictly increase"
    );
    assert_eq!(
        store.get("/cg/b").await.expect(C).map(|kv| kv.value),
        Some(Bytes::new()),
        "{C}: empty values are kept"
    );
    let binary = Bytes::from_static(&[0, 0xff, 0x80, 10, 0]);
    store.create("/cg/bin", binary.clone()).await.expect(C);
    assert_eq!(
        store.get("/cg/bin").await.expect(C).map(|kv| kv.value),
        Some(binary),
        "{C}: binary values are kept byte for byte"
    );
}

/// Compare-and-swap updates with the right and a stale revision, and of a missing key.
pub async fn check_update<S: Store>(store: &S) {
    const C: &str = "check_update";
    let a = store.create("/up/a", val("v1")).await.expect(C);
    let a2 = store
        .update("/up/a", val("v2"), a.mod_revision)
        .await
        .expect(C);
    assert!(
        a2.mod_revision > a.mod_revision,
        "{C}: update revision above the create's"
    );
    assert_eq!(
        a2.create_revision, a.create_revision,
        "{C}: update keeps create_revision"
    );
    assert_eq!(a2.value, val("v2"), "{C}: updated value");
    assert_eq!(
        store.get("/up/a").await.expect(C),
        Some(a2.clone()),
        "{C}: get after update"
    );

    match store.update("/up/a", val("v3"), a.mod_revision).await {
        Err(Error::Conflict {
            key,
            expected,
            current,
        }) => {
            assert_eq!(key, "/up/a", "{C}: Conflict names the key");
            assert_eq!(
                expected, a.mod_revision,
                "{C}: Conflict carries the expected revision"
            );
            assert_eq!(
                current.as_deref(),
                Some(&a2),
                "{C}: Conflict carries the key's current value"
            );
        }
        other => panic!("{C}: update with a stale revision answered {other:?}, want Conflict"),
    }
    assert_eq!(
        store.get("/up/a").await.expect(C),
        Some(a2.clone()),
        "{C}: a failed update changed the key"
    );

    match store.update("/up/missing", val("x"), a.mod_revision).await {
        Err(Error::NotFound { key }) => {
            assert_eq!(key, "/up/missing", "{C}: NotFound names the key")
        }
        other => panic!("{C}: update of a missing key answered {other:?}, want NotFound"),
    }

    // An update to the same value is still a write with a new revision.
    let a3 = store
        .update("/up/a", val("v2"), a2.mod_revision)
        .await
        .expect(C);
    assert!(
        a3.mod_revision > a2.mod_revision,
        "{C}: an update with an unchanged value gets a new revision"
    );
}

/// Delete with and without a precondition, and of a missing key.
pub async fn check_delete<S: Store>(store: &S) {
    const C: &str = "check_delete";
    let a = store.create("/del/a", val("a")).await.expect(C);
    let b = store.create("/del/b", val("b")).await.expect(C);
    let b2 = store
        .update("/del/b", val("b2"), b.mod_revision)
        .await
        .expect(C);

    let gone = store.delete("/del/a", None).await.expect(C);
    assert_eq!(gone.key, "/del/a", "{C}: deleted key name");
    assert_eq!(
        gone.value,
        val("a"),
        "{C}: delete returns the value before deletion"
    );
    assert_eq!(
        gone.create_revision, a.create_revision,
        "{C}: delete returns the create_revision"
    );
    assert!(
        gone.mod_revision > b2.mod_revision,
        "{C}: delete's mod_revision is the (new) deletion revision"
    );
    assert_eq!(
        store.get("/del/a").await.expect(C),
        None,
        "{C}: get after delete"
    );

    match store.delete("/del/a", None).await {
        Err(Error::NotFound { key }) => assert_eq!(key, "/del/a", "{C}: NotFound names the key"),
        other => panic!("{C}: delete of a deleted key answered {other:?}, want NotFound"),
    }
    match store.delete("/del/never", Some(b.mod_revision)).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "{C}: delete with a precondition of a missing key answered {other:?}, want NotFound"
        ),
    }

    match store.delete("/del/b", Some(b.mod_revision)).await {
        Err(Error::Conflict {
            key,
            expected,
            current,
        }) => {
            assert_eq!(key, "/del/b", "{C}: Conflict names the key");
            assert_eq!(
                expected, b.mod_revision,
                "{C}: Conflict carries the expected revision"
            );
            assert_eq!(
                current.as_deref(),
                Some(&b2),
                "{C}: Conflict carries the current value"
            );
        }
        other => panic!("{C}: delete with a stale revision answered {other:?}, want Conflict"),
    }
    assert_eq!(
        store.get("/del/b").await.expect(C),
        Some(b2.clone()),
        "{C}: a failed delete removed the key"
    );

    let gone_b = store
        .delete("/del/b", Some(b2.mod_revision))
        .await
        .expect(C);
    assert_eq!(
        gone_b.value,
        val("b2"),
        "{C}: conditional delete returns the last value"
    );
    assert!(
        gone_b.mod_revision > gone.mod_revision,
        "{C}: deletes get increasing revisions"
    );
    assert_eq!(
        store.get("/del/b").await.expect(C),
        None,
        "{C}: get after conditional delete"
    );
}

/// A key created again after a delete is a new key with a new create_revision.
pub async fn check_recreate_after_delete<S: Store>(store: &S) {
    const C: &str = "check_recreate_after_delete";
    let first = store.create("/re/a", val("1")).await.expect(C);
    let gone = store.delete("/re/a", None).await.expect(C);
    let again = store.create("/re/a", val("2")).await.expect(C);
    assert!(
        again.create_revision > gone.mod_revision,
        "{C}: re-created key has a new create_revision ({} <= deletion {})",
        again.create_revision,
        gone.mod_revision
    );
    assert_eq!(
        again.create_revision, again.mod_revision,
        "{C}: re-created key's create_revision equals its mod_revision"
    );
    // A stale precondition from the first incarnation must not match the second.
    match store.update("/re/a", val("3"), first.mod_revision).await {
        Err(Error::Conflict { .. }) => {}
        other => panic!(
            "{C}: update with the first incarnation's revision answered {other:?}, want Conflict"
        ),
    }
}

/// Listing by prefix: prefix boundaries, byte order, and the empty prefix.
pub async fn check_list_prefix<S: Store>(store: &S) {
    const C: &str = "check_list_prefix";
    for key in [
        "/a/b",
        "/a/b/1",
        "/a/b/2",
        "/a/b/10",
        "/a/bc/1",
        "/a/bc",
        "/a/c/1",
        "/a/b0",
        "/b/b/1",
        "/a/b/\u{e9}",
        "/a/b/Z",
    ] {
        store.create(key, val(key)).await.expect(C);
    }
    let r = store.list("/a/b/", ListOptions::default()).await.expect(C);
    assert_eq!(
        keys_of(&r.kvs),
        vec!["/a/b/1", "/a/b/10", "/a/b/2", "/a/b/Z", "/a/b/\u{e9}"],
        "{C}: list /a/b/ returns exactly the keys under it, in byte order"
    );
    assert!(!r.more, "{C}: an unlimited list has no more");
    for kv in &r.kvs {
        assert_eq!(kv.value, val(&kv.key), "{C}: listed value of {}", kv.key);
        assert!(kv.mod_revision > 0, "{C}: listed mod_revision");
    }
    assert!(
        r.revision >= r.kvs.iter().map(|kv| kv.mod_revision).max().unwrap_or(0),
        "{C}: list revision below the listed keys' revisions"
    );

    let r = store.list("/a/b", ListOptions::default()).await.expect(C);
    assert_eq!(
        keys_of(&r.kvs),
        vec![
            "/a/b",
            "/a/b/1",
            "/a/b/10",
            "/a/b/2",
            "/a/b/Z",
            "/a/b/\u{e9}",
            "/a/b0",
            "/a/bc",
            "/a/bc/1"
        ],
        "{C}: list of the raw prefix /a/b is a byte prefix match"
    );

    let all = store.list("", ListOptions::default()).await.expect(C);
    assert_eq!(
        all.kvs.len(),
        11,
        "{C}: list of the empty prefix returns every key"
    );
    let mut sorted = keys_of(&all.kvs);
    sorted.sort();
    assert_eq!(
        keys_of(&all.kvs),
        sorted,
        "{C}: list is in ascending key order"
    );

    let none = store.list("/zzz/", ListOptions::default()).await.expect(C);
    assert!(none.kvs.is_empty(), "{C}: list of an empty prefix");
    assert!(!none.more, "{C}: empty list has no more");
}

/// Pagination with `limit` and `start_after`, at the current and at a fixed revision.
pub async fn check_list_pagination<S: Store>(store: &S) {
    const C: &str = "check_list_pagination";
    let mut want = Vec::new();
    for i in 0..25 {
        let key = format!("/pg/items/{i:03}");
        store.create(&key, val(&key)).await.expect(C);
        want.push(key);
    }
    store.create("/pg/itemsX", val("outside")).await.expect(C);

    let pages = |revision: Option<Revision>| {
        let want = &want;
        async move {
            let mut got = Vec::new();
            let mut start_after = None;
            let mut served_at = None;
            let mut pages = 0;
            loop {
                let r = store
                    .list(
                        "/pg/items/",
                        ListOptions {
                            revision: revision.or(served_at),
                            start_after: start_after.clone(),
                            limit: 10,
                        },
                    )
                    .await
                    .expect(C);
                pages += 1;
                assert!(r.kvs.len() <= 10, "{C}: page longer than the limit");
                if let Some(at) = served_at {
                    assert_eq!(
                        r.revision, at,
                        "{C}: later pages served at the asked revision"
                    );
                }
                served_at = Some(r.revision);
                if let Some(remaining) = r.remaining {
                    let expect = want.len() - got.len() - r.kvs.len();
                    assert_eq!(
                        remaining as usize, expect,
                        "{C}: remaining after page {pages}"
                    );
                }
                got.extend(r.kvs.iter().map(|kv| kv.key.clone()));
                if !r.more {
                    break;
                }
                assert_eq!(r.kvs.len(), 10, "{C}: a page with more is full");
                start_after = r.kvs.last().map(|kv| kv.key.clone());
                assert!(pages < 10, "{C}: pagination does not end");
            }
            assert_eq!(&got, want, "{C}: pages put together");
            assert_eq!(pages, 3, "{C}: 25 keys in pages of 10");
        }
    };
    pages(None).await;

    // Pages of a list at a fixed revision do not see later writes.
    let at = store
        .list("/pg/items/", ListOptions::default())
        .await
        .expect(C)
        .revision;
    store.create("/pg/items/0000", val("later")).await.expect(C);
    store.delete("/pg/items/024", None).await.expect(C);
    pages(Some(at)).await;

    // Exactly `limit` keys: no more.
    let r = store
        .list(
            "/pg/items/",
            ListOptions {
                revision: Some(at),
                start_after: Some("/pg/items/014".into()),
                limit: 10,
            },
        )
        .await
        .expect(C);
    assert_eq!(r.kvs.len(), 10, "{C}: last full page");
    assert!(!r.more, "{C}: a page ending at the last key has no more");
}

/// Reading at an older revision after later updates, deletes and creates; future
/// revisions are refused.
pub async fn check_list_at_revision<S: Store>(store: &S) {
    const C: &str = "check_list_at_revision";
    let a = store.create("/hist/a", val("a1")).await.expect(C);
    let b = store.create("/hist/b", val("b1")).await.expect(C);
    let c = store.create("/hist/c", val("c1")).await.expect(C);
    let at = c.mod_revision;

    let a2 = store
        .update("/hist/a", val("a2"), a.mod_revision)
        .await
        .expect(C);
    store.delete("/hist/b", None).await.expect(C);
    let d = store.create("/hist/d", val("d1")).await.expect(C);
    let c_gone = store.delete("/hist/c", None).await.expect(C);
    let c2 = store.create("/hist/c", val("c2")).await.expect(C);

    let old = store
        .list(
            "/hist/",
            ListOptions {
                revision: Some(at),
                ..Default::default()
            },
        )
        .await
        .expect(C);
    assert_eq!(old.revision, at, "{C}: list served at the asked revision");
    assert_eq!(
        old.kvs,
        vec![a.clone(), b.clone(), c.clone()],
        "{C}: state at revision {at}"
    );

    let mid = store
        .list(
            "/hist/",
            ListOptions {
                revision: Some(d.mod_revision),
                ..Default::default()
            },
        )
        .await
        .expect(C);
    assert_eq!(
        mid.kvs,
        vec![a2.clone(), c.clone(), d.clone()],
        "{C}: state at revision {}",
        d.mod_revision
    );

    let between = store
        .list(
            "/hist/",
            ListOptions {
                revision: Some(c_gone.mod_revision),
                ..Default::default()
            },
        )
        .await
        .expect(C);
    assert_eq!(
        between.kvs,
        vec![a2.clone(), d.clone()],
        "{C}: state just after /hist/c was deleted"
    );

    let now = store.list("/hist/", ListOptions::default()).await.expect(C);
    assert_eq!(
        now.kvs,
        vec![a2.clone(), c2.clone(), d.clone()],
        "{C}: current state"
    );
    assert!(
        now.revision >= c2.mod_revision,
        "{C}: current list revision"
    );

    let paged = store
        .list(
            "/hist/",
            ListOptions {
                revision: Some(at),
                start_after: Some("/hist/a".into()),
                limit: 1,
            },
        )
        .await
        .expect(C);
    assert_eq!(paged.kvs, vec![b.clone()], "{C}: a page of an old revision");
    assert!(
        paged.more,
        "{C}: more keys after the page at the old revision"
    );

    let current = store.current_revision().await.expect(C);
    let future = current + 1_000_000;
    match store
        .list(
            "/hist/",
            ListOptions {
                revision: Some(future),
                ..Default::default()
            },
        )
        .await
    {
        Err(Error::FutureRevision { requested, .. }) => {
            assert_eq!(
                requested, future,
                "{C}: FutureRevision carries the asked revision"
            )
        }
        other => panic!("{C}: list at a future revision answered {other:?}, want FutureRevision"),
    }
}

/// Counting keys under a prefix.
pub async fn check_count<S: Store>(store: &S) {
    const C: &str = "check_count";
    assert_eq!(store.count("/cnt/").await.expect(C), 0, "{C}: empty prefix");
    for i in 0..7 {
        store
            .create(&format!("/cnt/x/{i}"), val("v"))
            .await
            .expect(C);
    }
    store.create("/cnt/y/1", val("v")).await.expect(C);
    store.create("/cnt/xx", val("v")).await.expect(C);
    store.delete("/cnt/x/3", None).await.expect(C);
    assert_eq!(
        store.count("/cnt/x/").await.expect(C),
        6,
        "{C}: /cnt/x/ after a delete"
    );
    assert_eq!(store.count("/cnt/").await.expect(C), 8, "{C}: /cnt/");
    assert_eq!(
        store.count("/cnt/x").await.expect(C),
        7,
        "{C}: raw prefix /cnt/x"
    );
    assert_eq!(
        store.count("").await.expect(C),
        8,
        "{C}: empty prefix counts every key"
    );
}

/// The events `write_sample` produces, checked in order.
fn assert_sample_events(events: &[Event], w: &Sample, check: &str) {
    assert_increasing(events, check);
    let kinds: Vec<(EventType, &str)> = events
        .iter()
        .map(|e| (e.event_type, e.kv.key.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventType::Create, "/w/x/a"),
            (EventType::Create, "/w/x/b"),
            (EventType::Update, "/w/x/a"),
            (EventType::Delete, "/w/x/b"),
        ],
        "{check}: event types and keys in order"
    );
    assert_eq!(events[0].kv, w.a1, "{check}: create event kv");
    assert_eq!(events[0].prev, None, "{check}: create event has no prev");
    assert_eq!(events[1].kv, w.b1, "{check}: second create event kv");
    assert_eq!(events[2].kv, w.a2, "{check}: update event kv");
    assert_eq!(
        events[2].prev.as_ref(),
        Some(&w.a1),
        "{check}: update event carries the previous value"
    );
    assert_eq!(
        events[3].revision, w.b_gone.mod_revision,
        "{check}: delete event revision"
    );
    assert_eq!(
        events[3].kv, w.b_gone,
        "{check}: delete event kv is the last value with the deletion revision"
    );
    assert_eq!(
        events[3].prev.as_ref(),
        Some(&w.b1),
        "{check}: delete event carries the previous value"
    );
}

struct Sample {
    a1: KeyValue,
    b1: KeyValue,
    a2: KeyValue,
    b_gone: KeyValue,
}

async fn write_sample<S: Store>(store: &S, check: &str) -> Sample {
    let a1 = store.create("/w/x/a", val("a1")).await.expect(check);
    let b1 = store.create("/w/x/b", val("b1")).await.expect(check);
    let a2 = store
        .update("/w/x/a", val("a2"), a1.mod_revision)
        .await
        .expect(check);
    let b_gone = store.delete("/w/x/b", None).await.expect(check);
    Sample { a1, b1, a2, b_gone }
}

/// A watch from the oldest available revision (0 on a fresh store) replays everything.
pub async fn check_watch_from_start<S: Store>(store: &S) {
    const C: &str = "check_watch_from_start";
    let sample = write_sample(store, C).await;
    let from = store.compacted_revision().await.expect(C);
    assert!(
        from < sample.a1.mod_revision,
        "{C}: a fresh namespace's compacted revision is below its first write"
    );
    let mut w = store.watch("/w/", from).await.expect(C);
    let events = next_events(&mut w, 4, C).await;
    assert_sample_events(&events, &sample, C);
}

/// A watch from the current revision sees only later writes.
pub async fn check_watch_from_now<S: Store>(store: &S) {
    const C: &str = "check_watch_from_now";
    store.create("/w/x/before", val("old")).await.expect(C);
    let now = store.current_revision().await.expect(C);
    let mut w = store.watch("/w/", now).await.expect(C);
    let sample = write_sample(store, C).await;
    let events = next_events(&mut w, 4, C).await;
    assert_sample_events(&events, &sample, C);
}

/// A watch from a past revision replays the history after it, then continues live.
pub async fn check_watch_from_past<S: Store>(store: &S) {
    const C: &str = "check_watch_from_past";
    let early = store.create("/w/early", val("e")).await.expect(C);
    let sample = write_sample(store, C).await;
    let mut w = store.watch("/w/x/", early.mod_revision).await.expect(C);
    let events = next_events(&mut w, 4, C).await;
    assert_sample_events(&events, &sample, C);

    // And from the middle of the sample: only what follows it.
    let mut w2 = store.watch("/w/x/", sample.b1.mod_revision).await.expect(C);
    let tail = next_events(&mut w2, 2, C).await;
    assert_eq!(
        tail[0].kv, sample.a2,
        "{C}: first event after the middle revision"
    );
    assert_eq!(
        tail[1].kv, sample.b_gone,
        "{C}: second event after the middle revision"
    );

    // Both watches continue with live events.
    let live = store.create("/w/x/live", val("l")).await.expect(C);
    for stream in [&mut w, &mut w2] {
        let e = next_events(stream, 1, C).await;
        assert_eq!(e[0].kv, live, "{C}: live event after the replayed history");
        assert_eq!(e[0].event_type, EventType::Create, "{C}: live event type");
    }
}

/// A watch of a prefix sees nothing from keys outside it (including longer keys that share
/// the prefix's bytes but not its last `/`).
pub async fn check_watch_prefix_isolation<S: Store>(store: &S) {
    const C: &str = "check_watch_prefix_isolation";
    let now = store.current_revision().await.expect(C);
    let mut w = store.watch("/iso/a/", now).await.expect(C);
    store.create("/iso/ab", val("no")).await.expect(C);
    store.create("/iso/b/1", val("no")).await.expect(C);
    let inside = store.create("/iso/a/1", val("yes")).await.expect(C);
    store.create("/iso/a", val("no")).await.expect(C);
    store.delete("/iso/ab", None).await.expect(C);
    let sentinel = store.create("/iso/a/zz", val("end")).await.expect(C);
    let events = next_events(&mut w, 2, C).await;
    assert_eq!(
        events.iter().map(|e| e.kv.clone()).collect::<Vec<_>>(),
        vec![inside, sentinel],
        "{C}: a watch of /iso/a/ sees only keys under it"
    );
}

/// Watches opened from the past while writers keep writing see every write exactly once,
/// in order: the replay of history joins the live events without a gap or a duplicate,
/// whichever commits land between the two.
pub async fn check_watch_while_writing<S: Store>(store: &S) {
    const C: &str = "check_watch_while_writing";
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 100;
    const TOTAL: usize = WRITERS * PER_WRITER;
    const EVERY: usize = 40;
    let start = store.create("/ww/start", val("s")).await.expect(C);
    let acked = std::sync::Mutex::new(Vec::with_capacity(TOTAL));
    let (progress, mut progress_rx) = tokio::sync::watch::channel(0usize);

    let writers = futures::future::join_all((0..WRITERS).map(|w| {
        let acked = &acked;
        let progress = &progress;
        async move {
            for i in 0..PER_WRITER {
                let kv = store
                    .create(&format!("/ww/k/{w}/{i:04}"), val("v"))
                    .await
                    .unwrap_or_else(|e| panic!("{C}: create {w}/{i}: {e}"));
                let n = {
                    let mut acked = acked.lock().unwrap_or_else(|p| p.into_inner());
                    acked.push((kv.mod_revision, kv.key));
                    acked.len()
                };
                progress.send_replace(n);
            }
        }
    }));
    // Opens a watch from the start each time EVERY more writes were acknowledged, while
    // the writers go on: each opening races with commits in flight.
    let opener = async {
        let mut watches = Vec::new();
        let mut next = EVERY;
        while next < TOTAL {
            let n = *progress_rx.borrow_and_update();
            if n >= next {
                watches.push(store.watch("/ww/k/", start.mod_revision).await.expect(C));
                next += EVERY;
            } else if progress_rx.changed().await.is_err() {
                break;
            }
        }
        watches
    };
    let (_, watches) = futures::join!(writers, opener);
    assert!(!watches.is_empty(), "{C}: no watch was opened");

    let mut acked = acked.into_inner().unwrap_or_else(|p| p.into_inner());
    acked.sort();
    for mut w in watches {
        let events = next_events(&mut w, TOTAL, C).await;
        assert_increasing(&events, C);
        let got: Vec<(Revision, String)> =
            events.into_iter().map(|e| (e.revision, e.kv.key)).collect();
        assert_eq!(got, acked, "{C}: every write exactly once, in order");
    }
}

/// Many tasks writing at once: all acknowledged, revisions unique, a watch sees them all
/// in order.
pub async fn check_concurrent_writers<S: Store>(store: Arc<S>) {
    const C: &str = "check_concurrent_writers";
    const TASKS: usize = 64;
    const WRITES: usize = 50;
    let now = store.current_revision().await.expect(C);
    let mut w = store.watch("/cc/", now).await.expect(C);

    let mut handles = Vec::with_capacity(TASKS);
    for t in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut acked = Vec::with_capacity(WRITES);
            // Each task alternates creates and updates of its own keys, so that both kinds
            // of precondition are checked under contention.
            let mut last: Option<KeyValue> = None;
            for i in 0..WRITES {
                let kv = match (&last, i % 2) {
                    (Some(prev), 1) => store
                        .update(&prev.key, val(&format!("{t}-{i}")), prev.mod_revision)
                        .await
                        .unwrap_or_else(|e| panic!("{C}: update {t}/{i}: {e}")),
                    _ => store
                        .create(&format!("/cc/{t:02}/{i:03}"), val(&format!("{t}-{i}")))
                        .await
                        .unwrap_or_else(|e| panic!("{C}: create {t}/{i}: {e}")),
                };
                acked.push((kv.mod_revision, kv.key.clone(), kv.value.clone()));
                last = Some(kv);
            }
            acked
        }));
    }
    let mut all = Vec::with_capacity(TASKS * WRITES);
    for h in handles {
        let acked = h
            .await
            .unwrap_or_else(|e| panic!("{C}: writer task failed: {e}"));
        for pair in acked.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "{C}: one task's sequential writes got non-increasing revisions"
            );
        }
        all.extend(acked);
    }
    let unique: HashSet<Revision> = all.iter().map(|a| a.0).collect();
    assert_eq!(
        unique.len(),
        all.len(),
        "{C}: every write got its own revision"
    );
    assert!(
        store.current_revision().await.expect(C) >= all.iter().map(|a| a.0).max().unwrap_or(0),
        "{C}: current_revision below an acknowledged write"
    );

    all.sort();
    let events = next_events(&mut w, all.len(), C).await;
    assert_increasing(&events, C);
    let seen: Vec<(Revision, String, Bytes)> = events
        .into_iter()
        .map(|e| (e.revision, e.kv.key, e.kv.value))
        .collect();
    assert_eq!(
        seen, all,
        "{C}: the watch saw every acknowledged write, in order"
    );

    let mut latest: BTreeMap<String, (Revision, Bytes)> = BTreeMap::new();
    for (rev, key, value) in &all {
        latest.insert(key.clone(), (*rev, value.clone()));
    }
    let list = store.list("/cc/", ListOptions::default()).await.expect(C);
    assert_eq!(
        list.kvs.len(),
        latest.len(),
        "{C}: number of keys after the writers"
    );
    for kv in &list.kvs {
        assert_eq!(
            latest.get(&kv.key),
            Some(&(kv.mod_revision, kv.value.clone())),
            "{C}: final state of {}",
            kv.key
        );
    }
}

/// Compaction: history before the compacted revision is gone for lists and watches, the
/// latest version of every key stays, and history after it is intact.
pub async fn check_compaction<S: Store>(store: &S) {
    const C: &str = "check_compaction";
    let a1 = store.create("/cmp/a", val("a1")).await.expect(C);
    let b1 = store.create("/cmp/b", val("b1")).await.expect(C);
    let gone1 = store.create("/cmp/gone", val("g")).await.expect(C);
    let old = gone1.mod_revision;
    let a2 = store
        .update("/cmp/a", val("a2"), a1.mod_revision)
        .await
        .expect(C);
    store.delete("/cmp/gone", None).await.expect(C);
    let keep = store.create("/cmp/c", val("c1")).await.expect(C);
    let at = keep.mod_revision;
    let a3 = store
        .update("/cmp/a", val("a3"), a2.mod_revision)
        .await
        .expect(C);
    let b_gone = store.delete("/cmp/b", None).await.expect(C);

    store.compact(at).await.expect(C);
    let compacted = store.compacted_revision().await.expect(C);
    assert!(
        compacted >= at,
        "{C}: compacted_revision {compacted} below the compaction at {at}"
    );

    match store
        .list(
            "/cmp/",
            ListOptions {
                revision: Some(old),
                ..Default::default()
            },
        )
        .await
    {
        Err(Error::Compacted { requested, .. }) => {
            assert_eq!(requested, old, "{C}: Compacted carries the asked revision")
        }
        other => panic!("{C}: list at a compacted revision answered {other:?}, want Compacted"),
    }
    match store.watch("/cmp/", old).await {
        Err(Error::Compacted { .. }) => {}
        Err(other) => {
            panic!("{C}: watch from a compacted revision failed with {other}, want Compacted")
        }
        Ok(mut stream) => {
            // A backend may report compaction as the first item of the stream instead.
            match tokio::time::timeout(WATCH_WAIT, stream.next()).await {
                Ok(Some(Err(Error::Compacted { .. }))) => {}
                other => panic!(
                    "{C}: watch from a compacted revision delivered {other:?}, want Compacted"
                ),
            }
        }
    }

    // The state at the compaction revision and later is intact.
    let at_rev = store
        .list(
            "/cmp/",
            ListOptions {
                revision: Some(at),
                ..Default::default()
            },
        )
        .await
        .expect(C);
    assert_eq!(
        at_rev.kvs,
        vec![a2.clone(), b1.clone(), keep.clone()],
        "{C}: state at the compacted revision"
    );
    let now = store.list("/cmp/", ListOptions::default()).await.expect(C);
    assert_eq!(
        now.kvs,
        vec![a3.clone(), keep.clone()],
        "{C}: current state after compaction"
    );
    assert_eq!(
        store.get("/cmp/a").await.expect(C),
        Some(a3.clone()),
        "{C}: get after compaction"
    );

    // A watch from the compacted revision replays what followed it, with prev values.
    let mut w = store.watch("/cmp/", at).await.expect(C);
    let events = next_events(&mut w, 2, C).await;
    assert_eq!(
        events[0].kv, a3,
        "{C}: update after the compaction revision"
    );
    assert_eq!(
        events[0].prev.as_ref(),
        Some(&a2),
        "{C}: prev value of an event after compaction"
    );
    assert_eq!(
        events[1].kv, b_gone,
        "{C}: delete after the compaction revision"
    );
    assert_eq!(
        events[1].prev.as_ref(),
        Some(&b1),
        "{C}: prev value of a delete after compaction"
    );

    // Writes go on, and their preconditions use the kept revisions.
    let a4 = store
        .update("/cmp/a", val("a4"), a3.mod_revision)
        .await
        .expect(C);
    assert!(
        a4.mod_revision > b_gone.mod_revision,
        "{C}: revisions go on increasing"
    );
    let e = next_events(&mut w, 1, C).await;
    assert_eq!(e[0].kv, a4, "{C}: live event after compaction");
    let g = store.create("/cmp/gone", val("again")).await.expect(C);
    assert_eq!(
        g.create_revision, g.mod_revision,
        "{C}: re-created after compaction"
    );
}
