//! Contacts: the numbers SMS campaigns text, with their consent. Editors write, any key reads;
//! a number is never logged, and the audit names contacts by id.

use crate::auth::Principal;
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use herald_domain::contacts::{Consent, ConsentInput, Contact, ContactUpdate, NewContact};
use herald_domain::ids::{ContactId, is_valid_id};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// Consent as stated: `opted_in` or `opted_out`, and where it came from.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    #[schema(pattern = "^(opted_in|opted_out)$")]
    pub status: String,
    /// e.g. `web_form`, `paper`, `keyword:START`.
    #[schema(min_length = 1, max_length = 100)]
    pub source: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    /// International (`+14155552671`), or national with `region`.
    #[schema(min_length = 1, max_length = 40, example = "+14155552671")]
    pub phone: String,
    /// ISO 3166 region of a national `phone` (`US`, `GB`).
    #[schema(min_length = 2, max_length = 2)]
    pub region: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub tags: Vec<String>,
    /// Custom fields for personalisation (`{{first_name}}`): names of letters, digits, `_`.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Absent: `unknown` (never texted until it opts in).
    pub consent: Option<ConsentBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditContact {
    /// Absent: unchanged.
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    pub fields: Option<BTreeMap<String, String>>,
    pub consent: Option<ConsentBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    /// `unknown`, `opted_in` or `opted_out`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    pub source: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub id: String,
    /// E.164.
    pub phone: String,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub fields: BTreeMap<String, String>,
    pub consent: ConsentView,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Contact> for ContactView {
    fn from(c: &Contact) -> Self {
        let (at, source) = match &c.consent {
            Consent::Unknown => (None, None),
            Consent::OptedIn { at, source } | Consent::OptedOut { at, source } => {
                (Some(*at), Some(source.clone()))
            }
        };
        ContactView {
            id: c.id.0.clone(),
            phone: c.phone.clone(),
            name: c.name.clone(),
            tags: c.tags.iter().cloned().collect(),
            fields: c.fields.clone(),
            consent: ConsentView {
                status: c.consent.status().into(),
                at,
                source,
            },
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactList {
    pub items: Vec<ContactView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContactsQuery {
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 700)]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<usize>,
}

fn consent(body: Option<ConsentBody>) -> Result<Option<ConsentInput>, ApiError> {
    body.map(|c| {
        let opted_in = match c.status.as_str() {
            "opted_in" => true,
            "opted_out" => false,
            other => {
                return Err(ApiError::validation(vec![
                    herald_domain::publishing::posts::FieldError::new(
                        "consent.status",
                        format!("{other:?} is not opted_in or opted_out"),
                    ),
                ]));
            }
        };
        Ok(ConsentInput {
            opted_in,
            source: c.source,
        })
    })
    .transpose()
}

fn contact_id(raw: &str) -> Result<ContactId, ApiError> {
    if is_valid_id(raw) {
        Ok(ContactId(raw.to_owned()))
    } else {
        Err(ApiError::not_found("contact"))
    }
}

/// Add a contact (editor). A number the tenant already has is a 409 naming its contact; a
/// number erased while opted out comes back opted out.
#[utoipa::path(post, path = "/v1/contacts", tag = "contacts", request_body = CreateContact,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = ContactView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_contact(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(input): ApiJson<CreateContact>,
) -> Result<(StatusCode, Json<ContactView>), ApiError> {
    principal.require(principal.role.can_write_posts(), "write contacts")?;
    let new = NewContact {
        phone: input.phone,
        region: input.region,
        name: input.name,
        tags: input.tags,
        fields: input.fields,
        consent: consent(input.consent)?,
    };
    let contact = state
        .contacts
        .create(&principal.tenant_id, &principal.actor_name(), new)
        .await?;
    Ok((StatusCode::CREATED, Json(ContactView::from(&contact))))
}

/// The tenant's contacts, oldest first.
#[utoipa::path(get, path = "/v1/contacts", tag = "contacts", params(ContactsQuery),
    responses((status = 200, body = ContactList), (status = 400, body = Problem)))]
pub async fn list_contacts(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<ContactsQuery>, QueryRejection>,
) -> Result<Json<ContactList>, ApiError> {
    let Query(q) = query?;
    let (limit, cursor) =
        crate::cursor::page_params(q.limit, 50, q.cursor.as_deref(), is_valid_id)?;
    let page = state
        .contacts
        .list(&principal.tenant_id, cursor.as_deref(), limit)
        .await?;
    Ok(Json(ContactList {
        items: page.items.iter().map(ContactView::from).collect(),
        next_cursor: page.cursor.as_deref().map(crate::cursor::encode),
    }))
}

/// One contact.
#[utoipa::path(get, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = ContactView), (status = 404, body = Problem)))]
pub async fn get_contact(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    let contact = state
        .contacts
        .get(&principal.tenant_id, &contact_id(&id)?)
        .await?;
    Ok(Json(ContactView::from(&contact)))
}

/// Change a contact's name, tags, fields or consent (editor); the number never changes.
#[utoipa::path(patch, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body = EditContact,
    responses((status = 200, body = ContactView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn edit_contact(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EditContact>,
) -> Result<Json<ContactView>, ApiError> {
    principal.require(principal.role.can_write_posts(), "write contacts")?;
    let id = contact_id(&id)?;
    let change = ContactUpdate {
        name: input.name.map(Some),
        tags: input.tags,
        fields: input.fields,
        consent: consent(input.consent)?,
    };
    let contact = state
        .contacts
        .update(&principal.tenant_id, &principal.actor_name(), &id, change)
        .await?;
    Ok(Json(ContactView::from(&contact)))
}

/// Erase a contact (editor): its number is gone from Herald; an opted-out number leaves a
/// one-way hash so that it comes back opted out.
#[utoipa::path(delete, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn erase_contact(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(principal.role.can_write_posts(), "erase contacts")?;
    state
        .contacts
        .erase(
            &principal.tenant_id,
            &principal.actor_name(),
            &contact_id(&id)?,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
