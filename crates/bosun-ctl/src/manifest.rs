//! Objects from `-f`: files, directories (their .yaml, .yml and .json files, sorted; `-R`
//! recurses) and `-` for stdin; multi-document YAML and `kind: List` are split into objects.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::FileArgs;

/// (where it came from, the object), in the order given.
pub(crate) fn read(files: &FileArgs) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for f in &files.filenames {
        if f == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|source| Error::Io {
                    what: "reading stdin".into(),
                    source,
                })?;
            parse_into("STDIN", &s, &mut out)?;
        } else {
            read_path(Path::new(f), files.recursive, true, &mut out)?;
        }
    }
    if out.is_empty() {
        return Err(Error::usage("no objects passed to create or apply"));
    }
    Ok(out)
}

fn read_path(p: &Path, recursive: bool, top: bool, out: &mut Vec<(String, Value)>) -> Result<()> {
    let meta = std::fs::metadata(p)
        .map_err(|_| Error::usage(format!("the path \"{}\" does not exist", p.display())))?;
    if meta.is_dir() {
        if !top && !recursive {
            return Ok(());
        }
        let mut entries: Vec<_> = std::fs::read_dir(p)
            .map_err(|source| Error::Io {
                what: format!("reading {}", p.display()),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let manifest = matches!(
                e.extension().and_then(|x| x.to_str()),
                Some("yaml") | Some("yml") | Some("json")
            );
            if e.is_dir() || manifest {
                read_path(&e, recursive, false, out)?;
            }
        }
        return Ok(());
    }
    let s = std::fs::read_to_string(p).map_err(|source| Error::Io {
        what: format!("reading {}", p.display()),
        source,
    })?;
    parse_into(&p.display().to_string(), &s, out)
}

/// Splits YAML (or JSON) documents into objects.
pub(crate) fn parse_into(src: &str, text: &str, out: &mut Vec<(String, Value)>) -> Result<()> {
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc)
            .map_err(|e| Error::usage(format!("error parsing {src}: {e}")))?;
        match v {
            Value::Null => {}
            Value::Object(_) => {
                let kind = v["kind"].as_str().unwrap_or("");
                if kind.ends_with("List") && v["items"].is_array() {
                    for it in v["items"].as_array().cloned().unwrap_or_default() {
                        out.push((src.to_string(), it));
                    }
                } else {
                    if v["kind"].as_str().unwrap_or("").is_empty()
                        || v["apiVersion"].as_str().unwrap_or("").is_empty()
                    {
                        return Err(Error::usage(format!(
                            "error validating data from {src}: apiVersion and kind must be set"
                        )));
                    }
                    out.push((src.to_string(), v));
                }
            }
            _ => {
                return Err(Error::usage(format!(
                    "error parsing {src}: a document is not an object"
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_and_lists() {
        let mut out = Vec::new();
        parse_into(
            "x",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: b}}\n",
            &mut out,
        )
        .unwrap();
        let names: Vec<&str> = out
            .iter()
            .map(|(_, o)| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(parse_into("x", "metadata: {name: a}\n", &mut out).is_err());
    }
}
