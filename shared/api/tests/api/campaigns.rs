//! Campaigns through the API: editors create, enqueue and cancel; any key reads and
//! estimates; every problem is one 422; a shortfall is a 402 that reserves nothing; the
//! enqueue happens once; another tenant reaches nothing.

use super::*;
use herald_domain::wallet::{Change, LedgerKey, WalletStore};

async fn grant(api: &Api, t: &Tenant, credits: i64) {
    let tenant = herald_domain::ids::TenantId(t.id.clone());
    api.wallets
        .apply(
            &tenant,
            &LedgerKey::grant(&format!("g{credits}")),
            &Change::Grant {
                operator: "operator:test".into(),
                reason: "test".into(),
                credits,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
}

async fn contact(api: &Api, t: &Tenant, phone: &str, name: &str, opted_in: bool) {
    let mut body = json!({"phone": phone, "name": name, "tags": ["vip"]});
    if opted_in {
        body["consent"] = json!({"status": "opted_in", "source": "web_form"});
    }
    let (s, _, v) = api.post("/v1/contacts", &t.key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn a_campaign_is_estimated_enqueued_once_and_guarded_from_others() {
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
    contact(&api, &t, "+14155550101", "Ada Lovelace", true).await;
    contact(&api, &t, "+14155550102", "Жанна", true).await;
    contact(&api, &t, "+14155550103", "Bob", false).await;

    let body = json!({"name": "Winter sale", "text": "Hi {{first_name}}, 20% off today",
                      "audience": {"tags": ["vip"]}, "sender": "HERALD"});
    let (s, _, _) = api.post("/v1/campaigns", &viewer, body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer reads, never writes");
    let (s, _, v) = api.post("/v1/campaigns", &t.key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "draft");
    let id = v["id"].as_str().unwrap().to_owned();

    let bad = json!({"name": "", "text": "Hi {{First}}", "audience": {"tags": ["a"], "contacts": ["con_1"]},
                     "sender": "not a valid sender id"});
    let (s, h, v) = api.post("/v1/campaigns", &t.key, bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "text", "audience", "sender"], "{v}");

    let estimate = format!("/v1/campaigns/{id}/estimate");
    let (s, _, v) = api.post(&estimate, &viewer, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Ada: GSM-7, one segment; Жанна: UCS-2 (31 units), one segment; Bob never opted in.
    assert_eq!(v["recipients"], 2);
    assert_eq!(v["segments"], 2);
    assert_eq!(v["credits"], 2);
    assert_eq!(v["encodings"], json!({"gsm7": 1, "ucs2": 1}));
    assert_eq!(v["skipped"], json!({"consent unknown": 1}));
    assert_eq!(
        (v["available"].clone(), v["shortfall"].clone()),
        (json!(0), json!(2))
    );

    let enqueue = format!("/v1/campaigns/{id}/enqueue");
    let (s, h, v) = api.post(&enqueue, &t.key, json!({})).await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
    assert_problem(&h, &v, s);
    assert!(v["detail"].as_str().unwrap().contains("2 short"), "{v}");
    let (_, _, w) = api.get("/v1/wallet", &t.key).await;
    assert_eq!(w["reserved"], 0, "nothing reserved");
    assert!(api.sms_queue.batches().is_empty());

    grant(&api, &t, 10).await;
    for (key, status) in [
        (&viewer, StatusCode::FORBIDDEN),
        (&b.key, StatusCode::NOT_FOUND),
    ] {
        let (s, _, _) = api.post(&enqueue, key, json!({})).await;
        assert_eq!(s, status);
    }
    let (s, _, v) = api.post(&enqueue, &t.key, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "sending");
    assert_eq!(v["progress"]["recipients"], 2);
    assert_eq!(v["progress"]["credits_reserved"], 2);
    let (s, _, _) = api.post(&enqueue, &t.key, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "a second enqueue answers what is");
    assert_eq!(api.sms_queue.batches().len(), 1, "queued once");
    let (_, _, w) = api.get("/v1/wallet", &t.key).await;
    assert_eq!(
        (w["balance"].clone(), w["reserved"].clone()),
        (json!(8), json!(2))
    );

    let path = format!("/v1/campaigns/{id}");
    for (method, p) in [
        ("GET", path.clone()),
        ("POST", format!("{path}/estimate")),
        ("POST", format!("{path}/cancel")),
    ] {
        let (s, _, _) = api
            .call(method, &p, Some(&b.key), None, Some(json!({})))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {p} by another tenant");
    }
    let (_, _, list) = api.get("/v1/campaigns", &b.key).await;
    assert_eq!(list["items"], json!([]), "another tenant lists none");
    // Nor may it send as this tenant's sender id (replies to it are this tenant's).
    let copy =
        json!({"name": "Copy", "text": "Hi", "audience": {"tags": ["vip"]}, "sender": "Herald"});
    let (s, h, v) = api.post("/v1/campaigns", &b.key, copy).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_problem(&h, &v, s);

    let (s, _, v) = api.post(&format!("{path}/cancel"), &t.key, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["progress"]["credits_released"], 2);
    let (_, _, w) = api.get("/v1/wallet", &t.key).await;
    assert_eq!(
        (w["balance"].clone(), w["reserved"].clone()),
        (json!(10), json!(0))
    );
    let (s, _, _) = api.post(&enqueue, &t.key, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "a cancelled campaign is not sent");

    let (s, _, v) = api.get("/v1/campaigns", &viewer).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["id"], id.as_str());
}

#[tokio::test]
async fn where_the_tenant_requires_approval_a_campaign_is_enqueued_only_once_approved() {
    let api = Api::new();
    let t = api.tenant(true).await;
    let b = api.tenant(false).await;
    let (s, _, _) = api
        .patch("/v1/tenant", &t.key, json!({"forbid_self_approval": true}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut keys = Vec::new();
    for role in ["editor", "approver"] {
        let (_, _, k) = api
            .post("/v1/api-keys", &t.key, json!({"name": role, "role": role}))
            .await;
        keys.push(k["key"].as_str().unwrap().to_owned());
    }
    let (editor, approver) = (keys[0].clone(), keys[1].clone());
    contact(&api, &t, "+14155550101", "Ada Lovelace", true).await;
    grant(&api, &t, 10).await;
    let body = json!({"name": "Winter sale", "text": "Hi {{first_name}}",
                      "audience": {"tags": ["vip"]}, "sender": "HERALD"});
    let (s, _, c) = api.post("/v1/campaigns", &t.key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap();
    assert!(c.get("approval").is_none());
    let (enqueue, approve) = (
        format!("/v1/campaigns/{id}/enqueue"),
        format!("/v1/campaigns/{id}/approve"),
    );

    let (s, h, v) = api.act(&enqueue, &t.key).await;
    assert_problem(&h, &v, StatusCode::CONFLICT);
    assert!(v["detail"].as_str().unwrap().contains("approval"), "{v}");
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _, _) = api.act(&approve, &editor).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an editor cannot approve");
    let (s, h, v) = api.act(&approve, &t.key).await;
    assert_problem(&h, &v, StatusCode::FORBIDDEN);
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "four eyes: not the key that created it"
    );
    let (s, _, _) = api.act(&approve, &b.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant reaches nothing");
    let (_, _, still) = api.get(&format!("/v1/campaigns/{id}"), &t.key).await;
    assert!(still.get("approval").is_none());
    assert!(api.sms_queue.batches().is_empty());

    let (s, _, v) = api.act(&approve, &approver).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "draft");
    assert!(v["approval"]["by"].as_str().unwrap().starts_with("key_"));
    let (s, _, _) = api.act(&enqueue, &approver).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "an approver approves, never sends"
    );
    let (s, _, v) = api.act(&enqueue, &editor).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "sending");
    assert_eq!(api.sms_queue.batches().len(), 1);
}

#[tokio::test]
async fn quiet_hours_are_kept_in_the_tenants_zone_unless_the_campaign_names_one() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let b = api.tenant(false).await;
    let (s, _, _) = api
        .patch("/v1/tenant", &t.key, json!({"time_zone": "Europe/Paris"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let campaign = |sender: &str, quiet: serde_json::Value| {
        json!({"name": "Night owls", "text": "Hi", "audience": {"tags": ["vip"]},
               "sender": sender, "quiet_hours": quiet})
    };

    let (s, _, v) = api
        .post(
            "/v1/campaigns",
            &t.key,
            campaign("PARIS", json!({"start": "21:00", "end": "08:00"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["quiet_hours"],
        json!({"start": "21:00", "end": "08:00", "time_zone": "Europe/Paris"})
    );
    let id = v["id"].as_str().unwrap().to_owned();
    let (_, _, read) = api.get(&format!("/v1/campaigns/{id}"), &t.key).await;
    assert_eq!(read["quiet_hours"], v["quiet_hours"]);
    let (s, _, _) = api.get(&format!("/v1/campaigns/{id}"), &b.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant reaches nothing");

    let quiet = json!({"start": "22:30", "end": "07:00", "time_zone": "america/new_york"});
    let (s, _, v) = api
        .post("/v1/campaigns", &t.key, campaign("NYC", quiet))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["quiet_hours"]["time_zone"], "America/New_York");

    // Every problem at once, nothing stored (the sender id is not taken).
    let bad = json!({"start": "9pm", "end": "24:00", "time_zone": "Mars/Olympus"});
    let (s, h, v) = api
        .post("/v1/campaigns", &t.key, campaign("OWLS", bad))
        .await;
    assert_problem(&h, &v, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "quiet_hours.start",
            "quiet_hours.end",
            "quiet_hours.time_zone"
        ],
        "{v}"
    );
    let same = json!({"start": "08:00", "end": "08:00"});
    let (s, _, _) = api
        .post("/v1/campaigns", &t.key, campaign("OWLS", same))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, _, list) = api.get("/v1/campaigns", &t.key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let (s, _, v) = api
        .post(
            "/v1/campaigns",
            &b.key,
            campaign("OWLS", json!({"start": "21:00", "end": "08:00"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "a refused sender id stays free: {v}"
    );
    assert_eq!(
        v["quiet_hours"]["time_zone"], "UTC",
        "the other tenant's own zone"
    );
}

#[tokio::test]
async fn an_enqueue_that_takes_the_balance_under_the_tenants_threshold_announces_it_once() {
    use herald_domain::outbound::EventType;
    let api = Api::new();
    let t = api.tenant(false).await;
    let b = api.tenant(false).await;
    let (_, _, editor) = api
        .post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "e", "role": "editor"}),
        )
        .await;
    let editor = editor["key"].as_str().unwrap().to_owned();
    let set = |credits: serde_json::Value| json!({"low_balance_credits": credits});
    let (s, _, _) = api.patch("/v1/tenant", &editor, set(json!(5))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an admin's setting");
    for bad in [json!(-1), json!(1_000_000_001), json!("5")] {
        let (s, h, v) = api.patch("/v1/tenant", &t.key, set(bad.clone())).await;
        assert_problem(&h, &v, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
    let (_, _, v) = api.get("/v1/tenant", &t.key).await;
    assert_eq!(
        v["low_balance_credits"],
        Value::Null,
        "refusals changed nothing"
    );
    let (s, _, v) = api.patch("/v1/tenant", &t.key, set(json!(9))).await;
    assert_eq!(
        (s, &v["low_balance_credits"]),
        (StatusCode::OK, &json!(9)),
        "{v}"
    );

    grant(&api, &t, 10).await;
    grant(&api, &b, 10).await;
    for (tenant, phone) in [
        (&t, "+14155550101"),
        (&t, "+14155550102"),
        (&b, "+14155550103"),
    ] {
        contact(&api, tenant, phone, "Ada", true).await;
    }
    for (tenant, sender) in [(&t, "HERALD"), (&b, "OTHER")] {
        let body = json!({"name": "Low", "text": "Hi", "audience": {"tags": ["vip"]},
                          "sender": sender});
        let (_, _, c) = api.post("/v1/campaigns", &tenant.key, body).await;
        let enqueue = format!("/v1/campaigns/{}/enqueue", c["id"].as_str().unwrap());
        let (s, _, v) = api.act(&enqueue, &tenant.key).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let (s, _, _) = api.act(&enqueue, &tenant.key).await;
        assert_eq!(s, StatusCode::ACCEPTED, "enqueued twice, reserved once");
    }
    let events = api.announced.all();
    assert_eq!(
        events.len(),
        1,
        "only the tenant with a threshold: {events:?}"
    );
    assert_eq!(events[0].event_type, EventType::WalletLowBalance);
    assert_eq!(events[0].tenant_id.as_str(), t.id);
    assert_eq!(
        (&events[0].data["balance"], &events[0].data["threshold"]),
        (&json!(8), &json!(9))
    );

    let (s, _, v) = api.patch("/v1/tenant", &t.key, set(json!(0))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v.get("low_balance_credits").is_none_or(Value::is_null),
        "{v}"
    );
}
