//! One seed's world and its run: tenants and accounts on the three platforms, a plan of posts
//! (created, edited, cancelled, approved through the real `PostService`), pauses, the
//! dispatcher and the reconciler on their one-minute schedules, the publisher's SQS pollers,
//! an operator who reconnects refused accounts, and the faults; then the run until everything
//! is quiet, and the invariants.
//!
//! Everything random is drawn from the seed: the plan up front, the rest (invocation fates,
//! platform answers, queue duplicates, store faults) from per-concern streams as the run goes.

pub use crate::config::{START, SimConfig};
use crate::invariants::{self, Observed, SeedReport};
use crate::lambda;
use crate::ledger::{Stats, TraceLine};
use crate::plan::*;
use crate::vclock::{self, RunEnd};
use crate::world::{World, build};
use herald_domain::ids::ApiKeyId;
use herald_domain::model::{AccountStatus, Platform, VariantStatus};
use herald_domain::ports::{AccountStore, CrisisStore};
use herald_domain::publishing::gates::Crisis;
use herald_domain::publishing::posts::{FollowUps, NewPost, PostEdit, PostError, Target};
use herald_domain::publishing::reconcile::ReconcileConfig;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

/// The outcome of one seed.
#[derive(Debug)]
pub struct SeedRun {
    pub report: SeedReport,
    pub stats: Vec<(&'static str, u64)>,
    pub simulated: time::Duration,
    pub trace: Vec<TraceLine>,
}

/// Builds the seed's world, runs it until it is quiet (or capped), and checks it.
pub fn run_seed(config: SimConfig) -> SeedRun {
    // One thread per seed: the world and its processes are shared with `Rc`.
    let world = Rc::new(build(config));
    spawn_processes(&world);
    let end = vclock::run(&world.clock, &world.spawner, &world.stop);
    let observed = Observed::of(
        &world,
        world.capped.load(Ordering::Relaxed),
        end == RunEnd::Stuck,
    );
    let report = invariants::check(world.config.seed, &observed, &world.ledger);
    SeedRun {
        report,
        stats: world.stats.snapshot(),
        simulated: world.now() - START,
        trace: world.ledger.trace_lines(),
    }
}

fn spawn_processes(world: &Rc<World>) {
    let w = world.clone();
    world.spawner.spawn(async move { api_script(&w).await });
    let w = world.clone();
    world
        .spawner
        .spawn(async move { dispatcher_schedule(&w).await });
    for _ in 0..world.plan.pollers {
        let w = world.clone();
        world.spawner.spawn(async move { poller(&w).await });
    }
    for pause in world.plan.pauses.clone() {
        let w = world.clone();
        world
            .spawner
            .spawn(async move { pause_script(&w, pause).await });
    }
    let w = world.clone();
    world.spawner.spawn(async move { operator(&w).await });
    if let Some(every) = world.config.reconcile_every {
        let w = world.clone();
        world
            .spawner
            .spawn(async move { reconciler_schedule(&w, every).await });
    }
    let w = world.clone();
    world.spawner.spawn(async move { watcher(&w).await });
}

/// The API's callers, each call at its planned time (concurrent with everything else).
async fn api_script(world: &Rc<World>) {
    for call in world.plan.api.clone() {
        world.clock.sleep_until(call.at).await;
        let w = world.clone();
        world.spawner.spawn(async move {
            api_call(&w, call).await;
            w.api_outstanding.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

fn post_text(seq: usize, rev: u32, tenant: usize) -> String {
    format!("p{seq}.r{rev} news from tenant {tenant}, item {seq}")
}

/// Every even-numbered post to thread platforms only (X, Mastodon, Bluesky) is a thread, and
/// every one to Facebook and LinkedIn only a post with a first comment; each follow-up's text ends `~fu<n>`
/// (`crate::ledger::follow_up_in_text`).
fn follow_ups_for(seq: usize, tenant: usize, platforms: &[Platform]) -> FollowUps {
    let text = |n: usize| format!("{} ~fu{n}", post_text(seq, 1, tenant));
    use herald_domain::publishing::posts::threads_on;
    let only_threads = platforms.iter().all(|p| threads_on(*p));
    let no_threads = !platforms.iter().any(|p| threads_on(*p));
    match seq % 2 {
        0 if only_threads => FollowUps {
            thread: (1..=1 + seq % 3).map(text).collect(),
            first_comment: None,
        },
        0 if no_threads => FollowUps {
            thread: vec![],
            first_comment: Some(text(1)),
        },
        _ => FollowUps::default(),
    }
}

async fn api_call(world: &World, call: ApiCall) {
    let actor = world.actor(call.tenant);
    let seq = call.seq;
    let created = world
        .created
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&seq)
        .cloned();
    let now = world.now();
    let ledger = &world.ledger;
    match (call.action, created) {
        (
            ApiAction::Create {
                targets,
                scheduled_at,
            },
            _,
        ) => {
            let accounts = &world.plan.tenants[call.tenant].accounts;
            let targets: Vec<(Target, Platform)> = targets
                .iter()
                .map(|(a, own_text)| {
                    let target = Target {
                        options: Default::default(),
                        account_id: accounts[*a].id.clone(),
                        text: own_text.then(|| {
                            format!(
                                "p{seq}.r1.{} for {}",
                                accounts[*a].label, accounts[*a].platform
                            )
                        }),
                        // Instagram posts nothing without media: the tenant's JPEG. One X post
                        // in four carries the tenant's video, uploaded in chunks.
                        media: match accounts[*a].platform {
                            Platform::Instagram => {
                                Some(vec![world.tenant_media[call.tenant].clone()])
                            }
                            Platform::X if seq.is_multiple_of(4) => {
                                Some(vec![world.tenant_video[call.tenant].clone()])
                            }
                            _ => None,
                        },
                    };
                    (target, accounts[*a].platform)
                })
                .collect();
            let platforms: Vec<Platform> = targets.iter().map(|(_, p)| *p).collect();
            let follow_ups = follow_ups_for(seq, call.tenant, &platforms);
            let mut targets: Vec<Target> = targets.into_iter().map(|(t, _)| t).collect();
            let new = |targets: Vec<Target>| NewPost {
                alt_text: Default::default(),
                text: post_text(seq, 1, call.tenant),
                scheduled_at,
                targets,
                media: vec![],
                follow_ups: follow_ups.clone(),
                draft: false,
                local: None,
                next_slot: false,
            };
            let mut result = world
                .posts
                .create(&actor, new(targets.clone()), format!("corr-p{seq}"))
                .await;
            if let Err(PostError::Invalid(_)) = &result {
                // A target needs reconnecting: the caller drops it and tries again.
                let active = world
                    .memory
                    .list_accounts(&actor.tenant_id)
                    .await
                    .unwrap_or_default();
                targets.retain(|t| {
                    active
                        .iter()
                        .any(|a| a.id == t.account_id && a.status == AccountStatus::Active)
                });
                if !targets.is_empty() {
                    result = world
                        .posts
                        .create(&actor, new(targets), format!("corr-p{seq}"))
                        .await;
                }
            }
            match result {
                Ok(post) => {
                    ledger.name_post(&post.id, seq);
                    world
                        .created
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(seq, post.id.clone());
                    ledger.post_event(now, seq, || {
                        format!(
                            "created ({}, due {}, {} variants)",
                            post.status.as_str(),
                            post.scheduled_at,
                            post.variants.len()
                        )
                    });
                }
                Err(e) => ledger.post_event(now, seq, || format!("create refused: {e}")),
            }
        }
        (_, None) => {}
        (
            ApiAction::Edit {
                rev,
                text,
                scheduled_at,
            },
            Some(id),
        ) => {
            let edit = PostEdit {
                alt_text: None,
                text: text.then(|| post_text(seq, rev, call.tenant)),
                scheduled_at,
                targets: None,
                media: None,
                follow_ups: None,
            };
            let result = world.posts.edit(&actor, &id, edit).await;
            count(&result, &world.stats.edits, &world.stats.edits_refused);
            ledger.post_event(world.now(), seq, || match &result {
                Ok(p) => format!("edited to r{rev} (due {})", p.scheduled_at),
                Err(e) => format!("edit r{rev} refused: {e}"),
            });
        }
        (ApiAction::Cancel, Some(id)) => {
            let result = world.posts.cancel(&actor, &id).await;
            count(&result, &world.stats.cancels, &world.stats.cancels_refused);
            ledger.post_event(world.now(), seq, || match &result {
                Ok(_) => "cancelled".into(),
                Err(e) => format!("cancel refused: {e}"),
            });
        }
        (ApiAction::Review { approve }, Some(id)) => {
            let result = world.posts.review(&actor, &id, approve, None).await;
            if result.is_ok() {
                Stats::bump(&world.stats.reviews);
            }
            ledger.post_event(world.now(), seq, || match &result {
                Ok(p) => format!("reviewed: {}", p.status.as_str()),
                Err(e) => format!("review refused: {e}"),
            });
        }
    }
}

fn count<T>(result: &Result<T, PostError>, ok: &AtomicU64, refused: &AtomicU64) {
    Stats::bump(if result.is_ok() { ok } else { refused });
}

/// EventBridge `rate(1 minute)`: a dispatcher invocation every minute, overlapping if slow.
async fn dispatcher_schedule(world: &Rc<World>) {
    let mut next = START + time::Duration::minutes(1);
    loop {
        world.clock.sleep_until(next).await;
        let w = world.clone();
        world
            .spawner
            .spawn(async move { lambda::dispatcher(&w).await });
        next += time::Duration::minutes(1);
    }
}

/// One of the event source mapping's pollers: receive a batch, invoke, repeat.
async fn poller(world: &World) {
    loop {
        let batch = world.queue.receive(lambda::BATCH_SIZE);
        if batch.is_empty() {
            world.queue.wait_for_messages().await;
            continue;
        }
        // Getting the batch to a warm instance; now and then a cold start.
        let start = world.jitter.with(|r| {
            if r.chance(0.02) {
                r.millis(200, 900)
            } else {
                r.millis(5, 40)
            }
        });
        world.clock.sleep_for(start).await;
        world.running.fetch_add(1, Ordering::Relaxed);
        lambda::publisher(world, batch).await;
        world.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A tenant's admin pauses publishing (crisis mode), and maybe lifts the pause early.
async fn pause_script(world: &World, pause: PausePlan) {
    world.clock.sleep_until(pause.at).await;
    let now = world.now();
    let tenant_id = world.plan.tenants[pause.tenant].id.clone();
    let crisis = Crisis {
        tenant_id: tenant_id.clone(),
        platforms: pause.platforms.clone(),
        reason: "simulated crisis".into(),
        started_by: ApiKeyId(format!("key_sim_t{}", pause.tenant)),
        started_at: now,
        expires_at: now + pause.length,
    };
    if world.store.put_crisis(&crisis).await.is_ok() {
        Stats::bump(&world.stats.pauses);
        world.ledger.world_event(world.now(), || {
            format!(
                "t{} paused {:?} until {}",
                pause.tenant, pause.platforms, crisis.expires_at
            )
        });
    }
    if let Some(after) = pause.lift_after {
        world.clock.sleep_until(now + after).await;
        let _ = world.store.delete_crisis(&tenant_id).await;
        world
            .ledger
            .world_event(world.now(), || format!("t{} pause lifted", pause.tenant));
    }
}

/// An operator who reconnects accounts whose token was refused, every ten minutes.
async fn operator(world: &World) {
    loop {
        world.clock.sleep_for(Duration::from_secs(600)).await;
        for t in &world.plan.tenants {
            let accounts = world.store.list_accounts(&t.id).await.unwrap_or_default();
            for mut a in accounts {
                if a.status == AccountStatus::NeedsReauth {
                    // Read-modify-write, so the breaker the account carries is kept.
                    a.status = AccountStatus::Active;
                    a.updated_at = world.now();
                    if world.store.upsert_account(&a).await.is_ok() {
                        Stats::bump(&world.stats.reconnects);
                        world.ledger.world_event(world.now(), || {
                            format!("{} reconnected", world.ledger.account_label(&a.id))
                        });
                    }
                }
            }
        }
    }
}

/// EventBridge `rate(1 minute)` for the reconciler (`SimConfig::reconcile_every`).
async fn reconciler_schedule(world: &Rc<World>, every: Duration) {
    // Its own phase against the dispatcher's, drawn from the seed.
    world.clock.sleep_for(world.plan.reconciler_phase).await;
    loop {
        world.clock.sleep_for(every).await;
        let w = world.clone();
        world
            .spawner
            .spawn(async move { lambda::reconciler(&w).await });
    }
}

/// Ends the run once nothing is left to happen, or at the cap.
async fn watcher(world: &World) {
    let cap = world.plan.window_end + world.config.cap;
    loop {
        world.clock.sleep_for(Duration::from_secs(60)).await;
        let now = world.now();
        if now >= cap {
            world.capped.store(true, Ordering::Relaxed);
            world.stop.store(true, Ordering::Relaxed);
            return;
        }
        // With a reconciler, a claim left `publishing` is work to come, until the reconciler
        // has clearly missed it (its lease plus ten runs): then it is lost, and waiting for
        // the cap would only burn time.
        let give_up = ReconcileConfig::default().lease + time::Duration::minutes(10);
        let reconciling = world.config.reconcile_every.is_some();
        let pending_claim = |claimed_at: Option<OffsetDateTime>| {
            reconciling && claimed_at.is_none_or(|at| at + give_up > now)
        };
        let quiet = world.api_outstanding.load(Ordering::Relaxed) == 0
            && now >= world.plan.window_end
            && world.running.load(Ordering::Relaxed) == 0
            && world.queue.is_empty()
            && !world.memory.all_posts().iter().any(|p| {
                p.due_at().is_some()
                    || p.variants.values().any(|v| {
                        v.status == VariantStatus::Publishing && pending_claim(v.claimed_at)
                    })
            });
        if quiet {
            world.stop.store(true, Ordering::Relaxed);
            return;
        }
    }
}
