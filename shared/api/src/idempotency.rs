//! The `Idempotency-Key` layer over every POST, PATCH and DELETE. The state machine is the
//! domain's [`herald_domain::idempotency::Idempotency`]; this module only adapts HTTP to it.

use crate::auth::Principal;
use crate::{ApiError, AppState};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_domain::idempotency::{Begin, IdempotencyKey, StoredResponse, fingerprint};
use std::sync::Arc;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed response.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Responses larger than this are not stored (the call still succeeds, once).
const MAX_STORED_RESPONSE: usize = 300 * 1024;
/// Headers worth replaying.
const KEPT_HEADERS: [&str; 2] = ["content-type", "location"];

/// Routes where a key is required: creating a post is the call a retry must never repeat.
fn key_required(method: &Method, path: &str) -> bool {
    method == Method::POST && path == "/v1/posts"
}

/// Routes that change nothing: a key sent to them is not taken.
fn writes_nothing(path: &str) -> bool {
    path == "/v1/posts/preview"
}

pub async fn layer(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if !matches!(
        *request.method(),
        Method::POST | Method::PATCH | Method::DELETE | Method::PUT
    ) || writes_nothing(request.uri().path())
    {
        return next.run(request).await;
    }
    let Some(raw) = request.headers().get(&IDEMPOTENCY_KEY) else {
        if key_required(request.method(), request.uri().path()) {
            return ApiError::bad_request("this endpoint requires an Idempotency-Key header")
                .into_response();
        }
        return next.run(request).await;
    };
    let key = match raw.to_str().ok().map(IdempotencyKey::parse) {
        Some(Ok(key)) => key,
        _ => {
            return ApiError::bad_request(
                "the Idempotency-Key header must be a string of 1 to 255 visible ASCII characters",
            )
            .into_response();
        }
    };
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return ApiError::unauthorized().into_response();
    };

    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, crate::MAX_BODY_BYTES).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Payload too large",
            "the body is too large",
        )
        .into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let fp = fingerprint(parts.method.as_str(), path, &body);

    let ticket = match state
        .idempotency
        .begin(&principal.tenant_id, principal.key_id.as_str(), &key, fp)
        .await
    {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Begin::Replay(stored)) => return replay(stored),
        Ok(Begin::InFlight) => {
            return ApiError::conflict(
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .into_response();
        }
        Ok(Begin::Mismatch) => {
            return ApiError::unprocessable(
                "this Idempotency-Key was already used with a different request",
            )
            .into_response();
        }
        Ok(Begin::OtherCaller) => {
            return ApiError::unprocessable(
                "this Idempotency-Key was already used by another credential; choose a new key",
            )
            .into_response();
        }
        Ok(Begin::Unreadable) => {
            return ApiError::conflict(
                "the request with this Idempotency-Key was carried out, but its response can no \
                 longer be replayed; read the resource instead of retrying",
            )
            .into_response();
        }
        Ok(Begin::Proceed(ticket)) => ticket,
    };

    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let status = response.status();
    // Not stored: server errors (a retry may succeed) and refusals about who is asking
    // (another key, with the right role, may use the same Idempotency-Key).
    if status.is_server_error()
        || matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
        )
    {
        if let Err(e) = state.idempotency.abandon(ticket).await {
            tracing::warn!(error = %e, "could not release an idempotency key; it frees itself when its lease ends");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_STORED_RESPONSE).await else {
        return ApiError::internal(&"response too large to store for idempotency").into_response();
    };
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|h| {
            parts
                .headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(|v| ((*h).to_owned(), v.to_owned()))
        })
        .collect();
    let stored = StoredResponse {
        status: status.as_u16(),
        headers,
        body: bytes.to_vec(),
    };
    if let Err(e) = state.idempotency.complete(ticket, stored).await {
        // The work is done; a retry will see IN_PROGRESS until the lease ends. Say so in the log.
        tracing::error!(error = %e, "could not store the idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
            response.headers_mut().insert(n, v);
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
