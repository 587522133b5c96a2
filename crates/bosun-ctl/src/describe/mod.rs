//! `describe`: kubectl's describers (`k8s.io/kubectl/pkg/describe/describe.go`) for Pod,
//! Node, ReplicationController, ReplicaSet, Deployment, Service, Namespace,
//! PersistentVolume, PersistentVolumeClaim, HorizontalPodAutoscaler, Endpoints, ConfigMap,
//! Secret, ServiceAccount, Job, CronJob, DaemonSet, StatefulSet, PodDisruptionBudget,
//! StorageClass, NetworkPolicy, EndpointSlice, PriorityClass, LimitRange and ResourceQuota,
//! line for line, and
//! kubectl's generic describer (the object's fields as `Title Case:` lines) for every other
//! kind; each followed by the object's events, through Go's tabwriter rules
//! ([`crate::tabwriter`]).

pub(crate) mod fmt;
mod kinds;
mod network;
mod pod;
mod policy;
mod workloads;

use serde_json::Value;

use self::fmt::{arr, s, since, w, Out};
use crate::discovery::{Discovery, Resource};
use crate::error::{Error, Result};
use crate::get::get_json;
use crate::{Ctx, SelectArgs};

pub(crate) async fn run(ctx: &Ctx, args: &[String], select: &SelectArgs) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let (reqs, _) = crate::get::parse_args(&disc, args)?;
    // `describe TYPE NAME` falls back to the objects whose names start with NAME.
    let prefix_ok = args.len() == 2 && !args[0].contains('/');
    let mut first = true;
    let mut first_error = None;
    for req in reqs {
        let ns = req.resource.namespaced.then(|| ctx.namespace.clone());
        let mut objs: Vec<Value> = Vec::new();
        // Objects found by name prefix are each printed with one more newline, as kubectl's
        // DescribeMatchingResources prints them.
        let mut by_prefix: Vec<Value> = Vec::new();
        if req.names.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if let Some(l) = &select.selector {
                q.append_pair("labelSelector", l);
            }
            if let Some(f) = &select.field_selector {
                q.append_pair("fieldSelector", f);
            }
            let path = format!(
                "{}?{}",
                req.resource
                    .collection_path(ns.as_deref().filter(|_| !select.all_namespaces)),
                q.finish()
            );
            objs = get_json(&ctx.client, &path, "application/json").await?["items"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        } else {
            for n in &req.names {
                match get_json(
                    &ctx.client,
                    &req.resource.object_path(ns.as_deref(), n),
                    "application/json",
                )
                .await
                {
                    Ok(o) => objs.push(o),
                    Err(e) if e.code() == 404 && prefix_ok => {
                        let all = get_json(
                            &ctx.client,
                            &req.resource.collection_path(ns.as_deref()),
                            "application/json",
                        )
                        .await?;
                        let matching: Vec<Value> = arr(&all, "/items")
                            .iter()
                            .filter(|o| s(o, "/metadata/name").starts_with(n.as_str()))
                            .cloned()
                            .collect();
                        if matching.is_empty() {
                            eprintln!("{}", e.kubectl_message());
                            first_error.get_or_insert(e);
                        }
                        by_prefix.extend(matching);
                    }
                    Err(e) => {
                        eprintln!("{}", e.kubectl_message());
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        for o in by_prefix {
            let text = describe(ctx, &req.resource, &o).await?;
            println!("{text}");
            first = false;
        }
        for o in objs {
            let text = describe(ctx, &req.resource, &o).await?;
            if first {
                print!("{text}");
            } else {
                print!("\n\n{text}");
            }
            first = false;
        }
    }
    if first && first_error.is_none() {
        // Nothing matched: kubectl says so on stderr (and exits 0).
        if select.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", ctx.namespace);
        }
    }
    first_error.map_or(Ok(()), |_| Err(Error::Reported))
}

/// One object as kubectl's describer for its kind prints it.
async fn describe(ctx: &Ctx, r: &Resource, o: &Value) -> Result<String> {
    match (r.group.as_str(), r.kind.as_str()) {
        ("", "Pod") => {
            let ev = events(ctx, o, None, false).await?;
            let mut out = Out::new();
            pod::describe_pod(&mut out, o);
            describe_events(&mut out, &ev);
            Ok(out.finish())
        }
        ("", "Node") => {
            let ev = events(ctx, o, Some("Node"), true).await?;
            kinds::node(ctx, o, &ev).await
        }
        ("", "ReplicationController") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            kinds::replication_controller(ctx, o, &ev).await
        }
        ("apps", "ReplicaSet") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            kinds::replica_set(ctx, o, &ev).await
        }
        ("apps", "Deployment") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            kinds::deployment(ctx, o, &ev).await
        }
        ("", "Service") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            kinds::service(ctx, o, &ev).await
        }
        ("", "Namespace") => kinds::namespace(ctx, o).await,
        ("", "PersistentVolume") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            kinds::persistent_volume(o, &ev).await
        }
        ("", "PersistentVolumeClaim") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            kinds::persistent_volume_claim(ctx, o, &ev).await
        }
        ("", "Endpoints") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            kinds::endpoints(o, &ev).await
        }
        ("", "ConfigMap") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            kinds::config_map(o, &ev).await
        }
        ("", "Secret") => kinds::secret(o).await,
        ("", "ServiceAccount") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            kinds::service_account(ctx, o, &ev).await
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            kinds::hpa(o, &ev).await
        }
        ("batch", "Job") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            workloads::job(o, &ev).await
        }
        ("batch", "CronJob") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            workloads::cron_job(o, &ev).await
        }
        ("apps", "DaemonSet") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            workloads::daemon_set(ctx, o, &ev).await
        }
        ("apps", "StatefulSet") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            workloads::stateful_set(ctx, o, &ev).await
        }
        ("policy", "PodDisruptionBudget") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            workloads::pod_disruption_budget(o, &ev).await
        }
        ("storage.k8s.io", "StorageClass") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            workloads::storage_class_describe(o, &ev).await
        }
        ("networking.k8s.io", "NetworkPolicy") => network::network_policy(o).await,
        ("discovery.k8s.io", "EndpointSlice") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            network::endpoint_slice(o, &ev).await
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            policy::priority_class(o, &ev).await
        }
        ("", "LimitRange") => policy::limit_range(o).await,
        ("", "ResourceQuota") => policy::resource_quota(o).await,
        _ => {
            let ev = events(ctx, o, Some(&r.kind), false).await?;
            Ok(generic(o, &ev))
        }
    }
}

/// The events about one object, as kubectl's `searchEvents` finds them.
pub(crate) struct Events(Vec<Value>);

/// GET a list (every page) and return its items.
pub(crate) async fn list(ctx: &Ctx, path: &str) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cont = String::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut p = format!("{path}{sep}limit=500");
        if !cont.is_empty() {
            p.push_str(&format!(
                "&{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("continue", &cont)
                    .finish()
            ));
        }
        let l = get_json(&ctx.client, &p, "application/json").await?;
        items.extend(arr(&l, "/items").iter().cloned());
        cont = s(&l, "/metadata/continue").to_string();
        if cont.is_empty() {
            return Ok(items);
        }
    }
}

/// `searchEvents`: events whose involvedObject is this object (name, namespace, kind unless
/// None, uid), in the object's namespace (all namespaces for cluster objects). Nodes also
/// get the events recorded with the node's name as its uid, as kubelets record them.
async fn events(ctx: &Ctx, o: &Value, kind: Option<&str>, by_name_too: bool) -> Result<Events> {
    let name = s(o, "/metadata/name");
    let ns = s(o, "/metadata/namespace");
    let search = |uid: String| {
        let mut f: Vec<(String, String)> = vec![
            ("involvedObject.name".into(), name.to_string()),
            ("involvedObject.namespace".into(), ns.to_string()),
        ];
        if let Some(k) = kind {
            f.push(("involvedObject.kind".into(), k.to_string()));
        }
        if !uid.is_empty() {
            f.push(("involvedObject.uid".into(), uid));
        }
        // fields.Set.AsSelector().String(): sorted by key.
        f.sort();
        let sel = f
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("fieldSelector", &sel)
            .finish();
        if ns.is_empty() {
            format!("/api/v1/events?{q}")
        } else {
            format!("/api/v1/namespaces/{ns}/events?{q}")
        }
    };
    let mut items = Vec::new();
    let mut paths = vec![search(s(o, "/metadata/uid").to_string())];
    if by_name_too {
        paths.push(search(name.to_string()));
    }
    for p in paths {
        match list(ctx, &p).await {
            Ok(l) => items.extend(l),
            // kubectl ignores a failed search (and prints what it found so far: nothing).
            Err(Error::Api(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Events(items))
}

/// `DescribeEvents` (kubectl 1.34): oldest (by lastTimestamp) first, ages, repeats as
/// `(xN over AGE)`.
pub(crate) fn describe_events(o: &mut Out, ev: &Events) {
    if ev.0.is_empty() {
        o.w(0, "Events:\t<none>\n");
        return;
    }
    o.flush();
    let mut items: Vec<&Value> = ev.0.iter().collect();
    let last = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(s(e, "/lastTimestamp"))
            .map(|t| t.timestamp_micros())
            .unwrap_or(i64::MIN)
    };
    items.sort_by_key(|e| last(e));
    o.w(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    o.w(1, "----\t------\t----\t----\t-------\n");
    for e in items {
        let first = if s(e, "/eventTime").is_empty() {
            since(s(e, "/firstTimestamp"))
        } else {
            since(s(e, "/eventTime"))
        };
        let count = fmt::i(e, "/count");
        let interval = if let Some(series) = e.get("series").filter(|x| !x.is_null()) {
            format!(
                "{} (x{} over {first})",
                since(s(series, "/lastObservedTime")),
                fmt::i(series, "/count")
            )
        } else if count > 1 {
            format!("{} (x{count} over {first})", since(s(e, "/lastTimestamp")))
        } else {
            first
        };
        let source = match s(e, "/source/component") {
            "" => s(e, "/reportingComponent"),
            c => c,
        };
        // kubectl 1.34 prints the message alone (later versions prefix the fieldPath).
        let message = s(e, "/message").trim();
        w!(
            o,
            1,
            "{}\t{}\t{interval}\t{source}\t{message}\n",
            s(e, "/type"),
            s(e, "/reason")
        );
    }
}

/// kubectl's generic describer: name, namespace, labels, annotations, then every other
/// field (sorted) as `Smart Label:  value`, then the events.
fn generic(o: &Value, ev: &Events) -> String {
    let mut out = Out::new();
    w!(out, 0, "Name:\t{}\n", s(o, "/metadata/name"));
    w!(out, 0, "Namespace:\t{}\n", s(o, "/metadata/namespace"));
    fmt::labels_multiline(&mut out, "Labels", &fmt::string_map(o, "/metadata/labels"));
    fmt::annotations_multiline(
        &mut out,
        "Annotations",
        &fmt::string_map(o, "/metadata/annotations"),
    );
    if let Some(m) = o.as_object() {
        unstructured(
            &mut out,
            0,
            m,
            "",
            &[
                ".metadata.managedFields",
                ".metadata.name",
                ".metadata.namespace",
                ".metadata.labels",
                ".metadata.annotations",
            ],
        );
    }
    describe_events(&mut out, ev);
    out.finish()
}

/// Go's `%v` of a decoded JSON scalar.
fn go_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => {
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    f.to_string()
                }
            }
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// `printUnstructuredContent`.
fn unstructured(
    out: &mut Out,
    level: usize,
    content: &serde_json::Map<String, Value>,
    prefix: &str,
    skip: &[&str],
) {
    let mut fields: Vec<&String> = content.keys().collect();
    fields.sort();
    for field in fields {
        let value = &content[field];
        let path = format!("{prefix}.{field}");
        if skip.contains(&path.as_str()) {
            continue;
        }
        match value {
            Value::Object(m) => {
                w!(out, level, "{}:\n", smart_label(field));
                unstructured(out, level + 1, m, &path, skip);
            }
            Value::Array(a) => {
                w!(out, level, "{}:\n", smart_label(field));
                for child in a {
                    match child {
                        Value::Object(m) => unstructured(out, level + 1, m, &path, skip),
                        other => w!(out, level + 1, "{}\n", go_scalar(other)),
                    }
                }
            }
            other => w!(
                out,
                level,
                "{}:\t{}\n",
                smart_label(field),
                go_scalar(other)
            ),
        }
    }
}

/// `fatih/camelcase.Split`: runs of lower case, upper case (the last upper letter of a run
/// followed by lower case starts the next word), digits and others.
fn camel_split(s: &str) -> Vec<String> {
    #[derive(PartialEq, Clone, Copy)]
    enum C {
        Lower,
        Upper,
        Digit,
        Other,
    }
    let class = |c: char| {
        if c.is_lowercase() {
            C::Lower
        } else if c.is_uppercase() {
            C::Upper
        } else if c.is_numeric() {
            C::Digit
        } else {
            C::Other
        }
    };
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = None;
    for c in s.chars() {
        let k = class(c);
        if Some(k) == last {
            if let Some(r) = runs.last_mut() {
                r.push(c);
            }
        } else {
            runs.push(vec![c]);
        }
        last = Some(k);
    }
    // Upper run followed by lower run: move the last upper letter over.
    for i in 0..runs.len().saturating_sub(1) {
        let (a, b) = (runs[i].first().copied(), runs[i + 1].first().copied());
        if let (Some(a), Some(b)) = (a, b) {
            if a.is_uppercase() && b.is_lowercase() {
                if let Some(c) = runs[i].pop() {
                    runs[i + 1].insert(0, c);
                }
            }
        }
    }
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.into_iter().collect())
        .collect()
}

/// `smartLabelFor`: camelCase to `Camel Case`, known acronyms upper-cased.
fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    let parts = camel_split(field);
    let mut merged: Vec<String> = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        let part = &parts[i];
        if i + 1 < parts.len() {
            let next = &parts[i + 1];
            let all_upper = part.chars().all(|c| !c.is_alphabetic() || c.is_uppercase());
            if part.chars().count() >= 2
                && all_upper
                && next.chars().next().is_some_and(char::is_uppercase)
            {
                merged.push(format!("{part}{next}"));
                i += 2;
                continue;
            }
        }
        merged.push(part.clone());
        i += 1;
    }
    merged
        .into_iter()
        .filter(|p| p != "_")
        .map(|p| {
            if ["API", "URL", "UID", "GUID"].contains(&p.to_uppercase().as_str()) {
                p.to_uppercase()
            } else if p.to_lowercase() == p {
                let mut c = p.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().chain(c).collect(),
                    None => p,
                }
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn smart_labels_like_kubectl() {
        assert_eq!(super::smart_label("apiVersion"), "API Version");
        assert_eq!(
            super::smart_label("creationTimestamp"),
            "Creation Timestamp"
        );
        assert_eq!(super::smart_label("uid"), "UID");
        assert_eq!(super::smart_label("podCIDR"), "Pod CIDR");
        assert_eq!(
            super::smart_label("app.kubernetes.io/name"),
            "app.kubernetes.io/name"
        );
    }
}
