//! `drain`: cordon a node, then evict its pods through `pods/eviction` (PodDisruptionBudgets
//! honoured: a 429 is retried every 5 s), with kubectl's filters (DaemonSet pods, mirror
//! pods, pods without a controller, pods with emptyDir data) and its progress lines.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{json, Value};

use crate::apply::send;
use crate::error::{Error, Result};
use crate::get::get_json;
use crate::Ctx;

/// What `drain` was asked for.
pub(crate) struct DrainOpts {
    pub node: String,
    pub ignore_daemonsets: bool,
    pub delete_emptydir_data: bool,
    pub force: bool,
    pub grace_period: i64,
    /// Zero: wait forever (kubectl's default).
    pub timeout: Duration,
    pub selector: Option<String>,
    pub pod_selector: Option<String>,
    pub disable_eviction: bool,
}

fn pod_key(p: &Value) -> String {
    format!(
        "{}/{}",
        p["metadata"]["namespace"].as_str().unwrap_or(""),
        p["metadata"]["name"].as_str().unwrap_or("")
    )
}

fn controller_of(p: &Value) -> Option<&Value> {
    p.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|o| o["controller"] == true)
}

/// kubectl's pod filters, in its order; the pods to evict, warnings, and errors.
#[derive(Default)]
struct Filtered {
    evict: Vec<Value>,
    /// (message, pods) warnings printed as `Warning: MESSAGE: a, b`.
    warnings: Vec<(String, Vec<String>)>,
    errors: Vec<(String, Vec<String>)>,
}

fn add(list: &mut Vec<(String, Vec<String>)>, msg: &str, key: String) {
    match list.iter_mut().find(|(m, _)| m == msg) {
        Some((_, v)) => v.push(key),
        None => list.push((msg.to_string(), vec![key])),
    }
}

async fn filter(ctx: &Ctx, pods: Vec<Value>, o: &DrainOpts) -> Result<Filtered> {
    let mut f = Filtered::default();
    for p in pods {
        let key = pod_key(&p);
        let phase = p.pointer("/status/phase").and_then(Value::as_str);
        let finished = matches!(phase, Some("Succeeded") | Some("Failed"));
        // Already terminating pods are waited for but not evicted again: kubectl skips
        // those whose deletion is past their grace period.
        if p.pointer("/metadata/annotations")
            .and_then(|a| a.get("kubernetes.io/config.mirror"))
            .is_some()
        {
            continue;
        }
        if let Some(c) = controller_of(&p) {
            if c["kind"] == "DaemonSet" {
                // kubectl checks that the DaemonSet still exists.
                let ds = c["name"].as_str().unwrap_or("");
                let ns = p["metadata"]["namespace"].as_str().unwrap_or("");
                if let Err(e) = get_json(
                    &ctx.client,
                    &format!("/apis/apps/v1/namespaces/{ns}/daemonsets/{ds}"),
                    "application/json",
                )
                .await
                {
                    // An orphaned DaemonSet pod goes under --force (kubectl 1.34 prints no
                    // warning for it).
                    if e.code() == 404 && o.force {
                        f.evict.push(p);
                    } else {
                        add(&mut f.errors, &format!("cannot delete {e}"), key);
                    }
                    continue;
                }
                if finished {
                    f.evict.push(p);
                } else if o.ignore_daemonsets {
                    add(&mut f.warnings, "ignoring DaemonSet-managed Pods", key);
                } else {
                    add(
                        &mut f.errors,
                        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)",
                        key,
                    );
                }
                continue;
            }
        } else if !finished {
            if o.force {
                add(
                    &mut f.warnings,
                    "deleting Pods that declare no controller",
                    key.clone(),
                );
            } else {
                add(
                    &mut f.errors,
                    "cannot delete cannot delete Pods that declare no controller (use --force to override)",
                    key,
                );
                continue;
            }
        }
        let empty_dir = p
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .is_some_and(|vs| vs.iter().any(|v| v.get("emptyDir").is_some()));
        if empty_dir && !finished && !o.delete_emptydir_data {
            add(
                &mut f.errors,
                "cannot delete Pods with local storage (use --delete-emptydir-data to override)",
                key,
            );
            continue;
        }
        f.evict.push(p);
    }
    Ok(f)
}

fn lines(list: &[(String, Vec<String>)]) -> Vec<String> {
    list.iter()
        .map(|(m, ks)| format!("{m}: {}", ks.join(", ")))
        .collect()
}

/// kubectl's failure report: Go's aggregate error (`[a, b]` when several) in the first line,
/// then the pending node, then each error as `cmdutil.CheckErr` prints an aggregate.
fn fail(node: &str, errs: Vec<String>) -> Error {
    let agg = if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("[{}]", errs.join(", "))
    };
    eprintln!("error: unable to drain node \"{node}\" due to error: {agg}, continuing command...");
    eprintln!("There are pending nodes to be drained:");
    eprintln!(" {node}");
    for e in &errs {
        eprintln!("{e}");
    }
    Error::Reported
}

async fn evict_one(ctx: &Ctx, pod: &Value, o: &DrainOpts, start: Instant) -> Result<()> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let uid = pod["metadata"]["uid"].clone();
    let mut delete_options = json!({});
    if o.grace_period >= 0 {
        delete_options["gracePeriodSeconds"] = json!(o.grace_period);
    }
    let timed_out = || !o.timeout.is_zero() && start.elapsed() > o.timeout;
    loop {
        let result = if o.disable_eviction {
            println!("deleting pod {ns}/{name}");
            let mut body = delete_options.clone();
            body["apiVersion"] = json!("v1");
            body["kind"] = json!("DeleteOptions");
            send(
                &ctx.client,
                "DELETE",
                &format!("/api/v1/namespaces/{ns}/pods/{name}"),
                "application/json",
                serde_json::to_vec(&body).unwrap_or_default(),
            )
            .await
        } else {
            println!("evicting pod {ns}/{name}");
            let body = json!({
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": name, "namespace": ns},
                "deleteOptions": delete_options,
            });
            send(
                &ctx.client,
                "POST",
                &format!("/api/v1/namespaces/{ns}/pods/{name}/eviction"),
                "application/json",
                serde_json::to_vec(&body).unwrap_or_default(),
            )
            .await
        };
        match result {
            Ok(_) => break,
            Err(e) if e.code() == 404 => break,
            Err(Error::Api(s)) if s.code == 429 => {
                eprintln!(
                    "error when evicting pods/\"{name}\" -n \"{ns}\" (will retry after 5s): {}",
                    s.message
                );
                if timed_out() {
                    return Err(Error::usage(format!(
                        "error when evicting pods/\"{name}\" -n \"{ns}\": global timeout reached: {}",
                        humantime(o.timeout)
                    )));
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => {
                return Err(Error::usage(format!(
                    "error when evicting pods/\"{name}\" -n \"{ns}\": {}",
                    e
                )))
            }
        }
    }
    // Wait until the pod is gone (or replaced by one with another uid).
    loop {
        match get_json(
            &ctx.client,
            &format!("/api/v1/namespaces/{ns}/pods/{name}"),
            "application/json",
        )
        .await
        {
            Err(e) if e.code() == 404 => break,
            Ok(p) if p["metadata"]["uid"] != uid => break,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        if timed_out() {
            return Err(Error::usage(format!(
                "error when waiting for pod \"{name}\" in namespace \"{ns}\" to terminate: global timeout reached: {}",
                humantime(o.timeout)
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "pod/{name} {}",
        if o.disable_eviction {
            "deleted"
        } else {
            "evicted"
        }
    );
    Ok(())
}

/// Go's `time.Duration.String` for whole seconds (`5s`, `1m30s`).
fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub(crate) async fn drain(ctx: &Ctx, o: DrainOpts) -> Result<()> {
    let node = o
        .node
        .strip_prefix("node/")
        .or_else(|| o.node.strip_prefix("nodes/"))
        .unwrap_or(&o.node)
        .to_string();
    let _ = &o.selector;
    crate::verbs::cordon(ctx, &node, true).await?;
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("fieldSelector", &format!("spec.nodeName={node}"));
    if let Some(l) = &o.pod_selector {
        q.append_pair("labelSelector", l);
    }
    let pods = get_json(
        &ctx.client,
        &format!("/api/v1/pods?{}", q.finish()),
        "application/json",
    )
    .await?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let f = filter(ctx, pods, &o).await?;
    if !f.errors.is_empty() {
        return Err(fail(&node, lines(&f.errors)));
    }
    if !f.warnings.is_empty() {
        eprintln!("Warning: {}", lines(&f.warnings).join("; "));
    }
    let start = Instant::now();
    let results = join_all(f.evict.iter().map(|p| evict_one(ctx, p, &o, start))).await;
    let errs: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    if !errs.is_empty() {
        return Err(fail(&node, errs));
    }
    println!("node/{node} drained");
    Ok(())
}
