//! The credit wallet on DynamoDB: every change one conditional transaction; a replayed key
//! returns its first entry; reservations never exceed the balance, even sent at once; debt
//! after a reversal blocks reservations; the ledger pages newest first and balances exactly;
//! tenants share nothing.

use super::*;
use herald_domain::wallet::{
    Applied, LedgerKey, Payment, PriceTable, Totals, WalletError, WalletStore, Wallets,
};

fn wallets(env: &Env) -> Wallets {
    Wallets {
        store: env.store.clone(),
        audit: env.store.clone(),
        clock: Arc::new(SystemClock),
        prices: PriceTable::parse(r#"{"usd": {"1000": 100}}"#).unwrap(),
        low_balance: None,
    }
}

fn paid(event: &str) -> Payment {
    Payment {
        event_id: event.into(),
        currency: "usd".into(),
        amount: 1000,
    }
}

#[tokio::test]
async fn the_wallet_is_exact_on_dynamodb_under_replays_races_and_debt() {
    let env = Env::new().await;
    let w = wallets(&env);
    let store = env.store.as_ref();
    let t = &env.tenant;
    let operator = herald_domain::dead_letters::Operator {
        actor: "operator:it".into(),
        ip: None,
        user_agent: None,
    };

    assert!(matches!(
        w.top_up(t, &paid("evt_1")).await,
        Ok(Applied::New(_))
    ));
    let again = w.top_up(t, &paid("evt_1")).await.unwrap();
    assert!(matches!(again, Applied::Replay(_)), "one top-up per event");
    w.grant(t, &operator, "g1", 50, "welcome").await.unwrap();
    assert_eq!(store.wallet(t).await.unwrap().balance, 150);

    // Ten reservations of 20 sent at once on 150: exactly seven hold, and the wallet is never
    // below zero.
    let attempts = (0..10).map(|i| {
        let w = &w;
        async move { w.reserve(t, &format!("r{i}"), 20).await }
    });
    let results = futures::future::join_all(attempts).await;
    let held = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(held, 7, "{results:?}");
    assert!(results.iter().all(|r| r.is_ok()
        || matches!(r, Err(WalletError::Insufficient { shortfall: 10, .. }))));
    let wallet = store.wallet(t).await.unwrap();
    assert_eq!((wallet.balance, wallet.reserved), (10, 140));

    // Spend and give back within a reservation, never beyond it.
    let r = results
        .iter()
        .position(|r| r.is_ok())
        .map(|i| format!("r{i}"))
        .unwrap();
    w.debit(t, &r, "sms1", 15).await.unwrap();
    assert!(matches!(
        w.debit(t, &r, "sms2", 6).await,
        Err(WalletError::ReservationShort { remaining: 5, .. })
    ));
    w.release(t, &r, "end", 5).await.unwrap();
    assert_eq!(store.reservation(t, &r).await.unwrap(), 0);

    // A refund of the spent top-up: debt, and no reservation until it is covered.
    w.reverse(t, "evt_1").await.unwrap();
    let wallet = store.wallet(t).await.unwrap();
    assert_eq!(wallet.balance, 15 - 100);
    assert_eq!(wallet.debt(), 85);
    assert!(matches!(
        w.reserve(t, "after", 1).await,
        Err(WalletError::Insufficient { .. })
    ));

    // The ledger, newest first in pages, sums to the wallet exactly.
    let (first, cursor) = store.ledger(t, None, 5).await.unwrap();
    assert_eq!(first[0].key, LedgerKey::reversal("evt_1"));
    let mut all = first.clone();
    let mut cursor = cursor;
    while let Some(c) = cursor {
        let (page, next) = store.ledger(t, Some(&c), 5).await.unwrap();
        all.extend(page);
        cursor = next;
    }
    assert_eq!(all.len(), 1 + 1 + 7 + 1 + 1 + 1, "{all:#?}");
    assert_eq!(
        wallet.balance + wallet.reserved,
        Totals::of(&all).expected()
    );
    assert_eq!(
        store
            .entry(t, &LedgerKey::top_up("evt_1"))
            .await
            .unwrap()
            .unwrap()
            .balance,
        100
    );

    // Another tenant: nothing of this one's, and its own keys are its own.
    let other = TenantId("wallet_other".into());
    assert_eq!(store.wallet(&other).await.unwrap(), Default::default());
    assert_eq!(store.reservation(&other, &r).await.unwrap(), 0);
    assert_eq!(store.ledger(&other, None, 10).await.unwrap().0, vec![]);
    assert!(matches!(
        w.top_up(&other, &paid("evt_1")).await,
        Ok(Applied::New(_))
    ));
}

/// The low-balance threshold is a tenant setting on DynamoDB: set, read back with the
/// others, and removed by `None` (tenants written before it have none).
#[tokio::test]
async fn the_low_balance_threshold_is_set_read_and_removed_with_the_tenants_settings() {
    use herald_domain::ports::TenantStore;
    let env = Env::new().await;
    let store = env.store.as_ref();
    let t = &env.tenant;
    let before = store.get_tenant(t).await.unwrap().unwrap().settings;
    assert_eq!(before.low_balance_credits, None);
    let mut settings = before.clone();
    settings.low_balance_credits = Some(250);
    settings.sms_help_text = Some("Reply STOP".into());
    store.update_settings(t, &settings).await.unwrap();
    assert_eq!(
        store.get_tenant(t).await.unwrap().unwrap().settings,
        settings
    );
    settings.low_balance_credits = None;
    store.update_settings(t, &settings).await.unwrap();
    let after = store.get_tenant(t).await.unwrap().unwrap().settings;
    assert_eq!(after.low_balance_credits, None);
    assert_eq!(after.sms_help_text.as_deref(), Some("Reply STOP"));
}
