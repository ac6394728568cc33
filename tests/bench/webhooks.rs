//! Inbound webhooks: in-process verification time per scheme, and AWS calls per accepted
//! webhook through the real receiver on moto (target: one conditional write, one queue send).

use super::bench;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use herald_fn_webhooks::{Config, receiver};
use herald_webhooks::{Scheme, standard, verify};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tower::ServiceExt;

const VERIFICATIONS: usize = 20_000;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A request as each provider signs it. Standard Webhooks goes through the crate's own signer
/// (the one outbound delivery uses); the others are signed here with `hmac` directly.
fn signed(scheme: Scheme, secret: &SecretString, ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let key = secret.expose_secret().as_bytes();
    let ts_text = ts.to_string();
    let h = |name: &str, value: String| (name.to_owned(), value);
    match scheme {
        Scheme::StandardWebhooks => {
            let at = OffsetDateTime::from_unix_timestamp(ts).unwrap();
            standard::sign("msg_bench", at, body, std::slice::from_ref(secret))
                .unwrap()
                .pairs()
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        }
        Scheme::Stripe => vec![h(
            "Stripe-Signature",
            format!(
                "t={ts_text},v1={}",
                hex::encode(hmac(key, &[ts_text.as_bytes(), b".", body]))
            ),
        )],
        Scheme::Meta => vec![h(
            "X-Hub-Signature-256",
            format!("sha256={}", hex::encode(hmac(key, &[body]))),
        )],
        Scheme::X => vec![h(
            "x-twitter-webhooks-signature",
            format!("sha256={}", STANDARD.encode(hmac(key, &[body]))),
        )],
        Scheme::Sms => vec![
            h("X-Sms-Timestamp", ts_text.clone()),
            h(
                "X-Sms-Signature",
                format!(
                    "sha256={}",
                    hex::encode(hmac(key, &[ts_text.as_bytes(), b".", body]))
                ),
            ),
        ],
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_nanos() as f64 / 1000.0
}

/// p50/p99 of one `verify` call per scheme, over a 1 KiB body, with the current and the
/// previous secret configured (a rotation in progress: the worst case is two HMACs).
pub fn verification() {
    let now = OffsetDateTime::now_utc();
    let body = serde_json::json!({ "id": "evt_bench", "type": "bench", "pad": "x".repeat(1000) })
        .to_string()
        .into_bytes();
    for scheme in Scheme::ALL {
        let current = match scheme {
            Scheme::StandardWebhooks => standard::generate_secret().unwrap(),
            _ => SecretString::from(hex::encode(rand_bytes())),
        };
        let previous = match scheme {
            Scheme::StandardWebhooks => standard::generate_secret().unwrap(),
            _ => SecretString::from(hex::encode(rand_bytes())),
        };
        for (label, signer) in [("current", &current), ("previous", &previous)] {
            let headers = signed(scheme, signer, now.unix_timestamp(), &body);
            let pairs: Vec<(&str, &[u8])> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                .collect();
            let request = herald_webhooks::Request::new(&pairs, &body);
            let secrets = [current.clone(), previous.clone()];
            let mut times = Vec::with_capacity(VERIFICATIONS);
            for _ in 0..VERIFICATIONS {
                let started = Instant::now();
                let verified = verify(scheme, &request, &secrets, now);
                times.push(started.elapsed());
                assert!(verified.is_ok(), "{scheme}: {verified:?}");
            }
            times.sort();
            let name = format!("webhook.verify.{scheme}.signed_with_{label}");
            bench(
                &format!("{name}.p50"),
                format!("{:.1}", percentile(&times, 0.50)),
                "us",
            );
            bench(
                &format!("{name}.p99"),
                format!("{:.1}", percentile(&times, 0.99)),
                "us",
            );
        }
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(16) {
        chunk.copy_from_slice(&uuid::Uuid::new_v4().into_bytes());
    }
    out
}

/// AWS calls the receiver makes per accepted webhook once its secret is cached, and per
/// replayed one, counted by the SDK interceptor against moto.
pub async fn calls_per_webhook(env: &HashMap<String, String>) {
    const EVENTS: usize = 20;
    let clients = herald_tests::stack_clients(env).await;
    let secret = standard::generate_secret().unwrap();
    let arn = herald_tests::create_secret(
        &clients.secrets,
        "herald-bench-demo-",
        Some("webhook-signing"),
        Some(secret.expose_secret()),
    )
    .await;
    let queue_url = herald_tests::create_queue(&clients.sqs, "herald-bench-webhooks-").await;
    let config = Config::from_env(&HashMap::from([
        ("HERALD_TABLE".to_owned(), env["HERALD_TABLE"].clone()),
        ("HERALD_WEBHOOK_QUEUE_URL".to_owned(), queue_url),
        (
            "HERALD_WEBHOOK_PROVIDERS".to_owned(),
            format!("demo=standard_webhooks:{arn}"),
        ),
    ]))
    .unwrap();
    let router = herald_api::webhooks::router(Arc::new(receiver(&config, &clients)));
    let send = |id: String| {
        let router = router.clone();
        let secret = secret.clone();
        async move {
            let body = format!(r#"{{"type":"bench","n":"{id}"}}"#);
            let signed =
                standard::sign(&id, OffsetDateTime::now_utc(), body.as_bytes(), &[secret]).unwrap();
            let mut request = Request::post("/webhooks/demo");
            for (name, value) in signed.pairs() {
                request = request.header(name, value);
            }
            router
                .oneshot(request.body(Body::from(body)).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    // The first request fetches the secret; it is cached from then on.
    assert!(send("msg_warm".into()).await.is_success());
    let calls = |snap: &std::collections::BTreeMap<String, herald_aws::calls::Tally>| {
        snap.values().map(|t| t.ok + t.failed).sum::<usize>()
    };
    clients.calls.reset();
    for n in 0..EVENTS {
        assert!(send(format!("msg_{n}")).await.is_success());
    }
    let snap = clients.calls.snapshot();
    bench(
        "webhook.accepted.aws_calls",
        calls(&snap) as f64 / EVENTS as f64,
        "calls",
    );
    for (op, tally) in &snap {
        bench(
            &format!("webhook.accepted.calls.{op}"),
            (tally.ok + tally.failed) as f64 / EVENTS as f64,
            "calls",
        );
    }
    clients.calls.reset();
    assert_eq!(send("msg_0".into()).await, StatusCode::OK);
    bench(
        "webhook.replayed.aws_calls",
        calls(&clients.calls.snapshot()),
        "calls",
    );
}
