//! `top pod|node`: resource usage from the server's `metrics.k8s.io`, printed as kubectl's
//! `top` prints it (CPU in millicores, memory in Mi; node percentages of allocatable).

use bosun_api::quantity::Quantity;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::get::get_json;
use crate::printer::TabWriter;
use crate::{Ctx, SelectArgs};

const METRICS: &str = "/apis/metrics.k8s.io/v1beta1";

fn quantity(v: &Value) -> Quantity {
    v.as_str()
        .and_then(|s| Quantity::parse(s).ok())
        .unwrap_or_else(|| Quantity::zero(bosun_api::quantity::Format::DecimalSI))
}

fn milli_cpu(v: &Value) -> i64 {
    quantity(v).scaled_value(-3)
}

fn mebibytes(v: &Value) -> i64 {
    quantity(v).value() / (1024 * 1024)
}

fn query(select: &SelectArgs) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(l) = &select.selector {
        q.append_pair("labelSelector", l);
    }
    if let Some(f) = &select.field_selector {
        q.append_pair("fieldSelector", f);
    }
    let s = q.finish();
    if s.is_empty() {
        s
    } else {
        format!("?{s}")
    }
}

/// `top pod [NAME] [-A] [-l] [--containers] [--no-headers]`.
pub(crate) async fn pods(
    ctx: &Ctx,
    name: Option<&str>,
    select: &SelectArgs,
    containers: bool,
    no_headers: bool,
) -> Result<()> {
    let ns_path = if select.all_namespaces {
        String::new()
    } else {
        format!("/namespaces/{}", ctx.namespace)
    };
    let items: Vec<Value> = match name {
        Some(n) => {
            let path = format!("{METRICS}{ns_path}/pods/{n}");
            vec![get_json(&ctx.client, &path, "application/json").await?]
        }
        None => {
            let path = format!("{METRICS}{ns_path}/pods{}", query(select));
            get_json(&ctx.client, &path, "application/json").await?["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    };
    if items.is_empty() {
        // kubectl blames the first pod that exists but has no metrics.
        let pods = get_json(
            &ctx.client,
            &format!("/api/v1{ns_path}/pods{}", query(select)),
            "application/json",
        )
        .await?;
        if let Some(p) = pods["items"].as_array().and_then(|a| a.first()) {
            let age = p
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| {
                    go_duration(
                        chrono::Utc::now().signed_duration_since(t.with_timezone(&chrono::Utc)),
                    )
                })
                .unwrap_or_default();
            return Err(Error::usage(format!(
                "Metrics not available for pod {}/{}, age: {age}",
                p["metadata"]["namespace"].as_str().unwrap_or(""),
                p["metadata"]["name"].as_str().unwrap_or("")
            )));
        }
        if select.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", ctx.namespace);
        }
        return Ok(());
    }
    let mut tw = TabWriter::new();
    if !no_headers {
        let mut h = Vec::new();
        if select.all_namespaces {
            h.push("NAMESPACE");
        }
        h.push("NAME");
        if containers {
            h.push("NAME");
        }
        h.extend(["CPU(cores)", "MEMORY(bytes)"]);
        tw.row(h.into_iter().map(String::from));
    }
    for m in &items {
        let ns = m
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let pod = m
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let cs = m["containers"].as_array().cloned().unwrap_or_default();
        let prefix = |row: &mut Vec<String>| {
            if select.all_namespaces {
                row.push(ns.to_string());
            }
            row.push(pod.to_string());
        };
        if containers {
            for c in &cs {
                let mut row = Vec::new();
                prefix(&mut row);
                row.push(c["name"].as_str().unwrap_or("").to_string());
                row.push(format!("{}m", milli_cpu(&c["usage"]["cpu"])));
                row.push(format!("{}Mi", mebibytes(&c["usage"]["memory"])));
                tw.row(row);
            }
        } else {
            let cpu: i64 = cs.iter().map(|c| milli_cpu(&c["usage"]["cpu"])).sum();
            let mem: i64 = cs
                .iter()
                .map(|c| quantity(&c["usage"]["memory"]).value())
                .sum();
            let mut row = Vec::new();
            prefix(&mut row);
            row.push(format!("{cpu}m"));
            row.push(format!("{}Mi", mem / (1024 * 1024)));
            tw.row(row);
        }
    }
    print!("{}", tw.finish());
    Ok(())
}

/// `top node [NAME] [-l] [--no-headers]`.
pub(crate) async fn nodes(
    ctx: &Ctx,
    name: Option<&str>,
    select: &SelectArgs,
    no_headers: bool,
) -> Result<()> {
    let (metrics, nodes): (Vec<Value>, Vec<Value>) = match name {
        Some(n) => {
            let node = get_json(
                &ctx.client,
                &format!("/api/v1/nodes/{n}"),
                "application/json",
            )
            .await?;
            let m = get_json(
                &ctx.client,
                &format!("{METRICS}/nodes/{n}"),
                "application/json",
            )
            .await?;
            (vec![m], vec![node])
        }
        None => {
            let q = query(select);
            let m = get_json(
                &ctx.client,
                &format!("{METRICS}/nodes{q}"),
                "application/json",
            )
            .await?["items"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let nodes = get_json(
                &ctx.client,
                &format!("/api/v1/nodes{q}"),
                "application/json",
            )
            .await?["items"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (m, nodes)
        }
    };
    if metrics.is_empty() {
        return Err(Error::usage("metrics not available yet"));
    }
    let mut tw = TabWriter::new();
    if !no_headers {
        tw.row(["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"].map(String::from));
    }
    let name_of = |v: &Value| {
        v.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for m in &metrics {
        let n = name_of(m);
        let node = nodes.iter().find(|x| name_of(x) == n);
        let cpu = milli_cpu(&m["usage"]["cpu"]);
        let mem = quantity(&m["usage"]["memory"]).value();
        let alloc = |k: &str| node.map(|x| x["status"]["allocatable"][k].clone());
        let cpu_alloc = alloc("cpu").map(|v| milli_cpu(&v)).unwrap_or(0);
        let mem_alloc = alloc("memory").map(|v| quantity(&v).value()).unwrap_or(0);
        let pct = |u: i64, a: i64| {
            if a > 0 {
                format!("{}%", (u as f64 / a as f64 * 100.0) as i64)
            } else {
                "<unknown>".to_string()
            }
        };
        tw.row([
            n,
            format!("{cpu}m"),
            pct(cpu, cpu_alloc),
            format!("{}Mi", mem / (1024 * 1024)),
            pct(mem, mem_alloc),
        ]);
    }
    // Nodes without metrics yet, as kubectl lists them.
    for node in &nodes {
        let n = name_of(node);
        if !metrics.iter().any(|m| name_of(m) == n) {
            tw.row([
                n,
                "<unknown>".into(),
                "<unknown>".into(),
                "<unknown>".into(),
                "<unknown>".into(),
            ]);
        }
    }
    print!("{}", tw.finish());
    Ok(())
}

/// Go's `time.Duration.String`: `6m53.721310433s`, `1h2m3s`, `450ms`.
fn go_duration(d: chrono::Duration) -> String {
    let nanos = d.num_nanoseconds().unwrap_or(i64::MAX).max(0);
    if nanos < 1_000_000_000 {
        let ms = nanos as f64 / 1e6;
        return format!("{}ms", trim_float(ms));
    }
    let h = nanos / 3_600_000_000_000;
    let m = (nanos / 60_000_000_000) % 60;
    let s = (nanos % 60_000_000_000) as f64 / 1e9;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim_float(s)));
    out
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_durations() {
        let d = chrono::Duration::nanoseconds(413_721_310_433);
        assert_eq!(super::go_duration(d), "6m53.721310433s");
        assert_eq!(
            super::go_duration(chrono::Duration::seconds(3723)),
            "1h2m3s"
        );
    }
}
