//! `edit`: the object as YAML in `$KUBE_EDITOR`/`$EDITOR` (else `vi`) under kubectl's header,
//! the edited object sent as a merge patch carrying the original `resourceVersion` (so a
//! concurrent change is a 409 conflict, not a lost update), and on a refusal the file
//! re-opened with the server's error on top, as kubectl does.

use serde_json::{Map, Value};

use crate::apply::send;
use crate::discovery::Discovery;
use crate::error::{Error, Result};
use crate::get::get_json;
use crate::{printer, Ctx};

const HEADER: &str =
    "# Please edit the object below. Lines beginning with a '#' will be ignored,\n\
# and an empty file will abort the edit. If an error occurs while saving this file will be\n\
# reopened with the relevant failures.\n\
#\n";

/// The two-way merge patch from `a` to `b`: changed and new fields, `null` for removed ones,
/// lists whole.
pub(crate) fn diff(a: &Value, b: &Value) -> Option<Value> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut p = Map::new();
            for (k, bv) in y {
                match x.get(k) {
                    Some(av) => {
                        if let Some(d) = diff(av, bv) {
                            p.insert(k.clone(), d);
                        }
                    }
                    None => {
                        p.insert(k.clone(), bv.clone());
                    }
                }
            }
            for k in x.keys() {
                if !y.contains_key(k) {
                    p.insert(k.clone(), Value::Null);
                }
            }
            (!p.is_empty()).then_some(Value::Object(p))
        }
        _ if a == b => None,
        _ => Some(b.clone()),
    }
}

fn editor_command() -> String {
    ["KUBE_EDITOR", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

fn run_editor(path: &std::path::Path) -> Result<()> {
    let editor = editor_command();
    // As kubectl: an editor with arguments runs through the shell.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|source| Error::Io {
            what: format!("starting the editor {editor}"),
            source,
        })?;
    if !status.success() {
        return Err(Error::usage(format!(
            "there was a problem with the editor \"{editor}\""
        )));
    }
    Ok(())
}

fn strip_comments(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

pub(crate) async fn edit(ctx: &Ctx, args: &[String], output: Option<&str>) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let (reqs, _) = crate::get::parse_args(&disc, args)?;
    let Some(req) = reqs.into_iter().next() else {
        return Err(Error::usage("you must provide one or more resources"));
    };
    let Some(name) = req.names.first().cloned() else {
        return Err(Error::usage(
            "you must specify the name of the resource to edit",
        ));
    };
    let r = req.resource;
    let ns = r.namespaced.then(|| ctx.namespace.clone());
    let path = r.object_path(ns.as_deref(), &name);
    let original = get_json(&ctx.client, &path, "application/json").await?;
    let original_yaml = printer::to_yaml(&original);
    let dir = tempfile::Builder::new()
        .prefix("bosun-edit-")
        .tempdir()
        .map_err(|source| Error::Io {
            what: "creating a temporary directory".into(),
            source,
        })?;
    let file = dir.path().join(format!("{name}.yaml"));
    let mut content = format!("{HEADER}{original_yaml}");
    let mut last_edited: Option<String> = None;
    let mut last_error = String::new();
    loop {
        std::fs::write(&file, &content).map_err(|source| Error::Io {
            what: format!("writing {}", file.display()),
            source,
        })?;
        run_editor(&file)?;
        let edited = std::fs::read_to_string(&file).map_err(|source| Error::Io {
            what: format!("reading {}", file.display()),
            source,
        })?;
        let body = strip_comments(&edited);
        if body.trim().is_empty() {
            eprintln!("Edit cancelled, no changes made.");
            return Ok(());
        }
        if last_edited.as_deref() == Some(body.as_str()) {
            // The same invalid content saved again: give up, keep a copy, as kubectl does.
            let keep = std::env::temp_dir().join(format!("bosun-edit-{}.yaml", std::process::id()));
            let _ = std::fs::write(&keep, &edited);
            eprintln!("error: {last_error}");
            eprintln!(
                "A copy of your changes has been stored to \"{}\"",
                keep.display()
            );
            return Err(Error::usage("Edit cancelled, no valid changes were saved."));
        }
        let error = match serde_yaml::from_str::<Value>(&body) {
            Err(e) => {
                last_error = format!("{e}");
                Some(format!("Error: {e}"))
            }
            Ok(new) => {
                let same_identity = ["apiVersion", "kind"].iter().all(|k| new[k] == original[k])
                    && new.pointer("/metadata/name") == original.pointer("/metadata/name");
                if !same_identity {
                    last_error = "At least one of apiVersion, kind and name was changed".into();
                    Some("At least one of apiVersion, kind and name was changed".to_string())
                } else {
                    match diff(&original, &new) {
                        None => {
                            eprintln!("Edit cancelled, no changes made.");
                            return Ok(());
                        }
                        Some(mut p) => {
                            // The original's resourceVersion makes a concurrent change a
                            // conflict.
                            if let Some(rv) = original.pointer("/metadata/resourceVersion") {
                                p["metadata"]["resourceVersion"] = rv.clone();
                            }
                            match send(
                                &ctx.client,
                                "PATCH",
                                &path,
                                "application/merge-patch+json",
                                serde_json::to_vec(&p).unwrap_or_default(),
                            )
                            .await
                            {
                                Ok(obj) => {
                                    match printer::object_format(output)? {
                                        Some(fmt) => print!(
                                            "{}",
                                            printer::print_objects(
                                                &fmt,
                                                &[(r.clone(), obj)],
                                                true
                                            )?
                                        ),
                                        None => println!("{}/{name} edited", r.kind_prefix()),
                                    }
                                    return Ok(());
                                }
                                Err(Error::Api(s)) => {
                                    last_error = if s.code == 422 {
                                        format!("{} \"{name}\" is invalid", r.plural_group())
                                    } else {
                                        s.message.clone()
                                    };
                                    Some(server_error(&r.plural_group(), &name, &s))
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
            }
        };
        let Some(error) = error else { continue };
        last_edited = Some(body.clone());
        let mut head = String::from(HEADER);
        for l in error.lines() {
            head.push_str(&format!("# {l}\n"));
        }
        head.push_str("#\n");
        content = format!("{head}{body}");
    }
}

/// kubectl's re-opened header: `TYPE "NAME" was not valid:` and one `* field: message` line
/// per cause for a 422; the message otherwise.
fn server_error(plural: &str, name: &str, s: &kube::core::Status) -> String {
    if s.code == 422 {
        let causes: Vec<String> = s
            .details
            .as_ref()
            .map(|d| d.causes.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                if c.field.is_empty() {
                    format!("* {}", c.message)
                } else {
                    format!("* {}: {}", c.field, c.message)
                }
            })
            .collect();
        if !causes.is_empty() {
            return format!("{plural} \"{name}\" was not valid:\n{}", causes.join("\n"));
        }
    }
    s.message.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn two_way_diff() {
        let a = json!({"spec": {"replicas": 2, "x": 1, "ports": [1]}, "metadata": {"name": "a"}});
        let b = json!({"spec": {"replicas": 3, "ports": [1, 2]}, "metadata": {"name": "a"}});
        assert_eq!(
            diff(&a, &b),
            Some(json!({"spec": {"replicas": 3, "x": null, "ports": [1, 2]}}))
        );
        assert_eq!(diff(&a, &a), None);
        assert_eq!(strip_comments("# a\nb: 1\n  # c\n"), "b: 1\n");
    }
}
