//! The wallet on the local stack: an operator's grant through the CLI (once per key), and a
//! billing provider's signed events through `/webhooks/billing` and the webhook processor: a
//! payment tops up the tenant its metadata names (once, however often it is delivered), a
//! refund reverses it; another tenant's wallet is untouched.

use crate::support::*;
use hmac::Mac;
use serde_json::{Value, json};

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
