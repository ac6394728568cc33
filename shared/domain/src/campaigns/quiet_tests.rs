//! Quiet hours through the sender and the reconciler: a recipient in its window is left
//! queued, its batch says when to come back, nobody is texted inside their own window, and
//! the reconciler does not mistake a campaign waiting out the night for a stuck one.

use super::reconcile::CampaignReconciler;
use super::tests::{World, world};
use super::*;
use crate::clock::Clock;
use crate::contacts::{Consent, Contact, ContactStore};
use time::Duration;

/// An opted-in `vip` contact with this number.
async fn contact(w: &World, n: u32, phone: &str) {
    let now = w.clock.now();
    let contact = Contact {
        id: ContactId(format!("con_{n:04}")),
        tenant_id: w.tenant.clone(),
        phone: phone.into(),
        name: Some("Ada".into()),
        tags: ["vip".to_owned()].into(),
        fields: BTreeMap::new(),
        consent: Consent::OptedIn {
            at: now,
            source: "web_form".into(),
        },
        version: 1,
        created_at: now,
        updated_at: now,
    };
    w.contacts.insert_contact(&contact).await.unwrap();
}

/// Paris and Los Angeles contacts, a campaign quiet from 21:00 to 08:00, enqueued at noon UTC
/// (13:00 in Paris, 04:00 in Los Angeles).
async fn night_campaign(w: &World) -> Campaign {
    contact(w, 1, "+33612345678").await;
    contact(w, 2, "+14155550100").await;
    w.grant(10).await;
    let created = w
        .service
        .create(
            &w.tenant,
            NewCampaign {
                name: "Morning deals".into(),
                text: "Hi {{first_name}}".into(),
                tags: vec!["vip".into()],
                sender: "HERALD".into(),
                quiet_hours: Some(NewQuietHours {
                    start: "21:00".into(),
                    end: "08:00".into(),
                    time_zone: "UTC".into(),
                }),
                ..NewCampaign::default()
            },
        )
        .await
        .unwrap();
    let q = created.quiet_hours.as_ref().unwrap();
    assert_eq!((q.start, q.end, q.time_zone.as_str()), (1260, 480, "UTC"));
    w.service
        .enqueue(&w.tenant, &created.id, "corr", false)
        .await
        .unwrap()
}

fn sent_to(w: &World) -> Vec<String> {
    w.provider
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.to.clone())
        .collect()
}

#[tokio::test]
async fn a_recipient_in_its_quiet_hours_is_texted_when_its_window_ends() {
    let w = world();
    let c = night_campaign(&w).await;
    let batch = &w.queue.batches()[0];

    let report = w.sender.send_batch(batch).await.unwrap();
    assert_eq!(sent_to(&w), ["+33612345678"], "Paris at 13:00 only");
    assert_eq!((report.sent, report.pending, report.quiet), (1, 1, 1));
    assert_eq!(report.quiet_for, Some(Duration::hours(4)), "08:00 in LA");
    assert!(!report.completed);

    // A second before the window ends: still held, a second to go.
    w.clock.advance(Duration::hours(4) - Duration::seconds(1));
    let report = w.sender.send_batch(batch).await.unwrap();
    assert_eq!((report.sent, report.quiet), (0, 1));
    assert_eq!(report.quiet_for, Some(Duration::seconds(1)));

    w.clock.advance(Duration::seconds(1));
    let report = w.sender.send_batch(batch).await.unwrap();
    assert_eq!((report.sent, report.pending, report.quiet), (1, 0, 0));
    assert!(report.completed);
    assert_eq!(sent_to(&w), ["+33612345678", "+14155550100"]);
    let done = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(done.status, CampaignStatus::Completed);
    assert_eq!(done.progress.sent, 2);
}

#[tokio::test]
async fn the_reconciler_leaves_a_campaign_waiting_out_quiet_hours_alone() {
    let w = world();
    let c = night_campaign(&w).await;
    w.sender.send_batch(&w.queue.batches()[0]).await.unwrap();
    let r = CampaignReconciler {
        service: w.service.clone(),
        crisis: w.sender.crisis.clone(),
        stuck_after: Duration::minutes(10),
        lease: Duration::seconds(60),
    };
    let queued = w.queue.batches().len();
    r.run().await.unwrap();
    // Two hours of a standing campaign: passes find nothing to send and queue nothing.
    for _ in 0..12 {
        w.clock.advance(Duration::minutes(11));
        let pass = r.run().await.unwrap();
        assert_eq!((pass.batches_requeued, pass.completed), (0, 0));
    }
    assert_eq!(w.queue.batches().len(), queued);
    assert!(w.campaigns.is_live(&w.tenant, &c.id));

    // Past 08:00 in Los Angeles with the batch lost: the next stuck pass queues it again.
    w.clock.advance(Duration::hours(2));
    r.run().await.unwrap();
    w.clock.advance(Duration::minutes(11));
    assert_eq!(r.run().await.unwrap().batches_requeued, 1);
    w.sender
        .send_batch(w.queue.batches().last().unwrap())
        .await
        .unwrap();
    assert_eq!(sent_to(&w), ["+33612345678", "+14155550100"]);
}

#[tokio::test]
async fn a_cancelled_campaigns_quiet_recipients_are_skipped_not_held_all_night() {
    let w = world();
    let c = night_campaign(&w).await;
    let batch = &w.queue.batches()[0];
    w.sender.send_batch(batch).await.unwrap();
    w.service.cancel(&w.tenant, &c.id).await.unwrap();
    let report = w.sender.send_batch(batch).await.unwrap();
    assert_eq!(
        (report.quiet, report.pending, report.skipped),
        (0, 0, 1),
        "its batch does not come back"
    );
    assert_eq!(sent_to(&w), ["+33612345678"]);
}
