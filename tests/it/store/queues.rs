//! Queues and records around the publish path: dead letters, idempotency records, the
//! publisher handler's batch answer, queue sends, and the reconciler.

use super::*;
use aws_sdk_dynamodb::types::AttributeValue;

/// Dead letters of two tenants, 1,100 of them: the drain moves every DLQ message into a
/// record under its tenant; a tenant's pages are one Query each and touch no queue and no
/// other tenant's letters; a requeue sends the message back with a fresh failure budget and
/// its correlation id, once; a redelivered message changes nothing.
#[tokio::test]
async fn eleven_hundred_dead_letters_of_two_tenants_are_drained_paged_and_requeued_apart() {
    let env = Env::new().await;
    let other = TenantId(format!("ten_{}", unique("other")));
    let message = |tenant: &TenantId, n: usize| PublishMessage {
        tenant_id: tenant.clone(),
        post_id: PostId(format!("post_{n:04}")),
        account_id: env.account.clone(),
        platform: Platform::Facebook,
        correlation_id: format!("corr-{n}"),
        failures: 5,
        continues_upload: false,
    };
    let dlq = env.vars["HERALD_QUEUE_URL_PUBLISH_DEAD_LETTER_QUEUE"].clone();
    let bodies: Vec<String> = (0..1_100)
        .map(|n| {
            let tenant = if n < 1_000 { &env.tenant } else { &other };
            serde_json::to_string(&message(tenant, n)).unwrap()
        })
        .collect();
    for (batch, chunk) in bodies.chunks(10).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("{batch}-{i}"))
                    .message_body(body)
                    .build()
                    .unwrap()
            })
            .collect();
        env.clients
            .sqs
            .send_message_batch()
            .queue_url(&dlq)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
    let queues = Arc::new(SqsDeadLetters::new(
        env.clients.sqs.clone(),
        vec![DeadLetterQueue {
            source: "publish".into(),
            url: dlq.clone(),
            source_url: env.vars["HERALD_PUBLISH_QUEUE_URL"].clone(),
        }],
    ));
    let service = DeadLetterService {
        queues: queues.clone(),
        records: env.store.clone(),
        audit: env.store.clone(),
        clock: Arc::new(SystemClock),
    };
    assert_eq!(service.drain(usize::MAX).await.unwrap(), 1_100);
    assert!(
        queues.receive("publish").await.unwrap().is_empty(),
        "the DLQ is empty"
    );
    assert_eq!(
        env.store.pending().await.unwrap().get("publish"),
        Some(&1_100)
    );

    // A's letters, a page at a time: one Query per page, no queue call, none of B's.
    env.clients.calls.reset();
    let all = DeadLetterQuery::default();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = service
            .list(&env.tenant, &all, cursor.as_deref(), 100)
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "queries only: {calls:?}");
    assert_eq!(tally(&calls, "DynamoDB.Query"), (pages, 0));
    assert!(pages <= 11, "{pages} pages");
    assert_eq!(seen.len(), 1_000);
    assert!(
        seen.iter()
            .all(|d| d.tenant_id.as_ref() == Some(&env.tenant))
    );
    let ids: std::collections::HashSet<_> = seen.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids.len(), 1_000, "no letter twice");
    assert!(seen.windows(2).all(|p| p[0].id < p[1].id), "oldest first");
    assert!(service.get(&other, &seen[0].id).await.unwrap().is_none());

    // A message delivered again (its deletion was lost) is kept once.
    assert!(!env.store.keep(&seen[0]).await.unwrap());

    // B requeues all of its own: each back once, with a fresh budget; A's stay.
    let by = herald_domain::dead_letters::Operator {
        actor: "key:b".into(),
        ip: None,
        user_agent: None,
    };
    let done = service.requeue_matching(&other, &all, &by).await.unwrap();
    assert_eq!((done.letters.len(), done.more), (100, false));
    let mut back = Vec::new();
    loop {
        let got = env.receive().await;
        if got.is_empty() {
            break;
        }
        for m in &got {
            env.clients
                .sqs
                .delete_message()
                .queue_url(&env.vars["HERALD_PUBLISH_QUEUE_URL"])
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        back.extend(got);
    }
    assert_eq!(
        back.len(),
        100,
        "exactly one copy of each back in the source queue"
    );
    let copy: PublishMessage = serde_json::from_str(back[0].body().unwrap()).unwrap();
    assert_eq!(copy.failures, 0);
    assert_eq!(copy.tenant_id, other);
    assert_eq!(
        back[0].message_attributes().unwrap()["correlation_id"].string_value(),
        Some(copy.correlation_id.as_str()),
        "the correlation id follows the message"
    );
    assert_eq!(
        env.store.pending().await.unwrap().get("publish"),
        Some(&1_000)
    );
    let page = service.list(&other, &all, None, 100).await.unwrap();
    assert!(page.items.is_empty());
    // Deleted once.
    assert!(
        service
            .delete(&env.tenant, &seen[0].id, &by)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        service
            .delete(&env.tenant, &seen[0].id, &by)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        env.store.pending().await.unwrap().get("publish"),
        Some(&999)
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
            continues_upload: false,
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
