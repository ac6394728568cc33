//! `/v1/reference`: the interactive reference page, served with its renderer from the binary
//! (no key, no CDN), under a policy that lets it load only its own files.

use super::*;

/// `GET path` with no key: status, headers and the raw body.
async fn fetch(api: &Api, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let req = Request::builder().uri(path).body(Body::empty()).unwrap();
    let res = api.app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = to_bytes(res.into_body(), 8 << 20).await.unwrap();
    (status, headers, body.to_vec())
}

fn vendored(name: &str) -> Vec<u8> {
    let path = format!("{}/src/reference/vendor/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn the_reference_page_loads_only_its_own_renderer_and_document() {
    let api = Api::new();
    let (s, h, body) = fetch(&api, "/v1/reference").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let policy = h["content-security-policy"].to_str().unwrap();
    for rule in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(rule), "{policy}");
    }
    let page = String::from_utf8(body).unwrap();
    for asset in [
        "reference/swagger-ui.css",
        "reference/swagger-ui-bundle.js",
        "reference/init.js",
    ] {
        assert!(page.contains(&format!("\"{asset}\"")), "{page}");
    }
    assert!(!page.contains("http"), "no other origin: {page}");

    for (path, file, kind) in [
        (
            "/v1/reference/swagger-ui-bundle.js",
            "swagger-ui-bundle.js",
            "text/javascript",
        ),
        ("/v1/reference/swagger-ui.css", "swagger-ui.css", "text/css"),
    ] {
        let (s, h, body) = fetch(&api, path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert!(h["content-type"].to_str().unwrap().starts_with(kind));
        assert_eq!(body, vendored(file), "{path} is the vendored file");
    }
    let (s, _, init) = fetch(&api, "/v1/reference/init.js").await;
    assert_eq!(s, StatusCode::OK);
    let init = String::from_utf8(init).unwrap();
    assert!(init.contains("validatorUrl: null"), "{init}");
    // The document it reads is served beside it, without a key.
    let (s, _, doc) = fetch(&api, "/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    assert!(doc["paths"]["/v1/posts"].is_object());
    // Anything else under it is a problem, not a page.
    let (s, h, _) = fetch(&api, "/v1/reference/swagger-ui-bundle.js.map").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(h["content-type"].to_str().unwrap().contains("problem+json"));
}
