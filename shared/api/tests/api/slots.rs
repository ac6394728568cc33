//! Posting slots through the API: set by an editor (not a viewer), checked with every
//! problem named, audited, and filled by `"schedule": "next_slot"`; another tenant can
//! neither name this tenant's accounts nor take its slots.

use super::*;

#[tokio::test]
async fn slots_are_set_checked_and_filled_by_next_slot() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let b = api.tenant(false).await;
    let x = api.connect(&t, "x", "slotsx").await;
    let b_acc = api.connect(&b, "x", "slotsbx").await;
    let (s, _, v) = api.get("/v1/posting-slots", &t.key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"slots": [], "accounts": {}, "time_zone": "UTC"}));

    // Next slot without slots: a 422 naming `schedule`.
    let queued = json!({"text": "queued", "schedule": "next_slot", "targets": [{"account_id": x}]});
    let (s, h, v) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("q0"),
            Some(queued.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    assert_eq!(v["errors"][0]["field"], "schedule", "{v}");

    let every_day = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    let body = json!({"slots": [{"days": every_day, "times": ["06:00", "18:00"]}]});
    let (_, _, viewer) = api
        .post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    let viewer = viewer["key"].as_str().unwrap().to_owned();
    let (s, _, _) = api
        .call(
            "PUT",
            "/v1/posting-slots",
            Some(&viewer),
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a viewer reads slots, never sets them"
    );
    // Another tenant cannot give slots to this tenant's account.
    let (s, _, v) = api
        .call(
            "PUT",
            "/v1/posting-slots",
            Some(&b.key),
            None,
            Some(json!({"accounts": {x.clone(): [{"days": ["mon"], "times": ["09:00"]}]}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let bad = json!({"slots": [{"days": ["someday"], "times": ["25:00"]}]});
    let (s, h, v) = api
        .call("PUT", "/v1/posting-slots", Some(&t.key), None, Some(bad))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    assert_eq!(v["errors"].as_array().unwrap().len(), 2, "{v}");
    let (_, _, still) = api.get("/v1/posting-slots", &t.key).await;
    assert_eq!(
        still["slots"],
        json!([]),
        "a refused change changes nothing"
    );

    let (s, _, v) = api
        .call("PUT", "/v1/posting-slots", Some(&t.key), None, Some(body))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["slots"][0]["times"], json!(["06:00", "18:00"]));
    let (_, _, log) = api
        .get("/v1/audit?action=posting_slots.changed", &t.key)
        .await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");

    let mut times = Vec::new();
    for i in 1..=3 {
        let (s, _, v) = api
            .call(
                "POST",
                "/v1/posts",
                Some(&t.key),
                Some(&format!("q{i}")),
                Some(queued.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        times.push(v["scheduled_at"].as_str().unwrap().to_owned());
    }
    let mut sorted = times.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted, times,
        "three posts, three successive slots: {times:?}"
    );
    for t in &times {
        assert!(
            t.ends_with("T06:00:00Z") || t.ends_with("T18:00:00Z"),
            "{t}"
        );
    }
    // Another tenant's queue does not see these posts: its first slot is this tenant's first.
    api.call(
        "PUT",
        "/v1/posting-slots",
        Some(&b.key),
        None,
        Some(json!({"slots": [{"days": every_day, "times": ["06:00", "18:00"]}]})),
    )
    .await;
    let (s, _, v) = api
        .call("POST", "/v1/posts", Some(&b.key), Some("bq"),
            Some(json!({"text": "theirs", "schedule": "next_slot", "targets": [{"account_id": b_acc}]})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["scheduled_at"], times[0]);

    // next_slot with a time is refused.
    let (s, _, v) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("q9"),
            Some(
                json!({"text": "x", "schedule": "next_slot", "scheduled_at": "2030-01-01T00:00:00Z",
                        "targets": [{"account_id": x}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _, v) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("q10"),
            Some(json!({"text": "x", "schedule": "soon", "targets": [{"account_id": x}]})),
        )
        .await;
    assert!(s.is_client_error(), "{v}");
}

#[tokio::test]
async fn a_draft_goes_to_the_next_slot_when_scheduled_so() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let x = api.connect(&t, "x", "slotdraft").await;
    let every_day = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    api.call(
        "PUT",
        "/v1/posting-slots",
        Some(&t.key),
        None,
        Some(json!({"slots": [{"days": every_day, "times": ["07:45"]}]})),
    )
    .await;
    let (s, _, draft) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("d1"),
            Some(json!({"text": "later", "status": "draft", "targets": [{"account_id": x}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{draft}");
    let path = format!("/v1/posts/{}/schedule", draft["id"].as_str().unwrap());
    let (s, _, v) = api
        .post(
            &path,
            &t.key,
            json!({"schedule": "next_slot", "scheduled_at": "2030-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _, v) = api
        .post(&path, &t.key, json!({"schedule": "next_slot"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "scheduled");
    assert!(
        v["scheduled_at"].as_str().unwrap().ends_with("T07:45:00Z"),
        "{v}"
    );
}
