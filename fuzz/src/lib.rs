//! What each fuzz target does with one input: shared by the cargo-fuzz targets (fuzz_targets/)
//! and by the stable smoke test (crates/bosun-testkit/tests/fuzz_smoke.rs), which includes this
//! file as a module. A target fails only by panicking: every decoder must turn any input into a
//! value or an error, and the few properties checked here are ones upstream guarantees.

use bosun_api::patch::{apply_patch as apply, PatchType};
use bosun_api::quantity::Quantity;
use bosun_api::selector::{FieldSelector, LabelSelector};
use bosun_apiserver::codec::{self, BodyType};
use bosun_apiserver::request::{self, Query};
use serde_json::Value;

/// A fuzz target: takes one input, fails only by panicking.
pub type Target = fn(&[u8]);

/// Every target, by name, for drivers that run them all.
pub const TARGETS: &[(&str, Target)] = &[
    ("decode_body", decode_body),
    ("duplicate_fields", duplicate_fields),
    ("apply_patch", apply_patch),
    ("label_selector", label_selector),
    ("field_selector", field_selector),
    ("quantity", quantity),
    ("resource_path", resource_path),
];

const BODY_TYPES: [BodyType; 6] = [
    BodyType::Json,
    BodyType::Yaml,
    BodyType::JsonPatch,
    BodyType::MergePatch,
    BodyType::StrategicMergePatch,
    BodyType::ApplyPatch,
];

/// `codec::decode_body`: the first byte picks the media type and whether duplicates are
/// looked for; the rest is the body. A decoded JSON value must serialize again.
pub fn decode_body(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let ty = BODY_TYPES[usize::from(sel) % BODY_TYPES.len()];
    let find_dups = sel & 0x80 != 0;
    if let Ok((value, _dups)) = codec::decode_body(body, ty, find_dups) {
        let _ = serde_json::to_vec(&value);
    }
}

/// `codec::duplicate_fields` on the raw bytes.
pub fn duplicate_fields(data: &[u8]) {
    let _ = codec::duplicate_fields(data);
}

/// A Pod with a bit of everything a strategic merge patch has a rule for: lists merged by
/// key (containers, ports, env, volumes, volumeMounts, tolerations, conditions), atomic lists
/// and maps.
pub const POD: &str = r#"{
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
               "labels": {"app": "web", "tier": "frontend"}, "annotations": {"a": "b"},
               "finalizers": ["x/y"],
               "ownerReferences": [{"apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "uid": "u-2"}]},
  "spec": {
    "containers": [
      {"name": "web", "image": "nginx", "command": ["nginx"], "args": ["-g", "daemon off;"],
       "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP", "name": "https"}],
       "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
       "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
       "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
      {"name": "side", "image": "busybox", "command": ["sleep", "3600"]}
    ],
    "initContainers": [{"name": "init", "image": "busybox"}],
    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c", "items": [{"key": "k", "path": "p"}]}}],
    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
    "nodeSelector": {"disk": "ssd"},
    "imagePullSecrets": [{"name": "regcred"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
      {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}},
    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"
  },
  "status": {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
             "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
             "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "image": "nginx", "imageID": "", "state": {"running": {}}}]}
}"#;

const PATCH_TYPES: [PatchType; 4] = [
    PatchType::Json,
    PatchType::Merge,
    PatchType::Strategic,
    PatchType::Apply,
];

/// `patch::apply_patch` on [`POD`]: the first byte picks the patch type; the rest is the
/// body. A patched object must serialize again.
pub fn apply_patch(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let Ok(original) = serde_json::from_str::<Value>(POD) else {
        panic!("the fixed pod is valid JSON");
    };
    let ty = PATCH_TYPES[usize::from(sel) % PATCH_TYPES.len()];
    if let Ok(patched) = apply(ty, &original, body, "", "v1", "Pod") {
        let _ = serde_json::to_vec(&patched);
    }
}

fn as_str(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// `LabelSelector::parse`; a parsed selector prints as a selector that parses again, and
/// can be matched and converted to the API form.
pub fn label_selector(data: &[u8]) {
    let s = as_str(data);
    let Ok(sel) = LabelSelector::parse(&s) else {
        return;
    };
    let printed = sel.to_string();
    if let Err(e) = LabelSelector::parse(&printed) {
        panic!("label selector {s:?} printed as {printed:?}, which does not parse: {e}");
    }
    let labels = [("app", "web"), ("tier", ""), ("a.b/c", "d")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = sel.matches(&labels);
    let _ = sel.to_api();
}

/// `FieldSelector::parse`; a parsed selector prints as one that parses again, and matches.
pub fn field_selector(data: &[u8]) {
    let s = as_str(data);
    let Ok(sel) = FieldSelector::parse(&s) else {
        return;
    };
    let printed = sel.to_string();
    if let Err(e) = FieldSelector::parse(&printed) {
        panic!("field selector {s:?} printed as {printed:?}, which does not parse: {e}");
    }
    let _ = sel.matches_pairs(&[("metadata.name", "web"), ("spec.nodeName", "")]);
    let _ = sel.exact_name();
}

/// `Quantity::parse`; a parsed quantity's canonical form parses again to the same form, and
/// the arithmetic the strategies use does not panic.
pub fn quantity(data: &[u8]) {
    let s = as_str(data);
    let Ok(q) = Quantity::parse(&s) else {
        return;
    };
    let canonical = q.to_string();
    match Quantity::parse(&canonical) {
        Ok(again) => {
            let twice = again.to_string();
            if twice != canonical {
                panic!("quantity {s:?}: canonical form {canonical:?} re-parses as {twice:?}");
            }
        }
        Err(e) => panic!("quantity {s:?}: canonical form {canonical:?} does not parse: {e}"),
    }
    let _ = q.value();
    let _ = q.milli_value();
    let _ = q.round_up(-3);
    let _ = q.add(&q);
    let _ = q.sub(&q);
    let _ = q.neg();
    let _ = q.to_api();
}

/// `request::parse_resource_path`, and the query parameters a handler reads: the input is a
/// request target, `path?query`.
pub fn resource_path(data: &[u8]) {
    let s = as_str(data);
    let (path, query) = match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*s, None),
    };
    let _ = request::parse_resource_path(path);
    let q = Query::parse(query);
    let _ = q.int("limit");
    let _ = q.int("timeoutSeconds");
    let _ = q.dry_run();
    let _ = q.field_validation();
    let _ = q.flag("watch");
}
