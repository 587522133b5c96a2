//! Small helpers the per-kind strategies share: optional-field access, JSON bad values,
//! immutability checks, int-or-percent and label-selector matching.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value;

use crate::field::{FieldError, FieldErrorList, Path};
use crate::names;

/// The string in an optional field, `""` when absent (Go's zero value).
pub(crate) fn s(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

/// An object as a bad value in a field error.
pub(crate) fn jv<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// `spec` → `spec` path.
pub(crate) fn p(root: &str) -> Path {
    Path::root(root)
}

/// Upstream's `ValidateImmutableField`.
pub(crate) fn immutable<T: Serialize + PartialEq>(new: &T, old: &T, path: &Path) -> FieldErrorList {
    if new == old {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            path,
            jv(new),
            names::FIELD_IMMUTABLE_ERROR_MSG,
        )]
    }
}

/// A percentage's value, if `v` is a valid percent string.
pub(crate) fn percent_value(v: &IntOrString) -> Option<i64> {
    match v {
        IntOrString::String(s) if names::is_valid_percent(s).is_empty() => {
            s.trim_end_matches('%').parse().ok()
        }
        _ => None,
    }
}

/// Upstream's `getIntOrPercentValue` (a non-number string counts as 0).
pub(crate) fn int_or_percent_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(_) => percent_value(v).unwrap_or(0),
    }
}

/// Upstream's `ValidatePositiveIntOrPercent`.
pub(crate) fn validate_positive_int_or_percent(v: &IntOrString, path: &Path) -> FieldErrorList {
    match v {
        IntOrString::String(s) => names::is_valid_percent(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, s.as_str(), m))
            .collect(),
        IntOrString::Int(i) => names::validate_nonnegative(i64::from(*i), path),
    }
}

/// Upstream's `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(v: &IntOrString, path: &Path) -> FieldErrorList {
    match (v, percent_value(v)) {
        (IntOrString::String(s), Some(pct)) if pct > 100 => vec![FieldError::invalid(
            path,
            s.as_str(),
            "must not be greater than 100%",
        )],
        _ => Vec::new(),
    }
}

/// What `metav1.LabelSelectorAsSelector` makes of a selector: a selector, or `Invalid` when
/// it does not convert (bad key, value or operator).
pub(crate) enum Selector {
    Invalid,
    Valid(crate::selector::LabelSelector),
}

impl Selector {
    pub(crate) fn from(sel: Option<&LabelSelector>) -> Selector {
        match crate::selector::LabelSelector::from_api(sel) {
            Ok(s) => Selector::Valid(s),
            Err(_) => Selector::Invalid,
        }
    }

    /// Upstream's `selector.Empty()`: matches everything.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Selector::Valid(s) if s.is_empty())
    }

    pub(crate) fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        match self {
            Selector::Invalid => false,
            Selector::Valid(s) => s.matches_labels(labels),
        }
    }
}

/// Whether an equality-based selector map (RC, Service) matches a label set. An empty map
/// is upstream's "empty selector".
pub(crate) fn map_selector_matches(
    sel: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors_match_as_upstream() {
        let labels = BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "fe".to_string()),
        ]);
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["fe".into(), "be".into()]),
                },
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert!(Selector::from(Some(&sel)).matches(Some(&labels)));
        assert!(!Selector::from(Some(&sel)).matches(None));
        assert!(!Selector::from(None).matches(Some(&labels)));
        assert!(!Selector::from(None).is_empty());
        assert!(!Selector::from(None).matches(None));
        assert!(Selector::from(Some(&LabelSelector::default())).is_empty());
        let bad = LabelSelector {
            match_labels: Some(BTreeMap::from([("a b".to_string(), "x".to_string())])),
            match_expressions: None,
        };
        assert!(matches!(Selector::from(Some(&bad)), Selector::Invalid));
    }

    #[test]
    fn int_or_percent() {
        assert_eq!(int_or_percent_value(&IntOrString::String("25%".into())), 25);
        assert_eq!(int_or_percent_value(&IntOrString::Int(3)), 3);
        assert_eq!(
            not_more_than_100_percent(&IntOrString::String("101%".into()), &p("x")).len(),
            1
        );
        assert_eq!(
            validate_positive_int_or_percent(&IntOrString::Int(-1), &p("x")).len(),
            1
        );
        assert_eq!(
            validate_positive_int_or_percent(&IntOrString::String("x".into()), &p("x")).len(),
            1
        );
    }
}
