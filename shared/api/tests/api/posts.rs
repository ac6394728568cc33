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

const POEM: &str = "故人西辞黄鹤楼，烟花三月下扬州。孤帆远影碧空尽，唯见长江天际流。朱雀桥边野草花，乌衣巷口夕阳斜。旧时王谢堂前燕，飞入寻常百姓家。朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。泪湿罗巾梦不成，夜深前殿按歌声。红颜未老恩先断，斜倚薰笼坐到明。独在异乡为异客，每逢佳节倍思亲。遥知兄弟登高处，遍插茱萸少一人。";
const FAMILY: &str = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";

/// `POST /v1/posts` with each `(account, own text)` as a target.
async fn post_texts(
    api: &Api,
    t: &Tenant,
    key: &str,
    targets: &[(&str, &str)],
) -> (StatusCode, Value) {
    let targets: Vec<Value> = targets
        .iter()
        .map(|(acc, text)| json!({"account_id": acc, "text": text}))
        .collect();
    let body = json!({"text": "base", "targets": targets});
    let (s, _, v) = api
        .call("POST", "/v1/posts", Some(&t.key), Some(key), Some(body))
        .await;
    (s, v)
}

/// The text problems of a 422, as `(field, platform, rule, limit, actual)`.
fn text_errors(v: &Value) -> Vec<(String, String, String, Value, Value)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (
                s("field"),
                s("platform"),
                s("rule"),
                e["limit"].clone(),
                e["actual"].clone(),
            )
        })
        .collect()
}

fn weighted(field: &str, actual: u64) -> (String, String, String, Value, Value) {
    (
        field.into(),
        "x".into(),
        "weighted_length".into(),
        json!(280),
        json!(actual),
    )
}

/// X counts as twitter-text does (CJK 2, URLs 23, an emoji sequence 2); LinkedIn counts UTF-16.
#[tokio::test]
async fn each_platform_counts_text_its_own_way() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let x = api.connect(&t, "x", "tx").await;
    let linkedin = api.connect(&t, "linkedin", "tl").await;
    assert_eq!(POEM.chars().count(), 160);

    let (s, v) = post_texts(&api, &t, "cjk-x", &[(&x, POEM)]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(text_errors(&v), [weighted("targets[0].text", 320)]);
    let (s, v) = post_texts(&api, &t, "cjk-li", &[(&linkedin, POEM)]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Ten long URLs and some words: 423 characters, 253 weighted.
    let urls = (0..10)
        .map(|i| format!("https://www.example.com/articles/{i:02}/full"))
        .collect::<Vec<_>>()
        .join(" ");
    let text = format!("{urls} read them all");
    assert!(text.chars().count() > 280);
    let (s, v) = post_texts(&api, &t, "urls", &[(&x, &text)]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // A family emoji is seven code points (eleven UTF-16 units) and counts 2.
    let fits = format!("{}{FAMILY}", "a".repeat(278));
    let (s, v) = post_texts(&api, &t, "family-fits", &[(&x, &fits)]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let over = format!("{}{FAMILY}", "a".repeat(279));
    let (s, v) = post_texts(&api, &t, "family-over", &[(&x, &over)]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(text_errors(&v), [weighted("targets[0].text", 281)]);
}

/// Every target's text problem comes back in one 422, each naming its field and platform.
#[tokio::test]
async fn one_refusal_lists_every_bad_target() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let x = api.connect(&t, "x", "bx").await;
    let linkedin = api.connect(&t, "linkedin", "bl").await;
    let facebook = api.connect(&t, "facebook", "bf").await;
    let long = "y".repeat(3_001);
    let targets = [
        (x.as_str(), "z".repeat(281)),
        (linkedin.as_str(), long.clone()),
        (facebook.as_str(), long),
    ];
    let targets: Vec<(&str, &str)> = targets.iter().map(|(a, t)| (*a, t.as_str())).collect();
    let (s, v) = post_texts(&api, &t, "two-bad", &targets).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        text_errors(&v),
        [
            weighted("targets[0].text", 281),
            (
                "targets[1].text".into(),
                "linkedin".into(),
                "length".into(),
                json!(3_000),
                json!(3_001)
            ),
        ],
        "Facebook takes 3,001 characters"
    );
    assert!(api.store.all_posts().is_empty());

    // The post's own text, shared by targets, is named once per platform that refuses it.
    let body = json!({"text": POEM, "targets": [{"account_id": x}, {"account_id": linkedin}]});
    let (s, _, v) = api
        .call("POST", "/v1/posts", Some(&t.key), Some("base"), Some(body))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(text_errors(&v), [weighted("text", 320)]);
}

/// An edit meets the same rules: new text is measured on every target's platform.
#[tokio::test]
async fn edits_are_held_to_the_same_text_rules() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let x = api.connect(&t, "x", "ex").await;
    let linkedin = api.connect(&t, "linkedin", "el").await;
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({"text": "hello", "scheduled_at": later, "targets": [{"account_id": x}, {"account_id": linkedin}]});
    let (s, _, post) = api
        .call("POST", "/v1/posts", Some(&t.key), Some("e"), Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());

    let (s, h, v) = api.patch(&path, &t.key, json!({"text": POEM})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    assert_eq!(text_errors(&v), [weighted("text", 320)]);

    let edit = json!({"targets": [
        {"account_id": x, "text": format!("{}{FAMILY}", "a".repeat(279))},
        {"account_id": linkedin, "text": "b".repeat(3_001)},
    ]});
    let (s, _, v) = api.patch(&path, &t.key, edit).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        text_errors(&v),
        [
            weighted("targets[0].text", 281),
            (
                "targets[1].text".into(),
                "linkedin".into(),
                "length".into(),
                json!(3_000),
                json!(3_001)
            ),
        ]
    );
    let (_, _, unchanged) = api.get(&path, &t.key).await;
    assert_eq!(unchanged["text"], "hello", "a refused edit changes nothing");

    let edit = json!({"targets": [{"account_id": x, "text": "short"}, {"account_id": linkedin, "text": POEM}]});
    let (s, _, v) = api.patch(&path, &t.key, edit).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
