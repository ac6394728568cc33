//! Error classification and header parsing.

use super::*;
use crate::lookup::GRAPH_TIME;
use herald_domain::publishing::platform::RateSignal;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use reqwest::header::HeaderValue;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;

#[test]
fn an_x_5xx_waits_for_retry_after_not_for_the_rate_window() {
    let mut h = HeaderMap::new();
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 800;
    h.insert(
        "x-rate-limit-reset",
        HeaderValue::from_str(&reset.to_string()).unwrap(),
    );
    let body = serde_json::json!({"title": "Service Unavailable"});
    match x_error(StatusCode::SERVICE_UNAVAILABLE, &h, &body, POST) {
        PlatformError::Transient { retry_after, .. } => assert_eq!(retry_after, None),
        other => panic!("{other:?}"),
    }
    match x_error(StatusCode::TOO_MANY_REQUESTS, &h, &body, POST) {
        PlatformError::RateLimited {
            retry_after: Some(wait),
            ..
        } => assert!(wait > Duration::from_secs(790), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    h.insert("retry-after", HeaderValue::from_static("3"));
    match x_error(StatusCode::BAD_GATEWAY, &h, &body, UPLOAD) {
        PlatformError::Transient { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_x_and_meta_budget_headers() {
    let mut h = HeaderMap::new();
    h.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
    h.insert(
        "x-app-usage",
        HeaderValue::from_static(r#"{"call_count":12,"total_cputime":40,"total_time":7}"#),
    );
    h.insert(
        "x-business-use-case-usage",
        HeaderValue::from_static(
            r#"{"123":[{"type":"pages","call_count":96,"total_cputime":1,"total_time":2}]}"#,
        ),
    );
    let s = rate_signal(&h);
    assert_eq!(s.remaining, Some(0));
    assert_eq!(s.app_usage_percent, Some(96));
    assert_eq!(rate_signal(&HeaderMap::new()), RateSignal::default());
    let mut garbage = HeaderMap::new();
    garbage.insert("x-app-usage", HeaderValue::from_static("{not json"));
    garbage.insert("x-rate-limit-remaining", HeaderValue::from_static("lots"));
    assert_eq!(rate_signal(&garbage), RateSignal::default());
}

#[test]
fn graph_times_parse() {
    let t = OffsetDateTime::parse("2025-01-31T12:00:00+0000", GRAPH_TIME).unwrap();
    assert_eq!(t.unix_timestamp(), 1_738_324_800);
}
