//! What exists from the first start: the namespaces `default`, `kube-system`,
//! `kube-public` and `kube-node-lease`, the `kubernetes` Service at the first service IP
//! with its Endpoints, the `kube-dns` Service at the tenth (10.96.0.10, kubeadm's choice,
//! answered by every agent's in-process DNS server), the system PriorityClasses, and the
//! default StorageClass `local-path` (provisioner `bosun.io/local-path`, served by every
//! agent; WaitForFirstConsumer, reclaim Delete), as k3s ships its local-path provisioner.
//! Creating each is idempotent.

use std::net::IpAddr;

use bosun_api::resources;
use bosun_api::StatusError;
use serde_json::{json, Value};

use crate::registry::{Decoding, Registry};
use crate::request::{Query, ResourcePath};

async fn ensure(
    reg: &Registry,
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
    obj: Value,
) -> Result<(), StatusError> {
    let def = resources::find(group, version, plural).ok_or_else(StatusError::path_not_found)?;
    let rp = ResourcePath {
        def,
        namespace: namespace.map(str::to_string),
        name: None,
        subresource: None,
    };
    match reg
        .create_value(&rp, &Query::default(), obj, Decoding::trusted())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the objects every cluster starts with.
pub async fn run(reg: &Registry, host: IpAddr, port: u16) -> Result<(), StatusError> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(
            reg,
            "",
            "v1",
            "namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    let first_ip = reg.alloc.service_cidr.nth(1).to_string();
    ensure(
        reg,
        "",
        "v1",
        "services",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": first_ip,
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}
        }),
    )
    .await?;
    ensure_kube_dns(reg).await?;
    // Endpoints may not point at loopback: use this machine's first other address.
    let ep_ip = if host.is_unspecified() || host.is_loopback() {
        first_host_ipv4().map(|i| i.to_string())
    } else {
        Some(host.to_string())
    };
    let Some(ep_ip) = ep_ip else {
        return ensure_priority_classes(reg).await;
    };
    ensure(
        reg,
        "",
        "v1",
        "endpoints",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ep_ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
        }),
    )
    .await?;
    ensure_priority_classes(reg).await
}

/// The cluster DNS Service, as kubeadm and k3s create it, so that tools looking for
/// `kube-system/kube-dns` find it. Its ClusterIP is served on every node by the agent's own
/// DNS server (bound to that address on the node), not through endpoints: the selector
/// matches no pod and the proxy leaves the address alone.
async fn ensure_kube_dns(reg: &Registry) -> Result<(), StatusError> {
    let ip = reg.alloc.service_cidr.nth(10).to_string();
    ensure(
        reg,
        "",
        "v1",
        "services",
        Some("kube-system"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "labels": {
                "k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "selector": {"k8s-app": "kube-dns"},
                     "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}
        }),
    )
    .await
}

/// The name and provisioner of the StorageClass every cluster starts with.
pub const DEFAULT_STORAGE_CLASS: &str = "local-path";
pub const LOCAL_PATH_PROVISIONER: &str = "bosun.io/local-path";

async fn ensure_default_storage_class(reg: &Registry) -> Result<(), StatusError> {
    ensure(
        reg,
        "storage.k8s.io",
        "v1",
        "storageclasses",
        None,
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": DEFAULT_STORAGE_CLASS,
                            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
               "provisioner": LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete",
               "volumeBindingMode": "WaitForFirstConsumer"}),
    )
    .await
}

async fn ensure_priority_classes(reg: &Registry) -> Result<(), StatusError> {
    for (name, value) in [
        ("system-node-critical", 2_000_001_000i64),
        ("system-cluster-critical", 2_000_000_000),
    ] {
        ensure(
            reg,
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            None,
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                   "value": value, "description": "Used for system critical pods that must not be moved from their current node."}),
        )
        .await?;
    }
    ensure_default_storage_class(reg).await
}

/// The first IPv4 address of an interface that is up and not loopback.
pub fn first_host_ipv4() -> Option<std::net::Ipv4Addr> {
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `addrs` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut addrs) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = addrs;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        let up = ifa.ifa_flags & (libc::IFF_UP as u32) != 0;
        let loopback = ifa.ifa_flags & (libc::IFF_LOOPBACK as u32) != 0;
        if up && !loopback && !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it names.
            let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
            if family == libc::AF_INET {
                // SAFETY: the family is AF_INET, so the address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                found = Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
                break;
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `addrs` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(addrs) };
    found
}
