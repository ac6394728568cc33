//! An in-memory [`ContactStore`] with the DynamoDB adapter's conditions.

use super::{Consent, Contact, ContactStore, Inserted, suppression_hash};
use crate::error::StoreError;
use crate::ids::{ContactId, TenantId};
use crate::ports::Page;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use time::OffsetDateTime;

#[derive(Debug, Default)]
struct State {
    contacts: BTreeMap<(TenantId, ContactId), Contact>,
    numbers: HashMap<(TenantId, String), ContactId>,
    suppressed: HashMap<(TenantId, String), OffsetDateTime>,
}

#[derive(Debug, Default)]
pub struct MemoryContacts {
    state: Mutex<State>,
}

impl MemoryContacts {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ContactStore for MemoryContacts {
    async fn insert_contact(&self, contact: &Contact) -> Result<Inserted, StoreError> {
        let mut s = self.lock();
        let number = (contact.tenant_id.clone(), contact.phone.clone());
        if let Some(id) = s.numbers.get(&number) {
            return Ok(Inserted::Duplicate(id.clone()));
        }
        s.numbers.insert(number, contact.id.clone());
        s.contacts.insert(
            (contact.tenant_id.clone(), contact.id.clone()),
            contact.clone(),
        );
        Ok(Inserted::New)
    }

    async fn get_contact(
        &self,
        tenant: &TenantId,
        id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        Ok(self
            .lock()
            .contacts
            .get(&(tenant.clone(), id.clone()))
            .cloned())
    }

    async fn list_contacts(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Contact>, StoreError> {
        let s = self.lock();
        let items: Vec<Contact> = s
            .contacts
            .iter()
            .filter(|((t, id), _)| t == tenant && cursor.is_none_or(|c| id.as_str() > c))
            .take(limit)
            .map(|(_, c)| c.clone())
            .collect();
        let cursor = (items.len() == limit)
            .then(|| items.last().map(|c| c.id.0.clone()))
            .flatten();
        Ok(Page { items, cursor })
    }

    async fn replace_contact(&self, contact: &Contact, expected: u64) -> Result<(), StoreError> {
        let mut s = self.lock();
        let key = (contact.tenant_id.clone(), contact.id.clone());
        match s.contacts.get(&key) {
            Some(old) if old.version == expected && old.phone == contact.phone => {
                s.contacts.insert(key, contact.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn erase_contact(
        &self,
        tenant: &TenantId,
        id: &ContactId,
        at: OffsetDateTime,
    ) -> Result<Option<Contact>, StoreError> {
        let mut s = self.lock();
        let Some(contact) = s.contacts.remove(&(tenant.clone(), id.clone())) else {
            return Ok(None);
        };
        s.numbers.remove(&(tenant.clone(), contact.phone.clone()));
        if matches!(contact.consent, Consent::OptedOut { .. }) {
            s.suppressed.insert(
                (tenant.clone(), suppression_hash(tenant, &contact.phone)),
                at,
            );
        }
        Ok(Some(contact))
    }

    async fn contact_by_phone(
        &self,
        tenant: &TenantId,
        phone: &str,
    ) -> Result<Option<ContactId>, StoreError> {
        Ok(self
            .lock()
            .numbers
            .get(&(tenant.clone(), phone.to_owned()))
            .cloned())
    }

    async fn suppress(
        &self,
        tenant: &TenantId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.lock()
            .suppressed
            .entry((tenant.clone(), hash.to_owned()))
            .or_insert(at);
        Ok(())
    }

    async fn suppressed_since(
        &self,
        tenant: &TenantId,
        hash: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self
            .lock()
            .suppressed
            .get(&(tenant.clone(), hash.to_owned()))
            .copied())
    }
}
