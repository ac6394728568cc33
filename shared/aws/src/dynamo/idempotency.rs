//! Idempotency records in their own table (`pk` = `<tenant>#<key>`, TTL on `expires_at`).
//! `owner` names the credential that wrote the record and `sealed_body` holds the response
//! sealed by the token vault. Records written before both existed carry `response_body` in
//! plaintext and no owner: they are never replayed, expire within 24 hours, and
//! `herald idempotency purge-legacy` deletes them at once.

use super::items::{Fields, Item, n, s};
use super::ops::AllItems;
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use herald_domain::StoreError;
use herald_domain::clock::epoch_millis;
use herald_domain::idempotency::{
    IdempotencyPersistence, IdempotencyRecord, PutRejected, RecordState, SealedResponse,
};
use std::collections::HashMap;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct DynamoIdempotency {
    client: crate::Lazy<Client>,
    table: String,
}

impl DynamoIdempotency {
    pub fn new(client: impl Into<crate::Lazy<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
        }
    }

    /// Deletes the records written before responses were sealed (they hold created keys and
    /// signing secrets in plaintext): once, after upgrading. Returns how many went.
    pub async fn purge_legacy(&self) -> Result<usize, StoreError> {
        let items = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("attribute_exists(response_body) OR attribute_not_exists(#owner)")
            .expression_attribute_names("#owner", "owner")
            .projection_expression("pk")
            .all_items()
            .await?;
        for item in &items {
            self.delete(&Fields(item).str("pk")?).await?;
        }
        Ok(items.len())
    }
}

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

fn to_item(r: &IdempotencyRecord) -> Item {
    let mut item = HashMap::from([
        ("pk".to_owned(), s(&r.id)),
        ("fingerprint".to_owned(), s(&r.fingerprint)),
        // Seconds: the unit DynamoDB's TTL reads.
        ("expires_at".to_owned(), n(r.expires_at.unix_timestamp())),
        (
            "in_progress_expires_at".to_owned(),
            n(epoch_millis(r.in_progress_expires_at)),
        ),
    ]);
    if let Some(owner) = &r.owner {
        item.insert("owner".into(), s(owner));
    }
    match &r.state {
        RecordState::InProgress => {
            item.insert("state".into(), s(IN_PROGRESS));
        }
        RecordState::Completed(resp) => {
            item.insert("state".into(), s(COMPLETED));
            item.insert("response_status".into(), n(resp.status));
            item.insert(
                "response_headers".into(),
                AttributeValue::L(
                    resp.headers
                        .iter()
                        .map(|(k, v)| AttributeValue::L(vec![s(k), s(v)]))
                        .collect(),
                ),
            );
            if let Some(body) = &resp.body {
                item.insert("sealed_body".into(), s(body));
            }
        }
    }
    item
}

fn from_item(item: &Item) -> Result<IdempotencyRecord, StoreError> {
    let f = Fields(item);
    let bad =
        |what: &str| StoreError::Invalid(format!("idempotency record has a malformed `{what}`"));
    let state = match f.str("state")?.as_str() {
        IN_PROGRESS => RecordState::InProgress,
        COMPLETED => {
            let headers = item
                .get("response_headers")
                .and_then(|v| v.as_l().ok())
                .ok_or_else(|| bad("response_headers"))?
                .iter()
                .map(|pair| match pair.as_l().map(Vec::as_slice) {
                    Ok([AttributeValue::S(k), AttributeValue::S(v)]) => Ok((k.clone(), v.clone())),
                    _ => Err(bad("response_headers")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            RecordState::Completed(SealedResponse {
                status: u16::try_from(f.num("response_status")?)
                    .map_err(|_| bad("response_status"))?,
                headers,
                body: item.get("sealed_body").and_then(|v| v.as_s().ok()).cloned(),
            })
        }
        _ => return Err(bad("state")),
    };
    Ok(IdempotencyRecord {
        id: f.str("pk")?,
        owner: item.get("owner").and_then(|v| v.as_s().ok()).cloned(),
        fingerprint: f.str("fingerprint")?,
        state,
        expires_at: OffsetDateTime::from_unix_timestamp(f.num("expires_at")?)
            .map_err(|_| bad("expires_at"))?,
        in_progress_expires_at: f.time("in_progress_expires_at")?,
    })
}

#[async_trait]
impl IdempotencyPersistence for DynamoIdempotency {
    async fn put_in_progress(
        &self,
        record: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> Result<(), PutRejected> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            // Free when absent, expired (TTL deletion is lazy: decide here), or abandoned.
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at <= :now_s OR \
                 (#state = :in_progress AND in_progress_expires_at <= :now_ms)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now_s", n(now.unix_timestamp()))
            .expression_attribute_values(":now_ms", n(epoch_millis(now)))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            // The record that holds the key comes back with the failure: no extra read.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let PutItemError::ConditionalCheckFailedException(ccf) = e.err() else {
                    return Err(PutRejected::Store(StoreError::Conflict));
                };
                match ccf.item() {
                    Some(item) => Err(PutRejected::Exists(Box::new(
                        from_item(item).map_err(PutRejected::Store)?,
                    ))),
                    None => Err(PutRejected::Store(StoreError::Invalid(
                        "the failed conditional write returned no item".into(),
                    ))),
                }
            }
            Err(e) => Err(PutRejected::Store(store_error(e))),
        }
    }

    async fn save_completed(&self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(id))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
