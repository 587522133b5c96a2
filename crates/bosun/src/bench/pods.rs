//! The pod the create benchmark sends: about 2 KB of JSON, shaped like a real workload's
//! pod (labels and annotations a controller and a mesh add, env, resources, probes, mounts),
//! so that decoding, defaulting, validation and storage cost what they do in a cluster.

use bytes::Bytes;

/// Stands for the pod's name in [`TEMPLATE`].
const NAME: &str = "@NAME@";
/// Stands for the namespace in [`TEMPLATE`].
const NAMESPACE: &str = "@NAMESPACE@";

const TEMPLATE: &str = r#"{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {
    "name": "@NAME@",
    "namespace": "@NAMESPACE@",
    "labels": {
      "app.kubernetes.io/name": "checkout",
      "app.kubernetes.io/instance": "checkout-prod",
      "app.kubernetes.io/version": "2.14.3",
      "app.kubernetes.io/component": "api",
      "app.kubernetes.io/part-of": "shop",
      "pod-template-hash": "7d9f8c6b5d",
      "tier": "backend",
      "team": "payments"
    },
    "annotations": {
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "9090",
      "prometheus.io/path": "/metrics",
      "checksum/config": "3f5e2a9c1b7d4e8f6a0c2b4d6e8f0a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f",
      "kubectl.kubernetes.io/default-container": "api"
    }
  },
  "spec": {
    "containers": [{
      "name": "api",
      "image": "registry.example.com/shop/checkout:2.14.3",
      "imagePullPolicy": "IfNotPresent",
      "args": ["--config=/etc/checkout/config.yaml", "--log-level=info"],
      "ports": [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
      ],
      "env": [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "DATABASE_URL", "value": "postgres://checkout@db.shop.svc.cluster.local:5432/checkout"},
        {"name": "REDIS_ADDR", "value": "redis.shop.svc.cluster.local:6379"},
        {"name": "PAYMENTS_ENDPOINT", "value": "http://payments.shop.svc.cluster.local:8080"},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.observability:4317"},
        {"name": "FEATURE_FLAGS", "value": "new-cart,fast-checkout,express-shipping"},
        {"name": "GOMAXPROCS", "value": "2"}
      ],
      "resources": {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"}
      },
      "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
      "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 10},
      "volumeMounts": [
        {"name": "config", "mountPath": "/etc/checkout", "readOnly": true},
        {"name": "tmp", "mountPath": "/tmp"}
      ],
      "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "readOnlyRootFilesystem": true}
    }],
    "volumes": [
      {"name": "config", "configMap": {"name": "checkout-config"}},
      {"name": "tmp", "emptyDir": {}}
    ],
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "shop", "effect": "NoSchedule"}],
    "terminationGracePeriodSeconds": 30
  }
}"#;

/// The pod `name` in `namespace`, as the request body of a create.
pub fn pod(namespace: &str, name: &str) -> Bytes {
    Bytes::from(
        TEMPLATE
            .replacen(NAME, name, 1)
            .replacen(NAMESPACE, namespace, 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_is_valid_json_of_about_two_kilobytes() {
        let body = pod("bench", "p-1");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["metadata"]["name"], "p-1");
        assert_eq!(v["metadata"]["namespace"], "bench");
        let compact = serde_json::to_vec(&v).unwrap().len();
        assert!((1_800..2_600).contains(&compact), "{compact} bytes");
    }

    #[test]
    fn pod_is_a_valid_kubernetes_pod() {
        let body = pod("bench", "p-1");
        let p: k8s_openapi::api::core::v1::Pod = serde_json::from_slice(&body).unwrap();
        assert_eq!(p.spec.unwrap().containers[0].env.as_ref().unwrap().len(), 8);
    }
}
