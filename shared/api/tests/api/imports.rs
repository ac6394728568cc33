//! Contact imports through the API: an editor creates one (a presigned upload), uploads and
//! starts it; the job works it; the progress and every bad row's reason are read back. A
//! viewer cannot import, bad requests are one 422 that stores nothing, an early start is a
//! 409, and another tenant reaches nothing.

use super::*;

impl Api {
    /// Works the queued import jobs (as the SMS sender would) until none is left.
    async fn work_imports(&self) {
        loop {
            let jobs = self.import_queue.take_jobs();
            if jobs.is_empty() {
                return;
            }
            for job in jobs {
                self.imports.work(&job).await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn an_editor_imports_contacts_and_reads_every_bad_rows_reason() {
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
    let csv = "phone,name,tags,consent,first_name\n\
               +14155550101,Ada,vip,opted_in,Ada\n\
               12,Bob,,,\n\
               4155550102,Cy,vip,opted_in,Cy\n\
               +14155550101,Ada twice,,,\n";

    let body = json!({"kind": "contacts", "size": csv.len(), "region": "US"});
    let (s, h, v) = api.post("/v1/imports", &viewer, body.clone()).await;
    assert_problem(&h, &v, StatusCode::FORBIDDEN);
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, h, v) = api
        .post(
            "/v1/imports",
            &t.key,
            json!({"kind": "pets", "size": 0, "region": "USA"}),
        )
        .await;
    assert_problem(&h, &v, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<_> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(fields, vec!["kind", "size", "region"]);
    let (_, _, list) = api.get("/v1/imports", &t.key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing stored");

    let (s, _, v) = api.post("/v1/imports", &t.key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "awaiting_upload");
    assert_eq!(v["upload"]["method"], "PUT");
    assert_eq!(v["upload"]["headers"]["content-type"], "text/csv");
    let id = v["id"].as_str().unwrap().to_owned();

    let (s, h, v) = api.act(&format!("/v1/imports/{id}/start"), &t.key).await;
    assert_problem(&h, &v, StatusCode::CONFLICT);
    assert_eq!(s, StatusCode::CONFLICT, "started before the upload");
    api.media
        .put(&format!("imports/{}/{id}", t.id), csv.to_owned());
    // Another tenant neither sees nor starts it; a viewer cannot start it.
    for path in [
        format!("/v1/imports/{id}"),
        format!("/v1/imports/{id}/issues"),
    ] {
        let (s, _, _) = api.get(&path, &b.key).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
    let (s, _, _) = api.act(&format!("/v1/imports/{id}/start"), &b.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = api.act(&format!("/v1/imports/{id}/start"), &viewer).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(api.import_queue.take_jobs().is_empty());

    let (s, _, v) = api.act(&format!("/v1/imports/{id}/start"), &t.key).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "queued");
    api.work_imports().await;
    let (_, _, v) = api.get(&format!("/v1/imports/{id}"), &viewer).await;
    assert_eq!(v["status"], "completed");
    assert_eq!(
        v["rows"],
        json!({"read": 4, "created": 2, "duplicates": 1, "invalid": 1})
    );
    let (_, _, issues) = api
        .get(&format!("/v1/imports/{id}/issues?limit=1"), &t.key)
        .await;
    assert_eq!(issues["items"][0]["row"], 2);
    assert_eq!(issues["items"][0]["outcome"], "invalid");
    assert_eq!(issues["items"][0]["problems"][0]["column"], "phone");
    let cursor = issues["next_cursor"].as_str().unwrap().to_owned();
    let (_, _, rest) = api
        .get(&format!("/v1/imports/{id}/issues?cursor={cursor}"), &t.key)
        .await;
    assert_eq!(rest["items"][0]["row"], 4);
    assert_eq!(rest["items"][0]["outcome"], "duplicate");
    assert!(
        rest["items"][0]["contact_id"]
            .as_str()
            .unwrap()
            .starts_with("con_")
    );
    assert!(rest["next_cursor"].is_null());

    let (_, _, contacts) = api.get("/v1/contacts", &t.key).await;
    let phones: Vec<_> = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["phone"].clone())
        .collect();
    assert_eq!(phones, vec!["+14155550101", "+14155550102"]);
    assert_eq!(contacts["items"][1]["fields"]["first_name"], "Cy");
    let (_, _, theirs) = api.get("/v1/contacts", &b.key).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    let (_, _, listed) = api.get("/v1/imports", &t.key).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    let (_, _, theirs) = api.get("/v1/imports", &b.key).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
}
