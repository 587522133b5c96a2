//! Request bodies in and responses out: JSON and YAML decoding with size and depth
//! limits, duplicate-field detection, and content negotiation for responses.

use std::collections::HashSet;
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
        _ => serde_json::from_slice(body).map_err(|e| {
            StatusError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
    };
    let dups = if find_dups && ty != BodyType::Yaml && ty != BodyType::Protobuf {
        duplicate_fields(body).unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok((value, dups))
}

/// Paths of fields that appear twice in the same JSON object (`spec.replicas`).
pub fn duplicate_fields(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    DupSeed {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de)?;
    Ok(out)
}

struct DupSeed<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for DupSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DupSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(DupSeed {
                path: format!("{}[{i}]", self.path),
                out: &mut *self.out,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.out.push(path.clone());
            }
            map.next_value_seed(DupSeed {
                path,
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }
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
