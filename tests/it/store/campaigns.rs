//! Campaigns on DynamoDB: a claim is one transaction that fails whole when the recipient
//! moved, the campaign stopped or the contact opted out (and says which); two claims sent at
//! once claim once; a rerun of an enqueue's writes changes nothing; a receipt applies once
//! through the message pointer; counters add up; tenants share nothing.

use super::*;
use herald_domain::campaigns::{
    Audience, Campaign, CampaignStatus, CampaignStore, Claim, EnqueueProblem, EnqueueState,
    Planned, Progress, Receipt, ReceiptApplied, Recipient, RecipientState, SendOutcome, pack,
};
use herald_domain::clock::to_millis;
use herald_domain::contacts::{Consent, Contact, ContactStore};
use herald_domain::ids::{CampaignId, ContactId};

fn campaign(tenant: &TenantId, status: CampaignStatus) -> Campaign {
    let now = to_millis(SystemClock.now());
    Campaign {
        id: CampaignId::generate(),
        tenant_id: tenant.clone(),
        name: "Winter sale".into(),
        text: "Hi {{first_name}}".into(),
        fallbacks: [("first_name".to_owned(), "there".to_owned())].into(),
        audience: Audience::Tags(["vip".to_owned()].into()),
        sender: "HERALD".into(),
        status,
        progress: Progress::default(),
        enqueue: Default::default(),
        problem: None,
        created_by: Some(herald_domain::ids::ApiKeyId("key_creator".into())),
        approval: None,
        quiet_hours: None,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

async fn contact(store: &DynamoStore, tenant: &TenantId, phone: &str, opted_in: bool) -> Contact {
    let now = to_millis(SystemClock.now());
    let c = Contact {
        id: ContactId::generate(),
        tenant_id: tenant.clone(),
        phone: phone.into(),
        name: Some("Ada".into()),
        tags: ["vip".to_owned()].into(),
        fields: Default::default(),
        consent: if opted_in {
            Consent::OptedIn {
                at: now,
                source: "web_form".into(),
            }
        } else {
            Consent::OptedOut {
                at: now,
                source: "keyword:STOP".into(),
            }
        },
        version: 1,
        created_at: now,
        updated_at: now,
    };
    store.insert_contact(&c).await.unwrap();
    c
}

fn recipient(c: &Campaign, contact: &Contact) -> Recipient {
    Recipient {
        tenant_id: c.tenant_id.clone(),
        campaign_id: c.id.clone(),
        contact_id: contact.id.clone(),
        phone: contact.phone.clone(),
        text: "Hi Ada".into(),
        segments: 1,
        batch: 0,
        state: RecipientState::Queued,
    }
}

#[tokio::test]
async fn claims_skips_outcomes_and_receipts_are_exact_on_dynamodb() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let t = &env.tenant;
    let mut c = campaign(t, CampaignStatus::Draft);
    store.insert_campaign(&c).await.unwrap();
    let other = TenantId("campaigns_other".into());
    assert_eq!(store.get_campaign(&other, &c.id).await.unwrap(), None);
    assert_eq!(
        store.get_campaign(t, &c.id).await.unwrap().as_ref(),
        Some(&c)
    );

    let ada = contact(store, t, "+14155550101", true).await;
    let bea = contact(store, t, "+14155550102", true).await;
    let out = contact(store, t, "+14155550103", false).await;
    let recipients = [
        recipient(&c, &ada),
        recipient(&c, &bea),
        recipient(&c, &out),
    ];
    store.put_recipients(&recipients).await.unwrap();
    let now = to_millis(SystemClock.now());
    let lease = now - time::Duration::seconds(60);

    // A draft is not live: a claim skips, and counts, the recipient.
    assert_eq!(
        store.claim(&recipients[0], now, lease).await.unwrap(),
        Claim::Stopped
    );
    // Sending: the enqueue's own fields are rewritten, the counters are kept.
    c.status = CampaignStatus::Sending;
    c.progress.recipients = 3;
    c.version = 2;
    store.replace_campaign(&c, 1).await.unwrap();
    assert_eq!(
        store.replace_campaign(&c, 1).await,
        Err(herald_domain::StoreError::Conflict)
    );
    // The skipped recipient stays skipped: a rerun of the enqueue's writes changes nothing.
    store.put_recipients(&recipients).await.unwrap();
    let batch = store.batch(t, &c.id, 0).await.unwrap();
    let state = |id: &ContactId| {
        batch
            .iter()
            .find(|r| &r.contact_id == id)
            .unwrap()
            .state
            .clone()
    };
    assert!(matches!(state(&ada.id), RecipientState::Skipped { .. }));
    assert_eq!(state(&bea.id), RecipientState::Queued);

    // Two claims at once: one holds, the other is told it is busy.
    let (a, b) = tokio::join!(
        store.claim(&recipients[1], now, lease),
        store.claim(&recipients[1], now, lease)
    );
    let mut claims = [a.unwrap(), b.unwrap()];
    claims.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(claims, [Claim::Busy, Claim::Fresh]);
    // The opted-out contact is skipped inside the claim.
    assert_eq!(
        store.claim(&recipients[2], now, lease).await.unwrap(),
        Claim::OptedOut
    );

    let sent = SendOutcome::Sent {
        message_id: format!("sm_{}", c.id),
    };
    assert!(store.finish(&recipients[1], &sent).await.unwrap());
    assert!(
        !store.finish(&recipients[1], &sent).await.unwrap(),
        "finished once"
    );
    let message = format!("sm_{}", c.id);
    assert_eq!(
        store
            .apply_receipt(&message, Receipt::Delivered)
            .await
            .unwrap(),
        ReceiptApplied::Applied(t.clone(), c.id.clone(), recipients[1].contact_id.clone())
    );
    assert_eq!(
        store
            .apply_receipt(&message, Receipt::Delivered)
            .await
            .unwrap(),
        ReceiptApplied::Unchanged
    );
    assert_eq!(
        store
            .apply_receipt(&message, Receipt::Undelivered)
            .await
            .unwrap(),
        ReceiptApplied::Unchanged,
        "late"
    );
    assert_eq!(
        store
            .apply_receipt("sm_unknown", Receipt::Delivered)
            .await
            .unwrap(),
        ReceiptApplied::Unknown
    );

    store
        .add_progress(
            t,
            &c.id,
            &Progress {
                credits_released: 2,
                ..Progress::default()
            },
        )
        .await
        .unwrap();
    let read = store.get_campaign(t, &c.id).await.unwrap().unwrap();
    assert_eq!(
        (
            read.progress.recipients,
            read.progress.sent,
            read.progress.delivered,
            read.progress.skipped,
            read.progress.credits_used,
            read.progress.credits_released
        ),
        (3, 1, 1, 2, 1, 2)
    );
    assert!(read.progress.done());
    let listed = store.list_campaigns(t, None, 10).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(
        store
            .list_campaigns(&other, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// An enqueue's snapshot in parts near an item's size, read back whole, kept apart per
/// snapshot and per tenant, and deleted with every try's parts; the campaign's enqueue state
/// and problem round-trip (and a campaign item without them reads as nothing under way).
#[tokio::test]
async fn snapshot_parts_and_enqueue_state_round_trip_on_dynamodb() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let t = &env.tenant;
    let mut c = campaign(t, CampaignStatus::Enqueuing);
    store.insert_campaign(&c).await.unwrap();
    let fresh = store.get_campaign(t, &c.id).await.unwrap().unwrap();
    assert_eq!(
        (fresh.enqueue, fresh.problem),
        (EnqueueState::default(), None)
    );
    assert_eq!((&fresh.created_by, &fresh.approval), (&c.created_by, &None));
    assert_eq!(fresh.quiet_hours, None);

    let entries: Vec<Planned> = (0..1500)
        .map(|i| Planned {
            contact_id: ContactId(format!("con_{i:06}")),
            phone: format!("+1415557{i:04}"),
            values: [("note".to_owned(), "é".repeat(200))].into(),
            segments: 4,
        })
        .collect();
    let parts = pack(entries.clone());
    assert!(parts.len() >= 2, "{}", parts.len());
    for (i, part) in parts.iter().enumerate() {
        store
            .put_snapshot_part(t, &c.id, "s1", i as u32, part)
            .await
            .unwrap();
    }
    store
        .put_snapshot_part(t, &c.id, "s0", 0, &parts[1])
        .await
        .unwrap();
    let mut read = Vec::new();
    for i in 0..parts.len() as u32 {
        let part = store.snapshot_part(t, &c.id, "s1", i).await.unwrap();
        read.extend(part.unwrap().entries);
    }
    assert_eq!(read, entries);
    let other = TenantId(crate::support::unique("campaigns_other_"));
    assert_eq!(
        store.snapshot_part(&other, &c.id, "s1", 0).await.unwrap(),
        None
    );

    c.enqueue = EnqueueState {
        snapshot: "s1".into(),
        parts: parts.len() as u32,
        credits: 6000,
        parts_written: 1,
        batches_queued: 7,
    };
    c.problem = Some(EnqueueProblem::InsufficientCredits {
        needed: 6000,
        available: 10,
        shortfall: 5990,
    });
    c.approval = Some(herald_domain::campaigns::CampaignApproval {
        by: herald_domain::ids::ApiKeyId("key_approver".into()),
        at: to_millis(SystemClock.now()),
    });
    c.quiet_hours = Some(
        herald_domain::campaigns::quiet::QuietHours::parse("21:30", "07:45", "Asia/Tokyo").unwrap(),
    );
    store.replace_campaign(&c, 1).await.unwrap();
    let stored = store.get_campaign(t, &c.id).await.unwrap().unwrap();
    assert_eq!((stored.enqueue, stored.problem), (c.enqueue, c.problem));
    assert_eq!(
        (stored.created_by, stored.approval),
        (c.created_by, c.approval)
    );
    assert_eq!(stored.quiet_hours, c.quiet_hours);

    store.delete_snapshots(t, &c.id).await.unwrap();
    for (snapshot, part) in [("s1", 0), ("s1", 1), ("s0", 0)] {
        let gone = store.snapshot_part(t, &c.id, snapshot, part).await.unwrap();
        assert_eq!(gone, None, "{snapshot} {part}");
    }
}

/// The reconciler's live markers: one per campaign (marking again keeps what was seen),
/// listed across tenants, updated, removed; a campaign's recipients read whole; and the
/// upgrade's backfill marks the campaigns enqueuing or sending written before the markers.
#[tokio::test]
async fn live_markers_recipients_and_their_backfill_on_dynamodb() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let t = &env.tenant;
    let mine = |live: Vec<herald_domain::campaigns::reconcile::LiveCampaign>| {
        live.into_iter()
            .filter(|l| &l.tenant_id == t)
            .map(|l| (l.campaign_id, l.seen_done))
            .collect::<Vec<_>>()
    };
    let c = campaign(t, CampaignStatus::Sending);
    store.insert_campaign(&c).await.unwrap();
    let at = to_millis(SystemClock.now());
    store.mark_live(t, &c.id, at).await.unwrap();
    let later = at + time::Duration::minutes(5);
    store.saw_live(t, &c.id, 7, later, true).await.unwrap();
    store.mark_live(t, &c.id, at).await.unwrap();
    let live = store.live_campaigns(100_000).await.unwrap();
    let moved_at = |live: &[herald_domain::campaigns::reconcile::LiveCampaign]| {
        live.iter()
            .find(|l| l.campaign_id == c.id)
            .map(|l| (l.seen_at, l.moved_at))
    };
    assert_eq!(moved_at(&live), Some((later, later)));
    assert_eq!(
        mine(live),
        [(c.id.clone(), 7)],
        "marking again keeps what was seen"
    );
    // Seen again without moving (a repair): only `seen_at` changes.
    let repaired = later + time::Duration::minutes(11);
    store.saw_live(t, &c.id, 7, repaired, false).await.unwrap();
    let live = store.live_campaigns(100_000).await.unwrap();
    assert_eq!(moved_at(&live), Some((repaired, later)));
    store.unmark_live(t, &c.id).await.unwrap();
    store.saw_live(t, &c.id, 9, at, true).await.unwrap();
    assert!(mine(store.live_campaigns(100_000).await.unwrap()).is_empty());

    let a = contact(&env.store, t, "+14155550181", true).await;
    let b = contact(&env.store, t, "+14155550182", true).await;
    let rs: Vec<Recipient> = [(&a, 0), (&b, 1)]
        .into_iter()
        .map(|(k, batch)| Recipient {
            batch,
            ..recipient(&c, k)
        })
        .collect();
    store.put_recipients(&rs).await.unwrap();
    let mut all = store.all_recipients(t, &c.id).await.unwrap();
    all.sort_by_key(|r| r.batch);
    assert_eq!(all, rs);

    // The backfill: the sending and the enqueuing campaigns, not the draft nor the done one.
    let enqueuing = campaign(t, CampaignStatus::Enqueuing);
    let draft = campaign(t, CampaignStatus::Draft);
    let done = campaign(t, CampaignStatus::Completed);
    for x in [&enqueuing, &draft, &done] {
        store.insert_campaign(x).await.unwrap();
    }
    assert!(env.store.backfill_live_campaigns().await.unwrap() >= 2);
    let mut marked: Vec<_> = mine(store.live_campaigns(100_000).await.unwrap())
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    marked.sort();
    let mut expected = vec![c.id.clone(), enqueuing.id.clone()];
    expected.sort();
    assert_eq!(marked, expected);
}

#[tokio::test]
async fn a_sender_id_is_the_first_tenants_in_any_case() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let t = &env.tenant;
    let other = TenantId(crate::support::unique("campaigns_other_"));
    let sender = format!("S{}", &crate::support::unique("")[..9]);
    assert_eq!(store.sender_owner(&sender).await.unwrap(), None);
    let lower = sender.to_lowercase();
    let (mine, theirs) = tokio::join!(
        store.claim_sender(t, &sender),
        store.claim_sender(&other, &lower)
    );
    let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
    assert!(mine ^ theirs, "one tenant holds it: {mine} {theirs}");
    let holder = if mine { t } else { &other };
    let loser = if mine { &other } else { t };
    assert!(
        store.claim_sender(holder, &sender).await.unwrap(),
        "again: still its own"
    );
    assert!(
        !store
            .claim_sender(loser, &sender.to_uppercase())
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .sender_owner(&sender.to_lowercase())
            .await
            .unwrap()
            .as_ref(),
        Some(holder)
    );
}

#[tokio::test]
async fn the_shared_rate_window_takes_several_places_at_once_never_beyond_its_limit() {
    use herald_domain::rate_limits::RequestCounter;
    let env = Env::new().await;
    let store = env.store.as_ref();
    let scope = crate::support::unique("sms:provider:");
    let expires = SystemClock.now() + time::Duration::minutes(1);
    assert_eq!(
        store.take(&scope, 7, 10, 8, expires).await.unwrap(),
        Some(8)
    );
    assert_eq!(
        store.take(&scope, 7, 10, 3, expires).await.unwrap(),
        None,
        "8 + 3 > 10"
    );
    assert_eq!(
        store.take(&scope, 7, 10, 2, expires).await.unwrap(),
        Some(10)
    );
    assert_eq!(store.take(&scope, 7, 10, 1, expires).await.unwrap(), None);
    assert_eq!(
        store.take(&scope, 8, 10, 11, expires).await.unwrap(),
        None,
        "never more than the limit"
    );
    assert_eq!(
        store.take(&scope, 8, 10, 10, expires).await.unwrap(),
        Some(10),
        "a new window"
    );
}
