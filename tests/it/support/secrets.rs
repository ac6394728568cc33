//! Every credential the tests handle, written to `.herald/test-secrets.jsonl` for the log scan
//! that ends `make test` (`infra/log_scan.py`): none of them may appear in Herald's logs.
//!
//! A new kind of secret joins [`FIELDS`] (by the JSON field that carries it) or is recorded
//! with [`remember`] where the test gets it, and joins the scan's `REQUIRED_KINDS`.

use herald_tests::repo_root;
use serde_json::Value;
use std::io::Write;

/// JSON fields that carry a credential, in requests or answers, and the kind each is.
pub const FIELDS: [(&str, &str); 7] = [
    ("key", "api_key"),
    ("api_key", "api_key"),
    ("access_token", "access_token"),
    ("refresh_token", "refresh_token"),
    ("secret", "webhook_secret"),
    ("previous_secret", "webhook_secret"),
    ("token", "embed_token"),
];

/// How a value of each kind begins, where Herald shapes it: a field named `key` or `token`
/// also carries ids (a stream's key, a media object's key), which are not secrets.
const SHAPES: [(&str, &str); 5] = [
    ("api_key", "hrld_"),
    ("connect_link", "hrldl_"),
    ("console_session", "hrldc_"),
    ("webhook_secret", "whsec_"),
    ("embed_token", "eyJ"),
];

/// Records one credential (one appended line: concurrent tests do not interleave).
pub fn remember(kind: &str, value: &str) {
    let shaped = SHAPES
        .iter()
        .find(|(k, _)| *k == kind)
        .is_none_or(|(_, prefix)| value.starts_with(prefix));
    if value.is_empty() || !shaped {
        return;
    }
    let line = format!("{}\n", serde_json::json!({"kind": kind, "value": value}));
    let path = repo_root().join(".herald/test-secrets.jsonl");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// Records every credential-carrying field of a JSON document, at any depth.
pub fn remember_json(value: &Value) {
    match value {
        Value::Object(map) => {
            for (name, v) in map {
                match (FIELDS.iter().find(|(f, _)| f == name), v) {
                    (Some((_, kind)), Value::String(s)) => remember(kind, s),
                    _ => remember_json(v),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(remember_json),
        _ => {}
    }
}
