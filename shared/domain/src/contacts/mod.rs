//! Contacts: the people a tenant's SMS campaigns may text. A number is kept in E.164 (parsed
//! and checked by the `phonenumber` crate, libphonenumber's metadata), once per tenant; its
//! consent is explicit (`opted_in` or `opted_out`, each with when and where from), and an
//! erased contact that had opted out leaves only a one-way hash of its number behind, so the
//! number comes back opted out if it is ever added again.

#[cfg(feature = "memory")]
pub mod memory;
mod service;
#[cfg(test)]
mod tests;

pub(crate) use service::check_tags;
pub use service::{ConsentInput, ContactError, ContactService, ContactUpdate, NewContact};

use crate::error::StoreError;
use crate::ids::{ContactId, TenantId};
use crate::ports::Page;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// Tags and custom fields per contact, and the lengths of each, at most.
pub const MAX_TAGS: usize = 50;
pub const MAX_FIELDS: usize = 50;
pub const MAX_NAME: usize = 200;
pub const MAX_TAG: usize = 64;
pub const MAX_FIELD_NAME: usize = 64;
pub const MAX_FIELD_VALUE: usize = 500;

/// Whether a contact may be texted, and since when, on whose word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Consent {
    /// Never texted until it opts in.
    Unknown,
    OptedIn {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        source: String,
    },
    OptedOut {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        source: String,
    },
}

impl Consent {
    pub fn status(&self) -> &'static str {
        match self {
            Consent::Unknown => "unknown",
            Consent::OptedIn { .. } => "opted_in",
            Consent::OptedOut { .. } => "opted_out",
        }
    }

    pub fn may_text(&self) -> bool {
        matches!(self, Consent::OptedIn { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: ContactId,
    pub tenant_id: TenantId,
    /// E.164, e.g. `+14155550123`.
    pub phone: String,
    pub name: Option<String>,
    pub tags: BTreeSet<String>,
    /// Custom fields for personalisation (`{{first_name}}`).
    pub fields: BTreeMap<String, String>,
    pub consent: Consent,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The one-way trace an erased, opted-out number leaves: SHA-256 of the tenant and the number.
pub fn suppression_hash(tenant: &TenantId, phone: &str) -> String {
    let digest = Sha256::digest(format!("{tenant}:{phone}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The number as E.164: `raw` in international form (`+44 20 7946 0958`), or national with
/// `region` (ISO 3166 alpha-2, `GB`). A number that libphonenumber does not know as valid is
/// refused with why.
pub fn normalize(raw: &str, region: Option<&str>) -> Result<String, String> {
    let country = match region {
        None => None,
        Some(r) => Some(
            r.to_ascii_uppercase()
                .parse::<phonenumber::country::Id>()
                .map_err(|_| format!("{r:?} is not an ISO 3166 region code such as US or GB"))?,
        ),
    };
    let number = phonenumber::parse(country, raw.trim()).map_err(|_| {
        "is not a phone number; give it as +<country code><number>, or with `region`".to_owned()
    })?;
    if !phonenumber::is_valid(&number) {
        return Err("is not a valid number for its country".into());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Why an insert did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// The tenant already has this number, as this contact.
    Duplicate(ContactId),
}

#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Writes the contact and claims its number for the tenant, both or neither.
    async fn insert_contact(&self, contact: &Contact) -> Result<Inserted, StoreError>;
    async fn get_contact(
        &self,
        tenant: &TenantId,
        id: &ContactId,
    ) -> Result<Option<Contact>, StoreError>;
    /// Oldest first.
    async fn list_contacts(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Contact>, StoreError>;
    /// Writes `contact` (its version already the next) if the stored one is still
    /// `expected`; `Conflict` otherwise. The number never changes.
    async fn replace_contact(&self, contact: &Contact, expected: u64) -> Result<(), StoreError>;
    /// Deletes the contact and frees its number; when it had opted out, keeps
    /// [`suppression_hash`] of the number (with when). `None` when there is no such contact.
    async fn erase_contact(
        &self,
        tenant: &TenantId,
        id: &ContactId,
        at: OffsetDateTime,
    ) -> Result<Option<Contact>, StoreError>;
    /// The tenant's contact with this number (E.164), if it has one.
    async fn contact_by_phone(
        &self,
        tenant: &TenantId,
        phone: &str,
    ) -> Result<Option<ContactId>, StoreError>;
    /// Suppresses a number that is no contact (it texted STOP): a contact later added with
    /// it comes back opted out. The first time is kept.
    async fn suppress(
        &self,
        tenant: &TenantId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// When the number was suppressed (erased while opted out, or STOP from no contact), if
    /// it was.
    async fn suppressed_since(
        &self,
        tenant: &TenantId,
        hash: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError>;
}
