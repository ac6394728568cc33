//! The API's one error type: RFC 9457 `application/problem+json`. 4xx bodies tell the caller
//! what to fix; 5xx bodies say nothing internal (the cause is logged with the correlation id).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_domain::StoreError;
use herald_domain::media::{Measure, MediaError};
use herald_domain::publishing::posts::{FieldError, PostError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

/// The problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Every invalid field, when the problem is validation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    /// Where in the request, e.g. `targets[1].text` or `media[0]`.
    pub field: String,
    pub message: String,
    /// Media problems only: the media id (absent when the rule is about the whole list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// Media and text problems: the platform whose rule it is (absent when it is wrong
    /// anywhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Media problems: `unknown_media`, `not_uploaded`, `unrecognized_content`,
    /// `type_mismatch`, `type_not_accepted`, `too_large`, `too_small`,
    /// `dimensions_unreadable`, `too_many`, `media_required` (Instagram), `not_alone`,
    /// `expires_before_publish`, `quota_objects` or `quota_bytes`. Text problems:
    /// `weighted_length` (X's twitter-text count), `length` (each platform's unit: UTF-16 code
    /// units on LinkedIn, Facebook and Instagram), `bytes` (Bluesky), `hashtags`, `mentions`
    /// (Instagram) or `invalid_character` (X).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Media problems: the limit, as bytes, `{"width","height"}`, a MIME type or list of
    /// them, a count or a time. Text problems: the most the platform allows, in the rule's
    /// unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<serde_json::Value>,
    /// Media problems: what was found, in the limit's terms. Text problems: what the text
    /// measures on that platform (for `invalid_character`, the UTF-16 index of the character).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<serde_json::Value>,
}

impl From<&FieldError> for ProblemField {
    fn from(e: &FieldError) -> Self {
        if let Some(text) = &e.text {
            return Self {
                field: e.field.clone(),
                message: e.message.clone(),
                media_id: None,
                platform: Some(text.platform.as_str().to_owned()),
                rule: Some(text.rule.as_str().to_owned()),
                limit: text.limit.map(serde_json::Value::from),
                actual: text.actual.map(serde_json::Value::from),
            };
        }
        let measure = |m: &Option<Measure>| m.as_ref().and_then(|m| serde_json::to_value(m).ok());
        let media = e.media.as_ref();
        Self {
            field: e.field.clone(),
            message: e.message.clone(),
            media_id: media
                .and_then(|m| m.media_id.as_ref())
                .map(|id| id.0.clone()),
            platform: media
                .and_then(|m| m.platform)
                .map(|p| p.as_str().to_owned()),
            rule: media.map(|m| m.rule.as_str().to_owned()),
            limit: media.and_then(|m| measure(&m.limit)),
            actual: media.and_then(|m| measure(&m.actual)),
        }
    }
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "send a valid API key as `Authorization: Bearer <key>`",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no {what} with that id"),
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Validation failed",
            "the request has invalid fields; see `errors`",
        );
        e.errors = errors;
        e
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Validation failed",
            detail,
        )
    }

    /// Logs `cause` and answers without revealing it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "something went wrong on our side; it has been logged",
        )
    }

    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "a dependency is busy; retry with the same Idempotency-Key",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("/problems/{}", self.slug),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.iter().map(ProblemField::from).collect(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.problem())).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::unavailable(&e),
            StoreError::Conflict => {
                ApiError::conflict("the resource changed concurrently; read it again and retry")
            }
            StoreError::Invalid(_) => ApiError::internal(&e),
        }
    }
}

impl From<PostError> for ApiError {
    fn from(e: PostError) -> Self {
        match e {
            PostError::Invalid(errors) => ApiError::validation(errors),
            PostError::NotFound => ApiError::not_found("post"),
            PostError::InvalidState(detail) => ApiError::conflict(detail),
            PostError::Contended => ApiError::conflict(e.to_string()),
            PostError::Forbidden(detail) => ApiError::forbidden(detail),
            PostError::Store(s) => s.into(),
        }
    }
}

impl From<herald_domain::contacts::ContactError> for ApiError {
    fn from(e: herald_domain::contacts::ContactError) -> Self {
        use herald_domain::contacts::ContactError;
        match e {
            ContactError::Invalid(errors) => ApiError::validation(errors),
            ContactError::NotFound => ApiError::not_found("contact"),
            ContactError::Duplicate(_) | ContactError::Contended => {
                ApiError::conflict(e.to_string())
            }
            ContactError::Store(s) => s.into(),
        }
    }
}

impl From<herald_domain::imports::ImportError> for ApiError {
    fn from(e: herald_domain::imports::ImportError) -> Self {
        use herald_domain::imports::ImportError;
        match e {
            ImportError::Invalid(errors) => ApiError::validation(errors),
            ImportError::NotFound => ApiError::not_found("import"),
            ImportError::NotUploaded => ApiError::conflict(
                "the file has not been uploaded yet: PUT it to the upload URL, then start",
            ),
            e @ ImportError::UploadExpired => ApiError::conflict(e.to_string()),
            ImportError::Store(s) => s.into(),
        }
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Invalid(errors) => ApiError::validation(errors),
            MediaError::NotFound => ApiError::not_found("media"),
            MediaError::Store(s) => s.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::unprocessable(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as `Content-Type: application/json`",
            ),
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<herald_domain::campaigns::CampaignError> for ApiError {
    fn from(e: herald_domain::campaigns::CampaignError) -> Self {
        use herald_domain::campaigns::CampaignError;
        match e {
            CampaignError::Invalid(errors) => ApiError::validation(errors),
            CampaignError::NotFound => ApiError::not_found("campaign"),
            CampaignError::State(_) | CampaignError::Contended | CampaignError::SenderTaken(_) => {
                ApiError::conflict(e.to_string())
            }
            CampaignError::NoRecipients => ApiError::unprocessable(e.to_string()),
            CampaignError::NeedsApproval => ApiError::conflict(e.to_string()),
            CampaignError::SelfApproval => ApiError::forbidden(e.to_string()),
            CampaignError::Insufficient { .. } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient-credits",
                "Insufficient credits",
                e.to_string(),
            ),
            CampaignError::Store(s) => s.into(),
        }
    }
}
