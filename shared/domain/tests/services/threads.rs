//! Threads and first comments: each follow-up published once, in order, answering the one
//! before it; a lost answer looked up, never sent twice; a refusal stops the rest.

use super::*;
use herald_domain::publishing::posts::{FollowUps, MAX_THREAD_PARTS};

impl World {
    async fn create_with(
        &self,
        accounts: &[&str],
        follow_ups: FollowUps,
    ) -> Result<Post, PostError> {
        self.posts
            .create(
                &self.actor,
                NewPost {
                    alt_text: Default::default(),
                    text: "head".into(),
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
                    follow_ups,
                    draft: false,
                    local: None,
                    next_slot: false,
                },
                "corr-t".into(),
            )
            .await
    }
}

fn thread(parts: &[&str]) -> FollowUps {
    FollowUps {
        thread: parts.iter().map(|p| (*p).to_owned()).collect(),
        first_comment: None,
    }
}

fn comment(text: &str) -> FollowUps {
    FollowUps {
        thread: vec![],
        first_comment: Some(text.into()),
    }
}

fn texts(w: &World) -> Vec<String> {
    w.platform.published().into_iter().map(|p| p.2).collect()
}

fn fields(e: PostError) -> Vec<String> {
    match e {
        PostError::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_thread_publishes_each_part_once_in_order_answering_the_one_before() {
    let w = World::new(false).await;
    let post = w
        .create_with(&["acc_x"], thread(&["one", "two"]))
        .await
        .unwrap();
    w.dispatcher.run_once().await.unwrap();
    assert_eq!(w.deliver_all().await, [Disposition::Done(Done::Published)]);
    assert_eq!(texts(&w), ["head", "one", "two"]);
    assert_eq!(
        w.platform.parents(),
        [None, Some("p1".into()), Some("p2".into())]
    );
    let v = w.variant(&post).await;
    assert_eq!(v.status, VariantStatus::Published);
    assert_eq!(v.platform_post_id.as_deref(), Some("p1"));
    assert_eq!(v.follow_up_ids, ["p2", "p3"]);
    assert_eq!(w.get(&post).await.display_status(), "published");
}

#[tokio::test]
async fn a_lost_answer_on_a_part_is_looked_up_and_adopted_never_sent_twice() {
    let w = World::new(false).await;
    let post = w
        .create_with(&["acc_x"], thread(&["one", "two"]))
        .await
        .unwrap();
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    // The post goes out, then part one is created but its answer is lost.
    w.platform
        .script
        .lock()
        .unwrap()
        .extend([Step::Publish, Step::CreatedButLost]);
    let d = w.deliver(&m, 1).await;
    assert!(matches!(d, Disposition::RetryAfter(_)), "{d:?}");
    let v = w.variant(&post).await;
    assert_eq!(
        (v.status, v.step, v.lookup),
        (VariantStatus::Unknown, 1, true)
    );
    assert_eq!(v.platform_post_id.as_deref(), Some("p1"));
    // The next delivery finds part one under the post and goes on with part two.
    assert_eq!(w.deliver(&m, 2).await, Disposition::Done(Done::Published));
    assert_eq!(texts(&w), ["head", "one", "two"]);
    assert_eq!(w.platform.lookups(), 1);
    let v = w.variant(&post).await;
    assert_eq!(v.status, VariantStatus::Published);
    assert_eq!(v.follow_up_ids, ["p2", "p3"]);
}

#[tokio::test]
async fn a_refused_part_stops_the_rest_with_a_reason() {
    let w = World::new(false).await;
    let post = w
        .create_with(&["acc_x"], thread(&["one", "two"]))
        .await
        .unwrap();
    w.dispatcher.run_once().await.unwrap();
    w.platform.script.lock().unwrap().push_back(Step::Publish);
    w.platform.then(Err(PlatformError::Permanent {
        message: "X answered 403: You are not allowed to reply".into(),
        code: Some("403".into()),
    }));
    assert_eq!(w.deliver_all().await, [Disposition::Done(Done::Failed)]);
    assert_eq!(texts(&w), ["head"], "part two never goes out");
    let v = w.variant(&post).await;
    assert_eq!((v.status, v.step), (VariantStatus::Failed, 1));
    assert_eq!(
        v.platform_post_id.as_deref(),
        Some("p1"),
        "the post is live"
    );
    let reason = v.last_error.unwrap().message;
    assert!(
        reason.starts_with("follow-up 1 (the post itself is live)"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_first_comment_follows_the_post_on_facebook_and_linkedin() {
    let w = World::new(false).await;
    let post = w
        .create_with(&["acc_fb", "acc_li"], comment("more in the comments"))
        .await
        .unwrap();
    w.dispatcher.run_once().await.unwrap();
    let done = w.deliver_all().await;
    assert_eq!(
        done,
        [
            Disposition::Done(Done::Published),
            Disposition::Done(Done::Published)
        ]
    );
    let published = w.platform.published();
    let parents = w.platform.parents();
    for account in ["ext-acc_fb", "ext-acc_li"] {
        let mine: Vec<usize> = (0..published.len())
            .filter(|i| published[*i].1 == account)
            .collect();
        let [head, comment] = mine[..] else {
            panic!("two posts for {account}: {published:?}")
        };
        assert_eq!(published[comment].2, "more in the comments");
        assert_eq!(parents[comment], Some(format!("p{}", head + 1)));
        assert_eq!(parents[head], None);
    }
    assert_eq!(w.get(&post).await.display_status(), "published");
}

#[tokio::test]
async fn a_thread_out_of_time_continues_in_a_fresh_message() {
    let w = World::new(false).await;
    let post = w.create_with(&["acc_x"], thread(&["one"])).await.unwrap();
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    let go = Arc::new(tokio::sync::Notify::new());
    w.platform
        .script
        .lock()
        .unwrap()
        .push_back(Step::After(go.clone()));
    let delivery = w.delivery(3);
    let publisher = w.publisher.clone();
    let handle = tokio::spawn(async move { publisher.handle(&m, delivery).await });
    tokio::task::yield_now().await;
    // The post's call takes most of the invocation.
    w.clock.advance(time::Duration::seconds(25));
    go.notify_one();
    let Disposition::Defer { copy, .. } = handle.await.unwrap() else {
        panic!("the next part goes to a fresh message")
    };
    assert_eq!(copy.failures, 0, "a new step counts its own failures");
    let v = w.variant(&post).await;
    assert_eq!(
        (v.status, v.step, v.attempts),
        (VariantStatus::Continuing, 1, 0)
    );
    assert_eq!(
        w.deliver(&copy, 1).await,
        Disposition::Done(Done::Published)
    );
    assert_eq!(texts(&w), ["head", "one"]);
}

#[tokio::test]
async fn follow_ups_are_refused_where_their_platform_has_none_and_checked_as_it_counts() {
    let w = World::new(false).await;
    let e = w
        .create_with(&["acc_x", "acc_fb"], thread(&["one"]))
        .await
        .unwrap_err();
    assert_eq!(fields(e), ["thread"]);
    let e = w.create_with(&["acc_x"], comment("hi")).await.unwrap_err();
    assert_eq!(fields(e), ["first_comment"]);
    let both = FollowUps {
        thread: vec!["one".into()],
        first_comment: Some("hi".into()),
    };
    let e = w.create_with(&["acc_x"], both).await.unwrap_err();
    assert!(fields(e).contains(&"first_comment".to_owned()));
    let long = "y".repeat(281);
    let e = w
        .create_with(&["acc_x"], thread(&["ok", &long, " "]))
        .await
        .unwrap_err();
    assert_eq!(fields(e), ["thread[1]", "thread[2]"]);
    let many: Vec<String> = (0..=MAX_THREAD_PARTS)
        .map(|i| format!("part {i}"))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = w.create_with(&["acc_x"], thread(&refs)).await.unwrap_err();
    assert_eq!(fields(e), ["thread"]);
    // LinkedIn comments are at most 1,250 characters; Facebook takes 8,000.
    let e = w
        .create_with(&["acc_fb", "acc_li"], comment(&"c".repeat(1_251)))
        .await
        .unwrap_err();
    match e {
        PostError::Invalid(errors) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(
                errors[0].text.as_ref().unwrap().platform,
                Platform::Linkedin
            );
        }
        other => panic!("{other:?}"),
    }
    let listed = w
        .store
        .list_posts(&w.actor.tenant_id, None, 10)
        .await
        .unwrap();
    assert!(listed.items.is_empty(), "nothing was created");
}
