//! The OAuth 2.0 authorisation-code flow with PKCE (RFC 7636, method S256) that connect links
//! use, with Herald's OAuth client for each platform (`OAuthClientsSecret`):
//!
//! | platform | consent page | code exchange | accounts to connect |
//! |---|---|---|---|
//! | X | `x.com/i/oauth2/authorize` | `POST /2/oauth2/token` (HTTP Basic) | the user (`GET /2/users/me`) |
//! | LinkedIn | `linkedin.com/oauth/v2/authorization` | `POST /oauth/v2/accessToken` (HTTP Basic) | the member (`GET /v2/userinfo`) and the organisations they administer (`GET /rest/organizationAcls`), all with the member's token |
//! | Facebook | `facebook.com/v21.0/dialog/oauth` | `GET /oauth/access_token`, then the long-lived user token (`grant_type=fb_exchange_token`) | the Pages the user manages (`GET /me/accounts`), each with its own token, which does not expire |
//!
//! A refused code (`invalid_grant`, a wrong verifier or redirect) is `Auth`; anything that
//! may pass on a retry is `Transient`. Tokens and client secrets never reach an error message.

use crate::HttpPlatforms;
use crate::errors::{facebook_error, read_json};
use async_trait::async_trait;
use herald_domain::connect::{AuthorizationServer, AuthorizeRequest, Choice};
use herald_domain::model::Platform;
use herald_domain::publishing::platform::PlatformError;
use herald_domain::secrets::token_refresh::{RefreshError, RefreshedTokens};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// What Herald asks X for: reading and writing posts, uploading media, the user's id, and a
/// refresh token (`offline.access`).
pub const X_SCOPES: &str = "tweet.read tweet.write users.read media.write offline.access";
/// What Herald asks LinkedIn for: the member's identity, posting as the member and as the
/// organisations they administer, and reading those roles.
pub const LINKEDIN_SCOPES: &str =
    "openid profile w_member_social w_organization_social r_organization_admin";
/// What Herald asks Facebook for: the Pages the user manages, publishing to them, and reading
/// their engagement.
pub const FACEBOOK_SCOPES: &str =
    "pages_show_list,pages_manage_posts,pages_read_engagement,pages_read_user_content";

/// The platforms' consent pages (the fake platforms' in the local stack).
#[derive(Debug, Clone)]
pub struct ConsentPages {
    pub x: String,
    pub facebook: String,
    pub linkedin: String,
}

impl Default for ConsentPages {
    fn default() -> Self {
        Self {
            x: "https://x.com/i/oauth2/authorize".into(),
            facebook: "https://www.facebook.com/v21.0/dialog/oauth".into(),
            linkedin: "https://www.linkedin.com/oauth/v2/authorization".into(),
        }
    }
}

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

fn refused(e: RefreshError) -> PlatformError {
    match e {
        RefreshError::Revoked(message) => PlatformError::Auth {
            message,
            code: Some("invalid_grant".into()),
        },
        RefreshError::Transient(message) => transient(message),
    }
}

#[async_trait]
impl AuthorizationServer for HttpPlatforms {
    async fn authorize_url(
        &self,
        platform: Platform,
        request: &AuthorizeRequest,
    ) -> Result<String, PlatformError> {
        let clients = self.oauth.clients().await.map_err(|e| match e {
            RefreshError::Revoked(m) | RefreshError::Transient(m) => transient(m),
        })?;
        let (page, client, scope) = match platform {
            Platform::X => (&self.consent_pages.x, clients.x, X_SCOPES),
            Platform::Facebook => (
                &self.consent_pages.facebook,
                clients.facebook,
                FACEBOOK_SCOPES,
            ),
            Platform::Linkedin => (
                &self.consent_pages.linkedin,
                clients.linkedin,
                LINKEDIN_SCOPES,
            ),
            Platform::Bluesky => {
                return Err(permanent(
                    "Bluesky accounts are connected with an app password (POST /v1/accounts), not a connect link",
                ));
            }
            Platform::Mastodon => {
                return Err(permanent(
                    "Mastodon accounts are connected with an access token (POST /v1/accounts), not a connect link",
                ));
            }
            Platform::Instagram => {
                return Err(permanent(
                    "Instagram accounts are connected with an Instagram Login access token (POST /v1/accounts), not a connect link",
                ));
            }
        };
        let client = client.ok_or_else(|| {
            permanent(format!(
                "Herald has no OAuth client for {}: put one in OAuthClientsSecret",
                platform.title()
            ))
        })?;
        let mut url = url::Url::parse(page)
            .map_err(|_| permanent(format!("{}'s consent page is not a URL", platform.title())))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("scope", scope)
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
        if platform == Platform::Facebook {
            return self.facebook_exchange(code, verifier, redirect_uri).await;
        }
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("code_verifier", verifier.expose_secret().to_owned()),
        ];
        self.token_grant(platform, form).await.map_err(refused)
    }

    async fn accounts(
        &self,
        platform: Platform,
        user: &RefreshedTokens,
    ) -> Result<Vec<Choice>, PlatformError> {
        match platform {
            Platform::Facebook => self.facebook_pages(&user.access_token).await,
            Platform::Linkedin => self.linkedin_authors(&user.access_token).await,
            _ => {
                use herald_domain::publishing::platform::TokenOwners;
                let me = self.ownership(platform, &user.access_token, "").await?;
                Ok(vec![Choice {
                    external_id: me.actual_id,
                    name: me.name,
                    access_token: user.access_token.clone(),
                }])
            }
        }
    }
}

impl HttpPlatforms {
    /// The code for a user token, then that for a long-lived one (about 60 days), from which
    /// Page tokens never expire. Facebook takes the client's credentials in the query.
    async fn facebook_exchange(
        &self,
        code: &str,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<RefreshedTokens, PlatformError> {
        let clients = self.oauth.clients().await.map_err(refused)?;
        let client = clients.facebook.ok_or_else(|| {
            permanent("Herald has no OAuth client for Facebook: put one in OAuthClientsSecret")
        })?;
        let secret = client.secret.expose_secret();
        let short = self
            .facebook_token(&[
                ("client_id", client.id.as_str()),
                ("client_secret", secret),
                ("redirect_uri", redirect_uri),
                ("code", code),
                ("code_verifier", verifier.expose_secret()),
            ])
            .await?;
        let long = self
            .facebook_token(&[
                ("grant_type", "fb_exchange_token"),
                ("client_id", client.id.as_str()),
                ("client_secret", secret),
                ("fb_exchange_token", short.expose_secret()),
            ])
            .await?;
        Ok(RefreshedTokens {
            access_token: long,
            refresh_token: None,
            expires_in: None,
        })
    }

    /// One `GET /oauth/access_token`: its `access_token`.
    async fn facebook_token(&self, query: &[(&str, &str)]) -> Result<SecretString, PlatformError> {
        let mut url = url::Url::parse(&self.endpoints.facebook_url("/oauth/access_token"))
            .map_err(|_| permanent("Facebook's API URL is not a URL"))?;
        url.query_pairs_mut().extend_pairs(query);
        let response = self.http.get(url.as_str()).send().await.map_err(|e| {
            transient(format!(
                "Facebook's token endpoint could not be reached: {}",
                e.without_url()
            ))
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(facebook_error(status, &headers, &body, " to the sign-in"));
        }
        body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_owned()))
            .ok_or_else(|| transient("Facebook's token endpoint returned no access token".into()))
    }

    /// The member and the organisations they administer (approved `ADMINISTRATOR` roles), all
    /// acting with the member's token; organisations by their numeric id, as
    /// `POST /v1/accounts` takes them.
    async fn linkedin_authors(&self, member: &SecretString) -> Result<Vec<Choice>, PlatformError> {
        let platform = Platform::Linkedin;
        let me = self
            .identity_call(
                platform,
                self.endpoints.linkedin_url("/v2/userinfo"),
                member,
            )
            .await?;
        let sub = me["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| transient("LinkedIn named no member for the token".into()))?;
        let mut choices = vec![Choice {
            external_id: format!("urn:li:person:{sub}"),
            name: me["name"].as_str().map(str::to_owned),
            access_token: member.clone(),
        }];
        let url = format!(
            "{}?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED&count=100",
            self.endpoints.linkedin_url("/rest/organizationAcls")
        );
        let acls = self.identity_call(platform, url, member).await?;
        for acl in acls["elements"].as_array().into_iter().flatten() {
            let approved_admin = acl["role"] == "ADMINISTRATOR" && acl["state"] == "APPROVED";
            if let Some(id) = acl["organization"]
                .as_str()
                .and_then(|o| o.strip_prefix("urn:li:organization:"))
                .filter(|_| approved_admin)
            {
                choices.push(Choice {
                    external_id: id.to_owned(),
                    name: Some(format!("Organisation {id}")),
                    access_token: member.clone(),
                });
            }
        }
        Ok(choices)
    }

    /// The Pages the user manages, each with its Page token.
    async fn facebook_pages(&self, user: &SecretString) -> Result<Vec<Choice>, PlatformError> {
        let url = format!(
            "{}?fields=id,name,access_token&limit=100",
            self.endpoints.facebook_url("/me/accounts")
        );
        let pages = self.identity_call(Platform::Facebook, url, user).await?;
        Ok(pages["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some(Choice {
                    external_id: p["id"].as_str()?.to_owned(),
                    name: p["name"].as_str().map(str::to_owned),
                    access_token: SecretString::from(p["access_token"].as_str()?.to_owned()),
                })
            })
            .collect())
    }
}
