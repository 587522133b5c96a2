//! ResourceQuota evaluation shared by the API server's quota admission and the quota
//! controller, as upstream's `pkg/quota/v1/evaluator/core`: what one object uses of each
//! quota resource name (`pods`, `requests.cpu`, `count/deployments.apps`, …), which quotas
//! apply to it (scopes), and the "must specify" constraints on pods.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Pod, ResourceQuota};
use serde_json::Value;

use crate::quantity::{Format, Quantity};

/// Usage or limits by resource name.
pub type ResourceList = BTreeMap<String, Quantity>;

/// The resources a pod quota requires every container to state (upstream's
/// `validationSet`).
const POD_VALIDATION_SET: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

fn one() -> Quantity {
    Quantity::new(1, Format::DecimalSI)
}

/// `count/<resource>[.<group>]`, upstream's `ObjectCountQuotaResourceNameFor`.
pub fn count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// Parses a resource list of the API (JSON object of quantity strings), skipping bad values.
pub fn parse_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| Some((k.clone(), Quantity::parse(q.as_str()?).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn typed_list(
    l: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> ResourceList {
    l.map(|m| {
        m.iter()
            .filter_map(|(k, q)| Some((k.clone(), Quantity::from_api(q).ok()?)))
            .collect()
    })
    .unwrap_or_default()
}

/// Adds `b` into `a`, resource by resource.
pub fn add(a: &mut ResourceList, b: &ResourceList) {
    for (k, v) in b {
        let sum = match a.get(k) {
            Some(x) => x.add(v),
            None => v.clone(),
        };
        a.insert(k.clone(), sum);
    }
}

/// `used=1,requests.cpu=500m` with names sorted, as upstream's `prettyPrint`.
pub fn pretty(l: &ResourceList) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn container_lists(c: &Container) -> (ResourceList, ResourceList) {
    let r = c.resources.as_ref();
    (
        typed_list(r.and_then(|r| r.requests.as_ref())),
        typed_list(r.and_then(|r| r.limits.as_ref())),
    )
}

/// The pod's effective requests and limits (upstream's `PodRequests`/`PodLimits`): the
/// sum over containers, at least the largest init container, plus the overhead.
pub fn pod_requests_and_limits(pod: &Pod) -> (ResourceList, ResourceList) {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut req = ResourceList::new();
    let mut lim = ResourceList::new();
    for c in &spec.containers {
        let (r, l) = container_lists(c);
        add(&mut req, &r);
        add(&mut lim, &l);
    }
    for c in spec.init_containers.iter().flatten() {
        let (r, l) = container_lists(c);
        for (src, dst) in [(r, &mut req), (l, &mut lim)] {
            for (k, v) in src {
                if dst.get(&k).is_none_or(|cur| v > *cur) {
                    dst.insert(k, v);
                }
            }
        }
    }
    let overhead = typed_list(spec.overhead.as_ref());
    add(&mut req, &overhead);
    add(&mut lim, &overhead);
    (req, lim)
}

/// Upstream's `podComputeUsageHelper`.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), one());
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(r) {
            out.insert(r.into(), q.clone());
            out.insert(format!("requests.{r}"), q.clone());
        }
        if let Some(q) = limits.get(r) {
            out.insert(format!("limits.{r}"), q.clone());
        }
    }
    for (k, q) in requests {
        if k.starts_with("hugepages-") {
            out.insert(k.clone(), q.clone());
            out.insert(format!("requests.{k}"), q.clone());
        } else if k.contains('/') && !k.starts_with("kubernetes.io/") && !k.starts_with("requests.")
        {
            out.insert(format!("requests.{k}"), q.clone());
        }
    }
    out
}

fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Whether a pod still counts against compute quota (upstream's `QuotaV1Pod`: not
/// finished; a pod being deleted counts until its grace period is over).
pub fn pod_counts(pod: &Pod, now: chrono::DateTime<chrono::Utc>) -> bool {
    if matches!(pod_phase(pod), "Succeeded" | "Failed") {
        return false;
    }
    if let (Some(ts), Some(grace)) = (
        pod.metadata.deletion_timestamp.as_ref(),
        pod.metadata.deletion_grace_period_seconds,
    ) {
        let deleted_at = chrono::DateTime::from_timestamp(ts.0.as_second(), 0).unwrap_or(now);
        if now > deleted_at + chrono::Duration::seconds(grace) {
            return false;
        }
    }
    true
}

/// What a pod uses: `count/pods` always, compute resources while it is not finished.
pub fn pod_usage(pod: &Pod, now: chrono::DateTime<chrono::Utc>) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(count_name("", "pods"), one());
    if !pod_counts(pod, now) {
        return out;
    }
    let (req, lim) = pod_requests_and_limits(pod);
    let mut u = compute_usage(&req, &lim);
    u.append(&mut out);
    u
}

fn service_usage(obj: &Value) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("services".into(), one());
    let ty = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let ports = obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0) as i64;
    let node_ports = match ty {
        "NodePort" => ports,
        "LoadBalancer" => {
            if obj.pointer("/spec/allocateLoadBalancerNodePorts") == Some(&Value::Bool(false)) {
                0
            } else {
                ports
            }
        }
        _ => 0,
    };
    out.insert(
        "services.nodeports".into(),
        Quantity::new(node_ports, Format::DecimalSI),
    );
    out.insert(
        "services.loadbalancers".into(),
        Quantity::new((ty == "LoadBalancer") as i64, Format::DecimalSI),
    );
    out
}

fn pvc_class(obj: &Value) -> String {
    obj.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .or_else(|| obj.pointer("/spec/storageClassName"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn pvc_usage(obj: &Value) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("persistentvolumeclaims".into(), one());
    let class = pvc_class(obj);
    if !class.is_empty() {
        out.insert(
            format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
            one(),
        );
    }
    // The larger of the request and the status capacity (a resize may be in flight).
    let req = parse_list(obj.pointer("/spec/resources/requests"));
    let cap = parse_list(obj.pointer("/status/capacity"));
    let storage = match (req.get("storage"), cap.get("storage")) {
        (Some(r), Some(c)) if c > r => Some(c.clone()),
        (Some(r), _) => Some(r.clone()),
        (None, c) => c.cloned(),
    };
    if let Some(s) = storage {
        out.insert("requests.storage".into(), s.clone());
        if !class.is_empty() {
            out.insert(
                format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                s,
            );
        }
    }
    out
}

/// What one object of `group`/`plural` uses (a Pod as JSON is decoded for its
/// resources).
pub fn usage(
    group: &str,
    plural: &str,
    obj: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> ResourceList {
    let mut out = match (group, plural) {
        ("", "pods") => {
            return serde_json::from_value::<Pod>(obj.clone())
                .map(|p| pod_usage(&p, now))
                .unwrap_or_default()
        }
        ("", "services") => service_usage(obj),
        ("", "persistentvolumeclaims") => pvc_usage(obj),
        ("", legacy @ ("configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas")) => {
            [(legacy.to_string(), one())].into()
        }
        _ => ResourceList::new(),
    };
    out.insert(count_name(group, plural), one());
    out
}

/// Whether the quota's scopes select this object: scopes only select pods
/// (upstream's object count evaluators match no scope).
pub fn scopes_match(quota: &ResourceQuota, group: &str, plural: &str, obj: &Value) -> bool {
    let spec = quota.spec.clone().unwrap_or_default();
    let mut scopes: Vec<String> = spec.scopes.unwrap_or_default();
    let selector_scopes: Vec<(String, String, Vec<String>)> = spec
        .scope_selector
        .and_then(|s| s.match_expressions)
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.scope_name, e.operator, e.values.unwrap_or_default()))
        .collect();
    if scopes.is_empty() && selector_scopes.is_empty() {
        return true;
    }
    if (group, plural) != ("", "pods") {
        return false;
    }
    let Ok(pod) = serde_json::from_value::<Pod>(obj.clone()) else {
        return false;
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let terminating = spec.active_deadline_seconds.is_some_and(|s| s >= 0);
    let (req, lim) = pod_requests_and_limits(&pod);
    let best_effort = req.is_empty() && lim.is_empty();
    let scope_is = |name: &str| -> Option<bool> {
        Some(match name {
            "Terminating" => terminating,
            "NotTerminating" => !terminating,
            "BestEffort" => best_effort,
            "NotBestEffort" => !best_effort,
            _ => return None,
        })
    };
    for s in scopes.drain(..) {
        if scope_is(&s) != Some(true) {
            return false;
        }
    }
    for (name, op, values) in selector_scopes {
        let ok = match name.as_str() {
            "PriorityClass" => {
                let pc = spec.priority_class_name.clone().unwrap_or_default();
                match op.as_str() {
                    "In" => values.contains(&pc),
                    "NotIn" => !values.contains(&pc),
                    "Exists" => !pc.is_empty(),
                    "DoesNotExist" => pc.is_empty(),
                    _ => false,
                }
            }
            other => match (scope_is(other), op.as_str()) {
                (Some(v), "Exists") => v,
                (Some(v), "DoesNotExist") => !v,
                _ => false,
            },
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The quota resource names `usage` may produce for one kind that appear in `hard`
/// (upstream's `MatchingResources`).
pub fn matching_resources<'a>(
    hard: &'a ResourceList,
    group: &str,
    plural: &str,
) -> Vec<&'a String> {
    let count = count_name(group, plural);
    hard.keys()
        .filter(|k| {
            **k == count
                || match (group, plural) {
                    ("", "pods") => {
                        matches!(
                            k.as_str(),
                            "pods"
                                | "cpu"
                                | "memory"
                                | "ephemeral-storage"
                                | "requests.cpu"
                                | "requests.memory"
                                | "requests.ephemeral-storage"
                                | "limits.cpu"
                                | "limits.memory"
                                | "limits.ephemeral-storage"
                        ) || k.starts_with("hugepages-")
                            || k.starts_with("requests.")
                    }
                    ("", "services") => {
                        matches!(
                            k.as_str(),
                            "services" | "services.nodeports" | "services.loadbalancers"
                        )
                    }
                    ("", "persistentvolumeclaims") => {
                        k.as_str() == "persistentvolumeclaims"
                            || k.as_str() == "requests.storage"
                            || k.ends_with(".storageclass.storage.k8s.io/requests.storage")
                            || k.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
                    }
                    (
                        "",
                        r
                        @ ("configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas"),
                    ) => k.as_str() == r,
                    _ => false,
                }
        })
        .collect()
}

/// Upstream's pod `Constraints`: a quota on cpu or memory requires every container to
/// state that request or limit. The error reads `must specify limits.cpu for: app`.
pub fn pod_constraints(required: &[&String], pod: &Pod) -> Result<(), String> {
    let required: BTreeSet<&str> = required
        .iter()
        .map(|s| s.as_str())
        .filter(|s| POD_VALIDATION_SET.contains(s))
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let (r, l) = container_lists(c);
        let have = compute_usage(&r, &l);
        for res in &required {
            if !have.contains_key(*res) {
                missing.entry(res).or_default().insert(c.name.clone());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_default()
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn pod_usage_as_upstream() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "300m", "nvidia.com/gpu": "1"}}},
        ]}}));
        let u = pod_usage(&p, chrono::Utc::now());
        assert_eq!(u["pods"], q("1"));
        assert_eq!(u["count/pods"], q("1"));
        assert_eq!(u["requests.cpu"], q("400m"));
        assert_eq!(u["cpu"], q("400m"));
        assert_eq!(u["limits.cpu"], q("200m"));
        assert_eq!(u["requests.memory"], q("64Mi"));
        assert_eq!(u["requests.nvidia.com/gpu"], q("1"));
        let mut done = p.clone();
        done.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        assert_eq!(pod_usage(&done, chrono::Utc::now()).len(), 1);
    }

    #[test]
    fn services_and_claims() {
        let now = chrono::Utc::now();
        let s = usage(
            "",
            "services",
            &json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}}),
            now,
        );
        assert_eq!(s["services.nodeports"], q("2"));
        assert_eq!(s["services.loadbalancers"], q("0"));
        assert_eq!(s["count/services"], q("1"));
        let c = usage(
            "",
            "persistentvolumeclaims",
            &json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1Gi"}}}}),
            now,
        );
        assert_eq!(c["requests.storage"], q("1Gi"));
        assert_eq!(
            c["gold.storageclass.storage.k8s.io/requests.storage"],
            q("1Gi")
        );
        let d = usage("apps", "deployments", &json!({}), now);
        assert_eq!(d.keys().collect::<Vec<_>>(), ["count/deployments.apps"]);
    }

    #[test]
    fn constraints_message() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "web", "resources": {"requests": {"cpu": "1"}}},
            {"name": "side"},
        ]}}));
        let hard: Vec<String> = vec!["limits.cpu".into(), "requests.cpu".into(), "pods".into()];
        let req: Vec<&String> = hard.iter().collect();
        assert_eq!(
            pod_constraints(&req, &p),
            Err("must specify limits.cpu for: side,web; requests.cpu for: side".into())
        );
    }

    #[test]
    fn scopes() {
        let rq: ResourceQuota =
            serde_json::from_value(json!({"spec": {"scopes": ["BestEffort"]}})).unwrap_or_default();
        let be = json!({"spec": {"containers": [{"name": "a"}]}});
        let burst = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
        assert!(scopes_match(&rq, "", "pods", &be));
        assert!(!scopes_match(&rq, "", "pods", &burst));
        assert!(!scopes_match(&rq, "", "services", &be));
        assert_eq!(pretty(&[("pods".to_string(), q("2"))].into()), "pods=2");
    }
}
