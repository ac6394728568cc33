//! Contacts on the main table: `CONTACT#<id>` (the contact), `PHONE#<e164>` (the number's
//! claim: which contact has it) and `SUPPRESS#<hash>` (an erased, opted-out number), all in
//! the tenant's partition. Creating and erasing write contact and claim in one transaction.

use super::items::*;
use super::store::{DynamoStore, values};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use herald_domain::StoreError;
use herald_domain::contacts::{Consent, Contact, ContactStore, Inserted, suppression_hash};
use herald_domain::ids::{ContactId, TenantId};
use herald_domain::ports::Page;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

fn contact_sk(id: &ContactId) -> String {
    format!("CONTACT#{id}")
}

fn phone_key(tenant: &TenantId, phone: &str) -> Item {
    key(tenant_pk(tenant), format!("PHONE#{phone}"))
}

fn suppression_key(tenant: &TenantId, hash: &str) -> Item {
    key(tenant_pk(tenant), format!("SUPPRESS#{hash}"))
}

fn consent_to_av(c: &Consent) -> AttributeValue {
    let mut m = HashMap::from([("status".to_owned(), s(c.status()))]);
    if let Consent::OptedIn { at, source } | Consent::OptedOut { at, source } = c {
        m.insert("at".into(), time_n(*at));
        m.insert("source".into(), s(source));
    }
    AttributeValue::M(m)
}

fn consent_from(item: Option<&Item>) -> Result<Consent, StoreError> {
    let Some(m) = item else {
        return Ok(Consent::Unknown);
    };
    let f = Fields(m);
    Ok(match f.str("status")?.as_str() {
        "opted_in" => Consent::OptedIn {
            at: f.time("at")?,
            source: f.str("source")?,
        },
        "opted_out" => Consent::OptedOut {
            at: f.time("at")?,
            source: f.str("source")?,
        },
        _ => Consent::Unknown,
    })
}

fn contact_to_item(c: &Contact) -> Item {
    let mut item = key(tenant_pk(&c.tenant_id), contact_sk(&c.id));
    item.insert("type".into(), s("contact"));
    item.insert("phone".into(), s(&c.phone));
    if let Some(name) = &c.name {
        item.insert("name".into(), s(name));
    }
    let tags: Vec<String> = c.tags.iter().cloned().collect();
    item.insert("tags".into(), strings_to_av(&tags));
    item.insert(
        "fields".into(),
        AttributeValue::M(c.fields.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
    );
    item.insert("consent".into(), consent_to_av(&c.consent));
    item.insert("version".into(), n(c.version));
    item.insert("created_at".into(), time_n(c.created_at));
    item.insert("updated_at".into(), time_n(c.updated_at));
    item
}

fn contact_from_item(item: &Item) -> Result<Contact, StoreError> {
    let f = Fields(item);
    let bad =
        |field: &str| StoreError::Invalid(format!("stored contact has a malformed `{field}`"));
    let tenant = f.str("pk")?;
    let id = f.str("sk")?;
    let strings = |v: &AttributeValue| v.as_s().cloned().map_err(|_| bad("tags"));
    Ok(Contact {
        id: ContactId(
            id.strip_prefix("CONTACT#")
                .ok_or_else(|| bad("sk"))?
                .to_owned(),
        ),
        tenant_id: TenantId(
            tenant
                .strip_prefix("TENANT#")
                .ok_or_else(|| bad("pk"))?
                .to_owned(),
        ),
        phone: f.str("phone")?,
        name: f.opt_str("name"),
        tags: f
            .list("tags")
            .map(|l| l.iter().map(strings).collect())
            .transpose()?
            .unwrap_or_default(),
        fields: f
            .map("fields")
            .map(|m| {
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), v.as_s().map_err(|_| bad("fields"))?.clone())))
                    .collect::<Result<BTreeMap<_, _>, StoreError>>()
            })
            .transpose()?
            .unwrap_or_default(),
        consent: consent_from(f.map("consent"))?,
        version: f.num("version")? as u64,
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
    })
}

#[async_trait]
impl ContactStore for DynamoStore {
    async fn insert_contact(&self, contact: &Contact) -> Result<Inserted, StoreError> {
        let mut claim = phone_key(&contact.tenant_id, &contact.phone);
        claim.insert("type".into(), s("phone_claim"));
        claim.insert("contact_id".into(), s(contact.id.as_str()));
        let written = self
            .transact_conditional(vec![
                self.tx_put(
                    contact_to_item(contact),
                    Some("attribute_not_exists(pk)"),
                    None,
                )?,
                self.tx_put(claim, Some("attribute_not_exists(pk)"), None)?,
            ])
            .await?;
        if written {
            return Ok(Inserted::New);
        }
        let holder = self
            .get_latest(phone_key(&contact.tenant_id, &contact.phone))
            .await?
            .map(|item| Fields(&item).str("contact_id"))
            .transpose()?
            .ok_or_else(|| {
                StoreError::Unavailable("a contact's number was claimed and freed at once".into())
            })?;
        Ok(Inserted::Duplicate(ContactId(holder)))
    }

    async fn get_contact(
        &self,
        tenant: &TenantId,
        id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        self.get_latest(key(tenant_pk(tenant), contact_sk(id)))
            .await?
            .as_ref()
            .map(contact_from_item)
            .transpose()
    }

    async fn list_contacts(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Contact>, StoreError> {
        self.query_prefix(tenant_pk(tenant), "CONTACT#")
            .page(cursor, limit)
            .await?
            .try_map(contact_from_item)
    }

    async fn replace_contact(&self, contact: &Contact, expected: u64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(contact_to_item(contact)))
            .condition_expression("version = :v AND phone = :phone")
            .set_expression_attribute_values(Some(values(vec![
                (":v", n(expected)),
                (":phone", s(&contact.phone)),
            ])))
            .send()
            .await
            .map_err(crate::errors::store_error)?;
        Ok(())
    }

    async fn erase_contact(
        &self,
        tenant: &TenantId,
        id: &ContactId,
        at: OffsetDateTime,
    ) -> Result<Option<Contact>, StoreError> {
        for _ in 0..5 {
            let Some(contact) = self.get_contact(tenant, id).await? else {
                return Ok(None);
            };
            let delete = |item: Item, condition: &str, vals| {
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(item))
                    .condition_expression(condition)
                    .set_expression_attribute_values(vals)
                    .build()
                    .map(|d| TransactWriteItem::builder().delete(d).build())
                    .map_err(super::ops::build_error)
            };
            let mut items = vec![
                // Only the version read: a consent change since then is read again.
                delete(
                    key(tenant_pk(tenant), contact_sk(id)),
                    "version = :v",
                    Some(values(vec![(":v", n(contact.version))])),
                )?,
                delete(
                    phone_key(tenant, &contact.phone),
                    "contact_id = :id",
                    Some(values(vec![(":id", s(id.as_str()))])),
                )?,
            ];
            if matches!(contact.consent, Consent::OptedOut { .. }) {
                let mut trace = suppression_key(tenant, &suppression_hash(tenant, &contact.phone));
                trace.insert("type".into(), s("suppression"));
                trace.insert("at".into(), time_n(at));
                items.push(self.tx_put(trace, None, None)?);
            }
            if self.transact_conditional(items).await? {
                return Ok(Some(contact));
            }
        }
        Err(StoreError::Unavailable(format!(
            "contact {id} kept changing while it was erased"
        )))
    }

    async fn contact_by_phone(
        &self,
        tenant: &TenantId,
        phone: &str,
    ) -> Result<Option<ContactId>, StoreError> {
        self.get_latest(phone_key(tenant, phone))
            .await?
            .map(|item| Fields(&item).str("contact_id").map(ContactId))
            .transpose()
    }

    async fn suppress(
        &self,
        tenant: &TenantId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut trace = suppression_key(tenant, hash);
        trace.insert("type".into(), s("suppression"));
        trace.insert("at".into(), time_n(at));
        match self.put_new(trace).await {
            // Suppressed before: the first time stands.
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn suppressed_since(
        &self,
        tenant: &TenantId,
        hash: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        self.get_latest(suppression_key(tenant, hash))
            .await?
            .map(|item| Fields(&item).time("at"))
            .transpose()
    }
}
