use super::memory::MemoryWallets;
use super::service::{Payment, PriceTable};
use super::*;
use crate::clock::FakeClock;
use crate::dead_letters::{OPERATORS, Operator};
use crate::memory::MemoryStore;
use crate::ports::{AuditFilter, AuditLog};
use proptest::prelude::*;
use std::sync::Arc;
use time::macros::datetime;

struct World {
    wallets: Wallets,
    store: Arc<MemoryWallets>,
    audit: Arc<MemoryStore>,
}

fn world() -> World {
    let store = Arc::new(MemoryWallets::new());
    let audit = Arc::new(MemoryStore::new());
    let prices = PriceTable::parse(r#"{"usd": {"1000": 100, "5000": 600}}"#).unwrap();
    World {
        wallets: Wallets {
            store: store.clone(),
            audit: audit.clone(),
            clock: Arc::new(FakeClock::new(datetime!(2026-12-04 12:00 UTC))),
            prices,
            low_balance: None,
        },
        store,
        audit,
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId(name.into())
}

fn paid(event: &str, amount: i64) -> Payment {
    Payment {
        event_id: event.into(),
        currency: "USD".into(),
        amount,
    }
}

fn operator() -> Operator {
    Operator {
        actor: "operator:alice".into(),
        ip: None,
        user_agent: None,
    }
}

async fn wallet(w: &World, t: &TenantId) -> Wallet {
    w.store.wallet(t).await.unwrap()
}

#[tokio::test]
async fn a_tenant_without_a_wallet_has_zero_and_its_first_top_up_creates_it() {
    let w = world();
    let a = tenant("a");
    assert_eq!(wallet(&w, &a).await, Wallet::default());
    let first = w.wallets.top_up(&a, &paid("evt_1", 1000)).await.unwrap();
    assert!(matches!(first, Applied::New(_)));
    assert_eq!(
        wallet(&w, &a).await,
        Wallet {
            balance: 100,
            reserved: 0
        }
    );
}

#[tokio::test]
async fn a_billing_event_tops_up_once_and_an_unpriced_amount_changes_nothing() {
    let w = world();
    let a = tenant("a");
    w.wallets.top_up(&a, &paid("evt_1", 5000)).await.unwrap();
    let again = w.wallets.top_up(&a, &paid("evt_1", 5000)).await.unwrap();
    assert!(matches!(again, Applied::Replay(_)));
    assert_eq!(wallet(&w, &a).await.balance, 600);
    let err = w
        .wallets
        .top_up(&a, &paid("evt_2", 1234))
        .await
        .unwrap_err();
    assert!(matches!(err, WalletError::NoPrice { amount: 1234, .. }));
    assert_eq!(w.store.entries(&a).len(), 1);
}

#[tokio::test]
async fn a_reservation_is_all_or_nothing_and_names_the_shortfall() {
    let w = world();
    let a = tenant("a");
    w.wallets.top_up(&a, &paid("evt_1", 1000)).await.unwrap();
    let err = w.wallets.reserve(&a, "r1", 130).await.unwrap_err();
    assert_eq!(
        err,
        WalletError::Insufficient {
            needed: 130,
            balance: 100,
            shortfall: 30
        }
    );
    assert_eq!(
        wallet(&w, &a).await,
        Wallet {
            balance: 100,
            reserved: 0
        }
    );
    w.wallets.reserve(&a, "r1", 60).await.unwrap();
    assert_eq!(
        wallet(&w, &a).await,
        Wallet {
            balance: 40,
            reserved: 60
        }
    );
}

#[tokio::test]
async fn debits_and_releases_never_exceed_the_reservation() {
    let w = world();
    let a = tenant("a");
    w.wallets.top_up(&a, &paid("evt_1", 1000)).await.unwrap();
    w.wallets.reserve(&a, "r1", 60).await.unwrap();
    w.wallets.debit(&a, "r1", "d1", 50).await.unwrap();
    let err = w.wallets.debit(&a, "r1", "d2", 11).await.unwrap_err();
    assert_eq!(
        err,
        WalletError::ReservationShort {
            needed: 11,
            remaining: 10
        }
    );
    w.wallets.release(&a, "r1", "rest", 10).await.unwrap();
    assert_eq!(
        wallet(&w, &a).await,
        Wallet {
            balance: 50,
            reserved: 0
        }
    );
    assert_eq!(w.store.reservation(&a, "r1").await.unwrap(), 0);
    // A replayed debit returns its first outcome and spends nothing more.
    let replay = w.wallets.debit(&a, "r1", "d1", 50).await.unwrap();
    assert!(matches!(replay, Applied::Replay(e) if e.balance == 40 && e.reserved == 10));
    assert_eq!(
        wallet(&w, &a).await,
        Wallet {
            balance: 50,
            reserved: 0
        }
    );
}

#[tokio::test]
async fn a_reversal_of_spent_credits_is_debt_and_blocks_reservations_until_covered() {
    let w = world();
    let a = tenant("a");
    w.wallets.top_up(&a, &paid("evt_1", 1000)).await.unwrap();
    w.wallets.reserve(&a, "r1", 80).await.unwrap();
    w.wallets.debit(&a, "r1", "d1", 80).await.unwrap();
    w.wallets.reverse(&a, "evt_1").await.unwrap();
    let now = wallet(&w, &a).await;
    assert_eq!(now.balance, -80);
    assert_eq!(now.debt(), 80);
    let err = w.wallets.reserve(&a, "r2", 1).await.unwrap_err();
    assert_eq!(
        err,
        WalletError::Insufficient {
            needed: 1,
            balance: -80,
            shortfall: 81
        }
    );
    // Reversed once only.
    assert!(matches!(
        w.wallets.reverse(&a, "evt_1").await.unwrap(),
        Applied::Replay(_)
    ));
    w.wallets.top_up(&a, &paid("evt_2", 5000)).await.unwrap();
    assert_eq!(wallet(&w, &a).await.balance, 520);
    w.wallets.reserve(&a, "r2", 1).await.unwrap();
}

#[tokio::test]
async fn a_reversal_before_its_top_up_is_refused_for_the_caller_to_hold() {
    let w = world();
    let a = tenant("a");
    let err = w.wallets.reverse(&a, "evt_9").await.unwrap_err();
    assert_eq!(err, WalletError::TopUpNotFound("evt_9".into()));
    assert!(w.store.entries(&a).is_empty());
}

#[tokio::test]
async fn a_grant_is_audited_in_the_tenants_and_the_operators_logs_once() {
    let w = world();
    let a = tenant("a");
    w.wallets
        .grant(&a, &operator(), "g1", 25, "goodwill")
        .await
        .unwrap();
    w.wallets
        .grant(&a, &operator(), "g1", 25, "goodwill")
        .await
        .unwrap();
    assert_eq!(wallet(&w, &a).await.balance, 25);
    for log in [a.clone(), TenantId::from(OPERATORS)] {
        let page = w
            .audit
            .list(&log, &AuditFilter::default(), None, 10)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1, "{log}");
        assert_eq!(page.items[0].entry.action, "wallet.granted");
        assert_eq!(page.items[0].entry.entity, "wallet:a");
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let w = world();
    let a = tenant("a");
    for credits in [0, -5, 2_000_000_000] {
        assert!(matches!(
            w.wallets.reserve(&a, "r", credits).await,
            Err(WalletError::Invalid(_))
        ));
        assert!(matches!(
            w.wallets.grant(&a, &operator(), "g", credits, "x").await,
            Err(WalletError::Invalid(_))
        ));
    }
    assert!(matches!(
        w.wallets.grant(&a, &operator(), "g", 5, " ").await,
        Err(WalletError::Invalid(_))
    ));
    assert!(matches!(
        w.wallets.debit(&a, "r:x", "d", 5).await,
        Err(WalletError::Invalid(_))
    ));
    assert!(w.store.entries(&a).is_empty());
}

#[tokio::test]
async fn tenants_do_not_share_wallets_ledgers_or_reservations() {
    let w = world();
    let (a, b) = (tenant("a"), tenant("b"));
    w.wallets.top_up(&a, &paid("evt_1", 1000)).await.unwrap();
    w.wallets.reserve(&a, "r1", 10).await.unwrap();
    assert_eq!(wallet(&w, &b).await, Wallet::default());
    let (page, _) = w.store.ledger(&b, None, 10).await.unwrap();
    assert!(page.is_empty());
    let err = w.wallets.debit(&b, "r1", "d", 5).await.unwrap_err();
    assert_eq!(
        err,
        WalletError::ReservationShort {
            needed: 5,
            remaining: 0
        }
    );
    // The same event id in another tenant is another top-up.
    assert!(matches!(
        w.wallets.top_up(&b, &paid("evt_1", 1000)).await.unwrap(),
        Applied::New(_)
    ));
}

#[tokio::test]
async fn the_ledger_pages_newest_first() {
    let w = world();
    let a = tenant("a");
    for i in 0..5 {
        w.wallets
            .grant(&a, &operator(), &format!("g{i}"), 1, "x")
            .await
            .unwrap();
    }
    let (first, cursor) = w.store.ledger(&a, None, 3).await.unwrap();
    let (rest, end) = w.store.ledger(&a, cursor.as_deref(), 3).await.unwrap();
    let keys: Vec<_> = first.iter().chain(&rest).map(|e| e.key.0.clone()).collect();
    assert_eq!(
        keys,
        ["grant:g4", "grant:g3", "grant:g2", "grant:g1", "grant:g0"]
    );
    assert_eq!(end, None);
}

#[test]
fn the_price_table_fails_fast_on_bad_configuration() {
    assert!(PriceTable::parse("not json").is_err());
    assert!(PriceTable::parse(r#"{"usd": {"ten": 5}}"#).is_err());
    assert!(PriceTable::parse(r#"{"usd": {"1000": 0}}"#).is_err());
    let t = PriceTable::parse(r#"{"EUR": {"500": 50}}"#).unwrap();
    assert_eq!(t.credits("eur", 500), Some(50));
    assert_eq!(t.credits("eur", 501), None);
}

#[derive(Debug, Clone)]
enum Op {
    TopUp(u8, bool),
    Grant(u8, Credits),
    Reserve(u8, Credits),
    Debit(u8, u8, Credits),
    Release(u8, u8, Credits),
    Reverse(u8),
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, any::<bool>()).prop_map(|(e, big)| Op::TopUp(e, big)),
        (0u8..4, 1i64..50).prop_map(|(k, c)| Op::Grant(k, c)),
        (0u8..6, 1i64..200).prop_map(|(r, c)| Op::Reserve(r, c)),
        (0u8..6, 0u8..4, 1i64..100).prop_map(|(r, k, c)| Op::Debit(r, k, c)),
        (0u8..6, 0u8..4, 1i64..100).prop_map(|(r, k, c)| Op::Release(r, k, c)),
        (0u8..6).prop_map(Op::Reverse),
    ]
}

async fn run(w: &World, t: &TenantId, op: &Op) -> Result<Applied, WalletError> {
    let s = &w.wallets;
    match op {
        Op::TopUp(e, big) => {
            s.top_up(
                t,
                &paid(&format!("evt_{e}"), if *big { 5000 } else { 1000 }),
            )
            .await
        }
        Op::Grant(k, c) => s.grant(t, &operator(), &format!("g{k}"), *c, "test").await,
        Op::Reserve(r, c) => s.reserve(t, &format!("r{r}"), *c).await,
        Op::Debit(r, k, c) => s.debit(t, &format!("r{r}"), &format!("d{k}"), *c).await,
        Op::Release(r, k, c) => s.release(t, &format!("r{r}"), &format!("l{k}"), *c).await,
        Op::Reverse(e) => s.reverse(t, &format!("evt_{e}")).await,
    }
}

proptest! {
    /// Random operations, some dying after their write and retried: the ledger holds each key
    /// once, the wallet matches the ledger exactly, and only a reversal goes below zero.
    #[test]
    fn the_wallet_matches_its_ledger_after_any_crash(
        ops in proptest::collection::vec((any_op(), any::<bool>()), 1..60),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let w = world();
            let t = tenant("a");
            for (op, crash) in &ops {
                if *crash {
                    w.store.crash_next_write();
                }
                let first = run(&w, &t, op).await;
                if matches!(first, Err(WalletError::Store(_))) {
                    let retried = run(&w, &t, op).await.unwrap();
                    let replayed = matches!(retried, Applied::Replay(_));
                    prop_assert!(replayed, "a retry after a crash replays");
                }
                let entries = w.store.entries(&t);
                let now = w.store.wallet(&t).await.unwrap();
                prop_assert_eq!(now.balance + now.reserved, Totals::of(&entries).expected());
                prop_assert!(now.reserved >= 0);
                let mut keys: Vec<_> = entries.iter().map(|e| &e.key).collect();
                keys.sort();
                keys.dedup();
                prop_assert_eq!(keys.len(), entries.len());
                for pair in entries.windows(2) {
                    if pair[1].balance < 0 && pair[1].balance < pair[0].balance {
                        let reversal = matches!(pair[1].change, Change::Reverse { .. });
                        prop_assert!(reversal, "only a reversal goes below zero");
                    }
                }
            }
            Ok(())
        })?;
    }
}
