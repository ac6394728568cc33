//! A 2,000-recipient SMS campaign on the local stack: contacts (some never opted in, some
//! opted out before, one texting STOP to the sender while the campaign sends, answered once),
//! credits granted through the CLI, the enqueue sent twice, and the fake provider answering
//! 429s, 5xx and lost answers while the SMS sender is killed mid-batch and receipts arrive
//! duplicated and out of order. In the end the provider holds exactly one message per eligible
//! recipient and none for anyone else, the campaign completes, the ledger balances to the
//! credit, and the tenant's endpoint heard of the completion and every receipt.

use super::{grant_credits, opted_in_contact};
use crate::support::*;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

const CONTACTS: usize = 2000;

/// Whether contact `i` may be texted: every tenth never opted in, every 25th (from the fifth)
/// opted out before the campaign.
fn opted_in(i: usize) -> bool {
    !i.is_multiple_of(10) && i % 25 != 5
}

async fn ledger_totals(stack: &Stack, t: &Tenant) -> i64 {
    let mut total = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/wallet/ledger?limit=100&cursor={c}"),
            None => "/v1/wallet/ledger?limit=100".to_owned(),
        };
        let (s, _, v) = stack.get(&path, t).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for e in v["items"].as_array().unwrap() {
            let credits = e["credits"].as_i64().unwrap();
            total += match e["kind"].as_str().unwrap() {
                "top_up" | "grant" => credits,
                "debit" | "reverse" => -credits,
                _ => 0,
            };
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return total,
        }
    }
}

#[tokio::test]
async fn a_campaign_texts_each_opted_in_recipient_once_through_faults_and_a_killed_sender() {
    let stack = Stack::running();
    let t = stack.tenant();
    let other = stack.tenant();
    secrets::remember("sms_api_key", &stack.secret("herald-SmsApiKeySecret").await);
    // Faults are scoped to this test's sender id: no other test texts.
    let sender = format!("T{}", &unique("")[..10]).to_uppercase();
    for (seed, mut rule) in [
        json!({"status": 503, "rate": 0.05}),
        json!({"ambiguous": true, "rate": 0.05}),
        json!({"latency_ms": 150, "rate": 1.0}),
    ]
    .into_iter()
    .enumerate()
    {
        rule["platform"] = json!("sms");
        rule["account"] = json!(sender);
        rule["seed"] = json!(seed);
        stack.fault(rule).await;
    }

    // Contacts, eight added at a time: see `opted_in`.
    let phones: Vec<String> = (0..CONTACTS)
        .map(|i| format!("+1415555{:04}", 3000 + i))
        .collect();
    let ids: Vec<String> = futures::stream::iter(0..CONTACTS)
        .map(|i| {
            let mut body = json!({"phone": phones[i], "name": format!("Ada{i} Lovelace"),
                                  "tags": ["spring"]});
            if opted_in(i) {
                body["consent"] = json!({"status": "opted_in", "source": "web_form"});
            } else if i % 25 == 5 {
                body["consent"] = json!({"status": "opted_out", "source": "keyword:STOP"});
            }
            let (stack, t) = (&stack, &t);
            async move {
                let (s, v) = stack
                    .send(Method::POST, "/v1/contacts", t, Some(body))
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{v}");
                v["id"].as_str().unwrap().to_owned()
            }
        })
        .buffered(8)
        .collect()
        .await;
    secrets::remember("phone_number", &phones[1]);
    let undeliverable = phones[2].clone();
    stack
        .fake(
            "/_admin/sms/settings",
            json!({"mps": 40, "duplicate_rate": 0.3, "reorder_rate": 0.3, "seed": 7,
                   "receipt_delay_ms": 200, "undeliverable": [undeliverable]}),
        )
        .await;
    let grant = [
        "wallet",
        "grant",
        "--tenant",
        &t.id,
        "--credits",
        "5000",
        "--reason",
        "spring",
        "--key",
        &unique("grant-"),
    ];
    stack.cli(&grant);

    // The tenant's outbound webhook endpoint hears of the campaign and its receipts.
    let sink = unique("campaign-");
    let url = format!("{}/sinks/{sink}", stack.url("FAKE_PLATFORMS_URL"));
    let (s, v) = stack
        .send(
            Method::POST,
            "/v1/webhook-endpoints",
            &t,
            Some(json!({"url": url,
                        "event_types": ["campaign.completed", "sms.delivered", "sms.failed"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let (s, v) = stack
        .send(
            Method::POST,
            "/v1/campaigns",
            &t,
            Some(
                json!({"name": "Spring", "text": "Hi {{first_name}}, spring sale today",
                        "audience": {"tags": ["spring"]}, "sender": sender}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/campaigns/{id}");
    let eligible = (0..CONTACTS).filter(|i| opted_in(*i)).count();

    // The enqueue twice: once with a key retried, once with another key.
    let enqueue = format!("{path}/enqueue");
    let key = unique("enqueue-");
    let (s, _, first) = stack
        .api(Method::POST, &enqueue, &t, Some(&key), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let (s, _, again) = stack
        .api(Method::POST, &enqueue, &t, Some(&key), None)
        .await;
    assert_eq!((s, &again["id"]), (StatusCode::ACCEPTED, &first["id"]));
    let (s, v) = stack.send(Method::POST, &enqueue, &t, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // More contacts than the API enqueues before answering (1,000 locally): the answer is
    // at once, and a job on the SMS queue snapshots, reserves and queues the batches.
    assert_eq!(first["status"], "enqueuing", "{first}");
    assert_eq!(first["progress"]["credits_reserved"], 0);
    let enqueued = stack
        .wait_for(Duration::from_secs(120), "the enqueue job", || async {
            let (_, _, v) = stack.get(&path, &t).await;
            (v["status"] != "enqueuing").then_some(v)
        })
        .await;
    assert_eq!(enqueued["progress"]["recipients"], eligible, "{enqueued}");
    assert_eq!(enqueued["progress"]["credits_reserved"], eligible);
    let batches = enqueued["progress"]["batches"].clone();
    assert_eq!(enqueued["progress"]["batches_queued"], batches);

    // A STOP texted to the sender while it sends: the last contact of the last batch opts
    // out (through the provider's signed webhook and the webhook processor).
    let stopped = CONTACTS - 1;
    stack
        .fake(
            "/_admin/sms/inbound",
            json!({"from": phones[stopped], "to": sender, "text": " Stop "}),
        )
        .await;
    let contact = format!("/v1/contacts/{}", ids[stopped]);
    stack
        .wait_for(Duration::from_secs(30), "the STOP applied", || async {
            let (_, _, v) = stack.get(&contact, &t).await;
            (v["consent"]["status"] == "opted_out").then_some(v)
        })
        .await;
    // The other tenant cannot send as this sender.
    let (s, v) = stack
        .send(
            Method::POST,
            "/v1/campaigns",
            &other,
            Some(
                json!({"name": "Copy", "text": "Hi", "audience": {"tags": ["spring"]},
                        "sender": sender.to_lowercase()}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // Kill the sender in the middle of a batch.
    stack
        .kill_mid_run("sms-sender", true, "the sender busy with a batch")
        .await;

    let (s, _, _) = stack.get(&path, &other).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant reaches nothing");

    // The killed batch comes back after the queue's visibility timeout.
    let done = stack
        .wait_for(
            Duration::from_secs(600),
            "the campaign to complete and its receipts",
            || async {
                let (_, _, v) = stack.get(&path, &t).await;
                let p = &v["progress"];
                let receipts = p["delivered"].as_u64()? + p["undelivered"].as_u64()?;
                (v["status"] == "completed" && receipts == p["sent"].as_u64()?).then_some(v)
            },
        )
        .await;
    let p = &done["progress"];
    assert_eq!(p["sent"], eligible - 1, "{done}");
    assert_eq!(
        (p["skipped"].clone(), p["failed"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(p["undelivered"], 1);
    assert_eq!(p["credits_used"], eligible - 1);
    assert_eq!(p["credits_released"], 1);

    // The provider holds exactly one message per eligible recipient, none for the others.
    let all = stack.fake_get("/_admin/sms/messages").await;
    let mut to: HashMap<String, usize> = HashMap::new();
    for m in all["messages"].as_array().unwrap() {
        let campaign = m["client_ref"]
            .as_str()
            .is_some_and(|r| r.starts_with("hr_"));
        if m["from"] == sender.as_str() && campaign {
            *to.entry(m["to"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    for (i, phone) in phones.iter().enumerate() {
        let expected = usize::from(opted_in(i) && i != stopped);
        assert_eq!(
            to.get(phone).copied().unwrap_or(0),
            expected,
            "{phone} (contact {i})"
        );
    }
    assert_eq!(to.values().sum::<usize>(), eligible - 1);
    // The STOP was answered once, from the sender it was sent to.
    let replies = stack
        .wait_for(Duration::from_secs(240), "the STOP's reply", || async {
            let all = stack.fake_get("/_admin/sms/messages").await;
            let replies: Vec<Value> = all["messages"]
                .as_array()?
                .iter()
                .filter(|m| {
                    m["client_ref"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("hk_"))
                })
                .filter(|m| m["from"] == sender.as_str())
                .cloned()
                .collect();
            (!replies.is_empty()).then_some(replies)
        })
        .await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["to"], phones[stopped].as_str());
    assert!(
        replies[0]["body"]
            .as_str()
            .unwrap()
            .contains("unsubscribed"),
        "{replies:?}"
    );

    // The ledger balances to the credit, and nothing stays reserved.
    let (_, _, w) = stack.get("/v1/wallet", &t).await;
    let used = (eligible - 1) as i64;
    assert_eq!(
        (w["balance"].as_i64(), w["reserved"].as_i64()),
        (Some(5000 - used), Some(0))
    );
    assert_eq!(ledger_totals(&stack, &t).await, 5000 - used);

    // Announced: the completion once, and a receipt event per recipient (at least once each:
    // a receiver dedupes on `webhook-id`).
    let events = stack
        .wait_for(Duration::from_secs(180), "the outbound events", || async {
            let mut by_type: HashMap<String, HashMap<String, Value>> = HashMap::new();
            for r in stack.sink_requests(&sink).await {
                let body: Value = serde_json::from_str(r["body"].as_str()?).ok()?;
                let id = r["headers"]["webhook-id"].as_str()?.to_owned();
                by_type
                    .entry(body["type"].as_str()?.to_owned())
                    .or_default()
                    .insert(id, body["data"].clone());
            }
            let receipts = by_type.get("sms.delivered").map_or(0, HashMap::len)
                + by_type.get("sms.failed").map_or(0, HashMap::len);
            (by_type.contains_key("campaign.completed") && receipts == eligible - 1)
                .then_some(by_type)
        })
        .await;
    let completed: Vec<&Value> = events["campaign.completed"].values().collect();
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0]["campaign_id"], id.as_str());
    assert_eq!(completed[0]["sent"], eligible - 1);
    let failed: Vec<&Value> = events["sms.failed"].values().collect();
    assert_eq!(failed.len(), 1, "the undeliverable number: {failed:?}");
    assert_eq!(failed[0]["status"], "undelivered");
    assert_eq!(failed[0]["contact_id"], ids[2].as_str());
}

/// A campaign left behind: its only batch was deferred by a pause (for SQS's longest delay,
/// 15 minutes) and the pause lifted. The reconciler sees the campaign stand still (15 s
/// locally), queues the batch again, and the campaign completes within the minute, each
/// contact texted once (the deferred copy will find nothing left to send).
#[tokio::test]
async fn the_reconciler_sends_a_stuck_campaigns_batches_again() {
    let stack = Stack::running();
    let t = stack.tenant();
    let sender = format!("R{}", &unique("")[..10]).to_uppercase();
    let phones: Vec<String> = (0..3).map(|i| format!("+1415555{:04}", 8100 + i)).collect();
    for phone in &phones {
        opted_in_contact(&stack, &t, phone, "stuck").await;
    }
    grant_credits(&stack, &t, 10, "stuck");

    // Everything paused: the sender defers the batch for 15 minutes.
    let (s, _, v) = stack
        .api(
            Method::PUT,
            "/v1/crisis",
            &t,
            Some(&unique("k-")),
            Some(json!({"reason": "review"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = stack
        .send(
            Method::POST,
            "/v1/campaigns",
            &t,
            Some(json!({"name": "Stuck", "text": "Hi {{first_name}}",
                        "audience": {"tags": ["stuck"]}, "sender": sender})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let path = format!("/v1/campaigns/{}", v["id"].as_str().unwrap());
    let (s, v) = stack
        .send(Method::POST, &format!("{path}/enqueue"), &t, None)
        .await;
    assert_eq!((s, &v["status"]), (StatusCode::ACCEPTED, &json!("sending")));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, _, v) = stack.get(&path, &t).await;
    assert_eq!(v["progress"]["sent"], 0, "paused: {v}");
    let (s, _, v) = stack
        .api(Method::DELETE, "/v1/crisis", &t, Some(&unique("k-")), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Alone, about 20 s; the fake provider's rate is shared with the other campaign tests, and
    // batches waiting for it are deferred (and requeued) until it has room.
    let done = stack
        .wait_for(
            Duration::from_secs(300),
            "the reconciler's repair",
            || async {
                let (_, _, v) = stack.get(&path, &t).await;
                (v["status"] == "completed").then_some(v)
            },
        )
        .await;
    assert_eq!(done["progress"]["sent"], 3, "{done}");
    assert_eq!(done["progress"]["credits_used"], 3);
    let all = stack.fake_get("/_admin/sms/messages").await;
    let texted: Vec<&str> = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == sender.as_str())
        .filter_map(|m| m["to"].as_str())
        .collect();
    let mut sorted = texted.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, phones, "each contact once");
}

/// Quiet hours on the stack: a window that holds a Los Angeles number for the next minute or
/// two and not a Paris one (nine hours ahead). Paris is texted at once; Los Angeles only once
/// its window has ended (the sender defers the batch until then), and the campaign completes.
#[tokio::test]
async fn quiet_hours_hold_a_recipient_until_its_own_window_ends() {
    use herald_domain::campaigns::quiet::format_clock;
    use herald_domain::zone::TimeZoneName;
    let stack = Stack::running();
    let t = stack.tenant();
    let sender = format!("Q{}", &unique("")[..10]).to_uppercase();
    let (paris, la) = ("+33612348100", "+14155558199");
    for phone in [paris, la] {
        opted_in_contact(&stack, &t, phone, "quiet").await;
    }
    grant_credits(&stack, &t, 5, "quiet");

    // The window: from an hour ago in Los Angeles to the minute boundary 60 to 120 s away.
    let now = time::OffsetDateTime::now_utc();
    let local = TimeZoneName::parse("America/Los_Angeles")
        .unwrap()
        .local(now);
    let minute = u16::from(local.hour()) * 60 + u16::from(local.minute());
    let ahead: u16 = 2;
    let (start, end) = ((minute + 1440 - 60) % 1440, (minute + ahead) % 1440);
    let ends_at = now
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
        + time::Duration::minutes(i64::from(ahead));
    let (s, v) = stack
        .send(
            Method::POST,
            "/v1/campaigns",
            &t,
            Some(json!({"name": "Quiet", "text": "Hi {{first_name}}",
                        "audience": {"tags": ["quiet"]}, "sender": sender,
                        "quiet_hours": {"start": format_clock(start), "end": format_clock(end),
                                        "time_zone": "UTC"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let path = format!("/v1/campaigns/{}", v["id"].as_str().unwrap());
    let (s, v) = stack
        .send(Method::POST, &format!("{path}/enqueue"), &t, None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");

    let texted = || async {
        let all = stack.fake_get("/_admin/sms/messages").await;
        all["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["from"] == sender.as_str())
            .filter_map(|m| m["to"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    stack
        .wait_for(Duration::from_secs(60), "Paris texted", || async {
            texted().await.iter().any(|to| to == paris).then_some(())
        })
        .await;
    // Watched until just before the window ends: Los Angeles is not texted.
    let mut watched = 0;
    while time::OffsetDateTime::now_utc() < ends_at - time::Duration::seconds(2) {
        assert_eq!(texted().await, [paris], "Los Angeles is in its quiet hours");
        watched += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(watched > 0, "Paris was texted only after the window ended");
    let done = stack
        .wait_for(Duration::from_secs(300), "the window's end", || async {
            let (_, _, v) = stack.get(&path, &t).await;
            (v["status"] == "completed").then_some(v)
        })
        .await;
    assert!(time::OffsetDateTime::now_utc() >= ends_at);
    assert_eq!(done["progress"]["sent"], 2, "{done}");
    let mut all = texted().await;
    all.sort_unstable();
    assert_eq!(all, [la, paris], "each once");
}
