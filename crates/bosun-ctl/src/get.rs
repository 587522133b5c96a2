//! `get`: the server's Tables (`application/json;as=Table;v=v1;g=meta.k8s.io`) printed as
//! kubectl prints them, or the objects as yaml/json/name/jsonpath; `-w` streams the rows that
//! change after the first listing.

use futures::{AsyncBufReadExt, TryStreamExt};
use serde_json::Value;

use crate::discovery::{Discovery, Resource};
use crate::error::{Error, Result};
use crate::printer::{self, ObjectFormat, TabWriter};
use crate::{Ctx, FileArgs, SelectArgs};

pub(crate) const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

pub(crate) struct GetOpts {
    pub args: Vec<String>,
    pub output: Option<String>,
    pub select: SelectArgs,
    pub files: FileArgs,
    pub watch: bool,
    pub show_labels: bool,
    /// `-L`: label keys printed as extra columns.
    pub label_columns: Vec<String>,
    pub no_headers: bool,
}

/// What one command line asks for: per type, either names or everything (with selectors).
pub(crate) struct Request {
    pub resource: Resource,
    pub names: Vec<String>,
    /// The namespace of these names when they came from a manifest.
    pub namespace: Option<String>,
}

/// Turns `TYPE[,TYPE] [NAME...]` or `TYPE/NAME...` into requests.
pub(crate) fn parse_args(disc: &Discovery, args: &[String]) -> Result<(Vec<Request>, bool)> {
    if args.is_empty() {
        return Err(Error::usage(
            "you must specify the type of resource to get. Use \"bosun ctl api-resources\" for \
             a complete list of supported resources.",
        ));
    }
    if args[0].contains('/') {
        let mut out: Vec<Request> = Vec::new();
        for a in args {
            let (t, n) = a.split_once('/').ok_or_else(|| {
                Error::usage(format!(
                    "there is no need to specify a resource type as a separate argument when \
                     passing arguments in resource/name form (e.g. 'bosun ctl get \
                     resource/<resource_name>' instead of 'bosun ctl get resource \
                     resource/<resource_name>'): {a}"
                ))
            })?;
            let r = disc.resolve(t)?;
            match out.iter_mut().find(|q| q.resource == r) {
                Some(q) => q.names.push(n.to_string()),
                None => out.push(Request {
                    resource: r,
                    names: vec![n.to_string()],
                    namespace: None,
                }),
            }
        }
        let kinds = out.len() > 1;
        return Ok((out, kinds));
    }
    let types = disc.expand(&args[0])?;
    let names: Vec<String> = args[1..].to_vec();
    let with_kind = types.len() > 1 || args[0].split(',').any(|t| disc.resolve(t).is_err());
    Ok((
        types
            .into_iter()
            .map(|r| Request {
                resource: r,
                names: names.clone(),
                namespace: None,
            })
            .collect(),
        with_kind,
    ))
}

fn query(select: &SelectArgs, extra: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(l) = &select.selector {
        q.append_pair("labelSelector", l);
    }
    if let Some(f) = &select.field_selector {
        q.append_pair("fieldSelector", f);
    }
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    let s = q.finish();
    if s.is_empty() {
        s
    } else {
        format!("?{s}")
    }
}

pub(crate) async fn get_text(client: &kube::Client, path: &str, accept: &str) -> Result<String> {
    let req = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .map_err(|e| Error::usage(format!("building the request for {path}: {e}")))?;
    Ok(client.request_text(req).await?)
}

pub(crate) async fn get_json(client: &kube::Client, path: &str, accept: &str) -> Result<Value> {
    let text = get_text(client, path, accept).await?;
    serde_json::from_str(&text)
        .map_err(|e| Error::usage(format!("the server's answer to {path} is not JSON: {e}")))
}

/// A table to print: its header and rows (cells already strings), and the list's version.
struct Printed {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    resource_version: String,
}

fn table_to_rows(
    t: &Value,
    wide: bool,
    namespace_col: bool,
    show_labels: bool,
    label_columns: &[String],
    kind: Option<&str>,
) -> Printed {
    let defs = t["columnDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let keep: Vec<usize> = defs
        .iter()
        .enumerate()
        .filter(|(_, d)| wide || d["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, _)| i)
        .collect();
    let mut header: Vec<String> = Vec::new();
    if namespace_col {
        header.push("NAMESPACE".into());
    }
    header.extend(
        keep.iter()
            .map(|&i| defs[i]["name"].as_str().unwrap_or("").to_uppercase()),
    );
    // kubectl names a label column by the key's last path segment, upper-cased.
    header.extend(
        label_columns
            .iter()
            .map(|k| k.rsplit('/').next().unwrap_or(k).to_uppercase()),
    );
    if show_labels {
        header.push("LABELS".into());
    }
    let mut rows = Vec::new();
    for row in t["rows"].as_array().into_iter().flatten() {
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        let obj = &row["object"];
        let mut out: Vec<String> = Vec::new();
        if namespace_col {
            out.push(
                obj.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            );
        }
        for (n, &i) in keep.iter().enumerate() {
            let mut c = cells.get(i).map(printer::cell).unwrap_or_default();
            if n == 0 {
                if let Some(k) = kind {
                    c = format!("{k}/{c}");
                }
            }
            out.push(c);
        }
        for k in label_columns {
            out.push(
                obj.pointer("/metadata/labels")
                    .and_then(|l| l.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            );
        }
        if show_labels {
            out.push(printer::labels_cell(obj));
        }
        rows.push(out);
    }
    Printed {
        header,
        rows,
        resource_version: t
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    }
}

pub(crate) async fn run(ctx: &Ctx, o: GetOpts) -> Result<()> {
    let disc = Discovery::load(&ctx.client).await?;
    let fmt = printer::object_format(o.output.as_deref())?;
    let wide = o.output.as_deref() == Some("wide");
    let (requests, with_kind) = if o.files.filenames.is_empty() {
        parse_args(&disc, &o.args)?
    } else {
        let objs = crate::manifest::read(&o.files)?;
        let mut reqs: Vec<Request> = Vec::new();
        for (_, obj) in objs {
            let r = disc.for_kind(
                obj["apiVersion"].as_str().unwrap_or(""),
                obj["kind"].as_str().unwrap_or(""),
            )?;
            reqs.push(Request {
                resource: r,
                names: vec![obj
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()],
                namespace: obj
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(String::from),
            });
        }
        let kinds = reqs
            .iter()
            .map(|r| &r.resource)
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w[0] != w[1]);
        (reqs, kinds)
    };
    let ns_for = |req: &Request| -> Option<String> {
        if o.select.all_namespaces && req.names.is_empty() {
            None
        } else {
            Some(
                req.namespace
                    .clone()
                    .unwrap_or_else(|| ctx.namespace.clone()),
            )
        }
    };
    let mut first_error: Option<Error> = None;
    let mut printed_any = false;

    if let Some(fmt) = &fmt {
        let mut objs: Vec<(Resource, Value)> = Vec::new();
        let mut single = true;
        for req in &requests {
            let ns = ns_for(req);
            if req.names.is_empty() {
                single = false;
                let path = req.resource.collection_path(ns.as_deref()) + &query(&o.select, &[]);
                let list = get_json(&ctx.client, &path, "application/json").await?;
                let kind = req.resource.kind.clone();
                let av = req.resource.api_version();
                for mut it in list["items"].as_array().cloned().unwrap_or_default() {
                    // Lists omit each item's kind and apiVersion; kubectl puts them back.
                    if let Some(m) = it.as_object_mut() {
                        m.entry("apiVersion").or_insert(Value::String(av.clone()));
                        m.entry("kind").or_insert(Value::String(kind.clone()));
                    }
                    objs.push((req.resource.clone(), it));
                }
            } else {
                if req.names.len() > 1 {
                    single = false;
                }
                for n in &req.names {
                    let path = req.resource.object_path(ns.as_deref(), n);
                    match get_json(&ctx.client, &path, "application/json").await {
                        Ok(v) => objs.push((req.resource.clone(), v)),
                        Err(e) => {
                            eprintln!("{}", e.kubectl_message());
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
        }
        if requests.len() > 1 {
            single = false;
        }
        if objs.is_empty()
            && first_error.is_none()
            && !matches!(fmt, ObjectFormat::Yaml | ObjectFormat::Json)
        {
            no_resources(ctx, &o, &requests);
        } else if !(objs.is_empty() && first_error.is_some()) {
            print!("{}", printer::print_objects(fmt, &objs, single)?);
        }
        return first_error.map_or(Ok(()), |_| Err(Error::Reported));
    }

    let mut last: Option<(Resource, Option<String>, Printed)> = None;
    for req in &requests {
        let ns = ns_for(req);
        let namespace_col = o.select.all_namespaces && req.resource.namespaced;
        let kind = with_kind.then(|| req.resource.kind_prefix());
        let mut tables: Vec<Value> = Vec::new();
        if req.names.is_empty() {
            let path = req.resource.collection_path(ns.as_deref()) + &query(&o.select, &[]);
            tables.push(get_json(&ctx.client, &path, TABLE_ACCEPT).await?);
        } else {
            for n in &req.names {
                let path = req.resource.object_path(ns.as_deref(), n);
                match get_json(&ctx.client, &path, TABLE_ACCEPT).await {
                    Ok(t) => tables.push(t),
                    Err(e) => {
                        eprintln!("{}", e.kubectl_message());
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        let mut p = Printed {
            header: Vec::new(),
            rows: Vec::new(),
            resource_version: String::new(),
        };
        for t in &tables {
            let x = table_to_rows(
                t,
                wide,
                namespace_col,
                o.show_labels,
                &o.label_columns,
                kind.as_deref(),
            );
            p.header = x.header;
            p.rows.extend(x.rows);
            p.resource_version = x.resource_version;
        }
        if !p.rows.is_empty() {
            if printed_any {
                println!();
            }
            let mut tw = TabWriter::new();
            if !o.no_headers {
                tw.row(p.header.clone());
            }
            for r in &p.rows {
                tw.row(r.clone());
            }
            print!("{}", tw.finish());
            printed_any = true;
        }
        last = Some((req.resource.clone(), ns, p));
    }
    if !printed_any && first_error.is_none() {
        no_resources(ctx, &o, &requests);
    }
    if first_error.is_some() {
        return Err(Error::Reported);
    }
    if o.watch {
        let Some((r, ns, p)) = last else {
            return Ok(());
        };
        if requests.len() > 1 {
            return Err(Error::usage("watch is only supported on individual resources and resource collections, but 2 resources were found"));
        }
        watch(ctx, &o, &r, ns.as_deref(), p, wide).await?;
    }
    Ok(())
}

fn no_resources(ctx: &Ctx, o: &GetOpts, requests: &[Request]) {
    let namespaced = requests.iter().any(|r| r.resource.namespaced);
    if o.select.all_namespaces || !namespaced {
        eprintln!("No resources found");
    } else {
        eprintln!("No resources found in {} namespace.", ctx.namespace);
    }
}

async fn watch(
    ctx: &Ctx,
    o: &GetOpts,
    r: &Resource,
    ns: Option<&str>,
    first: Printed,
    wide: bool,
) -> Result<()> {
    let mut extra: Vec<(&str, &str)> = vec![("watch", "true")];
    if !first.resource_version.is_empty() {
        extra.push(("resourceVersion", &first.resource_version));
    }
    let mut select = o.select.clone();
    if !o.args.is_empty() && o.args.len() == 2 {
        select.field_selector = Some(format!("metadata.name={}", o.args[1]));
    }
    let path = r.collection_path(ns) + &query(&select, &extra);
    let req = http::Request::get(&path)
        .header(http::header::ACCEPT, TABLE_ACCEPT)
        .body(Vec::new())
        .map_err(|e| Error::usage(format!("building the watch request: {e}")))?;
    let stream = ctx.client.request_stream(req).await?;
    let mut lines = stream.lines();
    let mut widths = {
        let mut tw = TabWriter::new();
        tw.row(first.header.clone());
        for row in &first.rows {
            tw.row(row.clone());
        }
        tw.widths()
    };
    let namespace_col = o.select.all_namespaces && r.namespaced;
    let mut header_printed = !first.rows.is_empty() || o.no_headers;
    while let Some(line) = lines.try_next().await.map_err(|source| Error::Io {
        what: "reading the watch".into(),
        source,
    })? {
        let Ok(ev) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if ev["type"] == "ERROR" {
            let status: kube::core::Status =
                serde_json::from_value(ev["object"].clone()).unwrap_or_default();
            return Err(Error::Api(Box::new(status)));
        }
        if ev["type"] == "BOOKMARK" {
            continue;
        }
        let mut p = table_to_rows(
            &ev["object"],
            wide,
            namespace_col,
            o.show_labels,
            &o.label_columns,
            None,
        );
        if p.header.is_empty() || p.header.len() <= usize::from(namespace_col) {
            p.header = first.header.clone();
        }
        let mut tw = TabWriter::new();
        tw.row(p.header.clone());
        for row in &p.rows {
            tw.row(row.clone());
        }
        for (i, w) in tw.widths().into_iter().enumerate() {
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
        if !header_printed {
            println!("{}", printer::format_row(&p.header, &widths));
            header_printed = true;
        }
        for row in &p.rows {
            println!("{}", printer::format_row(row, &widths));
        }
    }
    Ok(())
}
