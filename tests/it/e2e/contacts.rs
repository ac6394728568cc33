//! Contacts on the local stack: a number normalised and kept once per tenant through
//! DynamoDB's conditional writes, consent changed, the contact erased and its opted-out number
//! suppressed; another tenant reaches none of it; no number reaches the logs (the log scan).

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_contact_is_kept_once_changed_erased_and_suppressed() {
    let stack = Stack::running();
    let t = stack.tenant();
    let other = stack.tenant();
    let phone = "+14155552671";
    secrets::remember("phone_number", phone);
    let body = json!({"phone": "(415) 555-2671", "region": "US", "name": "Ada",
                      "tags": ["vip"], "fields": {"first_name": "Ada"},
                      "consent": {"status": "opted_in", "source": "web_form"}});
    let (s, _, created) = stack
        .api(Method::POST, "/v1/contacts", &t, None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["phone"], phone);
    assert_eq!(created["consent"]["status"], "opted_in");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/contacts/{id}");

    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/contacts",
            &t,
            None,
            Some(json!({"phone": phone})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains(&id), "{v}");
    // Another tenant neither sees nor changes it, and has its own contact for the number.
    let (s, _, _) = stack.get(&path, &other).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = stack.api(Method::DELETE, &path, &other, None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = stack
        .api(
            Method::POST,
            "/v1/contacts",
            &other,
            None,
            Some(json!({"phone": phone})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, _, v) = stack
        .api(
            Method::PATCH,
            &path,
            &t,
            None,
            Some(json!({"consent": {"status": "opted_out", "source": "keyword:STOP"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["consent"]["status"], "opted_out");
    let (_, _, list) = stack.get("/v1/contacts", &t).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

    let (s, _, _) = stack.api(Method::DELETE, &path, &t, None, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = stack.get(&path, &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Added again, the number is still opted out: its suppression outlived the contact.
    let (s, _, again) = stack
        .api(Method::POST, "/v1/contacts", &t, None, Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(again["consent"]["status"], "opted_out");
    assert_eq!(again["consent"]["source"], "suppression");
}

/// A CSV of `n` opted-in contacts (and their numbers), with a bad row and a repeated number
/// after them.
fn contacts_csv(n: u32) -> (String, Vec<String>) {
    let mut csv = String::from("phone,name,consent,first_name\n");
    let mut phones = Vec::new();
    for i in 0..n {
        let phone = format!("+1415556{i:04}");
        csv.push_str(&format!("{phone},Person {i},opted_in,P{i}\n"));
        phones.push(phone);
    }
    csv.push_str("not a number,Nobody,,\n");
    csv.push_str(&format!("{},Again,,\n", phones[0]));
    (csv, phones)
}

#[tokio::test]
async fn a_csv_of_contacts_is_imported_once_through_a_presigned_upload_and_the_sms_sender() {
    let stack = Stack::running();
    let t = stack.tenant();
    let other = stack.tenant();
    let (csv, phones) = contacts_csv(250);
    secrets::remember("phone_number", &phones[7]);
    let (s, _, created) = stack
        .api(
            Method::POST,
            "/v1/imports",
            &t,
            Some(&unique("imp-")),
            Some(json!({"kind": "contacts", "size": csv.len()})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (path, start) = (
        format!("/v1/imports/{id}"),
        format!("/v1/imports/{id}/start"),
    );
    let (s, _, v) = stack.api(Method::POST, &start, &t, None, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "started before the upload: {v}");

    // The file goes straight to the bucket, as a client would send it.
    stack
        .put_upload(&created["upload"], csv.clone().into_bytes())
        .await;
    let (s, _, _) = stack.api(Method::POST, &start, &other, None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant cannot start it");

    let (s, _, v) = stack.api(Method::POST, &start, &t, None, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // 252 rows in chunks of 100, each checkpointed; the SMS sender works the job.
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
        json!({"read": 252, "created": 250, "duplicates": 1, "invalid": 1})
    );
    let (_, _, issues) = stack.get(&format!("{path}/issues"), &t).await;
    let rows: Vec<_> = issues["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["row"].clone(), i["outcome"].clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (json!(251), json!("invalid")),
            (json!(252), json!("duplicate"))
        ]
    );
    assert!(
        !issues.to_string().contains(&phones[0]),
        "why, never the number"
    );
    let (s, _, _) = stack.get(&format!("{path}/issues"), &other).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Every contact once, in file order, with its field and consent.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            Some(c) => format!("/v1/contacts?limit=100&cursor={c}"),
            None => "/v1/contacts?limit=100".to_owned(),
        };
        let (_, _, v) = stack.get(&page, &t).await;
        for c in v["items"].as_array().unwrap() {
            assert_eq!(c["consent"]["status"], "opted_in");
            seen.push(c["phone"].as_str().unwrap().to_owned());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, phones);
    let (_, _, theirs) = stack.get("/v1/contacts", &other).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    // Started again once done: nothing happens.
    let (s, _, v) = stack.api(Method::POST, &start, &t, None, None).await;
    assert_eq!(
        (s, &v["rows"]["created"]),
        (StatusCode::ACCEPTED, &json!(250))
    );
}

#[tokio::test]
async fn stop_start_and_help_texted_to_a_tenants_sender_are_applied_and_answered_once_each() {
    let stack = Stack::running();
    let t = stack.tenant();
    let sender = format!("K{}", &unique("")[..10]).to_uppercase();
    let phone = "+14155558321";
    secrets::remember("phone_number", phone);
    let help = "Acme Coffee: text STOP to leave, or call us on the number on your card.";
    let (s, _, v) = stack
        .api(
            Method::PATCH,
            "/v1/tenant",
            &t,
            None,
            Some(json!({"sms_help_text": help})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _, c) = stack
        .api(
            Method::POST,
            "/v1/contacts",
            &t,
            None,
            Some(json!({"phone": phone, "tags": ["kw"],
                        "consent": {"status": "opted_in", "source": "web_form"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let contact = format!("/v1/contacts/{}", c["id"].as_str().unwrap());
    // The sender id becomes the tenant's with its first campaign.
    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/campaigns",
            &t,
            None,
            Some(
                json!({"name": "Keywords", "text": "Hi", "audience": {"tags": ["kw"]},
                        "sender": sender}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let consent = |status: &'static str| {
        let (stack, t, contact) = (&stack, &t, contact.clone());
        async move {
            stack
                .wait_for(Duration::from_secs(60), status, || async {
                    let (_, _, v) = stack.get(&contact, t).await;
                    (v["consent"]["status"] == status).then_some(v)
                })
                .await
        }
    };
    let inbound = |text: &'static str| {
        let (stack, sender) = (&stack, sender.clone());
        async move {
            stack
                .fake(
                    "/_admin/sms/inbound",
                    json!({"from": phone, "to": sender, "text": text}),
                )
                .await;
        }
    };
    inbound(" stop ").await;
    let out = consent("opted_out").await;
    assert_eq!(out["consent"]["source"], "keyword:STOP");
    inbound("Unstop").await;
    consent("opted_in").await;
    inbound("HELP").await;

    // Three replies, one per keyword, from the sender to the number.
    let replies = stack
        .wait_for(Duration::from_secs(120), "three replies", || async {
            let all = stack.fake_get("/_admin/sms/messages").await;
            let replies: Vec<String> = all["messages"]
                .as_array()?
                .iter()
                .filter(|m| m["from"] == sender.as_str() && m["to"] == phone)
                .filter_map(|m| m["body"].as_str().map(str::to_owned))
                .collect();
            (replies.len() >= 3).then_some(replies)
        })
        .await;
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert!(
        replies.iter().any(|r| r.contains("unsubscribed")),
        "{replies:?}"
    );
    assert!(
        replies.iter().any(|r| r.contains("subscribed again")),
        "{replies:?}"
    );
    assert!(replies.iter().any(|r| r == help), "{replies:?}");
}
