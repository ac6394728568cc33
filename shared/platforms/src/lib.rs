//! HTTP clients for the platforms Herald publishes to. Each turns the platform's answer into a
//! [`PublishedPost`] or a classified [`PlatformError`]:
//!
//! | signal | class |
//! |---|---|
//! | connection refused / DNS (nothing sent) | transient |
//! | timeout or connection lost after sending | ambiguous (never blindly retried) |
//! | 429, X code 88, Meta codes 4, 17, 32, 613 | rate limited (Retry-After / reset honoured) |
//! | 401, Meta code 190, LinkedIn INVALID_ACCESS_TOKEN | auth |
//! | 5xx, Meta codes 1, 2 | transient |
//! | other 4xx | permanent, with the platform's message |
//!
//! Tokens go in headers only and never into a log line or an error message.

use async_trait::async_trait;
use herald_domain::model::Platform;
use herald_domain::platform::{PlatformClient, PlatformError, PublishRequest, PublishedPost};
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Base URLs, e.g. `https://api.x.com`, `https://graph.facebook.com/v21.0`,
/// `https://api.linkedin.com`.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub x: String,
    pub facebook: String,
    pub linkedin: String,
}

/// The LinkedIn API version sent as `LinkedIn-Version`.
const LINKEDIN_VERSION: &str = "202501";

#[derive(Debug, Clone)]
pub struct HttpPlatforms {
    http: reqwest::Client,
    endpoints: Endpoints,
}

impl HttpPlatforms {
    /// `timeout` bounds a whole request; past it the outcome is ambiguous.
    pub fn new(endpoints: Endpoints, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3).min(timeout))
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, endpoints })
    }

    async fn publish_x(&self, req: &PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        let url = format!("{}/2/tweets", self.endpoints.x.trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .bearer_auth(req.access_token.expose_secret())
            .json(&serde_json::json!({ "text": req.text }))
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await?;
        if status.is_success() {
            return body["data"]["id"]
                .as_str()
                .map(|id| PublishedPost {
                    platform_post_id: id.to_owned(),
                })
                .ok_or_else(|| missing_id("X"));
        }
        let message = body["detail"]
            .as_str()
            .or(body["title"].as_str())
            .unwrap_or("no detail given");
        let code = body["errors"][0]["code"].as_i64().map(|c| c.to_string());
        let message = format!("X answered {}: {message}", status.as_u16());
        let retry_after = retry_after(&headers).or_else(|| x_rate_limit_reset(&headers));
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => PlatformError::RateLimited {
                message,
                code,
                retry_after,
            },
            _ if code.as_deref() == Some("88") => PlatformError::RateLimited {
                message,
                code,
                retry_after,
            },
            StatusCode::UNAUTHORIZED => PlatformError::Auth { message, code },
            s if s.is_server_error() => PlatformError::Transient {
                message,
                code,
                retry_after,
            },
            _ => PlatformError::Permanent { message, code },
        })
    }

    async fn publish_facebook(
        &self,
        req: &PublishRequest<'_>,
    ) -> Result<PublishedPost, PlatformError> {
        let url = format!(
            "{}/{}/feed",
            self.endpoints.facebook.trim_end_matches('/'),
            req.external_id
        );
        let response = self
            .http
            .post(url)
            .bearer_auth(req.access_token.expose_secret())
            .form(&[("message", req.text)])
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await?;
        if status.is_success() {
            return body["id"]
                .as_str()
                .map(|id| PublishedPost {
                    platform_post_id: id.to_owned(),
                })
                .ok_or_else(|| missing_id("Facebook"));
        }
        let error = &body["error"];
        let meta_code = error["code"].as_i64();
        let code = meta_code.map(|c| c.to_string());
        let message = format!(
            "Facebook answered {}: {}",
            status.as_u16(),
            error["message"].as_str().unwrap_or("no detail given")
        );
        let retry_after = retry_after(&headers);
        Err(match meta_code {
            Some(190) => PlatformError::Auth { message, code },
            Some(4 | 17 | 32 | 613) => PlatformError::RateLimited {
                message,
                code,
                retry_after,
            },
            Some(1 | 2) => PlatformError::Transient {
                message,
                code,
                retry_after,
            },
            _ if status == StatusCode::TOO_MANY_REQUESTS => PlatformError::RateLimited {
                message,
                code,
                retry_after,
            },
            _ if status.is_server_error() => PlatformError::Transient {
                message,
                code,
                retry_after,
            },
            _ if status == StatusCode::UNAUTHORIZED => PlatformError::Auth { message, code },
            _ => PlatformError::Permanent { message, code },
        })
    }

    async fn publish_linkedin(
        &self,
        req: &PublishRequest<'_>,
    ) -> Result<PublishedPost, PlatformError> {
        let url = format!(
            "{}/rest/posts",
            self.endpoints.linkedin.trim_end_matches('/')
        );
        let author = if req.external_id.starts_with("urn:") {
            req.external_id.to_owned()
        } else {
            format!("urn:li:organization:{}", req.external_id)
        };
        let response = self
            .http
            .post(url)
            .bearer_auth(req.access_token.expose_secret())
            .header("LinkedIn-Version", LINKEDIN_VERSION)
            .header("X-Restli-Protocol-Version", "2.0.0")
            .json(&serde_json::json!({
                "author": author,
                "commentary": req.text,
                "visibility": "PUBLIC",
                "distribution": { "feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": [] },
                "lifecycleState": "PUBLISHED",
                "isReshareDisabledByAuthor": false
            }))
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            // Drain the (empty) body so a dropped connection here counts as ambiguous too.
            response.bytes().await.map_err(transport_error)?;
            return headers
                .get("x-restli-id")
                .and_then(|v| v.to_str().ok())
                .map(|id| PublishedPost {
                    platform_post_id: id.to_owned(),
                })
                .ok_or_else(|| missing_id("LinkedIn"));
        }
        let body = read_json(response).await?;
        let code = body["code"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| body["serviceErrorCode"].as_i64().map(|c| c.to_string()));
        let message = format!(
            "LinkedIn answered {}: {}",
            status.as_u16(),
            body["message"].as_str().unwrap_or("no detail given")
        );
        let retry_after = retry_after(&headers);
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => PlatformError::RateLimited {
                message,
                code,
                retry_after,
            },
            StatusCode::UNAUTHORIZED => PlatformError::Auth { message, code },
            s if s.is_server_error() => PlatformError::Transient {
                message,
                code,
                retry_after,
            },
            _ => PlatformError::Permanent { message, code },
        })
    }
}

#[async_trait]
impl PlatformClient for HttpPlatforms {
    async fn publish(&self, request: PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        match request.platform {
            Platform::X => self.publish_x(&request).await,
            Platform::Facebook => self.publish_facebook(&request).await,
            Platform::Linkedin => self.publish_linkedin(&request).await,
        }
    }
}

/// Connect failures happened before anything was sent and are safe to retry; anything else
/// (timeout, reset, a body cut short) may have reached the platform.
fn transport_error(e: reqwest::Error) -> PlatformError {
    if e.is_connect() {
        PlatformError::Transient {
            message: "could not connect to the platform".into(),
            code: None,
            retry_after: None,
        }
    } else if e.is_timeout() {
        PlatformError::Ambiguous {
            message: "the platform did not answer in time after the request was sent".into(),
        }
    } else {
        PlatformError::Ambiguous {
            message: "the connection to the platform broke after the request was sent".into(),
        }
    }
}

async fn read_json(response: Response) -> Result<Value, PlatformError> {
    let bytes = response.bytes().await.map_err(transport_error)?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn missing_id(platform: &str) -> PlatformError {
    // The platform said yes but gave no id: the post probably exists, so this is ambiguous.
    PlatformError::Ambiguous {
        message: format!("{platform} accepted the post but returned no id"),
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// X's `x-rate-limit-reset` is the epoch second the window resets.
fn x_rate_limit_reset(headers: &HeaderMap) -> Option<Duration> {
    let reset: u64 = headers
        .get("x-rate-limit-reset")?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}
