//! Connecting accounts by OAuth instead of pasted tokens.
//!
//! An editor asks for a connect link (`create_link`): a secret URL, good for
//! [`LINK_LIFETIME`], that whoever manages the platform account opens. Opening it (`start`)
//! begins one authorisation: a fresh `state` (single use, [`STATE_LIFETIME`]) and, where the
//! platform supports it (X), a PKCE verifier, both kept server-side; the browser is sent to the
//! platform's consent page. The platform sends the browser back with a code (`finish`): the
//! state is taken (so a replayed callback finds nothing), the code exchanged with the verifier,
//! the platform asked who the token belongs to, and that account connected to the link's
//! tenant with its tokens (sealed at rest by the account store).
//!
//! Links and states are stored by their SHA-256: the store never holds a usable link.

#[cfg(feature = "memory")]
pub mod memory;
#[cfg(test)]
mod tests;

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{ApiKeyId, TenantId};
use crate::model::{Account, AccountStatus, Platform};
use crate::ports::AccountStore;
use crate::publishing::platform::{PlatformError, TokenOwners};
use crate::secrets::secret::{api_key_hash, random_hex};
use crate::secrets::token_refresh::RefreshedTokens;
use async_trait::async_trait;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// How long a connect link may wait to be opened.
pub const LINK_LIFETIME: Duration = Duration::hours(1);
/// How long the platform's consent may take, from opening the link to the callback.
pub const STATE_LIFETIME: Duration = Duration::minutes(10);
/// Prefix of every connect link's secret, so a leaked one is recognisable.
pub const LINK_PREFIX: &str = "hrldl_";

/// The platforms a link can connect today; the others still take tokens by `POST /v1/accounts`.
pub const LINK_PLATFORMS: [Platform; 1] = [Platform::X];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectLink {
    /// The SHA-256 (hex) of the link's secret.
    pub id: String,
    pub tenant_id: TenantId,
    pub platform: Platform,
    /// The key that asked for the link (the connection is audited as its act).
    pub created_by: ApiKeyId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// One authorisation under way: what the callback needs, found by its `state`.
#[derive(Clone)]
pub struct PendingAuthorization {
    /// The SHA-256 (hex) of the `state` sent to the platform.
    pub id: String,
    pub tenant_id: TenantId,
    pub platform: Platform,
    pub created_by: ApiKeyId,
    /// The PKCE code verifier (never sent anywhere but the token endpoint).
    pub verifier: SecretString,
    /// Where the platform sends the browser back; the exchange must name it again.
    pub redirect_uri: String,
    pub expires_at: OffsetDateTime,
}

crate::debug_fields!(PendingAuthorization, id, tenant_id, platform, expires_at);

#[async_trait]
pub trait ConnectStore: Send + Sync {
    async fn put_link(&self, link: &ConnectLink) -> Result<(), StoreError>;
    async fn get_link(&self, id: &str) -> Result<Option<ConnectLink>, StoreError>;
    async fn put_authorization(&self, pending: &PendingAuthorization) -> Result<(), StoreError>;
    /// Removes the authorisation and answers it; at most one caller ever gets it.
    async fn take_authorization(
        &self,
        id: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError>;
}

/// What the consent page needs to know.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub state: String,
    /// `BASE64URL(SHA256(verifier))` (PKCE's S256 method).
    pub code_challenge: String,
    pub redirect_uri: String,
}

/// A platform's OAuth 2.0 authorisation server, as the connect flow uses it.
#[async_trait]
pub trait AuthorizationServer: Send + Sync + std::fmt::Debug {
    /// The platform's consent page for `request` (`Permanent` when Herald has no OAuth client
    /// for the platform).
    async fn authorize_url(
        &self,
        platform: Platform,
        request: &AuthorizeRequest,
    ) -> Result<String, PlatformError>;
    /// Exchanges an authorisation code (with its PKCE verifier) for tokens.
    async fn exchange_code(
        &self,
        platform: Platform,
        code: &str,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<RefreshedTokens, PlatformError>;
}

/// Why a link or a callback got nowhere, in words for the person in the browser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("{0} accounts cannot be connected by link yet; connect them with an access token")]
    NotSupported(Platform),
    #[error("this connect link is not valid; ask for a new one")]
    UnknownLink,
    #[error("this connect link has expired; ask for a new one")]
    ExpiredLink,
    #[error(
        "this sign-in was already used or took longer than 10 minutes; open the connect link again"
    )]
    UnknownState,
    #[error("the sign-in came back from another platform than it went to")]
    WrongPlatform,
    #[error("{0}")]
    Declined(String),
    #[error("the platform refused the sign-in: {0}")]
    Refused(String),
    #[error("the platform could not be reached; try again: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PlatformError> for ConnectError {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::Auth { message, .. } | PlatformError::Permanent { message, .. } => {
                Self::Refused(message)
            }
            other => Self::Unavailable(other.to_string()),
        }
    }
}

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
    pub owners: Arc<dyn TokenOwners>,
    pub accounts: Arc<dyn AccountStore>,
    pub clock: Arc<dyn Clock>,
}

crate::debug_fields!(ConnectService, server, owners);

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

    /// Begins an authorisation for the link: the URL of the platform's consent page.
    pub async fn start(&self, secret: &str, redirect_uri: &str) -> Result<String, ConnectError> {
        let link = self.link(secret).await?;
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
    ) -> Result<Connected, ConnectError> {
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
        let owner = self
            .owners
            .ownership(platform, &tokens.access_token, "")
            .await?;
        let now = self.clock.now();
        let account = Account {
            id: Account::id_for(platform, &owner.actual_id),
            tenant_id: pending.tenant_id.clone(),
            platform,
            external_id: owner.actual_id,
            display_name: owner.name,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_expires_at: tokens.expires_in.map(|d| now + d),
            status: AccountStatus::Active,
            created_at: now,
            updated_at: now,
            breaker: Default::default(),
        };
        let created = self.accounts.upsert_account(&account).await?;
        Ok(Connected {
            account,
            created,
            link_created_by: pending.created_by,
        })
    }
}

/// The challenge PKCE's S256 method derives from a verifier.
pub fn code_challenge(verifier: &SecretString) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.expose_secret().as_bytes()))
}
