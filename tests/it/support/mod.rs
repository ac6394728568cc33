//! The harness every test in this binary shares.
//!
//! - [`Stack`]: the local stack (`make up`) for the end-to-end tests: its variables, fresh
//!   tenants through the operator CLI, API requests (`api`, `send`, `get`, `patch`), the fake
//!   platforms' admin endpoints, waiting, and reads of what the stack stored.
//! - [`Emulator`]: this binary's own emulated AWS with the template's resources, SDK clients and
//!   a store, for the adapter tests.
//! - [`browser::Browser`]: headless Chromium under WebDriver, for tests that click and type.
//!
//! A test file adds helpers of its own in an `impl Stack` block of its own.

pub mod browser;
pub mod secrets;

use aws_sdk_dynamodb::types::AttributeValue;
use herald_aws::Clients;
use herald_aws::dynamo::DynamoStore;
use herald_domain::secrets::token_crypto::{TokenKeys, TokenVault};
use herald_tests::{bootstrap, local_aws, local_stack, repo_root, sdk_config};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `prefix` and 12 random hex digits: names no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Whether an answer is an RFC 9457 problem document.
pub fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"))
}

/// Sends `request` and reads its answer's JSON (for requests past the API helpers: the fake
/// platforms' admin, the embed routes, a raw key).
pub async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// A tenant made for one test, with its admin key.
pub struct Tenant {
    pub id: String,
    pub key: String,
}

/// What authenticates an API request: a tenant (its admin key) or a key.
pub trait Bearer {
    fn bearer(&self) -> &str;
}

impl Bearer for Tenant {
    fn bearer(&self) -> &str {
        &self.key
    }
}

impl Bearer for str {
    fn bearer(&self) -> &str {
        self
    }
}

impl Bearer for String {
    fn bearer(&self) -> &str {
        self
    }
}

/// The running local stack.
pub struct Stack {
    pub env: HashMap<String, String>,
    pub http: reqwest::Client,
}

impl Stack {
    pub fn running() -> Self {
        let env = local_stack().expect(
            "the local stack is not running: start it with `make up` (make test does this itself)",
        );
        if let Some(url) = env.get("HERALD_ALERT_WEBHOOK_URL") {
            secrets::remember("alert_webhook_url", url);
        }
        Self {
            env,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// A variable of `.herald/local.env`.
    pub fn url(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from .herald/local.env"))
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.url("HERALD_API_URL"))
    }

    /// A fresh tenant through the operator CLI, so tests never share data.
    pub fn tenant(&self) -> Tenant {
        let v = &self.cli(&["tenant", "create", "--name", &unique("it-")])[0];
        secrets::remember_json(v);
        Tenant {
            id: v["tenant_id"].as_str().unwrap().into(),
            key: v["api_key"].as_str().unwrap().into(),
        }
    }

    /// Runs the `herald` CLI against the stack; answers its stdout's JSON lines.
    pub fn cli(&self, args: &[&str]) -> Vec<Value> {
        let out = std::process::Command::new(repo_root().join("target/debug/herald"))
            .envs(&self.env)
            .args(args)
            .output()
            .expect("run target/debug/herald");
        assert!(
            out.status.success(),
            "herald {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        // One JSON document, pretty-printed or not, or one per line.
        match serde_json::from_str(&text) {
            Ok(v) => vec![v],
            Err(_) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        }
    }

    /// Sends `req`; answers its status, headers and body (JSON, or the text as a string).
    pub async fn call(&self, req: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        secrets::remember_json(&body);
        (status, headers, body)
    }

    /// An API request with an explicit idempotency key (or none).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        auth: &(impl Bearer + ?Sized),
        idem: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        secrets::remember("api_key", auth.bearer());
        let mut req = self
            .http
            .request(method, self.api_url(path))
            .bearer_auth(auth.bearer());
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            secrets::remember_json(&b);
            req = req.json(&b);
        }
        self.call(req).await
    }

    /// An API request with a fresh idempotency key on writes; answers status and body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: &(impl Bearer + ?Sized),
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let idem = (method != Method::GET).then(|| unique("k-"));
        let (s, _, v) = self.api(method, path, auth, idem.as_deref(), body).await;
        (s, v)
    }

    pub async fn get(
        &self,
        path: &str,
        auth: &(impl Bearer + ?Sized),
    ) -> (StatusCode, HeaderMap, Value) {
        self.api(Method::GET, path, auth, None, None).await
    }

    pub async fn patch(
        &self,
        path: &str,
        auth: &(impl Bearer + ?Sized),
        body: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        self.api(Method::PATCH, path, auth, None, Some(body)).await
    }

    /// A post as the API shows it.
    pub async fn read_post(&self, t: &Tenant, id: &str) -> Value {
        let (s, _, v) = self.get(&format!("/v1/posts/{id}"), t).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Waits until the post's first variant reaches `status`; answers the post.
    pub async fn await_variant(&self, t: &Tenant, id: &str, status: &str) -> Value {
        self.wait_for(
            Duration::from_secs(60),
            &format!("post {id} {status}"),
            || async {
                let v = self.read_post(t, id).await;
                (v["variants"][0]["status"] == status).then_some(v)
            },
        )
        .await
    }

    pub async fn connect(
        &self,
        t: &(impl Bearer + ?Sized),
        platform: &str,
        external_id: &str,
        token: &str,
    ) -> String {
        // Herald asks the platform who a token is before it connects the account: the fake
        // answers with the account the token is registered for. Tests run at once and name
        // tokens alike ("li-token"): each connection gets a token of its own.
        let token = &unique(&format!("{token}-"));
        self.fake(
            "/_admin/tokens",
            json!({"platform": platform, "token": token, "account": external_id}),
        )
        .await;
        let (s, _, v) = self
            .api(Method::POST, "/v1/accounts", t, None, Some(json!({"platform": platform, "external_id": external_id, "access_token": token})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().into()
    }

    /// A new Bluesky account on the fake (`<prefix><random>.test`), connected with its app
    /// password: the account's id and its DID (its `external_id`, and its owner on the fake).
    pub async fn connect_bluesky(
        &self,
        t: &(impl Bearer + ?Sized),
        prefix: &str,
    ) -> (String, String) {
        let handle = format!("{}.test", unique(prefix));
        let password = unique("app-pass-");
        secrets::remember("app_password", &password);
        let created = self
            .fake(
                "/_admin/bluesky/accounts",
                json!({"handle": handle, "password": password}),
            )
            .await;
        let (s, _, v) = self
            .api(
                Method::POST,
                "/v1/accounts",
                t,
                None,
                Some(
                    json!({"platform": "bluesky", "external_id": handle, "access_token": password}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["external_id"], created["did"]);
        (
            v["id"].as_str().unwrap().into(),
            v["external_id"].as_str().unwrap().into(),
        )
    }

    /// Records every session token the fake Bluesky issued to an account (Herald signed in
    /// and refreshed with them: none may reach its logs).
    pub async fn remember_bluesky_sessions(&self, did: &str) {
        let listed = self
            .fake_get(&format!("/_admin/bluesky/sessions?account={did}"))
            .await;
        for session in listed["sessions"].as_array().into_iter().flatten() {
            let kind = match session["kind"].as_str() {
                Some("refresh") => "refresh_token",
                _ => "access_token",
            };
            secrets::remember(kind, session["token"].as_str().unwrap_or_default());
        }
    }

    /// Connects an account with a fresh token the fake platform knows as the account's.
    pub async fn connect_mapped(
        &self,
        t: &(impl Bearer + ?Sized),
        platform: &str,
        external_id: &str,
    ) -> String {
        let token = unique(&format!("{platform}-token-"));
        self.connect(t, platform, external_id, &token).await
    }

    /// Schedules a post `in_secs` from now on one account.
    pub async fn schedule(&self, t: &Tenant, account: &str, text: &str, in_secs: i64) -> Value {
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

    /// A POST to the fake platforms' admin endpoints, which must succeed.
    pub async fn fake(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url("FAKE_PLATFORMS_URL"));
        let res = self.http.post(url).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "the fake refused {path}: {body}");
        res.json().await.unwrap()
    }

    /// A GET of the fake platforms' admin endpoints, which must succeed.
    pub async fn fake_get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.url("FAKE_PLATFORMS_URL"));
        let res = self.http.get(url).send().await.unwrap();
        assert!(res.status().is_success(), "the fake refused {path}");
        res.json().await.unwrap()
    }

    /// The requests a sink of the fake platforms took (`alerts`, or an outbound endpoint's).
    pub async fn sink_requests(&self, sink: &str) -> Vec<Value> {
        let v = self.fake_get(&format!("/_admin/sinks/{sink}")).await;
        v["requests"].as_array().cloned().unwrap_or_default()
    }

    /// The keys of the alerts Herald sent to the alert webhook, oldest first.
    pub async fn alert_keys(&self) -> Vec<String> {
        self.sink_requests("alerts")
            .await
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(r["body"].as_str()?).ok())
            .filter_map(|b| b["herald"]["key"].as_str().map(str::to_owned))
            .collect()
    }

    pub async fn fake_posts(&self, platform: &str, account: &str) -> Vec<Value> {
        self.fake_listing("posts", platform, account).await
    }

    /// What the fake platforms received for an account: `posts` or `media`.
    pub async fn fake_listing(&self, what: &str, platform: &str, account: &str) -> Vec<Value> {
        let url = format!("{}/_admin/{what}", self.url("FAKE_PLATFORMS_URL"));
        let v = json_of(
            self.http
                .get(url)
                .query(&[("platform", platform), ("account", account)]),
        )
        .await;
        v[what].as_array().cloned().unwrap_or_default()
    }

    /// Adds a fault rule on the fake platforms; returns its id.
    pub async fn fault(&self, rule: Value) -> String {
        let v = self.fake("/_admin/faults", rule).await;
        v["id"].as_str().unwrap().to_owned()
    }

    pub async fn remove_fault(&self, id: &str) {
        let url = format!("{}/_admin/faults/{id}", self.url("FAKE_PLATFORMS_URL"));
        let res = self.http.delete(url).send().await.unwrap();
        assert!(res.status().is_success());
    }

    /// Kills the local runtime's instances of `function` (with `busy`, only those in the middle
    /// of an invocation): what it killed.
    pub async fn kill(&self, function: &str, busy: bool) -> Vec<Value> {
        let runtime = self.url("HERALD_RUNTIME_URL");
        let query = if busy { "?busy=1" } else { "" };
        let res = self
            .http
            .post(format!("{runtime}/_admin/functions/{function}/kill{query}"))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "the runner refused to kill {function}"
        );
        let v: Value = res.json().await.unwrap();
        v["killed"].as_array().cloned().unwrap_or_default()
    }

    /// Waits (a minute at most) until `function` is caught running, and kills it.
    pub async fn kill_mid_run(&self, function: &str, busy: bool, what: &str) -> Vec<Value> {
        self.wait_for(Duration::from_secs(60), what, || async {
            let killed = self.kill(function, busy).await;
            (!killed.is_empty()).then_some(killed)
        })
        .await
    }

    /// Polls `f` until it returns `Some`, or fails after `timeout` with `what`.
    pub async fn wait_for<T, F, Fut>(&self, timeout: Duration, what: &str, mut f: F) -> T
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
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A request with the operator token (and a fresh idempotency key). Another test may rotate
    /// the token at any time, and the API refetches a token it does not know at most every
    /// 10 s: a 401 is retried with the token read again, for up to 15 s.
    pub async fn operator(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let token = self.secret("herald-AdminTokenSecret").await;
            let answer = self
                .api(
                    method.clone(),
                    path,
                    &token,
                    Some(&unique("k-")),
                    body.clone(),
                )
                .await;
            if answer.0 != StatusCode::UNAUTHORIZED || Instant::now() > deadline {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub async fn sdk(&self) -> aws_config::SdkConfig {
        sdk_config(self.url("AWS_ENDPOINT_URL")).await
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk().await)
    }

    pub async fn ddb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&sdk_config(self.url("AWS_ENDPOINT_URL_DYNAMODB")).await)
    }

    pub async fn queue_is_drained(&self, url: &str) -> bool {
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

    /// A kept inbound event (the processor's record), if there is one.
    pub async fn kept_event(
        &self,
        provider: &str,
        event_id: &str,
    ) -> Option<HashMap<String, AttributeValue>> {
        self.ddb()
            .await
            .get_item()
            .table_name(self.url("HERALD_TABLE"))
            .key("pk", AttributeValue::S(format!("WEBHOOK#{provider}")))
            .key("sk", AttributeValue::S(format!("EVENT#{event_id}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    /// Waits until the processor has kept the event; answers its record.
    pub async fn await_kept(
        &self,
        provider: &str,
        event_id: &str,
    ) -> HashMap<String, AttributeValue> {
        self.wait_for(
            Duration::from_secs(60),
            &format!("{provider} event {event_id} kept"),
            || self.kept_event(provider, event_id),
        )
        .await
    }

    /// A secret's current value, from the emulated Secrets Manager.
    pub async fn secret(&self, name: &str) -> String {
        let sm = aws_sdk_secretsmanager::Client::new(&self.sdk().await);
        // The stage named explicitly: moto answers a bare GetSecretValue with a stale version
        // after UpdateSecretVersionStage.
        let value = sm
            .get_secret_value()
            .secret_id(name)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned();
        if name.contains("AdminToken") {
            secrets::remember("operator_token", &value);
        }
        value
    }
}

/// This binary's emulated AWS with the template's resources (`bootstrap`), and SDK clients.
pub struct Emulator {
    pub vars: HashMap<String, String>,
    pub clients: Clients,
}

impl Emulator {
    pub async fn new() -> Self {
        let vars = bootstrap(local_aws());
        let clients = local_aws().clients().await;
        Self { vars, clients }
    }
}

/// The DynamoDB store on the main and audit tables, sealing tokens under `key`.
pub fn store_on(clients: &Clients, vars: &HashMap<String, String>, key: [u8; 32]) -> DynamoStore {
    DynamoStore::new(clients.dynamodb.clone(), &vars["HERALD_TABLE"])
        .with_audit_table(&vars["HERALD_AUDIT_TABLE"])
        .with_token_vault(vault(&key, &[]))
}

/// A token vault with fixed keys: `current` seals, `previous` still open.
pub fn vault(current: &[u8], previous: &[&[u8]]) -> Arc<TokenVault> {
    Arc::new(TokenVault::fixed(
        TokenKeys::from_keys(current, previous).unwrap(),
    ))
}
