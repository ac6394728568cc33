//! Drafts: kept, checked, never dispatched until scheduled.

use super::*;

impl World {
    async fn draft(&self, in_secs: i64) -> Post {
        self.posts
            .create(
                &self.actor,
                NewPost {
                    alt_text: Default::default(),
                    text: "a draft".into(),
                    scheduled_at: Some(self.clock.now() + time::Duration::seconds(in_secs)),
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
            .unwrap()
    }
}

#[tokio::test]
async fn a_draft_is_never_dispatched_until_it_is_scheduled() {
    let w = World::new(false).await;
    // A time long past is fine for a draft.
    let draft = w.draft(-3_600).await;
    assert_eq!(draft.status, PostStatus::Draft);
    w.dispatcher.run_once().await.unwrap();
    assert!(w.queue.take().is_empty(), "a draft is never dispatched");
    let scheduled = w.posts.schedule(&w.actor, &draft.id, None).await.unwrap();
    assert_eq!(scheduled.status, PostStatus::Scheduled);
    assert_eq!(
        scheduled.scheduled_at,
        w.clock.now(),
        "its past time became now"
    );
    w.dispatcher.run_once().await.unwrap();
    assert_eq!(w.deliver_all().await, [Disposition::Done(Done::Published)]);
    // Once scheduled it is no draft.
    let again = w.posts.schedule(&w.actor, &draft.id, None).await;
    assert!(
        matches!(again, Err(PostError::InvalidState(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn scheduling_a_draft_checks_it_again_and_asks_for_approval_where_required() {
    let w = World::new(true).await;
    let draft = w.draft(600).await;
    let past = w.clock.now() - time::Duration::hours(1);
    let refused = w.posts.schedule(&w.actor, &draft.id, Some(past)).await;
    match refused {
        Err(PostError::Invalid(errors)) => assert_eq!(errors[0].field, "scheduled_at"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.get(&draft).await.status, PostStatus::Draft, "unchanged");
    // An edit keeps it a draft; scheduling then waits for approval.
    let edited = w
        .posts
        .edit(
            &w.actor,
            &draft.id,
            PostEdit {
                text: Some("edited draft".into()),
                ..PostEdit::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.status, PostStatus::Draft);
    let scheduled = w.posts.schedule(&w.actor, &draft.id, None).await.unwrap();
    assert_eq!(scheduled.status, PostStatus::PendingApproval);
    assert_eq!(
        scheduled.scheduled_at, draft.scheduled_at,
        "its own time, still ahead"
    );
}
