//! Who is asking: an API key (`Authorization: Bearer`, looked up by its SHA-256 with one
//! GetItem; the secret itself is never stored or logged), the operator token, or the console's
//! session cookie, checked again on every request as the key behind it would be. The console's
//! pages and sign-in live in `crate::console`.

use crate::{ApiError, AppState};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_domain::console::{self as sessions, Session, Subject};
use herald_domain::ids::{ApiKeyId, TenantId};
use herald_domain::model::ApiKey;
use herald_domain::model::Role;
use herald_domain::publishing::posts::Actor;
use herald_domain::tenants::{self, Refused};
use std::sync::Arc;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub key_id: ApiKeyId,
    pub role: Role,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor {
            tenant_id: self.tenant_id.clone(),
            key_id: self.key_id.clone(),
        }
    }

    /// Who did it, as the audit log names a key: `key:<id>`.
    pub fn actor_name(&self) -> String {
        format!("key:{}", self.key_id)
    }

    pub fn require(&self, allowed: bool, what: &str) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not {what}",
                self.role.as_str()
            )))
        }
    }
}

/// The credential of `Authorization: Bearer <credential>`, when there is a plausible one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 256)
}

pub async fn layer(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let api_key = match bearer(request.headers()) {
        Some(key) => {
            match tenants::authenticate(state.tenants.as_ref(), state.clock.as_ref(), key).await {
                Ok(found) => found,
                Err(refused) => return refusal(refused).into_response(),
            }
        }
        // No key: the console's session cookie, if the request carries one.
        None => match caller(&state, request.headers(), request.method()).await {
            Ok(Some(Caller::Key(found))) => *found,
            Ok(Some(Caller::Operator)) => {
                return ApiError::forbidden(
                    "the operator's console session has no tenant; sign in with a tenant's API key",
                )
                .into_response();
            }
            Ok(None) => return ApiError::unauthorized().into_response(),
            Err(e) => return e.into_response(),
        },
    };
    tracing::Span::current().record("tenant_id", api_key.tenant_id.as_str());
    request.extensions_mut().insert(Principal {
        tenant_id: api_key.tenant_id,
        key_id: api_key.id,
        role: api_key.role,
    });
    next.run(request).await
}

/// The answer to a key that does not let its holder in: 401 for a key that is unknown,
/// revoked or expired (saying which, so its owner knows to replace it), 403 naming the
/// suspension for a suspended tenant's key.
pub(crate) fn refusal(refused: Refused) -> ApiError {
    match refused {
        Refused::Unknown => ApiError::unauthorized(),
        Refused::Revoked | Refused::Expired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            format!("{refused}; use another key"),
        ),
        Refused::Suspended(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "tenant-suspended",
            "Tenant suspended",
            refused.to_string(),
        ),
        Refused::Store(e) => e.into(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Whether the caller's address (as API Gateway reports it) is one the operator token may be
/// used from: any, when no networks are configured.
pub fn from_allowed_network(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    state.operator_networks.is_empty()
        || client_ip(headers)
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| state.operator_networks.iter().any(|n| n.contains(&ip)))
}

/// The address that connected to API Gateway: the right-most `X-Forwarded-For` entry, which
/// API Gateway appends. Anything before it was sent by the client and proves nothing.
pub fn client_ip(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|ip| !ip.is_empty())
}

// ---- The console's session cookie: who it speaks for (`crate::console` serves the pages).

/// The session cookie's name. `__Host-`: only ever set by this origin, over HTTPS (or on a
/// loopback address), for every path, with no `Domain`.
pub const COOKIE_NAME: &str = "__Host-herald-console";
/// The header the console's script sends the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-herald-csrf";

/// Who a console session speaks for, checked again on this request.
#[derive(Debug, Clone)]
pub enum Caller {
    Key(Box<ApiKey>),
    Operator,
}

/// The caller behind the request's session cookie: `None` when it carries none. A cookie
/// naming no live session is 401; a change without the session's CSRF token is 403; a key
/// that no longer lets its holder in is refused as it would be with a bearer key.
pub async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Option<Caller>, ApiError> {
    Ok(caller_and_session(state, headers, method)
        .await?
        .map(|(caller, _)| caller))
}

/// [`caller`], with the session it was found by (the console's page needs its CSRF token).
pub async fn caller_and_session(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Option<(Caller, Session)>, ApiError> {
    let Some(cookie) = session_cookie(headers) else {
        return Ok(None);
    };
    let Some(session) =
        sessions::find(state.sessions.as_ref(), state.clock.as_ref(), &cookie).await?
    else {
        return Err(ended());
    };
    if !matches!(*method, Method::GET | Method::HEAD) {
        let presented = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !session.csrf_matches(presented) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "Forbidden",
                "a change made with the console's session must carry its X-Herald-CSRF token",
            ));
        }
    }
    let caller = subject(state, headers, &session).await?;
    Ok(Some((caller, session)))
}

/// Checks the session's subject as a fresh credential would be checked.
async fn subject(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
) -> Result<Caller, ApiError> {
    match &session.subject {
        Subject::Key { key_hash } => {
            tenants::authenticate_hash(state.tenants.as_ref(), state.clock.as_ref(), key_hash)
                .await
                .map(|key| Caller::Key(Box::new(key)))
                .map_err(refusal)
        }
        Subject::Operator { token_digest } => {
            let digest = hex_digest(token_digest).ok_or_else(ended)?;
            let allowed = from_allowed_network(state, headers);
            match &state.operator {
                Some(operator) if allowed && operator.admits_digest(&digest).await? => {
                    Ok(Caller::Operator)
                }
                _ => Err(ended()),
            }
        }
    }
}

fn ended() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        "the console session has ended; sign in again",
    )
}

fn hex_digest(hex_value: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_value, &mut out).ok().map(|()| out)
}

/// The session cookie's value, if the request carries one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE_NAME)
        .map(|c| c.value().to_owned())
}
