//! An authorisation server in memory, for tests and the in-memory API: the test plays the
//! person at the consent page (`consent`), and the server checks PKCE as a real one does.

use super::{AuthorizationServer, AuthorizeRequest, code_challenge};
use crate::model::Platform;
use crate::publishing::platform::{Ownership, PlatformError, TokenOwners};
use crate::secrets::token_refresh::RefreshedTokens;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Mutex;

/// Codes by value: (challenge, redirect URI, user).
#[derive(Debug, Default)]
pub struct MemoryAuthorization {
    codes: Mutex<HashMap<String, (String, String, String)>>,
}

impl MemoryAuthorization {
    /// `user` consents to the request behind `authorize_url`: the code the platform would put
    /// in the redirect.
    pub fn consent(&self, authorize_url: &str, user: &str) -> String {
        let param = |name: &str| {
            authorize_url
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix(&format!("{name}=")))
                .unwrap_or_default()
                .to_owned()
        };
        let code = format!("code-{}", crate::secrets::secret::random_hex(8));
        self.codes.lock().unwrap_or_else(|p| p.into_inner()).insert(
            code.clone(),
            (
                param("code_challenge"),
                param("redirect_uri"),
                user.to_owned(),
            ),
        );
        code
    }
}

#[async_trait]
impl AuthorizationServer for MemoryAuthorization {
    async fn authorize_url(
        &self,
        platform: Platform,
        request: &AuthorizeRequest,
    ) -> Result<String, PlatformError> {
        Ok(format!(
            "https://{platform}.example/authorize?state={}&code_challenge={}&redirect_uri={}",
            request.state, request.code_challenge, request.redirect_uri
        ))
    }

    async fn exchange_code(
        &self,
        _platform: Platform,
        code: &str,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<RefreshedTokens, PlatformError> {
        let refused = |message: &str| PlatformError::Auth {
            message: message.to_owned(),
            code: Some("invalid_grant".into()),
        };
        let (challenge, redirect, user) = self
            .codes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(code)
            .ok_or_else(|| refused("unknown or used code"))?;
        if challenge != code_challenge(verifier) || redirect != redirect_uri {
            return Err(refused("the verifier or redirect does not match"));
        }
        Ok(RefreshedTokens {
            access_token: SecretString::from(format!("at-{user}")),
            refresh_token: Some(SecretString::from(format!("rt-{user}"))),
            expires_in: Some(time::Duration::hours(2)),
        })
    }
}

/// Owners of the tokens [`MemoryAuthorization`] issues (`at-<user>` is `<user>`); any other
/// token is taken at its word, as `TrustingOwners` does.
#[derive(Debug, Default)]
pub struct MemoryOwners;

#[async_trait]
impl TokenOwners for MemoryOwners {
    async fn ownership(
        &self,
        _platform: Platform,
        access_token: &SecretString,
        external_id: &str,
    ) -> Result<Ownership, PlatformError> {
        let actual = access_token
            .expose_secret()
            .strip_prefix("at-")
            .unwrap_or(external_id)
            .to_owned();
        Ok(Ownership {
            owns: external_id == actual,
            name: Some(format!("@{actual}")),
            actual_id: actual,
        })
    }
}
