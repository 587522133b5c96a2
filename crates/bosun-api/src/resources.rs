//! The resource table: every kind bosun serves, with its group, version, plural, scope,
//! verbs, short names, categories and subresources, as upstream's discovery shows them.

/// An API verb as discovery lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Create,
    Delete,
    DeleteCollection,
    Get,
    List,
    Patch,
    Update,
    Watch,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Patch => "patch",
            Verb::Update => "update",
            Verb::Watch => "watch",
        }
    }
}

use Verb::*;

/// Every verb of an ordinary resource.
pub const ALL_VERBS: &[Verb] = &[
    Create,
    Delete,
    DeleteCollection,
    Get,
    List,
    Patch,
    Update,
    Watch,
];
/// Namespaces have no deletecollection.
pub const NAMESPACE_VERBS: &[Verb] = &[Create, Delete, Get, List, Patch, Update, Watch];
/// `status` and `scale` subresources.
pub const SUBRESOURCE_VERBS: &[Verb] = &[Get, Patch, Update];

/// A subresource of a resource (`pods/status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubresourceDef {
    pub name: &'static str,
    /// The kind the subresource takes and returns (`Scale` for scale, the parent kind for
    /// status).
    pub kind: &'static str,
    /// The group and version of that kind when it differs from the parent's (`Scale` is
    /// autoscaling/v1).
    pub group: &'static str,
    pub version: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource at one group-version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceDef {
    /// "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The plural, lowercase resource name used in URLs (`pods`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [Verb],
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [SubresourceDef],
    /// Where objects are kept: the group-version they are stored as and their storage
    /// resource name (differs from this entry for converted legacy versions).
    pub storage_group: &'static str,
    pub storage_version: &'static str,
    /// The key prefix segment in the store (`pods` → `/registry/pods/...`).
    pub storage_prefix: &'static str,
}

impl ResourceDef {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// The URL prefix of the group-version: `/api/v1` or `/apis/apps/v1`.
    pub fn gv_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
    /// Whether this entry is the storage version of its resource.
    pub fn is_storage_version(&self) -> bool {
        self.group == self.storage_group && self.version == self.storage_version
    }
    pub fn has_verb(&self, v: Verb) -> bool {
        self.verbs.contains(&v)
    }
    pub fn subresource(&self, name: &str) -> Option<&SubresourceDef> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

const STATUS: SubresourceDef = SubresourceDef {
    name: "status",
    kind: "",
    group: "",
    version: "",
    verbs: &["get", "patch", "update"],
};
const SCALE: SubresourceDef = SubresourceDef {
    name: "scale",
    kind: "Scale",
    group: "autoscaling",
    version: "v1",
    verbs: &["get", "patch", "update"],
};
const POD_SUBRESOURCES: &[SubresourceDef] = &[
    SubresourceDef {
        name: "attach",
        kind: "PodAttachOptions",
        group: "",
        version: "v1",
        verbs: &["create", "get"],
    },
    SubresourceDef {
        name: "binding",
        kind: "Binding",
        group: "",
        version: "v1",
        verbs: &["create"],
    },
    SubresourceDef {
        name: "ephemeralcontainers",
        kind: "",
        group: "",
        version: "",
        verbs: &["get", "patch", "update"],
    },
    SubresourceDef {
        name: "eviction",
        kind: "Eviction",
        group: "policy",
        version: "v1",
        verbs: &["create"],
    },
    SubresourceDef {
        name: "exec",
        kind: "PodExecOptions",
        group: "",
        version: "v1",
        verbs: &["create", "get"],
    },
    SubresourceDef {
        name: "log",
        kind: "Pod",
        group: "",
        version: "v1",
        verbs: &["get"],
    },
    SubresourceDef {
        name: "portforward",
        kind: "PodPortForwardOptions",
        group: "",
        version: "v1",
        verbs: &["create", "get"],
    },
    SubresourceDef {
        name: "proxy",
        kind: "PodProxyOptions",
        group: "",
        version: "v1",
        verbs: &["create", "delete", "get", "patch", "update"],
    },
    STATUS,
];

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr, $verbs:expr, $short:expr, $cats:expr, $subs:expr) => {
        ResourceDef {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            verbs: $verbs,
            short_names: $short,
            categories: $cats,
            subresources: $subs,
            storage_group: $group,
            storage_version: $version,
            storage_prefix: $plural,
        }
    };
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

/// Every resource bosun serves, in discovery order within each group-version.
pub static RESOURCES: &[ResourceDef] = &[
    // core/v1
    res!(
        "",
        "v1",
        "Binding",
        "bindings",
        "binding",
        true,
        &[Create],
        NONE,
        NONE,
        &[]
    ),
    res!(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        ALL_VERBS,
        &["cm"],
        NONE,
        &[]
    ),
    res!(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        ALL_VERBS,
        &["ep"],
        NONE,
        &[]
    ),
    res!(
        "",
        "v1",
        "Event",
        "events",
        "event",
        true,
        ALL_VERBS,
        &["ev"],
        NONE,
        &[]
    ),
    res!(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        true,
        ALL_VERBS,
        &["limits"],
        NONE,
        &[]
    ),
    res!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        NAMESPACE_VERBS,
        &["ns"],
        NONE,
        &[
            SubresourceDef {
                name: "finalize",
                kind: "",
                group: "",
                version: "",
                verbs: &["update"]
            },
            STATUS,
        ]
    ),
    res!(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        false,
        ALL_VERBS,
        &["no"],
        NONE,
        &[
            SubresourceDef {
                name: "proxy",
                kind: "NodeProxyOptions",
                group: "",
                version: "v1",
                verbs: &["create", "delete", "get", "patch", "update"]
            },
            STATUS,
        ]
    ),
    res!(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        true,
        ALL_VERBS,
        &["pvc"],
        NONE,
        &[STATUS]
    ),
    res!(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        false,
        ALL_VERBS,
        &["pv"],
        NONE,
        &[STATUS]
    ),
    res!(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        true,
        ALL_VERBS,
        &["po"],
        ALL,
        POD_SUBRESOURCES
    ),
    res!(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        true,
        ALL_VERBS,
        &["rc"],
        ALL,
        &[SCALE, STATUS]
    ),
    res!(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        true,
        ALL_VERBS,
        &["quota"],
        NONE,
        &[STATUS]
    ),
    res!(
        "",
        "v1",
        "Secret",
        "secrets",
        "secret",
        true,
        ALL_VERBS,
        NONE,
        NONE,
        &[]
    ),
    res!(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        ALL_VERBS,
        &["sa"],
        NONE,
        &[SubresourceDef {
            name: "token",
            kind: "TokenRequest",
            group: "authentication.k8s.io",
            version: "v1",
            verbs: &["create"]
        },]
    ),
    res!(
        "",
        "v1",
        "Service",
        "services",
        "service",
        true,
        ALL_VERBS,
        &["svc"],
        ALL,
        &[
            SubresourceDef {
                name: "proxy",
                kind: "ServiceProxyOptions",
                group: "",
                version: "v1",
                verbs: &["create", "delete", "get", "patch", "update"]
            },
            STATUS,
        ]
    ),
    // apps/v1
    res!(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        true,
        ALL_VERBS,
        NONE,
        NONE,
        &[]
    ),
    res!(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        true,
        ALL_VERBS,
        &["ds"],
        ALL,
        &[STATUS]
    ),
    res!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        true,
        ALL_VERBS,
        &["deploy"],
        ALL,
        &[SCALE, STATUS]
    ),
    res!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        ALL_VERBS,
        &["rs"],
        ALL,
        &[SCALE, STATUS]
    ),
    res!(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        true,
        ALL_VERBS,
        &["sts"],
        ALL,
        &[SCALE, STATUS]
    ),
    // autoscaling
    res!(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        true,
        ALL_VERBS,
        &["hpa"],
        ALL,
        &[STATUS]
    ),
    ResourceDef {
        storage_version: "v2",
        ..res!(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            true,
            ALL_VERBS,
            &["hpa"],
            ALL,
            &[STATUS]
        )
    },
    // batch/v1
    res!(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        true,
        ALL_VERBS,
        &["cj"],
        ALL,
        &[STATUS]
    ),
    res!(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        true,
        ALL_VERBS,
        NONE,
        ALL,
        &[STATUS]
    ),
    // coordination.k8s.io/v1
    res!(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        true,
        ALL_VERBS,
        NONE,
        NONE,
        &[]
    ),
    // discovery.k8s.io/v1
    res!(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        ALL_VERBS,
        NONE,
        NONE,
        &[]
    ),
    // events.k8s.io/v1 (stored with core/v1 events)
    ResourceDef {
        storage_group: "",
        storage_version: "v1",
        ..res!(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            "event",
            true,
            ALL_VERBS,
            &["ev"],
            NONE,
            &[]
        )
    },
    // networking.k8s.io/v1
    res!(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        true,
        ALL_VERBS,
        &["netpol"],
        NONE,
        &[]
    ),
    // scheduling.k8s.io/v1
    res!(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        false,
        ALL_VERBS,
        &["pc"],
        NONE,
        &[]
    ),
    // policy/v1
    res!(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        true,
        ALL_VERBS,
        &["pdb"],
        NONE,
        &[STATUS]
    ),
    // storage.k8s.io/v1
    res!(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        false,
        ALL_VERBS,
        &["sc"],
        NONE,
        &[]
    ),
    // extensions/v1beta1: the legacy versions the seed's manifests use, stored as apps/v1.
    // No short names here: `deploy` and `rs` resolve to apps/v1 without kubectl's
    // ambiguity warning.
    ResourceDef {
        storage_group: "apps",
        storage_version: "v1",
        ..res!(
            "extensions",
            "v1beta1",
            "Deployment",
            "deployments",
            "deployment",
            true,
            ALL_VERBS,
            NONE,
            NONE,
            &[SCALE, STATUS]
        )
    },
    ResourceDef {
        storage_group: "apps",
        storage_version: "v1",
        ..res!(
            "extensions",
            "v1beta1",
            "ReplicaSet",
            "replicasets",
            "replicaset",
            true,
            ALL_VERBS,
            NONE,
            NONE,
            &[SCALE, STATUS]
        )
    },
];

/// The group-versions served, each with its preferred version first, in discovery order.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

/// The resources of one group-version.
pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceDef> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// The resource with this plural at this group-version.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of this kind at this group-version.
pub fn find_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Splits `apps/v1` into ("apps", "v1") and `v1` into ("", "v1").
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        // Each (group, version, plural) is unique and every storage version is served.
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{} twice",
                    a.plural
                );
            }
            assert!(
                find(a.storage_group, a.storage_version, a.plural).is_some(),
                "no storage version for {}",
                a.plural
            );
        }
        assert_eq!(groups()[0], ("", vec!["v1"]));
        assert_eq!(find("", "v1", "pods").map(|r| r.kind), Some("Pod"));
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
    }
}
