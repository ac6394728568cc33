//! Queues and records around the publish path: dead letters, idempotency records, the
//! publisher handler's batch answer, queue sends, and the reconciler.

use super::*;
use aws_sdk_dynamodb::types::AttributeValue;

/// The dead-letter tools on SQS: list, requeue (a fresh failure budget, the correlation id
/// kept) and delete, each exactly once.
#[tokio::test]
async fn dead_letters_are_listed_requeued_and_deleted_once() {
    let env = Env::new().await;
    let message = |post: &str| PublishMessage {
        tenant_id: env.tenant.clone(),
        post_id: PostId(post.into()),
        account_id: env.account.clone(),
        platform: Platform::Facebook,
        correlation_id: format!("corr-{post}"),
        failures: 5,
    };
    for post in ["post_a", "post_b"] {
        env.queue
            .dead_letter(&message(post), "503 five times")
            .await
            .unwrap();
    }
    let letters = SqsDeadLetters::new(
        env.clients.sqs.clone(),
        vec![DeadLetterQueue {
            source: "publish".into(),
            url: env.vars["HERALD_QUEUE_URL_PUBLISH_DEAD_LETTER_QUEUE"].clone(),
            source_url: env.vars["HERALD_PUBLISH_QUEUE_URL"].clone(),
        }],
    );
    let listed = letters.list(10).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let find = |post: &str| {
        listed
            .iter()
            .find(|l| l.body.contains(post))
            .cloned()
            .unwrap()
    };
    let (a, b) = (find("post_a"), find("post_b"));
    assert_eq!(a.source, "publish");

    assert!(letters.delete(&a).await.unwrap());
    assert!(
        !letters.delete(&a).await.unwrap(),
        "gone: nothing to delete"
    );
    assert!(letters.requeue(&b).await.unwrap());
    assert!(!letters.requeue(&b).await.unwrap(), "moved once, not twice");
    tokio::time::sleep(Duration::from_millis(1100)).await; // the list's visibility hold
    assert!(
        letters.list(10).await.unwrap().is_empty(),
        "the DLQ is empty"
    );
    let back = env.receive().await;
    assert_eq!(back.len(), 1, "exactly one copy back in the source queue");
    assert_eq!(
        back[0].message_attributes().unwrap()["correlation_id"].string_value(),
        Some("corr-post_b"),
        "the correlation id follows the message"
    );
    let copy: PublishMessage = serde_json::from_str(back[0].body().unwrap()).unwrap();
    assert_eq!(
        copy,
        PublishMessage {
            failures: 0,
            ..message("post_b")
        }
    );
}

/// Idempotency records on DynamoDB: a duplicate costs one failed conditional write and no
/// read; the record belongs to the credential that wrote it; the response is stored sealed
/// (no byte of it in the item); expiry is decided in code; records from before sealing are
/// never replayed and `herald idempotency purge-legacy` deletes them.
#[tokio::test]
async fn idempotency_records_replay_sealed_to_their_owner_only() {
    let env = Env::new().await;
    let table = &env.vars["HERALD_IDEMPOTENCY_TABLE"];
    let idem_with = |in_progress: i64| {
        Idempotency::new(
            Arc::new(DynamoIdempotency::new(env.clients.dynamodb.clone(), table)),
            vault(&[7; 32], &[]),
            Arc::new(SystemClock),
            time::Duration::seconds(in_progress),
        )
    };
    let idem = idem_with(30);
    let key = IdempotencyKey::parse(&unique("k-")).unwrap();
    let Begin::Proceed(ticket) = idem
        .begin(&env.tenant, "key_admin", &key, "fp".into())
        .await
        .unwrap()
    else {
        panic!("first use proceeds")
    };
    assert_eq!(
        idem.begin(&env.tenant, "key_admin", &key, "fp".into())
            .await
            .unwrap(),
        Begin::InFlight
    );
    assert_eq!(
        idem.begin(&env.tenant, "key_admin", &key, "other".into())
            .await
            .unwrap(),
        Begin::Mismatch
    );
    let secret = "hk_live_SECRET_THAT_MUST_NOT_BE_STORED";
    let response = StoredResponse {
        status: 201,
        headers: vec![("content-type".into(), "application/json".into())],
        body: format!("{{\"api_key\":\"{secret}\"}}").into_bytes(),
    };
    idem.complete(ticket, response.clone()).await.unwrap();
    env.clients.calls.reset();
    assert_eq!(
        idem.begin(&env.tenant, "key_admin", &key, "fp".into())
            .await
            .unwrap(),
        Begin::Replay(response.clone())
    );
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        tally(&calls, "DynamoDB.PutItem"),
        (0, 1),
        "one failed conditional write, no read: {calls:?}"
    );
    // Another credential of the same tenant, with the same request: refused, never replayed.
    assert_eq!(
        idem.begin(&env.tenant, "key_viewer", &key, "fp".into())
            .await
            .unwrap(),
        Begin::OtherCaller
    );
    // What the table holds: the owner, and a body sealed under the token key.
    let item = env
        .clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key(
            "pk",
            AttributeValue::S(format!("{}#{}", env.tenant, key.as_str())),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["owner"].as_s().unwrap(), "key_admin");
    assert!(item["sealed_body"].as_s().unwrap().starts_with("v1."));
    assert!(!item.contains_key("response_body"));
    assert!(
        !format!("{item:?}").contains("SECRET_THAT"),
        "the stored item holds the response in plaintext"
    );
    // A ring without the sealing key cannot replay: 409 in the API, never a wrong answer.
    let rotated = Idempotency::new(
        Arc::new(DynamoIdempotency::new(env.clients.dynamodb.clone(), table)),
        vault(&[8; 32], &[]),
        Arc::new(SystemClock),
        time::Duration::seconds(30),
    );
    assert_eq!(
        rotated
            .begin(&env.tenant, "key_admin", &key, "fp".into())
            .await
            .unwrap(),
        Begin::Unreadable
    );
    // Scoped to the tenant.
    assert!(matches!(
        idem.begin(
            &TenantId("ten_other".into()),
            "key_admin",
            &key,
            "fp".into()
        )
        .await
        .unwrap(),
        Begin::Proceed(_)
    ));
    // Expiry is decided in code (TTL deletion lags): an expired record frees the key.
    let short = idem.clone().with_ttl(time::Duration::seconds(-1));
    let key2 = IdempotencyKey::parse(&unique("k-")).unwrap();
    let Begin::Proceed(t) = short
        .begin(&env.tenant, "key_admin", &key2, "fp".into())
        .await
        .unwrap()
    else {
        panic!()
    };
    short
        .complete(
            t,
            StoredResponse {
                status: 200,
                headers: vec![],
                body: vec![],
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        idem.begin(&env.tenant, "key_admin", &key2, "fp".into())
            .await
            .unwrap(),
        Begin::Proceed(_)
    ));
    // An abandoned in-progress record (its Lambda died) frees the key after its lease.
    let dying = idem_with(-1);
    let key3 = IdempotencyKey::parse(&unique("k-")).unwrap();
    assert!(matches!(
        dying
            .begin(&env.tenant, "key_admin", &key3, "fp".into())
            .await
            .unwrap(),
        Begin::Proceed(_)
    ));
    assert!(matches!(
        idem.begin(&env.tenant, "key_admin", &key3, "fp".into())
            .await
            .unwrap(),
        Begin::Proceed(_)
    ));

    // A record from before sealing (plaintext body, no owner): never replayed, and purged.
    let legacy = format!("{}#{}", env.tenant, unique("k-"));
    let far = (time::OffsetDateTime::now_utc() + time::Duration::hours(1)).unix_timestamp();
    env.clients
        .dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(legacy.clone()))
        .item("fingerprint", AttributeValue::S("fp".into()))
        .item("state", AttributeValue::S("COMPLETED".into()))
        .item("expires_at", AttributeValue::N(far.to_string()))
        .item("in_progress_expires_at", AttributeValue::N("0".into()))
        .item("response_status", AttributeValue::N("201".into()))
        .item("response_headers", AttributeValue::L(vec![]))
        .item(
            "response_body",
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(secret.as_bytes())),
        )
        .send()
        .await
        .unwrap();
    let legacy_key = IdempotencyKey::parse(legacy.split_once('#').unwrap().1).unwrap();
    assert_eq!(
        idem.begin(&env.tenant, "key_admin", &legacy_key, "fp".into())
            .await
            .unwrap(),
        Begin::Unreadable
    );
    let purged = DynamoIdempotency::new(env.clients.dynamodb.clone(), table)
        .purge_legacy()
        .await
        .unwrap();
    assert!(purged >= 1, "{purged}");
    let left = env
        .clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(legacy))
        .send()
        .await
        .unwrap();
    assert!(left.item.is_none(), "the legacy record is gone");
    assert!(
        matches!(
            idem.begin(&env.tenant, "key_admin", &key, "fp".into())
                .await
                .unwrap(),
            Begin::Replay(_)
        ),
        "sealed records survive the purge"
    );
}

#[tokio::test]
async fn the_publisher_handler_reports_batch_item_failures_and_sets_the_retry_delay() {
    let env = Env::new().await;
    for i in 0..3 {
        env.post_now(&format!("post {i}")).await;
    }
    env.dispatcher().run_once().await.unwrap();
    let received = env.receive().await;
    assert_eq!(received.len(), 3);
    let platform = Arc::new(RecordingPlatform::default());
    *platform.fail_with.lock().unwrap() = Some(PlatformError::Transient {
        message: "Facebook answered 503".into(),
        code: None,
        retry_after: Some(Duration::from_secs(1)),
    });
    let publisher = herald_fn_publisher::Publisher {
        service: env.publisher(platform.clone()),
        queue: (*env.queue).clone(),
        concurrency: 4,
        deadline_margin: Duration::from_secs(1),
        outbound: None,
    };
    let mut records: Vec<SqsMessage> = received.iter().map(to_lambda_record).collect();
    let mut garbage = to_lambda_record(&received[0]);
    garbage.message_id = Some("garbage".into());
    garbage.body = Some("{not a publish message".into());
    records.push(garbage);
    let mut event = SqsEvent::default();
    event.records = records;
    let deadline = SystemClock.now() + time::Duration::seconds(30);
    let response = herald_fn_publisher::handle(&publisher, event, deadline).await;
    let mut failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    failed.sort();
    let mut expected: Vec<String> = received
        .iter()
        .map(|m| m.message_id().unwrap().to_owned())
        .collect();
    expected.push("garbage".into());
    expected.sort();
    assert_eq!(
        failed, expected,
        "every transient failure and the malformed record stay on the queue"
    );
    // The handler set their visibility to the platform's Retry-After: they come back soon.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(env.receive().await.len(), 3);
    assert!(platform.published.lock().unwrap().is_empty());
}

fn to_lambda_record(m: &aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = m.message_id().map(str::to_owned);
    r.receipt_handle = m.receipt_handle().map(str::to_owned);
    r.body = m.body().map(str::to_owned);
    r.attributes = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    r
}

#[tokio::test]
async fn queue_sends_report_each_entry() {
    let env = Env::new().await;
    let messages: Vec<PublishMessage> = (0..23)
        .map(|i| PublishMessage {
            tenant_id: env.tenant.clone(),
            post_id: PostId(format!("post_{i}")),
            account_id: env.account.clone(),
            platform: Platform::Facebook,
            correlation_id: format!("c{i}"),
            failures: 0,
        })
        .collect();
    env.clients.calls.reset();
    let results = env.queue.send(&messages).await.unwrap();
    assert_eq!(results.len(), 23);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        tally(&env.calls(), "SQS.SendMessageBatch"),
        (3, 0),
        "batches of ten"
    );
}

/// A claim whose publisher died: the reconciler finds it through the `inflight` index, records
/// it `unknown` (to be looked up before anything is sent), requeues it, and beats.
#[tokio::test]
async fn the_reconciler_resolves_a_claim_whose_publisher_died() {
    let env = Env::new().await;
    let post = env.post_now("orphan").await;
    env.dispatcher().run_once().await.unwrap();
    let stale = env.receive().await;
    assert_eq!(stale.len(), 1);
    let v = VariantRef {
        tenant_id: env.tenant.clone(),
        post_id: post.id.clone(),
        account_id: env.account.clone(),
    };
    let now = SystemClock.now();
    env.store
        .claim_for_publish(&v, "dead-attempt", &gate(now))
        .await
        .unwrap();
    let reconciler = |lease| Reconciler {
        store: env.store.clone(),
        posts: env.store.clone(),
        outcomes: env.store.clone(),
        queue: env.queue.clone(),
        heartbeats: env.store.clone(),
        audit: env.store.clone(),
        queues: env.queue.clone(),
        alerter: env.alerter(),
        clock: Arc::new(SystemClock),
        config: ReconcileConfig {
            lease,
            ..ReconcileConfig::default()
        },
    };
    // Within the lease (and before the claim's check time) nothing is touched.
    let report = reconciler(time::Duration::minutes(2))
        .run_once()
        .await
        .unwrap();
    assert_eq!(report.posts, 0);
    assert!(env.receive().await.is_empty());
    // Past it: the claim's check time comes from the gate, so look at it from the future.
    let later = Reconciler {
        clock: Arc::new(herald_domain::clock::FakeClock::new(
            now + time::Duration::minutes(3),
        )),
        ..reconciler(time::Duration::minutes(2))
    };
    env.clients.calls.reset();
    let report = later.run_once().await.unwrap();
    assert_eq!((report.posts, report.requeued), (1, 1), "{report:?}");
    let stored = env
        .store
        .get_post(&env.tenant, &post.id)
        .await
        .unwrap()
        .unwrap();
    let variant = &stored.variants[&env.account];
    assert_eq!(
        (variant.status, variant.lookup),
        (VariantStatus::Unknown, true)
    );
    let requeued = env.receive().await;
    assert_eq!(requeued.len(), 1);
    let message: PublishMessage = serde_json::from_str(requeued[0].body().unwrap()).unwrap();
    assert_eq!(message.post_id, post.id);
    // Resolved posts leave the index: the next run finds nothing.
    assert_eq!(later.run_once().await.unwrap().posts, 0);
    let (at, summary) = env
        .store
        .last_beat(herald_domain::publishing::reconcile::HEARTBEAT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at, now + time::Duration::minutes(3));
    assert!(summary.contains("\"requeued\":0"), "{summary}");
    // The requeued message publishes after a lookup finds nothing: exactly once.
    let platform = Arc::new(RecordingPlatform::default());
    assert_eq!(
        env.publisher(platform.clone())
            .handle(&message, delivery(1))
            .await,
        Disposition::Done(Done::Published)
    );
    assert_eq!(platform.published.lock().unwrap().len(), 1);
}
