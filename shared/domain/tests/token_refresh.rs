//! The token refresh service's failure paths, with in-memory ports and a fake clock.
#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::alerts::{AlertConfig, Alerter, LogSink};
use herald_domain::clock::{Clock, FakeClock, SystemEntropy};
use herald_domain::ids::{AccountId, TenantId};
use herald_domain::memory::MemoryStore;
use herald_domain::model::*;
use herald_domain::ports::{AccountStore, AuditFilter, AuditLog};
use herald_domain::secrets::token_refresh::*;
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// One lease per account, with the adapter's conditions; refreshed tokens go to the store.
struct Leases {
    store: Arc<MemoryStore>,
    held: Mutex<Option<(String, OffsetDateTime)>>,
}

#[async_trait]
impl RefreshLeases for Leases {
    async fn take_refresh_lease(
        &self,
        _: &TenantId,
        _: &AccountId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut held = self.held.lock().unwrap();
        if held.as_ref().is_some_and(|(_, u)| *u > now) {
            return Ok(false);
        }
        *held = Some((holder.to_owned(), until));
        Ok(true)
    }
    async fn store_refreshed(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        holder: &str,
        tokens: &RefreshedTokens,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if self.held.lock().unwrap().as_ref().map(|(h, _)| h.as_str()) != Some(holder) {
            return Err(StoreError::Conflict);
        }
        let mut a = self.store.get_account(tenant, account).await?.unwrap();
        a.access_token = tokens.access_token.clone();
        a.refresh_token = tokens.refresh_token.clone();
        a.token_expires_at = expires_at;
        a.updated_at = now;
        self.store.upsert_account(&a).await?;
        *self.held.lock().unwrap() = None;
        Ok(())
    }
    async fn release_refresh_lease(
        &self,
        _: &TenantId,
        _: &AccountId,
        holder: &str,
    ) -> Result<(), StoreError> {
        let mut held = self.held.lock().unwrap();
        if held.as_ref().map(|(h, _)| h.as_str()) == Some(holder) {
            *held = None;
        }
        Ok(())
    }
}

struct Endpoint {
    answers: Mutex<Vec<Result<RefreshedTokens, RefreshError>>>,
    calls: AtomicU32,
}

#[async_trait]
impl TokenRefresher for Endpoint {
    async fn refresh(
        &self,
        _: Platform,
        _: &SecretString,
    ) -> Result<RefreshedTokens, RefreshError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answers.lock().unwrap().remove(0)
    }
}

struct World {
    store: Arc<MemoryStore>,
    leases: Arc<Leases>,
    endpoint: Arc<Endpoint>,
    clock: Arc<FakeClock>,
    service: TokenRefresh,
    account: Account,
}

impl World {
    /// The account as the store holds it now.
    async fn stored(&self) -> Account {
        let account = self
            .store
            .get_account(&self.account.tenant_id, &self.account.id);
        account.await.unwrap().unwrap()
    }
}

async fn world(
    refresh: Option<&str>,
    expires_in: time::Duration,
    answers: Vec<Result<RefreshedTokens, RefreshError>>,
) -> World {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(FakeClock::new(T0));
    let leases = Arc::new(Leases {
        store: store.clone(),
        held: Mutex::new(None),
    });
    let endpoint = Arc::new(Endpoint {
        answers: Mutex::new(answers),
        calls: AtomicU32::new(0),
    });
    let account = Account {
        id: Account::id_for(Platform::Linkedin, "42"),
        tenant_id: TenantId("t1".into()),
        platform: Platform::Linkedin,
        external_id: "42".into(),
        display_name: Some("Acme".into()),
        access_token: SecretString::from("a0"),
        refresh_token: refresh.map(|r| SecretString::from(r.to_owned())),
        token_expires_at: Some(T0 + expires_in),
        status: AccountStatus::Active,
        created_at: T0,
        updated_at: T0,
        breaker: Default::default(),
    };
    store.upsert_account(&account).await.unwrap();
    let service = TokenRefresh {
        leases: leases.clone(),
        accounts: store.clone(),
        reauth: store.clone(),
        audit: store.clone(),
        refresher: endpoint.clone(),
        alerter: Alerter {
            ledger: store.clone(),
            sink: Arc::new(LogSink),
            clock: clock.clone(),
            config: AlertConfig::default(),
        },
        clock: clock.clone(),
        entropy: Arc::new(SystemEntropy),
        config: RefreshConfig::default(),
    };
    World {
        store,
        leases,
        endpoint,
        clock,
        service,
        account,
    }
}

fn tokens(access: &str) -> Result<RefreshedTokens, RefreshError> {
    Ok(RefreshedTokens {
        access_token: SecretString::from(access.to_owned()),
        refresh_token: Some(SecretString::from(format!("r-{access}"))),
        expires_in: Some(time::Duration::hours(2)),
    })
}

#[tokio::test]
async fn a_token_far_from_expiry_is_used_without_a_refresh() {
    let w = world(Some("r0"), time::Duration::hours(1), vec![]).await;
    assert!(matches!(
        w.service.ensure_fresh(w.account.clone()).await,
        Freshness::Ready(_)
    ));
    assert_eq!(w.endpoint.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_transient_failure_releases_the_lease_and_the_next_attempt_refreshes() {
    let w = world(
        Some("r0"),
        time::Duration::minutes(2),
        vec![
            Err(RefreshError::Transient("LinkedIn answered 503".into())),
            tokens("a1"),
        ],
    )
    .await;
    match w.service.ensure_fresh(w.account.clone()).await {
        Freshness::Transient(why) => assert!(why.contains("503"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(w.leases.held.lock().unwrap().is_none(), "released");
    let stored = w.stored().await;
    assert_eq!(stored.status, AccountStatus::Active, "not needs_reauth");
    match w.service.ensure_fresh(w.account.clone()).await {
        Freshness::Ready(a) => assert_eq!(a.access_token.expose_secret(), "a1"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_expired_token_without_a_refresh_token_needs_a_reconnect() {
    let w = world(None, time::Duration::seconds(-1), vec![]).await;
    match w.service.ensure_fresh(w.account.clone()).await {
        Freshness::Revoked(reason) => assert_eq!(
            reason,
            "the LinkedIn account Acme needs to be reconnected: its access token expired and the platform gave Herald no refresh token"
        ),
        other => panic!("{other:?}"),
    }
    let stored = w.stored().await;
    assert_eq!(stored.status, AccountStatus::NeedsReauth);
    let audit = w
        .store
        .list(&w.account.tenant_id, &AuditFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(audit.items[0].entry.action, "account.needs_reauth");
    assert_eq!(w.endpoint.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_soon_expiring_token_without_a_refresh_token_is_used_while_it_works() {
    let w = world(None, time::Duration::minutes(2), vec![]).await;
    assert!(matches!(
        w.service.ensure_fresh(w.account.clone()).await,
        Freshness::Ready(_)
    ));
}

#[tokio::test]
async fn a_refresh_held_elsewhere_that_makes_no_progress_defers() {
    let w = world(Some("r0"), time::Duration::minutes(2), vec![]).await;
    *w.leases.held.lock().unwrap() = Some(("other".into(), T0 + time::Duration::seconds(30)));
    let before = w.clock.now();
    match w.service.ensure_fresh(w.account.clone()).await {
        Freshness::InFlight(wait) => assert!(wait.as_secs() > 0),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.endpoint.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        w.clock.now() - before,
        time::Duration::seconds(2),
        "polled for 8 x 250 ms"
    );
}

/// The expiring accounts a store would name: the world's account, when its token expires
/// before the horizon asked for.
struct Expiring(Arc<MemoryStore>, Account, Mutex<Vec<OffsetDateTime>>);

#[async_trait]
impl ExpiringTokens for Expiring {
    async fn expiring_before(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<(TenantId, AccountId)>, StoreError> {
        self.2.lock().unwrap().push(before);
        let a = self
            .0
            .get_account(&self.1.tenant_id, &self.1.id)
            .await?
            .unwrap();
        Ok(a.token_expires_at
            .filter(|at| *at <= before)
            .map(|_| (a.tenant_id.clone(), a.id.clone()))
            .into_iter()
            .collect())
    }
}

#[tokio::test]
async fn refreshing_ahead_refreshes_what_expires_within_the_margin_and_counts_each_outcome() {
    let mut w = world(
        Some("r0"),
        time::Duration::minutes(20),
        vec![
            tokens("a1"),
            Err(RefreshError::Revoked("invalid_grant".into())),
        ],
    )
    .await;
    w.service.config.margin = time::Duration::minutes(30);
    let expiring = Expiring(w.store.clone(), w.account.clone(), Mutex::new(vec![]));
    let report = w.service.refresh_ahead(&expiring).await.unwrap();
    assert_eq!((report.due, report.refreshed), (1, 1), "{report:?}");
    assert_eq!(
        expiring.2.lock().unwrap()[0],
        T0 + time::Duration::minutes(30)
    );
    let stored = w.stored().await;
    assert_eq!(stored.access_token.expose_secret(), "a1");
    // Two hours left now: nothing is due on the next pass.
    let report = w.service.refresh_ahead(&expiring).await.unwrap();
    assert_eq!(report, AheadReport::default());
    assert_eq!(w.endpoint.calls.load(Ordering::SeqCst), 1);
    // Within the margin again, and the platform refuses the refresh token: reconnect.
    w.clock.advance(time::Duration::minutes(100));
    let report = w.service.refresh_ahead(&expiring).await.unwrap();
    assert_eq!((report.due, report.reconnect), (1, 1), "{report:?}");
    let stored = w.stored().await;
    assert_eq!(stored.status, AccountStatus::NeedsReauth);
}

#[tokio::test]
async fn refreshing_ahead_leaves_facebook_page_tokens_alone() {
    let mut w = world(Some("r0"), time::Duration::minutes(20), vec![]).await;
    w.service.config.margin = time::Duration::minutes(30);
    let mut page = w.account.clone();
    page.platform = Platform::Facebook;
    page.id = Account::id_for(Platform::Facebook, "42");
    w.store.upsert_account(&page).await.unwrap();
    let expiring = Expiring(w.store.clone(), page.clone(), Mutex::new(vec![]));
    let report = w.service.refresh_ahead(&expiring).await.unwrap();
    assert_eq!((report.due, report.kept, report.reconnect), (1, 1, 0));
    assert_eq!(w.endpoint.calls.load(Ordering::SeqCst), 0);
    let stored = w
        .store
        .get_account(&page.tenant_id, &page.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AccountStatus::Active);
}
