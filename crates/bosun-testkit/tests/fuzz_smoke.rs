//! The fuzz targets of fuzz/ on stable Rust: each decoder runs on a few thousand inputs
//! mutated from valid seeds or drawn from its alphabet, with a fixed seed so that a failure
//! reproduces. It must not panic. cargo-fuzz (fuzz/README.md) searches much further.

#[path = "../../../fuzz/src/lib.rs"]
mod targets;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Inputs per target: enough to reach past the happy paths, few enough for a debug build.
const RUNS: usize = 3000;

/// Valid inputs to mutate, per target (the first byte selects a mode where the target says).
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let with_mode = |modes: u8, bodies: &[&str]| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for m in 0..modes {
            for b in bodies {
                let mut v = vec![m | if m % 2 == 0 { 0x80 } else { 0 }];
                v.extend_from_slice(b.as_bytes());
                out.push(v);
            }
        }
        out
    };
    let plain = |xs: &[&str]| xs.iter().map(|s| s.as_bytes().to_vec()).collect();
    match target {
        "decode_body" => with_mode(
            6,
            &[
                targets::POD,
                r#"{"a":1,"a":2,"b":{"c":[1,{"d":1,"d":2}]}}"#,
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: {a: b}\nspec:\n  containers:\n  - name: c\n    image: i\n",
                "a: &x [1, 2]\nb: *x\nc: !!binary aGVsbG8=\n",
                r#"[{"op":"add","path":"/a","value":1}]"#,
            ],
        ),
        "duplicate_fields" => plain(&[
            targets::POD,
            r#"{"a":1,"a":{"b":[{"c":1,"c":2}]},"":0,"":1}"#,
            r#"[[[[{"x":1e400,"x":-0}]]]]"#,
        ]),
        "apply_patch" => with_mode(
            4,
            &[
                r#"{"metadata":{"labels":{"app":null,"n":"1"}},"spec":{"containers":[{"name":"web","image":"nginx:2"},{"name":"new","image":"x"}]}}"#,
                r#"{"spec":{"containers":[{"name":"side","$patch":"delete"}],"$setElementOrder/containers":[{"name":"web"}],"volumes":[{"$retainKeys":["name","secret"],"name":"data","secret":{"secretName":"s"}}]}}"#,
                r#"{"spec":{"tolerations":[{"$patch":"replace"}],"$deleteFromPrimitiveList/finalizers":["x/y"]},"metadata":{"$patch":"replace","name":"web"}}"#,
                r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]},"spec":{"containers":[{"name":"web","ports":[{"containerPort":80,"$patch":"delete"}],"env":[{"name":"C","value":"3"}]}]}}"#,
                r#"[{"op":"add","path":"/metadata/labels/x","value":"1"},{"op":"remove","path":"/spec/containers/1"},{"op":"move","from":"/spec/nodeSelector","path":"/metadata/annotations/m"},{"op":"copy","from":"/spec/containers/0","path":"/spec/containers/-"},{"op":"test","path":"/metadata/name","value":"web"},{"op":"replace","path":"/spec/containers/0/ports/1/containerPort","value":8443}]"#,
                r#"[{"op":"remove","path":"/spec/containers/0/env/~1x~0"}]"#,
            ],
        ),
        "label_selector" => plain(&[
            "app=web,tier!=db",
            "env in (prod, qa),!canary,x.y/z notin (a,b),release",
            "a==b,c>1,d<5,e",
            "example.com/my-key in ( a , b_c , d.e )",
        ]),
        "field_selector" => plain(&[
            "metadata.name=web,spec.nodeName!=",
            "status.phase==Running,metadata.namespace!=kube-system",
            r"metadata.name=a\,b\=c\\d",
        ]),
        "quantity" => plain(&[
            "500m", "1Gi", "1.5", "-2Ki", "1e3", "0.000001", "123456789012345678", "1E-3", "10Mi",
            "+1.0", ".5", "9223372036854775807", "1Ei", "1n", "1u",
        ]),
        "resource_path" => plain(&[
            "/api/v1/namespaces/default/pods/web/status?dryRun=All&fieldValidation=Strict",
            "/apis/apps/v1/namespaces/ns/deployments/d/scale?limit=5",
            "/api/v1/namespaces/x",
            "/api/v1/nodes/n/proxy/a/b/c?timeoutSeconds=30&watch=1",
            "/apis/batch/v1/jobs?continue=abc&labelSelector=a%3Db",
            "/api/v1/namespaces/%2F/pods/%00",
        ]),
        other => panic!("no seeds for {other}"),
    }
}

/// Bytes that mean something to the target's grammar, for insertions.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "-",
    "1e999",
    "0.",
    "$patch",
    "\"$patch\":\"delete\"",
    "$setElementOrder/containers",
    "$retainKeys",
    "$deleteFromPrimitiveList/finalizers",
    "\"op\"",
    "/",
    "~",
    "~1",
    "~2",
    "=",
    "==",
    "!=",
    "!",
    "in",
    "notin",
    "(",
    ")",
    " ",
    "\n",
    "- ",
    "&a",
    "*a",
    "!!",
    "m",
    "Ki",
    "Ei",
    "e",
    "E",
    ".",
    "+",
    "namespaces",
    "status",
    "scale",
    "proxy",
    "%",
    "%zz",
    "?",
    "&",
    "\u{ff}",
    "é",
];

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.random_range(1..=8) {
        let len = v.len();
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                v[i] = rng.random();
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(16));
                v.drain(i..i + n);
            }
            2 => {
                let i = rng.random_range(0..=len);
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                v.splice(i..i, t.bytes());
            }
            3 if len > 1 => {
                // Repeat a slice: deep nesting and long runs.
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(8));
                let chunk = v[i..i + n].to_vec();
                let times = rng.random_range(1..200);
                for _ in 0..times {
                    v.splice(i..i, chunk.iter().copied());
                }
            }
            4 => v.truncate(rng.random_range(0..=len)),
            5 if len > 0 => {
                let i = rng.random_range(0..len);
                v[i] ^= 1 << rng.random_range(0..8);
            }
            _ => {
                let i = rng.random_range(0..=len);
                let b: u8 = rng.random_range(0x20..0x7f);
                v.insert(i, b);
            }
        }
    }
    v
}

/// A short input from tokens only, sometimes deeply repeated.
fn generate(rng: &mut StdRng) -> Vec<u8> {
    let mut v = vec![rng.random()];
    for _ in 0..rng.random_range(0..40) {
        v.extend_from_slice(TOKENS[rng.random_range(0..TOKENS.len())].as_bytes());
    }
    v
}

fn run(target: &str, f: fn(&[u8])) {
    let seeds = seeds(target);
    let mut rng = StdRng::seed_from_u64(0x005e_ed00 ^ target.len() as u64);
    for s in &seeds {
        f(s);
        // The seed without its mode byte exercises the other reading of the first byte.
        f(&s[1.min(s.len())..]);
    }
    for i in 0..RUNS {
        let input = if i % 5 == 4 {
            generate(&mut rng)
        } else {
            let seed = &seeds[rng.random_range(0..seeds.len())];
            mutate(&mut rng, seed)
        };
        let outcome = std::panic::catch_unwind(|| f(&input));
        if outcome.is_err() {
            panic!(
                "{target} panicked on input #{i} ({} bytes): b\"{}\"",
                input.len(),
                input.escape_ascii()
            );
        }
    }
}

/// Bodies nested far past serde_json's limit, and YAML nesting and alias expansion.
#[test]
fn decoders_refuse_hostile_nesting() {
    let deep_json = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let deep_obj = format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
    for body in [&deep_json, &deep_obj] {
        for ty in [0u8, 2, 3, 4, 0x80] {
            let mut input = vec![ty];
            input.extend_from_slice(body.as_bytes());
            targets::decode_body(&input);
        }
        targets::duplicate_fields(body.as_bytes());
        for ty in 0..3u8 {
            let mut input = vec![ty];
            input.extend_from_slice(body.as_bytes());
            targets::apply_patch(&input);
        }
    }
    // YAML: kept shallow enough to stay quick, because the YAML parser's cost grows with the
    // square of the flow nesting depth before serde_yaml's depth limit applies.
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(",");
        bomb.push_str(&format!("{}: &{} [{refs}]\n", w[1], w[1]));
    }
    let yaml_bodies = [
        format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)),
        format!("{}1{}", r#"{"a":"#.repeat(2_000), "}".repeat(2_000)),
        "- ".repeat(5_000),
        bomb,
    ];
    for body in &yaml_bodies {
        let mut input = vec![1u8];
        input.extend_from_slice(body.as_bytes());
        targets::decode_body(&input);
    }
}

#[test]
fn decode_body_survives_mutations() {
    run("decode_body", targets::decode_body);
}

#[test]
fn duplicate_fields_survives_mutations() {
    run("duplicate_fields", targets::duplicate_fields);
}

#[test]
fn apply_patch_survives_mutations() {
    run("apply_patch", targets::apply_patch);
}

#[test]
fn label_selector_survives_mutations() {
    run("label_selector", targets::label_selector);
}

#[test]
fn field_selector_survives_mutations() {
    run("field_selector", targets::field_selector);
}

#[test]
fn quantity_survives_mutations() {
    run("quantity", targets::quantity);
}

#[test]
fn resource_path_survives_mutations() {
    run("resource_path", targets::resource_path);
}

/// Every target in fuzz/ has a smoke test above.
#[test]
fn every_fuzz_target_is_smoke_tested() {
    let names: Vec<&str> = targets::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "decode_body",
            "duplicate_fields",
            "apply_patch",
            "label_selector",
            "field_selector",
            "quantity",
            "resource_path"
        ]
    );
}
