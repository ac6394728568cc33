//! The calendar through the API: `GET /v1/posts?from=&to=` lists the posts scheduled in the
//! range, earliest first, drafts included, paged; bad ranges and foreign cursors are 400s;
//! another tenant sees none of it.

use super::*;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn texts(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_calendar_lists_a_range_earliest_first_and_only_the_tenants_own() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let b = api.tenant(false).await;
    let acc = api.connect(&t, "facebook", "cal").await;
    let now = SystemClock.now();
    let at = |minutes: i64| rfc3339(now + Duration::minutes(minutes));
    for (i, (text, minutes, status)) in [
        ("c", 180, "scheduled"),
        ("a", 60, "scheduled"),
        ("b", 120, "scheduled"),
        ("next day", 1800, "scheduled"),
        ("draft", 90, "draft"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"text": text, "scheduled_at": at(minutes), "status": status,
                          "targets": [{"account_id": acc}]});
        let (s, _, v) = api
            .call(
                "POST",
                "/v1/posts",
                Some(&t.key),
                Some(&format!("c{i}")),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let day = format!("/v1/posts?from={}&to={}", at(0), at(24 * 60));
    let (s, _, v) = api.get(&day, &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(texts(&v), ["a", "draft", "b", "c"], "earliest first");
    assert!(v["next_cursor"].is_null());
    let (_, _, v) = api.get(&format!("{day}&status=draft"), &t.key).await;
    assert_eq!(texts(&v), ["draft"]);
    // Half-open: the post at `to` belongs to the next range.
    let (_, _, v) = api
        .get(&format!("/v1/posts?from={}&to={}", at(60), at(120)), &t.key)
        .await;
    assert_eq!(texts(&v), ["a", "draft"]);

    let (_, _, page1) = api.get(&format!("{day}&limit=2"), &t.key).await;
    assert_eq!(texts(&page1), ["a", "draft"]);
    let cursor = page1["next_cursor"].as_str().unwrap().to_owned();
    let (_, _, page2) = api
        .get(&format!("{day}&limit=2&cursor={cursor}"), &t.key)
        .await;
    assert_eq!(texts(&page2), ["b", "c"]);
    // A full page may end exactly at the range's end; the cursor then reads an empty page.
    if let Some(more) = page2["next_cursor"].as_str() {
        let (_, _, page3) = api
            .get(&format!("{day}&limit=2&cursor={more}"), &t.key)
            .await;
        assert_eq!(texts(&page3), Vec::<&str>::new());
        assert!(page3["next_cursor"].is_null(), "{page3}");
    }

    // A viewer reads the calendar; another tenant sees nothing of it, with or without the
    // first tenant's cursor.
    let (_, _, viewer) = api
        .post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    let (s, _, v) = api.get(&day, viewer["key"].as_str().unwrap()).await;
    assert_eq!((s, texts(&v).len()), (StatusCode::OK, 4));
    let (s, _, v) = api.get(&day, &b.key).await;
    assert_eq!((s, texts(&v).len()), (StatusCode::OK, 0), "{v}");
    let (s, _, v) = api
        .get(&format!("{day}&limit=2&cursor={cursor}"), &b.key)
        .await;
    assert_eq!((s, texts(&v).len()), (StatusCode::OK, 0), "{v}");

    // A cursor of one listing is refused by the other.
    let (_, _, plain) = api.get("/v1/posts?limit=1", &t.key).await;
    let plain_cursor = plain["next_cursor"].as_str().unwrap();
    let (s, h, v) = api
        .get(&format!("{day}&cursor={plain_cursor}"), &t.key)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_problem(&h, &v, s);
    let (s, _, v) = api.get(&format!("/v1/posts?cursor={cursor}"), &t.key).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn a_calendar_range_that_is_not_one_is_a_clear_400() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let cases = [
        ("/v1/posts?from=2026-12-01T00:00:00Z", "go together"),
        ("/v1/posts?to=2026-12-01T00:00:00Z", "go together"),
        (
            "/v1/posts?from=yesterday&to=2026-12-01T00:00:00Z",
            "from must be an RFC 3339",
        ),
        (
            "/v1/posts?from=2026-12-01T00:00:00Z&to=2026-12-32T00:00:00Z",
            "to must be an RFC 3339",
        ),
        // An unencoded + arrives as a space.
        (
            "/v1/posts?from=2026-12-01T00:00:00+01:00&to=2026-12-02T00:00:00Z",
            "%2B",
        ),
        (
            "/v1/posts?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            "before to",
        ),
        (
            "/v1/posts?from=2026-12-01T00:00:00Z&to=2026-12-01T00:00:00Z",
            "before to",
        ),
    ];
    for (path, says) in cases {
        let (s, h, v) = api.get(path, &t.key).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_problem(&h, &v, s);
        assert!(v["detail"].as_str().unwrap().contains(says), "{path}: {v}");
    }
    let (s, _, v) = api
        .get(
            "/v1/posts?from=2026-12-01T00:00:00%2B01:00&to=2026-12-02T00:00:00Z",
            &t.key,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "an encoded offset is fine: {v}");
}
