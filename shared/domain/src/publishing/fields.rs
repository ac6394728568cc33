//! One problem with one field of a request, as a 422 lists it.

use crate::media::MediaViolation;
use crate::publishing::text::TextViolation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// For media: which media, platform and rule, with the limit and what was found.
    pub media: Option<MediaViolation>,
    /// For text: which platform and rule, with the limit and what the text measures there.
    pub text: Option<TextViolation>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            media: None,
            text: None,
        }
    }

    pub fn media(field: impl Into<String>, violation: MediaViolation) -> Self {
        Self {
            field: field.into(),
            message: violation.message(),
            media: Some(violation),
            text: None,
        }
    }

    pub fn text(field: impl Into<String>, violation: TextViolation) -> Self {
        Self {
            field: field.into(),
            message: violation.message(),
            media: None,
            text: Some(violation),
        }
    }
}
