//! `describe`: a readable rendering of an object — name, namespace, labels, annotations, then
//! its spec and status as indented `Key:  value` lines — followed by its events, as kubectl's
//! describers end.

use serde_json::Value;

use crate::discovery::Discovery;
use crate::error::{Error, Result};
use crate::get::get_json;
use crate::printer::TabWriter;
use crate::{Ctx, SelectArgs};

pub(crate) async fn run(ctx: &Ctx, args: &[String], select: &SelectArgs) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let (reqs, _) = crate::get::parse_args(&disc, args)?;
    let mut first = true;
    let mut first_error = None;
    for req in reqs {
        let ns = req.resource.namespaced.then(|| ctx.namespace.clone());
        let objs: Vec<Value> = if req.names.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if let Some(l) = &select.selector {
                q.append_pair("labelSelector", l);
            }
            let path = format!(
                "{}?{}",
                req.resource.collection_path(ns.as_deref()),
                q.finish()
            );
            get_json(&ctx.client, &path, "application/json").await?["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        } else {
            let mut v = Vec::new();
            for n in &req.names {
                match get_json(
                    &ctx.client,
                    &req.resource.object_path(ns.as_deref(), n),
                    "application/json",
                )
                .await
                {
                    Ok(o) => v.push(o),
                    Err(e) => {
                        eprintln!("{}", e.kubectl_message());
                        first_error.get_or_insert(e);
                    }
                }
            }
            v
        };
        for o in objs {
            if !first {
                println!("\n");
            }
            first = false;
            print!("{}", render(&o));
            print!("{}", events(ctx, &o).await?);
        }
    }
    first_error.map_or(Ok(()), |_| Err(Error::Reported))
}

fn title(key: &str) -> String {
    // camelCase → Camel Case, as kubectl's describers name fields.
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_uppercase() && !out.ends_with(' ') {
            out.push(' ');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

fn map_lines(label: &str, m: Option<&Value>, out: &mut String) {
    let pad = 14;
    match m.and_then(Value::as_object).filter(|m| !m.is_empty()) {
        None => out.push_str(&format!("{:<pad$}<none>\n", format!("{label}:"))),
        Some(m) => {
            let mut kv: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            kv.sort();
            for (i, l) in kv.iter().enumerate() {
                let head = if i == 0 {
                    format!("{label}:")
                } else {
                    String::new()
                };
                out.push_str(&format!("{head:<pad$}{l}\n"));
            }
        }
    }
}

fn value_lines(v: &Value, indent: usize, out: &mut String) {
    let sp = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::Object(o) if !o.is_empty() => {
                        out.push_str(&format!("{sp}{}:\n", title(k)));
                        value_lines(x, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{sp}{}:\n", title(k)));
                        for it in a {
                            match it {
                                Value::Object(_) => {
                                    let mut sub = String::new();
                                    value_lines(it, indent + 4, &mut sub);
                                    let sub = sub.replacen(
                                        &" ".repeat(indent + 4),
                                        &format!("{}- ", " ".repeat(indent + 2)),
                                        1,
                                    );
                                    out.push_str(&sub);
                                }
                                other => out.push_str(&format!("{sp}  - {}\n", scalar(other))),
                            }
                        }
                    }
                    other => out.push_str(&format!("{sp}{}:  {}\n", title(k), scalar(other))),
                }
            }
        }
        other => out.push_str(&format!("{sp}{}\n", scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        Value::Object(_) | Value::Array(_) => "<none>".into(),
        other => other.to_string(),
    }
}

pub(crate) fn render(o: &Value) -> String {
    let mut out = String::new();
    let meta = &o["metadata"];
    out.push_str(&format!(
        "{:<14}{}\n",
        "Name:",
        meta["name"].as_str().unwrap_or("")
    ));
    if let Some(ns) = meta["namespace"].as_str() {
        out.push_str(&format!("{:<14}{ns}\n", "Namespace:"));
    }
    map_lines("Labels", meta.get("labels"), &mut out);
    let mut ann = meta.get("annotations").cloned().unwrap_or(Value::Null);
    if let Some(a) = ann.as_object_mut() {
        a.remove(crate::apply::LAST_APPLIED);
    }
    map_lines("Annotations", Some(&ann), &mut out);
    if let Some(t) = meta["creationTimestamp"].as_str() {
        out.push_str(&format!("{:<14}{t}\n", "Created:"));
    }
    for (k, v) in o.as_object().into_iter().flatten() {
        if matches!(k.as_str(), "metadata" | "apiVersion" | "kind") {
            continue;
        }
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push_str(&format!("{}:\n", title(k)));
                value_lines(v, 2, &mut out);
            }
            Value::Object(_) | Value::Null => {}
            other => {
                let mut s = String::new();
                value_lines(&serde_json::json!({k: other}), 0, &mut s);
                out.push_str(&s);
            }
        }
    }
    out
}

/// The object's events, oldest first, as kubectl's describers print them.
async fn events(ctx: &Ctx, o: &Value) -> Result<String> {
    let meta = &o["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    let ns = meta["namespace"].as_str().unwrap_or("default");
    let mut fs = format!("involvedObject.name={name}");
    if let Some(uid) = meta["uid"].as_str() {
        fs.push_str(&format!(",involvedObject.uid={uid}"));
    }
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("fieldSelector", &fs)
        .finish();
    let list = match get_json(
        &ctx.client,
        &format!("/api/v1/namespaces/{ns}/events?{q}"),
        "application/json",
    )
    .await
    {
        Ok(l) => l,
        Err(Error::Api(s)) if s.code == 403 => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Ok("Events:       <none>\n".into());
    }
    let ts = |e: &Value| {
        e["lastTimestamp"]
            .as_str()
            .or_else(|| e["eventTime"].as_str())
            .or_else(|| {
                e.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
            })
            .unwrap_or("")
            .to_string()
    };
    items.sort_by_key(&ts);
    let now = chrono::Utc::now();
    let mut tw = TabWriter::new();
    tw.row(["Type", "Reason", "Age", "From", "Message"].map(String::from));
    tw.row(["----", "------", "----", "----", "-------"].map(String::from));
    for e in &items {
        let age = chrono::DateTime::parse_from_rfc3339(&ts(e))
            .map(|t| short_age(now.signed_duration_since(t.with_timezone(&chrono::Utc))))
            .unwrap_or_else(|_| "<unknown>".into());
        let from = e
            .pointer("/source/component")
            .and_then(Value::as_str)
            .or_else(|| e["reportingComponent"].as_str())
            .unwrap_or("")
            .to_string();
        tw.row([
            e["type"].as_str().unwrap_or("").to_string(),
            e["reason"].as_str().unwrap_or("").to_string(),
            age,
            from,
            e["message"].as_str().unwrap_or("").trim().to_string(),
        ]);
    }
    let mut out = String::from("Events:\n");
    for l in tw.finish().lines() {
        out.push_str("  ");
        out.push_str(l);
        out.push('\n');
    }
    Ok(out)
}

/// kubectl's `duration.HumanDuration` for ages (`5s`, `3m2s`, `4h`, `2d`).
pub(crate) fn short_age(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=599 => format!("{}m{}s", s / 60, s % 60),
        600..=10799 => format!("{}m", s / 60),
        10800..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}
