//! kubectl's printers: the server's Tables through Go's `tabwriter` settings (padding 3,
//! left-aligned, last column unpadded), and yaml, json, name and jsonpath output.

use serde_json::{Map, Value};

use crate::discovery::Resource;
use crate::error::{Error, Result};

/// Go's `text/tabwriter` as kubectl configures it for tables (`minwidth 6, padding 3, ' '`):
/// every cell but the last of a row is padded to its column's widest cell plus three spaces,
/// and to at least six.
#[derive(Default)]
pub(crate) struct TabWriter {
    rows: Vec<Vec<String>>,
}

impl TabWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        self.rows.push(cells.into_iter().collect());
    }

    pub fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = Vec::new();
        for r in &self.rows {
            // The last cell of a row is not in a column.
            for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
                let n = c.chars().count();
                if w.len() <= i {
                    w.push(n);
                } else if w[i] < n {
                    w[i] = n;
                }
            }
        }
        w
    }

    pub fn finish(&self) -> String {
        let widths = self.widths();
        let mut out = String::new();
        for r in &self.rows {
            out.push_str(&format_row(r, &widths));
            out.push('\n');
        }
        out
    }
}

/// One row with the given column widths (used again by `get -w` for rows after the table).
pub(crate) fn format_row(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i + 1 == cells.len() {
            line.push_str(c);
        } else {
            // kubectl's GetNewTabWriter: minwidth 6, padding 3.
            let w = widths.get(i).copied().unwrap_or(0);
            line.push_str(c);
            for _ in c.chars().count()..(w + 3).max(6) {
                line.push(' ');
            }
        }
    }
    // tabwriter trims nothing, but a line of only padding has trailing blanks: keep as is.
    line
}

/// A table cell as kubectl prints it (`fmt.Sprint`, strings cut at the first line break).
pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => match s.find(['\n', '\r', '\x0c']) {
            Some(i) => format!("{}...", &s[..i]),
            None => s.clone(),
        },
        Value::Null => "<nil>".into(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{}", f as i64)
                } else {
                    f.to_string()
                }
            } else {
                n.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// `k=v,k2=v2` sorted by key, or `<none>`, as `--show-labels` prints them.
pub(crate) fn labels_cell(obj: &Value) -> String {
    let Some(m) = obj.pointer("/metadata/labels").and_then(Value::as_object) else {
        return "<none>".into();
    };
    if m.is_empty() {
        return "<none>".into();
    }
    let mut kv: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    kv.sort();
    kv.join(",")
}

/// Recursively sorts object keys, as Go's encoders print maps.
pub(crate) fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

pub(crate) fn to_json(v: &Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Serializing a Value into memory cannot fail.
    let _ = sorted(v).serialize(&mut ser);
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    s.push('\n');
    s
}

pub(crate) fn to_yaml(v: &Value) -> String {
    serde_yaml::to_string(&sorted(v)).unwrap_or_default()
}

/// kubectl's wrapper around several objects printed as yaml or json.
pub(crate) fn list_of(items: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

/// `-o` for objects (not tables): yaml, json, name, jsonpath=...; `None` for a format that
/// is a table's (`wide`, default).
pub(crate) enum ObjectFormat {
    Yaml,
    Json,
    Name,
    JsonPath(String),
}

pub(crate) fn object_format(output: Option<&str>) -> Result<Option<ObjectFormat>> {
    let Some(o) = output else { return Ok(None) };
    Ok(Some(match o {
        "wide" => return Ok(None),
        "yaml" => ObjectFormat::Yaml,
        "json" => ObjectFormat::Json,
        "name" => ObjectFormat::Name,
        _ => {
            if let Some(t) = o
                .strip_prefix("jsonpath=")
                .or_else(|| o.strip_prefix("jsonpath-as-json="))
            {
                ObjectFormat::JsonPath(t.to_string())
            } else {
                return Err(Error::usage(format!(
                    "unable to match a printer suitable for the output format \"{o}\", allowed \
                     formats are: json,jsonpath,name,wide,yaml"
                )));
            }
        }
    }))
}

/// `pod/name`.
pub(crate) fn name_of(r: &Resource, obj: &Value) -> String {
    format!(
        "{}/{}",
        r.kind_prefix(),
        obj.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    )
}

/// Prints objects in an object format: one object alone when `single`, else a List.
pub(crate) fn print_objects(
    fmt: &ObjectFormat,
    objs: &[(Resource, Value)],
    single: bool,
) -> Result<String> {
    let whole = || {
        if single && objs.len() == 1 {
            objs[0].1.clone()
        } else {
            list_of(objs.iter().map(|(_, o)| o.clone()).collect())
        }
    };
    Ok(match fmt {
        ObjectFormat::Yaml => to_yaml(&whole()),
        ObjectFormat::Json => to_json(&whole()),
        ObjectFormat::Name => objs.iter().map(|(r, o)| name_of(r, o) + "\n").collect(),
        ObjectFormat::JsonPath(t) => crate::jsonpath::render(t, &whole())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_pads_like_go() {
        let mut tw = TabWriter::new();
        tw.row(["NAME", "READY", "AGE"].map(String::from));
        tw.row(["mysql-abcde", "1/1", "5s"].map(String::from));
        assert_eq!(
            tw.finish(),
            "NAME          READY   AGE\nmysql-abcde   1/1     5s\n"
        );
        // Without a header, short columns still get minwidth 6.
        let mut tw = TabWriter::new();
        tw.row(["db", "0", "5s"].map(String::from));
        assert_eq!(tw.finish(), "db    0     5s\n");
    }

    #[test]
    fn cells_and_labels() {
        assert_eq!(cell(&serde_json::json!(3)), "3");
        assert_eq!(cell(&serde_json::json!(3.0)), "3");
        assert_eq!(cell(&serde_json::json!("a\nb")), "a...");
        assert_eq!(cell(&Value::Null), "<nil>");
        let o = serde_json::json!({"metadata": {"labels": {"b": "2", "a": "1"}}});
        assert_eq!(labels_cell(&o), "a=1,b=2");
        assert_eq!(labels_cell(&serde_json::json!({})), "<none>");
        assert_eq!(
            to_json(&serde_json::json!({"b": 1, "a": [1]})),
            "{\n    \"a\": [\n        1\n    ],\n    \"b\": 1\n}\n"
        );
    }
}
