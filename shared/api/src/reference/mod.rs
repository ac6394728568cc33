//! The interactive API reference at `/v1/reference`: Swagger UI reading the API's own
//! `/v1/openapi.json`. The renderer is npm's `swagger-ui-dist` (pinned in
//! `clients/package.json`), copied byte for byte into `vendor/` with its licence and compiled
//! into the binary: no CDN, nothing fetched at run time. `infra/clients.sh` checks the copy
//! against the pinned package on every `make test`.
//!
//! The page loads only its own script and stylesheet (`script-src 'self'`); Swagger UI sets
//! inline `style` attributes, so styles alone may be inline. It calls the API only on its own
//! origin, and never the public validator (`validatorUrl: null` in `init.js`).

use crate::AppState;
use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

const BUNDLE: &str = include_str!("vendor/swagger-ui-bundle.js");
const STYLESHEET: &str = include_str!("vendor/swagger-ui.css");
const INIT: &str = include_str!("init.js");

/// Asset URLs are relative to the page, so the reference works under any stage prefix.
const PAGE: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Herald API reference</title><link rel="stylesheet" href="reference/swagger-ui.css"></head><body><div id="swagger-ui"></div><script src="reference/swagger-ui-bundle.js"></script><script src="reference/init.js"></script></body></html>"#;

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/reference", get(|| async { page() }))
        .route(
            "/v1/reference/swagger-ui-bundle.js",
            get(|| async { asset("text/javascript; charset=utf-8", BUNDLE) }),
        )
        .route(
            "/v1/reference/swagger-ui.css",
            get(|| async { asset("text/css; charset=utf-8", STYLESHEET) }),
        )
        .route(
            "/v1/reference/init.js",
            get(|| async { asset("text/javascript; charset=utf-8", INIT) }),
        )
}

fn page() -> Response {
    let mut response = PAGE.into_response();
    let headers = response.headers_mut();
    set(headers, CONTENT_TYPE, "text/html; charset=utf-8");
    set(headers, CONTENT_SECURITY_POLICY, POLICY);
    set(headers, CACHE_CONTROL, "no-cache");
    set(headers, HeaderName::from_static("x-frame-options"), "DENY");
    set(
        headers,
        HeaderName::from_static("referrer-policy"),
        "no-referrer",
    );
    set(
        headers,
        HeaderName::from_static("x-content-type-options"),
        "nosniff",
    );
    response
}

/// A static file: cached for an hour (a new release may change it).
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    set(headers, CONTENT_TYPE, content_type);
    set(headers, CACHE_CONTROL, "public, max-age=3600");
    set(
        headers,
        HeaderName::from_static("x-content-type-options"),
        "nosniff",
    );
    response
}

fn set(headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str) {
    headers.insert(name, HeaderValue::from_static(value));
}
