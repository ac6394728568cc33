//! `wallet.low_balance`: once per crossing of the tenant's threshold, by a reservation or a
//! reversal; never for a replay, a tenant without a threshold, or a change that raises the
//! balance; each tenant by its own threshold.

use super::low_balance::LowBalanceAlerts;
use super::memory::MemoryWallets;
use super::service::{Payment, PriceTable};
use super::*;
use crate::clock::FakeClock;
use crate::memory::MemoryStore;
use crate::model::{Tenant, TenantSettings};
use crate::outbound::EventType;
use crate::outbound::memory::RecordedEvents;
use crate::ports::TenantStore;
use std::sync::Arc;
use time::macros::datetime;

struct World {
    wallets: Wallets,
    events: Arc<RecordedEvents>,
    tenants: Arc<MemoryStore>,
}

fn world() -> World {
    let tenants = Arc::new(MemoryStore::new());
    let events = Arc::new(RecordedEvents::default());
    World {
        wallets: Wallets {
            store: Arc::new(MemoryWallets::new()),
            audit: tenants.clone(),
            clock: Arc::new(FakeClock::new(datetime!(2026-12-05 12:00 UTC))),
            prices: PriceTable::parse(r#"{"usd": {"1000": 100}}"#).unwrap(),
            low_balance: Some(Arc::new(LowBalanceAlerts {
                tenants: tenants.clone(),
                events: events.clone(),
            })),
        },
        events,
        tenants,
    }
}

impl World {
    async fn tenant(&self, id: &str, threshold: Option<i64>) -> TenantId {
        let tenant = Tenant {
            id: TenantId(id.into()),
            name: id.into(),
            settings: TenantSettings {
                low_balance_credits: threshold,
                ..TenantSettings::default()
            },
            created_at: datetime!(2026-12-01 00:00 UTC),
            suspended: None,
        };
        self.tenants.create_tenant(&tenant).await.unwrap();
        tenant.id
    }

    async fn top_up(&self, t: &TenantId, event: &str) {
        let payment = Payment {
            event_id: event.into(),
            currency: "usd".into(),
            amount: 1000,
        };
        self.wallets.top_up(t, &payment).await.unwrap();
    }

    fn announced(&self) -> Vec<(i64, i64)> {
        self.events
            .of(EventType::WalletLowBalance)
            .iter()
            .map(|d| {
                (
                    d["balance"].as_i64().unwrap(),
                    d["threshold"].as_i64().unwrap(),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn a_reservation_that_crosses_the_threshold_is_announced_once_per_crossing() {
    let w = world();
    let t = w.tenant("ten_a", Some(50)).await;
    w.top_up(&t, "evt_1").await;
    w.wallets.reserve(&t, "c1", 40).await.unwrap();
    assert_eq!(w.announced(), [], "100 → 60: above 50");
    w.wallets.reserve(&t, "c2", 20).await.unwrap();
    assert_eq!(w.announced(), [(40, 50)], "60 → 40: crossed");
    // Replayed (same reservation key), and lower still: nothing new.
    w.wallets.reserve(&t, "c2", 20).await.unwrap();
    w.wallets.reserve(&t, "c3", 30).await.unwrap();
    assert_eq!(w.announced(), [(40, 50)]);
    // A release lifts it back over; the next crossing is announced again.
    w.wallets.release(&t, "c1", "rest", 40).await.unwrap();
    w.wallets.reserve(&t, "c4", 45).await.unwrap();
    assert_eq!(w.announced(), [(40, 50), (5, 50)]);
    let event = &w.events.of(EventType::WalletLowBalance)[1];
    assert_eq!(event["change"], "reserve:c4");
}

#[tokio::test]
async fn a_reversal_into_debt_is_announced_and_other_changes_never() {
    let w = world();
    let t = w.tenant("ten_a", Some(10)).await;
    w.top_up(&t, "evt_1").await;
    w.top_up(&t, "evt_2").await;
    w.wallets.reserve(&t, "c1", 150).await.unwrap();
    assert_eq!(w.announced(), [], "200 → 50");
    w.wallets.debit(&t, "c1", "used", 150).await.unwrap();
    assert_eq!(
        w.announced(),
        [],
        "a debit spends the reservation, not the balance"
    );
    w.wallets.reverse(&t, "evt_1").await.unwrap();
    assert_eq!(w.announced(), [(-50, 10)], "refunded after spending: debt");
}

#[tokio::test]
async fn each_tenant_is_announced_by_its_own_threshold_and_only_to_itself() {
    let w = world();
    let quiet = w.tenant("ten_quiet", None).await;
    let loud = w.tenant("ten_loud", Some(90)).await;
    let unknown = TenantId("ten_unknown".into());
    for t in [&quiet, &loud, &unknown] {
        w.top_up(t, &format!("evt_{t}")).await;
        w.wallets.reserve(t, "c1", 95).await.unwrap();
    }
    let events = w.events.all();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].tenant_id, loud);
}

#[tokio::test]
async fn every_change_counts_its_credits_by_kind_and_a_replay_counts_nothing() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recording = ::metrics::set_default_local_recorder(&recorder);
    let w = world();
    let t = w.tenant("ten_a", None).await;
    w.top_up(&t, "evt_1").await;
    w.top_up(&t, "evt_1").await;
    w.wallets.reserve(&t, "c1", 30).await.unwrap();
    w.wallets.debit(&t, "c1", "used", 20).await.unwrap();
    w.wallets.release(&t, "c1", "rest", 10).await.unwrap();
    let mut seen: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == crate::metrics::WALLET_CREDITS)
        .map(|(key, _, _, value)| {
            let change = key.key().labels().next().unwrap().value().to_owned();
            let DebugValue::Counter(n) = value else {
                panic!("{value:?}")
            };
            (change, n)
        })
        .collect();
    seen.sort();
    let expected = [
        ("debit", 20),
        ("release", 10),
        ("reserve", 30),
        ("top_up", 100),
    ];
    assert_eq!(
        seen,
        expected.map(|(c, n)| (c.to_owned(), n)),
        "the replayed top-up counted once"
    );
}
