//! The service over the in-memory queues and records: the drain, pages, requeues and deletes,
//! two tenants and the operators kept apart.

use super::*;
use crate::clock::FakeClock;
use crate::memory::{MemoryDeadLetterRecords, MemoryDeadLetters, MemoryStore};
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-12-04 10:00 UTC);

fn publish_body(tenant: &str, n: usize) -> String {
    serde_json::json!({
        "tenant_id": tenant, "post_id": format!("pst_{n}"), "account_id": "acc_1", "platform": "x",
        "correlation_id": "c", "failures": 3
    })
    .to_string()
}

fn letter(tenant: &str, n: usize) -> DeadLetter {
    DeadLetter::from_body(
        &format!("m{n:04}"),
        "publish",
        publish_body(tenant, n),
        Some("boom".into()),
        3,
        T0 + time::Duration::seconds(i64::try_from(n).unwrap_or(0)),
    )
}

struct World {
    queues: Arc<MemoryDeadLetters>,
    service: DeadLetterService,
}

fn world(letters: Vec<DeadLetter>) -> World {
    let queues = Arc::new(MemoryDeadLetters::default());
    *queues.dead.lock().unwrap() = letters;
    let service = DeadLetterService {
        queues: queues.clone(),
        records: Arc::new(MemoryDeadLetterRecords::default()),
        audit: Arc::new(MemoryStore::default()),
        clock: Arc::new(FakeClock::new(T0)),
    };
    World { queues, service }
}

fn by() -> Operator {
    Operator {
        actor: "key:k".into(),
        ip: None,
        user_agent: None,
    }
}

#[tokio::test]
async fn the_drain_moves_every_message_into_its_owners_records_once() {
    let mut letters: Vec<DeadLetter> = (0..25).map(|n| letter("ten_a", n)).collect();
    letters.extend((100..105).map(|n| letter("ten_b", n)));
    letters.push(DeadLetter::from_body(
        "w1",
        "webhooks",
        "not json".into(),
        None,
        5,
        T0,
    ));
    let w = world(letters.clone());
    assert_eq!(w.service.drain(1_000).await.unwrap(), 31);
    assert!(w.queues.dead.lock().unwrap().is_empty());
    // A message delivered again (its deletion failed) is kept once.
    *w.queues.dead.lock().unwrap() = vec![letters[0].clone()];
    assert_eq!(w.service.drain(1_000).await.unwrap(), 1);
    let pending = w.service.records.pending().await.unwrap();
    assert_eq!(pending.get("publish"), Some(&30));
    assert_eq!(pending.get("webhooks"), Some(&1));

    let a = TenantId("ten_a".into());
    let all = DeadLetterQuery::default();
    let first = w.service.list(&a, &all, None, 10).await.unwrap();
    assert_eq!(first.items.len(), 10);
    assert!(first.items.windows(2).all(|p| p[0].sent_at <= p[1].sent_at));
    let mut seen = first.items.clone();
    let mut cursor = first.cursor;
    while let Some(c) = cursor {
        let page = w.service.list(&a, &all, Some(&c), 10).await.unwrap();
        seen.extend(page.items);
        cursor = page.cursor;
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.iter().all(|d| d.owner() == a));
    let ops = TenantId(OPERATORS.into());
    assert_eq!(
        w.service
            .list(&ops, &all, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn requeues_and_deletes_touch_only_the_owners_letters() {
    let mut letters: Vec<DeadLetter> = (0..3).map(|n| letter("ten_a", n)).collect();
    letters.push(letter("ten_b", 9));
    let w = world(letters.clone());
    w.service.drain(100).await.unwrap();
    let (a, b) = (TenantId("ten_a".into()), TenantId("ten_b".into()));
    // B cannot requeue, see or delete A's letter by its id.
    let theirs = letters[0].id.clone();
    assert!(
        w.service
            .requeue_ids(&b, std::slice::from_ref(&theirs), &by())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(w.service.get(&b, &theirs).await.unwrap().is_none());
    assert!(
        w.service
            .delete(&b, &theirs, &by())
            .await
            .unwrap()
            .is_none()
    );
    // A requeues one, then all that are left; B's stays.
    let one = w
        .service
        .requeue_ids(&a, std::slice::from_ref(&theirs), &by())
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    let rest = w
        .service
        .requeue_matching(&a, &DeadLetterQuery::default(), &by())
        .await
        .unwrap();
    assert_eq!((rest.letters.len(), rest.more), (2, false));
    assert_eq!(w.queues.requeued.lock().unwrap().len(), 3);
    assert_eq!(
        w.service.records.pending().await.unwrap().get("publish"),
        Some(&1)
    );
    let deleted = w.service.delete(&b, &letters[3].id, &by()).await.unwrap();
    assert!(deleted.is_some());
    assert!(
        w.service
            .delete(&b, &letters[3].id, &by())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_bulk_requeue_stops_at_its_batch_and_says_more_remain() {
    let w = world((0..REQUEUE_BATCH + 7).map(|n| letter("ten_a", n)).collect());
    w.service.drain(10_000).await.unwrap();
    let a = TenantId("ten_a".into());
    let first = w
        .service
        .requeue_matching(&a, &DeadLetterQuery::default(), &by())
        .await
        .unwrap();
    assert_eq!((first.letters.len(), first.more), (REQUEUE_BATCH, true));
    let second = w
        .service
        .requeue_matching(&a, &DeadLetterQuery::default(), &by())
        .await
        .unwrap();
    assert_eq!((second.letters.len(), second.more), (7, false));
}

#[test]
fn ids_sort_as_the_messages_were_sent() {
    let early = DeadLetter::id_for(T0, "zzz");
    let late = DeadLetter::id_for(T0 + time::Duration::milliseconds(1), "aaa");
    assert!(early < late, "{early} {late}");
    assert_eq!(early, format!("{}-zzz", crate::clock::epoch_millis(T0)));
}
