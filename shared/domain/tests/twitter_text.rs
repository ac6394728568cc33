//! X's weighted length against twitter-text's own conformance cases: every case of
//! `WeightedTweetsWithDiscountedEmojiCounterTest` (`tests/data/twitter_text_weighted.json`,
//! transcribed from twitter-text's `conformance/validate.yml`; Apache License 2.0).
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use herald_domain::publishing::text::parse_tweet;
use serde::Deserialize;

#[derive(Deserialize)]
struct Conformance {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    description: String,
    text: String,
    expected: Expected,
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Expected {
    weighted_length: usize,
    valid: bool,
    permillage: usize,
    display_range_start: usize,
    display_range_end: usize,
    valid_range_start: usize,
    valid_range_end: usize,
}

#[test]
fn every_discounted_emoji_case_counts_as_twitter_text_does() {
    let file: Conformance =
        serde_json::from_str(include_str!("data/twitter_text_weighted.json")).unwrap();
    assert_eq!(file.cases.len(), 22, "the section has 22 cases");
    let failures: Vec<String> = file
        .cases
        .iter()
        .filter_map(|case| {
            let parsed = parse_tweet(&case.text);
            let got = Expected {
                weighted_length: parsed.weighted_length,
                valid: parsed.valid,
                permillage: parsed.permillage,
                display_range_start: parsed.display_range.0,
                display_range_end: parsed.display_range.1,
                valid_range_start: parsed.valid_range.0,
                valid_range_end: parsed.valid_range.1,
            };
            (got != case.expected).then(|| {
                format!(
                    "{}: expected {:?}, got {:?}",
                    case.description, case.expected, got
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
