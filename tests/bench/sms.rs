//! SMS campaigns: AWS calls per SMS sent through the real sender on the local DynamoDB
//! (target: at most three), simulated sends per second and a 100,000-recipient enqueue over
//! the in-memory stores, and a 10,000-recipient enqueue's time and AWS calls on the local
//! stack. The provider is an in-process one that accepts every message at once: these are
//! Herald's costs, not the provider's.

use crate::bench;
use async_trait::async_trait;
use herald_aws::dynamo::DynamoStore;
use herald_aws::sqs::SqsSmsQueue;
use herald_domain::campaigns::memory::{MemoryCampaigns, MemorySmsQueue};
use herald_domain::campaigns::sender::{OutboundSms, SmsError, SmsProvider, SmsSender};
use herald_domain::campaigns::{
    CampaignService, CampaignStatus, CampaignStore, EnqueueLimits, NewCampaign, SmsQueue,
};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::contacts::memory::MemoryContacts;
use herald_domain::contacts::{Consent, Contact, ContactStore};
use herald_domain::dead_letters::Operator;
use herald_domain::ids::{ContactId, TenantId};
use herald_domain::memory::MemoryStore;
use herald_domain::rate_limits::{MemoryCounter, RequestCounter};
use herald_domain::wallet::memory::MemoryWallets;
use herald_domain::wallet::{PriceTable, WalletStore, Wallets};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Accepts every message at once.
#[derive(Default)]
struct Accepting(AtomicU64);

#[async_trait]
impl SmsProvider for Accepting {
    async fn send(&self, _: &OutboundSms) -> Result<String, SmsError> {
        Ok(format!("sm_{}", self.0.fetch_add(1, Ordering::Relaxed)))
    }
    async fn lookup(&self, _: &str) -> Result<Option<String>, SmsError> {
        Ok(None)
    }
}

/// The stores one world of campaigns runs on.
struct Stores {
    campaigns: Arc<dyn CampaignStore>,
    contacts: Arc<dyn ContactStore>,
    wallets: Arc<dyn WalletStore>,
    audit: Arc<dyn herald_domain::ports::AuditLog>,
    crisis: Arc<dyn herald_domain::ports::CrisisStore>,
    limiter: Arc<dyn RequestCounter>,
}

impl Stores {
    fn memory() -> Self {
        let contacts = Arc::new(MemoryContacts::default());
        let memory = Arc::new(MemoryStore::new());
        Self {
            campaigns: Arc::new(MemoryCampaigns::new(contacts.clone())),
            contacts,
            wallets: Arc::new(MemoryWallets::new()),
            audit: memory.clone(),
            crisis: memory,
            limiter: Arc::new(MemoryCounter::default()),
        }
    }

    fn dynamo(store: Arc<DynamoStore>) -> Self {
        Self {
            campaigns: store.clone(),
            contacts: store.clone(),
            wallets: store.clone(),
            audit: store.clone(),
            crisis: store.clone(),
            limiter: store,
        }
    }

    fn wallets(&self) -> Arc<Wallets> {
        Arc::new(Wallets {
            store: self.wallets.clone(),
            audit: self.audit.clone(),
            clock: Arc::new(SystemClock),
            prices: PriceTable::default(),
            low_balance: None,
        })
    }

    fn service(&self, queue: Arc<dyn SmsQueue>, limits: EnqueueLimits) -> CampaignService {
        CampaignService {
            store: self.campaigns.clone(),
            contacts: self.contacts.clone(),
            wallets: self.wallets(),
            queue,
            clock: Arc::new(SystemClock),
            limits,
        }
    }

    fn sender(&self) -> SmsSender {
        SmsSender {
            store: self.campaigns.clone(),
            wallets: self.wallets(),
            provider: Arc::new(Accepting::default()),
            crisis: self.crisis.clone(),
            limiter: self.limiter.clone(),
            // Above what the run reaches: the window is taken, never refused (the bench
            // measures Herald, not the provider's limit).
            messages_per_second: u32::MAX / 2,
            clock: Arc::new(SystemClock),
            lease: time::Duration::seconds(60),
            events: None,
        }
    }

    /// A tenant with `n` opted-in contacts tagged `bench` and credits for them.
    async fn tenant(&self, n: usize) -> TenantId {
        let tenant = TenantId(format!("bench_sms_{}", uuid::Uuid::new_v4().simple()));
        let now = SystemClock.now();
        for i in 0..n {
            let contact = Contact {
                id: ContactId::generate(),
                tenant_id: tenant.clone(),
                phone: format!("+1415{:07}", 2_000_000 + i),
                name: Some("Ada Lovelace".into()),
                tags: ["bench".to_owned()].into(),
                fields: Default::default(),
                consent: Consent::OptedIn {
                    at: now,
                    source: "bench".into(),
                },
                version: 1,
                created_at: now,
                updated_at: now,
            };
            self.contacts.insert_contact(&contact).await.unwrap();
        }
        let operator = Operator {
            actor: "operator:bench".into(),
            ip: None,
            user_agent: None,
        };
        self.wallets()
            .grant(&tenant, &operator, "bench", 2 * n as i64 + 10, "bench")
            .await
            .unwrap();
        tenant
    }
}

fn campaign() -> NewCampaign {
    NewCampaign {
        name: "Bench".into(),
        text: "Hi {{first_name}}, 20% off today".into(),
        tags: vec!["bench".into()],
        sender: format!("B{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        ..NewCampaign::default()
    }
}

/// Sends every queued batch once; how many messages went out.
async fn send_all(sender: &SmsSender, queue: &MemorySmsQueue) -> u64 {
    let mut sent = 0;
    for batch in queue.batches() {
        let report = sender.send_batch(&batch).await.unwrap();
        assert_eq!(report.pending, 0, "{report:?}");
        sent += u64::from(report.sent);
    }
    sent
}

pub async fn sms_in_memory() {
    const RECIPIENTS: usize = 100_000;
    let stores = Stores::memory();
    let tenant = stores.tenant(RECIPIENTS).await;
    let queue = Arc::new(MemorySmsQueue::default());
    let service = stores.service(queue.clone(), EnqueueLimits::API);
    let c = service.create(&tenant, campaign()).await.unwrap();
    // The API's part: it finds the audience too large and hands it to a job.
    let started = Instant::now();
    let answered = service
        .enqueue(&tenant, &c.id, "bench", false)
        .await
        .unwrap();
    bench(
        "sms.enqueue_100k.api_answer_ms",
        started.elapsed().as_millis(),
        "ms",
    );
    assert_eq!(answered.status, CampaignStatus::Enqueuing);
    // The jobs' part: snapshot, reservation, recipients and batches.
    let started = Instant::now();
    let mut jobs = 0;
    loop {
        let next = queue.take_jobs();
        if next.is_empty() {
            break;
        }
        for job in next {
            service.work(&job).await.unwrap();
            jobs += 1;
        }
    }
    bench(
        "sms.enqueue_100k.memory_ms",
        started.elapsed().as_millis(),
        "ms",
    );
    bench("sms.enqueue_100k.jobs", jobs, "jobs");
    let enqueued = service.get(&tenant, &c.id).await.unwrap();
    assert_eq!(enqueued.status, CampaignStatus::Sending);
    assert_eq!(enqueued.progress.recipients, RECIPIENTS as u64);
    let started = Instant::now();
    let sent = send_all(&stores.sender(), &queue).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(sent, RECIPIENTS as u64);
    bench(
        "sms.simulated_sends_per_second.memory",
        format!("{:.0}", sent as f64 / secs),
        "sends/s",
    );
}

/// Calls counted by the SDK interceptor since the last reset: (all, DynamoDB writes).
fn counted(clients: &herald_aws::Clients) -> (usize, usize) {
    let snap = clients.calls.snapshot();
    let all = snap.values().map(|t| t.ok + t.failed).sum();
    let writes = snap
        .iter()
        .filter(|(op, _)| {
            [
                "DynamoDB.PutItem",
                "DynamoDB.UpdateItem",
                "DynamoDB.DeleteItem",
                "DynamoDB.BatchWriteItem",
                "DynamoDB.TransactWriteItems",
            ]
            .contains(&op.as_str())
        })
        .map(|(_, t)| t.ok + t.failed)
        .sum();
    (all, writes)
}

pub async fn sms_calls(env: &HashMap<String, String>, sms_queue_url: &str) {
    const SENT: usize = 300;
    const ENQUEUED: usize = 10_000;
    let clients = herald_tests::stack_clients(env).await;
    let store = Arc::new(DynamoStore::new(
        clients.dynamodb.clone(),
        &env["HERALD_TABLE"],
    ));
    let stores = Stores::dynamo(store);

    // The sender's calls per message: three batches, the last completing and settling.
    let tenant = stores.tenant(SENT).await;
    let queue = Arc::new(MemorySmsQueue::default());
    let service = stores.service(queue.clone(), EnqueueLimits::API);
    let c = service.create(&tenant, campaign()).await.unwrap();
    service
        .enqueue(&tenant, &c.id, "bench", false)
        .await
        .unwrap();
    let sender = stores.sender();
    clients.calls.reset();
    let sent = send_all(&sender, &queue).await;
    assert_eq!(sent, SENT as u64);
    let (all, writes) = counted(&clients);
    bench(
        "sms.aws_calls_per_sms",
        format!("{:.2}", all as f64 / SENT as f64),
        "calls",
    );
    bench(
        "sms.dynamodb_writes_per_sms",
        format!("{:.2}", writes as f64 / SENT as f64),
        "calls",
    );

    // An enqueue on the local stack: snapshot, reservation, recipients, batches on the SQS
    // queue.
    let tenant = stores.tenant(ENQUEUED).await;
    let sqs = Arc::new(SqsSmsQueue::new(clients.sqs.clone(), sms_queue_url));
    // The whole of it in one call, as one job would do it.
    let whole = EnqueueLimits {
        audience: None,
        budget: time::Duration::minutes(10),
    };
    let service = stores.service(sqs, whole);
    let c = service.create(&tenant, campaign()).await.unwrap();
    clients.calls.reset();
    let started = Instant::now();
    service
        .enqueue(&tenant, &c.id, "bench", false)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let (all, writes) = counted(&clients);
    bench("sms.enqueue_10k.local_stack_ms", elapsed.as_millis(), "ms");
    bench("sms.enqueue_10k.aws_calls", all, "calls");
    bench("sms.enqueue_10k.dynamodb_writes", writes, "calls");
}
