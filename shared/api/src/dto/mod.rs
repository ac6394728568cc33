//! What goes over the wire. Inputs refuse unknown fields (a typo is an error, not a no-op);
//! outputs never carry tokens or key hashes.

use herald_domain::health::{Check, Observed, Status};
use herald_domain::media::{Attachment, MediaRecord, PresignedUpload};
use herald_domain::model::{Account, ApiKey, Post, Tenant, Variant, VariantError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

mod options;
mod posts;
pub use options::*;
pub use posts::*;

/// `Debug` shows no token (the log scan's `access_token`, `refresh_token`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectAccount {
    /// `x`, `facebook`, `linkedin`, `mastodon`, `bluesky` or `instagram`.
    #[schema(pattern = "^(x|facebook|linkedin|mastodon|bluesky|instagram)$")]
    pub platform: String,
    /// The platform's id for the account: X user id, Facebook Page id, LinkedIn organization id
    /// or URN, Mastodon account id (on the instance Herald is set up with), Bluesky handle or
    /// DID (stored as the DID), Instagram professional account's user id.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_:.-]+$")]
    pub external_id: String,
    /// The OAuth access token (visible ASCII, as an HTTP header carries it). Stored, never
    /// returned. The platform is asked whose it is. Bluesky: an app password, which signs in
    /// to a session whose tokens are stored instead (the password is not). Instagram: an
    /// Instagram Login token (it is not refreshed: connect again with a new one).
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    pub access_token: String,
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    /// The OAuth refresh token, if the platform issued one. Stored encrypted, never returned.
    /// Connecting again without one keeps the stored one.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires (the platform's `expires_in`); absent: it does
    /// not expire. Herald refreshes it shortly before.
    #[serde(default)]
    #[schema(minimum = 60, maximum = 31622400)]
    pub expires_in: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub platform: String,
    pub external_id: String,
    pub display_name: Option<String>,
    /// `active` or `needs_reauth`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When the access token expires, if it does.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub token_expires_at: Option<OffsetDateTime>,
    /// The account's circuit: `closed`, `open` (failing; publishing waits) or `half_open`
    /// (one probe is trying). An admin closes it with `POST /v1/accounts/{id}/reset-circuit`.
    #[schema(pattern = "^(closed|open|half_open)$")]
    pub circuit: String,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.0.clone(),
            platform: a.platform.as_str().to_owned(),
            external_id: a.external_id.clone(),
            display_name: a.display_name.clone(),
            status: a.status.as_str().to_owned(),
            created_at: a.created_at,
            updated_at: a.updated_at,
            token_expires_at: a.token_expires_at,
            circuit: a.breaker.state.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub require_approval: bool,
    pub forbid_self_approval: bool,
    /// The IANA zone wall-clock schedules are read in (`UTC` unless set).
    pub time_zone: String,
    /// The answer texted to HELP or INFO (absent: the default, naming the tenant and STOP).
    pub sms_help_text: Option<String>,
    /// `wallet.low_balance` is announced when a change takes the balance below this (absent:
    /// never).
    pub low_balance_credits: Option<i64>,
    /// Set while the operator has suspended the tenant (its keys are refused).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub suspended_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspension_reason: Option<String>,
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.0.clone(),
            name: t.name.clone(),
            require_approval: t.settings.require_approval,
            forbid_self_approval: t.settings.forbid_self_approval,
            time_zone: t.settings.zone().to_string(),
            sms_help_text: t.settings.sms_help_text.clone(),
            low_balance_credits: t.settings.low_balance_credits,
            suspended_at: t.suspended.as_ref().map(|s| s.at),
            suspension_reason: t.suspended.as_ref().map(|s| s.reason.clone()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSettingsInput {
    /// Posts wait for an approver before they are scheduled (absent: unchanged).
    pub require_approval: Option<bool>,
    /// A post cannot be approved with the key that created it (absent: unchanged).
    pub forbid_self_approval: Option<bool>,
    /// The IANA zone for wall-clock schedules (absent: unchanged).
    #[schema(min_length = 1, max_length = 64)]
    pub time_zone: Option<String>,
    /// The answer texted to HELP or INFO, 1 to 320 characters (absent: unchanged; `""`: back
    /// to the default).
    #[schema(max_length = 320)]
    pub sms_help_text: Option<String>,
    /// Announce `wallet.low_balance` when a change takes the balance below this many credits,
    /// 1 to 1,000,000,000 (absent: unchanged; `0`: never).
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub low_balance_credits: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `admin`, `editor`, `approver` or `viewer`.
    #[schema(pattern = "^(admin|editor|approver|viewer)$")]
    pub role: String,
    /// When the key stops working (RFC 3339, at least a minute and at most two years ahead);
    /// absent: it works until revoked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// `Debug` shows no key.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub id: String,
    /// Shown once; only its hash is stored.
    pub key: String,
    pub role: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub role: String,
    /// How the key starts and ends (`hrld_1a2b…9f3c`); null for keys issued before hints.
    pub hint: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The last use, to the hour.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The key that replaced it, once rotated (a key is rotated once).
    pub rotated_to: Option<String>,
}

impl ApiKeyView {
    pub fn new(k: &ApiKey, now: OffsetDateTime) -> Self {
        Self {
            id: k.id.0.clone(),
            name: k.name.clone(),
            role: k.role.as_str().into(),
            hint: (!k.hint.is_empty()).then(|| k.hint.clone()),
            status: k.state(now).as_str().into(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
            rotated_to: k.rotated_to.as_ref().map(|id| id.0.clone()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKey {
    /// How long the old key keeps working: 0 to 604800 seconds (7 days), default 86400.
    #[schema(minimum = 0, maximum = 604800)]
    pub overlap_seconds: Option<i64>,
}

/// `Debug` shows no key.
#[derive(Serialize, ToSchema)]
pub struct RotatedApiKey {
    /// The new key, its secret shown once.
    pub key: CreatedApiKey,
    /// The old key, now expiring at the end of the overlap.
    pub previous: ApiKeyView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendTenant {
    /// Shown to the tenant's callers in every refusal; not only whitespace.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Not only whitespace.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// Posts wait for an approver before they are scheduled.
    #[serde(default)]
    pub require_approval: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedTenant {
    pub id: String,
    pub name: String,
    /// The tenant's first admin key, shown once.
    pub api_key: CreatedApiKey,
}

/// A health answer in the IETF health-check draft's format (`application/health+json`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthAnswer {
    /// `pass`, `warn` or `fail`: the worst of the checks (liveness alone: `pass`).
    pub status: String,
    /// The API's major version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The release: the crate version and the build (`HERALD_BUILD` at build time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_id: Option<String>,
    pub service_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// By `<component>:<measurement>`, one entry per component instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeMap<String, Vec<HealthCheck>>>,
}

impl HealthAnswer {
    pub fn live() -> Self {
        Self {
            status: "pass".into(),
            version: None,
            release_id: None,
            service_id: "herald".into(),
            description: None,
            checks: None,
        }
    }

    pub fn detailed(status: Status, checks: BTreeMap<String, Vec<HealthCheck>>) -> Self {
        Self {
            status: status.as_str().into(),
            version: Some("1".into()),
            release_id: Some(format!(
                "{}+{}",
                env!("CARGO_PKG_VERSION"),
                option_env!("HERALD_BUILD").unwrap_or("dev")
            )),
            description: Some("Herald's publishing backend and every dependency it reaches".into()),
            checks: Some(checks),
            ..Self::live()
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub component_id: String,
    /// `datastore`, `queue`, `component` or `system`.
    pub component_type: String,
    /// A count, a time in `observedUnit`, or an RFC 3339 time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_value: Option<serde_json::Value>,
    /// `ms` or `s`, when the value is a duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_unit: Option<String>,
    /// `pass`, `warn` or `fail`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Why the status is not `pass`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl From<Check> for HealthCheck {
    fn from(c: Check) -> Self {
        let (value, unit) = match c.observed {
            None => (None, None),
            Some(Observed::Count(n)) => (Some(n.into()), None),
            Some(Observed::Millis(ms)) => (Some(ms.into()), Some("ms")),
            Some(Observed::Seconds(s)) => (Some(s.into()), Some("s")),
            Some(Observed::Time(t)) => (
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
                    .map(serde_json::Value::from),
                None,
            ),
        };
        Self {
            component_id: c.component_id,
            component_type: c.component_type.into(),
            observed_value: value,
            observed_unit: unit.map(Into::into),
            status: c.status.as_str().into(),
            time: c.time,
            output: c.output,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrisisInput {
    /// Why publishing is paused; shown to every operator.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
    /// `x`, `facebook`, `linkedin`, `mastodon`, `bluesky`, `instagram`; absent or empty pauses
    /// every platform.
    #[schema(max_items = 6, inline, value_type = Option<Vec<PlatformName>>)]
    pub platforms: Option<Vec<String>>,
    /// When the pause ends by itself (RFC 3339); default 24 hours from now, at most 30 days.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CrisisView {
    pub active: bool,
    /// The paused platforms; empty when every platform is paused.
    pub platforms: Vec<String>,
    pub all_platforms: bool,
    pub reason: Option<String>,
    pub started_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl CrisisView {
    pub fn from_crisis(c: Option<&herald_domain::publishing::gates::Crisis>) -> Self {
        match c {
            None => Self {
                active: false,
                platforms: vec![],
                all_platforms: false,
                reason: None,
                started_by: None,
                started_at: None,
                expires_at: None,
            },
            Some(c) => Self {
                active: true,
                platforms: c.platforms.iter().map(|p| p.as_str().to_owned()).collect(),
                all_platforms: c.platforms.is_empty(),
                reason: Some(c.reason.clone()),
                started_by: Some(c.started_by.0.clone()),
                started_at: Some(c.started_at),
                expires_at: Some(c.expires_at),
            },
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// e.g. `post:post_...`, `variant:post_...:acc_...`, `crisis`, `account:acc_...`
    #[param(min_length = 1, max_length = 200)]
    pub entity: Option<String>,
    /// e.g. `key:key_...`, `system:publisher`
    #[param(min_length = 1, max_length = 200)]
    pub actor: Option<String>,
    /// e.g. `post.approved`, `publish.published`, `crisis.started`
    #[param(min_length = 1, max_length = 200)]
    pub action: Option<String>,
    /// Records at or after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    /// Records before this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub to: Option<OffsetDateTime>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 700)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub entity: String,
    pub seq: u64,
    pub action: String,
    pub actor: String,
    pub old: Option<serde_json::Value>,
    pub new: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub hash: String,
    pub prev_hash: String,
}

impl From<&herald_domain::audit::AuditRecord> for AuditView {
    fn from(r: &herald_domain::audit::AuditRecord) -> Self {
        let e = &r.entry;
        Self {
            entity: e.entity.clone(),
            seq: r.seq,
            action: e.action.clone(),
            actor: e.actor.clone(),
            old: e.old.clone(),
            new: e.new.clone(),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            at: e.at,
            hash: r.hash.clone(),
            prev_hash: r.prev_hash.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMedia {
    /// `image/jpeg`, `image/png`, `image/gif`, `image/webp`, `video/mp4`, `video/quicktime`
    /// or `application/pdf`. The upload must send it, and its content must be of this type.
    #[schema(
        pattern = "^(image/jpeg|image/png|image/gif|image/webp|video/mp4|video/quicktime|application/pdf)$"
    )]
    pub content_type: String,
    /// The file's name, shown back and used as a document's title: no path, no control
    /// characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^/\\\\\\x00-\\x1f\\x7f]*[^/\\\\\\x00-\\x1f\\x7f\\s][^/\\\\\\x00-\\x1f\\x7f]*$"
    )]
    pub file_name: String,
    /// The file's exact size in bytes: the upload URL accepts exactly this many (at most the
    /// largest any platform takes of its type: 1 GiB for video).
    #[schema(minimum = 1, maximum = 1073741824)]
    pub size: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    pub url: String,
    /// `PUT`.
    pub method: String,
    /// Send exactly these headers with the bytes.
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl From<&PresignedUpload> for UploadView {
    fn from(u: &PresignedUpload) -> Self {
        Self {
            url: u.url.clone(),
            method: u.method.clone(),
            headers: u.headers.iter().cloned().collect(),
            expires_at: u.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DimensionsView {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaView {
    pub id: String,
    /// `pending_upload`, `expired` (the upload URL ran out unused) or `uploaded`.
    pub status: String,
    pub file_name: String,
    /// As declared when the media was created.
    pub content_type: String,
    /// As declared when the media was created.
    pub declared_size: u64,
    /// Once uploaded: the type by content (magic bytes), or `null` when it is none Herald
    /// accepts.
    pub detected_type: Option<String>,
    /// Once uploaded.
    pub size: Option<u64>,
    /// Once uploaded, for images.
    pub dimensions: Option<DimensionsView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When storage drops the file; a post must be published before then.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Only in the answer to `POST /v1/media`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadView>,
}

impl MediaView {
    pub fn new(m: &MediaRecord, now: OffsetDateTime, upload: Option<&PresignedUpload>) -> Self {
        let i = m.inspection.as_ref();
        Self {
            id: m.id.0.clone(),
            status: m.status(now).as_str().to_owned(),
            file_name: m.file_name.clone(),
            content_type: m.declared_type.mime().to_owned(),
            declared_size: m.declared_size,
            detected_type: i.and_then(|i| i.detected).map(|t| t.mime().to_owned()),
            size: i.map(|i| i.size),
            dimensions: i.and_then(|i| i.dimensions).map(|d| DimensionsView {
                width: d.width,
                height: d.height,
            }),
            created_at: m.created_at,
            expires_at: m.expires_at(),
            upload: upload.map(UploadView::from),
        }
    }
}

herald_domain::debug_fields!(
    ConnectAccount,
    platform,
    external_id,
    display_name,
    expires_in
);
herald_domain::debug_fields!(CreatedApiKey, id, role, name);
herald_domain::debug_fields!(RotatedApiKey, previous);
herald_domain::debug_fields!(CreatedTenant, id, name, api_key);

/// A platform's name in a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlatformName {
    X,
    Facebook,
    Linkedin,
    Mastodon,
    Bluesky,
    Instagram,
}
