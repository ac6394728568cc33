//! Account tokens on the main table: the refresh lease, the refreshed tokens' write, and the
//! sweep that re-seals tokens under the current key. Every token is sealed (`token_crypto`)
//! before it is written; none is ever read back in plaintext from an item.
//!
//! The refresh lease is two attributes on the account item (`refresh_lease`,
//! `refresh_lease_until`). Its expiry is checked in the condition, against the caller's
//! clock: a lease that ended is free, whether or not anything removed it.
//!
//! ```text
//!   refresher A: take (free)      ── ok ──► call the platform ──► store (lease = A) ── ok
//!   refresher B: take (held by A) ── ConditionalCheckFailed ──► re-read, use A's token
//!   A dies:      lease ends at `until` ──► the next taker wins without anyone cleaning up
//! ```

use super::items::*;
use super::ops::AllItems;
use super::store::{DynamoStore, names, values, written};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use herald_domain::StoreError;
use herald_domain::ids::{AccountId, TenantId};
use herald_domain::model::Account;
use herald_domain::secrets::token_crypto::{SweepReport, TokenField, TokenKeys, TokenSweep};
use herald_domain::secrets::token_refresh::{ExpiringTokens, RefreshLeases, RefreshedTokens};
use time::OffsetDateTime;

/// The marker item that remembers which key the last complete sweep left every token under.
const SWEEP_PK: &str = "SWEEP#tokens";
const SWEEP_SK: &str = "STATE";
/// What a finished pass covered: a marker from before endpoints' secrets were sealed does not
/// count, so the first pass after upgrading seals their plaintext ones without waiting for a
/// rotation.
const SWEEP_COVERS: &str = "accounts,endpoints";

#[async_trait]
impl RefreshLeases for DynamoStore {
    async fn take_refresh_lease(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        written(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(tenant_pk(tenant), account_sk(account))))
                .update_expression("SET refresh_lease = :holder, refresh_lease_until = :until")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(refresh_lease_until) OR refresh_lease_until <= :now)",
                )
                .set_expression_attribute_values(Some(values(vec![
                    (":holder", s(holder)),
                    (":until", time_n(until)),
                    (":now", time_n(now)),
                ])))
                .send()
                .await
                .map_err(store_error),
        )
    }

    async fn store_refreshed(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        holder: &str,
        tokens: &RefreshedTokens,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let keys = self.sealing_keys().await?;
        let mut set = vec!["access_token = :access", "updated_at = :now"];
        let mut remove = vec!["refresh_lease", "refresh_lease_until"];
        let mut vals = vec![
            (
                ":access",
                s(keys.seal(tenant, account, TokenField::Access, &tokens.access_token)),
            ),
            (":now", time_n(now)),
            (":holder", s(holder)),
        ];
        if let Some(refresh) = &tokens.refresh_token {
            set.push("refresh_token = :refresh");
            vals.push((
                ":refresh",
                s(keys.seal(tenant, account, TokenField::Refresh, refresh)),
            ));
        }
        match expires_at {
            Some(at) => {
                set.push("token_expires_at = :exp");
                vals.push((":exp", time_n(at)));
            }
            None => remove.push("token_expires_at"),
        }
        let stored = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(tenant_pk(tenant), account_sk(account))))
                .update_expression(format!(
                    "SET {} REMOVE {}",
                    set.join(", "),
                    remove.join(", ")
                ))
                .condition_expression("refresh_lease = :holder")
                .set_expression_attribute_values(Some(values(vals)))
                .send()
                .await
                .map_err(store_error),
        )?;
        if stored {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn release_refresh_lease(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        holder: &str,
    ) -> Result<(), StoreError> {
        written(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(tenant_pk(tenant), account_sk(account))))
                .update_expression("REMOVE refresh_lease, refresh_lease_until")
                .condition_expression("refresh_lease = :holder")
                .set_expression_attribute_values(Some(values(vec![(":holder", s(holder))])))
                .send()
                .await
                .map_err(store_error),
        )
        .map(|_| ())
    }
}

impl DynamoStore {
    /// A sweep's Scan: the items `filter` keeps, where `:prefix` is the current key's
    /// `v1.<key id>.`.
    pub(super) async fn sweep_scan(
        &self,
        filter: &str,
        attribute_names: &[(&str, &str)],
        mut attribute_values: Vec<(&str, AttributeValue)>,
        keys: &TokenKeys,
    ) -> Result<Vec<Item>, StoreError> {
        attribute_values.push((":prefix", s(format!("v1.{}.", keys.current_id()))));
        self.client
            .scan()
            .table_name(&self.table)
            .filter_expression(filter)
            .set_expression_attribute_names(Some(names(attribute_names)))
            .set_expression_attribute_values(Some(values(attribute_values)))
            .all_items()
            .await
    }

    /// A sweep's loop: each item opened with the keys its secrets name (`open`), then written
    /// back sealed under the current key by `reseal` (false: it changed since it was read and
    /// is left alone). One that no key opens is logged by its key and counted.
    pub(super) async fn reseal_each<T, Fut>(
        &self,
        items: &[Item],
        open: impl Fn(&Item, &TokenKeys) -> Result<T, StoreError>,
        reseal: impl Fn(Item, T) -> Fut,
        report: &mut SweepReport,
    ) -> Result<(), StoreError>
    where
        Fut: std::future::Future<Output = Result<bool, StoreError>>,
    {
        for item in items {
            report.examined += 1;
            let opened = match self.keys_for_items([item]).await {
                Ok(old) => open(item, &old),
                Err(e) => Err(e),
            };
            let value = match opened {
                Ok(v) => v,
                Err(e) => {
                    let sk = item.get("sk").and_then(|v| v.as_s().ok());
                    tracing::error!(item = ?sk, error = %e, "a stored secret cannot be opened with any key the secret holds");
                    report.unreadable += 1;
                    continue;
                }
            };
            if reseal(item.clone(), value).await? {
                report.resealed += 1;
            } else {
                report.skipped += 1;
            }
        }
        Ok(())
    }

    /// The account's tokens sealed under the current key, only if nothing wrote them since
    /// they were read (a refresh or a reconnect seals under the current key itself).
    async fn reseal_account(
        &self,
        keys: &TokenKeys,
        item: Item,
        account: Account,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (&account.tenant_id, &account.id);
        let mut set = vec!["access_token = :access"];
        let mut vals: Vec<(&str, AttributeValue)> = vec![
            (
                ":access",
                s(keys.seal(tenant, id, TokenField::Access, &account.access_token)),
            ),
            (
                ":old_access",
                item.get("access_token").cloned().unwrap_or(s("")),
            ),
        ];
        let mut condition = "access_token = :old_access".to_owned();
        match (&account.refresh_token, item.get("refresh_token")) {
            (Some(refresh), Some(old)) => {
                set.push("refresh_token = :refresh");
                vals.push((
                    ":refresh",
                    s(keys.seal(tenant, id, TokenField::Refresh, refresh)),
                ));
                vals.push((":old_refresh", old.clone()));
                condition.push_str(" AND refresh_token = :old_refresh");
            }
            _ => condition.push_str(" AND attribute_not_exists(refresh_token)"),
        }
        written(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(tenant_pk(tenant), account_sk(id))))
                .update_expression(format!("SET {}", set.join(", ")))
                .condition_expression(condition)
                .set_expression_attribute_values(Some(values(vals)))
                .send()
                .await
                .map_err(store_error),
        )
    }
}

/// One Query of the `poll` index (accounts and streams only), filtered to active accounts
/// whose `token_expires_at` is before the horizon.
#[async_trait]
impl ExpiringTokens for DynamoStore {
    async fn expiring_before(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<(TenantId, AccountId)>, StoreError> {
        let items = self
            .query_poll(
                "token_expires_at <= :before AND #status = :active",
                "pk, sk",
                &[("#status", "status")],
                vec![(":before", time_n(before)), (":active", s("active"))],
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let f = Fields(item);
                let tenant = f.str("pk").ok()?.strip_prefix("TENANT#")?.to_owned();
                let account = f.str("sk").ok()?.strip_prefix("ACCOUNT#")?.to_owned();
                Some((TenantId(tenant), AccountId(account)))
            })
            .collect())
    }
}

#[async_trait]
impl TokenSweep for DynamoStore {
    /// Cheap while nothing rotated: one GetItem of the marker. After a rotation, two Scans
    /// (filtered to account items with a token, and webhook endpoints with a signing secret,
    /// not under the current key) and one conditional write per such item. A pass that finds
    /// nothing left before the key has been current for longer than other instances may cache
    /// the ring before it (`settle`) marks the key clean *pending* until then, and passes
    /// until that time cost one read again: one more pass after it catches what a stale
    /// instance sealed under the old key meanwhile, and marks the key swept. (Scanning on every
    /// pass of the settle window cost a whole-table read every reconciler run.)
    async fn sweep_tokens(
        &self,
        now: OffsetDateTime,
        settle: time::Duration,
    ) -> Result<SweepReport, StoreError> {
        let keys = self.sealing_keys().await?;
        let current = keys.current_id().to_owned();
        let marker = self.sweep_marker(&current).await?;
        let mut report = SweepReport::default();
        match marker {
            SweepMarker::Swept => {
                report.done = true;
                return Ok(report);
            }
            SweepMarker::CleanUntil(until) if now < until => return Ok(report),
            SweepMarker::CleanUntil(_) | SweepMarker::Behind => {}
        }
        let items = self
            .sweep_scan(
                "#type = :account AND (NOT begins_with(access_token, :prefix) OR (attribute_exists(refresh_token) AND NOT begins_with(refresh_token, :prefix)))",
                &[("#type", "type")],
                vec![(":account", s("account"))],
                &keys,
            )
            .await?;
        self.reseal_each(
            &items,
            account_from_item,
            |item, account| self.reseal_account(&keys, item, account),
            &mut report,
        )
        .await?;
        let endpoints = self.reseal_endpoints(&keys, &mut report).await?;
        if !items.is_empty() || endpoints > 0 {
            return Ok(report);
        }
        let settles_at = keys.current_since().map(|since| since + settle);
        let pending = settles_at.filter(|at| now < *at);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some({
                let mut item = key(SWEEP_PK.to_owned(), SWEEP_SK);
                item.insert("type".into(), s("token_sweep"));
                item.insert("key_id".into(), s(current));
                item.insert("covers".into(), s(SWEEP_COVERS));
                item.insert("at".into(), time_n(now));
                if let Some(at) = pending {
                    item.insert("clean_until".into(), time_n(at));
                }
                item
            }))
            .send()
            .await
            .map_err(store_error)?;
        report.done = pending.is_none();
        Ok(report)
    }
}

/// What the marker says of the current key.
enum SweepMarker {
    /// Every secret is under it, for good.
    Swept,
    /// A pass found nothing left under an older key, but instances may still seal under one
    /// until this time: the next pass after it decides.
    CleanUntil(OffsetDateTime),
    /// Not swept (another key, an older marker, or none).
    Behind,
}

impl DynamoStore {
    /// Whether a finished sweep left every stored token and endpoint secret under the key
    /// `key_id`, for good (one consistent GetItem of the marker).
    pub async fn tokens_swept_under(&self, key_id: &str) -> Result<bool, StoreError> {
        Ok(matches!(
            self.sweep_marker(key_id).await?,
            SweepMarker::Swept
        ))
    }

    async fn sweep_marker(&self, current: &str) -> Result<SweepMarker, StoreError> {
        let Some(item) = self.get_latest(key(SWEEP_PK.to_owned(), SWEEP_SK)).await? else {
            return Ok(SweepMarker::Behind);
        };
        let f = Fields(&item);
        if f.opt_str("covers").as_deref() != Some(SWEEP_COVERS)
            || f.opt_str("key_id").as_deref() != Some(current)
        {
            return Ok(SweepMarker::Behind);
        }
        Ok(match f.opt_time("clean_until") {
            Some(until) => SweepMarker::CleanUntil(until),
            None => SweepMarker::Swept,
        })
    }
}
