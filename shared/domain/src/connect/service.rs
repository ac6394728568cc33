//! The connect flow's steps (see the module's documentation).

use super::*;
use crate::clock::Clock;
use crate::model::{Account, AccountStatus};
use crate::ports::AccountStore;
use crate::secrets::secret::{api_key_hash, random_hex};
use std::sync::Arc;

/// An account connected through a link: the account, and whether it is new to the tenant.
#[derive(Debug)]
pub struct Connected {
    pub account: Account,
    pub created: bool,
    pub link_created_by: ApiKeyId,
}

#[derive(Clone)]
pub struct ConnectService {
    pub store: Arc<dyn ConnectStore>,
    pub server: Arc<dyn AuthorizationServer>,
    pub accounts: Arc<dyn AccountStore>,
    pub clock: Arc<dyn Clock>,
}

crate::debug_fields!(ConnectService, server);

impl ConnectService {
    /// A new link for `platform`; its secret is in the answer only.
    pub async fn create_link(
        &self,
        tenant: &TenantId,
        key: &ApiKeyId,
        platform: Platform,
    ) -> Result<(SecretString, ConnectLink), ConnectError> {
        if !LINK_PLATFORMS.contains(&platform) {
            return Err(ConnectError::NotSupported(platform));
        }
        let secret = format!("{LINK_PREFIX}{}", random_hex(32));
        let now = self.clock.now();
        let link = ConnectLink {
            id: api_key_hash(&secret),
            tenant_id: tenant.clone(),
            platform,
            created_by: key.clone(),
            created_at: now,
            expires_at: now + LINK_LIFETIME,
        };
        self.store.put_link(&link).await?;
        Ok((SecretString::from(secret), link))
    }

    /// The live link a secret names.
    pub async fn link(&self, secret: &str) -> Result<ConnectLink, ConnectError> {
        let plausible = secret
            .strip_prefix(LINK_PREFIX)
            .is_some_and(|r| r.len() == 64 && r.bytes().all(|b| b.is_ascii_hexdigit()));
        if !plausible {
            return Err(ConnectError::UnknownLink);
        }
        let link = self
            .store
            .get_link(&api_key_hash(secret))
            .await?
            .ok_or(ConnectError::UnknownLink)?;
        if link.expires_at <= self.clock.now() {
            return Err(ConnectError::ExpiredLink);
        }
        Ok(link)
    }

    /// Begins an authorisation for a live link (as [`Self::link`] found it): the URL of the
    /// platform's consent page.
    pub async fn start(
        &self,
        link: &ConnectLink,
        redirect_uri: &str,
    ) -> Result<String, ConnectError> {
        let state = random_hex(32);
        // 64 hex digits: within PKCE's 43 to 128 unreserved characters.
        let verifier = SecretString::from(random_hex(32));
        let challenge = code_challenge(&verifier);
        self.store
            .put_authorization(&PendingAuthorization {
                id: api_key_hash(&state),
                tenant_id: link.tenant_id.clone(),
                platform: link.platform,
                created_by: link.created_by.clone(),
                verifier,
                redirect_uri: redirect_uri.to_owned(),
                expires_at: self.clock.now() + STATE_LIFETIME,
            })
            .await?;
        let request = AuthorizeRequest {
            state,
            code_challenge: challenge,
            redirect_uri: redirect_uri.to_owned(),
        };
        Ok(self.server.authorize_url(link.platform, &request).await?)
    }

    /// The platform's answer: `code` (or `error`) for `state`. The state is spent whatever
    /// happens next, so a callback cannot be replayed.
    pub async fn finish(
        &self,
        platform: Platform,
        state: &str,
        answer: Result<&str, &str>,
    ) -> Result<Finished, ConnectError> {
        let pending = self
            .store
            .take_authorization(&api_key_hash(state))
            .await?
            .filter(|p| p.expires_at > self.clock.now())
            .ok_or(ConnectError::UnknownState)?;
        if pending.platform != platform {
            return Err(ConnectError::WrongPlatform);
        }
        let code = answer.map_err(|error| {
            ConnectError::Declined(if error == "access_denied" {
                "the sign-in was cancelled; nothing was connected".to_owned()
            } else {
                format!("the platform answered {error:?}; nothing was connected")
            })
        })?;
        let tokens = self
            .server
            .exchange_code(platform, code, &pending.verifier, &pending.redirect_uri)
            .await?;
        let mut choices = self.server.accounts(platform, &tokens).await?;
        let token_expires_at = tokens.expires_in.map(|d| self.clock.now() + d);
        if choices.len() > 1 {
            return self
                .offer(&pending, choices, tokens.refresh_token, token_expires_at)
                .await;
        }
        let choice = choices.pop().ok_or(ConnectError::NoAccounts(platform))?;
        let granted = Granted {
            tenant_id: pending.tenant_id,
            platform,
            created_by: pending.created_by,
            refresh_token: tokens.refresh_token,
            token_expires_at,
        };
        self.connect(granted, choice)
            .await
            .map(|c| Finished::Connected(Box::new(c)))
    }

    /// The person picked `external_id` on the picker page whose form carried `secret`. The
    /// pending choice is spent whatever they picked.
    pub async fn pick(&self, secret: &str, external_id: &str) -> Result<Connected, ConnectError> {
        let pending = self
            .store
            .take_choice(&api_key_hash(secret))
            .await?
            .filter(|p| p.expires_at > self.clock.now())
            .ok_or(ConnectError::UnknownChoice)?;
        let choice = pending
            .choices
            .into_iter()
            .find(|c| c.external_id == external_id)
            .ok_or(ConnectError::NotAChoice)?;
        let granted = Granted {
            tenant_id: pending.tenant_id,
            platform: pending.platform,
            created_by: pending.created_by,
            refresh_token: pending.refresh_token,
            token_expires_at: pending.token_expires_at,
        };
        self.connect(granted, choice).await
    }

    /// Keeps the choices for the picker; the secret its form carries.
    async fn offer(
        &self,
        pending: &PendingAuthorization,
        choices: Vec<Choice>,
        refresh_token: Option<SecretString>,
        token_expires_at: Option<OffsetDateTime>,
    ) -> Result<Finished, ConnectError> {
        let secret = random_hex(32);
        let shown = choices
            .iter()
            .map(|c| (c.external_id.clone(), c.name.clone()))
            .collect();
        self.store
            .put_choice(&PendingChoice {
                id: api_key_hash(&secret),
                tenant_id: pending.tenant_id.clone(),
                platform: pending.platform,
                created_by: pending.created_by.clone(),
                choices,
                refresh_token,
                token_expires_at,
                expires_at: self.clock.now() + STATE_LIFETIME,
            })
            .await?;
        Ok(Finished::Choose(Choosing {
            secret: SecretString::from(secret),
            platform: pending.platform,
            choices: shown,
        }))
    }

    async fn connect(&self, granted: Granted, choice: Choice) -> Result<Connected, ConnectError> {
        let now = self.clock.now();
        let account = Account {
            id: Account::id_for(granted.platform, &choice.external_id),
            tenant_id: granted.tenant_id,
            platform: granted.platform,
            external_id: choice.external_id,
            display_name: choice.name,
            access_token: choice.access_token,
            // A Page token is the Page's own and does not expire; the user's grant is not it.
            refresh_token: granted
                .refresh_token
                .filter(|_| granted.platform != Platform::Facebook),
            token_expires_at: granted
                .token_expires_at
                .filter(|_| granted.platform != Platform::Facebook),
            status: AccountStatus::Active,
            created_at: now,
            updated_at: now,
            breaker: Default::default(),
        };
        let created = self.accounts.upsert_account(&account).await?;
        Ok(Connected {
            account,
            created,
            link_created_by: granted.created_by,
        })
    }
}

/// What a sign-in granted, for the account it connects.
struct Granted {
    tenant_id: TenantId,
    platform: Platform,
    created_by: ApiKeyId,
    refresh_token: Option<SecretString>,
    token_expires_at: Option<OffsetDateTime>,
}

/// Where a callback ended.
#[derive(Debug)]
pub enum Finished {
    Connected(Box<Connected>),
    /// The sign-in manages several accounts: the person picks one.
    Choose(Choosing),
}

/// The picker's contents: the secret its form carries, and the accounts (id, name).
#[derive(Debug)]
pub struct Choosing {
    pub secret: SecretString,
    pub platform: Platform,
    pub choices: Vec<(String, Option<String>)>,
}
