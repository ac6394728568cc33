//! OAuth 2.0 refresh (`grant_type=refresh_token`) at each platform's token endpoint:
//!
//! | platform | endpoint | notes |
//! |---|---|---|
//! | X | `POST {x}/2/oauth2/token` | rotates the refresh token on every refresh |
//! | LinkedIn | `POST {linkedin}/oauth/v2/accessToken` | may rotate the refresh token |
//! | Facebook | none | Page tokens from a long-lived user token do not expire: nothing to refresh |
//!
//! `400`/`401` (`invalid_grant`, `invalid_client`, ...) means the refresh token is dead: the
//! account must be reconnected. `429`, `5xx` and transport failures are transient. Tokens go
//! in the form body only and never into an error message or a log line.

use crate::HttpPlatforms;
use async_trait::async_trait;
use herald_domain::model::Platform;
use herald_domain::token_refresh::{RefreshError, RefreshedTokens, TokenRefresher};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

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
}

#[async_trait]
impl TokenRefresher for HttpPlatforms {
    async fn refresh(
        &self,
        platform: Platform,
        refresh_token: &SecretString,
    ) -> Result<RefreshedTokens, RefreshError> {
        let (url, client, name) = match platform {
            Platform::X => (
                format!("{}/2/oauth2/token", self.endpoints.x.trim_end_matches('/')),
                self.oauth.x.as_ref(),
                "X",
            ),
            Platform::Linkedin => (
                format!(
                    "{}/oauth/v2/accessToken",
                    self.endpoints.linkedin.trim_end_matches('/')
                ),
                self.oauth.linkedin.as_ref(),
                "LinkedIn",
            ),
            Platform::Facebook => {
                return Err(RefreshError::Revoked(
                    "Facebook Page tokens cannot be refreshed; connect the Page again".into(),
                ));
            }
        };
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose_secret().to_owned()),
        ];
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
        if status.as_u16() == 400 || status.as_u16() == 401 {
            return Err(RefreshError::Revoked(described()));
        }
        Err(RefreshError::Transient(described()))
    }
}
