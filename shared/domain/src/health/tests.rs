use super::*;
use crate::clock::FakeClock;
use crate::ids::AccountId;
use crate::memory::MemoryStore;
use crate::model::{Account, AccountStatus};
use crate::ports::{AppLimiter, HeartbeatStore};
use crate::publishing::gates::{Breaker, BreakerState};
use secrecy::SecretString;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-12-04 12:00 UTC);

fn account(tenant: &str, id: &str, status: AccountStatus, expires_in: Option<i64>) -> Account {
    Account {
        id: AccountId(id.into()),
        tenant_id: TenantId(tenant.into()),
        platform: Platform::X,
        external_id: id.into(),
        display_name: None,
        access_token: SecretString::from("tok"),
        refresh_token: None,
        token_expires_at: expires_in.map(|m| NOW + time::Duration::minutes(m)),
        status,
        created_at: NOW,
        updated_at: NOW,
        breaker: Breaker::default(),
    }
}

/// A dependency that answers `status`, or never answers.
struct Fixed(Option<Status>);

#[async_trait]
impl Probe for Fixed {
    fn target(&self) -> Target {
        Target {
            name: "fixed:responseTime".into(),
            component_id: "stub".into(),
            component_type: "datastore",
        }
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        match self.0 {
            None => std::future::pending().await,
            Some(status) => vec![
                Check::new("fixed:responseTime", "stub", "datastore", now)
                    .observed(Observed::Millis(3))
                    .status(status, "slow"),
            ],
        }
    }
}

fn service(store: &Arc<MemoryStore>, probes: Vec<Arc<dyn Probe>>) -> HealthService {
    HealthService {
        probes,
        operator_probes: vec![Arc::new(CensusProbe {
            census: store.clone(),
        })],
        accounts: store.clone(),
        clock: Arc::new(FakeClock::new(NOW)),
        timeout: std::time::Duration::from_millis(50),
    }
}

fn find<'a>(report: &'a Report, name: &str, component: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name && c.component_id == component)
        .unwrap_or_else(|| panic!("no {name} check for {component} in {report:?}"))
}

#[tokio::test]
async fn a_probe_that_does_not_answer_fails_its_own_check_only() {
    let store = Arc::new(MemoryStore::new());
    let health = service(
        &store,
        vec![Arc::new(Fixed(Some(Status::Pass))), Arc::new(Fixed(None))],
    );
    let report = health.report(&Audience::Operator).await;
    assert_eq!(report.status, Status::Fail);
    let failed: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    assert_eq!(failed[0].output.as_deref(), Some("no answer within 50 ms"));
    assert_eq!(failed[0].name, "fixed:responseTime");
}

#[tokio::test]
async fn the_worst_check_decides_and_warn_is_not_fail() {
    let store = Arc::new(MemoryStore::new());
    let probes: Vec<Arc<dyn Probe>> = vec![
        Arc::new(Fixed(Some(Status::Pass))),
        Arc::new(Fixed(Some(Status::Warn))),
    ];
    let report = service(&store, probes).report(&Audience::Operator).await;
    assert_eq!(report.status, Status::Warn);
    let report = service(&store, vec![Arc::new(Fixed(Some(Status::Pass)))])
        .report(&Audience::Operator)
        .await;
    assert_eq!(report.status, Status::Pass, "{report:?}");
}

#[tokio::test]
async fn a_tenant_sees_shared_statuses_without_measurements_and_only_its_own_accounts() {
    let store = Arc::new(MemoryStore::new());
    let mut open = account("a", "acc_open", AccountStatus::Active, None);
    open.breaker.state = BreakerState::Open;
    for a in [
        open,
        account("a", "acc_ok", AccountStatus::Active, Some(600)),
        account("b", "acc_b1", AccountStatus::NeedsReauth, None),
        account("b", "acc_b2", AccountStatus::Active, Some(5)),
    ] {
        store.upsert_account(&a).await.unwrap();
    }
    let health = service(&store, vec![Arc::new(Fixed(Some(Status::Warn)))]);

    let a = health.report(&Audience::Tenant(TenantId("a".into()))).await;
    let shared = find(&a, "fixed:responseTime", "stub");
    assert_eq!(
        (shared.status, &shared.observed, &shared.output),
        (Status::Warn, &None, &None)
    );
    assert_eq!(
        find(&a, "accounts:needsReauth", "a").observed,
        Some(Observed::Count(0))
    );
    assert_eq!(
        find(&a, "tokens:expiringWithin24h", "a").observed,
        Some(Observed::Count(1))
    );
    assert_eq!(
        find(&a, "tokens:expiringWithin24h", "a").status,
        Status::Pass
    );
    let circuits = find(&a, "accounts:openCircuits", "a");
    assert_eq!(
        (circuits.status, &circuits.observed),
        (Status::Warn, &Some(Observed::Count(1)))
    );
    assert!(
        !a.checks
            .iter()
            .any(|c| c.component_id == "b" || c.component_id == "all tenants"),
        "tenant a sees nothing of b: {a:?}"
    );

    let b = health.report(&Audience::Tenant(TenantId("b".into()))).await;
    assert_eq!(find(&b, "accounts:needsReauth", "b").status, Status::Warn);
    let tokens = find(&b, "tokens:expiringWithin24h", "b");
    assert_eq!(
        tokens.status,
        Status::Warn,
        "a token due in 5 minutes was not refreshed"
    );
    assert_eq!(find(&b, "accounts:openCircuits", "b").status, Status::Pass);

    let operator = health.report(&Audience::Operator).await;
    let reauth = find(&operator, "accounts:needsReauth", "all tenants");
    assert_eq!(reauth.observed, Some(Observed::Count(1)));
    let tokens = find(&operator, "tokens:expiringWithin24h", "all tenants");
    assert_eq!(
        (tokens.status, &tokens.observed),
        (Status::Warn, &Some(Observed::Count(2)))
    );
    assert_eq!(
        find(&operator, "fixed:responseTime", "stub").observed,
        Some(Observed::Millis(3))
    );
}

#[tokio::test]
async fn heartbeats_pass_while_fresh_warn_when_late_and_fail_when_stopped() {
    let store = Arc::new(MemoryStore::new());
    let minutes = |m: i64| NOW - time::Duration::minutes(m);
    store.beat("dispatcher", minutes(1), "").await.unwrap();
    store.beat("poller", minutes(5), "").await.unwrap();
    store.beat("reconciler", minutes(11), "").await.unwrap();
    let every = time::Duration::minutes(1);
    let probe = HeartbeatProbe {
        heartbeats: store.clone(),
        schedules: ["dispatcher", "poller", "reconciler", "analytics"]
            .map(|function| Schedule { function, every })
            .to_vec(),
    };
    let report = service(&store, vec![Arc::new(probe)])
        .report(&Audience::Operator)
        .await;
    let status = |f| find(&report, "heartbeat:age", f).status;
    assert_eq!(status("dispatcher"), Status::Pass);
    assert_eq!(status("poller"), Status::Warn);
    assert_eq!(status("reconciler"), Status::Fail);
    assert_eq!(status("analytics"), Status::Warn, "never ran");
    assert_eq!(
        find(&report, "heartbeat:age", "reconciler").observed,
        Some(Observed::Seconds(660))
    );
}

#[tokio::test]
async fn an_app_block_warns_until_it_ends() {
    let store = Arc::new(MemoryStore::new());
    let until = NOW + time::Duration::minutes(10);
    store.block_app(Platform::X, until).await.unwrap();
    store
        .block_app(Platform::Facebook, NOW - time::Duration::minutes(1))
        .await
        .unwrap();
    let probe = AppBlockProbe {
        blocks: store.clone(),
    };
    let report = service(&store, vec![Arc::new(probe)])
        .report(&Audience::Operator)
        .await;
    let x = find(&report, "platform:appBlock", "x");
    assert_eq!(
        (x.status, &x.observed),
        (Status::Warn, &Some(Observed::Time(until)))
    );
    assert_eq!(
        find(&report, "platform:appBlock", "facebook").status,
        Status::Pass
    );
    assert_eq!(
        find(&report, "platform:appBlock", "linkedin").status,
        Status::Pass
    );
}

#[tokio::test]
async fn the_operator_sees_live_campaigns_and_warns_of_ones_standing_still() {
    use crate::campaigns::CampaignStore;
    use crate::campaigns::memory::MemoryCampaigns;
    use crate::ids::CampaignId;
    let campaigns = Arc::new(MemoryCampaigns::new(Arc::new(
        crate::contacts::memory::MemoryContacts::default(),
    )));
    let probe = CampaignProbe {
        campaigns: campaigns.clone(),
    };
    let checks = probe.check(NOW).await;
    assert_eq!(
        checks.iter().map(|c| c.status).collect::<Vec<_>>(),
        [Status::Pass, Status::Pass],
        "none live"
    );
    let (a, b) = (TenantId("t_a".into()), TenantId("t_b".into()));
    let (moving, still) = (
        CampaignId("cmp_moving".into()),
        CampaignId("cmp_still".into()),
    );
    let ago = |minutes| NOW - time::Duration::minutes(minutes);
    for (t, c) in [(&a, &moving), (&b, &still)] {
        campaigns.mark_live(t, c, ago(40)).await.unwrap();
    }
    // The reconciler's passes: one saw its count move two minutes ago; the other was only
    // repaired (seen, not moved) a minute ago.
    campaigns
        .saw_live(&a, &moving, 5, ago(2), true)
        .await
        .unwrap();
    campaigns
        .saw_live(&b, &still, 0, ago(1), false)
        .await
        .unwrap();
    let checks = probe.check(NOW).await;
    let live = checks
        .iter()
        .find(|c| c.name == "sms:liveCampaigns")
        .unwrap();
    assert_eq!(
        (live.observed.clone(), live.status),
        (Some(Observed::Count(2)), Status::Pass)
    );
    let still = checks
        .iter()
        .find(|c| c.name == "sms:standingCampaigns")
        .unwrap();
    assert_eq!(
        (still.observed.clone(), still.status),
        (Some(Observed::Count(1)), Status::Warn)
    );
    assert!(still.output.as_deref().unwrap().contains("runbook"));
}
