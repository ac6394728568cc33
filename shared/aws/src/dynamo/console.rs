//! Console sessions: `CONSOLE#<sha256 of the cookie>` / `SESSION`, one item each, read
//! strongly consistent, deleted at sign-out and by TTL (`expires_at`, seconds) after expiry.
//! Expiry is decided on `ends_at` (milliseconds) in code, since TTL deletes late.

use super::DynamoStore;
use super::items::*;
use crate::errors::store_error;
use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::console::{Session, SessionStore, Subject};
use std::collections::HashMap;

const SESSION_SK: &str = "SESSION";

fn session_key(id: &str) -> Item {
    key(format!("CONSOLE#{id}"), SESSION_SK)
}

fn to_item(session: &Session) -> Item {
    let mut item = session_key(&session.id);
    let (kind, digest_field, digest) = match &session.subject {
        Subject::Key { key_hash } => ("key", "key_hash", key_hash),
        Subject::Operator { token_digest } => ("operator", "token_digest", token_digest),
    };
    item.extend(HashMap::from([
        ("subject".to_owned(), s(kind)),
        (digest_field.to_owned(), s(digest)),
        ("csrf".to_owned(), s(&session.csrf)),
        ("created_at".to_owned(), time_n(session.created_at)),
        ("ends_at".to_owned(), time_n(session.expires_at)),
        ("expires_at".to_owned(), ttl_n(session.expires_at)),
    ]));
    item
}

fn from_item(id: &str, item: &Item) -> Result<Session, StoreError> {
    let f = Fields(item);
    let subject = match f.str("subject")?.as_str() {
        "key" => Subject::Key {
            key_hash: f.str("key_hash")?,
        },
        "operator" => Subject::Operator {
            token_digest: f.str("token_digest")?,
        },
        other => {
            return Err(StoreError::Invalid(format!(
                "console session subject {other:?}"
            )));
        }
    };
    Ok(Session {
        id: id.to_owned(),
        subject,
        csrf: f.str("csrf")?,
        created_at: f.time("created_at")?,
        expires_at: f.time("ends_at")?,
    })
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn put_session(&self, session: &Session) -> Result<(), StoreError> {
        self.put_new(to_item(session)).await
    }

    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.get_latest(session_key(id))
            .await?
            .as_ref()
            .map(|item| from_item(id, item))
            .transpose()
    }

    async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(session_key(id)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
