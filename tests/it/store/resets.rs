//! Operator resets on DynamoDB: each is one conditional write on the state it read, so a reset
//! opens the publisher's claim gate again, and a stale one never undoes a newer trip, block or
//! run.

use super::*;
use herald_domain::dead_letters::{OPERATORS, Operator};
use herald_domain::health::AppBlocks;
use herald_domain::ingest::{Counters, Finish, IngestStore, StreamKey};
use herald_domain::resets::{
    AppBlockResets, CircuitResets, ResetError, ResetService, StreamRetries,
};

impl Env {
    fn resets(&self) -> ResetService {
        ResetService {
            circuits: self.store.clone(),
            app_blocks: self.store.clone(),
            streams: self.store.clone(),
            audit: self.store.clone(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The tenant's (or the operators') audit records of `action`.
    async fn audited(&self, tenant: &TenantId, action: &str) -> Vec<AuditRecord> {
        let filter = AuditFilter {
            entity: None,
            actor: None,
            action: Some(action.into()),
            from: None,
            to: None,
        };
        self.store
            .list(tenant, &filter, None, 50)
            .await
            .unwrap()
            .items
    }
}

fn by() -> Operator {
    Operator {
        actor: "key:key_admin".into(),
        ip: None,
        user_agent: None,
    }
}

#[tokio::test]
async fn a_circuit_reset_admits_the_claim_and_a_stale_one_loses_to_a_newer_trip() {
    let env = Env::new().await;
    let now = SystemClock.now();
    let policy = BreakerPolicy::default();
    let v = env.variant_now("held by the breaker").await;
    let tripped = env.fail(policy.failure_threshold, policy, now).await;
    assert_eq!(tripped.state, BreakerState::Open);
    assert!(matches!(
        env.store.claim_for_publish(&v, "a1", &gate(now)).await,
        Err(ClaimRejected::Breaker(_))
    ));

    let reset = env
        .resets()
        .reset_circuit(&env.tenant, &env.account, &by())
        .await
        .unwrap();
    assert_eq!(reset.before, tripped);
    assert!(env.breaker().await.is_pristine());
    env.store
        .claim_for_publish(&v, "a2", &gate(now))
        .await
        .expect("the closed circuit admits the claim");
    let records = env.audited(&env.tenant, "account.circuit_reset").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].entry.old.as_ref().unwrap()["state"], "open");
    assert_eq!(
        env.resets()
            .reset_circuit(&env.tenant, &env.account, &by())
            .await
            .map(|r| r.before),
        Err(ResetError::NothingToReset(
            "the account's circuit is closed (0 failures in a row) and the platform does not block it"
                .into()
        ))
    );
    let other = env.resets();
    assert_eq!(
        other
            .reset_circuit(&TenantId("ten_other".into()), &env.account, &by())
            .await
            .map(|r| r.before),
        Err(ResetError::NotFound),
        "another tenant's partition has no such account"
    );

    // Tripped again; the operator reads it, then the publisher's probe fails and trips it anew
    // before the reset is written: the reset loses and the newer trip stands.
    env.fail(policy.failure_threshold, policy, now).await;
    let seen = env
        .store
        .breaker(&env.tenant, &env.account)
        .await
        .unwrap()
        .unwrap();
    let later = now + policy.reset_after;
    let w = env.variant_now("the probe").await;
    let probe = ClaimGate {
        breaker: BreakerGate::Probe {
            lease_until: later + policy.probe_lease,
        },
        ..gate(later)
    };
    env.store
        .claim_for_publish(&w, "probe", &probe)
        .await
        .unwrap();
    let retripped = env.fail(1, policy, later).await;
    assert_eq!(retripped.until, Some(later + policy.reset_after));
    assert!(
        !env.store
            .close_circuit(&env.tenant, &env.account, &seen)
            .await
            .unwrap(),
        "a stale reset writes nothing"
    );
    assert_eq!(env.breaker().await, retripped);
}

#[tokio::test]
async fn an_app_block_is_lifted_only_while_it_is_the_one_read() {
    let env = Env::new().await;
    let now = SystemClock.now();
    let first = now + time::Duration::minutes(10);
    env.store.block_app(Platform::X, first).await.unwrap();
    // A longer block recorded after the operator read the first.
    let longer = now + time::Duration::minutes(20);
    env.store.block_app(Platform::X, longer).await.unwrap();
    assert!(!env.store.lift_app_block(Platform::X, first).await.unwrap());
    assert_eq!(
        env.store.app_block(Platform::X).await.unwrap(),
        Some(longer)
    );

    let lifted = env
        .resets()
        .lift_app_block(Platform::X, &by())
        .await
        .unwrap();
    assert_eq!(lifted.until, longer);
    assert_eq!(env.store.app_block(Platform::X).await.unwrap(), None);
    let x = RateLimits::default().app_slot(Platform::X, now).unwrap();
    assert_eq!(env.store.reserve(&x, 1, now).await.unwrap().granted, 1);
    let records = env
        .audited(&TenantId(OPERATORS.into()), "app_block.cleared")
        .await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].entry.entity, "app_block:x");
    assert!(matches!(
        env.resets().lift_app_block(Platform::X, &by()).await,
        Err(ResetError::NothingToReset(_))
    ));
}

#[tokio::test]
async fn a_stream_retry_makes_it_due_unless_a_run_moved_or_holds_it() {
    let env = Env::new().await;
    let now = SystemClock.now();
    let key = StreamKey::for_account(Platform::Facebook, "page-1");
    let hour = now + time::Duration::hours(1);
    let run = |owner: &'static str, deferred: Option<time::OffsetDateTime>| {
        let (store, tenant, account, key) = (
            env.store.clone(),
            env.tenant.clone(),
            env.account.clone(),
            key.clone(),
        );
        async move {
            let lease = now + time::Duration::minutes(1);
            store
                .take_lease(&tenant, &account, &key, owner, now, lease)
                .await
                .unwrap()
                .expect("the lease is free");
            let finish = Finish {
                next_due: hour,
                deferred_until: deferred,
                counters: Counters::default(),
            };
            store.finish(&tenant, &key, owner, &finish).await.unwrap();
        }
    };
    run("run-1", Some(hour)).await;

    let retried = env
        .resets()
        .retry_stream(&env.tenant, &key, &by())
        .await
        .unwrap();
    let state = retried.after.state.unwrap();
    assert!(state.next_due.is_some_and(|d| d < hour), "{state:?}");
    assert_eq!(state.deferred_until, None);
    assert_eq!(
        env.store.stream(&env.tenant, &key).await.unwrap(),
        Some(state)
    );
    assert_eq!(env.audited(&env.tenant, "stream.retried").await.len(), 1);

    // Read, then a run finishes with a new schedule: the stale retry writes nothing.
    run("run-2", None).await;
    let seen = env.store.stream(&env.tenant, &key).await.unwrap().unwrap();
    run("run-3", Some(hour + time::Duration::minutes(5))).await;
    let after_run = env.store.stream(&env.tenant, &key).await.unwrap();
    assert_eq!(env.store.retry_stream(&seen, now).await.unwrap(), None);
    assert_eq!(
        env.store.stream(&env.tenant, &key).await.unwrap(),
        after_run
    );

    // A live run's lease is never broken.
    let held = after_run.unwrap();
    env.store
        .take_lease(&env.tenant, &env.account, &key, "run-4", now, hour)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(env.store.retry_stream(&held, now).await.unwrap(), None);
}
