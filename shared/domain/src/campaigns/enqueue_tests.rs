//! Enqueues that do not fit the API's answer: handed to jobs, carried on in parts, refused for
//! a shortfall found later, stopped by a cancel, and never crossing tenants.

use super::tests::{World, world};
use super::*;
use crate::clock::Clock;
use crate::contacts::{Consent, Contact, ContactStore};
use crate::ids::TenantId;
use crate::wallet::WalletStore;
use std::collections::BTreeSet;

/// The API's service, which hands any audience over `audience` contacts to a job.
fn api(w: &World, audience: usize) -> CampaignService {
    CampaignService {
        limits: EnqueueLimits {
            audience: Some(audience),
            ..EnqueueLimits::API
        },
        ..w.service.clone()
    }
}

/// The SMS sender's, whose budget is spent after every part (one part per job).
fn worker(w: &World) -> CampaignService {
    CampaignService {
        limits: EnqueueLimits {
            audience: None,
            budget: time::Duration::seconds(-1),
        },
        ..w.service.clone()
    }
}

/// `n` opted-in contacts tagged `big`, each with a 400-character note (so a snapshot of a
/// thousand takes several parts).
async fn big_audience(w: &World, n: usize) {
    let now = w.clock.now();
    for i in 0..n {
        let contact = Contact {
            id: crate::ids::ContactId(format!("con_big_{i:05}")),
            tenant_id: w.tenant.clone(),
            phone: format!("+1415556{i:04}"),
            name: Some(format!("Ada{i}")),
            tags: ["big".to_owned()].into(),
            fields: [("note".to_owned(), "n".repeat(400))].into(),
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
}

/// Works every queued job (and those they hand on); how many.
async fn work_jobs(w: &World, service: &CampaignService) -> usize {
    let mut worked = 0;
    loop {
        let jobs = w.queue.take_jobs();
        if jobs.is_empty() {
            return worked;
        }
        for job in jobs {
            service.work(&job).await.unwrap();
            worked += 1;
        }
    }
}

const TEXT: &str = "Hi {{first_name}}: {{note}}";

#[tokio::test]
async fn a_large_audience_is_enqueued_by_jobs_part_by_part_each_recipient_once() {
    let w = world();
    big_audience(&w, 1200).await;
    w.contact(1, Some("Never"), &["big"], false).await;
    w.grant(5000).await;
    let c = w.campaign(TEXT, &["big"]).await;

    // The API answers at once: nothing reserved or queued yet, one job to carry on.
    let answered = api(&w, 100)
        .enqueue(&w.tenant, &c.id, "corr", false)
        .await
        .unwrap();
    assert_eq!(answered.status, CampaignStatus::Enqueuing);
    assert_eq!(w.wallets.wallet(&w.tenant).await.unwrap().reserved, 0);
    assert!(w.queue.batches().is_empty());
    let jobs = w.queue.take_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].correlation_id, "corr");

    // The jobs: a snapshot of several parts (400-character notes), one part per job.
    let service = worker(&w);
    service.work(&jobs[0]).await.unwrap();
    let after_one = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(after_one.status, CampaignStatus::Enqueuing);
    assert!(after_one.enqueue.parts >= 2, "{:?}", after_one.enqueue);
    assert_eq!(after_one.enqueue.parts_written, 1);
    assert_eq!(after_one.progress.credits_reserved, 3600);
    assert_eq!(w.wallets.wallet(&w.tenant).await.unwrap().reserved, 3600);
    let worked = 1 + work_jobs(&w, &service).await;
    assert_eq!(worked, after_one.enqueue.parts as usize);

    let done = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(done.status, CampaignStatus::Sending);
    assert_eq!(
        (done.progress.recipients, done.progress.batches),
        (1200, 12)
    );
    assert_eq!(done.enqueue.batches_queued, 12);
    let queued: Vec<u32> = w.queue.batches().iter().map(|b| b.batch).collect();
    assert_eq!(
        queued,
        (0..12).collect::<Vec<_>>(),
        "each batch once, in order"
    );
    let recipients = w.campaigns.recipients(&w.tenant, &c.id);
    let contacts: BTreeSet<_> = recipients.iter().map(|r| &r.contact_id).collect();
    assert_eq!((recipients.len(), contacts.len()), (1200, 1200));
    let first = recipients
        .iter()
        .find(|r| r.contact_id.0 == "con_big_00000");
    assert_eq!(first.unwrap().text, format!("Hi Ada0: {}", "n".repeat(400)));
    assert_eq!(w.campaigns.snapshot_parts(), 0, "the snapshot is dropped");

    // A job delivered again changes nothing; so does enqueueing again.
    service.work(&jobs[0]).await.unwrap();
    api(&w, 100)
        .enqueue(&w.tenant, &c.id, "again", false)
        .await
        .unwrap();
    assert_eq!(w.queue.batches().len(), 12);
    assert!(w.queue.take_jobs().is_empty());
    assert_eq!(w.wallets.wallet(&w.tenant).await.unwrap().reserved, 3600);

    // And the batches send every recipient once (over a few seconds of the provider's rate).
    for _ in 0..10 {
        w.run_all_batches().await;
        w.clock.advance(time::Duration::seconds(2));
    }
    let sent = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(sent.progress.sent, 1200);
    assert_eq!(sent.status, CampaignStatus::Completed);
}

#[tokio::test]
async fn a_shortfall_found_by_the_job_puts_the_campaign_back_with_its_problem() {
    let w = world();
    big_audience(&w, 50).await;
    w.grant(100).await;
    let c = w.campaign(TEXT, &["big"]).await;
    let service = worker(&w);

    let answered = api(&w, 10)
        .enqueue(&w.tenant, &c.id, "c", false)
        .await
        .unwrap();
    assert_eq!(answered.status, CampaignStatus::Enqueuing);
    assert_eq!(work_jobs(&w, &service).await, 1);
    let back = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(back.status, CampaignStatus::Draft);
    assert_eq!(
        back.problem,
        Some(EnqueueProblem::InsufficientCredits {
            needed: 150,
            available: 100,
            shortfall: 50
        })
    );
    assert_eq!(back.enqueue, EnqueueState::default());
    assert_eq!(w.wallets.wallet(&w.tenant).await.unwrap().reserved, 0);
    assert!(w.queue.batches().is_empty());
    assert_eq!(w.campaigns.snapshot_parts(), 0);

    // Topped up, enqueued again: the problem goes, the job enqueues it.
    w.grant(50).await;
    let again = api(&w, 10)
        .enqueue(&w.tenant, &c.id, "c", false)
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.problem),
        (CampaignStatus::Enqueuing, None)
    );
    work_jobs(&w, &service).await;
    let sending = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(sending.status, CampaignStatus::Sending);
    assert_eq!(sending.progress.credits_reserved, 150);
}

#[tokio::test]
async fn a_cancel_during_the_jobs_stops_them_and_gives_the_credits_back() {
    let w = world();
    big_audience(&w, 1200).await;
    w.grant(5000).await;
    let c = w.campaign(TEXT, &["big"]).await;
    let service = worker(&w);
    api(&w, 100)
        .enqueue(&w.tenant, &c.id, "c", false)
        .await
        .unwrap();
    let first = w.queue.take_jobs();
    service.work(&first[0]).await.unwrap();
    let queued = w.queue.batches().len();
    assert!(
        (1..12).contains(&queued),
        "the first part's batches: {queued}"
    );

    w.service.cancel(&w.tenant, &c.id).await.unwrap();
    assert_eq!(work_jobs(&w, &service).await, 1);
    assert_eq!(w.queue.batches().len(), queued, "nothing more queued");
    let cancelled = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(cancelled.status, CampaignStatus::Cancelled);
    assert_eq!(cancelled.progress.credits_released, 3600);
    let wallet = w.wallets.wallet(&w.tenant).await.unwrap();
    assert_eq!((wallet.balance, wallet.reserved), (5000, 0));
    assert_eq!(w.campaigns.snapshot_parts(), 0);

    // Cancelled before any job ran: the job reserves nothing.
    let c2 = w.campaign(TEXT, &["big"]).await;
    api(&w, 100)
        .enqueue(&w.tenant, &c2.id, "c", false)
        .await
        .unwrap();
    w.service.cancel(&w.tenant, &c2.id).await.unwrap();
    work_jobs(&w, &service).await;
    assert_eq!(w.wallets.wallet(&w.tenant).await.unwrap().reserved, 0);
}

#[tokio::test]
async fn a_job_is_its_tenants_only() {
    let w = world();
    big_audience(&w, 20).await;
    w.grant(100).await;
    let c = w.campaign(TEXT, &["big"]).await;
    api(&w, 5)
        .enqueue(&w.tenant, &c.id, "c", false)
        .await
        .unwrap();
    let mut job = w.queue.take_jobs().remove(0);

    // Another tenant can neither enqueue the campaign nor have a job carry it on.
    let other = TenantId("ten_other".into());
    let err = api(&w, 5)
        .enqueue(&other, &c.id, "x", false)
        .await
        .unwrap_err();
    assert!(matches!(err, CampaignError::NotFound), "{err:?}");
    job.tenant_id = other;
    worker(&w).work(&job).await.unwrap();
    let untouched = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(untouched.status, CampaignStatus::Enqueuing);
    assert!(untouched.enqueue.snapshot.is_empty());
    assert!(w.queue.batches().is_empty() && w.queue.take_jobs().is_empty());
}

#[tokio::test]
async fn where_approval_is_required_only_an_approved_campaign_is_enqueued() {
    let w = world();
    w.contact(1, Some("Ada"), &["vip"], true).await;
    w.grant(10).await;
    let c = w.campaign("Hi {{first_name}}", &["vip"]).await;
    let err = w
        .service
        .enqueue(&w.tenant, &c.id, "c", true)
        .await
        .unwrap_err();
    assert!(matches!(err, CampaignError::NeedsApproval), "{err:?}");
    let untouched = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(untouched.status, CampaignStatus::Draft);
    assert!(!w.campaigns.is_live(&w.tenant, &c.id));
    assert_eq!(w.wallets.wallet(&w.tenant).await.unwrap().reserved, 0);

    // Four eyes: not with the key that created it; another tenant reaches nothing.
    let creator = crate::ids::ApiKeyId("key_editor".into());
    let approver = crate::ids::ApiKeyId("key_approver".into());
    let err = w
        .service
        .approve(&w.tenant, &c.id, &creator, true)
        .await
        .unwrap_err();
    assert!(matches!(err, CampaignError::SelfApproval), "{err:?}");
    let other = TenantId("ten_b".into());
    assert!(matches!(
        w.service.approve(&other, &c.id, &approver, false).await,
        Err(CampaignError::NotFound)
    ));
    let approved = w
        .service
        .approve(&w.tenant, &c.id, &approver, true)
        .await
        .unwrap();
    assert_eq!(approved.approval.as_ref().unwrap().by, approver);
    let again = w
        .service
        .approve(&w.tenant, &c.id, &creator, true)
        .await
        .unwrap();
    assert_eq!(
        again.approval, approved.approval,
        "approving again changes nothing"
    );

    let sent = w
        .service
        .enqueue(&w.tenant, &c.id, "c", true)
        .await
        .unwrap();
    assert_eq!(sent.status, CampaignStatus::Sending);
    assert_eq!(sent.approval, approved.approval);
    // Without the tenant's requirement a draft goes as before; a sent one cannot be approved.
    let d = w.campaign("Bye {{first_name}}", &["vip"]).await;
    let sending = w.service.approve(&w.tenant, &c.id, &creator, false).await;
    assert_eq!(
        sending.unwrap().approval,
        approved.approval,
        "approved already"
    );
    let d = w
        .service
        .enqueue(&w.tenant, &d.id, "c", false)
        .await
        .unwrap();
    assert!(matches!(
        w.service.approve(&w.tenant, &d.id, &approver, false).await,
        Err(CampaignError::State(_))
    ));
}
