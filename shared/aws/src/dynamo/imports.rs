//! Imports on the main table (`herald_domain::imports`): the import is `IMPORT#<id>` in the
//! tenant's partition (one JSON document and its `version`, each checkpoint a conditional
//! Put on that version); the rows that created nothing have a partition of their own,
//! `IMPORT#<tenant>#<import>`, sorted `ROW#<row:010>` so the report pages in row order.

use super::items::*;
use super::ops::write_all;
use super::store::{DynamoStore, values};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use herald_domain::StoreError;
use herald_domain::ids::{ImportId, TenantId};
use herald_domain::imports::{Import, ImportStore, RowIssue, row_cursor};
use herald_domain::ports::Page;
use serde::Serialize;
use serde::de::DeserializeOwned;

const IMPORT_PREFIX: &str = "IMPORT#";
const ROW_PREFIX: &str = "ROW#";
/// BatchWriteItem's limit.
const BATCH: usize = 25;

fn import_key(tenant: &TenantId, id: &ImportId) -> Item {
    key(tenant_pk(tenant), format!("{IMPORT_PREFIX}{id}"))
}

fn issues_pk(tenant: &TenantId, id: &ImportId) -> String {
    format!("IMPORT#{tenant}#{id}")
}

fn doc<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(s)
        .map_err(|e| StoreError::Invalid(format!("an import as JSON: {e}")))
}

fn from_doc<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let raw = Fields(item).str("doc")?;
    serde_json::from_str(&raw).map_err(|e| StoreError::Invalid(format!("stored import: {e}")))
}

fn import_item(import: &Import) -> Result<Item, StoreError> {
    let mut item = import_key(&import.tenant_id, &import.id);
    item.insert("type".into(), s("import"));
    item.insert("doc".into(), doc(import)?);
    item.insert("version".into(), n(import.version));
    Ok(item)
}

#[async_trait]
impl ImportStore for DynamoStore {
    async fn insert_import(&self, import: &Import) -> Result<(), StoreError> {
        self.put_new(import_item(import)?).await
    }

    async fn get_import(
        &self,
        tenant: &TenantId,
        id: &ImportId,
    ) -> Result<Option<Import>, StoreError> {
        self.get_latest(import_key(tenant, id))
            .await?
            .map(|item| from_doc(&item))
            .transpose()
    }

    async fn replace_import(&self, import: &Import, expected: u64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(import_item(import)?))
            .condition_expression("version = :expected")
            .set_expression_attribute_values(Some(values(vec![(":expected", n(expected))])))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn list_imports(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Import>, StoreError> {
        let page = self
            .query_prefix(tenant_pk(tenant), IMPORT_PREFIX)
            .backward()
            .page(cursor, limit)
            .await?;
        Ok(Page {
            items: page.items.iter().map(from_doc).collect::<Result<_, _>>()?,
            cursor: page.cursor,
        })
    }

    async fn put_row_issues(
        &self,
        tenant: &TenantId,
        id: &ImportId,
        issues: &[RowIssue],
        created: &[u64],
    ) -> Result<(), StoreError> {
        let row_key = |row: u64| {
            key(
                issues_pk(tenant, id),
                format!("{ROW_PREFIX}{}", row_cursor(row)),
            )
        };
        let mut requests = Vec::with_capacity(issues.len() + created.len());
        for row in created {
            let delete = DeleteRequest::builder()
                .set_key(Some(row_key(*row)))
                .build()
                .map_err(super::ops::build_error)?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        for issue in issues {
            let mut item = row_key(issue.row);
            item.insert("type".into(), s("import_row"));
            item.insert("doc".into(), doc(issue)?);
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(super::ops::build_error)?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let batch: Vec<WriteRequest> = requests.by_ref().take(BATCH).collect();
            write_all(&self.client, &self.table, batch).await?;
        }
        Ok(())
    }

    async fn row_issues(
        &self,
        tenant: &TenantId,
        id: &ImportId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RowIssue>, StoreError> {
        let page = self
            .query_prefix(issues_pk(tenant, id), ROW_PREFIX)
            .page(cursor, limit)
            .await?;
        Ok(Page {
            items: page.items.iter().map(from_doc).collect::<Result<_, _>>()?,
            cursor: page.cursor,
        })
    }
}
