//! Tables for the core/v1 kinds other than Pod and Event: ReplicationController, Service,
//! Endpoints, Node, Namespace, ConfigMap, Secret, ServiceAccount, PersistentVolume,
//! PersistentVolumeClaim, ResourceQuota and LimitRange.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, LimitRange, LoadBalancerStatus, Namespace, Node, PersistentVolume,
    PersistentVolumeClaim, ReplicationController, ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};

use super::descriptions as d;
use super::format::{
    access_modes, container_cells, format_labels, quantity, translate_timestamp_since,
};
use super::{default_row, Column, Printer, AGE, DEFAULT_COLUMNS, NAME};

/// `loadBalancerWidth`: how much of a load balancer's address list fits a narrow table.
const LOAD_BALANCER_WIDTH: usize = 16;

/// The annotation that predates `storageClassName` and still wins over it.
const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

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

static RC_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", d::RC_SPEC_REPLICAS),
    Column::new("Current", "integer", d::RC_STATUS_REPLICAS),
    Column::new("Ready", "integer", d::RC_STATUS_READY_REPLICAS),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", d::RC_SPEC_SELECTOR),
];

impl Printer for ReplicationController {
    fn columns() -> &'static [Column] {
        RC_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        // v1 defaults spec.replicas to 1.
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
        let containers = spec
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        let (names, images) = container_cells(containers);
        vec![
            name(&self.metadata),
            json!(desired),
            json!(status.map_or(0, |s| s.replicas)),
            json!(status.and_then(|s| s.ready_replicas).unwrap_or(0)),
            age(&self.metadata, now),
            json!(names),
            json!(images),
            json!(format_labels(spec.and_then(|s| s.selector.as_ref()))),
        ]
    }
}

static SERVICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Type", "string", d::SERVICE_SPEC_TYPE),
    Column::new("Cluster-IP", "string", d::SERVICE_SPEC_CLUSTER_IP),
    Column::new("External-IP", "string", d::SERVICE_SPEC_EXTERNAL_IPS),
    Column::new("Port(s)", "string", d::SERVICE_SPEC_PORTS),
    AGE,
    Column::wide("Selector", "string", d::SERVICE_SPEC_SELECTOR),
];

/// `loadBalancerStatusStringer`: the distinct ingress IPs (or hostnames) sorted and
/// comma-joined, cut to 16 bytes unless `wide`.
pub fn load_balancer_status(status: Option<&LoadBalancerStatus>, wide: bool) -> String {
    let mut set = BTreeSet::new();
    for ingress in status
        .and_then(|s| s.ingress.as_ref())
        .into_iter()
        .flatten()
    {
        match (ingress.ip.as_deref(), ingress.hostname.as_deref()) {
            (Some(ip), _) if !ip.is_empty() => {
                set.insert(ip);
            }
            (_, Some(host)) if !host.is_empty() => {
                set.insert(host);
            }
            _ => {}
        }
    }
    let joined = set.into_iter().collect::<Vec<_>>().join(",");
    if !wide && joined.len() > LOAD_BALANCER_WIDTH {
        let mut cut = LOAD_BALANCER_WIDTH - 3;
        // Upstream cuts bytes; stay on a character boundary so the cell stays valid UTF-8.
        while !joined.is_char_boundary(cut) {
            cut -= 1;
        }
        return format!("{}...", &joined[..cut]);
    }
    joined
}

/// `getServiceExternalIP`.
pub fn service_external_ip(svc: &Service, wide: bool) -> String {
    let spec = svc.spec.as_ref();
    let external_ips = spec
        .and_then(|s| s.external_ips.as_deref())
        .unwrap_or_default();
    match service_type(svc) {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_status(
                svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()),
                wide,
            );
            if !external_ips.is_empty() {
                let mut results: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    results.extend(lb.split(','));
                }
                results.extend(external_ips.iter().map(String::as_str));
                return results.join(",");
            }
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb
            }
        }
        "ExternalName" => spec
            .and_then(|s| s.external_name.clone())
            .unwrap_or_default(),
        _ => "<unknown>".to_string(),
    }
}

fn service_type(svc: &Service) -> &str {
    // v1 defaults spec.type to ClusterIP.
    svc.spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("ClusterIP")
}

/// `makePortString`: "80/TCP" or "8080:30001/TCP" per port, comma-joined.
pub fn service_ports(svc: &Service) -> String {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    ports
        .iter()
        .map(|p| {
            // v1 defaults a port's protocol to TCP.
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            match p.node_port {
                Some(np) if np > 0 => format!("{}:{}/{}", p.port, np, protocol),
                _ => format!("{}/{}", p.port, protocol),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Printer for Service {
    fn columns() -> &'static [Column] {
        SERVICE_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        // The internal API keeps only clusterIPs; the v1 conversion puts clusterIP first.
        let cluster_ip = match spec.and_then(|s| s.cluster_ip.as_deref()) {
            Some(ip) if !ip.is_empty() => ip.to_string(),
            _ => spec
                .and_then(|s| s.cluster_ips.as_ref())
                .and_then(|ips| ips.first())
                .cloned()
                .unwrap_or_else(|| "<none>".to_string()),
        };
        let mut ports = service_ports(self);
        if ports.is_empty() {
            ports = "<none>".to_string();
        }
        vec![
            name(&self.metadata),
            json!(service_type(self)),
            json!(cluster_ip),
            json!(service_external_ip(self, true)),
            json!(ports),
            age(&self.metadata, now),
            json!(format_labels(spec.and_then(|s| s.selector.as_ref()))),
        ]
    }
}

static ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Endpoints", "string", d::ENDPOINTS_SUBSETS),
    AGE,
];

/// `net.JoinHostPort`: brackets around an address that contains a colon.
fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `formatEndpoints` with every port: at most three "ip:port" entries, then " + N more...".
pub fn format_endpoints(ep: &Endpoints) -> String {
    let subsets = ep.subsets.as_deref().unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = ss.addresses.as_deref().unwrap_or_default();
        let ports = ss.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(addr.ip.clone());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(&addr.ip, port.port));
            }
        }
    }
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count.saturating_sub(MAX));
    }
    joined
}

impl Printer for Endpoints {
    fn columns() -> &'static [Column] {
        ENDPOINTS_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        vec![
            name(&self.metadata),
            json!(format_endpoints(self)),
            age(&self.metadata, now),
        ]
    }
}

static NODE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    AGE,
    Column::new("Version", "string", d::NODE_INFO_KUBELET_VERSION),
    Column::wide("Internal-IP", "string", d::NODE_STATUS_ADDRESSES),
    Column::wide("External-IP", "string", d::NODE_STATUS_ADDRESSES),
    Column::wide("OS-Image", "string", d::NODE_INFO_OS_IMAGE),
    Column::wide("Kernel-Version", "string", d::NODE_INFO_KERNEL_VERSION),
    Column::wide(
        "Container-Runtime",
        "string",
        d::NODE_INFO_CONTAINER_RUNTIME_VERSION,
    ),
];

/// The label prefix whose suffix names a node role (`node-role.kubernetes.io/control-plane`).
const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
/// The older label whose value names a node role.
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";

/// `findNodeRoles`: sorted, deduplicated roles from both kinds of role label.
pub fn node_roles(node: &Node) -> Vec<String> {
    let mut roles = BTreeSet::new();
    for (k, v) in node.metadata.labels.iter().flatten() {
        if let Some(role) = k.strip_prefix(NODE_ROLE_PREFIX) {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == NODE_ROLE_LABEL && !v.is_empty() {
            roles.insert(v.clone());
        }
    }
    roles.into_iter().collect()
}

/// The node's STATUS cell: "Ready", "NotReady" or "Unknown", then ",SchedulingDisabled"
/// when cordoned.
pub fn node_status(node: &Node) -> String {
    let conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    // The last Ready condition wins, as upstream's map assignment makes it.
    let mut status: Vec<String> = match conditions.iter().rev().find(|c| c.type_ == "Ready") {
        Some(c) if c.status == "True" => vec![c.type_.clone()],
        Some(c) => vec![format!("Not{}", c.type_)],
        None => vec!["Unknown".to_string()],
    };
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        status.push("SchedulingDisabled".to_string());
    }
    status.join(",")
}

fn node_address(node: &Node, type_: &str) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .and_then(|addrs| addrs.iter().find(|a| a.type_ == type_))
        .map(|a| a.address.clone())
        .unwrap_or_else(|| "<none>".to_string())
}

impl Printer for Node {
    fn columns() -> &'static [Column] {
        NODE_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let info = self.status.as_ref().and_then(|s| s.node_info.as_ref());
        let unknown = |s: Option<&String>| match s {
            Some(s) if !s.is_empty() => s.clone(),
            _ => "<unknown>".to_string(),
        };
        let mut roles = node_roles(self).join(",");
        if roles.is_empty() {
            roles = "<none>".to_string();
        }
        vec![
            name(&self.metadata),
            json!(node_status(self)),
            json!(roles),
            age(&self.metadata, now),
            json!(info.map(|i| i.kubelet_version.as_str()).unwrap_or("")),
            json!(node_address(self, "InternalIP")),
            json!(node_address(self, "ExternalIP")),
            json!(unknown(info.map(|i| &i.os_image))),
            json!(unknown(info.map(|i| &i.kernel_version))),
            json!(unknown(info.map(|i| &i.container_runtime_version))),
        ]
    }
}

static NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the namespace"),
    AGE,
];

impl Printer for Namespace {
    fn columns() -> &'static [Column] {
        NAMESPACE_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        // v1 defaults status.phase to Active.
        let phase = self
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Active");
        vec![name(&self.metadata), json!(phase), age(&self.metadata, now)]
    }
}

static CONFIG_MAP_COLUMNS: &[Column] =
    &[NAME, Column::new("Data", "string", d::CONFIG_MAP_DATA), AGE];

impl Printer for ConfigMap {
    fn columns() -> &'static [Column] {
        CONFIG_MAP_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let n = self.data.as_ref().map_or(0, |m| m.len())
            + self.binary_data.as_ref().map_or(0, |m| m.len());
        vec![name(&self.metadata), json!(n), age(&self.metadata, now)]
    }
}

static SECRET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Type", "string", d::SECRET_TYPE),
    Column::new("Data", "string", d::SECRET_DATA),
    AGE,
];

impl Printer for Secret {
    fn columns() -> &'static [Column] {
        SECRET_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        // The v1 conversion merges stringData into data, so count the keys of both.
        let keys: BTreeSet<&String> = self
            .data
            .iter()
            .flat_map(|m| m.keys())
            .chain(self.string_data.iter().flat_map(|m| m.keys()))
            .collect();
        // v1 defaults type to Opaque.
        let type_ = self.type_.as_deref().unwrap_or("Opaque");
        vec![
            name(&self.metadata),
            json!(type_),
            json!(keys.len()),
            age(&self.metadata, now),
        ]
    }
}

static SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Secrets", "string", d::SERVICE_ACCOUNT_SECRETS),
    AGE,
];

impl Printer for ServiceAccount {
    fn columns() -> &'static [Column] {
        SERVICE_ACCOUNT_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let n = self.secrets.as_ref().map_or(0, Vec::len);
        vec![name(&self.metadata), json!(n), age(&self.metadata, now)]
    }
}

static PV_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Capacity", "string", d::PV_SPEC_CAPACITY),
    Column::new("Access Modes", "string", d::PV_SPEC_ACCESS_MODES),
    Column::new("Reclaim Policy", "string", d::PV_SPEC_RECLAIM_POLICY),
    Column::new("Status", "string", d::PV_STATUS_PHASE),
    Column::new("Claim", "string", d::PV_SPEC_CLAIM_REF),
    Column::new("StorageClass", "string", "StorageClass of the pv"),
    Column::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    Column::new("Reason", "string", d::PV_STATUS_REASON),
    AGE,
    Column::wide("VolumeMode", "string", d::PV_SPEC_VOLUME_MODE),
];

fn beta_storage_class(meta: &ObjectMeta) -> Option<&String> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(BETA_STORAGE_CLASS_ANNOTATION))
}

impl Printer for PersistentVolume {
    fn columns() -> &'static [Column] {
        PV_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let claim = spec
            .and_then(|s| s.claim_ref.as_ref())
            .map(|r| {
                format!(
                    "{}/{}",
                    r.namespace.as_deref().unwrap_or(""),
                    r.name.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_default();
        let capacity = quantity(
            spec.and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage")),
        );
        // v1 defaults: reclaim policy Retain, volume mode Filesystem, phase Pending.
        let reclaim = spec
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            .unwrap_or("Retain");
        let mut phase = self
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        if self.metadata.deletion_timestamp.is_some() {
            phase = "Terminating";
        }
        let class = beta_storage_class(&self.metadata)
            .cloned()
            .or_else(|| spec.and_then(|s| s.storage_class_name.clone()))
            .unwrap_or_default();
        let vac = spec
            .and_then(|s| s.volume_attributes_class_name.as_deref())
            .unwrap_or("<unset>");
        let volume_mode = spec
            .and_then(|s| s.volume_mode.as_deref())
            .unwrap_or("Filesystem");
        vec![
            name(&self.metadata),
            json!(capacity),
            json!(access_modes(spec.and_then(|s| s.access_modes.as_ref()))),
            json!(reclaim),
            json!(phase),
            json!(claim),
            json!(class),
            json!(vac),
            json!(self
                .status
                .as_ref()
                .and_then(|s| s.reason.as_deref())
                .unwrap_or("")),
            age(&self.metadata, now),
            json!(volume_mode),
        ]
    }
}

static PVC_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", d::PVC_STATUS_PHASE),
    Column::new("Volume", "string", d::PVC_SPEC_VOLUME_NAME),
    Column::new("Capacity", "string", d::PVC_STATUS_CAPACITY),
    Column::new("Access Modes", "string", d::PVC_STATUS_ACCESS_MODES),
    Column::new("StorageClass", "string", "StorageClass of the pvc"),
    Column::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    Column::wide("VolumeMode", "string", d::PVC_SPEC_VOLUME_MODE),
];

impl Printer for PersistentVolumeClaim {
    fn columns() -> &'static [Column] {
        PVC_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        // v1 defaults: phase Pending, volume mode Filesystem.
        let mut phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        if self.metadata.deletion_timestamp.is_some() {
            phase = "Terminating";
        }
        let volume_name = spec.and_then(|s| s.volume_name.as_deref()).unwrap_or("");
        let (capacity, modes) = if volume_name.is_empty() {
            (String::new(), String::new())
        } else {
            (
                quantity(
                    status
                        .and_then(|s| s.capacity.as_ref())
                        .and_then(|c| c.get("storage")),
                ),
                access_modes(status.and_then(|s| s.access_modes.as_ref())),
            )
        };
        let class = beta_storage_class(&self.metadata)
            .cloned()
            .or_else(|| spec.and_then(|s| s.storage_class_name.clone()))
            .unwrap_or_default();
        let vac = spec
            .and_then(|s| s.volume_attributes_class_name.as_deref())
            .unwrap_or("<unset>");
        let volume_mode = spec
            .and_then(|s| s.volume_mode.as_deref())
            .unwrap_or("Filesystem");
        vec![
            name(&self.metadata),
            json!(phase),
            json!(volume_name),
            json!(capacity),
            json!(modes),
            json!(class),
            json!(vac),
            age(&self.metadata, now),
            json!(volume_mode),
        ]
    }
}

static RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    Column::new(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

impl Printer for ResourceQuota {
    fn columns() -> &'static [Column] {
        RESOURCE_QUOTA_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let status = self.status.as_ref();
        let used = status.and_then(|s| s.used.as_ref());
        let mut requests: Vec<String> = Vec::new();
        let mut limits: Vec<String> = Vec::new();
        // BTreeMap order is upstream's sorted resource names.
        for (resource, hard) in status.and_then(|s| s.hard.as_ref()).into_iter().flatten() {
            let text = format!(
                "{resource}: {}/{}",
                quantity(used.and_then(|u| u.get(resource))),
                quantity(Some(hard))
            );
            let mut pieces = resource.split('.');
            let is_limit = pieces.next() == Some("limits") && pieces.next().is_some();
            if is_limit {
                limits.push(text);
            } else {
                requests.push(text);
            }
        }
        vec![
            name(&self.metadata),
            json!(requests.join(", ")),
            json!(limits.join(", ")),
            age(&self.metadata, now),
        ]
    }
}

// Upstream registers no printer for LimitRange, so it gets the default table.
impl Printer for LimitRange {
    fn columns() -> &'static [Column] {
        DEFAULT_COLUMNS
    }

    fn row(&self, _now: DateTime<Utc>) -> Vec<Value> {
        default_row(&self.metadata)
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

    fn strs(v: &[&str]) -> Vec<Value> {
        v.iter().map(|s| json!(s)).collect()
    }

    #[test]
    fn replication_controllers() {
        // Upstream's TestPrintReplicationController "wide" case.
        let rc: ReplicationController = obj(json!({"metadata": {"name": "rc1"},
            "spec": {"replicas": 5, "selector": {"a": "b"}, "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "test", "image": "test_image"}]}}},
            "status": {"replicas": 3, "readyReplicas": 1}}));
        assert_eq!(
            rc.row(now()),
            vec![
                json!("rc1"),
                json!(5),
                json!(3),
                json!(1),
                json!("<unknown>"),
                json!("test"),
                json!("test_image"),
                json!("a=b")
            ]
        );
        // "no panic": nothing but replicas 0.
        let bare: ReplicationController = obj(json!({"metadata": {}, "spec": {"replicas": 0}}));
        assert_eq!(
            bare.row(now()),
            vec![
                json!(""),
                json!(0),
                json!(0),
                json!(0),
                json!("<unknown>"),
                json!(""),
                json!(""),
                json!("<none>")
            ]
        );
        assert_eq!(RC_COLUMNS.len(), rc.row(now()).len());
    }

    #[test]
    fn services() {
        // Upstream's TestPrintService and TestPrintServiceLoadBalancer.
        let svc = |spec: Value, status: Value| -> Service {
            obj(json!({"metadata": {"name": "test"}, "spec": spec, "status": status}))
        };
        let s = svc(
            json!({"type": "ClusterIP", "ports": [{"protocol": "tcp", "port": 2233}],
            "clusterIPs": ["10.9.8.7"], "selector": {"foo": "bar"}}),
            json!({}),
        );
        assert_eq!(
            s.row(now()),
            strs(&[
                "test",
                "ClusterIP",
                "10.9.8.7",
                "<none>",
                "2233/tcp",
                "<unknown>",
                "foo=bar"
            ])
        );
        let s = svc(
            json!({"type": "NodePort", "ports": [{"protocol": "tcp", "port": 8888, "nodePort": 9999}],
            "clusterIPs": ["10.9.8.7"]}),
            json!({}),
        );
        assert_eq!(
            s.row(now())[..5],
            strs(&["test", "NodePort", "10.9.8.7", "<none>", "8888:9999/tcp"])
        );
        let s = svc(
            json!({"type": "LoadBalancer", "ports": [{"protocol": "tcp", "port": 8888}], "clusterIPs": ["10.9.8.7"]}),
            json!({}),
        );
        assert_eq!(s.row(now())[3], json!("<pending>"));
        let s = svc(
            json!({"type": "LoadBalancer", "ports": [{"protocol": "tcp", "port": 8888}], "clusterIPs": ["10.9.8.7"],
            "externalIPs": ["80.11.12.10", "80.11.12.11"]}),
            json!({"loadBalancer": {"ingress": [{"ip": "2.3.4.5", "hostname": "test.cluster.local"},
                {"ip": "3.4.5.6", "hostname": "test.cluster.com"}]}}),
        );
        assert_eq!(
            s.row(now())[3],
            json!("2.3.4.5,3.4.5.6,80.11.12.10,80.11.12.11")
        );
        let s = svc(
            json!({"type": "ExternalName", "externalName": "my.database.example.com"}),
            json!({}),
        );
        assert_eq!(
            s.row(now())[..5],
            strs(&[
                "test",
                "ExternalName",
                "<none>",
                "my.database.example.com",
                "<none>"
            ])
        );
        // Long load balancer lists are cut only in narrow output.
        let s = svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["1.5.6.7"]}),
            json!({"loadBalancer": {"ingress": [{"ip": "2.3.4.5"}, {"ip": "3.4.5.6"}, {"ip": "5.6.7.8", "hostname": "host5678"}]}}),
        );
        assert_eq!(service_external_ip(&s, false), "2.3.4.5,3.4.5...");
        assert_eq!(service_external_ip(&s, true), "2.3.4.5,3.4.5.6,5.6.7.8");
        let ports = svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["1.3.4.5"], "ports": [{"port": 80, "protocol": "TCP"},
            {"port": 8090, "protocol": "UDP"}, {"port": 8000, "protocol": "TCP"}, {"port": 7777, "protocol": "SCTP"}]}),
            json!({}),
        );
        assert_eq!(
            ports.row(now())[4],
            json!("80/TCP,8090/UDP,8000/TCP,7777/SCTP")
        );
    }

    #[test]
    fn kubectl_get_svc_view() {
        // The seed's NodePort service: `8080:30001/TCP`, defaults filled in as stored.
        let s: Service = obj(
            json!({"metadata": {"name": "myweb", "creationTimestamp": ago(Duration::minutes(3))},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.23", "clusterIPs": ["10.96.0.23"],
                "ports": [{"port": 8080, "targetPort": 8080, "nodePort": 30001, "protocol": "TCP"}],
                "selector": {"app": "myweb"}}}),
        );
        assert_eq!(
            s.row(now()),
            strs(&[
                "myweb",
                "NodePort",
                "10.96.0.23",
                "<none>",
                "8080:30001/TCP",
                "3m",
                "app=myweb"
            ])
        );
        // A headless service shows None; a missing type and protocol print their v1 defaults.
        let h: Service = obj(
            json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}}),
        );
        assert_eq!(
            h.row(now())[..5],
            strs(&["db", "ClusterIP", "None", "<none>", "5432/TCP"])
        );
    }

    #[test]
    fn endpoints() {
        // Upstream's TestPrintEndpoint.
        let ep = |subsets: Value| -> Endpoints {
            obj(json!({"metadata": {"name": "ep"}, "subsets": subsets}))
        };
        assert_eq!(format_endpoints(&ep(json!([]))), "<none>");
        assert_eq!(
            format_endpoints(&ep(
                json!([{"addresses": [{"ip": "1.2.3.4"}, {"ip": "5.6.7.8"}]}])
            )),
            "1.2.3.4,5.6.7.8"
        );
        assert_eq!(
            format_endpoints(&ep(
                json!([{"addresses": [{"ip": "1.2.3.4"}, {"ip": "5.6.7.8"}],
                "ports": [{"port": 8001, "protocol": "tcp"}]}])
            )),
            "1.2.3.4:8001,5.6.7.8:8001"
        );
        let four = ep(
            json!([{"addresses": [{"ip": "1.2.3.4"}, {"ip": "5.6.7.8"}, {"ip": "9.8.7.6"}, {"ip": "6.6.6.6"}],
            "ports": [{"port": 8001, "protocol": "tcp"}]}]),
        );
        assert_eq!(
            four.row(now())[1],
            json!("1.2.3.4:8001,5.6.7.8:8001,9.8.7.6:8001 + 1 more...")
        );
        assert_eq!(
            format_endpoints(&ep(
                json!([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}])
            )),
            "[fd00::1]:80"
        );
        let created: Endpoints = obj(
            json!({"metadata": {"name": "endpoint3", "creationTimestamp": ago(Duration::minutes(5))}}),
        );
        assert_eq!(created.row(now()), strs(&["endpoint3", "<none>", "5m"]));
    }

    #[test]
    fn nodes() {
        // Upstream's TestPrintNodeStatus and TestPrintNodeRole.
        let node = |v: Value| -> Node { obj(v) };
        let n = node(
            json!({"metadata": {"name": "foo2"}, "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            n.row(now())[..5],
            strs(&[
                "foo2",
                "Ready,SchedulingDisabled",
                "<none>",
                "<unknown>",
                ""
            ])
        );
        let n = node(
            json!({"metadata": {"name": "foo4"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        );
        assert_eq!(n.row(now())[1], json!("NotReady"));
        let n = node(
            json!({"metadata": {"name": "foo8"}, "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "InvalidValue", "status": "True"}]}}),
        );
        assert_eq!(n.row(now())[1], json!("Unknown,SchedulingDisabled"));
        let n = node(
            json!({"metadata": {"name": "foo10", "labels": {"node-role.kubernetes.io/master": "",
            "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/proxy": "", "kubernetes.io/role": "node"}}}),
        );
        assert_eq!(n.row(now())[2], json!("control-plane,master,node,proxy"));
        // Upstream's TestPrintNodeExternalIP "foo3": the first address of each type.
        let n = node(
            json!({"metadata": {"name": "foo3"}, "status": {"addresses": [
            {"type": "ExternalIP", "address": "2.2.2.2"}, {"type": "InternalIP", "address": "3.3.3.3"},
            {"type": "ExternalIP", "address": "4.4.4.4"}]}}),
        );
        assert_eq!(
            n.row(now()),
            strs(&[
                "foo3",
                "Unknown",
                "<none>",
                "<unknown>",
                "",
                "3.3.3.3",
                "2.2.2.2",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ])
        );
    }

    #[test]
    fn kubectl_get_nodes_view() {
        let n: Node = obj(
            json!({"metadata": {"name": "node-1", "creationTimestamp": ago(Duration::days(3)),
                "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node-1"}],
                "nodeInfo": {"kubeletVersion": "v1.34.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "bosun://0.1.0",
                    "architecture": "amd64", "bootID": "", "kubeProxyVersion": "", "machineID": "",
                    "operatingSystem": "linux", "systemUUID": ""}}}),
        );
        assert_eq!(
            n.row(now()),
            strs(&[
                "node-1",
                "Ready",
                "control-plane",
                "3d",
                "v1.34.0",
                "192.168.1.10",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0-18-amd64",
                "bosun://0.1.0"
            ])
        );
    }

    #[test]
    fn namespaces_configmaps_secrets_serviceaccounts() {
        // Upstream's TestPrintNamespace, TestPrintConfigMap, TestPrintSecret, TestPrintServiceAccount.
        let ns: Namespace = obj(
            json!({"metadata": {"name": "namespace1", "creationTimestamp": ago(Duration::seconds(0))},
            "status": {"phase": "FooStatus"}}),
        );
        assert_eq!(ns.row(now()), strs(&["namespace1", "FooStatus", "0s"]));
        let ns: Namespace = obj(
            json!({"metadata": {"name": "default", "creationTimestamp": ago(Duration::days(2))}}),
        );
        assert_eq!(ns.row(now()), strs(&["default", "Active", "2d"]));
        let cm: ConfigMap = obj(
            json!({"metadata": {"name": "configmap3"}, "data": {"foo": "bar"}, "binaryData": {"bin": "YmluYXJ5"}}),
        );
        assert_eq!(
            cm.row(now()),
            vec![json!("configmap3"), json!(2), json!("<unknown>")]
        );
        let secret: Secret = obj(
            json!({"metadata": {"name": "secret1"}, "type": "kubernetes.io/service-account-token",
            "data": {"token": "c2VjcmV0IGRhdGE="}}),
        );
        assert_eq!(
            secret.row(now()),
            vec![
                json!("secret1"),
                json!("kubernetes.io/service-account-token"),
                json!(1),
                json!("<unknown>")
            ]
        );
        let sa: ServiceAccount = obj(
            json!({"metadata": {"name": "sa1"}, "secrets": [{"name": "Secret1"}, {"name": "Secret2"}]}),
        );
        assert_eq!(
            sa.row(now()),
            vec![json!("sa1"), json!(2), json!("<unknown>")]
        );
    }

    #[test]
    fn persistent_volumes() {
        // Upstream's TestPrintPersistentVolume "test4" (with a volume attributes class). Its
        // internal object has no volume mode, which upstream prints "<unset>"; a stored v1
        // object always has one (defaulted to Filesystem), and so does this row.
        let pv: PersistentVolume = obj(json!({"metadata": {"name": "test4"},
            "spec": {"claimRef": {"name": "test", "namespace": "default"}, "storageClassName": "my-scn",
                "volumeAttributesClassName": "my-vacn", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"},
                "persistentVolumeReclaimPolicy": ""},
            "status": {"phase": "Pending"}}));
        assert_eq!(
            pv.row(now()),
            strs(&[
                "test4",
                "10Gi",
                "RWO",
                "",
                "Pending",
                "default/test",
                "my-scn",
                "my-vacn",
                "",
                "<unknown>",
                "Filesystem"
            ])
        );
        // What `kubectl get pv` shows for a typical bound hostPath volume.
        let pv: PersistentVolume = obj(
            json!({"metadata": {"name": "pv0001", "creationTimestamp": ago(Duration::hours(5))},
            "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                "persistentVolumeReclaimPolicy": "Recycle", "storageClassName": "slow",
                "claimRef": {"namespace": "default", "name": "myclaim"}, "hostPath": {"path": "/data"}},
            "status": {"phase": "Bound"}}),
        );
        assert_eq!(
            pv.row(now()),
            strs(&[
                "pv0001",
                "5Gi",
                "RWO,ROX",
                "Recycle",
                "Bound",
                "default/myclaim",
                "slow",
                "<unset>",
                "",
                "5h",
                "Filesystem"
            ])
        );
        // Capacities print in canonical form, as upstream's Quantity.String() does.
        let odd: PersistentVolume =
            obj(json!({"metadata": {"name": "odd"}, "spec": {"capacity": {"storage": "1.5Gi"}}}));
        assert_eq!(odd.row(now())[1], json!("1536Mi"));
        let deleting: PersistentVolume = obj(
            json!({"metadata": {"name": "gone", "deletionTimestamp": ago(Duration::seconds(1)),
            "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}}, "spec": {"storageClassName": "ignored"}}),
        );
        let row = deleting.row(now());
        assert_eq!(
            row[1..7],
            strs(&["0", "", "Retain", "Terminating", "", "beta"])
        );
    }

    #[test]
    fn persistent_volume_claims() {
        // Upstream's TestPrintPersistentVolumeClaim "test1", "test2" and the last case.
        let pvc: PersistentVolumeClaim = obj(json!({"metadata": {"name": "test1"},
            "spec": {"volumeName": "my-volume", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "accessModes": ["ReadOnlyMany"], "capacity": {"storage": "4Gi"}}}));
        assert_eq!(
            pvc.row(now()),
            strs(&[
                "test1",
                "Bound",
                "my-volume",
                "4Gi",
                "ROX",
                "",
                "<unset>",
                "<unknown>",
                "Filesystem"
            ])
        );
        let lost: PersistentVolumeClaim = obj(
            json!({"metadata": {"name": "test2"}, "spec": {"volumeMode": "Filesystem"},
            "status": {"phase": "Lost", "accessModes": ["ReadOnlyMany"], "capacity": {"storage": "4Gi"}}}),
        );
        assert_eq!(
            lost.row(now()),
            strs(&[
                "test2",
                "Lost",
                "",
                "",
                "",
                "",
                "<unset>",
                "<unknown>",
                "Filesystem"
            ])
        );
        let vac: PersistentVolumeClaim = obj(json!({"metadata": {"name": "test5"},
            "spec": {"volumeName": "my-volume", "storageClassName": "my-scn", "volumeAttributesClassName": "my-vacn"},
            "status": {"phase": "Pending", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}}));
        assert_eq!(
            vac.row(now())[..7],
            strs(&[
                "test5",
                "Pending",
                "my-volume",
                "10Gi",
                "RWO",
                "my-scn",
                "my-vacn"
            ])
        );
        // A fresh claim waiting for a volume.
        let fresh: PersistentVolumeClaim = obj(
            json!({"metadata": {"name": "myclaim", "creationTimestamp": ago(Duration::seconds(7))},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}}}),
        );
        assert_eq!(
            fresh.row(now()),
            strs(&[
                "myclaim",
                "Pending",
                "",
                "",
                "",
                "",
                "<unset>",
                "7s",
                "Filesystem"
            ])
        );
    }

    #[test]
    fn resource_quotas_and_limit_ranges() {
        // Upstream's TestPrintResourceQuota.
        let rq: ResourceQuota = obj(
            json!({"metadata": {"name": "test-resourcequota", "creationTimestamp": ago(Duration::minutes(5))},
            "status": {
                "used": {"cpu": "1", "memory": "1Gi", "pods": "1", "services": "1", "replicationcontrollers": "1",
                    "resourcequotas": "1", "limits.cpu": "2", "limits.memory": "2Gi"},
                "hard": {"cpu": "100", "memory": "4Gi", "pods": "10", "services": "10", "replicationcontrollers": "10",
                    "resourcequotas": "1", "limits.cpu": "200", "limits.memory": "8Gi"}}}),
        );
        assert_eq!(
            rq.row(now()),
            strs(&[
                "test-resourcequota",
                "cpu: 1/100, memory: 1Gi/4Gi, pods: 1/10, replicationcontrollers: 1/10, resourcequotas: 1/1, services: 1/10",
                "limits.cpu: 2/200, limits.memory: 2Gi/8Gi",
                "5m"
            ])
        );
        let lr: LimitRange = obj(
            json!({"metadata": {"name": "mem-limit-range", "creationTimestamp": "2024-01-02T03:04:05Z"}}),
        );
        assert_eq!(LimitRange::columns(), DEFAULT_COLUMNS);
        assert_eq!(
            lr.row(now()),
            strs(&["mem-limit-range", "2024-01-02T03:04:05Z"])
        );
    }

    #[test]
    fn every_row_fills_every_column() {
        let n = now();
        assert_eq!(
            ReplicationController::default().row(n).len(),
            RC_COLUMNS.len()
        );
        assert_eq!(Service::default().row(n).len(), SERVICE_COLUMNS.len());
        assert_eq!(Endpoints::default().row(n).len(), ENDPOINTS_COLUMNS.len());
        assert_eq!(Node::default().row(n).len(), NODE_COLUMNS.len());
        assert_eq!(Namespace::default().row(n).len(), NAMESPACE_COLUMNS.len());
        assert_eq!(ConfigMap::default().row(n).len(), CONFIG_MAP_COLUMNS.len());
        assert_eq!(Secret::default().row(n).len(), SECRET_COLUMNS.len());
        assert_eq!(
            ServiceAccount::default().row(n).len(),
            SERVICE_ACCOUNT_COLUMNS.len()
        );
        assert_eq!(PersistentVolume::default().row(n).len(), PV_COLUMNS.len());
        assert_eq!(
            PersistentVolumeClaim::default().row(n).len(),
            PVC_COLUMNS.len()
        );
        assert_eq!(
            ResourceQuota::default().row(n).len(),
            RESOURCE_QUOTA_COLUMNS.len()
        );
        assert_eq!(LimitRange::default().row(n).len(), DEFAULT_COLUMNS.len());
    }
}
