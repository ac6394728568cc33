//! A tenant's pause switch: one item per tenant.

use super::DynamoStore;
use super::items::*;
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use herald_domain::StoreError;
use herald_domain::ids::TenantId;
use herald_domain::ports::*;
use herald_domain::publishing::gates::Crisis;

#[async_trait]
impl CrisisStore for DynamoStore {
    async fn get_crisis(&self, tenant: &TenantId) -> Result<Option<Crisis>, StoreError> {
        self.get_latest(key(tenant_pk(tenant), CRISIS_SK))
            .await?
            .as_ref()
            .map(crisis_from_item)
            .transpose()
    }

    async fn put_crisis(&self, crisis: &Crisis) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(crisis_to_item(crisis)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete_crisis(&self, tenant: &TenantId) -> Result<Option<Crisis>, StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant), CRISIS_SK)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_error)?
            .attributes
            .as_ref()
            .map(crisis_from_item)
            .transpose()
    }
}
