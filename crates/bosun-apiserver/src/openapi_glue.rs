//! Serves the OpenAPI v3 documents built once in `bosun_api::openapi`, with upstream's
//! caching: the index names each document with a content hash; a request with the
//! current hash is cacheable forever, one with a stale hash is redirected.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bosun_api::openapi;
use serde_json::Value;

pub fn index() -> Value {
    openapi::v3_index()
}

/// The response for `/openapi/v3/<path>?<query>`.
pub fn document(path: &str, query: Option<&str>) -> Option<Response> {
    let doc = openapi::v3_document(path)?;
    let hash = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "hash")
            .map(|(_, v)| v.into_owned())
    });
    let mut resp = match hash {
        Some(h) if h != doc.hash => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
            if let Ok(loc) = HeaderValue::from_str(&doc.server_relative_url()) {
                r.headers_mut().insert("location", loc);
            }
            return Some(r);
        }
        Some(_) => {
            let mut r = Response::new(Body::from(doc.json.clone()));
            r.headers_mut().insert(
                "cache-control",
                HeaderValue::from_static("public, immutable"),
            );
            r.headers_mut().insert(
                "expires",
                HeaderValue::from_str(&httpdate_in_a_year())
                    .unwrap_or(HeaderValue::from_static("0")),
            );
            r
        }
        None => {
            let mut r = Response::new(Body::from(doc.json.clone()));
            r.headers_mut().insert(
                "cache-control",
                HeaderValue::from_static("no-cache, private"),
            );
            r
        }
    };
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(etag) = HeaderValue::from_str(&doc.etag()) {
        resp.headers_mut().insert("etag", etag);
    }
    resp.headers_mut()
        .insert("vary", HeaderValue::from_static("Accept"));
    Some(resp)
}

fn httpdate_in_a_year() -> String {
    (chrono::Utc::now() + chrono::Duration::days(365))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}
