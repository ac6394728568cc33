//! The document as clients see it: utoipa's output with what every route shares added once,
//! instead of on each of 49 annotations:
//!
//! - every error body is `application/problem+json` (the `Problem` schema);
//! - every authenticated operation may answer `401` (no, unknown, revoked or expired key),
//!   `403` (a role that may not, a suspended tenant, an operator route from another network)
//!   and `429` (past the key's budget);
//! - an operation with a body may answer `400` (not JSON), `413` (too large), `415` (not
//!   `application/json`) and `422` (invalid);
//! - one with an `Idempotency-Key` may answer `400` (a malformed key), `409` (the first request
//!   with it is in flight, or was carried out and cannot be replayed) and `422` (the key was
//!   used with another request, or by another credential); the header is declared as the API
//!   checks it (1 to 255 visible ASCII characters);
//! - one with query parameters may answer `400`; one with path parameters `404`.
//!
//! The test in `tests/api/contract.rs` holds the API to it.

use serde_json::{Value, json};

/// HTTP methods an OpenAPI path item may hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

const PROBLEM_JSON: &str = crate::error::PROBLEM_JSON;

/// OpenAPI links: what a response's id lets a client (or a stateful fuzzer) do next.
/// (method, path, status) of the answer, the body's pointer to the id, the operations it
/// feeds as their `id` path parameter.
const LINKS: [(&str, &str, &str, &str, &[&str]); 9] = [
    (
        "post",
        "/v1/posts",
        "201",
        "/id",
        &[
            "get_post",
            "edit_post",
            "cancel_post",
            "approve_post",
            "reject_post",
        ],
    ),
    (
        "post",
        "/v1/accounts",
        "201",
        "/id",
        &["disconnect_account"],
    ),
    ("post", "/v1/media", "201", "/id", &["get_media"]),
    (
        "post",
        "/v1/api-keys",
        "201",
        "/id",
        &["revoke_api_key", "rotate_api_key"],
    ),
    (
        "post",
        "/v1/webhook-endpoints",
        "201",
        "/id",
        &[
            "get_webhook_endpoint",
            "delete_webhook_endpoint",
            "rotate_webhook_endpoint_secret",
            "list_webhook_attempts",
        ],
    ),
    (
        "post",
        "/v1/tenants",
        "201",
        "/id",
        &["suspend_tenant", "resume_tenant"],
    ),
    (
        "get",
        "/v1/posts",
        "200",
        "/items/0/id",
        &["get_post", "edit_post", "cancel_post"],
    ),
    (
        "get",
        "/v1/dead-letters",
        "200",
        "/items/0/id",
        &[
            "get_dead_letter",
            "requeue_dead_letter",
            "delete_dead_letter",
        ],
    ),
    (
        "get",
        "/v1/webhook-endpoints",
        "200",
        "/items/0/id",
        &["get_webhook_endpoint", "list_webhook_attempts"],
    ),
];

/// The served document.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(<super::ApiDoc as utoipa::OpenApi>::openapi())
        .unwrap_or_else(|_| json!({}));
    let global_security = doc.get("security").cloned().unwrap_or(Value::Null);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method) {
                    complete(op, path, &global_security);
                }
            }
        }
    }
    for (method, path, status, pointer, targets) in LINKS {
        let response = doc
            .pointer_mut(&format!(
                "/paths/{}/{method}/responses/{status}",
                escape(path)
            ))
            .and_then(Value::as_object_mut);
        if let Some(response) = response {
            let links = targets
                .iter()
                .map(|op| {
                    let link = json!({
                        "operationId": op,
                        "parameters": {"id": format!("$response.body#{pointer}")},
                    });
                    ((*op).to_owned(), link)
                })
                .collect::<serde_json::Map<_, _>>();
            response.insert("links".into(), Value::Object(links));
        }
    }
    doc
}

/// A path as one JSON Pointer token.
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    })
}

/// One operation: problem bodies, the shared answers, the idempotency header.
fn complete(op: &mut Value, path: &str, global_security: &Value) {
    let authenticated = match op.get("security") {
        // `security: [{}]`: anyone; absent: the document's (an API key).
        Some(s) => s.as_array().is_some_and(|reqs| {
            reqs.iter()
                .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
        }),
        None => !global_security.is_null(),
    };
    let parameters: Vec<Value> = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let idempotent = parameters
        .iter()
        .any(|p| p["in"] == "header" && p["name"] == "Idempotency-Key");
    let queried = parameters.iter().any(|p| p["in"] == "query");
    let has_body = op.get("requestBody").is_some();
    let mut added: Vec<(&str, &str)> = Vec::new();
    if authenticated {
        added.push((
            "401",
            "No valid API key: missing, unknown, revoked or expired",
        ));
        added.push((
            "403",
            "This key may not: its role, a suspended tenant, or (operator routes) the network",
        ));
        added.push((
            "429",
            "Past the key's budget for this class of request; see Retry-After",
        ));
    }
    if has_body {
        added.push(("400", "The body is not JSON"));
        added.push(("413", "The body is larger than 256 KiB"));
        added.push(("415", "The body is not application/json"));
        added.push(("422", "The body is invalid; `errors` lists every problem"));
    }
    if idempotent {
        added.push(("400", "The Idempotency-Key is malformed"));
        added.push((
            "409",
            "A request with this Idempotency-Key is in flight, or was carried out and cannot be replayed",
        ));
        added.push((
            "422",
            "This Idempotency-Key was used with another request, or by another credential",
        ));
    }
    if queried {
        added.push(("400", "A query parameter is invalid"));
    }
    if path.contains('{') {
        added.push(("404", "Nothing with this id"));
    }
    let responses = op
        .as_object_mut()
        .map(|o| o.entry("responses").or_insert_with(|| json!({})));
    if let Some(Value::Object(responses)) = responses {
        for (_, response) in responses.iter_mut() {
            as_problem_json(response);
        }
        for (status, description) in added {
            responses
                .entry(status)
                .or_insert_with(|| problem(description));
        }
    }
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params.iter_mut() {
            if p["in"] == "header" && p["name"] == "Idempotency-Key" {
                p["schema"] = json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"});
            }
        }
    }
}

/// A response whose JSON body is a `Problem` is served as `application/problem+json`.
fn as_problem_json(response: &mut Value) {
    let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
        return;
    };
    let is_problem = content
        .get("application/json")
        .and_then(|c| c["schema"]["$ref"].as_str())
        .is_some_and(|r| r.ends_with("/Problem"));
    if is_problem && let Some(json) = content.remove("application/json") {
        content.insert(PROBLEM_JSON.to_owned(), json);
    }
}
