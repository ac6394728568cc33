//! A budget on every authenticated route, per key and operation class, shared by every
//! instance through the domain's [`RequestCounter`] (DynamoDB: one conditional UpdateItem per
//! request, the only extra write). Every limited answer says its budget in `RateLimit-Policy`
//! and `RateLimit` (IETF httpapi-ratelimit-headers draft); past it the answer is `429` with a
//! problem and `Retry-After`, and nothing behind it runs.
//!
//! Classes: `GET` on the routes that cost many store or queue calls (analytics, the audit
//! log, dead letters, review items, delivery attempts, metrics) is an expensive read, any
//! other `GET` a read, anything else a write; every operator-token request is an operator
//! request. A route's own, narrower budget (embed tokens) keeps its headers.

use crate::auth::Principal;
use crate::embed::{RATELIMIT, RATELIMIT_POLICY};
use crate::routes::operator::OPERATOR_SCOPE;
use crate::{ApiError, AppState};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_domain::rate_limits::{OperationClass, RateDecision, RequestPolicy};
use std::sync::Arc;

/// Routes whose `GET` reads many items or messages.
const EXPENSIVE: [&str; 7] = [
    "/v1/analytics",
    "/v1/audit",
    "/v1/dead-letters",
    "/v1/dead-letters/{id}",
    "/v1/review-items",
    "/v1/webhook-endpoints/{id}/attempts",
    "/v1/metrics",
];

/// The class of a request to `route` (the matched route, never the raw path).
pub fn classify(method: &Method, route: &str, operator: bool) -> OperationClass {
    if operator {
        OperationClass::Operator
    } else if *method != Method::GET && *method != Method::HEAD {
        OperationClass::Write
    } else if EXPENSIVE.contains(&route) {
        OperationClass::ExpensiveRead
    } else {
        OperationClass::Read
    }
}

pub async fn layer(
    State(state): State<Arc<AppState>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return next.run(request).await;
    };
    let route = matched.as_ref().map_or("", MatchedPath::as_str);
    let class = classify(
        request.method(),
        route,
        principal.tenant_id.as_str() == OPERATOR_SCOPE,
    );
    let policy = state.rate_limits.policy(class);
    let scope = format!("apikey#{}#{}", principal.key_id, class.as_str());
    let decision = match policy
        .check(state.counter.as_ref(), &scope, state.clock.now())
        .await
    {
        Ok(decision) => decision,
        Err(e) => {
            // The counter's table is what failed: the request most likely fails on its own;
            // refusing it here would turn a partial outage into a full one.
            tracing::warn!(error = %e, class = class.as_str(), "the rate limiter could not count; admitted");
            return next.run(request).await;
        }
    };
    if !decision.allowed {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!(
                "this key may make {} {} requests every {} s; retry in {} s",
                policy.limit,
                class.as_str(),
                policy.window.whole_seconds(),
                decision.reset_seconds
            ),
        )
        .into_response();
        headers(&mut response, &policy, &decision, class);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(decision.reset_seconds),
        );
        return response;
    }
    let mut response = next.run(request).await;
    headers(&mut response, &policy, &decision, class);
    response
}

/// The budget's headers, unless the route set its own narrower one.
fn headers(
    response: &mut Response,
    policy: &RequestPolicy,
    decision: &RateDecision,
    class: OperationClass,
) {
    let h = response.headers_mut();
    if h.contains_key(RATELIMIT_POLICY) {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&policy.header(class.as_str())) {
        h.insert(RATELIMIT_POLICY, v);
    }
    if let Ok(v) = HeaderValue::from_str(&decision.header(class.as_str())) {
        h.insert(RATELIMIT, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_in_their_classes() {
        assert_eq!(
            classify(&Method::GET, "/v1/posts", false),
            OperationClass::Read
        );
        assert_eq!(
            classify(&Method::GET, "/v1/analytics", false),
            OperationClass::ExpensiveRead
        );
        assert_eq!(
            classify(&Method::POST, "/v1/dead-letters/requeue", false),
            OperationClass::Write
        );
        assert_eq!(
            classify(&Method::GET, "/v1/posts", true),
            OperationClass::Operator
        );
    }
}
