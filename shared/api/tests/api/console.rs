//! The console's sessions over HTTP: an API key exchanged for a cookie, the cookie admitted on
//! the `/v1` routes with the key's own rights, changes refused without the CSRF token, and a
//! revoked key, a suspended tenant or a sign-out ending the session on the next request.

use super::*;
use axum::http::HeaderMap;

const COOKIE: &str = "__Host-herald-console";

/// A signed-in browser: its cookie and the page's CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Api {
    /// `POST /console/session` with a form, as the sign-in page sends it.
    async fn sign_in_form(
        &self,
        credential: &str,
        site: Option<&str>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder()
            .method("POST")
            .uri("/console/session")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        let body = format!("credential={}", percent(credential));
        self.page(req.body(Body::from(body)).unwrap()).await
    }

    /// Signs in with `key` and reads the console page's CSRF token.
    async fn sign_in(&self, key: &str) -> Session {
        let (s, h, body) = self.sign_in_form(key, Some("same-origin")).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
        assert_eq!(h["location"], "/console");
        let set = h["set-cookie"].to_str().unwrap().to_owned();
        for attribute in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=1800",
        ] {
            assert!(set.contains(attribute), "{set}");
        }
        let cookie = set
            .split(';')
            .next()
            .unwrap()
            .strip_prefix(&format!("{COOKIE}="))
            .unwrap()
            .to_owned();
        let (s, _, page) = self.console_page(&cookie).await;
        assert_eq!(s, StatusCode::OK);
        let csrf = between(&page, r#"<meta name="herald-csrf" content=""#, "\"").to_owned();
        assert_eq!(csrf.len(), 64, "{page}");
        Session { cookie, csrf }
    }

    async fn console_page(&self, cookie: &str) -> (StatusCode, HeaderMap, String) {
        let req = Request::builder()
            .uri("/console")
            .header("cookie", format!("other=1; {COOKIE}={cookie}"))
            .body(Body::empty())
            .unwrap();
        self.page(req).await
    }

    pub(super) async fn page(&self, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// A `/v1` call with the session's cookie (no key), with or without its CSRF token.
    async fn with_session(
        &self,
        method: &str,
        path: &str,
        session: &Session,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", format!("{COOKIE}={}", session.cookie));
        if let Some(token) = csrf {
            req = req.header("x-herald-csrf", token);
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let res = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, v)
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {text}"))
        + start.len();
    &text[from..from + text[from..].find(end).unwrap()]
}

const PAUSE: &str = r#"{"reason": "console test", "platforms": ["x"]}"#;

#[tokio::test]
async fn the_sign_in_page_is_served_under_a_strict_policy() {
    let api = Api::new();
    let req = Request::builder()
        .uri("/console")
        .body(Body::empty())
        .unwrap();
    let (s, h, page) = api.page(req).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'nonce-"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"));
    let nonce = between(csp, "style-src 'nonce-", "'");
    assert!(
        page.contains(&format!(r#"<style nonce="{nonce}">"#)),
        "{page}"
    );
    assert!(!page.contains("<script"), "the sign-in page runs nothing");
    assert!(page.contains(r#"action="/console/session""#));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    // A fresh nonce per response.
    let req = Request::builder()
        .uri("/console")
        .body(Body::empty())
        .unwrap();
    let (_, again, _) = api.page(req).await;
    assert_ne!(
        h["content-security-policy"],
        again["content-security-policy"]
    );
}

#[tokio::test]
async fn a_session_acts_with_its_keys_rights_and_changes_need_the_csrf_token() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let session = api.sign_in(&t.key).await;

    // The console page: the script under the same nonce as the policy names.
    let (_, h, page) = api.console_page(&session.cookie).await;
    let csp = h["content-security-policy"].to_str().unwrap();
    let nonce = between(csp, "script-src 'nonce-", "'");
    assert!(page.contains(&format!(r#"<script nonce="{nonce}">"#)));
    assert!(page.contains(r#"<meta name="herald-role" content="admin">"#));
    assert!(!page.contains(&t.key), "the key never reaches the page");

    let (s, _, v) = api
        .with_session("GET", "/v1/tenant", &session, None, None)
        .await;
    assert_eq!(
        (s, v["id"].as_str()),
        (StatusCode::OK, Some(t.id.as_str())),
        "{v}"
    );

    let pause: Value = serde_json::from_str(PAUSE).unwrap();
    for csrf in [None, Some(""), Some("0".repeat(64).as_str())] {
        let (_, h, v) = api
            .with_session("PUT", "/v1/crisis", &session, csrf, Some(pause.clone()))
            .await;
        assert_problem(&h, &v, StatusCode::FORBIDDEN);
        assert!(
            v["detail"].as_str().unwrap().contains("X-Herald-CSRF"),
            "{v}"
        );
    }
    let (_, _, crisis) = api.get("/v1/crisis", &t.key).await;
    assert_eq!(crisis["active"], false, "a refused change changed nothing");

    let (s, _, v) = api
        .with_session(
            "PUT",
            "/v1/crisis",
            &session,
            Some(&session.csrf),
            Some(pause),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, _, log) = api.get("/v1/audit?entity=crisis", &t.key).await;
    assert_eq!(log["items"][0]["actor"], format!("key:{}", t.key_id));
    let (_, _, log) = api.get("/v1/audit?action=console.signed_in", &t.key).await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");

    let (s, _, v) = api
        .with_session("GET", "/v1/audit/verify", &session, None, None)
        .await;
    assert_eq!((s, &v["ok"]), (StatusCode::OK, &json!(true)), "{v}");
    assert!(v["records"].as_u64().unwrap() >= 2, "{v}");
}

#[tokio::test]
async fn a_weaker_key_or_another_tenant_gets_no_more_through_a_session() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let b = api.tenant(false).await;
    let account = api.connect(&a, "x", "a1").await;
    let (s, _, post) = api.create_post(&a, "p-1", &account, "hello").await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, _, v) = api
        .post(
            "/v1/api-keys",
            &a.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    let viewer = api.sign_in(v["key"].as_str().unwrap()).await;
    let (s, h, v) = api
        .with_session(
            "PUT",
            "/v1/crisis",
            &viewer,
            Some(&viewer.csrf),
            Some(serde_json::from_str(PAUSE).unwrap()),
        )
        .await;
    assert_problem(&h, &v, StatusCode::FORBIDDEN);
    let (s2, _, _) = api
        .with_session("GET", "/v1/audit/verify", &viewer, None, None)
        .await;
    assert_eq!((s, s2), (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN));
    let (_, _, page) = api.console_page(&viewer.cookie).await;
    assert!(page.contains(r#"<meta name="herald-role" content="viewer">"#));

    // Tenant B's session sees none of A's posts, and cannot act on them.
    let other = api.sign_in(&b.key).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    let (s, h, v) = api.with_session("GET", &path, &other, None, None).await;
    assert_problem(&h, &v, StatusCode::NOT_FOUND);
    let (s2, _, _) = api
        .with_session("DELETE", &path, &other, Some(&other.csrf), None)
        .await;
    assert_eq!((s, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    let (_, _, list) = api
        .with_session("GET", "/v1/posts", &other, None, None)
        .await;
    assert_eq!(list["items"], json!([]));
    // B's CSRF token is no good with A's session.
    let (_, _, t_view) = api
        .with_session("GET", "/v1/tenant", &other, None, None)
        .await;
    assert_eq!(t_view["id"], b.id.as_str());
    let a_session = api.sign_in(&a.key).await;
    let (s, _, _) = api
        .with_session(
            "PUT",
            "/v1/crisis",
            &a_session,
            Some(&other.csrf),
            Some(serde_json::from_str(PAUSE).unwrap()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A session cookie opens no operator route.
    let (s, _, _) = api
        .with_session("GET", "/v1/metrics", &a_session, None, None)
        .await;
    assert!(
        s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
        "{s}"
    );
}

#[tokio::test]
async fn revoking_the_key_suspending_the_tenant_or_signing_out_ends_the_session() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (_, _, v) = api
        .post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "console", "role": "admin"}),
        )
        .await;
    let (key_id, key) = (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    );
    let session = api.sign_in(&key).await;
    let (s, _, _) = api.delete(&format!("/v1/api-keys/{key_id}"), &t.key).await;
    assert_eq!(s, StatusCode::OK);
    let (s, h, v) = api
        .with_session("GET", "/v1/tenant", &session, None, None)
        .await;
    assert_problem(&h, &v, StatusCode::UNAUTHORIZED);
    assert!(v["detail"].as_str().unwrap().contains("revoked"), "{s} {v}");
    let (s, h, page) = api.console_page(&session.cookie).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("revoked") && page.contains(r#"id="sign-in""#),
        "{page}"
    );
    assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));

    // Signing out: the wrong token leaves the session alone; the right one ends it.
    let session = api.sign_in(&t.key).await;
    let sign_out = |csrf: &str| {
        Request::builder()
            .method("POST")
            .uri("/console/sign-out")
            .header("cookie", format!("{COOKIE}={}", session.cookie))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={csrf}")))
            .unwrap()
    };
    let (s, _, _) = api.page(sign_out(&"0".repeat(64))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = api
        .with_session("GET", "/v1/tenant", &session, None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "still signed in");
    let (s, h, _) = api.page(sign_out(&session.csrf)).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (s, h, v) = api
        .with_session("GET", "/v1/tenant", &session, None, None)
        .await;
    assert_problem(&h, &v, StatusCode::UNAUTHORIZED);
    assert!(
        v["detail"].as_str().unwrap().contains("sign in again"),
        "{s} {v}"
    );

    // Suspension ends a live session at the next request.
    let session = api.sign_in(&t.key).await;
    herald_domain::ports::TenantStore::set_suspension(
        api.store.as_ref(),
        &herald_domain::ids::TenantId(t.id.clone()),
        Some(&herald_domain::model::Suspension {
            reason: "unpaid".into(),
            at: SystemClock.now(),
        }),
    )
    .await
    .unwrap();
    let (_, h, v) = api
        .with_session("GET", "/v1/posts", &session, None, None)
        .await;
    assert_problem(&h, &v, StatusCode::FORBIDDEN);
    assert!(v["detail"].as_str().unwrap().contains("unpaid"), "{v}");
}

#[tokio::test]
async fn a_refused_or_cross_site_sign_in_sets_no_cookie() {
    let api = Api::new();
    let t = api.tenant(false).await;
    for (credential, site, status) in [
        ("hrld_nope", Some("same-origin"), StatusCode::UNAUTHORIZED),
        ("", Some("same-origin"), StatusCode::UNPROCESSABLE_ENTITY),
        (&"x".repeat(300), None, StatusCode::UNPROCESSABLE_ENTITY),
        ("not-the-operator-token", None, StatusCode::UNAUTHORIZED),
        (t.key.as_str(), Some("cross-site"), StatusCode::FORBIDDEN),
        (t.key.as_str(), Some("same-site"), StatusCode::FORBIDDEN),
    ] {
        let (s, h, page) = api.sign_in_form(credential, site).await;
        assert_eq!(s, status, "{credential:.12} {site:?}: {page}");
        assert!(!h.contains_key("set-cookie"), "{credential:.12}");
        assert!(page.contains(r#"role="alert""#), "{page}");
        assert!(!page.contains("hrld_nope"), "the credential is not echoed");
    }
    // Forged or stale cookies: refused as an ended session, nothing read as a key.
    for forged in [
        "hrldc_".to_owned() + &"a".repeat(64),
        t.key.clone(),
        "x".into(),
    ] {
        let session = Session {
            cookie: forged,
            csrf: String::new(),
        };
        let (_, h, v) = api
            .with_session("GET", "/v1/tenant", &session, None, None)
            .await;
        assert_problem(&h, &v, StatusCode::UNAUTHORIZED);
    }
}
