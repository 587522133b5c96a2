//! Strategic merge patch cases: upstream's `patch_test.go` cases mapped onto real fields
//! (`mergingList` → `containers`, `mergingIntList` → `finalizers`, `retainKeysMap` → a
//! Deployment's `strategy`), and the exact patches kubectl sends.

use serde_json::{json, Value};

use crate::patch::{apply_merge_patch, apply_strategic_merge_patch, PatchError, PatchSchema};

fn smp(definition: &str, original: Value, patch: Value) -> Result<Value, PatchError> {
    let schema =
        PatchSchema::for_definition(definition).unwrap_or_else(|| panic!("no schema {definition}"));
    apply_strategic_merge_patch(&original, &patch, &schema)
}

const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const DEPLOYMENT_SPEC: &str = "io.k8s.api.apps.v1.DeploymentSpec";

fn ok(definition: &str, original: Value, patch: Value, want: Value) {
    let got = smp(definition, original.clone(), patch.clone())
        .unwrap_or_else(|e| panic!("patch {patch} on {original}: {e}"));
    assert_eq!(got, want, "patch {patch} on {original}");
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["name"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn maps_merge_and_null_deletes() {
    ok(
        META,
        json!({"name": "1"}),
        json!({"namespace": "1"}),
        json!({"name": "1", "namespace": "1"}),
    );
    ok(
        META,
        json!({"name": "1", "uid": "a"}),
        json!({"name": null, "namespace": "1"}),
        json!({"uid": "a", "namespace": "1"}),
    );
    ok(
        META,
        json!({"labels": {"key1": "1", "key2": "1", "other": "a"}}),
        json!({"labels": {"key2": null}}),
        json!({"labels": {"key1": "1", "other": "a"}}),
    );
    // Nulls for absent fields are dropped, also inside new values.
    ok(
        META,
        json!({"name": "a"}),
        json!({"namespace": null, "labels": {"x": null, "y": "1"}}),
        json!({"name": "a", "labels": {"y": "1"}}),
    );
    ok(META, json!({"name": "a"}), json!({}), json!({"name": "a"}));
}

#[test]
fn map_directives() {
    // delete map from nested map
    ok(
        META,
        json!({"labels": {"key1": "1", "key2": "1"}}),
        json!({"labels": {"$patch": "delete"}}),
        json!({"labels": {}}),
    );
    // delete all keys from map / add key and delete all keys from map
    ok(
        META,
        json!({"name": "1", "namespace": "1"}),
        json!({"$patch": "replace"}),
        json!({}),
    );
    ok(
        META,
        json!({"name": "1", "namespace": "1"}),
        json!({"uid": "a", "$patch": "replace"}),
        json!({"uid": "a"}),
    );
    ok(
        META,
        json!({"labels": {"a": "1"}}),
        json!({"labels": {"b": "2", "$patch": "replace"}}),
        json!({"labels": {"b": "2"}}),
    );
    let err = smp(
        META,
        json!({"labels": {"a": "1"}}),
        json!({"labels": {"$patch": "frobnicate"}}),
    )
    .expect_err("unknown directive");
    assert!(
        err.to_string()
            .starts_with("labels: unknown patch type: \"frobnicate\""),
        "{err}"
    );
}

#[test]
fn merging_lists_of_scalars() {
    // unique scalars when merging lists
    ok(
        META,
        json!({"finalizers": ["1", "2"]}),
        json!({"finalizers": ["2", "3"]}),
        json!({"finalizers": ["1", "2", "3"]}),
    );
    // preserve the order from the patch in a merging int list
    ok(
        META,
        json!({"finalizers": ["1", "2", "3"]}),
        json!({"finalizers": ["3", "1", "2"]}),
        json!({"finalizers": ["3", "1", "2"]}),
    );
    ok(
        META,
        json!({"finalizers": ["1", "2", "3"]}),
        json!({"finalizers": ["3", "1"]}),
        json!({"finalizers": ["2", "3", "1"]}),
    );
    // Without an order directive, new items come before the server's.
    ok(
        META,
        json!({"finalizers": ["a", "b"]}),
        json!({"finalizers": ["c"]}),
        json!({"finalizers": ["c", "a", "b"]}),
    );
    // delete items in lists of scalars
    ok(
        META,
        json!({"finalizers": ["1", "2", "3", "4"]}),
        json!({"$setElementOrder/finalizers": ["1", "2"], "$deleteFromPrimitiveList/finalizers": ["3"]}),
        json!({"finalizers": ["1", "2", "4"]}),
    );
    // delete all duplicate items in lists of scalars
    ok(
        META,
        json!({"finalizers": ["1", "2", "3", "3", "4"]}),
        json!({"$setElementOrder/finalizers": ["1", "2"], "$deleteFromPrimitiveList/finalizers": ["3"]}),
        json!({"finalizers": ["1", "2", "4"]}),
    );
    // add and delete items in lists of scalars
    ok(
        META,
        json!({"finalizers": ["1", "2", "3"]}),
        json!({"$setElementOrder/finalizers": ["1", "2", "4"], "$deleteFromPrimitiveList/finalizers": ["3"], "finalizers": ["4"]}),
        json!({"finalizers": ["1", "2", "4"]}),
    );
    // behavior of set element order for a merging int list with duplicate
    ok(
        META,
        json!({"finalizers": ["1", "2", "3", "2", "4"]}),
        json!({"$setElementOrder/finalizers": ["2", "1", "4", "3", "2"]}),
        json!({"finalizers": ["2", "2", "1", "4", "3"]}),
    );
    // $setElementOrder contains item that is not present in the int list to be merged
    ok(
        META,
        json!({"finalizers": ["1", "3"]}),
        json!({"$setElementOrder/finalizers": ["3", "2", "1"]}),
        json!({"finalizers": ["3", "1"]}),
    );
    // A deletion list for a list the object lacks is moot.
    ok(
        META,
        json!({"name": "a"}),
        json!({"$deleteFromPrimitiveList/finalizers": ["x"]}),
        json!({"name": "a"}),
    );
}

#[test]
fn merging_lists_of_maps() {
    let c = |name: &str| json!({"name": name});
    // merge lists of maps (three-way: server-only fields kept, order from $setElementOrder)
    ok(
        POD_SPEC,
        json!({"containers": [{"name": "1", "other": "a"}, {"name": "2", "value": "2", "other": "b"}]}),
        json!({"$setElementOrder/containers": [c("4"), c("1"), c("2"), c("3")], "containers": [{"name": "4", "value": "4"}, {"name": "3", "value": "3"}]}),
        json!({"containers": [{"name": "4", "value": "4"}, {"name": "1", "other": "a"}, {"name": "2", "value": "2", "other": "b"}, {"name": "3", "value": "3"}]}),
    );
    // add field to map in merging list
    ok(
        POD_SPEC,
        json!({"containers": [{"name": "1", "other": "a"}, {"name": "2", "value": "2", "other": "b"}]}),
        json!({"$setElementOrder/containers": [c("1"), c("2")], "containers": [{"name": "1", "value": "1"}]}),
        json!({"containers": [{"name": "1", "other": "a", "value": "1"}, {"name": "2", "value": "2", "other": "b"}]}),
    );
    // preserve the order from the patch in a merging list (2)
    ok(
        POD_SPEC,
        json!({"containers": [{"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}]}),
        json!({"containers": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"}, {"name": "2", "other": "x"}]}),
        json!({"containers": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"}, {"name": "2", "value": "b", "other": "x"}]}),
    );
    ok(
        POD_SPEC,
        json!({"containers": [{"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}]}),
        json!({"containers": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"}]}),
        json!({"containers": [{"name": "2", "value": "b"}, {"name": "3", "value": "c"}, {"name": "1", "value": "a"}]}),
    );
    // $setElementOrder contains item that is not present in the list to be merged
    ok(
        POD_SPEC,
        json!({"containers": [c("1"), c("3")]}),
        json!({"$setElementOrder/containers": [c("3"), c("2"), c("1")], "containers": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]}),
        json!({"containers": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]}),
    );
    // Nested merged lists merge by their own keys.
    ok(
        POD_SPEC,
        json!({"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}),
        json!({"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}], "ports": [{"containerPort": 80, "name": "http"}]}]}),
        json!({"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}], "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}]}),
    );
}

#[test]
fn list_directives() {
    let c = |name: &str| json!({"name": name});
    // delete all maps from merging list
    ok(
        POD_SPEC,
        json!({"containers": [c("1"), c("2")]}),
        json!({"containers": [{"name": "1", "$patch": "delete"}, {"name": "2", "$patch": "delete"}]}),
        json!({"containers": []}),
    );
    ok(
        POD_SPEC,
        json!({"containers": []}),
        json!({"containers": [{"name": "1", "$patch": "delete"}]}),
        json!({"containers": []}),
    );
    // delete all items from merging list
    ok(
        POD_SPEC,
        json!({"containers": [c("1"), c("2")]}),
        json!({"containers": [{"$patch": "replace"}]}),
        json!({"containers": []}),
    );
    ok(
        POD_SPEC,
        json!({"containers": [c("1"), c("2")]}),
        json!({"containers": [{"$patch": "replace"}, {"name": "3", "image": "x"}]}),
        json!({"containers": [{"name": "3", "image": "x"}]}),
    );
    // merge empty merging lists
    ok(
        POD_SPEC,
        json!({"containers": []}),
        json!({"containers": []}),
        json!({"containers": []}),
    );
    // de-duplicate entries in a merging list
    ok(
        POD_SPEC,
        json!({"containers": [c("1"), c("1"), {"name": "2", "value": "a"}, c("3"), c("3")]}),
        json!({"containers": [{"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}]}),
        json!({"containers": [{"name": "2", "value": "a"}]}),
    );
    let err = smp(
        POD_SPEC,
        json!({"containers": [c("1")]}),
        json!({"containers": [{"$patch": "merge", "name": "1"}]}),
    )
    .expect_err("merge directive");
    assert_eq!(
        err.to_string(),
        "containers: merging lists cannot yet be specified in the patch"
    );
    // Directives inside values that land where nothing was are dropped.
    ok(
        POD_SPEC,
        json!({}),
        json!({"containers": [{"name": "1"}, {"name": "2", "$patch": "delete"}]}),
        json!({"containers": [{"name": "1"}]}),
    );
    ok(
        POD_SPEC,
        json!({}),
        json!({"affinity": {"$patch": "replace", "nodeAffinity": {}}}),
        json!({}),
    );
}

#[test]
fn non_merging_lists_are_replaced() {
    // replace list of scalars, with conflict
    ok(
        POD_SPEC,
        json!({"containers": [{"name": "a", "args": ["1", "4"]}]}),
        json!({"containers": [{"name": "a", "args": ["2", "3"]}]}),
        json!({"containers": [{"name": "a", "args": ["2", "3"]}]}),
    );
    // Tolerations have no merge key: the patch list wins whole.
    ok(
        POD_SPEC,
        json!({"tolerations": [{"key": "a"}, {"key": "b"}]}),
        json!({"tolerations": [{"key": "c"}]}),
        json!({"tolerations": [{"key": "c"}]}),
    );
}

#[test]
fn retain_keys() {
    // retainKeys map should clear defaulted field (discriminated union)
    ok(
        DEPLOYMENT_SPEC,
        json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}),
        json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}),
        json!({"strategy": {"type": "Recreate"}}),
    );
    // retainKeys map can add / change / delete a field when no retainKeys directive present
    ok(
        DEPLOYMENT_SPEC,
        json!({"strategy": {"type": "Recreate"}}),
        json!({"strategy": {"value": "bar"}}),
        json!({"strategy": {"type": "Recreate", "value": "bar"}}),
    );
    ok(
        DEPLOYMENT_SPEC,
        json!({"strategy": {"type": "a", "value": "a"}}),
        json!({"strategy": {"value": null}}),
        json!({"strategy": {"type": "a"}}),
    );
    ok(
        DEPLOYMENT_SPEC,
        json!({"strategy": {"type": "a", "value": "a"}}),
        json!({"strategy": {}}),
        json!({"strategy": {"type": "a", "value": "a"}}),
    );
    // retainKeys map deletes a field and clears a field
    ok(
        DEPLOYMENT_SPEC,
        json!({"strategy": {"name": "foo", "value": "bar", "other": "a"}}),
        json!({"strategy": {"$retainKeys": ["name"], "value": null}}),
        json!({"strategy": {"name": "foo"}}),
    );
    // retainKeys map adds an item in nested merging int list (on metadata, which takes the
    // directive whatever its strategy)
    ok(
        META,
        json!({"name": "foo", "finalizers": ["1", "2", "3"]}),
        json!({"$setElementOrder/finalizers": ["1", "2", "4"], "$retainKeys": ["finalizers", "name"], "finalizers": ["4"]}),
        json!({"name": "foo", "finalizers": ["1", "2", "4", "3"]}),
    );
    // retainKeys map adds an item and deletes an item in nested merging int list
    ok(
        META,
        json!({"name": "foo", "finalizers": ["1", "2", "3", "4"]}),
        json!({"$retainKeys": ["finalizers", "name"], "finalizers": ["5"], "$deleteFromPrimitiveList/finalizers": ["2"], "$setElementOrder/finalizers": ["1", "3", "5"]}),
        json!({"name": "foo", "finalizers": ["1", "3", "5", "4"]}),
    );
    // retainKeys list can delete a field when no retainKeys directive present
    ok(
        POD_SPEC,
        json!({"volumes": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
        json!({"volumes": [{"name": "foo", "value": null}]}),
        json!({"volumes": [{"name": "bar"}, {"name": "foo"}]}),
    );
    // A volume switching source clears the old one.
    ok(
        POD_SPEC,
        json!({"volumes": [{"name": "data", "emptyDir": {}}]}),
        json!({"$setElementOrder/volumes": [{"name": "data"}], "volumes": [{"$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/d"}, "name": "data"}]}),
        json!({"volumes": [{"name": "data", "hostPath": {"path": "/d"}}]}),
    );
    let err = smp(
        DEPLOYMENT_SPEC,
        json!({"strategy": {"type": "a"}}),
        json!({"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}),
    )
    .expect_err("field outside retainKeys");
    assert_eq!(
        (err.status_code(), err.to_string()),
        (
            400,
            "strategy: invalid patch format of retainKeys".to_string()
        )
    );
    let err = smp(
        DEPLOYMENT_SPEC,
        json!({"strategy": {"type": "a"}}),
        json!({"strategy": {"$retainKeys": "type"}}),
    )
    .expect_err("not a list");
    assert_eq!(err.status_code(), 400);
}

#[test]
fn replace_strategy_replaces_maps() {
    // PodDisruptionBudgetSpec.selector has patchStrategy "replace".
    ok(
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        json!({"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}),
        json!({"selector": {"matchLabels": {"b": "2"}}}),
        json!({"selector": {"matchLabels": {"b": "2"}}, "minAvailable": 1}),
    );
}

#[test]
fn other_merge_keys() {
    ok(
        META,
        json!({"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}),
        json!({"ownerReferences": [{"uid": "2", "controller": true}]}),
        json!({"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b", "controller": true}]}),
    );
    ok(
        "io.k8s.api.core.v1.PodStatus",
        json!({"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}),
        json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        json!({"conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}),
    );
    ok(
        "io.k8s.api.core.v1.ServiceSpec",
        json!({"ports": [{"port": 80, "targetPort": 8080}]}),
        json!({"ports": [{"port": 80, "nodePort": 30080}]}),
        json!({"ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}),
    );
}

#[test]
fn errors_name_the_path() {
    // missing merge key should error out
    let err = smp(
        POD_SPEC,
        json!({"containers": [{"name": "1", "value": "a"}]}),
        json!({"containers": [{"value": "b"}]}),
    )
    .expect_err("no merge key");
    assert_eq!(
        err.to_string(),
        "containers: map: {\"value\":\"b\"} does not contain declared merge key: name"
    );
    assert_eq!(err.status_code(), 500);
    // should check if order in $setElementOrder and patch list match
    let err = smp(
        POD_SPEC,
        json!({"containers": [{"name": "1"}, {"name": "3"}, {"name": "2"}]}),
        json!({"$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}], "containers": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]}),
    )
    .expect_err("order mismatch");
    assert!(
        err.to_string()
            .contains("doesn't match $setElementOrder list"),
        "{err}"
    );
    let err = smp(
        META,
        json!({"finalizers": ["1", "3", "2"]}),
        json!({"$setElementOrder/finalizers": ["1", "2", "3"], "finalizers": ["3", "1"]}),
    )
    .expect_err("order mismatch");
    assert!(err.to_string().contains("doesn't match"), "{err}");
    // A field the schema lacks cannot be merged into.
    let err = smp(
        POD_SPEC,
        json!({"bogus": {"a": 1}}),
        json!({"bogus": {"b": 2}}),
    )
    .expect_err("unknown field");
    assert_eq!(
        err.to_string(),
        "bogus: unable to find api field in struct PodSpec for the json field \"bogus\""
    );
    // ...but may be set where nothing is.
    ok(
        POD_SPEC,
        json!({}),
        json!({"bogus": {"b": 2}}),
        json!({"bogus": {"b": 2}}),
    );
    let err = smp(
        META,
        json!({"finalizers": [["a"]]}),
        json!({"finalizers": [["b"]]}),
    )
    .expect_err("list of lists");
    assert_eq!(
        (err.status_code(), err.to_string()),
        (
            422,
            "finalizers: lists of lists are not supported".to_string()
        )
    );
    let err = smp(
        META,
        json!({"finalizers": ["a"]}),
        json!({"finalizers": [1]}),
    )
    .expect_err("mixed types");
    assert!(
        err.to_string()
            .starts_with("finalizers: list element types are not identical"),
        "{err}"
    );
    let err = smp(
        META,
        json!({"finalizers": ["a"]}),
        json!({"$deleteFromPrimitiveListfinalizers": ["a"]}),
    )
    .expect_err("bad prefix");
    assert_eq!(
        (err.status_code(), err.to_string()),
        (400, "invalid patch format of primitive list".to_string())
    );
    let err = smp(
        META,
        json!({"finalizers": ["a"]}),
        json!({"$setElementOrderfinalizers": ["a"]}),
    )
    .expect_err("bad prefix");
    assert_eq!(err.status_code(), 400);
    let err = smp(
        "io.k8s.api.apps.v1.Deployment",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [{"name": "x"}]}]}}}}),
    )
    .expect_err("nested missing key");
    assert!(
        err.to_string()
            .starts_with("spec.template.spec.containers[name=\"a\"].ports: map:"),
        "{err}"
    );
    // Type changes are plain replacements.
    ok(
        META,
        json!({"labels": {"a": "1"}}),
        json!({"labels": "x"}),
        json!({"labels": "x"}),
    );
}

/// The Deployment kubectl created, as the server stores it (defaults filled in), with the
/// last-applied annotation kubectl keeps.
fn live_deployment(last_applied: &Value, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "6b1d7f3e-0000-4000-8000-000000000001",
            "resourceVersion": "7",
            "generation": 1,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied.to_string()},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": containers,
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler",
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
        "status": {"observedGeneration": 1, "replicas": 2},
    })
}

fn deploy_smp(live: &Value, patch: Value) -> Value {
    let schema = PatchSchema::for_kind("apps", "v1", "Deployment").expect("deployment schema");
    apply_strategic_merge_patch(live, &patch, &schema).expect("kubectl patch applies")
}

#[test]
fn kubectl_apply_image_change() {
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14", "ports": [{"containerPort": 80}]}]}}}});
    let live = live_deployment(
        &applied,
        json!([{"name": "nginx", "image": "nginx:1.14", "ports": [{"containerPort": 80, "protocol": "TCP"}], "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "resources": {}}]),
    );
    // `kubectl apply` of the manifest with nginx:1.16: the three-way patch it sends.
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}\n"}},
        "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}], "containers": [{"image": "nginx:1.16", "name": "nginx"}]}}},
    });
    let out = deploy_smp(&live, patch);
    let c = &out["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], json!("nginx:1.16"));
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(c["terminationMessagePath"], json!("/dev/termination-log"));
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        json!("{\"new\":true}\n")
    );
    assert_eq!(
        out["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        json!("25%")
    );
    assert_eq!(out["status"], live["status"]);
    assert_eq!(out["metadata"]["uid"], live["metadata"]["uid"]);
}

#[test]
fn kubectl_apply_port_added_and_env_removed() {
    let applied = json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}}});
    let live = live_deployment(
        &applied,
        json!([{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "imagePullPolicy": "Always"}]),
    );
    // Adding port 443 and dropping env B: the three-way patch kubectl v1.34 sends (captured),
    // built from the OpenAPI v3 document's merge keys.
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}],
        "containers": [{
            "$setElementOrder/env": [{"name": "A"}],
            "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
            "env": [{"$patch": "delete", "name": "B"}],
            "image": "nginx:1.16",
            "name": "nginx",
            "ports": [{"containerPort": 443}],
        }],
    }}}});
    let out = deploy_smp(&live, patch);
    let c = &out["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}])
    );
    assert_eq!(c["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(c["imagePullPolicy"], json!("Always"));
    assert_eq!(c["image"], json!("nginx:1.16"));
    assert!(c.get("$setElementOrder/env").is_none() && c.get("$setElementOrder/ports").is_none());
}

#[test]
fn kubectl_apply_keeps_injected_containers_where_upstream_puts_them() {
    // The server has a sidecar nobody applied; the manifest renames container b to c. Upstream
    // orders the result by the live list as its slices alias it: a, sidecar, c.
    let applied =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}});
    let live = live_deployment(
        &applied,
        json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}, {"name": "sidecar", "image": "s"}]),
    );
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "c"}],
        "containers": [{"image": "c", "name": "c"}, {"$patch": "delete", "name": "b"}],
    }}}});
    let out = deploy_smp(&live, patch);
    assert_eq!(
        names(&out["spec"]["template"]["spec"]["containers"]),
        ["a", "sidecar", "c"]
    );

    // Appending past the live list's length moves Go to a new array: then the sidecar stays last.
    let live = live_deployment(
        &applied,
        json!([{"name": "a"}, {"name": "b"}, {"name": "sidecar"}]),
    );
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "containers": [{"name": "c"}],
    }}}});
    let out = deploy_smp(&live, patch);
    assert_eq!(
        names(&out["spec"]["template"]["spec"]["containers"]),
        ["a", "b", "c", "sidecar"]
    );
}

#[test]
fn kubectl_set_image_label_annotate() {
    let applied = json!({});
    let live = live_deployment(
        &applied,
        json!([{"name": "nginx", "image": "nginx:1.14"}, {"name": "sidecar", "image": "s"}]),
    );
    // kubectl set image deployment/web nginx=nginx:1.17 (body captured from kubectl v1.34)
    let out = deploy_smp(
        &live,
        json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}], "containers": [{"image": "nginx:1.17", "name": "nginx"}]}}}}),
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "nginx", "image": "nginx:1.17"}, {"name": "sidecar", "image": "s"}])
    );
    // kubectl label / annotate send JSON merge patches; label removal sends null.
    let out = apply_merge_patch(
        &live,
        &json!({"metadata": {"labels": {"tier": "frontend"}}}),
    )
    .expect("label");
    assert_eq!(out["metadata"]["labels"], json!({"tier": "frontend"}));
    let out =
        apply_merge_patch(&out, &json!({"metadata": {"labels": {"tier": null}}})).expect("unlabel");
    assert_eq!(out["metadata"]["labels"], json!({}));
    let out = apply_merge_patch(&live, &json!({"metadata": {"annotations": {"note": "x"}}}))
        .expect("annotate");
    assert_eq!(out["metadata"]["annotations"]["note"], json!("x"));
    assert!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    // kubectl patch deployment web -p '{"spec":{"replicas":4}}' (strategic by default)
    let out = deploy_smp(&live, json!({"spec": {"replicas": 4}}));
    assert_eq!(out["spec"]["replicas"], json!(4));
    // The same patch as a strategic label change keeps the other labels.
    let out = deploy_smp(&live, json!({"metadata": {"labels": {"tier": "frontend"}}}));
    let out = deploy_smp(&out, json!({"metadata": {"labels": {"tier": null}}}));
    assert_eq!(out["metadata"]["labels"], json!({}));
}

#[test]
fn kubectl_apply_strategy_switch_uses_retain_keys() {
    // Changing the manifest's strategy to Recreate: kubectl sends $retainKeys for the
    // retainKeys-tagged strategy, clearing the defaulted rollingUpdate.
    let live = live_deployment(&json!({}), json!([{"name": "nginx", "image": "nginx"}]));
    let out = deploy_smp(
        &live,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}
