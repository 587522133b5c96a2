//! What a request asks for: the resource, namespace, name and subresource from the URL
//! (upstream's `RequestInfo`), and the query parameters of each verb.

use std::collections::HashMap;

use bosun_api::resources::{self, ResourceDef};
use bosun_api::StatusError;

/// The parsed path of a resource request.
#[derive(Clone, Debug)]
pub struct ResourcePath {
    pub def: &'static ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Subresources of a namespace that are not resources inside it.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parses `/api/v1/...` or `/apis/{group}/{version}/...` after the group-version.
/// Returns None when the path is not a resource path at all.
pub fn parse_resource_path(path: &str) -> Result<Option<ResourcePath>, StatusError> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let (group, version, rest): (&str, &str, &[String]) = match segs.first().map(String::as_str) {
        Some("api") if segs.len() >= 3 => ("", segs[1].as_str(), &segs[2..]),
        Some("apis") if segs.len() >= 4 => (segs[1].as_str(), segs[2].as_str(), &segs[3..]),
        _ => return Ok(None),
    };
    let mut parts = rest;
    let mut namespace = None;
    if parts[0] == "namespaces" && parts.len() > 1 {
        namespace = Some(parts[1].clone());
        if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2].as_str()) {
            parts = &parts[2..];
        }
    }
    let Some(def) = resources::find(group, version, &parts[0]) else {
        return Err(StatusError::path_not_found());
    };
    if def.plural == "namespaces" {
        // /api/v1/namespaces/{name}[/status|finalize]
        let name = namespace.take();
        let sub = parts.get(2).cloned();
        if parts.len() > 3 {
            return Err(StatusError::path_not_found());
        }
        return Ok(Some(ResourcePath {
            def,
            namespace: None,
            name,
            subresource: sub,
        }));
    }
    if !def.namespaced && namespace.is_some() {
        return Err(StatusError::path_not_found());
    }
    let name = parts.get(1).cloned();
    let subresource = parts.get(2).cloned();
    if parts.len() > 3 && subresource.as_deref() != Some("proxy") {
        return Err(StatusError::path_not_found());
    }
    if let Some(sub) = &subresource {
        if def.subresource(sub).is_none() {
            return Err(StatusError::path_not_found());
        }
    }
    if name.as_deref() == Some("") {
        return Err(StatusError::path_not_found());
    }
    Ok(Some(ResourcePath {
        def,
        namespace,
        name,
        subresource,
    }))
}

/// Query parameters, decoded.
#[derive(Clone, Debug, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }
    pub fn int(&self, k: &str) -> Result<Option<i64>, StatusError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                StatusError::bad_request(format!(
                    "invalid value {v:?} for query parameter {k}: not an integer"
                ))
            }),
        }
    }
    /// `dryRun=All`.
    pub fn dry_run(&self) -> Result<bool, StatusError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(v) => Err(StatusError::bad_request(format!(
                "Invalid dry run value: {v}: supported values: \"All\""
            ))),
        }
    }
    /// `fieldValidation` (default Warn, as upstream when kubectl does not send it...
    /// upstream's default for a missing parameter is Warn).
    pub fn field_validation(&self) -> Result<FieldValidation, StatusError> {
        match self.get("fieldValidation") {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(v) => Err(StatusError::bad_request(format!(
                "fieldValidation parameter unsupported: {v:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// What to do with unknown and duplicate fields in a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ResourcePath {
        parse_resource_path(s)
            .expect("parses")
            .expect("is a resource path")
    }

    #[test]
    fn paths_parse_like_upstream_request_info() {
        let r = p("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(
            (
                r.def.plural,
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("pods", Some("default"), Some("web"), Some("status"))
        );
        let r = p("/api/v1/namespaces/dev");
        assert_eq!(
            (r.def.plural, r.namespace, r.name.as_deref()),
            ("namespaces", None, Some("dev"))
        );
        let r = p("/api/v1/namespaces/dev/status");
        assert_eq!(
            (r.def.plural, r.name.as_deref(), r.subresource.as_deref()),
            ("namespaces", Some("dev"), Some("status"))
        );
        let r = p("/api/v1/namespaces");
        assert_eq!((r.def.plural, r.name), ("namespaces", None));
        let r = p("/apis/apps/v1/deployments");
        assert_eq!((r.def.plural, r.namespace), ("deployments", None));
        let r = p("/api/v1/nodes/n1");
        assert_eq!(r.name.as_deref(), Some("n1"));
        assert!(parse_resource_path("/api/v1/namespaces/default/widgets").is_err());
        assert!(parse_resource_path("/api/v1/namespaces/default/pods/a/bogus").is_err());
        assert!(parse_resource_path("/api").expect("ok").is_none());
        assert!(parse_resource_path("/api/v1").expect("ok").is_none());
    }
}
