//! The smaller verbs: scale, label/annotate, patch, logs, rollout, cordon/uncordon, taint,
//! api-resources, version.

use std::time::{Duration, Instant};

use futures::{AsyncBufReadExt, TryStreamExt};
use serde_json::{json, Value};

use crate::apply::{patch as smp, send};
use crate::discovery::{Discovery, Resource};
use crate::error::{Error, Result};
use crate::get::get_json;
use crate::printer::TabWriter;
use crate::{Ctx, SelectArgs};

/// `TYPE NAME REST...` or `TYPE/NAME REST...` → (type, name, rest).
fn one(disc: &Discovery, args: &[String]) -> Result<(Resource, String, Vec<String>)> {
    let Some(first) = args.first() else {
        return Err(Error::usage("you must specify a resource type and name"));
    };
    if let Some((t, n)) = first.split_once('/') {
        return Ok((disc.resolve(t)?, n.to_string(), args[1..].to_vec()));
    }
    let name = args
        .get(1)
        .ok_or_else(|| Error::usage("you must specify the name of the resource"))?;
    Ok((disc.resolve(first)?, name.clone(), args[2..].to_vec()))
}

fn ns_of<'a>(ctx: &'a Ctx, r: &Resource) -> Option<&'a str> {
    r.namespaced.then_some(ctx.namespace.as_str())
}

async fn merge_patch(client: &kube::Client, path: &str, p: &Value) -> Result<Value> {
    send(
        client,
        "PATCH",
        path,
        "application/merge-patch+json",
        serde_json::to_vec(p).unwrap_or_default(),
    )
    .await
}

pub(crate) async fn scale(ctx: &Ctx, args: &[String], replicas: i64) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let (r, name, _) = one(&disc, args)?;
    let path = r.object_path(ns_of(ctx, &r), &name) + "/scale";
    merge_patch(&ctx.client, &path, &json!({"spec": {"replicas": replicas}})).await?;
    println!("{}/{name} scaled", r.kind_prefix());
    Ok(())
}

/// `label`/`annotate` (`field` is `labels` or `annotations`).
pub(crate) async fn label(
    ctx: &Ctx,
    args: &[String],
    overwrite: bool,
    select: &SelectArgs,
    field: &str,
) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let (r, names, changes) = if select.selector.is_some() {
        let r = disc.resolve(args.first().map(String::as_str).unwrap_or(""))?;
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(l) = &select.selector {
            q.append_pair("labelSelector", l);
        }
        let path = format!("{}?{}", r.collection_path(ns_of(ctx, &r)), q.finish());
        let list = get_json(&ctx.client, &path, "application/json").await?;
        let names: Vec<String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.pointer("/metadata/name").and_then(Value::as_str))
            .map(String::from)
            .collect();
        (r, names, args[1..].to_vec())
    } else {
        let (r, n, rest) = one(&disc, args)?;
        (r, vec![n], rest)
    };
    if changes.is_empty() {
        return Err(Error::usage(format!(
            "at least one {} update is required",
            &field[..field.len() - 1]
        )));
    }
    let mut set = serde_json::Map::new();
    for c in &changes {
        if let Some(k) = c.strip_suffix('-') {
            set.insert(k.to_string(), Value::Null);
        } else if let Some((k, v)) = c.split_once('=') {
            set.insert(k.to_string(), Value::String(v.to_string()));
        } else {
            return Err(Error::usage(format!(
                "invalid {} format: {c}",
                &field[..field.len() - 1]
            )));
        }
    }
    let verb = if field == "labels" {
        "labeled"
    } else {
        "annotated"
    };
    for name in names {
        let path = r.object_path(ns_of(ctx, &r), &name);
        if !overwrite {
            let cur = get_json(&ctx.client, &path, "application/json").await?;
            for (k, v) in &set {
                if let Some(old) = cur
                    .pointer(&format!("/metadata/{field}"))
                    .and_then(|m| m.get(k))
                {
                    if !v.is_null() && old != v {
                        return Err(Error::usage(format!(
                            "'{k}' already has a value ({}), and --overwrite is false",
                            old.as_str().unwrap_or("")
                        )));
                    }
                }
            }
        }
        merge_patch(
            &ctx.client,
            &path,
            &json!({"metadata": {field: set.clone()}}),
        )
        .await?;
        println!("{}/{name} {verb}", r.kind_prefix());
    }
    Ok(())
}

pub(crate) async fn patch(ctx: &Ctx, args: &[String], p: &str, ty: &str) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let (r, name, _) = one(&disc, args)?;
    let value: Value = serde_yaml::from_str(p)
        .map_err(|e| Error::usage(format!("unable to parse \"{p}\": {e}")))?;
    let ct = match ty {
        "strategic" => "application/strategic-merge-patch+json",
        "merge" => "application/merge-patch+json",
        "json" => "application/json-patch+json",
        other => {
            return Err(Error::usage(format!(
                "--type must be one of [json merge strategic], not \"{other}\""
            )))
        }
    };
    let path = r.object_path(ns_of(ctx, &r), &name);
    let before = get_json(&ctx.client, &path, "application/json").await?;
    let after = send(
        &ctx.client,
        "PATCH",
        &path,
        ct,
        serde_json::to_vec(&value).unwrap_or_default(),
    )
    .await?;
    let same =
        before.pointer("/metadata/resourceVersion") == after.pointer("/metadata/resourceVersion");
    println!(
        "{}/{name} patched{}",
        r.kind_prefix(),
        if same { " (no change)" } else { "" }
    );
    Ok(())
}

pub(crate) async fn logs(
    ctx: &Ctx,
    name: &str,
    container: Option<&str>,
    follow: bool,
    previous: bool,
    tail: Option<i64>,
    timestamps: bool,
) -> Result<()> {
    let pod = name
        .strip_prefix("pod/")
        .or_else(|| name.strip_prefix("pods/"))
        .unwrap_or(name);
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(c) = container {
        q.append_pair("container", c);
    }
    if follow {
        q.append_pair("follow", "true");
    }
    if previous {
        q.append_pair("previous", "true");
    }
    if let Some(t) = tail.filter(|t| *t >= 0) {
        q.append_pair("tailLines", &t.to_string());
    }
    if timestamps {
        q.append_pair("timestamps", "true");
    }
    let path = format!(
        "/api/v1/namespaces/{}/pods/{pod}/log?{}",
        ctx.namespace,
        q.finish()
    );
    let req = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| Error::usage(format!("building the request: {e}")))?;
    let stream = ctx.client.request_stream(req).await?;
    let mut lines = stream.lines();
    while let Some(l) = lines.try_next().await.map_err(|source| Error::Io {
        what: "reading the logs".into(),
        source,
    })? {
        println!("{l}");
    }
    Ok(())
}

pub(crate) async fn cordon(ctx: &Ctx, node: &str, on: bool) -> Result<()> {
    let node = node
        .strip_prefix("node/")
        .or_else(|| node.strip_prefix("nodes/"))
        .unwrap_or(node);
    let path = format!("/api/v1/nodes/{node}");
    let cur = get_json(&ctx.client, &path, "application/json").await?;
    let is = cur
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let word = if on { "cordoned" } else { "uncordoned" };
    if is == on {
        println!("node/{node} already {word}");
        return Ok(());
    }
    merge_patch(
        &ctx.client,
        &path,
        &json!({"spec": {"unschedulable": if on { json!(true) } else { Value::Null }}}),
    )
    .await?;
    println!("node/{node} {word}");
    Ok(())
}

pub(crate) async fn taint(ctx: &Ctx, args: &[String], overwrite: bool) -> Result<()> {
    let (node, specs) = match args.first().map(String::as_str) {
        Some(t) if t.starts_with("node/") || t.starts_with("nodes/") => (
            t.split_once('/').map(|x| x.1).unwrap_or("").to_string(),
            &args[1..],
        ),
        Some("node") | Some("nodes") | Some("no") if args.len() >= 2 => {
            (args[1].clone(), &args[2..])
        }
        _ => {
            return Err(Error::usage(
                "usage: taint nodes NAME KEY[=VALUE]:EFFECT[-] ...",
            ))
        }
    };
    if specs.is_empty() {
        return Err(Error::usage("at least one taint update is required"));
    }
    let path = format!("/api/v1/nodes/{node}");
    let cur = get_json(&ctx.client, &path, "application/json").await?;
    let mut taints: Vec<Value> = cur
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut removed = false;
    for s in specs {
        if let Some(rm) = s.strip_suffix('-') {
            let (key, effect) = match rm.split_once(':') {
                Some((k, e)) => (k, Some(e)),
                None => (rm, None),
            };
            let before = taints.len();
            taints.retain(|t| !(t["key"] == key && effect.is_none_or(|e| t["effect"] == e)));
            if taints.len() == before {
                return Err(Error::usage(format!("taint \"{rm}\" not found")));
            }
            removed = true;
            continue;
        }
        let (kv, effect) = s
            .rsplit_once(':')
            .ok_or_else(|| Error::usage(format!("invalid taint spec: {s}")))?;
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            return Err(Error::usage(format!(
                "invalid taint spec: {s}, unsupported taint effect {effect}"
            )));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (kv, None),
        };
        let mut t = json!({"key": key, "effect": effect});
        if let Some(v) = value {
            t["value"] = json!(v);
        }
        if let Some(i) = taints
            .iter()
            .position(|x| x["key"] == key && x["effect"] == effect)
        {
            if !overwrite {
                return Err(Error::usage(format!(
                    "node {node} already has {key} taint(s) with same effect(s) and --overwrite is false"
                )));
            }
            taints[i] = t;
        } else {
            taints.push(t);
        }
    }
    merge_patch(&ctx.client, &path, &json!({"spec": {"taints": taints}})).await?;
    println!(
        "node/{node} {}",
        if removed { "untainted" } else { "tainted" }
    );
    Ok(())
}

pub(crate) async fn api_resources(
    ctx: &Ctx,
    output: Option<&str>,
    namespaced: Option<bool>,
    group: Option<&str>,
) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let mut rs: Vec<&Resource> = disc
        .resources
        .iter()
        .filter(|r| namespaced.is_none_or(|n| r.namespaced == n))
        .filter(|r| group.is_none_or(|g| r.group == g))
        .collect();
    // kubectl: by group (core first), then name.
    rs.sort_by(|a, b| (&a.group, &a.plural).cmp(&(&b.group, &b.plural)));
    if output == Some("name") {
        for r in rs {
            println!("{}", r.plural_group());
        }
        return Ok(());
    }
    let wide = output == Some("wide");
    let mut tw = TabWriter::new();
    let mut header = vec!["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"];
    if wide {
        header.extend(["VERBS", "CATEGORIES"]);
    }
    tw.row(header.into_iter().map(String::from));
    for r in rs {
        let mut row = vec![
            r.plural.clone(),
            r.short_names.join(","),
            r.api_version(),
            r.namespaced.to_string(),
            r.kind.clone(),
        ];
        if wide {
            row.push(format!("[{}]", r.verbs.join(" ")));
            row.push(r.categories.join(","));
        }
        tw.row(row);
    }
    print!("{}", tw.finish());
    Ok(())
}

pub(crate) async fn version(ctx: &Ctx) -> Result<()> {
    println!("Client Version: v1.34.0-bosun");
    let v = ctx.client.apiserver_version().await?;
    println!("Server Version: {}", v.git_version);
    Ok(())
}

const REVISION: &str = "deployment.kubernetes.io/revision";

/// The ReplicaSets a Deployment owns, with their revisions.
async fn owned_replicasets(ctx: &Ctx, deploy: &Value) -> Result<Vec<(i64, Value)>> {
    let uid = deploy
        .pointer("/metadata/uid")
        .cloned()
        .unwrap_or(Value::Null);
    let list = get_json(
        &ctx.client,
        &format!("/apis/apps/v1/namespaces/{}/replicasets", ctx.namespace),
        "application/json",
    )
    .await?;
    let mut out: Vec<(i64, Value)> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rs| {
            rs.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|o| o.iter().any(|r| r["uid"] == uid))
        })
        .map(|rs| {
            let rev = rs
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(REVISION))
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (rev, rs.clone())
        })
        .collect();
    out.sort_by_key(|(r, _)| *r);
    Ok(out)
}

pub(crate) async fn rollout(
    ctx: &Ctx,
    action: &str,
    args: &[String],
    to_revision: i64,
    timeout: Option<&str>,
) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let (r, name, _) = one(&disc, args)?;
    if !["deployments", "daemonsets", "statefulsets"].contains(&r.plural.as_str()) {
        return Err(Error::usage(format!(
            "no rollout handler found for {}",
            r.plural_group()
        )));
    }
    let path = r.object_path(ns_of(ctx, &r), &name);
    let prefix = format!("{}/{name}", r.kind_prefix());
    match action {
        "restart" => {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            smp(&ctx.client, &path, &json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}})).await?;
            println!("{prefix} restarted");
        }
        "pause" | "resume" => {
            if r.plural != "deployments" {
                return Err(Error::usage(format!(
                    "{} are not supported by {action}",
                    r.plural_group()
                )));
            }
            let paused = action == "pause";
            let cur = get_json(&ctx.client, &path, "application/json").await?;
            if cur
                .pointer("/spec/paused")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                == paused
            {
                return Err(Error::usage(format!(
                    "{prefix} is already {}",
                    if paused { "paused" } else { "resumed" }
                )));
            }
            merge_patch(
                &ctx.client,
                &path,
                &json!({"spec": {"paused": if paused { json!(true) } else { Value::Null }}}),
            )
            .await?;
            println!("{prefix} {}", if paused { "paused" } else { "resumed" });
        }
        "history" => {
            if r.plural != "deployments" {
                return Err(Error::usage(
                    "history is supported for deployments only here",
                ));
            }
            let d = get_json(&ctx.client, &path, "application/json").await?;
            println!("{prefix} ");
            let mut rows = vec![("REVISION".to_string(), "CHANGE-CAUSE".to_string())];
            for (rev, rs) in owned_replicasets(ctx, &d).await? {
                let cause = rs
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get("kubernetes.io/change-cause"))
                    .and_then(Value::as_str)
                    .unwrap_or("<none>")
                    .to_string();
                rows.push((rev.to_string(), cause));
            }
            // kubectl's history table pads with two spaces.
            let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
            for (rev, cause) in rows {
                println!("{rev:<w$}  {cause}");
            }
            println!();
        }
        "undo" => {
            if r.plural != "deployments" {
                return Err(Error::usage("undo is supported for deployments only here"));
            }
            let d = get_json(&ctx.client, &path, "application/json").await?;
            let rss = owned_replicasets(ctx, &d).await?;
            let current = rss.last().map(|(r, _)| *r).unwrap_or(0);
            let target = if to_revision > 0 {
                rss.iter().find(|(r, _)| *r == to_revision)
            } else {
                rss.iter().rev().find(|(r, _)| *r != current)
            };
            let Some((_, rs)) = target else {
                return Err(Error::usage(if to_revision > 0 {
                    format!("unable to find specified revision {to_revision} in history")
                } else {
                    "no rollout history found for deployment \"".to_string() + &name + "\""
                }));
            };
            let mut template = rs.pointer("/spec/template").cloned().unwrap_or(Value::Null);
            if let Some(l) = template
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
            {
                l.remove("pod-template-hash");
            }
            // A JSON patch replaces the whole template, as kubectl's undo does.
            let p = json!([{"op": "replace", "path": "/spec/template", "value": template}]);
            send(
                &ctx.client,
                "PATCH",
                &path,
                "application/json-patch+json",
                serde_json::to_vec(&p).unwrap_or_default(),
            )
            .await?;
            println!("{prefix} rolled back");
        }
        "status" => {
            let limit = timeout
                .and_then(|t| t.trim_end_matches('s').parse::<u64>().ok())
                .filter(|t| *t > 0)
                .map(Duration::from_secs);
            let start = Instant::now();
            let mut last = String::new();
            let mut d = get_json(&ctx.client, &path, "application/json").await?;
            // Image pulls of the workload's pods are shown as the kubelet reports them.
            let mut progress = crate::progress::Progress::start(
                &ctx.client,
                crate::progress::PodScope {
                    namespace: ctx.namespace.clone(),
                    selector: crate::describe::fmt::selector_string(&d["spec"]["selector"]),
                },
            )
            .await;
            loop {
                let (msg, done) = rollout_status(&r, &name, &d);
                if done {
                    progress.finish();
                }
                if msg != last {
                    progress.println(&msg);
                    last = msg;
                }
                if done {
                    return Ok(());
                }
                if limit.is_some_and(|l| start.elapsed() > l) {
                    progress.finish();
                    return Err(Error::usage("timed out waiting for the condition"));
                }
                progress.wait(Duration::from_millis(500)).await;
                d = get_json(&ctx.client, &path, "application/json").await?;
            }
        }
        other => {
            return Err(Error::usage(format!(
            "unknown rollout action \"{other}\": status, history, undo, pause, resume or restart"
        )))
        }
    }
    Ok(())
}

/// kubectl's `DeploymentStatusViewer` (and the DaemonSet/StatefulSet ones, shortened).
fn rollout_status(r: &Resource, name: &str, d: &Value) -> (String, bool) {
    let g = |p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let generation = g("/metadata/generation");
    let observed = g("/status/observedGeneration");
    let waiting = format!(
        "Waiting for {} \"{name}\" rollout to finish",
        r.kind.to_lowercase()
    );
    if observed < generation {
        return (
            format!(
                "Waiting for {} spec update to be observed...",
                r.kind.to_lowercase()
            ),
            false,
        );
    }
    match r.plural.as_str() {
        "deployments" => {
            let want = d
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let updated = g("/status/updatedReplicas");
            let replicas = g("/status/replicas");
            let available = g("/status/availableReplicas");
            if updated < want {
                (
                    format!("{waiting}: {updated} out of {want} new replicas have been updated..."),
                    false,
                )
            } else if replicas > updated {
                (
                    format!(
                        "{waiting}: {} old replicas are pending termination...",
                        replicas - updated
                    ),
                    false,
                )
            } else if available < updated {
                (
                    format!(
                        "{waiting}: {available} of {updated} updated replicas are available..."
                    ),
                    false,
                )
            } else {
                (
                    format!("deployment \"{name}\" successfully rolled out"),
                    true,
                )
            }
        }
        "daemonsets" => {
            let want = g("/status/desiredNumberScheduled");
            let updated = g("/status/updatedNumberScheduled");
            let available = g("/status/numberAvailable");
            if updated < want {
                (
                    format!("{waiting}: {updated} out of {want} new pods have been updated..."),
                    false,
                )
            } else if available < want {
                (
                    format!("{waiting}: {available} of {want} updated pods are available..."),
                    false,
                )
            } else {
                (
                    format!("daemon set \"{name}\" successfully rolled out"),
                    true,
                )
            }
        }
        _ => {
            let want = d
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = g("/status/readyReplicas");
            let updated = g("/status/updatedReplicas");
            if ready < want {
                (
                    format!("Waiting for {} pods to be ready...", want - ready),
                    false,
                )
            } else if updated < want {
                (format!("Waiting for partitioned roll out to finish: {updated} out of {want} new pods have been updated..."), false)
            } else {
                (
                    format!("partitioned roll out complete: {want} new pods have been updated..."),
                    true,
                )
            }
        }
    }
}
