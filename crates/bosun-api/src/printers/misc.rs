//! Tables for the remaining groups: coordination.k8s.io Lease, discovery.k8s.io
//! EndpointSlice, scheduling.k8s.io PriorityClass, policy PodDisruptionBudget and
//! storage.k8s.io StorageClass.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};

use super::descriptions as d;
use super::format::{int_or_string, list_with_more, translate_timestamp_since};
use super::{Column, Printer, AGE, NAME};

fn name(meta: &ObjectMeta) -> Value {
    json!(meta.name.as_deref().unwrap_or(""))
}

fn age(meta: &ObjectMeta, now: DateTime<Utc>) -> Value {
    json!(translate_timestamp_since(
        meta.creation_timestamp.as_ref(),
        now
    ))
}

static CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Controller",
        "string",
        "Controller of the object, with the form <kind>.<group>/<name>.",
    ),
    Column::new(
        "Revision",
        "integer",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

/// Upstream's printControllerRevision: the controller as `kind.group/name` (lower-case kind).
impl Printer for ControllerRevision {
    fn columns() -> &'static [Column] {
        CONTROLLER_REVISION_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let controller = self
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| {
                let group = o.api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
                let kind = o.kind.to_lowercase();
                if group.is_empty() {
                    format!("{kind}/{}", o.name)
                } else {
                    format!("{kind}.{group}/{}", o.name)
                }
            })
            .unwrap_or_else(|| "<none>".into());
        vec![
            name(&self.metadata),
            json!(controller),
            json!(self.revision),
            age(&self.metadata, now),
        ]
    }
}

static LEASE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Holder", "string", d::LEASE_SPEC_HOLDER_IDENTITY),
    AGE,
];

impl Printer for Lease {
    fn columns() -> &'static [Column] {
        LEASE_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let holder = self
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            .unwrap_or("");
        vec![
            name(&self.metadata),
            json!(holder),
            age(&self.metadata, now),
        ]
    }
}

static ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("AddressType", "string", d::ENDPOINT_SLICE_ADDRESS_TYPE),
    Column::new("Ports", "string", d::ENDPOINT_SLICE_PORTS),
    Column::new("Endpoints", "string", d::ENDPOINT_SLICE_ENDPOINTS),
    AGE,
];

/// At most this many ports or addresses are listed before " + N more...".
const MAX_LISTED: usize = 3;

/// `formatDiscoveryPorts`: port numbers, the name of an unnumbered port, or "*".
fn discovery_ports(slice: &EndpointSlice) -> String {
    let ports = slice.ports.as_deref().unwrap_or_default();
    let list: Vec<String> = ports
        .iter()
        .take(MAX_LISTED)
        .map(|p| match (p.port, p.name.as_deref()) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    list_with_more(&list, ports.len() > MAX_LISTED, ports.len(), MAX_LISTED)
}

/// `formatDiscoveryEndpoints`: the addresses of every endpoint, in order.
fn discovery_endpoints(slice: &EndpointSlice) -> String {
    let all: Vec<&String> = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.iter())
        .collect();
    let list: Vec<String> = all.iter().take(MAX_LISTED).map(|s| (*s).clone()).collect();
    list_with_more(&list, all.len() > MAX_LISTED, all.len(), MAX_LISTED)
}

impl Printer for EndpointSlice {
    fn columns() -> &'static [Column] {
        ENDPOINT_SLICE_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        vec![
            name(&self.metadata),
            json!(self.address_type),
            json!(discovery_ports(self)),
            json!(discovery_endpoints(self)),
            age(&self.metadata, now),
        ]
    }
}

static PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Value", "integer", d::PRIORITY_CLASS_VALUE),
    Column::new(
        "Global-Default",
        "boolean",
        d::PRIORITY_CLASS_GLOBAL_DEFAULT,
    ),
    AGE,
    Column::new(
        "PreemptionPolicy",
        "string",
        d::PRIORITY_CLASS_PREEMPTION_POLICY,
    ),
];

impl Printer for PriorityClass {
    fn columns() -> &'static [Column] {
        PRIORITY_CLASS_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        // scheduling/v1 defaults preemptionPolicy to PreemptLowerPriority.
        let policy = self
            .preemption_policy
            .as_deref()
            .unwrap_or("PreemptLowerPriority");
        vec![
            name(&self.metadata),
            json!(self.value),
            json!(self.global_default.unwrap_or(false)),
            age(&self.metadata, now),
            json!(policy),
        ]
    }
}

static PDB_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    Column::new(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    Column::new(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

impl Printer for PodDisruptionBudget {
    fn columns() -> &'static [Column] {
        PDB_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let spec = self.spec.as_ref();
        let or_na = |v: Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>| {
            v.map_or_else(|| "N/A".to_string(), int_or_string)
        };
        vec![
            name(&self.metadata),
            json!(or_na(spec.and_then(|s| s.min_available.as_ref()))),
            json!(or_na(spec.and_then(|s| s.max_unavailable.as_ref()))),
            json!(self.status.as_ref().map_or(0, |s| s.disruptions_allowed)),
            age(&self.metadata, now),
        ]
    }
}

static STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Provisioner",
        "string",
        "provisioner indicates the type of the provisioner.",
    ),
    Column::new(
        "ReclaimPolicy",
        "string",
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
    ),
    Column::new(
        "VolumeBindingMode",
        "string",
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.",
    ),
    Column::new(
        "AllowVolumeExpansion",
        "string",
        "allowVolumeExpansion shows whether the storage class allow volume expand.",
    ),
    AGE,
];

/// The annotations that make a StorageClass the default (upstream `IsDefaultAnnotation`).
pub(crate) fn is_default_class(meta: &ObjectMeta) -> bool {
    let ann = meta.annotations.as_ref();
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| ann.and_then(|a| a.get(*k)).map(String::as_str) == Some("true"))
}

/// Upstream's printStorageClass: ` (default)` after the default class's name; unset fields
/// print their v1 defaults.
impl Printer for StorageClass {
    fn columns() -> &'static [Column] {
        STORAGE_CLASS_COLUMNS
    }

    fn row(&self, now: DateTime<Utc>) -> Vec<Value> {
        let mut n = self.metadata.name.clone().unwrap_or_default();
        if is_default_class(&self.metadata) {
            n.push_str(" (default)");
        }
        vec![
            json!(n),
            json!(self.provisioner),
            json!(self.reclaim_policy.as_deref().unwrap_or("Delete")),
            json!(self.volume_binding_mode.as_deref().unwrap_or("Immediate")),
            json!(self.allow_volume_expansion.unwrap_or(false).to_string()),
            age(&self.metadata, now),
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

    fn strs(v: &[&str]) -> Vec<Value> {
        v.iter().map(|s| json!(s)).collect()
    }

    #[test]
    fn leases() {
        // Upstream's TestPrintLease.
        let l: Lease = obj(
            json!({"metadata": {"name": "lease2", "creationTimestamp": ago(Duration::minutes(5))},
            "spec": {"holderIdentity": "holder2"}}),
        );
        assert_eq!(l.row(now()), strs(&["lease2", "holder2", "5m"]));
        assert_eq!(Lease::default().row(now()), strs(&["", "", "<unknown>"]));
    }

    #[test]
    fn endpoint_slices() {
        // Upstream's TestPrintEndpointSlice.
        let s: EndpointSlice = obj(
            json!({"metadata": {"name": "abcslice.123", "creationTimestamp": ago(Duration::zero())},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.1.2.3", "2001:db8::1234:5678"]}]}),
        );
        assert_eq!(
            s.row(now()),
            strs(&[
                "abcslice.123",
                "IPv4",
                "80",
                "10.1.2.3,2001:db8::1234:5678",
                "0s"
            ])
        );
        let s: EndpointSlice = obj(
            json!({"metadata": {"name": "multiportslice.123", "creationTimestamp": ago(Duration::minutes(5))},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443},
                {"name": "extra1", "port": 3000}, {"name": "extra2", "port": 3001}],
            "endpoints": [{"addresses": ["10.1.2.3", "2001:db8::1234:5678"]}, {"addresses": ["10.2.3.4", "2001:db8::2345:6789"]}]}),
        );
        assert_eq!(
            s.row(now()),
            strs(&[
                "multiportslice.123",
                "IPv4",
                "80,443,3000 + 1 more...",
                "10.1.2.3,2001:db8::1234:5678,10.2.3.4 + 1 more...",
                "5m"
            ])
        );
        let empty: EndpointSlice = obj(
            json!({"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": [],
            "ports": [{"name": "dns"}, {}]}),
        );
        assert_eq!(empty.row(now())[2..4], strs(&["dns,*", "<unset>"]));
    }

    #[test]
    fn storage_classes() {
        let sc: StorageClass = obj(json!({
            "metadata": {"name": "local-path", "creationTimestamp": ago(Duration::minutes(5)),
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "bosun.io/local-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"}));
        assert_eq!(
            sc.row(now()),
            strs(&[
                "local-path (default)",
                "bosun.io/local-path",
                "Delete",
                "WaitForFirstConsumer",
                "false",
                "5m"
            ])
        );
        let plain: StorageClass = obj(json!({"metadata": {"name": "fast"},
            "provisioner": "x.io/y", "allowVolumeExpansion": true}));
        assert_eq!(
            plain.row(now())[..5],
            strs(&["fast", "x.io/y", "Delete", "Immediate", "true"])
        );
    }

    #[test]
    fn priority_classes() {
        // Upstream's TestPrintPriorityClass, wide cases.
        let pc: PriorityClass = obj(
            json!({"metadata": {"name": "pc2", "creationTimestamp": ago(Duration::minutes(5))},
            "value": 1000000000, "globalDefault": true, "preemptionPolicy": "PreemptLowerPriority"}),
        );
        assert_eq!(
            pc.row(now()),
            vec![
                json!("pc2"),
                json!(1000000000),
                json!(true),
                json!("5m"),
                json!("PreemptLowerPriority")
            ]
        );
        let never: PriorityClass =
            obj(json!({"metadata": {"name": "pc1"}, "value": 1, "preemptionPolicy": "Never"}));
        assert_eq!(
            never.row(now()),
            vec![
                json!("pc1"),
                json!(1),
                json!(false),
                json!("<unknown>"),
                json!("Never")
            ]
        );
    }

    #[test]
    fn pod_disruption_budgets() {
        // Upstream's TestPrintPodDisruptionBudget.
        let pdb: PodDisruptionBudget = obj(
            json!({"metadata": {"name": "pdb1", "namespace": "ns1", "creationTimestamp": ago(Duration::zero())},
            "spec": {"minAvailable": 22}, "status": {"disruptionsAllowed": 5, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}}),
        );
        assert_eq!(
            pdb.row(now()),
            vec![
                json!("pdb1"),
                json!("22"),
                json!("N/A"),
                json!(5),
                json!("0s")
            ]
        );
        let pdb: PodDisruptionBudget =
            obj(json!({"metadata": {"name": "pdb2"}, "spec": {"maxUnavailable": "10%"}}));
        assert_eq!(
            pdb.row(now()),
            vec![
                json!("pdb2"),
                json!("N/A"),
                json!("10%"),
                json!(0),
                json!("<unknown>")
            ]
        );
    }
}
