//! The media module's unit and property tests.

use super::*;
use crate::ids::MediaId;
use crate::model::Platform;
use proptest::prelude::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

fn attachment(id: &str, media_type: MediaType, size: u64, dims: Option<(u32, u32)>) -> Resolved {
    Resolved::Uploaded {
        declared: media_type,
        attachment: Attachment {
            alt_text: None,
            media_id: MediaId(id.into()),
            key: format!("media/t/{id}"),
            etag: "\"e\"".into(),
            media_type,
            size,
            dimensions: dims.map(|(width, height)| Dimensions { width, height }),
            file_name: "f".into(),
            created_at: NOW,
        },
    }
}

fn rules(found: &[(Option<usize>, MediaViolation)]) -> Vec<(Option<usize>, MediaRule)> {
    found.iter().map(|(i, v)| (*i, v.rule)).collect()
}

#[test]
fn types_are_told_by_content_never_by_name() {
    assert_eq!(
        MediaType::sniff(&samples::png(10, 10, 100)),
        Some(MediaType::Png)
    );
    assert_eq!(
        MediaType::sniff(&samples::gif(10, 10, 100)),
        Some(MediaType::Gif)
    );
    assert_eq!(
        MediaType::sniff(&samples::jpeg(10, 10, 100)),
        Some(MediaType::Jpeg)
    );
    assert_eq!(MediaType::sniff(&samples::pdf(100)), Some(MediaType::Pdf));
    assert_eq!(MediaType::sniff(&samples::mp4(100)), Some(MediaType::Mp4));
    assert_eq!(MediaType::sniff(b"just some text, named photo.png"), None);
    assert_eq!(
        MediaType::parse("IMAGE/PNG; charset=binary"),
        Some(MediaType::Png)
    );
    assert_eq!(MediaType::parse("image/svg+xml"), None);
}

#[test]
fn dimensions_come_from_the_header() {
    let d = |b: &[u8]| Dimensions::of_image(b);
    let at = |width, height| Some(Dimensions { width, height });
    assert_eq!(d(&samples::png(600, 315, 2000)), at(600, 315));
    assert_eq!(d(&samples::gif(552, 368, 64)), at(552, 368));
    assert_eq!(d(&samples::jpeg(1200, 630, 4096)), at(1200, 630));
    let inspected = Inspection::of(&samples::pdf(64), 64, "e".into(), NOW);
    assert_eq!(
        (inspected.detected, inspected.dimensions),
        (Some(MediaType::Pdf), None)
    );
}

#[test]
fn a_bad_set_lists_every_violation_with_its_limit() {
    let media = vec![
        attachment("m0", MediaType::Png, 100, Some((100, 100))),
        Resolved::Uploaded {
            declared: MediaType::Png,
            attachment: match attachment("m1", MediaType::Pdf, 10, None) {
                Resolved::Uploaded { attachment, .. } => attachment,
                _ => unreachable!("built as uploaded"),
            },
        },
        attachment("m2", MediaType::Jpeg, 4 * MB + 1, Some((1200, 630))),
        Resolved::Unknown(MediaId("m3".into())),
        Resolved::NotUploaded(MediaId("m4".into())),
    ];
    let found = check_media(&media, Platform::Facebook, NOW);
    assert_eq!(
        rules(&found),
        vec![
            (Some(0), MediaRule::TooSmall),
            (Some(1), MediaRule::TypeMismatch),
            (Some(1), MediaRule::TypeNotAccepted),
            (Some(2), MediaRule::TooLarge),
            (Some(3), MediaRule::Unknown),
            (Some(4), MediaRule::NotUploaded),
        ]
    );
    let too_large = &found[3].1;
    assert_eq!(too_large.limit, Some(Measure::Bytes(4 * MB)));
    assert_eq!(too_large.actual, Some(Measure::Bytes(4 * MB + 1)));
    assert_eq!(too_large.platform, Some(Platform::Facebook));
    assert_eq!(
        too_large.message(),
        "is 4194305 bytes; facebook accepts at most 4194304 bytes (4 MB)"
    );
    assert_eq!(
        found[1].1.message(),
        "was declared image/png but its content is application/pdf"
    );
    assert_eq!(
        serde_json::to_value(&found[0].1.limit).unwrap(),
        serde_json::json!({"width": 600, "height": 315})
    );
}

#[test]
fn each_platform_applies_its_own_numbers() {
    let png_5mb = vec![attachment("m", MediaType::Png, 5 * MB, Some((560, 370)))];
    assert_eq!(
        rules(&check_media(&png_5mb, Platform::Facebook, NOW)),
        vec![
            (Some(0), MediaRule::TooLarge),
            (Some(0), MediaRule::TooSmall)
        ]
    );
    assert!(check_media(&png_5mb, Platform::Linkedin, NOW).is_empty());
    assert!(
        check_media(&png_5mb, Platform::X, NOW).is_empty(),
        "X sets no minimum"
    );
    let gif_12mb = vec![attachment("g", MediaType::Gif, 12 * MB, Some((600, 400)))];
    assert!(check_media(&gif_12mb, Platform::X, NOW).is_empty());
    assert_eq!(
        rules(&check_media(&gif_12mb, Platform::Linkedin, NOW)),
        vec![(Some(0), MediaRule::TooLarge)]
    );
    let video = vec![attachment("v", MediaType::Mp4, 600 * MB, None)];
    assert!(check_media(&video, Platform::Facebook, NOW).is_empty());
    assert_eq!(
        rules(&check_media(&video, Platform::X, NOW)),
        vec![(Some(0), MediaRule::TooLarge)]
    );
    assert_eq!(
        rules(&check_media(&video, Platform::Linkedin, NOW)),
        vec![(Some(0), MediaRule::TypeNotAccepted)]
    );
    let pdf = vec![attachment("d", MediaType::Pdf, 5 * MB, None)];
    assert!(check_media(&pdf, Platform::Linkedin, NOW).is_empty());
    assert_eq!(
        rules(&check_media(&pdf, Platform::X, NOW)),
        vec![(Some(0), MediaRule::TypeNotAccepted)]
    );
}

#[test]
fn counts_and_types_that_stand_alone() {
    let images: Vec<_> = (0..5)
        .map(|i| attachment(&format!("i{i}"), MediaType::Jpeg, 1000, Some((800, 800))))
        .collect();
    assert_eq!(
        rules(&check_media(&images, Platform::X, NOW)),
        vec![(None, MediaRule::TooMany)]
    );
    assert!(check_media(&images, Platform::Facebook, NOW).is_empty());
    let mixed = vec![
        attachment("v", MediaType::Mp4, 1000, None),
        attachment("i", MediaType::Jpeg, 1000, Some((800, 800))),
    ];
    assert_eq!(
        rules(&check_media(&mixed, Platform::X, NOW)),
        vec![(Some(0), MediaRule::NotAlone)]
    );
}

#[test]
fn media_must_outlive_the_schedule() {
    let media = vec![attachment("m", MediaType::Png, 10, Some((800, 800)))];
    assert!(check_media(&media, Platform::X, NOW + Duration::days(399)).is_empty());
    assert_eq!(
        rules(&check_media(&media, Platform::X, NOW + MEDIA_RETENTION)),
        vec![(Some(0), MediaRule::ExpiresBeforePublish)]
    );
}

#[test]
fn the_bucket_keeps_uploads_as_long_as_herald_assumes() {
    let template = include_str!("../../../../template.yaml");
    let days = MEDIA_RETENTION.whole_days();
    assert!(
        template.contains(&format!("ExpirationInDays: {days}")),
        "template.yaml's media lifecycle rule must expire uploads after {days} days"
    );
}

fn any_media() -> impl Strategy<Value = Resolved> {
    (
        0usize..7,
        0u64..(1100 * MB),
        proptest::option::of((0u32..3000, 0u32..3000)),
        0usize..7,
    )
        .prop_map(|(t, size, dims, declared)| {
            let media_type = MediaType::ALL[t];
            match attachment("m", media_type, size, dims) {
                Resolved::Uploaded { attachment, .. } => Resolved::Uploaded {
                    attachment,
                    declared: MediaType::ALL[declared],
                },
                other => other,
            }
        })
}

proptest! {
    #[test]
    fn a_file_is_refused_exactly_when_some_rule_says_so(
        media in any_media(),
        p in 0usize..3,
    ) {
        let platform = Platform::ALL[p];
        let rules = PlatformMediaRules::of(platform);
        let Resolved::Uploaded { attachment: a, declared } = &media else { unreachable!() };
        let too_large = rules.max_bytes(a.media_type).is_some_and(|max| a.size > max);
        let refused_type = rules.max_bytes(a.media_type).is_none();
        let too_small = !refused_type
            && a.media_type.kind() == MediaKind::Image
            && rules.min_image.is_some_and(|min| !a.dimensions.is_some_and(|d| d.covers(min)));
        let found = check_media(std::slice::from_ref(&media), platform, NOW);
        let has = |r: MediaRule| found.iter().any(|(_, v)| v.rule == r);
        prop_assert_eq!(has(MediaRule::TooLarge), too_large);
        prop_assert_eq!(has(MediaRule::TypeNotAccepted), refused_type);
        prop_assert_eq!(has(MediaRule::TooSmall) || has(MediaRule::DimensionsUnreadable), too_small);
        prop_assert_eq!(has(MediaRule::TypeMismatch), *declared != a.media_type);
        prop_assert_eq!(
            found.is_empty(),
            !too_large && !refused_type && !too_small && *declared == a.media_type
        );
    }

    #[test]
    fn sniffing_never_panics_and_png_headers_round_trip(
        junk in proptest::collection::vec(any::<u8>(), 0..512),
        w in 1u32..100_000,
        h in 1u32..100_000,
    ) {
        let _ = MediaType::sniff(&junk);
        let _ = Dimensions::of_image(&junk);
        let png = samples::png(w, h, 64);
        prop_assert_eq!(MediaType::sniff(&png), Some(MediaType::Png));
        prop_assert_eq!(Dimensions::of_image(&png), Some(Dimensions { width: w, height: h }));
    }
}
