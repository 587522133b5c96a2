//! Namespaces and Nodes: upstream's defaults, the strategies' create/update handling and
//! `ValidateNamespace`/`ValidateNode*`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus, Node, NodeSpec};

use super::common::{jv, p, s};
use super::pod::{validate_quantity, validate_taint_effect};
use super::Strategy;
use crate::field::{FieldError, FieldErrorList, Path};
use crate::names;

/// The label upstream puts on every namespace, holding its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn set_name_label(ns: &mut Namespace) {
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(NAMESPACE_NAME_LABEL.into(), name);
    }
}

impl Strategy for Namespace {
    fn prepare_for_create(&mut self) {
        // Upstream always sets the kubernetes finalizer and the Active phase on create.
        self.spec = Some(NamespaceSpec {
            finalizers: Some(vec!["kubernetes".into()]),
        });
        self.status = Some(NamespaceStatus {
            phase: Some("Active".into()),
            ..Default::default()
        });
        set_name_label(self);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        // Finalizers change only through the finalize subresource.
        self.spec = old.spec.clone();
        set_name_label(self);
    }

    fn set_defaults(&mut self) {
        set_name_label(self);
        let status = self.status.get_or_insert_with(Default::default);
        if s(&status.phase).is_empty() {
            status.phase = Some("Active".into());
        }
    }

    fn validate(&self) -> FieldErrorList {
        let mut errs = names::validate_object_meta(
            &self.metadata,
            false,
            names::name_is_dns_label,
            &p("metadata"),
        );
        let fp = p("spec").child("finalizers");
        for f in self
            .spec
            .iter()
            .flat_map(|sp| sp.finalizers.iter().flatten())
        {
            errs.extend(
                names::validate_finalizers(std::slice::from_ref(f), &fp)
                    .into_iter()
                    .map(|mut e| {
                        // Upstream reports spec finalizers at the list, not the index.
                        e.field = fp.clone();
                        e
                    }),
            );
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
    }

    fn validate_status_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_update(&self.metadata, &old.metadata, &p("metadata"));
        let phase = self.status.as_ref().map(|st| s(&st.phase)).unwrap_or("");
        let pp = p("status").child("Phase");
        if self.metadata.deletion_timestamp.is_none() {
            if phase != "Active" {
                errs.push(FieldError::invalid(
                    &pp,
                    phase,
                    "may only be 'Active' if `deletionTimestamp` is empty",
                ));
            }
        } else if phase != "Terminating" {
            errs.push(FieldError::invalid(
                &pp,
                phase,
                "may only be 'Terminating' if `deletionTimestamp` is not empty",
            ));
        }
        errs
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![(
            "status.phase",
            self.status
                .as_ref()
                .map(|st| s(&st.phase).to_string())
                .unwrap_or_default(),
        )]
    }

    fn has_generation() -> bool {
        false
    }
}

// -------------------------------------------------------------------------------- Node

fn validate_taints(taints: &[k8s_openapi::api::core::v1::Taint], path: &Path) -> FieldErrorList {
    let mut errs = Vec::new();
    let mut unique: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (i, t) in taints.iter().enumerate() {
        let idx = path.index(i);
        errs.extend(names::validate_label_name(&t.key, &idx.child("key")));
        let value = s(&t.value);
        let msgs = names::is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &idx.child("value"),
                value,
                msgs.join(";"),
            ));
        }
        errs.extend(validate_taint_effect(
            &t.effect,
            false,
            &idx.child("effect"),
        ));
        let keys = unique.entry(t.effect.clone()).or_default();
        if !keys.insert(t.key.clone()) {
            let mut e = FieldError::duplicate(&idx, jv(t));
            e.detail = "taints must be unique by key and effect pair".into();
            errs.push(e);
        }
    }
    errs
}

fn validate_node_resources(node: &Node) -> FieldErrorList {
    let mut errs = Vec::new();
    let status = node.status.as_ref();
    for (field, list) in [
        ("capacity", status.and_then(|st| st.capacity.as_ref())),
        ("allocatable", status.and_then(|st| st.allocatable.as_ref())),
    ] {
        for (k, v) in list.into_iter().flatten() {
            errs.extend(validate_quantity(k, v, &p("status").child(field).child(k)).1);
        }
    }
    errs
}

fn validate_pod_cidrs(spec: &NodeSpec) -> FieldErrorList {
    let mut errs = Vec::new();
    let cidrs = spec.pod_cidrs.as_deref().unwrap_or_default();
    let cp = p("spec").child("podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        errs.extend(names::validate_cidr(&cp.index(i), c));
    }
    if cidrs.len() > 1 {
        let v6 = |c: &String| {
            c.split('/')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        };
        let n6 = cidrs.iter().filter(|c| v6(c)).count();
        if cidrs.len() > 2 || n6 != 1 {
            errs.push(FieldError::invalid(
                &cp,
                serde_json::Value::from(cidrs.to_vec()),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(c) {
                errs.push(FieldError::duplicate(&cp.index(i), c.as_str()));
            }
        }
    }
    errs
}

impl Strategy for Node {
    fn prepare_for_create(&mut self) {
        // Dynamic kubelet configuration is gone; upstream drops its fields.
        if let Some(sp) = self.spec.as_mut() {
            sp.config_source = None;
        }
        if let Some(st) = self.status.as_mut() {
            st.config = None;
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        if old
            .spec
            .as_ref()
            .and_then(|sp| sp.config_source.as_ref())
            .is_none()
        {
            if let Some(sp) = self.spec.as_mut() {
                sp.config_source = None;
            }
        }
    }

    fn set_defaults(&mut self) {
        if let Some(st) = self.status.as_mut() {
            if st.allocatable.is_none() && st.capacity.is_some() {
                st.allocatable = st.capacity.clone();
            }
            for list in [st.capacity.as_mut(), st.allocatable.as_mut()]
                .into_iter()
                .flatten()
            {
                super::qty::round_resource_list(list);
            }
        }
    }

    fn validate(&self) -> FieldErrorList {
        let meta = p("metadata");
        let mut errs =
            names::validate_object_meta(&self.metadata, false, names::name_is_dns_subdomain, &meta);
        let spec = self.spec.clone().unwrap_or_default();
        // Upstream reports node taints under `metadata.taints`.
        errs.extend(validate_taints(
            spec.taints.as_deref().unwrap_or_default(),
            &meta.child("taints"),
        ));
        errs.extend(validate_node_resources(self));
        errs.extend(validate_pod_cidrs(&spec));
        errs
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let meta = p("metadata");
        let mut errs = names::validate_object_meta_transition(&self.metadata, &old.metadata, &meta);
        let mut seen = BTreeSet::new();
        for (i, a) in self
            .status
            .iter()
            .flat_map(|st| st.addresses.iter().flatten())
            .enumerate()
        {
            if !seen.insert((a.type_.clone(), a.address.clone())) {
                errs.push(FieldError::duplicate(
                    &p("status").child("addresses").index(i),
                    jv(a),
                ));
            }
        }
        let ns = self.spec.clone().unwrap_or_default();
        let os = old.spec.clone().unwrap_or_default();
        let old_cidrs = os.pod_cidrs.clone().unwrap_or_default();
        if !old_cidrs.is_empty() && ns.pod_cidrs.clone().unwrap_or_default() != old_cidrs {
            errs.push(FieldError::forbidden(
                &p("spec").child("podCIDRs"),
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
        if !s(&os.provider_id).is_empty() && os.provider_id != ns.provider_id {
            errs.push(FieldError::forbidden(
                &p("spec").child("providerID"),
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
        if ns.external_id != os.external_id {
            errs.push(FieldError::forbidden(
                &p("spec").child("externalID"),
                "may not be updated",
            ));
        }
        errs
    }

    /// Upstream validates node status updates as full node updates (the kubelet writes them).
    fn validate_status_update(&self, old: &Self) -> FieldErrorList {
        let mut errs = self.validate_update(old);
        let meta = p("metadata");
        let spec = self.spec.clone().unwrap_or_default();
        errs.extend(validate_taints(
            spec.taints.as_deref().unwrap_or_default(),
            &meta.child("taints"),
        ));
        errs.extend(validate_node_resources(self));
        errs.extend(validate_pod_cidrs(&spec));
        errs
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![(
            "spec.unschedulable",
            self.spec
                .as_ref()
                .and_then(|sp| sp.unschedulable)
                .unwrap_or(false)
                .to_string(),
        )]
    }

    fn has_generation() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: &FieldErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn namespace_create() {
        let mut ns: Namespace = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "development"}}),
        )
        .unwrap_or_default();
        ns.prepare_for_create();
        ns.set_defaults();
        let got = serde_json::to_value(&ns).unwrap_or_default();
        assert_eq!(
            got,
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"labels": {"kubernetes.io/metadata.name": "development"}, "name": "development"},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            })
        );
        assert!(ns.validate().is_empty());
        assert_eq!(
            ns.selectable_fields(),
            vec![("status.phase", "Active".to_string())]
        );
        ns.metadata.name = Some("dev.team".into());
        assert_eq!(
            messages(&ns.validate()),
            vec!["metadata.name: Invalid value: \"dev.team\": must not contain dots"]
        );
    }

    #[test]
    fn node_rules() {
        let mut node: Node = serde_json::from_value(json!({
            "metadata": {"name": "k8s-node-1"},
            "spec": {"podCIDRs": ["10.244.1.0/24"], "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "56", "memory": "131931160Ki", "pods": "110"}}
        }))
        .unwrap_or_default();
        node.set_defaults();
        assert_eq!(
            node.status
                .as_ref()
                .and_then(|s| s.allocatable.as_ref())
                .map(|a| a.len()),
            Some(3)
        );
        assert!(
            node.validate().is_empty(),
            "{:?}",
            messages(&node.validate())
        );
        assert_eq!(
            node.selectable_fields(),
            vec![("spec.unschedulable", "false".to_string())]
        );
        let mut new = node.clone();
        if let Some(sp) = new.spec.as_mut() {
            sp.pod_cidrs = Some(vec!["10.244.2.0/24".into()]);
            sp.unschedulable = Some(true);
        }
        assert_eq!(
            messages(&new.validate_update(&node)),
            vec!["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"]
        );
        if let Some(sp) = new.spec.as_mut() {
            sp.taints = Some(vec![k8s_openapi::api::core::v1::Taint {
                key: "a".into(),
                effect: "Sometimes".into(),
                ..Default::default()
            }]);
        }
        assert!(messages(&new.validate()).contains(
            &"metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"".to_string()
        ));
        assert!(messages(&new.validate_status_update(&node))
            .contains(&"metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"".to_string()));
    }
}
