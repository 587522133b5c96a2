//! `autoscale` (an autoscaling/v2 HorizontalPodAutoscaler for a scalable object, as kubectl
//! 1.34 creates it) and the seed's `rolling-update` of a ReplicationController (kubectl 1.x's
//! rolling updater: one new pod up, wait until it is ready, one old pod down, keeping the
//! count; then the old controller is deleted and, for `--image`, the new one renamed), with
//! the new pods' image pulls shown as they happen ([`crate::progress`]).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::apply::send;
use crate::discovery::Discovery;
use crate::error::{Error, Result};
use crate::get::get_json;
use crate::progress::{PodScope, Progress};
use crate::{Ctx, FileArgs};

/// What `autoscale` was asked for.
pub(crate) struct AutoscaleOpts {
    pub args: Vec<String>,
    pub min: i32,
    pub max: i32,
    pub cpu_percent: i32,
    /// `--cpu`: `70%` (utilization) or `500m` (average value).
    pub cpu: Option<String>,
    pub name: Option<String>,
}

pub(crate) async fn autoscale(ctx: &Ctx, o: AutoscaleOpts) -> Result<()> {
    if o.max < 1 {
        return Err(Error::usage(format!(
            "--max=MAXPODS is required and must be at least 1, max: {}",
            o.max
        )));
    }
    if o.max < o.min {
        return Err(Error::usage(format!(
            "--max=MAXPODS must be larger or equal to --min=MINPODS, max: {}, min: {}",
            o.max, o.min
        )));
    }
    let disc = Discovery::load(&ctx.client).await?;
    let (reqs, _) = crate::get::parse_args(&disc, &o.args)?;
    let hpa_path = format!(
        "/apis/autoscaling/v2/namespaces/{}/horizontalpodautoscalers",
        ctx.namespace
    );
    let mut count = 0;
    for req in reqs {
        let r = &req.resource;
        if !r.subresources.iter().any(|s| s == "scale") {
            return Err(Error::usage(format!(
                "cannot autoscale a {}: no scale subresource",
                r.kind
            )));
        }
        for target in &req.names {
            // The target must exist (kubectl's builder fetches it).
            get_json(
                &ctx.client,
                &r.object_path(Some(&ctx.namespace), target),
                "application/json",
            )
            .await?;
            let name = o.name.clone().unwrap_or_else(|| target.clone());
            let mut spec = json!({
                "scaleTargetRef": {"apiVersion": r.api_version(), "kind": r.kind, "name": target},
                "maxReplicas": o.max,
            });
            if o.min > 0 {
                spec["minReplicas"] = json!(o.min);
            }
            if let Some(cpu) = &o.cpu {
                let target = match cpu.strip_suffix('%') {
                    Some(p) => {
                        let p: i32 = p.parse().map_err(|_| {
                            Error::usage(format!("invalid CPU utilization \"{cpu}\""))
                        })?;
                        json!({"type": "Utilization", "averageUtilization": p})
                    }
                    None => {
                        bosun_api::quantity::Quantity::parse(cpu)
                            .map_err(|_| Error::usage(format!("invalid CPU quantity \"{cpu}\"")))?;
                        json!({"type": "AverageValue", "averageValue": cpu})
                    }
                };
                spec["metrics"] =
                    json!([{"type": "Resource", "resource": {"name": "cpu", "target": target}}]);
            } else if o.cpu_percent >= 0 {
                spec["metrics"] = json!([{
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": o.cpu_percent}}
                }]);
            }
            let hpa = json!({
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name},
                "spec": spec,
            });
            send(
                &ctx.client,
                "POST",
                &hpa_path,
                "application/json",
                serde_json::to_vec(&hpa).unwrap_or_default(),
            )
            .await?;
            println!("horizontalpodautoscaler.autoscaling/{name} autoscaled");
            count += 1;
        }
    }
    if count == 0 {
        return Err(Error::usage("no objects passed to autoscale"));
    }
    Ok(())
}

/// What `rolling-update` was asked for.
pub(crate) struct RollingOpts {
    pub old: String,
    pub new_name: Option<String>,
    pub files: FileArgs,
    pub image: Option<String>,
    pub container: Option<String>,
    pub update_period: Duration,
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub deployment_label_key: String,
}

fn rc_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/replicationcontrollers/{name}")
}

fn replicas(rc: &Value) -> i64 {
    rc.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// A short stable hash of a pod template (kubectl used an adler32 of the template).
fn template_hash(template: &Value) -> String {
    let bytes = serde_json::to_vec(&crate::printer::sorted(template)).unwrap_or_default();
    // FNV-1a, 32 bits: stable across runs and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:x}")
}

async fn set_replicas(ctx: &Ctx, name: &str, n: i64) -> Result<()> {
    send(
        &ctx.client,
        "PATCH",
        &rc_path(&ctx.namespace, name),
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"spec": {"replicas": n}})).unwrap_or_default(),
    )
    .await?;
    Ok(())
}

/// Waits until `name` has `want` ready pods (and the controller has seen its spec).
async fn wait_ready(
    ctx: &Ctx,
    name: &str,
    want: i64,
    o: &RollingOpts,
    start: Instant,
    progress: &mut Progress,
) -> Result<()> {
    loop {
        let rc = get_json(
            &ctx.client,
            &rc_path(&ctx.namespace, name),
            "application/json",
        )
        .await?;
        let g = |p: &str| rc.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        if g("/status/observedGeneration") >= g("/metadata/generation")
            && g("/status/readyReplicas") >= want
        {
            return Ok(());
        }
        if start.elapsed() > o.timeout {
            return Err(Error::usage(format!(
                "timed out waiting for any update progress to be made on {name}"
            )));
        }
        progress.wait(o.poll_interval).await;
    }
}

/// Adds `key=value` to the old controller's template, its pods and then its selector, so
/// that it stops counting the new controller's pods (kubectl's `AddDeploymentKeyToReplicationController`).
async fn add_deployment_key(ctx: &Ctx, old: &Value, key: &str, value: &str) -> Result<Value> {
    let name = old["metadata"]["name"].as_str().unwrap_or("");
    let path = rc_path(&ctx.namespace, name);
    if old
        .pointer("/spec/selector")
        .and_then(|s| s.get(key))
        .is_some()
    {
        return Ok(old.clone());
    }
    send(
        &ctx.client,
        "PATCH",
        &path,
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"spec": {"template": {"metadata": {"labels": {key: value}}}}}))
            .unwrap_or_default(),
    )
    .await?;
    let selector: Vec<String> = old["spec"]["selector"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("labelSelector", &selector.join(","))
        .finish();
    let pods = get_json(
        &ctx.client,
        &format!("/api/v1/namespaces/{}/pods?{q}", ctx.namespace),
        "application/json",
    )
    .await?;
    for p in pods["items"].as_array().into_iter().flatten() {
        let pn = p["metadata"]["name"].as_str().unwrap_or("");
        send(
            &ctx.client,
            "PATCH",
            &format!("/api/v1/namespaces/{}/pods/{pn}", ctx.namespace),
            "application/merge-patch+json",
            serde_json::to_vec(&json!({"metadata": {"labels": {key: value}}})).unwrap_or_default(),
        )
        .await?;
    }
    send(
        &ctx.client,
        "PATCH",
        &path,
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"spec": {"selector": {key: value}}})).unwrap_or_default(),
    )
    .await
}

pub(crate) async fn rolling_update(ctx: &Ctx, o: RollingOpts) -> Result<()> {
    let ns = ctx.namespace.clone();
    let old = get_json(&ctx.client, &rc_path(&ns, &o.old), "application/json").await?;
    let old_replicas = replicas(&old);
    let (mut new, rename) = if !o.files.filenames.is_empty() {
        if o.image.is_some() {
            return Err(Error::usage(
                "--filename and --image can not both be specified",
            ));
        }
        let objs = crate::manifest::read(&o.files)?;
        let Some((_, new)) = objs.into_iter().next() else {
            return Err(Error::usage("no objects passed to rolling-update"));
        };
        if new["kind"] != "ReplicationController" {
            return Err(Error::usage(format!(
                "{} contains a {} not a ReplicationController",
                o.files.filenames.join(","),
                new["kind"].as_str().unwrap_or("")
            )));
        }
        let nn = new["metadata"]["name"].as_str().unwrap_or("");
        if nn == o.old {
            return Err(Error::usage(format!(
                "{} cannot have the same name as the existing ReplicationController {}",
                o.files.filenames.join(","),
                o.old
            )));
        }
        // The selectors must differ in a key both have, or the old controller would count
        // the new pods.
        let (os, ns_) = (&old["spec"]["selector"], &new["spec"]["selector"]);
        let differs = ns_
            .as_object()
            .into_iter()
            .flatten()
            .any(|(k, v)| os.get(k).is_some_and(|ov| ov != v));
        if !differs {
            return Err(Error::usage(format!(
                "{} must specify a matching key with non-equal value in Selector for {}",
                o.files.filenames.join(","),
                o.old
            )));
        }
        (new, false)
    } else if let Some(image) = &o.image {
        let mut template = old["spec"]["template"].clone();
        let containers = template
            .pointer_mut("/spec/containers")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| Error::usage(format!("{} has no containers", o.old)))?;
        let c = match &o.container {
            Some(name) => containers
                .iter_mut()
                .find(|c| c["name"] == name.as_str())
                .ok_or_else(|| Error::usage(format!("couldn't find container named {name}")))?,
            None if containers.len() == 1 => &mut containers[0],
            None => {
                return Err(Error::usage(
                    "must specify --container when the controller has more than one container",
                ))
            }
        };
        if c["image"] == image.as_str() {
            return Err(Error::usage(
                "Specified --image must be distinct from existing container image",
            ));
        }
        c["image"] = json!(image);
        if let Some(l) = template
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            l.remove(&o.deployment_label_key);
        }
        let hash = template_hash(&template);
        template["metadata"]["labels"][&o.deployment_label_key] = json!(hash);
        let mut selector = old["spec"]["selector"].clone();
        selector[&o.deployment_label_key] = json!(hash);
        let name = o
            .new_name
            .clone()
            .unwrap_or_else(|| format!("{}-{hash}", o.old));
        let mut new = json!({
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": name, "labels": old["metadata"]["labels"].clone()},
            "spec": {"replicas": 0, "selector": selector, "template": template},
        });
        if new["metadata"]["labels"].is_null() {
            new["metadata"].as_object_mut().map(|m| m.remove("labels"));
        }
        // The old controller must stop counting the new pods first.
        let mut old_template = old["spec"]["template"].clone();
        if let Some(l) = old_template
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            l.remove(&o.deployment_label_key);
        }
        let old_hash = template_hash(&old_template);
        add_deployment_key(ctx, &old, &o.deployment_label_key, &old_hash).await?;
        (new, o.new_name.is_none())
    } else {
        return Err(Error::usage(
            "must specify --filename or --image for rolling-update",
        ));
    };
    let new_name = new["metadata"]["name"].as_str().unwrap_or("").to_string();
    let desired = new
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0 && !o.files.filenames.is_empty())
        .unwrap_or(old_replicas);
    new["spec"]["replicas"] = json!(0);
    new["metadata"]
        .as_object_mut()
        .map(|m| m.insert("namespace".into(), json!(ns)));
    // An existing new controller (an interrupted update) is continued.
    match get_json(&ctx.client, &rc_path(&ns, &new_name), "application/json").await {
        Ok(existing) => {
            println!("Continuing update with existing controller {new_name}.");
            new = existing;
        }
        Err(e) if e.code() == 404 => {
            new = send(
                &ctx.client,
                "POST",
                &format!("/api/v1/namespaces/{ns}/replicationcontrollers"),
                "application/json",
                serde_json::to_vec(&new).unwrap_or_default(),
            )
            .await?;
            println!("Created {new_name}");
        }
        Err(e) => return Err(e),
    }
    // Image pulls of the new controller's pods are shown as the kubelet reports them.
    let selector = new["spec"]["selector"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",");
    let mut progress = Progress::start(
        &ctx.client,
        PodScope {
            namespace: ns.clone(),
            selector,
        },
    )
    .await;
    // maxSurge 1, maxUnavailable 0: never fewer than `desired` ready, never more than
    // desired + 1 pods.
    progress.println(&format!(
        "Scaling up {new_name} from {} to {desired}, scaling down {} from {old_replicas} to 0 \
         (keep {desired} pods available, don't exceed {} pods)",
        replicas(&new).min(desired),
        o.old,
        desired + 1
    ));
    let start = Instant::now();
    let mut new_count = new
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut old_count = old_replicas;
    while new_count < desired || old_count > 0 {
        if new_count < desired {
            let target = (desired + 1 - old_count).clamp(new_count + 1, desired);
            progress.println(&format!("Scaling {new_name} up to {target}"));
            set_replicas(ctx, &new_name, target).await?;
            new_count = target;
            wait_ready(ctx, &new_name, new_count, &o, start, &mut progress).await?;
        }
        let down = (desired - new_count).max(0);
        if old_count > down {
            progress.println(&format!("Scaling {} down to {down}", o.old));
            set_replicas(ctx, &o.old, down).await?;
            old_count = down;
        }
        if new_count < desired || old_count > 0 {
            progress.wait(o.update_period).await;
        }
    }
    progress.finish();
    println!("Update succeeded. Deleting old controller: {}", o.old);
    send(
        &ctx.client,
        "DELETE",
        &rc_path(&ns, &o.old),
        "application/json",
        Vec::new(),
    )
    .await?;
    if rename {
        println!("Renaming {new_name} to {}", o.old);
        let cur = get_json(&ctx.client, &rc_path(&ns, &new_name), "application/json").await?;
        let mut copy = json!({
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": o.old, "namespace": ns},
            "spec": cur["spec"].clone(),
        });
        if let Some(l) = cur.pointer("/metadata/labels") {
            copy["metadata"]["labels"] = l.clone();
        }
        // kubectl's Rename: delete the new controller orphaning its pods, wait until it is
        // gone, then create it again under the old name; it adopts the orphans (same
        // selector), so no pod is replaced.
        send(
            &ctx.client,
            "DELETE",
            &rc_path(&ns, &new_name),
            "application/json",
            serde_json::to_vec(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}))
                .unwrap_or_default(),
        )
        .await?;
        let gone = Instant::now();
        for n in [new_name.as_str(), o.old.as_str()] {
            loop {
                match get_json(&ctx.client, &rc_path(&ns, n), "application/json").await {
                    Err(e) if e.code() == 404 => break,
                    Err(e) => return Err(e),
                    Ok(_) if gone.elapsed() > o.timeout => {
                        return Err(Error::usage(format!(
                            "timed out waiting for {n} to be deleted"
                        )))
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
        send(
            &ctx.client,
            "POST",
            &format!("/api/v1/namespaces/{ns}/replicationcontrollers"),
            "application/json",
            serde_json::to_vec(&copy).unwrap_or_default(),
        )
        .await?;
        println!("replicationcontroller/{} rolling updated", o.old);
    } else {
        println!(
            "replicationcontroller/{} rolling updated to \"{new_name}\"",
            o.old
        );
    }
    Ok(())
}
