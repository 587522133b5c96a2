//! The pieces kubectl's describers share (`describe.go`'s PrefixWriter, printLabelsMultiline,
//! printAnnotationsMultiline, tolerations, taints, times, quantities), over JSON objects.

use serde_json::Value;

use crate::tabwriter::GoTabWriter;

/// `describe.go`'s PrefixWriter over a tabwriter: each level indents two spaces.
pub(crate) struct Out {
    tw: GoTabWriter,
}

impl Out {
    pub fn new() -> Self {
        Out {
            tw: GoTabWriter::describe(),
        }
    }

    pub fn w(&mut self, level: usize, text: &str) {
        for _ in 0..level {
            self.tw.write("  ");
        }
        self.tw.write(text);
    }

    pub fn flush(&mut self) {
        self.tw.flush();
    }

    pub fn finish(self) -> String {
        self.tw.finish()
    }
}

/// `w!(out, level, "fmt", args...)`: `w.Write(level, fmt, args...)`.
macro_rules! w {
    ($o:expr, $l:expr, $($t:tt)*) => {
        $o.w($l, &format!($($t)*))
    };
}
pub(crate) use w;

/// The string at a JSON pointer, or "".
pub(crate) fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// The integer at a JSON pointer, or 0.
pub(crate) fn i(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

/// The array at a JSON pointer, or an empty one.
pub(crate) fn arr<'a>(v: &'a Value, p: &str) -> &'a [Value] {
    v.pointer(p)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A string map at a JSON pointer, sorted by key.
pub(crate) fn string_map(v: &Value, p: &str) -> Vec<(String, String)> {
    let mut kv: Vec<(String, String)> = v
        .pointer(p)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    kv.sort();
    kv
}

/// `labels.FormatLabels`: `a=b,c=d`, or `<none>`.
pub(crate) fn format_labels(kv: &[(String, String)]) -> String {
    if kv.is_empty() {
        return "<none>".into();
    }
    kv.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `LabelSelectorAsSelector(sel).String()`: requirements sorted by key, "" for everything.
pub(crate) fn selector_string(sel: &Value) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in string_map(sel, "/matchLabels") {
        reqs.push((k.clone(), format!("{k}={v}")));
    }
    for e in arr(sel, "/matchExpressions") {
        let key = s(e, "/key").to_string();
        let mut vals: Vec<&str> = arr(e, "/values").iter().filter_map(Value::as_str).collect();
        vals.sort();
        vals.dedup();
        let text = match s(e, "/operator") {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key, text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.FormatLabelSelector`: the selector, or `<none>`.
pub(crate) fn format_label_selector(sel: &Value) -> String {
    let s = selector_string(sel);
    if s.is_empty() {
        "<none>".into()
    } else {
        s
    }
}

/// `printLabelsMultilineWithIndent(w, "", title, "\t", labels)`.
pub(crate) fn labels_multiline(o: &mut Out, title: &str, kv: &[(String, String)]) {
    w!(o, 0, "{title}:\t");
    if kv.is_empty() {
        o.w(0, "<none>\n");
        return;
    }
    for (n, (k, v)) in kv.iter().enumerate() {
        if n != 0 {
            o.w(0, "\t");
        }
        w!(o, 0, "{k}={v}\n");
    }
}

const MAX_ANNOTATION_LEN: usize = 140;

/// `printAnnotationsMultiline`: the last-applied annotation skipped, long or multi-line values
/// on lines of their own.
pub(crate) fn annotations_multiline(o: &mut Out, title: &str, kv: &[(String, String)]) {
    w!(o, 0, "{title}:\t");
    let kv: Vec<&(String, String)> = kv
        .iter()
        .filter(|(k, _)| k != crate::apply::LAST_APPLIED)
        .collect();
    if kv.is_empty() {
        o.w(0, "<none>\n");
        return;
    }
    for (n, (k, v)) in kv.iter().enumerate() {
        if n != 0 {
            o.w(0, "\t");
        }
        let value = v.strip_suffix('\n').unwrap_or(v);
        if value.len() + k.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w!(o, 0, "{k}:\n");
            for line in value.split('\n') {
                w!(o, 0, "\t  {}\n", shorten(line, MAX_ANNOTATION_LEN - 2));
            }
        } else {
            w!(o, 0, "{k}: {value}\n");
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() > max {
        // Go slices bytes; stay on a character boundary.
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}

/// `printTolerationsMultilineWithIndent`.
pub(crate) fn tolerations_multiline(o: &mut Out, title: &str, tolerations: &[Value]) {
    w!(o, 0, "{title}:\t");
    if tolerations.is_empty() {
        o.w(0, "<none>\n");
        return;
    }
    let mut t: Vec<&Value> = tolerations.iter().collect();
    t.sort_by(|a, b| s(a, "/key").cmp(s(b, "/key")));
    for (n, t) in t.iter().enumerate() {
        if n != 0 {
            o.w(0, "\t");
        }
        let (key, value, effect) = (s(t, "/key"), s(t, "/value"), s(t, "/effect"));
        let mut line = key.to_string();
        if !value.is_empty() {
            line.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            line.push_str(&format!(":{effect}"));
        }
        if s(t, "/operator") == "Exists" && value.is_empty() {
            if !key.is_empty() || !effect.is_empty() {
                line.push_str(" op=Exists");
            } else {
                line.push_str("op=Exists");
            }
        }
        if let Some(secs) = t.get("tolerationSeconds").and_then(Value::as_i64) {
            line.push_str(&format!(" for {secs}s"));
        }
        w!(o, 0, "{line}\n");
    }
}

/// `printTaintsMultilineWithIndent`: sorted by effect then key.
pub(crate) fn taints_multiline(o: &mut Out, title: &str, taints: &[Value]) {
    w!(o, 0, "{title}:\t");
    if taints.is_empty() {
        o.w(0, "<none>\n");
        return;
    }
    let mut t: Vec<&Value> = taints.iter().collect();
    t.sort_by_key(|t| format!("{},{}", s(t, "/effect"), s(t, "/key")));
    for (n, t) in t.iter().enumerate() {
        if n != 0 {
            o.w(0, "\t");
        }
        let (key, value, effect) = (s(t, "/key"), s(t, "/value"), s(t, "/effect"));
        if value.is_empty() {
            w!(o, 0, "{key}:{effect}\n");
        } else {
            w!(o, 0, "{key}={value}:{effect}\n");
        }
    }
}

/// Go's `%v` of a string slice: `[a b]`.
pub(crate) fn go_list(v: &[Value]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    format!("[{}]", items.join(" "))
}

fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// `t.Format(time.RFC1123Z)` in local time; Go's zero time for a missing one.
pub(crate) fn rfc1123z(t: &str) -> String {
    match parse_time(t) {
        Some(t) => t
            .with_timezone(&chrono::Local)
            .format("%a, %d %b %Y %H:%M:%S %z")
            .to_string(),
        None => "Mon, 01 Jan 0001 00:00:00 +0000".into(),
    }
}

/// A `metav1.Time` through `%s` (Go's `time.Time.String()` in local time, as kubectl
/// decodes it): `2006-01-02 15:04:05 +0000 UTC`. The zone's abbreviation is not known
/// here: `UTC` at offset zero, else the offset again (as Go prints a zone without one).
pub(crate) fn go_time(t: &str) -> String {
    match parse_time(t) {
        Some(t) => {
            let local = t.with_timezone(&chrono::Local);
            let offset = local.format("%z").to_string();
            let zone = if offset == "+0000" { "UTC" } else { &offset };
            format!("{} {zone}", local.format("%Y-%m-%d %H:%M:%S %z"))
        }
        None => "0001-01-01 00:00:00 +0000 UTC".into(),
    }
}

/// `translateTimestampSince`: the age of a timestamp, `<unknown>` without one.
pub(crate) fn since(t: &str) -> String {
    match parse_time(t) {
        Some(t) => human_duration(chrono::Utc::now().signed_duration_since(t)),
        None => "<unknown>".into(),
    }
}

/// apimachinery's `duration.HumanDuration`.
pub(crate) fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// A quantity as `Quantity.String()` prints it (canonical form).
pub(crate) fn qty(v: &Value) -> String {
    let raw = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return "0".into(),
    };
    bosun_api::quantity::canonicalize(&raw).unwrap_or(raw)
}

pub(crate) fn parse_qty(v: Option<&Value>) -> bosun_api::quantity::Quantity {
    let raw = match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Default::default(),
    };
    bosun_api::quantity::Quantity::parse(&raw).unwrap_or_default()
}

/// A resource list (`{cpu: 100m, memory: 1Gi}`) sorted by name, values canonical.
pub(crate) fn resource_list(v: &Value, p: &str) -> Vec<(String, String)> {
    let mut kv: Vec<(String, String)> = v
        .pointer(p)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, q)| (k.clone(), qty(q)))
        .collect();
    kv.sort();
    kv
}

/// `printBool`: True/False.
pub(crate) fn go_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// An IntOrString as `.String()` prints it.
pub(crate) fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// The controller owner reference as `Kind/name` (`printController`).
pub(crate) fn controlled_by(o: &Value) -> Option<String> {
    arr(o, "/metadata/ownerReferences")
        .iter()
        .find(|r| r["controller"] == Value::Bool(true))
        .map(|r| format!("{}/{}", s(r, "/kind"), s(r, "/name")))
}

/// The storage class of a PV or PVC: the beta annotation first, then the spec's.
pub(crate) fn storage_class(o: &Value) -> String {
    match o
        .pointer("/metadata/annotations")
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str)
    {
        Some(c) => c.to_string(),
        None => s(o, "/spec/storageClassName").to_string(),
    }
}

/// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
pub(crate) fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|x| x == m);
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, s)| *s)
    .collect::<Vec<_>>()
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_like_go() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(5)), "5s");
        assert_eq!(human_duration(d(119)), "119s");
        assert_eq!(human_duration(d(185)), "3m5s");
        assert_eq!(human_duration(d(600)), "10m");
        assert_eq!(human_duration(d(4 * 3600 + 120)), "4h2m");
        assert_eq!(human_duration(d(30 * 3600)), "30h");
        assert_eq!(human_duration(d(3 * 86400 + 3600)), "3d1h");
    }

    #[test]
    fn selectors_like_apimachinery() {
        let sel = serde_json::json!({
            "matchLabels": {"tier": "web", "app": "x"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}],
        });
        assert_eq!(selector_string(&sel), "app=x,env in (dev,prod),tier=web");
        assert_eq!(format_label_selector(&serde_json::json!({})), "<none>");
    }
}
