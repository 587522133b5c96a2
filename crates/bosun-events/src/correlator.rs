//! client-go's `EventCorrelator` (tools/record/events_cache.go), with its defaults:
//! - **aggregation**: when one source records more than 10 events about one object with the
//!   same type and reason but different messages within 10 minutes, the rest become one
//!   event "(combined from similar events): <latest message>" whose count grows;
//! - **counting**: an event equal to an earlier one (same source, object, reason and
//!   message) is not created again: the earlier one's `count` and `lastTimestamp` are
//!   patched, which is what `kubectl describe` shows as "(x5 over 3m)";
//! - **spam filter**: a source may send a burst of 25 events about one object, then one
//!   every 5 minutes.
//!
//! The correlator is pure (the caller passes the time), so the sink decides how to write.

use std::num::NonZeroUsize;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use lru::LruCache;
use serde_json::json;

/// client-go's `maxLruCacheEntries`.
const CACHE_ENTRIES: usize = 4096;
/// Distinct messages of similar events before they are aggregated.
const AGGREGATE_MAX_EVENTS: usize = 10;
/// Seconds after the last similar event before a new one starts a fresh group.
const AGGREGATE_INTERVAL_SECONDS: i64 = 600;
/// Events a source may send about one object at once.
const SPAM_BURST: f64 = 25.0;
/// The refill rate after the burst: one event every 5 minutes.
const SPAM_QPS: f64 = 1.0 / 300.0;

/// What to do with an event after correlation.
#[derive(Debug, Clone, PartialEq)]
pub enum Correlated {
    /// Over the source's budget for this object: drop it.
    Skip,
    /// A new event: create it.
    Create(Event),
    /// Seen before: patch the existing event (named in `event`) with `patch`, a strategic
    /// merge patch of count, lastTimestamp and message; if it is gone, create `event`.
    Patch {
        event: Event,
        patch: serde_json::Value,
    },
}

struct AggregateRecord {
    messages: Vec<String>,
    last: Timestamp,
}

#[derive(Clone)]
struct EventLog {
    count: i32,
    first_timestamp: Option<Time>,
    name: String,
    resource_version: Option<String>,
}

struct Bucket {
    tokens: f64,
    last: Timestamp,
}

/// Aggregation, counting and spam filtering of one recorder's events.
pub struct Correlator {
    aggregates: LruCache<String, AggregateRecord>,
    logs: LruCache<String, EventLog>,
    spam: LruCache<String, Bucket>,
}

impl Default for Correlator {
    fn default() -> Self {
        Correlator::new()
    }
}

impl Correlator {
    pub fn new() -> Correlator {
        let n = NonZeroUsize::new(CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        Correlator {
            aggregates: LruCache::new(n),
            logs: LruCache::new(n),
            spam: LruCache::new(n),
        }
    }

    /// Correlates `ev` (count 1, fresh name) recorded at `now`.
    pub fn correlate(&mut self, ev: Event, now: Timestamp) -> Correlated {
        let (ev, key) = self.aggregate(ev, now);
        let (ev, patch) = self.observe(ev, key);
        if !self.allow(&ev, now) {
            return Correlated::Skip;
        }
        match patch {
            Some(patch) => Correlated::Patch { event: ev, patch },
            None => Correlated::Create(ev),
        }
    }

    /// Records what the server answered for an event (its name, resourceVersion and count),
    /// so the next equal event patches it.
    pub fn update_state(&mut self, ev: &Event) {
        self.logs.put(
            event_key(ev),
            EventLog {
                count: ev.count.unwrap_or(1),
                first_timestamp: ev.first_timestamp.clone(),
                name: ev.metadata.name.clone().unwrap_or_default(),
                resource_version: ev.metadata.resource_version.clone(),
            },
        );
    }

    /// client-go's `EventAggregate`: the event to record and its cache key.
    fn aggregate(&mut self, ev: Event, now: Timestamp) -> (Event, String) {
        let full_key = event_key(&ev);
        let agg_key = aggregate_key(&ev);
        let message = ev.message.clone().unwrap_or_default();
        let fresh = match self.aggregates.get(&agg_key) {
            Some(r) => now.as_second() - r.last.as_second() > AGGREGATE_INTERVAL_SECONDS,
            None => true,
        };
        if fresh {
            self.aggregates.put(
                agg_key.clone(),
                AggregateRecord {
                    messages: Vec::new(),
                    last: now,
                },
            );
        }
        let Some(record) = self.aggregates.get_mut(&agg_key) else {
            return (ev, full_key);
        };
        if !record.messages.contains(&message) {
            record.messages.push(message.clone());
        }
        record.last = now;
        if record.messages.len() < AGGREGATE_MAX_EVENTS {
            return (ev, full_key);
        }
        // Do not grow the set past the limit (client-go pops any one of them).
        record.messages.pop();
        let involved_name = ev.involved_object.name.clone().unwrap_or_default();
        let aggregate = Event {
            metadata: ObjectMeta {
                name: Some(format!("{involved_name}.{:x}", now.as_nanosecond())),
                namespace: ev.metadata.namespace.clone(),
                ..Default::default()
            },
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            involved_object: ev.involved_object.clone(),
            message: Some(format!("(combined from similar events): {message}")),
            type_: ev.type_.clone(),
            reason: ev.reason.clone(),
            source: ev.source.clone(),
            ..Default::default()
        };
        (aggregate, agg_key)
    }

    /// client-go's `eventObserve`: a repeat of a logged event becomes a patch of it.
    fn observe(&mut self, mut ev: Event, key: String) -> (Event, Option<serde_json::Value>) {
        let mut patch = None;
        if let Some(last) = self.logs.get(&key).cloned() {
            ev.metadata.name = Some(last.name);
            ev.metadata.resource_version = last.resource_version;
            ev.first_timestamp = last.first_timestamp;
            ev.count = Some(last.count + 1);
            patch = Some(json!({
                "count": ev.count,
                "lastTimestamp": ev.last_timestamp,
                "message": ev.message,
            }));
        }
        self.logs.put(
            key,
            EventLog {
                count: ev.count.unwrap_or(1),
                first_timestamp: ev.first_timestamp.clone(),
                name: ev.metadata.name.clone().unwrap_or_default(),
                resource_version: ev.metadata.resource_version.clone(),
            },
        );
        (ev, patch)
    }

    /// client-go's `EventSourceObjectSpamFilter`: a token bucket per source and object.
    fn allow(&mut self, ev: &Event, now: Timestamp) -> bool {
        let key = spam_key(ev);
        let bucket = self.spam.get_or_insert_mut(key, || Bucket {
            tokens: SPAM_BURST,
            last: now,
        });
        let elapsed = (now.as_millisecond() - bucket.last.as_millisecond()).max(0) as f64 / 1e3;
        bucket.tokens = (bucket.tokens + elapsed * SPAM_QPS).min(SPAM_BURST);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn source_and_object(ev: &Event) -> [&str; 7] {
    let src = ev.source.as_ref();
    let o = &ev.involved_object;
    [
        src.and_then(|s| s.component.as_deref()).unwrap_or(""),
        src.and_then(|s| s.host.as_deref()).unwrap_or(""),
        o.kind.as_deref().unwrap_or(""),
        o.namespace.as_deref().unwrap_or(""),
        o.name.as_deref().unwrap_or(""),
        o.uid.as_deref().unwrap_or(""),
        o.api_version.as_deref().unwrap_or(""),
    ]
}

/// client-go's `getEventKey`: source, object (with field path), type, reason and message.
fn event_key(ev: &Event) -> String {
    let mut parts = source_and_object(ev).to_vec();
    parts.push(ev.involved_object.field_path.as_deref().unwrap_or(""));
    parts.push(ev.type_.as_deref().unwrap_or(""));
    parts.push(ev.reason.as_deref().unwrap_or(""));
    parts.push(ev.message.as_deref().unwrap_or(""));
    parts.join("\u{1f}")
}

/// client-go's `EventAggregatorByReasonFunc` key: all but the message.
fn aggregate_key(ev: &Event) -> String {
    let mut parts = source_and_object(ev).to_vec();
    parts.push(ev.type_.as_deref().unwrap_or(""));
    parts.push(ev.reason.as_deref().unwrap_or(""));
    parts.push(ev.reporting_component.as_deref().unwrap_or(""));
    parts.push(ev.reporting_instance.as_deref().unwrap_or(""));
    parts.join("\u{1f}")
}

/// client-go's `getSpamKey`: source and object.
fn spam_key(ev: &Event) -> String {
    source_and_object(ev).join("\u{1f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EventSource, ObjectReference};

    fn ev(obj: &str, reason: &str, message: &str, now: Timestamp) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{obj}.{:x}", now.as_nanosecond())),
                namespace: Some("default".into()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some("Pod".into()),
                name: Some(obj.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{obj}")),
                api_version: Some("v1".into()),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Warning".into()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some("node-1".into()),
            }),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            ..Default::default()
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    /// What the sink does after a successful write: the server's answer is the event.
    fn written(c: &mut Correlator, r: Correlated) -> Event {
        let e = match r {
            Correlated::Create(e) => e,
            Correlated::Patch { event, .. } => event,
            Correlated::Skip => panic!("skipped"),
        };
        c.update_state(&e);
        e
    }

    #[test]
    fn a_repeated_event_patches_the_first_with_a_growing_count() {
        let mut c = Correlator::new();
        let r = c.correlate(ev("web", "Unhealthy", "probe failed", at(0)), at(0));
        let first = written(&mut c, r);
        let first_name = first.metadata.name.clone();
        match c.correlate(ev("web", "Unhealthy", "probe failed", at(10)), at(10)) {
            Correlated::Patch { event, patch } => {
                assert_eq!(event.metadata.name, first_name);
                assert_eq!(event.count, Some(2));
                assert_eq!(event.first_timestamp, Some(Time(at(0))));
                assert_eq!(patch["count"], 2);
                assert_eq!(patch["message"], "probe failed");
                assert_eq!(
                    patch["lastTimestamp"],
                    serde_json::to_value(Time(at(10))).unwrap()
                );
                c.update_state(&event);
            }
            other => panic!("expected a patch, got {other:?}"),
        }
        match c.correlate(ev("web", "Unhealthy", "probe failed", at(20)), at(20)) {
            Correlated::Patch { event, .. } => assert_eq!(event.count, Some(3)),
            other => panic!("expected a patch, got {other:?}"),
        }
        // Another object, or another message, is a new event.
        assert!(matches!(
            c.correlate(ev("db", "Unhealthy", "probe failed", at(21)), at(21)),
            Correlated::Create(_)
        ));
        assert!(matches!(
            c.correlate(ev("web", "Unhealthy", "timeout", at(22)), at(22)),
            Correlated::Create(_)
        ));
    }

    #[test]
    fn ten_similar_messages_are_combined_into_one_counted_event() {
        let mut c = Correlator::new();
        for i in 0..9 {
            let r = c.correlate(
                ev(
                    "rs",
                    "SuccessfulCreate",
                    &format!("Created pod: p{i}"),
                    at(i),
                ),
                at(i),
            );
            assert!(matches!(r, Correlated::Create(_)), "event {i}: {r:?}");
            written(&mut c, r);
        }
        // The tenth distinct message starts the combined event…
        let combined = match c.correlate(
            ev("rs", "SuccessfulCreate", "Created pod: p9", at(9)),
            at(9),
        ) {
            Correlated::Create(e) => e,
            other => panic!("expected the combined event, got {other:?}"),
        };
        assert_eq!(
            combined.message.as_deref(),
            Some("(combined from similar events): Created pod: p9")
        );
        c.update_state(&combined);
        // …and the next ones count on it.
        match c.correlate(
            ev("rs", "SuccessfulCreate", "Created pod: p10", at(10)),
            at(10),
        ) {
            Correlated::Patch { event, patch } => {
                assert_eq!(event.metadata.name, combined.metadata.name);
                assert_eq!(event.count, Some(2));
                assert_eq!(
                    patch["message"],
                    "(combined from similar events): Created pod: p10"
                );
            }
            other => panic!("expected a patch of the combined event, got {other:?}"),
        }
        // After 10 quiet minutes the group starts afresh.
        assert!(matches!(
            c.correlate(ev("rs", "SuccessfulCreate", "Created pod: q", at(700)), at(700)),
            Correlated::Create(e) if e.message.as_deref() == Some("Created pod: q")
        ));
    }

    #[test]
    fn a_source_gets_25_events_about_an_object_then_one_per_5_minutes() {
        let mut c = Correlator::new();
        let mut passed = 0;
        for i in 0..40 {
            // Distinct reasons, so that aggregation does not hide the filter.
            let r = c.correlate(ev("pod", &format!("R{i}"), "m", at(0)), at(0));
            if r != Correlated::Skip {
                passed += 1;
            }
        }
        assert_eq!(passed, 25);
        assert_eq!(
            c.correlate(ev("pod", "Late", "m", at(100)), at(100)),
            Correlated::Skip
        );
        assert!(c.correlate(ev("pod", "Later", "m", at(301)), at(301)) != Correlated::Skip);
        // Other objects have their own budget.
        assert!(c.correlate(ev("other", "R0", "m", at(0)), at(0)) != Correlated::Skip);
    }
}
