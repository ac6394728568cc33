//! Items round trip, and a malformed one names its field.

use super::*;
use time::macros::datetime;

fn sample() -> Post {
    let mut variants = BTreeMap::new();
    let mut v = Variant::new(AccountId("acc_1".into()), Platform::X, Some("short".into()));
    v.last_error = Some(VariantError {
        kind: FailureKind::Transient,
        message: "X answered 503".into(),
        platform_code: Some("503".into()),
        at: datetime!(2026-01-01 00:00:01 UTC),
    });
    v.step = 2;
    v.follow_up_ids = vec!["1790000000000000002".into()];
    variants.insert(v.account_id.clone(), v);
    let mut li = Variant::new(AccountId("acc_2".into()), Platform::Linkedin, None);
    li.media_override = Some(vec![]);
    variants.insert(li.account_id.clone(), li);
    Post {
        thread: vec!["part one".into(), "part two".into()],
        first_comment: Some("a comment".into()),
        time_zone: Some("Europe/Paris".into()),
        tenant_id: TenantId("ten_1".into()),
        id: PostId("post_1".into()),
        text: "hello".into(),
        scheduled_at: datetime!(2026-01-01 00:00:00 UTC),
        status: PostStatus::Dispatched,
        variants,
        version: 7,
        correlation_id: "c-1".into(),
        created_by: ApiKeyId("key_1".into()),
        created_at: datetime!(2025-12-31 00:00:00 UTC),
        updated_at: datetime!(2025-12-31 00:00:01 UTC),
        dispatch: Some(Dispatch {
            token: "t".into(),
            lease_until: datetime!(2026-01-01 00:02:00 UTC),
            sent: false,
        }),
        review: Some(Review {
            decision: PostStatus::Scheduled,
            by: ApiKeyId("key_2".into()),
            at: datetime!(2025-12-31 00:00:02 UTC),
            note: None,
        }),
        media: vec![Attachment {
            alt_text: None,
            media_id: MediaId("med_1".into()),
            key: "media/ten_1/med_1".into(),
            etag: "\"abc\"".into(),
            media_type: MediaType::Png,
            size: 1234,
            dimensions: Some(Dimensions {
                width: 600,
                height: 315,
            }),
            file_name: "launch.png".into(),
            created_at: datetime!(2025-12-30 00:00:00 UTC),
        }],
    }
}

#[test]
fn post_round_trips_and_carries_its_due_keys() {
    let post = sample();
    let item = post_to_item(&post);
    assert_eq!(post_from_item(&item).unwrap(), post);
    let due = item["due_sk"].as_s().unwrap();
    assert!(due.starts_with("1767225720000#ten_1#post_1"), "{due}");
}

#[test]
fn settled_posts_leave_the_due_index() {
    let mut post = sample();
    post.dispatch.as_mut().unwrap().sent = true;
    assert!(!post_to_item(&post).contains_key("due_pk"));
}

#[test]
fn crisis_round_trips_with_every_platform_as_an_empty_list() {
    let crisis = Crisis {
        tenant_id: TenantId("ten_1".into()),
        platforms: vec![],
        reason: "storm".into(),
        started_by: ApiKeyId("key_1".into()),
        started_at: datetime!(2026-01-01 00:00:00 UTC),
        expires_at: datetime!(2026-01-02 00:00:00 UTC),
    };
    let item = crisis_to_item(&crisis);
    assert_eq!(item["all_platforms"], AttributeValue::Bool(true));
    assert_eq!(crisis_from_item(&item).unwrap(), crisis);
    let some = Crisis {
        platforms: vec![Platform::X, Platform::Linkedin],
        ..crisis
    };
    assert_eq!(crisis_from_item(&crisis_to_item(&some)).unwrap(), some);
}

#[test]
fn a_breaker_absent_from_an_account_is_closed() {
    let item = key("TENANT#t".into(), "ACCOUNT#a");
    assert_eq!(breaker_from_item(&item).unwrap(), Breaker::default());
}

#[test]
fn media_round_trip_before_and_after_inspection() {
    let mut media = MediaRecord {
        tenant_id: TenantId("ten_1".into()),
        id: MediaId("med_1".into()),
        key: "media/ten_1/med_1".into(),
        file_name: "photo.png".into(),
        declared_type: MediaType::Png,
        declared_size: 10,
        created_by: ApiKeyId("key_1".into()),
        created_at: datetime!(2026-01-01 00:00:00 UTC),
        upload_expires_at: datetime!(2026-01-01 00:15:00 UTC),
        inspection: None,
    };
    assert_eq!(media_from_item(&media_to_item(&media)).unwrap(), media);
    media.inspection = Some(Inspection {
        size: 10,
        etag: "\"e\"".into(),
        detected: None,
        dimensions: None,
        at: datetime!(2026-01-01 00:01:00 UTC),
    });
    assert_eq!(media_from_item(&media_to_item(&media)).unwrap(), media);
}

#[test]
fn a_malformed_item_names_the_field() {
    let mut item = post_to_item(&sample());
    item.insert("status".into(), s("bogus"));
    assert_eq!(post_from_item(&item).unwrap_err(), bad("status"));
}
