//! Engagement snapshots and `GET /v1/analytics` on the local stack: a post published to X,
//! Facebook and LinkedIn through the real binaries, engagement set on the fake platforms, the
//! analytics function taking each milestone on its emulated schedule (the local stack's
//! milestones are seconds apart), then the summary read over HTTP.

use crate::support::*;
use herald_domain::analytics::{Milestone, SnapshotStore};
use herald_domain::ids::TenantId;
use herald_platforms::HttpPlatforms;
use herald_tests::repo_root;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn snapshots_of_a_published_post_are_taken_once_per_milestone_and_summarised_over_http() {
    let stack = Stack::running();
    let out = std::process::Command::new(repo_root().join("target/debug/herald"))
        .envs(&stack.env)
        .args(["tenant", "create", "--name", &unique("analytics-")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (tenant, key) = (
        TenantId(v["tenant_id"].as_str().unwrap().to_owned()),
        v["api_key"].as_str().unwrap().to_owned(),
    );

    // Three accounts, one post to all of them, published by the stack.
    let x_user = unique("ax-");
    let x_token = unique("x-token-");
    stack
        .fake(
            "/_admin/tokens",
            json!({"platform": "x", "token": x_token, "account": x_user}),
        )
        .await;
    let mut targets = Vec::new();
    for (platform, external, token) in [
        ("x", x_user.clone(), x_token.clone()),
        (
            "facebook",
            format!("{}", 1_000_000 + rand_u32() % 1_000_000),
            unique("fb-"),
        ),
        (
            "linkedin",
            format!("{}", 2_000_000 + rand_u32() % 1_000_000),
            unique("li-"),
        ),
    ] {
        // Herald asks the platform who the token is: the fake knows it as the account's.
        stack
            .fake(
                "/_admin/tokens",
                json!({"platform": platform, "token": token, "account": external}),
            )
            .await;
        let (s, a) = stack
            .send(
                reqwest::Method::POST,
                "/v1/accounts",
                &key,
                Some(json!({"platform": platform, "external_id": external, "access_token": token})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
        targets.push(json!({"account_id": a["id"]}));
    }
    let at = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, post) = stack
        .send(
            reqwest::Method::POST,
            "/v1/posts",
            &key,
            Some(json!({"text": unique("engaging "), "scheduled_at": at, "targets": targets})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    let post_id = post["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(90);
    let published = loop {
        let (_, _, p) = stack.get(&format!("/v1/posts/{post_id}"), &key).await;
        let variants = p["variants"].as_array().cloned().unwrap_or_default();
        if variants.len() == 3 && variants.iter().all(|v| v["status"] == "published") {
            break variants;
        }
        assert!(Instant::now() < deadline, "not published: {p}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Engagement on the platforms.
    let counts = HashMap::from([
        (
            "x",
            json!({"likes": 5, "comments": 2, "shares": 1, "impressions": 100}),
        ),
        ("facebook", json!({"likes": 7, "comments": 3, "shares": 2})),
        ("linkedin", json!({"likes": 4, "comments": 1})),
    ]);
    for v in &published {
        let platform = v["platform"].as_str().unwrap();
        let mut body = counts[platform].clone();
        body["platform"] = platform.into();
        body["post_id"] = v["platform_post_id"].clone();
        stack.fake("/_admin/metrics", body).await;
    }

    // The analytics function on its schedule takes each milestone once it is due: locally
    // the milestones are seconds apart (`HERALD_SNAPSHOT_OFFSETS_SECONDS` in the functions'
    // environment), so all three come within the test. Read back through the store as the
    // function builds it (accounts' tokens are sealed at rest).
    let offsets = functions_env("HERALD_SNAPSHOT_OFFSETS_SECONDS");
    let offsets: Vec<i64> = offsets.split(',').map(|o| o.parse().unwrap()).collect();
    assert!(
        offsets[2] <= 60,
        "the local stack's milestones: {offsets:?}"
    );
    let clients = herald_tests::stack_clients(&stack.env).await;
    let common =
        herald_aws::config::CommonConfig::read(&mut herald_aws::config::Env::new(&stack.env));
    let store = Arc::new(common.store(&clients));
    let window = (
        time::OffsetDateTime::now_utc() - time::Duration::hours(1),
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let snapshots = loop {
        let found = store.snapshots(&tenant, window.0, window.1).await.unwrap();
        if found.len() == 9 {
            break found;
        }
        assert!(Instant::now() < deadline, "snapshots so far: {found:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for (m, offset) in Milestone::ALL.into_iter().zip(&offsets) {
        let taken: Vec<_> = snapshots.iter().filter(|s| s.milestone == m).collect();
        assert_eq!(taken.len(), 3, "{m:?}");
        for s in taken {
            assert!(
                s.taken_at - s.published_at >= time::Duration::seconds(*offset),
                "{m:?} taken {} after publishing",
                s.taken_at - s.published_at
            );
        }
    }
    let x = snapshots
        .iter()
        .find(|s| s.platform.as_str() == "x" && s.milestone == Milestone::Week)
        .unwrap();
    assert_eq!(
        (
            x.engagement.likes,
            x.engagement.comments,
            x.engagement.shares,
            x.engagement.impressions
        ),
        (Some(5), Some(2), Some(1), Some(100))
    );

    // Once per variant and milestone: later runs add nothing, nor does a repeated write.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        store
            .snapshots(&tenant, window.0, window.1)
            .await
            .unwrap()
            .len(),
        9
    );
    let stale_entry = herald_domain::analytics::SnapshotDue {
        tenant_id: tenant.clone(),
        post_id: x.post_id.clone(),
        account_id: x.account_id.clone(),
        platform_post_id: x.platform_post_id.clone(),
        published_at: x.published_at,
        milestone: Some(Milestone::Week),
        due_at: x.published_at + time::Duration::days(7),
    };
    assert!(!store.record_snapshot(x, &stale_entry, None).await.unwrap());

    // The tenant's embeddable dashboard shows the engagement too.
    let (s, issued) = stack
        .send(
            reqwest::Method::POST,
            "/v1/embed/tokens",
            &key,
            Some(json!({"dashboard": "overview", "origins": ["https://shop.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    let data = json_of(
        stack
            .http
            .get(format!(
                "{}/embed/v1/dashboards/overview/data",
                stack.url("HERALD_API_URL")
            ))
            .bearer_auth(issued["token"].as_str().unwrap())
            .header("origin", "https://shop.example"),
    )
    .await;
    let engagement = data["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "engagement_by_platform")
        .unwrap_or_else(|| panic!("no engagement series: {data}"));
    assert_eq!(
        engagement["points"],
        // Every platform is a point, those the tenant has not published to at zero.
        json!([{"label": "x", "value": 8}, {"label": "facebook", "value": 12}, {"label": "linkedin", "value": 5},
               {"label": "mastodon", "value": 0}, {"label": "bluesky", "value": 0},
               {"label": "instagram", "value": 0}])
    );

    // The summary over HTTP.
    let (s, _, by_platform) = stack.get("/v1/analytics?group_by=platform", &key).await;
    assert_eq!(s, StatusCode::OK, "{by_platform}");
    let row = |v: &Value, k: &str| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == k)
            .cloned()
            .unwrap_or_else(|| panic!("no {k} in {v}"))
    };
    let fb = row(&by_platform, "facebook");
    assert_eq!(
        (
            fb["likes"].as_u64(),
            fb["comments"].as_u64(),
            fb["shares"].as_u64()
        ),
        (Some(7), Some(3), Some(2))
    );
    let xr = row(&by_platform, "x");
    assert_eq!(xr["impressions"], 100);
    let li = row(&by_platform, "linkedin");
    assert_eq!(
        (li["likes"].as_u64(), li["shares"].as_u64()),
        (Some(4), Some(0))
    );
    let (s, _, by_post) = stack.get("/v1/analytics?group_by=post", &key).await;
    assert_eq!(s, StatusCode::OK);
    let p = row(&by_post, &post_id);
    assert_eq!(
        (
            p["variants"].as_u64(),
            p["likes"].as_u64(),
            p["comments"].as_u64()
        ),
        (Some(3), Some(16), Some(6))
    );
    let (_, _, by_account) = stack.get("/v1/analytics?group_by=account", &key).await;
    assert_eq!(
        by_account["items"].as_array().unwrap().len(),
        3,
        "{by_account}"
    );
    // A range before the post: nothing.
    let (s, _, empty) = stack
        .get(
            "/v1/analytics?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
            &key,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(empty["items"], json!([]));

    // Bad queries are 422 problems naming each field.
    for (query, fields) in [
        ("group_by=tenant", vec!["group_by"]),
        ("from=yesterday&group_by=nope", vec!["from", "group_by"]),
        (
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            vec!["from"],
        ),
        (
            "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            vec!["from"],
        ),
    ] {
        let (s, _, v) = stack.get(&format!("/v1/analytics?{query}"), &key).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {v}");
        let got: Vec<&str> = v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(got, fields, "{query}: {v}");
    }
}

/// A value of the functions' local environment (`.herald/functions.env`, laid over the
/// template's by the stack).
fn functions_env(name: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join(".herald/functions.env"))
        .expect("the local stack's functions.env");
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{name} is not in .herald/functions.env"))
}

fn rand_u32() -> u32 {
    let b = uuid::Uuid::new_v4();
    u32::from_le_bytes(b.as_bytes()[..4].try_into().unwrap())
}

/// The engagement reads against a fake of this test's own: counts as set, zero before, and
/// the failures classified (unknown post, revoked token, a platform fault).
#[tokio::test]
async fn engagement_reads_parse_each_platforms_counts_and_classify_failures() {
    use herald_domain::analytics::{Engagement, EngagementClient};
    use herald_domain::model::Platform;
    use herald_domain::publishing::platform::{PlatformClient, PlatformError, PublishRequest};
    use secrecy::SecretString;
    let fake = herald_tests::fake_platforms();
    let client = HttpPlatforms::new(fake.endpoints(), Duration::from_secs(3));
    let http = reqwest::Client::new();
    let token = SecretString::from("tok-1");
    http.post(format!("{}/_admin/tokens", fake.url))
        .json(&json!({"platform": "x", "token": "tok-1", "account": "u1"}))
        .send()
        .await
        .unwrap();
    let mut ids = HashMap::new();
    for (platform, external) in [
        (Platform::X, "u1"),
        (Platform::Facebook, "123"),
        (Platform::Linkedin, "456"),
    ] {
        let published = client
            .publish(PublishRequest {
                platform,
                external_id: external,
                access_token: &token,
                text: "hello",
                correlation_id: "c",
                media: vec![],
                reply_to: None,
                idempotency_key: "k",
                due_at: herald_tests::DUE,
                progress: &herald_domain::publishing::platform::KeptInMemory::default(),
                uploads_until: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
                options: &Default::default(),
            })
            .await
            .unwrap();
        ids.insert(platform, (external, published.platform_post_id));
    }
    let read = |p: Platform| {
        let (external, id) = ids[&p].clone();
        let client = &client;
        let token = &token;
        async move { client.engagement(p, external, token, &id).await }
    };
    // Nothing yet: zeros where the platform counts, None where it has no such count.
    assert_eq!(
        read(Platform::Linkedin).await.unwrap(),
        Engagement {
            likes: Some(0),
            comments: Some(0),
            shares: None,
            impressions: None
        }
    );
    for (p, body) in [
        (
            Platform::X,
            json!({"likes": 3, "comments": 1, "shares": 2, "impressions": 40}),
        ),
        (
            Platform::Facebook,
            json!({"likes": 9, "comments": 4, "shares": 5}),
        ),
        (Platform::Linkedin, json!({"likes": 6, "comments": 2})),
    ] {
        let mut body = body;
        body["platform"] = p.as_str().into();
        body["post_id"] = ids[&p].1.clone().into();
        let res = http
            .post(format!("{}/_admin/metrics", fake.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
    }
    assert_eq!(
        read(Platform::X).await.unwrap(),
        Engagement {
            likes: Some(3),
            comments: Some(1),
            shares: Some(2),
            impressions: Some(40)
        }
    );
    assert_eq!(
        read(Platform::Facebook).await.unwrap(),
        Engagement {
            likes: Some(9),
            comments: Some(4),
            shares: Some(5),
            impressions: None
        }
    );
    assert_eq!(
        read(Platform::Linkedin).await.unwrap(),
        Engagement {
            likes: Some(6),
            comments: Some(2),
            shares: None,
            impressions: None
        }
    );

    // An unknown post, a revoked token and a platform fault, each classified.
    let unknown = client
        .engagement(Platform::X, "u1", &token, "999999")
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, PlatformError::Permanent { .. }),
        "{unknown:?}"
    );
    let unknown_fb = client
        .engagement(Platform::Facebook, "123", &token, "123_999999")
        .await
        .unwrap_err();
    assert!(
        !matches!(unknown_fb, PlatformError::Transient { .. }),
        "{unknown_fb:?}"
    );
    let revoked = client
        .engagement(
            Platform::Facebook,
            "123",
            &SecretString::from("revoked-1"),
            &ids[&Platform::Facebook].1,
        )
        .await
        .unwrap_err();
    assert_eq!(
        revoked.kind(),
        herald_domain::model::FailureKind::Auth,
        "{revoked:?}"
    );
    let res = http
        .post(format!("{}/_admin/faults", fake.url))
        .json(&json!({"platform": "linkedin", "status": 503, "count": 1, "endpoints": "all"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let down = read(Platform::Linkedin).await.unwrap_err();
    assert!(matches!(down, PlatformError::Transient { .. }), "{down:?}");
    assert!(
        read(Platform::Linkedin).await.is_ok(),
        "the fault was spent"
    );
}
