//! A seed's script, drawn up front from the seed: who posts what when, edits, cancels,
//! reviews, pauses, platform episodes and store throttling.

use crate::config::{START, SimConfig};
use crate::platform::{Episode, EpisodeKind};
use crate::rng::Rng;
use herald_domain::ids::{AccountId, TenantId};
use herald_domain::model::{Account, Platform};
use std::time::Duration;
use time::OffsetDateTime;

pub(crate) const TENANTS: usize = 3;

#[derive(Debug)]
pub(crate) struct TenantPlan {
    pub(crate) id: TenantId,
    pub(crate) require_approval: bool,
    pub(crate) accounts: Vec<AccountPlan>,
}

#[derive(Debug, Clone)]
pub(crate) struct AccountPlan {
    pub(crate) id: AccountId,
    pub(crate) platform: Platform,
    /// `t0.x1`: also the account's external id on the fake platform.
    pub(crate) label: String,
}

#[derive(Debug, Clone)]
pub(crate) enum ApiAction {
    Create {
        /// (index of the account in the tenant, whether the variant has its own text)
        targets: Vec<(usize, bool)>,
        scheduled_at: Option<OffsetDateTime>,
    },
    Edit {
        rev: u32,
        text: bool,
        scheduled_at: Option<OffsetDateTime>,
    },
    Cancel,
    Review {
        approve: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct ApiCall {
    pub(crate) at: OffsetDateTime,
    pub(crate) seq: usize,
    pub(crate) tenant: usize,
    pub(crate) action: ApiAction,
}

#[derive(Debug, Clone)]
pub(crate) struct PausePlan {
    pub(crate) tenant: usize,
    pub(crate) at: OffsetDateTime,
    pub(crate) platforms: Vec<Platform>,
    pub(crate) length: time::Duration,
    pub(crate) lift_after: Option<time::Duration>,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) tenants: Vec<TenantPlan>,
    pub(crate) api: Vec<ApiCall>,
    pub(crate) pauses: Vec<PausePlan>,
    pub(crate) episodes: Vec<Episode>,
    pub(crate) throttles: Vec<(OffsetDateTime, OffsetDateTime)>,
    /// After this, no new work is planned.
    pub(crate) window_end: OffsetDateTime,
    pub(crate) pollers: usize,
    pub(crate) reconciler_phase: Duration,
}

pub(crate) fn minutes(m: u64) -> time::Duration {
    time::Duration::minutes(m as i64)
}

pub(crate) fn seconds(s: u64) -> time::Duration {
    time::Duration::seconds(s as i64)
}

/// The seed's script: who posts what when, edits, cancels, reviews, pauses, platform
/// episodes and store throttling.
pub(crate) fn make_plan(config: &SimConfig, rng: &mut Rng) -> Plan {
    let window = minutes(rng.between(120, 480));
    let window_start = START + minutes(1);
    let mut tenants = Vec::new();
    for t in 0..TENANTS {
        let mut accounts = Vec::new();
        for platform in Platform::ALL {
            for n in 0..rng.between(1, 2) {
                let label = format!("t{t}.{}{n}", platform.as_str());
                accounts.push(AccountPlan {
                    id: Account::id_for(platform, &label),
                    platform,
                    label,
                });
            }
        }
        tenants.push(TenantPlan {
            id: TenantId(format!("ten_sim{t}")),
            // The last tenant reviews every post before it goes out.
            require_approval: t == TENANTS - 1,
            accounts,
        });
    }
    // A busy minute: many posts for one tenant at once (rate windows, app budgets).
    let burst_at = window_start + seconds(rng.below(window.whole_seconds() as u64));
    let burst_tenant = rng.index(TENANTS);
    let mut api = Vec::new();
    let mut variants = 0;
    let mut seq = 0;
    let mut window_end = window_start + window;
    while variants < config.publishes {
        seq += 1;
        let burst = rng.chance(0.15);
        let tenant = if burst {
            burst_tenant
        } else {
            rng.index(TENANTS)
        };
        let accounts = tenants[tenant].accounts.len();
        let want = (rng.between(1, 3) as usize)
            .min(accounts)
            .min(config.publishes - variants);
        let mut picked: Vec<usize> = Vec::new();
        while picked.len() < want {
            let a = rng.index(accounts);
            if !picked.contains(&a) {
                picked.push(a);
            }
        }
        picked.sort_unstable();
        variants += picked.len();
        let targets: Vec<(usize, bool)> =
            picked.into_iter().map(|a| (a, rng.chance(0.25))).collect();
        let due = if burst {
            burst_at + seconds(rng.below(60))
        } else {
            window_start + seconds(rng.below(window.whole_seconds() as u64))
        };
        let now_post = rng.chance(0.08);
        let created_at = if now_post {
            due
        } else {
            (due - minutes(rng.below(120))).max(START)
        };
        api.push(ApiCall {
            at: created_at,
            seq,
            tenant,
            action: ApiAction::Create {
                targets,
                scheduled_at: (!now_post).then_some(due),
            },
        });
        let review = |rng: &mut Rng, after: OffsetDateTime| ApiCall {
            at: after + seconds(rng.between(30, 900)),
            seq,
            tenant,
            action: ApiAction::Review {
                approve: rng.chance(0.95),
            },
        };
        if tenants[tenant].require_approval {
            api.push(review(rng, created_at));
        }
        if config.edits {
            // Edits and cancels land around the due time: some before the dispatch, some
            // between dispatch and claim, some too late.
            let span = (due + minutes(5) - created_at).whole_seconds().max(1) as u64;
            let mut rev = 1;
            let mut due_now = due;
            for _ in 0..2 {
                if !rng.chance(0.12) {
                    continue;
                }
                rev += 1;
                let at = created_at + seconds(1 + rng.below(span));
                let text = rng.chance(0.7);
                let reschedule = !text || rng.chance(0.4);
                let scheduled_at = reschedule.then(|| {
                    let to = (due_now + minutes(rng.below(90)) - minutes(30)).max(at);
                    due_now = to;
                    to
                });
                api.push(ApiCall {
                    at,
                    seq,
                    tenant,
                    action: ApiAction::Edit {
                        rev,
                        text,
                        scheduled_at,
                    },
                });
                if tenants[tenant].require_approval {
                    api.push(review(rng, at));
                }
            }
            window_end = window_end.max(due_now);
            if rng.chance(0.04) {
                api.push(ApiCall {
                    at: created_at + seconds(1 + rng.below(span)),
                    seq,
                    tenant,
                    action: ApiAction::Cancel,
                });
            }
        }
    }
    api.sort_by_key(|c| (c.at, c.seq));
    window_end = window_end.max(api.last().map_or(START, |c| c.at));

    let mut pauses = Vec::new();
    if config.crises {
        for tenant in 0..TENANTS {
            for _ in 0..rng.between(0, 2) {
                let platforms = if rng.chance(0.5) {
                    Vec::new()
                } else {
                    let mut p = vec![Platform::ALL[rng.index(Platform::ALL.len())]];
                    let second = Platform::ALL[rng.index(Platform::ALL.len())];
                    if rng.chance(0.3) && !p.contains(&second) {
                        p.push(second);
                    }
                    p
                };
                let length = minutes(rng.between(5, 90));
                let lift_after = rng
                    .chance(0.5)
                    .then(|| minutes(rng.between(1, length.whole_minutes() as u64)));
                pauses.push(PausePlan {
                    tenant,
                    at: window_start + seconds(rng.below(window.whole_seconds() as u64)),
                    platforms,
                    length,
                    lift_after,
                });
            }
        }
    }
    let mut episodes = Vec::new();
    if config.faults.platform {
        for platform in Platform::ALL {
            for (kind, chance, lo, hi) in [
                (EpisodeKind::Outage, 0.5, 5, 30),
                (EpisodeKind::RateLimitStorm, 0.3, 2, 15),
            ] {
                if rng.chance(chance) {
                    let from = window_start + seconds(rng.below(window.whole_seconds() as u64));
                    episodes.push(Episode {
                        platform,
                        from,
                        until: from + minutes(rng.between(lo, hi)),
                        kind,
                    });
                }
            }
        }
    }
    let mut throttles = Vec::new();
    if config.faults.store {
        for _ in 0..rng.between(0, 2) {
            let from = window_start + seconds(rng.below(window.whole_seconds() as u64));
            throttles.push((from, from + minutes(rng.between(1, 5))));
        }
    }
    Plan {
        tenants,
        api,
        pauses,
        episodes,
        throttles,
        window_end,
        pollers: rng.between(2, 6) as usize,
        reconciler_phase: rng.millis(0, 59_999),
    }
}
