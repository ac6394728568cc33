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
        self.fake(
            "/_admin/tokens",
            json!({"platform": "x", "token": token, "account": external_id}),
        )
        .await;
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
        self.fake(
            "/_admin/oauth",
            json!({"platform": "x", "account": external_id, "refresh_token": refresh_token}),
        )
        .await;
    }

    /// A new X user (named `prefix` and random digits) whose refresh token the fake's OAuth
    /// endpoint honours, connected with it and an access token good for `expires_in` seconds:
    /// the user and the account.
    async fn refreshable_x(&self, t: &Tenant, prefix: &str, expires_in: i64) -> (String, Value) {
        let user = unique(prefix);
        let refresh = unique("rt-");
        self.oauth_grant(&user, &refresh).await;
        let (s, account) = self.connect_x(t, &user, Some(&refresh), expires_in).await;
        assert_eq!(s, StatusCode::CREATED, "{account}");
        (user, account)
    }

    /// A post due now on `account`, once it is published.
    async fn published_now(&self, t: &Tenant, account: &str, text: &str) {
        let post = self.schedule(t, account, text, 0).await;
        self.await_variant(t, post["id"].as_str().unwrap(), "published")
            .await;
    }

    async fn refreshes(&self, external_id: &str) -> u64 {
        let v = self.fake_get("/_admin/oauth").await;
        v["refreshes"][format!("x:{external_id}")]
            .as_u64()
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn an_expiring_x_token_is_refreshed_exactly_once_for_concurrent_variants() {
    let stack = Stack::running();
    let t = stack.tenant();
    // Expires within the publisher's 5-minute margin: refreshed before the first post.
    let (user, account) = stack.refreshable_x(&t, "xuser", 120).await;
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
    let (_, _, accounts) = stack.get("/v1/accounts", &t).await;
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

    let (_, _, accounts) = stack.get("/v1/accounts", &t).await;
    assert_eq!(accounts["items"][0]["status"], "needs_reauth");
    let (s, _, audit) = stack.get("/v1/audit?action=account.needs_reauth", &t).await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["entity"], format!("account:{id}"));

    let key = format!("token_invalid:{}:{}", t.id, id);
    stack
        .wait_for(Duration::from_secs(30), "the alert", || async {
            stack.alert_keys().await.contains(&key).then_some(())
        })
        .await;

    // Reconnecting with a working refresh token makes it active again and it publishes.
    let refresh = unique("rt-");
    stack.oauth_grant(&user, &refresh).await;
    let (s, again) = stack.connect_x(&t, &user, Some(&refresh), 60).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "active");
    stack.published_now(&t, &id, "after reconnecting").await;
    assert_eq!(stack.refreshes(&user).await, 1);
}

#[tokio::test]
async fn a_reconnect_without_a_refresh_token_keeps_the_stored_one() {
    let stack = Stack::running();
    let t = stack.tenant();
    // Connected with a refresh token and a token good for an hour: nothing to refresh.
    let (user, account) = stack.refreshable_x(&t, "xkeep", 3600).await;
    let id = account["id"].as_str().unwrap().to_owned();
    // Reconnected with a new, soon-expiring access token and no refresh token.
    let (s, _) = stack.connect_x(&t, &user, None, 60).await;
    assert_eq!(s, StatusCode::OK);
    stack.published_now(&t, &id, "kept refresh token").await;
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
    // The shortest lifetime the API takes; the reconciler refreshes it 10 s before its end.
    let (user, _) = stack.refreshable_x(&t, "xidle", 60).await;
    let a = stack
        .wait_for(
            Duration::from_secs(120),
            "the reconciler's refresh",
            || async {
                let (_, _, accounts) = stack.get("/v1/accounts", &t).await;
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
    stack
        .published_now(&t, a["id"].as_str().unwrap(), "after an idle refresh")
        .await;
    assert_eq!(stack.refreshes(&user).await, 1);
}
