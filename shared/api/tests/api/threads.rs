//! Threads (X) and first comments (Facebook, LinkedIn) through the API: shown on the post,
//! checked as each platform counts, refused where a platform has none, and hidden from other
//! tenants.

use super::*;

async fn create(api: &Api, t: &Tenant, key: &str, body: Value) -> Answer {
    api.call("POST", "/v1/posts", Some(&t.key), Some(key), Some(body))
        .await
}

fn fields(v: &Value) -> Vec<&str> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_thread_and_a_first_comment_are_part_of_the_post() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let x = api.connect(&t, "x", "tx").await;
    let fb = api.connect(&t, "facebook", "tf").await;
    let li = api.connect(&t, "linkedin", "tl").await;
    let body = json!({"text": "1/3 a thread", "targets": [{"account_id": x}],
                      "thread": ["2/3 more", "3/3 the end"]});
    let (s, _, v) = create(&api, &t, "thread", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["thread"], json!(["2/3 more", "3/3 the end"]));
    assert_eq!(v["first_comment"], Value::Null);
    assert_eq!(v["variants"][0]["step"], 0);
    assert_eq!(v["variants"][0]["follow_up_ids"], json!([]));
    let path = format!("/v1/posts/{}", v["id"].as_str().unwrap());
    let (_, _, got) = api.get(&path, &t.key).await;
    assert_eq!(got["thread"], v["thread"]);

    let body = json!({"text": "news", "targets": [{"account_id": fb}, {"account_id": li}],
                      "first_comment": "link in the comments: https://example.com"});
    let (s, _, v) = create(&api, &t, "comment", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["first_comment"],
        "link in the comments: https://example.com"
    );
    // An edit replaces both: `"thread": []` alone drops the first comment.
    let path = format!("/v1/posts/{}", v["id"].as_str().unwrap());
    let (s, _, edited) = api.patch(&path, &t.key, json!({"thread": []})).await;
    assert_eq!(s, StatusCode::OK, "{edited}");
    assert_eq!(edited["first_comment"], Value::Null);
    let (s, _, edited) = api
        .patch(&path, &t.key, json!({"first_comment": "again"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{edited}");
    assert_eq!(edited["first_comment"], "again");
}

#[tokio::test]
async fn follow_ups_are_refused_where_their_platform_has_none_and_nothing_is_stored() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let x = api.connect(&t, "x", "rx").await;
    let li = api.connect(&t, "linkedin", "rl").await;
    let cases = [
        (
            json!({"text": "a", "targets": [{"account_id": x}, {"account_id": li}], "thread": ["b"]}),
            vec!["thread"],
        ),
        (
            json!({"text": "a", "targets": [{"account_id": x}], "first_comment": "c"}),
            vec!["first_comment"],
        ),
        (
            json!({"text": "a", "targets": [{"account_id": x}], "thread": ["ok", "é".repeat(300), " "]}),
            vec!["thread[1]", "thread[2]"],
        ),
        (
            json!({"text": "a", "targets": [{"account_id": li}], "first_comment": "c".repeat(1_251)}),
            vec!["first_comment"],
        ),
    ];
    for (i, (body, expected)) in cases.into_iter().enumerate() {
        let (s, h, v) = create(&api, &t, &format!("bad-{i}"), body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_problem(&h, &v, s);
        assert_eq!(fields(&v), expected, "{v}");
    }
    // Past the schema's limit: 25 parts.
    let parts: Vec<String> = (0..25).map(|i| format!("part {i}")).collect();
    let body = json!({"text": "a", "targets": [{"account_id": x}], "thread": parts});
    let (s, h, v) = create(&api, &t, "too-many", body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    assert!(api.store.all_posts().is_empty(), "nothing was stored");
}

#[tokio::test]
async fn another_tenant_or_a_viewer_cannot_read_or_change_a_thread() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let b = api.tenant(false).await;
    let x = api.connect(&a, "x", "hx").await;
    let body = json!({"text": "mine", "targets": [{"account_id": x}], "thread": ["secret plan"]});
    let (s, _, v) = create(&api, &a, "a-thread", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let path = format!("/v1/posts/{}", v["id"].as_str().unwrap());
    let (s, _, _) = api.get(&path, &b.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = api
        .patch(&path, &b.key, json!({"thread": ["hijacked"]}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, viewer) = api
        .post(
            "/v1/api-keys",
            &a.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let viewer = viewer["key"].as_str().unwrap();
    let (s, _, _) = api
        .patch(&path, viewer, json!({"thread": ["hijacked"]}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, _, got) = api.get(&path, &a.key).await;
    assert_eq!(got["thread"], json!(["secret plan"]), "nothing changed");
}
