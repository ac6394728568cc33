//! Whole tables behind the domain's [`Tables`] port (backups, tenant erasure): paginated
//! scans and batch writes, and the conversion between items and DynamoDB's typed JSON
//! (`{"S": "…"}`, `{"N": "…"}`, binaries in base64), which keeps every value exactly.

use super::ops::write_all;
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_domain::StoreError;
use herald_domain::backup::{Item, ScanPage, Tables};
use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct DynamoTables {
    client: crate::Lazy<Client>,
}

impl DynamoTables {
    pub fn new(client: impl Into<crate::Lazy<Client>>) -> Self {
        Self {
            client: client.into(),
        }
    }
}

#[async_trait]
impl Tables for DynamoTables {
    async fn scan_page(&self, table: &str, start: Option<Item>) -> Result<ScanPage, StoreError> {
        let start = start
            .as_ref()
            .map(item_from_json)
            .transpose()
            .map_err(StoreError::Invalid)?;
        let out = self
            .client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        Ok(ScanPage {
            items: out
                .items()
                .iter()
                .map(item_to_json)
                .collect::<Result<_, _>>()?,
            next: out.last_evaluated_key().map(item_to_json).transpose()?,
        })
    }

    async fn is_empty(&self, table: &str) -> Result<bool, StoreError> {
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(table)
                .limit(1)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            if !out.items().is_empty() {
                return Ok(false);
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(true),
            }
        }
    }

    async fn put_batch(&self, table: &str, items: &[Item]) -> Result<(), StoreError> {
        let requests = items
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item_from_json(item).map_err(StoreError::Invalid)?))
                    .build()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        write_all(&self.client, table, requests).await
    }

    async fn delete_batch(&self, table: &str, keys: &[Item]) -> Result<(), StoreError> {
        let requests = keys
            .iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(item_from_json(key).map_err(StoreError::Invalid)?))
                    .build()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        write_all(&self.client, table, requests).await
    }

    fn check_item(&self, item: &Item) -> Result<(), String> {
        if !matches!(item.get("pk"), Some(Value::Object(v)) if v.contains_key("S")) {
            return Err("it has no string `pk`".into());
        }
        item_from_json(item).map(|_| ())
    }
}

/// An item in typed JSON.
pub fn item_to_json(item: &HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    item.iter()
        .map(|(name, value)| Ok((name.clone(), value_to_json(value)?)))
        .collect()
}

fn value_to_json(value: &AttributeValue) -> Result<Value, StoreError> {
    let b64 = |b: &Blob| Value::String(STANDARD.encode(b.as_ref()));
    Ok(match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(b) => json!({ "NULL": b }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => json!({ "BS": v.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::L(v) => {
            json!({ "L": v.iter().map(value_to_json).collect::<Result<Vec<_>, _>>()? })
        }
        AttributeValue::M(m) => json!({ "M": item_to_json(m)? }),
        _ => {
            return Err(StoreError::Invalid(
                "an attribute of a type this release does not know".into(),
            ));
        }
    })
}

/// An item from typed JSON; the error says which attribute is wrong.
pub fn item_from_json(item: &Item) -> Result<HashMap<String, AttributeValue>, String> {
    item.iter()
        .map(|(name, value)| {
            value_from_json(value)
                .map(|v| (name.clone(), v))
                .map_err(|why| format!("attribute `{name}`: {why}"))
        })
        .collect()
}

fn value_from_json(value: &Value) -> Result<AttributeValue, String> {
    let Some((tag, inner)) = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Err("not a typed value (one of {\"S\": …}, {\"N\": …}…)".into());
    };
    let text = |v: &Value| v.as_str().map(str::to_owned).ok_or("not a string");
    let texts = |v: &Value| -> Result<Vec<String>, String> {
        v.as_array()
            .ok_or("not a list")?
            .iter()
            .map(|e| text(e).map_err(str::to_owned))
            .collect()
    };
    let blob = |v: &Value| -> Result<Blob, String> {
        STANDARD
            .decode(v.as_str().ok_or("not a string")?)
            .map(Blob::new)
            .map_err(|_| "not base64".to_owned())
    };
    let number = |n: String| -> Result<String, String> {
        n.parse::<f64>()
            .map(|_| n.clone())
            .map_err(|_| format!("{n:?} is not a number"))
    };
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(text(inner)?),
        "N" => AttributeValue::N(number(text(inner)?)?),
        "B" => AttributeValue::B(blob(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or("not a boolean")?),
        "NULL" => AttributeValue::Null(inner.as_bool().ok_or("not a boolean")?),
        "SS" => AttributeValue::Ss(texts(inner)?),
        "NS" => AttributeValue::Ns(
            texts(inner)?
                .into_iter()
                .map(number)
                .collect::<Result<_, _>>()?,
        ),
        "BS" => AttributeValue::Bs(
            inner
                .as_array()
                .ok_or("not a list")?
                .iter()
                .map(blob)
                .collect::<Result<_, _>>()?,
        ),
        "L" => AttributeValue::L(
            inner
                .as_array()
                .ok_or("not a list")?
                .iter()
                .map(value_from_json)
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(inner.as_object().ok_or("not a map")?)?),
        other => return Err(format!("unknown type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_exactly() {
        let item: HashMap<String, AttributeValue> = HashMap::from([
            ("pk".into(), AttributeValue::S("TENANT#t".into())),
            (
                "n".into(),
                AttributeValue::N("12345678901234567890.5".into()),
            ),
            ("b".into(), AttributeValue::B(Blob::new(vec![0, 255, 7]))),
            ("t".into(), AttributeValue::Bool(true)),
            ("z".into(), AttributeValue::Null(true)),
            (
                "ss".into(),
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
            ),
            (
                "ns".into(),
                AttributeValue::Ns(vec!["1".into(), "-2.5".into()]),
            ),
            ("bs".into(), AttributeValue::Bs(vec![Blob::new(vec![1])])),
            (
                "l".into(),
                AttributeValue::L(vec![
                    AttributeValue::S("x".into()),
                    AttributeValue::N("1".into()),
                ]),
            ),
            (
                "m".into(),
                AttributeValue::M(HashMap::from([("k".into(), AttributeValue::S("v".into()))])),
            ),
        ]);
        let json = item_to_json(&item).unwrap();
        let line = serde_json::to_string(&json).unwrap();
        let back: Item = serde_json::from_str(&line).unwrap();
        assert_eq!(item_from_json(&back).unwrap(), item);
    }

    #[test]
    fn malformed_values_are_named() {
        let bad = |v: Value| {
            let item: Item = serde_json::from_value(json!({"pk": {"S": "p"}, "a": v})).unwrap();
            DynamoTables::new(Client::from_conf(
                aws_sdk_dynamodb::Config::builder()
                    .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                    .build(),
            ))
            .check_item(&item)
            .unwrap_err()
        };
        assert!(bad(json!({"N": "twelve"})).contains("attribute `a`"));
        assert!(bad(json!({"S": 1})).contains("not a string"));
        assert!(bad(json!({"X": "1"})).contains("unknown type"));
        assert!(bad(json!({"S": "a", "N": "1"})).contains("not a typed value"));
        assert!(bad(json!({"B": "***"})).contains("not base64"));
        assert!(bad(json!({"M": {"k": "v"}})).contains("attribute `k`"));
    }
}
