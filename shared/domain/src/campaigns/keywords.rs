//! What a texted person sends back. STOP (or STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT; any
//! case, trimmed) opts the number out at once; START or UNSTOP opts it back in; HELP or INFO is
//! answered with the tenant's help text. Each is confirmed by a reply from the sender it was
//! sent to. The sender id says whose the message is: a sender belongs to the tenant that
//! first sent as it, so one tenant's STOP never touches another's contacts.
//!
//! The opt-out is a consent change on the contact, which every send's claim checks: batches
//! queued before the STOP skip the number. A STOP from a number that is no contact yet is kept
//! as a suppression, so the number comes back opted out if it is ever added.

use super::CampaignStore;
use super::sender::{OutboundSms, SmsError, SmsProvider};
use crate::clock::Clock;
use crate::contacts::{
    Consent, ConsentInput, ContactError, ContactService, ContactUpdate, normalize, suppression_hash,
};
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::ports::TenantStore;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Client references of replies start with this, never with the campaigns' own prefix: a
/// receipt for a reply is never taken for a campaign send's.
pub const REPLY_REF_PREFIX: &str = "hk_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    Stop,
    Start,
    Help,
}

impl Keyword {
    /// The keyword a whole message is, if it is one: `" stop. "` is STOP, `"stop it"` is not.
    pub fn of(text: &str) -> Option<(Keyword, String)> {
        let word = text
            .trim()
            .trim_end_matches(['.', '!'])
            .trim()
            .to_uppercase();
        let keyword = match word.as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Keyword::Stop,
            "START" | "UNSTOP" => Keyword::Start,
            "HELP" | "INFO" => Keyword::Help,
            _ => return None,
        };
        Some((keyword, word))
    }
}

/// A message a person sent to one of Herald's senders, as the provider posts it:
/// `{"type": "inbound", "id", "from", "to", "text"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    pub id: String,
    /// The person's number.
    pub from: String,
    /// The sender id it was sent to.
    pub to: String,
    pub text: String,
}

impl InboundSms {
    pub fn of(body: &serde_json::Value) -> Option<Self> {
        if body["type"].as_str() != Some("inbound") {
            return None;
        }
        let field = |name: &str| body[name].as_str().map(str::to_owned);
        Some(Self {
            id: field("id")?,
            from: field("from")?,
            to: field("to")?,
            text: field("text")?,
        })
    }

    /// The reply's client reference: one per inbound message, so a redelivered message finds
    /// its reply at the provider instead of sending a second.
    pub fn reply_ref(&self) -> String {
        let digest = Sha256::digest(format!("reply:{}:{}", self.to, self.id).as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{REPLY_REF_PREFIX}{hex}")
    }
}

/// What an inbound message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Not a keyword: kept, nothing else.
    Ignored,
    /// No tenant sends as the number it was sent to, or the sender's number is unreadable.
    Unrouted,
    /// The keyword was applied (the consent changed now, or already was so) and answered.
    Applied {
        tenant: TenantId,
        keyword: Keyword,
        /// The contact's consent changed now (false: it already was so, or no contact).
        changed: bool,
        /// A reply was sent now (false: found already sent, or no provider configured).
        replied: bool,
    },
}

pub struct Keywords {
    pub senders: Arc<dyn CampaignStore>,
    pub contacts: ContactService,
    pub tenants: Arc<dyn TenantStore>,
    /// Sends the replies; `None`: keywords are applied, not answered.
    pub provider: Option<Arc<dyn SmsProvider>>,
    pub clock: Arc<dyn Clock>,
}

crate::debug_fields!(Keywords);

/// Who changes a contact's consent by keyword, in its audit trail.
const ACTOR: &str = "sms:inbound";

impl Keywords {
    /// Applies the message once: the consent change is idempotent and the reply is looked up
    /// by its reference before it is sent. `Err` when the store or the provider failed: the
    /// message is retried whole.
    pub async fn handle(&self, sms: &InboundSms) -> Result<Handled, StoreError> {
        let Some((keyword, word)) = Keyword::of(&sms.text) else {
            return Ok(Handled::Ignored);
        };
        let Some(tenant) = self.senders.sender_owner(&sms.to).await? else {
            metrics::counter!("herald_sms_inbound_unrouted_total").increment(1);
            return Ok(Handled::Unrouted);
        };
        let Ok(phone) = normalize(&sms.from, None) else {
            metrics::counter!("herald_sms_inbound_unrouted_total").increment(1);
            return Ok(Handled::Unrouted);
        };
        let changed = match keyword {
            Keyword::Stop => self.consent(&tenant, &phone, false, &word).await?,
            Keyword::Start => self.consent(&tenant, &phone, true, &word).await?,
            Keyword::Help => false,
        };
        metrics::counter!("herald_sms_keywords_total", "keyword" => word.to_lowercase())
            .increment(1);
        let replied = self.reply(&tenant, sms, keyword).await?;
        Ok(Handled::Applied {
            tenant,
            keyword,
            changed,
            replied,
        })
    }

    /// Sets the number's consent; `true` when it changed now. A STOP from no contact
    /// suppresses the number; a START from no contact changes nothing (there is no one to
    /// text until the tenant adds the contact, with its consent).
    async fn consent(
        &self,
        tenant: &TenantId,
        phone: &str,
        opted_in: bool,
        word: &str,
    ) -> Result<bool, StoreError> {
        let store = &self.contacts.store;
        let Some(id) = store.contact_by_phone(tenant, phone).await? else {
            if !opted_in {
                let hash = suppression_hash(tenant, phone);
                store.suppress(tenant, &hash, self.clock.now()).await?;
            }
            return Ok(false);
        };
        let Some(contact) = store.get_contact(tenant, &id).await? else {
            return Ok(false);
        };
        let already = match contact.consent {
            Consent::OptedIn { .. } => opted_in,
            Consent::OptedOut { .. } => !opted_in,
            Consent::Unknown => false,
        };
        if already {
            return Ok(false);
        }
        let change = ContactUpdate {
            consent: Some(ConsentInput {
                opted_in,
                source: format!("keyword:{word}"),
            }),
            ..ContactUpdate::default()
        };
        match self.contacts.update(tenant, ACTOR, &id, change).await {
            Ok(_) => Ok(true),
            // Erased meanwhile: nothing left to change.
            Err(ContactError::NotFound) => Ok(false),
            Err(ContactError::Store(e)) => Err(e),
            Err(ContactError::Contended) => Err(StoreError::Unavailable(
                "the contact kept changing while a keyword applied".into(),
            )),
            Err(e) => Err(StoreError::Invalid(e.to_string())),
        }
    }

    async fn reply(
        &self,
        tenant: &TenantId,
        sms: &InboundSms,
        keyword: Keyword,
    ) -> Result<bool, StoreError> {
        let Some(provider) = &self.provider else {
            return Ok(false);
        };
        let reference = sms.reply_ref();
        if provider
            .lookup(&reference)
            .await
            .map_err(unavailable)?
            .is_some()
        {
            return Ok(false);
        }
        let text = self.reply_text(tenant, keyword).await?;
        let reply = OutboundSms {
            from: sms.to.clone(),
            to: sms.from.clone(),
            text,
            client_ref: reference,
        };
        match provider.send(&reply).await {
            Ok(_) => Ok(true),
            Err(SmsError::Permanent(reason)) => {
                // The consent change stands; the answer cannot be sent (a number the
                // provider refuses): retrying would not change that.
                tracing::warn!(reason = %reason, "a keyword's reply was refused");
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn reply_text(&self, tenant: &TenantId, keyword: Keyword) -> Result<String, StoreError> {
        let found = self.tenants.get_tenant(tenant).await?;
        let name = found
            .as_ref()
            .map_or("Herald", |t| t.name.as_str())
            .to_owned();
        Ok(match keyword {
            Keyword::Stop => format!(
                "{name}: you are unsubscribed and will get no more messages. Reply START to resubscribe."
            ),
            Keyword::Start => {
                format!(
                    "{name}: you are subscribed again. Reply STOP to unsubscribe, HELP for help."
                )
            }
            Keyword::Help => found
                .and_then(|t| t.settings.sms_help_text)
                .unwrap_or_else(|| format!("{name}: reply STOP to unsubscribe.")),
        })
    }
}

fn unavailable(e: SmsError) -> StoreError {
    StoreError::Unavailable(format!("the SMS provider: {e}"))
}
