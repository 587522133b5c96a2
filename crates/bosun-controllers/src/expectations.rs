//! Expectations, as upstream's `ControllerExpectations`: a controller that just created
//! or deleted pods records how many events it expects to see, and does not act on that
//! object again until its informer has observed them (or a timeout passed), so it never
//! acts twice on its own writes that the cache does not show yet.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use kube::Resource;
use parking_lot::Mutex;

use crate::informer::{key_of, Change};

/// Upstream's `ExpectationsTimeout`: after this, a controller acts again even if some
/// expected events were never seen (a lost watch event must not wedge it forever).
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Record {
    adds: i64,
    /// Keys of the objects whose deletion is expected, so that a pod seen first with a
    /// deletionTimestamp and later gone is counted once.
    deletes: HashSet<String>,
    set_at: Instant,
}

/// Expectations per controller key (`namespace/name` of the owner).
#[derive(Debug, Default)]
pub struct Expectations {
    records: Mutex<HashMap<String, Record>>,
}

impl Expectations {
    pub fn new() -> Expectations {
        Expectations::default()
    }

    /// Whether the owner `key` may act: nothing pending, or the record expired.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.records.lock().get(key) {
            None => true,
            Some(r) => {
                (r.adds <= 0 && r.deletes.is_empty()) || r.set_at.elapsed() > EXPECTATIONS_TIMEOUT
            }
        }
    }

    /// Records that `adds` creations are about to happen.
    pub fn expect_creations(&self, key: &str, adds: usize) {
        self.records.lock().insert(
            key.to_string(),
            Record {
                adds: adds as i64,
                deletes: HashSet::new(),
                set_at: Instant::now(),
            },
        );
    }

    /// Records that the objects `keys` are about to be deleted.
    pub fn expect_deletions(&self, key: &str, keys: impl IntoIterator<Item = String>) {
        self.records.lock().insert(
            key.to_string(),
            Record {
                adds: 0,
                deletes: keys.into_iter().collect(),
                set_at: Instant::now(),
            },
        );
    }

    /// One expected creation was seen (or will never happen).
    pub fn creation_observed(&self, key: &str) {
        if let Some(r) = self.records.lock().get_mut(key) {
            r.adds -= 1;
        }
    }

    /// The deletion of `obj_key` was seen (or will never happen).
    pub fn deletion_observed(&self, key: &str, obj_key: &str) {
        if let Some(r) = self.records.lock().get_mut(key) {
            r.deletes.remove(obj_key);
        }
    }

    /// Creations still expected.
    pub fn pending_creations(&self, key: &str) -> i64 {
        self.records.lock().get(key).map(|r| r.adds).unwrap_or(0)
    }

    /// Forgets the owner `key` (it was deleted).
    pub fn forget(&self, key: &str) {
        self.records.lock().remove(key);
    }

    /// The work-queue key of a change to an owner, forgetting the owner's expectations
    /// when it was deleted or replaced by a new object of the same name (a new uid).
    pub fn owner_changed<K: Resource>(&self, ch: Change<'_, K>) -> String {
        match ch {
            Change::Added(o) => key_of(o.as_ref()),
            Change::Updated { old, new } => {
                if old.meta().uid != new.meta().uid {
                    self.forget(&key_of(old.as_ref()));
                }
                key_of(new.as_ref())
            }
            Change::Deleted(o) => {
                let key = key_of(o.as_ref());
                self.forget(&key);
                key
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_block_until_observed() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 2);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }

    #[test]
    fn deletions_count_each_object_once() {
        let e = Expectations::new();
        e.expect_deletions("ns/rs", ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed("ns/rs", "ns/a");
        e.deletion_observed("ns/rs", "ns/a");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/other");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
    }

    #[test]
    fn forget_clears() {
        let e = Expectations::new();
        e.expect_creations("k", 3);
        e.forget("k");
        assert!(e.satisfied("k"));
        assert_eq!(e.pending_creations("k"), 0);
    }
}
