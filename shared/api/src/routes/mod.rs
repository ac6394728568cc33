//! Routes, grouped by resource. Handlers are thin: parse, check the role, call the domain,
//! shape the answer.

mod accounts;
mod api_keys;
mod campaigns;
pub mod connect;
mod contacts;
mod crisis;
mod dead_letters;
mod imports;
mod media;
mod meta;
mod metrics;
pub mod operator;
mod posts;
mod resets;
mod review_items;
mod slots;
mod streams;
mod tenant;
mod wallet;
mod webhook_endpoints;

use crate::AppState;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

pub use accounts::*;
pub use api_keys::*;
pub use campaigns::*;
pub use contacts::*;
pub use crisis::*;
pub use dead_letters::*;
pub use imports::*;
pub use media::*;
pub use meta::*;
pub use metrics::*;
pub use posts::*;
pub use resets::*;
pub use review_items::*;
pub use slots::*;
pub use streams::*;
pub use tenant::*;
pub use wallet::*;
pub use webhook_endpoints::*;

/// Routes that need no API key (and `/v1/openapi.json`, which `crate::router` adds: the
/// document lists these routes, so it lives above them).
pub fn public() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/health", get(meta::health))
        .route("/connect/{link}", get(connect::show_link))
        .route("/connect/{link}/start", get(connect::start))
        .route("/connect/callback/{platform}", get(connect::callback))
        .route("/connect/pick", post(connect::pick))
}

/// Routes for the operator token (see [`operator`]).
pub fn operator() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/tenants", post(operator::create_tenant))
        .route("/v1/tenants/{id}/suspend", post(operator::suspend_tenant))
        .route("/v1/tenants/{id}/resume", post(operator::resume_tenant))
        .route("/v1/metrics", get(metrics::metrics))
        .route(
            "/v1/app-blocks/{platform}",
            axum::routing::delete(resets::clear_app_block),
        )
}

pub fn authenticated() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/v1/tenant",
            get(tenant::get_tenant).patch(tenant::update_tenant),
        )
        .route(
            "/v1/api-keys",
            post(api_keys::create_api_key).get(api_keys::list_api_keys),
        )
        .route(
            "/v1/api-keys/{id}",
            axum::routing::delete(api_keys::revoke_api_key),
        )
        .route("/v1/api-keys/{id}/rotate", post(api_keys::rotate_api_key))
        .route(
            "/v1/accounts",
            post(accounts::connect_account).get(accounts::list_accounts),
        )
        .route("/v1/connect-links", post(connect::create_connect_link))
        .route(
            "/v1/accounts/{id}",
            axum::routing::delete(accounts::disconnect_account),
        )
        .route(
            "/v1/accounts/{id}/reset-circuit",
            post(resets::reset_circuit),
        )
        .route("/v1/posts", post(posts::create_post).get(posts::list_posts))
        .route("/v1/posts/preview", post(posts::preview_post))
        .route(
            "/v1/posts/{id}",
            get(posts::get_post)
                .patch(posts::edit_post)
                .delete(posts::cancel_post),
        )
        .route("/v1/media", post(media::create_media))
        .route("/v1/media/{id}", get(media::get_media))
        .route("/v1/posts/{id}/unpublish", post(posts::unpublish_post))
        .route("/v1/posts/{id}/approve", post(posts::approve_post))
        .route("/v1/posts/{id}/schedule", post(posts::schedule_post))
        .route("/v1/posts/{id}/reject", post(posts::reject_post))
        .route("/v1/audit", get(crate::audit::list_audit))
        .route("/v1/audit/verify", get(crate::audit::verify_audit))
        .route("/v1/dead-letters", get(dead_letters::list_dead_letters))
        .route(
            "/v1/dead-letters/requeue",
            post(dead_letters::requeue_dead_letters),
        )
        .route(
            "/v1/dead-letters/{id}",
            get(dead_letters::get_dead_letter).delete(dead_letters::delete_dead_letter),
        )
        .route(
            "/v1/dead-letters/{id}/requeue",
            post(dead_letters::requeue_dead_letter),
        )
        .route("/v1/embed/tokens", post(crate::embed::create_token))
        .route("/v1/analytics", get(crate::analytics::get_analytics))
        .route("/v1/review-items", get(review_items::list_review_items))
        .route("/v1/streams", get(streams::list_streams))
        .route(
            "/v1/streams/{key}",
            axum::routing::patch(streams::update_stream),
        )
        .route("/v1/streams/{key}/retry", post(resets::retry_stream))
        .route(
            "/v1/contacts",
            post(contacts::create_contact).get(contacts::list_contacts),
        )
        .route(
            "/v1/contacts/{id}",
            get(contacts::get_contact)
                .patch(contacts::edit_contact)
                .delete(contacts::erase_contact),
        )
        .route(
            "/v1/imports",
            post(imports::create_import).get(imports::list_imports),
        )
        .route("/v1/imports/{id}", get(imports::get_import))
        .route("/v1/imports/{id}/start", post(imports::start_import))
        .route("/v1/imports/{id}/issues", get(imports::import_issues))
        .route(
            "/v1/campaigns",
            post(campaigns::create_campaign).get(campaigns::list_campaigns),
        )
        .route("/v1/campaigns/{id}", get(campaigns::get_campaign))
        .route(
            "/v1/campaigns/{id}/estimate",
            post(campaigns::estimate_campaign),
        )
        .route(
            "/v1/campaigns/{id}/enqueue",
            post(campaigns::enqueue_campaign),
        )
        .route(
            "/v1/campaigns/{id}/approve",
            post(campaigns::approve_campaign),
        )
        .route(
            "/v1/campaigns/{id}/cancel",
            post(campaigns::cancel_campaign),
        )
        .route("/v1/wallet", get(wallet::get_wallet))
        .route("/v1/wallet/ledger", get(wallet::get_ledger))
        .route(
            "/v1/posting-slots",
            get(slots::get_posting_slots).put(slots::put_posting_slots),
        )
        .route(
            "/v1/crisis",
            get(crisis::get_crisis)
                .put(crisis::start_crisis)
                .delete(crisis::lift_crisis),
        )
        .route(
            "/v1/webhook-endpoints",
            post(webhook_endpoints::create_webhook_endpoint)
                .get(webhook_endpoints::list_webhook_endpoints),
        )
        .route(
            "/v1/webhook-endpoints/{id}",
            get(webhook_endpoints::get_webhook_endpoint)
                .delete(webhook_endpoints::delete_webhook_endpoint),
        )
        .route(
            "/v1/webhook-endpoints/{id}/rotate-secret",
            post(webhook_endpoints::rotate_webhook_endpoint_secret),
        )
        .route(
            "/v1/webhook-endpoints/{id}/attempts",
            get(webhook_endpoints::list_webhook_attempts),
        )
}
