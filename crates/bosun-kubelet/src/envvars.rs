//! A container's environment, as upstream's `makeEnvironmentVariables` builds it: service
//! links (`MYSQL_SERVICE_HOST`, ...) first, then `envFrom`, then `env` (values with `$(VAR)`
//! expansion, configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef); a later name wins.
use std::collections::BTreeMap;

use bosun_api::quantity::Quantity as Qty;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};

/// A failure that upstream reports as `CreateContainerConfigError` with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

/// Upstream's service env var name: upper case, `-` → `_`.
fn svc_var(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// The Docker-links style variables for one service (upstream `envvars.FromServices`).
pub fn service_env(svc: &Service) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(spec) = &svc.spec else { return out };
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    if ip.is_empty() || ip == "None" {
        return out;
    }
    let name = svc_var(svc.metadata.name.as_deref().unwrap_or_default());
    let ports = spec.ports.clone().unwrap_or_default();
    let Some(first) = ports.first() else {
        return out;
    };
    out.push((format!("{name}_SERVICE_HOST"), ip.clone()));
    out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
    for p in &ports {
        if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!("{name}_SERVICE_PORT_{}", svc_var(pn)),
                p.port.to_string(),
            ));
        }
    }
    let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
        p.protocol.clone().unwrap_or_else(|| "TCP".into())
    };
    out.push((
        format!("{name}_PORT"),
        format!("{}://{ip}:{}", proto(first).to_lowercase(), first.port),
    ));
    for p in &ports {
        let pr = proto(p);
        let prefix = format!("{name}_PORT_{}_{}", p.port, pr.to_uppercase());
        out.push((
            prefix.clone(),
            format!("{}://{ip}:{}", pr.to_lowercase(), p.port),
        ));
        out.push((format!("{prefix}_PROTO"), pr.to_lowercase()));
        out.push((format!("{prefix}_PORT"), p.port.to_string()));
        out.push((format!("{prefix}_ADDR"), ip.clone()));
    }
    out
}

/// Upstream's `$(VAR)` expansion: a defined name is replaced, `$$` escapes, anything else is
/// left as written.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == b'(' {
                if let Some(end) = s[i + 2..].find(')') {
                    let name = &s[i + 2..i + 2 + end];
                    if let Some(v) = vars.get(name) {
                        out.push_str(v);
                    } else {
                        out.push_str(&s[i..i + 3 + end]);
                    }
                    i += 3 + end;
                    continue;
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or('$');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Value of a downward-API `fieldRef` path (env and downwardAPI volumes share it).
pub fn field_ref(
    pod: &Pod,
    path: &str,
    host_ip: &str,
    pod_ip: Option<&str>,
) -> Result<String, ConfigError> {
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let keyed = |prefix: &str, map: &Option<BTreeMap<String, String>>| -> Option<String> {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(
            map.as_ref()
                .and_then(|m| m.get(key).cloned())
                .unwrap_or_default(),
        )
    };
    if let Some(v) = keyed("metadata.labels['", &meta.labels) {
        return Ok(v);
    }
    if let Some(v) = keyed("metadata.annotations['", &meta.annotations) {
        return Ok(v);
    }
    let map_text = |m: &Option<BTreeMap<String, String>>| {
        m.as_ref()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => map_text(&meta.labels),
        "metadata.annotations" => map_text(&meta.annotations),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        "status.podIP" | "status.podIPs" => pod_ip.unwrap_or_default().to_string(),
        other => return Err(ConfigError(format!("unsupported fieldRef path {other:?}"))),
    })
}

/// Value of a `resourceFieldRef` for `container` (a missing limit is the node's allocatable).
pub fn resource_field_ref(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
    allocatable: &BTreeMap<String, String>,
) -> Result<String, ConfigError> {
    let res = container.resources.clone().unwrap_or_default();
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| ConfigError(format!("unsupported resourceFieldRef {resource:?}")))?;
    let from = match kind {
        "limits" => res
            .limits
            .as_ref()
            .and_then(|m| m.get(name))
            .map(|q| q.0.clone()),
        "requests" => res
            .requests
            .as_ref()
            .and_then(|m| m.get(name))
            .map(|q| q.0.clone()),
        _ => {
            return Err(ConfigError(format!(
                "unsupported resourceFieldRef {resource:?}"
            )))
        }
    };
    let value = match (from, kind) {
        (Some(v), _) => v,
        (None, "limits") => allocatable.get(name).cloned().unwrap_or_else(|| "0".into()),
        (None, _) => "0".into(),
    };
    let q = Qty::parse(&value).map_err(|e| ConfigError(format!("{resource}: {e}")))?;
    let div = Qty::parse(divisor.filter(|d| !d.is_empty()).unwrap_or("1"))
        .map_err(|e| ConfigError(format!("divisor: {e}")))?;
    let ceil_div = |a: i64, b: i64| if b == 0 { 0 } else { (a + b - 1) / b };
    Ok(if name == "cpu" {
        ceil_div(q.milli_value(), div.milli_value()).to_string()
    } else {
        ceil_div(q.value(), div.value()).to_string()
    })
}

/// How long a container start waits for the first list of Services before it asks the API
/// itself.
const SERVICES_SYNC_WAIT: Duration = Duration::from_secs(5);

/// Every Service of the cluster, kept by one watch, as upstream's kubelet keeps its service
/// lister: the service environment of a container comes from memory instead of two LISTs per
/// container start (which, 30 pods at once, queued behind each other on a busy server).
#[derive(Clone)]
pub(crate) struct ServiceCache {
    store: Store<Service>,
}

impl ServiceCache {
    /// Starts the watch; it runs until the returned task is aborted.
    pub(crate) fn start(client: kube::Client) -> (Self, tokio::task::JoinHandle<()>) {
        let (store, writer) = reflector::store::<Service>();
        let task = tokio::spawn(
            reflector::reflector(
                writer,
                watcher(Api::<Service>::all(client), watcher::Config::default()).default_backoff(),
            )
            .for_each(|_| futures::future::ready(())),
        );
        (ServiceCache { store }, task)
    }

    /// The Services of `ns` sorted by name (as a LIST returns them), once the first list is
    /// in; `None` if it is not within [`SERVICES_SYNC_WAIT`].
    async fn in_namespace(&self, ns: &str) -> Option<Vec<Service>> {
        tokio::time::timeout(SERVICES_SYNC_WAIT, self.store.wait_until_ready())
            .await
            .ok()?
            .ok()?;
        let mut out: Vec<Service> = self
            .store
            .state()
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
            .map(|s| Service::clone(s))
            .collect();
        out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Some(out)
    }
}

/// Everything [`build`] needs from the API, fetched once per container start.
#[derive(Debug, Default)]
pub struct Sources {
    pub services: Vec<Service>,
    pub config_maps: BTreeMap<String, Option<ConfigMap>>,
    pub secrets: BTreeMap<String, Option<Secret>>,
}

impl Sources {
    /// Fetches what `container`'s env names: services (unless `enableServiceLinks: false`;
    /// the `kubernetes` service of `default` always), config maps and secrets.
    /// Services come from `cache` when it has them, else from the API.
    pub(crate) async fn fetch(
        client: &kube::Client,
        cache: Option<&ServiceCache>,
        pod: &Pod,
        container: &Container,
    ) -> Result<Sources, ConfigError> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mut s = Sources::default();
        let links = pod
            .spec
            .as_ref()
            .and_then(|p| p.enable_service_links)
            .unwrap_or(true);
        let list = |ns: &str| {
            let api: Api<Service> = Api::namespaced(client.clone(), ns);
            let ns = ns.to_string();
            async move {
                if let Some(c) = cache {
                    if let Some(items) = c.in_namespace(&ns).await {
                        return Ok(items);
                    }
                }
                api.list(&ListParams::default()).await.map(|l| l.items)
            }
        };
        if links {
            s.services = list(ns)
                .await
                .map_err(|e| ConfigError(format!("listing services: {e}")))?;
        }
        if ns != "default" || !links {
            if let Ok(l) = list("default").await {
                s.services.extend(
                    l.into_iter()
                        .filter(|x| x.metadata.name.as_deref() == Some("kubernetes")),
                );
            }
        }
        let mut cms = Vec::new();
        let mut secrets = Vec::new();
        for e in container.env_from.iter().flatten() {
            if let Some(c) = &e.config_map_ref {
                cms.push(c.name.clone());
            }
            if let Some(c) = &e.secret_ref {
                secrets.push(c.name.clone());
            }
        }
        for e in container.env.iter().flatten() {
            if let Some(vf) = &e.value_from {
                if let Some(c) = &vf.config_map_key_ref {
                    cms.push(c.name.clone());
                }
                if let Some(c) = &vf.secret_key_ref {
                    secrets.push(c.name.clone());
                }
            }
        }
        let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        for n in cms {
            if s.config_maps.contains_key(&n) {
                continue;
            }
            let v = cm_api
                .get_opt(&n)
                .await
                .map_err(|e| ConfigError(format!("getting configmap {n:?}: {e}")))?;
            s.config_maps.insert(n, v);
        }
        let sec_api: Api<Secret> = Api::namespaced(client.clone(), ns);
        for n in secrets {
            if s.secrets.contains_key(&n) {
                continue;
            }
            let v = sec_api
                .get_opt(&n)
                .await
                .map_err(|e| ConfigError(format!("getting secret {n:?}: {e}")))?;
            s.secrets.insert(n, v);
        }
        Ok(s)
    }
}

fn secret_value(s: &Secret, key: &str) -> Option<String> {
    if let Some(v) = s.data.as_ref().and_then(|d| d.get(key)) {
        return Some(String::from_utf8_lossy(&v.0).into_owned());
    }
    s.string_data.as_ref().and_then(|d| d.get(key).cloned())
}

/// The container's environment, in order (`NAME=value`).
pub fn build(
    pod: &Pod,
    container: &Container,
    src: &Sources,
    host_ip: &str,
    pod_ip: Option<&str>,
    allocatable: &BTreeMap<String, String>,
) -> Result<Vec<String>, ConfigError> {
    let mut order: Vec<String> = Vec::new();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let set =
        |order: &mut Vec<String>, vars: &mut BTreeMap<String, String>, k: String, v: String| {
            if !vars.contains_key(&k) {
                order.push(k.clone());
            }
            vars.insert(k, v);
        };
    for svc in &src.services {
        for (k, v) in service_env(svc) {
            set(&mut order, &mut vars, k, v);
        }
    }
    for ef in container.env_from.iter().flatten() {
        let prefix = ef.prefix.clone().unwrap_or_default();
        if let Some(r) = &ef.config_map_ref {
            match src.config_maps.get(&r.name).and_then(|c| c.as_ref()) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(&mut order, &mut vars, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(ConfigError(format!("configmap {:?} not found", r.name))),
            }
        }
        if let Some(r) = &ef.secret_ref {
            match src.secrets.get(&r.name).and_then(|c| c.as_ref()) {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        set(
                            &mut order,
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(ConfigError(format!("secret {:?} not found", r.name))),
            }
        }
    }
    for e in container.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            Some(expand(v, &vars))
        } else if let Some(vf) = &e.value_from {
            if let Some(r) = &vf.config_map_key_ref {
                match src.config_maps.get(&r.name).and_then(|c| c.as_ref()) {
                    Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => Some(v.clone()),
                        None if r.optional == Some(true) => None,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {} in ConfigMap {}/{}",
                                r.key,
                                pod.metadata.namespace.as_deref().unwrap_or_default(),
                                r.name
                            )))
                        }
                    },
                    None if r.optional == Some(true) => None,
                    None => return Err(ConfigError(format!("configmap {:?} not found", r.name))),
                }
            } else if let Some(r) = &vf.secret_key_ref {
                match src.secrets.get(&r.name).and_then(|c| c.as_ref()) {
                    Some(s) => match secret_value(s, &r.key) {
                        Some(v) => Some(v),
                        None if r.optional == Some(true) => None,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {} in Secret {}/{}",
                                r.key,
                                pod.metadata.namespace.as_deref().unwrap_or_default(),
                                r.name
                            )))
                        }
                    },
                    None if r.optional == Some(true) => None,
                    None => return Err(ConfigError(format!("secret {:?} not found", r.name))),
                }
            } else if let Some(r) = &vf.field_ref {
                Some(field_ref(pod, &r.field_path, host_ip, pod_ip)?)
            } else if let Some(r) = &vf.resource_field_ref {
                let c = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                    Some(n) => pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.containers.iter().find(|c| c.name == n))
                        .unwrap_or(container),
                    None => container,
                };
                Some(resource_field_ref(
                    c,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                    allocatable,
                )?)
            } else {
                None
            }
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            set(&mut order, &mut vars, e.name.clone(), v);
        }
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = vars.get(&k).cloned().unwrap_or_default();
            format!("{k}={v}")
        })
        .collect())
}

/// `command`/`args` with `$(VAR)` expanded from the container's env.
pub fn expand_args(args: &Option<Vec<String>>, env: &[String]) -> Option<Vec<String>> {
    let vars: BTreeMap<String, String> = env
        .iter()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    args.as_ref()
        .map(|a| a.iter().map(|s| expand(s, &vars)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion_follows_upstream() {
        let mut v = BTreeMap::new();
        v.insert("A".to_string(), "x".to_string());
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &v), "x-$(B)-$(A)-$");
    }

    #[test]
    fn service_links() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "my-sql"},
            "spec": {"clusterIP": "10.96.0.5", "ports": [{"name": "db", "port": 3306, "protocol": "TCP"}]}
        }))
        .unwrap();
        let env: BTreeMap<_, _> = service_env(&svc).into_iter().collect();
        assert_eq!(env["MY_SQL_SERVICE_HOST"], "10.96.0.5");
        assert_eq!(env["MY_SQL_SERVICE_PORT"], "3306");
        assert_eq!(env["MY_SQL_SERVICE_PORT_DB"], "3306");
        assert_eq!(env["MY_SQL_PORT"], "tcp://10.96.0.5:3306");
        assert_eq!(env["MY_SQL_PORT_3306_TCP_ADDR"], "10.96.0.5");
        assert_eq!(env["MY_SQL_PORT_3306_TCP_PROTO"], "tcp");
    }

    #[test]
    fn env_sources() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "c", "image": "i",
                "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "B", "value": "$(A)2"},
                    {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                    {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
                    {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                ],
                "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
            }]}
        }))
        .unwrap();
        let mut src = Sources::default();
        src.config_maps.insert(
            "cm".into(),
            Some(
                serde_json::from_value(json!({"metadata": {"name": "cm"}, "data": {"k": "v"}}))
                    .unwrap(),
            ),
        );
        src.secrets.insert(
            "s".into(),
            Some(
                serde_json::from_value(
                    json!({"metadata": {"name": "s"}, "data": {"pw": "aHVudGVyMg=="}}),
                )
                .unwrap(),
            ),
        );
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        let env = build(&pod, &c, &src, "10.0.0.1", None, &BTreeMap::new()).unwrap();
        for want in [
            "CM_k=v",
            "A=1",
            "B=12",
            "NAME=p",
            "APP=web",
            "MEM=64",
            "CPU=1",
            "K=v",
            "S=hunter2",
        ] {
            assert!(
                env.contains(&want.to_string()),
                "{want} missing from {env:?}"
            );
        }
        let mut missing = Sources::default();
        missing.config_maps.insert("cm".into(), None);
        missing.secrets.insert("s".into(), None);
        let err = build(&pod, &c, &missing, "", None, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.0, "configmap \"cm\" not found");
    }
}
