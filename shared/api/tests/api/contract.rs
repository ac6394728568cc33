//! The served OpenAPI document says what the API does (Schemathesis holds the running stack
//! to it in `make test`; these are the rules it relies on, checked in-process).

use super::*;

async fn document() -> Value {
    let api = Api::new();
    let (s, _, doc) = api.call("GET", "/v1/openapi.json", None, None, None).await;
    assert_eq!(s, StatusCode::OK);
    doc
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("responses").is_some() {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_error_is_problem_json_and_every_shared_answer_is_declared() {
    let doc = document().await;
    let ops = operations(&doc);
    assert!(ops.len() >= 45, "{}", ops.len());
    for (method, path, op) in &ops {
        let name = format!("{method} {path}");
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.as_str() >= "400" {
                let content = response["content"].as_object();
                // Health answers in its own format (the IETF health-check draft), even on 503.
                let allowed = |k: &String| {
                    k == "application/problem+json"
                        || (path == "/v1/health" && k == "application/health+json")
                };
                assert!(
                    content.is_none_or(|c| c.keys().all(allowed)),
                    "{name} {status}: {response}"
                );
            }
        }
        let public = op["security"] == json!([{}]);
        if !public {
            for status in ["401", "403", "429"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{name} lacks {status}"
                );
            }
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "415", "422"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{name} lacks {status}"
                );
            }
        }
        for p in op["parameters"].as_array().into_iter().flatten() {
            // A parameter `in: path` is one of the path's own (utoipa puts query structs
            // there unless told).
            if p["in"] == "path" {
                let name = p["name"].as_str().unwrap();
                assert!(
                    path.contains(&format!("{{{name}}}")),
                    "{method} {path}: {name}"
                );
            }
            if p["name"] == "Idempotency-Key" {
                assert_eq!(p["schema"]["maxLength"], 255, "{name}");
            }
        }
    }
}

#[tokio::test]
async fn list_filters_are_query_parameters_with_their_limits() {
    let doc = document().await;
    let params = |path: &str| doc["paths"][path]["get"]["parameters"].clone();
    for (path, max) in [
        ("/v1/posts", 100),
        ("/v1/audit", 200),
        ("/v1/dead-letters", 100),
        ("/v1/review-items", 100),
        ("/v1/webhook-endpoints/{id}/attempts", 100),
    ] {
        let limit = params(path)
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .cloned()
            .unwrap_or_else(|| panic!("{path} has no limit"));
        assert_eq!(limit["in"], "query", "{path}");
        assert_eq!(limit["schema"]["maximum"], max, "{path}: {limit}");
        assert_eq!(limit["schema"]["minimum"], 1, "{path}: {limit}");
    }
}

#[tokio::test]
async fn links_name_operations_that_exist() {
    let doc = document().await;
    let ids: Vec<String> = operations(&doc)
        .iter()
        .filter_map(|(_, _, op)| op["operationId"].as_str().map(str::to_owned))
        .collect();
    let mut links = 0;
    for (method, path, op) in operations(&doc) {
        for (status, response) in op["responses"].as_object().unwrap() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = link["operationId"].as_str().unwrap();
                assert!(
                    ids.iter().any(|i| i == target),
                    "{method} {path} {status} {name}"
                );
            }
        }
    }
    assert!(links >= 20, "{links}");
    let created = &doc["paths"]["/v1/posts"]["post"]["responses"]["201"]["links"]["get_post"];
    assert_eq!(created["parameters"]["id"], "$response.body#/id");
}
