//! Resource types from the server's aggregated discovery (`/api`, `/apis`: two requests), and
//! kubectl's resolution of what a user types (`po`, `pods`, `deploy.apps`, `Deployment`,
//! `rc,svc`, `all`) or what a manifest names (apiVersion + kind).

use crate::error::{Error, Result};

/// One resource type the server serves, at its preferred version.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resource {
    pub group: String,
    pub version: String,
    /// The plural (URL) name: `pods`.
    pub plural: String,
    pub kind: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub subresources: Vec<String>,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `/api/v1[/namespaces/NS]/pods`; `ns` is ignored for cluster-scoped types.
    pub fn collection_path(&self, ns: Option<&str>) -> String {
        let mut p = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        if self.namespaced {
            if let Some(ns) = ns {
                p.push_str("/namespaces/");
                p.push_str(ns);
            }
        }
        p.push('/');
        p.push_str(&self.plural);
        p
    }

    pub fn object_path(&self, ns: Option<&str>, name: &str) -> String {
        format!("{}/{}", self.collection_path(ns), name)
    }

    /// `pod`, `deployment.apps`: kubectl's kind-qualified name prefix (`-o name`, `get all`).
    pub fn kind_prefix(&self) -> String {
        let k = self.kind.to_lowercase();
        if self.group.is_empty() {
            k
        } else {
            format!("{k}.{}", self.group)
        }
    }

    /// `pods`, `deployments.apps`: as kubectl names a type in messages.
    pub fn plural_group(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Every resource type of the server, core group first, groups in the server's order.
pub(crate) struct Discovery {
    pub resources: Vec<Resource>,
}

impl Discovery {
    pub async fn load(client: &kube::Client) -> Result<Discovery> {
        let core = client.list_core_api_versions_aggregated().await?;
        let groups = client.list_api_groups_aggregated().await?;
        let mut resources = Vec::new();
        for g in core.items.into_iter().chain(groups.items) {
            let group = g.metadata.and_then(|m| m.name).unwrap_or_default();
            // The first version listed is the preferred one; later versions only add types
            // the preferred one lacks.
            for v in g.versions {
                let version = v.version.unwrap_or_default();
                for r in v.resources {
                    let plural = r.resource.unwrap_or_default();
                    if plural.is_empty()
                        || resources
                            .iter()
                            .any(|x: &Resource| x.group == group && x.plural == plural)
                    {
                        continue;
                    }
                    let kind = r.response_kind.and_then(|k| k.kind).unwrap_or_default();
                    resources.push(Resource {
                        group: group.clone(),
                        version: version.clone(),
                        singular: r
                            .singular_resource
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| kind.to_lowercase()),
                        plural,
                        kind,
                        short_names: r.short_names,
                        categories: r.categories,
                        namespaced: r.scope.as_deref() == Some("Namespaced"),
                        verbs: r.verbs,
                        subresources: r
                            .subresources
                            .into_iter()
                            .filter_map(|s| s.subresource)
                            .collect(),
                    });
                }
            }
        }
        Ok(Discovery { resources })
    }

    /// One type as typed on the command line: plural, singular, short name or kind, optionally
    /// `.group` or `.version.group` qualified.
    pub fn resolve(&self, typed: &str) -> Result<Resource> {
        let lower = typed.to_lowercase();
        let (name, qual) = match lower.split_once('.') {
            Some((n, q)) => (n.to_string(), Some(q.to_string())),
            None => (lower.clone(), None),
        };
        let matches_name = |r: &Resource| {
            r.plural == name
                || r.singular == name
                || r.kind.to_lowercase() == name
                || r.short_names.iter().any(|s| s.to_lowercase() == name)
        };
        let found = self.resources.iter().find(|r| {
            matches_name(r)
                && match &qual {
                    None => true,
                    Some(q) => {
                        *q == r.group
                            || *q == format!("{}.{}", r.version, r.group)
                            || (r.group.is_empty() && *q == r.version)
                    }
                }
        });
        found.cloned().ok_or_else(|| {
            Error::usage(format!(
                "the server doesn't have a resource type \"{typed}\""
            ))
        })
    }

    /// `rc,svc` or a category (`all`): the types in the order kubectl prints them.
    pub fn expand(&self, typed: &str) -> Result<Vec<Resource>> {
        let mut out: Vec<Resource> = Vec::new();
        for t in typed.split(',').filter(|t| !t.is_empty()) {
            let by_category: Vec<&Resource> = self
                .resources
                .iter()
                .filter(|r| r.categories.iter().any(|c| c == t))
                .collect();
            let found = if !by_category.is_empty() && self.resolve(t).is_err() {
                by_category.into_iter().cloned().collect()
            } else {
                vec![self.resolve(t)?]
            };
            for r in found {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The type a manifest names.
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Result<Resource> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        self.resources
            .iter()
            .find(|r| r.group == group && r.kind == kind && r.version == version)
            .or_else(|| {
                self.resources
                    .iter()
                    .find(|r| r.group == group && r.kind == kind)
            })
            .map(|r| Resource {
                version: version.to_string(),
                ..r.clone()
            })
            .ok_or_else(|| {
                Error::usage(format!(
                    "resource mapping not found: no matches for kind \"{kind}\" in version \
                     \"{api_version}\"; ensure CRDs are installed first"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(group: &str, plural: &str, kind: &str, short: &[&str], cats: &[&str]) -> Resource {
        Resource {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            kind: kind.into(),
            singular: kind.to_lowercase(),
            short_names: short.iter().map(|s| s.to_string()).collect(),
            categories: cats.iter().map(|s| s.to_string()).collect(),
            namespaced: true,
            verbs: vec![],
            subresources: vec![],
        }
    }

    #[test]
    fn resolves_like_kubectl() {
        let d = Discovery {
            resources: vec![
                r("", "pods", "Pod", &["po"], &["all"]),
                r("", "services", "Service", &["svc"], &["all"]),
                r("", "events", "Event", &["ev"], &[]),
                r("apps", "deployments", "Deployment", &["deploy"], &["all"]),
                r("events.k8s.io", "events", "Event", &["ev"], &[]),
            ],
        };
        assert_eq!(d.resolve("po").unwrap().plural, "pods");
        assert_eq!(d.resolve("Pod").unwrap().plural, "pods");
        assert_eq!(d.resolve("deploy").unwrap().group, "apps");
        assert_eq!(d.resolve("deployments.apps").unwrap().group, "apps");
        assert_eq!(d.resolve("deployment.v1.apps").unwrap().group, "apps");
        assert_eq!(d.resolve("events").unwrap().group, "");
        assert_eq!(
            d.resolve("events.events.k8s.io").unwrap().group,
            "events.k8s.io"
        );
        assert!(d
            .resolve("foo")
            .unwrap_err()
            .to_string()
            .contains("doesn't have a resource type \"foo\""));
        let all: Vec<String> = d
            .expand("all")
            .unwrap()
            .iter()
            .map(|r| r.plural.clone())
            .collect();
        assert_eq!(all, ["pods", "services", "deployments"]);
        let two: Vec<String> = d
            .expand("svc,po")
            .unwrap()
            .iter()
            .map(|r| r.plural.clone())
            .collect();
        assert_eq!(two, ["services", "pods"]);
        assert_eq!(
            d.resource_path_example(),
            "/apis/apps/v1/namespaces/ns/deployments/x"
        );
    }

    impl Discovery {
        fn resource_path_example(&self) -> String {
            self.resolve("deploy").unwrap().object_path(Some("ns"), "x")
        }
    }
}
