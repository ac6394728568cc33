//! The contact operations: every input checked (one error lists every problem), numbers
//! normalised once per tenant, consent changes and erasures audited without the number.

use super::{
    Consent, Contact, ContactStore, Inserted, MAX_FIELD_NAME, MAX_FIELD_VALUE, MAX_FIELDS,
    MAX_NAME, MAX_TAG, MAX_TAGS, normalize, suppression_hash,
};
use crate::audit::AuditEntry;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{ContactId, TenantId};
use crate::ports::{AuditLog, Page};
use crate::publishing::posts::FieldError;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Tries of a change that keeps losing to concurrent ones before giving up.
const CONFLICT_RETRIES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error("contact not found")]
    NotFound,
    /// The tenant already has this number.
    #[error("the tenant already has this number as contact {0}")]
    Duplicate(ContactId),
    #[error("the contact kept changing; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Consent as a request states it: in or out, and where that came from.
#[derive(Debug, Clone)]
pub struct ConsentInput {
    pub opted_in: bool,
    /// e.g. `web_form`, `paper`, `keyword:START`.
    pub source: String,
}

#[derive(Debug, Clone, Default)]
pub struct NewContact {
    pub phone: String,
    /// For a national number: its ISO 3166 region (`US`).
    pub region: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub fields: BTreeMap<String, String>,
    pub consent: Option<ConsentInput>,
}

/// A change: absent parts stay as they are (`name: Some(None)` clears the name).
#[derive(Debug, Clone, Default)]
pub struct ContactUpdate {
    pub name: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub fields: Option<BTreeMap<String, String>>,
    pub consent: Option<ConsentInput>,
}

#[derive(Clone)]
pub struct ContactService {
    pub store: Arc<dyn ContactStore>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

crate::debug_fields!(ContactService);

fn check_name(name: Option<&str>, problems: &mut Vec<FieldError>) {
    if let Some(n) = name
        && (n.trim().is_empty() || n.chars().count() > MAX_NAME)
    {
        problems.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME} characters, not only spaces"),
        ));
    }
}

pub(crate) fn check_tags(tags: &[String], problems: &mut Vec<FieldError>) -> BTreeSet<String> {
    if tags.len() > MAX_TAGS {
        problems.push(FieldError::new("tags", format!("at most {MAX_TAGS}")));
    }
    for (i, tag) in tags.iter().enumerate() {
        let ok = !tag.is_empty()
            && tag.len() <= MAX_TAG
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !ok {
            problems.push(FieldError::new(
                format!("tags[{i}]"),
                format!("must be 1 to {MAX_TAG} letters, digits or - _ . :"),
            ));
        }
    }
    tags.iter().cloned().collect()
}

fn check_fields(fields: &BTreeMap<String, String>, problems: &mut Vec<FieldError>) {
    if fields.len() > MAX_FIELDS {
        problems.push(FieldError::new("fields", format!("at most {MAX_FIELDS}")));
    }
    for (name, value) in fields {
        let name_ok = !name.is_empty()
            && name.len() <= MAX_FIELD_NAME
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            problems.push(FieldError::new(
                "fields",
                format!("{name:?}: a field's name is 1 to {MAX_FIELD_NAME} letters, digits or _"),
            ));
        }
        if value.chars().count() > MAX_FIELD_VALUE {
            problems.push(FieldError::new(
                format!("fields.{name}"),
                format!("at most {MAX_FIELD_VALUE} characters"),
            ));
        }
    }
}

fn check_consent(consent: Option<&ConsentInput>, problems: &mut Vec<FieldError>) {
    if let Some(c) = consent
        && (c.source.trim().is_empty() || c.source.len() > 100)
    {
        problems.push(FieldError::new(
            "consent.source",
            "says where the consent came from: 1 to 100 characters",
        ));
    }
}

impl ContactService {
    pub async fn create(
        &self,
        tenant: &TenantId,
        actor: &str,
        new: NewContact,
    ) -> Result<Contact, ContactError> {
        self.create_as(tenant, actor, new, ContactId::generate())
            .await
    }

    /// [`Self::create`] with the contact's id given: an import derives it from its file and
    /// row, so a row worked twice finds its own contact as the duplicate.
    pub async fn create_as(
        &self,
        tenant: &TenantId,
        actor: &str,
        new: NewContact,
        id: ContactId,
    ) -> Result<Contact, ContactError> {
        let mut problems = Vec::new();
        let phone = normalize(&new.phone, new.region.as_deref())
            .map_err(|m| problems.push(FieldError::new("phone", m)))
            .ok();
        check_name(new.name.as_deref(), &mut problems);
        let tags = check_tags(&new.tags, &mut problems);
        check_fields(&new.fields, &mut problems);
        check_consent(new.consent.as_ref(), &mut problems);
        let Some(phone) = phone.filter(|_| problems.is_empty()) else {
            return Err(ContactError::Invalid(problems));
        };
        let now = self.clock.now();
        // A number erased while opted out comes back opted out, whatever the request says.
        let consent = match self
            .store
            .suppressed_since(tenant, &suppression_hash(tenant, &phone))
            .await?
        {
            Some(at) => Consent::OptedOut {
                at,
                source: "suppression".into(),
            },
            None => consent_at(new.consent.as_ref(), now).unwrap_or(Consent::Unknown),
        };
        let contact = Contact {
            id,
            tenant_id: tenant.clone(),
            phone,
            name: new.name,
            tags,
            fields: new.fields,
            consent,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_contact(&contact).await? {
            Inserted::New => {
                self.record(&contact, actor, "contact.created", None).await;
                Ok(contact)
            }
            Inserted::Duplicate(existing) => Err(ContactError::Duplicate(existing)),
        }
    }

    pub async fn get(&self, tenant: &TenantId, id: &ContactId) -> Result<Contact, ContactError> {
        self.store
            .get_contact(tenant, id)
            .await?
            .ok_or(ContactError::NotFound)
    }

    pub async fn list(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Contact>, ContactError> {
        Ok(self.store.list_contacts(tenant, cursor, limit).await?)
    }

    pub async fn update(
        &self,
        tenant: &TenantId,
        actor: &str,
        id: &ContactId,
        change: ContactUpdate,
    ) -> Result<Contact, ContactError> {
        let mut problems = Vec::new();
        check_name(
            change.name.as_ref().and_then(|n| n.as_deref()),
            &mut problems,
        );
        let tags = change.tags.as_ref().map(|t| check_tags(t, &mut problems));
        if let Some(f) = &change.fields {
            check_fields(f, &mut problems);
        }
        check_consent(change.consent.as_ref(), &mut problems);
        if !problems.is_empty() {
            return Err(ContactError::Invalid(problems));
        }
        for _ in 0..CONFLICT_RETRIES {
            let mut contact = self.get(tenant, id).await?;
            let (expected, before) = (contact.version, contact.consent.clone());
            let now = self.clock.now();
            if let Some(name) = &change.name {
                contact.name = name.clone();
            }
            if let Some(tags) = &tags {
                contact.tags = tags.clone();
            }
            if let Some(fields) = &change.fields {
                contact.fields = fields.clone();
            }
            if let Some(consent) = consent_at(change.consent.as_ref(), now) {
                contact.consent = consent;
            }
            contact.version = expected + 1;
            contact.updated_at = now;
            match self.store.replace_contact(&contact, expected).await {
                Ok(()) => {
                    if contact.consent.status() != before.status() {
                        self.record(&contact, actor, "contact.consent_changed", Some(&before))
                            .await;
                    }
                    return Ok(contact);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ContactError::Contended)
    }

    /// Removes the contact and its number; an opted-out number leaves its suppression hash.
    pub async fn erase(
        &self,
        tenant: &TenantId,
        actor: &str,
        id: &ContactId,
    ) -> Result<(), ContactError> {
        let erased = self
            .store
            .erase_contact(tenant, id, self.clock.now())
            .await?
            .ok_or(ContactError::NotFound)?;
        self.record(&erased, actor, "contact.erased", None).await;
        Ok(())
    }

    /// One audit record naming the contact by id and consent only: never its number.
    async fn record(&self, contact: &Contact, actor: &str, action: &str, before: Option<&Consent>) {
        let entry = AuditEntry {
            tenant_id: contact.tenant_id.clone(),
            entity: format!("contact:{}", contact.id),
            action: action.into(),
            actor: actor.into(),
            old: before.map(|c| json!({"consent": c.status()})),
            new: Some(json!({"consent": contact.consent.status()})),
            ip: None,
            user_agent: None,
            at: contact.updated_at,
        };
        if let Err(e) = self.audit.append(entry).await {
            tracing::error!(error = %e, action, "a contact's audit record could not be written");
        }
    }
}

fn consent_at(input: Option<&ConsentInput>, at: time::OffsetDateTime) -> Option<Consent> {
    input.map(|c| match c.opted_in {
        true => Consent::OptedIn {
            at,
            source: c.source.trim().to_owned(),
        },
        false => Consent::OptedOut {
            at,
            source: c.source.trim().to_owned(),
        },
    })
}
