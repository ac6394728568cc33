//! OAuth 2.0 refresh (`grant_type=refresh_token`) at each platform's token endpoint:
//!
//! | platform | endpoint | notes |
//! |---|---|---|
//! | X | `POST {x}/2/oauth2/token` | rotates the refresh token on every refresh |
//! | LinkedIn | `POST {linkedin}/oauth/v2/accessToken` | may rotate the refresh token |
//! | Facebook | none | Page tokens from a long-lived user token do not expire: nothing to refresh |
//!
//! `400`/`401` (`invalid_grant`, ...) means the refresh token is dead: the account must be
//! reconnected. `invalid_client` is Herald's own app credentials refused (`OAuthClientsSecret`
//! is wrong): no account is to blame, so it is transient and says what to fix. `429`, `5xx`
//! and transport failures are transient. Tokens go in the form body only and never into an
//! error message or a log line.

use crate::HttpPlatforms;
use async_trait::async_trait;
use herald_domain::model::Platform;
use herald_domain::secrets::SecretCache;
use herald_domain::secrets::token_refresh::{RefreshError, RefreshedTokens, TokenRefresher};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::Arc;

/// An app's OAuth client credentials at one platform (confidential clients authenticate the
/// refresh with HTTP Basic).
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub id: String,
    pub secret: SecretString,
}

/// The OAuth clients Herald refreshes tokens with, per platform (`None`: the request carries
/// no client authentication, as a public client's would).
#[derive(Debug, Clone, Default)]
pub struct OAuthClients {
    pub x: Option<OAuthClient>,
    pub linkedin: Option<OAuthClient>,
    /// Facebook Login's app (connect links only: Page tokens are never refreshed).
    pub facebook: Option<OAuthClient>,
}

impl OAuthClients {
    /// From the secret's JSON: `{"x": {"client_id": "...", "client_secret": "..."},
    /// "linkedin": {...}}`; a platform left out (or `{}`) has no client. The error names the
    /// problem, never a value.
    pub fn parse(json: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(json)
            .map_err(|_| "the OAuth clients secret is not JSON".to_owned())?;
        let Some(map) = v.as_object() else {
            return Err("the OAuth clients secret is not a JSON object".into());
        };
        if let Some(other) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "x" | "linkedin" | "facebook"))
        {
            return Err(format!(
                "the OAuth clients secret names {other:?}; only \"x\", \"linkedin\" and \"facebook\" have clients"
            ));
        }
        let client = |name: &str| -> Result<Option<OAuthClient>, String> {
            let Some(c) = map.get(name) else {
                return Ok(None);
            };
            match (c["client_id"].as_str(), c["client_secret"].as_str()) {
                (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                    Ok(Some(OAuthClient {
                        id: id.to_owned(),
                        secret: SecretString::from(secret.to_owned()),
                    }))
                }
                _ => Err(format!(
                    "the OAuth clients secret's {name:?} needs a non-empty client_id and client_secret"
                )),
            }
        };
        Ok(Self {
            x: client("x")?,
            linkedin: client("linkedin")?,
            facebook: client("facebook")?,
        })
    }
}

/// Where [`HttpPlatforms`] finds its OAuth clients.
#[derive(Clone)]
pub enum OAuthClientSource {
    Fixed(OAuthClients),
    /// Read through the secret cache on each refresh (refreshes are rare; the cache keeps
    /// the value for its TTL).
    Secret {
        cache: Arc<SecretCache>,
        secret: String,
    },
}

impl std::fmt::Debug for OAuthClientSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(c) => f.debug_tuple("Fixed").field(c).finish(),
            Self::Secret { secret, .. } => {
                f.debug_struct("Secret").field("secret", secret).finish()
            }
        }
    }
}

impl OAuthClientSource {
    pub(crate) async fn clients(&self) -> Result<OAuthClients, RefreshError> {
        match self {
            Self::Fixed(c) => Ok(c.clone()),
            Self::Secret { cache, secret } => {
                let ring = cache.get(secret).await.map_err(|e| {
                    RefreshError::Transient(format!("reading the OAuth clients secret failed: {e}"))
                })?;
                OAuthClients::parse(ring.current.expose_secret()).map_err(RefreshError::Transient)
            }
        }
    }
}

#[async_trait]
impl TokenRefresher for HttpPlatforms {
    async fn refresh(
        &self,
        platform: Platform,
        refresh_token: &SecretString,
    ) -> Result<RefreshedTokens, RefreshError> {
        if platform == Platform::Facebook {
            return Err(RefreshError::Revoked(
                "Facebook Page tokens cannot be refreshed; connect the Page again".into(),
            ));
        }
        if platform == Platform::Bluesky {
            // A session, not OAuth: the refresh JWT is the bearer of `refreshSession`.
            return self
                .bluesky_refresh(refresh_token)
                .await
                .map_err(|e| match e {
                    herald_domain::publishing::platform::PlatformError::Auth {
                        message, ..
                    }
                    | herald_domain::publishing::platform::PlatformError::Permanent {
                        message,
                        ..
                    } => RefreshError::Revoked(message),
                    other => RefreshError::Transient(other.message().to_owned()),
                });
        }
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose_secret().to_owned()),
        ];
        self.token_grant(platform, form).await
    }
}

impl HttpPlatforms {
    /// One grant at the platform's token endpoint, authenticated with Herald's OAuth client
    /// (HTTP Basic) when there is one; the answer's tokens, or why there are none.
    pub(crate) async fn token_grant(
        &self,
        platform: Platform,
        mut form: Vec<(&'static str, String)>,
    ) -> Result<RefreshedTokens, RefreshError> {
        let clients = self.oauth.clients().await?;
        let (url, client, name) = match platform {
            Platform::X => (
                self.endpoints.x_url("/2/oauth2/token"),
                clients.x.as_ref(),
                "X",
            ),
            Platform::Linkedin => (
                self.endpoints.linkedin_url("/oauth/v2/accessToken"),
                clients.linkedin.as_ref(),
                "LinkedIn",
            ),
            Platform::Facebook => {
                return Err(RefreshError::Revoked(
                    "Herald uses no Facebook token endpoint".into(),
                ));
            }
            Platform::Mastodon => {
                return Err(RefreshError::Revoked(
                    "a Mastodon access token does not expire and has no refresh".into(),
                ));
            }
            Platform::Bluesky => {
                return Err(RefreshError::Revoked(
                    "Herald uses no Bluesky token endpoint: sessions refresh".into(),
                ));
            }
            Platform::Instagram => {
                return Err(RefreshError::Revoked(
                    "Herald does not refresh Instagram tokens; connect the account again with a new token".into(),
                ));
            }
        };
        let mut request = self.http.post(&url);
        if let Some(c) = client {
            form.push(("client_id", c.id.clone()));
            request = request.basic_auth(&c.id, Some(c.secret.expose_secret()));
        }
        let response = request.form(&form).send().await.map_err(|e| {
            RefreshError::Transient(if e.is_timeout() {
                format!("{name}'s token endpoint did not answer in time")
            } else {
                format!("could not reach {name}'s token endpoint")
            })
        })?;
        let status = response.status();
        let body: Value = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let described = || {
            let error = body["error"].as_str().unwrap_or("unknown_error");
            match body["error_description"].as_str() {
                Some(d) => format!("{name} answered {} {error}: {d}", status.as_u16()),
                None => format!("{name} answered {} {error}", status.as_u16()),
            }
        };
        if status.is_success() {
            let access = body["access_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    RefreshError::Transient(format!(
                        "{name}'s token endpoint returned no access token"
                    ))
                })?;
            return Ok(RefreshedTokens {
                access_token: SecretString::from(access.to_owned()),
                refresh_token: body["refresh_token"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .map(|t| SecretString::from(t.to_owned())),
                expires_in: body["expires_in"].as_i64().map(time::Duration::seconds),
            });
        }
        if body["error"] == "invalid_client" {
            return Err(RefreshError::Transient(format!(
                "{}; Herald's OAuth client for {name} was refused: put the right client_id and client_secret in OAuthClientsSecret",
                described()
            )));
        }
        if status.as_u16() == 400 || status.as_u16() == 401 {
            return Err(RefreshError::Revoked(described()));
        }
        Err(RefreshError::Transient(described()))
    }
}
