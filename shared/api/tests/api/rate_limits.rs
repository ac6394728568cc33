//! Every route's budget per key and class: headers on every limited answer, 429 with a
//! problem and Retry-After past it, and no key spends another's.

use super::*;
use herald_domain::rate_limits::{ApiRateLimits, RequestPolicy};

fn limited() -> Api {
    let mut m = AppState::in_memory();
    let policy = |limit| RequestPolicy {
        limit,
        window: time::Duration::minutes(1),
    };
    m.state.rate_limits = ApiRateLimits {
        read: policy(3),
        write: policy(2),
        expensive_read: policy(1),
        operator: policy(1),
        embed_read: policy(2),
    };
    Api::over(m)
}

#[tokio::test]
async fn a_key_past_its_budget_gets_429_and_other_keys_and_classes_do_not() {
    let api = limited();
    let t = api.tenant(false).await;
    let other = api.tenant(false).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let (s, h, _) = api.get("/v1/posts", &t.key).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["ratelimit-policy"], "\"read\";q=3;w=60");
        let rl = h["ratelimit"].to_str().unwrap().to_owned();
        assert!(rl.starts_with("\"read\";r="), "{rl}");
        remaining.push(rl.split(';').nth(1).unwrap().to_owned());
    }
    assert_eq!(remaining, ["r=2", "r=1", "r=0"]);
    let (s, h, v) = api.get("/v1/posts", &t.key).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_problem(&h, &v, s);
    let retry: i64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        h["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"read\";r=0;t=")
    );

    // Another tenant's key, and another class of the same key, have budgets of their own.
    assert_eq!(api.get("/v1/posts", &other.key).await.0, StatusCode::OK);
    let (s, h, _) = api.get("/v1/audit", &t.key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["ratelimit-policy"], "\"expensive-read\";q=1;w=60");
    assert_eq!(
        api.get("/v1/audit", &t.key).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "an expensive read is its own, smaller budget"
    );

    // A refused write does nothing: no post is created past the budget.
    let acc = {
        let (s, _, v) = api
            .post(
                "/v1/accounts",
                &other.key,
                json!({"platform": "x", "external_id": "rl", "access_token": "secret-token-123"}),
            )
            .await;
        assert!(s.is_success(), "{v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let (s, _, _) = api.create_post(&other, "rl-1", &acc, "one").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = api.create_post(&other, "rl-2", &acc, "two").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(api.store.all_posts().len(), 1);
}
