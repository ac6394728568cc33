//! Contacts through the API: editors write and any key reads; every problem is one 422; a
//! number is kept once per tenant (409 naming the contact); another tenant reaches nothing.

use super::*;

#[tokio::test]
async fn contacts_are_written_by_editors_checked_and_kept_per_tenant() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let b = api.tenant(false).await;
    let (_, _, viewer) = api
        .post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    let viewer = viewer["key"].as_str().unwrap().to_owned();
    let ada = json!({"phone": "+44 20 7946 0958", "name": "Ada", "tags": ["vip"],
                     "consent": {"status": "opted_in", "source": "paper"}});
    let (s, _, _) = api.post("/v1/contacts", &viewer, ada.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer reads, never writes");
    let (s, _, v) = api.post("/v1/contacts", &t.key, ada.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["phone"], "+442079460958");
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, h, v) = api.post("/v1/contacts", &t.key, ada).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_problem(&h, &v, s);

    let bad = json!({"phone": "12", "tags": ["no spaces"], "fields": {"first name": "x"},
                     "consent": {"status": "maybe", "source": "x"}});
    let (s, h, v) = api.post("/v1/contacts", &t.key, bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    let (s, _, v) = api
        .post(
            "/v1/contacts",
            &t.key,
            json!({"phone": "12", "tags": ["no spaces"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["phone", "tags[0]"], "{v}");

    let path = format!("/v1/contacts/{id}");
    let (s, _, v) = api.get(&path, &viewer).await;
    assert_eq!((s, &v["name"]), (StatusCode::OK, &json!("Ada")));
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"name": "Eve"}))),
        ("DELETE", None),
    ] {
        let (s, _, _) = api.call(method, &path, Some(&b.key), None, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} by another tenant");
    }
    let (s, _, v) = api
        .patch(
            &path,
            &t.key,
            json!({"tags": ["vip", "london"], "name": "Ada L."}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["tags"], json!(["london", "vip"]));

    for i in 0..3 {
        let (s, _, v) = api
            .post(
                "/v1/contacts",
                &t.key,
                json!({"phone": format!("+1415555267{i}")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["consent"]["status"], "unknown");
    }
    let (_, _, page) = api.get("/v1/contacts?limit=3", &t.key).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, _, rest) = api
        .get(&format!("/v1/contacts?limit=3&cursor={cursor}"), &t.key)
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    let (_, _, theirs) = api.get("/v1/contacts", &b.key).await;
    assert_eq!(theirs["items"], json!([]));

    let (s, _, _) = api.delete(&path, &viewer).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = api.delete(&path, &t.key).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = api.delete(&path, &t.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
