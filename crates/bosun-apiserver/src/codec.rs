//! Request bodies in and responses out: JSON and YAML decoding with size and depth
//! limits, duplicate-field detection, and content negotiation for responses.

use std::fmt;

use bosun_api::StatusError;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Upstream's limit on a request body (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Media types the server understands in request bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
    /// Kubernetes protobuf (`application/vnd.kubernetes.protobuf`), which kubectl's typed
    /// clients send for built-in kinds.
    Protobuf,
}

impl BodyType {
    /// From a Content-Type header (parameters ignored); None for what we cannot read.
    pub fn from_content_type(ct: Option<&str>) -> Result<BodyType, StatusError> {
        let media = ct
            .unwrap_or("application/json")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "" | "application/json" | "*/*" => Ok(BodyType::Json),
            "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(BodyType::Yaml),
            "application/json-patch+json" => Ok(BodyType::JsonPatch),
            "application/merge-patch+json" => Ok(BodyType::MergePatch),
            "application/strategic-merge-patch+json" => Ok(BodyType::StrategicMergePatch),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(BodyType::ApplyPatch),
            "application/vnd.kubernetes.protobuf" => Ok(BodyType::Protobuf),
            other => Err(StatusError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {other:?})"
            ))),
        }
    }
}

/// Parses a body into JSON, finding duplicate fields when asked to. JSON over the
/// nesting limit fails (serde_json stops at depth 128), as does anything not an object.
pub fn decode_body(
    body: &[u8],
    ty: BodyType,
    find_dups: bool,
) -> Result<(Value, Vec<String>), StatusError> {
    if body.len() > MAX_BODY {
        return Err(StatusError::too_large(
            "Request entity too large: limit is 3145728",
        ));
    }
    let value: Value = match ty {
        BodyType::Yaml => {
            let v: Value = serde_yaml::from_slice(body).map_err(|e| {
                StatusError::bad_request(format!("error converting YAML to JSON: {e}"))
            })?;
            v
        }
        BodyType::Protobuf => crate::protobuf::decode(body).map_err(|e| {
            StatusError::bad_request(format!("error decoding the protobuf body: {e}"))
        })?,
        _ => {
            // One pass builds the tree and notes duplicate fields.
            let mut dups = Vec::new();
            let parse_err = |e: serde_json::Error| {
                StatusError::bad_request(format!(
                    "couldn't get version/kind; json parse error: {e}"
                ))
            };
            let mut de = serde_json::Deserializer::from_slice(body);
            let value = ValueSeed {
                at: &Seg::Root,
                out: &mut dups,
            }
            .deserialize(&mut de)
            .map_err(parse_err)?;
            de.end().map_err(parse_err)?;
            if !find_dups {
                dups.clear();
            }
            return Ok((value, dups));
        }
    };
    Ok((value, Vec::new()))
}

/// What the create path needs from a JSON body before typing it, found in one pass that
/// builds no tree: duplicate fields (as [`decode_body`] reports them), the top-level
/// `kind` and `apiVersion` when they are strings, and the top-level field names.
#[derive(Debug, Default)]
pub struct BodyScan {
    pub dups: Vec<String>,
    pub kind: Option<String>,
    pub api_version: Option<String>,
    pub top_fields: Vec<String>,
    /// The body is a JSON object whose `metadata`, if present, is an object too.
    pub plain_object: bool,
}

/// Scans a JSON body (size and nesting limits and syntax errors as [`decode_body`]).
pub fn scan_body(body: &[u8], find_dups: bool) -> Result<BodyScan, StatusError> {
    if body.len() > MAX_BODY {
        return Err(StatusError::too_large(
            "Request entity too large: limit is 3145728",
        ));
    }
    let parse_err = |e: serde_json::Error| {
        StatusError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    };
    let mut scan = BodyScan::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    let shape = ScanSeed {
        at: &Seg::Root,
        out: &mut scan.dups,
        top: Some(&mut TopFields {
            kind: &mut scan.kind,
            api_version: &mut scan.api_version,
            names: &mut scan.top_fields,
            metadata_ok: true,
        }),
        capture: false,
    }
    .deserialize(&mut de)
    .map_err(parse_err)?;
    de.end().map_err(parse_err)?;
    scan.plain_object = matches!(shape, Shape::Object { plain: true });
    if !find_dups {
        scan.dups.clear();
    }
    Ok(scan)
}

/// What [`ScanSeed`] found a value to be.
enum Shape {
    /// An object; `plain` for the top level when its `metadata` is absent or an object.
    Object {
        plain: bool,
    },
    /// A string, kept only when asked for.
    Str(Option<String>),
    Other,
}

/// Where the top-level object's findings go.
struct TopFields<'a> {
    kind: &'a mut Option<String>,
    api_version: &'a mut Option<String>,
    names: &'a mut Vec<String>,
    metadata_ok: bool,
}

/// Walks a JSON value like [`ValueSeed`] (same duplicate reports, same order), keeping
/// nothing but what [`BodyScan`] asks for.
struct ScanSeed<'p, 'o, 't> {
    at: &'p Seg<'p>,
    out: &'o mut Vec<String>,
    top: Option<&'t mut TopFields<'t>>,
    capture: bool,
}

impl<'de> DeserializeSeed<'de> for ScanSeed<'_, '_, '_> {
    type Value = Shape;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

/// A map key, borrowed from the body when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v))
    }
}

/// Field names seen in one object: a short list, a set once the object is large.
enum Seen<'de> {
    Few(Vec<std::borrow::Cow<'de, str>>),
    Many(std::collections::HashSet<std::borrow::Cow<'de, str>>),
}

impl<'de> Seen<'de> {
    /// Records `key`; false when it was seen before.
    fn insert(&mut self, key: std::borrow::Cow<'de, str>) -> bool {
        match self {
            Seen::Few(v) => {
                if v.contains(&key) {
                    return false;
                }
                v.push(key);
                if v.len() > 16 {
                    *self = Seen::Many(std::mem::take(v).into_iter().collect());
                }
                true
            }
            Seen::Many(s) => s.insert(key),
        }
    }
}

impl<'de> Visitor<'de> for ScanSeed<'_, '_, '_> {
    type Value = Shape;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_str<E>(self, v: &str) -> Result<Shape, E> {
        Ok(Shape::Str(self.capture.then(|| v.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_none<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut n = 0;
        loop {
            let seg = Seg::Index(n, self.at);
            let item = ScanSeed {
                at: &seg,
                out: &mut *self.out,
                top: None,
                capture: false,
            };
            match seq.next_element_seed(item)? {
                Some(_) => n += 1,
                None => break,
            }
        }
        Ok(Shape::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut seen = Seen::Few(Vec::new());
        let mut top = self.top;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let seg = Seg::Key(&key, self.at);
            let capture = top.is_some() && (key == "kind" || key == "apiVersion");
            let shape = map.next_value_seed(ScanSeed {
                at: &seg,
                out: &mut *self.out,
                top: None,
                capture,
            })?;
            if let Some(t) = top.as_deref_mut() {
                let is_object = matches!(shape, Shape::Object { .. });
                let text = match shape {
                    Shape::Str(s) => s,
                    _ => None,
                };
                match &*key {
                    "kind" => *t.kind = text,
                    "apiVersion" => *t.api_version = text,
                    "metadata" => t.metadata_ok = is_object,
                    _ => {}
                }
                if !t.names.iter().any(|n| *n == *key) {
                    t.names.push(key.to_string());
                }
            }
            if !seen.insert(key.clone()) {
                self.out.push(seg.render());
            }
        }
        Ok(Shape::Object {
            plain: top.is_none_or(|t| t.metadata_ok),
        })
    }
}

/// Where a value sits in the document, rendered only when a duplicate is found.
enum Seg<'a> {
    Root,
    Key(&'a str, &'a Seg<'a>),
    Index(usize, &'a Seg<'a>),
}

impl Seg<'_> {
    fn render(&self) -> String {
        match self {
            Seg::Root => String::new(),
            Seg::Key(k, parent) => {
                let p = parent.render();
                if p.is_empty() {
                    k.to_string()
                } else {
                    format!("{p}.{k}")
                }
            }
            Seg::Index(i, parent) => format!("{}[{i}]", parent.render()),
        }
    }
}

/// Deserializes a JSON tree as `serde_json::Value` does (the last of duplicate fields
/// wins) and records the path of every duplicate field.
struct ValueSeed<'p, 'o> {
    at: &'p Seg<'p>,
    out: &'o mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let seg = Seg::Index(items.len(), self.at);
            match seq.next_element_seed(ValueSeed {
                at: &seg,
                out: &mut *self.out,
            })? {
                Some(v) => items.push(v),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let seg = Seg::Key(&key, self.at);
            let v = map.next_value_seed(ValueSeed {
                at: &seg,
                out: &mut *self.out,
            })?;
            if m.contains_key(&key) {
                self.out.push(seg.render());
            }
            m.insert(key, v);
        }
        Ok(Value::Object(m))
    }
}

/// Paths of fields that appear twice in the same JSON object (`spec.replicas`).
pub fn duplicate_fields(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    ValueSeed {
        at: &Seg::Root,
        out: &mut out,
    }
    .deserialize(&mut de)?;
    Ok(out)
}

/// What the client accepts back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    Json,
    Yaml,
    /// A meta.k8s.io Table (v1 or v1beta1).
    Table {
        v1beta1: bool,
    },
    /// The aggregated discovery document.
    DiscoveryV2 {
        beta: bool,
    },
    PartialObjectMetadata,
}

/// Picks the first media type of the Accept header that the server can produce.
pub fn negotiate(accept: Option<&str>) -> Result<Accept, StatusError> {
    let Some(accept) = accept else {
        return Ok(Accept::Json);
    };
    for part in accept.split(',') {
        let mut it = part.split(';').map(str::trim);
        let media = it.next().unwrap_or("").to_ascii_lowercase();
        let mut as_ = "";
        let mut g = "";
        let mut v = "";
        for p in it {
            if let Some((k, val)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = val.trim(),
                    "g" => g = val.trim(),
                    "v" => v = val.trim(),
                    _ => {}
                }
            }
        }
        match media.as_str() {
            "application/json" | "*/*" | "application/*" => match (as_, g) {
                ("", _) => return Ok(Accept::Json),
                ("Table", "meta.k8s.io") => {
                    return Ok(Accept::Table {
                        v1beta1: v == "v1beta1",
                    })
                }
                ("APIGroupDiscoveryList", "apidiscovery.k8s.io") => {
                    return Ok(Accept::DiscoveryV2 { beta: v != "v2" })
                }
                ("PartialObjectMetadata" | "PartialObjectMetadataList", "meta.k8s.io") => {
                    return Ok(Accept::PartialObjectMetadata)
                }
                _ => continue,
            },
            "application/yaml" if as_.is_empty() => return Ok(Accept::Yaml),
            _ => continue,
        }
    }
    Err(StatusError::not_acceptable(format!("only the following media types are accepted: application/json, application/yaml (got {accept:?})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_with_their_paths() {
        let d = duplicate_fields(br#"{"spec":{"replicas":1,"replicas":2,"x":[{"a":1,"a":2}]}}"#)
            .expect("json");
        assert_eq!(
            d,
            vec!["spec.replicas".to_string(), "spec.x[0].a".to_string()]
        );
    }

    #[test]
    fn the_scan_finds_what_the_tree_finds() {
        for body in [
            &br#"{"spec":{"replicas":1,"replicas":2,"x":[{"a":1,"a":2}]}}"#[..],
            br#"{"a":{"x":1,"x":2},"a":{"y":1,"y":2},"a":3}"#,
            br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a\u0041","name":"b"},"kind":"Pod"}"#,
            br#"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":0,"k11":1,"k12":2,"k13":3,"k14":4,"k15":5,"k16":6,"k17":7,"k3":1,"k17":2}"#,
        ] {
            let (_, dups) = decode_body(body, BodyType::Json, true).expect("json");
            let scan = scan_body(body, true).expect("json");
            assert_eq!(scan.dups, dups, "{}", String::from_utf8_lossy(body));
            assert!(scan.plain_object);
        }
        let s = scan_body(
            br#"{"kind":"Pod","apiVersion":5,"spec":{"kind":"x"},"spec":{}}"#,
            true,
        )
        .expect("json");
        assert_eq!(
            (s.kind.as_deref(), s.api_version.as_deref()),
            (Some("Pod"), None)
        );
        assert_eq!(s.top_fields, vec!["kind", "apiVersion", "spec"]);
        assert!(
            !scan_body(br#"{"metadata":[]}"#, true)
                .expect("json")
                .plain_object
        );
        assert!(!scan_body(b"[1]", true).expect("json").plain_object);
        assert!(scan_body(br#"{"a":1,"a":2}"#, false)
            .expect("json")
            .dups
            .is_empty());
        for bad in [&b"{"[..], b"{} x", b"{\"a\":}"] {
            assert_eq!(
                scan_body(bad, true).err().map(|e| e.message),
                decode_body(bad, BodyType::Json, true)
                    .err()
                    .map(|e| e.message)
            );
        }
        let deep = "[".repeat(100_000);
        assert_eq!(
            scan_body(deep.as_bytes(), true).err().map(|e| e.code),
            Some(400)
        );
    }

    #[test]
    fn bad_bodies_are_400_not_panics() {
        assert_eq!(
            decode_body(b"{", BodyType::Json, true)
                .err()
                .map(|e| e.code),
            Some(400)
        );
        assert_eq!(
            decode_body(b"a: [", BodyType::Yaml, false)
                .err()
                .map(|e| e.code),
            Some(400)
        );
        let deep = "[".repeat(100_000);
        assert_eq!(
            decode_body(deep.as_bytes(), BodyType::Json, true)
                .err()
                .map(|e| e.code),
            Some(400)
        );
        let big = vec![b' '; MAX_BODY + 1];
        assert_eq!(
            decode_body(&big, BodyType::Json, false)
                .err()
                .map(|e| e.code),
            Some(413)
        );
    }

    #[test]
    fn kubectl_accept_headers_negotiate() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(a)).ok(),
            Some(Accept::Table { v1beta1: false })
        );
        let d = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate(Some(d)).ok(),
            Some(Accept::DiscoveryV2 { beta: false })
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, */*")).ok(),
            Some(Accept::Json)
        );
        assert!(negotiate(Some("application/vnd.kubernetes.protobuf")).is_err());
    }
}
