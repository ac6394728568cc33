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

#[test]
fn mastodon_takes_500_grapheme_clusters_and_no_more() {
    assert!(rules(Platform::Mastodon, &"a".repeat(500)).is_empty());
    assert_eq!(
        rules(Platform::Mastodon, &"a".repeat(501)),
        [(TextRule::Length, Some(500), Some(501))]
    );
    // A family emoji is seven code points and one grapheme cluster: 500 of them fit.
    let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";
    assert!(rules(Platform::Mastodon, &family.repeat(500)).is_empty());
    assert_eq!(measure(Platform::Mastodon, &family.repeat(3)), 3);
}

#[test]
fn mastodon_counts_a_url_23_and_a_remote_mention_without_its_domain() {
    let url = format!("https://example.com/{}", "a".repeat(200));
    assert_eq!(
        measure(Platform::Mastodon, &format!("see {url} now")),
        4 + 23 + 4
    );
    // Without a scheme Mastodon links nothing: the text counts as written.
    assert_eq!(measure(Platform::Mastodon, "see example.com"), 15);
    assert_eq!(
        measure(Platform::Mastodon, "hi @alice@mastodon.social!"),
        10
    );
    assert_eq!(measure(Platform::Mastodon, "hi @alice!"), 10);
    // An address is not a mention: its `@` follows a word character.
    assert_eq!(measure(Platform::Mastodon, "mail bob@example.com"), 20);
    // Ten long URLs: 10 x 23 + 9 spaces, under the limit though the text is thousands long.
    let many = [url.as_str(); 10].join(" ");
    assert!(many.len() > 2_000);
    assert_eq!(measure(Platform::Mastodon, &many), 239);
    assert!(rules(Platform::Mastodon, &many).is_empty());
}

#[test]
fn a_mastodon_thread_part_is_a_status_with_the_same_rules() {
    assert_eq!(
        check_comment(Platform::Mastodon, &"a".repeat(501))
            .iter()
            .map(|v| (v.rule, v.limit))
            .collect::<Vec<_>>(),
        [(TextRule::Length, Some(500))]
    );
    let message = check_text(Platform::Mastodon, &"a".repeat(501))[0].message();
    assert!(message.contains("Mastodon allows 500"), "{message}");
}

#[test]
fn bluesky_takes_300_grapheme_clusters_and_3000_bytes() {
    assert!(rules(Platform::Bluesky, &"a".repeat(300)).is_empty());
    assert_eq!(
        rules(Platform::Bluesky, &"a".repeat(301)),
        [(TextRule::Length, Some(300), Some(301))]
    );
    // 300 family emoji are 300 clusters but 7,500 bytes: the byte limit refuses them.
    let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";
    assert_eq!(
        rules(Platform::Bluesky, &family.repeat(300)),
        [(TextRule::Bytes, Some(3_000), Some(7_500))]
    );
    let message = check_text(Platform::Bluesky, &family.repeat(300))[0].message();
    assert!(message.contains("7500 bytes"), "{message}");
    // A URL is counted as written: Bluesky shortens nothing.
    assert_eq!(measure(Platform::Bluesky, "https://example.com/a"), 21);
}

#[test]
fn a_remote_mention_reads_as_its_local_part() {
    assert_eq!(
        local_mentions("hi @ada@example.social and @bob, mail c@d.org"),
        "hi @ada and @bob, mail c@d.org"
    );
    assert_eq!(local_mentions("@a@b.c@d"), "@a@d");
    assert_eq!(local_mentions("no mentions"), "no mentions");
}

#[test]
fn instagram_takes_2200_characters_30_hashtags_and_20_tags_and_lists_each_excess() {
    assert!(rules(Platform::Instagram, &"a".repeat(2_200)).is_empty());
    let tags = "#t ".repeat(30) + &"@u ".repeat(20);
    assert!(rules(Platform::Instagram, &tags).is_empty());
    let over = format!(
        "{}{}{}",
        "#t ".repeat(31),
        "@u ".repeat(21),
        "a".repeat(2_200)
    );
    assert_eq!(
        rules(Platform::Instagram, &over),
        [
            (TextRule::Length, Some(2_200), Some(2_356)),
            (TextRule::Hashtags, Some(30), Some(31)),
            (TextRule::Mentions, Some(20), Some(21)),
        ]
    );
    let messages: Vec<String> = check_text(Platform::Instagram, &over)
        .iter()
        .map(TextViolation::message)
        .collect();
    assert!(
        messages[1].contains("31 hashtags; instagram allows 30"),
        "{messages:?}"
    );
    assert!(messages[2].contains("tags 21 accounts"), "{messages:?}");
    // A first comment is held to a caption's rules.
    assert_eq!(check_comment(Platform::Instagram, &over).len(), 3);
}
