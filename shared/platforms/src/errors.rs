//! Each platform's answers classified into Herald's errors, and the budget headers read into a
//! [`RateSignal`]: the table in the crate's documentation, as code.

use herald_domain::publishing::platform::{PlatformError, RateSignal};
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// X's error answer, classified. `x-rate-limit-reset` says when the *rate window* resets: it
/// is the wait for a 429 (or error 88) only, never for a 5xx, which X sends with the same
/// headers while the window may be minutes from its end.
pub(crate) fn x_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    what: &str,
) -> PlatformError {
    let message = body["detail"]
        .as_str()
        .or(body["title"].as_str())
        .unwrap_or("no detail given");
    let code = body["errors"][0]["code"].as_i64().map(|c| c.to_string());
    let message = format!("X answered {}{what}: {message}", status.as_u16());
    let rate_limited = status == StatusCode::TOO_MANY_REQUESTS || code.as_deref() == Some("88");
    match status {
        _ if rate_limited => PlatformError::RateLimited {
            message,
            code,
            retry_after: retry_after(headers).or_else(|| x_rate_limit_reset(headers)),
        },
        StatusCode::UNAUTHORIZED => PlatformError::Auth { message, code },
        s if s.is_server_error() => PlatformError::Transient {
            message,
            code,
            retry_after: retry_after(headers),
        },
        _ => PlatformError::Permanent { message, code },
    }
}

pub(crate) fn facebook_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    what: &str,
) -> PlatformError {
    meta_error("Facebook", status, headers, body, what)
}

/// Instagram's Graph API answers failures as Facebook's does, and two of its own: the
/// account's content-publishing limit (code 9, subcode 2207042: 100 posts in 24 hours) is a
/// rate limit, waited out for an hour unless told otherwise, and "media not ready" (code 9007,
/// subcode 2207027) is transient.
pub(crate) fn instagram_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    what: &str,
) -> PlatformError {
    let error = meta_error("Instagram", status, headers, body, what);
    let subcode = body["error"]["error_subcode"].as_i64();
    match (body["error"]["code"].as_i64(), subcode) {
        (Some(9), Some(2_207_042)) => PlatformError::RateLimited {
            message: error.message().to_owned(),
            code: Some("9".into()),
            retry_after: Some(retry_after(headers).unwrap_or(Duration::from_secs(3600))),
        },
        (Some(9007), Some(2_207_027)) => PlatformError::Transient {
            message: error.message().to_owned(),
            code: Some("9007".into()),
            retry_after: retry_after(headers),
        },
        _ => error,
    }
}

/// A Graph API refusal (`{"error": {"code", "message"}}`): code 190 a refused token, 4, 17, 32
/// and 613 rate limits, 1 and 2 transient, whatever the status.
fn meta_error(
    platform: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    what: &str,
) -> PlatformError {
    let error = &body["error"];
    let meta_code = error["code"].as_i64();
    let code = meta_code.map(|c| c.to_string());
    let message = format!(
        "{platform} answered {}{what}: {}",
        status.as_u16(),
        error["message"].as_str().unwrap_or("no detail given")
    );
    let retry_after = retry_after(headers);
    match meta_code {
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
    }
}

/// What most platforms' refusals mean by their status alone: 429 rate limited (Retry-After,
/// else when the window resets), 401 a refused token, 5xx transient, any other refusal
/// permanent.
pub(crate) fn by_status(
    status: StatusCode,
    headers: &HeaderMap,
    message: String,
    code: Option<String>,
) -> PlatformError {
    match status {
        StatusCode::TOO_MANY_REQUESTS => PlatformError::RateLimited {
            message,
            code,
            retry_after: retry_after(headers).or_else(|| rate_signal(headers).reset_after),
        },
        StatusCode::UNAUTHORIZED => PlatformError::Auth { message, code },
        s if s.is_server_error() => PlatformError::Transient {
            message,
            code,
            retry_after: retry_after(headers),
        },
        _ => PlatformError::Permanent { message, code },
    }
}

pub(crate) fn linkedin_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    what: &str,
) -> PlatformError {
    let code = body["code"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| body["serviceErrorCode"].as_i64().map(|c| c.to_string()));
    let message = format!(
        "LinkedIn answered {}{what}: {}",
        status.as_u16(),
        body["message"].as_str().unwrap_or("no detail given")
    );
    by_status(status, headers, message, code)
}

/// Reads the platforms' budget headers: X's `x-rate-limit-remaining`/`-reset` (Mastodon's
/// `X-RateLimit-Remaining`/`-Reset`, the reset an ISO 8601 time), Meta's
/// `X-App-Usage` (`{"call_count":..,"total_cputime":..,"total_time":..}`, percent) and
/// `X-Business-Use-Case-Usage` (`{"<id>":[{"call_count":..,...}]}`).
pub fn rate_signal(headers: &HeaderMap) -> RateSignal {
    let header_json = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str::<Value>(v).ok())
    };
    let usage_of = |v: &Value| {
        ["call_count", "total_cputime", "total_time"]
            .iter()
            .filter_map(|k| v[*k].as_u64())
            .max()
    };
    let app = header_json("x-app-usage").as_ref().and_then(usage_of);
    let business = header_json("x-business-use-case-usage").and_then(|v| {
        v.as_object()?
            .values()
            .flat_map(|list| list.as_array().cloned().unwrap_or_default())
            .filter_map(|entry| usage_of(&entry))
            .max()
    });
    RateSignal {
        remaining: headers
            .get("x-rate-limit-remaining")
            .or_else(|| headers.get("x-ratelimit-remaining"))
            .or_else(|| headers.get("ratelimit-remaining"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok()),
        reset_after: x_rate_limit_reset(headers)
            .or_else(|| iso_rate_limit_reset(headers))
            .or_else(|| epoch_reset(headers, "ratelimit-reset")),
        app_usage_percent: app
            .max(business)
            .map(|p| u32::try_from(p).unwrap_or(u32::MAX)),
    }
}

/// Connect failures happened before anything was sent and are safe to retry; anything else
/// (timeout, reset, a body cut short) may have reached the platform.
pub(crate) fn transport_error(e: reqwest::Error) -> PlatformError {
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

/// An upload creates nothing anyone sees: whether or not it reached the platform, sending it
/// again is safe, so every transport failure is transient.
pub(crate) fn upload_transport_error(e: reqwest::Error) -> PlatformError {
    PlatformError::Transient {
        message: if e.is_connect() {
            "could not connect to the platform to upload media".into()
        } else if e.is_timeout() {
            "the platform did not answer the media upload in time; it is sent again".into()
        } else {
            "the media upload to the platform broke off; it is sent again".into()
        },
        code: None,
        retry_after: None,
    }
}

pub(crate) async fn read_upload_json(response: Response) -> Result<Value, PlatformError> {
    let bytes = response.bytes().await.map_err(upload_transport_error)?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub(crate) fn upload_without_id(platform: &str) -> PlatformError {
    PlatformError::Transient {
        message: format!("{platform} accepted a media upload but returned no id; it is sent again"),
        code: None,
        retry_after: None,
    }
}

/// A lookup sends nothing that creates a post: every transport failure is simply transient.
pub(crate) fn lookup_transport_error(_: reqwest::Error) -> PlatformError {
    lookup_failed()
}

pub(crate) fn lookup_failed() -> PlatformError {
    PlatformError::Transient {
        message: "looking the post up on the platform failed".into(),
        code: None,
        retry_after: None,
    }
}

pub(crate) async fn read_json(response: Response) -> Result<Value, PlatformError> {
    let bytes = response.bytes().await.map_err(transport_error)?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub(crate) fn missing_id(platform: &str) -> PlatformError {
    // The platform said yes but gave no id: the post probably exists, so this is ambiguous.
    PlatformError::Ambiguous {
        message: format!("{platform} accepted the post but returned no id"),
    }
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Mastodon's `X-RateLimit-Reset` is the time the window resets (`2025-01-31T12:00:00.000Z`).
fn iso_rate_limit_reset(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("x-ratelimit-reset")?.to_str().ok()?;
    let reset =
        time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    let wait = reset - time::OffsetDateTime::now_utc();
    Some(Duration::from_secs(
        wait.whole_seconds().max(1).unsigned_abs(),
    ))
}

/// X's `x-rate-limit-reset` is the epoch second the window resets.
pub(crate) fn x_rate_limit_reset(headers: &HeaderMap) -> Option<Duration> {
    epoch_reset(headers, "x-rate-limit-reset")
}

/// A reset header holding the epoch second the window resets (X's; Bluesky's
/// `ratelimit-reset`), as a wait from now.
fn epoch_reset(headers: &HeaderMap, name: &str) -> Option<Duration> {
    let reset: u64 = headers.get(name)?.to_str().ok()?.parse().ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}
