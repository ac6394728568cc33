//! Posts over HTTP: idempotency keys, tenancy, roles, listing, edits and cancels.

use super::*;

#[tokio::test]
async fn idempotency_key_semantics() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let acc = api.connect(&t, "x", "1").await;

    // Required on POST /v1/posts.
    let (s, h, v) = api
        .post(
            "/v1/posts",
            &t.key,
            json!({"text": "a", "targets": [{"account_id": acc}]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_problem(&h, &v, s);
    // Malformed.
    for bad in ["\"unterminated", "has space", &"k".repeat(256)] {
        let (s, _, _) = api.create_post(&t, bad, &acc, "a").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    // First use, then a replay with the same body.
    let (s1, h1, first) = api.create_post(&t, "key-1", &acc, "hello").await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    assert!(h1.get("idempotent-replayed").is_none());
    let (s2, h2, second) = api.create_post(&t, "\"key-1\"", &acc, "hello").await;
    assert_eq!(
        (s2, &second),
        (StatusCode::CREATED, &first),
        "the sf-string form is the same key"
    );
    assert_eq!(h2["idempotent-replayed"], "true");
    assert_eq!(h2["location"], h1["location"]);
    assert_eq!(
        api.store.all_posts().len(),
        1,
        "one post, however often it is retried"
    );
    // Same key, another payload.
    let (s, h, v) = api.create_post(&t, "key-1", &acc, "different").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&h, &v, s);
    // Still in flight.
    let key = IdempotencyKey::parse("key-2").unwrap();
    let body = json!({"text": "a", "targets": [{"account_id": acc}]}).to_string();
    let fp = herald_domain::idempotency::fingerprint("POST", "/v1/posts", body.as_bytes());
    let tenant_id = herald_domain::ids::TenantId(t.id.clone());
    assert!(matches!(
        api.idempotency
            .begin(&tenant_id, &t.key_id, &key, fp)
            .await
            .unwrap(),
        herald_domain::idempotency::Begin::Proceed(_)
    ));
    let (s, h, v) = api.create_post(&t, "key-2", &acc, "a").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_problem(&h, &v, s);
    // Keys are per tenant: another tenant's "key-1" is a different key.
    let other = api.tenant(false).await;
    let other_acc = api.connect(&other, "x", "1").await;
    let (s, h, _) = api.create_post(&other, "key-1", &other_acc, "hello").await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(h.get("idempotent-replayed").is_none());
    // A 4xx is stored and replayed too: the request was wrong, retrying it will not fix it.
    let (s, _, _) = api.create_post(&t, "key-3", "acc_missing", "x").await;
    let (s2, h2, _) = api.create_post(&t, "key-3", "acc_missing", "x").await;
    assert_eq!(
        (s, s2),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::UNPROCESSABLE_ENTITY
        )
    );
    assert_eq!(h2["idempotent-replayed"], "true");
}

#[tokio::test]
async fn tenants_never_see_each_others_posts() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let b = api.tenant(false).await;
    let acc = api.connect(&a, "x", "1").await;
    let (_, _, post) = api.create_post(&a, "k", &acc, "hello").await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    let (s, h, v) = api.get(&path, &b.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_problem(&h, &v, s);
    let (s, _, _) = api.patch(&path, &b.key, json!({"text": "hijack"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = api.delete(&path, &b.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // B cannot target A's account either.
    let (s, _, v) = api.create_post(&b, "k", &acc, "hello").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, _, list) = api.get("/v1/posts", &b.key).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (_, _, mine) = api.get(&path, &a.key).await;
    assert_eq!(mine["text"], "hello", "nothing changed");
}

#[tokio::test]
async fn roles_limit_what_a_key_may_do() {
    let api = Api::new();
    let t = api.tenant(true).await;
    let acc = api.connect(&t, "linkedin", "99").await;
    let mut keys = std::collections::HashMap::new();
    for role in ["viewer", "approver", "editor"] {
        let (s, _, v) = api
            .post("/v1/api-keys", &t.key, json!({"name": role, "role": role}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        keys.insert(role, v["key"].as_str().unwrap().to_owned());
    }
    let (s, _, _) = api
        .post(
            "/v1/api-keys",
            &keys["editor"],
            json!({"name": "x", "role": "admin"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let viewer = Tenant {
        id: t.id.clone(),
        key: keys["viewer"].clone(),
        key_id: String::new(),
    };
    let (s, h, v) = api.create_post(&viewer, "k", &acc, "x").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_problem(&h, &v, s);
    let editor = Tenant {
        id: t.id.clone(),
        key: keys["editor"].clone(),
        key_id: String::new(),
    };
    let (s, _, post) = api.create_post(&editor, "k", &acc, "x").await;
    assert_eq!(
        (s, post["status"].as_str()),
        (StatusCode::CREATED, Some("pending_approval"))
    );
    let approve = format!("/v1/posts/{}/approve", post["id"].as_str().unwrap());
    let (s, _, _) = api.act(&approve, &keys["editor"]).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "editors cannot approve their own posts"
    );
    let (s, _, v) = api
        .post(&approve, &keys["approver"], json!({"note": "lgtm"}))
        .await;
    assert_eq!(
        (s, v["status"].as_str(), v["review"]["note"].as_str()),
        (StatusCode::OK, Some("scheduled"), Some("lgtm"))
    );
    let (s, _, _) = api.act(&approve, &keys["approver"]).await;
    assert_eq!(s, StatusCode::CONFLICT, "already approved");
}

#[tokio::test]
async fn posts_list_with_status_filter_and_cursor() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let acc = api.connect(&t, "facebook", "page1").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, _, p) = api
            .create_post(&t, &format!("k{i}"), &acc, &format!("post {i}"))
            .await;
        ids.push(p["id"].as_str().unwrap().to_owned());
    }
    api.delete(&format!("/v1/posts/{}", ids[1]), &t.key).await;
    let (_, _, page1) = api.get("/v1/posts?limit=2", &t.key).await;
    let got: Vec<&str> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str()], "newest first");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, _, page2) = api
        .get(&format!("/v1/posts?limit=2&cursor={cursor}"), &t.key)
        .await;
    let got: Vec<&str> = page2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let (_, _, cancelled) = api.get("/v1/posts?status=cancelled", &t.key).await;
    assert_eq!(cancelled["items"].as_array().unwrap().len(), 1);
    assert_eq!(cancelled["items"][0]["id"], ids[1]);
    assert!(cancelled["next_cursor"].is_null());
    for bad in [
        "/v1/posts?status=lost",
        "/v1/posts?limit=0",
        "/v1/posts?limit=abc",
        "/v1/posts?cursor=%%%",
        "/v1/posts?bogus=1",
    ] {
        let (s, h, v) = api.get(bad, &t.key).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_problem(&h, &v, s);
    }
}

#[tokio::test]
async fn edit_and_cancel_through_the_api() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let acc = api.connect(&t, "x", "1").await;
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, _, post) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("k"),
            Some(json!({"text": "a", "scheduled_at": later, "targets": [{"account_id": acc}]})),
        )
        .await;
    assert_eq!(
        (s, post["status"].as_str()),
        (StatusCode::CREATED, Some("scheduled")),
        "{post}"
    );
    let (s, _, _) = api
        .call("POST", "/v1/posts", Some(&t.key), Some("k2"), Some(json!({"text": "a", "scheduled_at": "2199-01-01T00:00:00Z", "targets": [{"account_id": acc}]})))
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "more than a year ahead"
    );
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    let (s, _, edited) = api.patch(&path, &t.key, json!({"text": "b"})).await;
    assert_eq!((s, edited["text"].as_str()), (StatusCode::OK, Some("b")));
    assert!(edited["version"].as_u64() > post["version"].as_u64());
    let (s, h, v) = api
        .patch(&path, &t.key, json!({"text": "x".repeat(281)}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&h, &v, s);
    let (_, _, unchanged) = api.get(&path, &t.key).await;
    assert_eq!(unchanged["text"], "b", "a refused edit changes nothing");
    let (s, _, cancelled) = api
        .call("DELETE", &path, Some(&t.key), Some("del-1"), None)
        .await;
    assert_eq!(
        (s, cancelled["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (s, h, _) = api
        .call("DELETE", &path, Some(&t.key), Some("del-1"), None)
        .await;
    assert_eq!(
        (s, h["idempotent-replayed"].to_str().unwrap()),
        (StatusCode::OK, "true"),
        "a retried cancel replays"
    );
    let (s, _, _) = api.delete(&path, &t.key).await;
    assert_eq!(s, StatusCode::CONFLICT, "already cancelled");
    let (s, _, _) = api.patch(&path, &t.key, json!({"text": "c"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _, _) = api.get("/v1/posts/not-an-id!", &t.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A tenant that forbids self-approval: the key that wrote a post cannot approve it (403),
/// another approver can; the setting is changed with PATCH, one field at a time, and audited.
/// Notes and base texts are bounded even when every target overrides the text.
#[tokio::test]
async fn four_eyes_notes_and_texts_have_their_limits() {
    let api = Api::new();
    let t = api.tenant(true).await;
    let acc = api.connect(&t, "x", "4eyes").await;
    let (s, _, v) = api
        .call(
            "PATCH",
            "/v1/tenant",
            Some(&t.key),
            None,
            Some(json!({"forbid_self_approval": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["require_approval"], &v["forbid_self_approval"]),
        (&json!(true), &json!(true)),
        "the field not sent is unchanged"
    );
    let (_, _, post) = api.create_post(&t, "k-4eyes", &acc, "mine").await;
    let approve = format!("/v1/posts/{}/approve", post["id"].as_str().unwrap());
    let (s, h, v) = api.act(&approve, &t.key).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_problem(&h, &v, s);
    let (_, _, approver) = api
        .post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "second pair", "role": "approver"}),
        )
        .await;
    let long_note = "n".repeat(1_001);
    let (s, _, _) = api
        .post(
            &approve,
            approver["key"].as_str().unwrap(),
            json!({"note": long_note}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, v) = api.act(&approve, approver["key"].as_str().unwrap()).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("scheduled"))
    );
    let (_, _, log) = api
        .get(&format!("/v1/audit?entity=tenant:{}", t.id), &t.key)
        .await;
    assert!(log.to_string().contains("tenant.settings_changed"), "{log}");

    // A base text longer than any platform takes is refused even when the target overrides it.
    let (s, _, v) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("k-long"),
            Some(json!({
                "text": "x".repeat(63_207),
                "targets": [{"account_id": acc, "text": "short"}],
            })),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}
