//! Taking published posts down end to end: each live target's post, thread parts and first
//! comment deleted on the fake platforms over HTTP, the variants marked removed and audited
//! once however often it is asked; another tenant and a viewer key cannot.

use super::*;

async fn created(stack: &Stack, t: &Tenant, body: Value) -> String {
    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/posts",
            t,
            Some(&unique("k-")),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn published(stack: &Stack, t: &Tenant, id: &str) {
    stack
        .wait_for(PUBLISH_TIMEOUT, &format!("post {id} published"), || async {
            let p = stack.read_post(t, id).await;
            (p["status"] == "published").then_some(p)
        })
        .await;
}

#[tokio::test]
async fn a_published_post_is_taken_down_everywhere_once() {
    let stack = Stack::running();
    let t = stack.tenant();
    let other = stack.tenant();
    let (user, toot, page, org) = (unique("xu"), unique("md"), unique("page"), unique("org"));
    let x = stack.connect_mapped(&t, "x", &user).await;
    let md = stack.connect_mapped(&t, "mastodon", &toot).await;
    let (bsky, did) = stack.connect_bluesky(&t, "down").await;
    let fb = stack.connect(&t, "facebook", &page, "fb-token").await;
    let li = stack.connect(&t, "linkedin", &org, "li-token").await;
    let thread = created(
        &stack,
        &t,
        json!({"text": "Going away 1/2", "thread": ["Going away 2/2"],
               "targets": [{"account_id": x}, {"account_id": md}, {"account_id": bsky}]}),
    )
    .await;
    let commented = created(
        &stack,
        &t,
        json!({"text": "Also going away", "first_comment": "and its comment",
               "targets": [{"account_id": fb}, {"account_id": li}]}),
    )
    .await;
    let later = created(
        &stack,
        &t,
        json!({"text": "Not out yet", "status": "draft",
               "targets": [{"account_id": x}]}),
    )
    .await;
    published(&stack, &t, &thread).await;
    published(&stack, &t, &commented).await;
    assert_eq!(stack.fake_posts("x", &user).await.len(), 2);

    let path = format!("/v1/posts/{thread}/unpublish");
    let (s, _, _) = stack.api(Method::POST, &path, &other, None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant's post");
    let (s, v) = stack
        .send(
            Method::POST,
            "/v1/api-keys",
            &t,
            Some(json!({"name": "watcher", "role": "viewer"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let viewer = v["key"].as_str().unwrap().to_owned();
    let (s, _, _) = stack.api(Method::POST, &path, &viewer, None, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer key");
    let (s, h, v) = stack
        .api(
            Method::POST,
            &format!("/v1/posts/{later}/unpublish"),
            &t,
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "live nowhere: {v}");
    assert!(is_problem(&h));
    assert_eq!(
        stack.fake_posts("x", &user).await.len(),
        2,
        "nothing deleted by refusals"
    );

    for (id, platforms) in [(&thread, 3), (&commented, 2)] {
        let path = format!("/v1/posts/{id}/unpublish");
        let (s, _, v) = stack.api(Method::POST, &path, &t, None, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["still_live"], json!([]), "{v}");
        let variants = v["post"]["variants"].as_array().unwrap();
        assert_eq!(variants.len(), platforms);
        assert!(variants.iter().all(|v| v["removed_at"].is_string()), "{v}");
        // Asked again: nothing left to delete, nothing audited again.
        let (s, _, again) = stack.api(Method::POST, &path, &t, None, None).await;
        assert_eq!((s, &again["still_live"]), (StatusCode::OK, &json!([])));
    }
    for (platform, account) in [
        ("x", &user),
        ("mastodon", &toot),
        ("bluesky", &did),
        ("facebook", &page),
        ("linkedin", &org),
    ] {
        let left = stack.fake_posts(platform, account).await;
        assert!(
            left.is_empty(),
            "{platform}: the post and its answers are gone: {left:?}"
        );
    }
    let (_, _, log) = stack
        .get("/v1/audit?action=post.removed&limit=50", &t)
        .await;
    assert_eq!(
        log["items"].as_array().unwrap().len(),
        5,
        "once per target: {log}"
    );
    let (_, _, theirs) = stack.get("/v1/audit?action=post.removed", &other).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_live_post_is_edited_where_its_platforms_allow_and_nowhere_else() {
    let stack = Stack::running();
    let t = stack.tenant();
    let other = stack.tenant();
    let (user, toot, page, org) = (unique("xu"), unique("md"), unique("page"), unique("org"));
    let x = stack.connect_mapped(&t, "x", &user).await;
    let md = stack.connect_mapped(&t, "mastodon", &toot).await;
    let fb = stack.connect(&t, "facebook", &page, "fb-token").await;
    let li = stack.connect(&t, "linkedin", &org, "li-token").await;
    let editable = created(
        &stack,
        &t,
        json!({"text": "Doors open at 9", "targets": [{"account_id": fb}, {"account_id": li}, {"account_id": md}]}),
    )
    .await;
    let with_x = created(
        &stack,
        &t,
        json!({"text": "Also at 9", "targets": [{"account_id": x}, {"account_id": fb}]}),
    )
    .await;
    published(&stack, &t, &editable).await;
    published(&stack, &t, &with_x).await;

    let path = format!("/v1/posts/{with_x}");
    let (s, _, v) = stack
        .api(
            Method::PATCH,
            &path,
            &t,
            None,
            Some(json!({"text": "At 10"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "X edits nothing: {v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("X does not let apps edit")
    );
    // The two posts go out in either order: compare the texts sorted.
    let texts = |posts: Vec<Value>| -> Vec<String> {
        let mut texts: Vec<String> = posts
            .iter()
            .map(|p| p["text"].as_str().unwrap().to_owned())
            .collect();
        texts.sort();
        texts
    };
    assert_eq!(
        texts(stack.fake_posts("facebook", &page).await),
        ["Also at 9", "Doors open at 9"],
        "nothing changed anywhere"
    );

    let path = format!("/v1/posts/{editable}");
    let (s, _, _) = stack
        .api(
            Method::PATCH,
            &path,
            &other,
            None,
            Some(json!({"text": "Hijacked"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant's post");
    let (s, _, v) = stack
        .api(
            Method::PATCH,
            &path,
            &t,
            None,
            Some(json!({"text": "Doors open at 10", "media": []})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "only the text of a live post: {v}");
    let (s, _, v) = stack
        .api(
            Method::PATCH,
            &path,
            &t,
            None,
            Some(json!({"text": "Doors open at 10"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["text"], "Doors open at 10");
    for (platform, account) in [("facebook", &page), ("linkedin", &org), ("mastodon", &toot)] {
        let posts = stack.fake_posts(platform, account).await;
        let post = posts.iter().find(|p| p["text"] == "Doors open at 10");
        let post = post.unwrap_or_else(|| panic!("{platform}: edited: {posts:?}"));
        assert_eq!(post["attributes"]["edits"], 1, "{platform}: once");
    }
    let (_, _, log) = stack.get("/v1/audit?action=post.edited&limit=50", &t).await;
    assert_eq!(
        log["items"].as_array().unwrap().len(),
        3,
        "once per target: {log}"
    );
}
