//! Tables for apps/v1: Deployment, ReplicaSet, DaemonSet and StatefulSet.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};

use super::descriptions as d;
use super::format::{container_cells, format_labels, translate_timestamp_since};
use super::{Column, Printer, AGE, NAME};
use crate::selector::{format_label_selector, LabelSelector};

const CONTAINERS: Column = Column::wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Column = Column::wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

fn name(meta: &ObjectMeta) -> Value {
    json!(meta.name.as_deref().unwrap_or(""))
}

fn age(meta: &ObjectMeta, now: DateTime<Utc>) -> Value {
    json!(translate_timestamp_since(
        meta.creation_timestamp.as_ref(),
        now
    ))
}

fn template_containers(template: &PodTemplateSpec) -> &[Container] {
    template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
}

static DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::new(
        "Up-to-date",
        "string",
        d::DEPLOYMENT_STATUS_UPDATED_REPLICAS,
    ),
    Column::new(
        "Available",
        "string",
        d::DEPLOYMENT_STATUS_AVAILABLE_REPLICAS,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", d::DEPLOYMENT_SPEC_SELECTOR),
];

impl Printer for Deployment {
    fn columns() -> &'static [Column] {
        DEPLOYMENT_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        // apps/v1 defaults spec.replicas to 1.
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
        let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
        let (names, images) = container_cells(
            spec.map(|s| template_containers(&s.template))
                .unwrap_or_default(),
        );
        // Unlike the other workloads, upstream prints a deployment's selector without "<none>".
        let selector = LabelSelector::from_api(spec.map(|s| &s.selector))
            .map_or_else(|_| "<invalid>".to_string(), |s| s.to_string());
        vec![
            name(&self.metadata),
            json!(format!("{ready}/{desired}")),
            json!(status.and_then(|s| s.updated_replicas).unwrap_or(0)),
            json!(status.and_then(|s| s.available_replicas).unwrap_or(0)),
            age(&self.metadata, now),
            json!(names),
            json!(images),
            json!(selector),
        ]
    }
}

static REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", d::RS_SPEC_REPLICAS),
    Column::new("Current", "integer", d::RS_STATUS_REPLICAS),
    Column::new("Ready", "integer", d::RS_STATUS_READY_REPLICAS),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", d::RS_SPEC_SELECTOR),
];

impl Printer for ReplicaSet {
    fn columns() -> &'static [Column] {
        REPLICA_SET_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        let containers = spec
            .and_then(|s| s.template.as_ref())
            .map(template_containers)
            .unwrap_or_default();
        let (names, images) = container_cells(containers);
        vec![
            name(&self.metadata),
            // apps/v1 defaults spec.replicas to 1.
            json!(spec.and_then(|s| s.replicas).unwrap_or(1)),
            json!(status.map_or(0, |s| s.replicas)),
            json!(status.and_then(|s| s.ready_replicas).unwrap_or(0)),
            age(&self.metadata, now),
            json!(names),
            json!(images),
            json!(format_label_selector(spec.map(|s| &s.selector))),
        ]
    }
}

static DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", d::DS_STATUS_DESIRED_NUMBER_SCHEDULED),
    Column::new("Current", "integer", d::DS_STATUS_CURRENT_NUMBER_SCHEDULED),
    Column::new("Ready", "integer", d::DS_STATUS_NUMBER_READY),
    Column::new(
        "Up-to-date",
        "integer",
        d::DS_STATUS_UPDATED_NUMBER_SCHEDULED,
    ),
    Column::new("Available", "integer", d::DS_STATUS_NUMBER_AVAILABLE),
    Column::new("Node Selector", "string", d::POD_SPEC_NODE_SELECTOR),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", d::DS_SPEC_SELECTOR),
];

impl Printer for DaemonSet {
    fn columns() -> &'static [Column] {
        DAEMON_SET_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        let pod_spec = spec.and_then(|s| s.template.spec.as_ref());
        let (names, images) = container_cells(
            pod_spec
                .map(|p| p.containers.as_slice())
                .unwrap_or_default(),
        );
        vec![
            name(&self.metadata),
            json!(status.map_or(0, |s| s.desired_number_scheduled)),
            json!(status.map_or(0, |s| s.current_number_scheduled)),
            json!(status.map_or(0, |s| s.number_ready)),
            json!(status.and_then(|s| s.updated_number_scheduled).unwrap_or(0)),
            json!(status.and_then(|s| s.number_available).unwrap_or(0)),
            json!(format_labels(
                pod_spec.and_then(|p| p.node_selector.as_ref())
            )),
            age(&self.metadata, now),
            json!(names),
            json!(images),
            json!(format_label_selector(spec.map(|s| &s.selector))),
        ]
    }
}

static STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

impl Printer for StatefulSet {
    fn columns() -> &'static [Column] {
        STATEFUL_SET_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        // apps/v1 defaults spec.replicas to 1.
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
        let ready = self
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        let (names, images) = container_cells(
            spec.map(|s| template_containers(&s.template))
                .unwrap_or_default(),
        );
        vec![
            name(&self.metadata),
            json!(format!("{ready}/{desired}")),
            age(&self.metadata, now),
            json!(names),
            json!(images),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde::de::DeserializeOwned;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn ago(d: Duration) -> String {
        (now() - d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn obj<T: DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("fixture")
    }

    fn two_containers() -> Value {
        json!([{"name": "fake-container1", "image": "fake-image1"}, {"name": "fake-container2", "image": "fake-image2"}])
    }

    #[test]
    fn deployments() {
        // Upstream's TestPrintDeployment, wide case.
        let dep: Deployment = obj(
            json!({"metadata": {"name": "test1", "creationTimestamp": ago(Duration::zero())},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"foo": "bar"}},
                "template": {"spec": {"containers": two_containers()}}},
            "status": {"replicas": 10, "updatedReplicas": 2, "availableReplicas": 1, "unavailableReplicas": 4}}),
        );
        assert_eq!(
            dep.row(now()),
            vec![
                json!("test1"),
                json!("0/5"),
                json!(2),
                json!(1),
                json!("0s"),
                json!("fake-container1,fake-container2"),
                json!("fake-image1,fake-image2"),
                json!("foo=bar")
            ]
        );
        // `kubectl get deployments` for a rolled-out nginx deployment.
        let dep: Deployment = obj(
            json!({"metadata": {"name": "nginx", "creationTimestamp": ago(Duration::seconds(130))},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}},
            "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3}}),
        );
        assert_eq!(
            dep.row(now())[..5],
            [
                json!("nginx"),
                json!("3/3"),
                json!(3),
                json!(3),
                json!("2m10s")
            ]
        );
        assert_eq!(dep.row(now()).len(), DEPLOYMENT_COLUMNS.len());
    }

    #[test]
    fn replica_sets() {
        // Upstream's TestPrintReplicaSet, wide case.
        let rs: ReplicaSet = obj(
            json!({"metadata": {"name": "test1", "creationTimestamp": ago(Duration::zero())},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"foo": "bar"}}, "template": {"spec": {"containers": two_containers()}}},
            "status": {"replicas": 5, "readyReplicas": 2}}),
        );
        assert_eq!(
            rs.row(now()),
            vec![
                json!("test1"),
                json!(5),
                json!(5),
                json!(2),
                json!("0s"),
                json!("fake-container1,fake-container2"),
                json!("fake-image1,fake-image2"),
                json!("foo=bar")
            ]
        );
        let set_based: ReplicaSet = obj(json!({"metadata": {"name": "rs"}, "spec": {"selector": {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}}}));
        assert_eq!(set_based.row(now())[7], json!("app=web,tier in (be,fe)"));
        let bare = ReplicaSet::default();
        assert_eq!(bare.row(now())[1..4], [json!(1), json!(0), json!(0)]);
        assert_eq!(bare.row(now())[7], json!("<none>"));
    }

    #[test]
    fn daemon_sets() {
        // Upstream's TestPrintDaemonSet, wide case.
        let ds: DaemonSet = obj(
            json!({"metadata": {"name": "test1", "creationTimestamp": ago(Duration::zero())},
            "spec": {"selector": {"matchLabels": {"foo": "bar"}}, "template": {"spec": {"containers": two_containers()}}},
            "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 3, "numberReady": 1,
                "updatedNumberScheduled": 2, "numberAvailable": 0, "numberMisscheduled": 0}}),
        );
        assert_eq!(
            ds.row(now()),
            vec![
                json!("test1"),
                json!(3),
                json!(2),
                json!(1),
                json!(2),
                json!(0),
                json!("<none>"),
                json!("0s"),
                json!("fake-container1,fake-container2"),
                json!("fake-image1,fake-image2"),
                json!("foo=bar")
            ]
        );
        let with_selector: DaemonSet = obj(
            json!({"metadata": {"name": "agents"}, "spec": {"selector": {},
            "template": {"spec": {"containers": [], "nodeSelector": {"kubernetes.io/os": "linux"}}}}}),
        );
        assert_eq!(with_selector.row(now())[6], json!("kubernetes.io/os=linux"));
    }

    #[test]
    fn stateful_sets() {
        // Upstream's TestPrintStatefulSet, wide case.
        let ss: StatefulSet = obj(
            json!({"metadata": {"name": "test1", "creationTimestamp": ago(Duration::zero())},
            "spec": {"replicas": 5, "selector": {}, "serviceName": "", "template": {"spec": {"containers": two_containers()}}},
            "status": {"replicas": 5, "readyReplicas": 2}}),
        );
        assert_eq!(
            ss.row(now()),
            vec![
                json!("test1"),
                json!("2/5"),
                json!("0s"),
                json!("fake-container1,fake-container2"),
                json!("fake-image1,fake-image2")
            ]
        );
    }
}
