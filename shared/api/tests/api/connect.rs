//! Connect links over HTTP, with the platform's consent played by the in-memory
//! authorisation server: a link leads to the consent page, the callback connects the signed-in
//! account to the link's tenant once, and neither a replay, a weaker key nor another tenant
//! gets anything from it.

use super::*;
use axum::http::HeaderMap;

impl Api {
    /// `GET uri` as a browser's address bar sends it (`page` is the console tests').
    async fn browse(&self, uri: &str) -> (StatusCode, HeaderMap, String) {
        self.page(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
    }

    /// A link for X by `key`: its path on the API.
    async fn connect_link(&self, key: &str) -> String {
        let (s, _, v) = self
            .post("/v1/connect-links", key, json!({"platform": "x"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let url = v["url"].as_str().unwrap();
        assert!(
            url.starts_with("https://herald.example/connect/hrldl_"),
            "{url}"
        );
        url.strip_prefix("https://herald.example")
            .unwrap()
            .to_owned()
    }

    /// Opens the link, follows it to the consent page, consents as `user`: the callback's path.
    async fn consent(&self, link: &str, user: &str) -> String {
        let (s, _, page) = self.browse(link).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert!(page.contains(&format!(r#"href="{link}/start""#)), "{page}");
        let (s, h, _) = self.browse(&format!("{link}/start")).await;
        assert_eq!(s, StatusCode::SEE_OTHER);
        let consent = h["location"].to_str().unwrap().to_owned();
        let param = |name: &str| {
            consent
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix(name))
                .unwrap()
                .to_owned()
        };
        let back = param("redirect_uri=");
        let back = back
            .strip_prefix("https://herald.example")
            .unwrap_or_else(|| panic!("{consent}"));
        let code = self.authorization.consent(&consent, user);
        format!("{back}?state={}&code={code}", param("state="))
    }
}

#[tokio::test]
async fn a_link_connects_the_signed_in_account_to_its_tenant_once() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let b = api.tenant(false).await;
    let link = api.connect_link(&a.key).await;
    let callback = api.consent(&link, "u42").await;
    let (s, _, page) = api.browse(&callback).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("is connected") && page.contains("@u42"),
        "{page}"
    );
    let (_, _, list) = api.get("/v1/accounts", &a.key).await;
    assert_eq!(list["items"][0]["external_id"], "u42", "{list}");
    assert_eq!(list["items"][0]["display_name"], "@u42");
    let (_, _, log) = api.get("/v1/audit?action=account.connected", &a.key).await;
    assert_eq!(log["items"][0]["new"]["via"], "connect_link", "{log}");
    assert_eq!(log["items"][0]["actor"], format!("key:{}", a.key_id));

    // The callback replayed: nothing more, and a page that says so.
    let (s, _, page) = api.browse(&callback).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(page.contains("already used"), "{page}");
    // Tenant B sees none of it.
    let (_, _, list) = api.get("/v1/accounts", &b.key).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn a_viewer_gets_no_link_and_bad_links_and_callbacks_connect_nothing() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let (_, _, v) = api
        .post(
            "/v1/api-keys",
            &a.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    let viewer = v["key"].as_str().unwrap().to_owned();
    let (s, h, v) = api
        .post("/v1/connect-links", &viewer, json!({"platform": "x"}))
        .await;
    assert_problem(&h, &v, StatusCode::FORBIDDEN);
    assert_eq!(s, StatusCode::FORBIDDEN);
    for body in [
        json!({"platform": "instagram"}),
        json!({"platform": "myspace"}),
        json!({}),
    ] {
        let (s, _, v) = api.post("/v1/connect-links", &a.key, body.clone()).await;
        assert!(
            s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST,
            "{body} {v}"
        );
    }
    for bad in [
        "/connect/hrldl_nope",
        "/connect/hrldl_nope/start",
        &format!("/connect/hrldl_{}", "0".repeat(64)),
        "/connect/callback/x?state=forged&code=c",
        "/connect/callback/x?code=c",
        "/connect/callback/myspace?state=s&code=c",
    ] {
        let (s, h, page) = api.browse(bad).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{bad}: {page}");
        assert!(page.contains(r#"role="alert""#), "{page}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'")
        );
    }
    // Cancelled at the consent page; then the state is spent.
    let link = api.connect_link(&a.key).await;
    let callback = api.consent(&link, "u1").await;
    let state = callback
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .unwrap();
    let (s, _, page) = api
        .browse(&format!(
            "/connect/callback/x?state={state}&error=access_denied"
        ))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("cancelled"), "{page}");
    let (s, _, _) = api.browse(&callback).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, _, list) = api.get("/v1/accounts", &a.key).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn a_sign_in_that_manages_several_pages_picks_one_on_the_picker() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let (s, _, v) = api
        .post("/v1/connect-links", &a.key, json!({"platform": "facebook"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let link = v["url"]
        .as_str()
        .unwrap()
        .strip_prefix("https://herald.example")
        .unwrap()
        .to_owned();
    let callback = api.consent(&link, "u9:p1,p2").await;
    assert!(
        callback.starts_with("/connect/callback/facebook?"),
        "{callback}"
    );
    let (s, _, page) = api.browse(&callback).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("Which Facebook account?") && page.contains("Page p2"),
        "{page}"
    );
    assert!(!page.contains("pt-p"), "no Page token in the page");
    let choice = page
        .split(r#"name="choice" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let pick = |site: &str, account: &str| {
        Request::builder()
            .method("POST")
            .uri("/connect/pick")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", site)
            .body(Body::from(format!("choice={choice}&account={account}")))
            .unwrap()
    };
    // From another site: refused, and the choice is left for the real page.
    let res = api
        .app
        .clone()
        .oneshot(pick("cross-site", "p2"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = api
        .app
        .clone()
        .oneshot(pick("same-origin", "p2"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, _, list) = api.get("/v1/accounts", &a.key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["external_id"], "p2");
    assert_eq!(list["items"][0]["platform"], "facebook");
    // The choice is spent.
    let res = api
        .app
        .clone()
        .oneshot(pick("same-origin", "p1"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (_, _, list) = api.get("/v1/accounts", &a.key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_account_that_needs_reauthorising_is_reconnected_through_a_link() {
    use herald_domain::ports::PublishStore;
    let api = Api::new();
    let a = api.tenant(false).await;
    let link = api.connect_link(&a.key).await;
    let callback = api.consent(&link, "u7").await;
    assert_eq!(api.browse(&callback).await.0, StatusCode::OK);
    let (_, _, list) = api.get("/v1/accounts", &a.key).await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    api.store
        .mark_needs_reauth(
            &herald_domain::ids::TenantId(a.id.clone()),
            &herald_domain::ids::AccountId(id.clone()),
            SystemClock.now(),
        )
        .await
        .unwrap();
    let (_, _, list) = api.get("/v1/accounts", &a.key).await;
    assert_eq!(list["items"][0]["status"], "needs_reauth");

    let link = api.connect_link(&a.key).await;
    let callback = api.consent(&link, "u7").await;
    let (s, _, page) = api.browse(&callback).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let (_, _, list) = api.get("/v1/accounts", &a.key).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "the same account: {list}"
    );
    assert_eq!(
        (list["items"][0]["id"].as_str(), &list["items"][0]["status"]),
        (Some(id.as_str()), &json!("active"))
    );
    let (_, _, log) = api
        .get("/v1/audit?action=account.reconnected", &a.key)
        .await;
    assert_eq!(log["items"][0]["new"]["via"], "connect_link", "{log}");
}
