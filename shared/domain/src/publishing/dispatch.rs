//! The dispatcher: hands due posts to the publish queue.
//!
//! Claim first (one conditional write that also sets a lease), then send, then confirm.
//! A crash between claim and send leaves the post on the due index with its lease as due
//! time, so a later run sends it again; a duplicate send is harmless because the
//! publisher's claim is conditional.

use crate::clock::Clock;
use crate::ids::TenantId;
use crate::model::{Post, VariantStatus};
use crate::ports::{CrisisStore, DispatchStore, PostRef, PublishMessage, PublishQueue};
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use time::Duration;
use time::OffsetDateTime;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// How long an unconfirmed dispatch waits before it is sent again.
    pub lease: Duration,
    /// Posts looked at per run.
    pub batch: usize,
    /// Posts claimed and sent at once.
    pub concurrency: usize,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            lease: Duration::minutes(2),
            batch: 200,
            concurrency: 8,
        }
    }
}

/// What one run did; also the dispatcher function's answer.
/// The name this function's heartbeat is stored under.
pub const HEARTBEAT: &str = "dispatcher";

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DispatchReport {
    pub due: usize,
    /// Due, but their tenant paused every platform.
    pub held: usize,
    pub claimed: usize,
    pub messages_sent: usize,
    pub send_failures: usize,
    pub skipped: usize,
    pub errors: usize,
}

#[derive(Clone)]
pub struct Dispatcher {
    pub store: Arc<dyn DispatchStore>,
    /// Tenants that paused every platform keep their due posts here until the pause ends.
    pub crises: Arc<dyn CrisisStore>,
    pub queue: Arc<dyn PublishQueue>,
    pub clock: Arc<dyn Clock>,
    pub config: DispatchConfig,
}

crate::debug_fields!(Dispatcher, config);

enum One {
    Held,
    Skipped,
    Sent { messages: usize, failures: usize },
    Error,
}

impl Dispatcher {
    pub async fn run_once(&self) -> Result<DispatchReport, crate::StoreError> {
        let now = self.clock.now();
        let due = self.store.due_posts(now, self.config.batch).await?;
        let mut report = DispatchReport {
            due: due.len(),
            ..Default::default()
        };
        let paused = self.fully_paused(&due, now).await;
        let results: Vec<One> = futures::stream::iter(due)
            .map(|post| {
                let held = paused.contains(&post.tenant_id);
                async move {
                    if held {
                        One::Held
                    } else {
                        self.dispatch_one(post).await
                    }
                }
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            match r {
                One::Held => report.held += 1,
                One::Skipped => report.skipped += 1,
                One::Sent { messages, failures } => {
                    report.claimed += 1;
                    report.messages_sent += messages - failures;
                    report.send_failures += failures;
                }
                One::Error => report.errors += 1,
            }
        }
        Ok(report)
    }

    /// The tenants among `due` whose pause covers every platform (one read per tenant). A
    /// partial pause is the publisher's to enforce, per variant, with the claim.
    async fn fully_paused(&self, due: &[PostRef], now: OffsetDateTime) -> BTreeSet<TenantId> {
        let tenants: BTreeSet<&TenantId> = due.iter().map(|p| &p.tenant_id).collect();
        let mut paused = BTreeSet::new();
        for tenant in tenants {
            match self.crises.get_crisis(tenant).await {
                Ok(Some(c)) if c.is_active(now) && c.platforms.is_empty() => {
                    paused.insert(tenant.clone());
                }
                Ok(_) => {}
                // The publisher's claim enforces the pause anyway; do not stop the run.
                Err(e) => {
                    tracing::warn!(tenant_id = %tenant, error = %e, "reading the pause failed")
                }
            }
        }
        paused
    }

    async fn dispatch_one(&self, post_ref: PostRef) -> One {
        let now = self.clock.now();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let post = match self
            .store
            .claim_for_dispatch(&post_ref, now, &token, now + self.config.lease)
            .await
        {
            Ok(Some(post)) => post,
            Ok(None) => return One::Skipped,
            Err(e) => {
                tracing::warn!(post_id = %post_ref.post_id, error = %e, "dispatch claim failed");
                return One::Error;
            }
        };
        let span = tracing::info_span!("dispatch", correlation_id = %post.correlation_id, post_id = %post.id);
        self.send_and_confirm(&post_ref, &post, &token)
            .instrument(span)
            .await
    }

    async fn send_and_confirm(&self, post_ref: &PostRef, post: &Post, token: &str) -> One {
        let messages = messages_for(post);
        let results = match self.queue.send(&messages).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "sending to the publish queue failed; the lease will bring it back");
                return One::Sent {
                    messages: messages.len(),
                    failures: messages.len(),
                };
            }
        };
        let failures = results.iter().filter(|r| r.is_err()).count();
        if failures == 0 {
            if let Err(e) = self.store.confirm_dispatch(post_ref, token).await {
                // Harmless: the lease expires and the (idempotent) send happens again.
                tracing::info!(error = %e, "dispatch not confirmed");
            }
        } else {
            tracing::warn!(
                failures,
                "some publish messages were not sent; the lease will bring them back"
            );
        }
        tracing::info!(messages = messages.len(), failures, "dispatched");
        One::Sent {
            messages: messages.len(),
            failures,
        }
    }
}

/// One message per variant no publisher has taken yet.
pub fn messages_for(post: &Post) -> Vec<PublishMessage> {
    post.variants
        .values()
        .filter(|v| v.status == VariantStatus::Pending)
        .map(|v| PublishMessage {
            tenant_id: post.tenant_id.clone(),
            post_id: post.id.clone(),
            account_id: v.account_id.clone(),
            platform: v.platform,
            correlation_id: post.correlation_id.clone(),
            failures: 0,
            continues_upload: false,
        })
        .collect()
}
