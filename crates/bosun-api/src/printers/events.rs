//! The event table, for core/v1 and events.k8s.io/v1 Events: upstream serves both from the
//! same storage and prints them with the same columns (LAST SEEN, TYPE, REASON, OBJECT,
//! MESSAGE, and wide SUBOBJECT, SOURCE, FIRST SEEN, COUNT, NAME).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::api::events::v1 as events;
use serde_json::{json, Value};

use super::descriptions as d;
use super::format::{micro_time, since, time};
use super::{Column, Printer, NAME};

static COLUMNS: &[Column] = &[
    Column::new("Last Seen", "string", d::EVENT_LAST_TIMESTAMP),
    Column::new("Type", "string", d::EVENT_TYPE),
    Column::new("Reason", "string", d::EVENT_REASON),
    Column::new("Object", "string", d::EVENT_INVOLVED_OBJECT),
    Column::wide("Subobject", "string", d::OBJECT_REFERENCE_FIELD_PATH),
    Column::wide("Source", "string", d::EVENT_SOURCE),
    Column::new("Message", "string", d::EVENT_MESSAGE),
    Column::wide("First Seen", "string", d::EVENT_FIRST_TIMESTAMP),
    Column::wide("Count", "string", d::EVENT_COUNT),
    Column {
        priority: 1,
        ..NAME
    },
];

/// An event in upstream's internal shape, whichever API version it came from.
struct Internal<'a> {
    name: &'a str,
    first_timestamp: Option<DateTime<Utc>>,
    last_timestamp: Option<DateTime<Utc>>,
    event_time: Option<DateTime<Utc>>,
    /// (count, lastObservedTime) of the series, when the event is one.
    series: Option<(i32, Option<DateTime<Utc>>)>,
    count: i32,
    type_: &'a str,
    reason: &'a str,
    involved: Option<&'a ObjectReference>,
    source: Option<&'a EventSource>,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    message: &'a str,
}

fn first_non_empty<'a>(a: Option<&'a str>, b: &'a str) -> &'a str {
    match a {
        Some(a) if !a.is_empty() => a,
        _ => b,
    }
}

impl Internal<'_> {
    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let first_seen = if self.first_timestamp.is_some() {
            since(self.first_timestamp, now)
        } else {
            since(self.event_time, now)
        };
        let mut last_seen = if self.last_timestamp.is_some() {
            since(self.last_timestamp, now)
        } else {
            first_seen.clone()
        };
        let mut count = self.count;
        if let Some((series_count, observed)) = self.series {
            last_seen = since(observed, now);
            count = series_count;
        } else if count == 0 {
            // Singleton events of the events.k8s.io API carry no count.
            count = 1;
        }
        let kind = self
            .involved
            .and_then(|r| r.kind.as_deref())
            .unwrap_or("")
            .to_lowercase();
        let target = match self.involved.and_then(|r| r.name.as_deref()) {
            Some(name) if !name.is_empty() => format!("{kind}/{name}"),
            _ => kind,
        };
        let component = first_non_empty(
            self.source.and_then(|s| s.component.as_deref()),
            self.reporting_controller,
        );
        let instance = first_non_empty(
            self.source.and_then(|s| s.host.as_deref()),
            self.reporting_instance,
        );
        let source = if instance.is_empty() {
            component.to_string()
        } else {
            format!("{component}, {instance}")
        };
        vec![
            json!(last_seen),
            json!(self.type_),
            json!(self.reason),
            json!(target),
            json!(self
                .involved
                .and_then(|r| r.field_path.as_deref())
                .unwrap_or("")),
            json!(source),
            json!(self.message.trim()),
            json!(first_seen),
            json!(count),
            json!(self.name),
        ]
    }
}

impl Printer for Event {
    fn columns() -> &'static [Column] {
        COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        Internal {
            name: self.metadata.name.as_deref().unwrap_or(""),
            first_timestamp: time(self.first_timestamp.as_ref()),
            last_timestamp: time(self.last_timestamp.as_ref()),
            event_time: micro_time(self.event_time.as_ref()),
            series: self.series.as_ref().map(|s| {
                (
                    s.count.unwrap_or(0),
                    micro_time(s.last_observed_time.as_ref()),
                )
            }),
            count: self.count.unwrap_or(0),
            type_: self.type_.as_deref().unwrap_or(""),
            reason: self.reason.as_deref().unwrap_or(""),
            involved: Some(&self.involved_object),
            source: self.source.as_ref(),
            reporting_controller: self.reporting_component.as_deref().unwrap_or(""),
            reporting_instance: self.reporting_instance.as_deref().unwrap_or(""),
            message: self.message.as_deref().unwrap_or(""),
        }
        .row(now)
    }
}

impl Printer for events::Event {
    fn columns() -> &'static [Column] {
        COLUMNS
    }

    /// Maps fields the way upstream's `Convert_v1_Event_To_core_Event` does: regarding is the
    /// involved object, note the message, the deprecated* fields the core ones.
    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        Internal {
            name: self.metadata.name.as_deref().unwrap_or(""),
            first_timestamp: time(self.deprecated_first_timestamp.as_ref()),
            last_timestamp: time(self.deprecated_last_timestamp.as_ref()),
            event_time: micro_time(self.event_time.as_ref()),
            series: self
                .series
                .as_ref()
                .map(|s| (s.count, micro_time(Some(&s.last_observed_time)))),
            count: self.deprecated_count.unwrap_or(0),
            type_: self.type_.as_deref().unwrap_or(""),
            reason: self.reason.as_deref().unwrap_or(""),
            involved: self.regarding.as_ref(),
            source: self.deprecated_source.as_ref(),
            reporting_controller: self.reporting_controller.as_deref().unwrap_or(""),
            reporting_instance: self.reporting_instance.as_deref().unwrap_or(""),
            message: self.note.as_deref().unwrap_or(""),
        }
        .row(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde::de::DeserializeOwned;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn days_ago(n: i64) -> String {
        (now() - Duration::days(n)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn micro_days_ago(n: i64) -> String {
        (now() - Duration::days(n)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    fn obj<T: DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("fixture")
    }

    fn cells(v: &[Value]) -> Vec<Value> {
        v.to_vec()
    }

    #[test]
    fn core_events_match_upstream() {
        // Upstream's TestPrintEvent. The narrow view keeps the non-wide columns.
        let e: Event = obj(
            json!({"metadata": {"name": "event1"}, "source": {"component": "kubelet"},
            "involvedObject": {"kind": "Pod", "name": "Pod Name", "fieldPath": "spec.containers{foo}"},
            "reason": "Event Reason", "message": "Message Data", "firstTimestamp": days_ago(3), "lastTimestamp": days_ago(2),
            "count": 6, "type": "Normal"}),
        );
        let row = e.row(now());
        let narrow: Vec<Value> = COLUMNS
            .iter()
            .zip(&row)
            .filter(|(c, _)| c.priority == 0)
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(
            narrow,
            [
                json!("2d"),
                json!("Normal"),
                json!("Event Reason"),
                json!("pod/Pod Name"),
                json!("Message Data")
            ]
        );

        let wide = |v: Value| -> Vec<Value> { obj::<Event>(v).row(now()) };
        let base = json!({"source": {"component": "kubelet", "host": "Node1"},
            "involvedObject": {"kind": "Deployment", "name": "Deployment Name", "fieldPath": "spec.containers{foo}"},
            "reason": "Event Reason", "message": "Message Data", "type": "Warning"});
        let with = |extra: Value| {
            let mut v = base.clone();
            for (k, val) in extra.as_object().into_iter().flatten() {
                v[k] = val.clone();
            }
            v
        };
        let expect = |last: &str, count: i64, name: &str| {
            vec![
                json!(last),
                json!("Warning"),
                json!("Event Reason"),
                json!("deployment/Deployment Name"),
                json!("spec.containers{foo}"),
                json!("kubelet, Node1"),
                json!("Message Data"),
                json!("3d"),
                json!(count),
                json!(name),
            ]
        };
        assert_eq!(
            wide(with(
                json!({"metadata": {"name": "event2"}, "firstTimestamp": days_ago(3), "lastTimestamp": days_ago(2), "count": 6})
            )),
            expect("2d", 6, "event2")
        );
        assert_eq!(
            wide(with(
                json!({"metadata": {"name": "event3"}, "eventTime": micro_days_ago(3), "lastTimestamp": days_ago(3), "count": 1})
            )),
            expect("3d", 1, "event3")
        );
        assert_eq!(
            wide(with(
                json!({"metadata": {"name": "event5"}, "eventTime": micro_days_ago(3), "count": 1})
            )),
            expect("3d", 1, "event5")
        );
        assert_eq!(
            wide(with(
                json!({"metadata": {"name": "event6"}, "eventTime": micro_days_ago(3),
                "series": {"count": 2, "lastObservedTime": micro_days_ago(2)}})
            )),
            expect("2d", 2, "event6")
        );
        assert_eq!(
            wide(with(
                json!({"metadata": {"name": "event7"}, "eventTime": micro_days_ago(3)})
            )),
            expect("3d", 1, "event7")
        );
        // Without a source, the reporting controller and instance stand in.
        let mut no_source = with(
            json!({"metadata": {"name": "event2"}, "firstTimestamp": days_ago(3),
            "lastTimestamp": days_ago(2), "count": 6, "reportingComponent": "kubelet", "reportingInstance": "test"}),
        );
        if let Some(m) = no_source.as_object_mut() {
            m.remove("source");
        }
        assert_eq!(cells(&wide(no_source)[5..6]), [json!("kubelet, test")]);
    }

    #[test]
    fn kubectl_get_events_view() {
        let e: Event = obj(
            json!({"metadata": {"name": "nginx.17d2", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "nginx", "namespace": "default"},
            "reason": "Scheduled", "message": "Successfully assigned default/nginx to node-1\n", "type": "Normal",
            "source": {"component": "default-scheduler"},
            "firstTimestamp": (now() - Duration::seconds(75)).to_rfc3339(), "lastTimestamp": (now() - Duration::seconds(75)).to_rfc3339(),
            "count": 1}),
        );
        assert_eq!(
            e.row(now()),
            vec![
                json!("75s"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/nginx"),
                json!(""),
                json!("default-scheduler"),
                json!("Successfully assigned default/nginx to node-1"),
                json!("75s"),
                json!(1),
                json!("nginx.17d2")
            ]
        );
        assert_eq!(Event::default().row(now()).len(), COLUMNS.len());
    }

    #[test]
    fn events_k8s_io_events_print_as_core_ones() {
        let e: events::Event = obj(
            json!({"metadata": {"name": "ev"}, "eventTime": micro_days_ago(3),
            "regarding": {"kind": "Node", "name": "node-1"}, "note": " Node is ready ", "reason": "NodeReady", "type": "Normal",
            "reportingController": "kubelet", "reportingInstance": "node-1",
            "series": {"count": 4, "lastObservedTime": micro_days_ago(2)}}),
        );
        assert_eq!(
            e.row(now()),
            vec![
                json!("2d"),
                json!("Normal"),
                json!("NodeReady"),
                json!("node/node-1"),
                json!(""),
                json!("kubelet, node-1"),
                json!("Node is ready"),
                json!("3d"),
                json!(4),
                json!("ev")
            ]
        );
        assert_eq!(events::Event::default().row(now())[0], json!("<unknown>"));
    }
}
