//! Operator resets: a tenant's admin closes its own account's circuit and retries its own
//! stream; the operator lifts an app block. Other roles get 403, other tenants 404, tenant keys
//! on the operator's route 401, and nothing changes for any of them. Each reset is audited
//! with the state it replaced; a second reset finds nothing to reset (409).

use super::*;
use async_trait::async_trait;
use herald_domain::audit::AuditRecord;
use herald_domain::error::StoreError;
use herald_domain::health::AppBlocks;
use herald_domain::ids::{AccountId, Platform, TenantId};
use herald_domain::ingest::{Counters, Finish, IngestStore, StreamKey, StreamState};
use herald_domain::ports::{
    AccountStore, AppLimiter, AuditFilter, AuditLog, BreakerChange, PublishStore,
};
use herald_domain::publishing::gates::{Breaker, BreakerPolicy, BreakerState};
use herald_domain::secrets::operator::OperatorToken;
use herald_domain::secrets::{CURRENT, CachePolicy, SecretCache, SecretMeta, SecretStore};
use secrecy::SecretString;
use time::{Duration, OffsetDateTime};

const OPERATOR_TOKEN: &str = "hrld_operator_token_for_tests";

/// The operator token's secret, with one value.
struct OneSecret;

#[async_trait]
impl SecretStore for OneSecret {
    async fn describe(&self, _: &str) -> Result<SecretMeta, StoreError> {
        Err(StoreError::Invalid("not described in these tests".into()))
    }
    async fn value(&self, _: &str, _: &str) -> Result<Option<SecretString>, StoreError> {
        Ok(None)
    }
    async fn staged_value(
        &self,
        _: &str,
        stage: &str,
    ) -> Result<Option<(SecretString, OffsetDateTime)>, StoreError> {
        Ok((stage == CURRENT).then(|| {
            (
                SecretString::from(OPERATOR_TOKEN),
                OffsetDateTime::UNIX_EPOCH,
            )
        }))
    }
    async fn put_pending(&self, _: &str, _: &str, _: &SecretString) -> Result<(), StoreError> {
        Err(StoreError::Invalid("not rotated in these tests".into()))
    }
    async fn move_stage(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: Option<&str>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Invalid("not rotated in these tests".into()))
    }
}

fn with_operator() -> Api {
    let mut m = AppState::in_memory();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    m.state.operator = Some(Arc::new(OperatorToken {
        secrets: Arc::new(SecretCache::new(
            Arc::new(OneSecret),
            clock.clone(),
            CachePolicy::default(),
        )),
        secret_id: "admin-token".into(),
        grace: Duration::hours(1),
        clock,
    }));
    Api::over(m)
}

async fn key_with_role(api: &Api, t: &Tenant, role: &str) -> String {
    let (s, _, v) = api
        .post("/v1/api-keys", &t.key, json!({"name": role, "role": role}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["key"].as_str().unwrap().to_owned()
}

async fn breaker(api: &Api, t: &Tenant, account: &str) -> Breaker {
    api.store
        .get_account(&TenantId(t.id.clone()), &AccountId(account.into()))
        .await
        .unwrap()
        .unwrap()
        .breaker
}

/// The tenant's audit records of `action`, newest first.
async fn audited(api: &Api, tenant: &str, action: &str) -> Vec<AuditRecord> {
    let filter = AuditFilter {
        entity: None,
        actor: None,
        action: Some(action.into()),
        from: None,
        to: None,
    };
    api.store
        .list(&TenantId(tenant.into()), &filter, None, 50)
        .await
        .unwrap()
        .items
}

fn assert_nothing_to_reset(h: &axum::http::HeaderMap, v: &Value, s: StatusCode, says: &str) {
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_problem(h, v, s);
    assert_eq!(v["type"], "/problems/nothing-to-reset", "{v}");
    assert!(v["detail"].as_str().unwrap().contains(says), "{v}");
}

#[tokio::test]
async fn only_the_tenants_admin_resets_its_tripped_circuit_and_the_reset_is_audited() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let b = api.tenant(false).await;
    let account = api.connect(&a, "x", "a1").await;
    let failure = BreakerChange::Failure {
        policy: BreakerPolicy::default(),
        now: SystemClock.now(),
    };
    for _ in 0..5 {
        api.store
            .update_breaker(
                &TenantId(a.id.clone()),
                &AccountId(account.clone()),
                failure,
            )
            .await
            .unwrap();
    }
    let tripped = breaker(&api, &a, &account).await;
    assert_eq!(tripped.state, BreakerState::Open);
    let path = format!("/v1/accounts/{account}/reset-circuit");

    for role in ["viewer", "editor"] {
        let key = key_with_role(&api, &a, role).await;
        let (s, h, v) = api.act(&path, &key).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{role}: {v}");
        assert_problem(&h, &v, s);
    }
    let (s, h, v) = api.act(&path, &b.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant's account: {v}");
    assert_problem(&h, &v, s);
    assert_eq!(
        breaker(&api, &a, &account).await,
        tripped,
        "nothing changed"
    );
    assert!(
        audited(&api, &a.id, "account.circuit_reset")
            .await
            .is_empty()
    );

    let (s, _, v) = api.act(&path, &a.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["previous"]["state"], "open", "{v}");
    assert_eq!(v["previous"]["consecutive_failures"], 5, "{v}");
    assert!(v["previous"]["until"].is_string(), "{v}");
    assert_eq!(v["circuit"]["state"], "closed", "{v}");
    assert_eq!(v["circuit"]["consecutive_failures"], 0, "{v}");
    assert_eq!(breaker(&api, &a, &account).await, Breaker::default());
    let records = audited(&api, &a.id, "account.circuit_reset").await;
    assert_eq!(records.len(), 1);
    let entry = &records[0].entry;
    assert_eq!(entry.entity, format!("account:{account}"));
    assert_eq!(entry.actor, format!("key:{}", a.key_id));
    assert_eq!(entry.old.as_ref().unwrap()["state"], "open");
    assert_eq!(entry.old.as_ref().unwrap()["consecutive_failures"], 5);
    assert_eq!(entry.new.as_ref().unwrap()["state"], "closed");
    assert!(
        audited(&api, &b.id, "account.circuit_reset")
            .await
            .is_empty()
    );

    let (s, h, v) = api.act(&path, &a.key).await;
    assert_nothing_to_reset(&h, &v, s, "circuit is closed");
    assert_eq!(audited(&api, &a.id, "account.circuit_reset").await.len(), 1);

    // A platform's "no calls left until" on a closed circuit is lifted the same way.
    let until = SystemClock.now() + Duration::hours(1);
    api.store
        .update_breaker(
            &TenantId(a.id.clone()),
            &AccountId(account.clone()),
            BreakerChange::BlockUntil(until),
        )
        .await
        .unwrap();
    let (s, _, v) = api.act(&path, &a.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["previous"]["state"], "closed", "{v}");
    assert!(v["previous"]["blocked_until"].is_string(), "{v}");
    assert!(v["circuit"]["blocked_until"].is_null(), "{v}");
    assert_eq!(breaker(&api, &a, &account).await, Breaker::default());
}

#[tokio::test]
async fn only_the_tenants_admin_retries_its_waiting_stream_and_never_one_a_run_holds() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let b = api.tenant(false).await;
    let (tenant, account, key) = (
        TenantId(a.id.clone()),
        AccountId("acc_a1".into()),
        StreamKey("x:a1".into()),
    );
    api.ingest.register(&tenant, &account, &key);
    let path = "/v1/streams/x:a1/retry";

    let (s, h, v) = api.act(path, &a.key).await;
    assert_nothing_to_reset(&h, &v, s, "has not run yet");

    // A run the platform throttled for an hour.
    let now = SystemClock.now();
    let later = now + Duration::hours(1);
    api.ingest
        .take_lease(
            &tenant,
            &account,
            &key,
            "run-1",
            now,
            now + Duration::minutes(1),
        )
        .await
        .unwrap()
        .unwrap();
    let finish = Finish {
        next_due: later,
        deferred_until: Some(later),
        counters: Counters::default(),
    };
    api.ingest
        .finish(&tenant, &key, "run-1", &finish)
        .await
        .unwrap();
    let deferred: Option<StreamState> = api.ingest.stream(&tenant, &key).await.unwrap();

    let editor = key_with_role(&api, &a, "editor").await;
    let (s, h, v) = api.act(path, &editor).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_problem(&h, &v, s);
    let (s, h, v) = api.act(path, &b.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant's stream: {v}");
    assert_problem(&h, &v, s);
    assert_eq!(api.ingest.stream(&tenant, &key).await.unwrap(), deferred);

    let (s, _, v) = api.act(path, &a.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["key"], "x:a1", "{v}");
    assert!(v["deferred_until"].is_null(), "{v}");
    let state = api.ingest.stream(&tenant, &key).await.unwrap().unwrap();
    assert!(state.next_due.is_some_and(|d| d < later), "{state:?}");
    assert_eq!(state.deferred_until, None);
    let records = audited(&api, &a.id, "stream.retried").await;
    assert_eq!(records.len(), 1);
    let entry = &records[0].entry;
    assert_eq!(entry.entity, "stream:x:a1");
    assert_eq!(entry.actor, format!("key:{}", a.key_id));
    assert!(entry.old.as_ref().unwrap()["deferred_until"].is_string());
    assert!(entry.new.as_ref().unwrap()["deferred_until"].is_null());

    let (s, h, v) = api.act(path, &a.key).await;
    assert_nothing_to_reset(&h, &v, s, "is due");

    // A live run's stream is left alone, even when it is scheduled for later.
    api.ingest
        .take_lease(&tenant, &account, &key, "run-2", now, later)
        .await
        .unwrap()
        .unwrap();
    let (s, h, v) = api.act(path, &a.key).await;
    assert_nothing_to_reset(&h, &v, s, "a run holds the stream");
    assert_eq!(audited(&api, &a.id, "stream.retried").await.len(), 1);
}

#[tokio::test]
async fn only_the_operator_lifts_an_app_block_and_it_is_audited_in_the_operators_log() {
    let api = with_operator();
    let t = api.tenant(false).await;
    let until = SystemClock.now() + Duration::minutes(10);
    api.store
        .block_app(Platform::Facebook, until)
        .await
        .unwrap();

    let (s, h, v) = api.delete("/v1/app-blocks/facebook", &t.key).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a tenant's key: {v}");
    assert_problem(&h, &v, s);
    assert_eq!(
        api.store.app_block(Platform::Facebook).await.unwrap(),
        Some(until)
    );
    let (s, h, v) = api.delete("/v1/app-blocks/myspace", OPERATOR_TOKEN).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_problem(&h, &v, s);

    let (s, _, v) = api.delete("/v1/app-blocks/facebook", OPERATOR_TOKEN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["platform"], "facebook", "{v}");
    assert!(v["previous_until"].is_string(), "{v}");
    assert_eq!(api.store.app_block(Platform::Facebook).await.unwrap(), None);
    let records = audited(&api, "operators", "app_block.cleared").await;
    assert_eq!(records.len(), 1);
    let entry = &records[0].entry;
    assert_eq!(entry.entity, "app_block:facebook");
    assert_eq!(entry.actor, "key:operator-token");
    assert_eq!(entry.old.as_ref().unwrap()["until"], v["previous_until"]);
    assert!(audited(&api, &t.id, "app_block.cleared").await.is_empty());

    let (s, h, v) = api.delete("/v1/app-blocks/facebook", OPERATOR_TOKEN).await;
    assert_nothing_to_reset(&h, &v, s, "not blocked");
}
