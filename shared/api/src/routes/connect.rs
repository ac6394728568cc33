//! Connecting accounts by OAuth (`herald_domain::connect`): an editor asks for a link
//! (`POST /v1/connect-links`); whoever manages the platform account opens it
//! (`GET /connect/{link}`), is sent to the platform's consent page (`/connect/{link}/start`),
//! and comes back to `/connect/callback/{platform}`, which connects the account to the link's
//! tenant. The `/connect` pages are HTML for a person, under the console's strict policy.

use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::console::page::plain;
use crate::embed_page::escape;
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, HOST, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_domain::connect::{Choosing, ConnectError, Connected, Finished, LINK_PLATFORMS};
use herald_domain::model::{Platform, Role};
use herald_domain::publishing::posts::FieldError;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectLink {
    /// The platform to connect an account of: `x`, `facebook` or `linkedin`.
    #[schema(pattern = "^(x|facebook|linkedin)$")]
    pub platform: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectLinkView {
    /// Open it in a browser (or send it to whoever manages the account): it leads to the
    /// platform's consent page. It is shown only here.
    pub url: String,
    pub platform: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A link that connects a platform account to this tenant by the platform's own sign-in
/// (OAuth 2.0 with PKCE); good for an hour.
#[utoipa::path(post, path = "/v1/connect-links", tag = "accounts", request_body = CreateConnectLink,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = ConnectLinkView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_connect_link(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    headers: HeaderMap,
    ApiJson(input): ApiJson<CreateConnectLink>,
) -> Result<(StatusCode, Json<ConnectLinkView>), ApiError> {
    principal.require(principal.role.can_write_posts(), "connect accounts")?;
    let supported = Platform::parse(&input.platform).filter(|p| LINK_PLATFORMS.contains(p));
    let Some(platform) = supported else {
        return Err(ApiError::validation(vec![FieldError::new(
            "platform",
            "must be x, facebook or linkedin (Mastodon, Bluesky and Instagram accounts are connected with POST /v1/accounts: an access token, an app password, an Instagram Login token)",
        )]));
    };
    let base = public_url(&state, &headers)?;
    let (secret, link) = state
        .connect
        .create_link(&principal.tenant_id, &principal.key_id, platform)
        .await
        .map_err(connect_problem)?;
    audit::record(
        &state,
        &principal,
        &client,
        format!("connect_link:{}", &link.id[..16]),
        "connect_link.created",
        None,
        Some(serde_json::json!({"platform": platform.as_str(), "expires_at": link.expires_at.unix_timestamp()})),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(ConnectLinkView {
            url: format!("{base}/connect/{}", secret.expose_secret()),
            platform: platform.as_str().into(),
            expires_at: link.expires_at,
        }),
    ))
}

/// The API's public base URL: the configured one, else `https://` and the `Host` header.
fn public_url(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(url) = &state.public_url {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
        })
        .map(|h| format!("https://{h}"))
        .ok_or_else(|| ApiError::bad_request("the request names no host to build the link on"))
}

fn connect_problem(e: ConnectError) -> ApiError {
    match e {
        ConnectError::Store(e) => e.into(),
        other => ApiError::validation(vec![FieldError::new("platform", other.to_string())]),
    }
}

/// The page a person sees when something in the flow went wrong, saying what to do.
fn failure(e: &ConnectError) -> Response {
    let status = match e {
        ConnectError::UnknownLink | ConnectError::UnknownState | ConnectError::UnknownChoice => {
            StatusCode::NOT_FOUND
        }
        ConnectError::ExpiredLink => StatusCode::GONE,
        ConnectError::Unavailable(_) | ConnectError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    if let ConnectError::Store(err) = e {
        tracing::error!(error = %err, "the connect flow could not reach its store");
    }
    plain(
        status,
        "Not connected · Herald",
        &format!(
            r#"<main class="narrow"><h1>Not connected</h1><p class="error" role="alert" id="error">{}</p></main>"#,
            escape(&e.to_string())
        ),
    )
}

/// `GET /connect/{link}`: what the link does, and the way on to the platform.
pub async fn show_link(State(state): State<Arc<AppState>>, Path(link): Path<String>) -> Response {
    match state.connect.link(&link).await {
        Err(e) => failure(&e),
        Ok(found) => plain(
            StatusCode::OK,
            "Connect an account · Herald",
            &format!(
                r#"<main class="narrow"><h1>Connect your {platform} account</h1>
<p>You will sign in at {platform} and allow Herald to publish as your account. Herald keeps the tokens {platform} gives it, sealed; never your password.</p>
<p><a id="continue" href="/connect/{link}/start">Continue to {platform}</a></p>
<p class="hint">This link works until {until} UTC.</p></main>"#,
                platform = found.platform.title(),
                link = escape(&link),
                until = found.expires_at.date(),
            ),
        ),
    }
}

/// `GET /connect/{link}/start`: a fresh authorisation, and a redirect to the consent page.
pub async fn start(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(link): Path<String>,
) -> Response {
    let found = match state.connect.link(&link).await {
        Ok(found) => found,
        Err(e) => return failure(&e),
    };
    let redirect_uri = match public_url(&state, &headers) {
        Ok(base) => format!("{base}/connect/callback/{}", found.platform),
        Err(e) => return e.into_response(),
    };
    match state.connect.start(&found, &redirect_uri).await {
        Err(e) => failure(&e),
        Ok(url) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&url) {
                response.headers_mut().insert(LOCATION, location);
            }
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// `GET /connect/callback/{platform}`: the platform's answer; connects the account.
pub async fn callback(
    State(state): State<Arc<AppState>>,
    client: Client,
    Path(platform): Path<String>,
    Query(answer): Query<Callback>,
) -> Response {
    let (Some(platform), Some(oauth_state)) = (Platform::parse(&platform), answer.state) else {
        return failure(&ConnectError::UnknownState);
    };
    let outcome = match (&answer.code, &answer.error) {
        (Some(code), _) => Ok(code.as_str()),
        (None, Some(error)) => Err(error.as_str()),
        (None, None) => Err("no_code"),
    };
    match state.connect.finish(platform, &oauth_state, outcome).await {
        Ok(Finished::Connected(connected)) => done(&state, &client, &connected).await,
        Ok(Finished::Choose(choosing)) => picker(&choosing),
        Err(e) => failure(&e),
    }
}

/// The accounts a sign-in manages, to pick one; the form carries the pending choice's secret.
fn picker(choosing: &Choosing) -> Response {
    let options: String = choosing
        .choices
        .iter()
        .enumerate()
        .map(|(i, (id, name))| {
            format!(
                r#"<label><input type="radio" name="account" value="{id}" id="choice-{id}"{checked}> {name} <span class="hint">({id})</span></label>"#,
                id = escape(id),
                name = escape(name.as_deref().unwrap_or(id)),
                checked = if i == 0 { " checked" } else { "" },
            )
        })
        .collect();
    plain(
        StatusCode::OK,
        "Choose an account · Herald",
        &format!(
            r#"<main class="narrow"><h1>Which {platform} account?</h1>
<form method="post" action="/connect/pick" id="pick"><input type="hidden" name="choice" value="{secret}">{options}
<button type="submit" id="connect">Connect</button></form></main>"#,
            platform = choosing.platform.title(),
            secret = escape(choosing.secret.expose_secret()),
        ),
    )
}

#[derive(Debug, Deserialize)]
pub struct Pick {
    choice: String,
    account: String,
}

/// `POST /connect/pick`: the account picked on the picker page.
pub async fn pick(
    State(state): State<Arc<AppState>>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<Pick>,
) -> Response {
    if crate::console::cross_site(&headers) {
        return plain(
            StatusCode::FORBIDDEN,
            "Not connected · Herald",
            r#"<main class="narrow"><h1>Not connected</h1><p class="error" role="alert" id="error">choose the account on Herald's own page</p></main>"#,
        );
    }
    match state.connect.pick(&form.choice, &form.account).await {
        Ok(connected) => done(&state, &client, &connected).await,
        Err(e) => failure(&e),
    }
}

/// The account is connected: audited as the act of the key that asked for the link (the
/// person who signed in has no key), and said so.
async fn done(state: &AppState, client: &Client, connected: &Connected) -> Response {
    let account = &connected.account;
    let platform = account.platform;
    tracing::info!(account_id = %account.id, %platform, created = connected.created, "account connected by link");
    let actor = Principal {
        tenant_id: account.tenant_id.clone(),
        key_id: connected.link_created_by.clone(),
        role: Role::Editor,
    };
    audit::record(
        state,
        &actor,
        client,
        format!("account:{}", account.id),
        if connected.created { "account.connected" } else { "account.reconnected" },
        None,
        Some(serde_json::json!({"platform": platform.as_str(), "external_id": account.external_id, "status": account.status.as_str(), "via": "connect_link"})),
    )
    .await;
    plain(
        StatusCode::OK,
        "Connected · Herald",
        &format!(
            r#"<main class="narrow"><h1>Connected</h1><p id="connected" data-account="{id}">Your {platform} account {name} is connected to Herald. You can close this page.</p></main>"#,
            id = escape(&account.id.0),
            platform = platform.title(),
            name = escape(
                account
                    .display_name
                    .as_deref()
                    .unwrap_or(&account.external_id)
            ),
        ),
    )
}
