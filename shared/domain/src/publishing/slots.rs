//! Posting slots: a tenant's weekly times to publish at (per account where an account has its
//! own), and `"schedule": "next_slot"`, which puts a post at the earliest slot every target
//! has free.
//!
//! A slot is taken for an account by any live post scheduled exactly then that targets it
//! (seen through the calendar), and held by a slot item while a `next_slot` post takes it, so
//! two concurrent requests never land in one slot. A hold whose post was cancelled, moved or
//! never written is taken over.

use super::posts::{Actor, PostError, PostService};
use crate::error::StoreError;
use crate::ids::{AccountId, PostId, TenantId};
use crate::model::{Post, PostStatus};
pub use crate::model::{PostingSlots, SlotRule};
use crate::publishing::fields::FieldError;
use crate::zone::{Dst, TimeZoneName};
use std::collections::BTreeSet;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, Time, Weekday};

/// Rules per list, times per rule and accounts with their own slots, at most.
pub const MAX_RULES: usize = 20;
pub const MAX_TIMES_PER_RULE: usize = 24;
pub const MAX_ACCOUNTS_WITH_SLOTS: usize = 100;
/// How far ahead a free slot is looked for (the schedule's own limit).
const HORIZON: Duration = super::posts::MAX_SCHEDULE_AHEAD;
/// The calendar is read a week at a time.
const WINDOW: Duration = Duration::days(7);

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn weekday(name: &str) -> Option<Weekday> {
    DAYS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}

fn local_time(raw: &str) -> Option<Time> {
    let (h, m) = raw.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
}

impl PostingSlots {
    /// Every problem, each naming its field (`slots[0].times[1]`,
    /// `accounts.acc_1[0].days`); `known` says which account ids the tenant has.
    pub fn problems(&self, known: impl Fn(&AccountId) -> bool) -> Vec<FieldError> {
        let mut problems = rules_problems("slots", &self.slots);
        if self.accounts.len() > MAX_ACCOUNTS_WITH_SLOTS {
            problems.push(FieldError::new(
                "accounts",
                format!("at most {MAX_ACCOUNTS_WITH_SLOTS} accounts may have their own slots"),
            ));
        }
        for (account, rules) in &self.accounts {
            let field = format!("accounts.{account}");
            if !known(account) {
                problems.push(FieldError::new(&field, "is not an account of this tenant"));
            }
            if rules.is_empty() {
                problems.push(FieldError::new(
                    &field,
                    "has no rule; leave the account out to give it the tenant's slots",
                ));
            }
            problems.extend(rules_problems(&field, rules));
        }
        problems
    }

    /// The rules an account's posts follow: its own, else the tenant's.
    fn rules_for(&self, account: &AccountId) -> &[SlotRule] {
        self.accounts
            .get(account)
            .map_or(self.slots.as_slice(), Vec::as_slice)
    }

    fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.accounts.is_empty()
    }
}

fn rules_problems(field: &str, rules: &[SlotRule]) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if rules.len() > MAX_RULES {
        problems.push(FieldError::new(
            field,
            format!("has {} rules; at most {MAX_RULES}", rules.len()),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        let days = format!("{field}[{i}].days");
        let times = format!("{field}[{i}].times");
        if rule.days.is_empty() {
            problems.push(FieldError::new(&days, "names no day"));
        }
        if rule.times.is_empty() || rule.times.len() > MAX_TIMES_PER_RULE {
            problems.push(FieldError::new(
                &times,
                format!("needs 1 to {MAX_TIMES_PER_RULE} times"),
            ));
        }
        for day in rule.days.iter().filter(|d| weekday(d).is_none()) {
            problems.push(FieldError::new(
                &days,
                format!("{day:?} is not one of mon, tue, wed, thu, fri, sat, sun"),
            ));
        }
        for time in rule.times.iter().filter(|t| local_time(t).is_none()) {
            problems.push(FieldError::new(
                &times,
                format!("{time:?} is not a time of day as HH:MM (00:00 to 23:59)"),
            ));
        }
        if BTreeSet::from_iter(&rule.days).len() < rule.days.len()
            || BTreeSet::from_iter(&rule.times).len() < rule.times.len()
        {
            problems.push(FieldError::new(
                format!("{field}[{i}]"),
                "names a day or a time twice",
            ));
        }
    }
    problems
}

/// The instants `rules` name in `[from, to)`, read in `zone`. A local time the clocks skip is
/// taken at the same distance after the change (02:30 on a spring-forward night is 03:30); a
/// repeated one at its second pass.
pub fn slot_instants(
    rules: &[SlotRule],
    zone: &TimeZoneName,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> BTreeSet<OffsetDateTime> {
    let mut found = BTreeSet::new();
    // A day before and after, so that zone offsets cannot drop a slot at the edges.
    let mut date = zone
        .local(from)
        .date()
        .previous_day()
        .unwrap_or(from.date());
    let last = zone.local(to).date().next_day().unwrap_or(to.date());
    while date <= last {
        for rule in rules {
            if !rule.days.iter().any(|d| weekday(d) == Some(date.weekday())) {
                continue;
            }
            for time in rule.times.iter().filter_map(|t| local_time(t)) {
                let local = PrimitiveDateTime::new(date, time);
                if let Ok(at) = crate::zone::resolve(local, zone, Some(Dst::Later))
                    && at >= from
                    && at < to
                {
                    found.insert(at);
                }
            }
        }
        let Some(next) = date.next_day() else { break };
        date = next;
    }
    found
}

/// Whether `post` occupies `account`'s slot at `at`.
fn occupies(post: &Post, account: &AccountId, at: OffsetDateTime) -> bool {
    post.scheduled_at == at
        && post.variants.contains_key(account)
        && !matches!(post.status, PostStatus::Cancelled | PostStatus::Rejected)
}

impl PostService {
    /// Schedules a draft at the earliest posting slot every one of its targets has free.
    pub async fn schedule_in_next_slot(
        &self,
        actor: &Actor,
        id: &PostId,
    ) -> Result<Post, PostError> {
        let draft = self.get(&actor.tenant_id, id).await?;
        if draft.status != PostStatus::Draft {
            return Err(PostError::InvalidState(format!(
                "only a draft can be scheduled; this post is {}",
                draft.display_status()
            )));
        }
        let zone = self.tenant_zone(&actor.tenant_id).await?;
        let targets: Vec<AccountId> = draft.variants.keys().cloned().collect();
        let at = self
            .next_slot(&actor.tenant_id, id, &targets, &zone, self.clock.now())
            .await?;
        self.schedule(actor, id, Some(at)).await
    }

    /// The earliest slot after `now` that every target has and none has taken, held for
    /// `post`. Refused with a 422 naming `schedule` when there are no slots or none is free
    /// within the schedule's limit.
    pub(super) async fn next_slot(
        &self,
        tenant: &TenantId,
        post: &PostId,
        targets: &[AccountId],
        zone: &TimeZoneName,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, PostError> {
        let invalid = |m: &str| PostError::Invalid(vec![FieldError::new("schedule", m)]);
        let slots = self.slots.posting_slots(tenant).await?.unwrap_or_default();
        if slots.is_empty() {
            return Err(invalid(
                "the tenant has no posting slots; set them with PUT /v1/posting-slots",
            ));
        }
        let targets: BTreeSet<&AccountId> = targets.iter().collect();
        let mut from = now + Duration::minutes(1);
        while from < now + HORIZON {
            let to = (from + WINDOW).min(now + HORIZON);
            let mut common: Option<BTreeSet<OffsetDateTime>> = None;
            for account in &targets {
                let mine = slot_instants(slots.rules_for(account), zone, from, to);
                common = Some(match common {
                    None => mine,
                    Some(c) => c.intersection(&mine).copied().collect(),
                });
            }
            let candidates = common.unwrap_or_default();
            if !candidates.is_empty() {
                let scheduled = self.scheduled_between(tenant, from, to).await?;
                for at in candidates {
                    let taken = scheduled
                        .iter()
                        .any(|p| targets.iter().any(|a| occupies(p, a, at)));
                    if !taken && self.hold_all(tenant, post, &targets, at).await? {
                        return Ok(at);
                    }
                }
            }
            from = to;
        }
        Err(invalid(
            "no posting slot that every target has is free within a year; add slots or targets' own",
        ))
    }

    async fn scheduled_between(
        &self,
        tenant: &TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Post>, StoreError> {
        let (mut all, mut cursor) = (Vec::new(), None);
        loop {
            let page = self
                .posts
                .posts_between(tenant, from, to, cursor.as_deref(), 100)
                .await?;
            all.extend(page.items);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// Holds `at` for `post` on every target (in id order), or on none: a slot held by a live
    /// post of another request is released again on the targets already held.
    async fn hold_all(
        &self,
        tenant: &TenantId,
        post: &PostId,
        targets: &BTreeSet<&AccountId>,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut held = Vec::new();
        for account in targets {
            if self.hold(tenant, post, account, at).await? {
                held.push(*account);
            } else {
                for account in held {
                    self.slots.release_slot(tenant, account, at, post).await?;
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn hold(
        &self,
        tenant: &TenantId,
        post: &PostId,
        account: &AccountId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let Some(holder) = self
            .slots
            .hold_slot(tenant, account, at, post, None)
            .await?
        else {
            return Ok(true);
        };
        // The holder may have been cancelled, moved or never written: then the slot is free.
        let live = self
            .posts
            .get_post(tenant, &holder)
            .await?
            .is_some_and(|p| occupies(&p, account, at));
        if live {
            return Ok(false);
        }
        Ok(self
            .slots
            .hold_slot(tenant, account, at, post, Some(&holder))
            .await?
            .is_none())
    }
}
