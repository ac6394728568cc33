//! The wallet on the local stack: an operator's grant through the CLI (once per key), and a
//! billing provider's signed events through `/webhooks/billing` and the webhook processor: a
//! payment tops up the tenant its metadata names (once, however often it is delivered), a
//! refund reverses it; another tenant's wallet is untouched.

use super::{grant_credits, opted_in_contact};
use crate::support::*;
use hmac::Mac;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// Posts a Stripe-style event signed with the deployment's billing secret; its id.
async fn bill(stack: &Stack, kind: &str, object: Value) -> String {
    let secret = stack.secret("herald-BillingWebhookSecret").await;
    let id = unique("evt_");
    let body = json!({"id": id, "type": kind, "data": {"object": object}}).to_string();
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let status = stack
        .http
        .post(format!("{}/webhooks/billing", stack.url("HERALD_API_URL")))
        .header("Stripe-Signature", format!("t={ts},v1={signature}"))
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::OK);
    stack.await_kept("billing", &id).await;
    id
}

async fn balance(stack: &Stack, t: &Tenant) -> i64 {
    let (s, _, v) = stack.get("/v1/wallet", t).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{v}");
    v["balance"].as_i64().unwrap()
}

#[tokio::test]
async fn grants_and_billing_events_move_credits_once() {
    let stack = Stack::running();
    let t = stack.tenant();
    let other = stack.tenant();
    let key = unique("grant-");
    let grant = [
        "wallet",
        "grant",
        "--tenant",
        &t.id,
        "--credits",
        "5",
        "--reason",
        "welcome",
        "--key",
        &key,
    ];
    assert_eq!(stack.cli(&grant)[0]["replay"], false);
    assert_eq!(stack.cli(&grant)[0]["replay"], true, "one grant per key");
    assert_eq!(balance(&stack, &t).await, 5);

    // The local stack prices 10.00 USD at 100 credits (CreditPrices).
    let payment = unique("pi_");
    let paid = json!({"id": payment, "amount_received": 1000, "currency": "usd",
                      "metadata": {"herald_tenant": t.id}});
    bill(&stack, "payment_intent.succeeded", paid.clone()).await;
    assert_eq!(balance(&stack, &t).await, 105);
    // The provider sends the payment again (a new event id): no second top-up.
    bill(&stack, "payment_intent.succeeded", paid).await;
    assert_eq!(balance(&stack, &t).await, 105);
    // A payment naming no tenant of this deployment credits nobody.
    bill(
        &stack,
        "payment_intent.succeeded",
        json!({"id": unique("pi_"), "amount_received": 1000, "currency": "usd",
               "metadata": {"herald_tenant": "ten_nobody"}}),
    )
    .await;
    assert_eq!(balance(&stack, &other).await, 0, "another tenant's wallet");

    bill(
        &stack,
        "charge.refunded",
        json!({"id": unique("ch_"), "payment_intent": payment,
               "metadata": {"herald_tenant": t.id}}),
    )
    .await;
    assert_eq!(balance(&stack, &t).await, 5);
    let (_, _, ledger) = stack.get("/v1/wallet/ledger", &t).await;
    let kinds: Vec<&str> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["reverse", "top_up", "grant"], "{ledger}");
}

/// `wallet.low_balance` on the stack, from both functions that lower a balance: the API's
/// enqueue (its reservation) and the webhook processor's refund (the reversal), each
/// delivered signed to the tenant's endpoint once per crossing of its threshold.
#[tokio::test]
async fn crossing_the_low_balance_threshold_is_announced_by_the_api_and_the_webhook_processor() {
    let stack = Stack::running();
    let t = stack.tenant();
    let (s, v) = stack
        .send(
            reqwest::Method::PATCH,
            "/v1/tenant",
            &t,
            Some(json!({"low_balance_credits": 105})),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{v}");
    let sink = unique("wallet-");
    let url = format!("{}/sinks/{sink}", stack.url("FAKE_PLATFORMS_URL"));
    let (s, v) = stack
        .send(
            reqwest::Method::POST,
            "/v1/webhook-endpoints",
            &t,
            Some(json!({"url": url, "event_types": ["wallet.low_balance"]})),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{v}");
    grant_credits(&stack, &t, 5, "low");
    let paid = |payment: &str| {
        json!({"id": payment, "amount_received": 1000, "currency": "usd",
               "metadata": {"herald_tenant": t.id}})
    };
    bill(&stack, "payment_intent.succeeded", paid(&unique("pi_"))).await;
    assert_eq!(balance(&stack, &t).await, 105);

    // The API's enqueue reserves one credit: 105 → 104.
    opted_in_contact(&stack, &t, "+14155558301", "low").await;
    let sender = format!("L{}", &unique("")[..10]).to_uppercase();
    let (s, v) = stack
        .send(
            reqwest::Method::POST,
            "/v1/campaigns",
            &t,
            Some(
                json!({"name": "Low", "text": "Hi", "audience": {"tags": ["low"]},
                        "sender": sender}),
            ),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{v}");
    let enqueue = format!("/v1/campaigns/{}/enqueue", v["id"].as_str().unwrap());
    let (s, v) = stack.send(reqwest::Method::POST, &enqueue, &t, None).await;
    assert_eq!(s, reqwest::StatusCode::ACCEPTED, "{v}");

    // Topped up over the threshold, then refunded under it again.
    let payment = unique("pi_");
    bill(&stack, "payment_intent.succeeded", paid(&payment)).await;
    bill(
        &stack,
        "charge.refunded",
        json!({"id": unique("ch_"), "payment_intent": payment,
               "metadata": {"herald_tenant": t.id}}),
    )
    .await;

    let announced = stack
        .wait_for(Duration::from_secs(60), "two announcements", || async {
            let mut seen: HashMap<String, Value> = HashMap::new();
            for r in stack.sink_requests(&sink).await {
                let body: Value = serde_json::from_str(r["body"].as_str()?).ok()?;
                let id = r["headers"]["webhook-id"].as_str()?.to_owned();
                seen.insert(id, body);
            }
            (seen.len() >= 2).then_some(seen)
        })
        .await;
    let mut changes: Vec<(String, i64)> = announced
        .values()
        .map(|b| {
            assert_eq!(b["type"], "wallet.low_balance", "{b}");
            assert_eq!(b["data"]["threshold"], 105);
            let change = b["data"]["change"].as_str().unwrap();
            (
                change.split(':').next().unwrap().to_owned(),
                b["data"]["balance"].as_i64().unwrap(),
            )
        })
        .collect();
    changes.sort();
    assert_eq!(
        changes,
        [("reserve".to_owned(), 104), ("reverse".to_owned(), 104)],
        "{announced:?}"
    );
}
