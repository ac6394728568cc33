//! Connect links and the authorisations under way (`herald_domain::connect`), one item each
//! under `CONNECT#<sha256>`: `LINK` (an hour) and `STATE` (ten minutes, taken once with a
//! DeleteItem that answers the old item, so two callbacks cannot both have it). Expiry is
//! decided on `ends_at` (ms) in code; TTL (`expires_at`, s) only clears them away.

use super::DynamoStore;
use super::items::*;
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::ReturnValue;
use herald_domain::StoreError;
use herald_domain::connect::{
    Choice, ConnectLink, ConnectStore, PendingAuthorization, PendingChoice,
};
use herald_domain::ids::{ApiKeyId, TenantId};
use herald_domain::model::Platform;
use herald_domain::secrets::token_crypto::{TokenField, TokenKeys};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;

fn connect_key(id: &str, sk: &str) -> Item {
    key(format!("CONNECT#{id}"), sk)
}

fn platform(f: &Fields<'_>) -> Result<Platform, StoreError> {
    Platform::parse(&f.str("platform")?)
        .ok_or_else(|| StoreError::Invalid("connect item with an unknown platform".into()))
}

#[async_trait]
impl ConnectStore for DynamoStore {
    async fn put_link(&self, link: &ConnectLink) -> Result<(), StoreError> {
        let mut item = connect_key(&link.id, "LINK");
        item.extend(HashMap::from([
            ("tenant_id".to_owned(), s(&link.tenant_id.0)),
            ("platform".to_owned(), s(link.platform.as_str())),
            ("created_by".to_owned(), s(&link.created_by.0)),
            ("created_at".to_owned(), time_n(link.created_at)),
            ("ends_at".to_owned(), time_n(link.expires_at)),
            ("expires_at".to_owned(), ttl_n(link.expires_at)),
        ]));
        self.put_new(item).await
    }

    async fn get_link(&self, id: &str) -> Result<Option<ConnectLink>, StoreError> {
        let Some(item) = self.get_latest(connect_key(id, "LINK")).await? else {
            return Ok(None);
        };
        let f = Fields(&item);
        Ok(Some(ConnectLink {
            id: id.to_owned(),
            tenant_id: TenantId(f.str("tenant_id")?),
            platform: platform(&f)?,
            created_by: ApiKeyId(f.str("created_by")?),
            created_at: f.time("created_at")?,
            expires_at: f.time("ends_at")?,
        }))
    }

    async fn put_authorization(&self, pending: &PendingAuthorization) -> Result<(), StoreError> {
        let mut item = connect_key(&pending.id, "STATE");
        item.extend(HashMap::from([
            ("tenant_id".to_owned(), s(&pending.tenant_id.0)),
            ("platform".to_owned(), s(pending.platform.as_str())),
            ("created_by".to_owned(), s(&pending.created_by.0)),
            // Useless without the code, which only the browser and the platform see.
            ("verifier".to_owned(), s(pending.verifier.expose_secret())),
            ("redirect_uri".to_owned(), s(&pending.redirect_uri)),
            ("ends_at".to_owned(), time_n(pending.expires_at)),
            ("expires_at".to_owned(), ttl_n(pending.expires_at)),
        ]));
        self.put_new(item).await
    }

    async fn take_authorization(
        &self,
        id: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let Some(item) = self.take(connect_key(id, "STATE")).await? else {
            return Ok(None);
        };
        let f = Fields(&item);
        Ok(Some(PendingAuthorization {
            id: id.to_owned(),
            tenant_id: TenantId(f.str("tenant_id")?),
            platform: platform(&f)?,
            created_by: ApiKeyId(f.str("created_by")?),
            verifier: SecretString::from(f.str("verifier")?),
            redirect_uri: f.str("redirect_uri")?,
            expires_at: f.time("ends_at")?,
        }))
    }

    async fn put_choice(&self, pending: &PendingChoice) -> Result<(), StoreError> {
        let keys = self.sealing_keys().await?;
        let seal = |owner: &str, token: &SecretString| {
            keys.seal_for(&pending.tenant_id, owner, TokenField::PendingConnect, token)
        };
        let choices = pending
            .choices
            .iter()
            .map(|c| {
                let mut m = HashMap::from([
                    ("external_id".to_owned(), s(&c.external_id)),
                    (
                        "token".to_owned(),
                        s(seal(
                            &format!("{}:{}", pending.id, c.external_id),
                            &c.access_token,
                        )),
                    ),
                ]);
                if let Some(name) = &c.name {
                    m.insert("name".into(), s(name));
                }
                AttributeValue::M(m)
            })
            .collect();
        let mut item = connect_key(&pending.id, "CHOICE");
        item.extend(HashMap::from([
            ("tenant_id".to_owned(), s(&pending.tenant_id.0)),
            ("platform".to_owned(), s(pending.platform.as_str())),
            ("created_by".to_owned(), s(&pending.created_by.0)),
            ("choices".to_owned(), AttributeValue::L(choices)),
            ("ends_at".to_owned(), time_n(pending.expires_at)),
            ("expires_at".to_owned(), ttl_n(pending.expires_at)),
        ]));
        if let Some(refresh) = &pending.refresh_token {
            item.insert("refresh_token".into(), s(seal(&pending.id, refresh)));
        }
        if let Some(at) = pending.token_expires_at {
            item.insert("token_expires_at".into(), time_n(at));
        }
        self.put_new(item).await
    }

    async fn take_choice(&self, id: &str) -> Result<Option<PendingChoice>, StoreError> {
        let Some(item) = self.take(connect_key(id, "CHOICE")).await? else {
            return Ok(None);
        };
        let keys = self.sealing_keys().await?;
        choice_from_item(id, &item, &keys).map(Some)
    }
}

fn choice_from_item(id: &str, item: &Item, keys: &TokenKeys) -> Result<PendingChoice, StoreError> {
    let f = Fields(item);
    let tenant_id = TenantId(f.str("tenant_id")?);
    let open = |owner: &str, sealed: &str| {
        keys.open_for(&tenant_id, owner, TokenField::PendingConnect, sealed)
            .map_err(|e| StoreError::Invalid(format!("a pending connect's token: {e}")))
    };
    let mut choices = Vec::new();
    for entry in f.list("choices").into_iter().flatten() {
        let AttributeValue::M(m) = entry else {
            return Err(StoreError::Invalid(
                "a pending connect's choice is not a map".into(),
            ));
        };
        let c = Fields(m);
        let external_id = c.str("external_id")?;
        choices.push(Choice {
            access_token: open(&format!("{id}:{external_id}"), &c.str("token")?)?,
            name: c.opt_str("name"),
            external_id,
        });
    }
    Ok(PendingChoice {
        id: id.to_owned(),
        platform: platform(&f)?,
        created_by: ApiKeyId(f.str("created_by")?),
        choices,
        refresh_token: f
            .opt_str("refresh_token")
            .map(|sealed| open(id, &sealed))
            .transpose()?,
        token_expires_at: f.opt_time("token_expires_at"),
        expires_at: f.time("ends_at")?,
        tenant_id,
    })
}

impl DynamoStore {
    /// Deletes the item and answers it as it was: of callers racing for it, one gets it.
    async fn take(&self, key: Item) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_error)?
            .attributes)
    }
}
