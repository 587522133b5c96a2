//! Registry credentials of a pod: its `imagePullSecrets`, or, when it names none, those of its
//! service account (what upstream's ServiceAccount admission plugin copies into the pod), read
//! from the API at pull time as the kubelet's `getPullSecretsForPod` does. Secrets of type
//! `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`) and `kubernetes.io/dockercfg`
//! (`.dockercfg`) count; a missing or malformed secret is skipped with a warning, and the pull
//! goes on with the others (upstream's behaviour).
use bosun_runtime::image::registry::Credential;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::Api;

const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
const DOCKER_CFG: &str = "kubernetes.io/dockercfg";

/// The credentials one secret holds; why it holds none otherwise.
pub(crate) fn credentials_of(secret: &Secret) -> Result<Vec<Credential>, String> {
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let key = match secret.type_.as_deref() {
        Some(DOCKER_CONFIG_JSON) => ".dockerconfigjson",
        Some(DOCKER_CFG) => ".dockercfg",
        other => {
            return Err(format!(
                "secret {name:?} is of type {:?}, not {DOCKER_CONFIG_JSON} or {DOCKER_CFG}",
                other.unwrap_or("Opaque")
            ))
        }
    };
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| format!("secret {name:?} has no {key} key"))?;
    Credential::from_docker_config(&data.0).map_err(|e| format!("secret {name:?}: {e}"))
}

/// The pod's registry credentials, and a warning per secret that could not be used.
pub(crate) async fn for_pod(client: &kube::Client, pod: &Pod) -> (Vec<Credential>, Vec<String>) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let spec = pod.spec.as_ref();
    let mut names: Vec<String> = spec
        .and_then(|s| s.image_pull_secrets.as_ref())
        .into_iter()
        .flatten()
        .map(|r| r.name.clone())
        .filter(|n| !n.is_empty())
        .collect();
    let mut warnings = Vec::new();
    if names.is_empty() {
        let sa = spec
            .and_then(|s| s.service_account_name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        match Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .get_opt(&sa)
            .await
        {
            Ok(Some(sa)) => names.extend(
                sa.image_pull_secrets
                    .into_iter()
                    .flatten()
                    .map(|r| r.name)
                    .filter(|n| !n.is_empty()),
            ),
            Ok(None) => {}
            Err(e) => warnings.push(format!("service account {sa:?}: {e}")),
        }
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut creds = Vec::new();
    for name in names {
        match secrets.get_opt(&name).await {
            Ok(Some(s)) => match credentials_of(&s) {
                Ok(c) => creds.extend(c),
                Err(w) => warnings.push(w),
            },
            Ok(None) => warnings.push(format!("secret {name:?} not found")),
            Err(e) => warnings.push(format!("secret {name:?}: {e}")),
        }
    }
    (creds, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    fn secret(ty: &str, key: &str, value: &serde_json::Value) -> Secret {
        let raw = serde_json::to_vec(value).expect("json");
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        serde_json::from_value(json!({
            "metadata": {"name": "regcred"},
            "type": ty,
            "data": {key: b64},
        }))
        .expect("secret")
    }

    #[test]
    fn reads_dockerconfigjson_and_dockercfg_secrets() {
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p");
        let s = secret(
            DOCKER_CONFIG_JSON,
            ".dockerconfigjson",
            &json!({"auths": {"reg.example:5000": {"auth": auth}}}),
        );
        let c = credentials_of(&s).expect("credentials");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].registry, "reg.example:5000");
        assert_eq!((c[0].username.as_str(), c[0].password.as_str()), ("u", "p"));

        let s = secret(
            DOCKER_CFG,
            ".dockercfg",
            &json!({"reg.example": {"username": "a", "password": "b"}}),
        );
        let c = credentials_of(&s).expect("credentials");
        assert_eq!((c[0].username.as_str(), c[0].password.as_str()), ("a", "b"));
    }

    #[test]
    fn refuses_other_types_and_missing_keys() {
        let s = secret("Opaque", ".dockerconfigjson", &json!({"auths": {}}));
        let e = credentials_of(&s).expect_err("opaque");
        assert!(e.contains("regcred") && e.contains("Opaque"), "{e}");
        let s = secret(DOCKER_CONFIG_JSON, ".dockercfg", &json!({}));
        let e = credentials_of(&s).expect_err("wrong key");
        assert!(e.contains(".dockerconfigjson"), "{e}");
    }
}
