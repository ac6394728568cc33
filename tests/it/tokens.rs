//! Platform tokens on the emulated DynamoDB and Secrets Manager: sealed at rest, kept on reconnect,
//! re-sealed by the sweep after a rotation, and refreshed by exactly one of many refreshers.

use crate::support::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use herald_aws::Clients;
use herald_aws::config::{CommonConfig, Env};
use herald_aws::dynamo::DynamoStore;
use herald_domain::StoreError;
use herald_domain::alerts::{Alert, AlertConfig, AlertSink, Alerter};
use herald_domain::clock::{Clock, SystemClock, SystemEntropy};
use herald_domain::ids::TenantId;
use herald_domain::model::*;
use herald_domain::ports::{AccountStore, AuditFilter, AuditLog};
use herald_domain::secrets::SecretKind;
use herald_domain::secrets::token_crypto::{TokenKeys, TokenSweep, TokenVault, key_id};
use herald_domain::secrets::token_refresh::{
    Freshness, RefreshConfig, RefreshError, RefreshLeases, RefreshedTokens, TokenRefresh,
    TokenRefresher,
};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct World {
    vars: HashMap<String, String>,
    clients: Clients,
    store: Arc<DynamoStore>,
    tenant: TenantId,
}

impl World {
    /// A fresh stack whose token-encryption key secret holds `key`.
    async fn new(key: [u8; 32]) -> Self {
        let Emulator { vars, clients } = Emulator::new().await;
        let w = Self {
            store: Arc::new(DynamoStore::new(clients.dynamodb.clone(), "unused")),
            vars,
            clients,
            tenant: TenantId(String::new()),
        };
        w.put_key(key).await;
        let store = Arc::new(w.fresh_store());
        let (tenant, _, _) =
            herald_domain::tenants::create_tenant(store.as_ref(), &SystemClock, "t", false)
                .await
                .unwrap();
        Self {
            store,
            tenant: tenant.id,
            ..w
        }
    }

    /// A new value for the secret (Secrets Manager moves AWSCURRENT, the old one becomes
    /// AWSPREVIOUS), as a rotation's `finishSecret` does.
    async fn put_key(&self, key: [u8; 32]) {
        self.clients
            .secrets
            .put_secret_value()
            .secret_id(&self.vars["HERALD_TOKEN_KEY_SECRET"])
            .secret_string(SecretKind::Key256.value_from(&key).expose_secret())
            .send()
            .await
            .unwrap();
    }

    /// A store as a new function instance builds it (its own key cache).
    fn fresh_store(&self) -> DynamoStore {
        CommonConfig::read(&mut Env::new(&self.vars)).store(&self.clients)
    }

    fn account(&self, external: &str, refresh: Option<&str>) -> Account {
        let now = SystemClock.now();
        Account {
            id: Account::id_for(Platform::X, external),
            tenant_id: self.tenant.clone(),
            platform: Platform::X,
            external_id: external.into(),
            display_name: Some(format!("{external}_handle")),
            access_token: SecretString::from(format!("plain-access-{external}")),
            refresh_token: refresh.map(|r| SecretString::from(r.to_owned())),
            token_expires_at: Some(now + time::Duration::minutes(2)),
            status: AccountStatus::Active,
            created_at: now,
            updated_at: now,
            breaker: Default::default(),
        }
    }

    async fn raw(&self, account: &Account) -> HashMap<String, AttributeValue> {
        self.clients
            .dynamodb
            .get_item()
            .table_name(&self.vars["HERALD_TABLE"])
            .key(
                "pk",
                AttributeValue::S(format!("TENANT#{}", account.tenant_id)),
            )
            .key("sk", AttributeValue::S(format!("ACCOUNT#{}", account.id)))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    }
}

fn text_of(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn tokens_are_sealed_at_rest_and_a_reconnect_keeps_the_refresh_token() {
    let w = World::new([1; 32]).await;
    let a = w.account("sealed", Some("plain-refresh-sealed"));
    assert!(
        w.store.upsert_account(&a).await.unwrap(),
        "the first connect creates the account"
    );

    let item = w.raw(&a).await;
    for (name, value) in &item {
        assert!(
            !text_of(value).contains("plain-"),
            "{name} holds a plaintext token"
        );
    }
    let prefix = format!("v1.{}.", key_id(&[1; 32]));
    assert!(text_of(&item["access_token"]).starts_with(&prefix));
    assert!(text_of(&item["refresh_token"]).starts_with(&prefix));

    // Reconnecting with a new access token and no refresh token keeps the refresh token.
    let mut again = a.clone();
    again.access_token = SecretString::from("plain-access-second");
    again.refresh_token = None;
    assert!(!w.store.upsert_account(&again).await.unwrap());
    let read = w
        .fresh_store()
        .get_account(&a.tenant_id, &a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.access_token.expose_secret(), "plain-access-second");
    assert_eq!(
        read.refresh_token
            .as_ref()
            .map(|r| r.expose_secret().to_owned()),
        Some("plain-refresh-sealed".to_owned())
    );

    // A ciphertext copied onto another account does not open there.
    let other = w.account("other", None);
    w.store.upsert_account(&other).await.unwrap();
    w.clients
        .dynamodb
        .update_item()
        .table_name(&w.vars["HERALD_TABLE"])
        .key(
            "pk",
            AttributeValue::S(format!("TENANT#{}", other.tenant_id)),
        )
        .key("sk", AttributeValue::S(format!("ACCOUNT#{}", other.id)))
        .update_expression("SET access_token = :t")
        .expression_attribute_values(":t", item["access_token"].clone())
        .send()
        .await
        .unwrap();
    assert!(matches!(
        w.store.get_account(&other.tenant_id, &other.id).await,
        Err(StoreError::Invalid(_))
    ));
    // A store without the key refuses rather than storing plaintext.
    let keyless = DynamoStore::new(w.clients.dynamodb.clone(), &w.vars["HERALD_TABLE"]);
    assert!(keyless.upsert_account(&a).await.is_err());
}

#[tokio::test]
async fn after_a_rotation_old_tokens_open_and_the_sweep_moves_them_to_the_new_key() {
    let w = World::new([1; 32]).await;
    let accounts = [
        w.account("sweep-a", Some("plain-refresh-a")),
        w.account("sweep-b", None),
    ];
    for a in &accounts {
        w.store.upsert_account(a).await.unwrap();
    }
    w.put_key([2; 32]).await;
    let rotated = w.fresh_store();
    let now = SystemClock.now();

    // Still readable under AWSPREVIOUS before the sweep.
    let read = rotated
        .get_account(&w.tenant, &accounts[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.access_token.expose_secret(), "plain-access-sweep-a");

    let first = rotated
        .sweep_tokens(now, time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((first.examined, first.resealed, first.done), (2, 2, false));
    let prefix = format!("v1.{}.", key_id(&[2; 32]));
    for a in &accounts {
        let item = w.raw(a).await;
        assert!(text_of(&item["access_token"]).starts_with(&prefix));
        if let Some(r) = item.get("refresh_token") {
            assert!(text_of(r).starts_with(&prefix));
        }
    }
    // Only the new key is needed now: a store that knows nothing else opens them all.
    let new_only = DynamoStore::new(w.clients.dynamodb.clone(), &w.vars["HERALD_TABLE"])
        .with_token_vault(Arc::new(TokenVault::fixed(
            TokenKeys::from_keys(&[2; 32], &[]).unwrap(),
        )));
    let read = new_only
        .get_account(&w.tenant, &accounts[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.refresh_token.unwrap().expose_secret(),
        "plain-refresh-a"
    );

    // Nothing left: the pass marks the key swept, and later passes do nothing.
    let second = rotated
        .sweep_tokens(now, time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((second.examined, second.done), (0, true));
    w.clients.calls.reset();
    let third = rotated
        .sweep_tokens(now, time::Duration::ZERO)
        .await
        .unwrap();
    assert!(third.done);
    let calls: usize = w
        .clients
        .calls
        .snapshot()
        .values()
        .map(|t| t.ok + t.failed)
        .sum();
    assert_eq!(calls, 1, "one GetItem while nothing rotated");
}

/// The token key rotates again only once the sweep has moved everything to its current
/// value: two rotations in a row are refused at the second `createSecret` (no value made), so
/// no token is ever stranded; after the sweep the rotation goes through and every token opens.
#[tokio::test]
async fn the_token_key_rotates_again_only_after_the_sweep_so_no_token_is_stranded() {
    use herald_fn_rotator::{Config, RotationEvent, handle, rotation};
    let w = World::new([5; 32]).await;
    let account = w.account("twice", Some("plain-refresh-twice"));
    w.store.upsert_account(&account).await.unwrap();
    let rotator = rotation(
        &Config {
            table: w.vars["HERALD_TABLE"].clone(),
            token_key_secret: w.vars["HERALD_TOKEN_KEY_SECRET"].clone(),
        },
        &w.clients,
    );
    let rotate = |token: &'static str| {
        let rotator = &rotator;
        let secret = w.vars["HERALD_TOKEN_KEY_SECRET"].clone();
        async move {
            for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
                handle(
                    rotator,
                    &RotationEvent {
                        secret_id: secret.clone(),
                        client_request_token: token.to_owned(),
                        step: step.to_owned(),
                    },
                )
                .await?;
            }
            Ok::<(), String>(())
        }
    };
    let opens = || async {
        let read = w
            .fresh_store()
            .get_account(&w.tenant, &account.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            read.refresh_token.unwrap().expose_secret(),
            "plain-refresh-twice"
        );
    };
    let sweep_until_done = || async {
        for _ in 0..3 {
            if w.fresh_store()
                .sweep_tokens(SystemClock.now(), time::Duration::ZERO)
                .await
                .unwrap()
                .done
            {
                return;
            }
        }
        panic!("the sweep did not finish");
    };

    // No sweep has run under this key yet: held.
    let refused = rotate("00000000-0000-4000-8000-00000000000a")
        .await
        .unwrap_err();
    assert!(refused.contains("sweep"), "{refused}");
    sweep_until_done().await;
    rotate("00000000-0000-4000-8000-00000000000b")
        .await
        .unwrap();
    opens().await;
    // At once again: refused, before any new value exists; the token still opens.
    let refused = rotate("00000000-0000-4000-8000-00000000000c")
        .await
        .unwrap_err();
    assert!(refused.contains("sweep"), "{refused}");
    opens().await;
    sweep_until_done().await;
    rotate("00000000-0000-4000-8000-00000000000d")
        .await
        .unwrap();
    opens().await;
}

#[tokio::test]
async fn the_sweep_waits_until_other_instances_can_no_longer_seal_under_the_old_key() {
    let w = World::new([3; 32]).await;
    w.put_key([4; 32]).await;
    let store = w.fresh_store();
    let settle = time::Duration::minutes(6);
    let now = SystemClock.now();
    // The key just became current: a pass finds nothing but is not done yet.
    let report = store.sweep_tokens(now, settle).await.unwrap();
    assert_eq!((report.examined, report.done), (0, false));

    // An instance that still caches the old ring seals a token under the old key.
    let stale = DynamoStore::new(w.clients.dynamodb.clone(), &w.vars["HERALD_TABLE"])
        .with_token_vault(Arc::new(TokenVault::fixed(
            TokenKeys::from_keys(&[3; 32], &[]).unwrap(),
        )));
    let late = w.account("sealed-late", Some("plain-refresh-late"));
    stale.upsert_account(&late).await.unwrap();
    let old_prefix = format!("v1.{}.", key_id(&[3; 32]));
    assert!(text_of(&w.raw(&late).await["access_token"]).starts_with(&old_prefix));

    // Until the window closes a pass reads the marker and nothing else: no Scan per run.
    w.clients.calls.reset();
    let waiting = store
        .sweep_tokens(now + time::Duration::minutes(1), settle)
        .await
        .unwrap();
    assert_eq!((waiting.examined, waiting.done), (0, false));
    let calls = w.clients.calls.snapshot();
    assert_eq!(
        calls.values().map(|t| t.ok + t.failed).sum::<usize>(),
        1,
        "{calls:?}"
    );

    // The first pass after it finds the late token and moves it; the next marks the key swept.
    let after = now + settle + time::Duration::seconds(1);
    let late_pass = store.sweep_tokens(after, settle).await.unwrap();
    assert_eq!(
        (late_pass.examined, late_pass.resealed, late_pass.done),
        (1, 1, false)
    );
    let new_prefix = format!("v1.{}.", key_id(&[4; 32]));
    assert!(text_of(&w.raw(&late).await["access_token"]).starts_with(&new_prefix));
    let last = store.sweep_tokens(after, settle).await.unwrap();
    assert_eq!((last.examined, last.done), (0, true));
}

#[tokio::test]
async fn the_refresh_lease_admits_exactly_one_of_many_refreshers() {
    let w = World::new([5; 32]).await;
    let a = w.account("lease", Some("plain-refresh-lease"));
    w.store.upsert_account(&a).await.unwrap();
    let now = SystemClock.now();
    let until = now + time::Duration::seconds(30);
    let takes = futures::future::join_all((0..8).map(|i| {
        let store = w.store.clone();
        let (t, id) = (a.tenant_id.clone(), a.id.clone());
        async move {
            store
                .take_refresh_lease(&t, &id, &format!("h{i}"), now, until)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(takes.iter().filter(|t| **t).count(), 1, "{takes:?}");
    let winner = format!("h{}", takes.iter().position(|t| *t).unwrap());
    let tokens = RefreshedTokens {
        access_token: SecretString::from("plain-access-new"),
        refresh_token: None,
        expires_in: None,
    };
    assert_eq!(
        w.store
            .store_refreshed(&a.tenant_id, &a.id, "not-the-holder", &tokens, None, now)
            .await,
        Err(StoreError::Conflict)
    );
    // A lease that ended is free, although nothing removed it (TTL deletion lags).
    assert!(
        w.store
            .take_refresh_lease(
                &a.tenant_id,
                &a.id,
                "late",
                until,
                until + time::Duration::seconds(30)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        w.store
            .store_refreshed(&a.tenant_id, &a.id, &winner, &tokens, None, now)
            .await,
        Err(StoreError::Conflict),
        "the winner's lease was taken over after it ended"
    );
    w.store
        .store_refreshed(&a.tenant_id, &a.id, "late", &tokens, None, now)
        .await
        .unwrap();
    let read = w
        .store
        .get_account(&a.tenant_id, &a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.access_token.expose_secret(), "plain-access-new");
    assert_eq!(
        read.refresh_token.unwrap().expose_secret(),
        "plain-refresh-lease",
        "no new refresh token: the stored one is kept"
    );
    assert_eq!(read.token_expires_at, None);
    assert!(!w.raw(&a).await.contains_key("refresh_lease"), "released");
}

/// A token endpoint that counts its calls and answers after a pause.
#[derive(Default)]
struct CountingRefresher {
    calls: AtomicU32,
    revoke: bool,
}

#[async_trait]
impl TokenRefresher for CountingRefresher {
    async fn refresh(
        &self,
        _: Platform,
        refresh_token: &SecretString,
    ) -> Result<RefreshedTokens, RefreshError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if self.revoke {
            return Err(RefreshError::Revoked("X answered 400 invalid_grant".into()));
        }
        Ok(RefreshedTokens {
            access_token: SecretString::from(format!(
                "access-{n}-{}",
                refresh_token.expose_secret()
            )),
            refresh_token: Some(SecretString::from(format!("refresh-{n}"))),
            expires_in: Some(time::Duration::hours(2)),
        })
    }
}

#[derive(Default)]
struct Sink(Mutex<Vec<Alert>>);

#[async_trait]
impl AlertSink for Sink {
    async fn send(&self, alert: &Alert) -> Result<(), String> {
        self.0.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

fn refresh_service(w: &World, refresher: Arc<CountingRefresher>, sink: Arc<Sink>) -> TokenRefresh {
    let store = Arc::new(
        w.fresh_store()
            .with_audit_table(&w.vars["HERALD_AUDIT_TABLE"]),
    );
    TokenRefresh {
        leases: store.clone(),
        accounts: store.clone(),
        reauth: store.clone(),
        audit: store.clone(),
        refresher,
        alerter: Alerter {
            ledger: store,
            sink,
            clock: Arc::new(SystemClock),
            config: AlertConfig::default(),
        },
        clock: Arc::new(SystemClock),
        entropy: Arc::new(SystemEntropy),
        config: RefreshConfig::default(),
    }
}

#[tokio::test]
async fn concurrent_publishers_refresh_an_expiring_token_exactly_once() {
    let w = World::new([6; 32]).await;
    let a = w.account("concurrent", Some("r0"));
    w.store.upsert_account(&a).await.unwrap();
    let refresher = Arc::new(CountingRefresher::default());
    let service = refresh_service(&w, refresher.clone(), Arc::new(Sink::default()));
    let results = futures::future::join_all((0..6).map(|_| service.ensure_fresh(a.clone()))).await;
    assert_eq!(refresher.calls.load(Ordering::SeqCst), 1);
    for r in results {
        match r {
            Freshness::Ready(account) => {
                assert_eq!(account.access_token.expose_secret(), "access-1-r0");
            }
            other => panic!("{other:?}"),
        }
    }
    // A publisher that read the account before the refresh finished takes the free lease
    // afterwards: it sees the refreshed token instead of spending the rotated one again.
    match service.ensure_fresh(a.clone()).await {
        Freshness::Ready(account) => {
            assert_eq!(account.access_token.expose_secret(), "access-1-r0");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(refresher.calls.load(Ordering::SeqCst), 1);
    let stored = w
        .store
        .get_account(&a.tenant_id, &a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "refresh-1");
    assert!(stored.token_expires_at.unwrap() > SystemClock.now() + time::Duration::minutes(100));
}

#[tokio::test]
async fn a_revoked_refresh_token_marks_the_account_for_reconnection_with_an_alert_and_an_audit_record()
 {
    let w = World::new([7; 32]).await;
    let a = w.account("revoked", Some("r0"));
    w.store.upsert_account(&a).await.unwrap();
    let refresher = Arc::new(CountingRefresher {
        revoke: true,
        ..Default::default()
    });
    let sink = Arc::new(Sink::default());
    let service = refresh_service(&w, refresher, sink.clone());
    let reason = match service.ensure_fresh(a.clone()).await {
        Freshness::Revoked(reason) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        reason,
        "the X account @revoked_handle needs to be reconnected: its authorisation was revoked (the platform refused the refresh token)"
    );
    let stored = w
        .store
        .get_account(&a.tenant_id, &a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AccountStatus::NeedsReauth);
    assert_eq!(sink.0.lock().unwrap().len(), 1);
    let audit = w
        .fresh_store()
        .with_audit_table(&w.vars["HERALD_AUDIT_TABLE"]);
    let records = audit
        .list(&a.tenant_id, &AuditFilter::default(), None, 10)
        .await
        .unwrap();
    let record = records
        .items
        .iter()
        .find(|r| r.entry.action == "account.needs_reauth")
        .expect("an audit record");
    assert_eq!(record.entry.entity, format!("account:{}", a.id));
    assert!(
        !serde_json::to_string(&record.entry)
            .unwrap()
            .contains("r0\"")
    );

    // Reconnecting makes it active again and stores the new tokens.
    let mut again = a.clone();
    again.refresh_token = Some(SecretString::from("r-new"));
    w.store.upsert_account(&again).await.unwrap();
    let stored = w
        .store
        .get_account(&a.tenant_id, &a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AccountStatus::Active);
}
