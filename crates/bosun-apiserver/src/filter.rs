//! Which objects a LIST, WATCH or DELETECOLLECTION concerns: label and field selectors
//! from the query, checked against the labels and fields the cache pulled out of each
//! object once.

use bosun_api::selector::{format_label_selector, FieldSelector, LabelSelector};
use bosun_api::StatusError;
use serde_json::Value;

use crate::cache::CachedObject;
use crate::kinds;
use crate::registry::storage_def;
use crate::request::{Query, ResourcePath};

/// The selection of a request.
#[derive(Debug, Clone)]
pub struct Filter {
    pub name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// Everything.
    pub fn everything() -> Filter {
        Filter {
            name: None,
            labels: LabelSelector::everything(),
            fields: FieldSelector::everything(),
        }
    }

    /// From `labelSelector` and `fieldSelector`; unknown fields are refused as upstream
    /// does (`field label not supported: foo`).
    pub fn from_query(rp: &ResourcePath, q: &Query) -> Result<Filter, StatusError> {
        let labels = match q.get("labelSelector") {
            Some(s) if !s.trim().is_empty() => {
                LabelSelector::parse(s).map_err(|e| StatusError::bad_request(e.to_string()))?
            }
            _ => LabelSelector::everything(),
        };
        let fields = match q.get("fieldSelector") {
            Some(s) if !s.trim().is_empty() => {
                FieldSelector::parse(s).map_err(|e| StatusError::bad_request(e.to_string()))?
            }
            _ => FieldSelector::everything(),
        };
        let def = storage_def(rp.def);
        let supported = kinds::ops_for(def.storage_group, def.kind)
            .map(|o| o.field_names())
            .unwrap_or_default();
        fields
            .check_supported(|f| {
                f == "metadata.name" || f == "metadata.namespace" || supported.contains(&f)
            })
            .map_err(|e| StatusError::bad_request(e.to_string()))?;
        Ok(Filter {
            name: None,
            labels,
            fields,
        })
    }

    pub fn matches(&self, o: &CachedObject) -> bool {
        if let Some(n) = &self.name {
            if *n != o.name {
                return false;
            }
        }
        self.labels.matches(&o.labels) && self.fields.matches(|f| o.field(f))
    }
}

/// The string form of a LabelSelector object (for a Scale's status.selector).
pub fn label_selector_string(v: &Value) -> String {
    match serde_json::from_value(v.clone()) {
        Ok(sel) => format_label_selector(Some(&sel)),
        Err(_) => String::new(),
    }
}
