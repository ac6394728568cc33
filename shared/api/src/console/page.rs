//! The console's two pages: sign-in, and the console itself (one page whose script draws each
//! view from the `/v1` API). Both carry a strict Content-Security-Policy: nothing runs or
//! styles the page but its own inline script and style, named by a nonce drawn per response.

use super::{Caller, role_of};
use crate::embed_page::escape;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_domain::console::Session;
use herald_domain::secrets::secret::random_hex;

const STYLE: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");

/// The sign-in form, with `error` said above it.
pub fn sign_in(status: StatusCode, error: Option<&str>) -> Response {
    let nonce = random_hex(16);
    let error = error
        .map(|e| {
            format!(
                r#"<p class="error" role="alert" id="error">{}</p>"#,
                escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"<main class="narrow"><h1>Herald console</h1>{error}
<form method="post" action="/console/session" id="sign-in">
<label for="credential">API key or operator token</label>
<input type="password" id="credential" name="credential" autocomplete="off" required maxlength="256">
<button type="submit" id="sign-in-button">Sign in</button>
</form>
<p class="hint">The key is exchanged for a session of 30 minutes; it is not kept in the browser.</p></main>"#
    );
    respond(status, &nonce, "Sign in · Herald", &body, false)
}

/// The console for `caller`, with the session's CSRF token for the script.
pub fn console(caller: &Caller, session: &Session) -> Response {
    let nonce = random_hex(16);
    let (kind, role) = role_of(caller);
    let (tenant, role, who) = match caller {
        Caller::Key(key) => (
            key.tenant_id.0.as_str(),
            role.map(|r| r.as_str()).unwrap_or_default(),
            format!(
                "{} · {} key “{}”",
                key.tenant_id,
                key.role.as_str(),
                key.name
            ),
        ),
        Caller::Operator => ("", "", "operator".to_owned()),
    };
    let body = format!(
        r#"<header><h1>Herald console</h1><span id="who">{who}</span>
<form method="post" action="/console/sign-out"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" id="sign-out">Sign out</button></form></header>
<nav id="nav"></nav>
<main id="view" aria-live="polite"></main>"#,
        who = escape(&who),
        csrf = escape(&session.csrf),
    );
    let meta = format!(
        r#"<meta name="herald-csrf" content="{csrf}"><meta name="herald-kind" content="{kind}"><meta name="herald-role" content="{role}"><meta name="herald-tenant" content="{tenant}">"#,
        csrf = escape(&session.csrf),
        tenant = escape(tenant),
    );
    respond(
        StatusCode::OK,
        &nonce,
        "Herald console",
        &format!("{meta}{body}"),
        true,
    )
}

/// A page with no script (the connect flow's), under the same policy.
pub(crate) fn plain(status: StatusCode, title: &str, body: &str) -> Response {
    respond(status, &random_hex(16), title, body, false)
}

fn respond(status: StatusCode, nonce: &str, title: &str, body: &str, script: bool) -> Response {
    let script = if script {
        format!(r#"<script nonce="{nonce}">{SCRIPT}</script>"#)
    } else {
        String::new()
    };
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title><style nonce="{nonce}">{STYLE}</style></head><body>{body}{script}</body></html>"#,
        title = escape(title),
    );
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(headers, CONTENT_TYPE, "text/html; charset=utf-8");
    set(headers, CONTENT_SECURITY_POLICY, &csp);
    set(headers, CACHE_CONTROL, "no-store");
    set(headers, HeaderName::from_static("x-frame-options"), "DENY");
    set(
        headers,
        HeaderName::from_static("x-content-type-options"),
        "nosniff",
    );
    set(
        headers,
        HeaderName::from_static("referrer-policy"),
        "no-referrer",
    );
    response
}
