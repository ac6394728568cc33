//! The operator's tools over HTTP: crisis mode, the audit trail, dead letters.

use super::*;

#[tokio::test]
async fn crisis_mode_is_admin_only_validated_and_lifted_once() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, _, v) = api.get("/v1/crisis", &t.key).await;
    assert_eq!((s, &v["active"]), (StatusCode::OK, &json!(false)));

    let (s, h, v) = api
        .call(
            "PUT",
            "/v1/crisis",
            Some(&t.key),
            None,
            Some(json!({"reason": " ", "platforms": ["x", "myspace", "x"], "expires_at": "2001-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["reason", "platforms[1]", "platforms[2]", "expires_at"],
        "{v}"
    );
    let (s, _, v) = api.get("/v1/crisis", &t.key).await;
    assert_eq!(
        (s, &v["active"]),
        (StatusCode::OK, &json!(false)),
        "nothing changed"
    );

    let (s, _, v) = api
        .call(
            "PUT",
            "/v1/crisis",
            Some(&t.key),
            Some("pause-1"),
            Some(json!({"reason": "brand safety review", "platforms": ["linkedin", "x"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["platforms"], json!(["x", "linkedin"]));
    assert_eq!(v["all_platforms"], json!(false));
    let expires = time::OffsetDateTime::parse(
        v["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let day = expires - SystemClock.now();
    assert!(
        day > time::Duration::hours(23) && day <= time::Duration::hours(24),
        "24 hours by default: {day}"
    );
    let (_, _, v) = api.get("/v1/crisis", &t.key).await;
    assert_eq!(v["reason"], "brand safety review");

    // Only admins see or touch it.
    let (_, _, editor) = api
        .post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "ed", "role": "editor"}),
        )
        .await;
    let editor = editor["key"].as_str().unwrap().to_owned();
    for method in ["GET", "DELETE"] {
        let (s, _, _) = api
            .call(method, "/v1/crisis", Some(&editor), None, None)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method}");
    }

    let (s, _, v) = api.delete("/v1/crisis", &t.key).await;
    assert_eq!((s, &v["active"]), (StatusCode::OK, &json!(false)), "{v}");
    assert_eq!(v["reason"], "brand safety review", "says what was lifted");
    let (s, h, _) = api.delete("/v1/crisis", &t.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(h["content-type"], "application/problem+json");
}

#[tokio::test]
async fn api_actions_are_audited_with_who_and_from_where() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, _, _) = api
        .call(
            "PUT",
            "/v1/crisis",
            Some(&t.key),
            None,
            Some(json!({"reason": "audit me"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let req = Request::builder()
        .method("DELETE")
        .uri("/v1/crisis")
        .header("authorization", format!("Bearer {}", t.key))
        .header("x-forwarded-for", "203.0.113.66, 198.51.100.4")
        .header("user-agent", "ops-console/2")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        api.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );

    let (s, _, v) = api.get("/v1/audit?entity=crisis", &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    assert_eq!(items[0]["action"], "crisis.lifted");
    assert_eq!(
        items[0]["ip"], "198.51.100.4",
        "the address API Gateway saw, not one the client claimed"
    );
    assert_eq!(items[0]["user_agent"], "ops-console/2");
    assert_eq!(items[0]["old"]["reason"], "audit me");
    assert_eq!(items[1]["action"], "crisis.started");
    assert!(items[0]["actor"].as_str().unwrap().starts_with("key:key_"));
    let (_, _, v) = api
        .get("/v1/audit?action=crisis.started&limit=1", &t.key)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (s, _, _) = api.get("/v1/audit?limit=0", &t.key).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a query parameter out of range, as everywhere"
    );
    let (s, _, _) = api.get("/v1/audit?from=yesterday", &t.key).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let other = api.tenant(false).await;
    let (_, _, v) = api.get("/v1/audit", &other.key).await;
    assert_eq!(v["items"], json!([]), "another tenant sees none of it");
}

#[tokio::test]
async fn dead_letters_are_tenant_scoped_admin_only_and_audited() {
    use herald_domain::dead_letters::DeadLetter;
    let api = Api::new();
    let (a, b) = (api.tenant(false).await, api.tenant(false).await);
    let letter = |id: &str, tenant: &str, age_secs: i64| {
        DeadLetter::from_body(
            id,
            "publish",
            json!({"tenant_id": tenant, "post_id": "post_1", "account_id": "acc_1", "platform": "x", "correlation_id": "c"}).to_string(),
            Some("X answered 503 (after 5 failed deliveries)".into()),
            5,
            SystemClock.now() - time::Duration::seconds(age_secs),
        )
    };
    let (m1, m2, m3) = (
        letter("5f0c1a2e-m1", &a.id, 3600),
        letter("5f0c1a2e-m2", &a.id, 10),
        letter("5f0c1a2e-m3", &b.id, 10),
    );
    *api.dead_letters.dead.lock().unwrap() = vec![
        m1.clone(),
        m2.clone(),
        m3.clone(),
        DeadLetter::from_body(
            "m4",
            "publish",
            "{garbage".into(),
            None,
            5,
            SystemClock.now(),
        ),
    ];
    // Nothing is listed until the drain moves the DLQ's messages into records.
    let (_, _, v) = api.get("/v1/dead-letters", &a.key).await;
    assert_eq!(v["items"], json!([]));
    assert_eq!(api.drain.drain(100).await.unwrap(), 4);
    assert!(api.dead_letters.dead.lock().unwrap().is_empty());
    let (s, _, v) = api.get("/v1/dead-letters", &a.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [m1.id.as_str(), m2.id.as_str()],
        "only A's, oldest first"
    );
    assert_eq!(v["items"][0]["payload"]["post_id"], "post_1");
    assert_eq!(v["items"][0]["receive_count"], 5);
    assert_eq!(v["next_cursor"], Value::Null);
    // A page at a time.
    let (_, _, first) = api.get("/v1/dead-letters?limit=1", &a.key).await;
    assert_eq!(first["items"][0]["id"], m1.id.as_str());
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, _, second) = api
        .get(&format!("/v1/dead-letters?limit=1&cursor={cursor}"), &a.key)
        .await;
    assert_eq!(second["items"][0]["id"], m2.id.as_str(), "{second}");
    for bad in ["limit=0", "limit=101", "cursor=bm90LW91cnM"] {
        let (s, _, v) = api.get(&format!("/v1/dead-letters?{bad}"), &a.key).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (_, _, v) = api
        .get("/v1/dead-letters?older_than_seconds=600", &a.key)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (s, _, _) = api
        .get(&format!("/v1/dead-letters/{}", m3.id), &a.key)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "B's letter is not A's to see");
    let (s, _, _) = api
        .delete(&format!("/v1/dead-letters/{}", m3.id), &a.key)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nor to delete");
    let (s, _, _) = api
        .act(&format!("/v1/dead-letters/{}/requeue", m3.id), &a.key)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nor to requeue");
    let (s, _, v) = api
        .post("/v1/dead-letters/requeue", &a.key, json!({"ids": []}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, _, v) = api
        .post("/v1/dead-letters/requeue", &a.key, json!({"ids": [m3.id]}))
        .await;
    assert_eq!(
        v["requeued"], 0,
        "B's id in A's bulk requeue does nothing: {v}"
    );

    let (s, _, v) = api
        .act(&format!("/v1/dead-letters/{}/requeue", m1.id), &a.key)
        .await;
    assert_eq!((s, &v["requeued"]), (StatusCode::OK, &json!(1)), "{v}");
    let (s, _, v) = api
        .delete(&format!("/v1/dead-letters/{}", m2.id), &a.key)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _, _) = api
        .act(&format!("/v1/dead-letters/{}/requeue", m1.id), &a.key)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "already gone");
    let (_, _, left) = api.get("/v1/dead-letters", &b.key).await;
    assert_eq!(left["items"][0]["id"], m3.id.as_str(), "B's is still there");
    assert_eq!(api.dead_letters.requeued.lock().unwrap()[0].id, m1.id);

    let (_, _, log) = api.get("/v1/audit", &a.key).await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["dead_letter.deleted", "dead_letter.requeued"]);
}
