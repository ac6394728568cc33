//! The console: operators and tenant admins use Herald from a browser, over the same `/v1`
//! routes as any client. `GET /console` serves one self-contained page (no build step, no
//! external script, font or style); signing in exchanges an API key (or the operator token)
//! for a session cookie.
//!
//! - The cookie is `__Host-` prefixed, `Secure`, `HttpOnly` and `SameSite=Strict`: scripts
//!   cannot read it and other sites cannot make the browser send it.
//! - Every change (any method but GET and HEAD) must also carry the session's CSRF token in
//!   `X-Herald-CSRF`, which only the console's own page holds.
//! - The page's Content-Security-Policy admits only its own inline script and style, by a
//!   nonce drawn per response, and lets it connect to its own origin only.
//! - The session keeps the hash of the key it was opened with and checks the key on every
//!   request (`herald_domain::console`): a revoked key or a suspended tenant ends it at once.

pub(crate) mod page;

use crate::audit::{self, Client};
use crate::auth::{COOKIE_NAME, Caller, Principal, caller_and_session, refusal, session_cookie};
use crate::{ApiError, AppState};
use axum::Router;
use axum::extract::{Form, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use herald_domain::console::{self as sessions, Subject};
use herald_domain::model::{ApiKey, Role};
use herald_domain::secrets::operator::OperatorToken;
use herald_domain::tenants::{self, Refused};
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::sync::Arc;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console", get(show))
        .route("/console/session", post(sign_in))
        .route("/console/sign-out", post(sign_out))
}

/// `GET /console`: the console for a live session, else the sign-in page.
async fn show(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match caller_and_session(&state, &headers, &Method::GET).await {
        Ok(None) => page::sign_in(StatusCode::OK, None),
        Err(e) if e.status == StatusCode::UNAUTHORIZED || e.status == StatusCode::FORBIDDEN => {
            let mut page = page::sign_in(StatusCode::OK, Some(&e.detail));
            clear_cookie(&mut page);
            page
        }
        Err(e) => page::sign_in(e.status, Some(&e.detail)),
        Ok(Some((found, session))) => page::console(&found, &session),
    }
}

#[derive(Deserialize)]
struct SignIn {
    credential: String,
}

/// `POST /console/session`: an API key (or the operator token) for a session cookie, then
/// back to the console (303). A refused credential gets the sign-in page again, saying why.
async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    client: Client,
    Form(form): Form<SignIn>,
) -> Response {
    if cross_site(&headers) {
        return page::sign_in(
            StatusCode::FORBIDDEN,
            Some("sign in from the console's own page"),
        );
    }
    let credential = form.credential.trim();
    if credential.is_empty() || credential.len() > 256 {
        return page::sign_in(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("paste an API key or the operator token"),
        );
    }
    // A key first (the operator token looks like one, so an unknown key may still be it).
    let subject =
        match tenants::authenticate(state.tenants.as_ref(), state.clock.as_ref(), credential).await
        {
            Ok(key) => Ok((
                Subject::Key {
                    key_hash: key.hash.clone(),
                },
                Some(key),
            )),
            Err(Refused::Unknown) => operator_subject(&state, &headers, credential).await,
            Err(refused) => Err(refused),
        };
    let (subject, key) = match subject {
        Ok(found) => found,
        Err(Refused::Store(e)) => {
            let e = ApiError::from(e);
            return page::sign_in(e.status, Some(&e.detail));
        }
        Err(refused) => {
            let e = refusal(refused);
            return page::sign_in(e.status, Some(&e.detail));
        }
    };
    let opened = match sessions::open(state.sessions.as_ref(), state.clock.as_ref(), subject).await
    {
        Ok(opened) => opened,
        Err(e) => {
            let e = ApiError::from(e);
            return page::sign_in(e.status, Some(&e.detail));
        }
    };
    if let Some(key) = key {
        let principal = Principal {
            tenant_id: key.tenant_id,
            key_id: key.id,
            role: key.role,
        };
        audit::record(
            &state,
            &principal,
            &client,
            format!("api_key:{}", principal.key_id),
            "console.signed_in",
            None,
            None,
        )
        .await;
    } else {
        tracing::info!("the operator signed in to the console");
    }
    let cookie = format!(
        "{COOKIE_NAME}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        opened.cookie.expose_secret(),
        sessions::SESSION_LIFETIME.whole_seconds()
    );
    redirect_to_console(Some(cookie))
}

/// The operator token's session subject, when `credential` is the operator token and it is
/// presented from the operator's networks.
async fn operator_subject(
    state: &AppState,
    headers: &HeaderMap,
    credential: &str,
) -> Result<(Subject, Option<ApiKey>), Refused> {
    let Some(operator) = &state.operator else {
        return Err(Refused::Unknown);
    };
    if !crate::auth::from_allowed_network(state, headers) || !operator.admits(credential).await? {
        return Err(Refused::Unknown);
    }
    let digest = OperatorToken::digest(credential);
    let token_digest = hex::encode(digest);
    Ok((Subject::Operator { token_digest }, None))
}

#[derive(Deserialize)]
struct SignOut {
    csrf: String,
}

/// `POST /console/sign-out`: ends the session (its CSRF token required) and clears the cookie.
async fn sign_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<SignOut>,
) -> Response {
    if let Some(cookie) = session_cookie(&headers)
        && let Ok(Some(session)) =
            sessions::find(state.sessions.as_ref(), state.clock.as_ref(), &cookie).await
    {
        if !session.csrf_matches(&form.csrf) {
            return page::sign_in(
                StatusCode::FORBIDDEN,
                Some("sign out from the console's own page"),
            );
        }
        if let Err(e) = sessions::close(state.sessions.as_ref(), &cookie).await {
            let e = ApiError::from(e);
            return page::sign_in(e.status, Some(&e.detail));
        }
    }
    let mut response = redirect_to_console(None);
    clear_cookie(&mut response);
    response
}

/// Whether the browser says the request came from another site (`Sec-Fetch-Site`); clients
/// that send no such header are not browsers and need no protection from one.
pub(crate) fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site != "same-origin" && site != "none")
}

fn redirect_to_console(cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(LOCATION, HeaderValue::from_static("/console"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(SET_COOKIE, value);
    }
    response
}

fn clear_cookie(response: &mut Response) {
    let expired = format!("{COOKIE_NAME}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
}

/// What the page tells its script about the caller.
pub(crate) fn role_of(caller: &Caller) -> (&'static str, Option<Role>) {
    match caller {
        Caller::Key(key) => ("tenant", Some(key.role)),
        Caller::Operator => ("operator", None),
    }
}
