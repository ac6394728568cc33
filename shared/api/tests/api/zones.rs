//! Time zones: the tenant's, and posts scheduled by wall-clock time in it or in their own,
//! with skipped and repeated times answered explicitly. Drafts let these tests use fixed past
//! dates (a draft's time may be past).

use super::*;

async fn draft_at(api: &Api, t: &Tenant, acc: &str, key: &str, extra: Value) -> Answer {
    let mut body = json!({"text": "when?", "status": "draft", "targets": [{"account_id": acc}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    api.call("POST", "/v1/posts", Some(&t.key), Some(key), Some(body))
        .await
}

#[tokio::test]
async fn a_wall_clock_time_is_read_in_the_tenants_zone_or_the_posts_own() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let acc = api.connect(&t, "x", "zx").await;
    let (_, _, tenant) = api.get("/v1/tenant", &t.key).await;
    assert_eq!(tenant["time_zone"], "UTC");
    let (s, h, v) = api
        .patch("/v1/tenant", &t.key, json!({"time_zone": "Mars/Olympus"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    let (s, _, v) = api
        .patch("/v1/tenant", &t.key, json!({"time_zone": "europe/paris"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["time_zone"], "Europe/Paris",
        "as the tz database spells it"
    );

    let (s, _, v) = draft_at(
        &api,
        &t,
        &acc,
        "z1",
        json!({"scheduled_local": "2025-07-01T09:00"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["scheduled_at"], "2025-07-01T07:00:00Z");
    assert_eq!(v["time_zone"], "Europe/Paris");
    assert_eq!(v["scheduled_local"], "2025-07-01T09:00:00");
    let (s, _, v) = draft_at(
        &api,
        &t,
        &acc,
        "z2",
        json!({"scheduled_local": "2025-07-01T09:00:30", "time_zone": "America/New_York"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["scheduled_at"], "2025-07-01T13:00:30Z");
}

#[tokio::test]
async fn skipped_and_repeated_times_are_answered_explicitly() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let acc = api.connect(&t, "x", "zy").await;
    // Paris skips 02:00-03:00 on 30 March 2025.
    let gap = json!({"scheduled_local": "2025-03-30T02:30", "time_zone": "Europe/Paris"});
    let (s, h, v) = draft_at(&api, &t, &acc, "g1", gap.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    assert_eq!(v["errors"][0]["field"], "scheduled_local");
    let message = v["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("does not exist"), "{message}");
    let mut later = gap.clone();
    later["dst"] = json!("later");
    let (s, _, v) = draft_at(&api, &t, &acc, "g2", later).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["scheduled_at"], "2025-03-30T01:30:00Z");
    // New York repeats 01:00-02:00 on 2 November 2025.
    let repeat = json!({"scheduled_local": "2025-11-02T01:30", "time_zone": "America/New_York"});
    let (s, _, v) = draft_at(&api, &t, &acc, "r1", repeat.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("happens twice")
    );
    let mut earlier = repeat;
    earlier["dst"] = json!("earlier");
    let (s, _, v) = draft_at(&api, &t, &acc, "r2", earlier).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["scheduled_at"], "2025-11-02T05:30:00Z");
    // Bad combinations change nothing.
    let before = api.store.all_posts().len();
    for (i, bad) in [
        json!({"scheduled_local": "2025-07-01 09:00"}),
        json!({"scheduled_local": "2025-07-01T09:00", "time_zone": "Nowhere/City"}),
        json!({"time_zone": "Europe/Paris"}),
        json!({"scheduled_local": "2025-07-01T09:00", "scheduled_at": "2025-07-01T09:00:00Z"}),
    ]
    .into_iter()
    .enumerate()
    {
        let (s, _, v) = draft_at(&api, &t, &acc, &format!("bad{i}"), bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{i}: {v}");
    }
    assert_eq!(api.store.all_posts().len(), before);
}

#[tokio::test]
async fn the_sms_help_text_is_the_admins_to_set_and_clear() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (_, _, tenant) = api.get("/v1/tenant", &t.key).await;
    assert_eq!(tenant["sms_help_text"], Value::Null, "the default answer");
    let (s, h, v) = api
        .patch(
            "/v1/tenant",
            &t.key,
            json!({"sms_help_text": "x".repeat(321)}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    assert_eq!(v["errors"][0]["field"], "sms_help_text");
    let (s, _, v) = api
        .patch(
            "/v1/tenant",
            &t.key,
            json!({"sms_help_text": " Brand A: weekly offers. Reply STOP to end. "}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["sms_help_text"],
        "Brand A: weekly offers. Reply STOP to end."
    );
    let (_, _, v) = api
        .patch("/v1/tenant", &t.key, json!({"time_zone": "UTC"}))
        .await;
    assert_eq!(
        v["sms_help_text"], "Brand A: weekly offers. Reply STOP to end.",
        "left alone when absent"
    );
    let (_, _, v) = api
        .patch("/v1/tenant", &t.key, json!({"sms_help_text": ""}))
        .await;
    assert_eq!(v["sms_help_text"], Value::Null, "back to the default");
}
