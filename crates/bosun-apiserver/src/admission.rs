//! Admission on create, as upstream's admission plugins that bosun runs built in:
//!
//! - `DefaultTolerationSeconds` (mutating, before defaulting): every pod tolerates the
//!   `not-ready` and `unreachable` NoExecute taints for 300 s unless it says otherwise.
//! - `LimitRanger` (after defaulting): containers get the namespace's LimitRange
//!   `default` limits and `defaultRequest` requests they lack (noted in the
//!   `kubernetes.io/limit-ranger` annotation), then min, max and maxLimitRequestRatio are
//!   enforced per Container and per Pod; violations are 403 Forbidden with upstream's
//!   messages.
//! - `ResourceQuota`: an object that would take a quota's usage over its hard limit is
//!   refused (403, `exceeded quota: <name>, requested: …, used: …, limited: …`), a pod
//!   without the requests or limits a quota tracks too (`must specify …`). The quota's
//!   `status.used` is raised in the same compare-and-swap as the check, as upstream does,
//!   so concurrent creates cannot overshoot; the quota controller recomputes it from the
//!   objects themselves.
//! - `DefaultStorageClass`: a PersistentVolumeClaim created without `storageClassName`
//!   (absent, not `""`) and without the beta class annotation gets the default
//!   StorageClass (annotated `storageclass.kubernetes.io/is-default-class: "true"`; the
//!   newest when several are), before the quota check so class quotas see it.

use std::collections::BTreeMap;

use bosun_api::quantity::Quantity;
use bosun_api::quota::{self, ResourceList};
use bosun_api::resources;
use bosun_api::StatusError;
use bosun_store::Error as StoreError;
use bytes::Bytes;
use k8s_openapi::api::core::v1::{LimitRange, LimitRangeItem, Pod, ResourceQuota, Toleration};
use serde_json::{json, Value};

use crate::cache;
use crate::kinds::KindOps;
use crate::registry::Registry;
use crate::request::ResourcePath;

/// Upstream's `--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds` default.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// How the admission plugins behave (the API server's flags).
#[derive(Clone, Debug)]
pub struct AdmissionConfig {
    /// `--default-not-ready-toleration-seconds` (300).
    pub default_not_ready_toleration_seconds: i64,
    /// `--default-unreachable-toleration-seconds` (300).
    pub default_unreachable_toleration_seconds: i64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            default_not_ready_toleration_seconds: DEFAULT_TOLERATION_SECONDS,
            default_unreachable_toleration_seconds: DEFAULT_TOLERATION_SECONDS,
        }
    }
}

/// Whether a toleration (JSON) tolerates every taint with `key` and effect NoExecute
/// (upstream's check: the key matches or is empty with Exists, and the effect is empty or
/// NoExecute).
fn tolerates_no_execute(tol: &Value, key: &str) -> bool {
    let effect = tol.get("effect").and_then(Value::as_str).unwrap_or("");
    if !effect.is_empty() && effect != "NoExecute" {
        return false;
    }
    let k = tol.get("key").and_then(Value::as_str).unwrap_or("");
    let op = tol
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or("Equal");
    (k.is_empty() && op == "Exists") || k == key
}

/// `DefaultTolerationSeconds`: adds the not-ready and unreachable tolerations a pod lacks.
pub fn default_toleration_seconds(pod: &mut Value, cfg: &AdmissionConfig) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tols = spec.entry("tolerations").or_insert_with(|| json!([]));
    if tols.is_null() {
        *tols = json!([]);
    }
    let Some(list) = tols.as_array_mut() else {
        return;
    };
    let has_not_ready = list
        .iter()
        .any(|t| tolerates_no_execute(t, TAINT_NOT_READY));
    let has_unreachable = list
        .iter()
        .any(|t| tolerates_no_execute(t, TAINT_UNREACHABLE));
    if !has_not_ready {
        list.push(json!({
            "key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": cfg.default_not_ready_toleration_seconds,
        }));
    }
    if !has_unreachable {
        list.push(json!({
            "key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": cfg.default_unreachable_toleration_seconds,
        }));
    }
}

/// [`default_toleration_seconds`] on a typed pod (the same tolerations, in the same order).
pub fn default_pod_tolerations(pod: &mut Pod, cfg: &AdmissionConfig) {
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    let tolerates = |t: &Toleration, key: &str| {
        let effect = t.effect.as_deref().unwrap_or("");
        if !effect.is_empty() && effect != "NoExecute" {
            return false;
        }
        let k = t.key.as_deref().unwrap_or("");
        let op = t.operator.as_deref().unwrap_or("Equal");
        (k.is_empty() && op == "Exists") || k == key
    };
    let has_not_ready = list.iter().any(|t| tolerates(t, TAINT_NOT_READY));
    let has_unreachable = list.iter().any(|t| tolerates(t, TAINT_UNREACHABLE));
    let toleration = |key: &str, seconds: i64| Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some("NoExecute".to_string()),
        toleration_seconds: Some(seconds),
        value: None,
    };
    if !has_not_ready {
        list.push(toleration(
            TAINT_NOT_READY,
            cfg.default_not_ready_toleration_seconds,
        ));
    }
    if !has_unreachable {
        list.push(toleration(
            TAINT_UNREACHABLE,
            cfg.default_unreachable_toleration_seconds,
        ));
    }
}

/// Whether [`admit_create`] has work to do for a create in `rp`'s namespace, which it
/// does on the JSON tree: LimitRanger for pods when the namespace has LimitRanges,
/// DefaultStorageClass for claims, ResourceQuota when the namespace has quotas.
pub fn needs_tree(reg: &Registry, rp: &ResourcePath) -> bool {
    let Some(ns) = rp.namespace.as_deref() else {
        return false;
    };
    let def = rp.def;
    let any = |plural: &str| {
        resources::find("", "v1", plural)
            .and_then(|d| Some((d, reg.cache.resource(d)?)))
            .is_some_and(|(d, rc)| {
                !rc.snapshot(&cache::resource_prefix(d, Some(ns)))
                    .objects
                    .is_empty()
            })
    };
    let core = def.group.is_empty();
    (core && def.plural == "persistentvolumeclaims")
        || (core && def.plural == "pods" && any("limitranges"))
        || any("resourcequotas")
}

/// The annotation LimitRanger writes on pods it defaulted.
pub const LIMIT_RANGER_ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Compare-and-swap attempts on a quota before giving up.
const CAS_ATTEMPTS: usize = 8;

/// The objects of one namespaced resource in `ns`, from the watch cache.
fn cached<T: serde::de::DeserializeOwned>(
    reg: &Registry,
    group: &str,
    plural: &str,
    ns: &str,
) -> Vec<(String, T)> {
    let Some(def) = resources::find(group, "v1", plural) else {
        return Vec::new();
    };
    let Some(rc) = reg.cache.resource(def) else {
        return Vec::new();
    };
    rc.snapshot(&cache::resource_prefix(def, Some(ns)))
        .objects
        .iter()
        .filter_map(|o| Some((o.key.clone(), serde_json::from_slice(&o.bytes).ok()?)))
        .collect()
}

/// Admission of a new object after the strategy defaulted and validated it: LimitRanger
/// then ResourceQuota. Returns the object as it is to be stored.
pub async fn admit_create(
    reg: &Registry,
    rp: &ResourcePath,
    kops: &dyn KindOps,
    name: &str,
    mut obj: Value,
    dry_run: bool,
) -> Result<Value, StatusError> {
    let Some(ns) = rp.namespace.as_deref() else {
        return Ok(obj);
    };
    let def = rp.def;
    if def.group.is_empty() && def.plural == "pods" {
        let ranges: Vec<(String, LimitRange)> = cached(reg, "", "limitranges", ns);
        if !ranges.is_empty() {
            let mut pod: Pod = serde_json::from_value(obj.clone())
                .map_err(|e| StatusError::bad_request(format!("decoding pod: {e}")))?;
            let items: Vec<&LimitRangeItem> = ranges
                .iter()
                .flat_map(|(_, lr)| lr.spec.iter().flat_map(|s| s.limits.iter()))
                .collect();
            if apply_limit_defaults(&mut pod, &items) {
                let v =
                    serde_json::to_value(&pod).map_err(|e| StatusError::internal(e.to_string()))?;
                // Defaults change the QoS class and need validating like the rest.
                let (v, errs, _) = kops.admit_create(v).map_err(StatusError::internal)?;
                if !errs.is_empty() {
                    return Err(StatusError::invalid(def.group, def.kind, name, &errs));
                }
                obj = v;
                pod = serde_json::from_value(obj.clone())
                    .map_err(|e| StatusError::bad_request(format!("decoding pod: {e}")))?;
            }
            let errs = validate_limits(&pod, &items);
            if !errs.is_empty() {
                let msg = if errs.len() == 1 {
                    errs[0].clone()
                } else {
                    format!("[{}]", errs.join(", "))
                };
                return Err(StatusError::forbidden(def.group, def.plural, name, msg));
            }
        }
    }
    if def.group.is_empty() && def.plural == "persistentvolumeclaims" {
        default_storage_class(reg, &mut obj);
    }
    check_quotas(reg, rp, ns, name, &obj, dry_run).await?;
    Ok(obj)
}

/// The default StorageClass annotations (upstream `IsDefaultAnnotation`).
const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// Upstream's `GetDefaultClass`: of the classes annotated default, the newest (then the
/// first by name).
pub fn default_class_name(classes: &[Value]) -> Option<String> {
    let mut defaults: Vec<(&str, &str)> = classes
        .iter()
        .filter(|c| {
            DEFAULT_CLASS_ANNOTATIONS.iter().any(|a| {
                c.pointer("/metadata/annotations")
                    .and_then(|m| m.get(*a))
                    .and_then(Value::as_str)
                    == Some("true")
            })
        })
        .filter_map(|c| {
            let name = c.pointer("/metadata/name")?.as_str()?;
            let created = c
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("");
            Some((created, name))
        })
        .collect();
    // RFC 3339 timestamps in UTC with whole seconds sort as text.
    defaults.sort_by(|a, b| b.0.cmp(a.0).then(a.1.cmp(b.1)));
    defaults.first().map(|(_, n)| n.to_string())
}

/// `DefaultStorageClass` admission on a claim (JSON).
fn default_storage_class(reg: &Registry, claim: &mut Value) {
    let has_class = claim
        .pointer("/spec/storageClassName")
        .is_some_and(|v| !v.is_null());
    let has_beta = claim
        .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .is_some();
    if has_class || has_beta {
        return;
    }
    let Some(def) = resources::find("storage.k8s.io", "v1", "storageclasses") else {
        return;
    };
    let Some(rc) = reg.cache.resource(def) else {
        return;
    };
    let classes: Vec<Value> = rc
        .snapshot(&cache::resource_prefix(def, None))
        .objects
        .iter()
        .filter_map(|o| serde_json::from_slice(&o.bytes).ok())
        .collect();
    if let (Some(name), Some(spec)) = (
        default_class_name(&classes),
        claim.get_mut("spec").and_then(Value::as_object_mut),
    ) {
        spec.insert("storageClassName".into(), Value::String(name));
    }
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

/// Upstream's `defaultContainerResourceRequirements` + `mergePodResourceRequirements`:
/// whether anything was set.
pub fn apply_limit_defaults(pod: &mut Pod, items: &[&LimitRangeItem]) -> bool {
    let mut default_lim = BTreeMap::new();
    let mut default_req = BTreeMap::new();
    for item in items.iter().filter(|i| i.type_ == "Container") {
        for (k, v) in item.default.iter().flatten() {
            default_lim.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in item.default_request.iter().flatten() {
            default_req.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if default_lim.is_empty() && default_req.is_empty() {
        return false;
    }
    let Some(spec) = pod.spec.as_mut() else {
        return false;
    };
    let mut notes: Vec<String> = Vec::new();
    let groups = [
        ("container", &mut spec.containers),
        (
            "init container",
            spec.init_containers.get_or_insert_with(Vec::new),
        ),
    ];
    for (kind, containers) in groups {
        for c in containers.iter_mut() {
            let res = c.resources.get_or_insert_with(Default::default);
            let mut set_req: Vec<String> = Vec::new();
            let mut set_lim: Vec<String> = Vec::new();
            for (k, v) in &default_lim {
                let lims = res.limits.get_or_insert_with(BTreeMap::new);
                if !lims.contains_key(k) {
                    lims.insert(k.clone(), v.clone());
                    set_lim.push(k.clone());
                }
            }
            for (k, v) in &default_req {
                let reqs = res.requests.get_or_insert_with(BTreeMap::new);
                if !reqs.contains_key(k) {
                    reqs.insert(k.clone(), v.clone());
                    set_req.push(k.clone());
                }
            }
            if res.limits.as_ref().is_some_and(BTreeMap::is_empty) {
                res.limits = None;
            }
            if res.requests.as_ref().is_some_and(BTreeMap::is_empty) {
                res.requests = None;
            }
            set_req.sort();
            set_lim.sort();
            if !set_req.is_empty() {
                notes.push(format!(
                    "{} request for {kind} {}",
                    set_req.join(", "),
                    c.name
                ));
            }
            if !set_lim.is_empty() {
                notes.push(format!(
                    "{} limit for {kind} {}",
                    set_lim.join(", "),
                    c.name
                ));
            }
        }
    }
    if spec.init_containers.as_ref().is_some_and(Vec::is_empty) {
        spec.init_containers = None;
    }
    if notes.is_empty() {
        return false;
    }
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            LIMIT_RANGER_ANNOTATION.into(),
            format!("LimitRanger plugin set: {}", notes.join("; ")),
        );
    true
}

fn min_constraint(
    ty: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let Some(r) = req.get(res) else {
        return Some(format!(
            "minimum {res} usage per {ty} is {enforced}.  No request is specified"
        ));
    };
    if r < enforced {
        return Some(format!(
            "minimum {res} usage per {ty} is {enforced}, but request is {r}"
        ));
    }
    match lim.get(res) {
        Some(l) if l < enforced => Some(format!(
            "minimum {res} usage per {ty} is {enforced}, but limit is {l}"
        )),
        _ => None,
    }
}

fn max_constraint(
    ty: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let Some(l) = lim.get(res) else {
        return Some(format!(
            "maximum {res} usage per {ty} is {enforced}.  No limit is specified"
        ));
    };
    if l > enforced {
        return Some(format!(
            "maximum {res} usage per {ty} is {enforced}, but limit is {l}"
        ));
    }
    match req.get(res) {
        Some(r) if r > enforced => Some(format!(
            "maximum {res} usage per {ty} is {enforced}, but request is {r}"
        )),
        _ => None,
    }
}

fn ratio_constraint(
    ty: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let r = req.get(res).filter(|r| !r.is_zero());
    let Some(r) = r else {
        return Some(format!("{res} max limit to request ratio per {ty} is {enforced}, but no request is specified or request is 0"));
    };
    let l = lim.get(res).filter(|l| !l.is_zero());
    let Some(l) = l else {
        return Some(format!("{res} max limit to request ratio per {ty} is {enforced}, but no limit is specified or limit is 0"));
    };
    let observed = l.as_approximate_f64() / r.as_approximate_f64();
    if observed > enforced.as_approximate_f64() + 1e-9 {
        return Some(format!(
            "{res} max limit to request ratio per {ty} is {enforced}, but provided ratio is {observed:.6}"
        ));
    }
    None
}

fn check_item(
    ty: &str,
    item: &LimitRangeItem,
    req: &ResourceList,
    lim: &ResourceList,
    errs: &mut Vec<String>,
) {
    for (k, v) in typed_list(item.min.as_ref()) {
        errs.extend(min_constraint(ty, &k, &v, req, lim));
    }
    for (k, v) in typed_list(item.max.as_ref()) {
        errs.extend(max_constraint(ty, &k, &v, req, lim));
    }
    for (k, v) in typed_list(item.max_limit_request_ratio.as_ref()) {
        errs.extend(ratio_constraint(ty, &k, &v, req, lim));
    }
}

/// Upstream's `PodValidateLimitFunc`: Container items per container, Pod items on the
/// pod's totals.
pub fn validate_limits(pod: &Pod, items: &[&LimitRangeItem]) -> Vec<String> {
    let mut errs = Vec::new();
    let spec = pod.spec.clone().unwrap_or_default();
    for item in items {
        match item.type_.as_str() {
            "Container" => {
                for c in spec
                    .containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                {
                    let r = c.resources.as_ref();
                    let req = typed_list(r.and_then(|r| r.requests.as_ref()));
                    let lim = typed_list(r.and_then(|r| r.limits.as_ref()));
                    check_item("Container", item, &req, &lim, &mut errs);
                }
            }
            "Pod" => {
                let (req, lim) = quota::pod_requests_and_limits(pod);
                check_item("Pod", item, &req, &lim, &mut errs);
            }
            _ => {}
        }
    }
    errs
}

/// Checks the object against every quota of the namespace and raises their usage.
async fn check_quotas(
    reg: &Registry,
    rp: &ResourcePath,
    ns: &str,
    name: &str,
    obj: &Value,
    dry_run: bool,
) -> Result<(), StatusError> {
    let quotas: Vec<(String, ResourceQuota)> = cached(reg, "", "resourcequotas", ns);
    if quotas.is_empty() {
        return Ok(());
    }
    let def = rp.def;
    let forbidden = |msg: String| StatusError::forbidden(def.group, def.plural, name, msg);
    let usage = quota::usage(def.group, def.plural, obj, chrono::Utc::now());
    let mut relevant: Vec<String> = Vec::new();
    for (key, rq) in &quotas {
        let hard = typed_list(rq.status.as_ref().and_then(|s| s.hard.as_ref()));
        let restricted = quota::matching_resources(&hard, def.group, def.plural);
        if restricted.is_empty() || !quota::scopes_match(rq, def.group, def.plural, obj) {
            continue;
        }
        let qname = rq.metadata.name.clone().unwrap_or_default();
        if def.group.is_empty() && def.plural == "pods" {
            let pod: Pod = serde_json::from_value(obj.clone())
                .map_err(|e| StatusError::bad_request(format!("decoding pod: {e}")))?;
            if let Err(e) = quota::pod_constraints(&restricted, &pod) {
                return Err(forbidden(format!("failed quota: {qname}: {e}")));
            }
        }
        let used = typed_list(rq.status.as_ref().and_then(|s| s.used.as_ref()));
        let unknown: Vec<&str> = restricted
            .iter()
            .filter(|r| !used.contains_key(r.as_str()))
            .map(|r| r.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(forbidden(format!(
                "status unknown for quota: {qname}, resources: {}",
                unknown.join(",")
            )));
        }
        relevant.push(key.clone());
    }
    for key in relevant {
        charge(reg, &key, &usage, def.group, def.plural, dry_run)
            .await
            .map_err(|e| match e {
                Charge::Exceeded(msg) => forbidden(msg),
                Charge::Failed(e) => e,
            })?;
    }
    Ok(())
}

enum Charge {
    Exceeded(String),
    Failed(StatusError),
}

/// One quota: check `used + usage <= hard` on the stored quota and write the new usage,
/// retrying on conflicting writes.
async fn charge(
    reg: &Registry,
    key: &str,
    usage: &ResourceList,
    group: &str,
    plural: &str,
    dry_run: bool,
) -> Result<(), Charge> {
    let internal = |m: String| Charge::Failed(StatusError::internal(m));
    for _ in 0..CAS_ATTEMPTS {
        let Some(kv) = reg
            .store
            .get(key)
            .await
            .map_err(|e| internal(e.to_string()))?
        else {
            return Ok(());
        };
        let mut stored: Value = serde_json::from_slice(&kv.value)
            .map_err(|e| internal(format!("decoding {key}: {e}")))?;
        let qname = stored
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let hard = quota::parse_list(stored.pointer("/status/hard"));
        let used = quota::parse_list(stored.pointer("/status/used"));
        let restricted: Vec<String> = quota::matching_resources(&hard, group, plural)
            .into_iter()
            .cloned()
            .collect();
        let mut requested = ResourceList::new();
        let mut new_used = used.clone();
        let mut exceeded: Vec<String> = Vec::new();
        for r in &restricted {
            let Some(u) = usage.get(r) else { continue };
            requested.insert(r.clone(), u.clone());
            let total = used.get(r).map(|x| x.add(u)).unwrap_or_else(|| u.clone());
            if hard.get(r).is_some_and(|h| &total > h) {
                exceeded.push(r.clone());
            }
            new_used.insert(r.clone(), total);
        }
        if !exceeded.is_empty() {
            let mask = |l: &ResourceList| -> ResourceList {
                l.iter()
                    .filter(|(k, _)| exceeded.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            return Err(Charge::Exceeded(format!(
                "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                quota::pretty(&mask(&requested)),
                quota::pretty(&mask(&used)),
                quota::pretty(&mask(&hard)),
            )));
        }
        if dry_run || requested.is_empty() {
            return Ok(());
        }
        let used_json: serde_json::Map<String, Value> = new_used
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
            .collect();
        match stored.pointer_mut("/status") {
            Some(Value::Object(st)) => {
                st.insert("used".into(), Value::Object(used_json));
            }
            _ => return Ok(()),
        }
        let bytes = Bytes::from(serde_json::to_vec(&stored).map_err(|e| internal(e.to_string()))?);
        match reg.store.update(key, bytes, kv.mod_revision).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(internal(e.to_string())),
        }
    }
    Err(Charge::Failed(StatusError::new(
        bosun_api::errors::StatusReason::Conflict,
        "the resource quota changed too often while admitting, try again",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_class_is_the_newest_annotated_one() {
        let sc = |name: &str, created: &str, default: Option<&str>| {
            let mut v = json!({"metadata": {"name": name, "creationTimestamp": created}});
            if let Some(d) = default {
                v["metadata"]["annotations"] =
                    json!({"storageclass.kubernetes.io/is-default-class": d});
            }
            v
        };
        assert_eq!(default_class_name(&[]), None);
        let classes = vec![
            sc("a", "2026-01-01T00:00:00Z", Some("true")),
            sc("b", "2026-01-02T00:00:00Z", Some("false")),
            sc("c", "2026-01-01T00:00:00Z", None),
        ];
        assert_eq!(default_class_name(&classes).as_deref(), Some("a"));
        let mut more = classes.clone();
        more.push(sc("d", "2026-01-03T00:00:00Z", Some("true")));
        more.push(
            json!({"metadata": {"name": "e", "creationTimestamp": "2026-01-03T00:00:00Z",
            "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "true"}}}),
        );
        assert_eq!(default_class_name(&more).as_deref(), Some("d"));
    }

    #[test]
    fn tolerations_added_unless_present() {
        let cfg = AdmissionConfig::default();
        let mut pod = json!({"spec": {"containers": []}});
        default_toleration_seconds(&mut pod, &cfg);
        let tols = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(tols.len(), 2);
        assert_eq!(tols[0]["tolerationSeconds"], 300);
        assert_eq!(tols[1]["key"], TAINT_UNREACHABLE);

        let mut pod = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        default_toleration_seconds(&mut pod, &cfg);
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(1));

        let mut pod = json!({"spec": {"tolerations": [
            {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}]}});
        default_toleration_seconds(&mut pod, &cfg);
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(3));
    }
}
