//! The whole API over the domain's in-memory ports (the `memory` feature): what the router's
//! tests and the bench run, with handles on the fakes so they can look behind the API.

use crate::AppState;
use crate::state::{Ports, Settings};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::idempotency::Idempotency;
use herald_domain::ingest::memory::MemoryIngestStore;
use herald_domain::media::{DEFAULT_UPLOAD_URL_TTL, MediaQuota};
use herald_domain::memory::{MemoryDeadLetterRecords, MemoryDeadLetters, MemoryMedia, MemoryStore};
use herald_domain::outbound::memory::{FixedResolver, MemoryEndpoints};
use herald_domain::rate_limits::ApiRateLimits;
use std::sync::Arc;

/// An [`AppState`] over in-memory ports, and those ports.
#[derive(Debug)]
pub struct MemoryApp {
    pub state: AppState,
    pub store: Arc<MemoryStore>,
    /// The media bucket: `put` stands in for a client's upload to the presigned URL.
    pub media: Arc<MemoryMedia>,
    pub dead_letters: Arc<MemoryDeadLetters>,
    /// Ingestion's streams: `register` stands in for a connected account's stream.
    pub ingest: Arc<MemoryIngestStore>,
    /// The service over the same queues and records, for tests to drain with.
    pub dead_letter_service: herald_domain::dead_letters::DeadLetterService,
    pub idempotency: Idempotency,
    /// The platforms' consent pages: `consent` plays the person who signs in.
    pub authorization: Arc<herald_domain::connect::memory::MemoryAuthorization>,
    /// The wallets: tests top them up behind the API.
    pub wallets: Arc<herald_domain::wallet::memory::MemoryWallets>,
    /// The SMS batches enqueued campaigns queued.
    pub sms_queue: Arc<herald_domain::campaigns::memory::MemorySmsQueue>,
    /// The import jobs started imports queued.
    pub import_queue: Arc<herald_domain::imports::memory::MemoryImportQueue>,
    /// The events the API announced itself.
    pub announced: Arc<herald_domain::outbound::memory::RecordedEvents>,
}

impl AppState {
    /// The API over fresh in-memory ports, on the system clock, with no operator token.
    /// Every host name resolves to a public address (example.com's).
    pub fn in_memory() -> MemoryApp {
        let store = Arc::new(MemoryStore::new());
        let dead_letters = Arc::new(MemoryDeadLetters::default());
        let dead_letter_records = Arc::new(MemoryDeadLetterRecords::default());
        let media = Arc::new(MemoryMedia::default());
        let wallets = Arc::new(herald_domain::wallet::memory::MemoryWallets::new());
        let contacts = Arc::new(herald_domain::contacts::memory::MemoryContacts::default());
        let sms_queue = Arc::new(herald_domain::campaigns::memory::MemorySmsQueue::default());
        let import_queue = Arc::new(herald_domain::imports::memory::MemoryImportQueue::default());
        let ingest = Arc::new(MemoryIngestStore::default());
        let announced = Arc::new(herald_domain::outbound::memory::RecordedEvents::default());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let authorization =
            Arc::new(herald_domain::connect::memory::MemoryAuthorization::default());
        let idempotency = Idempotency::new(
            store.clone(),
            Arc::new(herald_domain::secrets::token_crypto::TokenVault::ephemeral()),
            clock.clone(),
            time::Duration::seconds(30),
        );
        let state = AppState::new(
            Ports {
                store: store.clone(),
                dead_letters: dead_letters.clone(),
                dead_letter_records: dead_letter_records.clone(),
                media: media.clone(),
                endpoints: Arc::new(MemoryEndpoints::default()),
                wallets: wallets.clone(),
                contacts: contacts.clone(),
                campaigns: Arc::new(herald_domain::campaigns::memory::MemoryCampaigns::new(
                    contacts.clone(),
                )),
                sms_queue: sms_queue.clone(),
                imports: Arc::new(herald_domain::imports::memory::MemoryImports::default()),
                import_queue: import_queue.clone(),
                resolver: Arc::new(FixedResolver(vec![std::net::IpAddr::from([
                    93, 184, 215, 14,
                ])])),
                ingest: ingest.clone(),
                idempotency: idempotency.clone(),
                clock,
                counter: Arc::new(herald_domain::rate_limits::MemoryCounter::default()),
                owners: Arc::new(herald_domain::publishing::platform::TrustingOwners),
                platforms: Arc::new(herald_domain::publishing::platform::NoPlatforms),
                authorization: authorization.clone(),
                probes: vec![],
                events: Some(announced.clone()),
            },
            Settings {
                upload_url_ttl: DEFAULT_UPLOAD_URL_TTL,
                media_quota: MediaQuota::default(),
                target_policy: Default::default(),
                operator: None,
                health_timeout: herald_domain::health::DEFAULT_TIMEOUT,
                // High enough that no test or bench meets them unless it sets its own.
                rate_limits: ApiRateLimits::per_minute(1_000_000),
                operator_networks: vec![],
                cors_origins: vec![],
                public_url: Some("https://herald.example".into()),
                enqueue_limits: herald_domain::campaigns::EnqueueLimits::API,
            },
        );
        MemoryApp {
            dead_letter_service: state.dead_letters.clone(),
            state,
            store,
            media,
            dead_letters,
            ingest,
            idempotency,
            authorization,
            wallets,
            sms_queue,
            import_queue,
            announced,
        }
    }
}
