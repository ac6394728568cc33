//! Outbound webhook endpoints and their delivery attempts on the main table.
//!
//! | item     | pk                         | sk                                          |
//! |----------|----------------------------|---------------------------------------------|
//! | endpoint | `TENANT#<tenant>`          | `WEBHOOKEP#<we_id>`                         |
//! | attempt  | `WEBHOOKEP#<tenant>#<we_id>` | `ATTEMPT#<epoch ms, 13>#<event id>#<n, 4>` |
//!
//! A tenant's endpoints are one Query (the fan-out reads them per event); an endpoint's
//! attempts are one Query, newest first, and expire through `expires_at` (TTL).
//!
//! An endpoint's signing secrets are sealed at rest under the token-encryption key, bound to
//! the tenant, the endpoint and the field (`herald_domain::secrets::token_crypto`); the reconciler's
//! sweep re-seals them after a rotation. A plaintext `whsec_` value (written before sealing)
//! is still read, and the sweep seals it.

use super::items::*;
use super::store::{DynamoStore, names, values, written};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use herald_domain::StoreError;
use herald_domain::clock::epoch_millis;
use herald_domain::ids::TenantId;
use herald_domain::outbound::{
    ATTEMPT_RETENTION, AttemptRecord, Disabled, Endpoint, EndpointId, EndpointStore, EventType,
    PreviousSecret,
};
use herald_domain::secrets::token_crypto::{SweepReport, TokenField, TokenKeys};
use secrecy::SecretString;
use time::OffsetDateTime;

const ENDPOINT_PREFIX: &str = "WEBHOOKEP#";

fn endpoint_key(tenant: &TenantId, id: &EndpointId) -> Item {
    key(tenant_pk(tenant), format!("{ENDPOINT_PREFIX}{id}"))
}

fn attempts_pk(tenant: &TenantId, id: &EndpointId) -> String {
    format!("WEBHOOKEP#{tenant}#{id}")
}

fn invalid(field: &str) -> StoreError {
    StoreError::Invalid(format!(
        "stored endpoint has a missing or malformed `{field}`"
    ))
}

/// The endpoint's secrets sealed under the current key.
pub fn endpoint_to_item(e: &Endpoint, keys: &TokenKeys) -> Item {
    let mut item = endpoint_key(&e.tenant_id, &e.id);
    item.insert("url".into(), s(&e.url));
    item.insert(
        "event_types".into(),
        AttributeValue::L(e.event_types.iter().map(|t| s(t.as_str())).collect()),
    );
    let seal = |field, secret| s(keys.seal_for(&e.tenant_id, e.id.as_str(), field, secret));
    item.insert("secret".into(), seal(TokenField::WebhookSecret, &e.secret));
    if let Some(p) = &e.previous_secret {
        item.insert(
            "previous_secret".into(),
            seal(TokenField::WebhookPreviousSecret, &p.secret),
        );
        item.insert("previous_until".into(), time_n(p.until));
    }
    if let Some(d) = &e.disabled {
        item.insert("disabled_reason".into(), s(&d.reason));
        item.insert("disabled_at".into(), time_n(d.at));
    }
    item.insert("created_at".into(), time_n(e.created_at));
    item.insert("updated_at".into(), time_n(e.updated_at));
    item
}

/// A stored signing secret: sealed, or a plaintext `whsec_` one from before sealing.
fn open_secret(
    keys: &TokenKeys,
    tenant: &TenantId,
    id: &EndpointId,
    field: TokenField,
    stored: String,
) -> Result<SecretString, StoreError> {
    if stored.starts_with("whsec_") {
        return Ok(SecretString::from(stored));
    }
    Ok(keys.open_for(tenant, id.as_str(), field, &stored)?)
}

pub fn endpoint_from_item(item: &Item, keys: &TokenKeys) -> Result<Endpoint, StoreError> {
    let f = Fields(item);
    let pk = f.str("pk")?;
    let sk = f.str("sk")?;
    let id = EndpointId(
        sk.strip_prefix(ENDPOINT_PREFIX)
            .ok_or_else(|| invalid("sk"))?
            .to_owned(),
    );
    let tenant_id = TenantId(
        pk.strip_prefix("TENANT#")
            .ok_or_else(|| invalid("pk"))?
            .to_owned(),
    );
    let event_types = f
        .list("event_types")
        .ok_or_else(|| invalid("event_types"))?
        .iter()
        .map(|v| {
            v.as_s()
                .ok()
                .and_then(|t| EventType::parse(t))
                .ok_or_else(|| invalid("event_types"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let secret = open_secret(
        keys,
        &tenant_id,
        &id,
        TokenField::WebhookSecret,
        f.str("secret")?,
    )?;
    let previous_secret = match (f.opt_str("previous_secret"), f.opt_time("previous_until")) {
        (Some(stored), Some(until)) => Some(PreviousSecret {
            secret: open_secret(
                keys,
                &tenant_id,
                &id,
                TokenField::WebhookPreviousSecret,
                stored,
            )?,
            until,
        }),
        _ => None,
    };
    Ok(Endpoint {
        id,
        tenant_id,
        url: f.str("url")?,
        event_types,
        disabled: match (f.opt_str("disabled_reason"), f.opt_time("disabled_at")) {
            (Some(reason), Some(at)) => Some(Disabled { reason, at }),
            _ => None,
        },
        secret,
        previous_secret,
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
    })
}

pub fn attempt_to_item(a: &AttemptRecord) -> Item {
    let mut item = key(
        attempts_pk(&a.tenant_id, &a.endpoint_id),
        format!(
            "ATTEMPT#{:013}#{}#{:04}",
            epoch_millis(a.at).max(0),
            a.event_id,
            a.attempt
        ),
    );
    item.insert("event_id".into(), s(&a.event_id));
    item.insert("event_type".into(), s(a.event_type.as_str()));
    item.insert("attempt".into(), n(a.attempt));
    item.insert("at".into(), time_n(a.at));
    if let Some(status) = a.status {
        item.insert("status".into(), n(status));
    }
    item.insert("duration_ms".into(), n(a.duration_ms));
    if let Some(e) = &a.error {
        item.insert("error".into(), s(e));
    }
    item.insert("outcome".into(), s(&a.outcome));
    if let Some(next) = a.next_attempt_at {
        item.insert("next_attempt_at".into(), time_n(next));
    }
    item.insert("expires_at".into(), ttl_n(a.at + ATTEMPT_RETENTION));
    item
}

pub fn attempt_from_item(
    tenant: &TenantId,
    id: &EndpointId,
    item: &Item,
) -> Result<AttemptRecord, StoreError> {
    let f = Fields(item);
    Ok(AttemptRecord {
        tenant_id: tenant.clone(),
        endpoint_id: id.clone(),
        event_id: f.str("event_id")?,
        event_type: EventType::parse(&f.str("event_type")?).ok_or_else(|| invalid("event_type"))?,
        attempt: f.opt_u32("attempt")?.ok_or_else(|| invalid("attempt"))?,
        at: f.time("at")?,
        status: f.opt_num("status").and_then(|v| u16::try_from(v).ok()),
        duration_ms: f.u64("duration_ms")?,
        error: f.opt_str("error"),
        outcome: f.str("outcome")?,
        next_attempt_at: f.opt_time("next_attempt_at"),
    })
}

impl DynamoStore {
    /// The token sweep's part for endpoints: each endpoint with a signing secret not sealed
    /// under the current key (or still plaintext) is written again with its secrets sealed
    /// under it, unless it changed since it was read (a rotation or a disable wins). Answers
    /// how many such endpoints there were.
    pub(super) async fn reseal_endpoints(
        &self,
        keys: &TokenKeys,
        report: &mut SweepReport,
    ) -> Result<usize, StoreError> {
        let items = self
            .sweep_scan(
                "begins_with(sk, :ep) AND (NOT begins_with(#secret, :prefix) OR (attribute_exists(previous_secret) AND NOT begins_with(previous_secret, :prefix)))",
                &[("#secret", "secret")],
                vec![(":ep", s(ENDPOINT_PREFIX))],
                keys,
            )
            .await?;
        self.reseal_each(
            &items,
            endpoint_from_item,
            |item, endpoint| async move {
                written(
                    self.client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(endpoint_to_item(&endpoint, keys)))
                        .condition_expression("#secret = :old AND #u = :u")
                        .set_expression_attribute_names(Some(names(&[
                            ("#secret", "secret"),
                            ("#u", "updated_at"),
                        ])))
                        .set_expression_attribute_values(Some(values(vec![
                            (":old", item.get("secret").cloned().unwrap_or(s(""))),
                            (":u", time_n(endpoint.updated_at)),
                        ])))
                        .send()
                        .await
                        .map_err(store_error),
                )
            },
            report,
        )
        .await?;
        Ok(items.len())
    }

    /// An endpoint item read back, its secrets opened.
    async fn endpoint(&self, item: Option<&Item>) -> Result<Option<Endpoint>, StoreError> {
        let Some(item) = item else {
            return Ok(None);
        };
        let keys = self.keys_for_items([item]).await?;
        endpoint_from_item(item, &keys).map(Some)
    }
}

#[async_trait]
impl EndpointStore for DynamoStore {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let keys = self.sealing_keys().await?;
        self.put_new(endpoint_to_item(endpoint, &keys)).await
    }

    async fn replace_endpoint(
        &self,
        endpoint: &Endpoint,
        expected: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let keys = self.sealing_keys().await?;
        let wrote = written(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(endpoint_to_item(endpoint, &keys)))
                .condition_expression("#u = :expected")
                .set_expression_attribute_names(Some(names(&[("#u", "updated_at")])))
                .set_expression_attribute_values(Some(values(vec![(
                    ":expected",
                    time_n(expected),
                )])))
                .send()
                .await
                .map_err(store_error),
        )?;
        if wrote {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn get_endpoint(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError> {
        let item = self.get_latest(endpoint_key(tenant, id)).await?;
        self.endpoint(item.as_ref()).await
    }

    async fn list_endpoints(&self, tenant: &TenantId) -> Result<Vec<Endpoint>, StoreError> {
        let items = self
            .query_prefix(tenant_pk(tenant), ENDPOINT_PREFIX)
            .all()
            .await?;
        let keys = self.keys_for_items(&items).await?;
        items
            .iter()
            .map(|item| endpoint_from_item(item, &keys))
            .collect()
    }

    async fn delete_endpoint(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(endpoint_key(tenant, id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_error)?;
        self.endpoint(out.attributes.as_ref()).await
    }

    async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attempt_to_item(attempt)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn list_attempts(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let page = self
            .query_prefix(attempts_pk(tenant, id), "ATTEMPT#")
            .backward()
            .page(None, limit.clamp(1, 1000))
            .await?;
        page.items
            .iter()
            .map(|item| attempt_from_item(tenant, id, item))
            .collect()
    }
}
