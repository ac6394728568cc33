//! The port to the social platforms. Clients classify every failure into a
//! [`PlatformError`] so the publisher decides on retries without knowing any platform.

use crate::model::{FailureKind, Platform};
use async_trait::async_trait;
use secrecy::SecretString;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug)]
pub struct PublishRequest<'a> {
    pub platform: Platform,
    pub external_id: &'a str,
    pub access_token: &'a SecretString,
    pub text: &'a str,
    pub correlation_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPost {
    pub platform_post_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlatformError {
    /// Worth trying again (5xx, connection refused before sending, 429 without guidance).
    #[error("transient platform error: {message}")]
    Transient {
        message: String,
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// The platform asked us to slow down.
    #[error("rate limited by the platform: {message}")]
    RateLimited {
        message: String,
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// The token is invalid or revoked: the account must be reconnected.
    #[error("the platform refused the account's token: {message}")]
    Auth {
        message: String,
        code: Option<String>,
    },
    /// The platform refused the content for good (validation, duplicate, policy).
    #[error("the platform refused the post: {message}")]
    Permanent {
        message: String,
        code: Option<String>,
    },
    /// The request was sent but no answer came back: the post may exist.
    #[error("no answer after the request was sent: {message}")]
    Ambiguous { message: String },
}

impl PlatformError {
    pub fn kind(&self) -> FailureKind {
        match self {
            PlatformError::Transient { .. } => FailureKind::Transient,
            PlatformError::RateLimited { .. } => FailureKind::RateLimited,
            PlatformError::Auth { .. } => FailureKind::Auth,
            PlatformError::Permanent { .. } => FailureKind::Permanent,
            PlatformError::Ambiguous { .. } => FailureKind::Ambiguous,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            PlatformError::Transient { message, .. }
            | PlatformError::RateLimited { message, .. }
            | PlatformError::Auth { message, .. }
            | PlatformError::Permanent { message, .. }
            | PlatformError::Ambiguous { message } => message,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            PlatformError::Transient { code, .. }
            | PlatformError::RateLimited { code, .. }
            | PlatformError::Auth { code, .. }
            | PlatformError::Permanent { code, .. } => code.as_deref(),
            PlatformError::Ambiguous { .. } => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PlatformError::Transient { retry_after, .. }
            | PlatformError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[async_trait]
pub trait PlatformClient: Send + Sync + std::fmt::Debug {
    async fn publish(&self, request: PublishRequest<'_>) -> Result<PublishedPost, PlatformError>;
}
