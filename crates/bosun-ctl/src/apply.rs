//! `create -f`, `apply -f` (client-side: the `kubectl.kubernetes.io/last-applied-configuration`
//! annotation and a three-way patch) and `delete` (by file, name, selector or `--all`).

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::discovery::{Discovery, Resource};
use crate::error::{Error, Result};
use crate::get::get_json;
use crate::printer;
use crate::{Ctx, FileArgs, SelectArgs};

pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

pub(crate) async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<Value> {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .map_err(|e| Error::usage(format!("building the request for {path}: {e}")))?;
    let text = client.request_text(req).await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Strategic merge patch, or a JSON merge patch where the server has no strategy (CRDs).
pub(crate) async fn patch(client: &kube::Client, path: &str, patch: &Value) -> Result<Value> {
    let body = serde_json::to_vec(patch).unwrap_or_default();
    match send(
        client,
        "PATCH",
        path,
        "application/strategic-merge-patch+json",
        body.clone(),
    )
    .await
    {
        Err(e) if e.code() == 415 => {
            send(client, "PATCH", path, "application/merge-patch+json", body).await
        }
        r => r,
    }
}

fn name_of(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The namespace an object from a manifest goes to, refusing a clash with `-n`.
fn namespace_for(ctx: &Ctx, r: &Resource, obj: &Value) -> Result<Option<String>> {
    if !r.namespaced {
        return Ok(None);
    }
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if ctx.namespace_explicit && ns != ctx.namespace => Err(Error::usage(format!(
            "the namespace from the provided object \"{ns}\" does not match the namespace \"{}\". \
             You must pass '--namespace={ns}' to perform this operation.",
            ctx.namespace
        ))),
        Some(ns) => Ok(Some(ns.to_string())),
        None => Ok(Some(ctx.namespace.clone())),
    }
}

fn report(r: &Resource, obj: &Value, what: &str, output: Option<&str>) -> Result<()> {
    match printer::object_format(output)? {
        Some(fmt) => print!(
            "{}",
            printer::print_objects(&fmt, &[(r.clone(), obj.clone())], true)?
        ),
        None => println!("{} {what}", printer::name_of(r, obj)),
    }
    Ok(())
}

pub(crate) async fn create(ctx: &Ctx, files: &FileArgs, output: Option<&str>) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let mut first_error = None;
    for (src, obj) in crate::manifest::read(files)? {
        let r = disc.for_kind(
            obj["apiVersion"].as_str().unwrap_or(""),
            obj["kind"].as_str().unwrap_or(""),
        )?;
        let ns = namespace_for(ctx, &r, &obj)?;
        let body = serde_json::to_vec(&obj).unwrap_or_default();
        match send(
            &ctx.client,
            "POST",
            &r.collection_path(ns.as_deref()),
            "application/json",
            body,
        )
        .await
        {
            Ok(created) => report(&r, &created, "created", output)?,
            Err(e) => {
                let e = when_creating(e, &src);
                eprintln!("{}", e.kubectl_message());
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), |_| Err(Error::Reported))
}

/// kubectl names the file of an object the server refused to create.
fn when_creating(e: Error, src: &str) -> Error {
    match e {
        Error::Api(mut s) if s.code == 404 || s.code == 409 || s.code == 422 || s.code == 403 => {
            s.message = format!("error when creating \"{src}\": {}", s.message);
            Error::Api(s)
        }
        other => other,
    }
}

/// The annotation's value: the manifest as compact JSON with sorted keys, as kubectl writes it.
/// Like kubectl, the annotations map is present (empty) in the value even when the manifest
/// has none, because the annotation is added to the object before it is serialized.
fn last_applied_value(obj: &Value) -> String {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        let ann = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.remove(LAST_APPLIED);
        }
    }
    serde_json::to_string(&printer::sorted(&o)).unwrap_or_default() + "\n"
}

fn with_last_applied(obj: &Value) -> Value {
    let value = last_applied_value(obj);
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let ann = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(ann) = ann.as_object_mut() {
                ann.insert(LAST_APPLIED.into(), Value::String(value));
            }
        }
    }
    o
}

/// Whether everything `want` sets is in `have` (the server may have added defaults).
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v)) || v.is_null()),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        (h, w) => h == w,
    }
}

/// The three-way patch of client-side apply: fields the manifest sets that the live object
/// lacks or differs in (lists whole, merged by key on the server), and `null` for fields
/// the previous manifest set and this one drops.
pub(crate) fn three_way(original: &Value, modified: &Value, current: &Value) -> Map<String, Value> {
    let mut patch = Map::new();
    let (Some(m), cur) = (modified.as_object(), current.as_object()) else {
        return patch;
    };
    let empty = Map::new();
    let cur = cur.unwrap_or(&empty);
    let orig = original.as_object().unwrap_or(&empty);
    for (k, mv) in m {
        let cv = cur.get(k).unwrap_or(&Value::Null);
        match (mv, cv) {
            (Value::Object(_), Value::Object(_)) => {
                let sub = three_way(orig.get(k).unwrap_or(&Value::Null), mv, cv);
                if !sub.is_empty() {
                    patch.insert(k.clone(), Value::Object(sub));
                }
            }
            _ => {
                if !contains(cv, mv) {
                    patch.insert(k.clone(), mv.clone());
                }
            }
        }
    }
    for k in orig.keys() {
        if !m.contains_key(k) && cur.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        }
    }
    patch
}

pub(crate) async fn apply(ctx: &Ctx, files: &FileArgs, output: Option<&str>) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let mut first_error = None;
    for (src, obj) in crate::manifest::read(files)? {
        let r = disc.for_kind(
            obj["apiVersion"].as_str().unwrap_or(""),
            obj["kind"].as_str().unwrap_or(""),
        )?;
        let ns = namespace_for(ctx, &r, &obj)?;
        let name = name_of(&obj);
        let result = apply_one(ctx, &r, ns.as_deref(), &name, &obj, output).await;
        if let Err(e) = result {
            let e = when_creating(e, &src);
            eprintln!("{}", e.kubectl_message());
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), |_| Err(Error::Reported))
}

async fn apply_one(
    ctx: &Ctx,
    r: &Resource,
    ns: Option<&str>,
    name: &str,
    obj: &Value,
    output: Option<&str>,
) -> Result<()> {
    // kubectl records the namespace it applied to in the annotation.
    let mut obj = obj.clone();
    if let (Some(ns), Some(meta)) = (ns, obj.get_mut("metadata").and_then(Value::as_object_mut)) {
        meta.insert("namespace".into(), Value::String(ns.to_string()));
    }
    let modified = with_last_applied(&obj);
    let path = r.object_path(ns, name);
    let current = match get_json(&ctx.client, &path, "application/json").await {
        Ok(c) => c,
        Err(e) if e.code() == 404 => {
            let body = serde_json::to_vec(&modified).unwrap_or_default();
            let created = send(
                &ctx.client,
                "POST",
                &r.collection_path(ns),
                "application/json",
                body,
            )
            .await?;
            return report(r, &created, "created", output);
        }
        Err(e) => return Err(e),
    };
    let original: Value = match current
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
    {
        Some(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        None => {
            eprintln!(
                "Warning: resource {}/{name} is missing the {LAST_APPLIED} annotation which is \
                 required by bosun ctl apply. bosun ctl apply should only be used on resources \
                 created declaratively by either bosun ctl create --save-config or bosun ctl \
                 apply. The missing annotation will be patched automatically.",
                r.plural
            );
            Value::Null
        }
    };
    let p = three_way(&original, &modified, &current);
    if p.is_empty() {
        return report(r, &current, "unchanged", output);
    }
    let patched = patch(&ctx.client, &path, &Value::Object(p)).await?;
    report(r, &patched, "configured", output)
}

pub(crate) struct DeleteOpts {
    pub args: Vec<String>,
    pub files: FileArgs,
    pub select: SelectArgs,
    pub all: bool,
    pub ignore_not_found: bool,
    pub grace_period: i64,
    pub wait: bool,
}

pub(crate) async fn delete(ctx: &Ctx, o: DeleteOpts) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    // (type, namespace, name)
    let mut targets: Vec<(Resource, Option<String>, String)> = Vec::new();
    if !o.files.filenames.is_empty() {
        for (_, obj) in crate::manifest::read(&o.files)? {
            let r = disc.for_kind(
                obj["apiVersion"].as_str().unwrap_or(""),
                obj["kind"].as_str().unwrap_or(""),
            )?;
            let ns = namespace_for(ctx, &r, &obj)?;
            targets.push((r, ns, name_of(&obj)));
        }
    } else {
        let (reqs, _) = crate::get::parse_args(&disc, &o.args)?;
        for req in reqs {
            let ns = (req.resource.namespaced && !o.select.all_namespaces)
                .then(|| ctx.namespace.clone());
            if !req.names.is_empty() {
                for n in req.names {
                    targets.push((req.resource.clone(), ns.clone(), n));
                }
            } else if o.all || o.select.selector.is_some() || o.select.field_selector.is_some() {
                let mut q = form_urlencoded::Serializer::new(String::new());
                if let Some(l) = &o.select.selector {
                    q.append_pair("labelSelector", l);
                }
                if let Some(f) = &o.select.field_selector {
                    q.append_pair("fieldSelector", f);
                }
                let path = format!(
                    "{}?{}",
                    req.resource.collection_path(ns.as_deref()),
                    q.finish()
                );
                let list = get_json(&ctx.client, &path, "application/json").await?;
                for it in list["items"].as_array().into_iter().flatten() {
                    let item_ns = it
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(String::from);
                    targets.push((req.resource.clone(), item_ns, name_of(it)));
                }
            } else {
                return Err(Error::usage(
                    "resource(s) were provided, but no name was specified",
                ));
            }
        }
        if targets.is_empty() && !o.ignore_not_found {
            // kubectl delete says this on stdout (get says it on stderr).
            println!("No resources found");
        }
    }
    let mut body =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"});
    if o.grace_period >= 0 {
        body["gracePeriodSeconds"] = json!(o.grace_period);
    }
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut first_error = None;
    let mut deleted = Vec::new();
    for (r, ns, name) in targets {
        let path = r.object_path(ns.as_deref(), &name);
        match send(
            &ctx.client,
            "DELETE",
            &path,
            "application/json",
            body.clone(),
        )
        .await
        {
            Ok(_) => {
                println!("{} \"{name}\" deleted", r.kind_prefix());
                deleted.push(path);
            }
            Err(e) if e.code() == 404 && o.ignore_not_found => {}
            Err(e) => {
                eprintln!("{}", e.kubectl_message());
                first_error.get_or_insert(e);
            }
        }
    }
    if o.wait {
        let deadline = Instant::now() + Duration::from_secs(300);
        for path in deleted {
            while Instant::now() < deadline {
                match get_json(&ctx.client, &path, "application/json").await {
                    Err(e) if e.code() == 404 => break,
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
    }
    first_error.map_or(Ok(()), |_| Err(Error::Reported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_way_patch() {
        let original =
            json!({"metadata": {"labels": {"a": "1", "old": "x"}}, "spec": {"replicas": 2}});
        let modified = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 3, "ports": [{"port": 80}]}});
        let current = json!({"metadata": {"labels": {"a": "1", "old": "x"}, "uid": "u"},
                             "spec": {"replicas": 2, "ports": [{"port": 80, "nodePort": 30001}]}});
        let p = three_way(&original, &modified, &current);
        assert_eq!(
            Value::Object(p),
            json!({"metadata": {"labels": {"old": null}}, "spec": {"replicas": 3}})
        );
        let same = three_way(
            &modified,
            &modified,
            &json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 3, "ports": [{"port": 80, "protocol": "TCP"}]}}),
        );
        assert!(same.is_empty(), "{same:?}");
    }

    #[test]
    fn last_applied_is_sorted_compact_json() {
        let o = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a"}});
        let w = with_last_applied(&o);
        assert_eq!(
            w["metadata"]["annotations"][LAST_APPLIED],
            "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"annotations\":{},\"name\":\"a\"}}\n"
        );
    }
}
