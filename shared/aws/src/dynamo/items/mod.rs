//! Item ↔ domain type conversion for the main table.

use aws_sdk_dynamodb::types::AttributeValue;
use herald_domain::StoreError;
use herald_domain::clock::{epoch_millis, from_epoch_millis};
use herald_domain::ids::{AccountId, ApiKeyId, MediaId, PostId, TenantId};
use herald_domain::media::{Attachment, Dimensions, Inspection, MediaRecord, MediaType};
use herald_domain::model::*;
use herald_domain::publishing::gates::{Breaker, BreakerState, Crisis, WindowSlot};
use herald_domain::secrets::token_crypto::{TokenField, TokenKeys, sealed_key_id};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

pub type Item = HashMap<String, AttributeValue>;

/// The number of partitions of the `due` index: spreads the dispatcher's reads and the
/// index's writes; the dispatcher queries each.
pub const DUE_SHARDS: u32 = 4;

/// `poll_pk` of every account and ingest stream: the `poll` index's one partition (sharding
/// it is the step past tens of thousands of streams).
pub const POLL_PARTITION: &str = "STREAMS";
/// The sparse index of accounts and ingest streams (`poll_pk`), never holding a token.
pub const POLL_INDEX: &str = "poll";

pub fn tenant_pk(t: &TenantId) -> String {
    format!("TENANT#{t}")
}
pub fn post_sk(p: &PostId) -> String {
    format!("POST#{p}")
}
pub fn account_sk(a: &AccountId) -> String {
    format!("ACCOUNT#{a}")
}
pub fn media_sk(m: &MediaId) -> String {
    format!("MEDIA#{m}")
}
/// The sort key of a tenant's pause (crisis mode) item.
pub const CRISIS_SK: &str = "CRISIS";
/// A rate window's counter: one item per scope and window, so a new window needs no reset.
pub fn window_key(slot: &WindowSlot) -> Item {
    key(
        format!("RATE#{}", slot.scope),
        format!("WINDOW#{}", slot.index),
    )
}
/// A platform app's "hold every call until" item.
pub fn app_block_key(platform: Platform) -> Item {
    key(format!("RATE#app#{platform}"), "BLOCK")
}
/// TTL attributes are epoch **seconds**; expiry is still always checked in code.
pub fn ttl_n(t: OffsetDateTime) -> AttributeValue {
    n(t.unix_timestamp())
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
pub fn time_n(t: OffsetDateTime) -> AttributeValue {
    n(epoch_millis(t))
}

pub fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The `calendar` index: a tenant's posts by scheduled time.
pub fn calendar_pk(tenant: &TenantId) -> String {
    format!("CALENDAR#{tenant}")
}

/// The index keys every post item carries (see `post_to_item`).
pub fn calendar_keys(post: &Post) -> [(String, AttributeValue); 2] {
    [
        ("calendar_pk".into(), s(calendar_pk(&post.tenant_id))),
        (
            "calendar_sk".into(),
            s(herald_domain::ports::calendar_position(
                post.scheduled_at,
                &post.id,
            )),
        ),
    ]
}

pub fn due_shard(post: &PostId) -> u32 {
    // FNV-1a: stable across processes and releases, unlike the std hasher.
    post.as_str().bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    }) % DUE_SHARDS
}

pub fn due_pk(shard: u32) -> String {
    format!("DUE#{shard}")
}

pub fn due_sk(at: OffsetDateTime, tenant: &TenantId, post: &PostId) -> String {
    format!("{:013}#{tenant}#{post}", epoch_millis(at).max(0))
}

/// The sparse `inflight` index: posts a publisher claimed from, keyed like `due` by the time
/// to check on them (the claim's lease), in the same shards.
pub fn inflight_pk(shard: u32) -> String {
    format!("INFLIGHT#{shard}")
}

pub fn heartbeat_key(name: &str) -> Item {
    key(format!("HEARTBEAT#{name}"), "HEARTBEAT")
}

/// Reads typed fields out of an item, naming the field that is missing or malformed.
#[derive(Debug)]
pub struct Fields<'a>(pub &'a Item);

fn bad(field: &str) -> StoreError {
    StoreError::Invalid(format!("stored item has a missing or malformed `{field}`"))
}

impl Fields<'_> {
    pub fn str(&self, f: &str) -> Result<String, StoreError> {
        self.opt_str(f).ok_or_else(|| bad(f))
    }
    pub fn opt_str(&self, f: &str) -> Option<String> {
        self.0.get(f).and_then(|v| v.as_s().ok()).cloned()
    }
    pub fn num(&self, f: &str) -> Result<i64, StoreError> {
        self.opt_num(f).ok_or_else(|| bad(f))
    }
    pub fn opt_num(&self, f: &str) -> Option<i64> {
        self.0
            .get(f)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
    }
    pub fn time(&self, f: &str) -> Result<OffsetDateTime, StoreError> {
        self.num(f).map(from_epoch_millis)
    }
    pub fn opt_time(&self, f: &str) -> Option<OffsetDateTime> {
        self.opt_num(f).map(from_epoch_millis)
    }
    pub fn bool(&self, f: &str) -> bool {
        self.0
            .get(f)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false)
    }
    pub fn map(&self, f: &str) -> Option<&Item> {
        self.0.get(f).and_then(|v| v.as_m().ok())
    }
    pub fn list(&self, f: &str) -> Option<&Vec<AttributeValue>> {
        self.0.get(f).and_then(|v| v.as_l().ok())
    }
    pub fn opt_u32(&self, f: &str) -> Result<Option<u32>, StoreError> {
        self.opt_num(f)
            .map(|v| u32::try_from(v).map_err(|_| bad(f)))
            .transpose()
    }
    pub fn u64(&self, f: &str) -> Result<u64, StoreError> {
        u64::try_from(self.num(f)?).map_err(|_| bad(f))
    }
    pub fn media_type(&self, f: &str) -> Result<MediaType, StoreError> {
        MediaType::parse(&self.str(f)?).ok_or_else(|| bad(f))
    }
}

fn dimensions_from(f: &Fields<'_>) -> Result<Option<Dimensions>, StoreError> {
    Ok(match (f.opt_u32("width")?, f.opt_u32("height")?) {
        (Some(width), Some(height)) => Some(Dimensions { width, height }),
        _ => None,
    })
}

fn dimensions_into(m: &mut Item, d: Option<Dimensions>) {
    if let Some(d) = d {
        m.insert("width".into(), n(d.width));
        m.insert("height".into(), n(d.height));
    }
}

/// A media snapshot on a post or variant: what was checked, and which version to read back.
pub fn attachment_to_av(a: &Attachment) -> AttributeValue {
    let mut m = HashMap::from([
        ("id".to_owned(), s(a.media_id.as_str())),
        ("key".to_owned(), s(&a.key)),
        ("etag".to_owned(), s(&a.etag)),
        ("media_type".to_owned(), s(a.media_type.mime())),
        ("size".to_owned(), n(a.size)),
        ("file_name".to_owned(), s(&a.file_name)),
        ("created_at".to_owned(), time_n(a.created_at)),
    ]);
    dimensions_into(&mut m, a.dimensions);
    if let Some(alt_text) = &a.alt_text {
        m.insert("alt_text".to_owned(), s(alt_text));
    }
    AttributeValue::M(m)
}

fn attachment_from_av(v: &AttributeValue) -> Result<Attachment, StoreError> {
    let f = Fields(v.as_m().map_err(|_| bad("media"))?);
    Ok(Attachment {
        media_id: MediaId(f.str("id")?),
        key: f.str("key")?,
        etag: f.str("etag")?,
        media_type: f.media_type("media_type")?,
        size: f.u64("size")?,
        dimensions: dimensions_from(&f)?,
        file_name: f.str("file_name")?,
        created_at: f.time("created_at")?,
        // Absent in items written before alt text, and on media without one.
        alt_text: f.opt_str("alt_text"),
    })
}

fn attachments_to_av(list: &[Attachment]) -> AttributeValue {
    AttributeValue::L(list.iter().map(attachment_to_av).collect())
}

fn attachments_from(f: &Fields<'_>, field: &str) -> Result<Option<Vec<Attachment>>, StoreError> {
    f.list(field)
        .map(|l| l.iter().map(attachment_from_av).collect())
        .transpose()
}

/// Written as `unrecognized` when the content is no accepted type.
const UNRECOGNIZED: &str = "unrecognized";

pub fn media_to_item(m: &MediaRecord) -> Item {
    let mut item = key(tenant_pk(&m.tenant_id), media_sk(&m.id));
    item.insert("type".into(), s("media"));
    item.insert("key".into(), s(&m.key));
    item.insert("file_name".into(), s(&m.file_name));
    item.insert("declared_type".into(), s(m.declared_type.mime()));
    item.insert("declared_size".into(), n(m.declared_size));
    item.insert("created_by".into(), s(m.created_by.as_str()));
    item.insert("created_at".into(), time_n(m.created_at));
    item.insert("upload_expires_at".into(), time_n(m.upload_expires_at));
    if let Some(i) = &m.inspection {
        item.extend(inspection_values(i));
    }
    item
}

/// The attributes an inspection sets on a media item.
pub fn inspection_values(i: &Inspection) -> Item {
    let mut m = HashMap::from([
        ("size".to_owned(), n(i.size)),
        ("etag".to_owned(), s(&i.etag)),
        (
            "detected_type".to_owned(),
            s(i.detected.map_or(UNRECOGNIZED, MediaType::mime)),
        ),
        ("inspected_at".to_owned(), time_n(i.at)),
    ]);
    dimensions_into(&mut m, i.dimensions);
    m
}

pub fn media_from_item(item: &Item) -> Result<MediaRecord, StoreError> {
    let f = Fields(item);
    let pk = f.str("pk")?;
    let sk = f.str("sk")?;
    let inspection = match f.opt_str("etag") {
        None => None,
        Some(etag) => Some(Inspection {
            size: f.u64("size")?,
            etag,
            detected: match f.str("detected_type")?.as_str() {
                UNRECOGNIZED => None,
                other => Some(MediaType::parse(other).ok_or_else(|| bad("detected_type"))?),
            },
            dimensions: dimensions_from(&f)?,
            at: f.time("inspected_at")?,
        }),
    };
    Ok(MediaRecord {
        tenant_id: TenantId(
            pk.strip_prefix("TENANT#")
                .ok_or_else(|| bad("pk"))?
                .to_owned(),
        ),
        id: MediaId(
            sk.strip_prefix("MEDIA#")
                .ok_or_else(|| bad("sk"))?
                .to_owned(),
        ),
        key: f.str("key")?,
        file_name: f.str("file_name")?,
        declared_type: f.media_type("declared_type")?,
        declared_size: f.u64("declared_size")?,
        created_by: ApiKeyId(f.str("created_by")?),
        created_at: f.time("created_at")?,
        upload_expires_at: f.time("upload_expires_at")?,
        inspection,
    })
}

pub fn tenant_to_item(t: &Tenant) -> Item {
    let mut item = key(tenant_pk(&t.id), "TENANT");
    item.insert("type".into(), s("tenant"));
    item.insert("name".into(), s(&t.name));
    item.insert(
        "require_approval".into(),
        AttributeValue::Bool(t.settings.require_approval),
    );
    item.insert(
        "forbid_self_approval".into(),
        AttributeValue::Bool(t.settings.forbid_self_approval),
    );
    if let Some(zone) = &t.settings.time_zone {
        item.insert("time_zone".into(), s(zone));
    }
    if let Some(help) = &t.settings.sms_help_text {
        item.insert("sms_help_text".into(), s(help));
    }
    if let Some(credits) = t.settings.low_balance_credits {
        item.insert("low_balance_credits".into(), n(credits));
    }
    item.insert("created_at".into(), time_n(t.created_at));
    if let Some(sus) = &t.suspended {
        item.insert("suspended_at".into(), time_n(sus.at));
        item.insert("suspension_reason".into(), s(&sus.reason));
    }
    item
}

pub fn tenant_from_item(item: &Item) -> Result<Tenant, StoreError> {
    let f = Fields(item);
    let pk = f.str("pk")?;
    Ok(Tenant {
        id: TenantId(
            pk.strip_prefix("TENANT#")
                .ok_or_else(|| bad("pk"))?
                .to_owned(),
        ),
        name: f.str("name")?,
        settings: TenantSettings {
            require_approval: f.bool("require_approval"),
            forbid_self_approval: f.bool("forbid_self_approval"),
            // Absent in tenants written before zones: UTC.
            time_zone: f.opt_str("time_zone"),
            // Absent until set: the default answer.
            sms_help_text: f.opt_str("sms_help_text"),
            // Absent until set: no low-balance announcements.
            low_balance_credits: f.opt_num("low_balance_credits"),
        },
        created_at: f.time("created_at")?,
        suspended: f.opt_time("suspended_at").map(|at| Suspension {
            at,
            reason: f.opt_str("suspension_reason").unwrap_or_default(),
        }),
    })
}

/// An account item as the domain sees it: its tokens opened with `keys` (which must hold
/// every key [`token_key_ids`] names).
pub fn account_from_item(item: &Item, keys: &TokenKeys) -> Result<Account, StoreError> {
    let f = Fields(item);
    let pk = f.str("pk")?;
    let sk = f.str("sk")?;
    let id = AccountId(
        sk.strip_prefix("ACCOUNT#")
            .ok_or_else(|| bad("sk"))?
            .to_owned(),
    );
    let tenant_id = TenantId(
        pk.strip_prefix("TENANT#")
            .ok_or_else(|| bad("pk"))?
            .to_owned(),
    );
    let access_token = keys.open(&tenant_id, &id, TokenField::Access, &f.str("access_token")?)?;
    let refresh_token = f
        .opt_str("refresh_token")
        .map(|r| keys.open(&tenant_id, &id, TokenField::Refresh, &r))
        .transpose()?;
    Ok(Account {
        id,
        tenant_id,
        platform: Platform::parse(&f.str("platform")?).ok_or_else(|| bad("platform"))?,
        external_id: f.str("external_id")?,
        display_name: f.opt_str("display_name"),
        access_token,
        refresh_token,
        token_expires_at: f.opt_time("token_expires_at"),
        status: AccountStatus::parse(&f.str("status")?).ok_or_else(|| bad("status"))?,
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
        breaker: breaker_from_item(item)?,
    })
}

/// The ids of the keys an item's sealed secrets are under (an account's tokens, a webhook
/// endpoint's signing secrets).
pub fn token_key_ids(item: &Item) -> Vec<&str> {
    ["access_token", "refresh_token", "secret", "previous_secret"]
        .iter()
        .filter_map(|f| item.get(*f).and_then(|v| v.as_s().ok()))
        .filter_map(|v| sealed_key_id(v))
        .collect()
}

/// The breaker's attributes on an account item (absent: closed, no failures).
pub fn breaker_from_item(item: &Item) -> Result<Breaker, StoreError> {
    let f = Fields(item);
    Ok(Breaker {
        state: match f.opt_str("breaker_state") {
            None => BreakerState::Closed,
            Some(v) => BreakerState::parse(&v).ok_or_else(|| bad("breaker_state"))?,
        },
        consecutive_failures: u32::try_from(f.opt_num("breaker_failures").unwrap_or(0))
            .map_err(|_| bad("breaker_failures"))?,
        until: f.opt_time("breaker_until"),
        blocked_until: f.opt_time("blocked_until"),
    })
}

pub fn crisis_to_item(c: &Crisis) -> Item {
    let mut item = key(tenant_pk(&c.tenant_id), CRISIS_SK);
    item.insert("type".into(), s("crisis"));
    // A list, not a string set: an empty list (every platform) is allowed.
    item.insert(
        "platforms".into(),
        AttributeValue::L(c.platforms.iter().map(|p| s(p.as_str())).collect()),
    );
    item.insert(
        "all_platforms".into(),
        AttributeValue::Bool(c.platforms.is_empty()),
    );
    item.insert("reason".into(), s(&c.reason));
    item.insert("started_by".into(), s(c.started_by.as_str()));
    item.insert("started_at".into(), time_n(c.started_at));
    item.insert("expires_at".into(), time_n(c.expires_at));
    item
}

pub fn crisis_from_item(item: &Item) -> Result<Crisis, StoreError> {
    let f = Fields(item);
    let pk = f.str("pk")?;
    let platforms = match item.get("platforms") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| {
                v.as_s()
                    .ok()
                    .and_then(|p| Platform::parse(p))
                    .ok_or_else(|| bad("platforms"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("platforms")),
    };
    Ok(Crisis {
        tenant_id: TenantId(
            pk.strip_prefix("TENANT#")
                .ok_or_else(|| bad("pk"))?
                .to_owned(),
        ),
        platforms,
        reason: f.str("reason")?,
        started_by: ApiKeyId(f.str("started_by")?),
        started_at: f.time("started_at")?,
        expires_at: f.time("expires_at")?,
    })
}

/// The attributes an account upsert sets (all but the key and `created_at`); its tokens sealed
/// under the current key. No refresh token: the stored one is kept (the attribute is not set).
pub fn account_values(a: &Account, keys: &TokenKeys) -> Vec<(&'static str, AttributeValue)> {
    let mut v = vec![
        ("type", s("account")),
        // Every account has streams: the poller finds it through the `poll` index.
        ("poll_pk", s(POLL_PARTITION)),
        ("platform", s(a.platform.as_str())),
        ("external_id", s(&a.external_id)),
        (
            "access_token",
            s(keys.seal(&a.tenant_id, &a.id, TokenField::Access, &a.access_token)),
        ),
        ("status", s(a.status.as_str())),
        ("updated_at", time_n(a.updated_at)),
    ];
    if let Some(refresh) = &a.refresh_token {
        v.push((
            "refresh_token",
            s(keys.seal(&a.tenant_id, &a.id, TokenField::Refresh, refresh)),
        ));
    }
    if let Some(at) = a.token_expires_at {
        v.push(("token_expires_at", time_n(at)));
    }
    if let Some(name) = &a.display_name {
        v.push(("display_name", s(name)));
    }
    v
}

pub fn error_to_av(e: &VariantError) -> AttributeValue {
    let mut m = HashMap::from([
        ("kind".to_owned(), s(e.kind.as_str())),
        ("message".to_owned(), s(&e.message)),
        ("at".to_owned(), time_n(e.at)),
    ]);
    if let Some(code) = &e.platform_code {
        m.insert("platform_code".to_owned(), s(code));
    }
    AttributeValue::M(m)
}

fn error_from_item(item: &Item) -> Result<VariantError, StoreError> {
    let f = Fields(item);
    Ok(VariantError {
        kind: FailureKind::parse(&f.str("kind")?).ok_or_else(|| bad("kind"))?,
        message: f.str("message")?,
        platform_code: f.opt_str("platform_code"),
        at: f.time("at")?,
    })
}

fn variant_to_av(v: &Variant) -> AttributeValue {
    let mut m = HashMap::from([
        ("platform".to_owned(), s(v.platform.as_str())),
        ("status".to_owned(), s(v.status.as_str())),
        ("attempts".to_owned(), n(v.attempts)),
    ]);
    if let Some(t) = &v.text_override {
        m.insert("text_override".to_owned(), s(t));
    }
    if let Some(a) = &v.attempt_id {
        m.insert("attempt_id".to_owned(), s(a));
    }
    if let Some(p) = &v.platform_post_id {
        m.insert("platform_post_id".to_owned(), s(p));
    }
    if let Some(e) = &v.last_error {
        m.insert("last_error".to_owned(), error_to_av(e));
    }
    if let Some(t) = v.published_at {
        m.insert("published_at".to_owned(), time_n(t));
    }
    if v.lookup {
        m.insert("lookup".to_owned(), AttributeValue::Bool(true));
    }
    if let Some(t) = v.claimed_at {
        m.insert("claimed_at".to_owned(), time_n(t));
    }
    if let Some(t) = v.removed_at {
        m.insert("removed_at".to_owned(), time_n(t));
    }
    if let Some(media) = &v.media_override {
        m.insert("media_override".to_owned(), attachments_to_av(media));
    }
    if v.step > 0 {
        m.insert("step".to_owned(), n(v.step));
    }
    if !v.follow_up_ids.is_empty() {
        m.insert("follow_up_ids".to_owned(), strings_to_av(&v.follow_up_ids));
    }
    if let Some(p) = &v.progress {
        m.insert("progress".to_owned(), s(p));
    }
    if !v.options.is_empty() {
        // A small JSON document: `{"linkedin":{"visibility":"connections"}}`.
        let options = serde_json::to_string(&v.options).unwrap_or_default();
        m.insert("options".to_owned(), s(options));
    }
    AttributeValue::M(m)
}

fn variant_from_item(account_id: &str, item: &Item) -> Result<Variant, StoreError> {
    let f = Fields(item);
    Ok(Variant {
        account_id: AccountId(account_id.to_owned()),
        platform: Platform::parse(&f.str("platform")?).ok_or_else(|| bad("platform"))?,
        text_override: f.opt_str("text_override"),
        status: VariantStatus::parse(&f.str("status")?).ok_or_else(|| bad("variant status"))?,
        attempts: u32::try_from(f.num("attempts")?).map_err(|_| bad("attempts"))?,
        attempt_id: f.opt_str("attempt_id"),
        platform_post_id: f.opt_str("platform_post_id"),
        last_error: f.map("last_error").map(error_from_item).transpose()?,
        published_at: f.opt_time("published_at"),
        lookup: f.bool("lookup"),
        claimed_at: f.opt_time("claimed_at"),
        removed_at: f.opt_time("removed_at"),
        media_override: attachments_from(&f, "media_override")?,
        // Absent in items written before threads: the post itself, nothing after it.
        step: f
            .opt_num("step")
            .map(u32::try_from)
            .transpose()
            .map_err(|_| bad("step"))?
            .unwrap_or(0),
        follow_up_ids: strings_from(&f, "follow_up_ids")?,
        progress: f.opt_str("progress"),
        // Absent in items written before options, and on targets without any.
        options: f
            .opt_str("options")
            .map(|o| serde_json::from_str(&o).map_err(|_| bad("options")))
            .transpose()?
            .unwrap_or_default(),
    })
}

pub fn strings_to_av(list: &[String]) -> AttributeValue {
    AttributeValue::L(list.iter().map(s).collect())
}

/// A list of strings (absent: empty).
fn strings_from(f: &Fields<'_>, field: &str) -> Result<Vec<String>, StoreError> {
    f.list(field)
        .map(|l| {
            l.iter()
                .map(|v| v.as_s().cloned().map_err(|_| bad(field)))
                .collect()
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

pub fn post_to_item(p: &Post) -> Item {
    let mut item = key(tenant_pk(&p.tenant_id), post_sk(&p.id));
    item.insert("type".into(), s("post"));
    item.insert("text".into(), s(&p.text));
    item.insert("scheduled_at".into(), time_n(p.scheduled_at));
    item.insert("status".into(), s(p.status.as_str()));
    item.insert("version".into(), n(p.version));
    item.insert("correlation_id".into(), s(&p.correlation_id));
    item.insert("created_by".into(), s(p.created_by.as_str()));
    item.insert("created_at".into(), time_n(p.created_at));
    item.insert("updated_at".into(), time_n(p.updated_at));
    let variants: HashMap<String, AttributeValue> = p
        .variants
        .iter()
        .map(|(id, v)| (id.0.clone(), variant_to_av(v)))
        .collect();
    item.insert("variants".into(), AttributeValue::M(variants));
    if !p.media.is_empty() {
        item.insert("media".into(), attachments_to_av(&p.media));
    }
    if !p.thread.is_empty() {
        item.insert("thread".into(), strings_to_av(&p.thread));
    }
    if let Some(comment) = &p.first_comment {
        item.insert("first_comment".into(), s(comment));
    }
    if let Some(zone) = &p.time_zone {
        item.insert("time_zone".into(), s(zone));
    }
    if let Some(d) = &p.dispatch {
        item.insert("dispatch_token".into(), s(&d.token));
        item.insert("dispatch_lease".into(), time_n(d.lease_until));
        item.insert("dispatch_sent".into(), AttributeValue::Bool(d.sent));
    }
    if let Some(r) = &p.review {
        let mut m = HashMap::from([
            ("decision".to_owned(), s(r.decision.as_str())),
            ("by".to_owned(), s(r.by.as_str())),
            ("at".to_owned(), time_n(r.at)),
        ]);
        if let Some(note) = &r.note {
            m.insert("note".to_owned(), s(note));
        }
        item.insert("review".into(), AttributeValue::M(m));
    }
    item.extend(calendar_keys(p));
    if let Some(due) = p.due_at() {
        item.insert("due_pk".into(), s(due_pk(due_shard(&p.id))));
        item.insert("due_sk".into(), s(due_sk(due, &p.tenant_id, &p.id)));
    }
    item
}

pub fn post_from_item(item: &Item) -> Result<Post, StoreError> {
    let f = Fields(item);
    let pk = f.str("pk")?;
    let sk = f.str("sk")?;
    let variants = f
        .map("variants")
        .ok_or_else(|| bad("variants"))?
        .iter()
        .map(|(id, v)| {
            let m = v.as_m().map_err(|_| bad("variants"))?;
            Ok((AccountId(id.clone()), variant_from_item(id, m)?))
        })
        .collect::<Result<BTreeMap<_, _>, StoreError>>()?;
    let dispatch = match (f.opt_str("dispatch_token"), f.opt_time("dispatch_lease")) {
        (Some(token), Some(lease_until)) => Some(Dispatch {
            token,
            lease_until,
            sent: f.bool("dispatch_sent"),
        }),
        _ => None,
    };
    let review = f
        .map("review")
        .map(|m| {
            let r = Fields(m);
            Ok::<_, StoreError>(Review {
                decision: PostStatus::parse(&r.str("decision")?)
                    .ok_or_else(|| bad("review.decision"))?,
                by: ApiKeyId(r.str("by")?),
                at: r.time("at")?,
                note: r.opt_str("note"),
            })
        })
        .transpose()?;
    Ok(Post {
        tenant_id: TenantId(
            pk.strip_prefix("TENANT#")
                .ok_or_else(|| bad("pk"))?
                .to_owned(),
        ),
        id: PostId(
            sk.strip_prefix("POST#")
                .ok_or_else(|| bad("sk"))?
                .to_owned(),
        ),
        text: f.str("text")?,
        scheduled_at: f.time("scheduled_at")?,
        status: PostStatus::parse(&f.str("status")?).ok_or_else(|| bad("status"))?,
        variants,
        version: u64::try_from(f.num("version")?).map_err(|_| bad("version"))?,
        correlation_id: f.str("correlation_id")?,
        created_by: ApiKeyId(f.str("created_by")?),
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
        dispatch,
        review,
        media: attachments_from(&f, "media")?.unwrap_or_default(),
        thread: strings_from(&f, "thread")?,
        first_comment: f.opt_str("first_comment"),
        time_zone: f.opt_str("time_zone"),
    })
}

#[cfg(test)]
mod tests;
