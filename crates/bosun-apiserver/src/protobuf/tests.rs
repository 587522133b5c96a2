//! Tests of the protobuf decoder against bodies encoded with prost and k8s-pb, the way
//! typed Kubernetes clients encode them.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::json;

use super::*;

fn body(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// ObjectMeta as Go encodes it: every non-pointer field present, zero or not.
fn go_meta(name: &str, namespace: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name.into()),
        generate_name: Some(String::new()),
        namespace: Some(namespace.into()),
        self_link: Some(String::new()),
        uid: Some(String::new()),
        resource_version: Some(String::new()),
        generation: Some(0),
        creation_timestamp: Some(meta::Time {
            seconds: Some(0),
            nanos: Some(0),
        }),
        ..Default::default()
    }
}

#[test]
fn configmap() {
    let cm = core::ConfigMap {
        metadata: Some(go_meta("x", "default")),
        data: BTreeMap::from([("a".into(), "b".into()), ("empty".into(), String::new())]),
        binary_data: BTreeMap::from([("bin".into(), vec![0u8, 1, 2, 255])]),
        immutable: None,
    };
    let got = decode(&body("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "default"},
            "data": {"a": "b", "empty": ""},
            "binaryData": {"bin": "AAEC/w=="},
        })
    );
}

#[test]
fn secret_bytes_and_namespace() {
    let secret = core::Secret {
        metadata: Some(go_meta("s", "ns1")),
        immutable: Some(false),
        data: BTreeMap::from([("password".into(), b"hunter2".to_vec())]),
        string_data: BTreeMap::new(),
        r#type: Some("Opaque".into()),
    };
    let got = decode(&body("v1", "Secret", &secret)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns1"},
            "immutable": false,
            "data": {"password": "aHVudGVyMg=="},
            "type": "Opaque",
        })
    );

    let ns = core::Namespace {
        metadata: Some(meta::ObjectMeta {
            labels: BTreeMap::from([("team".into(), "a".into())]),
            ..go_meta("prod", "")
        }),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus::default()),
    };
    let got = decode(&body("v1", "Namespace", &ns)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "prod", "labels": {"team": "a"}},
            "spec": {},
            "status": {},
        })
    );
}

#[test]
fn deployment_with_special_types() {
    let container = core::Container {
        name: Some("web".into()),
        image: Some("nginx".into()),
        args: vec!["-g".into(), String::new()],
        ports: vec![core::ContainerPort {
            container_port: Some(80),
            protocol: Some("TCP".into()),
            host_port: Some(0),
            ..Default::default()
        }],
        resources: Some(core::ResourceRequirements {
            limits: BTreeMap::from([(
                "memory".into(),
                Quantity {
                    string: Some("128Mi".into()),
                },
            )]),
            ..Default::default()
        }),
        readiness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: Some("/healthz".into()),
                    port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("http".into()),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            period_seconds: Some(10),
            ..Default::default()
        }),
        ..Default::default()
    };
    let deployment = apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_767_323_045),
                nanos: Some(0),
            }),
            ..go_meta("web", "default")
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: BTreeMap::from([("app".into(), "web".into())]),
                match_expressions: vec![],
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(go_meta("", "")),
                spec: Some(core::PodSpec {
                    containers: vec![container],
                    termination_grace_period_seconds: Some(-1),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: Some("RollingUpdate".into()),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(0),
                        str_val: Some(String::new()),
                    }),
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("25%".into()),
                    }),
                }),
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    let got = decode(&body("apps/v1", "Deployment", &deployment)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "creationTimestamp": "2026-01-02T03:04:05Z",
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": "nginx",
                            "args": ["-g", ""],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {"limits": {"memory": "128Mi"}},
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 10,
                            },
                        }],
                        "terminationGracePeriodSeconds": -1,
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
                },
                "minReadySeconds": 0,
            },
            "status": {},
        })
    );
}

#[test]
fn kinds_outside_the_group_fall_back_to_meta() {
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        propagation_policy: Some("Foreground".into()),
        ..Default::default()
    };
    let got = decode(&body("v1", "DeleteOptions", &opts)).unwrap();
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Foreground"})
    );
    let err = decode(&body("v1", "NoSuchKind", &opts)).unwrap_err();
    assert!(matches!(err, ProtobufError::UnknownKind { .. }), "{err}");
}

#[test]
fn micro_time_and_duration() {
    assert_eq!(go_duration(0), "0s");
    assert_eq!(go_duration(1_500_000), "1.5ms");
    assert_eq!(go_duration(3_723_500_000_000), "1h2m3.5s");
    assert_eq!(go_duration(90_000_000_000), "1m30s");
    assert_eq!(go_duration(-2_000), "-2µs");
    let t = meta::MicroTime {
        seconds: Some(1_767_323_045),
        nanos: Some(123_456_789),
    };
    let got = decode_message(MICRO_TIME, &t.encode_to_vec(), 0, 0).unwrap();
    assert_eq!(got, Some(json!("2026-01-02T03:04:05.123456Z")));
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let cm = core::ConfigMap {
        metadata: Some(go_meta("x", "default")),
        data: BTreeMap::from([("a".into(), "b".into())]),
        ..Default::default()
    };
    let good = body("v1", "ConfigMap", &cm);
    assert!(matches!(decode(b"{}"), Err(ProtobufError::Magic)));
    for n in 0..good.len() {
        let _ = decode(&good[..n]);
    }
    // Every single-byte corruption must fail or succeed cleanly.
    for i in 4..good.len() {
        for b in [0x00, 0x7f, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] = b;
            let _ = decode(&bad);
        }
    }
    let truncated = decode(&good[..good.len() - 3]).unwrap_err();
    assert!(truncated.to_string().contains("at byte"), "{truncated}");
    // A runaway varint.
    let mut bad = MAGIC.to_vec();
    bad.extend([
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ]);
    assert!(matches!(
        decode(&bad),
        Err(ProtobufError::Varint { offset: 5 })
    ));
}

#[test]
fn deep_nesting_is_refused() {
    // No served message nests itself, so hostile depth can only come from table cycles;
    // the guard is checked directly.
    let err = decode_message("api.core.v1.Pod", &[], 0, MAX_DEPTH + 1).unwrap_err();
    assert!(matches!(err, ProtobufError::TooDeep { .. }));
}
