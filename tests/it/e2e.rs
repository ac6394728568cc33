//! End to end through the real binaries on the local stack (`make up`): the HTTP API behind
//! the emulated API Gateway, the dispatcher on its emulated schedule, the publisher fed by
//! the emulated SQS event source, and the fake platforms over HTTP.

use herald_tests::{local_stack, repo_root};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

struct Stack {
    env: HashMap<String, String>,
    http: reqwest::Client,
}

struct Tenant {
    id: String,
    key: String,
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

impl Stack {
    fn get() -> Self {
        let env = local_stack().expect(
            "the local stack is not running: start it with `make up` (make test does this itself)",
        );
        Self {
            env,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    fn url(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from .herald/local.env"))
    }

    /// A fresh tenant through the operator CLI, so tests never share data.
    fn tenant(&self, require_approval: bool) -> Tenant {
        let mut cmd = std::process::Command::new(repo_root().join("target/debug/herald"));
        cmd.envs(&self.env)
            .args(["tenant", "create", "--name", &unique("e2e-")]);
        if require_approval {
            cmd.arg("--require-approval");
        }
        let out = cmd.output().expect("run target/debug/herald");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        Tenant {
            id: v["tenant_id"].as_str().unwrap().into(),
            key: v["api_key"].as_str().unwrap().into(),
        }
    }

    async fn api(
        &self,
        method: Method,
        path: &str,
        t: &Tenant,
        idem: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url("HERALD_API_URL")))
            .bearer_auth(&t.key);
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn connect(&self, t: &Tenant, platform: &str, external_id: &str, token: &str) -> String {
        let (s, _, v) = self
            .api(Method::POST, "/v1/accounts", t, None, Some(json!({"platform": platform, "external_id": external_id, "access_token": token})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().into()
    }

    /// A kept inbound event (the processor's record), if there is one.
    async fn kept_event(
        &self,
        provider: &str,
        event_id: &str,
    ) -> Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let ddb = aws_sdk_dynamodb::Client::new(
            &herald_tests::sdk_config(self.url("AWS_ENDPOINT_URL")).await,
        );
        ddb.get_item()
            .table_name(self.url("HERALD_TABLE"))
            .key("pk", AttributeValue::S(format!("WEBHOOK#{provider}")))
            .key("sk", AttributeValue::S(format!("EVENT#{event_id}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    /// A secret's current value, from the emulated Secrets Manager.
    async fn secret(&self, name: &str) -> String {
        let sm = aws_sdk_secretsmanager::Client::new(
            &herald_tests::sdk_config(self.url("AWS_ENDPOINT_URL")).await,
        );
        // The stage named explicitly: moto answers a bare GetSecretValue with a stale version
        // after UpdateSecretVersionStage.
        sm.get_secret_value()
            .secret_id(name)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned()
    }

    /// Connects an account whose token the fake platform knows (X names the user by token).
    async fn connect_mapped(&self, t: &Tenant, platform: &str, external_id: &str) -> String {
        let token = unique(&format!("{platform}-token-"));
        if platform == "x" {
            let url = format!("{}/_admin/tokens", self.url("FAKE_PLATFORMS_URL"));
            let body = json!({"platform": "x", "token": token, "account": external_id});
            let res = self.http.post(url).json(&body).send().await.unwrap();
            assert!(res.status().is_success(), "token mapping refused");
        }
        self.connect(t, platform, external_id, &token).await
    }

    async fn schedule(&self, t: &Tenant, account: &str, text: &str, in_secs: i64) -> Value {
        let at = (time::OffsetDateTime::now_utc() + time::Duration::seconds(in_secs))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let (s, _, v) = self
            .api(
                Method::POST,
                "/v1/posts",
                t,
                Some(&unique("k-")),
                Some(
                    json!({"text": text, "scheduled_at": at, "targets": [{"account_id": account}]}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    async fn post(&self, t: &Tenant, id: &str) -> Value {
        let (s, _, v) = self
            .api(Method::GET, &format!("/v1/posts/{id}"), t, None, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn fake_posts(&self, platform: &str, account: &str) -> Vec<Value> {
        self.fake_listing("posts", platform, account).await
    }

    /// What the fake platforms received for an account: `posts` or `media`.
    async fn fake_listing(&self, what: &str, platform: &str, account: &str) -> Vec<Value> {
        let url = format!("{}/_admin/{what}", self.url("FAKE_PLATFORMS_URL"));
        let v: Value = self
            .http
            .get(url)
            .query(&[("platform", platform), ("account", account)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v[what].as_array().cloned().unwrap_or_default()
    }

    /// Adds a fault rule on the fake platforms; returns its id.
    async fn fault(&self, rule: Value) -> String {
        let url = format!("{}/_admin/faults", self.url("FAKE_PLATFORMS_URL"));
        let res = self.http.post(url).json(&rule).send().await.unwrap();
        assert!(res.status().is_success(), "fault rule refused");
        let v: Value = res.json().await.unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    async fn remove_fault(&self, id: &str) {
        let url = format!("{}/_admin/faults/{id}", self.url("FAKE_PLATFORMS_URL"));
        let res = self.http.delete(url).send().await.unwrap();
        assert!(res.status().is_success());
    }

    /// Polls `f` until it returns `Some`, or fails after `timeout` with `what`.
    async fn wait_for<T, F, Fut>(&self, timeout: Duration, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&herald_tests::sdk_config(self.url("AWS_ENDPOINT_URL")).await)
    }

    async fn queue_is_drained(&self, url: &str) -> bool {
        let attrs = self
            .sqs()
            .await
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let a = attrs.attributes().unwrap();
        use aws_sdk_sqs::types::QueueAttributeName as N;
        [
            N::ApproximateNumberOfMessages,
            N::ApproximateNumberOfMessagesNotVisible,
            N::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .all(|n| a.get(n).is_none_or(|v| v == "0"))
    }
}

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_scheduled_post_is_published_exactly_once_and_a_duplicate_message_publishes_nothing() {
    let stack = Stack::get();
    let t = stack.tenant(false);
    let page = unique("page");
    let account = stack.connect(&t, "facebook", &page, "fb-token").await;
    let post = stack.schedule(&t, &account, "Launch day!", 3).await;
    let id = post["id"].as_str().unwrap();
    assert_eq!(post["status"], "scheduled");

    let published = stack
        .wait_for(PUBLISH_TIMEOUT, "the post on the fake platform", || async {
            let p = stack.post(&t, id).await;
            (p["status"] == "published").then_some(p)
        })
        .await;
    let on_platform = stack.fake_posts("facebook", &page).await;
    assert_eq!(on_platform.len(), 1, "{on_platform:?}");
    assert_eq!(on_platform[0]["text"], "Launch day!");
    let variant = &published["variants"][0];
    assert_eq!(variant["platform_post_id"], on_platform[0]["id"]);
    assert_eq!(variant["attempts"], 1);
    assert_eq!(published["correlation_id"], post["correlation_id"]);

    // The same message again, twice, straight onto the queue.
    let queue = stack.url("HERALD_PUBLISH_QUEUE_URL").to_owned();
    let body =
        json!({"tenant_id": t.id, "post_id": id, "account_id": account, "platform": "facebook", "correlation_id": "dup"})
            .to_string();
    let sqs = stack.sqs().await;
    for _ in 0..2 {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(&body)
            .send()
            .await
            .unwrap();
    }
    stack
        .wait_for(PUBLISH_TIMEOUT, "the duplicates to be consumed", || async {
            stack.queue_is_drained(&queue).await.then_some(())
        })
        .await;
    assert_eq!(
        stack.fake_posts("facebook", &page).await.len(),
        1,
        "still exactly one"
    );
    assert_eq!(stack.post(&t, id).await["variants"][0]["attempts"], 1);
}

#[tokio::test]
async fn a_cancel_before_the_claim_is_never_published() {
    let stack = Stack::get();
    let t = stack.tenant(false);
    let org = unique("org");
    let account = stack.connect(&t, "linkedin", &org, "li-token").await;
    let post = stack.schedule(&t, &account, "never", 4).await;
    let id = post["id"].as_str().unwrap();
    let (s, _, v) = stack
        .api(Method::DELETE, &format!("/v1/posts/{id}"), &t, None, None)
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{v}"
    );
    // Well past the due time and several dispatcher runs.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(stack.fake_posts("linkedin", &org).await.is_empty());
    assert_eq!(stack.post(&t, id).await["status"], "cancelled");
}

#[tokio::test]
async fn an_edit_before_the_claim_is_published_as_edited() {
    let stack = Stack::get();
    let t = stack.tenant(false);
    let org = unique("org");
    let account = stack.connect(&t, "linkedin", &org, "li-token").await;
    let post = stack.schedule(&t, &account, "first draft", 4).await;
    let id = post["id"].as_str().unwrap();
    let (s, _, v) = stack
        .api(
            Method::PATCH,
            &format!("/v1/posts/{id}"),
            &t,
            None,
            Some(json!({"text": "final text"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    stack
        .wait_for(PUBLISH_TIMEOUT, "the edited post", || async {
            (stack.post(&t, id).await["status"] == "published").then_some(())
        })
        .await;
    let on_platform = stack.fake_posts("linkedin", &org).await;
    assert_eq!(on_platform.len(), 1);
    assert_eq!(on_platform[0]["text"], "final text");
}

#[tokio::test]
async fn idempotency_keys_and_tenancy_over_http() {
    let stack = Stack::get();
    let a = stack.tenant(false);
    let b = stack.tenant(false);
    let account = stack
        .connect(&a, "x", &unique("user"), &unique("x-token-"))
        .await;
    let body = json!({"text": "once", "scheduled_at": "2099-01-01T00:00:00Z", "targets": [{"account_id": account}]});
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({"text": "once", "scheduled_at": later, "targets": body["targets"]});
    let key = unique("idem-");
    let (s1, h1, first) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &a,
            Some(&key),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    assert!(h1.get("idempotent-replayed").is_none());
    let (s2, h2, second) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &a,
            Some(&key),
            Some(body.clone()),
        )
        .await;
    assert_eq!((s2, &second), (StatusCode::CREATED, &first));
    assert_eq!(h2["idempotent-replayed"], "true");
    let (s, h, v) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &a,
            Some(&key),
            Some(json!({"text": "other", "targets": body["targets"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    let (s, _, _) = stack
        .api(Method::POST, "/v1/posts", &a, None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "key required");
    let (s, _, _) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &a,
            Some("bad key"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "malformed key");
    let (_, _, list) = stack.api(Method::GET, "/v1/posts", &a, None, None).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "one post for all those retries"
    );

    // Tenant B sees none of it and can change none of it.
    let path = format!("/v1/posts/{}", first["id"].as_str().unwrap());
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"text": "mine now"}))),
        (Method::DELETE, None),
    ] {
        let (s, h, v) = stack.api(method.clone(), &path, &b, None, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {v}");
        assert_eq!(h["content-type"], "application/problem+json");
    }
    let (s, _, _) = stack
        .api(Method::POST, "/v1/posts", &b, Some(&key), Some(body))
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "B's key space is its own, and A's account is not B's"
    );
    assert_eq!(
        stack.post(&a, first["id"].as_str().unwrap()).await["text"],
        "once"
    );
}

#[tokio::test]
async fn permanent_and_auth_errors_end_failed_with_the_platform_reason() {
    let stack = Stack::get();
    let t = stack.tenant(false);
    let revoked = stack
        .connect(&t, "linkedin", &unique("org"), "revoked-token")
        .await;
    let page = unique("page");
    let refused = stack.connect(&t, "facebook", &page, "fb-token").await;
    stack
        .fault(json!({"platform": "facebook", "account": page, "status": 400, "error_code": 100, "message": "Invalid parameter", "rate": 1.0}))
        .await;
    let auth_post = stack.schedule(&t, &revoked, "auth", 0).await;
    let bad_post = stack.schedule(&t, &refused, "bad", 0).await;
    for (post, kind, reason) in [
        (&auth_post, "auth", "LinkedIn answered 401"),
        (
            &bad_post,
            "permanent",
            "Facebook answered 400: Invalid parameter",
        ),
    ] {
        let id = post["id"].as_str().unwrap();
        let p = stack
            .wait_for(PUBLISH_TIMEOUT, "the post to fail", || async {
                let p = stack.post(&t, id).await;
                (p["status"] == "failed").then_some(p)
            })
            .await;
        let v = &p["variants"][0];
        assert_eq!(v["status"], "failed");
        assert_eq!(v["last_error"]["kind"], kind, "{v}");
        assert!(
            v["last_error"]["message"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{v}"
        );
        assert_eq!(v["attempts"], 1, "no retry loop");
    }
    assert!(stack.fake_posts("facebook", &page).await.is_empty());
}

#[tokio::test]
async fn transient_failures_retry_and_end_in_the_dlq() {
    let stack = Stack::get();
    let t = stack.tenant(false);
    let page = unique("page");
    let account = stack.connect(&t, "facebook", &page, "fb-token").await;
    let outage = stack
        .fault(json!({"platform": "facebook", "account": page, "status": 503, "rate": 1.0}))
        .await;
    let post = stack.schedule(&t, &account, "doomed", 0).await;
    let id = post["id"].as_str().unwrap().to_owned();
    let max: u64 = stack
        .url("HERALD_PUBLISH_MAX_RECEIVE_COUNT")
        .parse()
        .unwrap();
    let p = stack
        .wait_for(
            Duration::from_secs(120),
            "the variant to be dead-lettered",
            || async {
                let p = stack.post(&t, &id).await;
                (p["variants"][0]["status"] == "dead_lettered").then_some(p)
            },
        )
        .await;
    assert_eq!(p["variants"][0]["attempts"], max);
    assert!(
        p["variants"][0]["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    assert_eq!(p["status"], "needs_attention");
    let dlq = stack
        .url("HERALD_QUEUE_URL_PUBLISH_DEAD_LETTER_QUEUE")
        .to_owned();
    let sqs = stack.sqs().await;
    let found = stack
        .wait_for(
            Duration::from_secs(30),
            "the message in the DLQ",
            || async {
                let out = sqs
                    .receive_message()
                    .queue_url(&dlq)
                    .max_number_of_messages(10)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
                out.messages
                    .unwrap_or_default()
                    .into_iter()
                    .find(|m| m.body().is_some_and(|b| b.contains(&id)))
            },
        )
        .await;
    assert!(found.body().unwrap().contains(&t.id));
    assert!(stack.fake_posts("facebook", &page).await.is_empty());
    // Operators were told: the circuit opened (once), and the DLQ is not empty.
    let sink = format!("{}/_admin/sinks/alerts", stack.url("FAKE_PLATFORMS_URL"));
    let circuit = format!("circuit_open:{}:{}", t.id, account);
    let alerts = stack
        .wait_for(Duration::from_secs(30), "the alerts", || async {
            let v: Value = stack
                .http
                .get(&sink)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let keys: Vec<String> = v["requests"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| serde_json::from_str::<Value>(r["body"].as_str()?).ok())
                .filter_map(|b| b["herald"]["key"].as_str().map(str::to_owned))
                .collect();
            (keys.contains(&circuit) && keys.iter().any(|k| k == "dead_letters:publish"))
                .then_some(keys)
        })
        .await;
    assert_eq!(
        alerts.iter().filter(|k| **k == circuit).count(),
        1,
        "one alert per condition per window: {alerts:?}"
    );

    // The outage ends; an operator finds the dead letter and requeues it: published once.
    stack.remove_fault(&outage).await;
    let letter = stack
        .wait_for(
            Duration::from_secs(30),
            "the dead letter in the API",
            || async {
                let (_, _, v) = stack
                    .api(Method::GET, "/v1/dead-letters", &t, None, None)
                    .await;
                v["items"].as_array().and_then(|items| {
                    items
                        .iter()
                        .find(|d| d["payload"]["post_id"] == id.as_str())
                        .cloned()
                })
            },
        )
        .await;
    assert_eq!(letter["source"], "publish");
    let path = format!(
        "/v1/dead-letters/{}/requeue",
        letter["id"].as_str().unwrap()
    );
    let (s, _, v) = stack
        .api(Method::POST, &path, &t, Some(&unique("k-")), None)
        .await;
    assert_eq!((s, &v["requeued"]), (StatusCode::OK, &json!(1)), "{v}");
    stack
        .wait_for(PUBLISH_TIMEOUT, "the requeued post", || async {
            (stack.post(&t, &id).await["status"] == "published").then_some(())
        })
        .await;
    assert_eq!(stack.fake_posts("facebook", &page).await.len(), 1);
    let (_, _, log) = stack
        .api(
            Method::GET,
            "/v1/audit?action=dead_letter.requeued",
            &t,
            None,
            None,
        )
        .await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");
}

#[tokio::test]
async fn a_pause_holds_posts_and_lifting_it_releases_them() {
    let stack = Stack::get();
    let t = stack.tenant(false);
    let (page, org) = (unique("page"), unique("org"));
    let facebook = stack.connect(&t, "facebook", &page, "fb-token").await;
    let linkedin = stack.connect(&t, "linkedin", &org, "li-token").await;

    // Facebook only: the dispatcher hands the post over; the publisher's claim holds it.
    let (s, _, v) = stack
        .api(
            Method::PUT,
            "/v1/crisis",
            &t,
            Some(&unique("k-")),
            Some(json!({"reason": "brand review", "platforms": ["facebook"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let held = stack.schedule(&t, &facebook, "held back", 0).await;
    let free = stack.schedule(&t, &linkedin, "goes out", 0).await;
    stack
        .wait_for(PUBLISH_TIMEOUT, "the unpaused platform's post", || async {
            let p = stack.post(&t, free["id"].as_str().unwrap()).await;
            (p["status"] == "published").then_some(())
        })
        .await;
    // Several dispatcher runs and publisher re-checks later, still held.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let p = stack.post(&t, held["id"].as_str().unwrap()).await;
    assert_eq!(p["variants"][0]["status"], "pending", "{p}");
    assert_eq!(
        p["variants"][0]["attempts"], 0,
        "a held claim counts nothing"
    );
    assert!(stack.fake_posts("facebook", &page).await.is_empty());

    // Every platform: the dispatcher does not even hand new posts over.
    let (s, _, _) = stack
        .api(
            Method::PUT,
            "/v1/crisis",
            &t,
            Some(&unique("k-")),
            Some(json!({"reason": "everything stops"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let waiting = stack.schedule(&t, &linkedin, "waits", 0).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        stack.post(&t, waiting["id"].as_str().unwrap()).await["status"],
        "scheduled"
    );

    let (s, _, v) = stack
        .api(Method::DELETE, "/v1/crisis", &t, Some(&unique("k-")), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for post in [&held, &waiting] {
        let id = post["id"].as_str().unwrap();
        stack
            .wait_for(PUBLISH_TIMEOUT, "the released post", || async {
                (stack.post(&t, id).await["status"] == "published").then_some(())
            })
            .await;
    }
    assert_eq!(stack.fake_posts("facebook", &page).await.len(), 1);
    assert_eq!(stack.fake_posts("linkedin", &org).await.len(), 2);
}

/// On each platform: the post is created but its answer lost; the next attempt finds it
/// through the platform's own listing and adopts it.
#[tokio::test]
async fn a_post_whose_answer_was_lost_is_found_and_adopted_not_sent_again() {
    let stack = Stack::get();
    let t = stack.tenant(false);
    let mut posts = Vec::new();
    for platform in ["x", "facebook", "linkedin"] {
        let external = unique(platform);
        let account = stack.connect_mapped(&t, platform, &external).await;
        stack
            .fault(
                json!({"platform": platform, "account": external, "ambiguous": true, "count": 1}),
            )
            .await;
        let post = stack
            .schedule(&t, &account, &format!("said once on {platform}"), 0)
            .await;
        posts.push((platform, external, post["id"].as_str().unwrap().to_owned()));
    }
    for (platform, external, id) in posts {
        let p = stack
            .wait_for(PUBLISH_TIMEOUT, "the post to be adopted", || async {
                let p = stack.post(&t, &id).await;
                (p["status"] == "published").then_some(p)
            })
            .await;
        let on_platform = stack.fake_posts(platform, &external).await;
        assert_eq!(
            on_platform.len(),
            1,
            "{platform}: exactly one post: {on_platform:?}"
        );
        assert_eq!(
            p["variants"][0]["platform_post_id"], on_platform[0]["id"],
            "{platform}"
        );
        let (_, _, log) = stack
            .api(
                Method::GET,
                &format!(
                    "/v1/audit?action=publish.adopted&entity=variant:{id}:{}",
                    p["variants"][0]["account_id"].as_str().unwrap()
                ),
                &t,
                None,
                None,
            )
            .await;
        assert_eq!(
            log["items"].as_array().map(Vec::len),
            Some(1),
            "{platform}: {log}"
        );
    }
}

#[tokio::test]
async fn a_429_defers_the_post_without_counting_toward_the_dlq() {
    let stack = Stack::get();
    let t = stack.tenant(false);
    let org = unique("org");
    let account = stack.connect(&t, "linkedin", &org, "li-token").await;
    stack
        .fault(json!({"platform": "linkedin", "account": org, "status": 429, "retry_after": 2, "count": 3}))
        .await;
    let post = stack.schedule(&t, &account, "patience", 0).await;
    let id = post["id"].as_str().unwrap();
    let p = stack
        .wait_for(PUBLISH_TIMEOUT, "the post after the 429s", || async {
            let p = stack.post(&t, id).await;
            (p["status"] == "published").then_some(p)
        })
        .await;
    assert_eq!(stack.fake_posts("linkedin", &org).await.len(), 1);
    // Three deferrals and the publish, each a claim (a busy stack may add a contended one),
    // none a failed delivery.
    assert!(p["variants"][0]["attempts"].as_u64() >= Some(4), "{p}");
    assert!(p["variants"][0]["last_error"].is_null(), "{p}");
}

#[tokio::test]
async fn herald_audit_verify_passes_then_finds_a_removed_record() {
    let stack = Stack::get();
    let t = stack.tenant(false);
    let page = unique("page");
    let account = stack.connect(&t, "facebook", &page, "fb-token").await;
    for method in [Method::PUT, Method::DELETE] {
        let body = (method == Method::PUT).then(|| json!({"reason": "drill"}));
        let (s, _, v) = stack
            .api(method, "/v1/crisis", &t, Some(&unique("k-")), body)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let post = stack.schedule(&t, &account, "audited", 0).await;
    let id = post["id"].as_str().unwrap();
    stack
        .wait_for(PUBLISH_TIMEOUT, "the post", || async {
            (stack.post(&t, id).await["status"] == "published").then_some(())
        })
        .await;
    let (_, _, log) = stack.api(Method::GET, "/v1/audit", &t, None, None).await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for expected in [
        "account.connected",
        "crisis.started",
        "crisis.lifted",
        "publish.published",
    ] {
        assert!(actions.contains(&expected), "{expected} not in {actions:?}");
    }
    let verify = || {
        std::process::Command::new(repo_root().join("target/debug/herald"))
            .envs(&stack.env)
            .args(["audit", "verify", "--tenant", &t.id])
            .output()
            .unwrap()
    };
    let out = verify();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["records"], 4);

    // Remove the crisis' first record behind Herald's back.
    let dynamodb = aws_sdk_dynamodb::Client::new(
        &herald_tests::sdk_config(stack.url("AWS_ENDPOINT_URL")).await,
    );
    let table = stack.url("HERALD_AUDIT_TABLE");
    let records = dynamodb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("AUDIT#{}", t.id)),
        )
        .send()
        .await
        .unwrap();
    let started = records
        .items()
        .iter()
        .find(|i| i["action"].as_s().unwrap() == "crisis.started")
        .unwrap();
    dynamodb
        .delete_item()
        .table_name(table)
        .key("pk", started["pk"].clone())
        .key("sk", started["sk"].clone())
        .send()
        .await
        .unwrap();
    let out = verify();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["findings"][0]["entity"], "crisis", "{report}");
}

/// Chaos: 200 posts over the three platforms while the fake platforms answer 429 (with
/// Retry-After), 5xx, slowly, with lost answers and some permanent refusals, and the publisher
/// process is killed mid-batch. In the end every variant is published exactly once on its
/// platform, or failed with a reason, and nothing a refusal hit was posted.
#[tokio::test]
#[ignore = "run alone by infra/test.sh: its 200 posts would hold up every other test's in the shared queue"]
async fn chaos_two_hundred_posts_publish_exactly_once_through_faults_and_a_killed_publisher() {
    const POSTS: usize = 200;
    let stack = Stack::get();
    let t = stack.tenant(false);
    // Faults are scoped to this test's accounts: other tests share the fake platforms.
    let mut accounts = Vec::new();
    for platform in ["x", "facebook", "linkedin"] {
        for i in 0..3 {
            let external = unique(&format!("chaos-{platform}-"));
            let id = stack.connect_mapped(&t, platform, &external).await;
            let mut rules = vec![
                json!({"status": 429, "retry_after": 1, "rate": 0.1}),
                json!({"status": 503, "rate": 0.1}),
                json!({"latency_ms": 400, "rate": 0.1}),
                json!({"ambiguous": true, "rate": 0.05}),
            ];
            if i == 0 {
                // The platform refuses some posts for good: they end failed, with its reason.
                rules.push(json!({"status": 400, "message": "chaos: refused", "rate": 0.1}));
            }
            for (seed, mut rule) in rules.into_iter().enumerate() {
                rule["platform"] = json!(platform);
                rule["account"] = json!(external);
                rule["seed"] = json!(seed);
                stack.fault(rule).await;
            }
            accounts.push((platform, external, id));
        }
    }

    let runtime = stack.url("HERALD_RUNTIME_URL").to_owned();
    let schedule = async {
        let mut posts = Vec::new();
        for i in 0..POSTS {
            let (platform, external, account) = &accounts[i % accounts.len()];
            let text = format!("chaos {i} {}", unique(""));
            let post = stack.schedule(&t, account, &text, 0).await;
            posts.push((
                *platform,
                external.clone(),
                text,
                post["id"].as_str().unwrap().to_owned(),
            ));
        }
        posts
    };
    // Meanwhile: kill the publisher in the middle of a batch, twice.
    let killer = async {
        let mut killed = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while killed.len() < 2 && Instant::now() < deadline {
            let res = stack
                .http
                .post(format!("{runtime}/_admin/functions/publisher/kill?busy=1"))
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "the runner refused the kill");
            let v: Value = res.json().await.unwrap();
            if v["killed"].as_array().is_some_and(|k| !k.is_empty()) {
                killed.push(v);
                tokio::time::sleep(Duration::from_secs(5)).await;
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        killed
    };
    let (posts, killed) = tokio::join!(schedule, killer);
    assert!(
        !killed.is_empty(),
        "the publisher was never caught mid-batch"
    );

    // Every variant settles: published, or failed with a reason.
    let settled = stack
        .wait_for(
            Duration::from_secs(600),
            "every variant to settle",
            || async {
                let mut all = HashMap::new();
                let mut cursor: Option<String> = None;
                loop {
                    let path = match &cursor {
                        Some(c) => format!("/v1/posts?limit=100&cursor={c}"),
                        None => "/v1/posts?limit=100".to_owned(),
                    };
                    let (s, _, v) = stack.api(Method::GET, &path, &t, None, None).await;
                    assert_eq!(s, StatusCode::OK, "{v}");
                    for p in v["items"].as_array().unwrap() {
                        all.insert(
                            p["id"].as_str().unwrap().to_owned(),
                            p["variants"][0].clone(),
                        );
                    }
                    match v["next_cursor"].as_str() {
                        Some(c) => cursor = Some(c.to_owned()),
                        None => break,
                    }
                }
                let done = all.len() == POSTS
                    && all
                        .values()
                        .all(|v| matches!(v["status"].as_str(), Some("published" | "failed")));
                done.then_some(all)
            },
        )
        .await;

    let mut on_platform: HashMap<(String, String), Vec<Value>> = HashMap::new();
    for (platform, external, _) in &accounts {
        on_platform.insert(
            (platform.to_string(), external.clone()),
            stack.fake_posts(platform, external).await,
        );
    }
    let (mut published, mut failed) = (0, 0);
    for (platform, external, text, id) in &posts {
        let v = &settled[id];
        let copies: Vec<&Value> = on_platform[&(platform.to_string(), external.clone())]
            .iter()
            .filter(|p| p["text"].as_str() == Some(text.as_str()))
            .collect();
        match v["status"].as_str() {
            Some("published") => {
                published += 1;
                assert_eq!(
                    copies.len(),
                    1,
                    "{platform}: exactly one post for {id}: {copies:?}"
                );
                assert_eq!(v["platform_post_id"], copies[0]["id"], "{id}");
            }
            _ => {
                failed += 1;
                assert!(copies.is_empty(), "{id} failed but was posted: {copies:?}");
                let reason = v["last_error"]["message"].as_str().unwrap_or_default();
                assert!(!reason.is_empty(), "{id} failed without a reason: {v}");
            }
        }
    }
    assert_eq!(published + failed, POSTS);
    assert!(
        published > POSTS / 2,
        "published {published}, failed {failed}"
    );
    println!(
        "chaos: published {published}, failed {failed}, publisher kills {}",
        killed.len()
    );
}

/// The `demo` provider's signed events through the emulated API Gateway and the real
/// receiver binary: accepted once, a replay acknowledged but not queued twice, a forgery
/// refused with a problem document that says nothing.
#[tokio::test]
async fn signed_webhooks_are_kept_once_and_forgeries_refused() {
    let stack = Stack::get();
    let secret = secrecy::SecretString::from(stack.url("HERALD_DEMO_WEBHOOK_SECRET").to_owned());
    let id = unique("msg_");
    let body = format!(r#"{{"type":"demo.ping","id":"{id}"}}"#);
    let send = |secret: secrecy::SecretString| {
        let signed = herald_webhooks::standard::sign(
            &id,
            time::OffsetDateTime::now_utc(),
            body.as_bytes(),
            &[secret],
        )
        .unwrap();
        let mut request = stack
            .http
            .post(format!("{}/webhooks/demo", stack.url("HERALD_API_URL")))
            .body(body.clone());
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap() }
    };
    let forged = send(herald_webhooks::standard::generate_secret().unwrap()).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(forged.headers()["content-type"], "application/problem+json");
    assert_eq!(send(secret.clone()).await.status(), StatusCode::OK);
    assert_eq!(
        send(secret).await.status(),
        StatusCode::OK,
        "a replay is acknowledged"
    );

    // The processor keeps the event, once.
    let kept = stack
        .wait_for(Duration::from_secs(30), "the kept event", || async {
            stack.kept_event("demo", &id).await
        })
        .await;
    assert_eq!(kept["kind"].as_s().unwrap(), "demo.ping");
    assert_eq!(kept["applied"].as_n().unwrap(), "0");
}

/// The SMS provider's delivery receipts and the billing provider's Stripe-style events, each
/// signed with its provider's secret from Secrets Manager: kept once by provider and event id
/// for the features that apply them; a tampered body or a stale timestamp is refused and
/// nothing is kept.
#[tokio::test]
async fn sms_receipts_and_billing_events_are_kept_by_provider_and_event_id() {
    use hmac::Mac;
    let stack = Stack::get();
    let sign = |secret: &str, ts: i64, body: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{ts}.{body}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let post = |provider: &'static str, headers: Vec<(&'static str, String)>, body: String| {
        let mut request = stack
            .http
            .post(format!(
                "{}/webhooks/{provider}",
                stack.url("HERALD_API_URL")
            ))
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap().status() }
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let sms_secret = stack.secret("herald-SmsWebhookSecret").await;
    let receipt_id = unique("dlr_");
    let receipt = format!(r#"{{"id":"{receipt_id}","message_id":"sms_1","status":"delivered"}}"#);
    let sms_headers = |ts: i64, body: &str| {
        vec![
            ("X-Sms-Timestamp", ts.to_string()),
            (
                "X-Sms-Signature",
                format!("sha256={}", sign(&sms_secret, ts, body)),
            ),
        ]
    };
    // Well past the five minutes, whatever time these requests take.
    let stale = now - 360;
    assert_eq!(
        post("sms", sms_headers(stale, &receipt), receipt.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    let tampered = receipt.replace("delivered", "failed");
    assert_eq!(
        post("sms", sms_headers(now, &receipt), tampered).await,
        StatusCode::UNAUTHORIZED
    );
    for _ in 0..2 {
        assert_eq!(
            post("sms", sms_headers(now, &receipt), receipt.clone()).await,
            StatusCode::OK
        );
    }

    let billing_secret = stack.secret("herald-BillingWebhookSecret").await;
    let event_id = unique("evt_");
    let event = format!(r#"{{"id":"{event_id}","type":"invoice.paid","data":{{"amount":1200}}}}"#);
    let stripe = |ts: i64, body: &str| {
        vec![(
            "Stripe-Signature",
            format!("t={ts},v1={}", sign(&billing_secret, ts, body)),
        )]
    };
    assert_eq!(
        post("billing", stripe(now + 360, &event), event.clone()).await,
        StatusCode::UNAUTHORIZED,
        "a timestamp from the future is refused too"
    );
    assert_eq!(
        post("billing", stripe(now, &event), event.clone()).await,
        StatusCode::OK
    );

    let kept = stack
        .wait_for(Duration::from_secs(30), "the kept receipt", || async {
            stack.kept_event("sms", &receipt_id).await
        })
        .await;
    assert_eq!(kept["kind"].as_s().unwrap(), "delivered");
    let kept = stack
        .wait_for(
            Duration::from_secs(30),
            "the kept billing event",
            || async { stack.kept_event("billing", &event_id).await },
        )
        .await;
    assert_eq!(kept["kind"].as_s().unwrap(), "invoice.paid");
}

/// A post deleted on X: X's signed Account Activity event marks the variant removed, once.
#[tokio::test]
async fn a_signed_platform_event_marks_its_post_removed_once() {
    let stack = Stack::get();
    let t = stack.tenant(false);
    let user = unique("");
    let account = stack.connect_mapped(&t, "x", &user).await;
    let post = stack.schedule(&t, &account, "soon deleted", 0).await;
    let id = post["id"].as_str().unwrap().to_owned();
    let published = stack
        .wait_for(PUBLISH_TIMEOUT, "the post to be published", || async {
            let p = stack.post(&t, &id).await;
            (p["status"] == "published").then_some(p)
        })
        .await;
    let tweet = published["variants"][0]["platform_post_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({
        "for_user_id": user,
        "tweet_delete_events": [{"status": {"id": tweet, "user_id": user}, "timestamp_ms": "1"}]
    })
    .to_string();
    let secret = stack.secret("herald-XConsumerSecret").await;
    let signature = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        use base64::Engine;
        format!(
            "sha256={}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        )
    };
    let send = || async {
        stack
            .http
            .post(format!("{}/webhooks/x", stack.url("HERALD_API_URL")))
            .header("x-twitter-webhooks-signature", &signature)
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(send().await, StatusCode::OK);
    let removed = stack
        .wait_for(
            Duration::from_secs(30),
            "the variant marked removed",
            || async {
                let p = stack.post(&t, &id).await;
                p["variants"][0]["removed_at"].is_string().then_some(p)
            },
        )
        .await;
    assert_eq!(send().await, StatusCode::OK, "a replay is acknowledged");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = stack.post(&t, &id).await;
    assert_eq!(
        again["variants"][0]["removed_at"], removed["variants"][0]["removed_at"],
        "applied once"
    );
    let tampered = stack
        .http
        .post(format!("{}/webhooks/x", stack.url("HERALD_API_URL")))
        .header("x-twitter-webhooks-signature", &signature)
        .body(body.replace(&tweet, "1"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), StatusCode::UNAUTHORIZED);
}

impl Stack {
    /// `POST /v1/media`, then the bytes to the presigned URL it answered, as a client would.
    async fn upload_media(&self, t: &Tenant, declared: &str, name: &str, bytes: &[u8]) -> String {
        let (s, _, v) = self
            .api(
                Method::POST,
                "/v1/media",
                t,
                Some(&unique("m-")),
                Some(json!({"content_type": declared, "file_name": name, "size": bytes.len()})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let upload = &v["upload"];
        let mut put = self.http.request(
            upload["method"].as_str().unwrap().parse().unwrap(),
            upload["url"].as_str().unwrap(),
        );
        for (k, val) in upload["headers"].as_object().unwrap() {
            put = put.header(k, val.as_str().unwrap());
        }
        let res = put.body(bytes.to_vec()).send().await.unwrap();
        assert!(res.status().is_success(), "upload: {}", res.status());
        v["id"].as_str().unwrap().to_owned()
    }

    async fn fake_media(&self, platform: &str, account: &str) -> Vec<Value> {
        self.fake_listing("media", platform, account).await
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn media_goes_to_every_platform_before_the_post_that_refers_to_it() {
    use herald_domain::media::samples;
    let stack = Stack::get();
    let t = stack.tenant(false);
    let (page, org, user) = (unique("page"), unique("org"), unique("user"));
    let fb = stack.connect(&t, "facebook", &page, "fb-token").await;
    let li = stack.connect(&t, "linkedin", &org, "li-token").await;
    let x = stack.connect_mapped(&t, "x", &user).await;
    let photo = samples::png(1200, 630, 120_000);
    let media = stack
        .upload_media(&t, "image/png", "launch.png", &photo)
        .await;
    let (s, _, seen) = stack
        .api(Method::GET, &format!("/v1/media/{media}"), &t, None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{seen}");
    assert_eq!(
        (&seen["status"], &seen["detected_type"], &seen["size"]),
        (&json!("uploaded"), &json!("image/png"), &json!(120_000))
    );
    assert_eq!(seen["dimensions"], json!({"width": 1200, "height": 630}));

    let at = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, _, post) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(
                json!({"text": "Launch, with a picture", "scheduled_at": at, "media": [media],
                "targets": [{"account_id": fb}, {"account_id": li}, {"account_id": x}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    let id = post["id"].as_str().unwrap();
    let published = stack
        .wait_for(PUBLISH_TIMEOUT, "the post with media to go out", || async {
            let p = stack.post(&t, id).await;
            (p["status"] == "published").then_some(p)
        })
        .await;
    for (platform, account) in [("facebook", &page), ("linkedin", &org), ("x", &user)] {
        let uploads = stack.fake_media(platform, account).await;
        let [upload] = uploads.as_slice() else {
            panic!("{platform}: one upload expected: {uploads:?}")
        };
        assert_eq!(
            upload["sha256"],
            sha256_hex(&photo),
            "{platform}: the very bytes"
        );
        assert_eq!(upload["bytes"], 120_000, "{platform}");
        let posts = stack.fake_posts(platform, account).await;
        let [on_platform] = posts.as_slice() else {
            panic!("{platform}: one post expected: {posts:?}")
        };
        assert_eq!(on_platform["media"], json!([upload["id"]]), "{platform}");
        assert!(
            upload["seq"].as_i64() < on_platform["seq"].as_i64(),
            "{platform}: the upload came first"
        );
        let variant = published["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["platform"] == platform)
            .unwrap();
        assert_eq!(variant["platform_post_id"], on_platform["id"], "{platform}");
    }
}

#[tokio::test]
async fn a_bad_media_set_gets_one_422_listing_every_violation_and_creates_nothing() {
    use herald_domain::media::samples;
    let stack = Stack::get();
    let t = stack.tenant(false);
    let (page, org) = (unique("page"), unique("org"));
    let fb = stack.connect(&t, "facebook", &page, "fb-token").await;
    let li = stack.connect(&t, "linkedin", &org, "li-token").await;
    let small = stack
        .upload_media(&t, "image/png", "small.png", &samples::png(300, 200, 5_000))
        .await;
    // Named and declared a PNG; its bytes are a PDF.
    let pdf_as_png = stack
        .upload_media(&t, "image/png", "photo.png", &samples::pdf(8_000))
        .await;
    let oversize = stack
        .upload_media(
            &t,
            "image/jpeg",
            "big.jpg",
            &samples::jpeg(1200, 630, 4 * 1024 * 1024 + 1),
        )
        .await;
    let (s, _, never) = stack
        .api(
            Method::POST,
            "/v1/media",
            &t,
            None,
            Some(json!({"content_type": "image/gif", "file_name": "later.gif", "size": 100})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let never = never["id"].as_str().unwrap().to_owned();
    let (s, h, v) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(json!({"text": "bad media", "media": [small, pdf_as_png, oversize, never, "med_unknown"],
                "targets": [{"account_id": fb}, {"account_id": li}]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    let got: Vec<(String, String, String, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
            (
                text("field"),
                text("media_id"),
                text("platform"),
                text("rule"),
            )
        })
        .collect();
    let row = |f: &str, m: &str, p: &str, r: &str| (f.into(), m.into(), p.into(), r.into());
    assert_eq!(
        got,
        vec![
            row("media[0]", &small, "facebook", "too_small"),
            row("media[1]", &pdf_as_png, "-", "type_mismatch"),
            row("media[1]", &pdf_as_png, "facebook", "type_not_accepted"),
            row("media[2]", &oversize, "facebook", "too_large"),
            row("media[3]", &never, "-", "not_uploaded"),
            row("media[4]", "med_unknown", "-", "unknown_media"),
            row("media[0]", &small, "linkedin", "too_small"),
            row("media[1]", &pdf_as_png, "linkedin", "not_alone"),
        ],
        "{v}"
    );
    let too_large = &v["errors"][3];
    assert_eq!(
        (&too_large["limit"], &too_large["actual"]),
        (&json!(4 * 1024 * 1024), &json!(4 * 1024 * 1024 + 1))
    );
    assert_eq!(
        v["errors"][0]["limit"],
        json!({"width": 600, "height": 315})
    );
    assert_eq!(
        v["errors"][0]["actual"],
        json!({"width": 300, "height": 200})
    );
    let (_, _, list) = stack.api(Method::GET, "/v1/posts", &t, None, None).await;
    assert_eq!(list["items"], json!([]), "nothing created");
    assert!(stack.fake_media("facebook", &page).await.is_empty());
    assert!(stack.fake_posts("linkedin", &org).await.is_empty());
}

#[tokio::test]
async fn lost_answers_around_media_never_leave_a_second_post() {
    use herald_domain::media::samples;
    let stack = Stack::get();
    let t = stack.tenant(false);
    let (page, user) = (unique("page"), unique("user"));
    let fb = stack.connect(&t, "facebook", &page, "fb-token").await;
    let x = stack.connect_mapped(&t, "x", &user).await;
    let photo = samples::jpeg(1200, 630, 20_000);
    let media = stack.upload_media(&t, "image/jpeg", "p.jpg", &photo).await;
    // Facebook creates the post and the answer is lost; X stores the upload and its answer is
    // lost.
    stack
        .fault(json!({"platform": "facebook", "account": page, "ambiguous": true, "count": 1}))
        .await;
    stack
        .fault(json!({"platform": "x", "account": user, "endpoints": "upload", "ambiguous": true, "count": 1}))
        .await;
    let (s, _, post) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(
                json!({"text": "said once, with a picture", "media": [media],
                "targets": [{"account_id": fb}, {"account_id": x}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    let id = post["id"].as_str().unwrap();
    stack
        .wait_for(PUBLISH_TIMEOUT, "both variants to settle", || async {
            (stack.post(&t, id).await["status"] == "published").then_some(())
        })
        .await;
    let fb_posts = stack.fake_posts("facebook", &page).await;
    assert_eq!(fb_posts.len(), 1, "looked up and adopted: {fb_posts:?}");
    assert_eq!(
        stack.fake_media("facebook", &page).await.len(),
        1,
        "not uploaded again"
    );
    let x_posts = stack.fake_posts("x", &user).await;
    let x_media = stack.fake_media("x", &user).await;
    assert_eq!(x_posts.len(), 1, "{x_posts:?}");
    assert_eq!(x_media.len(), 2, "the lost upload was simply sent again");
    assert_eq!(x_posts[0]["media"], json!([x_media[1]["id"]]));
}

/// An inbound event that could not be applied waits in the webhook DLQ; an operator finds it
/// with `herald dead-letters list` and requeues it, and the processor then keeps it once.
#[tokio::test]
async fn a_dead_lettered_webhook_is_listed_and_requeued_by_the_operator_cli() {
    let stack = Stack::get();
    let event_id = unique("evt_");
    let event = json!({
        "provider": "demo", "scheme": "standard_webhooks", "event_id": event_id,
        "received_at": "2026-11-22T12:00:00Z", "correlation_id": unique("corr-"),
        "body": json!({"type": "demo.retried"}).to_string(),
    });
    let sqs = stack.sqs().await;
    sqs.send_message()
        .queue_url(stack.url("HERALD_WEBHOOK_DLQ_URL"))
        .message_body(event.to_string())
        .send()
        .await
        .unwrap();
    let herald = |args: &[&str]| {
        let out = std::process::Command::new(repo_root().join("target/debug/herald"))
            .envs(&stack.env)
            .arg("dead-letters")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = herald(&["list"]);
    let letter: Value = listed
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["body"].as_str().is_some_and(|b| b.contains(&event_id)))
        .unwrap_or_else(|| panic!("not listed: {listed}"));
    assert_eq!(letter["source"], "webhooks");
    assert_eq!(letter["kind"], "webhook:demo");
    herald(&["requeue", letter["id"].as_str().unwrap()]);
    let kept = stack
        .wait_for(
            Duration::from_secs(30),
            "the requeued event kept",
            || async { stack.kept_event("demo", &event_id).await },
        )
        .await;
    assert_eq!(kept["kind"].as_s().unwrap(), "demo.retried");
}

/// The bootstrap operator token from Secrets Manager creates a tenant over HTTP (idempotently,
/// audited in the new tenant's log); a rotation by the real rotation function changes nothing
/// for a caller: the new token works at once and the old one through the grace period.
#[tokio::test]
async fn the_operator_token_creates_tenants_and_keeps_working_across_its_rotation() {
    let stack = Stack::get();
    let api = stack.url("HERALD_API_URL").to_owned();
    let create = |token: String, body: Value, key: Option<String>| {
        let mut request = stack
            .http
            .post(format!("{api}/v1/tenants"))
            .bearer_auth(token)
            .json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        async move { request.send().await.unwrap() }
    };
    let old = stack.secret("herald-AdminTokenSecret").await;
    let name = unique("acme-");
    let key = unique("op-");
    let created = create(old.clone(), json!({"name": name}), Some(key.clone())).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let replayed = create(old.clone(), json!({"name": name}), Some(key)).await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    let replayed: Value = replayed.json().await.unwrap();
    assert_eq!(
        replayed["id"], created["id"],
        "a retry creates no second tenant"
    );

    let tenant_key = created["api_key"]["key"].as_str().unwrap().to_owned();
    let tenant: Value = stack
        .http
        .get(format!("{api}/v1/tenant"))
        .bearer_auth(&tenant_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenant["name"], name.as_str());
    let audit: Value = stack
        .http
        .get(format!("{api}/v1/audit"))
        .bearer_auth(&tenant_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"tenant.created"), "{audit}");

    // Rotate with the real rotation function, as Secrets Manager would.
    let runtime = stack.url("HERALD_RUNTIME_URL").to_owned();
    let token = uuid::Uuid::new_v4().to_string();
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let res = stack
            .http
            .post(format!("{runtime}/2015-03-31/functions/rotator/invocations"))
            .json(&json!({"SecretId": "herald-AdminTokenSecret", "ClientRequestToken": token, "Step": step}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{step}: {}", res.status());
        assert!(
            res.headers().get("x-amz-function-error").is_none(),
            "{step} failed"
        );
    }
    let new = stack.secret("herald-AdminTokenSecret").await;
    assert_ne!(new, old);
    // A token the cached ring does not know refetches it, at most once per 10 s per process
    // (so forged tokens cannot flood Secrets Manager): let the last fetch age past that.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for token in [new, old] {
        let res = create(token, json!({"name": unique("after-")}), None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }

    // Refusals: a tenant's key, a wrong token, a bad body.
    for (token, body, status) in [
        (
            tenant_key.clone(),
            json!({"name": "x"}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "hrld_wrong".to_owned(),
            json!({"name": "x"}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            stack.secret("herald-AdminTokenSecret").await,
            json!({"name": " "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let res = create(token, body, None).await;
        assert_eq!(res.status(), status);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
}

#[path = "e2e_tokens.rs"]
mod tokens;
