//! Inbound webhook event ids on DynamoDB: one item per (provider, event id), written only if
//! absent or expired. The table's TTL removes old items eventually; expiry is checked here,
//! in the condition, because TTL deletion may lag by days.
//!
//! The processor keeps each event, and finds the variant a platform event is about through
//! the index item the publisher writes with a published outcome.
//!
//! | item            | pk                                   | sk                 |
//! |-----------------|--------------------------------------|--------------------|
//! | sighting        | `WEBHOOK#<provider>`                 | `SEEN#<event id>`  |
//! | kept event      | `WEBHOOK#<provider>`                 | `EVENT#<event id>` |
//! | platform post   | `PLATFORMPOST#<account>#<post id>`   | `PLATFORMPOST`     |

use super::DynamoStore;
use super::items::*;
use super::store::{values, written};
use crate::errors::store_error;
use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::ids::{AccountId, PostId, TenantId};
use herald_domain::inbound::{InboundEvent, InboundStore, Removal, WebhookInbox};
use time::OffsetDateTime;

/// Where a published variant's platform post id leads back to it.
pub fn platform_post_key(account: &AccountId, platform_post_id: &str) -> Item {
    key(
        format!("PLATFORMPOST#{account}#{platform_post_id}"),
        "PLATFORMPOST",
    )
}

/// How long a kept event stays (TTL): longer than `ReceiverConfig::remember_for`.
const KEEP_EVENTS: time::Duration = time::Duration::days(90);

fn sighting_key(provider: &str, event_id: &str) -> Item {
    key(format!("WEBHOOK#{provider}"), format!("SEEN#{event_id}"))
}

#[async_trait]
impl WebhookInbox for DynamoStore {
    async fn first_sighting(
        &self,
        provider: &str,
        event_id: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut item = sighting_key(provider, event_id);
        item.insert("seen_at".into(), time_n(now));
        item.insert("expires_at".into(), ttl_n(expires_at));
        written(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
                .set_expression_attribute_values(Some(values(vec![(":now", ttl_n(now))])))
                .send()
                .await
                .map_err(store_error),
        )
    }
}

#[async_trait]
impl InboundStore for DynamoStore {
    async fn mark_removed(
        &self,
        removal: &Removal,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let found = self
            .get(platform_post_key(
                &removal.account_id,
                &removal.platform_post_id,
            ))
            .await?;
        let Some(index) = found else {
            return Ok(false);
        };
        let f = Fields(&index);
        let (tenant, post) = (f.str("tenant_id")?, f.str("post_id")?);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                tenant_pk(&TenantId(tenant)),
                post_sk(&PostId(post)),
            )))
            .update_expression(
                "SET variants.#acc.removed_at = :at, version = version + :one, updated_at = :at",
            )
            .condition_expression(
                "variants.#acc.platform_post_id = :ppid AND attribute_not_exists(variants.#acc.removed_at)",
            )
            .set_expression_attribute_names(Some(super::store::names(&[(
                "#acc",
                removal.account_id.as_str(),
            )])))
            .set_expression_attribute_values(Some(values(vec![
                (":at", time_n(at)),
                (":one", n(1)),
                (":ppid", s(&removal.platform_post_id)),
            ])))
            .send()
            .await
            .map_err(store_error);
        written(result)
    }

    async fn keep_event(
        &self,
        event: &InboundEvent,
        kind: &str,
        applied: usize,
    ) -> Result<bool, StoreError> {
        let mut item = key(
            format!("WEBHOOK#{}", event.provider),
            format!("EVENT#{}", event.event_id),
        );
        item.insert("scheme".into(), s(event.scheme.as_str()));
        item.insert("kind".into(), s(kind));
        item.insert("received_at".into(), time_n(event.received_at));
        item.insert("correlation_id".into(), s(&event.correlation_id));
        item.insert("body".into(), s(&event.body));
        item.insert("applied".into(), n(applied));
        // Bodies may carry personal data (receipts name phone numbers): kept for a while,
        // longer than a sighting is remembered, so a late replay still applies nothing.
        item.insert("expires_at".into(), ttl_n(event.received_at + KEEP_EVENTS));
        written(self.put_new(item).await)
    }
}
