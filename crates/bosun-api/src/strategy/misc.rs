//! The remaining kinds: Endpoints, EndpointSlices, Events (core and events.k8s.io),
//! LimitRanges, ResourceQuotas, Leases, PriorityClasses and PodDisruptionBudgets.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Endpoints, Event, LimitRange, ResourceQuota, ResourceQuotaStatus,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1 as eventsv1;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::common::{
    immutable, jv, not_more_than_100_percent, p, s, validate_positive_int_or_percent,
};
use super::pod::{
    is_extended_resource_name, is_native_resource, overcommit_allowed, validate_protocol,
    validate_quantity, validate_resource_name,
};
use super::qty::{self, Qty};
use super::service::validate_non_special_ip;
use super::Strategy;
use crate::field::{FieldError, FieldErrorList, Path};
use crate::names;

// ---------------------------------------------------------------------------- Endpoints

impl Strategy for Endpoints {
    fn set_defaults(&mut self) {
        for port in self
            .subsets
            .iter_mut()
            .flatten()
            .flat_map(|ss| ss.ports.iter_mut().flatten())
        {
            if s(&port.protocol).is_empty() {
                port.protocol = Some("TCP".into());
            }
        }
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        for (i, ss) in self.subsets.iter().flatten().enumerate() {
            let sp = p("subsets").index(i);
            let addrs = ss.addresses.as_deref().unwrap_or_default();
            let not_ready = ss.not_ready_addresses.as_deref().unwrap_or_default();
            if addrs.is_empty() && not_ready.is_empty() {
                errs.push(FieldError::required(
                    &sp,
                    "must specify `addresses` or `notReadyAddresses`",
                ));
            }
            for (field, list) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
                for (j, a) in list.iter().enumerate() {
                    let ap = sp.child(field).index(j);
                    errs.extend(names::validate_ip(&ap.child("ip"), &a.ip));
                    let host = s(&a.hostname);
                    if !host.is_empty() {
                        errs.extend(names::validate_dns1123_label(host, &ap.child("hostname")));
                    }
                    if let Some(node) = a.node_name.as_deref() {
                        for m in names::name_is_dns_subdomain(node, false) {
                            errs.push(FieldError::invalid(&ap.child("nodeName"), node, m));
                        }
                    }
                    errs.extend(validate_non_special_ip(&a.ip, &ap.child("ip")));
                }
            }
            let ports = ss.ports.as_deref().unwrap_or_default();
            for (j, port) in ports.iter().enumerate() {
                let pp = sp.child("ports").index(j);
                let name = s(&port.name);
                if ports.len() > 1 && name.is_empty() {
                    errs.push(FieldError::required(&pp.child("name"), ""));
                } else if !name.is_empty() {
                    errs.extend(names::validate_dns1123_label(name, &pp.child("name")));
                }
                for m in names::is_valid_port_num(i64::from(port.port)) {
                    errs.push(FieldError::invalid(&pp.child("port"), port.port, m));
                }
                errs.extend(validate_protocol(s(&port.protocol), &pp.child("protocol")));
                if let Some(ap) = port.app_protocol.as_deref() {
                    errs.extend(names::validate_qualified_name(ap, &pp.child("appProtocol")));
                }
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
    }

    fn has_generation() -> bool {
        false
    }
}

// ------------------------------------------------------------------------ EndpointSlice

const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;

fn validate_endpoint_slice(es: &EndpointSlice) -> FieldErrorList {
    let mut errs = names::validate_object_meta(
        &es.metadata,
        true,
        names::name_is_dns_subdomain,
        &p("metadata"),
    );
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    let at = es.address_type.as_str();
    if at.is_empty() {
        errs.push(FieldError::required(&p("addressType"), ""));
    } else if !TYPES.contains(&at) {
        errs.push(FieldError::not_supported(&p("addressType"), at, TYPES));
    }
    let ep = p("endpoints");
    if es.endpoints.len() > MAX_ENDPOINTS {
        errs.push(FieldError::too_many(&ep, es.endpoints.len(), MAX_ENDPOINTS));
    }
    for (i, e) in es.endpoints.iter().enumerate() {
        let idx = ep.index(i);
        let ap = idx.child("addresses");
        if e.addresses.is_empty() {
            errs.push(FieldError::required(&ap, "must contain at least 1 address"));
        } else if e.addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(&ap, e.addresses.len(), MAX_ADDRESSES));
        }
        for (j, a) in e.addresses.iter().enumerate() {
            let aj = ap.index(j);
            match at {
                "IPv4" => {
                    if a.parse::<std::net::Ipv4Addr>().is_err() {
                        errs.push(FieldError::invalid(
                            &aj,
                            a.as_str(),
                            "must be a valid IPv4 address",
                        ));
                    } else {
                        errs.extend(validate_non_special_ip(a, &aj));
                    }
                }
                "IPv6" => {
                    if a.parse::<std::net::Ipv6Addr>().is_err() {
                        errs.push(FieldError::invalid(
                            &aj,
                            a.as_str(),
                            "must be a valid IPv6 address",
                        ));
                    } else {
                        errs.extend(validate_non_special_ip(a, &aj));
                    }
                }
                "FQDN" => errs.extend(names::validate_dns1123_subdomain(a, &aj)),
                _ => {}
            }
        }
        if let Some(h) = e.hostname.as_deref() {
            errs.extend(names::validate_dns1123_label(h, &idx.child("hostname")));
        }
        if let Some(n) = e.node_name.as_deref() {
            for m in names::name_is_dns_subdomain(n, false) {
                errs.push(FieldError::invalid(&idx.child("nodeName"), n, m));
            }
        }
        if e.deprecated_topology.is_some() {
            errs.extend(names::validate_labels(
                e.deprecated_topology.as_ref(),
                &idx.child("deprecatedTopology"),
            ));
        }
    }
    let pp = p("ports");
    let ports = es.ports.as_deref().unwrap_or_default();
    if ports.len() > MAX_PORTS {
        errs.push(FieldError::too_many(&pp, ports.len(), MAX_PORTS));
    }
    let mut port_names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let idx = pp.index(i);
        let name = s(&port.name);
        if !name.is_empty() {
            errs.extend(names::validate_dns1123_label(name, &idx.child("name")));
        }
        if !port_names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&idx.child("name"), name));
        }
        errs.extend(validate_protocol(s(&port.protocol), &idx.child("protocol")));
        if let Some(n) = port.port {
            for m in names::is_valid_port_num(i64::from(n)) {
                errs.push(FieldError::invalid(&idx.child("port"), n, m));
            }
        }
        if let Some(ap) = port.app_protocol.as_deref() {
            errs.extend(names::validate_qualified_name(
                ap,
                &idx.child("appProtocol"),
            ));
        }
    }
    errs
}

impl Strategy for EndpointSlice {
    fn set_defaults(&mut self) {
        for port in self.ports.iter_mut().flatten() {
            port.name.get_or_insert_with(String::new);
            if port.protocol.is_none() {
                port.protocol = Some("TCP".into());
            }
        }
    }

    fn validate(&self) -> FieldErrorList {
        validate_endpoint_slice(self)
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        errs.extend(immutable(
            &self.address_type,
            &old.address_type,
            &p("addressType"),
        ));
        errs
    }

    /// Upstream's EndpointSlice strategy bumps generation when endpoints, ports or the
    /// address type change (kube-proxy and the mirroring controller compare it).
    fn generation_fields() -> &'static [&'static str] {
        &["endpoints", "ports", "addressType"]
    }
}

// ------------------------------------------------------------------------------- Events

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

/// The event fields upstream's `legacyValidateEvent` reads, shared by both Event kinds.
struct EventView<'a> {
    namespace: &'a str,
    involved_namespace: &'a str,
    new_style: bool,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    action: &'a str,
    reason: &'a str,
    message: &'a str,
}

fn legacy_validate_event(e: &EventView<'_>, reporting_field: &str) -> FieldErrorList {
    let mut errs = Vec::new();
    let ns_path = p("involvedObject").child("namespace");
    if !e.new_style {
        if e.involved_namespace.is_empty() {
            if !e.namespace.is_empty() && e.namespace != "default" {
                errs.push(FieldError::invalid(
                    &ns_path,
                    e.involved_namespace,
                    "does not match event.namespace",
                ));
            }
        } else if e.namespace != e.involved_namespace {
            errs.push(FieldError::invalid(
                &ns_path,
                e.involved_namespace,
                "does not match event.namespace",
            ));
        }
    } else {
        if e.involved_namespace.is_empty()
            && e.namespace != "default"
            && e.namespace != "kube-system"
        {
            errs.push(FieldError::invalid(
                &ns_path,
                e.involved_namespace,
                "does not match event.namespace",
            ));
        }
        if e.reporting_controller.is_empty() {
            errs.push(FieldError::required(&p(reporting_field), ""));
        }
        errs.extend(names::validate_qualified_name(
            e.reporting_controller,
            &p(reporting_field),
        ));
        if e.reporting_instance.is_empty() {
            errs.push(FieldError::required(&p("reportingInstance"), ""));
        }
        if e.reporting_instance.len() > REPORTING_INSTANCE_LIMIT {
            errs.push(FieldError::invalid(
                &p("reportingInstance"),
                "",
                format!("can have at most {REPORTING_INSTANCE_LIMIT} characters"),
            ));
        }
        if e.action.is_empty() {
            errs.push(FieldError::required(&p("action"), ""));
        }
        if e.action.len() > ACTION_LIMIT {
            errs.push(FieldError::invalid(
                &p("action"),
                "",
                format!("can have at most {ACTION_LIMIT} characters"),
            ));
        }
        if e.reason.is_empty() {
            errs.push(FieldError::required(&p("reason"), ""));
        }
        if e.reason.len() > REASON_LIMIT {
            errs.push(FieldError::invalid(
                &p("reason"),
                "",
                format!("can have at most {REASON_LIMIT} characters"),
            ));
        }
        if e.message.len() > NOTE_LIMIT {
            errs.push(FieldError::invalid(
                &p("message"),
                "",
                format!("can have at most {NOTE_LIMIT} characters"),
            ));
        }
    }
    for m in names::is_dns1123_subdomain(e.namespace) {
        errs.push(FieldError::invalid(&p("namespace"), e.namespace, m));
    }
    errs
}

fn core_event_view(ev: &Event) -> EventView<'_> {
    EventView {
        namespace: s(&ev.metadata.namespace),
        involved_namespace: s(&ev.involved_object.namespace),
        new_style: ev.event_time.is_some(),
        reporting_controller: s(&ev.reporting_component),
        reporting_instance: s(&ev.reporting_instance),
        action: s(&ev.action),
        reason: s(&ev.reason),
        message: s(&ev.message),
    }
}

impl Strategy for Event {
    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(legacy_validate_event(
            &core_event_view(self),
            "reportingComponent",
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        let o = &old.involved_object;
        let n = &self.involved_object;
        for (field, nv, ov) in [
            ("kind", &n.kind, &o.kind),
            ("namespace", &n.namespace, &o.namespace),
            ("name", &n.name, &o.name),
            ("uid", &n.uid, &o.uid),
            ("apiVersion", &n.api_version, &o.api_version),
            ("resourceVersion", &n.resource_version, &o.resource_version),
            ("fieldPath", &n.field_path, &o.field_path),
        ] {
            errs.extend(immutable(
                &s(nv).to_string(),
                &s(ov).to_string(),
                &p("involvedObject").child(field),
            ));
        }
        for (field, nv, ov) in [
            ("reason", &self.reason, &old.reason),
            ("message", &self.message, &old.message),
            ("type", &self.type_, &old.type_),
            ("action", &self.action, &old.action),
            (
                "reportingComponent",
                &self.reporting_component,
                &old.reporting_component,
            ),
            (
                "reportingInstance",
                &self.reporting_instance,
                &old.reporting_instance,
            ),
        ] {
            if self.event_time.is_some() {
                errs.extend(immutable(&s(nv).to_string(), &s(ov).to_string(), &p(field)));
            }
        }
        errs
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let o = &self.involved_object;
        vec![
            ("involvedObject.kind", s(&o.kind).to_string()),
            ("involvedObject.namespace", s(&o.namespace).to_string()),
            ("involvedObject.name", s(&o.name).to_string()),
            ("involvedObject.uid", s(&o.uid).to_string()),
            ("involvedObject.apiVersion", s(&o.api_version).to_string()),
            (
                "involvedObject.resourceVersion",
                s(&o.resource_version).to_string(),
            ),
            ("involvedObject.fieldPath", s(&o.field_path).to_string()),
            ("reason", s(&self.reason).to_string()),
            (
                "reportingComponent",
                s(&self.reporting_component).to_string(),
            ),
            (
                "source",
                self.source
                    .as_ref()
                    .map(|src| s(&src.component).to_string())
                    .unwrap_or_default(),
            ),
            ("type", s(&self.type_).to_string()),
        ]
    }

    fn has_generation() -> bool {
        false
    }
}

impl Strategy for eventsv1::Event {
    fn validate(&self) -> FieldErrorList {
        let regarding_ns = self
            .regarding
            .as_ref()
            .map(|r| s(&r.namespace))
            .unwrap_or("");
        let view = EventView {
            namespace: s(&self.metadata.namespace),
            involved_namespace: regarding_ns,
            new_style: self.event_time.is_some(),
            reporting_controller: s(&self.reporting_controller),
            reporting_instance: s(&self.reporting_instance),
            action: s(&self.action),
            reason: s(&self.reason),
            message: s(&self.note),
        };
        let mut errs = legacy_validate_event(&view, "reportingController");
        errs.extend(names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        ));
        if self.event_time.is_none() {
            errs.push(FieldError::required(&p("eventTime"), ""));
        }
        let ty = s(&self.type_);
        if ty != "Normal" && ty != "Warning" {
            errs.push(FieldError::invalid(
                &p("type"),
                "",
                format!("has invalid value: {ty}"),
            ));
        }
        if self.deprecated_first_timestamp.is_some() {
            errs.push(FieldError::invalid(
                &p("deprecatedFirstTimestamp"),
                "",
                "needs to be unset",
            ));
        }
        if self.deprecated_last_timestamp.is_some() {
            errs.push(FieldError::invalid(
                &p("deprecatedLastTimestamp"),
                "",
                "needs to be unset",
            ));
        }
        if self.deprecated_count.unwrap_or(0) != 0 {
            errs.push(FieldError::invalid(
                &p("deprecatedCount"),
                "",
                "needs to be unset",
            ));
        }
        if self
            .deprecated_source
            .as_ref()
            .is_some_and(|src| !s(&src.component).is_empty() || !s(&src.host).is_empty())
        {
            errs.push(FieldError::invalid(
                &p("deprecatedSource"),
                "",
                "needs to be unset",
            ));
        }
        if let Some(series) = self.series.as_ref() {
            if series.count < 2 {
                errs.push(FieldError::invalid(
                    &p("series").child("count"),
                    "",
                    "should be at least 2",
                ));
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        errs.extend(immutable(&self.regarding, &old.regarding, &p("regarding")));
        for (field, nv, ov) in [
            ("reason", &self.reason, &old.reason),
            ("note", &self.note, &old.note),
            ("type", &self.type_, &old.type_),
            ("action", &self.action, &old.action),
            (
                "reportingController",
                &self.reporting_controller,
                &old.reporting_controller,
            ),
            (
                "reportingInstance",
                &self.reporting_instance,
                &old.reporting_instance,
            ),
        ] {
            errs.extend(immutable(&s(nv).to_string(), &s(ov).to_string(), &p(field)));
        }
        errs
    }

    /// The events.k8s.io names of the fields, as upstream's field label conversion maps them.
    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let r = self.regarding.clone().unwrap_or_default();
        vec![
            ("regarding.kind", s(&r.kind).to_string()),
            ("regarding.namespace", s(&r.namespace).to_string()),
            ("regarding.name", s(&r.name).to_string()),
            ("regarding.uid", s(&r.uid).to_string()),
            ("regarding.apiVersion", s(&r.api_version).to_string()),
            (
                "regarding.resourceVersion",
                s(&r.resource_version).to_string(),
            ),
            ("regarding.fieldPath", s(&r.field_path).to_string()),
            ("reason", s(&self.reason).to_string()),
            (
                "reportingController",
                s(&self.reporting_controller).to_string(),
            ),
            ("type", s(&self.type_).to_string()),
        ]
    }

    fn has_generation() -> bool {
        false
    }
}

// --------------------------------------------------------------------------- LimitRange

fn validate_limit_range_resource_name(limit_type: &str, name: &str, path: &Path) -> FieldErrorList {
    let mut errs = validate_resource_name(name, path);
    if limit_type == "Pod" || limit_type == "Container" {
        if !name.contains('/') {
            if !(["cpu", "memory", "ephemeral-storage"].contains(&name)
                || name.starts_with("hugepages-"))
            {
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
    }
    errs
}

fn shown(q: &Quantity) -> String {
    qty::display(&q.0)
}

fn validate_limit_range(lr: &LimitRange) -> FieldErrorList {
    let mut errs = names::validate_object_meta(
        &lr.metadata,
        true,
        names::name_is_dns_subdomain,
        &p("metadata"),
    );
    let lp = p("spec").child("limits");
    let mut types = BTreeSet::new();
    let limits = lr
        .spec
        .as_ref()
        .map(|sp| sp.limits.as_slice())
        .unwrap_or_default();
    for (i, item) in limits.iter().enumerate() {
        let idx = lp.index(i);
        let ty = item.type_.as_str();
        let type_errs: FieldErrorList = names::is_qualified_name(ty)
            .into_iter()
            .map(|m| FieldError::invalid(&idx.child("type"), ty, m))
            .collect();
        if type_errs.is_empty()
            && !ty.contains('/')
            && !["Pod", "Container", "PersistentVolumeClaim"].contains(&ty)
        {
            errs.push(FieldError::invalid(
                &idx.child("type"),
                ty,
                "must be a standard limit type or fully qualified",
            ));
        }
        errs.extend(type_errs);
        if !types.insert(ty.to_string()) {
            errs.push(FieldError::duplicate(&idx.child("type"), ty));
        }
        let mut keys = BTreeSet::new();
        let empty = BTreeMap::new();
        let mut collect = |field: &str,
                           list: &BTreeMap<String, Quantity>,
                           errs: &mut FieldErrorList|
         -> BTreeMap<String, (Quantity, Option<Qty>)> {
            let mut out = BTreeMap::new();
            for (k, q) in list {
                errs.extend(validate_limit_range_resource_name(
                    ty,
                    k,
                    &idx.child(field).key(k),
                ));
                keys.insert(k.clone());
                out.insert(k.clone(), (q.clone(), qty::parse(&q.0)));
            }
            out
        };
        let max = collect("max", item.max.as_ref().unwrap_or(&empty), &mut errs);
        let min = collect("min", item.min.as_ref().unwrap_or(&empty), &mut errs);
        let (defaults, default_requests) = if ty == "Pod" {
            if item.default.as_ref().is_some_and(|d| !d.is_empty()) {
                errs.push(FieldError::forbidden(
                    &idx.child("default"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
            if item.default_request.as_ref().is_some_and(|d| !d.is_empty()) {
                errs.push(FieldError::forbidden(
                    &idx.child("defaultRequest"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
            (BTreeMap::new(), BTreeMap::new())
        } else {
            (
                collect(
                    "default",
                    item.default.as_ref().unwrap_or(&empty),
                    &mut errs,
                ),
                collect(
                    "defaultRequest",
                    item.default_request.as_ref().unwrap_or(&empty),
                    &mut errs,
                ),
            )
        };
        if ty == "PersistentVolumeClaim"
            && !item.min.as_ref().is_some_and(|m| m.contains_key("storage"))
            && !item.max.as_ref().is_some_and(|m| m.contains_key("storage"))
        {
            errs.push(FieldError::required(
                &idx.child("limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
        let ratios = collect(
            "maxLimitRequestRatio",
            item.max_limit_request_ratio.as_ref().unwrap_or(&empty),
            &mut errs,
        );
        let gt = |a: &Option<Qty>, b: &Option<Qty>| matches!((a, b), (Some(a), Some(b)) if a.cmp_to(b).is_gt());
        for k in &keys {
            let (mn, mx, df, dr, ra) = (
                min.get(k),
                max.get(k),
                defaults.get(k),
                default_requests.get(k),
                ratios.get(k),
            );
            if let (Some(mn), Some(mx)) = (mn, mx) {
                if gt(&mn.1, &mx.1) {
                    errs.push(FieldError::invalid(
                        &idx.child("min").key(k),
                        shown(&mn.0),
                        format!(
                            "min value {} is greater than max value {}",
                            shown(&mn.0),
                            shown(&mx.0)
                        ),
                    ));
                }
            }
            if let (Some(dr), Some(mn)) = (dr, mn) {
                if gt(&mn.1, &dr.1) {
                    errs.push(FieldError::invalid(
                        &idx.child("defaultRequest").key(k),
                        shown(&dr.0),
                        format!(
                            "min value {} is greater than default request value {}",
                            shown(&mn.0),
                            shown(&dr.0)
                        ),
                    ));
                }
            }
            if let (Some(dr), Some(mx)) = (dr, mx) {
                if gt(&dr.1, &mx.1) {
                    errs.push(FieldError::invalid(
                        &idx.child("defaultRequest").key(k),
                        shown(&dr.0),
                        format!(
                            "default request value {} is greater than max value {}",
                            shown(&dr.0),
                            shown(&mx.0)
                        ),
                    ));
                }
            }
            if let (Some(dr), Some(df)) = (dr, df) {
                if gt(&dr.1, &df.1) {
                    errs.push(FieldError::invalid(
                        &idx.child("defaultRequest").key(k),
                        shown(&dr.0),
                        format!(
                            "default request value {} is greater than default limit value {}",
                            shown(&dr.0),
                            shown(&df.0)
                        ),
                    ));
                }
            }
            if let (Some(df), Some(mn)) = (df, mn) {
                if gt(&mn.1, &df.1) {
                    errs.push(FieldError::invalid(
                        &idx.child("default").key(k),
                        shown(&mn.0),
                        format!(
                            "min value {} is greater than default value {}",
                            shown(&mn.0),
                            shown(&df.0)
                        ),
                    ));
                }
            }
            if let (Some(df), Some(mx)) = (df, mx) {
                if gt(&df.1, &mx.1) {
                    errs.push(FieldError::invalid(
                        &idx.child("default").key(k),
                        shown(&mx.0),
                        format!(
                            "default value {} is greater than max value {}",
                            shown(&df.0),
                            shown(&mx.0)
                        ),
                    ));
                }
            }
            if let Some(ra) = ra {
                if ra
                    .1
                    .as_ref()
                    .is_some_and(|r| r.cmp_to(&Qty::from_int(1)).is_lt())
                {
                    errs.push(FieldError::invalid(
                        &idx.child("maxLimitRequestRatio").key(k),
                        shown(&ra.0),
                        format!("ratio {} is less than 1", shown(&ra.0)),
                    ));
                }
            }
            if !overcommit_allowed(k) {
                if let (Some(df), Some(dr)) = (df, dr) {
                    if df.1 != dr.1 {
                        errs.push(FieldError::invalid(
                            &idx.child("defaultRequest").key(k),
                            shown(&dr.0),
                            format!(
                                "default value {} must equal to defaultRequest value {} in {k}",
                                shown(&df.0),
                                shown(&dr.0)
                            ),
                        ));
                    }
                }
            }
        }
    }
    errs
}

impl Strategy for LimitRange {
    fn set_defaults(&mut self) {
        for item in self.spec.iter_mut().flat_map(|sp| sp.limits.iter_mut()) {
            for list in [
                item.max.as_mut(),
                item.min.as_mut(),
                item.default.as_mut(),
                item.default_request.as_mut(),
                item.max_limit_request_ratio.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                qty::round_resource_list(list);
            }
            if item.type_ != "Container" {
                continue;
            }
            let default = item.default.get_or_insert_with(BTreeMap::new);
            for (k, v) in item.max.iter().flatten() {
                default.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let default = default.clone();
            let default_request = item.default_request.get_or_insert_with(BTreeMap::new);
            for (k, v) in &default {
                default_request
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
            for (k, v) in item.min.iter().flatten() {
                default_request
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
        }
    }

    fn validate(&self) -> FieldErrorList {
        validate_limit_range(self)
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
    }

    fn has_generation() -> bool {
        false
    }
}

// ------------------------------------------------------------------------ ResourceQuota

const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

const QUOTA_SCOPES: &[&str] = &[
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
    "VolumeAttributesClass",
];

fn validate_quota_resources(
    list: Option<&BTreeMap<String, Quantity>>,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    for (k, q) in list.into_iter().flatten() {
        let rp = path.key(k);
        errs.extend(validate_resource_name(k, &rp));
        if !k.contains('/')
            && !STANDARD_QUOTA_RESOURCES.contains(&k.as_str())
            && !k.starts_with("requests.hugepages-")
        {
            errs.push(FieldError::invalid(
                &rp,
                k.as_str(),
                "must be a standard resource for quota",
            ));
        }
        errs.extend(validate_quantity(k, q, &rp).1);
    }
    errs
}

fn validate_quota_spec(rq: &ResourceQuota) -> FieldErrorList {
    let sp = p("spec");
    let spec = rq.spec.clone().unwrap_or_default();
    let mut errs = validate_quota_resources(spec.hard.as_ref(), &sp.child("hard"));
    let scopes = spec.scopes.clone().unwrap_or_default();
    let scope_path = sp.child("scopes");
    for sc in &scopes {
        if !QUOTA_SCOPES.contains(&sc.as_str()) {
            errs.push(FieldError::invalid(
                &scope_path,
                serde_json::Value::from(scopes.clone()),
                "unsupported scope",
            ));
        }
    }
    let has = |a: &str, b: &str| scopes.iter().any(|s| s == a) && scopes.iter().any(|s| s == b);
    if has("BestEffort", "NotBestEffort") || has("Terminating", "NotTerminating") {
        errs.push(FieldError::invalid(
            &scope_path,
            serde_json::Value::from(scopes.clone()),
            "conflicting scopes",
        ));
    }
    if let Some(sel) = spec.scope_selector.as_ref() {
        let ep = sp.child("scopeSelector").child("matchExpressions");
        for req in sel.match_expressions.iter().flatten() {
            if !QUOTA_SCOPES.contains(&req.scope_name.as_str()) {
                errs.push(FieldError::invalid(
                    &ep.child("scopeName"),
                    req.scope_name.as_str(),
                    "unsupported scope",
                ));
            }
            let values = req.values.as_deref().unwrap_or_default();
            if [
                "BestEffort",
                "NotBestEffort",
                "Terminating",
                "NotTerminating",
                "CrossNamespacePodAffinity",
            ]
            .contains(&req.scope_name.as_str())
                && req.operator != "Exists"
            {
                errs.push(FieldError::invalid(
                    &ep.child("operator"),
                    req.operator.as_str(),
                    "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
                ));
            }
            match req.operator.as_str() {
                "In" | "NotIn" => {
                    if values.is_empty() {
                        errs.push(FieldError::required(&ep.child("values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"));
                    }
                }
                "Exists" | "DoesNotExist" => {
                    if !values.is_empty() {
                        errs.push(FieldError::invalid(
                            &ep.child("values"),
                            serde_json::Value::from(values.to_vec()),
                            "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                        ));
                    }
                }
                other => errs.push(FieldError::invalid(
                    &ep.child("operator"),
                    other,
                    "not a valid selector operator",
                )),
            }
        }
    }
    errs
}

impl Strategy for ResourceQuota {
    fn prepare_for_create(&mut self) {
        self.status = Some(ResourceQuotaStatus::default());
    }

    fn set_defaults(&mut self) {
        if let Some(h) = self.spec.as_mut().and_then(|sp| sp.hard.as_mut()) {
            qty::round_resource_list(h);
        }
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_quota_spec(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        let scopes = |rq: &ResourceQuota| -> BTreeSet<String> {
            rq.spec
                .iter()
                .flat_map(|sp| sp.scopes.iter().flatten().cloned())
                .collect()
        };
        if scopes(self) != scopes(old) {
            errs.push(FieldError::invalid(
                &p("spec").child("scopes"),
                jv(&self.spec.as_ref().and_then(|sp| sp.scopes.clone())),
                names::FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs
    }

    fn validate_status_update(&self, _old: &Self) -> FieldErrorList {
        let st = self.status.clone().unwrap_or_default();
        let mut errs = validate_quota_resources(st.hard.as_ref(), &p("status").child("hard"));
        errs.extend(validate_quota_resources(
            st.used.as_ref(),
            &p("status").child("used"),
        ));
        errs
    }

    fn has_generation() -> bool {
        false
    }
}

// -------------------------------------------------------------------------------- Lease

impl Strategy for ControllerRevision {
    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        if self.revision < 0 {
            errs.push(FieldError::invalid(
                &p("revision"),
                self.revision,
                "must be greater than or equal to 0",
            ));
        }
        errs
    }

    /// Upstream's ValidateControllerRevisionUpdate: the data of a revision never changes.
    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        errs.extend(self.validate());
        if self.data != old.data {
            errs.push(FieldError::invalid(
                &p("data"),
                "<value omitted>",
                "field is immutable",
            ));
        }
        errs
    }

    fn has_generation() -> bool {
        false
    }
}

impl Strategy for Lease {
    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_lease_spec(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
    }

    fn has_generation() -> bool {
        false
    }
}

fn validate_lease_spec(l: &Lease) -> FieldErrorList {
    let sp = p("spec");
    let spec = l.spec.clone().unwrap_or_default();
    let mut errs = Vec::new();
    if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            &sp.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            &sp.child("leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(st) = spec.strategy.as_deref() {
        if st != "OldestEmulationVersion" {
            errs.push(FieldError::not_supported(
                &sp.child("strategy"),
                st,
                &["OldestEmulationVersion"],
            ));
        }
    }
    if spec
        .preferred_holder
        .as_deref()
        .is_some_and(|h| !h.is_empty())
        && spec.strategy.as_deref().is_none_or(|s| s.is_empty())
    {
        errs.push(FieldError::forbidden(
            &sp.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

// ------------------------------------------------------------------------ PriorityClass

/// Upstream's `HighestUserDefinablePriority`.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
const SYSTEM_PRIORITY_CLASSES: &[(&str, i32)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

impl Strategy for PriorityClass {
    fn set_defaults(&mut self) {
        if self.preemption_policy.is_none() {
            self.preemption_policy = Some("PreemptLowerPriority".into());
        }
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            false,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        let name = s(&self.metadata.name);
        if name.starts_with("system-") {
            let known = SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == name);
            let problem = match known {
                None => Some(format!("{name} is not a known system priority class")),
                Some((_, v)) if *v != self.value => {
                    Some(format!("value of {name} PriorityClass must be {v}"))
                }
                Some(_) if self.global_default == Some(true) => Some(format!(
                    "globalDefault of {name} PriorityClass must be false"
                )),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                errs.push(FieldError::forbidden(
                    &p("metadata").child("name"),
                    format!("priority class names with 'system-' prefix are reserved for system use only. error: {problem}"),
                ));
            }
        } else if self.value > HIGHEST_USER_DEFINABLE_PRIORITY {
            errs.push(FieldError::forbidden(&p("value"), format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}")));
        }
        if let Some(pp) = self.preemption_policy.as_deref() {
            match pp {
                "PreemptLowerPriority" | "Never" => {}
                "" => errs.push(FieldError::required(&p("preemptionPolicy"), "")),
                other => errs.push(FieldError::not_supported(
                    &p("preemptionPolicy"),
                    other,
                    &["PreemptLowerPriority", "Never"],
                )),
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        if self.value != old.value {
            errs.push(FieldError::forbidden(
                &p("value"),
                "may not be changed in an update.",
            ));
        }
        errs.extend(immutable(
            &self.preemption_policy,
            &old.preemption_policy,
            &p("preemptionPolicy"),
        ));
        errs
    }

    fn has_generation() -> bool {
        false
    }
}

// ------------------------------------------------------------------ PodDisruptionBudget

fn validate_pdb_spec(pdb: &PodDisruptionBudget) -> FieldErrorList {
    let sp = p("spec");
    let spec = pdb.spec.clone().unwrap_or_default();
    let mut errs = Vec::new();
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errs.push(FieldError::invalid(
            &sp,
            jv(&spec),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (field, v) in [
        ("minAvailable", spec.min_available.as_ref()),
        ("maxUnavailable", spec.max_unavailable.as_ref()),
    ] {
        if let Some(v) = v {
            errs.extend(validate_positive_int_or_percent(v, &sp.child(field)));
            errs.extend(not_more_than_100_percent(v, &sp.child(field)));
        }
    }
    errs.extend(names::validate_label_selector(
        spec.selector.as_ref(),
        &sp.child("selector"),
    ));
    if let Some(pol) = spec.unhealthy_pod_eviction_policy.as_deref() {
        if pol != "IfHealthyBudget" && pol != "AlwaysAllow" {
            errs.push(FieldError::not_supported(
                &sp.child("unhealthyPodEvictionPolicy"),
                pol,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
    errs
}

impl Strategy for PodDisruptionBudget {
    fn prepare_for_create(&mut self) {
        self.status = Some(PodDisruptionBudgetStatus::default());
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        );
        errs.extend(validate_pdb_spec(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
    }

    fn validate_status_update(&self, _old: &Self) -> FieldErrorList {
        let st = self.status.clone().unwrap_or_default();
        let sp = p("status");
        let mut errs = Vec::new();
        for (name, v) in [
            ("disruptionsAllowed", st.disruptions_allowed),
            ("currentHealthy", st.current_healthy),
            ("desiredHealthy", st.desired_healthy),
            ("expectedPods", st.expected_pods),
        ] {
            errs.extend(names::validate_nonnegative(i64::from(v), &sp.child(name)));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: &FieldErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    fn from<T: serde::de::DeserializeOwned + Default>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn endpoints() {
        let mut ep: Endpoints = from(json!({
            "metadata": {"name": "tomcat-service", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "172.17.1.3"}], "ports": [{"port": 8080}]}]
        }));
        ep.set_defaults();
        assert_eq!(
            ep.subsets
                .as_ref()
                .and_then(|s| s[0].ports.as_ref())
                .and_then(|p| p[0].protocol.clone())
                .as_deref(),
            Some("TCP")
        );
        assert!(ep.validate().is_empty(), "{:?}", messages(&ep.validate()));
        let mut bad = ep.clone();
        if let Some(a) = bad.subsets.as_mut().and_then(|s| s[0].addresses.as_mut()) {
            a[0].ip = "127.0.0.1".into();
        }
        assert_eq!(
            messages(&bad.validate()),
            vec!["subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"]
        );
    }

    #[test]
    fn endpoint_slices() {
        let mut es: EndpointSlice = from(json!({
            "metadata": {"name": "web-abc", "namespace": "default"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": true}}],
            "ports": [{"port": 80}]
        }));
        es.set_defaults();
        let v = serde_json::to_value(&es).unwrap_or_default();
        assert_eq!(
            v["ports"][0],
            json!({"name": "", "port": 80, "protocol": "TCP"})
        );
        assert!(es.validate().is_empty(), "{:?}", messages(&es.validate()));
        let mut new = es.clone();
        new.address_type = "IPv6".into();
        assert!(messages(&new.validate_update(&es))
            .contains(&"addressType: Invalid value: \"IPv6\": field is immutable".to_string()));
    }

    #[test]
    fn events_validate_and_select() {
        let ev: Event = from(json!({
            "metadata": {"name": "busybox.17a", "namespace": "development"},
            "involvedObject": {"kind": "Pod", "name": "busybox", "namespace": "development", "fieldPath": "spec.containers{busybox}"},
            "reason": "Unhealthy", "type": "Warning", "source": {"component": "kubelet", "host": "k8s-node-1"}
        }));
        assert!(ev.validate().is_empty(), "{:?}", messages(&ev.validate()));
        let fields: BTreeMap<&str, String> = ev.selectable_fields().into_iter().collect();
        assert_eq!(fields["involvedObject.kind"], "Pod");
        assert_eq!(fields["source"], "kubelet");
        assert_eq!(fields["type"], "Warning");
        assert_eq!(fields.len(), 11);
        let mut bad = ev.clone();
        bad.involved_object.namespace = Some("other".into());
        assert_eq!(messages(&bad.validate()), vec!["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]);

        let ev2: eventsv1::Event = from(json!({
            "metadata": {"name": "x", "namespace": "default"},
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "reportingController": "example.com/ctl", "reportingInstance": "ctl-1", "action": "Sync", "reason": "Synced", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}
        }));
        assert!(ev2.validate().is_empty(), "{:?}", messages(&ev2.validate()));
        assert_eq!(
            ev2.selectable_fields()[0],
            ("regarding.kind", "Pod".to_string())
        );
    }

    #[test]
    fn limit_ranges() {
        let mut lr: LimitRange = from(json!({
            "metadata": {"name": "limits", "namespace": "default"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "100m", "memory": "64Mi"}}]}
        }));
        lr.set_defaults();
        let item = lr
            .spec
            .as_ref()
            .map(|s| s.limits[0].clone())
            .unwrap_or_default();
        assert_eq!(
            item.default
                .as_ref()
                .and_then(|d| d.get("cpu"))
                .map(|q| q.0.as_str()),
            Some("1")
        );
        assert_eq!(
            item.default_request
                .as_ref()
                .and_then(|d| d.get("memory"))
                .map(|q| q.0.as_str()),
            Some("64Mi")
        );
        assert!(lr.validate().is_empty(), "{:?}", messages(&lr.validate()));
        let mut bad: LimitRange = from(json!({
            "metadata": {"name": "limits", "namespace": "default"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "100m"}, "min": {"cpu": "1"}}]}
        }));
        bad.set_defaults();
        assert!(messages(&bad.validate()).contains(&"spec.limits[0].min[cpu]: Invalid value: \"1\": min value 1 is greater than max value 100m".to_string()));
    }

    #[test]
    fn resource_quotas() {
        let rq: ResourceQuota = from(json!({
            "metadata": {"name": "q", "namespace": "default"},
            "spec": {"hard": {"pods": "10", "requests.cpu": "4", "count/deployments.apps": "5", "bogus": "1"}, "scopes": ["BestEffort", "NotBestEffort"]}
        }));
        assert_eq!(
            messages(&rq.validate()),
            vec![
                "spec.hard[bogus]: Invalid value: \"bogus\": must be a standard resource type or fully qualified",
                "spec.hard[bogus]: Invalid value: \"bogus\": must be a standard resource for quota",
                "spec.scopes: Invalid value: []string{\"BestEffort\", \"NotBestEffort\"}: conflicting scopes",
            ]
        );
        let mut pods: ResourceQuota = from(
            json!({"metadata": {"name": "q", "namespace": "default"}, "spec": {"hard": {"pods": "1.5"}}}),
        );
        pods.prepare_for_create();
        assert_eq!(
            messages(&pods.validate()),
            vec!["spec.hard[pods]: Invalid value: \"1500m\": must be an integer"]
        );
    }

    #[test]
    fn leases_priority_classes_and_pdbs() {
        let lease: Lease = from(
            json!({"metadata": {"name": "node-1", "namespace": "kube-node-lease"}, "spec": {"leaseDurationSeconds": 0}}),
        );
        assert_eq!(
            messages(&lease.validate()),
            vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
        );

        let mut pc: PriorityClass =
            from(json!({"metadata": {"name": "high"}, "value": 2000000000}));
        pc.set_defaults();
        assert_eq!(
            pc.preemption_policy.as_deref(),
            Some("PreemptLowerPriority")
        );
        assert_eq!(
            messages(&pc.validate()),
            vec![
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
            ]
        );
        let mut sys: PriorityClass =
            from(json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000}));
        sys.set_defaults();
        assert!(sys.validate().is_empty());
        let mut changed = sys.clone();
        changed.value = 1;
        assert_eq!(
            messages(&changed.validate_update(&sys)),
            vec!["value: Forbidden: may not be changed in an update."]
        );

        let mut pdb: PodDisruptionBudget = from(json!({
            "metadata": {"name": "zk", "namespace": "default"},
            "spec": {"minAvailable": 2, "maxUnavailable": "50%", "selector": {"matchLabels": {"app": "zk"}}}
        }));
        pdb.prepare_for_create();
        assert_eq!(
            serde_json::to_value(&pdb).unwrap_or_default()["status"]["disruptionsAllowed"],
            0
        );
        let errs = messages(&pdb.validate());
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].ends_with("minAvailable and maxUnavailable cannot be both set"),
            "{errs:?}"
        );
    }
}
