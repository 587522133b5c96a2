//! kubectl's JSONPath templates (`-o jsonpath='{.items[*].metadata.name}'`): literal text,
//! `{path}` expressions, `{"\n"}` literals, `{range PATH}...{end}`, fields, `['key']`,
//! `[N]` (negative from the end), `[*]`, `[?(@.a=="b")]` filters. Several results of one
//! expression are joined with spaces; strings print bare, everything else as JSON.

use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    All,
    Index(i64),
    /// `[?(@.path OP "literal")]`, or existence with `op` empty.
    Filter(Vec<Seg>, String, String),
}

#[derive(Debug)]
enum Node {
    Text(String),
    Path(Vec<Seg>),
    Range(Vec<Seg>, Vec<Node>),
}

fn err(t: &str, msg: &str) -> Error {
    Error::usage(format!("error parsing jsonpath {t}, {msg}"))
}

fn parse_path(t: &str, p: &str) -> Result<Vec<Seg>> {
    let p = p.trim();
    let p = p.strip_prefix('$').unwrap_or(p);
    let b = p.as_bytes();
    let mut i = 0;
    let mut segs = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                i += 1;
                let start = i;
                while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    i += 1;
                }
                let name = &p[start..i];
                if name == "*" {
                    segs.push(Seg::All);
                } else if !name.is_empty() {
                    segs.push(Seg::Field(name.to_string()));
                }
            }
            b'[' => {
                let end = find_close(p, i).ok_or_else(|| err(t, "unclosed ["))?;
                let inner = p[i + 1..end].trim();
                if inner == "*" {
                    segs.push(Seg::All);
                } else if let Some(f) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
                    let ops = ["==", "!=", "<=", ">=", "<", ">"];
                    let (lhs, op, rhs) = match ops
                        .iter()
                        .find_map(|op| f.find(op).map(|k| (&f[..k], *op, &f[k + op.len()..])))
                    {
                        Some(x) => x,
                        None => (f, "", ""),
                    };
                    let lhs = lhs.trim().strip_prefix('@').unwrap_or(lhs.trim());
                    let rhs = rhs.trim().trim_matches(|c| c == '"' || c == '\'');
                    segs.push(Seg::Filter(parse_path(t, lhs)?, op.into(), rhs.into()));
                } else if let Some(q) = inner
                    .strip_prefix('\'')
                    .and_then(|q| q.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')))
                {
                    segs.push(Seg::Field(q.to_string()));
                } else {
                    let n: i64 = inner
                        .parse()
                        .map_err(|_| err(t, &format!("unsupported index [{inner}]")))?;
                    segs.push(Seg::Index(n));
                }
                i = end + 1;
            }
            _ => {
                let start = i;
                while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    i += 1;
                }
                segs.push(Seg::Field(p[start..i].to_string()));
            }
        }
    }
    Ok(segs)
}

fn find_close(p: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (k, c) in p[open..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'') | (None, '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + k);
                }
            }
            _ => {}
        }
    }
    None
}

fn eval(segs: &[Seg], roots: Vec<Value>) -> Vec<Value> {
    let mut cur = roots;
    for s in segs {
        let mut next = Vec::new();
        for v in cur {
            match s {
                Seg::Field(f) => {
                    if let Some(x) = v.get(f) {
                        next.push(x.clone());
                    }
                }
                Seg::All => match v {
                    Value::Array(a) => next.extend(a),
                    Value::Object(m) => next.extend(m.into_iter().map(|(_, x)| x)),
                    _ => {}
                },
                Seg::Index(n) => {
                    if let Value::Array(a) = &v {
                        let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                        if idx >= 0 {
                            if let Some(x) = a.get(idx as usize) {
                                next.push(x.clone());
                            }
                        }
                    }
                }
                Seg::Filter(path, op, rhs) => {
                    let items = match v {
                        Value::Array(a) => a,
                        other => vec![other],
                    };
                    for it in items {
                        let got = eval(path, vec![it.clone()]);
                        let keep = match op.as_str() {
                            "" => !got.is_empty(),
                            _ => got.iter().any(|g| compare(g, op, rhs)),
                        };
                        if keep {
                            next.push(it);
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn compare(v: &Value, op: &str, rhs: &str) -> bool {
    let s = text(v);
    if let (Ok(a), Ok(b)) = (s.parse::<f64>(), rhs.parse::<f64>()) {
        return match op {
            "==" => a == b,
            "!=" => a != b,
            "<" => a < b,
            ">" => a > b,
            "<=" => a <= b,
            ">=" => a >= b,
            _ => false,
        };
    }
    match op {
        "==" => s == rhs,
        "!=" => s != rhs,
        _ => false,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse(t: &str) -> Result<Vec<Node>> {
    let mut stack: Vec<(Vec<Seg>, Vec<Node>)> = vec![(vec![], vec![])];
    let mut rest = t;
    while !rest.is_empty() {
        match rest.find('{') {
            None => {
                push(&mut stack, Node::Text(rest.to_string()));
                break;
            }
            Some(k) => {
                if k > 0 {
                    push(&mut stack, Node::Text(rest[..k].to_string()));
                }
                let close = find_brace(rest, k).ok_or_else(|| err(t, "unclosed action"))?;
                let inner = rest[k + 1..close].trim();
                rest = &rest[close + 1..];
                if let Some(p) = inner.strip_prefix("range ") {
                    stack.push((parse_path(t, p)?, vec![]));
                } else if inner == "end" {
                    if stack.len() < 2 {
                        return Err(err(t, "unexpected {end}"));
                    }
                    let Some((p, body)) = stack.pop() else {
                        return Err(err(t, "unexpected {end}"));
                    };
                    push(&mut stack, Node::Range(p, body));
                } else if inner.starts_with('"') && inner.ends_with('"') && inner.len() >= 2 {
                    let lit = &inner[1..inner.len() - 1];
                    let lit = lit.replace("\\n", "\n").replace("\\t", "\t");
                    push(&mut stack, Node::Text(lit));
                } else {
                    push(&mut stack, Node::Path(parse_path(t, inner)?));
                }
            }
        }
    }
    if stack.len() != 1 {
        return Err(err(t, "unclosed {range}"));
    }
    Ok(stack.pop().map(|(_, n)| n).unwrap_or_default())
}

fn find_brace(s: &str, open: usize) -> Option<usize> {
    let mut quote = false;
    for (k, c) in s[open + 1..].char_indices() {
        match c {
            '"' => quote = !quote,
            '}' if !quote => return Some(open + 1 + k),
            _ => {}
        }
    }
    None
}

fn push(stack: &mut [(Vec<Seg>, Vec<Node>)], n: Node) {
    if let Some(top) = stack.last_mut() {
        top.1.push(n);
    }
}

fn exec(nodes: &[Node], root: &Value, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(s) => out.push_str(s),
            Node::Path(p) => {
                let vals = eval(p, vec![root.clone()]);
                out.push_str(&vals.iter().map(text).collect::<Vec<_>>().join(" "));
            }
            Node::Range(p, body) => {
                for v in eval(p, vec![root.clone()]) {
                    exec(body, &v, out);
                }
            }
        }
    }
}

/// Renders a template against an object (or a List).
pub(crate) fn render(template: &str, root: &Value) -> Result<String> {
    let nodes = parse(template)?;
    let mut out = String::new();
    exec(&nodes, root, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let list = serde_json::json!({"items": [
            {"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}
        ]});
        assert_eq!(render("{.items[*].metadata.name}", &list).unwrap(), "a b");
        assert_eq!(render("{.items[-1].metadata.name}", &list).unwrap(), "b");
        assert_eq!(
            render("{range .items[*]}{.metadata.name}{\"\\n\"}{end}", &list).unwrap(),
            "a\nb\n"
        );
        assert_eq!(
            render(
                "{.items[?(@.status.conditions[0].status==\"True\")].metadata.name}",
                &list
            )
            .unwrap(),
            "a"
        );
        assert_eq!(
            render(
                "x={.items[0].status.conditions[?(@.type==\"Ready\")].status}",
                &list
            )
            .unwrap(),
            "x=True"
        );
        assert_eq!(
            render("{.items[0]['metadata']['name']}", &list).unwrap(),
            "a"
        );
        assert!(render("{range .items[*]}", &list).is_err());
    }
}
