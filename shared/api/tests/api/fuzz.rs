//! No request reaches a panic or a 5xx: requests generated from the OpenAPI document's own
//! schemas, then mutated (numbers at their limits, oversized and odd strings, ids that cannot
//! exist, wrong types), sent as every role.
//!
//! The generator walks the document by hand (a schema-driven generator for OpenAPI 3.1 with
//! `$ref`s is not something a well-kept Rust crate does); proptest drives it by seed, so a
//! failure names the request that caused it.

use super::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeMap;

/// A small deterministic generator over a seed (splitmix64).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Strings that have broken parsers: empty, huge, separators of the store's keys, escapes,
/// non-ASCII, numbers where text is expected, times that do not exist.
fn odd_string(g: &mut Gen, known: &[String]) -> String {
    let fixed = [
        "",
        " ",
        "#",
        "a#b",
        "ACCOUNT#x",
        "%23",
        "..",
        "../..",
        "null",
        "0",
        "-1",
        "9223372036854775807",
        "1e309",
        "é",
        "😀",
        "\u{0000}",
        "<script>",
        "2026-13-45T25:61:61Z",
        "1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "x,y",
    ];
    match g.below(5) {
        0 => (*g.pick(&fixed)).to_owned(),
        1 => "x".repeat(*g.pick(&[64, 65, 129, 256, 1020, 2000, 70_000])),
        2 if !known.is_empty() => g.pick(known).clone(),
        3 => format!(
            "{}{}",
            g.pick(&["acc_", "post_", "med_", "we_", "key_", "ten_"]),
            "a".repeat(g.below(80))
        ),
        _ => (*g.pick(&fixed)).to_owned(),
    }
}

fn odd_number(g: &mut Gen) -> Value {
    let n = [
        json!(0),
        json!(-1),
        json!(1),
        json!(59),
        json!(100),
        json!(101),
        json!(1_000_000),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5),
        json!(-0.0),
        json!(1e300),
    ];
    g.pick(&n).clone()
}

/// The document, and the ids the fixture made (so some requests reach real resources).
struct Doc<'a> {
    doc: &'a Value,
    known: &'a [String],
}

impl Doc<'_> {
    fn resolve<'v>(&'v self, schema: &'v Value) -> &'v Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                &self.doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    /// A value for `schema`: mostly what it asks for, often at or past its limits, sometimes
    /// the wrong type altogether.
    fn value(&self, g: &mut Gen, schema: &Value, depth: usize) -> Value {
        let schema = self.resolve(schema);
        if g.chance(8) || depth > 4 {
            return match g.below(5) {
                0 => Value::Null,
                1 => odd_number(g),
                2 => json!(odd_string(g, self.known)),
                3 => json!([]),
                _ => json!({}),
            };
        }
        if let Some(options) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .or_else(|| schema.get("allOf"))
            .and_then(Value::as_array)
        {
            let option = g_pick_value(g, options);
            return self.value(g, option, depth + 1);
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return if g.chance(80) {
                g_pick_value(g, values).clone()
            } else {
                json!(odd_string(g, self.known))
            };
        }
        let ty = match &schema["type"] {
            Value::String(t) => t.clone(),
            Value::Array(ts) => g_pick_value(g, ts).as_str().unwrap_or("null").to_owned(),
            _ => "object".to_owned(),
        };
        match ty.as_str() {
            "string" => json!(if g.chance(40) {
                match schema.get("format").and_then(Value::as_str) {
                    Some("date-time") => "2030-01-01T10:00:00Z".to_owned(),
                    Some("uri") => "https://example.com/hook".to_owned(),
                    _ => "hello".to_owned(),
                }
            } else {
                odd_string(g, self.known)
            }),
            "integer" | "number" => {
                if g.chance(30) {
                    json!(g.below(200))
                } else {
                    odd_number(g)
                }
            }
            "boolean" => json!(g.chance(50)),
            "null" => Value::Null,
            "array" => {
                let len = *g.pick(&[0, 1, 2, 5, 101, 300]);
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                Value::Array((0..len).map(|_| self.value(g, &items, depth + 1)).collect())
            }
            _ => {
                let mut out = serde_json::Map::new();
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    let required: Vec<&str> = schema["required"]
                        .as_array()
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    for (name, prop) in props {
                        if (required.contains(&name.as_str()) || g.chance(60)) && !g.chance(5) {
                            out.insert(name.clone(), self.value(g, prop, depth + 1));
                        }
                    }
                }
                if g.chance(5) {
                    out.insert("unexpected".into(), json!(1));
                }
                Value::Object(out)
            }
        }
    }
}

/// Percent-encodes all but the unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_-.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn g_pick_value<'a>(g: &mut Gen, items: &'a [Value]) -> &'a Value {
    &items[g.below(items.len())]
}

/// One request the generator built.
#[derive(Debug)]
struct Case {
    method: String,
    path: String,
    body: Option<Value>,
    idem: Option<String>,
    role: &'static str,
}

fn build(doc: &Doc<'_>, ops: &[(String, String, Value)], seed: u64) -> Case {
    let mut g = Gen(seed);
    let (path, method, op) = &ops[g.below(ops.len())];
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let mut url = path.clone();
    let mut query = Vec::new();
    for p in &params {
        let name = p["name"].as_str().unwrap_or_default();
        let value = doc.value(&mut g, &p["schema"], 0);
        // API Gateway refuses request lines over 10,240 bytes before Herald sees them.
        let mut text = match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text.truncate(text.floor_char_boundary(2500));
        match p["in"].as_str() {
            Some("path") => {
                let text = if g.chance(50) && !doc.known.is_empty() {
                    g.pick(doc.known).clone()
                } else {
                    text
                };
                let encoded = encode(&text);
                url = url.replace(&format!("{{{name}}}"), &encoded);
            }
            Some("query") if g.chance(60) => {
                let encoded = encode(&text);
                query.push(format!("{name}={encoded}"));
            }
            _ => {}
        }
    }
    if !query.is_empty() {
        url = format!("{url}?{}", query.join("&"));
    }
    let body = op["requestBody"]["content"]["application/json"]["schema"]
        .as_object()
        .map(|_| {
            doc.value(
                &mut g,
                &op["requestBody"]["content"]["application/json"]["schema"],
                0,
            )
        })
        .or_else(|| g.chance(10).then(|| json!({"x": 1})));
    let idem = (method != "get" && g.chance(90))
        .then(|| {
            if g.chance(10) {
                odd_string(&mut g, &[])
            } else {
                format!("fz-{}", g.next())
            }
        })
        // What a client can send as a header at all.
        .filter(|k| k.len() < 8000 && axum::http::HeaderValue::from_str(k).is_ok());
    let role = *g.pick(&["admin", "editor", "approver", "viewer", "none"]);
    Case {
        method: method.to_uppercase(),
        path: url,
        body,
        idem,
        role,
    }
}

#[test]
fn generated_and_mutated_requests_never_answer_5xx() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let api = Api::new();
    let (doc, keys, known) = rt.block_on(async {
        let (_, _, doc) = api.call("GET", "/v1/openapi.json", None, None, None).await;
        let t = api.tenant(false).await;
        let mut keys = BTreeMap::new();
        for role in ["editor", "approver", "viewer"] {
            let (s, _, v) = api
                .post("/v1/api-keys", &t.key, json!({"name": role, "role": role}))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            keys.insert(role, v["key"].as_str().unwrap().to_owned());
        }
        keys.insert("admin", t.key.clone());
        let account = api.connect(&t, "x", "fuzz1").await;
        let (_, _, post) = api.create_post(&t, "fz-post", &account, "hello").await;
        let known = vec![account, post["id"].as_str().unwrap_or("post_x").to_owned()];
        (doc, keys, known)
    });
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "post", "patch", "put", "delete"].contains(&method.as_str()) {
                ops.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    assert!(
        ops.len() > 20,
        "the document lists {} operations",
        ops.len()
    );
    let doc = Doc {
        doc: &doc,
        known: &known,
    };
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        failure_persistence: None,
        ..Config::default()
    });
    let statuses = std::cell::RefCell::new(BTreeMap::<u16, usize>::new());
    runner
        .run(&any::<u64>(), |seed| {
            let case = build(&doc, &ops, seed);
            let (status, _, body) = rt.block_on(api.call(
                &case.method,
                &case.path,
                (case.role != "none").then(|| keys[case.role].as_str()),
                case.idem.as_deref(),
                case.body.clone(),
            ));
            *statuses.borrow_mut().entry(status.as_u16()).or_default() += 1;
            prop_assert!(status.as_u16() < 500, "{case:?} answered {status}: {body}");
            Ok(())
        })
        .unwrap();
    // The generator reaches the handlers, not only the refusals in front of them.
    let statuses = statuses.into_inner();
    let ok: usize = statuses.range(200..300).map(|(_, n)| n).sum();
    eprintln!("fuzz statuses: {statuses:?}");
    assert!(
        ok >= 150,
        "only {ok} of 3000 requests succeeded: {statuses:?}"
    );
    assert!(
        statuses.contains_key(&422) && statuses.contains_key(&400),
        "{statuses:?}"
    );
}
