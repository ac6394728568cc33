//! Each platform's item schema. An item either becomes an [`IngestedItem`] or a reason,
//! which the runner turns into a review item: nothing is dropped silently.

use super::{IngestedItem, Insight, RawItem, StreamKind};
use crate::model::Platform;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Checks `item` against the schema of `platform`'s `kind` of stream.
pub fn validate(
    platform: Platform,
    kind: StreamKind,
    item: &RawItem,
) -> Result<IngestedItem, String> {
    match kind {
        StreamKind::Posts => validate_post(platform, item),
        StreamKind::Insights => validate_insight(item),
    }
}

/// An insight value as the timeline client flattens Graph's answer: `{"id":
/// "<metric>/<period>/<end_time>", "name", "period", "value", "end_time"}`.
fn validate_insight(item: &RawItem) -> Result<IngestedItem, String> {
    let raw = &item.raw;
    if !raw.is_object() {
        return Err("the insight is not a JSON object".into());
    }
    let field = |name: &str| match &raw[name] {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Null => Err(format!("`{name}` is missing")),
        other => Err(format!(
            "`{name}` must be a non-empty string, not {}",
            kind(other)
        )),
    };
    let metric = field("name")?;
    let period = field("period")?;
    let end_time = field("end_time")?;
    let created_at = parse_graph_time(&end_time)
        .ok_or_else(|| format!("`end_time` {end_time:?} is not a time"))?;
    let value = match &raw["value"] {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("`value` {n} is not a whole number of at least 0"))?,
        Value::Null => return Err("`value` is missing".into()),
        other => return Err(format!("`value` must be a number, not {}", kind(other))),
    };
    // The client keys a value by its metric, period and end time.
    let id = field("id")?;
    Ok(IngestedItem {
        platform_id: id,
        text: String::new(),
        created_at,
        insight: Some(Insight {
            metric,
            period,
            value,
        }),
    })
}

fn validate_post(platform: Platform, item: &RawItem) -> Result<IngestedItem, String> {
    let raw = &item.raw;
    if !raw.is_object() {
        return Err("the item is not a JSON object".into());
    }
    let id = match &raw["id"] {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Null => return Err("`id` is missing".into()),
        _ => return Err("`id` must be a non-empty string".into()),
    };
    let (text_field, time_field) = match platform {
        Platform::X => ("text", "created_at"),
        Platform::Facebook => ("message", "created_time"),
        Platform::Linkedin => ("commentary", "createdAt"),
        // The reader adds the text read back from the status's HTML `content`.
        Platform::Mastodon => ("text", "created_at"),
        // A Bluesky record's value, with its AT URI as `id`.
        Platform::Bluesky => ("text", "createdAt"),
        // An Instagram media listing's.
        Platform::Instagram => ("caption", "timestamp"),
    };
    if platform == Platform::X && !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`id` {id:?} is not a numeric tweet id"));
    }
    let text = match &raw[text_field] {
        Value::String(s) => s.clone(),
        // A Facebook Page post without a message (a photo or a share), an Instagram post
        // without a caption: valid posts.
        Value::Null if matches!(platform, Platform::Facebook | Platform::Instagram) => {
            String::new()
        }
        Value::Null => return Err(format!("`{text_field}` is missing")),
        other => {
            return Err(format!(
                "`{text_field}` must be a string, not {}",
                kind(other)
            ));
        }
    };
    let created_at = match (platform, &raw[time_field]) {
        (_, Value::Null) => return Err(format!("`{time_field}` is missing")),
        (Platform::Linkedin, Value::Number(n)) => n
            .as_i64()
            .and_then(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            })
            .ok_or_else(|| format!("`{time_field}` is not epoch milliseconds"))?,
        (Platform::Facebook | Platform::Instagram, Value::String(s)) => {
            parse_graph_time(s).ok_or_else(|| format!("`{time_field}` {s:?} is not a time"))?
        }
        (Platform::X | Platform::Mastodon | Platform::Bluesky, Value::String(s)) => {
            OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|_| format!("`{time_field}` {s:?} is not an RFC 3339 time"))?
        }
        (_, other) => {
            return Err(format!(
                "`{time_field}` has the wrong type ({})",
                kind(other)
            ));
        }
    };
    if platform == Platform::X && text.chars().count() > 25_000 {
        return Err("`text` is longer than any post X allows".into());
    }
    Ok(IngestedItem {
        platform_id: id,
        text,
        created_at,
        insight: None,
    })
}

/// Graph API times: `2026-01-01T12:00:00+0000` (RFC 3339 without the colon in the offset).
fn parse_graph_time(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let (head, offset) = s.split_at(s.len().checked_sub(5)?);
    let fixed = format!("{head}{}:{}", &offset[..3], &offset[3..]);
    OffsetDateTime::parse(&fixed, &Rfc3339).ok()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> RawItem {
        RawItem {
            platform_id: v["id"].as_str().map(Into::into),
            raw: v,
        }
    }

    #[test]
    fn a_good_tweet_passes() {
        let ok = validate(
            Platform::X,
            StreamKind::Posts,
            &item(json!({"id": "17", "text": "hi", "created_at": "2026-01-01T00:00:00.000Z"})),
        )
        .unwrap();
        assert_eq!(ok.platform_id, "17");
        assert_eq!(ok.text, "hi");
    }

    #[test]
    fn each_problem_has_its_reason() {
        for (v, reason) in [
            (json!("x"), "not a JSON object"),
            (
                json!({"text": "t", "created_at": "2026-01-01T00:00:00Z"}),
                "`id` is missing",
            ),
            (
                json!({"id": "a1", "text": "t", "created_at": "2026-01-01T00:00:00Z"}),
                "numeric",
            ),
            (
                json!({"id": "1", "created_at": "2026-01-01T00:00:00Z"}),
                "`text` is missing",
            ),
            (
                json!({"id": "1", "text": 42, "created_at": "2026-01-01T00:00:00Z"}),
                "a number",
            ),
            (
                json!({"id": "1", "text": "t", "created_at": "yesterday"}),
                "RFC 3339",
            ),
        ] {
            let err = validate(Platform::X, StreamKind::Posts, &item(v.clone())).unwrap_err();
            assert!(err.contains(reason), "{v}: {err}");
        }
    }

    #[test]
    fn mastodon_and_bluesky_shapes() {
        let md = validate(
            Platform::Mastodon,
            StreamKind::Posts,
            &item(
                json!({"id": "113000000000000001", "content": "<p>hi</p>", "text": "hi",
                         "created_at": "2026-01-01T10:00:00.000Z"}),
            ),
        )
        .unwrap();
        assert_eq!((md.text.as_str(), md.created_at.hour()), ("hi", 10));
        let bs = validate(
            Platform::Bluesky,
            StreamKind::Posts,
            &item(
                json!({"id": "at://did:plc:a/app.bsky.feed.post/3k", "text": "hi",
                         "createdAt": "2026-01-01T11:00:00.000Z"}),
            ),
        )
        .unwrap();
        assert_eq!(bs.created_at.hour(), 11);
        let err = validate(
            Platform::Mastodon,
            StreamKind::Posts,
            &item(json!({"id": "1", "text": "c", "created_at": 5})),
        )
        .unwrap_err();
        assert!(err.contains("wrong type"), "{err}");
    }

    #[test]
    fn facebook_and_linkedin_shapes() {
        let fb = validate(
            Platform::Facebook,
            StreamKind::Posts,
            &item(json!({"id": "1_2", "message": "m", "created_time": "2026-01-01T10:00:00+0000"})),
        )
        .unwrap();
        assert_eq!(fb.created_at.hour(), 10);
        let li = validate(
            Platform::Linkedin,
            StreamKind::Posts,
            &item(
                json!({"id": "urn:li:share:1", "commentary": "c", "createdAt": 1767225600000_i64}),
            ),
        )
        .unwrap();
        assert_eq!(li.created_at.year(), 2026);
        assert!(
            validate(
                Platform::Linkedin,
                StreamKind::Posts,
                &item(json!({"id": "urn:li:share:1", "commentary": "c", "createdAt": "soon"}))
            )
            .is_err()
        );
    }

    #[test]
    fn insights_are_checked_for_each_field() {
        let good = json!({"id": "page_impressions/day/2026-11-20T08:00:00+0000",
            "name": "page_impressions", "period": "day", "value": 42,
            "end_time": "2026-11-20T08:00:00+0000"});
        let ok = validate(
            Platform::Facebook,
            StreamKind::Insights,
            &item(good.clone()),
        )
        .unwrap();
        assert_eq!(ok.insight.as_ref().unwrap().value, 42);
        assert_eq!(ok.insight.unwrap().metric, "page_impressions");
        assert_eq!(ok.created_at.hour(), 8);
        for (field, bad, reason) in [
            ("value", json!("n/a"), "`value` must be a number"),
            ("value", json!(-3), "at least 0"),
            ("value", json!({"a": 1}), "an object"),
            ("value", Value::Null, "`value` is missing"),
            ("end_time", json!("later"), "not a time"),
            ("end_time", Value::Null, "`end_time` is missing"),
            ("name", json!(7), "a number"),
        ] {
            let mut v = good.clone();
            if bad.is_null() {
                v.as_object_mut().unwrap().remove(field);
            } else {
                v[field] = bad;
            }
            let err = validate(Platform::Facebook, StreamKind::Insights, &item(v)).unwrap_err();
            assert!(err.contains(reason), "{field}: {err}");
        }
    }
}
