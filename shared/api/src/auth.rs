//! API-key authentication. Keys are looked up by their SHA-256 (one GetItem); the secret
//! itself is never stored or logged.

use crate::{ApiError, AppState};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_domain::ids::{ApiKeyId, TenantId};
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
        None => match crate::console::caller(&state, request.headers(), request.method()).await {
            Ok(Some(crate::console::Caller::Key(found))) => *found,
            Ok(Some(crate::console::Caller::Operator)) => {
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
