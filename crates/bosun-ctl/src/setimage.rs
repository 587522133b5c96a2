//! `set image`: kubectl's `set image (-f FILE | TYPE NAME | TYPE --all | TYPE -l SEL)
//! CONTAINER=IMAGE...`: for each object with a pod template (or a pod), the named containers
//! (or `*`, every one) get the image, sent as the strategic merge patch kubectl computes
//! (`$setElementOrder` plus the changed entries), with `fieldManager=kubectl-set`.

use serde_json::{json, Map, Value};

use crate::apply::send;
use crate::discovery::{Discovery, Resource};
use crate::error::{Error, Result};
use crate::get::get_json;
use crate::{Ctx, FileArgs};

pub(crate) struct SetImageOpts {
    pub args: Vec<String>,
    pub all: bool,
    pub selector: Option<String>,
    pub files: FileArgs,
    pub output: Option<String>,
}

/// Where the pod spec of a kind lives (`UpdatePodSpecForObject`).
fn pod_spec_path(r: &Resource) -> Option<&'static [&'static str]> {
    Some(match (r.group.as_str(), r.kind.as_str()) {
        ("", "Pod") => &["spec"],
        ("", "ReplicationController")
        | ("apps", "Deployment" | "DaemonSet" | "ReplicaSet" | "StatefulSet")
        | ("batch", "Job") => &["spec", "template", "spec"],
        ("batch", "CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// Sets the images in one pod spec; returns the patch of that spec (`None`: no change)
/// and the container names that matched.
fn patch_spec(
    spec: &Value,
    images: &[(String, String)],
) -> (Option<Map<String, Value>>, Vec<String>) {
    let mut patch = Map::new();
    let mut found = Vec::new();
    for list in ["initContainers", "containers"] {
        let containers = spec
            .get(list)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut changed = Vec::new();
        for c in containers {
            let name = c["name"].as_str().unwrap_or("");
            let mut image = c["image"].as_str().unwrap_or("").to_string();
            for (want, new) in images {
                if want == name || want == "*" {
                    found.push(want.clone());
                    image = new.clone();
                }
            }
            if c["image"].as_str() != Some(image.as_str()) {
                changed.push(json!({"image": image, "name": name}));
            }
        }
        if !changed.is_empty() {
            let order: Vec<Value> = containers
                .iter()
                .map(|c| json!({"name": c["name"].clone()}))
                .collect();
            patch.insert(format!("$setElementOrder/{list}"), Value::Array(order));
            patch.insert(list.to_string(), Value::Array(changed));
        }
    }
    ((!patch.is_empty()).then_some(patch), found)
}

pub(crate) async fn set_image(ctx: &Ctx, o: SetImageOpts) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let (resources, images): (Vec<String>, Vec<String>) =
        o.args.iter().cloned().partition(|a| !a.contains('='));
    if resources.is_empty() && o.files.filenames.is_empty() {
        return Err(Error::usage(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>",
        ));
    }
    if images.is_empty() {
        return Err(Error::usage("at least one image update is required"));
    }
    let images: Vec<(String, String)> = images
        .iter()
        .filter_map(|a| a.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if images.len() > 1 && images.iter().any(|(k, _)| k == "*") {
        return Err(Error::usage(
            "all containers are already specified by *, but saw more than one container_name=container_image pairs",
        ));
    }
    // The objects: from files, by name, or every one (--all, -l) of a type.
    let mut targets: Vec<(Resource, Option<String>, String)> = Vec::new();
    if !o.files.filenames.is_empty() {
        for (_, obj) in crate::manifest::read(&o.files)? {
            let r = disc.for_kind(
                obj["apiVersion"].as_str().unwrap_or(""),
                obj["kind"].as_str().unwrap_or(""),
            )?;
            let ns = obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| ctx.namespace.clone());
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            targets.push((r, Some(ns), name));
        }
    } else {
        let (reqs, _) = crate::get::parse_args(&disc, &resources)?;
        for req in reqs {
            let ns = req.resource.namespaced.then(|| ctx.namespace.clone());
            if req.names.is_empty() {
                if !o.all && o.selector.is_none() {
                    return Err(Error::usage(
                        "resource(s) were provided, but no name was specified",
                    ));
                }
                let mut path = req.resource.collection_path(ns.as_deref());
                if let Some(l) = &o.selector {
                    path.push('?');
                    path.push_str(
                        &form_urlencoded::Serializer::new(String::new())
                            .append_pair("labelSelector", l)
                            .finish(),
                    );
                }
                let list = get_json(&ctx.client, &path, "application/json").await?;
                for it in list["items"].as_array().into_iter().flatten() {
                    let name = it
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    targets.push((req.resource.clone(), ns.clone(), name));
                }
            } else {
                for n in req.names {
                    targets.push((req.resource.clone(), ns.clone(), n));
                }
            }
        }
    }
    let mut errors: Vec<String> = Vec::new();
    for (r, ns, name) in targets {
        let path = r.object_path(ns.as_deref(), &name);
        let obj = match get_json(&ctx.client, &path, "application/json").await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{}", e.kubectl_message());
                return Err(Error::Reported);
            }
        };
        let Some(spec_path) = pod_spec_path(&r) else {
            errors.push(format!(
                "{}/{name} the object is not a pod or does not have a pod template: *{}.{}",
                r.plural_group(),
                r.version,
                r.kind
            ));
            continue;
        };
        let mut spec = &obj;
        for k in spec_path {
            spec = &spec[*k];
        }
        let (spec_patch, found) = patch_spec(spec, &images);
        for (want, _) in &images {
            if !found.contains(want) {
                errors.push(format!("unable to find container named {want:?}"));
            }
        }
        let Some(spec_patch) = spec_patch else {
            continue;
        };
        let mut body = Value::Object(spec_patch);
        for k in spec_path.iter().rev() {
            body = json!({ *k: body });
        }
        let updated = match send(
            &ctx.client,
            "PATCH",
            &format!("{path}?fieldManager=kubectl-set"),
            "application/strategic-merge-patch+json",
            serde_json::to_vec(&body).unwrap_or_default(),
        )
        .await
        {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("failed to patch image update to pod template: {e}"));
                continue;
            }
        };
        match o.output.as_deref() {
            Some("name") => println!("{}", crate::printer::name_of(&r, &updated)),
            _ => println!("{}/{name} image updated", r.kind_prefix()),
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    // cmdutil.CheckErr prints an aggregate's errors one per line.
    for e in &errors {
        eprintln!("error: {e}");
    }
    Err(Error::Reported)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn patch_names_only_changed_containers() {
        let spec = json!({"containers": [
            {"name": "a", "image": "a:1"},
            {"name": "b", "image": "b:1"},
        ]});
        let img = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let (p, found) = super::patch_spec(&spec, &img("b", "b:2"));
        assert_eq!(
            serde_json::Value::Object(p.unwrap()),
            json!({
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"image": "b:2", "name": "b"}],
            })
        );
        assert_eq!(found, vec!["b"]);
        // Same image: nothing to send; unknown container: not found.
        assert!(super::patch_spec(&spec, &img("a", "a:1")).0.is_none());
        assert!(super::patch_spec(&spec, &img("x", "x:1")).1.is_empty());
        // `*` sets every container.
        let (p, _) = super::patch_spec(&spec, &img("*", "z"));
        assert_eq!(p.unwrap()["containers"].as_array().unwrap().len(), 2);
    }
}
