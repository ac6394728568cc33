//! The publishing ports in memory (posts, dispatch, publish, reconcile, pause, rate windows,
//! the publish queue), with the DynamoDB adapter's conditions.

use crate::audit::AuditRecord;
use crate::error::StoreError;
use crate::ids::{AccountId, PostId, TenantId};
use crate::memory::MemoryStore;
use crate::model::{AccountStatus, Dispatch, Platform, Post, PostStatus, VariantStatus};
use crate::ports::*;
use crate::publishing::gates::{Admission, Breaker, BreakerState, Crisis, WindowSlot};
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use time::OffsetDateTime;

#[async_trait]
impl PostStore for MemoryStore {
    async fn insert_post(&self, post: &Post) -> Result<(), StoreError> {
        self.with("insert_post", |s| {
            let key = (post.tenant_id.clone(), post.id.clone());
            if s.posts.contains_key(&key) {
                return Err(StoreError::Conflict);
            }
            s.posts.insert(key, post.clone());
            Ok(())
        })
    }

    async fn get_post(&self, tenant: &TenantId, id: &PostId) -> Result<Option<Post>, StoreError> {
        self.with("get_post", |s| {
            Ok(s.posts.get(&(tenant.clone(), id.clone())).cloned())
        })
    }

    async fn list_posts(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Post>, StoreError> {
        self.with("list_posts", |s| {
            let items: Vec<Post> = s
                .posts
                .iter()
                .rev()
                .filter(|((t, id), _)| t == tenant && cursor.is_none_or(|c| id.as_str() < c))
                .take(limit)
                .map(|(_, p)| p.clone())
                .collect();
            let cursor = (items.len() == limit)
                .then(|| items.last().map(|p| p.id.0.clone()))
                .flatten();
            Ok(Page { items, cursor })
        })
    }

    async fn posts_between(
        &self,
        tenant: &TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Post>, StoreError> {
        self.with("posts_between", |s| {
            let mut found: Vec<(String, &Post)> = s
                .posts
                .iter()
                .filter(|((t, _), p)| t == tenant && p.scheduled_at >= from && p.scheduled_at < to)
                .map(|(_, p)| (calendar_position(p.scheduled_at, &p.id), p))
                .filter(|(at, _)| cursor.is_none_or(|c| at.as_str() > c))
                .collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found.truncate(limit);
            let cursor = (found.len() == limit)
                .then(|| found.last().map(|(at, _)| at.clone()))
                .flatten();
            Ok(Page {
                items: found.into_iter().map(|(_, p)| p.clone()).collect(),
                cursor,
            })
        })
    }

    async fn replace_post(&self, post: &Post, expected_version: u64) -> Result<(), StoreError> {
        self.with("replace_post", |s| {
            let key = (post.tenant_id.clone(), post.id.clone());
            match s.posts.get(&key) {
                Some(old) if old.version == expected_version => {
                    s.posts.insert(key, post.clone());
                    Ok(())
                }
                _ => Err(StoreError::Conflict),
            }
        })
    }
}

#[async_trait]
impl DispatchStore for MemoryStore {
    async fn due_posts(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PostRef>, StoreError> {
        self.with("due_posts", |s| {
            let mut due: Vec<(OffsetDateTime, PostRef)> = s
                .posts
                .values()
                .filter_map(|p| p.due_at().filter(|d| *d <= now).map(|d| (d, p)))
                .map(|(d, p)| {
                    (
                        d,
                        PostRef {
                            tenant_id: p.tenant_id.clone(),
                            post_id: p.id.clone(),
                        },
                    )
                })
                .collect();
            due.sort_by_key(|(at, _)| *at);
            Ok(due.into_iter().take(limit).map(|(_, r)| r).collect())
        })
    }

    async fn claim_for_dispatch(
        &self,
        post: &PostRef,
        now: OffsetDateTime,
        token: &str,
        lease_until: OffsetDateTime,
    ) -> Result<Option<Post>, StoreError> {
        self.with("claim_for_dispatch", |s| {
            let Some(p) = s
                .posts
                .get_mut(&(post.tenant_id.clone(), post.post_id.clone()))
            else {
                return Ok(None);
            };
            let claimable = match (p.status, &p.dispatch) {
                (PostStatus::Scheduled, _) => p.scheduled_at <= now,
                (PostStatus::Dispatched, Some(d)) => !d.sent && d.lease_until <= now,
                _ => false,
            };
            if !claimable {
                return Ok(None);
            }
            p.status = PostStatus::Dispatched;
            p.dispatch = Some(Dispatch {
                token: token.to_owned(),
                lease_until,
                sent: false,
            });
            p.version += 1;
            Ok(Some(p.clone()))
        })
    }

    async fn confirm_dispatch(&self, post: &PostRef, token: &str) -> Result<(), StoreError> {
        self.with("confirm_dispatch", |s| {
            let p = s
                .posts
                .get_mut(&(post.tenant_id.clone(), post.post_id.clone()));
            match p {
                Some(p) if p.dispatch.as_ref().is_some_and(|d| d.token == token) => {
                    if let Some(d) = p.dispatch.as_mut() {
                        d.sent = true;
                    }
                    p.version += 1;
                    Ok(())
                }
                _ => Err(StoreError::Conflict),
            }
        })
    }
}

#[async_trait]
impl PublishStore for MemoryStore {
    async fn claim_for_publish(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        gate: &ClaimGate,
    ) -> Result<(), ClaimRejected> {
        self.with("claim_for_publish", |s| {
            let now = gate.now;
            // The same checks, in the same precedence, as the DynamoDB transaction.
            let current = s
                .posts
                .get(&(variant.tenant_id.clone(), variant.post_id.clone()))
                .filter(|p| p.status == PostStatus::Dispatched)
                .and_then(|p| p.variants.get(&variant.account_id));
            match current {
                Some(v) if v.status.is_claimable() => {}
                Some(v) if v.status == VariantStatus::Publishing => {
                    let lease = gate.lease_until - gate.now;
                    return Err(ClaimRejected::Held {
                        until: v.claimed_at.unwrap_or(now) + lease,
                    });
                }
                _ => return Err(ClaimRejected::NotClaimable),
            }
            if let Some(c) = s
                .crises
                .get(&variant.tenant_id)
                .filter(|c| c.pauses(gate.platform, now))
            {
                return Err(ClaimRejected::Paused {
                    until: c.expires_at,
                });
            }
            let breaker = s
                .accounts
                .get(&(variant.tenant_id.clone(), variant.account_id.clone()))
                .map(|a| a.breaker.clone())
                .unwrap_or_default();
            let admitted = match gate.breaker {
                BreakerGate::Closed => breaker.admission(now) == Admission::Pass,
                BreakerGate::Probe { .. } => breaker.admission(now) == Admission::Probe,
            };
            if !admitted {
                return Err(ClaimRejected::Breaker(breaker));
            }
            if let Some(slot) = &gate.account_window {
                let used = s
                    .windows
                    .get(&(slot.scope.clone(), slot.index))
                    .copied()
                    .unwrap_or(0);
                if used >= slot.limit {
                    return Err(ClaimRejected::RateLimited {
                        until: slot.ends_at,
                    });
                }
                s.windows.insert((slot.scope.clone(), slot.index), used + 1);
            }
            if let BreakerGate::Probe { lease_until } = gate.breaker
                && let Some(a) = s
                    .accounts
                    .get_mut(&(variant.tenant_id.clone(), variant.account_id.clone()))
            {
                a.breaker.state = BreakerState::HalfOpen;
                a.breaker.until = Some(lease_until);
            }
            let p = s
                .posts
                .get_mut(&(variant.tenant_id.clone(), variant.post_id.clone()))
                .ok_or(ClaimRejected::NotClaimable)?;
            let v = p
                .variants
                .get_mut(&variant.account_id)
                .ok_or(ClaimRejected::NotClaimable)?;
            v.status = VariantStatus::Publishing;
            v.attempts += u32::from(gate.counts_attempt);
            v.attempt_id = Some(attempt_id.to_owned());
            v.claimed_at = Some(now);
            p.version += 1;
            p.updated_at = now;
            s.inflight.insert(
                PostRef {
                    tenant_id: variant.tenant_id.clone(),
                    post_id: variant.post_id.clone(),
                },
                gate.lease_until,
            );
            Ok(())
        })
    }

    async fn load_for_publish(&self, variant: &VariantRef) -> Result<Loaded, StoreError> {
        self.with("load_for_publish", |s| {
            let post = s
                .posts
                .get(&(variant.tenant_id.clone(), variant.post_id.clone()))
                .cloned()
                .ok_or_else(|| StoreError::Invalid("the claimed post is gone".into()))?;
            let account = s
                .accounts
                .get(&(variant.tenant_id.clone(), variant.account_id.clone()))
                .cloned();
            let audit_head = s
                .audit_heads
                .get(&(variant.tenant_id.clone(), variant_entity(variant)))
                .cloned()
                .unwrap_or_default();
            Ok(Loaded {
                post,
                account,
                audit_head,
            })
        })
    }

    async fn record_outcome(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        outcome: &VariantOutcome,
        lookup: bool,
        audit: &AuditRecord,
        reset: Option<BreakerReset>,
    ) -> Result<(), StoreError> {
        self.with("record_outcome", |s| {
            let head_key = (variant.tenant_id.clone(), audit.entry.entity.clone());
            if s.audit_heads.get(&head_key).map_or(0, |h| h.seq) + 1 != audit.seq {
                return Err(StoreError::Conflict);
            }
            let (version, v) = held_variant(&mut s.posts, variant, attempt_id)?;
            apply_outcome(v, outcome);
            v.lookup = lookup;
            *version += 1;
            s.audit_heads.insert(head_key, audit.head());
            s.audit.push(audit.clone());
            if let (Some(reset), Some(a)) = (
                reset,
                s.accounts
                    .get_mut(&(variant.tenant_id.clone(), variant.account_id.clone())),
            ) {
                apply_breaker_reset(&mut a.breaker, reset);
            }
            Ok(())
        })
    }

    async fn keep_progress(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.with("keep_progress", |s| {
            let (version, v) = held_variant(&mut s.posts, variant, attempt_id)?;
            v.progress = Some(value.to_owned());
            *version += 1;
            Ok(())
        })
    }

    async fn update_breaker(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        change: BreakerChange,
    ) -> Result<Breaker, StoreError> {
        self.with("update_breaker", |s| {
            let a = s
                .accounts
                .get_mut(&(tenant.clone(), account.clone()))
                .ok_or(StoreError::Conflict)?;
            apply_breaker_change(&mut a.breaker, change);
            Ok(a.breaker.clone())
        })
    }

    async fn mark_needs_reauth(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.with("mark_needs_reauth", |s| {
            if let Some(a) = s.accounts.get_mut(&(tenant.clone(), account.clone())) {
                a.status = AccountStatus::NeedsReauth;
                a.updated_at = now;
            }
            Ok(())
        })
    }
}

/// How a success's reset lands, under the same conditions as the DynamoDB adapter's.
pub fn apply_breaker_reset(b: &mut Breaker, reset: BreakerReset) {
    let applies = match reset {
        BreakerReset::IfClosed => b.state == BreakerState::Closed,
        BreakerReset::Probe => b.state == BreakerState::HalfOpen,
    };
    if applies {
        b.state = BreakerState::Closed;
        b.consecutive_failures = 0;
        b.until = None;
    }
}

/// How a breaker change lands; the DynamoDB adapter writes the same fields.
pub fn apply_breaker_change(b: &mut Breaker, change: BreakerChange) {
    match change {
        BreakerChange::Failure { policy, now } => {
            b.consecutive_failures += 1;
            if b.state == BreakerState::HalfOpen
                || b.consecutive_failures >= policy.failure_threshold
            {
                b.state = BreakerState::Open;
                b.until = Some(now + policy.reset_after);
            }
        }
        BreakerChange::BlockUntil(until) => {
            b.blocked_until = Some(b.blocked_until.map_or(until, |t| t.max(until)));
        }
    }
}

#[async_trait]
impl AppLimiter for MemoryStore {
    async fn reserve(
        &self,
        slot: &WindowSlot,
        wanted: u32,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        self.with("reserve", |s| {
            if let Some(until) = s.app_blocks.get(&slot.scope).filter(|t| **t > now) {
                return Ok(Reservation {
                    granted: 0,
                    retry_at: Some(*until),
                });
            }
            let used = s
                .windows
                .entry((slot.scope.clone(), slot.index))
                .or_default();
            let granted = wanted.min(slot.limit.saturating_sub(*used));
            *used += granted;
            Ok(Reservation {
                granted,
                retry_at: (granted < wanted).then_some(slot.ends_at),
            })
        })
    }

    async fn block_app(&self, platform: Platform, until: OffsetDateTime) -> Result<(), StoreError> {
        self.with("block_app", |s| {
            let t = s
                .app_blocks
                .entry(format!("app#{platform}"))
                .or_insert(until);
            *t = (*t).max(until);
            Ok(())
        })
    }
}

#[async_trait]
impl ReconcileStore for MemoryStore {
    async fn inflight_posts(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PostRef>, StoreError> {
        self.with("inflight_posts", |s| {
            let mut due: Vec<(OffsetDateTime, PostRef)> = s
                .inflight
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(p, at)| (*at, p.clone()))
                .collect();
            due.sort();
            Ok(due.into_iter().take(limit).map(|(_, p)| p).collect())
        })
    }

    async fn reschedule_inflight(
        &self,
        post: &PostRef,
        next: Option<OffsetDateTime>,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.with("reschedule_inflight", |s| {
            let version = s
                .posts
                .get(&(post.tenant_id.clone(), post.post_id.clone()))
                .map(|p| p.version);
            if version != Some(expected_version) {
                return Ok(());
            }
            match next {
                Some(at) => s.inflight.insert(post.clone(), at),
                None => s.inflight.remove(post),
            };
            Ok(())
        })
    }
}

#[async_trait]
impl HeartbeatStore for MemoryStore {
    async fn beat(&self, name: &str, at: OffsetDateTime, summary: &str) -> Result<(), StoreError> {
        self.with("beat", |s| {
            s.heartbeats
                .insert(name.to_owned(), (at, summary.to_owned()));
            Ok(())
        })
    }

    async fn last_beat(&self, name: &str) -> Result<Option<(OffsetDateTime, String)>, StoreError> {
        self.with("last_beat", |s| Ok(s.heartbeats.get(name).cloned()))
    }
}

#[async_trait]
impl CrisisStore for MemoryStore {
    async fn get_crisis(&self, tenant: &TenantId) -> Result<Option<Crisis>, StoreError> {
        self.with("get_crisis", |s| Ok(s.crises.get(tenant).cloned()))
    }

    async fn put_crisis(&self, crisis: &Crisis) -> Result<(), StoreError> {
        self.with("put_crisis", |s| {
            s.crises.insert(crisis.tenant_id.clone(), crisis.clone());
            Ok(())
        })
    }

    async fn delete_crisis(&self, tenant: &TenantId) -> Result<Option<Crisis>, StoreError> {
        self.with("delete_crisis", |s| Ok(s.crises.remove(tenant)))
    }
}

/// The post's version and the variant `attempt_id` still holds (`Conflict` otherwise), as the
/// DynamoDB adapter's conditions check.
fn held_variant<'a>(
    posts: &'a mut std::collections::BTreeMap<(TenantId, PostId), Post>,
    variant: &VariantRef,
    attempt_id: &str,
) -> Result<(&'a mut u64, &'a mut crate::model::Variant), StoreError> {
    let post = posts
        .get_mut(&(variant.tenant_id.clone(), variant.post_id.clone()))
        .ok_or(StoreError::Conflict)?;
    let Post {
        ref mut version,
        ref mut variants,
        ..
    } = *post;
    let v = variants
        .get_mut(&variant.account_id)
        .ok_or(StoreError::Conflict)?;
    if v.status != VariantStatus::Publishing || v.attempt_id.as_deref() != Some(attempt_id) {
        return Err(StoreError::Conflict);
    }
    Ok((version, v))
}

/// How an outcome changes a variant; the DynamoDB adapter writes the same fields.
pub fn apply_outcome(v: &mut crate::model::Variant, outcome: &VariantOutcome) {
    match outcome {
        VariantOutcome::Published {
            platform_post_id,
            at,
            step,
            more,
        } => {
            if *step == 0 {
                v.platform_post_id = Some(platform_post_id.clone());
                v.published_at = Some(*at);
            } else {
                v.follow_up_ids.push(platform_post_id.clone());
            }
            v.last_error = None;
            v.progress = None;
            if *more {
                v.status = VariantStatus::Continuing;
                v.step = step + 1;
                v.attempts = 0;
            } else {
                v.status = VariantStatus::Published;
            }
        }
        VariantOutcome::Failed(e) => {
            v.status = VariantStatus::Failed;
            v.last_error = Some(e.clone());
        }
        VariantOutcome::Retrying(e) => {
            v.status = VariantStatus::Retrying;
            v.last_error = Some(e.clone());
        }
        VariantOutcome::DeadLettered(e) => {
            v.status = VariantStatus::DeadLettered;
            v.last_error = Some(e.clone());
        }
        VariantOutcome::Unknown(e) => {
            v.status = VariantStatus::Unknown;
            v.last_error = Some(e.clone());
        }
    }
}

/// A queue that keeps what it was sent.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<PublishMessage>>,
    /// Fresh copies sent with a delay, and the delay.
    pub delayed: Mutex<Vec<(PublishMessage, std::time::Duration)>>,
    /// Copies moved to the dead-letter queue, with the reason.
    pub dead_letters: Mutex<Vec<(PublishMessage, String)>>,
    fail_next: AtomicUsize,
}

impl MemoryQueue {
    /// The next `n` messages fail to send.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn take(&self) -> Vec<PublishMessage> {
        std::mem::take(&mut *self.sent.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl PublishQueue for MemoryQueue {
    async fn send(
        &self,
        messages: &[PublishMessage],
    ) -> Result<Vec<Result<(), String>>, StoreError> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        Ok(messages
            .iter()
            .map(|m| {
                let left = self.fail_next.load(Ordering::SeqCst);
                if left > 0 {
                    self.fail_next.store(left - 1, Ordering::SeqCst);
                    Err("injected send failure".to_owned())
                } else {
                    sent.push(m.clone());
                    Ok(())
                }
            })
            .collect())
    }

    async fn send_delayed(
        &self,
        message: &PublishMessage,
        delay: std::time::Duration,
    ) -> Result<(), StoreError> {
        self.delayed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((message.clone(), delay));
        Ok(())
    }

    async fn dead_letter(&self, message: &PublishMessage, reason: &str) -> Result<(), StoreError> {
        self.dead_letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((message.clone(), reason.to_owned()));
        Ok(())
    }
}

#[async_trait]
impl SlotStore for MemoryStore {
    async fn posting_slots(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<crate::publishing::slots::PostingSlots>, StoreError> {
        self.with("posting_slots", |s| {
            Ok(s.posting_slots.get(tenant).cloned())
        })
    }

    async fn put_posting_slots(
        &self,
        tenant: &TenantId,
        slots: &crate::publishing::slots::PostingSlots,
    ) -> Result<(), StoreError> {
        self.with("put_posting_slots", |s| {
            s.posting_slots.insert(tenant.clone(), slots.clone());
            Ok(())
        })
    }

    async fn hold_slot(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        post: &PostId,
        replacing: Option<&PostId>,
    ) -> Result<Option<PostId>, StoreError> {
        let key = (
            tenant.clone(),
            account.clone(),
            crate::clock::epoch_millis(at),
        );
        self.with("hold_slot", |s| {
            let holder = s.slot_holds.get(&key);
            let free = match replacing {
                Some(old) => holder == Some(old),
                None => holder.is_none_or(|h| h == post),
            };
            if free {
                s.slot_holds.insert(key, post.clone());
                Ok(None)
            } else {
                Ok(holder.cloned())
            }
        })
    }

    async fn release_slot(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        post: &PostId,
    ) -> Result<(), StoreError> {
        let key = (
            tenant.clone(),
            account.clone(),
            crate::clock::epoch_millis(at),
        );
        self.with("release_slot", |s| {
            if s.slot_holds.get(&key) == Some(post) {
                s.slot_holds.remove(&key);
            }
            Ok(())
        })
    }
}
