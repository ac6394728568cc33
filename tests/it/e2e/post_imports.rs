//! A JSON lines file of posts imported through a presigned upload and the SMS sender's import
//! jobs: each good row a post (one of them a thread that then publishes once, in order,
//! through the fake X), each bad row reported with why; another tenant's accounts cannot be
//! spent through it, and a viewer key cannot import.

use super::*;

#[tokio::test]
async fn a_file_of_posts_is_imported_once_and_its_posts_publish_once() {
    let stack = Stack::running();
    let t = stack.tenant();
    let other = stack.tenant();
    let user = unique("xu");
    let account = stack.connect(&t, "x", &user, "x-token").await;
    let theirs = stack.connect(&other, "x", &unique("xu"), "x-token").await;
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let lines = [
        json!({"text": "Imported 1/2", "targets": [{"account_id": account}], "thread": ["Imported 2/2"]}).to_string(),
        json!({"text": "Imported for later", "targets": [{"account_id": account}], "scheduled_at": later}).to_string(),
        json!({"text": "Spending theirs", "targets": [{"account_id": theirs}]}).to_string(),
        "{\"text\": \"half a line".to_owned(),
    ];
    let body = lines.join("\n") + "\n";

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
    let request = json!({"kind": "posts", "format": "jsonl", "size": body.len()});
    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/imports",
            &viewer,
            None,
            Some(request.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer cannot import: {v}");
    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/imports",
            &t,
            None,
            Some(json!({"kind": "posts", "format": "jsonl", "size": 10, "region": "GB"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    let (s, _, created) = stack
        .api(
            Method::POST,
            "/v1/imports",
            &t,
            Some(&unique("imp-")),
            Some(request),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["format"], "jsonl");
    let upload = &created["upload"];
    assert_eq!(upload["headers"]["content-type"], "application/x-ndjson");
    stack.put_upload(upload, body.into_bytes()).await;

    let id = created["id"].as_str().unwrap().to_owned();
    let (path, start) = (
        format!("/v1/imports/{id}"),
        format!("/v1/imports/{id}/start"),
    );
    let (s, _, _) = stack.api(Method::POST, &start, &other, None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant cannot start it");
    let (s, _, v) = stack.api(Method::POST, &start, &t, None, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let done = stack
        .wait_for(
            // Import jobs share the SMS sender with other tests' campaign loads.
            Duration::from_secs(300),
            "the import to complete",
            || async {
                let v = stack.get(&path, &t).await.2;
                (v["status"] == "completed" || v["status"] == "failed").then_some(v)
            },
        )
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["rows"],
        json!({"read": 4, "created": 2, "duplicates": 0, "invalid": 2})
    );
    let (_, _, issues) = stack.get(&format!("{path}/issues"), &t).await;
    assert_eq!(issues["items"].as_array().unwrap().len(), 2, "{issues}");
    assert_eq!(issues["items"][0]["row"], 3);
    assert_eq!(
        issues["items"][0]["problems"][0]["column"],
        "targets[0].account_id"
    );
    assert_eq!(issues["items"][1]["row"], 4);
    assert!(
        !issues.to_string().contains("half a line"),
        "why, never the line"
    );

    // The thread publishes once, in order; the later post waits; the other tenant has nothing.
    let (_, _, list) = stack.get("/v1/posts?limit=50", &t).await;
    let posts = list["items"].as_array().unwrap();
    assert_eq!(posts.len(), 2, "{list}");
    let now_post = posts.iter().find(|p| p["text"] == "Imported 1/2").unwrap();
    let later_post = posts
        .iter()
        .find(|p| p["text"] == "Imported for later")
        .unwrap();
    assert_eq!(later_post["status"], "scheduled");
    let now_id = now_post["id"].as_str().unwrap().to_owned();
    stack
        .wait_for(
            Duration::from_secs(90),
            "the imported thread to publish",
            || async {
                let p = stack.read_post(&t, &now_id).await;
                (p["status"] == "published").then_some(p)
            },
        )
        .await;
    let on_x = stack.fake_posts("x", &user).await;
    let texts: Vec<&str> = on_x.iter().map(|p| p["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Imported 1/2", "Imported 2/2"]);
    let (_, _, mine) = stack.get("/v1/posts", &other).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 0);
}
