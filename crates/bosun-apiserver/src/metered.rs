//! A [`Store`] wrapper that records the latency of every store operation in the server's
//! metrics (`bosun_store_operation_duration_seconds`).

use std::sync::Arc;
use std::time::Instant;

use bosun_store::{KeyValue, ListOptions, ListResult, Result, Revision, Store, WatchStream};
use bytes::Bytes;

use crate::metrics::Metrics;

pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        MeteredStore { inner, metrics }
    }
}

macro_rules! timed {
    ($self:ident, $op:literal, $call:expr) => {{
        let start = Instant::now();
        let r = $call.await;
        $self.metrics.observe_store($op, start.elapsed());
        r
    }};
}

#[async_trait::async_trait]
impl Store for MeteredStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        timed!(self, "get", self.inner.get(key))
    }
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        timed!(self, "list", self.inner.list(prefix, opts))
    }
    async fn count(&self, prefix: &str) -> Result<i64> {
        timed!(self, "count", self.inner.count(prefix))
    }
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        timed!(self, "create", self.inner.create(key, value))
    }
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        timed!(self, "update", self.inner.update(key, value, expected))
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        timed!(self, "delete", self.inner.delete(key, expected))
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.inner.watch(prefix, after).await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        timed!(self, "compact", self.inner.compact(revision))
    }
    async fn current_revision(&self) -> Result<Revision> {
        timed!(self, "current_revision", self.inner.current_revision())
    }
    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner.compacted_revision().await
    }
}
