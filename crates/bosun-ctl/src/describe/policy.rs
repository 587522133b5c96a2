//! kubectl's describers for PriorityClass (`describePriorityClass`), LimitRange
//! (`describeLimitRange`) and ResourceQuota (`describeQuota`), line for line.

use std::collections::BTreeSet;

use bosun_api::quantity::Quantity;
use serde_json::Value;

use super::fmt::{arr, format_labels, parse_qty, qty, s, string_map, w, Out};
use super::{describe_events, Events};
use crate::error::Result;

/// `describePriorityClass`.
pub(crate) async fn priority_class(pc: &Value, ev: &Events) -> Result<String> {
    let mut o = Out::new();
    w!(o, 0, "Name:\t{}\n", s(pc, "/metadata/name"));
    w!(
        o,
        0,
        "Value:\t{}\n",
        pc.get("value").and_then(Value::as_i64).unwrap_or(0)
    );
    w!(
        o,
        0,
        "GlobalDefault:\t{}\n",
        pc.get("globalDefault")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    );
    w!(o, 0, "PreemptionPolicy:\t{}\n", s(pc, "/preemptionPolicy"));
    w!(o, 0, "Description:\t{}\n", s(pc, "/description"));
    // labels.FormatLabels of the whole map: the last-applied annotation included.
    w!(
        o,
        0,
        "Annotations:\t{}\n",
        format_labels(&string_map(pc, "/metadata/annotations"))
    );
    describe_events(&mut o, ev);
    Ok(o.finish())
}

/// `describeLimitRange`: one row per limit item and resource (kubectl ranges over a Go map,
/// so several resources in one item come in any order; here by name).
pub(crate) async fn limit_range(lr: &Value) -> Result<String> {
    let mut o = Out::new();
    w!(o, 0, "Name:\t{}\n", s(lr, "/metadata/name"));
    w!(o, 0, "Namespace:\t{}\n", s(lr, "/metadata/namespace"));
    o.w(
        0,
        "Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio\n",
    );
    o.w(
        0,
        "----\t--------\t---\t---\t---------------\t-------------\t-----------------------\n",
    );
    for item in arr(lr, "/spec/limits") {
        let columns = [
            "/min",
            "/max",
            "/defaultRequest",
            "/default",
            "/maxLimitRequestRatio",
        ];
        let resources: BTreeSet<&String> = columns
            .iter()
            .filter_map(|c| item.pointer(c).and_then(Value::as_object))
            .flat_map(|m| m.keys())
            .collect();
        for r in resources {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| {
                    item.pointer(c)
                        .and_then(|m| m.get(r.as_str()))
                        .map_or("-".to_string(), qty)
                })
                .collect();
            w!(o, 0, "{}\t{r}\t{}\n", s(item, "/type"), cells.join("\t"));
        }
    }
    Ok(o.finish())
}

/// `helpTextForResourceQuotaScope`.
fn scope_help(scope: &str) -> &'static str {
    match scope {
        "Terminating" => "Matches all pods that have an active deadline. These pods have a limited lifespan on a node before being actively terminated by the system.",
        "NotTerminating" => "Matches all pods that do not have an active deadline. These pods usually include long running pods whose container command is not expected to terminate.",
        "BestEffort" => "Matches all pods that do not have resource requirements set. These pods have a best effort quality of service.",
        "NotBestEffort" => "Matches all pods that have at least one resource requirement set. These pods have a burstable or guaranteed quality of service.",
        _ => "",
    }
}

/// `describeQuota`: the status's hard limits by resource name, each with what is used (in
/// the hard limit's format, as kubectl re-formats it).
pub(crate) async fn resource_quota(q: &Value) -> Result<String> {
    let mut o = Out::new();
    w!(o, 0, "Name:\t{}\n", s(q, "/metadata/name"));
    w!(o, 0, "Namespace:\t{}\n", s(q, "/metadata/namespace"));
    let mut scopes: Vec<&str> = arr(q, "/spec/scopes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !scopes.is_empty() {
        scopes.sort();
        w!(o, 0, "Scopes:\t{}\n", scopes.join(", "));
        for scope in &scopes {
            let help = scope_help(scope);
            if !help.is_empty() {
                w!(o, 0, " * {help}\n");
            }
        }
    }
    o.w(0, "Resource\tUsed\tHard\n");
    o.w(0, "--------\t----\t----\n");
    let hard = q.pointer("/status/hard").and_then(Value::as_object);
    let mut names: Vec<&String> = hard.into_iter().flatten().map(|(k, _)| k).collect();
    names.sort();
    for name in names {
        let h = parse_qty(q.pointer("/status/hard").and_then(|m| m.get(name.as_str())));
        let mut u: Quantity =
            parse_qty(q.pointer("/status/used").and_then(|m| m.get(name.as_str())));
        if u.format() != h.format() {
            u = Quantity::new(u.value(), h.format());
        }
        w!(
            o,
            0,
            "{name}\t{}\t{}\n",
            u.canonical_string(),
            h.canonical_string()
        );
    }
    Ok(o.finish())
}
