//! Serves the OpenAPI v3 documents built in `bosun_api::openapi`.

use bytes::Bytes;
use serde_json::{json, Value};

pub fn index() -> Value {
    json!({"paths": {}})
}

pub fn document(_path: &str) -> Option<Bytes> {
    None
}
