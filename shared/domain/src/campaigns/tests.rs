use super::memory::{MemoryCampaigns, MemorySmsQueue};
use super::sender::{OutboundSms, SmsError, SmsProvider, SmsSender};
use super::*;
use crate::clock::{Clock, FakeClock};
use crate::contacts::ContactStore;
use crate::contacts::memory::MemoryContacts;
use crate::contacts::{Consent, Contact};
use crate::dead_letters::Operator;
use crate::memory::MemoryStore;
use crate::rate_limits::MemoryCounter;
use crate::wallet::WalletStore;
use crate::wallet::memory::MemoryWallets;
use crate::wallet::{PriceTable, Totals, Wallets};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use time::macros::datetime;

/// A provider that records every message it takes and answers from a script first.
#[derive(Default)]
pub(super) struct Provider {
    pub(super) sent: Mutex<Vec<OutboundSms>>,
    script: Mutex<VecDeque<Result<(), SmsError>>>,
    /// The next faults take the message, then lose the answer.
    lose_answers: Mutex<u32>,
}

#[async_trait]
impl SmsProvider for Provider {
    async fn send(&self, sms: &OutboundSms) -> Result<String, SmsError> {
        if let Some(Err(e)) = self.script.lock().unwrap().pop_front() {
            return Err(e);
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push(sms.clone());
        let id = format!("sm_{}", sent.len());
        let mut lose = self.lose_answers.lock().unwrap();
        if *lose > 0 {
            *lose -= 1;
            return Err(SmsError::Ambiguous("timeout".into()));
        }
        Ok(id)
    }

    async fn lookup(&self, client_ref: &str) -> Result<Option<String>, SmsError> {
        Ok(self
            .sent
            .lock()
            .unwrap()
            .iter()
            .position(|m| m.client_ref == client_ref)
            .map(|i| format!("sm_{}", i + 1)))
    }
}

/// The facts announced to outbound webhooks.
#[derive(Default)]
pub(super) struct Announced(Mutex<Vec<crate::outbound::OutboundEvent>>);

#[async_trait]
impl crate::publishing::settle::OutcomeEvents for Announced {
    async fn emit(&self, event: &crate::outbound::OutboundEvent, _: &str) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Announced {
    pub(super) fn of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.event_type.as_str() == kind)
            .map(|e| e.data.clone())
            .collect()
    }
}

pub(super) struct World {
    pub(super) service: CampaignService,
    pub(super) sender: SmsSender,
    pub(super) campaigns: Arc<MemoryCampaigns>,
    pub(super) contacts: Arc<MemoryContacts>,
    pub(super) wallets: Arc<MemoryWallets>,
    pub(super) queue: Arc<MemorySmsQueue>,
    pub(super) provider: Arc<Provider>,
    pub(super) clock: Arc<FakeClock>,
    pub(super) tenant: TenantId,
    /// Tenants, the audit log and crisis switches.
    pub(super) memory: Arc<MemoryStore>,
    pub(super) announced: Arc<Announced>,
}

pub(super) fn world() -> World {
    let clock = Arc::new(FakeClock::new(datetime!(2026-12-05 12:00 UTC)));
    let contacts = Arc::new(MemoryContacts::default());
    let campaigns = Arc::new(MemoryCampaigns::new(contacts.clone()));
    let wallet_store = Arc::new(MemoryWallets::new());
    let audit = Arc::new(MemoryStore::new());
    let wallets = Arc::new(Wallets {
        store: wallet_store.clone(),
        audit: audit.clone(),
        clock: clock.clone(),
        prices: PriceTable::parse("{}").unwrap(),
        low_balance: None,
    });
    let queue = Arc::new(MemorySmsQueue::default());
    let provider = Arc::new(Provider::default());
    let announced = Arc::new(Announced::default());
    World {
        service: CampaignService {
            store: campaigns.clone(),
            contacts: contacts.clone(),
            wallets: wallets.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
            limits: EnqueueLimits::API,
        },
        sender: SmsSender {
            store: campaigns.clone(),
            wallets,
            provider: provider.clone(),
            crisis: audit.clone(),
            limiter: Arc::new(MemoryCounter::default()),
            messages_per_second: 1000,
            clock: clock.clone(),
            lease: Duration::seconds(30),
            events: Some(announced.clone()),
        },
        campaigns,
        contacts,
        wallets: wallet_store,
        queue,
        provider,
        clock,
        tenant: TenantId("ten_a".into()),
        memory: audit,
        announced,
    }
}

use time::Duration;

impl World {
    pub(super) async fn contact(
        &self,
        n: u32,
        name: Option<&str>,
        tags: &[&str],
        opted_in: bool,
    ) -> Contact {
        let now = self.clock.now();
        let contact = Contact {
            id: ContactId(format!("con_{n:04}")),
            tenant_id: self.tenant.clone(),
            phone: format!("+1415555{n:04}"),
            name: name.map(str::to_owned),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            fields: BTreeMap::new(),
            consent: if opted_in {
                Consent::OptedIn {
                    at: now,
                    source: "web_form".into(),
                }
            } else {
                Consent::Unknown
            },
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.contacts.insert_contact(&contact).await.unwrap();
        contact
    }

    pub(super) async fn opt_out(&self, contact: &Contact) {
        let mut c = self
            .contacts
            .get_contact(&self.tenant, &contact.id)
            .await
            .unwrap()
            .unwrap();
        c.consent = Consent::OptedOut {
            at: self.clock.now(),
            source: "keyword:STOP".into(),
        };
        c.version += 1;
        self.contacts
            .replace_contact(&c, c.version - 1)
            .await
            .unwrap();
    }

    pub(super) async fn grant(&self, credits: i64) {
        self.sender
            .wallets
            .grant(
                &self.tenant,
                &Operator {
                    actor: "operator:test".into(),
                    ip: None,
                    user_agent: None,
                },
                &format!("g{credits}"),
                credits,
                "test",
            )
            .await
            .unwrap();
    }

    pub(super) async fn campaign(&self, text: &str, tags: &[&str]) -> Campaign {
        self.service
            .create(
                &self.tenant,
                NewCampaign {
                    name: "Winter sale".into(),
                    text: text.into(),
                    fallbacks: BTreeMap::new(),
                    tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                    contacts: vec![],
                    sender: "HERALD".into(),
                    created_by: Some(crate::ids::ApiKeyId("key_editor".into())),
                    quiet_hours: None,
                },
            )
            .await
            .unwrap()
    }

    pub(super) async fn run_all_batches(&self) {
        let batches = self.queue.batches();
        for b in &batches {
            self.sender.send_batch(b).await.unwrap();
        }
    }

    async fn wallet_balances(&self) {
        let entries = self.wallets.entries(&self.tenant);
        let w = self.wallets.wallet(&self.tenant).await.unwrap();
        assert_eq!(
            w.balance + w.reserved,
            Totals::of(&entries).expected(),
            "the wallet invariant"
        );
    }
}

#[tokio::test]
async fn create_refuses_every_problem_at_once() {
    let w = world();
    let err = w
        .service
        .create(
            &w.tenant,
            NewCampaign {
                name: " ".into(),
                text: "Hi {{First}}".into(),
                fallbacks: BTreeMap::from([("code".into(), "x".into())]),
                tags: vec!["vip".into()],
                contacts: vec![ContactId("con_1".into())],
                sender: "a-very-long-sender".into(),
                created_by: None,
                quiet_hours: Some(super::NewQuietHours {
                    start: "9pm".into(),
                    end: "08:00".into(),
                    time_zone: "UTC".into(),
                }),
            },
        )
        .await
        .unwrap_err();
    let CampaignError::Invalid(problems) = err else {
        panic!("{err:?}")
    };
    let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "text",
            "fallbacks.code",
            "audience",
            "sender",
            "quiet_hours.start"
        ]
    );
    assert!(
        w.campaigns
            .list_campaigns(&w.tenant, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn estimate_counts_recipients_segments_and_the_shortfall() {
    let w = world();
    w.contact(1, Some("Ada Lovelace"), &["vip"], true).await;
    w.contact(2, Some("Жанна"), &["vip"], true).await;
    w.contact(3, None, &["vip"], true).await; // no first name, no fallback
    w.contact(4, Some("Bob"), &["vip"], false).await; // never opted in
    w.contact(5, Some("Cy"), &["other"], true).await; // not in the audience
    w.grant(2).await;
    let c = w
        .campaign(
            &format!("Hi {{{{first_name}}}}! {}", "x".repeat(150)),
            &["vip"],
        )
        .await;
    let e = w.service.estimate(&w.tenant, &c.id).await.unwrap();
    // Ada: GSM-7, 158 septets: 1 segment. Жанна: UCS-2, 160 units: 3 segments.
    assert_eq!(e.recipients, 2);
    assert_eq!(e.segments, 4);
    assert_eq!(e.credits, 4);
    assert_eq!(e.available, 2);
    assert_eq!(e.shortfall, 2);
    assert_eq!(
        e.skipped,
        BTreeMap::from([
            ("consent unknown".to_owned(), 1),
            ("no value for {{first_name}}".to_owned(), 1)
        ])
    );
    assert_eq!(e.encodings["gsm7"], 1);
    assert_eq!(e.encodings["ucs2"], 1);
}

#[tokio::test]
async fn an_insufficient_balance_reserves_nothing_and_names_the_shortfall() {
    let w = world();
    w.contact(1, Some("Ada"), &["vip"], true).await;
    w.contact(2, Some("Bea"), &["vip"], true).await;
    w.grant(1).await;
    let c = w.campaign("Hi {{first_name}}", &["vip"]).await;
    let err = w
        .service
        .enqueue(&w.tenant, &c.id, "corr", false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CampaignError::Insufficient {
                needed: 2,
                available: 1,
                shortfall: 1
            }
        ),
        "{err:?}"
    );
    let after = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(after.status, CampaignStatus::Draft);
    assert!(w.queue.batches().is_empty());
    assert!(w.campaigns.recipients(&w.tenant, &c.id).is_empty());
    let wallet = w.wallets.wallet(&w.tenant).await.unwrap();
    assert_eq!((wallet.balance, wallet.reserved), (1, 0));
}

#[tokio::test]
async fn enqueue_twice_sends_each_opted_in_recipient_once_and_settles_to_the_credit() {
    let w = world();
    let mut ids = Vec::new();
    for n in 0..250 {
        ids.push(w.contact(n, Some("Ada"), &["vip"], n % 10 != 0).await);
    }
    w.grant(1000).await;
    let c = w
        .campaign("Hi {{first_name}}, 20% off today", &["vip"])
        .await;
    let first = w
        .service
        .enqueue(&w.tenant, &c.id, "corr", false)
        .await
        .unwrap();
    let again = w
        .service
        .enqueue(&w.tenant, &c.id, "corr", false)
        .await
        .unwrap();
    assert_eq!(first.status, CampaignStatus::Sending);
    assert_eq!(again.progress, first.progress);
    assert_eq!(first.progress.recipients, 225);
    assert_eq!(first.progress.batches, 3);
    assert_eq!(first.progress.credits_reserved, 225);
    assert_eq!(
        w.queue.batches().len(),
        3,
        "the second enqueue queues nothing"
    );

    // A STOP that commits after enqueue, before the batch: never texted.
    w.opt_out(&ids[1]).await;
    // One lost answer (looked up, not resent) and one 429 (left for the next delivery).
    *w.provider.lose_answers.lock().unwrap() = 1;
    w.provider.script.lock().unwrap().extend([
        Ok(()),
        Ok(()),
        Err(SmsError::Throttled { retry_after: None }),
    ]);
    w.run_all_batches().await;
    // The throttled recipients' batch comes back after the lease.
    w.clock.advance(Duration::minutes(1));
    w.run_all_batches().await;
    w.run_all_batches().await;

    let sent = w.provider.sent.lock().unwrap().clone();
    let mut to: Vec<_> = sent.iter().map(|m| m.to.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), sent.len(), "nobody texted twice");
    assert_eq!(sent.len(), 224);
    assert!(!to.contains(&ids[1].phone), "the STOP held");
    assert!(!to.contains(&ids[0].phone), "never opted in");

    // The last batch completed the campaign and gave back what it did not use.
    let c = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(c.status, CampaignStatus::Completed);
    assert_eq!((c.progress.sent, c.progress.skipped), (224, 1));
    assert_eq!(c.progress.credits_used, 224);
    assert_eq!(c.progress.credits_released, 1);
    assert_eq!(w.service.settle(&c).await.unwrap(), 0, "settled once");
    let wallet = w.wallets.wallet(&w.tenant).await.unwrap();
    assert_eq!((wallet.balance, wallet.reserved), (1000 - 224, 0));
    w.wallet_balances().await;
    // Announced once, with the settled counters.
    let completed = w.announced.of("campaign.completed");
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0]["sent"], 224);
    assert_eq!(completed[0]["credits_released"], 1);
}

#[tokio::test]
async fn a_refused_message_is_failed_once_announced_and_its_credit_released() {
    let w = world();
    let ada = w.contact(1, Some("Ada"), &["vip"], true).await;
    w.contact(2, Some("Bo"), &["vip"], true).await;
    w.grant(10).await;
    let c = w.campaign("Hi {{first_name}}", &["vip"]).await;
    w.service
        .enqueue(&w.tenant, &c.id, "corr", false)
        .await
        .unwrap();
    w.provider
        .script
        .lock()
        .unwrap()
        .push_back(Err(SmsError::Permanent("unknown subscriber".into())));
    w.run_all_batches().await;
    w.run_all_batches().await;
    let c = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(c.status, CampaignStatus::Completed);
    assert_eq!((c.progress.sent, c.progress.failed), (1, 1));
    assert_eq!(
        (c.progress.credits_used, c.progress.credits_released),
        (1, 1)
    );
    let failed = w.announced.of("sms.failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["contact_id"], ada.id.as_str());
    assert_eq!(failed[0]["reason"], "unknown subscriber");
    assert_eq!(w.announced.of("campaign.completed").len(), 1, "once");
    let wallet = w.wallets.wallet(&w.tenant).await.unwrap();
    assert_eq!((wallet.balance, wallet.reserved), (9, 0));
    w.wallet_balances().await;
}

#[tokio::test]
async fn cancel_stops_further_sends_and_releases_the_rest() {
    let w = world();
    for n in 0..150 {
        w.contact(n, Some("Ada"), &["vip"], true).await;
    }
    w.grant(500).await;
    let c = w.campaign("Hi {{first_name}}", &["vip"]).await;
    w.service
        .enqueue(&w.tenant, &c.id, "corr", false)
        .await
        .unwrap();
    let batches = w.queue.batches();
    w.sender.send_batch(&batches[0]).await.unwrap();
    let cancelled = w.service.cancel(&w.tenant, &c.id).await.unwrap();
    assert_eq!(cancelled.status, CampaignStatus::Cancelled);
    assert_eq!(cancelled.progress.credits_released, 50);
    let report = w.sender.send_batch(&batches[1]).await.unwrap();
    assert_eq!((report.sent, report.skipped), (0, 50));
    assert_eq!(w.provider.sent.lock().unwrap().len(), 100);
    let wallet = w.wallets.wallet(&w.tenant).await.unwrap();
    assert_eq!((wallet.balance, wallet.reserved), (400, 0));
    w.wallet_balances().await;
}

#[tokio::test]
async fn receipts_apply_once_and_a_late_one_never_goes_back() {
    let w = world();
    w.contact(1, Some("Ada"), &["vip"], true).await;
    w.contact(2, Some("Bea"), &["vip"], true).await;
    w.grant(10).await;
    let c = w.campaign("Hi {{first_name}}", &["vip"]).await;
    w.service
        .enqueue(&w.tenant, &c.id, "corr", false)
        .await
        .unwrap();
    w.run_all_batches().await;
    let apply = |id: &'static str, r: Receipt| {
        let store = w.campaigns.clone();
        async move {
            matches!(
                store.apply_receipt(id, r).await.unwrap(),
                ReceiptApplied::Applied(..)
            )
        }
    };
    assert!(apply("sm_1", Receipt::Delivered).await);
    assert!(!apply("sm_1", Receipt::Delivered).await, "a duplicate");
    assert!(
        !apply("sm_1", Receipt::Undelivered).await,
        "late, after delivered"
    );
    assert!(apply("sm_2", Receipt::Undelivered).await);
    assert!(!apply("sm_9", Receipt::Delivered).await, "not Herald's");
    let c = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!(
        (
            c.progress.sent,
            c.progress.delivered,
            c.progress.undelivered
        ),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn another_tenant_cannot_read_estimate_enqueue_or_cancel_a_campaign() {
    let w = world();
    w.contact(1, Some("Ada"), &["vip"], true).await;
    w.grant(10).await;
    let c = w.campaign("Hi {{first_name}}", &["vip"]).await;
    let other = TenantId("ten_b".into());
    assert!(matches!(
        w.service.get(&other, &c.id).await,
        Err(CampaignError::NotFound)
    ));
    assert!(matches!(
        w.service.estimate(&other, &c.id).await,
        Err(CampaignError::NotFound)
    ));
    assert!(matches!(
        w.service.enqueue(&other, &c.id, "x", false).await,
        Err(CampaignError::NotFound)
    ));
    assert!(matches!(
        w.service.cancel(&other, &c.id).await,
        Err(CampaignError::NotFound)
    ));
    assert_eq!(
        w.service.get(&w.tenant, &c.id).await.unwrap().status,
        CampaignStatus::Draft
    );
}

/// A shared counter that counts the writes made to it.
#[derive(Default)]
struct CountedLimiter {
    inner: MemoryCounter,
    writes: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl crate::rate_limits::RequestCounter for CountedLimiter {
    async fn take(
        &self,
        scope: &str,
        index: i64,
        limit: u32,
        count: u32,
        expires: time::OffsetDateTime,
    ) -> Result<Option<u32>, StoreError> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.take(scope, index, limit, count, expires).await
    }
}

#[tokio::test]
async fn the_providers_rate_holds_across_senders_and_is_taken_several_places_at_once() {
    let mut w = world();
    let limiter = Arc::new(CountedLimiter::default());
    w.sender.limiter = limiter.clone();
    w.sender.messages_per_second = 30;
    for n in 0..40 {
        w.contact(n, Some("Ada"), &["vip"], true).await;
    }
    w.grant(100).await;
    let c = w.campaign("Hi {{first_name}}", &["vip"]).await;
    w.service
        .enqueue(&w.tenant, &c.id, "corr", false)
        .await
        .unwrap();
    let batch = &w.queue.batches()[0];

    let first = w.sender.send_batch(batch).await.unwrap();
    assert_eq!((first.sent, first.pending), (30, 10), "one second's worth");
    assert_eq!(first.retry_after, Some(Duration::seconds(1)));
    // Ten places a write (three), then one refused write of ten and one of one.
    assert_eq!(limiter.writes.load(std::sync::atomic::Ordering::Relaxed), 5);
    // Another sender in the same second gets nothing.
    let same_second = w.sender.send_batch(batch).await.unwrap();
    assert_eq!((same_second.sent, same_second.pending), (0, 10));

    w.clock.advance(Duration::seconds(1));
    let next = w.sender.send_batch(batch).await.unwrap();
    assert_eq!((next.sent, next.pending), (10, 0));
    assert!(next.completed);
    assert_eq!(w.provider.sent.lock().unwrap().len(), 40);
}
