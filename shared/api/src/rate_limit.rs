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
use crate::routes::operator::OPERATOR_SCOPE;
use crate::{ApiError, AppState};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_domain::rate_limits::{OperationClass, RateDecision, RequestCounter, RequestPolicy};
use std::sync::Arc;

/// `RateLimit-Policy`: a budget (IETF httpapi-ratelimit-headers draft).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: where this request left it.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Routes whose `GET` reads many items or messages.
const EXPENSIVE: [&str; 8] = [
    "/v1/analytics",
    "/v1/audit",
    "/v1/audit/verify",
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
    let Some(budget) = spend(
        state.counter.as_ref(),
        policy,
        class.as_str(),
        &scope,
        state.clock.now(),
    )
    .await
    else {
        return next.run(request).await;
    };
    if !budget.decision.allowed {
        return budget.refusal(format!(
            "this key may make {} {} requests every {} s; retry in {} s",
            policy.limit,
            class.as_str(),
            policy.window.whole_seconds(),
            budget.decision.reset_seconds
        ));
    }
    let mut response = next.run(request).await;
    budget.stamp(&mut response);
    response
}

/// One request's spend of a budget: the policy, its name in the headers, and where the
/// request left it.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub name: &'static str,
    pub policy: RequestPolicy,
    pub decision: RateDecision,
}

/// Counts one request against `policy` in `scope`. `None` when the counter could not count:
/// the request is admitted (the counter's table is what failed, so the request most likely
/// fails on its own; refusing it here would turn a partial outage into a full one).
pub async fn spend(
    counter: &dyn RequestCounter,
    policy: RequestPolicy,
    name: &'static str,
    scope: &str,
    now: time::OffsetDateTime,
) -> Option<Budget> {
    match policy.check(counter, scope, now).await {
        Ok(decision) => Some(Budget {
            name,
            policy,
            decision,
        }),
        Err(e) => {
            tracing::warn!(error = %e, budget = name, "the rate limiter could not count; admitted");
            None
        }
    }
}

impl Budget {
    /// The budget's headers, unless the route set its own narrower one.
    pub fn stamp(&self, response: &mut Response) {
        let h = response.headers_mut();
        if h.contains_key(RATELIMIT_POLICY) {
            return;
        }
        if let Ok(v) = HeaderValue::from_str(&self.policy.header(self.name)) {
            h.insert(RATELIMIT_POLICY, v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.decision.header(self.name)) {
            h.insert(RATELIMIT, v);
        }
    }

    /// The `429` past the budget: a problem saying `detail`, the headers and `Retry-After`.
    pub fn refusal(&self, detail: String) -> Response {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            detail,
        )
        .into_response();
        self.stamp(&mut response);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.decision.reset_seconds),
        );
        response
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
