//! The calendar on DynamoDB: a tenant's posts by scheduled time through the `calendar`
//! index, half-open, paged, only the tenant's own; posts from before the index are placed in
//! it by `herald posts reindex` (the store's backfill), once.

use super::*;
use aws_sdk_dynamodb::types::AttributeValue;

#[tokio::test]
async fn the_calendar_reads_one_tenants_posts_by_time_and_the_backfill_places_old_ones() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let now = SystemClock.now();
    let at = |hours: i64| now + time::Duration::hours(hours);
    let mut made = Vec::new();
    for (text, hours) in [("third", 3), ("first", 1), ("second", 2), ("later", 30)] {
        let post = env
            .posts()
            .create(
                &env.actor(),
                NewPost {
                    alt_text: Default::default(),
                    text: text.into(),
                    scheduled_at: Some(at(hours)),
                    targets: vec![Target {
                        options: Default::default(),
                        account_id: env.account.clone(),
                        text: None,
                        media: None,
                    }],
                    media: vec![],
                    follow_ups: Default::default(),
                    draft: false,
                    local: None,
                    next_slot: false,
                },
                "corr-calendar".into(),
            )
            .await
            .unwrap();
        made.push(post);
    }
    // Another tenant's post at the same hour as "second".
    let other = TenantId("calendar_other".into());
    let mut foreign = made[2].clone();
    foreign.tenant_id = other.clone();
    foreign.id = PostId::generate();
    store.insert_post(&foreign).await.unwrap();

    let texts = |page: &Page<Post>| {
        page.items
            .iter()
            .map(|p| p.text.clone())
            .collect::<Vec<_>>()
    };
    let day = store
        .posts_between(&env.tenant, at(0), at(24), None, 10)
        .await
        .unwrap();
    assert_eq!(texts(&day), ["first", "second", "third"], "earliest first");
    assert_eq!(day.cursor, None);

    // Half-open: a post exactly at `to` is the next range's, at `from` this one's.
    let edge = store
        .posts_between(
            &env.tenant,
            made[1].scheduled_at,
            made[2].scheduled_at,
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(texts(&edge), ["first"]);

    // Paged: the cursor continues where the page ended.
    let first = store
        .posts_between(&env.tenant, at(0), at(48), None, 2)
        .await
        .unwrap();
    assert_eq!(texts(&first), ["first", "second"]);
    let cursor = first.cursor.clone().expect("more to read");
    assert_eq!(
        cursor,
        calendar_position(made[2].scheduled_at, &made[2].id),
        "the cursor is the last post's place"
    );
    let rest = store
        .posts_between(&env.tenant, at(0), at(48), Some(&cursor), 2)
        .await
        .unwrap();
    assert_eq!(texts(&rest), ["third", "later"]);

    // The other tenant's calendar holds only its post, even with this tenant's cursor.
    let theirs = store
        .posts_between(&other, at(0), at(48), None, 10)
        .await
        .unwrap();
    assert_eq!(
        theirs.items.iter().map(|p| &p.id).collect::<Vec<_>>(),
        [&foreign.id]
    );
    let borrowed = store
        .posts_between(&other, at(0), at(48), Some(&cursor), 10)
        .await
        .unwrap();
    assert!(
        borrowed.items.iter().all(|p| p.tenant_id == other),
        "{borrowed:?}"
    );

    // A post written before the index (its item without the index keys) is not in the
    // calendar until the backfill places it; a second run finds nothing to do.
    let table = &env.vars["HERALD_TABLE"];
    let old = &made[0];
    env.clients
        .dynamodb
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("TENANT#{}", env.tenant)))
        .key("sk", AttributeValue::S(format!("POST#{}", old.id)))
        .update_expression("REMOVE calendar_pk, calendar_sk")
        .send()
        .await
        .unwrap();
    let without = store
        .posts_between(&env.tenant, at(0), at(24), None, 10)
        .await
        .unwrap();
    assert_eq!(texts(&without), ["first", "second"]);
    assert_eq!(store.backfill_calendar_index().await.unwrap(), 1);
    assert_eq!(store.backfill_calendar_index().await.unwrap(), 0, "once");
    let placed = store
        .posts_between(&env.tenant, at(0), at(24), None, 10)
        .await
        .unwrap();
    assert_eq!(texts(&placed), ["first", "second", "third"]);
    assert_eq!(
        placed.items[2],
        store.get_post(&env.tenant, &old.id).await.unwrap().unwrap()
    );
}

/// Posting slots on DynamoDB: the rules round-trip; a hold is conditional (one post at a
/// time, again by the same post, taken over only from the post named), released only by its
/// holder, and per tenant.
#[tokio::test]
async fn slot_rules_and_holds_are_conditional_writes_per_tenant() {
    use herald_domain::publishing::slots::{PostingSlots, SlotRule};
    let env = Env::new().await;
    let store = env.store.as_ref();
    assert_eq!(store.posting_slots(&env.tenant).await.unwrap(), None);
    let slots = PostingSlots {
        slots: vec![SlotRule {
            days: vec!["mon".into()],
            times: vec!["09:00".into()],
        }],
        accounts: BTreeMap::from([(
            env.account.clone(),
            vec![SlotRule {
                days: vec!["sat".into()],
                times: vec!["10:30".into()],
            }],
        )]),
    };
    store.put_posting_slots(&env.tenant, &slots).await.unwrap();
    assert_eq!(store.posting_slots(&env.tenant).await.unwrap(), Some(slots));

    let at = SystemClock.now() + time::Duration::days(2);
    let (a, b) = (PostId("post_a".into()), PostId("post_b".into()));
    let (tenant, account) = (&env.tenant, &env.account);
    let hold = |post: PostId, replacing: Option<PostId>| async move {
        store
            .hold_slot(tenant, account, at, &post, replacing.as_ref())
            .await
    };
    assert_eq!(hold(a.clone(), None).await.unwrap(), None, "free: held");
    assert_eq!(
        hold(a.clone(), None).await.unwrap(),
        None,
        "again by its holder"
    );
    assert_eq!(
        hold(b.clone(), None).await.unwrap(),
        Some(a.clone()),
        "held by a"
    );
    assert_eq!(
        hold(b.clone(), Some(b.clone())).await.unwrap(),
        Some(a.clone()),
        "taken over only from the post named"
    );
    // Another tenant's hold on the same account and instant is its own.
    let other = TenantId("slots_other".into());
    assert_eq!(
        store
            .hold_slot(&other, &env.account, at, &b, None)
            .await
            .unwrap(),
        None
    );
    store
        .release_slot(&env.tenant, &env.account, at, &b)
        .await
        .unwrap();
    assert_eq!(
        hold(b.clone(), None).await.unwrap(),
        Some(a.clone()),
        "only the holder releases"
    );
    assert_eq!(
        hold(b.clone(), Some(a.clone())).await.unwrap(),
        None,
        "taken over from a"
    );
    store
        .release_slot(&env.tenant, &env.account, at, &b)
        .await
        .unwrap();
    assert_eq!(hold(a.clone(), None).await.unwrap(), None, "released: free");
}
