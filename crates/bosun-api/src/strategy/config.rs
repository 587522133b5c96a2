//! ConfigMaps, Secrets and ServiceAccounts: keys, sizes, secret types and immutability as
//! upstream's `ValidateConfigMap*`, `ValidateSecret*` and `ValidateServiceAccount*`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::ByteString;

use super::common::{immutable, p, s};
use super::Strategy;
use crate::field::{FieldError, FieldErrorList, Path};
use crate::names;

/// Upstream's `MaxSecretSize` (also the ConfigMap limit).
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

fn key_errors(key: &str, path: &Path) -> FieldErrorList {
    names::is_config_map_key(key)
        .into_iter()
        .map(|m| FieldError::invalid(path, key, m))
        .collect()
}

fn validate_config_map(cm: &ConfigMap) -> FieldErrorList {
    let mut errs = names::validate_object_meta(
        &cm.metadata,
        true,
        names::name_is_dns_subdomain,
        &p("metadata"),
    );
    let mut total = 0usize;
    let binary = cm.binary_data.clone().unwrap_or_default();
    for (k, v) in cm.data.iter().flatten() {
        let kp = p("data").key(k);
        errs.extend(key_errors(k, &kp));
        if binary.contains_key(k) {
            errs.push(FieldError::invalid(
                &kp,
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.len();
    }
    for (k, v) in &binary {
        errs.extend(key_errors(k, &p("binaryData").key(k)));
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&Path::root(""), MAX_SECRET_SIZE));
    }
    errs
}

impl Strategy for ConfigMap {
    fn validate(&self) -> FieldErrorList {
        validate_config_map(self)
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        if old.immutable == Some(true) {
            if self.immutable != Some(true) {
                errs.push(FieldError::forbidden(
                    &p("immutable"),
                    "field is immutable when `immutable` is set",
                ));
            }
            if self.data != old.data {
                errs.push(FieldError::forbidden(
                    &p("data"),
                    "field is immutable when `immutable` is set",
                ));
            }
            if self.binary_data != old.binary_data {
                errs.push(FieldError::forbidden(
                    &p("binaryData"),
                    "field is immutable when `immutable` is set",
                ));
            }
        }
        errs
    }

    fn has_generation() -> bool {
        false
    }
}

// ------------------------------------------------------------------------------ Secret

fn validate_secret(sec: &Secret) -> FieldErrorList {
    let mut errs = names::validate_object_meta(
        &sec.metadata,
        true,
        names::name_is_dns_subdomain,
        &p("metadata"),
    );
    let data_path = p("data");
    let empty = BTreeMap::new();
    let data = sec.data.as_ref().unwrap_or(&empty);
    let mut total = 0usize;
    for (k, v) in data {
        errs.extend(key_errors(k, &data_path.key(k)));
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_SECRET_SIZE));
    }
    let json_key = |key: &str, errs: &mut FieldErrorList| match data.get(key) {
        None => errs.push(FieldError::required(&data_path.key(key), "")),
        Some(v) => {
            if let Err(e) =
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&v.0)
            {
                errs.push(FieldError::invalid(
                    &data_path.key(key),
                    "<secret contents redacted>",
                    e.to_string(),
                ));
            }
        }
    };
    match s(&sec.type_) {
        "kubernetes.io/service-account-token" => {
            let name = sec
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"));
            if name.is_none_or(|n| n.is_empty()) {
                errs.push(FieldError::required(
                    &p("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => json_key(".dockercfg", &mut errs),
        "kubernetes.io/dockerconfigjson" => json_key(".dockerconfigjson", &mut errs),
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            errs.push(FieldError::required(&data_path.key("username"), ""));
            errs.push(FieldError::required(&data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.0.is_empty()) => {
            errs.push(FieldError::required(&data_path.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !data.contains_key(key) {
                    errs.push(FieldError::required(&data_path.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

impl Strategy for Secret {
    fn set_defaults(&mut self) {
        if s(&self.type_).is_empty() {
            self.type_ = Some("Opaque".into());
        }
        // The v1 conversion folds `stringData` into `data` and never stores it.
        if let Some(sd) = self.string_data.take() {
            let data = self.data.get_or_insert_with(BTreeMap::new);
            for (k, v) in sd {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
    }

    fn validate(&self) -> FieldErrorList {
        validate_secret(self)
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        let mut errs =
            names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"));
        errs.extend(immutable(
            &s(&self.type_).to_string(),
            &s(&old.type_).to_string(),
            &p("type"),
        ));
        if old.immutable == Some(true) {
            if self.immutable != Some(true) {
                errs.push(FieldError::forbidden(
                    &p("immutable"),
                    "field is immutable when `immutable` is set",
                ));
            }
            if self.data != old.data {
                errs.push(FieldError::forbidden(
                    &p("data"),
                    "field is immutable when `immutable` is set",
                ));
            }
        }
        errs
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![("type", s(&self.type_).to_string())]
    }

    fn has_generation() -> bool {
        false
    }
}

// ---------------------------------------------------------------------- ServiceAccount

impl Strategy for ServiceAccount {
    fn validate(&self) -> FieldErrorList {
        names::validate_object_meta(
            &self.metadata,
            true,
            names::name_is_dns_subdomain,
            &p("metadata"),
        )
    }

    fn validate_update(&self, old: &Self) -> FieldErrorList {
        names::validate_object_meta_transition(&self.metadata, &old.metadata, &p("metadata"))
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
    fn config_map_keys_and_immutability() {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "cfg", "namespace": "default"},
            "data": {"good.key": "v", "bad key": "v"}
        }))
        .unwrap_or_default();
        let errs = messages(&cm.validate());
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters"));
        let mut old = cm.clone();
        old.data = Some(BTreeMap::from([("a".into(), "1".into())]));
        old.immutable = Some(true);
        let mut new = old.clone();
        new.data = Some(BTreeMap::from([("a".into(), "2".into())]));
        assert_eq!(
            messages(&new.validate_update(&old)),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
    }

    #[test]
    fn secret_defaults_and_types() {
        let mut sec: Secret = serde_json::from_value(json!({
            "metadata": {"name": "creds", "namespace": "default"},
            "stringData": {"password": "123456"}
        }))
        .unwrap_or_default();
        sec.set_defaults();
        let got = serde_json::to_value(&sec).unwrap_or_default();
        assert_eq!(got["type"], "Opaque");
        assert_eq!(got["data"]["password"], "MTIzNDU2");
        assert_eq!(got.get("stringData"), None);
        assert!(sec.validate().is_empty());
        assert_eq!(
            sec.selectable_fields(),
            vec![("type", "Opaque".to_string())]
        );

        let mut tls = sec.clone();
        tls.type_ = Some("kubernetes.io/tls".into());
        assert_eq!(
            messages(&tls.validate()),
            vec![
                "data[tls.crt]: Required value",
                "data[tls.key]: Required value"
            ]
        );
        assert_eq!(
            messages(&tls.validate_update(&sec)),
            vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }
}
