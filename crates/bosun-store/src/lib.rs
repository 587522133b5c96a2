//! A revisioned key-value store: the single source of truth behind the API server.
//!
//! The model is etcd's v3 model, so that an etcd cluster is a drop-in backend:
//! - one global revision counter, strictly increasing across all keys; every write
//!   (create, update, delete) gets a new revision, and that revision is the object's
//!   `resourceVersion`;
//! - each key has a `create_revision` and a `mod_revision`; updates and deletes are
//!   compare-and-swap on the `mod_revision`;
//! - watches deliver every change to a prefix after a given revision, in revision order,
//!   with the previous value;
//! - compaction forgets history older than a revision; a watch or list at an older
//!   revision fails with [`Error::Compacted`].
//!
//! Backends: [`sqlite::SqliteStore`] (embedded, the default) and `bosun-store-etcd`.
//! Every backend runs the suite in [`conformance`].

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

pub mod conformance;
pub mod sqlite;

/// A store revision. Revision 0 means "no revision"; the first write is revision 1
/// or higher.
pub type Revision = i64;

/// One key with its value and revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this key (etcd's `create_revision`).
    pub create_revision: Revision,
    /// Revision of the last write to this key (etcd's `mod_revision`).
    pub mod_revision: Revision,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The key did not exist before this revision.
    Create,
    /// The key existed and got a new value.
    Update,
    /// The key was removed.
    Delete,
}

/// One change delivered by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event_type: EventType,
    /// The revision of the change.
    pub revision: Revision,
    /// For create and update: the new key-value. For delete: the key with the value it
    /// had before deletion and `mod_revision` = the deletion revision.
    pub kv: KeyValue,
    /// The value before this change (update and delete), `None` for create.
    pub prev: Option<KeyValue>,
}

/// Options of a range read.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Read the state as of this revision; `None` = the current revision.
    pub revision: Option<Revision>,
    /// Return keys strictly greater than this one (pagination: the last key of the
    /// previous page). Must start with the prefix when set.
    pub start_after: Option<String>,
    /// At most this many items; 0 = no limit.
    pub limit: usize,
}

/// The answer of a range read.
#[derive(Clone, Debug, Default)]
pub struct ListResult {
    /// Keys in ascending byte order.
    pub kvs: Vec<KeyValue>,
    /// The revision the read was served at (the current revision when none was asked).
    pub revision: Revision,
    /// More keys follow the last one returned.
    pub more: bool,
    /// How many keys remain after the returned page (when the backend knows it cheaply).
    pub remaining: Option<i64>,
}

/// A stream of watch events; it ends only when the store shuts down or the watch is
/// dropped. An `Err` item ends the stream (e.g. [`Error::Compacted`] when the watcher
/// fell too far behind).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Vec<Event>>> + Send>>;

/// Errors of store operations. Each says which key it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },
    #[error("key {key:?} not found")]
    NotFound { key: String },
    /// A compare-and-swap failed: the key's current state is returned so that callers can
    /// retry without another read (`None` when the key no longer exists).
    #[error("key {key:?} was modified: expected mod revision {expected}, found {}", current.as_ref().map(|c| c.mod_revision).unwrap_or(0))]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<Box<KeyValue>>,
    },
    #[error("revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is in the future (current is {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("store is closed")]
    Closed,
    #[error("store backend: {0}")]
    Backend(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The revisioned key-value store. All methods are safe to call concurrently; a write is
/// acknowledged only once it is durable.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys starting with `prefix`, in ascending order, at a revision.
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult>;

    /// How many keys start with `prefix` now.
    async fn count(&self, prefix: &str) -> Result<i64>;

    /// Create `key` if it does not exist ([`Error::AlreadyExists`] otherwise).
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue>;

    /// Replace the value of `key` if its `mod_revision` is `expected`
    /// ([`Error::Conflict`] otherwise, [`Error::NotFound`] if absent).
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue>;

    /// Delete `key`, if `expected` is given only when its `mod_revision` matches. Returns
    /// the deleted key-value with `mod_revision` set to the deletion revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// Every change to keys under `prefix` with revision > `after`, in revision order;
    /// changes made in one revision arrive in one batch. `after` older than the
    /// compacted revision fails with [`Error::Compacted`].
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Forget history at revisions below `revision` (the latest version of every key is
    /// always kept).
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The revision of the most recent write (0 for an empty store).
    async fn current_revision(&self) -> Result<Revision>;

    /// The oldest revision that can still be read or watched from.
    async fn compacted_revision(&self) -> Result<Revision>;
}

/// The smallest key greater than every key starting with `prefix` (etcd's range end).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
