//! Threads and first comments end to end: the API, the dispatcher, the publisher and the fake
//! platforms over HTTP. Each follow-up goes out once, in order, answering the one before it,
//! even when the platform loses the answer to one.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

async fn create(stack: &Stack, t: &Tenant, body: Value) -> String {
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

async fn published(stack: &Stack, t: &Tenant, id: &str) -> Value {
    stack
        .wait_for(
            Duration::from_secs(90),
            &format!("post {id} published"),
            || async {
                let p = stack.read_post(t, id).await;
                (p["status"] == "published").then_some(p)
            },
        )
        .await
}

#[tokio::test]
async fn a_thread_goes_out_once_in_order_even_when_a_reply_loses_its_answer() {
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("xu");
    let account = stack.connect(&t, "x", &user, "x-token").await;
    // The platform creates the first reply, then loses its answer: Herald must look it up
    // among the post's replies and adopt it, never send it twice.
    let fault = stack
        .fault(json!({"platform": "x", "account": user, "ambiguous": true, "count": 1, "endpoints": "answer"}))
        .await;
    let id = create(
        &stack,
        &t,
        json!({"text": "A thread, 1/3", "targets": [{"account_id": account}],
               "thread": ["2/3 the middle", "3/3 the end"]}),
    )
    .await;
    let post = published(&stack, &t, &id).await;
    let on_x = stack.fake_posts("x", &user).await;
    let texts: Vec<&str> = on_x.iter().map(|p| p["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["A thread, 1/3", "2/3 the middle", "3/3 the end"]);
    let parents: Vec<&Value> = on_x.iter().map(|p| &p["parent"]).collect();
    assert_eq!(parents, [&Value::Null, &on_x[0]["id"], &on_x[1]["id"]]);
    let variant = &post["variants"][0];
    assert_eq!(variant["platform_post_id"], on_x[0]["id"]);
    assert_eq!(
        variant["follow_up_ids"],
        json!([on_x[1]["id"], on_x[2]["id"]])
    );
    assert_eq!(variant["step"], 2);
    let faults = stack.fake_get("/_admin/faults").await;
    let fired = faults["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == fault.as_str())
        .map(|f| f["fired"].clone());
    assert_eq!(
        fired,
        Some(json!(1)),
        "the reply's answer was lost: {faults}"
    );
}

#[tokio::test]
async fn a_first_comment_follows_the_post_on_facebook_and_linkedin() {
    let stack = Stack::running();
    let t = stack.tenant();
    let page = unique("page");
    let org = unique("org");
    let fb = stack.connect(&t, "facebook", &page, "fb-token").await;
    let li = stack.connect(&t, "linkedin", &org, "li-token").await;
    let id = create(
        &stack,
        &t,
        json!({"text": "Our news", "targets": [{"account_id": fb}, {"account_id": li}],
               "first_comment": "Read more: https://example.com/news"}),
    )
    .await;
    let post = published(&stack, &t, &id).await;
    for (platform, account) in [("facebook", &page), ("linkedin", &org)] {
        let on = stack.fake_posts(platform, account).await;
        assert_eq!(on.len(), 2, "{platform}: {on:?}");
        assert_eq!(on[1]["text"], "Read more: https://example.com/news");
        assert_eq!(on[1]["parent"], on[0]["id"], "{platform}");
        let variant = post["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["platform"] == platform)
            .unwrap();
        assert_eq!(variant["follow_up_ids"], json!([on[1]["id"]]), "{platform}");
    }
}

#[tokio::test]
async fn a_preview_through_the_stack_answers_per_target_and_creates_nothing() {
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("xp");
    let account = stack.connect(&t, "x", &user, "x-token").await;
    let body = json!({"text": "The post", "targets": [{"account_id": account}],
                      "thread": ["a part", "y".repeat(281)]});
    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/posts/preview",
            &t,
            Some(&unique("k-")),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], false);
    assert_eq!(v["targets"][0]["length"], 8);
    assert_eq!(v["errors"][0]["field"], "thread[1]");
    assert_eq!(v["errors"][0]["actual"], 281);
    let (s, _, list) = stack.get("/v1/posts", &t).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"], json!([]), "nothing was created");
}

/// Mastodon through the whole stack: connected with its token (Herald asks the instance who
/// it is), a video it processes before the status may carry it, a thread whose first status
/// loses its answer (found and adopted, never sent twice), each part answering the one before.
#[tokio::test]
async fn a_mastodon_thread_with_a_video_goes_out_once_in_order() {
    use herald_domain::media::samples;
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("md");
    let account = stack.connect_mapped(&t, "mastodon", &user).await;
    let video = samples::mp4(80_000);
    let media = stack
        .upload_media(&t, "video/mp4", "film.mp4", &video)
        .await;
    stack
        .fault(json!({"platform": "mastodon", "account": user, "ambiguous": true, "count": 1}))
        .await;
    let id = create(
        &stack,
        &t,
        json!({"text": "Our film, 1/2 🎬", "media": [media], "targets": [{"account_id": account}],
               "thread": ["2/2 made with @ada@example.social https://example.com/film"]}),
    )
    .await;
    let post = published(&stack, &t, &id).await;
    let statuses = stack.fake_posts("mastodon", &user).await;
    let texts: Vec<&str> = statuses
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Our film, 1/2 🎬",
            "2/2 made with @ada@example.social https://example.com/film"
        ]
    );
    assert_eq!(statuses[1]["parent"], statuses[0]["id"]);
    let [upload] = stack
        .fake_media("mastodon", &user)
        .await
        .try_into()
        .unwrap();
    assert_eq!(statuses[0]["media"], json!([upload["id"]]));
    let variant = &post["variants"][0];
    assert_eq!(variant["platform"], "mastodon");
    assert_eq!(variant["platform_post_id"], statuses[0]["id"]);
    assert_eq!(variant["follow_up_ids"], json!([statuses[1]["id"]]));
}

/// Bluesky through the whole stack: connected with an app password (Herald signs in and keeps
/// the session, under the account's DID), its access token expired before the post is due
/// (the publisher refreshes the session first), an image, and a thread whose reply loses its
/// answer (read back under the record key Herald chose, never posted twice).
#[tokio::test]
async fn a_bluesky_thread_goes_out_once_through_a_refreshed_session() {
    use herald_domain::media::samples;
    let stack = Stack::running();
    let t = stack.tenant();
    let handle = format!("{}.test", unique("bsky"));
    crate::support::secrets::remember("app_password", "app-pass-word-1234");
    let created = stack
        .fake(
            "/_admin/bluesky/accounts",
            json!({"handle": handle, "password": "app-pass-word-1234", "access_ttl_seconds": 120}),
        )
        .await;
    let did = created["did"].as_str().unwrap().to_owned();
    let (s, _, wrong) = stack
        .api(
            Method::POST,
            "/v1/accounts",
            &t,
            Some(&unique("k-")),
            Some(json!({"platform": "bluesky", "external_id": handle, "access_token": "not-the-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
    let (s, _, account) = stack
        .api(
            Method::POST,
            "/v1/accounts",
            &t,
            Some(&unique("k-")),
            Some(json!({"platform": "bluesky", "external_id": handle, "access_token": "app-pass-word-1234"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{account}");
    assert_eq!(account["external_id"], did.as_str(), "kept under its DID");
    assert_eq!(account["display_name"], handle.as_str());
    assert!(!account.to_string().contains("app-pass-word"), "{account}");
    // The session's access token stops working now; its refresh token still does.
    stack
        .fake("/_admin/bluesky/expire", json!({"account": did}))
        .await;
    let photo = samples::png(800, 600, 30_000);
    let media = stack
        .upload_media(&t, "image/png", "photo.png", &photo)
        .await;
    stack
        .fault(json!({"platform": "bluesky", "account": did, "ambiguous": true, "count": 1, "endpoints": "answer"}))
        .await;
    let id = create(
        &stack,
        &t,
        json!({"text": "Skies, 1/2", "media": [media], "targets": [{"account_id": account["id"]}],
               "thread": ["2/2 read more at https://example.com/skies"]}),
    )
    .await;
    let post = published(&stack, &t, &id).await;
    let records = stack.fake_posts("bluesky", &did).await;
    let texts: Vec<&str> = records
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["Skies, 1/2", "2/2 read more at https://example.com/skies"]
    );
    assert_eq!(records[1]["parent"], records[0]["id"]);
    assert_eq!(records[0]["media"].as_array().map(Vec::len), Some(1));
    let variant = &post["variants"][0];
    assert_eq!(variant["platform_post_id"], records[0]["id"]);
    assert_eq!(variant["follow_up_ids"], json!([records[1]["id"]]));
    // The sign-in and at least the refresh the expiry forced; none of their tokens in a log.
    let sessions = stack
        .fake_get(&format!("/_admin/bluesky/sessions?account={did}"))
        .await;
    assert!(
        sessions["sessions"].as_array().unwrap().len() >= 4,
        "{sessions}"
    );
    stack.remember_bluesky_sessions(&did).await;
}
