//! Each platform's item schema. An item either becomes an [`IngestedItem`] or a reason,
//! which the runner turns into a review item: nothing is dropped silently.

use super::{IngestedItem, RawItem};
use crate::model::Platform;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Checks `item` against `platform`'s schema.
pub fn validate(platform: Platform, item: &RawItem) -> Result<IngestedItem, String> {
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
    };
    if platform == Platform::X && !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`id` {id:?} is not a numeric tweet id"));
    }
    let text = match &raw[text_field] {
        Value::String(s) => s.clone(),
        // A Facebook Page post without a message (a photo or a share) is a valid post.
        Value::Null if platform == Platform::Facebook => String::new(),
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
        (Platform::Facebook, Value::String(s)) => {
            parse_graph_time(s).ok_or_else(|| format!("`{time_field}` {s:?} is not a time"))?
        }
        (Platform::X, Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|_| format!("`{time_field}` {s:?} is not an RFC 3339 time"))?,
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
            let err = validate(Platform::X, &item(v.clone())).unwrap_err();
            assert!(err.contains(reason), "{v}: {err}");
        }
    }

    #[test]
    fn facebook_and_linkedin_shapes() {
        let fb = validate(
            Platform::Facebook,
            &item(json!({"id": "1_2", "message": "m", "created_time": "2026-01-01T10:00:00+0000"})),
        )
        .unwrap();
        assert_eq!(fb.created_at.hour(), 10);
        let li = validate(
            Platform::Linkedin,
            &item(
                json!({"id": "urn:li:share:1", "commentary": "c", "createdAt": 1767225600000_i64}),
            ),
        )
        .unwrap();
        assert_eq!(li.created_at.year(), 2026);
        assert!(
            validate(
                Platform::Linkedin,
                &item(json!({"id": "urn:li:share:1", "commentary": "c", "createdAt": "soon"}))
            )
            .is_err()
        );
    }
}
