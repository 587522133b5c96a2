//! The networking.k8s.io NetworkPolicy table (upstream's `printNetworkPolicy`: NAME,
//! POD-SELECTOR, AGE).

use chrono::{DateTime, Utc};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::{json, Value};

use super::format::translate_timestamp_since;
use super::{Column, Printer, AGE, NAME};
use crate::selector::format_label_selector;

/// Upstream describes the column with extensions/v1beta1's `NetworkPolicySpec.podSelector`.
const POD_SELECTOR: &str = "Selects the pods to which this NetworkPolicy object applies. The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.";

static NETWORK_POLICY_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Pod-Selector", "string", POD_SELECTOR),
    AGE,
];

impl Printer for NetworkPolicy {
    fn columns() -> &'static [Column] {
        NETWORK_POLICY_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        // A missing podSelector is the empty one (matches every pod): "<none>", as upstream.
        let sel = self
            .spec
            .as_ref()
            .and_then(|s| s.pod_selector.clone())
            .unwrap_or_default();
        vec![
            json!(self.metadata.name.as_deref().unwrap_or("")),
            json!(format_label_selector(Some(&sel))),
            json!(translate_timestamp_since(
                self.metadata.creation_timestamp.as_ref(),
                now
            )),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn network_policies() {
        let now = Utc
            .with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("valid time");
        let created =
            (now - Duration::minutes(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let np: NetworkPolicy = serde_json::from_value(json!({
            "metadata": {"name": "db", "creationTimestamp": created},
            "spec": {"podSelector": {"matchLabels": {"app": "db", "tier": "be"},
                "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}}
        }))
        .expect("fixture");
        assert_eq!(
            np.row(now),
            vec![
                json!("db"),
                json!("app=db,env notin (dev),tier=be"),
                json!("5m")
            ]
        );
        let all: NetworkPolicy = serde_json::from_value(json!({
            "metadata": {"name": "deny"}, "spec": {"podSelector": {}}
        }))
        .expect("fixture");
        assert_eq!(all.row(now)[1], json!("<none>"));
        let bare: NetworkPolicy =
            serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("fixture");
        assert_eq!(bare.row(now)[1], json!("<none>"));
        assert_eq!(NetworkPolicy::columns()[1].name, "Pod-Selector");
    }
}
