//! A draft on the local stack: the dispatcher passes it by however long it waits, and once
//! scheduled it is published once; a wall-clock draft is resolved in the tenant's zone and
//! found in the calendar.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_draft_waits_through_dispatcher_runs_then_publishes_once_scheduled() {
    let stack = Stack::running();
    let t = stack.tenant();
    let page = unique("draftpage");
    let account = stack.connect(&t, "facebook", &page, "fb-token").await;
    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(
                json!({"text": "A draft", "status": "draft", "targets": [{"account_id": account}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    // The local dispatcher runs every few seconds: several runs pass the draft by.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(stack.read_post(&t, &id).await["status"], "draft");
    assert!(stack.fake_posts("facebook", &page).await.is_empty());
    let (s, _, v) = stack
        .api(
            Method::POST,
            &format!("/v1/posts/{id}/schedule"),
            &t,
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    stack
        .wait_for(
            Duration::from_secs(90),
            "the scheduled draft published",
            || async { (stack.read_post(&t, &id).await["status"] == "published").then_some(()) },
        )
        .await;
    assert_eq!(stack.fake_posts("facebook", &page).await.len(), 1);
}

/// The tenant's zone is stored and read back through DynamoDB, and a wall-clock draft is
/// resolved in it.
#[tokio::test]
async fn a_tenant_zone_is_kept_and_a_wall_clock_draft_is_read_in_it() {
    let stack = Stack::running();
    let t = stack.tenant();
    let account = stack
        .connect(&t, "linkedin", &unique("zorg"), "li-token")
        .await;
    let (s, _, v) = stack
        .patch("/v1/tenant", &t, json!({"time_zone": "Asia/Kolkata"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, _, v) = stack.get("/v1/tenant", &t).await;
    assert_eq!(v["time_zone"], "Asia/Kolkata");
    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(
                json!({"text": "local", "status": "draft", "scheduled_local": "2025-01-10T09:30",
                        "targets": [{"account_id": account}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap();
    let post = stack.read_post(&t, id).await;
    assert_eq!(post["scheduled_at"], "2025-01-10T04:00:00Z");
    assert_eq!(post["time_zone"], "Asia/Kolkata");
    assert_eq!(post["scheduled_local"], "2025-01-10T09:30:00");
    // The calendar finds it by its day through the index; another tenant's calendar of that
    // day is empty.
    let day = "/v1/posts?from=2025-01-10T00:00:00Z&to=2025-01-11T00:00:00Z";
    let (s, _, v) = stack.get(day, &t).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["items"][0]["id"], id);
    let (_, _, v) = stack
        .get(
            "/v1/posts?from=2025-01-10T04:00:01Z&to=2025-01-11T00:00:00Z",
            &t,
        )
        .await;
    assert_eq!(v["items"], json!([]), "after it");
    let (_, _, v) = stack.get(day, &stack.tenant()).await;
    assert_eq!(v["items"], json!([]), "another tenant's calendar");
    // Every post this release writes carries its calendar place: the upgrade's backfill
    // (through the real CLI) finds nothing to do.
    assert_eq!(stack.cli(&["posts", "reindex"])[0], json!({"reindexed": 0}));
    // Setting the other settings keeps the zone.
    let (s, _, v) = stack
        .patch("/v1/tenant", &t, json!({"require_approval": false}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["time_zone"], "Asia/Kolkata");
}

/// Posting slots on the local stack: two `next_slot` posts sent at once take two different
/// slots (the holds are conditional writes on DynamoDB), read in the tenant's zone.
#[tokio::test]
async fn two_queued_posts_sent_at_once_take_two_slots_in_the_tenants_zone() {
    let stack = Stack::running();
    let t = stack.tenant();
    let account = stack.connect(&t, "x", &unique("slots"), "x-token").await;
    let (s, _, v) = stack
        .patch("/v1/tenant", &t, json!({"time_zone": "Asia/Kolkata"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let days = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    let (s, _, v) = stack
        .api(
            Method::PUT,
            "/v1/posting-slots",
            &t,
            None,
            Some(json!({"slots": [{"days": days, "times": ["10:15"]}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["time_zone"], "Asia/Kolkata");
    let queued = |text: &str| json!({"text": text, "schedule": "next_slot", "targets": [{"account_id": account}]});
    let (k1, k2) = (unique("k-"), unique("k-"));
    let (one, two) = tokio::join!(
        stack.api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&k1),
            Some(queued("one"))
        ),
        stack.api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&k2),
            Some(queued("two"))
        ),
    );
    assert_eq!(one.0, StatusCode::CREATED, "{}", one.2);
    assert_eq!(two.0, StatusCode::CREATED, "{}", two.2);
    let (a, b) = (&one.2["scheduled_at"], &two.2["scheduled_at"]);
    assert_ne!(a, b, "one slot each");
    for post in [&one.2, &two.2] {
        assert!(
            post["scheduled_local"]
                .as_str()
                .unwrap()
                .ends_with("T10:15:00"),
            "{post}"
        );
        assert_eq!(post["time_zone"], "Asia/Kolkata");
    }
}
