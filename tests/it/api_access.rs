//! The API function's own wiring over the emulator: who may reach the operator's routes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

/// With `HERALD_OPERATOR_ALLOWED_CIDRS` set, the operator's routes answer only calls from those
/// networks, as API Gateway reports the caller (the right-most `X-Forwarded-For` entry: an
/// address the caller put before it proves nothing), and only with the token.
#[tokio::test]
async fn the_operator_routes_answer_only_from_the_allowed_networks() {
    let aws = herald_tests::local_aws();
    let (_, functions) = herald_tests::bootstrap_functions(aws);
    let mut env = functions["api"].clone();
    env.insert(
        "HERALD_OPERATOR_ALLOWED_CIDRS".into(),
        "10.1.0.0/16, 2001:db8::/32".into(),
    );
    let clients = aws.clients().await;
    let token = herald_tests::operator_token(&clients, &env).await;
    let app = herald_tests::api_router(&clients, &env);
    let metrics = |from: &str, token: &str| {
        let request = Request::get("/v1/metrics")
            .header("authorization", format!("Bearer {token}"))
            .header("x-forwarded-for", from)
            .body(Body::empty())
            .unwrap();
        let app = app.clone();
        async move { app.oneshot(request).await.unwrap().status() }
    };
    assert_eq!(metrics("10.1.2.3", &token).await, StatusCode::OK);
    assert_eq!(metrics("2001:db8::7", &token).await, StatusCode::OK);
    assert_eq!(metrics("192.0.2.1", &token).await, StatusCode::FORBIDDEN);
    assert_eq!(
        metrics("10.1.2.3, 192.0.2.1", &token).await,
        StatusCode::FORBIDDEN,
        "a forged first entry proves nothing"
    );
    assert_eq!(
        metrics("10.1.2.3", "hrld_wrong").await,
        StatusCode::UNAUTHORIZED
    );
}

/// The operator token counts on `GET /v1/health` only from the allowed networks too: from
/// elsewhere it is not the operator (and, being no API key either, is refused).
#[tokio::test]
async fn health_details_for_the_operator_only_from_the_allowed_networks() {
    let aws = herald_tests::local_aws();
    let (_, functions) = herald_tests::bootstrap_functions(aws);
    let mut env = functions["api"].clone();
    env.insert("HERALD_OPERATOR_ALLOWED_CIDRS".into(), "10.1.0.0/16".into());
    let clients = aws.clients().await;
    let token = herald_tests::operator_token(&clients, &env).await;
    let app = herald_tests::api_router(&clients, &env);
    let health = |from: &str| {
        let request = Request::get("/v1/health")
            .header("authorization", format!("Bearer {token}"))
            .header("x-forwarded-for", from)
            .body(Body::empty())
            .unwrap();
        let app = app.clone();
        async move { app.oneshot(request).await.unwrap().status() }
    };
    assert_ne!(health("10.1.2.3").await, StatusCode::UNAUTHORIZED);
    assert_eq!(health("192.0.2.1").await, StatusCode::UNAUTHORIZED);
}
