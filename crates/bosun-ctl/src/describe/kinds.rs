//! kubectl's describers for Node, ReplicationController, ReplicaSet, Deployment, Service,
//! Namespace, PersistentVolume, PersistentVolumeClaim and HorizontalPodAutoscaler.

use serde_json::Value;

use super::fmt::{
    access_modes, annotations_multiline, arr, controlled_by, format_label_selector, format_labels,
    go_list, i, int_or_string, labels_multiline, parse_qty, qty, resource_list, rfc1123z, s,
    selector_string, since, storage_class, string_map, taints_multiline, w, Out,
};
use super::pod::{describe_pod_template, describe_volume_source};
use super::{describe_events, list, Events};
use crate::error::Result;
use crate::Ctx;

/// Pods of `ns` matching a label selector whose controller is `uid`, counted by phase
/// (`getPodStatusForController`).
pub(super) async fn pod_phases(
    ctx: &Ctx,
    ns: &str,
    selector: &str,
    uid: &str,
) -> Result<[usize; 4]> {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("labelSelector", selector)
        .finish();
    let pods = list(ctx, &format!("/api/v1/namespaces/{ns}/pods?{q}")).await?;
    let mut n = [0usize; 4];
    for p in &pods {
        let owned = arr(p, "/metadata/ownerReferences")
            .iter()
            .any(|r| r["controller"] == Value::Bool(true) && s(r, "/uid") == uid);
        if !owned {
            continue;
        }
        match s(p, "/status/phase") {
            "Running" => n[0] += 1,
            "Pending" => n[1] += 1,
            "Succeeded" => n[2] += 1,
            "Failed" => n[3] += 1,
            _ => {}
        }
    }
    Ok(n)
}

fn conditions_type_status_reason(o: &mut Out, obj: &Value) {
    let conds = arr(obj, "/status/conditions");
    if conds.is_empty() {
        return;
    }
    o.w(0, "Conditions:\n  Type\tStatus\tReason\n");
    o.w(1, "----\t------\t------\n");
    for c in conds {
        w!(
            o,
            1,
            "{} \t{}\t{}\n",
            s(c, "/type"),
            s(c, "/status"),
            s(c, "/reason")
        );
    }
}

pub(super) fn header(o: &mut Out, obj: &Value) {
    w!(o, 0, "Name:\t{}\n", s(obj, "/metadata/name"));
    w!(o, 0, "Namespace:\t{}\n", s(obj, "/metadata/namespace"));
}

pub(super) fn labels_annotations(o: &mut Out, obj: &Value) {
    labels_multiline(o, "Labels", &string_map(obj, "/metadata/labels"));
    annotations_multiline(o, "Annotations", &string_map(obj, "/metadata/annotations"));
}

pub(crate) async fn replication_controller(ctx: &Ctx, rc: &Value, ev: &Events) -> Result<String> {
    let sel = string_map(rc, "/spec/selector");
    let phases = pod_phases(
        ctx,
        s(rc, "/metadata/namespace"),
        &sel.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        s(rc, "/metadata/uid"),
    )
    .await?;
    let mut o = Out::new();
    header(&mut o, rc);
    w!(o, 0, "Selector:\t{}\n", format_labels(&sel));
    labels_annotations(&mut o, rc);
    replicas_and_pods(&mut o, rc, phases);
    describe_pod_template(&mut o, &rc["spec"]["template"]);
    conditions_type_status_reason(&mut o, rc);
    describe_events(&mut o, ev);
    Ok(o.finish())
}

fn replicas_and_pods(o: &mut Out, obj: &Value, p: [usize; 4]) {
    w!(
        o,
        0,
        "Replicas:\t{} current / {} desired\n",
        i(obj, "/status/replicas"),
        i(obj, "/spec/replicas")
    );
    pods_status(o, p);
}

/// The `Pods Status:` line of RCs, RSs, DaemonSets and StatefulSets (phase counts).
pub(super) fn pods_status(o: &mut Out, p: [usize; 4]) {
    w!(
        o,
        0,
        "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n",
        p[0],
        p[1],
        p[2],
        p[3]
    );
}

pub(crate) async fn replica_set(ctx: &Ctx, rs: &Value, ev: &Events) -> Result<String> {
    let sel = &rs["spec"]["selector"];
    let phases = pod_phases(
        ctx,
        s(rs, "/metadata/namespace"),
        &selector_string(sel),
        s(rs, "/metadata/uid"),
    )
    .await?;
    let mut o = Out::new();
    header(&mut o, rs);
    w!(o, 0, "Selector:\t{}\n", format_label_selector(sel));
    labels_annotations(&mut o, rs);
    if let Some(c) = controlled_by(rs) {
        w!(o, 0, "Controlled By:\t{c}\n");
    }
    replicas_and_pods(&mut o, rs, phases);
    describe_pod_template(&mut o, &rs["spec"]["template"]);
    conditions_type_status_reason(&mut o, rs);
    describe_events(&mut o, ev);
    Ok(o.finish())
}

/// The template without the `pod-template-hash` label (`EqualIgnoreHash`).
fn without_hash(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("pod-template-hash");
        if l.is_empty() {
            if let Some(m) = t.pointer_mut("/metadata").and_then(Value::as_object_mut) {
                m.remove("labels");
            }
        }
    }
    t
}

pub(crate) async fn deployment(ctx: &Ctx, d: &Value, ev: &Events) -> Result<String> {
    let ns = s(d, "/metadata/namespace");
    let sel = &d["spec"]["selector"];
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("labelSelector", &selector_string(sel))
        .finish();
    // deploymentutil.GetAllReplicaSetsInChunks: the deployment's own ReplicaSets, oldest
    // first; the new one is the first whose template equals the deployment's.
    let (mut old, mut new) = (Vec::new(), Vec::new());
    if let Ok(rss) = list(
        ctx,
        &format!("/apis/apps/v1/namespaces/{ns}/replicasets?{q}"),
    )
    .await
    {
        let uid = s(d, "/metadata/uid");
        let mut rss: Vec<Value> = rss
            .into_iter()
            .filter(|rs| {
                arr(rs, "/metadata/ownerReferences")
                    .iter()
                    .any(|r| r["controller"] == Value::Bool(true) && s(r, "/uid") == uid)
            })
            .collect();
        rss.sort_by(|a, b| {
            (s(a, "/metadata/creationTimestamp"), s(a, "/metadata/name"))
                .cmp(&(s(b, "/metadata/creationTimestamp"), s(b, "/metadata/name")))
        });
        let want = without_hash(&d["spec"]["template"]);
        let new_idx = rss
            .iter()
            .position(|rs| without_hash(&rs["spec"]["template"]) == want);
        for (n, rs) in rss.into_iter().enumerate() {
            if Some(n) == new_idx {
                new.push(rs);
            } else {
                old.push(rs);
            }
        }
    }
    let mut o = Out::new();
    header(&mut o, d);
    w!(
        o,
        0,
        "CreationTimestamp:\t{}\n",
        rfc1123z(s(d, "/metadata/creationTimestamp"))
    );
    labels_annotations(&mut o, d);
    w!(o, 0, "Selector:\t{}\n", selector_string(sel));
    w!(
        o,
        0,
        "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
        i(d, "/spec/replicas"),
        i(d, "/status/updatedReplicas"),
        i(d, "/status/replicas"),
        i(d, "/status/availableReplicas"),
        i(d, "/status/unavailableReplicas")
    );
    w!(o, 0, "StrategyType:\t{}\n", s(d, "/spec/strategy/type"));
    w!(
        o,
        0,
        "MinReadySeconds:\t{}\n",
        i(d, "/spec/minReadySeconds")
    );
    if let Some(ru) = d.pointer("/spec/strategy/rollingUpdate") {
        w!(
            o,
            0,
            "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
            int_or_string(ru.get("maxUnavailable")),
            int_or_string(ru.get("maxSurge"))
        );
    }
    describe_pod_template(&mut o, &d["spec"]["template"]);
    conditions_type_status_reason(&mut o, d);
    if !old.is_empty() || !new.is_empty() {
        let fmt_rs = |v: &[Value]| {
            let l: Vec<String> = v
                .iter()
                .map(|rs| {
                    format!(
                        "{} ({}/{} replicas created)",
                        s(rs, "/metadata/name"),
                        i(rs, "/status/replicas"),
                        i(rs, "/spec/replicas")
                    )
                })
                .collect();
            if l.is_empty() {
                "<none>".to_string()
            } else {
                l.join(", ")
            }
        };
        w!(o, 0, "OldReplicaSets:\t{}\n", fmt_rs(&old));
        w!(o, 0, "NewReplicaSet:\t{}\n", fmt_rs(&new));
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}

/// `formatEndpointSlices` for one service port name: up to three ready `ip:port`s.
fn endpoints_of(slices: &[Value], port_name: &str) -> String {
    if slices.is_empty() {
        return "<none>".into();
    }
    let (max, mut more, mut count) = (3usize, false, 0usize);
    let mut list: Vec<String> = Vec::new();
    for sl in slices {
        let eps = arr(sl, "/endpoints");
        let ready =
            |e: &Value| e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false);
        let ports = arr(sl, "/ports");
        if ports.is_empty() {
            for e in eps {
                if list.len() == max {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    list.push(s(e, "/addresses/0").to_string());
                }
                count += 1;
            }
            continue;
        }
        for p in ports {
            if s(p, "/name") != port_name {
                continue;
            }
            for e in eps {
                if list.len() == max {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    let a = s(e, "/addresses/0");
                    let a = if a.contains(':') {
                        format!("[{a}]")
                    } else {
                        a.to_string()
                    };
                    list.push(format!("{a}:{}", i(p, "/port")));
                }
                count += 1;
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count.saturating_sub(max))
    } else {
        ret
    }
}

pub(crate) async fn service(ctx: &Ctx, svc: &Value, ev: &Events) -> Result<String> {
    let ns = s(svc, "/metadata/namespace");
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "labelSelector",
            &format!("kubernetes.io/service-name={}", s(svc, "/metadata/name")),
        )
        .finish();
    let slices = list(
        ctx,
        &format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?{q}"),
    )
    .await
    .unwrap_or_default();
    let mut o = Out::new();
    header(&mut o, svc);
    labels_annotations(&mut o, svc);
    w!(
        o,
        0,
        "Selector:\t{}\n",
        format_labels(&string_map(svc, "/spec/selector"))
    );
    w!(o, 0, "Type:\t{}\n", s(svc, "/spec/type"));
    if svc.pointer("/spec/ipFamilyPolicy").is_some() {
        w!(
            o,
            0,
            "IP Family Policy:\t{}\n",
            s(svc, "/spec/ipFamilyPolicy")
        );
    }
    let joined = |p: &str, sep: &str| {
        arr(svc, p)
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(sep)
    };
    let fam = joined("/spec/ipFamilies", ",");
    w!(
        o,
        0,
        "IP Families:\t{}\n",
        if fam.is_empty() { "<none>" } else { &fam }
    );
    w!(o, 0, "IP:\t{}\n", s(svc, "/spec/clusterIP"));
    let ips = joined("/spec/clusterIPs", ",");
    w!(
        o,
        0,
        "IPs:\t{}\n",
        if ips.is_empty() { "<none>" } else { &ips }
    );
    let ext = joined("/spec/externalIPs", ",");
    if !ext.is_empty() {
        w!(o, 0, "External IPs:\t{ext}\n");
    }
    if !s(svc, "/spec/loadBalancerIP").is_empty() {
        w!(
            o,
            0,
            "Desired LoadBalancer IP:\t{}\n",
            s(svc, "/spec/loadBalancerIP")
        );
    }
    if !s(svc, "/spec/externalName").is_empty() {
        w!(o, 0, "External Name:\t{}\n", s(svc, "/spec/externalName"));
    }
    let ingress = arr(svc, "/status/loadBalancer/ingress");
    if !ingress.is_empty() {
        let l: Vec<String> = ingress
            .iter()
            .map(|x| {
                if !s(x, "/ip").is_empty() {
                    match x.get("ipMode").and_then(Value::as_str) {
                        Some(m) => format!("{} ({m})", s(x, "/ip")),
                        None => s(x, "/ip").to_string(),
                    }
                } else {
                    s(x, "/hostname").to_string()
                }
            })
            .collect();
        w!(o, 0, "LoadBalancer Ingress:\t{}\n", l.join(", "));
    }
    for sp in arr(svc, "/spec/ports") {
        let name = match s(sp, "/name") {
            "" => "<unset>",
            n => n,
        };
        let proto = s(sp, "/protocol");
        w!(o, 0, "Port:\t{name}\t{}/{proto}\n", i(sp, "/port"));
        w!(
            o,
            0,
            "TargetPort:\t{}/{proto}\n",
            int_or_string(sp.get("targetPort"))
        );
        if let Some(ap) = sp.get("appProtocol").and_then(Value::as_str) {
            w!(o, 0, "AppProtocol:\t{ap}\n");
        }
        if i(sp, "/nodePort") != 0 {
            w!(o, 0, "NodePort:\t{name}\t{}/{proto}\n", i(sp, "/nodePort"));
        }
        w!(
            o,
            0,
            "Endpoints:\t{}\n",
            endpoints_of(&slices, s(sp, "/name"))
        );
    }
    w!(
        o,
        0,
        "Session Affinity:\t{}\n",
        s(svc, "/spec/sessionAffinity")
    );
    if !s(svc, "/spec/externalTrafficPolicy").is_empty() {
        w!(
            o,
            0,
            "External Traffic Policy:\t{}\n",
            s(svc, "/spec/externalTrafficPolicy")
        );
    }
    if svc.pointer("/spec/internalTrafficPolicy").is_some() {
        w!(
            o,
            0,
            "Internal Traffic Policy:\t{}\n",
            s(svc, "/spec/internalTrafficPolicy")
        );
    }
    if i(svc, "/spec/healthCheckNodePort") != 0 {
        w!(
            o,
            0,
            "HealthCheck NodePort:\t{}\n",
            i(svc, "/spec/healthCheckNodePort")
        );
    }
    let ranges = joined("/spec/loadBalancerSourceRanges", ",");
    if !ranges.is_empty() {
        w!(o, 0, "LoadBalancer Source Ranges:\t{ranges}\n");
    }
    if svc.pointer("/spec/trafficDistribution").is_some() {
        w!(
            o,
            0,
            "Traffic Distribution:\t{}\n",
            s(svc, "/spec/trafficDistribution")
        );
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}

pub(crate) async fn namespace(ctx: &Ctx, ns: &Value) -> Result<String> {
    let name = s(ns, "/metadata/name");
    let quotas = list(ctx, &format!("/api/v1/namespaces/{name}/resourcequotas")).await?;
    let limits = list(ctx, &format!("/api/v1/namespaces/{name}/limitranges")).await?;
    let mut o = Out::new();
    w!(o, 0, "Name:\t{name}\n");
    labels_annotations(&mut o, ns);
    w!(o, 0, "Status:\t{}\n", s(ns, "/status/phase"));
    let conds = arr(ns, "/status/conditions");
    if !conds.is_empty() {
        o.w(0, "Conditions:\n");
        o.w(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n");
        o.w(1, "----\t------\t------------------\t------\t-------\n");
        for c in conds {
            w!(
                o,
                1,
                "{}\t{}\t{}\t{}\t{}\n",
                s(c, "/type"),
                s(c, "/status"),
                rfc1123z(s(c, "/lastTransitionTime")),
                s(c, "/reason"),
                s(c, "/message")
            );
        }
    }
    o.w(0, "\n");
    if quotas.is_empty() {
        o.w(0, "No resource quota.\n");
    } else {
        let mut quotas = quotas;
        quotas.sort_by(|a, b| s(a, "/metadata/name").cmp(s(b, "/metadata/name")));
        o.w(0, "Resource Quotas\n");
        for q in &quotas {
            w!(o, 1, "Name:\t{}\n", s(q, "/metadata/name"));
            let mut scopes: Vec<&str> = arr(q, "/spec/scopes")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            scopes.sort();
            if !scopes.is_empty() {
                w!(o, 1, "Scopes:\t{}\n", scopes.join(", "));
                for sc in &scopes {
                    if let Some(h) = quota_scope_help(sc) {
                        w!(o, 1, "* {h}\n");
                    }
                }
            }
            o.w(1, "Resource\tUsed\tHard\n");
            o.w(1, "--------\t---\t---\n");
            for (r, hard) in resource_list(q, "/status/hard") {
                let used = q
                    .pointer("/status/used")
                    .and_then(|u| u.get(&r))
                    .map(qty)
                    .unwrap_or_else(|| "0".into());
                w!(o, 1, "{r}\t{used}\t{hard}\n");
            }
        }
    }
    o.w(0, "\n");
    if limits.is_empty() {
        o.w(0, "No LimitRange resource.\n");
    } else {
        o.w(0, "Resource Limits\n Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio\n");
        o.w(
            0,
            " ----\t--------\t---\t---\t---------------\t-------------\t-----------------------\n",
        );
        for lr in &limits {
            limit_range_items(&mut o, lr, " ");
        }
    }
    Ok(o.finish())
}

fn quota_scope_help(scope: &str) -> Option<&'static str> {
    Some(match scope {
        "Terminating" => "Matches all pods that have an active deadline. These pods have a limited lifespan on a node before being actively terminated by the system.",
        "NotTerminating" => "Matches all pods that do not have an active deadline. These pods usually include long running pods whose container command is not expected to terminate.",
        "BestEffort" => "Matches all pods that do not have resource requirements set. These pods have a best effort quality of service.",
        "NotBestEffort" => "Matches all pods that have at least one resource requirement set. These pods have a burstable or guaranteed quality of service.",
        _ => return None,
    })
}

fn limit_range_items(o: &mut Out, lr: &Value, prefix: &str) {
    for item in arr(lr, "/spec/limits") {
        let mut names: Vec<String> = Vec::new();
        for k in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            for (n, _) in resource_list(item, &format!("/{k}")) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        for n in names {
            let get = |k: &str| {
                item.get(k)
                    .and_then(|m| m.get(&n))
                    .map(qty)
                    .unwrap_or_else(|| "-".into())
            };
            w!(
                o,
                0,
                "{prefix}{}\t{n}\t{}\t{}\t{}\t{}\t{}\n",
                s(item, "/type"),
                get("min"),
                get("max"),
                get("defaultRequest"),
                get("default"),
                get("maxLimitRequestRatio")
            );
        }
    }
}

pub(crate) async fn persistent_volume(pv: &Value, ev: &Events) -> Result<String> {
    let mut o = Out::new();
    w!(o, 0, "Name:\t{}\n", s(pv, "/metadata/name"));
    labels_annotations(&mut o, pv);
    w!(
        o,
        0,
        "Finalizers:\t{}\n",
        go_list(arr(pv, "/metadata/finalizers"))
    );
    w!(o, 0, "StorageClass:\t{}\n", storage_class(pv));
    let deleting = s(pv, "/metadata/deletionTimestamp");
    if deleting.is_empty() {
        w!(o, 0, "Status:\t{}\n", s(pv, "/status/phase"));
    } else {
        w!(o, 0, "Status:\tTerminating (lasts {})\n", since(deleting));
    }
    if let Some(c) = pv.pointer("/spec/claimRef") {
        w!(o, 0, "Claim:\t{}/{}\n", s(c, "/namespace"), s(c, "/name"));
    } else {
        o.w(0, "Claim:\t\n");
    }
    w!(
        o,
        0,
        "Reclaim Policy:\t{}\n",
        s(pv, "/spec/persistentVolumeReclaimPolicy")
    );
    w!(
        o,
        0,
        "Access Modes:\t{}\n",
        access_modes(arr(pv, "/spec/accessModes"))
    );
    if pv.pointer("/spec/volumeMode").is_some() {
        w!(o, 0, "VolumeMode:\t{}\n", s(pv, "/spec/volumeMode"));
    }
    w!(
        o,
        0,
        "Capacity:\t{}\n",
        pv.pointer("/spec/capacity/storage")
            .map(qty)
            .unwrap_or_else(|| "0".into())
    );
    o.w(0, "Node Affinity:\t");
    match pv.pointer("/spec/nodeAffinity/required") {
        None => o.w(0, "<none>\n"),
        Some(req) => {
            o.w(0, "\n");
            o.w(1, "Required Terms:\t");
            let terms = arr(req, "/nodeSelectorTerms");
            if terms.is_empty() {
                o.w(0, "<none>\n");
            } else {
                o.w(0, "\n");
                for (n, t) in terms.iter().enumerate() {
                    w!(o, 2, "Term {n}:\t");
                    let exprs = arr(t, "/matchExpressions");
                    if exprs.is_empty() {
                        o.w(0, "<none>\n");
                    }
                    for (k, e) in exprs.iter().enumerate() {
                        if k != 0 {
                            o.w(2, "\t");
                        }
                        let mut x =
                            format!("{} {}", s(e, "/key"), s(e, "/operator").to_lowercase());
                        let vals: Vec<&str> =
                            arr(e, "/values").iter().filter_map(Value::as_str).collect();
                        if !vals.is_empty() {
                            x.push_str(&format!(" [{}]", vals.join(", ")));
                        }
                        w!(o, 0, "{x}\n");
                    }
                }
            }
        }
    }
    w!(o, 0, "Message:\t{}\n", s(pv, "/status/message"));
    o.w(0, "Source:\n");
    describe_volume_source(&mut o, &pv["spec"], true);
    describe_events(&mut o, ev);
    Ok(o.finish())
}

/// The PVC lines after `Volume:` that a claim template shares with a full claim.
pub(crate) fn claim_tail(o: &mut Out, meta_holder: &Value, spec: &Value, level: usize) {
    let _ = level;
    labels_multiline(o, "Labels", &string_map(meta_holder, "/metadata/labels"));
    annotations_multiline(
        o,
        "Annotations",
        &string_map(meta_holder, "/metadata/annotations"),
    );
    w!(o, 0, "Capacity:\t\n");
    w!(o, 0, "Access Modes:\t\n");
    if spec.get("volumeMode").is_some() {
        w!(o, 0, "VolumeMode:\t{}\n", s(spec, "/volumeMode"));
    }
}

pub(crate) async fn persistent_volume_claim(ctx: &Ctx, pvc: &Value, ev: &Events) -> Result<String> {
    let ns = s(pvc, "/metadata/namespace");
    let name = s(pvc, "/metadata/name");
    let pods = list(ctx, &format!("/api/v1/namespaces/{ns}/pods")).await?;
    let mut users: Vec<String> = Vec::new();
    for p in &pods {
        let mounts = arr(p, "/spec/volumes")
            .iter()
            .any(|v| s(v, "/persistentVolumeClaim/claimName") == name);
        if mounts {
            users.push(s(p, "/metadata/name").to_string());
        }
    }
    for r in arr(pvc, "/metadata/ownerReferences") {
        if s(r, "/kind") != "Pod" {
            continue;
        }
        if let Some(p) = pods.iter().find(|p| s(p, "/metadata/uid") == s(r, "/uid")) {
            let n = s(p, "/metadata/name").to_string();
            if !users.contains(&n) {
                users.push(n);
            }
        }
    }
    users.sort();
    let mut o = Out::new();
    header(&mut o, pvc);
    w!(o, 0, "StorageClass:\t{}\n", storage_class(pvc));
    let deleting = s(pvc, "/metadata/deletionTimestamp");
    if deleting.is_empty() {
        w!(o, 0, "Status:\t{}\n", s(pvc, "/status/phase"));
    } else {
        w!(o, 0, "Status:\tTerminating (lasts {})\n", since(deleting));
    }
    let volume = s(pvc, "/spec/volumeName");
    w!(o, 0, "Volume:\t{volume}\n");
    labels_annotations(&mut o, pvc);
    w!(
        o,
        0,
        "Finalizers:\t{}\n",
        go_list(arr(pvc, "/metadata/finalizers"))
    );
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            pvc.pointer("/status/capacity/storage")
                .map(qty)
                .unwrap_or_else(|| "0".into()),
            access_modes(arr(pvc, "/status/accessModes")),
        )
    };
    w!(o, 0, "Capacity:\t{capacity}\n");
    w!(o, 0, "Access Modes:\t{modes}\n");
    if pvc.pointer("/spec/volumeMode").is_some() {
        w!(o, 0, "VolumeMode:\t{}\n", s(pvc, "/spec/volumeMode"));
    }
    if let Some(ds) = pvc.pointer("/spec/dataSource") {
        o.w(0, "DataSource:\n");
        if ds.get("apiGroup").is_some() {
            w!(o, 1, "APIGroup:\t{}\n", s(ds, "/apiGroup"));
        }
        w!(o, 1, "Kind:\t{}\n", s(ds, "/kind"));
        w!(o, 1, "Name:\t{}\n", s(ds, "/name"));
    }
    o.w(0, "Used By:\t");
    if users.is_empty() {
        o.w(0, "<none>\n");
    }
    for (n, u) in users.iter().enumerate() {
        if n != 0 {
            o.w(0, "\t");
        }
        w!(o, 0, "{u}\n");
    }
    let conds = arr(pvc, "/status/conditions");
    if !conds.is_empty() {
        o.w(0, "Conditions:\n");
        o.w(
            1,
            "Type\tStatus\tLastProbeTime\tLastTransitionTime\tReason\tMessage\n",
        );
        o.w(
            1,
            "----\t------\t-----------------\t------------------\t------\t-------\n",
        );
        for c in conds {
            w!(
                o,
                1,
                "{} \t{} \t{} \t{} \t{} \t{}\n",
                s(c, "/type"),
                s(c, "/status"),
                rfc1123z(s(c, "/lastProbeTime")),
                rfc1123z(s(c, "/lastTransitionTime")),
                s(c, "/reason"),
                s(c, "/message")
            );
        }
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}

pub(crate) async fn hpa(hpa: &Value, ev: &Events) -> Result<String> {
    let mut o = Out::new();
    header(&mut o, hpa);
    labels_annotations(&mut o, hpa);
    w!(
        o,
        0,
        "CreationTimestamp:\t{}\n",
        rfc1123z(s(hpa, "/metadata/creationTimestamp"))
    );
    let kind = s(hpa, "/spec/scaleTargetRef/kind");
    w!(
        o,
        0,
        "Reference:\t{kind}/{}\n",
        s(hpa, "/spec/scaleTargetRef/name")
    );
    o.w(0, "Metrics:\t( current / target )\n");
    let current = arr(hpa, "/status/currentMetrics");
    for (n, m) in arr(hpa, "/spec/metrics").iter().enumerate() {
        let cur = current.get(n);
        let cur_q = |src: &str, field: &str| -> String {
            cur.and_then(|c| c.get(src))
                .and_then(|c| c.pointer(&format!("/current/{field}")))
                .map(qty)
                .unwrap_or_else(|| "<unknown>".into())
        };
        match s(m, "/type") {
            "External" => {
                let metric = s(m, "/external/metric/name");
                if let Some(t) = m.pointer("/external/target/averageValue") {
                    w!(
                        o,
                        1,
                        "{metric:?} (target average value):\t{} / {}\n",
                        cur_q("external", "averageValue"),
                        qty(t)
                    );
                } else {
                    w!(
                        o,
                        1,
                        "{metric:?} (target value):\t{} / {}\n",
                        cur_q("external", "value"),
                        m.pointer("/external/target/value")
                            .map(qty)
                            .unwrap_or_else(|| "0".into())
                    );
                }
            }
            "Pods" => {
                w!(
                    o,
                    1,
                    "{:?} on pods:\t{} / {}\n",
                    s(m, "/pods/metric/name"),
                    cur_q("pods", "averageValue"),
                    m.pointer("/pods/target/averageValue")
                        .map(qty)
                        .unwrap_or_else(|| "0".into())
                );
            }
            "Object" => {
                w!(
                    o,
                    1,
                    "\"{}\" on {}/{} ",
                    s(m, "/object/metric/name"),
                    s(m, "/object/describedObject/kind"),
                    s(m, "/object/describedObject/name")
                );
                if s(m, "/object/target/type") == "AverageValue" {
                    w!(
                        o,
                        0,
                        "(target average value):\t{} / {}\n",
                        cur_q("object", "averageValue"),
                        m.pointer("/object/target/averageValue")
                            .map(qty)
                            .unwrap_or_else(|| "0".into())
                    );
                } else {
                    w!(
                        o,
                        0,
                        "(target value):\t{} / {}\n",
                        cur_q("object", "value"),
                        m.pointer("/object/target/value")
                            .map(qty)
                            .unwrap_or_else(|| "0".into())
                    );
                }
            }
            t @ ("Resource" | "ContainerResource") => {
                let src = if t == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let r = &m[src];
                if t == "Resource" {
                    w!(o, 1, "resource {} on pods", s(r, "/name"));
                } else {
                    w!(
                        o,
                        1,
                        "resource {} of container \"{}\" on pods",
                        s(r, "/name"),
                        s(r, "/container")
                    );
                }
                if let Some(av) = r.pointer("/target/averageValue") {
                    w!(o, 0, ":\t{} / {}\n", cur_q(src, "averageValue"), qty(av));
                } else {
                    let c = cur.and_then(|c| c.get(src));
                    let current = match c
                        .and_then(|c| c.pointer("/current/averageUtilization"))
                        .and_then(Value::as_i64)
                    {
                        Some(u) => format!(
                            "{u}% ({})",
                            c.and_then(|c| c.pointer("/current/averageValue"))
                                .map(qty)
                                .unwrap_or_else(|| "0".into())
                        ),
                        None => "<unknown>".into(),
                    };
                    let target = r
                        .pointer("/target/averageUtilization")
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".into());
                    w!(
                        o,
                        1,
                        "(as a percentage of request):\t{current} / {target}\n"
                    );
                }
            }
            other => w!(o, 1, "<unknown metric type {other:?}>\n"),
        }
    }
    let min = hpa
        .pointer("/spec/minReplicas")
        .and_then(Value::as_i64)
        .map(|m| m.to_string())
        .unwrap_or_else(|| "<unset>".into());
    w!(o, 0, "Min replicas:\t{min}\n");
    w!(o, 0, "Max replicas:\t{}\n", i(hpa, "/spec/maxReplicas"));
    if let Some(b) = hpa.pointer("/spec/behavior") {
        o.w(0, "Behavior:\n");
        for (key, title) in [("scaleUp", "Scale Up"), ("scaleDown", "Scale Down")] {
            let Some(r) = b.get(key) else { continue };
            w!(o, 1, "{title}:\n");
            if let Some(sw) = r.get("stabilizationWindowSeconds").and_then(Value::as_i64) {
                w!(o, 2, "Stabilization Window: {sw} seconds\n");
            }
            let policies = arr(r, "/policies");
            if !policies.is_empty() {
                let sel = match s(r, "/selectPolicy") {
                    "" => "Max",
                    x => x,
                };
                w!(o, 2, "Select Policy: {sel}\n");
                o.w(2, "Policies:\n");
                for p in policies {
                    w!(
                        o,
                        3,
                        "- Type: {}\tValue: {}\tPeriod: {} seconds\n",
                        s(p, "/type"),
                        i(p, "/value"),
                        i(p, "/periodSeconds")
                    );
                }
            }
        }
    }
    w!(o, 0, "{kind} pods:\t");
    w!(
        o,
        0,
        "{} current / {} desired\n",
        i(hpa, "/status/currentReplicas"),
        i(hpa, "/status/desiredReplicas")
    );
    let conds = arr(hpa, "/status/conditions");
    if !conds.is_empty() {
        o.w(0, "Conditions:\n");
        o.w(1, "Type\tStatus\tReason\tMessage\n");
        o.w(1, "----\t------\t------\t-------\n");
        for c in conds {
            w!(
                o,
                1,
                "{}\t{}\t{}\t{}\n",
                s(c, "/type"),
                s(c, "/status"),
                s(c, "/reason"),
                s(c, "/message")
            );
        }
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}

/// `resourcehelper.PodRequests`/`PodLimits` (no pod-level resources): the containers' sum,
/// at least each init container's, plus the overhead.
fn pod_totals(
    pod: &Value,
    kind: &str,
) -> std::collections::BTreeMap<String, bosun_api::quantity::Quantity> {
    use bosun_api::quantity::Quantity;
    use std::collections::BTreeMap;
    let mut sum: BTreeMap<String, Quantity> = BTreeMap::new();
    let add = |into: &mut BTreeMap<String, Quantity>, c: &Value| {
        for (n, q) in c
            .pointer(&format!("/resources/{kind}"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let q = parse_qty(Some(q));
            let v = match into.get(n) {
                Some(p) => p.add(&q),
                None => q,
            };
            into.insert(n.clone(), v);
        }
    };
    for c in arr(pod, "/spec/containers") {
        add(&mut sum, c);
    }
    for c in arr(pod, "/spec/initContainers") {
        let mut one = BTreeMap::new();
        add(&mut one, c);
        for (n, q) in one {
            if sum.get(&n).is_none_or(|cur| q > *cur) {
                sum.insert(n, q);
            }
        }
    }
    if kind == "requests" {
        for (n, q) in pod
            .pointer("/spec/overhead")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let q = parse_qty(Some(q));
            let v = match sum.get(n) {
                Some(p) => p.add(&q),
                None => q,
            };
            sum.insert(n.clone(), v);
        }
    }
    sum
}

pub(crate) async fn node(ctx: &Ctx, node: &Value, ev: &Events) -> Result<String> {
    use bosun_api::quantity::Quantity;
    let name = s(node, "/metadata/name");
    let fs = format!("spec.nodeName={name},status.phase!=Succeeded,status.phase!=Failed");
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("fieldSelector", &fs)
        .finish();
    let pods = list(ctx, &format!("/api/v1/pods?{q}")).await;
    let lease = crate::get::get_json(
        &ctx.client,
        &format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"),
        "application/json",
    )
    .await;
    let mut o = Out::new();
    w!(o, 0, "Name:\t{name}\n");
    let mut roles: Vec<String> = Vec::new();
    for (k, v) in string_map(node, "/metadata/labels") {
        if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
            if !r.is_empty() {
                roles.push(r.to_string());
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.push(v);
        }
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        o.w(0, "Roles:\t<none>\n");
    } else {
        w!(o, 0, "Roles:\t{}\n", roles.join(","));
    }
    labels_annotations(&mut o, node);
    w!(
        o,
        0,
        "CreationTimestamp:\t{}\n",
        rfc1123z(s(node, "/metadata/creationTimestamp"))
    );
    taints_multiline(&mut o, "Taints", arr(node, "/spec/taints"));
    w!(
        o,
        0,
        "Unschedulable:\t{}\n",
        node.pointer("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    );
    match lease {
        Ok(l) => {
            o.w(0, "Lease:\n");
            let or_unset = |v: &str| {
                if v.is_empty() {
                    "<unset>".to_string()
                } else {
                    v.to_string()
                }
            };
            w!(
                o,
                1,
                "HolderIdentity:\t{}\n",
                or_unset(s(&l, "/spec/holderIdentity"))
            );
            for (key, title) in [
                ("/spec/acquireTime", "AcquireTime"),
                ("/spec/renewTime", "RenewTime"),
            ] {
                let t = s(&l, key);
                let t = if t.is_empty() {
                    "<unset>".to_string()
                } else {
                    rfc1123z(t)
                };
                w!(o, 1, "{title}:\t{t}\n");
            }
        }
        Err(e) => {
            let msg = match &e {
                crate::Error::Api(st) => st.message.clone(),
                other => other.to_string(),
            };
            w!(o, 0, "Lease:\tFailed to get lease: {msg}\n");
        }
    }
    let conds = arr(node, "/status/conditions");
    if !conds.is_empty() {
        o.w(
            0,
            "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n",
        );
        o.w(
            1,
            "----\t------\t-----------------\t------------------\t------\t-------\n",
        );
        for c in conds {
            w!(
                o,
                1,
                "{} \t{} \t{} \t{} \t{} \t{}\n",
                s(c, "/type"),
                s(c, "/status"),
                rfc1123z(s(c, "/lastHeartbeatTime")),
                rfc1123z(s(c, "/lastTransitionTime")),
                s(c, "/reason"),
                s(c, "/message")
            );
        }
    }
    o.w(0, "Addresses:\n");
    for a in arr(node, "/status/addresses") {
        w!(o, 1, "{}:\t{}\n", s(a, "/type"), s(a, "/address"));
    }
    for (key, title) in [
        ("/status/capacity", "Capacity"),
        ("/status/allocatable", "Allocatable"),
    ] {
        let l = resource_list(node, key);
        if !l.is_empty() {
            w!(o, 0, "{title}:\n");
            for (n, q) in l {
                w!(o, 0, "  {n}:\t{q}\n");
            }
        }
    }
    o.w(0, "System Info:\n");
    for (key, title) in [
        ("machineID", "Machine ID"),
        ("systemUUID", "System UUID"),
        ("bootID", "Boot ID"),
        ("kernelVersion", "Kernel Version"),
        ("osImage", "OS Image"),
        ("operatingSystem", "Operating System"),
        ("architecture", "Architecture"),
        ("containerRuntimeVersion", "Container Runtime Version"),
        ("kubeletVersion", "Kubelet Version"),
        ("kubeProxyVersion", "Kube-Proxy Version"),
    ] {
        w!(
            o,
            0,
            "  {title}:\t{}\n",
            s(node, &format!("/status/nodeInfo/{key}"))
        );
    }
    if !s(node, "/spec/podCIDR").is_empty() {
        w!(o, 0, "PodCIDR:\t{}\n", s(node, "/spec/podCIDR"));
    }
    let cidrs: Vec<&str> = arr(node, "/spec/podCIDRs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !cidrs.is_empty() {
        w!(o, 0, "PodCIDRs:\t{}\n", cidrs.join(","));
    }
    if !s(node, "/spec/providerID").is_empty() {
        w!(o, 0, "ProviderID:\t{}\n", s(node, "/spec/providerID"));
    }
    match pods {
        Ok(pods) => {
            let alloc_key = if node
                .pointer("/status/allocatable")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
            {
                "/status/allocatable"
            } else {
                "/status/capacity"
            };
            let alloc = |r: &str| parse_qty(node.pointer(&format!("{alloc_key}/{r}")));
            let pct = |x: f64, of: f64| -> i64 {
                let f = x / of * 100.0;
                // Go's int64(NaN or ±Inf) on amd64.
                if f.is_finite() {
                    f as i64
                } else {
                    i64::MIN
                }
            };
            w!(o, 0, "Non-terminated Pods:\t({} in total)\n", pods.len());
            o.w(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n");
            o.w(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n");
            let (acpu, amem) = (
                alloc("cpu").milli_value() as f64,
                alloc("memory").value() as f64,
            );
            let zero = Quantity::default();
            let mut total_req: std::collections::BTreeMap<String, Quantity> = Default::default();
            let mut total_lim: std::collections::BTreeMap<String, Quantity> = Default::default();
            for p in &pods {
                let (req, lim) = (pod_totals(p, "requests"), pod_totals(p, "limits"));
                let get = |m: &std::collections::BTreeMap<String, Quantity>, k: &str| {
                    m.get(k).cloned().unwrap_or_else(|| zero.clone())
                };
                let (cr, cl, mr, ml) = (
                    get(&req, "cpu"),
                    get(&lim, "cpu"),
                    get(&req, "memory"),
                    get(&lim, "memory"),
                );
                w!(
                    o,
                    1,
                    "{}\t{}\t\t{cr} ({}%)\t{cl} ({}%)\t{mr} ({}%)\t{ml} ({}%)\t{}\n",
                    s(p, "/metadata/namespace"),
                    s(p, "/metadata/name"),
                    pct(cr.milli_value() as f64, acpu),
                    pct(cl.milli_value() as f64, acpu),
                    pct(mr.value() as f64, amem),
                    pct(ml.value() as f64, amem),
                    since(s(p, "/metadata/creationTimestamp"))
                );
                for (into, from) in [(&mut total_req, req), (&mut total_lim, lim)] {
                    for (k, q) in from {
                        let v = match into.get(&k) {
                            Some(prev) => prev.add(&q),
                            None => q,
                        };
                        into.insert(k, v);
                    }
                }
            }
            o.w(
                0,
                "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n",
            );
            o.w(1, "Resource\tRequests\tLimits\n");
            o.w(1, "--------\t--------\t------\n");
            let frac = |q: &Quantity, of: &Quantity, milli: bool| -> i64 {
                let (x, d) = if milli {
                    (q.milli_value(), of.milli_value())
                } else {
                    (q.value(), of.value())
                };
                if d == 0 {
                    0
                } else {
                    (x as f64 / d as f64 * 100.0) as i64
                }
            };
            for (r, milli) in [
                ("cpu", true),
                ("memory", false),
                ("ephemeral-storage", false),
            ] {
                let rq = total_req.get(r).cloned().unwrap_or_default();
                let lq = total_lim.get(r).cloned().unwrap_or_default();
                let a = alloc(r);
                w!(
                    o,
                    1,
                    "{r}\t{rq} ({}%)\t{lq} ({}%)\n",
                    frac(&rq, &a, milli),
                    frac(&lq, &a, milli)
                );
            }
            let names: Vec<String> = resource_list(node, alloc_key)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            for n in names.iter().filter(|n| n.starts_with("hugepages-")) {
                let rq = total_req.get(n).cloned().unwrap_or_default();
                let lq = total_lim.get(n).cloned().unwrap_or_default();
                let a = alloc(n);
                w!(
                    o,
                    1,
                    "{n}\t{rq} ({}%)\t{lq} ({}%)\n",
                    frac(&rq, &a, false),
                    frac(&lq, &a, false)
                );
            }
            for n in names.iter().filter(|n| {
                !n.starts_with("hugepages-")
                    && !matches!(n.as_str(), "cpu" | "memory" | "ephemeral-storage" | "pods")
            }) {
                let rq = total_req.get(n).cloned().unwrap_or_default();
                let lq = total_lim.get(n).cloned().unwrap_or_default();
                w!(o, 1, "{n}\t{rq}\t{lq}\n");
            }
        }
        Err(crate::Error::Api(st)) if st.code == 403 => o.w(0, "Pods:\tnot authorized\n"),
        Err(e) => return Err(e),
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}

pub(crate) async fn endpoints(ep: &Value, ev: &Events) -> Result<String> {
    let mut o = Out::new();
    header(&mut o, ep);
    labels_annotations(&mut o, ep);
    o.w(0, "Subsets:\n");
    for sub in arr(ep, "/subsets") {
        for (key, title) in [
            ("/addresses", "Addresses"),
            ("/notReadyAddresses", "NotReadyAddresses"),
        ] {
            let ips: Vec<&str> = arr(sub, key).iter().map(|a| s(a, "/ip")).collect();
            let ips = if ips.is_empty() {
                "<none>".to_string()
            } else {
                ips.join(",")
            };
            w!(o, 1, "{title}:\t{ips}\n");
        }
        let ports = arr(sub, "/ports");
        if !ports.is_empty() {
            o.w(1, "Ports:\n");
            o.w(2, "Name\tPort\tProtocol\n");
            o.w(2, "----\t----\t--------\n");
            for p in ports {
                let name = match s(p, "/name") {
                    "" => "<unset>",
                    n => n,
                };
                w!(o, 2, "{name}\t{}\t{}\n", i(p, "/port"), s(p, "/protocol"));
            }
        }
        o.w(0, "\n");
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}

/// The length of base64 data once decoded.
fn decoded_len(b64: &str) -> usize {
    let n = b64.trim_end_matches('=').len();
    n * 3 / 4
}

pub(crate) async fn config_map(cm: &Value, ev: &Events) -> Result<String> {
    let mut o = Out::new();
    header(&mut o, cm);
    labels_annotations(&mut o, cm);
    o.w(0, "\nData\n====\n");
    for (k, v) in string_map(cm, "/data") {
        w!(o, 0, "{k}:\n----\n");
        w!(o, 0, "{v}\n");
        o.w(0, "\n");
    }
    o.w(0, "\nBinaryData\n====\n");
    for (k, v) in string_map(cm, "/binaryData") {
        w!(o, 0, "{k}: {} bytes\n", decoded_len(&v));
    }
    o.w(0, "\n");
    describe_events(&mut o, ev);
    Ok(o.finish())
}

pub(crate) async fn secret(sec: &Value) -> Result<String> {
    use base64::Engine;
    let mut o = Out::new();
    header(&mut o, sec);
    labels_annotations(&mut o, sec);
    let ty = s(sec, "/type");
    w!(o, 0, "\nType:\t{ty}\n");
    o.w(0, "\nData\n====\n");
    for (k, v) in string_map(sec, "/data") {
        if k == "token" && ty == "kubernetes.io/service-account-token" {
            let token = base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            w!(o, 0, "{k}:\t{token}\n");
        } else {
            w!(o, 0, "{k}:\t{} bytes\n", decoded_len(&v));
        }
    }
    Ok(o.finish())
}

/// The ServiceAccount describer of kubectl 1.34: image pull secrets, mountable secrets
/// (missing ones marked) and the legacy token Secrets annotated with the account's name.
pub(crate) async fn service_account(ctx: &Ctx, sa: &Value, ev: &Events) -> Result<String> {
    let ns = s(sa, "/metadata/namespace");
    let name = s(sa, "/metadata/name");
    let secrets = list(ctx, &format!("/api/v1/namespaces/{ns}/secrets")).await?;
    let exists = |n: &str| secrets.iter().any(|x| s(x, "/metadata/name") == n);
    let names = |p: &str| -> Vec<String> {
        arr(sa, p)
            .iter()
            .map(|r| s(r, "/name").to_string())
            .collect()
    };
    let (pull, mount) = (names("/imagePullSecrets"), names("/secrets"));
    let tokens: Vec<String> = secrets
        .iter()
        .filter(|x| {
            s(x, "/type") == "kubernetes.io/service-account-token"
                && x.pointer("/metadata/annotations")
                    .and_then(|a| a.get("kubernetes.io/service-account.name"))
                    .and_then(Value::as_str)
                    == Some(name)
        })
        .map(|x| s(x, "/metadata/name").to_string())
        .collect();
    let mut o = Out::new();
    header(&mut o, sa);
    labels_annotations(&mut o, sa);
    for (head, items) in [
        ("Image pull secrets:", &pull),
        ("Mountable secrets: ", &mount),
        ("Tokens:             ", &tokens),
    ] {
        if items.is_empty() {
            w!(o, 0, "{head}\t<none>\n");
            continue;
        }
        let mut prefix = head;
        for n in items {
            if exists(n) {
                w!(o, 0, "{prefix}\t{n}\n");
            } else {
                w!(o, 0, "{prefix}\t{n} (not found)\n");
            }
            prefix = "                   ";
        }
    }
    describe_events(&mut o, ev);
    Ok(o.finish())
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoints_like_kubectl() {
        let slices = vec![serde_json::json!({
            "ports": [{"name": "", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.3"]},
                {"addresses": ["10.0.0.4"]},
                {"addresses": ["10.0.0.5"]},
            ],
        })];
        assert_eq!(
            super::endpoints_of(&slices, ""),
            "10.0.0.1:8080,10.0.0.3:8080,10.0.0.4:8080 + 1 more..."
        );
        assert_eq!(super::endpoints_of(&[], ""), "<none>");
    }
}
