//! The etcd v3 backend of [`bosun_store::Store`], for a control plane spread over several
//! machines (`--datastore-endpoint http://a:2379,http://b:2379`).
//!
//! Every key the API server uses is stored in etcd under a fixed prefix (so that several
//! clusters or tests can share one etcd); keys handed back to callers have it stripped.
//! The store's model is etcd's own, so each operation is one etcd request:
//! - create: `txn(if create_revision(k) == 0 then put)`;
//! - update: `txn(if mod_revision(k) == expected then put else get)`;
//! - delete: `txn(if mod_revision(k) == expected then delete else get)`;
//! - revisions come from the response headers, watches are etcd watches with `prev_kv`.
//!
//! Works with etcd 3.4 (Debian bookworm's `etcd-server`) and later: only the KV, watch and
//! compaction RPCs of the v3 API are used, all of which 3.4 has.
//!
//! Building needs `protoc` and the tests need `/usr/bin/etcd`: `scripts/install-etcd.sh`
//! installs both. [`local::LocalEtcd`] runs a throw-away member for tests and benchmarks.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_store::{
    prefix_end, Error, KeyValue, ListOptions, ListResult, Result, Revision, Store, WatchStream,
};
use bytes::Bytes;
use etcd_client::proto::{PbKeyValue, PbTxnOpResponse};
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions,
    KvClient, PutOptions, Txn, TxnOp, TxnResponse,
};

pub mod local;
mod watch;

/// How long establishing a connection to one endpoint may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one unary request may take. Watches are streams and have no such limit; a lost
/// quorum otherwise hangs requests forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 pings on open streams, so that a watch on a dead member fails instead of hanging.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer accepted: gRPC's 4 MiB default is less than an unpaginated list of a
/// few thousand objects or a watch batch replaying many revisions; etcd itself sends up to
/// 2 GiB.
pub(crate) const MAX_MESSAGE: usize = i32::MAX as usize;

/// A [`Store`] kept in an etcd v3 cluster. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    /// Prepended to every key.
    pub(crate) prefix: String,
    /// The endpoints, comma-separated, for error messages.
    pub(crate) endpoints: String,
    /// The highest compact revision seen so far (by this store's compactions, failed reads
    /// or cancelled watches); compactions only ever move it forward.
    pub(crate) compacted: AtomicI64,
}

/// How an etcd error maps onto the store's model.
pub(crate) enum Failure {
    Compacted,
    FutureRevision,
    TooLarge,
    Other,
}

pub(crate) fn classify(err: &etcd_client::Error) -> Failure {
    let text = match err {
        etcd_client::Error::GRpcStatus(status) => status.message().to_string(),
        _ => return Failure::Other,
    };
    if text.contains("required revision has been compacted") {
        Failure::Compacted
    } else if text.contains("required revision is a future revision") {
        Failure::FutureRevision
    } else if text.contains("request is too large") || text.contains("larger than max") {
        // The first from etcd (over --max-request-bytes), the second from its gRPC server
        // (over that plus gRPC's overhead allowance).
        Failure::TooLarge
    } else {
        Failure::Other
    }
}

impl EtcdStore {
    /// Connects to an etcd cluster (one `http://host:port` URL per member) and checks that
    /// it answers. Every key is stored under `prefix` + key.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<EtcdStore> {
        let endpoints: Vec<String> = endpoints
            .iter()
            .flat_map(|e| e.split(','))
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(Error::InvalidArgument(
                "no etcd endpoint given (expected http://host:port[,more])".to_string(),
            ));
        }
        for e in &endpoints {
            if !e.starts_with("http://") {
                return Err(Error::InvalidArgument(format!(
                    "etcd endpoint {e:?} is not an http:// URL (TLS to etcd is not supported yet)"
                )));
            }
        }
        let joined = endpoints.join(",");
        let options = ConnectOptions::new()
            .with_connect_timeout(DIAL_TIMEOUT)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT);
        let client =
            match tokio::time::timeout(REQUEST_TIMEOUT, Client::connect(&endpoints, Some(options)))
                .await
            {
                Ok(Ok(client)) => client,
                Ok(Err(e)) => return Err(Error::Backend(format!("etcd connect to {joined}: {e}"))),
                Err(_) => {
                    return Err(Error::Backend(format!(
                        "etcd connect to {joined}: no answer within {REQUEST_TIMEOUT:?}"
                    )))
                }
            };
        let store = EtcdStore {
            inner: Arc::new(Inner {
                client,
                prefix: prefix.to_string(),
                endpoints: joined,
                compacted: AtomicI64::new(0),
            }),
        };
        // The client connects lazily; a read now turns a wrong address into an error here
        // rather than at the first request of the API server.
        store.header_revision("connect").await?;
        Ok(store)
    }

    /// The prefix every key is stored under.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The endpoints this store talks to, comma-separated.
    pub fn endpoints(&self) -> &str {
        &self.inner.endpoints
    }

    /// Deletes every key under this store's prefix (test and benchmark clean-up). Returns
    /// how many were deleted.
    pub async fn delete_all(&self) -> Result<i64> {
        if self.inner.prefix.is_empty() {
            // Without a prefix this would wipe the whole etcd, other users' keys included.
            return Err(Error::InvalidArgument(
                "delete-all needs a store prefix".to_string(),
            ));
        }
        let start = range_start(self.inner.prefix.as_bytes().to_vec());
        let end = prefix_end(&self.inner.prefix);
        let mut kv = self.inner.kv();
        let resp = self
            .inner
            .call(
                "delete-all",
                &self.inner.prefix,
                kv.delete(start, Some(DeleteOptions::new().with_range(end))),
            )
            .await?;
        Ok(resp.deleted())
    }

    /// The current revision, read from the header of a cheap range.
    async fn header_revision(&self, op: &str) -> Result<Revision> {
        let mut kv = self.inner.kv();
        let key = range_start(self.inner.prefix.as_bytes().to_vec());
        let resp = self
            .inner
            .call(
                op,
                &self.inner.prefix,
                kv.get(key, Some(GetOptions::new().with_count_only().with_limit(1))),
            )
            .await?;
        header_rev(resp.header(), op, &self.inner.prefix)
    }

    /// Whether a read at `revision` is still possible (`Ok(false)` when compacted).
    async fn readable_at(&self, revision: Revision) -> Result<bool> {
        let mut kv = self.inner.kv();
        let key = range_start(self.inner.prefix.as_bytes().to_vec());
        let opts = GetOptions::new()
            .with_count_only()
            .with_limit(1)
            .with_revision(revision);
        match self.inner.timed(kv.get(key, Some(opts))).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) => match classify(&e) {
                Failure::Compacted => Ok(false),
                // A revision beyond the current one is not compacted.
                Failure::FutureRevision => Ok(true),
                _ => Err(self
                    .inner
                    .backend("probe compaction", &self.inner.prefix, &e)),
            },
            Err(elapsed) => {
                Err(self
                    .inner
                    .timeout("probe compaction", &self.inner.prefix, elapsed))
            }
        }
    }

    /// etcd has no call that tells its compact revision, but a read below it fails: search
    /// for the lowest readable revision between the last one known and the current one.
    async fn probe_compacted(&self) -> Result<Revision> {
        let known = self.inner.compacted.load(Ordering::Acquire);
        let lo = known.max(1);
        if self.readable_at(lo).await? {
            return Ok(known);
        }
        // Invariant: lo is not readable, hi is (the current revision always is).
        let mut lo = lo;
        let mut hi = self.header_revision("probe compaction").await?;
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.readable_at(mid).await? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        self.inner.saw_compacted(hi);
        Ok(self.inner.compacted.load(Ordering::Acquire))
    }

    fn full_key(&self, key: &str) -> Result<Vec<u8>> {
        if self.inner.prefix.is_empty() && key.is_empty() {
            return Err(Error::InvalidArgument("empty key".to_string()));
        }
        let mut full = Vec::with_capacity(self.inner.prefix.len() + key.len());
        full.extend_from_slice(self.inner.prefix.as_bytes());
        full.extend_from_slice(key.as_bytes());
        Ok(full)
    }

    /// Runs a transaction and checks that it came back with a header.
    async fn txn(&self, op: &str, key: &str, txn: Txn) -> Result<(TxnResponse, Revision)> {
        let mut kv = self.inner.kv();
        let resp = match self.inner.timed(kv.txn(txn)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                return Err(match classify(&e) {
                    Failure::TooLarge => Error::InvalidArgument(format!(
                        "value of key {key:?} is too large for etcd ({op}): {e}"
                    )),
                    _ => self.inner.backend(op, key, &e),
                })
            }
            Err(elapsed) => return Err(self.inner.timeout(op, key, elapsed)),
        };
        let rev = header_rev(resp.header(), op, key)?;
        Ok((resp, rev))
    }

    /// Maps a failed read at `requested` onto the store's errors.
    async fn read_error(
        &self,
        op: &str,
        key: &str,
        requested: Revision,
        err: etcd_client::Error,
    ) -> Error {
        match classify(&err) {
            Failure::Compacted => {
                let compacted = match self.probe_compacted().await {
                    Ok(c) => c,
                    Err(_) => self.inner.compacted.load(Ordering::Acquire),
                };
                Error::Compacted {
                    requested,
                    compacted,
                }
            }
            Failure::FutureRevision => {
                let current = self.header_revision(op).await.unwrap_or(0);
                Error::FutureRevision { requested, current }
            }
            _ => self.inner.backend(op, key, &err),
        }
    }
}

impl Inner {
    /// Bounds a unary request in time.
    async fn timed<T>(
        &self,
        fut: impl std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> std::result::Result<std::result::Result<T, etcd_client::Error>, tokio::time::error::Elapsed>
    {
        tokio::time::timeout(REQUEST_TIMEOUT, fut).await
    }

    /// A unary request whose every failure is a backend error.
    async fn call<T>(
        &self,
        op: &str,
        key: &str,
        fut: impl std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        match self.timed(fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.backend(op, key, &e)),
            Err(elapsed) => Err(self.timeout(op, key, elapsed)),
        }
    }

    pub(crate) fn backend(&self, op: &str, key: &str, err: &etcd_client::Error) -> Error {
        Error::Backend(format!(
            "etcd {op} of key {key:?} at {}: {err}",
            self.endpoints
        ))
    }

    fn timeout(&self, op: &str, key: &str, _: tokio::time::error::Elapsed) -> Error {
        Error::Backend(format!(
            "etcd {op} of key {key:?} at {}: no answer within {REQUEST_TIMEOUT:?}",
            self.endpoints
        ))
    }

    fn kv(&self) -> KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE)
    }

    pub(crate) fn saw_compacted(&self, revision: Revision) {
        self.compacted.fetch_max(revision, Ordering::AcqRel);
    }

    /// Converts an etcd key-value, stripping the prefix.
    pub(crate) fn convert(&self, kv: PbKeyValue) -> Result<KeyValue> {
        let key = self.strip(&kv.key)?;
        Ok(KeyValue {
            key,
            value: Bytes::from(kv.value),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
        })
    }

    pub(crate) fn strip(&self, raw: &[u8]) -> Result<String> {
        let rest = raw.strip_prefix(self.prefix.as_bytes()).ok_or_else(|| {
            Error::Backend(format!(
                "etcd at {} returned key {:?} outside prefix {:?}",
                self.endpoints,
                String::from_utf8_lossy(raw),
                self.prefix
            ))
        })?;
        String::from_utf8(rest.to_vec()).map_err(|_| {
            Error::Backend(format!(
                "etcd at {} holds key {:?} that is not UTF-8",
                self.endpoints,
                String::from_utf8_lossy(raw)
            ))
        })
    }
}

/// etcd refuses an empty range start; `"\0"` is the smallest non-empty key.
fn range_start(key: Vec<u8>) -> Vec<u8> {
    if key.is_empty() {
        vec![0]
    } else {
        key
    }
}

fn header_rev(
    header: Option<&etcd_client::ResponseHeader>,
    op: &str,
    key: &str,
) -> Result<Revision> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| Error::Backend(format!("etcd {op} of key {key:?}: response without header")))
}

/// The single response of the branch a transaction took.
fn single_response(resp: TxnResponse, op: &str, key: &str) -> Result<PbTxnOpResponse> {
    resp.0
        .responses
        .into_iter()
        .next()
        .and_then(|r| r.response)
        .ok_or_else(|| Error::Backend(format!("etcd {op} of key {key:?}: empty txn response")))
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let full = self.full_key(key)?;
        let mut kv = self.inner.kv();
        let resp = self.inner.call("get", key, kv.get(full, None)).await?;
        match resp.0.kvs.into_iter().next() {
            Some(found) => Ok(Some(self.inner.convert(found)?)),
            None => Ok(None),
        }
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let full_prefix = format!("{}{prefix}", self.inner.prefix);
        let end = prefix_end(&full_prefix);
        let start = match &opts.start_after {
            Some(after) => {
                if !after.starts_with(prefix) {
                    return Err(Error::InvalidArgument(format!(
                        "start key {after:?} does not start with prefix {prefix:?}"
                    )));
                }
                let mut k = self.full_key(after)?;
                k.push(0);
                k
            }
            None => range_start(full_prefix.into_bytes()),
        };
        let mut get = GetOptions::new().with_range(end);
        if opts.limit > 0 {
            get = get.with_limit(i64::try_from(opts.limit).unwrap_or(i64::MAX));
        }
        let requested = match opts.revision {
            Some(r) if r < 0 => {
                return Err(Error::InvalidArgument(format!(
                    "negative revision {r} in list of prefix {prefix:?}"
                )))
            }
            Some(r) if r > 0 => {
                get = get.with_revision(r);
                Some(r)
            }
            _ => None,
        };
        let mut kv = self.inner.kv();
        let resp = match self.inner.timed(kv.get(start, Some(get))).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                return Err(self
                    .read_error("list", prefix, requested.unwrap_or(0), e)
                    .await)
            }
            Err(elapsed) => return Err(self.inner.timeout("list", prefix, elapsed)),
        };
        let revision = match requested {
            Some(r) => r,
            None => header_rev(resp.header(), "list", prefix)?,
        };
        let more = resp.more();
        let count = resp.count();
        let kvs = resp
            .0
            .kvs
            .into_iter()
            .map(|kv| self.inner.convert(kv))
            .collect::<Result<Vec<_>>>()?;
        let returned = i64::try_from(kvs.len()).unwrap_or(i64::MAX);
        Ok(ListResult {
            remaining: Some((count - returned).max(0)),
            kvs,
            revision,
            more,
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let full_prefix = format!("{}{prefix}", self.inner.prefix);
        let end = prefix_end(&full_prefix);
        let mut kv = self.inner.kv();
        let resp = self
            .inner
            .call(
                "count",
                prefix,
                kv.get(
                    range_start(full_prefix.into_bytes()),
                    Some(GetOptions::new().with_range(end).with_count_only()),
                ),
            )
            .await?;
        Ok(resp.count())
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let full = self.full_key(key)?;
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value.to_vec(), None)]);
        let (resp, rev) = self.txn("create", key, txn).await?;
        if !resp.succeeded() {
            return Err(Error::AlreadyExists {
                key: key.to_string(),
            });
        }
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: rev,
            mod_revision: rev,
        })
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let full = self.full_key(key)?;
        // The second compare keeps an `expected` of 0 from creating an absent key.
        let txn = Txn::new()
            .when([
                Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
                Compare::create_revision(full.clone(), CompareOp::Greater, 0),
            ])
            .and_then([TxnOp::put(
                full.clone(),
                value.to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let (resp, rev) = self.txn("update", key, txn).await?;
        let succeeded = resp.succeeded();
        match single_response(resp, "update", key)? {
            PbTxnOpResponse::ResponsePut(put) if succeeded => {
                let create_revision = put.prev_kv.map(|p| p.create_revision).unwrap_or(rev);
                Ok(KeyValue {
                    key: key.to_string(),
                    value,
                    create_revision,
                    mod_revision: rev,
                })
            }
            PbTxnOpResponse::ResponseRange(range) if !succeeded => {
                match range.kvs.into_iter().next() {
                    None => Err(Error::NotFound {
                        key: key.to_string(),
                    }),
                    Some(current) => Err(Error::Conflict {
                        key: key.to_string(),
                        expected,
                        current: Some(Box::new(self.inner.convert(current)?)),
                    }),
                }
            }
            _ => Err(Error::Backend(format!(
                "etcd update of key {key:?}: unexpected txn response"
            ))),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let full = self.full_key(key)?;
        let del = TxnOp::delete(full.clone(), Some(DeleteOptions::new().with_prev_key()));
        let txn = match expected {
            Some(expected) => Txn::new()
                .when([
                    Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
                    Compare::create_revision(full.clone(), CompareOp::Greater, 0),
                ])
                .and_then([del])
                .or_else([TxnOp::get(full, None)]),
            None => Txn::new().and_then([del]),
        };
        let (resp, rev) = self.txn("delete", key, txn).await?;
        let succeeded = resp.succeeded();
        match single_response(resp, "delete", key)? {
            PbTxnOpResponse::ResponseDeleteRange(deleted) if succeeded => {
                match deleted.prev_kvs.into_iter().next() {
                    None => Err(Error::NotFound {
                        key: key.to_string(),
                    }),
                    Some(prev) => {
                        let mut kv = self.inner.convert(prev)?;
                        kv.mod_revision = rev;
                        Ok(kv)
                    }
                }
            }
            PbTxnOpResponse::ResponseRange(range) if !succeeded => {
                match range.kvs.into_iter().next() {
                    None => Err(Error::NotFound {
                        key: key.to_string(),
                    }),
                    Some(current) => Err(Error::Conflict {
                        key: key.to_string(),
                        expected: expected.unwrap_or(0),
                        current: Some(Box::new(self.inner.convert(current)?)),
                    }),
                }
            }
            _ => Err(Error::Backend(format!(
                "etcd delete of key {key:?}: unexpected txn response"
            ))),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        if after < 0 {
            return Err(Error::InvalidArgument(format!(
                "negative revision {after} in watch of prefix {prefix:?}"
            )));
        }
        // etcd accepts a watch below its compact revision and cancels it a moment later; a
        // read at the same revision fails at once, which lets `watch` itself report it.
        if !self.readable_at(after + 1).await? {
            let compacted = self.probe_compacted().await?;
            return Err(Error::Compacted {
                requested: after,
                compacted,
            });
        }
        watch::start(self.inner.clone(), prefix, after).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        if revision <= 0 {
            return Ok(());
        }
        let mut kv = self.inner.kv();
        // Physical: the call returns once the old revisions are really gone, so that what
        // callers observe right after does not depend on etcd's background work.
        let opts = CompactionOptions::new().with_physical();
        match self.inner.timed(kv.compact(revision, Some(opts))).await {
            Ok(Ok(_)) => {
                self.inner.saw_compacted(revision);
                Ok(())
            }
            Ok(Err(e)) => match classify(&e) {
                // Already compacted at or past it: nothing left to forget.
                Failure::Compacted => Ok(()),
                Failure::FutureRevision => {
                    let current = self.header_revision("compact").await.unwrap_or(0);
                    Err(Error::FutureRevision {
                        requested: revision,
                        current,
                    })
                }
                _ => Err(self.inner.backend("compact", &self.inner.prefix, &e)),
            },
            Err(elapsed) => Err(self.inner.timeout("compact", &self.inner.prefix, elapsed)),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.header_revision("current revision").await
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.probe_compacted().await
    }
}

/// Creates `n` keys with ~2 KB values through `concurrency` concurrent callers under a fresh
/// prefix, deletes them afterwards and returns the rate of creates per second.
pub async fn bench_creates(endpoints: &[String], n: usize, concurrency: usize) -> Result<f64> {
    let prefix = format!("/bosun-bench/{}-{}/", std::process::id(), unique_suffix());
    let store = EtcdStore::connect(endpoints, &prefix).await?;
    let concurrency = concurrency.clamp(1, n.max(1));
    let value = Bytes::from(vec![b'x'; 2048]);
    let next = Arc::new(AtomicI64::new(0));
    let total = i64::try_from(n).unwrap_or(i64::MAX);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let store = store.clone();
        let value = value.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), Error>(());
                }
                store
                    .create(&format!("/registry/pods/bench/pod-{i:08}"), value.clone())
                    .await?;
            }
        }));
    }
    let mut first_error = None;
    for task in tasks {
        let outcome = match task.await {
            Ok(r) => r,
            Err(e) => Err(Error::Backend(format!("benchmark task failed: {e}"))),
        };
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cleanup = store.delete_all().await;
    if let Some(e) = first_error {
        return Err(e);
    }
    cleanup?;
    Ok(n as f64 / elapsed.max(f64::MIN_POSITIVE))
}

/// A suffix that differs between calls in one process and between processes started at
/// different times.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicI64 = AtomicI64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_start_never_empty() {
        assert_eq!(range_start(Vec::new()), vec![0]);
        assert_eq!(range_start(b"/a".to_vec()), b"/a".to_vec());
    }

    #[test]
    fn unique_suffixes_differ() {
        assert_ne!(unique_suffix(), unique_suffix());
    }
}
