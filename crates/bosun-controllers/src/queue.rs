//! A deduplicating work queue keyed by object, as client-go's rate-limited workqueue: a key
//! queued while it is being processed is handed out again only after `done`, so no two
//! workers ever sync the same object at once, and a burst of events for one object
//! collapses into one sync.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Base and cap of the per-key exponential retry delay (client-go's
/// `DefaultControllerRateLimiter`: 5 ms doubling up to 1000 s).
const BASE_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1000);

struct State<T> {
    queue: VecDeque<T>,
    /// Keys waiting to be processed (in `queue`, or re-added while processing).
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
    shut_down: bool,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    notify: Notify,
}

/// A cloneable handle to one queue.
pub struct WorkQueue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + Sync + 'static> Default for WorkQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Eq + Hash + Send + Sync + 'static> WorkQueue<T> {
    pub fn new() -> WorkQueue<T> {
        WorkQueue {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    failures: HashMap::new(),
                    shut_down: false,
                }),
                notify: Notify::new(),
            }),
        }
    }

    /// Queues `item` unless it is already waiting.
    pub fn add(&self, item: T) {
        Self::add_inner(&self.inner, item);
    }

    fn add_inner(inner: &Inner<T>, item: T) {
        let mut s = inner.state.lock();
        if s.shut_down || s.dirty.contains(&item) {
            return;
        }
        s.dirty.insert(item.clone());
        if s.processing.contains(&item) {
            return;
        }
        s.queue.push_back(item);
        drop(s);
        inner.notify.notify_one();
    }

    /// Queues `item` after `delay`; the queue being dropped meanwhile cancels it.
    pub fn add_after(&self, item: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(item);
        }
        let weak: Weak<Inner<T>> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(inner) = weak.upgrade() {
                Self::add_inner(&inner, item);
            }
        });
    }

    /// Queues `item` after its exponential back-off delay, which grows with each call
    /// until `forget`.
    pub fn add_rate_limited(&self, item: T) {
        let n = {
            let mut s = self.inner.state.lock();
            let n = s.failures.entry(item.clone()).or_insert(0);
            *n += 1;
            *n
        };
        self.add_after(item, backoff(n));
    }

    /// Clears the back-off of `item` after a successful sync.
    pub fn forget(&self, item: &T) {
        self.inner.state.lock().failures.remove(item);
    }

    /// How many times `item` has been re-queued with back-off since its last `forget`.
    pub fn retries(&self, item: &T) -> u32 {
        self.inner
            .state
            .lock()
            .failures
            .get(item)
            .copied()
            .unwrap_or(0)
    }

    /// The next key to process, or `None` once the queue is shut down. The caller must
    /// call `done` with it afterwards.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.inner.state.lock();
                if let Some(item) = s.queue.pop_front() {
                    s.dirty.remove(&item);
                    s.processing.insert(item.clone());
                    // Another waiter may be able to take the next item.
                    if !s.queue.is_empty() {
                        self.inner.notify.notify_one();
                    }
                    return Some(item);
                }
                if s.shut_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks `item` processed; if it was re-added meanwhile it is queued again now.
    pub fn done(&self, item: &T) {
        let mut s = self.inner.state.lock();
        s.processing.remove(item);
        if s.dirty.contains(item) {
            s.queue.push_back(item.clone());
            drop(s);
            self.inner.notify.notify_one();
        }
    }

    /// Number of keys waiting.
    pub fn len(&self) -> usize {
        self.inner.state.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops handing out keys; waiting `get`s return `None`.
    pub fn shut_down(&self) {
        self.inner.state.lock().shut_down = true;
        self.inner.notify.notify_waiters();
    }
}

fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(40);
    BASE_DELAY
        .checked_mul(1u32.checked_shl(exp).unwrap_or(u32::MAX))
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn duplicates_collapse() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn readded_while_processing_comes_back_after_done() {
        let q = WorkQueue::new();
        q.add("a");
        let a = q.get().await;
        assert_eq!(a, Some("a"));
        q.add("a");
        // Not handed out while still processing.
        assert!(q.is_empty());
        q.done(&"a");
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, Some("a"));
        q.done(&"a");
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn shut_down_wakes_waiters() {
        let q: WorkQueue<u32> = WorkQueue::new();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.get().await });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.ok().flatten(), None);
    }

    #[tokio::test]
    async fn waiter_gets_item_added_later() {
        let q: WorkQueue<u32> = WorkQueue::new();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.get().await });
        tokio::task::yield_now().await;
        q.add(7);
        assert_eq!(waiter.await.ok().flatten(), Some(7));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(4), Duration::from_millis(40));
        assert_eq!(backoff(100), MAX_DELAY);
    }

    #[test]
    fn retries_count_until_forget() {
        let q = WorkQueue::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        let Ok(rt) = rt else { return };
        rt.block_on(async {
            q.add_rate_limited("x");
            q.add_rate_limited("x");
            assert_eq!(q.retries(&"x"), 2);
            q.forget(&"x");
            assert_eq!(q.retries(&"x"), 0);
        });
    }
}
