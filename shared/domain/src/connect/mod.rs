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
mod service;
#[cfg(test)]
mod tests;

pub use service::{Choosing, ConnectService, Connected, Finished};

use crate::error::StoreError;
use crate::ids::{ApiKeyId, TenantId};
use crate::model::Platform;
use crate::publishing::platform::PlatformError;
use crate::secrets::token_refresh::RefreshedTokens;
use async_trait::async_trait;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// How long a connect link may wait to be opened.
pub const LINK_LIFETIME: Duration = Duration::hours(1);
/// How long the platform's consent may take, from opening the link to the callback.
pub const STATE_LIFETIME: Duration = Duration::minutes(10);
/// Prefix of every connect link's secret, so a leaked one is recognisable.
pub const LINK_PREFIX: &str = "hrldl_";

/// The platforms a link can connect (every one Herald publishes to).
pub const LINK_PLATFORMS: [Platform; 3] = [Platform::X, Platform::Facebook, Platform::Linkedin];

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
    /// Keeps the accounts a sign-in may connect while the person picks one (tokens sealed).
    async fn put_choice(&self, pending: &PendingChoice) -> Result<(), StoreError>;
    /// Removes the pending choice and answers it; at most one caller ever gets it.
    async fn take_choice(&self, id: &str) -> Result<Option<PendingChoice>, StoreError>;
}

/// An account a sign-in may connect, with the token that acts as it (a Facebook Page's own
/// token; for X, the user's).
#[derive(Clone)]
pub struct Choice {
    pub external_id: String,
    pub name: Option<String>,
    pub access_token: SecretString,
}

crate::debug_fields!(Choice, external_id, name);

/// A sign-in that manages several accounts, waiting for its person to pick one.
#[derive(Clone)]
pub struct PendingChoice {
    /// The SHA-256 (hex) of the secret the picker page's form carries.
    pub id: String,
    pub tenant_id: TenantId,
    pub platform: Platform,
    pub created_by: ApiKeyId,
    pub choices: Vec<Choice>,
    /// What the grant gave besides the access token (X, LinkedIn; Facebook Pages need none).
    pub refresh_token: Option<SecretString>,
    pub token_expires_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
}

crate::debug_fields!(PendingChoice, id, tenant_id, platform, choices, expires_at);

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
    /// The accounts the signed-in user may connect: X, the user; Facebook, the Pages they
    /// manage (`GET /me/accounts`), each with its Page token.
    async fn accounts(
        &self,
        platform: Platform,
        user: &RefreshedTokens,
    ) -> Result<Vec<Choice>, PlatformError>;
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
    #[error("the {0} account you signed in with manages nothing Herald can publish to")]
    NoAccounts(Platform),
    #[error(
        "this choice was already made or took longer than 10 minutes; open the connect link again"
    )]
    UnknownChoice,
    #[error("that account was not among the ones to choose from")]
    NotAChoice,
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

/// The challenge PKCE's S256 method derives from a verifier.
pub fn code_challenge(verifier: &SecretString) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.expose_secret().as_bytes()))
}
