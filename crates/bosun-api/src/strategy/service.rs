//! Services: upstream's `SetDefaults_Service`, the registry's clusterIP(s) normalisation and
//! type-dependent field clean-up, `ValidateService`/`ValidateServiceUpdate`.
//!
//! Allocation (clusterIP from the service CIDR, nodePorts from their range) is the server's;
//! this module only keeps values already allocated when a client omits them on update.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerStatus, Service, ServicePort, ServiceSpec, ServiceStatus,
    SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::common::{jv, p, s};
use super::pod::{validate_port_num_or_name, validate_protocol};
use super::Strategy;
use crate::field::{FieldError, FieldErrorList, Path};
use crate::names;

/// Upstream's default NodePort range (`--service-node-port-range`).
pub const NODE_PORT_RANGE: (i32, i32) = (30000, 32767);
/// Upstream's `DefaultClientIPServiceAffinitySeconds`.
pub const DEFAULT_CLIENT_IP_AFFINITY_SECONDS: i32 = 10800;
const MAX_CLIENT_IP_AFFINITY_SECONDS: i32 = 86400;

fn spec_type(spec: &ServiceSpec) -> &str {
    s(&spec.type_)
}

fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ips
        .as_ref()
        .is_some_and(|ips| ips.len() == 1 && ips[0] == "None")
}

/// `ExternallyAccessible`: LoadBalancer, NodePort, or ClusterIP with external IPs.
fn externally_accessible(spec: &ServiceSpec) -> bool {
    match spec_type(spec) {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()),
        _ => false,
    }
}

fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    spec_type(spec) != "ExternalName"
}

fn needs_node_port(spec: &ServiceSpec) -> bool {
    matches!(spec_type(spec), "NodePort" | "LoadBalancer")
}

fn needs_hc_node_port(spec: &ServiceSpec) -> bool {
    spec_type(spec) == "LoadBalancer" && s(&spec.external_traffic_policy) == "Local"
}

/// `SetDefaults_Service` plus the IP family fields the registry fills on create.
pub fn default_service(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    if s(&spec.session_affinity).is_empty() {
        spec.session_affinity = Some("None".into());
    }
    match s(&spec.session_affinity) {
        "None" => spec.session_affinity_config = None,
        "ClientIP" => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_some();
            if !has_timeout {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(DEFAULT_CLIENT_IP_AFFINITY_SECONDS),
                    }),
                });
            }
        }
        _ => {}
    }
    if s(&spec.type_).is_empty() {
        spec.type_ = Some("ClusterIP".into());
    }
    for port in spec.ports.iter_mut().flatten() {
        if s(&port.protocol).is_empty() {
            port.protocol = Some("TCP".into());
        }
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(t)) => t.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    if externally_accessible(spec) && s(&spec.external_traffic_policy).is_empty() {
        spec.external_traffic_policy = Some("Cluster".into());
    }
    if spec.internal_traffic_policy.is_none()
        && matches!(spec_type(spec), "NodePort" | "LoadBalancer" | "ClusterIP")
    {
        spec.internal_traffic_policy = Some("Cluster".into());
    }
    if spec_type(spec) == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        spec.allocate_load_balancer_node_ports = Some(true);
    }
    if needs_cluster_ip(spec) {
        if spec.ip_family_policy.is_none() {
            // Headless services without a selector may span both families.
            let headless_no_selector =
                is_headless(spec) && spec.selector.as_ref().is_none_or(|m| m.is_empty());
            spec.ip_family_policy = Some(
                if headless_no_selector {
                    "RequireDualStack"
                } else {
                    "SingleStack"
                }
                .into(),
            );
        }
        if spec.ip_families.as_ref().is_none_or(|f| f.is_empty()) {
            let family = match spec
                .cluster_ips
                .as_ref()
                .and_then(|ips| ips.first())
                .map(|ip| ip.parse::<std::net::IpAddr>())
            {
                Some(Ok(std::net::IpAddr::V6(_))) => "IPv6",
                _ => "IPv4",
            };
            spec.ip_families = Some(vec![family.into()]);
        }
    }
}

/// Upstream's `NormalizeClusterIPs`: keep `clusterIP` and `clusterIPs` in step.
fn normalize_cluster_ips(new: &mut ServiceSpec, old: Option<&ServiceSpec>) {
    let Some(old) = old else {
        if !s(&new.cluster_ip).is_empty() && new.cluster_ips.as_ref().is_none_or(|v| v.is_empty()) {
            new.cluster_ips = Some(vec![s(&new.cluster_ip).to_string()]);
        }
        return;
    };
    let empty = Vec::new();
    let old_ips = old.cluster_ips.as_ref().unwrap_or(&empty);
    if !old_ips.is_empty()
        && new.cluster_ips.as_ref().is_none_or(|v| v.is_empty())
        && s(&old.cluster_ip) == s(&new.cluster_ip)
    {
        new.cluster_ips = old.cluster_ips.clone();
    }
    if s(&old.cluster_ip) != s(&new.cluster_ip) {
        let same = new.cluster_ips.as_ref().unwrap_or(&empty) == old_ips;
        if !s(&old.cluster_ip).is_empty() && s(&new.cluster_ip).is_empty() {
            if same {
                new.cluster_ips = None;
            }
        } else if same {
            new.cluster_ips = Some(vec![s(&new.cluster_ip).to_string()]);
        }
    }
}

/// The registry's `patchAllocatedValues`: values the server allocated survive an update
/// whose client did not send them back.
fn patch_allocated_values(new: &mut ServiceSpec, old: &ServiceSpec) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if s(&new.cluster_ip).is_empty() {
            new.cluster_ip = old.cluster_ip.clone();
        }
        if new.cluster_ips.as_ref().is_none_or(|v| v.is_empty())
            && old.cluster_ips.as_ref().is_some_and(|v| !v.is_empty())
        {
            new.cluster_ips = old.cluster_ips.clone();
        }
        if new.ip_families.as_ref().is_none_or(|v| v.is_empty()) {
            new.ip_families = old.ip_families.clone();
        }
        if new.ip_family_policy.is_none() {
            new.ip_family_policy = old.ip_family_policy.clone();
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        let used = |spec: &ServiceSpec| -> BTreeSet<i32> {
            spec.ports
                .iter()
                .flatten()
                .filter_map(|p| p.node_port)
                .filter(|n| *n != 0)
                .collect()
        };
        let in_both: BTreeSet<i32> = used(old).intersection(&used(new)).copied().collect();
        let by_name: BTreeMap<String, i32> = old
            .ports
            .iter()
            .flatten()
            .map(|p| (s(&p.name).to_string(), p.node_port.unwrap_or(0)))
            .collect();
        for port in new.ports.iter_mut().flatten() {
            if port.node_port.unwrap_or(0) == 0 {
                let old_val = by_name.get(s(&port.name)).copied().unwrap_or(0);
                if old_val != 0 && !in_both.contains(&old_val) {
                    port.node_port = Some(old_val);
                }
            }
        }
    }
    if needs_hc_node_port(old)
        && needs_hc_node_port(new)
        && new.health_check_node_port.unwrap_or(0) == 0
    {
        new.health_check_node_port = old.health_check_node_port;
    }
}

/// The registry's `dropTypeDependentFields`: wipe what a type change made meaningless,
/// when the client did not touch it.
fn drop_type_dependent_fields(new: &mut Service, old: &Service) {
    let empty = ServiceSpec::default();
    let os = old.spec.as_ref().unwrap_or(&empty);
    let ns = new.spec.get_or_insert_with(Default::default);
    if needs_cluster_ip(os) && !needs_cluster_ip(ns) {
        if ns.cluster_ip == os.cluster_ip && ns.cluster_ips == os.cluster_ips {
            ns.cluster_ip = None;
            ns.cluster_ips = None;
        }
        if ns.ip_families == os.ip_families {
            ns.ip_families = None;
        }
        if ns.ip_family_policy == os.ip_family_policy {
            ns.ip_family_policy = None;
        }
    }
    let node_ports = |spec: &ServiceSpec| -> Vec<i32> {
        spec.ports
            .iter()
            .flatten()
            .map(|p| p.node_port.unwrap_or(0))
            .collect()
    };
    if needs_node_port(os) && !needs_node_port(ns) && node_ports(os) == node_ports(ns) {
        for port in ns.ports.iter_mut().flatten() {
            port.node_port = None;
        }
    }
    if needs_hc_node_port(os)
        && !needs_hc_node_port(ns)
        && os.health_check_node_port == ns.health_check_node_port
    {
        ns.health_check_node_port = None;
    }
    if spec_type(os) == "LoadBalancer" && spec_type(ns) != "LoadBalancer" {
        if ns.allocate_load_balancer_node_ports.is_some()
            && ns.allocate_load_balancer_node_ports == os.allocate_load_balancer_node_ports
        {
            ns.allocate_load_balancer_node_ports = None;
        }
        if ns.load_balancer_class == os.load_balancer_class {
            ns.load_balancer_class = None;
        }
    }
    if externally_accessible(os)
        && !externally_accessible(ns)
        && ns.external_traffic_policy == os.external_traffic_policy
    {
        ns.external_traffic_policy = None;
    }
    if spec_type(ns) != "LoadBalancer" {
        if let Some(st) = new.status.as_mut() {
            st.load_balancer = Some(LoadBalancerStatus::default());
        }
    }
}

fn validate_service_port(
    sp: &ServicePort,
    require_name: bool,
    names_seen: &mut BTreeSet<String>,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let name = s(&sp.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(names::validate_dns1123_label(name, &path.child("name")));
        if !names_seen.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    for m in names::is_valid_port_num(i64::from(sp.port)) {
        errs.push(FieldError::invalid(&path.child("port"), sp.port, m));
    }
    errs.extend(validate_protocol(s(&sp.protocol), &path.child("protocol")));
    errs.extend(validate_port_num_or_name(
        sp.target_port.as_ref().unwrap_or(&IntOrString::Int(0)),
        &path.child("targetPort"),
    ));
    if let Some(ap) = sp.app_protocol.as_deref() {
        errs.extend(names::validate_qualified_name(
            ap,
            &path.child("appProtocol"),
        ));
    }
    errs
}

fn validate_cluster_ips_related(spec: &ServiceSpec) -> FieldErrorList {
    let mut errs = Vec::new();
    if spec_type(spec) == "ExternalName" {
        return errs;
    }
    let sp = p("spec");
    let ips_path = sp.child("clusterIPs");
    let empty = Vec::new();
    let ips = spec.cluster_ips.as_ref().unwrap_or(&empty);
    let cip = s(&spec.cluster_ip);
    if !cip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != cip {
            errs.push(FieldError::invalid(
                &ips_path,
                Value::from(ips.clone()),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            Value::from(ips.clone()),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        if f != "IPv4" && f != "IPv6" {
            errs.push(FieldError::not_supported(
                &sp.child("ipFamilies").index(i),
                f.as_str(),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(f.clone()) {
            errs.push(FieldError::duplicate(
                &sp.child("ipFamilies").index(i),
                f.as_str(),
            ));
        }
    }
    if let Some(pol) = spec.ip_family_policy.as_deref() {
        const POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !POLICIES.contains(&pol) {
            errs.push(FieldError::not_supported(
                &sp.child("ipFamilyPolicy"),
                pol,
                POLICIES,
            ));
        }
    }
    let mut invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.push(FieldError::invalid(
                    &ips_path,
                    Value::from(ips.clone()),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = names::validate_ip(&ips_path.index(i), ip);
        invalid |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            Value::from(ips.clone()),
            "may only hold up to 2 values",
        ));
    }
    if invalid {
        return errs;
    }
    let is_v6 = |ip: &str| ip.parse::<std::net::Ipv6Addr>().is_ok();
    if ips.len() > 1 && is_v6(&ips[0]) == is_v6(&ips[1]) {
        errs.push(FieldError::invalid(
            &ips_path,
            Value::from(ips.clone()),
            "may specify no more than one IP for each IP family",
        ));
    }
    if !is_headless(spec) {
        for (i, (ip, fam)) in ips
            .iter()
            .zip(spec.ip_families.iter().flatten())
            .enumerate()
        {
            if fam == "IPv4" && is_v6(ip) {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if fam == "IPv6" && !is_v6(ip) {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// `ValidateNonSpecialIP`.
pub(crate) fn validate_non_special_ip(ip: &str, path: &Path) -> FieldErrorList {
    let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
        return vec![FieldError::invalid(path, ip, "must be a valid IP address")];
    };
    let mut errs = Vec::new();
    if addr.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            ip,
            format!("may not be unspecified ({ip})"),
        ));
    }
    if addr.is_loopback() {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let (link_local, link_local_mc) = match addr {
        std::net::IpAddr::V4(a) => (a.is_link_local(), a.octets()[..3] == [224, 0, 0]),
        std::net::IpAddr::V6(a) => {
            let seg = a.segments()[0];
            ((seg & 0xffc0) == 0xfe80, (seg & 0xff0f) == 0xff02)
        }
    };
    if link_local {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_mc {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

/// Upstream's `ValidateService`.
fn validate_service(svc: &Service) -> FieldErrorList {
    let meta_path = p("metadata");
    let mut errs = names::validate_object_meta(
        &svc.metadata,
        true,
        names::name_is_dns1035_label,
        &meta_path,
    );
    let empty = ServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&empty);
    let sp = p("spec");
    let annotations = svc.metadata.annotations.clone().unwrap_or_default();
    if let (Some(mode), Some(hints)) = (
        annotations.get("service.kubernetes.io/topology-mode"),
        annotations.get("service.kubernetes.io/topology-aware-hints"),
    ) {
        if mode != hints {
            errs.push(FieldError::invalid(
                &meta_path.child("annotations").key("service.kubernetes.io/topology-mode"),
                mode.as_str(),
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            ));
        }
    }
    let ports = spec.ports.as_deref().unwrap_or_default();
    let ty = spec_type(spec);
    if ports.is_empty() && !is_headless(spec) && ty != "ExternalName" {
        errs.push(FieldError::required(&sp.child("ports"), ""));
    }
    let first_ip = spec
        .cluster_ips
        .as_ref()
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    match ty {
        "LoadBalancer" if is_headless(spec) => {
            errs.push(FieldError::invalid(
                &sp.child("clusterIPs").index(0),
                first_ip,
                "may not be set to 'None' for LoadBalancer services",
            ));
        }
        "NodePort" if is_headless(spec) => {
            errs.push(FieldError::invalid(
                &sp.child("clusterIPs").index(0),
                first_ip,
                "may not be set to 'None' for NodePort services",
            ));
        }
        "ExternalName" => {
            if spec.cluster_ips.as_ref().is_some_and(|v| !v.is_empty()) {
                errs.push(FieldError::forbidden(
                    &sp.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|v| !v.is_empty()) {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = s(&spec.external_name);
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required(&sp.child("externalName"), ""));
            } else {
                errs.extend(names::validate_dns1123_subdomain(
                    cname,
                    &sp.child("externalName"),
                ));
            }
        }
        _ => {}
    }
    let mut port_names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            port,
            ports.len() > 1,
            &mut port_names,
            &sp.child("ports").index(i),
        ));
    }
    if let Some(sel) = spec.selector.as_ref() {
        errs.extend(names::validate_labels(Some(sel), &sp.child("selector")));
    }
    match s(&spec.session_affinity) {
        "" => errs.push(FieldError::required(&sp.child("sessionAffinity"), "")),
        "ClientIP" => {
            let cp = sp.child("sessionAffinityConfig");
            match spec.session_affinity_config.as_ref() {
                None => errs.push(FieldError::required(&cp, "when session affinity type is ClientIP")),
                Some(c) => match c.client_ip.as_ref() {
                    None => errs.push(FieldError::required(&cp.child("clientIP"), "when session affinity type is ClientIP")),
                    Some(ci) => match ci.timeout_seconds {
                        None => errs.push(FieldError::required(&cp.child("clientIP").child("timeoutSeconds"), "when session affinity type is ClientIP")),
                        Some(t) if t <= 0 || t > MAX_CLIENT_IP_AFFINITY_SECONDS => errs.push(FieldError::invalid(
                            &cp.child("clientIP").child("timeoutSeconds"),
                            t,
                            format!("must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"),
                        )),
                        Some(_) => {}
                    },
                },
            }
        }
        "None" => {
            if spec.session_affinity_config.is_some() {
                errs.push(FieldError::forbidden(
                    &sp.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &sp.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    errs.extend(validate_cluster_ips_related(spec));
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let ip_path = sp.child("externalIPs").index(i);
        let e = names::validate_ip(&ip_path, ip);
        if e.is_empty() {
            errs.extend(validate_non_special_ip(ip, &ip_path));
        } else {
            errs.extend(e);
        }
    }
    const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if ty.is_empty() {
        errs.push(FieldError::required(&sp.child("type"), ""));
    } else if !TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(&sp.child("type"), ty, TYPES));
    }
    if ty == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if port.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &sp.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    // The node port allocator's range check, reported the way it does.
    if needs_node_port(spec) {
        for (i, port) in ports.iter().enumerate() {
            let np = port.node_port.unwrap_or(0);
            if np != 0 && !(NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(&np) {
                errs.push(FieldError::invalid(
                    &sp.child("ports").index(i).child("nodePort"),
                    np,
                    format!("provided port is not in the valid range. The range of valid ports is {}-{}", NODE_PORT_RANGE.0, NODE_PORT_RANGE.1),
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = port.node_port.unwrap_or(0);
        if np != 0 && !node_ports.insert((s(&port.protocol).to_string(), np)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i).child("nodePort"),
                np,
            ));
        }
    }
    let mut port_keys = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        if !port_keys.insert((s(&port.protocol).to_string(), port.port)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i),
                serde_json::json!({"port": port.port, "protocol": s(&port.protocol)}),
            ));
        }
    }
    if let Some(ranges) = spec
        .load_balancer_source_ranges
        .as_ref()
        .filter(|r| !r.is_empty())
    {
        let rp = sp.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &rp,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(names::validate_cidr(&rp.index(i), r.trim()));
        }
    } else if let Some(val) =
        annotations.get("service.beta.kubernetes.io/load-balancer-source-ranges")
    {
        let ap = meta_path
            .child("annotations")
            .key("service.beta.kubernetes.io/load-balancer-source-ranges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &ap,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let val = val.trim();
        if !val.is_empty() {
            for c in val.split(',') {
                errs.extend(names::validate_cidr(&ap, c.trim()));
            }
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &sp.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        // Upstream reports this one without the `spec.` prefix.
        errs.push(FieldError::required(
            &p("allocateLoadBalancerNodePorts"),
            "",
        ));
    }
    if ty == "LoadBalancer" {
        if let Some(c) = spec.load_balancer_class.as_deref() {
            errs.extend(names::validate_qualified_name(
                c,
                &sp.child("loadBalancerClass"),
            ));
        }
    } else if spec.load_balancer_class.is_some() {
        errs.push(FieldError::forbidden(
            &sp.child("loadBalancerClass"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    let etp = s(&spec.external_traffic_policy);
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                &sp.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(&sp.child("externalTrafficPolicy"), ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(FieldError::not_supported(
            &sp.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc = spec.health_check_node_port.unwrap_or(0);
    if !needs_hc_node_port(spec) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                &sp.child("healthCheckNodePort"),
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc == 0 {
        errs.push(FieldError::required(&sp.child("healthCheckNodePort"), ""));
    } else {
        for m in names::is_valid_port_num(i64::from(hc)) {
            errs.push(FieldError::invalid(&sp.child("healthCheckNodePort"), hc, m));
        }
    }
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required(&sp.child("internalTrafficPolicy"), ""));
        }
        Some(itp) if itp != "Cluster" && itp != "Local" => {
            errs.push(FieldError::not_supported(
                &sp.child("internalTrafficPolicy"),
                itp,
                &["Cluster", "Local"],
            ));
        }
        _ => {}
    }
    if let Some(td) = spec.traffic_distribution.as_deref() {
        const TD: &[&str] = &["PreferClose", "PreferSameZone", "PreferSameNode"];
        if !TD.contains(&td) {
            errs.push(FieldError::not_supported(
                &sp.child("trafficDistribution"),
                td,
                TD,
            ));
        }
    }
    errs
}

/// `validateUpgradeDowngradeClusterIPs` and `...IPFamilies`: the primary clusterIP and IP
/// family may not change once set.
fn validate_cluster_ip_changes(new: &ServiceSpec, old: &ServiceSpec) -> FieldErrorList {
    let mut errs = Vec::new();
    if !needs_cluster_ip(new) || !needs_cluster_ip(old) {
        return errs;
    }
    let ips_path = p("spec").child("clusterIPs");
    let empty = Vec::new();
    let (ni, oi) = (
        new.cluster_ips.as_ref().unwrap_or(&empty),
        old.cluster_ips.as_ref().unwrap_or(&empty),
    );
    let (nh, oh) = (is_headless(new), is_headless(old));
    if !(nh && oh) {
        if ni.len() == oi.len() {
            for (i, ip) in oi.iter().enumerate() {
                if ip != &ni[i] {
                    errs.push(FieldError::invalid(
                        &ips_path.index(i),
                        Value::from(ni.clone()),
                        "may not change once set",
                    ));
                }
            }
        } else if oi.len() > ni.len() {
            if ni.is_empty() {
                errs.push(FieldError::invalid(
                    &ips_path.index(0),
                    Value::from(ni.clone()),
                    "primary clusterIP can not be unset",
                ));
            }
            if !oi.is_empty() && !ni.is_empty() && ni[0] != oi[0] {
                errs.push(FieldError::invalid(
                    &ips_path.index(0),
                    Value::from(ni.clone()),
                    "may not change once set",
                ));
            }
            if ni.len() == 1 && s(&new.ip_family_policy) != "SingleStack" {
                errs.push(FieldError::invalid(
                    &p("spec").child("ipFamilyPolicy"),
                    jv(&new.ip_family_policy),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !oi.is_empty() && ni[0] != oi[0] {
            errs.push(FieldError::invalid(
                &ips_path.index(0),
                Value::from(ni.clone()),
                "may not change once set",
            ));
        }
    }
    if nh != oh || nh {
        return errs;
    }
    let fam_path = p("spec").child("ipFamilies");
    let (nf, of) = (
        new.ip_families.as_ref().unwrap_or(&empty),
        old.ip_families.as_ref().unwrap_or(&empty),
    );
    if nf.len() == of.len() {
        if nf != of {
            errs.push(FieldError::invalid(
                &fam_path.index(0),
                Value::from(nf.clone()),
                "may not change once set",
            ));
        }
    } else if of.len() > nf.len() {
        if ni.is_empty() {
            errs.push(FieldError::invalid(
                &fam_path.index(0),
                Value::from(nf.clone()),
                "primary ipFamily can not be unset",
            ));
        }
        if !nf.is_empty() && nf[0] != of[0] {
            errs.push(FieldError::invalid(
                &fam_path.index(0),
                Value::from(ni.clone()),
                "may not change once set",
            ));
        }
        if nf.len() == 1 && s(&new.ip_family_policy) != "SingleStack" {
            errs.push(FieldError::invalid(
                &p("spec").child("ipFamilyPolicy"),
                jv(&new.ip_family_policy),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !of.is_empty() && !nf.is_empty() && nf[0] != of[0] {
        errs.push(FieldError::invalid(
            &fam_path.index(0),
            Value::from(ni.clone()),
            "may not change once set",
        ));
    }
    errs
}

impl Strategy for Service {
    fn prepare_for_create(&mut self) {
        self.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus::default()),
            ..Default::default()
        });
        normalize_cluster_ips(self.spec.get_or_insert_with(Default::default), None);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        let empty = ServiceSpec::default();
        let old_spec = old.spec.as_ref().unwrap_or(&empty);
        let spec = self.spec.get_or_insert_with(Default::default);
        patch_allocated_values(spec, old_spec);
        normalize_cluster_ips(spec, Some(old_spec));
        drop_type_dependent_fields(self, old);
    }

    fn set_defaults(&mut self) {
        default_service(self);
    }

    fn validate(&self) -> FieldErrorList {
        validate_service(self)
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let empty = ServiceSpec::default();
        let (ns, os) = (
            self.spec.as_ref().unwrap_or(&empty),
            old.spec.as_ref().unwrap_or(&empty),
        );
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        errs.extend(validate_cluster_ip_changes(ns, os));
        if spec_type(ns) == "LoadBalancer"
            && spec_type(os) == "LoadBalancer"
            && ns.load_balancer_class != os.load_balancer_class
        {
            errs.push(FieldError::invalid(
                &p("spec").child("loadBalancerClass"),
                jv(&ns.load_balancer_class),
                "may not change once set",
            ));
        }
        if needs_hc_node_port(os)
            && needs_hc_node_port(ns)
            && ns.health_check_node_port != os.health_check_node_port
        {
            errs.push(FieldError::forbidden(
                &p("spec").child("healthCheckNodePort"),
                "field is immutable",
            ));
        }
        errs
    }

    fn validate_status_update(&self, _old: &Self) -> FieldErrorList {
        let mut errs = Vec::new();
        let ty = self.spec.as_ref().map(spec_type).unwrap_or("");
        let ingress = self
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref());
        let ip = p("status").child("loadBalancer").child("ingress");
        for (i, ing) in ingress.into_iter().flatten().enumerate() {
            let idx = ip.index(i);
            if ty != "LoadBalancer" {
                errs.push(FieldError::forbidden(
                    &ip,
                    "may only be used when `spec.type` is 'LoadBalancer'",
                ));
                break;
            }
            let addr = s(&ing.ip);
            if !addr.is_empty() {
                errs.extend(names::validate_ip(&idx.child("ip"), addr));
            }
            match (ing.ip_mode.as_deref(), addr.is_empty()) {
                (None, false) => errs.push(FieldError::required(
                    &idx.child("ipMode"),
                    "must be specified when `ip` is set",
                )),
                (Some(_), true) => errs.push(FieldError::forbidden(
                    &idx.child("ipMode"),
                    "may not be specified when `ip` is not set",
                )),
                (Some(m), false) if m != "VIP" && m != "Proxy" => errs.push(
                    FieldError::not_supported(&idx.child("ipMode"), m, &["Proxy", "VIP"]),
                ),
                _ => {}
            }
            let host = s(&ing.hostname);
            if !host.is_empty() {
                errs.extend(names::validate_dns1123_subdomain(
                    host,
                    &idx.child("hostname"),
                ));
                if host.parse::<std::net::IpAddr>().is_ok() {
                    errs.push(FieldError::invalid(
                        &idx.child("hostname"),
                        host,
                        "must be a DNS name, not an IP address",
                    ));
                }
            }
        }
        errs
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let spec = self.spec.as_ref();
        vec![
            (
                "spec.clusterIP",
                spec.map(|sp| s(&sp.cluster_ip).to_string())
                    .unwrap_or_default(),
            ),
            (
                "spec.type",
                spec.map(|sp| spec_type(sp).to_string()).unwrap_or_default(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(v: Value) -> Service {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test service: {e}"))
    }

    fn messages(errs: &FieldErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    fn myweb() -> Service {
        svc(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "myweb", "namespace": "default"},
            "spec": {"type": "NodePort", "ports": [{"port": 8080, "nodePort": 30001}], "selector": {"app": "myweb"}}
        }))
    }

    #[test]
    fn myweb_nodeport_defaults_as_upstream() {
        let mut s = myweb();
        s.prepare_for_create();
        s.set_defaults();
        let got = serde_json::to_value(&s).unwrap_or_default();
        let want = serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "myweb", "namespace": "default"},
            "spec": {
                "externalTrafficPolicy": "Cluster",
                "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "ports": [{"nodePort": 30001, "port": 8080, "protocol": "TCP", "targetPort": 8080}],
                "selector": {"app": "myweb"},
                "sessionAffinity": "None",
                "type": "NodePort"
            },
            "status": {"loadBalancer": {}}
        });
        assert_eq!(got, want);
        assert!(s.validate().is_empty(), "{:?}", messages(&s.validate()));
    }

    #[test]
    fn mysql_clusterip_defaults() {
        let mut s = svc(serde_json::json!({
            "metadata": {"name": "mysql", "namespace": "default"},
            "spec": {"ports": [{"port": 3306}], "selector": {"app": "mysql"}}
        }));
        s.prepare_for_create();
        s.set_defaults();
        let spec = s.spec.clone().unwrap_or_default();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.external_traffic_policy, None);
        assert_eq!(spec.cluster_ip, None, "allocation is the server's");
        assert!(s.validate().is_empty(), "{:?}", messages(&s.validate()));
        assert_eq!(
            s.selectable_fields(),
            vec![
                ("spec.clusterIP", String::new()),
                ("spec.type", "ClusterIP".to_string())
            ]
        );
    }

    #[test]
    fn invalid_services() {
        let mut s = svc(serde_json::json!({
            "metadata": {"name": "1web", "namespace": "default"},
            "spec": {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30080}, {"port": 0, "name": "b"}]}
        }));
        s.set_defaults();
        let got = messages(&s.validate());
        assert!(
            got[0].starts_with(
                "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of"
            ),
            "{got:?}"
        );
        assert!(
            got.contains(&"spec.ports[0].name: Required value".to_string()),
            "{got:?}"
        );
        assert!(
            got.contains(
                &"spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive"
                    .to_string()
            ),
            "{got:?}"
        );
        assert!(
            got.contains(
                &"spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
                    .to_string()
            ),
            "{got:?}"
        );

        let mut s = myweb();
        if let Some(p) = s.spec.as_mut().and_then(|sp| sp.ports.as_mut()) {
            p[0].node_port = Some(80);
        }
        s.set_defaults();
        assert_eq!(
            messages(&s.validate()),
            vec!["spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"]
        );

        let mut s =
            svc(serde_json::json!({"metadata": {"name": "x", "namespace": "default"}, "spec": {}}));
        s.set_defaults();
        assert_eq!(messages(&s.validate()), vec!["spec.ports: Required value"]);
        // Headless services need no ports.
        let mut s = svc(
            serde_json::json!({"metadata": {"name": "x", "namespace": "default"}, "spec": {"clusterIP": "None"}}),
        );
        s.prepare_for_create();
        s.set_defaults();
        assert!(s.validate().is_empty(), "{:?}", messages(&s.validate()));
        assert_eq!(
            s.spec
                .as_ref()
                .and_then(|sp| sp.ip_family_policy.as_deref()),
            Some("RequireDualStack")
        );
    }

    #[test]
    fn cluster_ip_is_kept_and_immutable() {
        let mut old = myweb();
        old.prepare_for_create();
        old.set_defaults();
        if let Some(sp) = old.spec.as_mut() {
            sp.cluster_ip = Some("10.96.0.20".into());
            sp.cluster_ips = Some(vec!["10.96.0.20".into()]);
        }
        // A client that omits clusterIP and nodePort keeps the allocated ones.
        let mut new = myweb();
        if let Some(p) = new.spec.as_mut().and_then(|sp| sp.ports.as_mut()) {
            p[0].node_port = None;
        }
        new.prepare_for_update(&old);
        new.set_defaults();
        assert_eq!(
            new.spec.as_ref().and_then(|sp| sp.cluster_ip.as_deref()),
            Some("10.96.0.20")
        );
        assert_eq!(
            new.spec
                .as_ref()
                .and_then(|sp| sp.ports.as_ref())
                .map(|p| p[0].node_port),
            Some(Some(30001))
        );
        assert!(
            new.validate_update(&old).is_empty(),
            "{:?}",
            messages(&new.validate_update(&old))
        );
        // A client that changes it is refused.
        let mut new = old.clone();
        if let Some(sp) = new.spec.as_mut() {
            sp.cluster_ip = Some("10.96.0.21".into());
        }
        new.prepare_for_update(&old);
        assert_eq!(
            messages(&new.validate_update(&old)),
            vec!["spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.21\"}: may not change once set"]
        );
    }

    #[test]
    fn switching_to_cluster_ip_drops_node_ports() {
        let mut old = myweb();
        old.set_defaults();
        let mut new = old.clone();
        if let Some(sp) = new.spec.as_mut() {
            sp.type_ = Some("ClusterIP".into());
        }
        new.prepare_for_update(&old);
        new.set_defaults();
        let spec = new.spec.clone().unwrap_or_default();
        assert_eq!(spec.ports.as_ref().map(|p| p[0].node_port), Some(None));
        assert_eq!(spec.external_traffic_policy, None);
        assert!(
            new.validate_update(&old).is_empty(),
            "{:?}",
            messages(&new.validate_update(&old))
        );
    }

    #[test]
    fn external_name_services() {
        let mut s = svc(serde_json::json!({
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.com."}
        }));
        s.prepare_for_create();
        s.set_defaults();
        assert_eq!(s.spec.as_ref().and_then(|sp| sp.ip_families.clone()), None);
        assert!(s.validate().is_empty(), "{:?}", messages(&s.validate()));
        if let Some(sp) = s.spec.as_mut() {
            sp.external_name = Some("Not Valid".into());
        }
        assert!(messages(&s.validate())[0]
            .starts_with("spec.externalName: Invalid value: \"Not Valid\""));
    }
}
