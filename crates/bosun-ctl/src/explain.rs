//! `explain TYPE[.FIELD...]`: a kind's or a field's documentation from the server's OpenAPI
//! v3 document of its group-version (the schema whose `x-kubernetes-group-version-kind`
//! names the kind, properties followed through `$ref`/`allOf`), printed in kubectl's
//! plaintext layout.

use serde_json::Value;

use crate::discovery::Discovery;
use crate::error::{Error, Result};
use crate::get::get_json;
use crate::Ctx;

const REF_PREFIX: &str = "#/components/schemas/";

/// The schema behind `$ref` or a single `allOf` entry (kubectl's `resolveRef`), merged with
/// the description the referring schema gives.
fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    let r = s["$ref"].as_str().or_else(|| {
        s["allOf"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|x| x["$ref"].as_str())
    });
    match r.and_then(|r| r.strip_prefix(REF_PREFIX)) {
        Some(name) => doc
            .pointer("/components/schemas")
            .and_then(|c| c.get(name))
            .unwrap_or(s),
        None => s,
    }
}

fn ref_name(s: &Value) -> Option<&str> {
    let r = s["$ref"].as_str().or_else(|| {
        s["allOf"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|x| x["$ref"].as_str())
    })?;
    r.strip_prefix(REF_PREFIX)
        .map(|n| n.rsplit('.').next().unwrap_or(n))
}

/// kubectl's `typeGuess`: `string`, `[]Container`, `map[string]string`, `ObjectMeta`.
fn type_of(doc: &Value, s: &Value) -> String {
    if let Some(n) = ref_name(s) {
        let target = resolve(doc, s);
        // References to primitive-typed definitions (Quantity, IntOrString, Time) print
        // their own name only when the target is not an object with properties.
        if target.get("properties").is_none() {
            if let Some(t) = target["type"].as_str() {
                if t != "object" {
                    return t.to_string();
                }
            }
        }
        return n.to_string();
    }
    match s["type"].as_str() {
        Some("array") => format!("[]{}", type_of(doc, &s["items"])),
        Some("object") => match s.get("additionalProperties") {
            Some(ap) if ap.is_object() => format!("map[string]{}", type_of(doc, ap)),
            _ => "Object".to_string(),
        },
        Some(t) => t.to_string(),
        None => {
            if s.get("x-kubernetes-int-or-string").is_some() {
                "IntOrString".into()
            } else {
                "Object".into()
            }
        }
    }
}

/// Go text wrapping as kubectl's explain template does it: words greedily packed into
/// `width` columns, each line indented.
fn wrap(text: &str, indent: usize, width: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for para in text.split('\n') {
        // Split on single spaces, as Go's wrapper does: runs of spaces survive.
        let mut line = String::new();
        let mut started = false;
        for w in para.split(' ') {
            if started && line.len() + 1 + w.len() > width {
                out.push_str(&pad);
                out.push_str(line.trim_end());
                out.push('\n');
                line.clear();
                started = false;
            }
            if started {
                line.push(' ');
            }
            line.push_str(w);
            started = true;
        }
        out.push_str(&pad);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(crate) async fn explain(
    ctx: &Ctx,
    path: &str,
    recursive: bool,
    api_version: Option<&str>,
) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let mut parts = path.split('.');
    let typed = parts.next().unwrap_or("");
    let mut r = match disc.resolve(typed) {
        Ok(r) => r,
        Err(Error::Usage(m)) => {
            // kubectl explain prints this one without `error: `.
            eprintln!("{m}");
            return Err(Error::Reported);
        }
        Err(e) => return Err(e),
    };
    if let Some(av) = api_version {
        let (g, v) = av.split_once('/').unwrap_or(("", av));
        r.group = g.to_string();
        r.version = v.to_string();
    }
    let fields: Vec<&str> = parts.collect();
    let index = get_json(&ctx.client, "/openapi/v3", "application/json").await?;
    let key = if r.group.is_empty() {
        format!("api/{}", r.version)
    } else {
        format!("apis/{}/{}", r.group, r.version)
    };
    let url = index
        .pointer(&format!("/paths/{}", key.replace('/', "~1")))
        .and_then(|p| p["serverRelativeURL"].as_str())
        .ok_or_else(|| {
            Error::usage(format!(
                "couldn't find resource for \"{}\"",
                r.plural_group()
            ))
        })?
        .to_string();
    let doc = get_json(&ctx.client, &url, "application/json").await?;
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::usage("the server's OpenAPI document has no schemas"))?;
    let root = schemas
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|g| {
                    g["group"] == r.group.as_str()
                        && g["version"] == r.version.as_str()
                        && g["kind"] == r.kind.as_str()
                })
        })
        .ok_or_else(|| {
            Error::usage(format!(
                "couldn't find resource for \"{}\"",
                r.plural_group()
            ))
        })?;
    let mut out = String::new();
    if !r.group.is_empty() {
        out.push_str(&format!("GROUP:      {}\n", r.group));
    }
    out.push_str(&format!(
        "KIND:       {}\nVERSION:    {}\n\n",
        r.kind, r.version
    ));
    // Walk the field path.
    let mut schema = root;
    let mut field_schema: Option<&Value> = None;
    for f in &fields {
        let mut s = resolve(&doc, schema);
        // Through arrays and maps to their elements, as kubectl does.
        loop {
            if s["type"] == "array" {
                s = resolve(&doc, &s["items"]);
            } else if s.get("properties").is_none() && s["additionalProperties"].is_object() {
                s = resolve(&doc, &s["additionalProperties"]);
            } else {
                break;
            }
        }
        let Some(next) = s.pointer("/properties").and_then(|p| p.get(*f)) else {
            print!("{out}");
            return Err(Error::usage(format!("field \"{f}\" does not exist")));
        };
        field_schema = Some(next);
        schema = next;
    }
    let described = resolve(&doc, schema);
    if let (Some(fs), Some(last)) = (field_schema, fields.last()) {
        out.push_str(&format!("FIELD: {last} <{}>\n", type_of(&doc, fs)));
        if let Some(e) = fs["enum"].as_array() {
            out.push_str("ENUM:\n");
            for v in e {
                out.push_str(&format!("    {}\n", v.as_str().unwrap_or("")));
            }
        }
        out.push_str("\n\n");
    }
    out.push_str("DESCRIPTION:\n");
    let mut desc = String::new();
    if let Some(fs) = field_schema {
        if let Some(d) = fs["description"].as_str() {
            desc.push_str(d);
        }
        let mut target = described;
        loop {
            if target["type"] == "array" {
                target = resolve(&doc, &target["items"]);
            } else if target.get("properties").is_none()
                && target["additionalProperties"].is_object()
            {
                target = resolve(&doc, &target["additionalProperties"]);
            } else {
                break;
            }
        }
        if !std::ptr::eq(target, fs) {
            if let Some(d) = target["description"].as_str() {
                if !desc.is_empty() {
                    desc.push('\n');
                }
                desc.push_str(d);
            }
        }
    } else if let Some(d) = described["description"].as_str() {
        desc.push_str(d);
    }
    if desc.is_empty() {
        desc.push_str("<empty>");
    }
    out.push_str(&wrap(&desc, 4, 76));
    out.push_str("    \n");
    let mut elem = described;
    while elem["type"] == "array" {
        elem = resolve(&doc, &elem["items"]);
    }
    if let Some(props) = elem["properties"].as_object() {
        out.push_str("FIELDS:\n");
        let required: Vec<&str> = elem["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if recursive {
            recurse(&doc, elem, 2, &mut out, 0);
        } else {
            let mut names: Vec<&String> = props.keys().collect();
            names.sort();
            for n in names {
                let p = &props[n];
                let req = if required.contains(&n.as_str()) {
                    " -required-"
                } else {
                    ""
                };
                out.push_str(&format!("  {n}\t<{}>{req}\n", type_of(&doc, p)));
                if let Some(e) = p["enum"].as_array() {
                    let vals: Vec<String> = e
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect();
                    out.push_str(&format!("  enum: {}\n", vals.join(", ")));
                }
                let d = p["description"]
                    .as_str()
                    .or_else(|| resolve(&doc, p)["description"].as_str())
                    .unwrap_or("<no description>");
                out.push_str(&wrap(d, 4, 76));
                out.push('\n');
            }
        }
    }
    out.push('\n');
    print!("{out}");
    Ok(())
}

fn recurse(doc: &Value, s: &Value, indent: usize, out: &mut String, depth: usize) {
    if depth > 15 {
        return;
    }
    let mut elem = resolve(doc, s);
    while elem["type"] == "array" {
        elem = resolve(doc, &elem["items"]);
    }
    let Some(props) = elem["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = elem["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut names: Vec<&String> = props.keys().collect();
    names.sort();
    for n in names {
        let p = &props[n];
        let req = if required.contains(&n.as_str()) {
            " -required-"
        } else {
            ""
        };
        out.push_str(&format!(
            "{}{n}\t<{}>{req}\n",
            " ".repeat(indent),
            type_of(doc, p)
        ));
        recurse(doc, p, indent + 2, out, depth + 1);
    }
}
