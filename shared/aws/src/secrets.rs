//! Secrets Manager behind the domain's [`SecretStore`]: what rotation and the verifiers'
//! cache need, and nothing else. Values never reach a log line or an error message.

use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use herald_domain::StoreError;
use herald_domain::secrets::{
    KIND_TAG, PENDING, RotationGate, SecretKind, SecretMeta, SecretStore, SecretVersion,
};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct SecretsManagerStore {
    client: crate::Lazy<Client>,
}

impl SecretsManagerStore {
    pub fn new(client: impl Into<crate::Lazy<Client>>) -> Self {
        Self {
            client: client.into(),
        }
    }
}

fn to_time(t: Option<&aws_smithy_types::DateTime>) -> OffsetDateTime {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `None` for a version or stage that does not exist; every other failure is an error.
fn not_found_is_none<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<Option<T>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(store_error(e)),
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn describe(&self, secret: &str) -> Result<SecretMeta, StoreError> {
        let described = self
            .client
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .map_err(store_error)?;
        let kind = described
            .tags()
            .iter()
            .find(|t| t.key() == Some(KIND_TAG))
            .and_then(|t| t.value())
            .and_then(SecretKind::parse);
        let mut versions = Vec::new();
        let mut pages = self
            .client
            .list_secret_version_ids()
            .secret_id(secret)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(store_error)?;
            versions.extend(page.versions().iter().filter_map(|v| {
                Some(SecretVersion {
                    id: v.version_id()?.to_owned(),
                    stages: v.version_stages().to_vec(),
                    created_at: to_time(v.created_date()),
                })
            }));
        }
        Ok(SecretMeta { kind, versions })
    }

    async fn value(&self, secret: &str, version: &str) -> Result<Option<SecretString>, StoreError> {
        let out = not_found_is_none(
            self.client
                .get_secret_value()
                .secret_id(secret)
                .version_id(version)
                .send()
                .await,
        )?;
        Ok(out.and_then(|o| o.secret_string().map(SecretString::from)))
    }

    async fn staged_value(
        &self,
        secret: &str,
        stage: &str,
    ) -> Result<Option<(SecretString, OffsetDateTime)>, StoreError> {
        let out = not_found_is_none(
            self.client
                .get_secret_value()
                .secret_id(secret)
                .version_stage(stage)
                .send()
                .await,
        )?;
        Ok(out.and_then(|o| {
            let value = SecretString::from(o.secret_string()?);
            Some((value, to_time(o.created_date())))
        }))
    }

    async fn put_pending(
        &self,
        secret: &str,
        token: &str,
        value: &SecretString,
    ) -> Result<(), StoreError> {
        self.client
            .put_secret_value()
            .secret_id(secret)
            .client_request_token(token)
            .secret_string(value.expose_secret())
            .version_stages(PENDING)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn move_stage(
        &self,
        secret: &str,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), StoreError> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret)
            .version_stage(stage)
            .set_move_to_version_id(to.map(str::to_owned))
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// Holds a rotation of the token-encryption key until the sweep has re-sealed every stored
/// token and webhook secret under its current value: the ring keeps only the current and the
/// previous key, so a second rotation before that would strand what is still under the older
/// one. Secrets Manager records the refusal and tries again at its next schedule (or an
/// operator retries `rotate-secret` once the reconciler has swept, within minutes).
#[derive(Debug, Clone)]
pub struct SweptBeforeRotation {
    /// Reads the sweep marker only: no token vault needed.
    pub store: crate::dynamo::DynamoStore,
    /// The token-encryption key secret (`HERALD_TOKEN_KEY_SECRET`: a name or an ARN).
    pub token_key_secret: String,
}

#[async_trait]
impl RotationGate for SweptBeforeRotation {
    async fn hold(
        &self,
        secret: &str,
        current: &SecretString,
    ) -> Result<Option<String>, StoreError> {
        if secret_name(secret) != secret_name(&self.token_key_secret) {
            return Ok(None);
        }
        let bytes = SecretKind::Key256
            .key_bytes(current)
            .map_err(StoreError::Invalid)?;
        let id = herald_domain::secrets::token_crypto::key_id(&bytes);
        Ok((!self.store.tokens_swept_under(&id).await?).then(|| {
            format!(
                "the re-seal sweep has not yet moved every stored token and webhook secret to the \
                 current key {id}; rotating again would strand them (the reconciler finishes the \
                 sweep within minutes)"
            )
        }))
    }
}

/// A secret's name, from its name or its ARN (`arn:…:secret:<name>-<6 characters>`).
fn secret_name(id: &str) -> &str {
    match id.split_once(":secret:") {
        Some((_, rest)) if id.starts_with("arn:") => rest
            .rsplit_once('-')
            .filter(|(_, suffix)| suffix.len() == 6)
            .map_or(rest, |(name, _)| name),
        _ => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_named_alike_by_name_and_by_arn() {
        for id in [
            "herald-TokenEncryptionKeySecret",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:herald-TokenEncryptionKeySecret-AbC123",
        ] {
            assert_eq!(secret_name(id), "herald-TokenEncryptionKeySecret");
        }
        assert_eq!(secret_name("a-b"), "a-b");
    }
}
