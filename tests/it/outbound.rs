//! Outbound webhooks end to end on the local stack: an endpoint registered through the API
//! on a fake platforms sink receives signed events from the real deliverer binary, is retried
//! after 500s on the (shortened) schedule, is disabled by a 410, signs with both secrets after
//! a rotation, and a schedule used up ends in the outbound DLQ.

use crate::support::*;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(90);

impl Stack {
    async fn account(&self, key: &str) -> String {
        self.connect_mapped(key, "x", &unique("out")).await
    }

    /// Publishes a post now and waits until it is published; returns its id.
    async fn publish(&self, key: &str, account: &str) -> String {
        let (s, v) = self
            .send(
                Method::POST,
                "/v1/posts",
                key,
                Some(
                    json!({"text": unique("outbound e2e "), "targets": [{"account_id": account}]}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        self.wait(&format!("post {id} published"), || async {
            let (_, _, v) = self.get(&format!("/v1/posts/{id}"), key).await;
            (v["status"] == "published").then_some(())
        })
        .await;
        id
    }

    async fn script_sink(&self, sink: &str, statuses: &[u16]) {
        self.fake(
            &format!("/_admin/sinks/{sink}"),
            json!({"statuses": statuses}),
        )
        .await;
    }

    async fn wait<T, F, Fut>(&self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn register(&self, key: &str, sink: &str, events: &[&str]) -> (String, String) {
        let url = format!("{}/sinks/{sink}", self.url("FAKE_PLATFORMS_URL"));
        let (s, v) = self
            .send(
                Method::POST,
                "/v1/webhook-endpoints",
                key,
                Some(json!({"url": url, "event_types": events})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (
            v["id"].as_str().unwrap().to_owned(),
            v["secret"].as_str().unwrap().to_owned(),
        )
    }
}

/// Verifies a request the sink recorded with `secrets`, as a receiver would.
fn verify(request: &Value, secrets: &[&str]) -> Result<(), herald_webhooks::Rejection> {
    let headers = request["headers"].as_object().unwrap();
    let pairs: Vec<(&str, &[u8])> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .iter()
        .map(|n| (*n, headers[*n].as_str().unwrap().as_bytes()))
        .collect();
    let body = request["body"].as_str().unwrap().as_bytes();
    let secrets: Vec<SecretString> = secrets.iter().map(|s| SecretString::from(*s)).collect();
    herald_webhooks::standard::verify(
        &herald_webhooks::Request::new(&pairs, body),
        &secrets,
        time::OffsetDateTime::now_utc(),
    )
    .map(|_| ())
}

fn body(request: &Value) -> Value {
    serde_json::from_str(request["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn an_endpoint_receives_signed_events_is_retried_after_500s_rotates_and_is_disabled_by_410() {
    let stack = Stack::running();
    let key = stack.tenant().key;
    let account = stack.account(&key).await;
    let sink = unique("outbound-");
    stack.script_sink(&sink, &[500, 500, 200]).await;
    let (endpoint, secret) = stack.register(&key, &sink, &["post.published"]).await;
    assert!(secret.starts_with("whsec_"));

    // Published: three attempts (500, 500, 200), all the same signed event.
    let post = stack.publish(&key, &account).await;
    let requests = stack
        .wait("three attempts at the sink", || async {
            let r = stack.sink_requests(&sink).await;
            (r.len() >= 3).then_some(r)
        })
        .await;
    assert_eq!(requests.len(), 3);
    for r in &requests {
        verify(r, &[&secret]).expect("signed with the endpoint's secret");
        assert!(
            verify(r, &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).is_err(),
            "a wrong secret fails"
        );
        assert_eq!(
            r["headers"]["webhook-id"], requests[0]["headers"]["webhook-id"],
            "one id across retries"
        );
        let b = body(r);
        assert_eq!(b["type"], "post.published");
        assert_eq!(b["data"]["post_id"], post.as_str());
        assert_eq!(b["data"]["account_id"], account.as_str());
    }
    let attempts = stack
        .wait("three attempts listed", || async {
            let (s, _, v) = stack
                .get(&format!("/v1/webhook-endpoints/{endpoint}/attempts"), &key)
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let items = v["items"].as_array().cloned().unwrap_or_default();
            (items.len() >= 3).then_some(items)
        })
        .await;
    let seen: Vec<(u64, u64, &str)> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["status"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (3, 200, "delivered"),
            (2, 500, "retrying"),
            (1, 500, "retrying")
        ],
        "newest first"
    );

    // Rotated: both secrets sign, and each verifies on its own.
    let (s, rotated) = stack
        .send(
            Method::POST,
            &format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"),
            &key,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);

    // 410: the endpoint is disabled, and later events are not sent.
    stack.script_sink(&sink, &[410]).await;
    stack.publish(&key, &account).await;
    let gone = stack
        .wait("the attempt answered 410", || async {
            let r = stack.sink_requests(&sink).await;
            r.get(3).cloned()
        })
        .await;
    let signature = gone["headers"]["webhook-signature"].as_str().unwrap();
    assert_eq!(
        signature.split(' ').count(),
        2,
        "both secrets sign: {signature}"
    );
    verify(&gone, &[&new_secret]).expect("the new secret verifies");
    verify(&gone, &[&secret]).expect("the old secret still verifies during the overlap");
    let disabled = stack
        .wait("the endpoint disabled", || async {
            let (_, _, v) = stack
                .get(&format!("/v1/webhook-endpoints/{endpoint}"), &key)
                .await;
            (v["status"] == "disabled").then_some(v)
        })
        .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{disabled}"
    );
    assert!(disabled.get("secret").is_none());
    let (_, _, audit) = stack.get("/v1/audit", &key).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in [
        "webhook_endpoint.created",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.disabled",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }

    stack.publish(&key, &account).await;
    // The publisher emits right after recording the outcome; give a fan-out and delivery that
    // should not happen time to (they take well under a second on the local stack).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        stack.sink_requests(&sink).await.len(),
        4,
        "a disabled endpoint gets nothing"
    );
}

#[tokio::test]
async fn an_event_that_fails_every_attempt_goes_to_the_outbound_dlq() {
    let stack = Stack::running();
    let key = stack.tenant().key;
    let account = stack.account(&key).await;
    let sink = unique("outbound-dlq-");
    // The local schedule is four attempts.
    stack.script_sink(&sink, &[500, 503, 500, 500]).await;
    let (endpoint, _) = stack.register(&key, &sink, &["post.published"]).await;
    let post = stack.publish(&key, &account).await;
    let letter = stack
        .wait("the event in the outbound DLQ", || async {
            let (s, _, v) = stack.get("/v1/dead-letters", &key).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v["items"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|d| {
                        d["source"] == "outbound"
                            && d["payload"]["event"]["data"]["post_id"] == post.as_str()
                    })
                    .cloned()
            })
        })
        .await;
    assert_eq!(letter["type"], "outbound:post.published", "{letter}");
    assert_eq!(letter["payload"]["attempts"], 4, "{letter}");
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("4 attempts; the last answered 500"),
        "{letter}"
    );
    assert_eq!(stack.sink_requests(&sink).await.len(), 4);
    let (_, _, v) = stack
        .get(&format!("/v1/webhook-endpoints/{endpoint}/attempts"), &key)
        .await;
    assert_eq!(v["items"][0]["outcome"], "dead_lettered", "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_429_slows_the_endpoint_down_to_its_retry_after_and_a_failure_is_announced() {
    let stack = Stack::running();
    let key = stack.tenant().key;
    let account = stack.account(&key).await;
    let sink = unique("outbound-429-");
    stack
        .fake(
            &format!("/_admin/sinks/{sink}"),
            json!({"statuses": [429], "retry_after": 3}),
        )
        .await;
    let (endpoint, secret) = stack
        .register(&key, &sink, &["post.published", "post.failed"])
        .await;
    stack.publish(&key, &account).await;
    let requests = stack
        .wait("the retry after the 429", || async {
            let r = stack.sink_requests(&sink).await;
            (r.len() >= 2).then_some(r)
        })
        .await;
    let at = |r: &Value| {
        time::OffsetDateTime::parse(
            r["time"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let gap = at(&requests[1]) - at(&requests[0]);
    // The local schedule's next slot is 1 s; the endpoint asked for 3.
    assert!(gap >= time::Duration::seconds(3), "retried after {gap}");
    let (_, _, v) = stack
        .get(&format!("/v1/webhook-endpoints/{endpoint}/attempts"), &key)
        .await;
    let first = v["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(first["status"], 429, "{v}");
    let next = time::OffsetDateTime::parse(
        first["next_attempt_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let recorded = time::OffsetDateTime::parse(
        first["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(next - recorded >= time::Duration::seconds(3), "{first}");

    // A permanent platform failure (a LinkedIn token revoked after it was connected) is
    // announced as post.failed.
    let org = unique("org");
    let revoked = stack.connect_mapped(key.as_str(), "linkedin", &org).await;
    stack
        .fault(json!({"platform": "linkedin", "account": org, "status": 401, "rate": 1.0}))
        .await;
    let (s, v) = stack
        .send(
            Method::POST,
            "/v1/posts",
            &key,
            Some(json!({"text": unique("doomed "), "targets": [{"account_id": revoked}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let post = v["id"].as_str().unwrap().to_owned();
    let failed = stack
        .wait("post.failed at the sink", || async {
            stack
                .sink_requests(&sink)
                .await
                .into_iter()
                .find(|r| body(r)["type"] == "post.failed")
        })
        .await;
    verify(&failed, &[&secret]).expect("signed");
    assert_eq!(body(&failed)["data"]["post_id"], post.as_str());
    assert_eq!(body(&failed)["data"]["platform"], "linkedin");
}
