//! Cell formatting shared by every printer: ages (`duration.HumanDuration`), label maps and
//! selectors, access modes, container lists and the "+ N more..." truncation, as upstream
//! spells them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Seconds from the Unix epoch to 0001-01-01T00:00:00Z, Go's zero `time.Time`: a timestamp
/// serialized from a Go zero value reads back as this instant and must still count as unset.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// `duration.HumanDuration`: a succinct age with about two significant figures ("5s",
/// "2m10s", "100m", "3h", "2d5h", "90d", "3y120d"); "<invalid>" for more than a second in the
/// future, "0s" for up to a second in the future.
pub fn human_duration(d: Duration) -> String {
    // Go truncates the float seconds toward zero; chrono's num_seconds does the same.
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// A jiff timestamp as chrono time; `None` for Go's zero time and for instants chrono cannot
/// hold, both of which upstream prints as unknown.
pub fn to_chrono(ts: &k8s_openapi::jiff::Timestamp) -> Option<DateTime<Utc>> {
    let mut secs = ts.as_second();
    let mut nanos = ts.subsec_nanosecond();
    if nanos < 0 {
        secs -= 1;
        nanos += 1_000_000_000;
    }
    if secs == GO_ZERO_TIME_SECONDS && nanos == 0 {
        return None;
    }
    DateTime::from_timestamp(secs, u32::try_from(nanos).ok()?)
}

/// A metav1 `Time` as chrono time, `None` when unset.
pub fn time(t: Option<&Time>) -> Option<DateTime<Utc>> {
    t.and_then(|t| to_chrono(&t.0))
}

/// A metav1 `MicroTime` as chrono time, `None` when unset.
pub fn micro_time(t: Option<&MicroTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| to_chrono(&t.0))
}

/// `translateTimestampSince`: the age of `t` at `now`, "<unknown>" when unset.
pub fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now.signed_duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// `translateTimestampSince` for a metav1 `Time`.
pub fn translate_timestamp_since(t: Option<&Time>, now: DateTime<Utc>) -> String {
    since(time(t), now)
}

/// `labels.FormatLabels`: "k1=v1,k2=v2" in key order, "<none>" when empty.
pub fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    let s = labels_string(labels);
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s
    }
}

/// `labels.Set.String()`: "k1=v1,k2=v2" in key order, "" when empty.
pub fn labels_string(labels: Option<&BTreeMap<String, String>>) -> String {
    labels
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `helper.GetAccessModesAsString`: "RWO,ROX,RWX,RWOP" in that fixed order, duplicates and
/// unknown modes dropped.
pub fn access_modes(modes: Option<&Vec<String>>) -> String {
    let modes = modes.map(Vec::as_slice).unwrap_or_default();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// `layoutContainerCells`: container names and images, each comma-joined.
pub fn container_cells(containers: &[Container]) -> (String, String) {
    let names = containers
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let images = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(",");
    (names, images)
}

/// `listWithMoreString`: the shown items, then " + N more..." when some were cut, and
/// "<unset>" when there is nothing to show.
pub fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count.saturating_sub(max));
    }
    if joined.is_empty() {
        return "<unset>".to_string();
    }
    joined
}

/// `Quantity.String()`: the canonical form ("1536Mi" for "1.5Gi"), the text as stored when
/// it does not parse, and "0" (Go's zero quantity) when missing.
pub fn quantity(q: Option<&Quantity>) -> String {
    match q {
        Some(q) if !q.0.is_empty() => {
            crate::quantity::canonicalize(&q.0).unwrap_or_else(|_| q.0.clone())
        }
        _ => "0".to_string(),
    }
}

/// `(*Quantity).String()` on a pointer that may be nil.
pub fn quantity_ptr(q: Option<&Quantity>) -> String {
    match q {
        Some(q) => quantity(Some(q)),
        None => "<nil>".to_string(),
    }
}

/// `intstr.IntOrString.String()`.
pub fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// `printBoolPtr`: "True", "False" or "<unset>".
pub fn bool_ptr(v: Option<bool>) -> String {
    match v {
        Some(true) => "True".to_string(),
        Some(false) => "False".to_string(),
        None => "<unset>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> Duration {
        Duration::seconds(s)
    }

    #[test]
    fn human_duration_matches_upstream() {
        // Expected strings from upstream's duration_test.go and printers_test.go.
        let cases = [
            (Duration::milliseconds(-2100), "<invalid>"),
            (Duration::milliseconds(-1900), "0s"),
            (secs(0), "0s"),
            (secs(1), "1s"),
            (secs(30), "30s"),
            (secs(119), "119s"),
            (secs(120), "2m"),
            (secs(130), "2m10s"),
            (secs(5 * 60), "5m"),
            (secs(9 * 60 + 59), "9m59s"),
            (secs(10 * 60), "10m"),
            (secs(6000), "100m"),
            (secs(3 * 3600 - 1), "179m"),
            (secs(3 * 3600), "3h"),
            (secs(3 * 3600 + 30 * 60), "3h30m"),
            (secs(8 * 3600), "8h"),
            (secs(47 * 3600 + 59 * 60), "47h"),
            (secs(48 * 3600), "2d"),
            (secs(53 * 3600), "2d5h"),
            (secs(8 * 86400), "8d"),
            (secs(90 * 86400), "90d"),
            (secs(2 * 365 * 86400), "2y"),
            (secs((2 * 365 + 120) * 86400), "2y120d"),
            (secs(8 * 365 * 86400), "8y"),
            (secs(10 * 365 * 86400), "10y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "duration {d:?}");
        }
    }

    #[test]
    fn unset_and_zero_times_are_unknown() {
        let now = Utc::now();
        assert_eq!(translate_timestamp_since(None, now), "<unknown>");
        let zero = Time(k8s_openapi::jiff::Timestamp::new(GO_ZERO_TIME_SECONDS, 0).expect("valid"));
        assert_eq!(translate_timestamp_since(Some(&zero), now), "<unknown>");
        let t = Time(k8s_openapi::jiff::Timestamp::new(now.timestamp() - 300, 0).expect("valid"));
        assert_eq!(translate_timestamp_since(Some(&t), now), "5m");
    }

    #[test]
    fn access_modes_are_ordered_and_deduplicated() {
        let modes = vec![
            "ReadWriteOncePod".to_string(),
            "ReadWriteMany".to_string(),
            "ReadWriteOnce".to_string(),
            "ReadWriteOnce".to_string(),
            "Bogus".to_string(),
        ];
        assert_eq!(access_modes(Some(&modes)), "RWO,RWX,RWOP");
        assert_eq!(access_modes(None), "");
    }

    #[test]
    fn labels_format() {
        assert_eq!(format_labels(None), "<none>");
        let m = BTreeMap::from([
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ]);
        assert_eq!(format_labels(Some(&m)), "a=1,b=2");
    }
}
