//! An authorisation server in memory, for tests and the in-memory API: the test plays the
//! person at the consent page (`consent`), and the server checks PKCE as a real one does.

use super::{AuthorizationServer, AuthorizeRequest, Choice, code_challenge};
use crate::model::Platform;
use crate::publishing::platform::PlatformError;
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

    /// `at-<user>` is the user; `at-<user>:<page>,<page>` manages those Pages (each with its
    /// own token, `pt-<page>`).
    async fn accounts(
        &self,
        _platform: Platform,
        user: &RefreshedTokens,
    ) -> Result<Vec<Choice>, PlatformError> {
        let token = user.access_token.expose_secret();
        let who = token.strip_prefix("at-").unwrap_or(token);
        Ok(match who.split_once(':') {
            None => vec![Choice {
                external_id: who.to_owned(),
                name: Some(format!("@{who}")),
                access_token: user.access_token.clone(),
            }],
            Some((_, pages)) => pages
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|page| Choice {
                    external_id: page.to_owned(),
                    name: Some(format!("Page {page}")),
                    access_token: SecretString::from(format!("pt-{page}")),
                })
                .collect(),
        })
    }
}
