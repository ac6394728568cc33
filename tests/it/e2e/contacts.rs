//! Contacts on the local stack: a number normalised and kept once per tenant through
//! DynamoDB's conditional writes, consent changed, the contact erased and its opted-out number
//! suppressed; another tenant reaches none of it; no number reaches the logs (the log scan).

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

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
