//! Pods and the pod spec every workload embeds: upstream's `SetDefaults_PodSpec`/`_Pod`/
//! `_Container`, `ValidatePodSpec` and friends, the pod QoS class, and the Pod strategy.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, Lifecycle, LifecycleHandler, ObjectFieldSelector, Pod,
    PodCondition, PodSecurityContext, PodSpec, PodStatus, PodTemplateSpec, Probe,
    ResourceFieldSelector, ResourceRequirements, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::common::{jv, p, s};
use super::qty::{self, Qty};
use super::Strategy;
use crate::field::{FieldError, FieldErrorList, Path};
use crate::names::{self, validate_dns1123_label, validate_nonnegative};

// ---------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------

/// `kubectl`'s and the kubelet's default termination grace period.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// Upstream's `v1.DefaultSchedulerName`.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// Upstream's `TerminationMessagePathDefault`.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// Upstream's default mode of secret, configMap, downwardAPI and projected volumes (0644).
pub const DEFAULT_VOLUME_MODE: i32 = 0o644;

/// The tag of an image reference as upstream's `parsers.ParseImageName` sees it: `latest`
/// when neither tag nor digest is given, `None` when the reference does not parse.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if digest.is_some_and(|d| !d.contains(':')) {
        return None;
    }
    let (repo, tag) = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    };
    // The first component is a registry host only when it looks like one; the rest of the
    // repository path must be lower case.
    let path = match repo.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => repo,
    };
    let path_ok = !path.is_empty()
        && path.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    if !path_ok {
        return None;
    }
    match (tag, digest) {
        (Some(""), _) => None,
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => Some(String::new()),
        (None, None) => Some("latest".to_string()),
    }
}

/// Upstream's imagePullPolicy default: `Always` for `:latest` (or no tag), else `IfNotPresent`.
pub fn default_image_pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

fn default_http_get(h: &mut k8s_openapi::api::core::v1::HTTPGetAction) {
    if s(&h.path).is_empty() {
        h.path = Some("/".into());
    }
    if s(&h.scheme).is_empty() {
        h.scheme = Some("HTTP".into());
    }
}

fn default_probe(pr: &mut Probe) {
    for (field, default) in [
        (&mut pr.timeout_seconds, 1),
        (&mut pr.period_seconds, 10),
        (&mut pr.success_threshold, 1),
        (&mut pr.failure_threshold, 3),
    ] {
        if field.unwrap_or(0) == 0 {
            *field = Some(default);
        }
    }
    if let Some(h) = pr.http_get.as_mut() {
        default_http_get(h);
    }
}

fn default_lifecycle_handler(h: &mut LifecycleHandler) {
    if let Some(g) = h.http_get.as_mut() {
        default_http_get(g);
    }
}

fn default_field_selector(f: &mut ObjectFieldSelector) {
    if s(&f.api_version).is_empty() {
        f.api_version = Some("v1".into());
    }
}

/// `SetDefaults_Container` plus the generated per-field defaults (port protocol, probes,
/// lifecycle HTTP handlers, downward API field selectors).
pub(crate) fn default_container(c: &mut Container) {
    if s(&c.image_pull_policy).is_empty() {
        c.image_pull_policy = Some(default_image_pull_policy(s(&c.image)).into());
    }
    if s(&c.termination_message_path).is_empty() {
        c.termination_message_path = Some(DEFAULT_TERMINATION_MESSAGE_PATH.into());
    }
    if s(&c.termination_message_policy).is_empty() {
        c.termination_message_policy = Some("File".into());
    }
    // Go's ResourceRequirements is a value, so upstream always shows `resources: {}`.
    let res = c
        .resources
        .get_or_insert_with(ResourceRequirements::default);
    for list in [res.limits.as_mut(), res.requests.as_mut()]
        .into_iter()
        .flatten()
    {
        qty::round_resource_list(list);
    }
    for port in c.ports.iter_mut().flatten() {
        if s(&port.protocol).is_empty() {
            port.protocol = Some("TCP".into());
        }
    }
    for env in c.env.iter_mut().flatten() {
        if let Some(f) = env.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            default_field_selector(f);
        }
    }
    for pr in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        default_probe(pr);
    }
    if let Some(l) = c.lifecycle.as_mut() {
        for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
            default_lifecycle_handler(h);
        }
    }
}

/// `SetDefaults_Volume` and the defaults of the volume sources people write.
fn default_volume(v: &mut Volume) {
    let has_source = v.aws_elastic_block_store.is_some()
        || v.azure_disk.is_some()
        || v.azure_file.is_some()
        || v.cephfs.is_some()
        || v.cinder.is_some()
        || v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.fc.is_some()
        || v.flex_volume.is_some()
        || v.flocker.is_some()
        || v.gce_persistent_disk.is_some()
        || v.git_repo.is_some()
        || v.glusterfs.is_some()
        || v.host_path.is_some()
        || v.image.is_some()
        || v.iscsi.is_some()
        || v.nfs.is_some()
        || v.persistent_volume_claim.is_some()
        || v.photon_persistent_disk.is_some()
        || v.portworx_volume.is_some()
        || v.projected.is_some()
        || v.quobyte.is_some()
        || v.rbd.is_some()
        || v.scale_io.is_some()
        || v.secret.is_some()
        || v.storageos.is_some()
        || v.vsphere_volume.is_some();
    if !has_source {
        v.empty_dir = Some(Default::default());
    }
    if let Some(h) = v.host_path.as_mut() {
        if h.type_.is_none() {
            h.type_ = Some(String::new());
        }
    }
    if let Some(sec) = v.secret.as_mut() {
        sec.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(cm) = v.config_map.as_mut() {
        cm.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(d) = v.downward_api.as_mut() {
        d.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        for item in d.items.iter_mut().flatten() {
            if let Some(f) = item.field_ref.as_mut() {
                default_field_selector(f);
            }
        }
    }
    if let Some(pj) = v.projected.as_mut() {
        pj.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        for src in pj.sources.iter_mut().flatten() {
            if let Some(d) = src.downward_api.as_mut() {
                for item in d.items.iter_mut().flatten() {
                    if let Some(f) = item.field_ref.as_mut() {
                        default_field_selector(f);
                    }
                }
            }
            if let Some(t) = src.service_account_token.as_mut() {
                t.expiration_seconds.get_or_insert(3600);
            }
        }
    }
    if let Some(i) = v.image.as_mut() {
        if s(&i.pull_policy).is_empty() {
            i.pull_policy = Some(default_image_pull_policy(s(&i.reference)).into());
        }
    }
    if let Some(tpl) = v
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut())
    {
        if tpl.spec.volume_mode.is_none() {
            tpl.spec.volume_mode = Some("Filesystem".into());
        }
    }
}

/// `SetDefaults_PodSpec` and the per-container and per-volume defaults: what every pod
/// template (RC, ReplicaSet, Deployment, DaemonSet, StatefulSet, Job, CronJob) gets.
pub fn default_pod_spec(spec: &mut PodSpec) {
    if s(&spec.dns_policy).is_empty() {
        spec.dns_policy = Some("ClusterFirst".into());
    }
    if s(&spec.restart_policy).is_empty() {
        spec.restart_policy = Some("Always".into());
    }
    if spec.security_context.is_none() {
        spec.security_context = Some(PodSecurityContext::default());
    }
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    }
    if s(&spec.scheduler_name).is_empty() {
        spec.scheduler_name = Some(DEFAULT_SCHEDULER_NAME.into());
    }
    if let Some(o) = spec.overhead.as_mut() {
        qty::round_resource_list(o);
    }
    // The v1 conversion keeps the deprecated `serviceAccount` in step with `serviceAccountName`.
    if s(&spec.service_account_name).is_empty() && !s(&spec.service_account).is_empty() {
        spec.service_account_name = spec.service_account.clone();
    }
    if !s(&spec.service_account_name).is_empty() {
        spec.service_account = spec.service_account_name.clone();
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
    for c in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        default_container(c);
    }
    for ec in spec.ephemeral_containers.iter_mut().flatten() {
        if s(&ec.image_pull_policy).is_empty() {
            ec.image_pull_policy = Some(default_image_pull_policy(s(&ec.image)).into());
        }
        if s(&ec.termination_message_path).is_empty() {
            ec.termination_message_path = Some(DEFAULT_TERMINATION_MESSAGE_PATH.into());
        }
        if s(&ec.termination_message_policy).is_empty() {
            ec.termination_message_policy = Some("File".into());
        }
    }
}

/// Defaults of a pod template: the template's spec as `default_pod_spec`.
pub fn default_pod_template(t: &mut PodTemplateSpec) {
    default_pod_spec(t.spec.get_or_insert_with(Default::default));
}

/// Requests default to limits where only limits are set (`SetDefaults_Pod`; pods only).
fn default_requests_from_limits(c: &mut Container) {
    let Some(res) = c.resources.as_mut() else {
        return;
    };
    let Some(limits) = res.limits.as_ref() else {
        return;
    };
    let requests = res.requests.get_or_insert_with(BTreeMap::new);
    for (k, v) in limits {
        requests.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// `SetDefaults_Pod` on top of `default_pod_spec`: what only a real pod gets.
pub fn default_pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    default_pod_spec(spec);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_requests_from_limits(c);
    }
    if spec.enable_service_links.is_none() {
        spec.enable_service_links = Some(true);
    }
    if spec.host_network == Some(true) {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            for port in c.ports.iter_mut().flatten() {
                if port.host_port.unwrap_or(0) == 0 {
                    port.host_port = Some(port.container_port);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// QoS
// ---------------------------------------------------------------------------------------

/// Upstream's `GetPodQOS` (`Guaranteed`, `Burstable` or `BestEffort`), on the spec as the
/// API server stores it: a request missing where a limit is set counts as equal to the
/// limit, as defaulting makes it.
pub fn pod_qos_class(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<&str, Qty> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Qty> = BTreeMap::new();
    let mut guaranteed = true;
    let positive = |q: &Quantity| qty::parse(&q.0).filter(|v| v.sign() > 0);
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let res = c.resources.as_ref();
        let lim = res.and_then(|r| r.limits.as_ref());
        let req = res.and_then(|r| r.requests.as_ref());
        for name in ["cpu", "memory"] {
            let r = req
                .and_then(|m| m.get(name))
                .or_else(|| lim.and_then(|m| m.get(name)));
            if let Some(v) = r.and_then(positive) {
                let e = requests.entry(name).or_insert(Qty::zero());
                *e = e.add(&v);
            }
        }
        let mut found = 0;
        for name in ["cpu", "memory"] {
            if let Some(v) = lim.and_then(|m| m.get(name)).and_then(positive) {
                found += 1;
                let e = limits.entry(name).or_insert(Qty::zero());
                *e = e.add(&v);
            }
        }
        if found != 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        for (name, req) in &requests {
            if limits.get(name).is_none_or(|l| l != req) {
                guaranteed = false;
                break;
            }
        }
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// Upstream's `PodValidationOptions`, reduced to what changes the result here.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PodOpts {
    /// The spec is a real pod's, not a template's.
    pub resource_is_pod: bool,
}

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

fn not_supported(path: &Path, value: impl Into<Value>, valid: &[&str]) -> FieldError {
    FieldError::not_supported(path, value, valid)
}

fn path_no_backsteps(target: &str, path: &Path) -> FieldErrorList {
    if target.split(['/', '\\']).any(|c| c == "..") {
        vec![FieldError::invalid(path, target, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

fn local_descending_path(target: &str, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(path_no_backsteps(target, path));
    errs
}

fn local_non_reserved_path(target: &str, path: &Path) -> FieldErrorList {
    let mut errs = local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
    errs
}

fn file_mode(mode: Option<i32>, path: &Path) -> FieldErrorList {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(path, m, FILE_MODE_ERROR)],
        _ => Vec::new(),
    }
}

fn key_to_path(kp: &k8s_openapi::api::core::v1::KeyToPath, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if kp.key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    }
    if kp.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(&kp.path, &path.child("path")));
    errs.extend(file_mode(kp.mode, &path.child("mode")));
    errs
}

const VOLUME_DOWNWARD_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];
const ENV_DOWNWARD_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn object_field_selector(
    fs: &ObjectFieldSelector,
    expressions: &[&str],
    path: &Path,
) -> FieldErrorList {
    if s(&fs.api_version).is_empty() {
        return vec![FieldError::required(&path.child("apiVersion"), "")];
    }
    if fs.field_path.is_empty() {
        return vec![FieldError::required(&path.child("fieldPath"), "")];
    }
    // `metadata.labels['key']` style subscripts.
    if let Some((base, rest)) = fs.field_path.split_once("['") {
        let Some(key) = rest.strip_suffix("']") else {
            return vec![FieldError::not_supported(
                &path.child("fieldPath"),
                fs.field_path.as_str(),
                expressions,
            )];
        };
        return match base {
            "metadata.annotations" => names::validate_qualified_name(&key.to_lowercase(), path),
            "metadata.labels" => names::validate_qualified_name(key, path),
            _ => vec![FieldError::invalid(
                path,
                base,
                "does not support subscript",
            )],
        };
    }
    if !expressions.contains(&fs.field_path.as_str()) {
        return vec![FieldError::not_supported(
            &path.child("fieldPath"),
            fs.field_path.as_str(),
            expressions,
        )];
    }
    Vec::new()
}

fn resource_field_selector(
    fs: &ResourceFieldSelector,
    path: &Path,
    volume: bool,
) -> FieldErrorList {
    let mut errs = Vec::new();
    if volume && s(&fs.container_name).is_empty() {
        errs.push(FieldError::required(&path.child("containerName"), ""));
    } else if fs.resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else if !RESOURCE_FIELD_PATHS.contains(&fs.resource.as_str())
        && !fs.resource.starts_with("requests.hugepages-")
        && !fs.resource.starts_with("limits.hugepages-")
    {
        errs.push(FieldError::not_supported(
            &path.child("resource"),
            fs.resource.as_str(),
            RESOURCE_FIELD_PATHS,
        ));
    }
    if let Some(d) = fs.divisor.as_ref() {
        let is_zero = qty::parse(&d.0).is_some_and(|q| q.is_zero());
        if !is_zero {
            let shown = qty::display(&d.0);
            let r = fs.resource.as_str();
            let (ok, msg) = match r {
                "limits.cpu" | "requests.cpu" => (
                    ["1m", "1"].contains(&shown.as_str()),
                    "only divisor's values 1m and 1 are supported with the cpu resource",
                ),
                "limits.memory" | "requests.memory" => (
                    MEMORY_DIVISORS.contains(&shown.as_str()),
                    "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource",
                ),
                "limits.ephemeral-storage" | "requests.ephemeral-storage" => (
                    MEMORY_DIVISORS.contains(&shown.as_str()),
                    "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource",
                ),
                _ => (true, ""),
            };
            if !ok {
                errs.push(FieldError::invalid(&path.child("divisor"), r, msg));
            }
        }
    }
    errs
}

const MEMORY_DIVISORS: &[&str] = &[
    "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
];

/// Upstream's `ValidateVolumes`; returns the names of the valid volumes and whether each is
/// claim-backed (for `volumeDevices`).
fn validate_volumes(
    volumes: &[Volume],
    pod_meta: Option<&ObjectMeta>,
    path: &Path,
) -> (BTreeMap<String, bool>, FieldErrorList) {
    let mut errs = Vec::new();
    let mut seen = BTreeMap::new();
    let pod_name = pod_meta.map(|m| s(&m.name)).unwrap_or("");
    let created_pvcs: BTreeSet<String> = if pod_name.is_empty() {
        BTreeSet::new()
    } else {
        volumes
            .iter()
            .filter(|v| v.ephemeral.is_some())
            .map(|v| format!("{pod_name}-{}", v.name))
            .collect()
    };
    for (i, v) in volumes.iter().enumerate() {
        let idx = path.index(i);
        let name_path = idx.child("name");
        let mut el = validate_volume_source(v, &idx, pod_name);
        if v.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(validate_dns1123_label(&v.name, &name_path));
        }
        if seen.contains_key(&v.name) {
            el.push(FieldError::duplicate(&name_path, v.name.as_str()));
        }
        if el.is_empty() {
            seen.insert(
                v.name.clone(),
                v.persistent_volume_claim.is_some() || v.ephemeral.is_some(),
            );
        } else {
            errs.extend(el);
        }
        if let Some(pvc) = v.persistent_volume_claim.as_ref() {
            if created_pvcs.contains(&pvc.claim_name) {
                errs.push(FieldError::invalid(
                    &idx.child("persistentVolumeClaim").child("claimName"),
                    pvc.claim_name.as_str(),
                    "must not reference a PVC that gets created for an ephemeral volume",
                ));
            }
        }
    }
    (seen, errs)
}

fn validate_volume_source(v: &Volume, path: &Path, pod_name: &str) -> FieldErrorList {
    let mut errs = Vec::new();
    // Upstream's order; the first source present is validated, later ones are forbidden.
    let present: [(&str, bool); 30] = [
        ("emptyDir", v.empty_dir.is_some()),
        ("hostPath", v.host_path.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("secret", v.secret.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("rbd", v.rbd.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephFS", v.cephfs.is_some()),
        ("quobyte", v.quobyte.is_some()),
        // Upstream's spelling.
        ("downwarAPI", v.downward_api.is_some()),
        ("fc", v.fc.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("configMap", v.config_map.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("storageos", v.storageos.is_some()),
        ("projected", v.projected.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("csi", v.csi.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
    ];
    let mut first: Option<&str> = None;
    for (name, is) in present {
        if !is {
            continue;
        }
        if first.is_some() {
            errs.push(FieldError::forbidden(
                &path.child(name),
                "may not specify more than 1 volume type",
            ));
        } else {
            first = Some(name);
        }
    }
    match first {
        None => errs.push(FieldError::required(path, "must specify a volume type")),
        Some("emptyDir") => {
            if let Some(limit) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) {
                if qty::parse(&limit.0).is_some_and(|q| q.sign() < 0) {
                    errs.push(FieldError::forbidden(
                        &path.child("emptyDir").child("sizeLimit"),
                        "SizeLimit field must be a valid resource quantity",
                    ));
                }
            }
        }
        Some("hostPath") => {
            if let Some(h) = v.host_path.as_ref() {
                errs.extend(validate_host_path(h, &path.child("hostPath")));
            }
        }
        Some("secret") => {
            if let Some(sec) = v.secret.as_ref() {
                let sp = path.child("secret");
                if s(&sec.secret_name).is_empty() {
                    errs.push(FieldError::required(&sp.child("secretName"), ""));
                }
                errs.extend(file_mode(sec.default_mode, &sp.child("defaultMode")));
                for (i, kp) in sec.items.iter().flatten().enumerate() {
                    errs.extend(key_to_path(kp, &sp.child("items").index(i)));
                }
            }
        }
        Some("configMap") => {
            if let Some(cm) = v.config_map.as_ref() {
                let cp = path.child("configMap");
                if cm.name.is_empty() {
                    errs.push(FieldError::required(&cp.child("name"), ""));
                }
                errs.extend(file_mode(cm.default_mode, &cp.child("defaultMode")));
                for (i, kp) in cm.items.iter().flatten().enumerate() {
                    errs.extend(key_to_path(kp, &cp.child("items").index(i)));
                }
            }
        }
        Some("persistentVolumeClaim") => {
            if v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name.is_empty())
            {
                errs.push(FieldError::required(
                    &path.child("persistentVolumeClaim").child("claimName"),
                    "",
                ));
            }
        }
        Some("nfs") => {
            if let Some(n) = v.nfs.as_ref() {
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
        Some("downwarAPI") => {
            if let Some(d) = v.downward_api.as_ref() {
                let dp = path.child("downwardAPI");
                errs.extend(file_mode(d.default_mode, &dp.child("defaultMode")));
                for item in d.items.iter().flatten() {
                    errs.extend(downward_api_file(item, &dp));
                }
            }
        }
        Some("projected") => {
            if let Some(pj) = v.projected.as_ref() {
                errs.extend(validate_projected(pj, &path.child("projected")));
            }
        }
        Some("csi") => {
            if let Some(c) = v.csi.as_ref() {
                errs.extend(validate_csi_driver_name(
                    &c.driver,
                    &path.child("csi").child("driver"),
                ));
            }
        }
        Some("ephemeral") => {
            let ep = path.child("ephemeral");
            match v
                .ephemeral
                .as_ref()
                .and_then(|e| e.volume_claim_template.as_ref())
            {
                None => errs.push(FieldError::required(&ep.child("volumeClaimTemplate"), "")),
                Some(t) => {
                    let tp = ep.child("volumeClaimTemplate");
                    errs.extend(names::validate_template_labels_annotations(
                        t.metadata.as_ref(),
                        &tp.child("metadata"),
                    ));
                    errs.extend(super::storage::validate_pvc_spec(
                        &t.spec,
                        &tp.child("spec"),
                    ));
                    if !pod_name.is_empty() && !v.name.is_empty() {
                        let pvc_name = format!("{pod_name}-{}", v.name);
                        for msg in names::name_is_dns_subdomain(&pvc_name, false) {
                            errs.push(FieldError::invalid(
                                &path.child("name"),
                                v.name.as_str(),
                                format!("PVC name {pvc_name:?}: {msg}"),
                            ));
                        }
                    }
                }
            }
        }
        Some("image") => {
            if let Some(i) = v.image.as_ref() {
                let ip = path.child("image");
                errs.extend(validate_pull_policy(
                    s(&i.pull_policy),
                    &ip.child("pullPolicy"),
                ));
            }
        }
        Some(_) => {}
    }
    errs
}

pub(crate) fn validate_host_path(
    h: &k8s_openapi::api::core::v1::HostPathVolumeSource,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    if h.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
        return errs;
    }
    errs.extend(path_no_backsteps(&h.path, &path.child("path")));
    const TYPES: &[&str] = &[
        "",
        "BlockDevice",
        "CharDevice",
        "Directory",
        "DirectoryOrCreate",
        "File",
        "FileOrCreate",
        "Socket",
    ];
    if let Some(t) = h.type_.as_deref() {
        if !TYPES.contains(&t) {
            errs.push(not_supported(&path.child("type"), t, TYPES));
        }
    }
    errs
}

pub(crate) fn validate_csi_driver_name(driver: &str, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if driver.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    if driver.len() > 63 {
        errs.push(FieldError::too_long(path, 63));
    }
    for msg in names::is_dns1123_subdomain(&driver.to_lowercase()) {
        errs.push(FieldError::invalid(path, driver, msg));
    }
    errs
}

fn downward_api_file(
    file: &k8s_openapi::api::core::v1::DownwardAPIVolumeFile,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    if file.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(&file.path, &path.child("path")));
    match (file.field_ref.as_ref(), file.resource_field_ref.as_ref()) {
        (Some(f), r) => {
            errs.extend(object_field_selector(
                f,
                VOLUME_DOWNWARD_FIELD_PATHS,
                &path.child("fieldRef"),
            ));
            if r.is_some() {
                errs.push(FieldError::invalid(
                    path,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                ));
            }
        }
        (None, Some(r)) => errs.extend(resource_field_selector(
            r,
            &path.child("resourceFieldRef"),
            true,
        )),
        (None, None) => errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        )),
    }
    errs.extend(file_mode(file.mode, &path.child("mode")));
    errs
}

fn validate_projected(
    pj: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    path: &Path,
) -> FieldErrorList {
    let mut errs = file_mode(pj.default_mode, &path.child("defaultMode"));
    let mut all_paths = BTreeSet::new();
    for (i, src) in pj.sources.iter().flatten().enumerate() {
        let sp = path.child("sources").index(i);
        let mut n = 0;
        if let Some(sec) = src.secret.as_ref() {
            n += 1;
            let pp = sp.child("secret");
            if sec.name.is_empty() {
                errs.push(FieldError::required(&pp.child("name"), ""));
            }
            for (j, kp) in sec.items.iter().flatten().enumerate() {
                errs.extend(key_to_path(kp, &pp.child("items").index(j)));
                if !kp.path.is_empty() && !all_paths.insert(kp.path.clone()) {
                    errs.push(FieldError::invalid(
                        path,
                        sec.name.as_str(),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(cm) = src.config_map.as_ref() {
            n += 1;
            let pp = sp.child("configMap");
            if cm.name.is_empty() {
                errs.push(FieldError::required(&pp.child("name"), ""));
            }
            for (j, kp) in cm.items.iter().flatten().enumerate() {
                errs.extend(key_to_path(kp, &pp.child("items").index(j)));
                if !kp.path.is_empty() && !all_paths.insert(kp.path.clone()) {
                    errs.push(FieldError::invalid(
                        path,
                        cm.name.as_str(),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(d) = src.downward_api.as_ref() {
            n += 1;
            let pp = sp.child("downwardAPI");
            for item in d.items.iter().flatten() {
                errs.extend(downward_api_file(item, &pp));
                if !item.path.is_empty() && !all_paths.insert(item.path.clone()) {
                    errs.push(FieldError::invalid(
                        path,
                        item.path.as_str(),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(t) = src.service_account_token.as_ref() {
            n += 1;
            let pp = sp.child("serviceAccountToken");
            let exp = t.expiration_seconds.unwrap_or(0);
            if exp < 600 {
                errs.push(FieldError::invalid(
                    &pp.child("expirationSeconds"),
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(FieldError::invalid(
                    &pp.child("expirationSeconds"),
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            if t.path.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
            } else {
                errs.extend(local_non_reserved_path(&t.path, &path.child("path")));
            }
        }
        if src.cluster_trust_bundle.is_some() {
            n += 1;
        }
        if src.pod_certificate.is_some() {
            n += 1;
        }
        if n > 1 {
            errs.push(FieldError::forbidden(
                &sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

fn validate_pull_policy(policy: &str, path: &Path) -> FieldErrorList {
    match policy {
        "Always" | "IfNotPresent" | "Never" => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![not_supported(
            path,
            other,
            &["Always", "IfNotPresent", "Never"],
        )],
    }
}

fn validate_container_ports(
    ports: &[k8s_openapi::api::core::v1::ContainerPort],
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let mut names_seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let idx = path.index(i);
        let name = s(&port.name);
        if !name.is_empty() {
            let msgs = names::is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(&idx.child("name"), name, m));
                }
            } else if !names_seen.insert(name.to_string()) {
                errs.push(FieldError::duplicate(&idx.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&idx.child("containerPort"), ""));
        } else {
            for m in names::is_valid_port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    &idx.child("containerPort"),
                    port.container_port,
                    m,
                ));
            }
        }
        let hp = port.host_port.unwrap_or(0);
        if hp != 0 {
            for m in names::is_valid_port_num(i64::from(hp)) {
                errs.push(FieldError::invalid(&idx.child("hostPort"), hp, m));
            }
        }
        errs.extend(validate_protocol(s(&port.protocol), &idx.child("protocol")));
    }
    errs
}

/// TCP, UDP or SCTP, required.
pub(crate) fn validate_protocol(protocol: &str, path: &Path) -> FieldErrorList {
    match protocol {
        "TCP" | "UDP" | "SCTP" => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![not_supported(path, other, &["SCTP", "TCP", "UDP"])],
    }
}

fn validate_env(vars: &[EnvVar], path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let idx = path.index(i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(&idx.child("name"), ""));
        } else {
            for m in names::is_relaxed_env_var_name(&ev.name) {
                errs.push(FieldError::invalid(&idx.child("name"), ev.name.as_str(), m));
            }
        }
        let Some(from) = ev.value_from.as_ref() else {
            continue;
        };
        let fp = idx.child("valueFrom");
        let mut n = 0;
        if let Some(f) = from.field_ref.as_ref() {
            n += 1;
            errs.extend(object_field_selector(
                f,
                ENV_DOWNWARD_FIELD_PATHS,
                &fp.child("fieldRef"),
            ));
        }
        if let Some(r) = from.resource_field_ref.as_ref() {
            n += 1;
            errs.extend(resource_field_selector(
                r,
                &fp.child("resourceFieldRef"),
                false,
            ));
        }
        if let Some(c) = from.config_map_key_ref.as_ref() {
            n += 1;
            errs.extend(key_selector(&c.name, &c.key, &fp.child("configMapKeyRef")));
        }
        if let Some(c) = from.secret_key_ref.as_ref() {
            n += 1;
            errs.extend(key_selector(&c.name, &c.key, &fp.child("secretKeyRef")));
        }
        if from.file_key_ref.is_some() {
            n += 1;
        }
        if n == 0 {
            errs.push(FieldError::invalid(&fp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
        } else if !s(&ev.value).is_empty() {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn key_selector(name: &str, key: &str, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    for m in names::name_is_dns_subdomain(name, false) {
        errs.push(FieldError::invalid(&path.child("name"), name, m));
    }
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        for m in names::is_config_map_key(key) {
            errs.push(FieldError::invalid(&path.child("key"), key, m));
        }
    }
    errs
}

fn validate_env_from(vars: &[EnvFromSource], path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let idx = path.index(i);
        let prefix = s(&ev.prefix);
        if !prefix.is_empty() {
            for m in names::is_relaxed_env_var_name(prefix) {
                errs.push(FieldError::invalid(&idx.child("prefix"), prefix, m));
            }
        }
        let mut n = 0;
        for (field, name) in [
            (
                "configMapRef",
                ev.config_map_ref.as_ref().map(|r| r.name.as_str()),
            ),
            ("secretRef", ev.secret_ref.as_ref().map(|r| r.name.as_str())),
        ] {
            let Some(name) = name else {
                continue;
            };
            n += 1;
            let np = idx.child(field).child("name");
            if name.is_empty() {
                errs.push(FieldError::required(&np, ""));
            } else {
                for m in names::name_is_dns_subdomain(name, true) {
                    errs.push(FieldError::invalid(&np, name, m));
                }
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_volume_mounts(
    mounts: &[VolumeMount],
    devices: &BTreeMap<String, String>,
    volumes: &BTreeMap<String, bool>,
    privileged: bool,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let mut mount_points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let idx = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&idx.child("name"), ""));
        }
        if !volumes.contains_key(&m.name) {
            errs.push(FieldError::not_found(&idx.child("name"), m.name.as_str()));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&idx.child("mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.clone()) {
            errs.push(FieldError::invalid(
                &idx.child("mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        if devices.contains_key(&m.name) {
            errs.push(FieldError::invalid(
                &idx.child("name"),
                m.name.as_str(),
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|p| p == &m.mount_path) {
            errs.push(FieldError::invalid(
                &idx.child("mountPath"),
                m.mount_path.as_str(),
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub = s(&m.sub_path);
        if !sub.is_empty() {
            errs.extend(local_descending_path(sub, &path.child("subPath")));
        }
        let expr = s(&m.sub_path_expr);
        if !expr.is_empty() {
            if !sub.is_empty() {
                errs.push(FieldError::invalid(
                    &idx.child("subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(local_descending_path(expr, &path.child("subPathExpr")));
        }
        if let Some(prop) = m.mount_propagation.as_deref() {
            let pp = path.child("mountPropagation");
            const MODES: &[&str] = &["Bidirectional", "HostToContainer", "None"];
            if !MODES.contains(&prop) {
                errs.push(not_supported(&pp, prop, MODES));
            }
            if prop == "Bidirectional" && !privileged {
                errs.push(FieldError::forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if let Some(rro) = m.recursive_read_only.as_deref() {
            let rp = path.child("recursiveReadOnly");
            match rro {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if m.read_only != Some(true) {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when readOnly is true",
                        ));
                    }
                    if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(not_supported(
                    &rp,
                    other,
                    &["Disabled", "Enabled", "IfPossible"],
                )),
            }
        }
    }
    errs
}

fn validate_volume_devices(
    devices: &[k8s_openapi::api::core::v1::VolumeDevice],
    mounts: &BTreeMap<String, String>,
    volumes: &BTreeMap<String, bool>,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let mut paths = BTreeSet::new();
    let mut names_seen = BTreeSet::new();
    for (i, d) in devices.iter().enumerate() {
        let idx = path.index(i);
        if d.name.is_empty() {
            errs.push(FieldError::required(&idx.child("name"), ""));
        }
        if names_seen.contains(&d.name) {
            errs.push(FieldError::invalid(
                &idx.child("name"),
                d.name.as_str(),
                "must be unique",
            ));
        }
        match volumes.get(&d.name) {
            Some(false) => errs.push(FieldError::invalid(
                &idx.child("name"),
                d.name.as_str(),
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            )),
            Some(true) => {}
            None => errs.push(FieldError::not_found(&idx.child("name"), d.name.as_str())),
        }
        if d.device_path.is_empty() {
            errs.push(FieldError::required(&idx.child("devicePath"), ""));
        }
        if paths.contains(&d.device_path) {
            errs.push(FieldError::invalid(
                &idx.child("devicePath"),
                d.device_path.as_str(),
                "must be unique",
            ));
        }
        if !d.device_path.is_empty() && !path_no_backsteps(&d.device_path, path).is_empty() {
            errs.push(FieldError::invalid(
                &idx.child("devicePath"),
                d.device_path.as_str(),
                "can not contain backsteps ('..')",
            ));
        } else {
            paths.insert(d.device_path.clone());
        }
        if mounts.contains_key(&d.name) {
            errs.push(FieldError::invalid(
                &idx.child("name"),
                d.name.as_str(),
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.values().any(|p| p == &d.device_path) {
            errs.push(FieldError::invalid(
                &idx.child("devicePath"),
                d.device_path.as_str(),
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !d.name.is_empty() {
            names_seen.insert(d.name.clone());
        }
    }
    errs
}

/// Resource names upstream calls standard (`IsStandardResourceName`).
fn is_standard_resource_name(name: &str) -> bool {
    const STANDARD: &[&str] = &[
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "persistentvolumeclaims",
        "configmaps",
        "services.nodeports",
        "services.loadbalancers",
        "storage",
        "requests.storage",
    ];
    STANDARD.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

/// `IsNativeResource`: no domain, or a `kubernetes.io/` one.
pub(crate) fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `IsExtendedResourceName`.
pub(crate) fn is_extended_resource_name(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with("requests.") {
        return false;
    }
    names::is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn is_huge_page(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// `IsOvercommitAllowed`.
pub(crate) fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_huge_page(name)
}

/// `validateResourceName`.
pub(crate) fn validate_resource_name(name: &str, path: &Path) -> FieldErrorList {
    let errs: FieldErrorList = names::is_qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !is_standard_resource_name(name) {
        return vec![FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        )];
    }
    Vec::new()
}

/// `validateContainerResourceName`.
fn validate_container_resource_name(name: &str, path: &Path) -> FieldErrorList {
    let mut errs = validate_resource_name(name, path);
    if !name.contains('/') {
        if !(["cpu", "memory", "ephemeral-storage"].contains(&name) || is_huge_page(name)) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource_name(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// `ValidateResourceQuantityValue` (a quantity that parses, is not negative, and is whole for
/// integer resources). Returns the parsed value when it parsed.
pub(crate) fn validate_quantity(
    resource: &str,
    q: &Quantity,
    path: &Path,
) -> (Option<Qty>, FieldErrorList) {
    let Some(v) = qty::parse(&q.0) else {
        return (
            None,
            vec![FieldError::invalid(
                path,
                q.0.as_str(),
                qty::QUANTITY_FORMAT_ERROR,
            )],
        );
    };
    let mut errs = Vec::new();
    if v.sign() < 0 {
        errs.push(FieldError::invalid(
            path,
            qty::display(&q.0),
            names::IS_NEGATIVE_ERROR_MSG,
        ));
    }
    if is_integer_resource(resource) && !v.is_integer() {
        errs.push(FieldError::invalid(
            path,
            qty::display(&q.0),
            "must be an integer",
        ));
    }
    (Some(v), errs)
}

fn is_integer_resource(name: &str) -> bool {
    const INTEGER: &[&str] = &[
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    ];
    INTEGER.contains(&name) || is_extended_resource_name(name)
}

/// Upstream's `ValidateContainerResourceRequirements`.
fn validate_resources(
    res: Option<&ResourceRequirements>,
    claim_names: &BTreeSet<String>,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let Some(res) = res else {
        return errs;
    };
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let empty = BTreeMap::new();
    let limits = res.limits.as_ref().unwrap_or(&empty);
    let requests = res.requests.as_ref().unwrap_or(&empty);
    let mut compute = false;
    let mut huge = false;
    let mut parsed_limits = BTreeMap::new();
    for (name, q) in limits {
        let fp = lim_path.key(name);
        errs.extend(validate_container_resource_name(name, &fp));
        let (v, e) = validate_quantity(name, q, &fp);
        errs.extend(e);
        if let Some(v) = v {
            parsed_limits.insert(name.as_str(), v);
        }
        huge |= is_huge_page(name);
        compute |= name == "cpu" || name == "memory";
    }
    for (name, q) in requests {
        let fp = req_path.key(name);
        errs.extend(validate_container_resource_name(name, &fp));
        let (v, e) = validate_quantity(name, q, &fp);
        errs.extend(e);
        match (limits.get(name), v, parsed_limits.get(name.as_str())) {
            (Some(lq), Some(rv), Some(lv)) => {
                if rv != *lv && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        qty::display(&q.0),
                        format!("must be equal to {name} limit of {}", qty::display(&lq.0)),
                    ));
                } else if rv.cmp_to(lv) == std::cmp::Ordering::Greater {
                    errs.push(FieldError::invalid(
                        &req_path,
                        qty::display(&q.0),
                        format!(
                            "must be less than or equal to {name} limit of {}",
                            qty::display(&lq.0)
                        ),
                    ));
                }
            }
            (None, _, _) if !overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            _ => {}
        }
        huge |= is_huge_page(name);
        compute |= name == "cpu" || name == "memory";
    }
    if !compute && huge {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    let claims_path = path.child("claims");
    let mut seen = BTreeSet::new();
    for (i, c) in res.claims.iter().flatten().enumerate() {
        if c.name.is_empty() {
            errs.push(FieldError::required(&claims_path.index(i), ""));
            continue;
        }
        let key = match s(&c.request) {
            "" => c.name.clone(),
            r => {
                errs.extend(validate_dns1123_label(
                    r,
                    &claims_path.index(i).child("request"),
                ));
                format!("{}/{r}", c.name)
            }
        };
        if !seen.insert(key.clone()) {
            errs.push(FieldError::duplicate(&claims_path.index(i), key.as_str()));
        }
        if !claim_names.contains(&c.name) {
            let mut e = FieldError::not_found(&claims_path.index(i), c.name.as_str());
            e.detail = if claim_names.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_string()
            } else {
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    claim_names.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            errs.push(e);
        }
    }
    errs
}

fn validate_resize_policy(
    policies: &[k8s_openapi::api::core::v1::ContainerResizePolicy],
    restart_policy: &str,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, pol) in policies.iter().enumerate() {
        if !seen.insert(pol.resource_name.clone()) {
            errs.push(FieldError::duplicate(
                &path.index(i),
                pol.resource_name.as_str(),
            ));
        }
        match pol.resource_name.as_str() {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(not_supported(path, other, &["cpu", "memory"])),
        }
        match pol.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(not_supported(
                path,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
        if restart_policy == "Never" && pol.restart_policy != "NotRequired" {
            errs.push(FieldError::invalid(
                path,
                pol.restart_policy.as_str(),
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
    errs
}

fn validate_seccomp_profile(
    sp: Option<&k8s_openapi::api::core::v1::SeccompProfile>,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let Some(sp) = sp else {
        return errs;
    };
    match sp.type_.as_str() {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    if sp.type_ == "Localhost" {
        match sp.localhost_profile.as_deref() {
            None => errs.push(FieldError::required(
                &path.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(lp) => errs.extend(local_descending_path(lp, &path.child("localhostProfile"))),
        }
    } else if sp.localhost_profile.is_some() {
        errs.push(FieldError::invalid(
            &path.child("localhostProfile"),
            jv(sp),
            "can only be set when seccomp type is Localhost",
        ));
    }
    errs
}

fn validate_apparmor_profile(
    ap: Option<&k8s_openapi::api::core::v1::AppArmorProfile>,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let Some(ap) = ap else {
        return errs;
    };
    match ap.type_.as_str() {
        "Localhost" => match ap.localhost_profile.as_deref() {
            None => errs.push(FieldError::required(
                &path.child("localhostProfile"),
                "must be set when AppArmor type is Localhost",
            )),
            Some(lp) => {
                if lp.trim() != lp {
                    errs.push(FieldError::invalid(
                        &path.child("localhostProfile"),
                        lp,
                        "must not be padded with whitespace",
                    ));
                } else if lp.is_empty() {
                    errs.push(FieldError::required(
                        &path.child("localhostProfile"),
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if lp.len() > 4095 {
                    errs.push(FieldError::too_long(&path.child("localhostProfile"), 4095));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(lp) = ap.localhost_profile.as_deref() {
                errs.push(FieldError::invalid(
                    &path.child("localhostProfile"),
                    lp,
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => errs.push(not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    errs
}

fn validate_security_context(
    sc: Option<&SecurityContext>,
    host_users: bool,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let Some(sc) = sc else {
        return errs;
    };
    if let Some(u) = sc.run_as_user {
        for m in names::is_valid_user_id(u) {
            errs.push(FieldError::invalid(&path.child("runAsUser"), u, m));
        }
    }
    if let Some(g) = sc.run_as_group {
        for m in names::is_valid_group_id(g) {
            errs.push(FieldError::invalid(&path.child("runAsGroup"), g, m));
        }
    }
    if let Some(pm) = sc.proc_mount.as_deref() {
        if pm != "Default" && pm != "Unmasked" {
            errs.push(not_supported(
                &path.child("procMount"),
                pm,
                &["Default", "Unmasked"],
            ));
        }
        if host_users && pm == "Unmasked" {
            errs.push(FieldError::invalid(
                &path.child("procMount"),
                pm,
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    errs.extend(validate_seccomp_profile(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
    ));
    if sc.allow_privilege_escalation == Some(false) {
        if sc.privileged == Some(true) {
            errs.push(FieldError::invalid(
                path,
                jv(sc),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        if sc
            .capabilities
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .is_some_and(|a| a.iter().any(|c| c == "CAP_SYS_ADMIN"))
        {
            errs.push(FieldError::invalid(
                path,
                jv(sc),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
    errs.extend(validate_apparmor_profile(
        sc.app_armor_profile.as_ref(),
        &path.child("appArmorProfile"),
    ));
    errs
}

fn validate_handler(h: &LifecycleHandler, grace: Option<i64>, path: &Path) -> FieldErrorList {
    validate_handler_parts(
        h.exec.as_ref(),
        h.http_get.as_ref(),
        h.tcp_socket.as_ref(),
        None,
        h.sleep.as_ref(),
        grace,
        path,
    )
}

#[allow(clippy::too_many_arguments)]
fn validate_handler_parts(
    exec: Option<&k8s_openapi::api::core::v1::ExecAction>,
    http: Option<&k8s_openapi::api::core::v1::HTTPGetAction>,
    tcp: Option<&k8s_openapi::api::core::v1::TCPSocketAction>,
    grpc: Option<&k8s_openapi::api::core::v1::GRPCAction>,
    sleep: Option<&k8s_openapi::api::core::v1::SleepAction>,
    grace: Option<i64>,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let mut n = 0;
    let mut take = |name: &str, errs: &mut FieldErrorList| -> bool {
        if n > 0 {
            errs.push(FieldError::forbidden(
                &path.child(name),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            n += 1;
            true
        }
    };
    if let Some(e) = exec {
        if take("exec", &mut errs) && e.command.as_ref().is_none_or(|c| c.is_empty()) {
            errs.push(FieldError::required(
                &path.child("exec").child("command"),
                "",
            ));
        }
    }
    if let Some(h) = http {
        if take("httpGet", &mut errs) {
            let hp = path.child("httpGet");
            if s(&h.path).is_empty() {
                errs.push(FieldError::required(&hp.child("path"), ""));
            }
            errs.extend(validate_port_num_or_name(&h.port, &hp.child("port")));
            let scheme = s(&h.scheme);
            if scheme != "HTTP" && scheme != "HTTPS" {
                errs.push(not_supported(
                    &hp.child("scheme"),
                    scheme,
                    &["HTTP", "HTTPS"],
                ));
            }
            for header in h.http_headers.iter().flatten() {
                for m in names::is_http_header_name(&header.name) {
                    errs.push(FieldError::invalid(
                        &hp.child("httpHeaders"),
                        header.name.as_str(),
                        m,
                    ));
                }
            }
        }
    }
    if let Some(t) = tcp {
        if take("tcpSocket", &mut errs) {
            errs.extend(validate_port_num_or_name(
                &t.port,
                &path.child("tcpSocket").child("port"),
            ));
        }
    }
    if let Some(g) = grpc {
        if take("grpc", &mut errs) {
            errs.extend(validate_port_num_or_name(
                &IntOrString::Int(g.port),
                &path.child("grpc").child("port"),
            ));
        }
    }
    if let Some(sl) = sleep {
        if take("sleep", &mut errs) {
            if let Some(g) = grace {
                if sl.seconds < 0 || sl.seconds > g {
                    errs.push(FieldError::invalid(
                        &path.child("sleep"),
                        sl.seconds,
                        format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
                    ));
                }
            }
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

/// Upstream's `ValidatePortNumOrName`.
pub(crate) fn validate_port_num_or_name(port: &IntOrString, path: &Path) -> FieldErrorList {
    match port {
        IntOrString::Int(i) => names::is_valid_port_num(i64::from(*i))
            .into_iter()
            .map(|m| FieldError::invalid(path, *i, m))
            .collect(),
        IntOrString::String(n) => names::is_valid_port_name(n)
            .into_iter()
            .map(|m| FieldError::invalid(path, n.as_str(), m))
            .collect(),
    }
}

fn validate_lifecycle(l: &Lifecycle, grace: Option<i64>, path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    if let Some(h) = l.post_start.as_ref() {
        errs.extend(validate_handler(h, grace, &path.child("postStart")));
    }
    if let Some(h) = l.pre_stop.as_ref() {
        errs.extend(validate_handler(h, grace, &path.child("preStop")));
    }
    errs
}

#[derive(Clone, Copy, PartialEq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn validate_probe(
    pr: Option<&Probe>,
    kind: ProbeKind,
    grace: Option<i64>,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let Some(pr) = pr else {
        return errs;
    };
    errs.extend(validate_handler_parts(
        pr.exec.as_ref(),
        pr.http_get.as_ref(),
        pr.tcp_socket.as_ref(),
        pr.grpc.as_ref(),
        None,
        grace,
        path,
    ));
    for (name, v) in [
        ("initialDelaySeconds", pr.initial_delay_seconds),
        ("timeoutSeconds", pr.timeout_seconds),
        ("periodSeconds", pr.period_seconds),
        ("successThreshold", pr.success_threshold),
        ("failureThreshold", pr.failure_threshold),
    ] {
        errs.extend(validate_nonnegative(
            i64::from(v.unwrap_or(0)),
            &path.child(name),
        ));
    }
    if let Some(t) = pr.termination_grace_period_seconds {
        if t <= 0 {
            errs.push(FieldError::invalid(
                &path.child("terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            ));
        }
    }
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            let st = pr.success_threshold.unwrap_or(0);
            if st != 1 {
                errs.push(FieldError::invalid(
                    &path.child("successThreshold"),
                    st,
                    "must be 1",
                ));
            }
        }
        ProbeKind::Readiness => {
            if let Some(t) = pr.termination_grace_period_seconds {
                errs.push(FieldError::invalid(
                    &path.child("terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
    errs
}

/// `validateContainerCommon`.
fn validate_container_common(
    c: &Container,
    volumes: &BTreeMap<String, bool>,
    claim_names: &BTreeSet<String>,
    restart_policy: &str,
    host_users: bool,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        errs.extend(validate_dns1123_label(&c.name, &name_path));
    }
    if s(&c.image).is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    match s(&c.termination_message_policy) {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            &path.child("terminationMessagePolicy"),
            "",
        )),
        other => errs.push(not_supported(
            &path.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    let mounts: BTreeMap<String, String> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    let devices: BTreeMap<String, String> = c
        .volume_devices
        .iter()
        .flatten()
        .map(|d| (d.name.clone(), d.device_path.clone()))
        .collect();
    errs.extend(validate_container_ports(
        c.ports.as_deref().unwrap_or_default(),
        &path.child("ports"),
    ));
    errs.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &path.child("env"),
    ));
    errs.extend(validate_env_from(
        c.env_from.as_deref().unwrap_or_default(),
        &path.child("envFrom"),
    ));
    let privileged = c.security_context.as_ref().and_then(|sc| sc.privileged) == Some(true);
    errs.extend(validate_volume_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        &devices,
        volumes,
        privileged,
        &path.child("volumeMounts"),
    ));
    errs.extend(validate_volume_devices(
        c.volume_devices.as_deref().unwrap_or_default(),
        &mounts,
        volumes,
        &path.child("volumeDevices"),
    ));
    errs.extend(validate_pull_policy(
        s(&c.image_pull_policy),
        &path.child("imagePullPolicy"),
    ));
    errs.extend(validate_resources(
        c.resources.as_ref(),
        claim_names,
        &path.child("resources"),
    ));
    errs.extend(validate_resize_policy(
        c.resize_policy.as_deref().unwrap_or_default(),
        restart_policy,
        &path.child("resizePolicy"),
    ));
    errs.extend(validate_security_context(
        c.security_context.as_ref(),
        host_users,
        &path.child("securityContext"),
    ));
    errs
}

/// Host ports must not collide (`checkHostPortConflicts`).
fn host_port_conflicts(containers: &[&Container], path: &Path, base: usize) -> FieldErrorList {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let hp = port.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{}", s(&port.protocol), s(&port.host_ip), hp);
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &path
                        .index(base + ci)
                        .child("ports")
                        .index(pi)
                        .child("hostPort"),
                    key.as_str(),
                ));
            }
        }
    }
    errs
}

fn validate_node_selector_term(
    term: &k8s_openapi::api::core::v1::NodeSelectorTerm,
    check_values: bool,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    for (j, rq) in term.match_expressions.iter().flatten().enumerate() {
        let rp = path.child("matchExpressions").index(j);
        let values = rq.values.as_deref().unwrap_or_default();
        match rq.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        &rp.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        &rp.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            "Gt" | "Lt" => {
                if values.len() != 1 {
                    errs.push(FieldError::required(
                        &rp.child("values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                &rp.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        errs.extend(names::validate_label_name(&rq.key, &rp.child("key")));
        if check_values {
            for (vi, v) in values.iter().enumerate() {
                for m in names::is_valid_label_value(v) {
                    errs.push(FieldError::invalid(
                        &rp.child("values").index(vi),
                        v.as_str(),
                        m,
                    ));
                }
            }
        }
    }
    for (j, rq) in term.match_fields.iter().flatten().enumerate() {
        let rp = path.child("matchFields").index(j);
        let values = rq.values.as_deref().unwrap_or_default();
        match rq.operator.as_str() {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    errs.push(FieldError::required(
                        &rp.child("values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                &rp.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        if rq.key != "metadata.name" {
            errs.push(FieldError::invalid(
                &rp.child("key"),
                rq.key.as_str(),
                "not a valid field selector key",
            ));
        } else {
            for (vi, v) in values.iter().enumerate() {
                for m in names::name_is_dns_subdomain(v, false) {
                    errs.push(FieldError::invalid(
                        &rp.child("values").index(vi),
                        v.as_str(),
                        m,
                    ));
                }
            }
        }
    }
    errs
}

/// Upstream's `ValidateNodeSelector` (required node affinity, PV node affinity).
pub(crate) fn validate_node_selector(
    sel: &k8s_openapi::api::core::v1::NodeSelector,
    path: &Path,
) -> FieldErrorList {
    let tp = path.child("nodeSelectorTerms");
    if sel.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            &tp,
            "must have at least one node selector term",
        )];
    }
    sel.node_selector_terms
        .iter()
        .enumerate()
        .flat_map(|(i, t)| validate_node_selector_term(t, true, &tp.index(i)))
        .collect()
}

fn validate_pod_affinity_term(
    t: &k8s_openapi::api::core::v1::PodAffinityTerm,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    errs.extend(names::validate_label_selector(
        t.label_selector.as_ref(),
        &path.child("labelSelector"),
    ));
    errs.extend(names::validate_label_selector(
        t.namespace_selector.as_ref(),
        &path.child("namespaceSelector"),
    ));
    for ns in t.namespaces.iter().flatten() {
        for m in names::name_is_dns_label(ns, false) {
            errs.push(FieldError::invalid(
                &path.child("namespace"),
                ns.as_str(),
                m,
            ));
        }
    }
    for (field, keys) in [
        ("matchLabelKeys", &t.match_label_keys),
        ("mismatchLabelKeys", &t.mismatch_label_keys),
    ] {
        let keys = keys.as_deref().unwrap_or_default();
        if keys.is_empty() {
            continue;
        }
        if t.label_selector.is_none() {
            errs.push(FieldError::forbidden(
                &path.child(field),
                "must not be specified when labelSelector is not set",
            ));
            continue;
        }
        for (i, k) in keys.iter().enumerate() {
            errs.extend(names::validate_label_name(k, &path.child(field).index(i)));
        }
    }
    if t.topology_key.is_empty() {
        errs.push(FieldError::required(
            &path.child("topologyKey"),
            "can not be empty",
        ));
    }
    errs.extend(names::validate_label_name(
        &t.topology_key,
        &path.child("topologyKey"),
    ));
    errs
}

fn validate_affinity(
    a: Option<&k8s_openapi::api::core::v1::Affinity>,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let Some(a) = a else {
        return errs;
    };
    if let Some(na) = a.node_affinity.as_ref() {
        let np = path.child("nodeAffinity");
        if let Some(req) = na
            .required_during_scheduling_ignored_during_execution
            .as_ref()
        {
            errs.extend(validate_node_selector(
                req,
                &np.child("requiredDuringSchedulingIgnoredDuringExecution"),
            ));
        }
        for (i, t) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            let tp = np
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(i);
            if t.weight <= 0 || t.weight > 100 {
                errs.push(FieldError::invalid(
                    &tp.child("weight"),
                    t.weight,
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_node_selector_term(
                &t.preference,
                false,
                &tp.child("preference"),
            ));
        }
    }
    let pod_affinities = [
        (
            "podAffinity",
            a.pod_affinity.as_ref().map(|x| {
                (
                    &x.required_during_scheduling_ignored_during_execution,
                    &x.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
        (
            "podAntiAffinity",
            a.pod_anti_affinity.as_ref().map(|x| {
                (
                    &x.required_during_scheduling_ignored_during_execution,
                    &x.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
    ];
    for (name, parts) in pod_affinities {
        let Some((required, preferred)) = parts else {
            continue;
        };
        let ap = path.child(name);
        for (i, t) in required.iter().flatten().enumerate() {
            errs.extend(validate_pod_affinity_term(
                t,
                &ap.child("requiredDuringSchedulingIgnoredDuringExecution")
                    .index(i),
            ));
        }
        for (i, t) in preferred.iter().flatten().enumerate() {
            let tp = ap
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(i);
            if t.weight <= 0 || t.weight > 100 {
                errs.push(FieldError::invalid(
                    &tp.child("weight"),
                    t.weight,
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_pod_affinity_term(
                &t.pod_affinity_term,
                &tp.child("podAffinityTerm"),
            ));
        }
    }
    errs
}

/// Upstream's `ValidateTolerations`.
pub(crate) fn validate_tolerations(
    tolerations: &[k8s_openapi::api::core::v1::Toleration],
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let idx = path.index(i);
        let key = s(&t.key);
        let op = s(&t.operator);
        let effect = s(&t.effect);
        let value = s(&t.value);
        if !key.is_empty() {
            errs.extend(names::validate_label_name(key, &idx.child("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &idx.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &idx.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = names::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &idx.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        &idx.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &idx.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            errs.extend(validate_taint_effect(effect, true, &idx.child("effect")));
        }
    }
    errs
}

/// `validateTaintEffect`.
pub(crate) fn validate_taint_effect(
    effect: &str,
    allow_empty: bool,
    path: &Path,
) -> FieldErrorList {
    if !allow_empty && effect.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    match effect {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => Vec::new(),
        other => vec![not_supported(
            path,
            other,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        )],
    }
}

fn validate_pod_security_context(
    sc: Option<&PodSecurityContext>,
    spec: &PodSpec,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let Some(sc) = sc else {
        return errs;
    };
    if let Some(g) = sc.fs_group {
        for m in names::is_valid_group_id(g) {
            errs.push(FieldError::invalid(&path.child("fsGroup"), g, m));
        }
    }
    if let Some(u) = sc.run_as_user {
        for m in names::is_valid_user_id(u) {
            errs.push(FieldError::invalid(&path.child("runAsUser"), u, m));
        }
    }
    if let Some(g) = sc.run_as_group {
        for m in names::is_valid_group_id(g) {
            errs.push(FieldError::invalid(&path.child("runAsGroup"), g, m));
        }
    }
    for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
        for m in names::is_valid_group_id(*g) {
            errs.push(FieldError::invalid(
                &path.child("supplementalGroups").index(i),
                *g,
                m,
            ));
        }
    }
    // `shareProcessNamespace` and `hostPID` live in the security context in the internal type.
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.push(FieldError::invalid(
            &path.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let mut sysctl_names = BTreeSet::new();
    for (i, sy) in sc.sysctls.iter().flatten().enumerate() {
        let np = path.child("sysctls").index(i).child("name");
        if sy.name.is_empty() {
            errs.push(FieldError::required(&np, ""));
        } else if !is_valid_sysctl_name(&sy.name) {
            errs.push(FieldError::invalid(
                &np,
                sy.name.as_str(),
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if !sysctl_names.insert(sy.name.clone()) {
            errs.push(FieldError::duplicate(&np, sy.name.as_str()));
        }
        let host_net = spec.host_network == Some(true);
        if host_net && (sy.name.starts_with("net.") || sy.name.starts_with("net/")) {
            errs.push(FieldError::invalid(
                &np,
                sy.name.as_str(),
                "may not be specified when 'hostNetwork' is true",
            ));
        }
    }
    if let Some(pol) = sc.fs_group_change_policy.as_deref() {
        if pol != "OnRootMismatch" && pol != "Always" {
            errs.push(not_supported(
                &path.child("fsGroupChangePolicy"),
                pol,
                &["Always", "OnRootMismatch"],
            ));
        }
    }
    errs.extend(validate_seccomp_profile(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
    ));
    errs.extend(validate_apparmor_profile(
        sc.app_armor_profile.as_ref(),
        &path.child("appArmorProfile"),
    ));
    if let Some(pol) = sc.supplemental_groups_policy.as_deref() {
        if pol != "Merge" && pol != "Strict" {
            errs.push(not_supported(
                &path.child("supplementalGroupsPolicy"),
                pol,
                &["Merge", "Strict"],
            ));
        }
    }
    if let Some(pol) = sc.se_linux_change_policy.as_deref() {
        if pol != "MountOption" && pol != "Recursive" {
            errs.push(not_supported(
                &path.child("seLinuxChangePolicy"),
                pol,
                &["MountOption", "Recursive"],
            ));
        }
    }
    errs
}

fn is_valid_sysctl_name(name: &str) -> bool {
    if name.len() > 253 {
        return false;
    }
    let seg_ok = |seg: &str| {
        let b = seg.as_bytes();
        match (b.first(), b.last()) {
            (Some(&f), Some(&l)) => {
                is_lower_alnum(f)
                    && is_lower_alnum(l)
                    && b.iter()
                        .all(|&c| is_lower_alnum(c) || c == b'-' || c == b'_')
            }
            _ => false,
        }
    };
    name.split(['.', '/']).all(seg_ok)
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn validate_dns_config(
    cfg: Option<&k8s_openapi::api::core::v1::PodDNSConfig>,
    dns_policy: &str,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    if dns_policy == "None" {
        match cfg {
            None => {
                return vec![FieldError::required(
                    path,
                    "must provide `dnsConfig` when `dnsPolicy` is None",
                )]
            }
            Some(c) if c.nameservers.as_ref().is_none_or(|n| n.is_empty()) => {
                return vec![FieldError::required(
                    &path.child("nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )];
            }
            _ => {}
        }
    }
    let Some(cfg) = cfg else {
        return errs;
    };
    let ns = cfg.nameservers.as_deref().unwrap_or_default();
    if ns.len() > 3 {
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            Value::from(ns.to_vec()),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, n) in ns.iter().enumerate() {
        errs.extend(names::validate_ip(&path.child("nameservers").index(i), n));
    }
    let searches = cfg.searches.as_deref().unwrap_or_default();
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            Value::from(searches.to_vec()),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            Value::from(searches.to_vec()),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, sr) in searches.iter().enumerate() {
        if sr == "." {
            continue;
        }
        let trimmed = sr.strip_suffix('.').unwrap_or(sr);
        // Relaxed search validation (GA): underscores are allowed.
        let ok = !trimmed.is_empty()
            && trimmed.split('.').all(|l| {
                let l = l.strip_prefix('_').unwrap_or(l);
                let b = l.as_bytes();
                matches!((b.first(), b.last()), (Some(&f), Some(&e)) if is_lower_alnum(f) && is_lower_alnum(e))
                    && b.iter().all(|&c| is_lower_alnum(c) || c == b'-' || c == b'_')
            })
            && trimmed.len() <= 253;
        if !ok {
            errs.push(FieldError::invalid(
                &path.child("searches").index(i),
                trimmed,
                names::regex_error(
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character",
                    "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*",
                    &["example.com"],
                ),
            ));
        }
    }
    for (i, o) in cfg.options.iter().flatten().enumerate() {
        if s(&o.name).is_empty() {
            errs.push(FieldError::required(
                &path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
    errs
}

fn validate_topology_spread(
    constraints: &[k8s_openapi::api::core::v1::TopologySpreadConstraint],
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    for (i, c) in constraints.iter().enumerate() {
        let cp = path.index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                &cp.child("maxSkew"),
                c.max_skew,
                "must be greater than zero",
            ));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(
                &cp.child("topologyKey"),
                "can not be empty",
            ));
        }
        if c.when_unsatisfiable != "DoNotSchedule" && c.when_unsatisfiable != "ScheduleAnyway" {
            errs.push(not_supported(
                &cp.child("whenUnsatisfiable"),
                c.when_unsatisfiable.as_str(),
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if constraints[i + 1..].iter().any(|o| {
            o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable
        }) {
            errs.push(FieldError::duplicate(
                &cp.child("{topologyKey, whenUnsatisfiable}"),
                format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable),
            ));
        }
        if let Some(md) = c.min_domains {
            if md <= 0 {
                errs.push(FieldError::invalid(
                    &cp.child("minDomains"),
                    md,
                    "must be greater than zero",
                ));
            }
            if c.when_unsatisfiable != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    &cp.child("minDomains"),
                    md,
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {}",
                        c.when_unsatisfiable
                    ),
                ));
            }
        }
        for (field, v) in [
            ("nodeAffinityPolicy", &c.node_affinity_policy),
            ("nodeTaintsPolicy", &c.node_taints_policy),
        ] {
            if let Some(v) = v.as_deref() {
                if v != "Honor" && v != "Ignore" {
                    errs.push(not_supported(&cp.child(field), v, &["Honor", "Ignore"]));
                }
            }
        }
        let keys = c.match_label_keys.as_deref().unwrap_or_default();
        if !keys.is_empty() {
            let kp = cp.child("matchLabelKeys");
            match c.label_selector.as_ref() {
                None => errs.push(FieldError::forbidden(
                    &kp,
                    "must not be specified when labelSelector is not set",
                )),
                Some(sel) => {
                    let sel_keys: BTreeSet<&String> = sel
                        .match_labels
                        .iter()
                        .flatten()
                        .map(|(k, _)| k)
                        .chain(sel.match_expressions.iter().flatten().map(|e| &e.key))
                        .collect();
                    for (j, k) in keys.iter().enumerate() {
                        errs.extend(names::validate_label_name(k, &kp.index(j)));
                        if sel_keys.contains(k) {
                            errs.push(FieldError::invalid(
                                &kp.index(j),
                                k.as_str(),
                                "exists in both matchLabelKeys and labelSelector",
                            ));
                        }
                    }
                }
            }
        }
        errs.extend(names::validate_label_selector(
            c.label_selector.as_ref(),
            &cp.child("labelSelector"),
        ));
    }
    errs
}

/// Upstream's `ValidatePodSpec`. `pod_meta` is the pod's metadata for a real pod (ephemeral
/// volume claim names), `None` for templates.
pub(crate) fn validate_pod_spec(
    spec: &PodSpec,
    pod_meta: Option<&ObjectMeta>,
    path: &Path,
    opts: PodOpts,
) -> FieldErrorList {
    let mut errs = Vec::new();
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let grace = spec.termination_grace_period_seconds;
    let host_users = spec.host_users != Some(false);
    let restart_policy = s(&spec.restart_policy);
    let (vols, verrs) = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        pod_meta,
        &path.child("volumes"),
    );
    errs.extend(verrs);
    let claim_names: BTreeSet<String> = spec
        .resource_claims
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .filter(|n| !n.is_empty())
        .collect();
    errs.extend(validate_pod_resource_claims(
        spec.resource_claims.as_deref().unwrap_or_default(),
        &path.child("resourceClaims"),
    ));

    // Regular containers.
    let cpath = path.child("containers");
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&cpath, ""));
    } else {
        let mut seen = BTreeSet::new();
        for (i, c) in spec.containers.iter().enumerate() {
            let ip = cpath.index(i);
            errs.extend(validate_container_common(
                c,
                &vols,
                &claim_names,
                restart_policy,
                host_users,
                &ip,
            ));
            if !seen.insert(c.name.clone()) {
                errs.push(FieldError::duplicate(&ip.child("name"), c.name.as_str()));
            }
            if let Some(l) = c.lifecycle.as_ref() {
                errs.extend(validate_lifecycle(l, grace, &ip.child("lifecycle")));
            }
            errs.extend(validate_probe(
                c.liveness_probe.as_ref(),
                ProbeKind::Liveness,
                grace,
                &ip.child("livenessProbe"),
            ));
            errs.extend(validate_probe(
                c.readiness_probe.as_ref(),
                ProbeKind::Readiness,
                grace,
                &ip.child("readinessProbe"),
            ));
            errs.extend(validate_probe(
                c.startup_probe.as_ref(),
                ProbeKind::Startup,
                grace,
                &ip.child("startupProbe"),
            ));
            if c.restart_policy.is_some() {
                errs.push(FieldError::forbidden(
                    &ip.child("restartPolicy"),
                    "may not be set for non-init containers",
                ));
            }
        }
        let all: Vec<&Container> = spec.containers.iter().collect();
        errs.extend(host_port_conflicts(&all, &cpath, 0));
    }

    // Init containers.
    let ipath = path.child("initContainers");
    let mut all_names: BTreeSet<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let ip = ipath.index(i);
        errs.extend(validate_container_common(
            c,
            &vols,
            &claim_names,
            restart_policy,
            host_users,
            &ip,
        ));
        let mut restart_always = false;
        if let Some(rp) = c.restart_policy.as_deref() {
            if rp != "Always" {
                errs.push(not_supported(&ip.child("restartPolicy"), rp, &["Always"]));
            }
            restart_always = rp == "Always";
        }
        if all_names.contains(&c.name) {
            errs.push(FieldError::duplicate(&ip.child("name"), c.name.as_str()));
        } else if !c.name.is_empty() {
            all_names.insert(c.name.clone());
        }
        errs.extend(host_port_conflicts(&[c], &ipath, i));
        if restart_always {
            if let Some(l) = c.lifecycle.as_ref() {
                errs.extend(validate_lifecycle(l, grace, &ip.child("lifecycle")));
            }
            errs.extend(validate_probe(
                c.liveness_probe.as_ref(),
                ProbeKind::Liveness,
                grace,
                &ip.child("livenessProbe"),
            ));
            errs.extend(validate_probe(
                c.readiness_probe.as_ref(),
                ProbeKind::Readiness,
                grace,
                &ip.child("readinessProbe"),
            ));
            errs.extend(validate_probe(
                c.startup_probe.as_ref(),
                ProbeKind::Startup,
                grace,
                &ip.child("startupProbe"),
            ));
        } else {
            for (field, set) in [
                ("lifecycle", c.lifecycle.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ] {
                if set {
                    errs.push(FieldError::forbidden(
                        &ip.child(field),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }

    // Ephemeral containers: only names are checked here (they cannot be set on create).
    for (i, ec) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let ep = path.child("ephemeralContainers").index(i);
        if all_names.contains(&ec.name) {
            errs.push(FieldError::duplicate(&ep.child("name"), ec.name.as_str()));
        } else {
            all_names.insert(ec.name.clone());
        }
    }

    // hostNetwork: host ports must equal container ports.
    if spec.host_network == Some(true) {
        for (i, c) in spec.containers.iter().enumerate() {
            for (j, port) in c.ports.iter().flatten().enumerate() {
                let hp = port.host_port.unwrap_or(0);
                if (opts.resource_is_pod || hp != 0) && hp != port.container_port {
                    errs.push(FieldError::invalid(
                        &cpath.index(i).child("ports").index(j).child("hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    match restart_policy {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(&path.child("restartPolicy"), "")),
        other => errs.push(not_supported(
            &path.child("restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    match s(&spec.dns_policy) {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(&path.child("dnsPolicy"), "")),
        other => errs.push(not_supported(
            &path.child("dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    errs.extend(names::validate_labels(
        spec.node_selector.as_ref(),
        &path.child("nodeSelector"),
    ));
    errs.extend(validate_pod_security_context(
        spec.security_context.as_ref(),
        spec,
        &path.child("securityContext"),
    ));
    errs.extend(validate_affinity(
        spec.affinity.as_ref(),
        &path.child("affinity"),
    ));
    errs.extend(validate_dns_config(
        spec.dns_config.as_ref(),
        s(&spec.dns_policy),
        &path.child("dnsConfig"),
    ));
    for (i, g) in spec.readiness_gates.iter().flatten().enumerate() {
        errs.extend(names::validate_qualified_name(
            &g.condition_type,
            &path.child("readinessGates").index(i).child("conditionType"),
        ));
    }
    let mut gates = BTreeSet::new();
    for (i, g) in spec.scheduling_gates.iter().flatten().enumerate() {
        let gp = path.child("schedulingGates").index(i);
        errs.extend(names::validate_qualified_name(&g.name, &gp));
        if !gates.insert(g.name.clone()) {
            errs.push(FieldError::duplicate(&gp, g.name.as_str()));
        }
    }
    errs.extend(validate_topology_spread(
        spec.topology_spread_constraints
            .as_deref()
            .unwrap_or_default(),
        &path.child("topologySpreadConstraints"),
    ));
    if spec.host_users == Some(false) {
        if spec.host_network == Some(true) {
            errs.push(FieldError::forbidden(
                &path.child("hostNetwork"),
                "when `pod.Spec.HostUsers` is false",
            ));
        }
        if spec.host_pid == Some(true) {
            errs.push(FieldError::forbidden(
                &path.child("HostPID"),
                "when `pod.Spec.HostUsers` is false",
            ));
        }
        if spec.host_ipc == Some(true) {
            errs.push(FieldError::forbidden(
                &path.child("HostIPC"),
                "when `pod.Spec.HostUsers` is false",
            ));
        }
    }
    let sa = s(&spec.service_account_name);
    if !sa.is_empty() {
        for m in names::name_is_dns_subdomain(sa, false) {
            errs.push(FieldError::invalid(
                &path.child("serviceAccountName"),
                sa,
                m,
            ));
        }
    }
    let node = s(&spec.node_name);
    if !node.is_empty() {
        for m in names::name_is_dns_subdomain(node, false) {
            errs.push(FieldError::invalid(&path.child("nodeName"), node, m));
        }
    }
    if let Some(ads) = spec.active_deadline_seconds {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(FieldError::invalid(
                &path.child("activeDeadlineSeconds"),
                ads,
                names::inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    for (field, v) in [
        ("hostname", s(&spec.hostname)),
        ("subdomain", s(&spec.subdomain)),
    ] {
        if !v.is_empty() {
            errs.extend(validate_dns1123_label(v, &path.child(field)));
        }
    }
    errs.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &path.child("tolerations"),
    ));
    for (i, ha) in spec.host_aliases.iter().flatten().enumerate() {
        let hp = path.child("hostAliases").index(i);
        errs.extend(names::validate_ip(&hp.child("ip"), &ha.ip));
        for (j, h) in ha.hostnames.iter().flatten().enumerate() {
            errs.extend(names::validate_dns1123_subdomain(
                h,
                &hp.child("hostnames").index(j),
            ));
        }
    }
    let pc = s(&spec.priority_class_name);
    if !pc.is_empty() {
        for m in names::name_is_dns_subdomain(pc, false) {
            errs.push(FieldError::invalid(&path.child("priorityClassName"), pc, m));
        }
    }
    if let Some(rc) = spec.runtime_class_name.as_deref() {
        for m in names::name_is_dns_subdomain(rc, false) {
            errs.push(FieldError::invalid(&path.child("runtimeClassName"), rc, m));
        }
    }
    if let Some(pp) = spec.preemption_policy.as_deref() {
        match pp {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(FieldError::required(&path.child("preemptionPolicy"), "")),
            other => errs.push(not_supported(
                &path.child("preemptionPolicy"),
                other,
                &["PreemptLowerPriority", "Never"],
            )),
        }
    }
    if let Some(overhead) = spec.overhead.as_ref() {
        let res = ResourceRequirements {
            limits: Some(overhead.clone()),
            ..Default::default()
        };
        errs.extend(validate_resources(
            Some(&res),
            &claim_names,
            &path.child("overhead"),
        ));
    }
    if let Some(os) = spec.os.as_ref() {
        if os.name.is_empty() {
            errs.push(FieldError::required(
                &path.child("os").child("name"),
                "cannot be empty",
            ));
        } else if os.name != "linux" && os.name != "windows" {
            errs.push(not_supported(
                &path.child("os"),
                os.name.as_str(),
                &["linux", "windows"],
            ));
        }
    }
    errs
}

fn validate_pod_resource_claims(
    claims: &[k8s_openapi::api::core::v1::PodResourceClaim],
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, c) in claims.iter().enumerate() {
        let cp = path.index(i);
        if c.name.is_empty() {
            errs.push(FieldError::required(&cp.child("name"), ""));
        } else if !seen.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(&cp.child("name"), c.name.as_str()));
        } else {
            errs.extend(validate_dns1123_label(&c.name, &cp.child("name")));
        }
        match (c.resource_claim_name.as_deref(), c.resource_claim_template_name.as_deref()) {
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                &cp,
                jv(c),
                "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified",
            )),
            (None, None) => errs.push(FieldError::invalid(&cp, jv(c), "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`")),
            _ => {}
        }
        for (field, v) in [
            ("resourceClaimName", &c.resource_claim_name),
            ("resourceClaimTemplateName", &c.resource_claim_template_name),
        ] {
            if let Some(v) = v.as_deref() {
                for m in names::name_is_dns_subdomain(v, false) {
                    errs.push(FieldError::invalid(&cp.child(field), v, m));
                }
            }
        }
    }
    errs
}

/// Upstream's `ValidatePodTemplateSpec` for the template embedded in a workload.
pub(crate) fn validate_pod_template_spec(t: &PodTemplateSpec, path: &Path) -> FieldErrorList {
    let mut errs = names::validate_template_labels_annotations(t.metadata.as_ref(), path);
    let empty = PodSpec::default();
    let spec = t.spec.as_ref().unwrap_or(&empty);
    errs.extend(validate_pod_spec(
        spec,
        None,
        &path.child("spec"),
        PodOpts::default(),
    ));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// The labels of a template, if any.
pub(crate) fn template_labels(t: &PodTemplateSpec) -> Option<&BTreeMap<String, String>> {
    t.metadata.as_ref().and_then(|m| m.labels.as_ref())
}

/// `validatePodMetadataAndSpec`: what create and update of a pod share.
fn validate_pod_metadata_and_spec(pod: &Pod) -> FieldErrorList {
    let meta_path = p("metadata");
    let spec_path = p("spec");
    let mut errs = names::validate_object_meta(
        &pod.metadata,
        true,
        names::name_is_dns_subdomain,
        &meta_path,
    );
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    if let Some(v) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubernetes.io/config.mirror"))
    {
        if s(&spec.node_name).is_empty() {
            errs.push(FieldError::invalid(
                &meta_path
                    .child("annotations")
                    .key("kubernetes.io/config.mirror"),
                v.as_str(),
                "must set spec.nodeName if mirror pod annotation is set",
            ));
        }
    }
    errs.extend(validate_pod_spec(
        spec,
        Some(&pod.metadata),
        &spec_path,
        PodOpts {
            resource_is_pod: true,
        },
    ));
    if s(&spec.service_account_name).is_empty() {
        for (vi, v) in spec.volumes.iter().flatten().enumerate() {
            for (si, src) in v
                .projected
                .iter()
                .flat_map(|pj| pj.sources.iter().flatten())
                .enumerate()
            {
                if src.service_account_token.is_some() {
                    errs.push(FieldError::forbidden(
                        &spec_path
                            .child("volumes")
                            .index(vi)
                            .child("projected")
                            .child("sources")
                            .index(si)
                            .child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for (field, list) in [
        ("containers", Some(&spec.containers)),
        ("initContainers", spec.init_containers.as_ref()),
    ] {
        for (i, c) in list.into_iter().flatten().enumerate() {
            let image = s(&c.image);
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &spec_path.child(field).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// The top-level spec fields that differ, for the update error's diff section.
fn spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let (Value::Object(o), Value::Object(n)) = (jv(old), jv(new)) else {
        return String::new();
    };
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (ov, nv) = (o.get(k), n.get(k));
        if ov != nv {
            if let Some(ov) = ov {
                out.push_str(&format!("- \t{k}: {ov},\n"));
            }
            if let Some(nv) = nv {
                out.push_str(&format!("+ \t{k}: {nv},\n"));
            }
        }
    }
    out.push_str("  }\n");
    out
}

/// Upstream's `ValidatePodUpdate` (besides metadata immutability).
fn validate_pod_update(new: &Pod, old: &Pod) -> FieldErrorList {
    let mut errs =
        names::validate_object_meta_transition(&new.metadata, &old.metadata, &p("metadata"));
    let spec_path = p("spec");
    let empty = PodSpec::default();
    let ns = new.spec.as_ref().unwrap_or(&empty);
    let os = old.spec.as_ref().unwrap_or(&empty);
    let ann_path = p("metadata").child("annotations");
    let (na, oa) = (
        new.metadata.annotations.clone().unwrap_or_default(),
        old.metadata.annotations.clone().unwrap_or_default(),
    );
    if na.get("kubernetes.io/config.mirror") != oa.get("kubernetes.io/config.mirror") {
        let key = "kubernetes.io/config.mirror";
        let msg = if oa.contains_key(key) {
            "may not remove or update mirror pod annotation"
        } else {
            "may not add mirror pod annotation"
        };
        errs.push(FieldError::forbidden(&ann_path.key(key), msg));
    }
    for (field, newc, oldc) in [
        ("containers", Some(&ns.containers), Some(&os.containers)),
        (
            "initContainers",
            ns.init_containers.as_ref(),
            os.init_containers.as_ref(),
        ),
    ] {
        let (newc, oldc) = (
            newc.map(Vec::as_slice).unwrap_or_default(),
            oldc.map(Vec::as_slice).unwrap_or_default(),
        );
        if newc.len() != oldc.len() {
            errs.push(FieldError::forbidden(
                &spec_path.child(field),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in newc.iter().enumerate() {
            let image = s(&c.image);
            if image.is_empty() {
                errs.push(FieldError::required(
                    &spec_path.child(field).index(i).child("image"),
                    "",
                ));
            }
        }
    }
    match (ns.active_deadline_seconds, os.active_deadline_seconds) {
        (Some(n), o) => {
            if n < 0 || n > i64::from(i32::MAX) {
                errs.push(FieldError::invalid(
                    &spec_path.child("activeDeadlineSeconds"),
                    n,
                    names::inclusive_range_error(0, i64::from(i32::MAX)),
                ));
                return errs;
            }
            if o.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    &spec_path.child("activeDeadlineSeconds"),
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &spec_path.child("activeDeadlineSeconds"),
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }
    // Tolerations may only be added (tolerationSeconds of existing ones may change).
    let new_tol = ns.tolerations.as_deref().unwrap_or_default();
    for o in os.tolerations.iter().flatten() {
        let found = new_tol.iter().any(|n| {
            let mut oc = o.clone();
            oc.toleration_seconds = n.toleration_seconds;
            &oc == n
        });
        if !found {
            errs.push(FieldError::forbidden(
                &spec_path.child("tolerations"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    // Scheduling gates may only be removed.
    let old_gates: BTreeSet<&String> = os
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| &g.name)
        .collect();
    for (i, g) in ns.scheduling_gates.iter().flatten().enumerate() {
        if !old_gates.contains(&g.name) {
            errs.push(FieldError::forbidden(
                &spec_path.child("schedulingGates").index(i).child("name"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    g.name
                ),
            ));
        }
    }
    if ns == os {
        return errs;
    }
    let mut munged = ns.clone();
    for (c, o) in munged.containers.iter_mut().zip(os.containers.iter()) {
        c.image = o.image.clone();
    }
    for (c, o) in munged
        .init_containers
        .iter_mut()
        .flatten()
        .zip(os.init_containers.iter().flatten())
    {
        c.image = o.image.clone();
    }
    munged.active_deadline_seconds = os.active_deadline_seconds;
    munged.scheduling_gates = os.scheduling_gates.clone();
    munged.tolerations = os.tolerations.clone();
    if os.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = os.termination_grace_period_seconds;
    }
    // A gated pod may gain node selector entries.
    if !os.scheduling_gates.as_ref().is_none_or(|g| g.is_empty())
        && munged.node_selector != os.node_selector
    {
        let new_sel = munged.node_selector.clone().unwrap_or_default();
        if os
            .node_selector
            .iter()
            .flatten()
            .any(|(k, v)| new_sel.get(k) != Some(v))
        {
            errs.push(FieldError::invalid(
                &spec_path.child("nodeSelector"),
                jv(&new_sel),
                "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
            ));
        }
        munged.node_selector = os.node_selector.clone();
    }
    if &munged != os {
        errs.push(FieldError::forbidden(
            &spec_path,
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}",
                spec_diff(os, &munged)
            ),
        ));
    }
    errs
}

fn validate_pod_status_update(new: &Pod, old: &Pod) -> FieldErrorList {
    let mut errs = names::validate_object_meta_update(&new.metadata, &old.metadata, &p("metadata"));
    let empty_spec = PodSpec::default();
    let empty_status = PodStatus::default();
    let (ns, os) = (
        new.spec.as_ref().unwrap_or(&empty_spec),
        old.spec.as_ref().unwrap_or(&empty_spec),
    );
    let (nst, ost) = (
        new.status.as_ref().unwrap_or(&empty_status),
        old.status.as_ref().unwrap_or(&empty_status),
    );
    for (i, c) in nst.conditions.iter().flatten().enumerate() {
        if !["PodScheduled", "Ready", "Initialized"].contains(&c.type_.as_str()) {
            errs.extend(names::validate_qualified_name(
                &c.type_,
                &p("metadata").child("conditions").index(i).child("Type"),
            ));
        }
    }
    let status_path = p("status");
    if ns.node_name != os.node_name {
        errs.push(FieldError::forbidden(
            &status_path.child("nodeName"),
            "may not be changed directly",
        ));
    }
    let nominated = s(&nst.nominated_node_name);
    if nst.nominated_node_name != ost.nominated_node_name && !nominated.is_empty() {
        for m in names::name_is_dns_subdomain(nominated, false) {
            errs.push(FieldError::invalid(
                &status_path.child("nominatedNodeName"),
                nominated,
                m,
            ));
        }
    }
    if s(&nst.qos_class) != s(&ost.qos_class) {
        errs.push(FieldError::invalid(
            &status_path.child("qosClass"),
            s(&nst.qos_class),
            names::FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    let restart = s(&os.restart_policy);
    if restart != "Always" {
        for (field, news, olds) in [
            (
                "containerStatuses",
                &nst.container_statuses,
                &ost.container_statuses,
            ),
            (
                "initContainerStatuses",
                &nst.init_container_statuses,
                &ost.init_container_statuses,
            ),
        ] {
            for (i, o) in olds.iter().flatten().enumerate() {
                let Some(term) = o.state.as_ref().and_then(|st| st.terminated.as_ref()) else {
                    continue;
                };
                if term.exit_code != 0 && restart == "OnFailure" {
                    continue;
                }
                let sidecar =
                    field == "initContainerStatuses"
                        && os.init_containers.iter().flatten().any(|c| {
                            c.name == o.name && c.restart_policy.as_deref() == Some("Always")
                        });
                if sidecar {
                    continue;
                }
                if news.iter().flatten().any(|n| {
                    n.name == o.name
                        && n.state
                            .as_ref()
                            .and_then(|st| st.terminated.as_ref())
                            .is_none()
                }) {
                    errs.push(FieldError::forbidden(
                        &status_path.child(field).index(i).child("state"),
                        "may not be transitioned to non-terminated state",
                    ));
                }
            }
        }
    }
    let ips_path = status_path.child("podIPs");
    for (i, ip) in nst.pod_ips.iter().flatten().enumerate() {
        errs.extend(names::validate_ip(&ips_path.index(i), &ip.ip));
    }
    let pod_ips = nst.pod_ips.as_deref().unwrap_or_default();
    if pod_ips.len() > 1 {
        let v4 = pod_ips
            .iter()
            .filter(|ip| ip.ip.parse::<std::net::Ipv4Addr>().is_ok())
            .count();
        if pod_ips.len() > 2 || v4 != 1 {
            errs.push(FieldError::invalid(
                &ips_path,
                jv(&pod_ips),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    let host_ips = nst.host_ips.as_deref().unwrap_or_default();
    if let Some(first) = host_ips.first() {
        if s(&nst.host_ip) != first.ip {
            errs.push(FieldError::invalid(
                &status_path.child("hostIPs").index(0).child("ip"),
                first.ip.as_str(),
                "must be equal to `hostIP`",
            ));
        }
        for (i, ip) in host_ips.iter().enumerate() {
            errs.extend(names::validate_ip(
                &status_path.child("hostIPs").index(i),
                &ip.ip,
            ));
        }
    }
    errs
}

impl Strategy for Pod {
    fn prepare_for_create(&mut self) {
        // QoS is computed on the defaulted resources whatever order the server calls us in.
        let spec = self.spec.get_or_insert_with(Default::default);
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            default_requests_from_limits(c);
        }
        let qos = pod_qos_class(spec);
        let gated = spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty());
        let mut status = PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some(qos.into()),
            ..Default::default()
        };
        if gated {
            status.conditions = Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("SchedulingGated".into()),
                message: Some("Scheduling is blocked due to non-empty scheduling gates".into()),
                ..Default::default()
            }]);
        }
        self.status = Some(status);
    }

    fn set_defaults(&mut self) {
        default_pod(self);
    }

    fn validate(&self) -> FieldErrorList {
        validate_pod_metadata_and_spec(self)
    }

    fn validate_create(&self) -> FieldErrorList {
        let mut errs = Vec::new();
        let spec_path = p("spec");
        if let Some(spec) = self.spec.as_ref() {
            if spec
                .ephemeral_containers
                .as_ref()
                .is_some_and(|e| !e.is_empty())
            {
                errs.push(FieldError::forbidden(
                    &spec_path.child("ephemeralContainers"),
                    "cannot be set on create",
                ));
            }
            if !s(&spec.node_name).is_empty()
                && spec
                    .scheduling_gates
                    .as_ref()
                    .is_some_and(|g| !g.is_empty())
            {
                errs.push(FieldError::forbidden(
                    &spec_path.child("nodeName"),
                    "cannot be set until all schedulingGates have been cleared",
                ));
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        validate_pod_update(self, old)
    }

    fn validate_status_update(&self, old: &Self) -> FieldErrorList {
        validate_pod_status_update(self, old)
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        let field = |f: fn(&PodSpec) -> &Option<String>| {
            spec.map(|sp| s(f(sp)).to_string()).unwrap_or_default()
        };
        vec![
            ("spec.nodeName", field(|sp| &sp.node_name)),
            ("spec.restartPolicy", field(|sp| &sp.restart_policy)),
            ("spec.schedulerName", field(|sp| &sp.scheduler_name)),
            (
                "spec.serviceAccountName",
                field(|sp| &sp.service_account_name),
            ),
            (
                "spec.hostNetwork",
                spec.and_then(|sp| sp.host_network)
                    .unwrap_or(false)
                    .to_string(),
            ),
            (
                "status.phase",
                status
                    .map(|st| s(&st.phase).to_string())
                    .unwrap_or_default(),
            ),
            (
                "status.podIP",
                status
                    .and_then(|st| st.pod_ips.as_ref())
                    .and_then(|ips| ips.first())
                    .map(|ip| ip.ip.clone())
                    .unwrap_or_default(),
            ),
            (
                "status.nominatedNodeName",
                status
                    .map(|st| s(&st.nominated_node_name).to_string())
                    .unwrap_or_default(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_from(v: Value) -> Pod {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test pod: {e}"))
    }

    fn messages(errs: &FieldErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    fn busybox() -> Pod {
        pod_from(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "busybox", "namespace": "development"},
            "spec": {"containers": [{"image": "busybox", "command": ["sleep", "3600"], "name": "busybox"}]}
        }))
    }

    #[test]
    fn busybox_pod_defaults_as_upstream() {
        let mut pod = busybox();
        pod.set_defaults();
        pod.prepare_for_create();
        let got = serde_json::to_value(&pod).unwrap_or_default();
        let want = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "busybox", "namespace": "development"},
            "spec": {
                "containers": [{
                    "command": ["sleep", "3600"],
                    "image": "busybox",
                    "imagePullPolicy": "Always",
                    "name": "busybox",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst",
                "enableServiceLinks": true,
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30
            },
            "status": {"phase": "Pending", "qosClass": "BestEffort"}
        });
        assert_eq!(got, want);
        assert!(pod.validate().is_empty(), "{:?}", messages(&pod.validate()));
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_image_pull_policy("busybox"), "Always");
        assert_eq!(default_image_pull_policy("mysql:latest"), "Always");
        assert_eq!(
            default_image_pull_policy("kubeguide/tomcat-app:v1"),
            "IfNotPresent"
        );
        assert_eq!(default_image_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(
            default_image_pull_policy("localhost:5000/app:1.0"),
            "IfNotPresent"
        );
        assert_eq!(
            default_image_pull_policy("app@sha256:abcdef"),
            "IfNotPresent"
        );
        assert_eq!(default_image_pull_policy("Bad/Image"), "IfNotPresent");
        assert_eq!(default_image_pull_policy(""), "IfNotPresent");
    }

    fn db_pod(requests: Option<Value>, limits: Option<Value>) -> Pod {
        let mut res = serde_json::Map::new();
        if let Some(r) = requests {
            res.insert("requests".into(), r);
        }
        if let Some(l) = limits {
            res.insert("limits".into(), l);
        }
        pod_from(serde_json::json!({
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"containers": [{"name": "db", "image": "mysql", "resources": res}]}
        }))
    }

    #[test]
    fn qos_classes() {
        let mut burstable = db_pod(
            Some(serde_json::json!({"memory": "64Mi", "cpu": "250m"})),
            Some(serde_json::json!({"memory": "128Mi", "cpu": "500m"})),
        );
        burstable.set_defaults();
        burstable.prepare_for_create();
        assert_eq!(
            burstable
                .status
                .as_ref()
                .and_then(|s| s.qos_class.as_deref()),
            Some("Burstable")
        );
        assert!(
            burstable.validate().is_empty(),
            "{:?}",
            messages(&burstable.validate())
        );

        // Limits only: requests default to limits, so the pod is Guaranteed.
        let mut guaranteed = db_pod(
            None,
            Some(serde_json::json!({"memory": "128Mi", "cpu": "500m"})),
        );
        guaranteed.set_defaults();
        guaranteed.prepare_for_create();
        assert_eq!(
            guaranteed
                .status
                .as_ref()
                .and_then(|s| s.qos_class.as_deref()),
            Some("Guaranteed")
        );
        let c = &guaranteed
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        assert_eq!(
            c.resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .map(|r| r.len()),
            Some(2)
        );

        // The public helper agrees even on an undefaulted spec.
        let g = db_pod(
            None,
            Some(serde_json::json!({"memory": "128Mi", "cpu": "0.5"})),
        );
        assert_eq!(g.spec.as_ref().map(pod_qos_class), Some("Guaranteed"));
        let only_cpu = db_pod(
            Some(serde_json::json!({"cpu": "1"})),
            Some(serde_json::json!({"cpu": "1"})),
        );
        assert_eq!(only_cpu.spec.as_ref().map(pod_qos_class), Some("Burstable"));
        let best = busybox();
        assert_eq!(best.spec.as_ref().map(pod_qos_class), Some("BestEffort"));
    }

    #[test]
    fn requests_above_limits_are_rejected() {
        let mut pod = db_pod(
            Some(serde_json::json!({"cpu": "600m"})),
            Some(serde_json::json!({"cpu": "500m"})),
        );
        pod.set_defaults();
        assert_eq!(
            messages(&pod.validate()),
            vec!["spec.containers[0].resources.requests: Invalid value: \"600m\": must be less than or equal to cpu limit of 500m"]
        );
    }

    #[test]
    fn missing_image_and_bad_names() {
        let mut pod = pod_from(serde_json::json!({
            "metadata": {"name": "Bad_Pod", "namespace": "default"},
            "spec": {"containers": [{"name": "web"}, {"name": "Web", "image": "nginx"}, {"name": "web", "image": "nginx"}]}
        }));
        pod.set_defaults();
        let got = messages(&pod.validate());
        assert!(
            got[0].starts_with(
                "metadata.name: Invalid value: \"Bad_Pod\": a lowercase RFC 1123 subdomain"
            ),
            "{got:?}"
        );
        assert!(
            got.contains(&"spec.containers[0].image: Required value".to_string()),
            "{got:?}"
        );
        assert!(
            got.iter().any(|m| m.starts_with(
                "spec.containers[1].name: Invalid value: \"Web\": a lowercase RFC 1123 label"
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&"spec.containers[2].name: Duplicate value: \"web\"".to_string()),
            "{got:?}"
        );
    }

    #[test]
    fn containers_are_required_and_policies_checked() {
        let mut pod = pod_from(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [], "restartPolicy": "Sometimes", "dnsPolicy": "Weird"}
        }));
        pod.set_defaults();
        assert_eq!(
            messages(&pod.validate()),
            vec![
                "spec.containers: Required value",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.dnsPolicy: Unsupported value: \"Weird\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ]
        );
    }

    #[test]
    fn ports_protocols_and_pull_policy() {
        let mut pod = pod_from(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Sometimes",
                "ports": [{"containerPort": 70000}, {"containerPort": 80, "protocol": "HTTP"}, {"containerPort": 81, "name": "x--y"}]}]}
        }));
        pod.set_defaults();
        assert_eq!(
            messages(&pod.validate()),
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].ports[2].name: Invalid value: \"x--y\": must not contain consecutive hyphens",
                "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            ]
        );
    }

    #[test]
    fn volumes_and_mounts() {
        let mut pod = pod_from(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {
                "volumes": [{"name": "data"}, {"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}, "secret": {"secretName": "s"}}],
                "containers": [{"name": "c", "image": "nginx",
                    "volumeMounts": [{"name": "data", "mountPath": "/d"}, {"name": "nope", "mountPath": "/d"}]}]
            }
        }));
        pod.set_defaults();
        let spec = pod.spec.as_ref().cloned().unwrap_or_default();
        let vols = spec.volumes.unwrap_or_default();
        assert!(
            vols[0].empty_dir.is_some(),
            "a volume without a source defaults to emptyDir"
        );
        assert_eq!(
            vols[2].config_map.as_ref().and_then(|c| c.default_mode),
            Some(420)
        );
        assert_eq!(
            messages(&pod.validate()),
            vec![
                "spec.volumes[1].name: Duplicate value: \"data\"",
                "spec.volumes[2].configMap: Forbidden: may not specify more than 1 volume type",
                "spec.containers[0].volumeMounts[1].name: Not found: \"nope\"",
                "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique",
            ]
        );
    }

    #[test]
    fn probes_default_and_validate() {
        let mut pod = pod_from(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx",
                "livenessProbe": {"httpGet": {"port": 8080}, "successThreshold": 2},
                "readinessProbe": {"tcpSocket": {"port": "http"}}}]}
        }));
        pod.set_defaults();
        let c = pod
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        let lp = c.liveness_probe.unwrap_or_default();
        assert_eq!(
            (lp.timeout_seconds, lp.period_seconds, lp.failure_threshold),
            (Some(1), Some(10), Some(3))
        );
        let hg = lp.http_get.unwrap_or_default();
        assert_eq!(
            (hg.path.as_deref(), hg.scheme.as_deref()),
            (Some("/"), Some("HTTP"))
        );
        assert_eq!(
            messages(&pod.validate()),
            vec!["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]
        );
    }

    #[test]
    fn env_names_and_sources() {
        let mut pod = pod_from(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "env": [
                {"name": "A=B", "value": "x"},
                {"name": ""},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}
            ]}]}
        }));
        pod.set_defaults();
        assert_eq!(
            messages(&pod.validate()),
            vec![
                "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
                "spec.containers[0].env[1].name: Required value",
                "spec.containers[0].env[2].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.bogus\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"",
            ]
        );
    }

    #[test]
    fn updates_may_change_only_images() {
        let mut old = busybox();
        old.set_defaults();
        let mut new = old.clone();
        if let Some(c) = new.spec.as_mut().map(|s| &mut s.containers[0]) {
            c.image = Some("busybox:1.36".into());
        }
        assert!(new.validate_update(&old).is_empty());
        if let Some(sp) = new.spec.as_mut() {
            sp.restart_policy = Some("Never".into());
        }
        let errs = new.validate_update(&old);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"));
        if let Some(sp) = new.spec.as_mut() {
            let mut two = Container {
                name: "two".into(),
                image: Some("busybox".into()),
                ..Default::default()
            };
            default_container(&mut two);
            sp.containers.push(two);
        }
        assert_eq!(
            messages(&new.validate_update(&old)),
            vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
    }

    #[test]
    fn status_update_keeps_qos() {
        let mut old = busybox();
        old.set_defaults();
        old.prepare_for_create();
        let mut new = old.clone();
        if let Some(st) = new.status.as_mut() {
            st.phase = Some("Running".into());
            st.pod_ips = Some(vec![k8s_openapi::api::core::v1::PodIP {
                ip: "10.244.0.5".into(),
            }]);
        }
        assert!(new.validate_status_update(&old).is_empty());
        if let Some(st) = new.status.as_mut() {
            st.qos_class = Some("Guaranteed".into());
        }
        assert_eq!(
            messages(&new.validate_status_update(&old)),
            vec!["status.qosClass: Invalid value: \"Guaranteed\": field is immutable"]
        );
    }

    #[test]
    fn selectable_fields_as_upstream() {
        let mut pod = busybox();
        pod.set_defaults();
        pod.prepare_for_create();
        let fields: BTreeMap<&str, String> = pod.selectable_fields().into_iter().collect();
        assert_eq!(fields["spec.restartPolicy"], "Always");
        assert_eq!(fields["spec.schedulerName"], "default-scheduler");
        assert_eq!(fields["spec.hostNetwork"], "false");
        assert_eq!(fields["status.phase"], "Pending");
        assert_eq!(fields["spec.nodeName"], "");
        assert_eq!(fields.len(), 8);
    }

    #[test]
    fn host_network_defaults_host_ports() {
        let mut pod = pod_from(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}
        }));
        pod.set_defaults();
        let port = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers[0].ports.as_ref())
            .map(|p| p[0].host_port);
        assert_eq!(port, Some(Some(80)));
        assert!(pod.validate().is_empty());
    }

    #[test]
    fn scheduling_gates_set_a_condition() {
        let mut pod = pod_from(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"schedulingGates": [{"name": "example.com/wait"}], "containers": [{"name": "c", "image": "nginx"}]}
        }));
        pod.set_defaults();
        pod.prepare_for_create();
        let cond = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|c| c[0].clone())
            .unwrap_or_default();
        assert_eq!(
            (
                cond.type_.as_str(),
                cond.status.as_str(),
                cond.reason.as_deref()
            ),
            ("PodScheduled", "False", Some("SchedulingGated"))
        );
    }

    #[test]
    fn extended_resources_must_match_limits() {
        let mut pod = db_pod(Some(serde_json::json!({"example.com/gpu": "1"})), None);
        pod.set_defaults();
        assert_eq!(
            messages(&pod.validate()),
            vec!["spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"]
        );
        let mut pod = db_pod(Some(serde_json::json!({"foo": "1"})), None);
        pod.set_defaults();
        assert_eq!(
            messages(&pod.validate()),
            vec![
                "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
                "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource for containers",
            ]
        );
        let mut pod = db_pod(Some(serde_json::json!({"cpu": "lots"})), None);
        pod.set_defaults();
        assert_eq!(
            messages(&pod.validate()),
            vec![format!(
                "spec.containers[0].resources.requests[cpu]: Invalid value: \"lots\": {}",
                qty::QUANTITY_FORMAT_ERROR
            )]
        );
    }
}
