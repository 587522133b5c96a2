//! Discovery documents built from the resource table: `/version`, `/api`, `/apis`, the
//! per-group-version `APIResourceList`s, and the aggregated `APIGroupDiscoveryList`
//! (apidiscovery.k8s.io/v2) that kubectl asks for first.

use bosun_api::resources::{self, ResourceDef};
use serde_json::{json, Value};

/// The Kubernetes version bosun speaks.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "34";

pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "emulationMajor": KUBE_MAJOR,
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": KUBE_MAJOR,
        "minCompatibilityMinor": "33",
        "gitVersion": format!("v1.34.0+bosun-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("linux/{}", if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" }),
    })
}

pub fn api_versions(advertise: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": advertise}],
    })
}

fn group_versions(group: &str, versions: &[&str]) -> Value {
    json!({
        "name": group,
        "versions": versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect::<Vec<_>>(),
        "preferredVersion": {"groupVersion": format!("{group}/{}", versions[0]), "version": versions[0]},
    })
}

pub fn api_group_list() -> Value {
    let mut groups: Vec<Value> = resources::groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_versions(g, &vs))
        .collect();
    groups.push(crate::metrics_api::group_entry());
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(group: &str) -> Option<Value> {
    if group == crate::metrics_api::GROUP {
        let mut v = crate::metrics_api::group_entry();
        v["kind"] = json!("APIGroup");
        v["apiVersion"] = json!("v1");
        return Some(v);
    }
    let (g, vs) = resources::groups()
        .into_iter()
        .find(|(g, _)| *g == group && !g.is_empty())?;
    let mut v = group_versions(g, &vs);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

fn verbs(def: &ResourceDef) -> Vec<&'static str> {
    let mut v: Vec<&str> = def.verbs.iter().map(|v| v.as_str()).collect();
    v.sort_unstable();
    v
}

/// A short stable hash (upstream's storageVersionHash is 8 bytes of a sha256, base64).
fn storage_version_hash(def: &ResourceDef) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (def.storage_group, def.storage_version, def.kind).hash(&mut h);
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h.finish().to_be_bytes())
}

pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if group == crate::metrics_api::GROUP {
        return (version == crate::metrics_api::VERSION).then(crate::metrics_api::resource_list);
    }
    let defs: Vec<&ResourceDef> = resources::in_group_version(group, version).collect();
    if defs.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for d in &defs {
        let mut r = json!({
            "name": d.plural,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": verbs(d),
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        if d.has_verb(resources::Verb::List) {
            r["storageVersionHash"] = json!(storage_version_hash(d));
        }
        out.push(r);
        for s in d.subresources {
            let mut sr = json!({
                "name": format!("{}/{}", d.plural, s.name),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": if s.kind.is_empty() { d.kind } else { s.kind },
                "verbs": s.verbs,
            });
            if !s.group.is_empty() {
                sr["group"] = json!(s.group);
                sr["version"] = json!(s.version);
            }
            out.push(sr);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}),
    )
}

/// The aggregated discovery document for `/api` (core) or `/apis` (every named group).
pub fn aggregated(core: bool, beta: bool) -> Value {
    let mut items = Vec::new();
    for (group, versions) in resources::groups() {
        if group.is_empty() != core {
            continue;
        }
        let mut vs = Vec::new();
        for v in &versions {
            let mut res = Vec::new();
            for d in resources::in_group_version(group, v) {
                let mut r = json!({
                    "resource": d.plural,
                    "responseKind": {"group": d.group, "version": d.version, "kind": d.kind},
                    "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": d.singular,
                    "verbs": verbs(d),
                });
                if !d.short_names.is_empty() {
                    r["shortNames"] = json!(d.short_names);
                }
                if !d.categories.is_empty() {
                    r["categories"] = json!(d.categories);
                }
                let subs: Vec<Value> = d
                    .subresources
                    .iter()
                    .map(|s| {
                        let (g, ver, k) = if s.kind.is_empty() { (d.group, d.version, d.kind) } else { (s.group, s.version, s.kind) };
                        json!({"subresource": s.name, "responseKind": {"group": g, "version": ver, "kind": k}, "verbs": s.verbs})
                    })
                    .collect();
                if !subs.is_empty() {
                    r["subresources"] = Value::Array(subs);
                }
                res.push(r);
            }
            vs.push(json!({"version": v, "resources": res, "freshness": "Current"}));
        }
        let mut item = json!({"metadata": {"creationTimestamp": null}, "versions": vs});
        if !group.is_empty() {
            item["metadata"]["name"] = json!(group);
        }
        items.push(item);
    }
    if !core {
        items.push(crate::metrics_api::aggregated_item());
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": if beta { "apidiscovery.k8s.io/v2beta1" } else { "apidiscovery.k8s.io/v2" },
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_has_pods_with_short_names_and_subresources() {
        let l = resource_list("", "v1").expect("core");
        let res = l["resources"].as_array().expect("array");
        let pods = res.iter().find(|r| r["name"] == "pods").expect("pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert!(res.iter().any(|r| r["name"] == "pods/status"));
        assert!(resource_list("nope", "v1").is_none());
    }

    #[test]
    fn aggregated_discovery_lists_groups() {
        let a = aggregated(false, false);
        let names: Vec<&str> = a["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["metadata"]["name"].as_str())
            .collect();
        assert!(
            names.contains(&"apps")
                && names.contains(&"extensions")
                && names.contains(&"autoscaling")
                && names.contains(&"metrics.k8s.io")
        );
        let core = aggregated(true, false);
        assert_eq!(core["items"].as_array().map(Vec::len), Some(1));
    }
}
