//! PersistentVolumes and PersistentVolumeClaims: upstream's defaults, `ValidatePersistentVolume*`
//! and `ValidatePersistentVolumeClaim*`, and the strategies' status handling; storage.k8s.io
//! StorageClasses (`SetDefaults_StorageClass`, `ValidateStorageClass[Update]`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimStatus, PersistentVolumeSpec, PersistentVolumeStatus,
    TopologySelectorTerm,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::common::{immutable, jv, p, s};
use super::pod::{
    validate_csi_driver_name, validate_host_path, validate_node_selector, validate_quantity,
};
use super::qty;
use super::Strategy;
use crate::field::{FieldError, FieldErrorList, Path};
use crate::names;

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

/// `SetDefaults_PersistentVolumeClaim` + `_Spec` (also used for StatefulSet claim templates).
pub(crate) fn default_pvc(pvc: &mut PersistentVolumeClaim) {
    let spec = pvc.spec.get_or_insert_with(Default::default);
    if spec.volume_mode.is_none() {
        spec.volume_mode = Some("Filesystem".into());
    }
    if let Some(r) = spec.resources.as_mut() {
        for list in [r.limits.as_mut(), r.requests.as_mut()]
            .into_iter()
            .flatten()
        {
            qty::round_resource_list(list);
        }
    }
    let status = pvc.status.get_or_insert_with(Default::default);
    if s(&status.phase).is_empty() {
        status.phase = Some("Pending".into());
    }
}

fn validate_access_modes(modes: &[String], path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(path, m.as_str(), ACCESS_MODES));
        }
        if m == "ReadWriteOncePod" {
            rwop = true;
        } else if ACCESS_MODES.contains(&m.as_str()) {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

/// `ValidatePositiveQuantityValue` after a parse check.
fn positive_quantity(resource: &str, q: &Quantity, path: &Path) -> FieldErrorList {
    let (v, mut errs) = validate_quantity(resource, q, path);
    if let Some(v) = v {
        if v.sign() <= 0 {
            errs.push(FieldError::invalid(
                path,
                qty::display(&q.0),
                "must be greater than zero",
            ));
        }
    }
    errs
}

/// Upstream's `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn validate_pvc_spec(spec: &PersistentVolumeClaimSpec, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    if modes.is_empty() {
        errs.push(FieldError::required(
            &path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(sel) = spec.selector.as_ref() {
        errs.extend(names::validate_label_selector(
            Some(sel),
            &path.child("selector"),
        ));
    }
    errs.extend(validate_access_modes(modes, &path.child("accessModes")));
    let storage_path = path.child("resources").key("storage");
    match spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
    {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(q) => errs.extend(positive_quantity("storage", q, &storage_path)),
    }
    if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
        for m in names::name_is_dns_subdomain(sc, false) {
            errs.push(FieldError::invalid(&path.child("storageClassName"), sc, m));
        }
    }
    if let Some(vm) = spec.volume_mode.as_deref() {
        if !VOLUME_MODES.contains(&vm) {
            errs.push(FieldError::not_supported(
                &path.child("volumeMode"),
                vm,
                VOLUME_MODES,
            ));
        }
    }
    for (field, r) in [(
        "dataSource",
        spec.data_source
            .as_ref()
            .map(|d| (&d.name, &d.kind, &d.api_group)),
    )] {
        let Some((name, kind, group)) = r else {
            continue;
        };
        let dp = path.child(field);
        if name.is_empty() {
            errs.push(FieldError::required(&dp.child("name"), ""));
        }
        if kind.is_empty() {
            errs.push(FieldError::required(&dp.child("kind"), ""));
        }
        let group = s(group);
        if group.is_empty() && kind != "PersistentVolumeClaim" {
            errs.push(FieldError::invalid(
                &dp,
                kind.as_str(),
                "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
            ));
        }
        if !group.is_empty() {
            errs.extend(names::validate_dns1123_subdomain(
                group,
                &dp.child("apiGroup"),
            ));
        }
    }
    if let Some(vac) = spec
        .volume_attributes_class_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        for m in names::name_is_dns_subdomain(vac, false) {
            errs.push(FieldError::invalid(
                &path.child("volumeAttributesClassName"),
                vac,
                m,
            ));
        }
    }
    errs
}

/// A short rendering of two differing specs for the "immutable after creation" messages.
fn diff<T: serde::Serialize>(old: &T, new: &T) -> String {
    let (Value::Object(o), Value::Object(n)) = (jv(old), jv(new)) else {
        return String::new();
    };
    let mut out = String::new();
    let keys: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    for k in keys {
        if o.get(k) != n.get(k) {
            if let Some(v) = o.get(k) {
                out.push_str(&format!("- \t{k}: {v},\n"));
            }
            if let Some(v) = n.get(k) {
                out.push_str(&format!("+ \t{k}: {v},\n"));
            }
        }
    }
    out
}

impl Strategy for PersistentVolumeClaim {
    fn prepare_for_create(&mut self) {
        self.status = Some(PersistentVolumeClaimStatus {
            phase: Some("Pending".into()),
            ..Default::default()
        });
    }

    fn set_defaults(&mut self) {
        default_pvc(self);
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_pvc_spec(
            &self.spec.clone().unwrap_or_default(),
            &p("spec"),
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        let ns = self.spec.clone().unwrap_or_default();
        let os = old.spec.clone().unwrap_or_default();
        let mut new_clone = ns.clone();
        let mut old_clone = os.clone();
        // The volume name may be set once (binding).
        if s(&os.volume_name).is_empty() {
            old_clone.volume_name = new_clone.volume_name.clone();
        }
        // The storage class may be set once when it was unset.
        if old_clone.storage_class_name.is_none() && new_clone.storage_class_name.is_some() {
            let ann = old
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"));
            if ann.is_none_or(|a| Some(a) == new_clone.storage_class_name.as_ref()) {
                new_clone.storage_class_name = None;
            }
        }
        let bound = self.status.as_ref().map(|st| s(&st.phase)) == Some("Bound");
        if bound {
            let old_storage = os
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .cloned();
            if let Some(req) = new_clone
                .resources
                .as_mut()
                .and_then(|r| r.requests.as_mut())
            {
                match old_storage {
                    Some(q) => {
                        req.insert("storage".into(), q);
                    }
                    None => {
                        req.remove("storage");
                    }
                }
            }
            new_clone.volume_attributes_class_name = old_clone.volume_attributes_class_name.clone();
        }
        if new_clone != old_clone {
            errs.push(FieldError::forbidden(
                &p("spec"),
                format!(
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                    diff(&old_clone, &new_clone)
                ),
            ));
        }
        let storage = |spec: &PersistentVolumeClaimSpec| {
            spec.resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .and_then(|q| qty::parse(&q.0))
        };
        let status_size = old
            .status
            .as_ref()
            .and_then(|st| st.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .and_then(|q| qty::parse(&q.0));
        if let (Some(n), Some(o)) = (storage(&ns), storage(&os)) {
            // Recovering from a failed expansion may shrink the request, but not below capacity.
            if n.cmp_to(&o).is_lt() && status_size.is_none_or(|c| n.cmp_to(&c).is_le()) {
                errs.push(FieldError::forbidden(
                    &p("spec")
                        .child("resources")
                        .child("requests")
                        .child("storage"),
                    "field can not be less than status.capacity",
                ));
            }
        }
        // Upstream reports this one without the `spec.` prefix.
        errs.extend(immutable(
            &ns.volume_mode,
            &os.volume_mode,
            &p("volumeMode"),
        ));
        errs
    }

    fn validate_status_update(&self, _old: &Self) -> FieldErrorList {
        let mut errs = Vec::new();
        if self
            .spec
            .as_ref()
            .and_then(|sp| sp.access_modes.as_ref())
            .is_none_or(|m| m.is_empty())
        {
            errs.push(FieldError::required(&p("Spec").child("accessModes"), ""));
        }
        let cap = p("status").child("capacity");
        for (r, q) in self
            .status
            .as_ref()
            .and_then(|st| st.capacity.as_ref())
            .into_iter()
            .flatten()
        {
            if qty::parse(&q.0).is_some_and(|v| v.sign() < 0) {
                errs.push(FieldError::invalid(
                    &cap.key(r),
                    qty::display(&q.0),
                    "must be a valid resource quantity",
                ));
            }
        }
        errs
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![("name", s(&self.metadata.name).to_string())]
    }

    fn has_generation() -> bool {
        false
    }
}

// ------------------------------------------------------------------------ PersistentVolume

/// Which volume source a PV spec uses, in upstream's order (for the one-source rule).
fn pv_sources(spec: &PersistentVolumeSpec) -> [(&'static str, bool); 20] {
    [
        ("hostPath", spec.host_path.is_some()),
        ("gcePersistentDisk", spec.gce_persistent_disk.is_some()),
        (
            "awsElasticBlockStore",
            spec.aws_elastic_block_store.is_some(),
        ),
        ("glusterfs", spec.glusterfs.is_some()),
        ("flocker", spec.flocker.is_some()),
        ("nfs", spec.nfs.is_some()),
        ("rbd", spec.rbd.is_some()),
        ("quobyte", spec.quobyte.is_some()),
        ("cephFS", spec.cephfs.is_some()),
        ("iscsi", spec.iscsi.is_some()),
        ("cinder", spec.cinder.is_some()),
        ("fc", spec.fc.is_some()),
        ("flexVolume", spec.flex_volume.is_some()),
        ("azureFile", spec.azure_file.is_some()),
        ("vsphereVolume", spec.vsphere_volume.is_some()),
        (
            "photonPersistentDisk",
            spec.photon_persistent_disk.is_some(),
        ),
        ("portworxVolume", spec.portworx_volume.is_some()),
        ("azureDisk", spec.azure_disk.is_some()),
        ("scaleIO", spec.scale_io.is_some()),
        ("local", spec.local.is_some()),
    ]
}

fn validate_pv_spec(spec: &PersistentVolumeSpec, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    if modes.is_empty() {
        errs.push(FieldError::required(&path.child("accessModes"), ""));
    }
    errs.extend(validate_access_modes(modes, &path.child("accessModes")));
    let empty = BTreeMap::new();
    let capacity = spec.capacity.as_ref().unwrap_or(&empty);
    if capacity.is_empty() {
        errs.push(FieldError::required(&path.child("capacity"), ""));
    }
    if !capacity.contains_key("storage") || capacity.len() > 1 {
        errs.push(FieldError::not_supported(
            &path.child("capacity"),
            jv(capacity),
            &["storage"],
        ));
    }
    for (r, q) in capacity {
        errs.extend(positive_quantity(r, q, &path.child("capacity").key(r)));
    }
    if let Some(rp) = spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        const POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
        if !POLICIES.contains(&rp) {
            errs.push(FieldError::not_supported(
                &path.child("persistentVolumeReclaimPolicy"),
                rp,
                POLICIES,
            ));
        }
    }
    let mut node_affinity = false;
    if let Some(na) = spec.node_affinity.as_ref() {
        node_affinity = true;
        match na.required.as_ref() {
            Some(req) => errs.extend(validate_node_selector(
                req,
                &path.child("nodeAffinity").child("required"),
            )),
            None => errs.push(FieldError::required(
                &path.child("nodeAffinity").child("required"),
                "must specify required node constraints",
            )),
        }
    }
    let mut first: Option<&str> = None;
    let mut sources: Vec<(&str, bool)> = pv_sources(spec).to_vec();
    sources.push(("storageos", spec.storageos.is_some()));
    sources.push(("csi", spec.csi.is_some()));
    for (name, present) in sources {
        if !present {
            continue;
        }
        // Upstream never forbids a second source when it is flexVolume.
        if first.is_some() && name != "flexVolume" {
            errs.push(FieldError::forbidden(
                &path.child(name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        if first.is_none() {
            first = Some(name);
        }
        match name {
            "hostPath" => {
                if let Some(h) = spec.host_path.as_ref() {
                    errs.extend(validate_host_path(h, &path.child("hostPath")));
                }
            }
            "nfs" => {
                if let Some(n) = spec.nfs.as_ref() {
                    let np = path.child("nfs");
                    if n.server.is_empty() {
                        errs.push(FieldError::required(&np.child("server"), ""));
                    }
                    if n.path.is_empty() {
                        errs.push(FieldError::required(&np.child("path"), ""));
                    }
                    if !n.path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            &np.child("path"),
                            n.path.as_str(),
                            "must be an absolute path",
                        ));
                    }
                }
            }
            "local" => {
                if let Some(l) = spec.local.as_ref() {
                    if l.path.is_empty() {
                        errs.push(FieldError::required(&path.child("local").child("path"), ""));
                    } else if l.path.split('/').any(|c| c == "..") {
                        errs.push(FieldError::invalid(
                            &path.child("local").child("path"),
                            l.path.as_str(),
                            "must not contain '..'",
                        ));
                    }
                    if !node_affinity {
                        errs.push(FieldError::required(
                            &path.child("nodeAffinity"),
                            "Local volume requires node affinity",
                        ));
                    }
                }
            }
            "csi" => {
                if let Some(c) = spec.csi.as_ref() {
                    let cp = path.child("csi");
                    errs.extend(validate_csi_driver_name(&c.driver, &cp.child("driver")));
                    if c.volume_handle.is_empty() {
                        errs.push(FieldError::required(&cp.child("volumeHandle"), ""));
                    }
                }
            }
            _ => {}
        }
    }
    if first.is_none() {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    if let Some(h) = spec.host_path.as_ref() {
        if h.path.trim_end_matches('/').is_empty()
            && !h.path.is_empty()
            && s(&spec.persistent_volume_reclaim_policy) == "Recycle"
        {
            errs.push(FieldError::forbidden(
                &path.child("persistentVolumeReclaimPolicy"),
                "may not be 'recycle' for a hostPath mount of '/'",
            ));
        }
    }
    if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
        for m in names::name_is_dns_subdomain(sc, false) {
            errs.push(FieldError::invalid(&path.child("storageClassName"), sc, m));
        }
    }
    if let Some(vm) = spec.volume_mode.as_deref() {
        if !VOLUME_MODES.contains(&vm) {
            errs.push(FieldError::not_supported(
                &path.child("volumeMode"),
                vm,
                VOLUME_MODES,
            ));
        }
    }
    if let Some(vac) = spec.volume_attributes_class_name.as_deref() {
        if vac.is_empty() {
            errs.push(FieldError::required(
                &path.child("volumeAttributesClassName"),
                "an empty string is disallowed",
            ));
        } else {
            for m in names::name_is_dns_subdomain(vac, false) {
                errs.push(FieldError::invalid(
                    &path.child("volumeAttributesClassName"),
                    vac,
                    m,
                ));
            }
        }
        if spec.csi.is_none() {
            errs.push(FieldError::required(
                &path.child("csi"),
                "has to be specified when using volumeAttributesClassName",
            ));
        }
    }
    errs
}

/// The volume-source part of a PV spec (everything but the common fields), for the
/// immutability check.
fn pv_source(spec: &PersistentVolumeSpec) -> PersistentVolumeSpec {
    let mut src = spec.clone();
    src.access_modes = None;
    src.capacity = None;
    src.claim_ref = None;
    src.mount_options = None;
    src.node_affinity = None;
    src.persistent_volume_reclaim_policy = None;
    src.storage_class_name = None;
    src.volume_attributes_class_name = None;
    src.volume_mode = None;
    src
}

/// The current time, whole seconds, as the API stores timestamps.
fn now() -> Option<Time> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    k8s_openapi::jiff::Timestamp::from_second(i64::try_from(secs).ok()?)
        .ok()
        .map(Time)
}

impl Strategy for PersistentVolume {
    fn prepare_for_create(&mut self) {
        self.status = Some(PersistentVolumeStatus {
            phase: Some("Pending".into()),
            last_phase_transition_time: now(),
            ..Default::default()
        });
    }

    fn set_defaults(&mut self) {
        let status = self.status.get_or_insert_with(Default::default);
        if s(&status.phase).is_empty() {
            status.phase = Some("Pending".into());
        }
        let spec = self.spec.get_or_insert_with(Default::default);
        if let Some(c) = spec.capacity.as_mut() {
            qty::round_resource_list(c);
        }
        if s(&spec.persistent_volume_reclaim_policy).is_empty() {
            spec.persistent_volume_reclaim_policy = Some("Retain".into());
        }
        if spec.volume_mode.is_none() {
            spec.volume_mode = Some("Filesystem".into());
        }
        if let Some(h) = spec.host_path.as_mut() {
            h.type_.get_or_insert_with(String::new);
        }
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            false,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_pv_spec(
            &self.spec.clone().unwrap_or_default(),
            &p("spec"),
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        let ns = self.spec.clone().unwrap_or_default();
        let os = old.spec.clone().unwrap_or_default();
        let mut new_src = pv_source(&ns);
        let old_src = pv_source(&os);
        // A CSI volume may gain a controllerExpandSecretRef.
        if let (Some(n), Some(o)) = (new_src.csi.as_mut(), old_src.csi.as_ref()) {
            if o.controller_expand_secret_ref.is_none() {
                n.controller_expand_secret_ref = None;
            }
        }
        if new_src != old_src {
            errs.push(FieldError::forbidden(
                &p("spec").child("persistentvolumesource"),
                format!(
                    "spec.persistentvolumesource is immutable after creation\n{}",
                    diff(&old_src, &new_src)
                ),
            ));
        }
        errs.extend(immutable(
            &ns.volume_mode,
            &os.volume_mode,
            &p("volumeMode"),
        ));
        if os.node_affinity.is_some() && ns.node_affinity != os.node_affinity {
            errs.push(FieldError::invalid(
                &p("nodeAffinity"),
                jv(&ns.node_affinity),
                format!(
                    "{}, except for updating from beta label to GA",
                    names::FIELD_IMMUTABLE_ERROR_MSG
                ),
            ));
        }
        errs
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![("name", s(&self.metadata.name).to_string())]
    }

    fn has_generation() -> bool {
        false
    }
}

// ------------------------------------------------------------------------ StorageClass

/// Upstream's `maxProvisionerParameterLen` and `maxProvisionerParameterSize`.
const MAX_PROVISIONER_PARAMETERS: usize = 512;
const MAX_PROVISIONER_PARAMETER_SIZE: usize = 256 * 1024;
const RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];

/// Upstream's `validateAllowedTopologies` (`ValidateTopologySelectorTerm` per term).
fn validate_allowed_topologies(terms: &[TopologySelectorTerm], path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    let mut seen: Vec<BTreeMap<&str, Vec<&str>>> = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        let tp = path.index(i);
        let mut exprs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (j, req) in term.match_label_expressions.iter().flatten().enumerate() {
            let rp = tp.child("matchLabelExpressions").index(j);
            errs.extend(names::validate_label_name(&req.key, &rp.child("key")));
            if req.values.is_empty() {
                errs.push(FieldError::required(
                    &rp.child("values"),
                    "must specify as least one value",
                ));
            }
            let mut values: Vec<&str> = Vec::new();
            for (k, v) in req.values.iter().enumerate() {
                if values.contains(&v.as_str()) {
                    errs.push(FieldError::duplicate(
                        &rp.child("values").index(k),
                        v.as_str(),
                    ));
                }
                values.push(v);
            }
            if exprs.contains_key(req.key.as_str()) {
                errs.push(FieldError::duplicate(&rp.child("key"), req.key.as_str()));
            }
            values.sort_unstable();
            exprs.insert(&req.key, values);
        }
        if seen.contains(&exprs) {
            errs.push(FieldError::duplicate(
                &tp.child("matchLabelExpressions"),
                "",
            ));
        }
        seen.push(exprs);
    }
    errs
}

impl Strategy for StorageClass {
    /// `SetDefaults_StorageClass`.
    fn set_defaults(&mut self) {
        if self.reclaim_policy.is_none() {
            self.reclaim_policy = Some("Delete".into());
        }
        if self.volume_binding_mode.is_none() {
            self.volume_binding_mode = Some("Immediate".into());
        }
    }

    /// `ValidateStorageClass`.
    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            false,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        let prov = p("provisioner");
        if self.provisioner.is_empty() {
            errs.push(FieldError::required(&prov, ""));
        } else {
            for m in names::is_qualified_name(&self.provisioner.to_lowercase()) {
                errs.push(FieldError::invalid(&prov, self.provisioner.as_str(), m));
            }
        }
        let params = self.parameters.clone().unwrap_or_default();
        let pp = p("parameters");
        if params.len() > MAX_PROVISIONER_PARAMETERS {
            errs.push(FieldError::too_long(&pp, MAX_PROVISIONER_PARAMETERS));
        } else {
            let mut size = 0;
            for (k, v) in &params {
                if k.is_empty() {
                    errs.push(FieldError::invalid(
                        &pp,
                        k.as_str(),
                        "field can not be empty.",
                    ));
                }
                size += k.len() + v.len();
            }
            if size > MAX_PROVISIONER_PARAMETER_SIZE {
                errs.push(FieldError::too_long(&pp, MAX_PROVISIONER_PARAMETER_SIZE));
            }
        }
        if let Some(rp) = self.reclaim_policy.as_deref().filter(|r| !r.is_empty()) {
            if !RECLAIM_POLICIES.contains(&rp) {
                errs.push(FieldError::not_supported(
                    &p("reclaimPolicy"),
                    rp,
                    RECLAIM_POLICIES,
                ));
            }
        }
        match self.volume_binding_mode.as_deref() {
            None => errs.push(FieldError::required(&p("volumeBindingMode"), "")),
            Some(m) if !BINDING_MODES.contains(&m) => errs.push(FieldError::not_supported(
                &p("volumeBindingMode"),
                m,
                BINDING_MODES,
            )),
            Some(_) => {}
        }
        errs.extend(validate_allowed_topologies(
            self.allowed_topologies.as_deref().unwrap_or_default(),
            &p("allowedTopologies"),
        ));
        errs
    }

    /// `ValidateStorageClassUpdate`.
    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        if self.parameters.clone().unwrap_or_default() != old.parameters.clone().unwrap_or_default()
        {
            errs.push(FieldError::forbidden(
                &p("parameters"),
                "updates to parameters are forbidden.",
            ));
        }
        if self.provisioner != old.provisioner {
            errs.push(FieldError::forbidden(
                &p("provisioner"),
                "updates to provisioner are forbidden.",
            ));
        }
        if self.reclaim_policy != old.reclaim_policy {
            errs.push(FieldError::forbidden(
                &p("reclaimPolicy"),
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        errs.extend(immutable(
            &self.volume_binding_mode,
            &old.volume_binding_mode,
            &p("volumeBindingMode"),
        ));
        errs
    }

    fn has_generation() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn storage_class(v: serde_json::Value) -> StorageClass {
        let mut sc: StorageClass = serde_json::from_value(v).unwrap_or_default();
        sc.prepare_for_create();
        sc.set_defaults();
        sc
    }

    #[test]
    fn storage_class_defaults_validates_and_keeps_its_fields() {
        let sc = storage_class(json!({
            "metadata": {"name": "fast"}, "provisioner": "bosun.io/local-path",
            "parameters": {"a": "b"},
        }));
        assert_eq!(sc.reclaim_policy.as_deref(), Some("Delete"));
        assert_eq!(sc.volume_binding_mode.as_deref(), Some("Immediate"));
        assert!(sc.validate().is_empty(), "{:?}", messages(&sc.validate()));

        let bad = storage_class(json!({
            "metadata": {"name": "bad"}, "reclaimPolicy": "Recycle",
            "volumeBindingMode": "Later",
        }));
        assert_eq!(
            messages(&bad.validate()),
            vec![
                "provisioner: Required value",
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
                "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"",
            ]
        );
        let bad =
            storage_class(json!({"metadata": {"name": "bad"}, "provisioner": "not a name/x/y"}));
        assert_eq!(bad.validate().len(), 1);
        assert!(messages(&bad.validate())[0].starts_with("provisioner: Invalid value"));

        let mut changed = storage_class(json!({
            "metadata": {"name": "fast"}, "provisioner": "other.io/x",
            "parameters": {"a": "c"}, "reclaimPolicy": "Retain",
            "volumeBindingMode": "WaitForFirstConsumer",
        }));
        assert_eq!(
            messages(&changed.validate_update(&sc)),
            vec![
                "parameters: Forbidden: updates to parameters are forbidden.",
                "provisioner: Forbidden: updates to provisioner are forbidden.",
                "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
                "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable",
            ]
        );
        // Labels, annotations and allowVolumeExpansion may change.
        changed = sc.clone();
        changed.allow_volume_expansion = Some(true);
        changed.metadata.annotations = Some(
            [(
                "storageclass.kubernetes.io/is-default-class".to_string(),
                "true".to_string(),
            )]
            .into(),
        );
        assert!(changed.validate_update(&sc).is_empty());
    }

    fn messages(errs: &FieldErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn seed_nfs_pv_defaults_and_validates() {
        let mut pv: PersistentVolume = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv0003"},
            "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"], "nfs": {"path": "/somepath", "server": "172.17.0.2"}}
        }))
        .unwrap_or_default();
        pv.prepare_for_create();
        pv.set_defaults();
        let spec = pv.spec.clone().unwrap_or_default();
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
        assert_eq!(
            pv.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Pending")
        );
        assert!(pv.validate().is_empty(), "{:?}", messages(&pv.validate()));
        assert_eq!(pv.selectable_fields(), vec![("name", "pv0003".to_string())]);
    }

    #[test]
    fn pv_requires_capacity_modes_and_source() {
        let mut pv: PersistentVolume =
            serde_json::from_value(json!({"metadata": {"name": "pv"}, "spec": {}}))
                .unwrap_or_default();
        pv.set_defaults();
        assert_eq!(
            messages(&pv.validate()),
            vec![
                "spec.accessModes: Required value",
                "spec.capacity: Required value",
                "spec.capacity: Unsupported value: map[string]string{}: supported values: \"storage\"",
                "spec: Required value: must specify a volume type",
            ]
        );
    }

    #[test]
    fn pvc_requires_modes_and_storage() {
        let mut pvc: PersistentVolumeClaim = serde_json::from_value(
            json!({"metadata": {"name": "data", "namespace": "default"}, "spec": {}}),
        )
        .unwrap_or_default();
        pvc.set_defaults();
        assert_eq!(
            messages(&pvc.validate()),
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value"
            ]
        );
        let mut pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .unwrap_or_default();
        pvc.prepare_for_create();
        pvc.set_defaults();
        assert!(pvc.validate().is_empty(), "{:?}", messages(&pvc.validate()));
        assert_eq!(
            pvc.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Pending")
        );
        // Binding may set volumeName once; other spec changes are refused.
        let mut bound = pvc.clone();
        if let Some(sp) = bound.spec.as_mut() {
            sp.volume_name = Some("pv0003".into());
        }
        assert!(
            bound.validate_update(&pvc).is_empty(),
            "{:?}",
            messages(&bound.validate_update(&pvc))
        );
        let mut changed = pvc.clone();
        if let Some(sp) = changed.spec.as_mut() {
            sp.access_modes = Some(vec!["ReadWriteMany".into()]);
        }
        let errs = messages(&changed.validate_update(&pvc));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with(
            "spec: Forbidden: spec is immutable after creation except resources.requests"
        ));
    }
}
