//! Platform tokens end to end: the publisher refreshes an expiring X token at the fake's OAuth
//! endpoint exactly once for many concurrent variants, a revoked refresh token turns the
//! account `needs_reauth` with an alert, an audit record and an actionable failure, and a
//! reconnect without a refresh token keeps the stored one.

use super::*;

impl Stack {
    /// Connects (or reconnects) an X account whose access token the fake maps to it, with
    /// optional refresh token and lifetime; returns the HTTP status and the account.
    async fn connect_x(
        &self,
        t: &Tenant,
        external_id: &str,
        refresh_token: Option<&str>,
        expires_in: i64,
    ) -> (StatusCode, Value) {
        let token = unique("x-token-");
        let url = format!("{}/_admin/tokens", self.url("FAKE_PLATFORMS_URL"));
        let body = json!({"platform": "x", "token": token, "account": external_id});
        let res = self.http.post(url).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "token mapping refused");
        let mut body = json!({"platform": "x", "external_id": external_id, "access_token": token,
            "display_name": external_id, "expires_in": expires_in});
        if let Some(r) = refresh_token {
            body["refresh_token"] = json!(r);
        }
        let (s, _, v) = self
            .api(
                Method::POST,
                "/v1/accounts",
                t,
                Some(&unique("k-")),
                Some(body),
            )
            .await;
        (s, v)
    }

    /// Registers a refresh token for an account at the fake's OAuth endpoint.
    async fn oauth_grant(&self, external_id: &str, refresh_token: &str) {
        let url = format!("{}/_admin/oauth", self.url("FAKE_PLATFORMS_URL"));
        let body = json!({"platform": "x", "account": external_id, "refresh_token": refresh_token});
        let res = self.http.post(url).json(&body).send().await.unwrap();
        assert!(res.status().is_success());
    }

    async fn refreshes(&self, external_id: &str) -> u64 {
        let url = format!("{}/_admin/oauth", self.url("FAKE_PLATFORMS_URL"));
        let v: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["refreshes"][format!("x:{external_id}")]
            .as_u64()
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn an_expiring_x_token_is_refreshed_exactly_once_for_concurrent_variants() {
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("xuser");
    let refresh = unique("rt-");
    stack.oauth_grant(&user, &refresh).await;
    // Expires within the publisher's 5-minute margin: refreshed before the first post.
    let (s, account) = stack.connect_x(&t, &user, Some(&refresh), 120).await;
    assert_eq!(s, StatusCode::CREATED, "{account}");
    assert!(account.get("refresh_token").is_none() && account.get("access_token").is_none());
    let id = account["id"].as_str().unwrap().to_owned();
    let mut posts = Vec::new();
    for i in 0..5 {
        posts.push(
            stack
                .schedule(&t, &id, &format!("refresh {i} {user}"), 2)
                .await,
        );
    }
    for p in &posts {
        stack
            .await_variant(&t, p["id"].as_str().unwrap(), "published")
            .await;
    }
    assert_eq!(stack.refreshes(&user).await, 1, "exactly one refresh");
    assert_eq!(stack.fake_posts("x", &user).await.len(), 5);
    let (_, _, accounts) = stack.api(Method::GET, "/v1/accounts", &t, None, None).await;
    let a = &accounts["items"][0];
    assert_eq!(a["status"], "active");
    let expires = time::OffsetDateTime::parse(
        a["token_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires > time::OffsetDateTime::now_utc() + time::Duration::minutes(100));
}

#[tokio::test]
async fn a_revoked_refresh_token_fails_the_post_with_a_reason_and_marks_the_account() {
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("xrevoked");
    // The fake never issued this refresh token: `invalid_grant`.
    let (_, account) = stack
        .connect_x(&t, &user, Some(&unique("rt-dead-")), 60)
        .await;
    let id = account["id"].as_str().unwrap().to_owned();
    let post = stack.schedule(&t, &id, "never goes out", 0).await;
    let p = stack
        .await_variant(&t, post["id"].as_str().unwrap(), "failed")
        .await;
    let v = &p["variants"][0];
    assert_eq!(v["last_error"]["kind"], "auth", "{v}");
    assert_eq!(
        v["last_error"]["message"],
        format!(
            "the X account @{user} needs to be reconnected: its authorisation was revoked (the platform refused the refresh token)"
        ),
        "{v}"
    );
    assert_eq!(v["attempts"], 1, "no retry loop");
    assert!(stack.fake_posts("x", &user).await.is_empty());

    let (_, _, accounts) = stack.api(Method::GET, "/v1/accounts", &t, None, None).await;
    assert_eq!(accounts["items"][0]["status"], "needs_reauth");
    let (s, _, audit) = stack
        .api(
            Method::GET,
            "/v1/audit?action=account.needs_reauth",
            &t,
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["entity"], format!("account:{id}"));

    let sink = format!("{}/_admin/sinks/alerts", stack.url("FAKE_PLATFORMS_URL"));
    let key = format!("token_invalid:{}:{}", t.id, id);
    stack
        .wait_for(Duration::from_secs(30), "the alert", || async {
            let v: Value = stack
                .http
                .get(&sink)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["requests"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| serde_json::from_str::<Value>(r["body"].as_str()?).ok())
                .any(|b| b["herald"]["key"] == key.as_str())
                .then_some(())
        })
        .await;

    // Reconnecting with a working refresh token makes it active again and it publishes.
    let refresh = unique("rt-");
    stack.oauth_grant(&user, &refresh).await;
    let (s, again) = stack.connect_x(&t, &user, Some(&refresh), 60).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "active");
    let post = stack.schedule(&t, &id, "after reconnecting", 0).await;
    stack
        .await_variant(&t, post["id"].as_str().unwrap(), "published")
        .await;
    assert_eq!(stack.refreshes(&user).await, 1);
}

#[tokio::test]
async fn a_reconnect_without_a_refresh_token_keeps_the_stored_one() {
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("xkeep");
    let refresh = unique("rt-");
    stack.oauth_grant(&user, &refresh).await;
    // Connected with a refresh token and a token good for an hour: nothing to refresh.
    let (s, account) = stack.connect_x(&t, &user, Some(&refresh), 3600).await;
    assert_eq!(s, StatusCode::CREATED, "{account}");
    let id = account["id"].as_str().unwrap().to_owned();
    // Reconnected with a new, soon-expiring access token and no refresh token.
    let (s, _) = stack.connect_x(&t, &user, None, 60).await;
    assert_eq!(s, StatusCode::OK);
    let post = stack.schedule(&t, &id, "kept refresh token", 0).await;
    stack
        .await_variant(&t, post["id"].as_str().unwrap(), "published")
        .await;
    // The refresh used the token stored by the first connect.
    assert_eq!(stack.refreshes(&user).await, 1);
}

/// The reconciler refreshes a token about to expire ahead of any use (no post needs it): an
/// idle account keeps a working token for ingestion and engagement reads. Locally "about to
/// expire" is `HERALD_TOKEN_REFRESH_AHEAD_SECONDS` (10 s) instead of 30 minutes.
#[tokio::test]
async fn the_reconciler_refreshes_an_idle_accounts_token_before_it_expires() {
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("xidle");
    let refresh = unique("rt-");
    stack.oauth_grant(&user, &refresh).await;
    // The shortest lifetime the API takes; the reconciler refreshes it 10 s before its end.
    let (s, account) = stack.connect_x(&t, &user, Some(&refresh), 60).await;
    assert_eq!(s, StatusCode::CREATED, "{account}");
    let a = stack
        .wait_for(
            Duration::from_secs(120),
            "the reconciler's refresh",
            || async {
                let (_, _, accounts) = stack.api(Method::GET, "/v1/accounts", &t, None, None).await;
                let a = accounts["items"][0].clone();
                let expires = time::OffsetDateTime::parse(
                    a["token_expires_at"].as_str()?,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()?;
                (expires > time::OffsetDateTime::now_utc() + time::Duration::minutes(100))
                    .then_some(a)
            },
        )
        .await;
    assert_eq!(a["status"], "active");
    assert_eq!(stack.refreshes(&user).await, 1, "exactly one refresh");
    // The refreshed token works: a post goes out with it, with no further refresh.
    let post = stack
        .schedule(&t, a["id"].as_str().unwrap(), "after an idle refresh", 0)
        .await;
    stack
        .await_variant(&t, post["id"].as_str().unwrap(), "published")
        .await;
    assert_eq!(stack.refreshes(&user).await, 1);
}
