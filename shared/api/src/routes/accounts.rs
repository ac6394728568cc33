use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::dto::{AccountList, AccountView, ConnectAccount};
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_domain::model::{Account, AccountStatus, Platform};
use herald_domain::publishing::platform::{Ownership, PlatformError};
use herald_domain::publishing::posts::FieldError;
use secrecy::SecretString;
use std::sync::Arc;

/// Asks the platform who `token` belongs to: a token that is not `external_id`'s (or that the
/// platform refuses) is a 422 on the field at fault; a platform that cannot be asked, a 503.
async fn token_owner(
    state: &AppState,
    platform: Platform,
    token: &SecretString,
    external_id: &str,
) -> Result<Ownership, ApiError> {
    match state.owners.ownership(platform, token, external_id).await {
        Ok(owner) if owner.owns => Ok(owner),
        Ok(owner) => Err(ApiError::validation(vec![FieldError::new(
            "external_id",
            format!(
                "the token is {platform} account {}, which may not act as {external_id}",
                owner.actual_id
            ),
        )])),
        Err(PlatformError::Auth { .. } | PlatformError::Permanent { .. }) => {
            Err(ApiError::validation(vec![FieldError::new(
                "access_token",
                format!("{platform} refused this token"),
            )]))
        }
        Err(e) => Err(ApiError::unavailable(&e)),
    }
}

/// Connect a platform account, or refresh the token of one already connected.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = ConnectAccount,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = AccountView, description = "Connected"), (status = 200, body = AccountView, description = "Reconnected"),
        (status = 403, body = Problem),
        (status = 422, body = Problem, description = "Invalid, or the token is not the account's (the platform is asked who the token belongs to)"),
        (status = 503, body = Problem, description = "The platform could not be asked; retry")))]
pub async fn connect_account(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    ApiJson(input): ApiJson<ConnectAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    principal.require(principal.role.can_write_posts(), "connect accounts")?;
    let mut errors = Vec::new();
    let platform = Platform::parse(&input.platform);
    if platform.is_none() {
        errors.push(FieldError::new(
            "platform",
            format!("must be {}", Platform::NAMES),
        ));
    }
    let external_ok = (1..=128).contains(&input.external_id.len())
        && input
            .external_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-:.".contains(&b));
    if !external_ok {
        errors.push(FieldError::new(
            "external_id",
            "must be 1 to 128 letters, digits or _-:.",
        ));
    }
    // Tokens travel in HTTP headers: visible ASCII only.
    let token_ok =
        |t: &str| (1..=4096).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic());
    if !token_ok(&input.access_token) {
        errors.push(FieldError::new(
            "access_token",
            "must be 1 to 4096 visible ASCII characters",
        ));
    }
    if input.refresh_token.as_deref().is_some_and(|t| !token_ok(t)) {
        errors.push(FieldError::new(
            "refresh_token",
            "must be 1 to 4096 visible ASCII characters",
        ));
    }
    if input
        .expires_in
        .is_some_and(|s| !(60..=366 * 86_400).contains(&s))
    {
        errors.push(FieldError::new(
            "expires_in",
            "must be 60 to 31622400 seconds",
        ));
    }
    if input.display_name.as_ref().is_some_and(|n| n.len() > 200) {
        errors.push(FieldError::new(
            "display_name",
            "must be at most 200 characters",
        ));
    }
    let Some(platform) = platform.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let credential = SecretString::from(input.access_token);
    let owner = token_owner(&state, platform, &credential, &input.external_id).await?;
    let now = state.clock.now();
    // Where the platform exchanged the credential (a Bluesky app password) for a session, the
    // session's tokens are kept, under the account's stable id (its DID), and the credential
    // is not.
    let (external_id, access_token, refresh_token, token_expires_at) = match owner.issued {
        Some(issued) => (
            owner.actual_id,
            issued.access_token,
            issued.refresh_token,
            issued.expires_in.map(|d| now + d),
        ),
        None => (
            input.external_id,
            credential,
            // Herald does not refresh Instagram tokens: a refresh token kept for one would
            // only fail ahead of the token's expiry and mark the account for reconnection.
            input
                .refresh_token
                .filter(|_| platform != Platform::Instagram)
                .map(SecretString::from),
            input.expires_in.map(|s| now + time::Duration::seconds(s)),
        ),
    };
    let account = Account {
        id: Account::id_for(platform, &external_id),
        tenant_id: principal.tenant_id.clone(),
        platform,
        external_id,
        display_name: input.display_name.or(owner.name),
        access_token,
        refresh_token,
        token_expires_at,
        status: AccountStatus::Active,
        created_at: now,
        updated_at: now,
        breaker: Default::default(),
    };
    let created = state.accounts.upsert_account(&account).await?;
    let stored = state
        .accounts
        .get_account(&principal.tenant_id, &account.id)
        .await?
        .ok_or_else(|| ApiError::internal(&"account vanished after upsert"))?;
    tracing::info!(account_id = %account.id, platform = %platform, created, "account connected");
    // The token is never audited: only that the account was connected, and by whom.
    audit::record(
        &state,
        &principal,
        &client,
        format!("account:{}", account.id),
        if created { "account.connected" } else { "account.reconnected" },
        None,
        Some(serde_json::json!({"platform": platform.as_str(), "external_id": stored.external_id, "status": stored.status.as_str()})),
    )
    .await;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(AccountView::from(&stored)),
    ))
}

/// Disconnect an account: its token is deleted. Posts still aimed at it fail when a publisher
/// takes them, saying so; reconnecting it later starts afresh.
#[utoipa::path(delete, path = "/v1/accounts/{id}", tag = "accounts", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = AccountView, description = "Disconnected; the account as it was"),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn disconnect_account(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    principal.require(principal.role.can_write_posts(), "disconnect accounts")?;
    let removed = state
        .accounts
        .delete_account(&principal.tenant_id, &herald_domain::ids::AccountId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    tracing::info!(account_id = %removed.id, "account disconnected");
    audit::record(
        &state,
        &principal,
        &client,
        format!("account:{}", removed.id),
        "account.disconnected",
        Some(serde_json::json!({"platform": removed.platform.as_str(), "external_id": removed.external_id, "status": removed.status.as_str()})),
        None,
    )
    .await;
    Ok(Json(AccountView::from(&removed)))
}

/// The tenant's connected accounts.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", responses((status = 200, body = AccountList)))]
pub async fn list_accounts(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Json<AccountList>, ApiError> {
    let accounts = state.accounts.list_accounts(&principal.tenant_id).await?;
    Ok(Json(AccountList {
        items: accounts.iter().map(AccountView::from).collect(),
    }))
}
