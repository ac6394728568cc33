//! The health check against the emulated AWS: each adapter probe passes on what exists and
//! fails on what does not, a queue's oldest message age (CloudWatch) and its dead letters
//! turn it `warn` and `fail`, the account census reads every tenant's accounts from the
//! `poll` index, and the API function's own wiring answers 503 with the failing check (never
//! a 500) when a dependency is gone.

use crate::support::*;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use herald_aws::health::{BucketProbe, QueueProbe, SecretProbe, TableProbe};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::health::{AccountCensus, AppBlocks, Check, Observed, Probe, Status};
use herald_domain::ids::{AccountId, Platform, TenantId};
use herald_domain::model::{Account, AccountStatus};
use herald_domain::ports::{AccountStore, AppLimiter, PublishStore};
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt;

async fn one(probe: &dyn Probe) -> Check {
    let mut checks = probe.check(SystemClock.now()).await;
    assert_eq!(checks.len(), 1, "{checks:?}");
    checks.remove(0)
}

#[tokio::test]
async fn table_secret_and_bucket_probes_pass_on_what_exists_and_fail_on_what_does_not() {
    let Emulator { vars, clients } = Emulator::new().await;
    let table = |table: &str, sort_key| TableProbe {
        client: clients.dynamodb.clone(),
        table: table.to_owned(),
        label: "main",
        sort_key,
    };
    for (name, sort_key) in [
        ("HERALD_TABLE", true),
        ("HERALD_AUDIT_TABLE", true),
        ("HERALD_IDEMPOTENCY_TABLE", false),
    ] {
        let check = one(&table(&vars[name], sort_key)).await;
        assert_eq!(check.status, Status::Pass, "{name}: {check:?}");
        assert!(
            matches!(check.observed, Some(Observed::Millis(_))),
            "{check:?}"
        );
    }
    let missing = one(&table("no-such-table", true)).await;
    assert_eq!(missing.status, Status::Fail, "{missing:?}");
    assert!(missing.output.is_some());

    let secret = |secret_id: &str| SecretProbe {
        client: clients.secrets.clone(),
        secret_id: secret_id.to_owned(),
        label: "token-encryption-key",
    };
    let found = one(&secret(&vars["HERALD_TOKEN_KEY_SECRET"])).await;
    assert_eq!(found.status, Status::Pass, "{found:?}");
    assert_eq!(one(&secret("no-such-secret")).await.status, Status::Fail);

    let bucket = |bucket: &str| BucketProbe {
        client: clients.s3.clone(),
        bucket: bucket.to_owned(),
    };
    assert_eq!(
        one(&bucket(&vars["HERALD_MEDIA_BUCKET"])).await.status,
        Status::Pass
    );
    assert_eq!(
        one(&bucket("no-such-bucket-here")).await.status,
        Status::Fail
    );
}

#[tokio::test]
async fn a_queue_warns_then_fails_as_its_oldest_message_ages_and_dead_letters_warn() {
    let Emulator { clients, .. } = Emulator::new().await;
    let url = herald_tests::create_queue(&clients.sqs, "health-q-").await;
    let dlq = herald_tests::create_queue(&clients.sqs, "health-dlq-").await;
    let name = url.rsplit('/').next().unwrap().to_owned();
    let probe = QueueProbe {
        sqs: clients.sqs.clone(),
        cloudwatch: clients.cloudwatch.clone(),
        label: "publish",
        url: url.clone(),
        dead_letter_url: Some(dlq.clone()),
        age_warn: time::Duration::minutes(5),
        age_fail: time::Duration::minutes(30),
    };
    let checks = |found: Vec<Check>| -> std::collections::BTreeMap<String, Check> {
        found.into_iter().map(|c| (c.name.clone(), c)).collect()
    };

    let quiet = checks(probe.check(SystemClock.now()).await);
    assert_eq!(quiet["sqs:depth"].observed, Some(Observed::Count(0)));
    assert_eq!(
        quiet["sqs:oldestMessageAge"].status,
        Status::Pass,
        "no datapoint: {quiet:?}"
    );
    assert_eq!(quiet["sqs:oldestMessageAge"].observed, None);
    assert_eq!(quiet["deadLetters:count"].status, Status::Pass);

    for body in ["a", "b"] {
        clients
            .sqs
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    clients
        .sqs
        .send_message()
        .queue_url(&dlq)
        .message_body("dead")
        .send()
        .await
        .unwrap();
    // What SQS reports to CloudWatch on AWS, put by hand: the emulator measures nothing.
    let age = |seconds: f64| {
        let cloudwatch = clients.cloudwatch.clone();
        let name = name.clone();
        async move {
            use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
            cloudwatch
                .put_metric_data()
                .namespace("AWS/SQS")
                .metric_data(
                    MetricDatum::builder()
                        .metric_name("ApproximateAgeOfOldestMessage")
                        .dimensions(Dimension::builder().name("QueueName").value(name).build())
                        .value(seconds)
                        .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(
                            std::time::SystemTime::now(),
                        ))
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    };
    age(420.0).await;
    let late = checks(probe.check(SystemClock.now()).await);
    assert_eq!(late["sqs:depth"].observed, Some(Observed::Count(2)));
    let oldest = &late["sqs:oldestMessageAge"];
    assert_eq!(
        (oldest.status, &oldest.observed),
        (Status::Warn, &Some(Observed::Seconds(420))),
        "{late:?}"
    );
    let dead = &late["deadLetters:count"];
    assert_eq!(
        (dead.status, &dead.observed),
        (Status::Warn, &Some(Observed::Count(1)))
    );

    age(2400.0).await;
    let stuck = checks(probe.check(SystemClock.now()).await);
    assert_eq!(
        stuck["sqs:oldestMessageAge"].status,
        Status::Fail,
        "{stuck:?}"
    );

    let gone = QueueProbe {
        url: format!("{url}-gone"),
        dead_letter_url: None,
        ..probe
    };
    let gone = checks(gone.check(SystemClock.now()).await);
    assert_eq!(gone["sqs:depth"].status, Status::Fail, "{gone:?}");
    assert!(!gone.contains_key("deadLetters:count"));
}

fn account(tenant: &TenantId, external: &str, expires_in_minutes: Option<i64>) -> Account {
    let now = SystemClock.now();
    Account {
        id: Account::id_for(Platform::X, external),
        tenant_id: tenant.clone(),
        platform: Platform::X,
        external_id: external.into(),
        display_name: None,
        access_token: SecretString::from("tok"),
        refresh_token: None,
        token_expires_at: expires_in_minutes.map(|m| now + time::Duration::minutes(m)),
        status: AccountStatus::Active,
        created_at: now,
        updated_at: now,
        breaker: Default::default(),
    }
}

#[tokio::test]
async fn the_census_counts_every_tenants_accounts_and_app_blocks_are_read_back() {
    let Emulator { vars, clients } = Emulator::new().await;
    let store = store_on(&clients, &vars, [4; 32]);
    let (a, b) = (TenantId(unique("ten_a")), TenantId(unique("ten_b")));
    for acc in [
        account(&a, "a-1", None),
        account(&a, "a-soon", Some(10)),
        account(&b, "b-later", Some(600)),
        account(&b, "b-refused", Some(5)),
    ] {
        store.upsert_account(&acc).await.unwrap();
    }
    let refused = Account::id_for(Platform::X, "b-refused");
    store
        .mark_needs_reauth(&b, &refused, SystemClock.now())
        .await
        .unwrap();
    let now = SystemClock.now();
    let census = store
        .census(
            now + time::Duration::hours(24),
            now + time::Duration::minutes(15),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            census.accounts,
            census.needs_reauth,
            census.expiring,
            census.overdue
        ),
        (4, 1, 2, 1),
        "a refused account is counted once, as needing reauthorisation: {census:?}"
    );
    assert!(
        store
            .get_account(&b, &AccountId(refused.0.clone()))
            .await
            .unwrap()
            .is_some(),
        "the census changes nothing"
    );

    assert_eq!(store.app_block(Platform::X).await.unwrap(), None);
    let until = now + time::Duration::minutes(7);
    store.block_app(Platform::X, until).await.unwrap();
    let read = store.app_block(Platform::X).await.unwrap().unwrap();
    assert_eq!(read.unix_timestamp(), until.unix_timestamp());
    assert_eq!(store.app_block(Platform::Linkedin).await.unwrap(), None);
}

#[tokio::test]
async fn the_api_answers_503_naming_the_dependency_that_is_gone_never_500() {
    let aws = herald_tests::local_aws();
    let (_, functions) = herald_tests::bootstrap_functions(aws);
    let mut env = functions["api"].clone();
    let clients = aws.clients().await;
    let operator = herald_tests::operator_token(&clients, &env).await;
    let get =
        |env: &std::collections::HashMap<String, String>, path: &'static str, token: String| {
            let app = herald_tests::api_router(&clients, env);
            async move {
                let request = Request::get(path)
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap();
                let res = app.oneshot(request).await.unwrap();
                let status = res.status();
                let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
                let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
                (status, kind, String::from_utf8(bytes.to_vec()).unwrap())
            }
        };
    let ask = |env: &std::collections::HashMap<String, String>| {
        let answer = get(env, "/v1/health", operator.clone());
        async move {
            let (status, _, body) = answer.await;
            (status, serde_json::from_str::<Value>(&body).unwrap())
        }
    };
    let status_of = |v: &Value, name: &str, component: &str| -> String {
        v["checks"][name]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["componentId"] == component))
            .unwrap_or_else(|| panic!("no {name} for {component}: {v}"))["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let (_, v) = ask(&env).await;
    for (name, component) in [
        ("dynamodb:responseTime", "main"),
        ("dynamodb:responseTime", "audit"),
        ("dynamodb:responseTime", "idempotency"),
        ("sqs:depth", "publish"),
        ("sqs:depth", "ingest"),
        ("sqs:depth", "webhook"),
        ("sqs:depth", "outbound"),
        ("sqs:depth", "sms"),
        ("deadLetters:count", "publish"),
        ("secretsmanager:responseTime", "token-encryption-key"),
        ("s3:responseTime", "media"),
        ("accounts:needsReauth", "all tenants"),
        // A count: `pass` unless the marker partition cannot be read.
        ("sms:liveCampaigns", "all tenants"),
        ("platform:appBlock", "x"),
    ] {
        assert_eq!(
            status_of(&v, name, component),
            "pass",
            "{name} {component}: {v}"
        );
    }
    assert_eq!(
        status_of(&v, "heartbeat:age", "dispatcher"),
        "warn",
        "nothing ran here: {v}"
    );

    env.insert(
        "HERALD_MEDIA_BUCKET".into(),
        "herald-bucket-that-is-gone".into(),
    );
    let (status, v) = ask(&env).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["status"], "fail");
    assert_eq!(status_of(&v, "s3:responseTime", "media"), "fail");
    assert_eq!(
        status_of(&v, "dynamodb:responseTime", "main"),
        "pass",
        "the rest still answer: {v}"
    );

    // The same measurements as OpenMetrics gauges, for the operator only.
    let (status, kind, text) = get(&env, "/v1/metrics", operator.clone()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        kind,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    for line in [
        "herald_queue_messages{queue=\"publish\"} 0.0",
        "herald_dead_letters{queue=\"outbound\"} 0.0",
        "herald_check_status{check=\"s3:responseTime\",component=\"media\"} 2.0",
        "herald_check_status{check=\"dynamodb:responseTime\",component=\"main\"} 0.0",
        "herald_accounts{scope=\"all tenants\"} 0.0",
        "herald_check_status{check=\"heartbeat:age\",component=\"dispatcher\"} 1.0",
        "# TYPE herald_queue_messages gauge",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (status, kind, _) = get(&env, "/v1/metrics", "hrld_not_the_operator".into()).await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::UNAUTHORIZED, "application/problem+json")
    );

    // The main table gone: the operator (whose token needs no table) still gets every check.
    let mut no_table = env.clone();
    no_table.insert("HERALD_TABLE".into(), "herald-table-that-is-gone".into());
    let (status, v) = ask(&no_table).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(
        status_of(&v, "dynamodb:responseTime", "main"),
        "fail",
        "{v}"
    );
    assert_eq!(status_of(&v, "heartbeat:age", "reconciler"), "fail", "{v}");
    assert_eq!(status_of(&v, "sqs:depth", "publish"), "pass", "{v}");
}
