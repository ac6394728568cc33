//! The main table behind the domain's store ports. Each method is one DynamoDB call except
//! `due_posts` (one Query per shard) and `list_posts` pagination.

use super::items::*;
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use herald_domain::StoreError;
use herald_domain::clock::epoch_millis;
use herald_domain::ids::{AccountId, ApiKeyId, PostId, TenantId};
use herald_domain::model::{
    Account, ApiKey, KeyChange, Post, PostStatus, Suspension, Tenant, TenantSettings,
};
use herald_domain::ports::*;
use herald_domain::secrets::token_crypto::{TokenKeys, TokenVault};
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(super) client: crate::Lazy<Client>,
    pub(super) table: String,
    pub(super) audit_table: Option<String>,
    /// Seals and opens platform tokens; without it, account reads and writes fail (tokens are
    /// never stored in plaintext).
    pub(super) tokens: Option<Arc<TokenVault>>,
}

impl DynamoStore {
    pub fn new(client: impl Into<crate::Lazy<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
            audit_table: None,
            tokens: None,
        }
    }

    /// The token-encryption key ring accounts' tokens are sealed under.
    pub fn with_token_vault(mut self, vault: Arc<TokenVault>) -> Self {
        self.tokens = Some(vault);
        self
    }

    fn vault(&self) -> Result<&TokenVault, StoreError> {
        self.tokens.as_deref().ok_or_else(|| {
            StoreError::Invalid("no token-encryption key is configured for account tokens".into())
        })
    }

    /// Keys that open every account item in `items`.
    pub(super) async fn keys_for_items<'a>(
        &self,
        items: impl IntoIterator<Item = &'a Item>,
    ) -> Result<Arc<TokenKeys>, StoreError> {
        let ids: Vec<&str> = items.into_iter().flat_map(token_key_ids).collect();
        self.vault()?.keys_for(ids).await
    }

    /// The current keys, to seal with.
    pub(super) async fn sealing_keys(&self) -> Result<Arc<TokenKeys>, StoreError> {
        self.vault()?.keys().await
    }

    /// The audit log's table (`AuditTable`); without it, audited writes fail.
    pub fn with_audit_table(mut self, table: impl Into<String>) -> Self {
        self.audit_table = Some(table.into());
        self
    }
}

pub(super) fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A conditional write's answer as "did it write": a failed condition is `false`.
pub(super) fn written<T>(result: Result<T, StoreError>) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(super) fn values(pairs: Vec<(&str, AttributeValue)>) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn is_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict)
}

impl DynamoStore {
    /// Posts in a sparse time index (`due`, `inflight`) whose time is at or before `now`,
    /// oldest first: one Query per shard, no scan.
    async fn posts_before(
        &self,
        index: &str,
        pk_attr: &str,
        sk_attr: &str,
        shard_pk: fn(u32) -> String,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PostRef>, StoreError> {
        // Every sort key at or before `now` sorts below "<now>$" ('$' follows '#').
        let upper = format!("{:013}$", epoch_millis(now).max(0));
        let mut found: Vec<(String, PostRef)> = Vec::new();
        for shard in 0..DUE_SHARDS {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#p = :p AND #s < :upper")
                .set_expression_attribute_names(Some(names(&[("#p", pk_attr), ("#s", sk_attr)])))
                .set_expression_attribute_values(Some(values(vec![
                    (":p", s(shard_pk(shard))),
                    (":upper", s(&upper)),
                ])))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                let f = Fields(item);
                let (pk, sk, at) = (f.str("pk")?, f.str("sk")?, f.str(sk_attr)?);
                let (Some(t), Some(p)) = (pk.strip_prefix("TENANT#"), sk.strip_prefix("POST#"))
                else {
                    return Err(StoreError::Invalid(format!(
                        "malformed key in the {index} index"
                    )));
                };
                found.push((
                    at,
                    PostRef {
                        tenant_id: TenantId(t.to_owned()),
                        post_id: PostId(p.to_owned()),
                    },
                ));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found.into_iter().take(limit).map(|(_, r)| r).collect())
    }
}

#[async_trait]
impl ReconcileStore for DynamoStore {
    async fn inflight_posts(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PostRef>, StoreError> {
        self.posts_before(
            "inflight",
            "inflight_pk",
            "inflight_sk",
            inflight_pk,
            now,
            limit,
        )
        .await
    }

    async fn reschedule_inflight(
        &self,
        post: &PostRef,
        next: Option<OffsetDateTime>,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        // A claim since the reconciler's read bumped the version and keeps its own entry.
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                tenant_pk(&post.tenant_id),
                post_sk(&post.post_id),
            )))
            .condition_expression("version = :v");
        let request = match next {
            Some(at) => request
                .update_expression("SET inflight_pk = :p, inflight_sk = :s")
                .set_expression_attribute_values(Some(values(vec![
                    (":p", s(inflight_pk(due_shard(&post.post_id)))),
                    (":s", s(due_sk(at, &post.tenant_id, &post.post_id))),
                    (":v", n(expected_version)),
                ]))),
            None => request
                .update_expression("REMOVE inflight_pk, inflight_sk")
                .set_expression_attribute_values(Some(values(vec![(":v", n(expected_version))]))),
        };
        match request.send().await.map_err(store_error) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl HeartbeatStore for DynamoStore {
    async fn beat(&self, name: &str, at: OffsetDateTime, summary: &str) -> Result<(), StoreError> {
        let mut item = heartbeat_key(name);
        item.insert("at".into(), time_n(at));
        item.insert("summary".into(), s(summary));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn last_beat(&self, name: &str) -> Result<Option<(OffsetDateTime, String)>, StoreError> {
        let item = self.get(heartbeat_key(name)).await?;
        Ok(item.and_then(|i| {
            let f = Fields(&i);
            Some((f.opt_time("at")?, f.opt_str("summary").unwrap_or_default()))
        }))
    }
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.put_new(tenant_to_item(tenant)).await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let item = self.get(key(tenant_pk(id), "TENANT")).await?;
        item.as_ref().map(tenant_from_item).transpose()
    }

    async fn update_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        let mut set = vec![
            "require_approval = :ra".to_owned(),
            "forbid_self_approval = :fs".to_owned(),
        ];
        let mut remove = Vec::new();
        let mut vals = vec![
            (":ra", AttributeValue::Bool(settings.require_approval)),
            (":fs", AttributeValue::Bool(settings.forbid_self_approval)),
        ];
        // Optional settings: set when given, removed when not.
        for (field, placeholder, value) in [
            ("time_zone", ":tz", &settings.time_zone),
            ("sms_help_text", ":help", &settings.sms_help_text),
        ] {
            match value {
                Some(v) => {
                    set.push(format!("{field} = {placeholder}"));
                    vals.push((placeholder, s(v)));
                }
                None => remove.push(field),
            }
        }
        match settings.low_balance_credits {
            Some(credits) => {
                set.push("low_balance_credits = :low".to_owned());
                vals.push((":low", n(credits)));
            }
            None => remove.push("low_balance_credits"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(id), "TENANT")))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_values(Some(values(vals)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn put_api_key(&self, api_key: &ApiKey) -> Result<(), StoreError> {
        self.put_key(api_key).await
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.find_key(hash).await
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.tenant_keys(tenant).await
    }

    async fn change_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        change: &KeyChange,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.change_key(tenant, id, change).await
    }

    async fn touch_api_key(
        &self,
        hash: &str,
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.touch_key(hash, at, since).await
    }

    async fn set_suspension(
        &self,
        tenant: &TenantId,
        suspension: Option<&Suspension>,
    ) -> Result<bool, StoreError> {
        self.suspend(tenant, suspension).await
    }
}

#[async_trait]
impl AccountStore for DynamoStore {
    async fn upsert_account(&self, account: &Account) -> Result<bool, StoreError> {
        let keys = self.sealing_keys().await?;
        let fields = account_values(account, &keys);
        let mut expr: Vec<String> = fields.iter().map(|(k, _)| format!("#{k} = :{k}")).collect();
        expr.push("#created_at = if_not_exists(#created_at, :created_at)".to_owned());
        let mut vals: HashMap<String, AttributeValue> = fields
            .iter()
            .map(|(k, v)| (format!(":{k}"), v.clone()))
            .collect();
        vals.insert(":created_at".into(), time_n(account.created_at));
        let mut nm: HashMap<String, String> = fields
            .iter()
            .map(|(k, _)| (format!("#{k}"), (*k).to_owned()))
            .collect();
        nm.insert("#created_at".into(), "created_at".into());
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                tenant_pk(&account.tenant_id),
                account_sk(&account.id),
            )))
            // A reconnect ends any refresh in flight: its tokens must not overwrite these.
            .update_expression(format!(
                "SET {} REMOVE refresh_lease, refresh_lease_until",
                expr.join(", ")
            ))
            .set_expression_attribute_names(Some(nm))
            .set_expression_attribute_values(Some(vals))
            // ALL_OLD, not UPDATED_OLD: an attribute set to its current value may not count
            // as "updated", but an old item with its `created_at` means the account existed.
            // (For an item the update creates, DynamoDB answers no old image; some emulators
            // answer its key alone.)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.attributes.is_none_or(|a| !a.contains_key("created_at")))
    }

    async fn get_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError> {
        match self.get(key(tenant_pk(tenant), account_sk(id))).await? {
            Some(item) => {
                let keys = self.keys_for_items([&item]).await?;
                account_from_item(&item, &keys).map(Some)
            }
            None => Ok(None),
        }
    }

    async fn delete_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant), account_sk(id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_error)?;
        match out.attributes.filter(|a| !a.is_empty()) {
            Some(item) => {
                let keys = self.keys_for_items([&item]).await?;
                account_from_item(&item, &keys).map(Some)
            }
            None => Ok(None),
        }
    }

    async fn list_accounts(&self, tenant: &TenantId) -> Result<Vec<Account>, StoreError> {
        let items = self
            .query_prefix(tenant_pk(tenant), "ACCOUNT#")
            .all()
            .await?;
        let keys = self.keys_for_items(&items).await?;
        items.iter().map(|i| account_from_item(i, &keys)).collect()
    }
}

#[async_trait]
impl PostStore for DynamoStore {
    async fn insert_post(&self, post: &Post) -> Result<(), StoreError> {
        self.put_new(post_to_item(post)).await
    }

    async fn get_post(&self, tenant: &TenantId, id: &PostId) -> Result<Option<Post>, StoreError> {
        let item = self.get_latest(key(tenant_pk(tenant), post_sk(id))).await?;
        item.as_ref().map(post_from_item).transpose()
    }

    async fn list_posts(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Post>, StoreError> {
        self.query_prefix(tenant_pk(tenant), "POST#")
            .backward()
            .page(cursor, limit)
            .await?
            .try_map(post_from_item)
    }

    async fn posts_between(
        &self,
        tenant: &TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Post>, StoreError> {
        self.calendar_page(tenant, from, to, cursor, limit).await
    }

    async fn replace_post(&self, post: &Post, expected_version: u64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(post_to_item(post)))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(expected_version))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl DispatchStore for DynamoStore {
    async fn due_posts(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PostRef>, StoreError> {
        self.posts_before("due", "due_pk", "due_sk", due_pk, now, limit)
            .await
    }

    async fn claim_for_dispatch(
        &self,
        post: &PostRef,
        now: OffsetDateTime,
        token: &str,
        lease_until: OffsetDateTime,
    ) -> Result<Option<Post>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(&post.tenant_id), post_sk(&post.post_id))))
            .update_expression(
                "SET #status = :dispatched, dispatch_token = :token, dispatch_lease = :lease, \
                 dispatch_sent = :false, due_sk = :due_sk, version = version + :one, updated_at = :now",
            )
            .condition_expression(
                "(#status = :scheduled AND scheduled_at <= :now) OR \
                 (#status = :dispatched AND dispatch_sent = :false AND dispatch_lease <= :now)",
            )
            .set_expression_attribute_names(Some(names(&[("#status", "status")])))
            .set_expression_attribute_values(Some(values(vec![
                (":dispatched", s(PostStatus::Dispatched.as_str())),
                (":scheduled", s(PostStatus::Scheduled.as_str())),
                (":token", s(token)),
                (":lease", time_n(lease_until)),
                (":false", AttributeValue::Bool(false)),
                (":due_sk", s(due_sk(lease_until, &post.tenant_id, &post.post_id))),
                (":one", n(1)),
                (":now", time_n(now)),
            ])))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(store_error);
        match result {
            Ok(out) => out.attributes.as_ref().map(post_from_item).transpose(),
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn confirm_dispatch(&self, post: &PostRef, token: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                tenant_pk(&post.tenant_id),
                post_sk(&post.post_id),
            )))
            .update_expression(
                "SET dispatch_sent = :true, version = version + :one REMOVE due_pk, due_sk",
            )
            .condition_expression("#status = :dispatched AND dispatch_token = :token")
            .set_expression_attribute_names(Some(names(&[("#status", "status")])))
            .set_expression_attribute_values(Some(values(vec![
                (":true", AttributeValue::Bool(true)),
                (":one", n(1)),
                (":dispatched", s(PostStatus::Dispatched.as_str())),
                (":token", s(token)),
            ])))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
