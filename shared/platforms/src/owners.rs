//! Who a token belongs to: asked once when an account is connected, so a tenant can connect
//! only accounts its token may act as (and a bad token is caught then, not at publish time).

use super::*;
use herald_domain::publishing::platform::{Ownership, TokenOwners};

#[async_trait::async_trait]
impl TokenOwners for HttpPlatforms {
    async fn ownership(
        &self,
        platform: Platform,
        access_token: &SecretString,
        external_id: &str,
    ) -> Result<Ownership, PlatformError> {
        match platform {
            // {"data": {"id", "name", "username"}}
            Platform::X => {
                let me = self
                    .identity_call(platform, self.endpoints.x_url("/2/users/me"), access_token)
                    .await?;
                Ok(same_id(&me["data"]["id"], &me["data"]["name"], external_id))
            }
            // A Page access token's `me` is the Page: {"id", "name"}.
            Platform::Facebook => {
                let url = format!("{}?fields=id,name", self.endpoints.facebook_url("/me"));
                let me = self.identity_call(platform, url, access_token).await?;
                Ok(same_id(&me["id"], &me["name"], external_id))
            }
            Platform::Linkedin => self.linkedin_ownership(access_token, external_id).await,
            Platform::Mastodon => self.mastodon_ownership(access_token, external_id).await,
            // The credential is an app password: it signs in to a session.
            Platform::Bluesky => self.bluesky_ownership(access_token, external_id).await,
            // Instagram Login: `me` is the professional account, its `user_id` the id
            // publishing uses.
            Platform::Instagram => {
                let url = format!(
                    "{}?fields=user_id,username",
                    self.endpoints.instagram_url("/me")
                );
                let me = self.identity_call(platform, url, access_token).await?;
                Ok(same_id(&me["user_id"], &me["username"], external_id))
            }
        }
    }
}

impl HttpPlatforms {
    /// LinkedIn: the member (`userinfo`, OpenID Connect: {"sub", "name"}); a person account
    /// (`urn:li:person:<sub>`) must be that member, an organisation one of the organisations
    /// the member administers (`organizationAcls`, approved `ADMINISTRATOR` roles).
    async fn linkedin_ownership(
        &self,
        token: &SecretString,
        external_id: &str,
    ) -> Result<Ownership, PlatformError> {
        let platform = Platform::Linkedin;
        let me = self
            .identity_call(platform, self.endpoints.linkedin_url("/v2/userinfo"), token)
            .await?;
        let member = text(&me["sub"]).unwrap_or_default();
        let author = linkedin_author(external_id);
        if author.starts_with("urn:li:person:") {
            let mut ownership = same_id(&me["sub"], &me["name"], external_id);
            ownership.owns = author == format!("urn:li:person:{member}");
            return Ok(ownership);
        }
        let url = format!(
            "{}?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED&count=100",
            self.endpoints.linkedin_url("/rest/organizationAcls")
        );
        let acls = self.identity_call(platform, url, token).await?;
        let owns = acls["elements"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["organization"].as_str() == Some(author.as_str()));
        Ok(Ownership {
            owns,
            actual_id: format!("urn:li:person:{member}"),
            name: None,
            issued: None,
        })
    }

    /// One identity `GET` with the token; its JSON, or the platform's refusal.
    pub(crate) async fn identity_call(
        &self,
        platform: Platform,
        url: String,
        token: &SecretString,
    ) -> Result<Value, PlatformError> {
        let response = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .header("LinkedIn-Version", LINKEDIN_VERSION)
            .header("X-Restli-Protocol-Version", "2.0.0")
            .send()
            .await
            .map_err(|e| PlatformError::Transient {
                message: format!(
                    "{} could not be asked who the token is: {}",
                    platform.title(),
                    e.without_url()
                ),
                code: None,
                retry_after: None,
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        // Each platform's refusal, classified as its publish answers are (Meta's code 190 is
        // a refused token, whatever the status).
        const WHAT: &str = " when asked who the token is";
        Err(match platform {
            Platform::X => x_error(status, &headers, &body, WHAT),
            Platform::Facebook => facebook_error(status, &headers, &body, WHAT),
            Platform::Linkedin => linkedin_error(status, &headers, &body, WHAT),
            Platform::Mastodon => mastodon::mastodon_error(status, &headers, &body, WHAT),
            Platform::Bluesky => bluesky::bluesky_error(status, &headers, &body, WHAT),
            Platform::Instagram => instagram_error(status, &headers, &body, WHAT),
        })
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::to_owned)
        .or_else(|| v.as_u64().map(|n| n.to_string()))
}

pub(crate) fn same_id(id: &Value, name: &Value, external_id: &str) -> Ownership {
    let actual_id = text(id).unwrap_or_default();
    Ownership {
        owns: !actual_id.is_empty() && actual_id == external_id,
        actual_id,
        name: name
            .as_str()
            .map(|n| n.chars().take(200).collect::<String>()),
        issued: None,
    }
}
