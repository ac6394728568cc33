//! The webhook receiver's HTTP surface: `POST /webhooks/{provider}` (events) and
//! `GET /webhooks/{provider}` (Meta's subscription check, X's CRC). A refusal is one
//! problem+json 401 whatever the reason (which goes to the log's counters only), so a sender
//! learns nothing about why, or about which providers exist.

use crate::error::ApiError;
use crate::rate_limit::Budget;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use herald_domain::inbound::{Challenge, Receipt, Received, WebhookReceiver};
use herald_webhooks::Request;
use std::collections::HashMap;
use std::sync::Arc;

/// The largest event taken: it must fit, escaped and with its envelope, in one SQS message
/// and, kept, in one DynamoDB item (400 KB). Providers' events are a few KB.
pub const MAX_EVENT_BYTES: usize = 192 * 1024;

pub fn router(receiver: Arc<WebhookReceiver>) -> Router {
    Router::new()
        .route("/webhooks/{provider}", post(receive).get(challenge))
        .layer(DefaultBodyLimit::max(MAX_EVENT_BYTES))
        .with_state(receiver)
}

fn refused() -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unverified-webhook",
        "Unverified webhook",
        "the request could not be verified",
    )
    .into_response()
}

fn unavailable() -> Response {
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Service unavailable",
        "try again shortly",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    response
}

async fn receive(
    State(receiver): State<Arc<WebhookReceiver>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        tracing::info!(metric = "webhooks.rejected", provider = %provider, reason = "too_large", "webhook");
        herald_domain::metrics::webhook_verification("unknown", "too_large");
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Payload too large",
            format!("webhook bodies are at most {MAX_EVENT_BYTES} bytes"),
        )
        .into_response();
    };
    let pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let Receipt { outcome, rate } = receiver
        .receive(&provider, &Request::new(&pairs, &body))
        .await;
    let budget = rate.map(|decision| Budget {
        name: "webhook",
        policy: receiver.config.rate,
        decision,
    });
    let reason = match &outcome {
        Received::Refused(r) => r.label(),
        Received::UnknownProvider => "unknown_provider",
        _ => "",
    };
    // A provider nobody configured is not a dimension value: anyone can name one.
    let known = if matches!(outcome, Received::UnknownProvider) {
        "unknown"
    } else {
        provider.as_str()
    };
    herald_domain::metrics::webhook_verification(
        known,
        if reason.is_empty() {
            outcome.metric()
        } else {
            reason
        },
    );
    // One line per request, counted by the template's metric filters.
    tracing::info!(
        metric = %format!("webhooks.{}", outcome.metric()),
        provider = %provider,
        reason,
        old_secret = matches!(outcome, Received::Accepted { old_secret: true, .. }),
        "webhook"
    );
    let mut response = match outcome {
        Received::Accepted { .. } | Received::Replayed => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"received": true})),
        )
            .into_response(),
        Received::Refused(_) | Received::UnknownProvider => refused(),
        Received::Unavailable => unavailable(),
        Received::Throttled => match &budget {
            Some(b) => b.refusal(format!(
                "at most {} webhooks of this provider every {} s; retry in {} s",
                b.policy.limit,
                b.policy.window.whole_seconds(),
                b.decision.reset_seconds
            )),
            None => unavailable(),
        },
    };
    if let Some(b) = &budget {
        b.stamp(&mut response);
    }
    response
}

async fn challenge(
    State(receiver): State<Arc<WebhookReceiver>>,
    Path(provider): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match receiver.challenge(&provider, &query).await {
        Challenge::Answer { body, json } => {
            let kind = if json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, kind)], body).into_response()
        }
        Challenge::Refused(r) => {
            tracing::info!(metric = "webhooks.rejected", provider = %provider, reason = r.label(), "webhook handshake");
            refused()
        }
        Challenge::NotFound => refused(),
        Challenge::Unavailable => unavailable(),
    }
}
