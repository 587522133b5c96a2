//! Hollow Node objects: registration (the Node with its status and its Lease) and the
//! heartbeat round that keeps every live node's Lease and Ready condition fresh.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::ipam::{self, Cidr, PodIps};
use crate::{bump, Error, Result, Shared};

/// The namespace of node Leases (upstream `corev1.NamespaceNodeLease`).
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The shape of one hollow node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeTemplate {
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    pub ephemeral_storage: String,
    pub extended_resources: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

impl Default for NodeTemplate {
    fn default() -> Self {
        crate::HollowOptions::default().template()
    }
}

impl NodeTemplate {
    /// Checks every quantity parses, so a typo fails at start rather than at the server.
    pub fn validate(&self) -> Result<()> {
        let check = |field: &'static str, v: &str| {
            bosun_api::quantity::Quantity::parse(v)
                .map(|_| ())
                .map_err(|_| Error::InvalidOption {
                    field,
                    value: v.to_string(),
                })
        };
        check("cpu", &self.cpu)?;
        check("memory", &self.memory)?;
        check("ephemeral_storage", &self.ephemeral_storage)?;
        for v in self.extended_resources.values() {
            check("extended_resources", v)?;
        }
        Ok(())
    }

    fn capacity(&self) -> Value {
        let mut cap = serde_json::Map::new();
        cap.insert("cpu".into(), json!(self.cpu));
        cap.insert("memory".into(), json!(self.memory));
        cap.insert("pods".into(), json!(self.pods.to_string()));
        cap.insert("ephemeral-storage".into(), json!(self.ephemeral_storage));
        for (k, v) in &self.extended_resources {
            cap.insert(k.clone(), json!(v));
        }
        Value::Object(cap)
    }
}

/// What the simulator knows about one of its nodes.
#[derive(Debug)]
pub(crate) struct NodeState {
    pub host_ip: Ipv4Addr,
    pub ips: PodIps,
    pub alive: bool,
    pub ready_since: DateTime<Utc>,
    pub last_status: Option<Instant>,
}

pub(crate) fn time_now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn micro_now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The conditions a healthy kubelet reports, in its order.
fn conditions(ready_since: DateTime<Utc>) -> Value {
    let now = time_now();
    let since = fmt_time(ready_since);
    let cond = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": ty,
            "status": status,
            "lastHeartbeatTime": now,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        })
    };
    json!([
        cond(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        cond(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        cond(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        cond(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

fn node_status(
    name: &str,
    template: &NodeTemplate,
    host_ip: Ipv4Addr,
    since: DateTime<Utc>,
) -> Value {
    let cap = template.capacity();
    json!({
        "capacity": cap,
        "allocatable": cap,
        "conditions": conditions(since),
        "addresses": [
            {"type": "InternalIP", "address": host_ip.to_string()},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": format!("hollow-{name}"),
            "systemUUID": format!("hollow-{name}"),
            "bootID": format!("hollow-{name}"),
            "kernelVersion": "hollow",
            "osImage": "bosun hollow node",
            "containerRuntimeVersion": concat!("hollow://", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": "v1.34.0",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    })
}

fn node_labels(name: &str, template: &NodeTemplate) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("type".to_string(), "hollow".to_string()),
    ]);
    labels.extend(template.labels.clone());
    labels
}

fn node_object(name: &str, template: &NodeTemplate, cidr: Cidr, host_ip: Ipv4Addr) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(name, template),
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "hollow.bosun.dev/node": "true",
            },
        },
        "spec": {
            "podCIDR": cidr.to_string(),
            "podCIDRs": [cidr.to_string()],
            "taints": template.taints,
        },
        "status": node_status(name, template, host_ip, Utc::now()),
    })
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Registers `names` with `template`, `register_inflight` at a time.
pub(crate) async fn register_all(
    shared: &Arc<Shared>,
    names: Vec<String>,
    template: &NodeTemplate,
) -> Result<()> {
    let mut results = futures::stream::iter(names)
        .map(|name| register(shared, name, template))
        .buffer_unordered(shared.opts.register_inflight.max(1));
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(())
}

async fn register(shared: &Arc<Shared>, name: String, template: &NodeTemplate) -> Result<()> {
    let index = shared.next_index.fetch_add(1, Ordering::Relaxed);
    let mut cidr = shared
        .pod_cidr
        .subnet(index, shared.opts.node_cidr_prefix)
        .ok_or_else(|| Error::CidrExhausted(name.clone()))?;
    let host_ip = ipam::host_ip(index);
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let obj: Node =
        serde_json::from_value(node_object(&name, template, cidr, host_ip)).map_err(|e| {
            Error::Register {
                node: name.clone(),
                source: kube::Error::SerdeError(e),
            }
        })?;
    let reg_err = |source| Error::Register {
        node: name.clone(),
        source,
    };
    let created = match nodes.create(&PostParams::default(), &obj).await {
        Ok(n) => n,
        Err(e) if is_status(&e, 409) => {
            // Registered before (the simulator restarted): keep its pod CIDR so pods
            // already running keep addresses inside it, and refresh the rest.
            let existing = nodes.get(&name).await.map_err(reg_err)?;
            if let Some(c) = existing
                .spec
                .as_ref()
                .and_then(|s| s.pod_cidr.as_deref())
                .and_then(|c| Cidr::parse(c).ok())
            {
                cidr = c;
            }
            let patch = json!({
                "metadata": {"labels": node_labels(&name, template)},
                "spec": {"taints": template.taints},
            });
            nodes
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(reg_err)?;
            let status = json!({"status": node_status(&name, template, host_ip, Utc::now())});
            nodes
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .map_err(reg_err)?
        }
        Err(e) => return Err(reg_err(e)),
    };
    create_lease(shared, &name, created.metadata.uid.as_deref())
        .await
        .map_err(reg_err)?;
    shared.nodes.lock().insert(
        name,
        NodeState {
            host_ip,
            ips: PodIps::new(cidr),
            alive: true,
            ready_since: Utc::now(),
            last_status: Some(Instant::now()),
        },
    );
    Ok(())
}

/// Creates the node's Lease owned by the Node, as the kubelet does, so that deleting
/// the Node lets the garbage collector remove it.
async fn create_lease(shared: &Shared, name: &str, uid: Option<&str>) -> kube::Result<()> {
    let leases: Api<Lease> = Api::namespaced(shared.client.clone(), NODE_LEASE_NAMESPACE);
    let mut meta = json!({"name": name, "namespace": NODE_LEASE_NAMESPACE});
    if let Some(uid) = uid {
        meta["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}]);
    }
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": shared.opts.lease_duration_seconds,
            "renewTime": micro_now(),
        },
    }))
    .map_err(kube::Error::SerdeError)?;
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 409) => renew_lease(shared, name).await,
        Err(e) => Err(e),
    }
}

async fn renew_lease(shared: &Shared, name: &str) -> kube::Result<()> {
    let leases: Api<Lease> = Api::namespaced(shared.client.clone(), NODE_LEASE_NAMESPACE);
    let patch = json!({"spec": {
        "holderIdentity": name,
        "leaseDurationSeconds": shared.opts.lease_duration_seconds,
        "renewTime": micro_now(),
    }});
    leases
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// One heartbeat of one node: the Lease, and the conditions when they are due.
pub(crate) async fn renew(shared: &Arc<Shared>, name: &str) {
    let (status_due, since) = {
        let mut nodes = shared.nodes.lock();
        let Some(n) = nodes.get_mut(name) else { return };
        if !n.alive {
            return;
        }
        let due = n
            .last_status
            .is_none_or(|t| t.elapsed() >= shared.opts.status_interval);
        if due {
            n.last_status = Some(Instant::now());
        }
        (due, n.ready_since)
    };
    let _permit = shared.beat_lane.acquire().await;
    match renew_lease(shared, name).await {
        Ok(()) => bump(&shared.counters.lease_renewals),
        Err(e) if is_status(&e, 404) => {
            let uid = Api::<Node>::all(shared.client.clone())
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|n| n.metadata.uid);
            if uid.is_none() {
                node_gone(shared, name);
                return;
            }
            if let Err(e) = create_lease(shared, name, uid.as_deref()).await {
                bump(&shared.counters.write_errors);
                tracing::warn!(node = name, error = %e, "recreating the node lease failed");
            }
        }
        Err(e) => {
            bump(&shared.counters.write_errors);
            tracing::warn!(node = name, error = %e, "renewing the node lease failed");
        }
    }
    if status_due {
        let nodes: Api<Node> = Api::all(shared.client.clone());
        let patch = json!({"status": {"conditions": conditions(since)}});
        match nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => bump(&shared.counters.node_status_updates),
            Err(e) if is_status(&e, 404) => node_gone(shared, name),
            Err(e) => {
                bump(&shared.counters.write_errors);
                tracing::warn!(node = name, error = %e, "updating the node status failed");
            }
        }
    }
}

/// The Node was deleted by someone else: stop simulating it rather than re-registering,
/// as a kubelet only registers when it starts.
fn node_gone(shared: &Shared, name: &str) {
    if shared.nodes.lock().remove(name).is_some() {
        tracing::info!(
            node = name,
            "hollow node deleted from the API; no longer simulated"
        );
    }
}

/// Renews every live node once per `heartbeat`, spread evenly over the period so the
/// server sees a steady trickle instead of a burst of thousands of writes.
pub(crate) async fn heartbeat_loop(shared: Arc<Shared>) {
    let period = shared.opts.heartbeat;
    loop {
        let round = Instant::now();
        let mut names: Vec<String> = shared
            .nodes
            .lock()
            .iter()
            .filter(|(_, n)| n.alive)
            .map(|(k, _)| k.clone())
            .collect();
        names.sort();
        let count = names.len().max(1) as u32;
        let mut running = FuturesUnordered::new();
        for (i, name) in names.into_iter().enumerate() {
            let due = round + period * (i as u32) / count;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => break,
                    Some(()) = running.next(), if !running.is_empty() => {}
                }
            }
            let s = shared.clone();
            running.push(async move { renew(&s, &name).await });
        }
        let end = round + period;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(end) => break,
                Some(()) = running.next(), if !running.is_empty() => {}
            }
        }
        // Renewals still in flight finish in the background rather than delaying the round.
        if !running.is_empty() {
            tokio::spawn(async move { while running.next().await.is_some() {} });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_object_carries_capacity_labels_and_addresses() {
        let mut t = NodeTemplate::default();
        t.labels.insert("zone".into(), "a".into());
        t.extended_resources
            .insert("nvidia.com/gpu".into(), "8".into());
        let cidr = Cidr::parse("10.64.3.0/24").unwrap();
        let v = node_object("n1", &t, cidr, Ipv4Addr::new(172, 16, 0, 5));
        let node: Node = serde_json::from_value(v).unwrap();
        let st = node.status.unwrap();
        let cap = st.capacity.unwrap();
        assert_eq!(cap["cpu"].0, "32");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(cap["nvidia.com/gpu"].0, "8");
        assert_eq!(st.allocatable.unwrap()["memory"].0, "256Gi");
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["zone"], "a");
        let ready = st
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(st.addresses.unwrap()[0].address, "172.16.0.5");
        assert_eq!(node.spec.unwrap().pod_cidr.as_deref(), Some("10.64.3.0/24"));
    }

    #[test]
    fn template_rejects_bad_quantities() {
        let t = NodeTemplate {
            cpu: "lots".into(),
            ..Default::default()
        };
        assert!(matches!(
            t.validate(),
            Err(Error::InvalidOption { field: "cpu", .. })
        ));
        assert!(NodeTemplate::default().validate().is_ok());
    }
}
