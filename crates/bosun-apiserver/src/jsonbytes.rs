//! Edits on compact JSON as serde_json writes it (no whitespace), done on the bytes so
//! that an object typed once is encoded once: where `metadata.resourceVersion` goes, and
//! quantities in their canonical form. Both give what the same edit on a
//! `serde_json::Value` tree gives (tested against it).

use crate::kinds::QUANTITY_MAPS;

/// The end (exclusive) of the string starting at `i` (a `"`), or None if it never ends.
fn string_end(buf: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < buf.len() {
        match buf[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// The end (exclusive) of the value starting at `i`.
fn value_end(buf: &[u8], i: usize) -> Option<usize> {
    match buf.get(i)? {
        b'"' => string_end(buf, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < buf.len() {
                match buf[j] {
                    b'"' => {
                        j = string_end(buf, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < buf.len() && !matches!(buf[j], b',' | b'}' | b']') {
                j += 1;
            }
            Some(j)
        }
    }
}

/// In the compact JSON of an object, the offset just inside the top-level `metadata`
/// object's `{`, and whether that object has fields (then a field inserted there needs a
/// comma after it). None when there is no top-level `metadata` object.
pub fn metadata_slot(buf: &[u8]) -> Option<(usize, bool)> {
    if buf.first() != Some(&b'{') {
        return None;
    }
    let mut i = 1;
    while i < buf.len() && buf[i] == b'"' {
        let key_end = string_end(buf, i)?;
        if buf.get(key_end) != Some(&b':') {
            return None;
        }
        let v = key_end + 1;
        if &buf[i..key_end] == b"\"metadata\"" && buf.get(v) == Some(&b'{') {
            return Some((v + 1, buf.get(v + 1) != Some(&b'}')));
        }
        let end = value_end(buf, v)?;
        match buf.get(end) {
            Some(b',') => i = end + 1,
            _ => return None,
        }
    }
    None
}

/// Writes every quantity in its canonical form, as [`crate::kinds::canonicalize_quantities`]
/// does on a tree: the string values of any object held by a key named in
/// [`QUANTITY_MAPS`]. Returns the input unchanged (no copy) when nothing changes.
pub fn canonicalize_quantities(buf: Vec<u8>) -> Vec<u8> {
    // (start, end, replacement) of each quantity string to rewrite, in order.
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut i = 0;
    while i < buf.len() {
        if buf[i] != b'"' {
            i += 1;
            continue;
        }
        let Some(end) = string_end(&buf, i) else {
            break;
        };
        let is_map_key = buf.get(end) == Some(&b':')
            && buf.get(end + 1) == Some(&b'{')
            && QUANTITY_MAPS
                .iter()
                .any(|k| &buf[i + 1..end - 1] == k.as_bytes());
        if !is_map_key {
            i = end;
            continue;
        }
        // Inside the quantity map: string values are quantities; other values are left
        // alone and not looked into (as the tree version does).
        let mut j = end + 2;
        while buf.get(j) == Some(&b'"') {
            let Some(k_end) = string_end(&buf, j) else {
                return apply(buf, edits);
            };
            let v = k_end + 1;
            let Some(v_end) = value_end(&buf, v) else {
                return apply(buf, edits);
            };
            if buf[v] == b'"' {
                if let Some(rewritten) = canonical(&buf[v..v_end]) {
                    edits.push((v, v_end, rewritten));
                }
            }
            j = v_end;
            if buf.get(j) == Some(&b',') {
                j += 1;
            }
        }
        i = j;
    }
    apply(buf, edits)
}

/// The canonical form of the quantity in the JSON string `s` (quotes included), encoded,
/// if it differs.
fn canonical(s: &[u8]) -> Option<Vec<u8>> {
    let text: String = serde_json::from_slice(s).ok()?;
    let c = bosun_api::quantity::canonicalize(&text).ok()?;
    if c == text {
        return None;
    }
    serde_json::to_vec(&c).ok()
}

fn apply(buf: Vec<u8>, edits: Vec<(usize, usize, Vec<u8>)>) -> Vec<u8> {
    if edits.is_empty() {
        return buf;
    }
    let mut out = Vec::with_capacity(buf.len() + 16);
    let mut at = 0;
    for (start, end, text) in edits {
        out.extend_from_slice(&buf[at..start]);
        out.extend_from_slice(&text);
        at = end;
    }
    out.extend_from_slice(&buf[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn both(v: Value) {
        let bytes = serde_json::to_vec(&v).expect("json");
        let mut tree = v.clone();
        crate::kinds::canonicalize_quantities(&mut tree);
        let got = canonicalize_quantities(bytes);
        assert_eq!(
            String::from_utf8_lossy(&got),
            serde_json::to_string(&tree).expect("json"),
            "{v}"
        );
    }

    #[test]
    fn quantities_are_canonical_as_on_the_tree() {
        both(json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"cpu": "1000m"}}},
            {"name": "b\"requests", "resources": {"limits": {"cpu": "100m", "x": 5, "y": {"requests": {"cpu": "0.1"}}, "z": "2000m"}}}
        ], "overhead": {"cpu": "1.5"}}}));
        // Keys that only look like quantity maps: inside strings, or holding a string.
        both(
            json!({"metadata": {"annotations": {"a": "{\"requests\":{\"cpu\":\"0.5\"}}", "requests": "0.5"}}}),
        );
        both(
            json!({"status": {"capacity": {}, "allocatable": {"cpu": "bogus", "mem": "1e3"}, "used": {"a\\b": "1000"}}}),
        );
        both(
            json!({"spec": {"limits": [{"max": {"cpu": "2000m"}, "default": {"memory": "0.5Gi"}}]}}),
        );
        both(json!({}));
        both(json!({"requests": {"cpu": "\u{e9}1"}}));
    }

    #[test]
    fn unchanged_json_is_not_copied() {
        let b = serde_json::to_vec(&json!({"requests": {"cpu": "500m"}})).expect("json");
        let p = b.as_ptr();
        let out = canonicalize_quantities(b);
        assert_eq!(out.as_ptr(), p);
    }

    #[test]
    fn metadata_slot_is_found_at_the_top_level_only() {
        let s = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{}}"#;
        let (at, comma) = metadata_slot(s).expect("slot");
        assert_eq!(&s[..at], br#"{"apiVersion":"v1","kind":"Pod","metadata":{"#);
        assert!(comma);
        let s = br#"{"a":{"metadata":{"x":1}},"b":"\"metadata\":{","metadata":{}}"#;
        let (at, comma) = metadata_slot(s).expect("slot");
        assert_eq!(at, s.len() - 2);
        assert!(!comma);
        assert_eq!(metadata_slot(br#"{"metadata":"x"}"#), None);
        assert_eq!(metadata_slot(br#"{"a":1}"#), None);
        assert_eq!(metadata_slot(b"[]"), None);
    }
}
