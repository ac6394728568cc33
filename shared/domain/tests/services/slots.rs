//! Posting slots: `next_slot` takes the earliest slot every target has free, in the tenant's
//! zone; taken slots (by any live post, or a hold of a concurrent request) are skipped; a
//! cancelled post's slot is free again; bad rules are refused, each named.

use super::*;
use herald_domain::ids::PostId;
use herald_domain::ports::SlotStore;
use herald_domain::publishing::slots::{PostingSlots, SlotRule, slot_instants};
use herald_domain::zone::TimeZoneName;
use std::collections::BTreeMap;
use time::macros::datetime;

fn rule(days: &[&str], times: &[&str]) -> SlotRule {
    SlotRule {
        days: days.iter().map(|d| (*d).into()).collect(),
        times: times.iter().map(|t| (*t).into()).collect(),
    }
}

const EVERY_DAY: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl World {
    async fn set_slots(&self, slots: PostingSlots) {
        self.store
            .put_posting_slots(&self.actor.tenant_id, &slots)
            .await
            .unwrap();
    }

    async fn next_slot_post(&self, accounts: &[&str]) -> Result<Post, PostError> {
        self.posts
            .create(
                &self.actor,
                NewPost {
                    alt_text: Default::default(),
                    text: "queued".into(),
                    scheduled_at: None,
                    targets: accounts
                        .iter()
                        .map(|a| Target {
                            options: Default::default(),
                            account_id: AccountId((*a).into()),
                            text: None,
                            media: None,
                        })
                        .collect(),
                    media: vec![],
                    follow_ups: Default::default(),
                    draft: false,
                    local: None,
                    next_slot: true,
                },
                "corr-slot".into(),
            )
            .await
    }
}

#[test]
fn slots_are_read_in_the_zone_and_a_skipped_time_moves_past_the_change() {
    let paris = TimeZoneName::parse("Europe/Paris").unwrap();
    // Sunday 1 March 2026, noon UTC: Monday 09:00 in Paris (UTC+1) is 08:00 UTC.
    let from = datetime!(2026-03-01 12:00 UTC);
    let week = slot_instants(
        &[rule(&["mon"], &["09:00"])],
        &paris,
        from,
        from + time::Duration::days(7),
    );
    assert_eq!(
        week.into_iter().collect::<Vec<_>>(),
        [datetime!(2026-03-02 08:00 UTC)]
    );
    // 29 March 2026 02:30 does not exist in Paris (02:00 -> 03:00): taken as 03:30 CEST.
    let night = datetime!(2026-03-28 12:00 UTC);
    let got = slot_instants(
        &[rule(&["sun"], &["02:30"])],
        &paris,
        night,
        night + time::Duration::days(1),
    );
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        [datetime!(2026-03-29 01:30 UTC)]
    );
}

#[test]
fn bad_rules_are_each_named() {
    let slots = PostingSlots {
        slots: vec![
            rule(&["mon", "funday"], &["09:00", "24:00", "9:30"]),
            rule(&[], &[]),
            rule(&["tue", "tue"], &["10:00"]),
        ],
        accounts: BTreeMap::from([
            (AccountId("acc_x".into()), vec![]),
            (
                AccountId("acc_other".into()),
                vec![rule(&["sat"], &["10:00"])],
            ),
        ]),
    };
    let problems = slots.problems(|id| id.as_str() == "acc_x");
    let text: String = problems
        .iter()
        .map(|p| format!("{}: {}\n", p.field, p.message))
        .collect();
    for expected in [
        "\"funday\" is not one of",
        "\"24:00\" is not a time",
        "\"9:30\" is not a time",
        "slots[1].days",
        "slots[1].times",
        "slots[2]",
        "accounts.acc_x",
        "accounts.acc_other",
    ] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    assert!(
        PostingSlots {
            slots: vec![rule(&EVERY_DAY, &["09:00", "17:30"])],
            accounts: BTreeMap::new(),
        }
        .problems(|_| false)
        .is_empty()
    );
}

#[tokio::test]
async fn next_slot_fills_the_earliest_free_slot_and_skips_taken_ones() {
    let w = World::new(false).await;
    let refused = w.next_slot_post(&["acc_x"]).await;
    assert!(
        matches!(&refused, Err(PostError::Invalid(e)) if e[0].field == "schedule"),
        "no slots yet: {refused:?}"
    );
    w.set_slots(PostingSlots {
        slots: vec![rule(&EVERY_DAY, &["09:00", "17:00"])],
        accounts: BTreeMap::new(),
    })
    .await;
    // Now is Sunday 12:00 UTC (the tenant's zone is UTC).
    let first = w.next_slot_post(&["acc_x"]).await.unwrap();
    assert_eq!(first.scheduled_at, datetime!(2026-03-01 17:00 UTC));
    assert_eq!(first.time_zone.as_deref(), Some("UTC"));
    // A post scheduled by time at the next slot takes it too.
    let by_time = w.create("by time", 21 * 3600, &["acc_x"]).await;
    assert_eq!(by_time.scheduled_at, datetime!(2026-03-02 09:00 UTC));
    let second = w.next_slot_post(&["acc_x"]).await.unwrap();
    assert_eq!(second.scheduled_at, datetime!(2026-03-02 17:00 UTC));
    // Another account's queue is its own.
    let other = w.next_slot_post(&["acc_li"]).await.unwrap();
    assert_eq!(other.scheduled_at, datetime!(2026-03-01 17:00 UTC));
    // A cancelled post gives its slot back.
    w.posts.cancel(&w.actor, &first.id).await.unwrap();
    let again = w.next_slot_post(&["acc_x"]).await.unwrap();
    assert_eq!(again.scheduled_at, datetime!(2026-03-01 17:00 UTC));
    // Two targets: a slot free on both (acc_li has 17:00 Sunday taken).
    let both = w.next_slot_post(&["acc_li", "acc_fb"]).await.unwrap();
    assert_eq!(both.scheduled_at, datetime!(2026-03-02 09:00 UTC));
}

#[tokio::test]
async fn an_accounts_own_slots_and_a_concurrent_hold_are_respected() {
    let w = World::new(false).await;
    w.set_slots(PostingSlots {
        slots: vec![rule(&EVERY_DAY, &["09:00"])],
        accounts: BTreeMap::from([(
            AccountId("acc_li".into()),
            vec![rule(&["tue"], &["09:00", "11:00"])],
        )]),
    })
    .await;
    let li = w.next_slot_post(&["acc_li"]).await.unwrap();
    assert_eq!(li.scheduled_at, datetime!(2026-03-03 09:00 UTC), "Tuesday");
    // Together with acc_x, only slots both have: Tuesday 09:00 is taken, 11:00 is not acc_x's.
    let both = w.next_slot_post(&["acc_x", "acc_li"]).await.unwrap();
    assert_eq!(both.scheduled_at, datetime!(2026-03-10 09:00 UTC));
    // A hold by a request still running (its post not written yet, but it holds the slot):
    // skipped while that post exists and is there; taken over once it is not.
    let monday = datetime!(2026-03-02 09:00 UTC);
    let racing = PostId("post_racing".into());
    assert_eq!(
        w.store
            .hold_slot(
                &w.actor.tenant_id,
                &AccountId("acc_fb".into()),
                monday,
                &racing,
                None
            )
            .await
            .unwrap(),
        None
    );
    let fb = w.next_slot_post(&["acc_fb"]).await.unwrap();
    assert_eq!(
        fb.scheduled_at, monday,
        "a hold without a live post is taken over"
    );
    let fb2 = w.next_slot_post(&["acc_fb"]).await.unwrap();
    assert_eq!(
        fb2.scheduled_at,
        datetime!(2026-03-03 09:00 UTC),
        "held by fb's post"
    );
}

#[tokio::test]
async fn next_slot_with_a_time_or_as_a_draft_is_refused() {
    let w = World::new(false).await;
    w.set_slots(PostingSlots {
        slots: vec![rule(&EVERY_DAY, &["09:00"])],
        accounts: BTreeMap::new(),
    })
    .await;
    for (at, draft) in [(Some(w.clock.now()), false), (None, true)] {
        let got = w
            .posts
            .create(
                &w.actor,
                NewPost {
                    alt_text: Default::default(),
                    text: "both".into(),
                    scheduled_at: at,
                    targets: vec![Target {
                        options: Default::default(),
                        account_id: AccountId("acc_x".into()),
                        text: None,
                        media: None,
                    }],
                    media: vec![],
                    follow_ups: Default::default(),
                    draft,
                    local: None,
                    next_slot: true,
                },
                "corr".into(),
            )
            .await;
        assert!(
            matches!(&got, Err(PostError::Invalid(e)) if e[0].field == "schedule"),
            "{got:?}"
        );
    }
    assert!(w.store.all_posts().is_empty(), "nothing written");
}

#[tokio::test]
async fn a_draft_is_scheduled_into_the_next_free_slot_once() {
    let w = World::new(false).await;
    w.set_slots(PostingSlots {
        slots: vec![rule(&EVERY_DAY, &["09:00"])],
        accounts: BTreeMap::new(),
    })
    .await;
    let taken = w.next_slot_post(&["acc_x"]).await.unwrap();
    assert_eq!(taken.scheduled_at, datetime!(2026-03-02 09:00 UTC));
    let draft = w
        .posts
        .create(
            &w.actor,
            NewPost {
                alt_text: Default::default(),
                text: "a draft".into(),
                scheduled_at: None,
                targets: vec![Target {
                    options: Default::default(),
                    account_id: AccountId("acc_x".into()),
                    text: None,
                    media: None,
                }],
                media: vec![],
                follow_ups: Default::default(),
                draft: true,
                local: None,
                next_slot: false,
            },
            "corr-d".into(),
        )
        .await
        .unwrap();
    let scheduled = w
        .posts
        .schedule_in_next_slot(&w.actor, &draft.id)
        .await
        .unwrap();
    assert_eq!(scheduled.status, PostStatus::Scheduled);
    assert_eq!(scheduled.scheduled_at, datetime!(2026-03-03 09:00 UTC));
    let again = w.posts.schedule_in_next_slot(&w.actor, &draft.id).await;
    assert!(
        matches!(again, Err(PostError::InvalidState(_))),
        "{again:?}"
    );
}
