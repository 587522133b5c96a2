//! Endpoints and EndpointSlices against a real API server: ready and not-ready addresses,
//! named target ports resolved per pod, updates on readiness and deletion.

mod common;

use std::collections::BTreeSet;

use common::*;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

async fn make_pod(
    client: &Client,
    name: &str,
    app: &str,
    port: Option<(&str, i32)>,
    ip: &str,
    ready: bool,
) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let ports = match port {
        Some((n, p)) => json!([{"name": n, "containerPort": p}]),
        None => json!([]),
    };
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "ports": ports}]},
    }))?;
    api.create(&PostParams::default(), &pod).await?;
    set_status(&api, name, ip, ready).await
}

async fn set_status(api: &Api<Pod>, name: &str, ip: &str, ready: bool) -> anyhow::Result<()> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let r = if ready { "True" } else { "False" };
    let patch = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": r, "lastTransitionTime": now}],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// (ready ips, not-ready ips, ports) per subset.
fn subsets(ep: &Endpoints) -> BTreeSet<(Vec<String>, Vec<String>, Vec<i32>)> {
    ep.subsets
        .iter()
        .flatten()
        .map(|s| {
            (
                s.addresses.iter().flatten().map(|a| a.ip.clone()).collect(),
                s.not_ready_addresses
                    .iter()
                    .flatten()
                    .map(|a| a.ip.clone())
                    .collect(),
                s.ports.iter().flatten().map(|p| p.port).collect(),
            )
        })
        .collect()
}

/// (ip, ready, ports) of every endpoint in the Service's slices.
async fn slice_view(
    client: &Client,
    svc: &str,
) -> anyhow::Result<BTreeSet<(String, bool, Vec<i32>)>> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let slices = api
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
        .await?
        .items;
    let mut out = BTreeSet::new();
    for s in slices {
        let ports: Vec<i32> = s.ports.iter().flatten().filter_map(|p| p.port).collect();
        for e in s.endpoints {
            let ready = e.conditions.and_then(|c| c.ready).unwrap_or(false);
            for a in e.addresses {
                out.insert((a, ready, ports.clone()));
            }
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_pods_and_readiness() -> anyhow::Result<()> {
    let h = start().await?;
    let svcs: Api<Service> = Api::namespaced(h.client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }))?;
    svcs.create(&PostParams::default(), &svc).await?;
    make_pod(
        &h.client,
        "a",
        "web",
        Some(("http", 8080)),
        "10.244.0.10",
        true,
    )
    .await?;
    make_pod(
        &h.client,
        "b",
        "web",
        Some(("http", 9090)),
        "10.244.0.11",
        false,
    )
    .await?;
    // No port named http: not an endpoint of this port.
    make_pod(
        &h.client,
        "c",
        "web",
        Some(("metrics", 9100)),
        "10.244.0.12",
        true,
    )
    .await?;
    make_pod(
        &h.client,
        "other",
        "db",
        Some(("http", 8080)),
        "10.244.0.13",
        true,
    )
    .await?;

    let eps: Api<Endpoints> = Api::namespaced(h.client.clone(), "default");
    let s = |r: &[&str], n: &[&str], p: &[i32]| {
        (
            r.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            n.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            p.to_vec(),
        )
    };
    let want: BTreeSet<_> = [
        s(&["10.244.0.10"], &[], &[8080]),
        s(&[], &["10.244.0.11"], &[9090]),
    ]
    .into();
    wait_for(
        30,
        "endpoints with ready and not-ready addresses",
        || async {
            let ep = eps.get_opt("web").await?;
            Ok(ep.filter(|e| subsets(e) == want).map(|_| ()))
        },
    )
    .await?;
    let ep = eps.get("web").await?;
    assert_eq!(
        ep.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("tier"))
            .map(String::as_str),
        Some("front")
    );
    let addr = ep
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten())
        .next()
        .cloned();
    let target = addr.and_then(|a| a.target_ref).and_then(|r| r.name);
    assert_eq!(target.as_deref(), Some("a"));

    // Slices, unlike Endpoints, keep a pod none of whose ports match, with no ports.
    let want_slices: BTreeSet<_> = [
        ("10.244.0.10".to_string(), true, vec![8080]),
        ("10.244.0.11".to_string(), false, vec![9090]),
        ("10.244.0.12".to_string(), true, vec![]),
    ]
    .into();
    let got = wait_for(30, "endpoint slices", || async {
        let v = slice_view(&h.client, "web").await?;
        Ok((v == want_slices).then_some(v))
    })
    .await;
    if got.is_err() {
        let api: Api<EndpointSlice> = Api::namespaced(h.client.clone(), "default");
        let all = api.list(&ListParams::default()).await?.items;
        panic!("slices: {}", serde_json::to_string_pretty(&all)?);
    }
    let slices: Api<EndpointSlice> = Api::namespaced(h.client.clone(), "default");
    for sl in slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await?
        .items
    {
        let labels = sl.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get("endpointslice.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("endpointslice-controller.k8s.io")
        );
        assert!(sl
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.kind == "Service" && r.name == "web" && r.controller == Some(true)));
        assert!(sl
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("web-")));
    }

    // Readiness moves b to the ready addresses; a deleted pod leaves.
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    set_status(&pods, "b", "10.244.0.11", true).await?;
    pods.delete("a", &DeleteParams::default()).await?;
    let want: BTreeSet<_> = [s(&["10.244.0.11"], &[], &[9090])].into();
    wait_for(30, "endpoints updated", || async {
        let ep = eps.get("web").await?;
        Ok((subsets(&ep) == want).then_some(()))
    })
    .await?;
    let want_slices: BTreeSet<_> = [
        ("10.244.0.11".to_string(), true, vec![9090]),
        ("10.244.0.12".to_string(), true, vec![]),
    ]
    .into();
    wait_for(30, "slices updated", || async {
        Ok((slice_view(&h.client, "web").await? == want_slices).then_some(()))
    })
    .await?;
    let out = h.server.kubectl_ok(&["get", "endpoints", "web"]);
    assert!(out.contains("10.244.0.11:9090"), "{out}");

    // The Service goes, and with it its Endpoints and slices.
    svcs.delete("web", &DeleteParams::default()).await?;
    wait_for(30, "endpoints and slices removed", || async {
        let gone = eps.get_opt("web").await?.is_none();
        let none = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await?
            .items
            .is_empty();
        Ok((gone && none).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_service_without_ports() -> anyhow::Result<()> {
    let h = start().await?;
    let svcs: Api<Service> = Api::namespaced(h.client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}},
    }))?;
    svcs.create(&PostParams::default(), &svc).await?;
    make_pod(&h.client, "db-0", "db", None, "10.244.0.20", true).await?;
    let eps: Api<Endpoints> = Api::namespaced(h.client.clone(), "default");
    wait_for(30, "headless endpoints", || async {
        let ep = eps.get_opt("db").await?;
        Ok(ep
            .filter(|e| {
                subsets(e) == [(vec!["10.244.0.20".to_string()], vec![], vec![])].into()
                    && e.metadata
                        .labels
                        .as_ref()
                        .is_some_and(|l| l.contains_key("service.kubernetes.io/headless"))
            })
            .map(|_| ()))
    })
    .await?;
    // A Service with no matching pods still has (empty) Endpoints and one slice.
    let empty: Service = serde_json::from_value(json!({
        "metadata": {"name": "nobody"},
        "spec": {"selector": {"app": "nobody"}, "ports": [{"port": 80}]},
    }))?;
    svcs.create(&PostParams::default(), &empty).await?;
    let slices: Api<EndpointSlice> = Api::namespaced(h.client.clone(), "default");
    wait_for(30, "empty endpoints and slice", || async {
        let ep = eps.get_opt("nobody").await?;
        let sl = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=nobody"))
            .await?
            .items;
        Ok(
            (ep.is_some_and(|e| e.subsets.is_none())
                && sl.len() == 1
                && sl[0].endpoints.is_empty())
            .then_some(()),
        )
    })
    .await?;
    Ok(())
}
