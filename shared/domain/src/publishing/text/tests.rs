use super::*;

fn rules(platform: Platform, text: &str) -> Vec<(TextRule, Option<usize>, Option<usize>)> {
    check_text(platform, text)
        .into_iter()
        .map(|v| (v.rule, v.limit, v.actual))
        .collect()
}

#[test]
fn linkedin_takes_3000_code_units_and_no_more() {
    assert!(rules(Platform::Linkedin, &"a".repeat(3_000)).is_empty());
    assert_eq!(
        rules(Platform::Linkedin, &"a".repeat(3_001)),
        [(TextRule::Length, Some(3_000), Some(3_001))]
    );
}

#[test]
fn facebook_takes_63206_code_units_and_no_more() {
    assert!(rules(Platform::Facebook, &"a".repeat(63_206)).is_empty());
    assert_eq!(
        rules(Platform::Facebook, &"a".repeat(63_207)),
        [(TextRule::Length, Some(63_206), Some(63_207))]
    );
}

#[test]
fn characters_outside_the_bmp_count_two_code_units() {
    // 1,500 emoji are 1,500 code points but 3,000 code units: the most LinkedIn takes.
    let emoji = "\u{1F525}".repeat(1_500);
    assert!(rules(Platform::Linkedin, &emoji).is_empty());
    assert_eq!(
        rules(Platform::Linkedin, &format!("{emoji}!")),
        [(TextRule::Length, Some(3_000), Some(3_001))]
    );
    // CJK is one code unit each: 3,000 of them fit.
    assert!(rules(Platform::Linkedin, &"漢".repeat(3_000)).is_empty());
}

#[test]
fn x_counts_weighted_length() {
    assert!(rules(Platform::X, &"a".repeat(280)).is_empty());
    assert!(rules(Platform::X, &"漢".repeat(140)).is_empty());
    assert_eq!(
        rules(Platform::X, &"漢".repeat(141)),
        [(TextRule::WeightedLength, Some(280), Some(282))]
    );
    assert_eq!(measure(Platform::X, "漢"), 2);
    assert_eq!(measure(Platform::Linkedin, "漢"), 1);
}

#[test]
fn x_refuses_noncharacters_and_says_where() {
    assert_eq!(
        rules(Platform::X, "ab\u{FFFF}c"),
        [(TextRule::InvalidCharacter, None, Some(2))]
    );
    assert!(rules(Platform::Linkedin, "ab\u{FFFF}c").is_empty());
}
