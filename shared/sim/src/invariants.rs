//! The brief's invariants, checked once a seed's run is over, against what really happened:
//! the fake platform's posts, the queue and its DLQ (with each message's lineage), the store's
//! final state and the ledger's commit-ordered claims and pauses.
//!
//! - **duplicates**: a variant on the platform more than once, or at all once cancelled;
//! - **lost**: a variant not `published` (and really on the platform), not `failed` with a
//!   reason, not `cancelled`, and not `dead_lettered` with its message in the DLQ;
//! - **paused_claims**: a claim committed while a committed pause covered its platform;
//! - **dead_lettered_rate_limited**: a DLQ message whose every receive was a deferral.
//!
//! Two further checks fail a seed without a column of their own: `stale_content` (what went
//! out is not the post's final text) and `state_mismatch` (recorded `failed` but on the
//! platform). Findings carry a class so the report can say *which way* something was lost.

use crate::ledger::{
    ClaimEntry, Ledger, PauseChange, PauseEntry, clock_time, follow_up_in_text, post_seq_in_text,
};
use crate::platform::PlatformPost;
use crate::queue::{DlqEntry, DlqVia, MAX_RECEIVE_COUNT};
use crate::world::World;
use herald_domain::ids::TenantId;
use herald_domain::model::{Post, PostStatus, Variant, VariantStatus};
use herald_domain::ports::{PublishMessage, VariantRef};
use herald_domain::publishing::gates::Crisis;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    Duplicate,
    Lost,
    PausedClaim,
    DeadLetteredRateLimited,
    StaleContent,
    StateMismatch,
    /// The run itself did not end cleanly (stuck executor, time cap).
    Run,
    /// Not a failure: worth knowing (e.g. a message dead-lettered after fewer real failures
    /// than the redrive policy allows, because a deferral's delete did not stick).
    Note,
}

impl Invariant {
    pub fn as_str(self) -> &'static str {
        match self {
            Invariant::Duplicate => "duplicate",
            Invariant::Lost => "lost",
            Invariant::PausedClaim => "paused_claim",
            Invariant::DeadLetteredRateLimited => "dead_lettered_rate_limited",
            Invariant::StaleContent => "stale_content",
            Invariant::StateMismatch => "state_mismatch",
            Invariant::Run => "run",
            Invariant::Note => "note",
        }
    }

    pub fn fails(self) -> bool {
        self != Invariant::Note
    }
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub invariant: Invariant,
    /// A short, stable name for the way it failed, for grouping across seeds.
    pub class: String,
    pub variant: Option<VariantRef>,
    /// `p17/t0.x1`
    pub label: String,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] {}: {}",
            self.invariant.as_str(),
            self.class,
            self.label,
            self.detail
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub seed: u64,
    pub publishes: usize,
    /// Follow-ups (thread parts, first comments) found on the platform.
    pub follow_ups: usize,
    pub duplicates: usize,
    pub lost: usize,
    pub paused_claims: usize,
    pub dead_lettered_rate_limited: usize,
    pub findings: Vec<Finding>,
}

impl SeedReport {
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.invariant.fails())
    }

    fn add(&mut self, finding: Finding) {
        match finding.invariant {
            Invariant::Duplicate => self.duplicates += 1,
            Invariant::Lost => self.lost += 1,
            Invariant::PausedClaim => self.paused_claims += 1,
            Invariant::DeadLetteredRateLimited => self.dead_lettered_rate_limited += 1,
            _ => {}
        }
        self.findings.push(finding);
    }
}

/// Everything the checks look at, taken from a finished run.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub posts: Vec<Post>,
    pub platform_posts: Vec<PlatformPost>,
    pub dlq: Vec<DlqEntry>,
    /// Messages still on the queue (only when the run was cut off).
    pub queued: Vec<PublishMessage>,
    pub claims: Vec<ClaimEntry>,
    pub pauses: Vec<PauseEntry>,
    /// The run hit its time cap before going quiet.
    pub capped: bool,
    /// The executor found every process waiting and no timer set.
    pub stuck: bool,
}

impl Observed {
    pub fn of(world: &World, capped: bool, stuck: bool) -> Self {
        Self {
            posts: world.memory.all_posts(),
            platform_posts: world.platform.posts(),
            dlq: world.queue.dlq(),
            queued: world.queue.remaining(),
            claims: world.ledger.claims(),
            pauses: world.ledger.pauses(),
            capped,
            stuck,
        }
    }
}

/// `ledger` names posts and accounts (posts it cannot name are not the simulation's).
pub fn check(seed: u64, observed: &Observed, ledger: &Ledger) -> SeedReport {
    let mut report = SeedReport {
        seed,
        ..SeedReport::default()
    };
    if observed.stuck {
        report.add(run_finding(
            "stuck",
            "every process waits and no timer is set",
        ));
    }
    if observed.capped {
        report.add(run_finding(
            "capped",
            "the run hit its simulated-time cap before the queue went quiet",
        ));
    }
    check_variants(observed, ledger, &mut report);
    check_pauses(observed, ledger, &mut report);
    check_dead_letters(observed, ledger, &mut report);
    report
}

fn run_finding(class: &str, detail: &str) -> Finding {
    Finding {
        invariant: Invariant::Run,
        class: class.into(),
        variant: None,
        label: "-".into(),
        detail: detail.into(),
    }
}

fn check_variants(observed: &Observed, ledger: &Ledger, report: &mut SeedReport) {
    // What the platform holds, by (post number, account label = external id, step).
    let mut on_platform: BTreeMap<(usize, String, usize), Vec<PlatformPost>> = BTreeMap::new();
    for post in observed.platform_posts.iter().cloned() {
        match post_seq_in_text(&post.text) {
            Some(seq) => on_platform
                .entry((seq, post.external_id.clone(), follow_up_in_text(&post.text)))
                .or_default()
                .push(post),
            None => report.add(Finding {
                invariant: Invariant::Duplicate,
                class: "stray_post".into(),
                variant: None,
                label: post.external_id.clone(),
                detail: format!("{:?} matches no post", post.text),
            }),
        }
    }
    let dlq: Vec<VariantRef> = observed.dlq.iter().map(|e| e.message.variant()).collect();
    let queued: Vec<VariantRef> = observed.queued.iter().map(|m| m.variant()).collect();
    for post in &observed.posts {
        let Some(seq) = ledger.post_seq(&post.id) else {
            continue;
        };
        for v in post.variants.values() {
            report.publishes += 1;
            let vref = VariantRef {
                tenant_id: post.tenant_id.clone(),
                post_id: post.id.clone(),
                account_id: v.account_id.clone(),
            };
            let account = ledger.account_label(&v.account_id);
            let label = format!("p{seq}/{account}");
            // Step 0 is the post; then each follow-up, which must answer the step before it.
            let steps: Vec<Vec<PlatformPost>> = (0..=post.follow_ups().len())
                .map(|k| {
                    on_platform
                        .remove(&(seq, account.clone(), k))
                        .unwrap_or_default()
                })
                .collect();
            let found = steps[0].clone();
            report.follow_ups += steps.iter().skip(1).map(Vec::len).sum::<usize>();
            let finding = |invariant, class: &str, detail: String| Finding {
                invariant,
                class: class.to_owned(),
                variant: Some(vref.clone()),
                label: label.clone(),
                detail,
            };
            let ids = || {
                found
                    .iter()
                    .map(|p| format!("{} at {}", p.id, clock_time(p.created_at)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            // At most once.
            let allowed = if v.status == VariantStatus::Cancelled {
                0
            } else {
                1
            };
            if found.len() > allowed {
                let class = if allowed == 0 {
                    "published_after_cancel"
                } else {
                    "published_twice"
                };
                for _ in allowed..found.len() {
                    report.add(finding(
                        Invariant::Duplicate,
                        class,
                        format!("{} posts: {}", found.len(), ids()),
                    ));
                }
            }
            let text = post.text_for(&v.account_id);
            if let Some(p) = found.iter().find(|p| p.text != text) {
                report.add(finding(
                    Invariant::StaleContent,
                    "stale_content",
                    format!("{:?} went out; the post's text is {text:?}", p.text),
                ));
            }
            check_follow_ups(post, v, &steps, allowed, &mut |invariant, class, detail| {
                report.add(finding(invariant, class, detail))
            });
            // At least once, or an end a person can act on.
            let in_dlq = dlq.contains(&vref);
            let on_queue = queued.contains(&vref);
            let reason = v.last_error.as_ref().map(|e| e.message.clone());
            match v.status {
                VariantStatus::Published if steps.iter().any(Vec::is_empty) => report.add(finding(
                    Invariant::Lost,
                    "published_but_absent",
                    format!(
                        "recorded published; the platform lacks step {}",
                        steps.iter().position(Vec::is_empty).unwrap_or_default()
                    ),
                )),
                VariantStatus::Published | VariantStatus::Cancelled => {}
                VariantStatus::Failed => {
                    if reason.is_none() {
                        report.add(finding(
                            Invariant::Lost,
                            "failed_without_reason",
                            "failed, and nothing says why".into(),
                        ));
                    }
                    // A follow-up that failed leaves the steps before it live.
                    if steps.iter().skip(v.step as usize).any(|s| !s.is_empty()) {
                        report.add(finding(
                            Invariant::StateMismatch,
                            "failed_but_published",
                            format!(
                                "recorded failed ({}) but on the platform: {}",
                                reason.unwrap_or_default(),
                                ids()
                            ),
                        ));
                    }
                }
                VariantStatus::DeadLettered if in_dlq => {}
                status => {
                    let whereabouts = if in_dlq {
                        "its message is in the DLQ"
                    } else if on_queue {
                        "its message is still on the queue"
                    } else {
                        "no message for it anywhere"
                    };
                    let class = format!(
                        "{}{}",
                        status.as_str(),
                        if in_dlq {
                            "_in_dlq"
                        } else if on_queue {
                            "_queued"
                        } else {
                            "_no_message"
                        }
                    );
                    report.add(finding(
                        Invariant::Lost,
                        &class,
                        format!(
                            "ends {} (post {}, attempts {}, last error: {}); {whereabouts}{}",
                            status.as_str(),
                            post.status.as_str(),
                            v.attempts,
                            reason.as_deref().unwrap_or("none"),
                            if found.is_empty() {
                                String::new()
                            } else {
                                format!("; on the platform: {}", ids())
                            }
                        ),
                    ));
                }
            }
            if post.status == PostStatus::PendingApproval {
                report.add(finding(
                    Invariant::Note,
                    "pending_approval",
                    "never approved".into(),
                ));
            }
        }
    }
    for ((seq, account, _), posts) in on_platform {
        for p in posts {
            report.add(Finding {
                invariant: Invariant::Duplicate,
                class: "no_such_variant".into(),
                variant: None,
                label: format!("p{seq}/{account}"),
                detail: format!("{:?} ({}) is not a variant of any post", p.text, p.id),
            });
        }
    }
}

/// A variant's follow-ups on the platform: each step at most once (none once cancelled), with
/// the post's text for it, answering the step before it (so none went out of order).
fn check_follow_ups(
    post: &Post,
    v: &Variant,
    steps: &[Vec<PlatformPost>],
    allowed: usize,
    add: &mut dyn FnMut(Invariant, &str, String),
) {
    for (k, found) in steps.iter().enumerate().skip(1) {
        if found.len() > allowed {
            add(
                Invariant::Duplicate,
                "follow_up_twice",
                format!("follow-up {k} is on the platform {} times", found.len()),
            );
        }
        let text = post.step_text(&v.account_id, k as u32).unwrap_or_default();
        if let Some(p) = found.iter().find(|p| p.text != text) {
            add(
                Invariant::StaleContent,
                "stale_content",
                format!("{:?} went out as follow-up {k}; it is {text:?}", p.text),
            );
        }
        let parent = steps[k - 1].first().map(|p| p.id.as_str());
        if let Some(p) = found
            .iter()
            .find(|p| parent.is_none() || p.reply_to.as_deref() != parent)
        {
            add(
                Invariant::StateMismatch,
                "follow_up_out_of_order",
                format!(
                    "follow-up {k} ({}) answers {:?}; step {} is {parent:?}",
                    p.id,
                    p.reply_to,
                    k - 1
                ),
            );
        }
    }
}

/// Replays claims and pause changes in commit order.
fn check_pauses(observed: &Observed, ledger: &Ledger, report: &mut SeedReport) {
    let mut active: BTreeMap<TenantId, Crisis> = BTreeMap::new();
    let mut p = observed.pauses.iter().peekable();
    for claim in &observed.claims {
        while let Some(change) = p.next_if(|e| e.seq < claim.seq) {
            match &change.change {
                PauseChange::Put(c) => {
                    active.insert(c.tenant_id.clone(), c.clone());
                }
                PauseChange::Delete(t) => {
                    active.remove(t);
                }
            }
        }
        if let Some(c) = active
            .get(&claim.variant.tenant_id)
            .filter(|c| c.pauses(claim.platform, claim.at))
        {
            report.add(Finding {
                invariant: Invariant::PausedClaim,
                class: "claimed_while_paused".into(),
                variant: Some(claim.variant.clone()),
                label: ledger.variant_label(&claim.variant),
                detail: format!(
                    "claimed at {} under a pause of {:?} started {} until {}",
                    clock_time(claim.at),
                    c.platforms,
                    clock_time(c.started_at),
                    clock_time(c.expires_at)
                ),
            });
        }
    }
}

fn check_dead_letters(observed: &Observed, ledger: &Ledger, report: &mut SeedReport) {
    for entry in &observed.dlq {
        let vref = entry.message.variant();
        let label = ledger.variant_label(&vref);
        let real = entry.lineage.iter().filter(|h| !h.is_deferral()).count();
        let via = match &entry.via {
            DlqVia::Redrive => "redrive".to_owned(),
            DlqVia::Herald(reason) => format!("Herald: {reason}"),
        };
        if !entry.lineage.is_empty() && real == 0 {
            report.add(Finding {
                invariant: Invariant::DeadLetteredRateLimited,
                class: "only_deferrals".into(),
                variant: Some(vref),
                label,
                detail: format!("dead-lettered ({via}) after {:?}", entry.lineage),
            });
        } else if real < MAX_RECEIVE_COUNT as usize {
            report.add(Finding {
                invariant: Invariant::Note,
                class: "dead_lettered_early".into(),
                variant: Some(vref),
                label,
                detail: format!(
                    "dead-lettered ({via}) after {real} real failures: {:?}",
                    entry.lineage
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Handling;
    use herald_domain::ids::{AccountId, ApiKeyId, PostId};
    use herald_domain::model::{Platform, Variant, VariantError};
    use herald_domain::publishing::gates::Crisis;
    use std::collections::BTreeMap;
    use time::OffsetDateTime;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);

    fn ledger() -> Ledger {
        let l = Ledger::new(false);
        l.name_post(&PostId("post_a".into()), 1);
        l.name_account(&AccountId("acc_x".into()), "t0.x0".into());
        l
    }

    fn post(status: VariantStatus) -> Post {
        let mut v = Variant::new(AccountId("acc_x".into()), Platform::X, None);
        v.status = status;
        Post {
            thread: vec![],
            first_comment: None,
            time_zone: None,
            tenant_id: TenantId("ten_a".into()),
            id: PostId("post_a".into()),
            text: "p1.r1 hello".into(),
            scheduled_at: T0,
            status: PostStatus::Dispatched,
            variants: BTreeMap::from([(v.account_id.clone(), v)]),
            version: 3,
            correlation_id: "c".into(),
            created_by: ApiKeyId("k".into()),
            created_at: T0,
            updated_at: T0,
            dispatch: None,
            review: None,
            media: vec![],
        }
    }

    fn on_platform(n: usize) -> PlatformPost {
        PlatformPost {
            reply_to: None,
            idempotency_key: None,
            platform: Platform::X,
            external_id: "t0.x0".into(),
            text: "p1.r1 hello".into(),
            id: format!("x-{n}"),
            created_at: T0,
            indexed_at: T0,
        }
    }

    fn message() -> PublishMessage {
        PublishMessage {
            tenant_id: TenantId("ten_a".into()),
            post_id: PostId("post_a".into()),
            account_id: AccountId("acc_x".into()),
            platform: Platform::X,
            correlation_id: "c".into(),
            failures: 0,
            continues_upload: false,
        }
    }

    fn dlq(lineage: Vec<Handling>) -> DlqEntry {
        DlqEntry {
            message: message(),
            via: DlqVia::Redrive,
            lineage,
            at: T0,
        }
    }

    /// A published two-part thread and the platform posts: the head, then `parts` as
    /// (id, text suffix, the id it answers).
    fn thread(parts: &[(&str, &str, &str)]) -> (Post, Vec<PlatformPost>) {
        let mut p = post(VariantStatus::Published);
        p.thread = vec!["p1.r1 hello ~fu1".into(), "p1.r1 hello ~fu2".into()];
        let mut on = vec![on_platform(1)];
        for (id, suffix, parent) in parts {
            let mut part = on_platform(0);
            part.id = (*id).into();
            part.text = format!("p1.r1 hello {suffix}");
            part.reply_to = Some((*parent).into());
            on.push(part);
        }
        (p, on)
    }

    fn classes(r: &SeedReport) -> Vec<&str> {
        r.findings.iter().map(|f| f.class.as_str()).collect()
    }

    #[test]
    fn a_thread_in_order_passes_and_each_part_is_counted() {
        let (p, on) = thread(&[("x-2", "~fu1", "x-1"), ("x-3", "~fu2", "x-2")]);
        let observed = Observed {
            posts: vec![p],
            platform_posts: on,
            ..Observed::default()
        };
        let r = check(1, &observed, &ledger());
        assert!(!r.failed(), "{:?}", r.findings);
        assert_eq!(r.follow_ups, 2);
    }

    #[test]
    fn a_thread_part_out_of_order_twice_or_missing_is_found() {
        // Part 2 answers the post instead of part 1.
        let (p, on) = thread(&[("x-2", "~fu1", "x-1"), ("x-3", "~fu2", "x-1")]);
        let observed = Observed {
            posts: vec![p],
            platform_posts: on,
            ..Observed::default()
        };
        let r = check(1, &observed, &ledger());
        assert_eq!(classes(&r), ["follow_up_out_of_order"]);
        // Part 1 twice.
        let (p, on) = thread(&[
            ("x-2", "~fu1", "x-1"),
            ("x-4", "~fu1", "x-1"),
            ("x-3", "~fu2", "x-2"),
        ]);
        let observed = Observed {
            posts: vec![p],
            platform_posts: on,
            ..Observed::default()
        };
        let r = check(1, &observed, &ledger());
        assert_eq!(classes(&r), ["follow_up_twice"]);
        assert_eq!(r.duplicates, 1);
        // Recorded published, part 2 never went out.
        let (p, on) = thread(&[("x-2", "~fu1", "x-1")]);
        let observed = Observed {
            posts: vec![p],
            platform_posts: on,
            ..Observed::default()
        };
        let r = check(1, &observed, &ledger());
        assert_eq!(classes(&r), ["published_but_absent"]);
    }

    #[test]
    fn a_variant_on_the_platform_twice_is_one_duplicate() {
        let observed = Observed {
            posts: vec![post(VariantStatus::Published)],
            platform_posts: vec![on_platform(1), on_platform(2)],
            ..Observed::default()
        };
        let r = check(1, &observed, &ledger());
        assert_eq!((r.publishes, r.duplicates, r.lost), (1, 1, 0));
    }

    #[test]
    fn a_cancelled_variant_on_the_platform_is_a_duplicate() {
        let observed = Observed {
            posts: vec![post(VariantStatus::Cancelled)],
            platform_posts: vec![on_platform(1)],
            ..Observed::default()
        };
        assert_eq!(check(1, &observed, &ledger()).duplicates, 1);
    }

    #[test]
    fn what_counts_as_lost() {
        let lost = |status, platform: Vec<PlatformPost>, dlq_entries: Vec<DlqEntry>| {
            let observed = Observed {
                posts: vec![post(status)],
                platform_posts: platform,
                dlq: dlq_entries,
                ..Observed::default()
            };
            check(1, &observed, &ledger()).lost
        };
        assert_eq!(
            lost(VariantStatus::Published, vec![on_platform(1)], vec![]),
            0
        );
        assert_eq!(lost(VariantStatus::Published, vec![], vec![]), 1, "phantom");
        assert_eq!(
            lost(VariantStatus::Publishing, vec![], vec![]),
            1,
            "stuck claim"
        );
        assert_eq!(
            lost(VariantStatus::Retrying, vec![], vec![]),
            1,
            "no message"
        );
        assert_eq!(lost(VariantStatus::Pending, vec![], vec![]), 1);
        assert_eq!(
            lost(VariantStatus::DeadLettered, vec![], vec![]),
            1,
            "not in the DLQ"
        );
        let real = vec![Handling::Failed; 5];
        assert_eq!(
            lost(VariantStatus::DeadLettered, vec![], vec![dlq(real)]),
            0
        );
        assert_eq!(lost(VariantStatus::Cancelled, vec![], vec![]), 0);
        let mut failed = post(VariantStatus::Failed);
        let observed = Observed {
            posts: vec![failed.clone()],
            ..Observed::default()
        };
        assert_eq!(
            check(1, &observed, &ledger()).lost,
            1,
            "failed without a reason"
        );
        if let Some(v) = failed.variants.values_mut().next() {
            v.last_error = Some(VariantError {
                kind: herald_domain::model::FailureKind::Permanent,
                message: "refused".into(),
                platform_code: None,
                at: T0,
            });
        }
        let observed = Observed {
            posts: vec![failed],
            ..Observed::default()
        };
        assert_eq!(check(1, &observed, &ledger()).lost, 0);
    }

    #[test]
    fn claims_count_only_while_a_committed_pause_covers_their_platform() {
        let crisis = |platforms: Vec<Platform>, minutes: i64| Crisis {
            tenant_id: TenantId("ten_a".into()),
            platforms,
            reason: "r".into(),
            started_by: ApiKeyId("k".into()),
            started_at: T0,
            expires_at: T0 + time::Duration::minutes(minutes),
        };
        let claim = |seq, minute: i64, platform| ClaimEntry {
            seq,
            at: T0 + time::Duration::minutes(minute),
            variant: message().variant(),
            platform,
        };
        let pause = |seq, change| PauseEntry {
            seq,
            at: T0,
            change,
        };
        let observed = Observed {
            claims: vec![
                claim(0, 0, Platform::X),        // before the pause
                claim(2, 1, Platform::X),        // paused: counted
                claim(3, 1, Platform::Facebook), // not covered
                claim(5, 3, Platform::X),        // after the lift
                claim(7, 20, Platform::X),       // the second pause has expired
            ],
            pauses: vec![
                pause(1, PauseChange::Put(crisis(vec![Platform::X], 60))),
                pause(4, PauseChange::Delete(TenantId("ten_a".into()))),
                pause(6, PauseChange::Put(crisis(vec![], 10))),
            ],
            ..Observed::default()
        };
        assert_eq!(check(1, &observed, &ledger()).paused_claims, 1);
    }

    #[test]
    fn a_dlq_message_that_was_only_ever_deferred_is_counted() {
        let observed = Observed {
            dlq: vec![
                dlq(vec![Handling::Deferred, Handling::Deferred]),
                dlq(vec![Handling::Deferred, Handling::Failed]),
            ],
            ..Observed::default()
        };
        let r = check(1, &observed, &ledger());
        assert_eq!(r.dead_lettered_rate_limited, 1);
        assert!(r.findings.iter().any(|f| f.class == "dead_lettered_early"));
    }
}
