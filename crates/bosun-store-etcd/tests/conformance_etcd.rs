//! The etcd backend against a real etcd member started by the test: the shared store
//! conformance suite, focused checks of the etcd mapping, and two stores ("two API servers")
//! sharing one etcd.
//!
//! A missing etcd binary fails the tests (never skips them): run scripts/install-etcd.sh.

use std::time::Duration;

use bosun_store::{Error, EventType, ListOptions, Store};
use bosun_store_etcd::local::LocalEtcd;
use bosun_store_etcd::EtcdStore;
use bytes::Bytes;
use futures::StreamExt;

async fn etcd() -> LocalEtcd {
    match LocalEtcd::start().await {
        Ok(etcd) => etcd,
        Err(e) => panic!("cannot start etcd for the tests: {e}"),
    }
}

/// A prefix no other test (or earlier run) uses.
fn unique_prefix(name: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("/t/{name}-{}-{n}", std::process::id())
}

async fn store(etcd: &LocalEtcd, prefix: &str) -> EtcdStore {
    EtcdStore::connect(&etcd.endpoints(), prefix)
        .await
        .expect("connect to the test etcd")
}

async fn next_batch(w: &mut bosun_store::WatchStream) -> Vec<bosun_store::Event> {
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Ok(batch))) => batch,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within 10s"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let etcd = etcd().await;
    let endpoints = etcd.endpoints();
    bosun_store::conformance::run_all(|| {
        let endpoints = endpoints.clone();
        async move {
            EtcdStore::connect(&endpoints, &unique_prefix("conformance"))
                .await
                .expect("connect to the test etcd")
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_maps_onto_etcd() {
    let etcd = etcd().await;
    let s = store(&etcd, &unique_prefix("crud")).await;

    assert!(s.get("/registry/pods/default/web").await.unwrap().is_none());
    let created = s
        .create("/registry/pods/default/web", Bytes::from_static(b"v1"))
        .await
        .unwrap();
    assert_eq!(created.key, "/registry/pods/default/web");
    assert_eq!(created.create_revision, created.mod_revision);
    assert_eq!(s.current_revision().await.unwrap(), created.mod_revision);

    let got = s.get("/registry/pods/default/web").await.unwrap().unwrap();
    assert_eq!(got, created);

    match s
        .create("/registry/pods/default/web", Bytes::from_static(b"again"))
        .await
    {
        Err(Error::AlreadyExists { key }) => assert_eq!(key, "/registry/pods/default/web"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    let updated = s
        .update(
            "/registry/pods/default/web",
            Bytes::from_static(b"v2"),
            created.mod_revision,
        )
        .await
        .unwrap();
    assert_eq!(updated.create_revision, created.create_revision);
    assert!(updated.mod_revision > created.mod_revision);
    assert_eq!(updated.value, Bytes::from_static(b"v2"));

    // A stale revision: the conflict carries the current state.
    match s
        .update(
            "/registry/pods/default/web",
            Bytes::from_static(b"v3"),
            created.mod_revision,
        )
        .await
    {
        Err(Error::Conflict {
            expected, current, ..
        }) => {
            assert_eq!(expected, created.mod_revision);
            assert_eq!(current.as_deref(), Some(&updated));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    match s
        .update("/registry/pods/default/absent", Bytes::new(), 0)
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected NotFound for an absent key with revision 0, got {other:?}"),
    }
    assert!(s
        .get("/registry/pods/default/absent")
        .await
        .unwrap()
        .is_none());

    match s
        .delete("/registry/pods/default/web", Some(created.mod_revision))
        .await
    {
        Err(Error::Conflict { current, .. }) => assert_eq!(current.as_deref(), Some(&updated)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let deleted = s
        .delete("/registry/pods/default/web", Some(updated.mod_revision))
        .await
        .unwrap();
    assert_eq!(deleted.value, Bytes::from_static(b"v2"));
    assert_eq!(deleted.create_revision, created.create_revision);
    assert!(deleted.mod_revision > updated.mod_revision);
    assert_eq!(s.current_revision().await.unwrap(), deleted.mod_revision);
    match s.delete("/registry/pods/default/web", None).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    match s.delete("/registry/pods/default/web", Some(1)).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_counts_and_reads_old_revisions() {
    let etcd = etcd().await;
    let s = store(&etcd, &unique_prefix("list")).await;
    let mut revs = Vec::new();
    for i in 0..5 {
        let kv = s
            .create(
                &format!("/registry/pods/ns/p{i}"),
                Bytes::from(format!("{i}")),
            )
            .await
            .unwrap();
        revs.push(kv.mod_revision);
    }
    // Neighbours that must not show up: a prefix sibling and another resource.
    s.create("/registry/pods/ns2/x", Bytes::new())
        .await
        .unwrap();
    s.create("/registry/pods/nsx", Bytes::new()).await.unwrap();
    assert_eq!(s.count("/registry/pods/ns/").await.unwrap(), 5);

    let first = s
        .list(
            "/registry/pods/ns/",
            ListOptions {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let keys: Vec<_> = first.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/registry/pods/ns/p0", "/registry/pods/ns/p1"]);
    assert!(first.more);
    assert_eq!(first.remaining, Some(3));
    let current = s.current_revision().await.unwrap();
    assert_eq!(first.revision, current);

    let second = s
        .list(
            "/registry/pods/ns/",
            ListOptions {
                limit: 2,
                start_after: Some("/registry/pods/ns/p1".to_string()),
                revision: Some(first.revision),
            },
        )
        .await
        .unwrap();
    let keys: Vec<_> = second.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/registry/pods/ns/p2", "/registry/pods/ns/p3"]);
    assert_eq!(second.remaining, Some(1));
    assert_eq!(second.revision, first.revision);

    // The state as of the third create.
    let old = s
        .list(
            "/registry/pods/ns/",
            ListOptions {
                revision: Some(revs[2]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(old.kvs.len(), 3);
    assert!(!old.more);
    assert_eq!(old.revision, revs[2]);

    match s
        .list(
            "/registry/pods/ns/",
            ListOptions {
                start_after: Some("/elsewhere".to_string()),
                ..Default::default()
            },
        )
        .await
    {
        Err(Error::InvalidArgument(_)) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    match s
        .list(
            "/registry/pods/ns/",
            ListOptions {
                revision: Some(current + 1000),
                ..Default::default()
            },
        )
        .await
    {
        Err(Error::FutureRevision {
            requested,
            current: now,
        }) => {
            assert_eq!(requested, current + 1000);
            assert_eq!(now, current);
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_batches_with_prev_and_reports_compaction() {
    let etcd = etcd().await;
    let s = store(&etcd, &unique_prefix("watch")).await;
    let start = s.current_revision().await.unwrap();
    let a = s
        .create("/registry/cm/ns/a", Bytes::from_static(b"1"))
        .await
        .unwrap();
    let mut w = s.watch("/registry/cm/", start).await.unwrap();
    let a2 = s
        .update(
            "/registry/cm/ns/a",
            Bytes::from_static(b"2"),
            a.mod_revision,
        )
        .await
        .unwrap();
    s.create("/registry/other/x", Bytes::new()).await.unwrap();
    let gone = s.delete("/registry/cm/ns/a", None).await.unwrap();

    // Replayed history, then live events, each revision in its own batch.
    let b = next_batch(&mut w).await;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].event_type, EventType::Create);
    assert_eq!(b[0].kv, a);
    assert_eq!(b[0].prev, None);
    let b = next_batch(&mut w).await;
    assert_eq!(b[0].event_type, EventType::Update);
    assert_eq!(b[0].kv, a2);
    assert_eq!(b[0].prev.as_ref(), Some(&a));
    let b = next_batch(&mut w).await;
    assert_eq!(b[0].event_type, EventType::Delete);
    assert_eq!(b[0].revision, gone.mod_revision);
    assert_eq!(b[0].kv, gone);
    assert_eq!(b[0].prev.as_ref(), Some(&a2));

    // Compaction: a watch from before it fails at once with the compact revision.
    let now = s.current_revision().await.unwrap();
    s.compact(now).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), now);
    match s.watch("/registry/cm/", start).await {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, start);
            assert_eq!(compacted, now);
        }
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(_) => panic!("expected Compacted, got a watch"),
    }
    match s
        .list(
            "/registry/cm/",
            ListOptions {
                revision: Some(start),
                ..Default::default()
            },
        )
        .await
    {
        Err(Error::Compacted { compacted, .. }) => assert_eq!(compacted, now),
        other => panic!("expected Compacted, got {other:?}"),
    }
    // Compacting again at or below is a no-op; beyond the current revision is refused.
    s.compact(now).await.unwrap();
    match s.compact(now + 100).await {
        Err(Error::FutureRevision { .. }) => {}
        other => panic!("expected FutureRevision, got {other:?}"),
    }
    // Watching from the compacted revision itself still works.
    let _still_open = s.watch("/registry/cm/", now).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_seen_by_another_store_is_found() {
    let etcd = etcd().await;
    let prefix = unique_prefix("probe");
    let a = store(&etcd, &prefix).await;
    let b = store(&etcd, &prefix).await;
    for i in 0..10 {
        a.create(&format!("/k{i}"), Bytes::new()).await.unwrap();
    }
    let target = a.current_revision().await.unwrap() - 3;
    a.compact(target).await.unwrap();
    // b never compacted anything: it has to find etcd's compact revision by itself.
    assert_eq!(b.compacted_revision().await.unwrap(), target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_etcd() {
    let etcd = etcd().await;
    let prefix = unique_prefix("shared");
    let one = store(&etcd, &prefix).await;
    let two = store(&etcd, &prefix).await;
    let foreign = store(&etcd, &unique_prefix("foreign")).await;

    let start = two.current_revision().await.unwrap();
    let mut watch = two.watch("/registry/", start).await.unwrap();

    let created = one
        .create(
            "/registry/pods/default/web",
            Bytes::from_static(b"from one"),
        )
        .await
        .unwrap();
    assert_eq!(
        two.get("/registry/pods/default/web").await.unwrap(),
        Some(created.clone())
    );
    // Another prefix shares the etcd but none of the keys.
    foreign
        .create("/registry/pods/default/web", Bytes::from_static(b"foreign"))
        .await
        .unwrap();
    assert_eq!(two.count("/registry/").await.unwrap(), 1);

    // An update through one store with the revision read through the other.
    let seen = two
        .get("/registry/pods/default/web")
        .await
        .unwrap()
        .unwrap();
    let updated = one
        .update(
            "/registry/pods/default/web",
            Bytes::from_static(b"v2"),
            seen.mod_revision,
        )
        .await
        .unwrap();
    match two
        .update(
            "/registry/pods/default/web",
            Bytes::from_static(b"late"),
            seen.mod_revision,
        )
        .await
    {
        Err(Error::Conflict { current, .. }) => assert_eq!(current.as_deref(), Some(&updated)),
        other => panic!("expected Conflict, got {other:?}"),
    }

    let b = next_batch(&mut watch).await;
    assert_eq!(b[0].kv, created);
    let b = next_batch(&mut watch).await;
    assert_eq!(b[0].kv, updated);
    assert_eq!(b[0].event_type, EventType::Update);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_is_a_backend_error_naming_it() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    match EtcdStore::connect(std::slice::from_ref(&endpoint), "/x/").await {
        Err(Error::Backend(msg)) => assert!(msg.contains(&endpoint), "{msg}"),
        Err(e) => panic!("expected a backend error, got {e}"),
        Ok(_) => panic!("connected to nothing"),
    }
    match EtcdStore::connect(&["127.0.0.1:2379".to_string()], "/x/").await {
        Err(Error::InvalidArgument(_)) => {}
        Err(e) => panic!("expected InvalidArgument, got {e}"),
        Ok(_) => panic!("accepted an endpoint without scheme"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_creates_reports_a_rate_and_cleans_up() {
    let etcd = etcd().await;
    let rate = bosun_store_etcd::bench_creates(&etcd.endpoints(), 200, 8)
        .await
        .unwrap();
    assert!(rate > 0.0);
    let all = store(&etcd, "/bosun-bench/").await;
    assert_eq!(all.count("").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_watch_replays_beyond_grpc_default_message_size() {
    let etcd = etcd().await;
    let s = store(&etcd, &unique_prefix("big")).await;
    let start = s.current_revision().await.unwrap();
    // 24 values of 256 KiB: 6 MiB, above gRPC's 4 MiB default message limit.
    let value = Bytes::from(vec![b'v'; 256 * 1024]);
    for i in 0..24 {
        s.create(&format!("/registry/secrets/ns/s{i:02}"), value.clone())
            .await
            .unwrap();
    }
    let all = s
        .list("/registry/secrets/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(all.kvs.len(), 24);
    assert!(all.kvs.iter().all(|kv| kv.value.len() == value.len()));

    let mut w = s.watch("/registry/secrets/", start).await.unwrap();
    let mut seen = 0;
    while seen < 24 {
        seen += next_batch(&mut w).await.len();
    }
    assert_eq!(seen, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_survives_an_etcd_restart_and_requests_fail_cleanly_while_down() {
    let mut etcd = etcd().await;
    let s = store(&etcd, &unique_prefix("restart")).await;
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch("/registry/", start).await.unwrap();
    let before = s
        .create("/registry/a", Bytes::from_static(b"1"))
        .await
        .unwrap();
    assert_eq!(next_batch(&mut w).await[0].kv, before);

    etcd.stop();
    match s.get("/registry/a").await {
        Err(Error::Backend(msg)) => assert!(msg.contains(etcd.endpoint()), "{msg}"),
        other => panic!("expected a backend error while etcd is down, got {other:?}"),
    }
    etcd.restart().await.unwrap();

    // Same data, same revisions; the watch re-opens after the last revision it delivered
    // and neither loses nor repeats events.
    let after = s
        .create("/registry/b", Bytes::from_static(b"2"))
        .await
        .unwrap();
    let batch = next_batch(&mut w).await;
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].kv, after);
    assert_eq!(s.get("/registry/a").await.unwrap(), Some(before));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_over_etcds_request_limit_are_invalid_arguments() {
    let etcd = etcd().await;
    let s = store(&etcd, &unique_prefix("limit")).await;
    // etcd's default --max-request-bytes is 1.5 MiB; its gRPC server refuses beyond 2 MiB.
    for size in [1800 * 1024, 3 << 20] {
        match s
            .create(
                "/registry/configmaps/ns/huge",
                Bytes::from(vec![b'x'; size]),
            )
            .await
        {
            Err(Error::InvalidArgument(msg)) => {
                assert!(msg.contains("/registry/configmaps/ns/huge"), "{msg}")
            }
            other => panic!("expected InvalidArgument for {size} bytes, got {other:?}"),
        }
    }
    assert!(s
        .get("/registry/configmaps/ns/huge")
        .await
        .unwrap()
        .is_none());
}
