//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`)
//! into the object's JSON form, which is what the rest of the server works with.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` envelope whose `typeMeta`
//! names the kind and whose `raw` holds the object's message. Field numbers and JSON names
//! come from the generated [`table`] (see scripts/gen-proto-table.py); the few types whose
//! JSON form differs from their message (Quantity, Time, IntOrString, …) are special-cased.

mod schema;
mod table;
#[cfg(test)]
mod tests;

use base64::Engine;
use serde_json::{Map, Number, Value};

use schema::{Field, Kind, Label};

/// The prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Nested messages deeper than this are refused rather than recursed into.
const MAX_DEPTH: usize = 64;

const QUANTITY: &str = "apimachinery.pkg.api.resource.Quantity";
const TIME: &str = "apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "apimachinery.pkg.apis.meta.v1.FieldsV1";
const INT_OR_STRING: &str = "apimachinery.pkg.util.intstr.IntOrString";
const RAW_EXTENSION: &str = "apimachinery.pkg.runtime.RawExtension";
const META_V1: &str = "apimachinery.pkg.apis.meta.v1";

/// Why a protobuf body could not be decoded. Offsets count from the start of the body.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("body does not start with the kubernetes protobuf magic \"k8s\\0\"")]
    Magic,
    #[error("truncated {what} at byte {offset}")]
    Truncated { what: &'static str, offset: usize },
    #[error("malformed varint at byte {offset}")]
    Varint { offset: usize },
    #[error("field {field} at byte {offset}: wire type {wire} does not fit its type")]
    WireType {
        field: String,
        wire: u8,
        offset: usize,
    },
    #[error("unsupported wire type {wire} at byte {offset}")]
    UnsupportedWireType { wire: u8, offset: usize },
    #[error("field {field} at byte {offset}: invalid utf-8")]
    Utf8 { field: String, offset: usize },
    #[error("field {field} at byte {offset}: embedded json: {source}")]
    Json {
        field: String,
        offset: usize,
        source: serde_json::Error,
    },
    #[error("field {field} at byte {offset}: invalid timestamp")]
    Timestamp { field: String, offset: usize },
    #[error("messages nested deeper than {MAX_DEPTH} at byte {offset}")]
    TooDeep { offset: usize },
    #[error("envelope has no typeMeta apiVersion/kind")]
    NoTypeMeta,
    #[error("content encoding {0:?} is not supported")]
    ContentEncoding(String),
    #[error("kind {kind} of {api_version} has no known protobuf message")]
    UnknownKind { api_version: String, kind: String },
    #[error("message {name} at byte {offset} is not in the protobuf table")]
    UnknownMessage { name: String, offset: usize },
}

/// Decodes a Kubernetes protobuf body into the object's JSON form, with `apiVersion` and
/// `kind` taken from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtobufError::Magic)?;
    let base = MAGIC.len();
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: (&[u8], usize) = (&[], base);
    let mut r = Reader::new(rest, base);
    while let Some((tag, wire, at)) = r.key()? {
        match (tag, wire) {
            (1, 2) => {
                let (meta, meta_base) = r.bytes()?;
                let mut m = Reader::new(meta, meta_base);
                while let Some((tag, wire, at)) = m.key()? {
                    match (tag, wire) {
                        (1, 2) => api_version = m.string("apiVersion", at)?,
                        (2, 2) => kind = m.string("kind", at)?,
                        _ => m.skip(wire, at)?,
                    }
                }
            }
            (2, 2) => raw = r.bytes()?,
            (3, 2) => {
                let encoding = r.string("contentEncoding", at)?;
                if !encoding.is_empty() {
                    return Err(ProtobufError::ContentEncoding(encoding));
                }
            }
            _ => r.skip(wire, at)?,
        }
    }
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::NoTypeMeta);
    }
    let name = message_name(&api_version, &kind).ok_or_else(|| ProtobufError::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    let fields = schema::message(&name).ok_or(ProtobufError::UnknownMessage {
        name: name.clone(),
        offset: raw.1,
    })?;
    decode_fields(fields, raw.0, raw.1, 0, &mut object)?;
    Ok(Value::Object(object))
}

/// The table name of the message for `kind` in `api_version` ("apps/v1" → api.apps.v1.Kind);
/// kinds the group does not define (DeleteOptions, Status) fall back to meta/v1.
fn message_name(api_version: &str, kind: &str) -> Option<String> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let module = match group {
        "" => "api.core".to_string(),
        "meta.k8s.io" => "apimachinery.pkg.apis.meta".to_string(),
        g => {
            let first = g.split('.').next().unwrap_or(g);
            format!("api.{first}")
        }
    };
    [
        format!("{module}.{version}.{kind}"),
        format!("{META_V1}.{kind}"),
    ]
    .into_iter()
    .find(|n| schema::message(n).is_some())
}

/// Decodes the message `name` held in `bytes` (at absolute `base`) into its JSON value;
/// `None` is a value Go would marshal as null (a zero Time), which is left out.
fn decode_message(
    name: &'static str,
    bytes: &[u8],
    base: usize,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep { offset: base });
    }
    match name {
        QUANTITY => {
            let mut s = String::new();
            each_field(bytes, base, |r, tag, wire, at| match (tag, wire) {
                (1, 2) => r.string("string", at).map(|v| s = v),
                _ => r.skip(wire, at),
            })?;
            Ok(Some(Value::String(s)))
        }
        TIME | MICRO_TIME => {
            let (mut seconds, mut nanos) = (0i64, 0i64);
            each_field(bytes, base, |r, tag, wire, at| match (tag, wire) {
                (1, 0) => r.varint().map(|v| seconds = v as i64),
                (2, 0) => r.varint().map(|v| nanos = i64::from(v as i32)),
                _ => r.skip(wire, at),
            })?;
            if seconds == 0 && nanos == 0 {
                return Ok(None);
            }
            let field = || name.rsplit('.').next().unwrap_or(name).to_string();
            let nanos = u32::try_from(nanos).map_err(|_| ProtobufError::Timestamp {
                field: field(),
                offset: base,
            })?;
            let t = chrono::DateTime::from_timestamp(seconds, nanos).ok_or(
                ProtobufError::Timestamp {
                    field: field(),
                    offset: base,
                },
            )?;
            // Go's metav1.Time marshals at second precision, MicroTime at microseconds.
            let format = if name == TIME {
                "%Y-%m-%dT%H:%M:%SZ"
            } else {
                "%Y-%m-%dT%H:%M:%S%.6fZ"
            };
            Ok(Some(Value::String(t.format(format).to_string())))
        }
        DURATION => {
            let mut ns = 0i64;
            each_field(bytes, base, |r, tag, wire, at| match (tag, wire) {
                (1, 0) => r.varint().map(|v| ns = v as i64),
                _ => r.skip(wire, at),
            })?;
            Ok(Some(Value::String(go_duration(ns))))
        }
        INT_OR_STRING => {
            let (mut ty, mut int_val, mut str_val) = (0i64, 0i64, String::new());
            each_field(bytes, base, |r, tag, wire, at| match (tag, wire) {
                (1, 0) => r.varint().map(|v| ty = v as i64),
                (2, 0) => r.varint().map(|v| int_val = i64::from(v as i32)),
                (3, 2) => r.string("strVal", at).map(|v| str_val = v),
                _ => r.skip(wire, at),
            })?;
            Ok(Some(if ty == 1 {
                Value::String(str_val)
            } else {
                Value::Number(int_val.into())
            }))
        }
        RAW_EXTENSION | FIELDS_V1 => {
            let mut raw: (&[u8], usize) = (&[], base);
            each_field(bytes, base, |r, tag, wire, at| match (tag, wire) {
                (1, 2) => r.bytes().map(|b| raw = b),
                _ => r.skip(wire, at),
            })?;
            if raw.0.is_empty() {
                return Ok(None);
            }
            serde_json::from_slice(raw.0)
                .map(Some)
                .map_err(|source| ProtobufError::Json {
                    field: "raw".into(),
                    offset: raw.1,
                    source,
                })
        }
        _ => {
            let fields = schema::message(name).ok_or(ProtobufError::UnknownMessage {
                name: name.to_string(),
                offset: base,
            })?;
            let mut object = Map::new();
            decode_fields(fields, bytes, base, depth, &mut object)?;
            Ok(Some(Value::Object(object)))
        }
    }
}

/// Decodes the fields of a message (table `fields`) from `bytes` into `object`.
fn decode_fields(
    fields: &'static [Field],
    bytes: &[u8],
    base: usize,
    depth: usize,
    object: &mut Map<String, Value>,
) -> Result<(), ProtobufError> {
    let mut r = Reader::new(bytes, base);
    while let Some((tag, wire, at)) = r.key()? {
        let Some(field) = fields.iter().find(|f| f.tag == tag) else {
            r.skip(wire, at)?;
            continue;
        };
        match field.label {
            Label::Optional { keep_zero } => {
                match value(field, field.kind, &mut r, wire, at, depth)? {
                    Some(v) if keep_zero || !is_zero_scalar(field.kind, &v) => {
                        object.insert(field.json.into(), v);
                    }
                    _ => {
                        object.remove(field.json);
                    }
                }
            }
            Label::Inline => {
                let (inner, inner_base) = expect_bytes(field, &mut r, wire, at)?;
                if let Kind::Message(name) = field.kind {
                    let inner_fields =
                        schema::message(name).ok_or(ProtobufError::UnknownMessage {
                            name: name.to_string(),
                            offset: inner_base,
                        })?;
                    if depth + 1 > MAX_DEPTH {
                        return Err(ProtobufError::TooDeep { offset: inner_base });
                    }
                    decode_fields(inner_fields, inner, inner_base, depth + 1, object)?;
                }
            }
            Label::Repeated => {
                let list = object
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(list) = list else {
                    continue;
                };
                let packable = matches!(
                    field.kind,
                    Kind::Bool | Kind::Int32 | Kind::Int64 | Kind::Double
                );
                if packable && wire == 2 {
                    let (packed, packed_base) = r.bytes()?;
                    let mut p = Reader::new(packed, packed_base);
                    let elem_wire = if field.kind == Kind::Double { 1 } else { 0 };
                    while !p.at_end() {
                        let at = p.offset();
                        if let Some(v) = value(field, field.kind, &mut p, elem_wire, at, depth)? {
                            list.push(v);
                        }
                    }
                } else if let Some(v) = value(field, field.kind, &mut r, wire, at, depth)? {
                    list.push(v);
                }
            }
            Label::Map => {
                let (entry, entry_base) = expect_bytes(field, &mut r, wire, at)?;
                let mut key = String::new();
                let mut val = None;
                let mut e = Reader::new(entry, entry_base);
                while let Some((tag, wire, at)) = e.key()? {
                    match tag {
                        1 => key = e.string(field.json, at)?,
                        2 => val = value(field, field.kind, &mut e, wire, at, depth)?,
                        _ => e.skip(wire, at)?,
                    }
                }
                let val = match val {
                    Some(v) => v,
                    None => default_value(field.kind, entry_base, depth)?,
                };
                let map = object
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, val);
                }
            }
        }
    }
    Ok(())
}

/// The JSON of a map value the entry left out (proto3-style maps omit zero values).
fn default_value(kind: Kind, base: usize, depth: usize) -> Result<Value, ProtobufError> {
    Ok(match kind {
        Kind::Str | Kind::Bytes => Value::String(String::new()),
        Kind::Bool => Value::Bool(false),
        Kind::Int32 | Kind::Int64 => Value::Number(0.into()),
        Kind::Double => Value::Number(0.into()),
        Kind::Message(name) => decode_message(name, &[], base, depth + 1)?.unwrap_or(Value::Null),
    })
}

/// Whether `v` is the zero of a scalar kind, which Go encodes for non-pointer fields.
fn is_zero_scalar(kind: Kind, v: &Value) -> bool {
    match (kind, v) {
        (Kind::Str | Kind::Bytes, Value::String(s)) => s.is_empty(),
        (Kind::Bool, Value::Bool(b)) => !b,
        (Kind::Int32 | Kind::Int64 | Kind::Double, Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn expect_bytes<'a>(
    field: &Field,
    r: &mut Reader<'a>,
    wire: u8,
    at: usize,
) -> Result<(&'a [u8], usize), ProtobufError> {
    if wire != 2 {
        return Err(ProtobufError::WireType {
            field: field.json.into(),
            wire,
            offset: at,
        });
    }
    r.bytes()
}

/// Reads one value of `kind` with wire type `wire`.
fn value(
    field: &Field,
    kind: Kind,
    r: &mut Reader<'_>,
    wire: u8,
    at: usize,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    let wrong = || ProtobufError::WireType {
        field: field.json.into(),
        wire,
        offset: at,
    };
    Ok(match kind {
        Kind::Str => {
            if wire != 2 {
                return Err(wrong());
            }
            Some(Value::String(r.string(field.json, at)?))
        }
        Kind::Bytes => {
            if wire != 2 {
                return Err(wrong());
            }
            let (b, _) = r.bytes()?;
            Some(Value::String(
                base64::engine::general_purpose::STANDARD.encode(b),
            ))
        }
        Kind::Bool => {
            if wire != 0 {
                return Err(wrong());
            }
            Some(Value::Bool(r.varint()? != 0))
        }
        // Negative int32s are sign-extended to 64 bits on the wire.
        Kind::Int32 => {
            if wire != 0 {
                return Err(wrong());
            }
            Some(Value::Number(i64::from(r.varint()? as i32).into()))
        }
        Kind::Int64 => {
            if wire != 0 {
                return Err(wrong());
            }
            Some(Value::Number((r.varint()? as i64).into()))
        }
        Kind::Double => {
            if wire != 1 {
                return Err(wrong());
            }
            let f = f64::from_bits(r.fixed64()?);
            Number::from_f64(f).map(Value::Number)
        }
        Kind::Message(name) => {
            let (b, b_base) = expect_bytes(field, r, wire, at)?;
            decode_message(name, b, b_base, depth + 1)?
        }
    })
}

/// Runs `f` on every field key of the message in `bytes`; `f` must consume the value.
fn each_field<'a>(
    bytes: &'a [u8],
    base: usize,
    mut f: impl FnMut(&mut Reader<'a>, u32, u8, usize) -> Result<(), ProtobufError>,
) -> Result<(), ProtobufError> {
    let mut r = Reader::new(bytes, base);
    while let Some((tag, wire, at)) = r.key()? {
        f(&mut r, tag, wire, at)?;
    }
    Ok(())
}

/// Go's `time.Duration.String()` ("1h2m3.5s", "1.5ms", "0s").
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let frac = |v: u64, unit: u64, digits: usize| -> String {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let s = format!("{rest:0digits$}");
            format!("{whole}.{}", s.trim_end_matches('0'))
        }
    };
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u, 1_000, 3))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 1_000_000, 6))
    } else {
        let secs = u / 1_000_000_000;
        let sub = u % 1_000_000_000;
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        let s = frac(s * 1_000_000_000 + sub, 1_000_000_000, 9);
        if h > 0 {
            format!("{h}h{m}m{s}s")
        } else if m > 0 {
            format!("{m}m{s}s")
        } else {
            format!("{s}s")
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// A cursor over one message's bytes; `base` is where they start in the whole body.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let start = self.offset();
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(ProtobufError::Truncated {
                    what: "varint",
                    offset: start,
                });
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(ProtobufError::Varint { offset: start });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtobufError::Varint { offset: start })
    }

    /// The next field key as (field number, wire type, offset of the key), or `None` at end.
    fn key(&mut self) -> Result<Option<(u32, u8, usize)>, ProtobufError> {
        if self.at_end() {
            return Ok(None);
        }
        let at = self.offset();
        let k = self.varint()?;
        let tag = u32::try_from(k >> 3).map_err(|_| ProtobufError::Varint { offset: at })?;
        Ok(Some((tag, (k & 7) as u8, at)))
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<(&'a [u8], usize), ProtobufError> {
        let at = self.offset();
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(ProtobufError::Truncated { what, offset: at })?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok((b, at))
    }

    /// A length-delimited value and its absolute offset.
    fn bytes(&mut self) -> Result<(&'a [u8], usize), ProtobufError> {
        let at = self.offset();
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| ProtobufError::Truncated {
            what: "length-delimited field",
            offset: at,
        })?;
        self.take(len, "length-delimited field")
    }

    fn string(&mut self, field: &str, at: usize) -> Result<String, ProtobufError> {
        let (b, _) = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtobufError::Utf8 {
            field: field.into(),
            offset: at,
        })
    }

    fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        let (b, _) = self.take(8, "64-bit field")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn skip(&mut self, wire: u8, at: usize) -> Result<(), ProtobufError> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.take(8, "64-bit field").map(|_| ()),
            2 => self.bytes().map(|_| ()),
            5 => self.take(4, "32-bit field").map(|_| ()),
            _ => Err(ProtobufError::UnsupportedWireType { wire, offset: at }),
        }
    }
}
