//! The reconciler's campaign pass: lost batches queued again (only the ones still holding
//! recipients to send, and only once the campaign stood still), counters recomputed from the
//! recipients, crashed settlements finished, stale enqueues carried on, markers cleared.

use super::reconcile::{CampaignReconciler, CampaignRepairs};
use super::tests::{World, world};
use super::*;
use crate::clock::Clock;
use crate::wallet::WalletStore;
use time::Duration;

fn reconciler(w: &World) -> CampaignReconciler {
    CampaignReconciler {
        service: w.service.clone(),
        crisis: w.sender.crisis.clone(),
        stuck_after: Duration::minutes(10),
        lease: Duration::seconds(60),
    }
}

/// A campaign of `n` opted-in contacts, enqueued (its batches on the memory queue).
async fn enqueued(w: &World, n: usize) -> Campaign {
    for i in 0..n {
        w.contact(i as u32, Some("Ada"), &["vip"], true).await;
    }
    w.grant(n as i64).await;
    let c = w.campaign("Hi {{first_name}}", &["vip"]).await;
    w.service
        .enqueue(&w.tenant, &c.id, "corr", false)
        .await
        .unwrap()
}

/// Sends the batches queued since `from`; how many batches that was.
async fn send_from(w: &World, from: usize) -> usize {
    let batches = w.queue.batches();
    for b in &batches[from..] {
        w.sender.send_batch(b).await.unwrap();
    }
    batches.len() - from
}

#[tokio::test]
async fn lost_batches_are_queued_again_once_the_campaign_stands_still_and_it_completes() {
    let w = world();
    let c = enqueued(&w, 250).await;
    assert!(w.campaigns.is_live(&w.tenant, &c.id));
    // Batch 0 is sent; batches 1 and 2 are lost.
    w.sender.send_batch(&w.queue.batches()[0]).await.unwrap();
    let r = reconciler(&w);
    let queued = w.queue.batches().len();

    // Moving since it was marked: the pass records what it saw and leaves it.
    let first = r.run().await.unwrap();
    assert_eq!((first.examined, first.batches_requeued), (1, 0));
    w.clock.advance(Duration::minutes(5));
    assert_eq!(r.run().await.unwrap().batches_requeued, 0, "not stuck yet");

    w.clock.advance(Duration::minutes(6));
    let repaired = r.run().await.unwrap();
    assert_eq!(repaired.batches_requeued, 2, "{repaired:?}");
    let again: Vec<u32> = w.queue.batches()[queued..]
        .iter()
        .map(|b| b.batch)
        .collect();
    assert_eq!(again, [1, 2], "only the batches with recipients to send");
    // The next pass right after waits again.
    assert_eq!(r.run().await.unwrap().batches_requeued, 0);

    assert_eq!(send_from(&w, queued).await, 2);
    let done = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(
        (done.status, done.progress.sent),
        (CampaignStatus::Completed, 250)
    );
    assert!(!w.campaigns.is_live(&w.tenant, &c.id), "settled: unmarked");
    assert_eq!(r.run().await.unwrap(), CampaignRepairs::default());
    let wallet = w.wallets.wallet(&w.tenant).await.unwrap();
    assert_eq!((wallet.balance, wallet.reserved), (0, 0));
}

#[tokio::test]
async fn a_paused_tenants_campaign_waits_for_the_lift() {
    let w = world();
    let c = enqueued(&w, 3).await;
    let pause = crate::publishing::gates::Crisis {
        tenant_id: w.tenant.clone(),
        platforms: vec![],
        reason: "review".into(),
        started_by: crate::ids::ApiKeyId("key_1".into()),
        started_at: w.clock.now(),
        expires_at: w.clock.now() + Duration::hours(1),
    };
    w.sender.crisis.put_crisis(&pause).await.unwrap();
    let r = reconciler(&w);
    r.run().await.unwrap();
    w.clock.advance(Duration::minutes(30));
    assert_eq!(r.run().await.unwrap().batches_requeued, 0, "paused");
    w.sender.crisis.delete_crisis(&w.tenant).await.unwrap();
    assert_eq!(r.run().await.unwrap().batches_requeued, 0, "just lifted");
    w.clock.advance(Duration::minutes(11));
    assert_eq!(r.run().await.unwrap().batches_requeued, 1);
    assert!(w.campaigns.is_live(&w.tenant, &c.id));
}

#[tokio::test]
async fn counters_behind_the_recipients_are_recomputed_and_a_done_campaign_completed() {
    let w = world();
    let c = enqueued(&w, 3).await;
    // Every recipient ends, but two endings never reached the counters and the campaign
    // was never completed (the sender died between).
    let recipients = w.campaigns.recipients(&w.tenant, &c.id);
    w.campaigns.force_state(
        &recipients[0],
        RecipientState::Sent {
            message_id: "m0".into(),
        },
    );
    w.campaigns.force_state(
        &recipients[1],
        RecipientState::Skipped {
            reason: "opted out".into(),
        },
    );
    w.campaigns.force_state(
        &recipients[2],
        RecipientState::Delivered {
            message_id: "m2".into(),
        },
    );
    let r = reconciler(&w);
    r.run().await.unwrap();
    w.clock.advance(Duration::minutes(11));
    let repaired = r.run().await.unwrap();
    assert_eq!(
        repaired.counters_repaired, 4,
        "2 sent, 1 delivered, 1 skipped"
    );
    assert_eq!((repaired.completed, repaired.batches_requeued), (1, 0));
    let done = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(done.status, CampaignStatus::Completed);
    let p = &done.progress;
    assert_eq!((p.sent, p.delivered, p.skipped), (2, 1, 1));
    // Settled: the two sent texts' credits debited (recomputed too), the third released.
    assert_eq!((p.credits_released, p.credits_used), (1, 2));
    let wallet = w.wallets.wallet(&w.tenant).await.unwrap();
    assert_eq!((wallet.balance, wallet.reserved), (1, 0));
    assert!(!w.campaigns.is_live(&w.tenant, &c.id));
}

#[tokio::test]
async fn a_crashed_settlement_is_finished_and_a_stale_enqueue_carried_on() {
    let w = world();
    let c = enqueued(&w, 2).await;
    // Cancelled, and the settlement never ran (the function died between).
    let mut stopped = w.service.get(&w.tenant, &c.id).await.unwrap();
    stopped.status = CampaignStatus::Cancelled;
    stopped.version += 1;
    w.campaigns
        .replace_campaign(&stopped, stopped.version - 1)
        .await
        .unwrap();
    assert_eq!(w.wallets.wallet(&w.tenant).await.unwrap().reserved, 2);
    let r = reconciler(&w);
    let repaired = r.run().await.unwrap();
    assert_eq!(repaired.settled, 1);
    let wallet = w.wallets.wallet(&w.tenant).await.unwrap();
    assert_eq!((wallet.balance, wallet.reserved), (2, 0));
    assert!(!w.campaigns.is_live(&w.tenant, &c.id));

    // An enqueue that crashed after it began: carried on by a job once it is stale.
    let c2 = w.campaign("Hi {{first_name}}", &["vip"]).await;
    let abandoned = w.campaign("Hi {{first_name}}", &["vip"]).await;
    for id in [&c2.id, &abandoned.id] {
        w.campaigns
            .mark_live(&w.tenant, id, w.clock.now())
            .await
            .unwrap();
    }
    // Marked just before its enqueue begins: still a draft, and left live.
    r.run().await.unwrap();
    assert!(w.campaigns.is_live(&w.tenant, &c2.id));
    let mut begun = w.service.get(&w.tenant, &c2.id).await.unwrap();
    begun.status = CampaignStatus::Enqueuing;
    begun.version += 1;
    begun.updated_at = w.clock.now();
    w.campaigns
        .replace_campaign(&begun, begun.version - 1)
        .await
        .unwrap();
    assert_eq!(r.run().await.unwrap().enqueues_resumed, 0, "fresh");
    w.clock.advance(STALE + Duration::seconds(1));
    assert_eq!(r.run().await.unwrap().enqueues_resumed, 1);
    // A marker whose campaign stayed a draft for STALE was left behind: removed.
    assert!(!w.campaigns.is_live(&w.tenant, &abandoned.id));
    let jobs = w.queue.take_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (&jobs[0].tenant_id, &jobs[0].campaign_id),
        (&w.tenant, &c2.id)
    );
    w.service.work(&jobs[0]).await.unwrap();
    let sending = w.service.get(&w.tenant, &c2.id).await.unwrap();
    assert_eq!(sending.status, CampaignStatus::Sending);
}
