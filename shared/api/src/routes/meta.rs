use crate::dto::Health;
use axum::Json;
use axum::response::IntoResponse;
use utoipa::OpenApi;

/// Liveness of the API function.
#[utoipa::path(get, path = "/v1/health", tag = "meta", security(()), responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", security(()), responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::ApiDoc::openapi())
}
