//! API keys and tenant suspension on DynamoDB: the `keys` index lists a tenant's keys and
//! only its own; a change is conditional on the tenant; the last use is written once an
//! hour; keys from before the index are found again by `herald api-key reindex`.

use super::*;
use aws_sdk_dynamodb::types::AttributeValue;
use herald_domain::model::KeyChange;
use herald_domain::tenants;
use secrecy::ExposeSecret;

#[tokio::test]
async fn keys_are_listed_changed_touched_and_reindexed_per_tenant() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let clock = SystemClock;
    let other = tenants::create_tenant(store, &clock, "other", false)
        .await
        .unwrap()
        .0
        .id;
    let (viewer, secret) =
        tenants::issue_api_key(store, &clock, &env.tenant, Role::Viewer, "v", None)
            .await
            .unwrap();
    let listed = store.list_api_keys(&env.tenant).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].id, viewer.id, "newest first");
    assert!(listed[0].hint.starts_with("hrld_"));
    assert!(
        store
            .list_api_keys(&other)
            .await
            .unwrap()
            .iter()
            .all(|k| k.tenant_id == other),
        "another tenant's list holds only its keys"
    );

    // Another tenant cannot change this tenant's key.
    let revoke = KeyChange {
        revoked_at: Some(clock.now()),
        ..KeyChange::default()
    };
    assert_eq!(
        store
            .change_api_key(&other, &viewer.id, &revoke)
            .await
            .unwrap(),
        None
    );
    let used = tenants::authenticate(store, &clock, secret.expose_secret())
        .await
        .unwrap();
    assert_eq!(used.id, viewer.id);
    let touched = store
        .find_api_key(&viewer.hash)
        .await
        .unwrap()
        .unwrap()
        .last_used_at
        .expect("the first use is recorded");
    // Within the hour: no second write.
    env.clients.calls.reset();
    tenants::authenticate(store, &clock, secret.expose_secret())
        .await
        .unwrap();
    let calls = env.calls();
    assert_eq!(tally(&calls, "DynamoDB.UpdateItem"), (0, 0), "{calls:?}");
    assert_eq!(
        store
            .find_api_key(&viewer.hash)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(touched)
    );

    let revoked = tenants::revoke_api_key(store, &clock, &env.tenant, &viewer.id)
        .await
        .unwrap()
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        tenants::authenticate(store, &clock, secret.expose_secret()).await,
        Err(tenants::Refused::Revoked)
    );

    // Suspension, and back.
    assert!(
        tenants::set_suspension(store, &clock, &env.tenant, Some("audit"))
            .await
            .unwrap()
    );
    let admin = &listed[1];
    let (_, admin_secret) = tenants::rotate_api_key(
        store,
        &clock,
        &env.tenant,
        &admin.id,
        time::Duration::hours(1),
    )
    .await
    .map(|r| (r.new, r.secret))
    .unwrap();
    assert_eq!(
        tenants::authenticate(store, &clock, admin_secret.expose_secret()).await,
        Err(tenants::Refused::Suspended("audit".into()))
    );
    tenants::set_suspension(store, &clock, &env.tenant, None)
        .await
        .unwrap();
    assert!(
        tenants::authenticate(store, &clock, admin_secret.expose_secret())
            .await
            .is_ok()
    );
    assert!(
        !tenants::set_suspension(store, &clock, &TenantId("ten_missing".into()), Some("x"))
            .await
            .unwrap()
    );

    // A key written before the index: not listed until the backfill.
    env.clients
        .dynamodb
        .update_item()
        .table_name(&env.vars["HERALD_TABLE"])
        .key("pk", AttributeValue::S(format!("APIKEY#{}", viewer.hash)))
        .key("sk", AttributeValue::S("APIKEY".into()))
        .update_expression("REMOVE keys_pk, keys_sk, hint")
        .send()
        .await
        .unwrap();
    let ids = |keys: Vec<herald_domain::model::ApiKey>| -> Vec<_> {
        keys.into_iter().map(|k| k.id).collect()
    };
    assert!(!ids(store.list_api_keys(&env.tenant).await.unwrap()).contains(&viewer.id));
    assert!(env.store.backfill_keys_index().await.unwrap() >= 1);
    let after = store.list_api_keys(&env.tenant).await.unwrap();
    let found = after.iter().find(|k| k.id == viewer.id).unwrap();
    assert_eq!(found.hint, "", "no hint can be made without the secret");
    assert_eq!(
        env.store.backfill_keys_index().await.unwrap(),
        0,
        "once is enough"
    );
}

/// Two rotations of one key at once, on DynamoDB: one wins; the other's key is revoked before
/// anyone sees it, and it answers with the winner's id. Then the key cannot be rotated again.
#[tokio::test]
async fn a_key_is_rotated_once_even_by_two_clients_at_once() {
    let env = Env::new().await;
    let store: &DynamoStore = env.store.as_ref();
    let clock = SystemClock;
    let (key, _) = tenants::issue_api_key(store, &clock, &env.tenant, Role::Editor, "ci", None)
        .await
        .unwrap();
    let rotate = || {
        tenants::rotate_api_key(
            store,
            &clock,
            &env.tenant,
            &key.id,
            time::Duration::hours(1),
        )
    };
    let (a, b) = tokio::join!(rotate(), rotate());
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one rotation wins: {other:?}"),
    };
    assert_eq!(
        lost,
        tenants::RotateError::AlreadyRotated(won.new.id.clone())
    );
    let listed = store.list_api_keys(&env.tenant).await.unwrap();
    let live: Vec<_> = listed
        .iter()
        .filter(|k| k.name == "ci" && k.revoked_at.is_none())
        .collect();
    assert_eq!(
        live.len(),
        2,
        "the old key (in its overlap) and one successor: {listed:?}"
    );
    assert_eq!(
        rotate().await.unwrap_err(),
        tenants::RotateError::AlreadyRotated(won.new.id)
    );
}
