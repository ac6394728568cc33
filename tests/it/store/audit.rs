//! The audit log on DynamoDB: chained, listed, and tampering detected.

use super::*;

/// The audit log on DynamoDB: chains per entity, listing with filters, and verification that
/// finds a record altered or removed behind the API's back.
#[tokio::test]
async fn the_audit_log_chains_lists_and_detects_tampering() {
    let env = Env::new().await;
    let base = SystemClock.now();
    let entry = |entity: &str, action: &str, secs: i64| AuditEntry {
        tenant_id: env.tenant.clone(),
        entity: entity.into(),
        action: action.into(),
        actor: "key:key_1".into(),
        old: Some(serde_json::json!({"status": "before"})),
        new: Some(serde_json::json!({"status": "after"})),
        ip: Some("203.0.113.9".into()),
        user_agent: Some("curl/8".into()),
        at: base + time::Duration::seconds(secs),
    };
    for (i, (entity, action)) in [
        ("post:a", "post.approved"),
        ("crisis", "crisis.started"),
        ("post:a", "post.rejected"),
        ("crisis", "crisis.lifted"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = env
            .store
            .append(entry(entity, action, i as i64))
            .await
            .unwrap();
        assert_eq!(r.seq, if i < 2 { 1 } else { 2 });
    }
    let all = env
        .store
        .list(&env.tenant, &AuditFilter::default(), None, 10)
        .await
        .unwrap();
    let actions: Vec<_> = all.items.iter().map(|r| r.entry.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "crisis.lifted",
            "post.rejected",
            "crisis.started",
            "post.approved"
        ],
        "newest first"
    );
    let crisis_only = AuditFilter {
        entity: Some("crisis".into()),
        ..AuditFilter::default()
    };
    let page = env
        .store
        .list(&env.tenant, &crisis_only, None, 1)
        .await
        .unwrap();
    assert_eq!(page.items[0].entry.action, "crisis.lifted");
    let next = env
        .store
        .list(&env.tenant, &crisis_only, page.cursor.as_deref(), 1)
        .await
        .unwrap();
    assert_eq!(
        next.items[0].entry.action, "crisis.started",
        "the cursor pages on"
    );
    let window = AuditFilter {
        from: Some(base + time::Duration::seconds(1)),
        to: Some(base + time::Duration::seconds(3)),
        ..AuditFilter::default()
    };
    assert_eq!(
        env.store
            .list(&env.tenant, &window, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    let (records, heads) = env.store.export(&env.tenant).await.unwrap();
    assert_eq!(herald_domain::audit::verify(&records, &heads), vec![]);

    // Behind the API's back: alter one record, then remove another.
    let table = &env.vars["HERALD_AUDIT_TABLE"];
    let keys = env
        .clients
        .dynamodb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("AUDIT#{}", env.tenant)),
        )
        .send()
        .await
        .unwrap();
    let sk_of = |i: usize| keys.items()[i]["sk"].clone();
    env.clients
        .dynamodb
        .update_item()
        .table_name(table)
        .key("pk", keys.items()[0]["pk"].clone())
        .key("sk", sk_of(0))
        .update_expression("SET #new = :forged")
        .expression_attribute_names("#new", "new")
        .expression_attribute_values(
            ":forged",
            aws_sdk_dynamodb::types::AttributeValue::S("{\"status\":\"forged\"}".into()),
        )
        .send()
        .await
        .unwrap();
    let (records, heads) = env.store.export(&env.tenant).await.unwrap();
    let findings = herald_domain::audit::verify(&records, &heads);
    assert!(
        findings.iter().any(|f| f.problem.contains("altered")),
        "{findings:?}"
    );
    env.clients
        .dynamodb
        .delete_item()
        .table_name(table)
        .key("pk", keys.items()[3]["pk"].clone())
        .key("sk", sk_of(3))
        .send()
        .await
        .unwrap();
    let (records, heads) = env.store.export(&env.tenant).await.unwrap();
    let findings = herald_domain::audit::verify(&records, &heads);
    assert!(
        findings.iter().any(|f| f.problem.contains("head says 2")),
        "{findings:?}"
    );
}
