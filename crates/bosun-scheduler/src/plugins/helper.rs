//! Matching rules several plugins share: tolerations against taints, node selector
//! terms against a node (upstream `component-helpers/scheduling/corev1`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};

/// Whether `t` tolerates `taint` (upstream `Toleration.ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        // An empty key is valid only with Exists: with Equal it tolerates nothing but
        // an empty-keyed taint.
        "Equal" | "" => {
            (!key.is_empty() || taint.key.is_empty())
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

pub fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// The first taint passing `filter` that no toleration tolerates.
pub fn find_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|t| !tolerations_tolerate(tolerations, t))
}

/// NoSchedule and NoExecute taints keep pods away; PreferNoSchedule only scores.
pub fn do_not_schedule(t: &Taint) -> bool {
    t.effect == "NoSchedule" || t.effect == "NoExecute"
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (value, values.first()) else {
                return false;
            };
            let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether one NodeSelectorTerm matches: all its expressions on labels and all its
/// fields (only `metadata.name` exists) hold; an empty term matches nothing.
pub fn term_matches(
    term: &NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(node_name)))
}

/// Terms are ORed.
pub fn any_term_matches(
    terms: &[NodeSelectorTerm],
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    terms.iter().any(|t| term_matches(t, labels, node_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        serde_json::from_value(json!({"key": key, "value": value, "effect": effect})).unwrap()
    }

    fn tol(v: serde_json::Value) -> Toleration {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn toleration_rules() {
        let t = taint("gpu", "yes", "NoSchedule");
        assert!(tolerates(&tol(json!({"key": "gpu", "value": "yes"})), &t));
        assert!(!tolerates(&tol(json!({"key": "gpu", "value": "no"})), &t));
        assert!(tolerates(
            &tol(json!({"key": "gpu", "operator": "Exists"})),
            &t
        ));
        assert!(tolerates(&tol(json!({"operator": "Exists"})), &t));
        assert!(!tolerates(
            &tol(json!({"key": "gpu", "operator": "Exists", "effect": "NoExecute"})),
            &t
        ));
        assert!(!tolerates(&tol(json!({"value": "yes"})), &t));
        let pref = taint("x", "", "PreferNoSchedule");
        let taints = [pref, t.clone()];
        assert_eq!(
            find_untolerated(&taints, &[], do_not_schedule).map(|t| t.key.as_str()),
            Some("gpu")
        );
    }

    #[test]
    fn selector_terms() {
        let labels: BTreeMap<String, String> = [
            ("zone".to_string(), "a".to_string()),
            ("cores".to_string(), "16".to_string()),
        ]
        .into();
        let term =
            |v: serde_json::Value| -> NodeSelectorTerm { serde_json::from_value(v).unwrap() };
        assert!(term_matches(
            &term(
                json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]})
            ),
            &labels,
            "n1"
        ));
        assert!(!term_matches(
            &term(
                json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]})
            ),
            &labels,
            "n1"
        ));
        assert!(term_matches(
            &term(
                json!({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]},
                                               {"key": "ssd", "operator": "DoesNotExist"}]})
            ),
            &labels,
            "n1"
        ));
        assert!(term_matches(
            &term(
                json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})
            ),
            &labels,
            "n1"
        ));
        assert!(!term_matches(&term(json!({})), &labels, "n1"));
    }
}
