//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use crate::dto::*;
use crate::error::{Problem, ProblemField};
use crate::routes;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub mod contract;

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald API", version = "1", description = "Schedule posts, with media, to X, Facebook Pages and LinkedIn; each is published exactly once."),
    paths(
        routes::health, routes::metrics, document,
        routes::get_tenant, routes::update_tenant,
        routes::create_api_key, routes::list_api_keys, routes::revoke_api_key, routes::rotate_api_key,
        routes::connect_account, routes::list_accounts, routes::disconnect_account,
        routes::connect::create_connect_link,
        routes::create_post, routes::preview_post, routes::schedule_post, routes::list_posts, routes::get_post, routes::edit_post, routes::cancel_post, routes::unpublish_post,
        routes::approve_post, routes::reject_post,
        routes::create_media, routes::get_media,
        routes::get_crisis, routes::start_crisis, routes::lift_crisis,
        routes::get_posting_slots, routes::put_posting_slots,
        routes::get_wallet, routes::get_ledger,
        routes::create_campaign, routes::list_campaigns, routes::get_campaign, routes::estimate_campaign, routes::enqueue_campaign, routes::approve_campaign, routes::cancel_campaign,
        routes::create_contact, routes::list_contacts, routes::get_contact, routes::edit_contact, routes::erase_contact,
        routes::create_import, routes::list_imports, routes::get_import, routes::start_import, routes::import_issues,
        crate::audit::list_audit, crate::audit::verify_audit,
        routes::list_dead_letters, routes::get_dead_letter, routes::requeue_dead_letter,
        routes::requeue_dead_letters, routes::delete_dead_letter,
        routes::create_webhook_endpoint, routes::list_webhook_endpoints, routes::get_webhook_endpoint,
        routes::delete_webhook_endpoint, routes::rotate_webhook_endpoint_secret, routes::list_webhook_attempts,
        routes::operator::create_tenant, routes::operator::suspend_tenant, routes::operator::resume_tenant,
        crate::embed::create_token, crate::embed::page, crate::embed::data,
        crate::analytics::get_analytics,
        routes::list_review_items, routes::list_streams, routes::update_stream,
        routes::reset_circuit, routes::retry_stream, routes::clear_app_block,
    ),
    components(schemas(Problem, ProblemField, ConnectAccount, routes::connect::CreateConnectLink, routes::connect::ConnectLinkView, AccountView, AccountList, CreatePost, EditPost, TargetInput,
        PostView, Unpublished, StillLiveView, TargetOptionsInput, LinkedInOptionsInput, VisibilityInput, FacebookOptionsInput, XOptionsInput, ReplySettingsInput, VariantView, ErrorView, ReviewView, PostList, PostPreview, PreviewTargetView, NewPostStatus, ScheduleDraft, DstInput, ReviewInput, TenantView, TenantSettingsInput,
        CreateApiKey, CreatedApiKey, ApiKeyView, ApiKeyList, RotateApiKey, RotatedApiKey, SuspendTenant,
        HealthAnswer, HealthCheck, CrisisInput, CrisisView, AuditView, AuditList, crate::audit::AuditVerdict, crate::audit::AuditFinding, routes::DeadLetterView, routes::DeadLetterList, routes::RequeueInput, routes::RequeueResult,
        CreateMedia, MediaView, UploadView, DimensionsView, CreateTenant, CreatedTenant,
        crate::embed::CreateEmbedToken, crate::embed::EmbedTokenView,
        crate::analytics::AnalyticsView, crate::analytics::TotalsView,
        routes::ReviewItemView, routes::ReviewItemList,
        routes::CreateContact, routes::EditContact, routes::ConsentBody, routes::ConsentView, routes::ContactView, routes::ContactList,
        routes::CreateImport, routes::ImportRows, routes::ImportView, routes::ImportList, routes::RowProblemView, routes::RowIssueView, routes::RowIssueList,
        routes::AudienceBody, routes::CreateCampaign, routes::AudienceView, routes::ProgressView, routes::EnqueueProblemView, routes::CampaignApprovalView, routes::QuietHoursBody, routes::QuietHoursView, routes::CampaignView, routes::CampaignList, routes::EstimateView,
        routes::WalletView, routes::LedgerEntryView, routes::LedgerList,
        routes::SlotRuleBody, routes::PostingSlotsBody, routes::PostingSlotsView, ScheduleChoice,
        routes::CircuitView, routes::CircuitReset, routes::AppBlockCleared,
        routes::StreamView, routes::StreamList, routes::StreamCountersView, routes::UpdateStream,
        routes::CreateWebhookEndpoint, routes::WebhookEndpointView, routes::WebhookEndpointWithSecret,
        routes::WebhookEndpointList, routes::DeliveryAttemptView, routes::DeliveryAttemptList)),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
)]
#[derive(Debug)]
pub struct ApiDoc;

#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "openapi", tag = "meta", security(()), responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn document() -> impl axum::response::IntoResponse {
    axum::Json(contract::document())
}
