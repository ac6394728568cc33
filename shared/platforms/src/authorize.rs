//! The OAuth 2.0 authorisation-code flow with PKCE (RFC 7636, method S256) that connect links
//! use: X's consent page (`https://x.com/i/oauth2/authorize`), and the code exchanged at its
//! token endpoint with Herald's OAuth client (HTTP Basic), as the refresh is (`oauth`).
//! A refused code (`invalid_grant`, a wrong verifier or redirect) is `Auth`; anything that
//! may pass on a retry is `Transient`.

use crate::HttpPlatforms;
use async_trait::async_trait;
use herald_domain::connect::{AuthorizationServer, AuthorizeRequest};
use herald_domain::model::Platform;
use herald_domain::publishing::platform::PlatformError;
use herald_domain::secrets::token_refresh::{RefreshError, RefreshedTokens};
use secrecy::{ExposeSecret, SecretString};

/// X's consent page.
pub const X_AUTHORIZE_URL: &str = "https://x.com/i/oauth2/authorize";
/// What Herald asks X for: reading and writing posts, uploading media, the user's id, and a
/// refresh token (`offline.access`).
pub const X_SCOPES: &str = "tweet.read tweet.write users.read media.write offline.access";

fn permanent(message: impl Into<String>) -> PlatformError {
    PlatformError::Permanent {
        message: message.into(),
        code: None,
    }
}

fn transient(message: String) -> PlatformError {
    PlatformError::Transient {
        message,
        code: None,
        retry_after: None,
    }
}

#[async_trait]
impl AuthorizationServer for HttpPlatforms {
    async fn authorize_url(
        &self,
        platform: Platform,
        request: &AuthorizeRequest,
    ) -> Result<String, PlatformError> {
        if platform != Platform::X {
            return Err(permanent(format!(
                "{platform} accounts cannot be connected by link yet"
            )));
        }
        let clients = self.oauth.clients().await.map_err(|e| match e {
            RefreshError::Revoked(m) | RefreshError::Transient(m) => transient(m),
        })?;
        let client = clients.x.ok_or_else(|| {
            permanent("Herald has no OAuth client for X: put one in OAuthClientsSecret")
        })?;
        let mut url = url::Url::parse(&self.x_authorize_url)
            .map_err(|_| permanent("X's authorisation URL is not a URL"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("scope", X_SCOPES)
            .append_pair("state", &request.state)
            .append_pair("code_challenge", &request.code_challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    async fn exchange_code(
        &self,
        platform: Platform,
        code: &str,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<RefreshedTokens, PlatformError> {
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("code_verifier", verifier.expose_secret().to_owned()),
        ];
        self.token_grant(platform, form).await.map_err(|e| match e {
            RefreshError::Revoked(message) => PlatformError::Auth {
                message,
                code: Some("invalid_grant".into()),
            },
            RefreshError::Transient(message) => transient(message),
        })
    }
}
