//! The whole API over the domain's in-memory ports (the `memory` feature): what the router's
//! tests and the bench run, with handles on the fakes so they can look behind the API.

use crate::AppState;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::dead_letters::DeadLetterService;
use herald_domain::idempotency::Idempotency;
use herald_domain::ingest::memory::MemoryIngestStore;
use herald_domain::media::{DEFAULT_UPLOAD_URL_TTL, MediaService};
use herald_domain::memory::{MemoryDeadLetters, MemoryMedia, MemoryStore};
use herald_domain::outbound::EndpointRegistry;
use herald_domain::outbound::memory::{FixedResolver, MemoryEndpoints};
use herald_domain::publishing::posts::PostService;
use std::sync::Arc;

/// An [`AppState`] over in-memory ports, and those ports.
#[derive(Debug)]
pub struct MemoryApp {
    pub state: AppState,
    pub store: Arc<MemoryStore>,
    /// The media bucket: `put` stands in for a client's upload to the presigned URL.
    pub media: Arc<MemoryMedia>,
    pub dead_letters: Arc<MemoryDeadLetters>,
    pub idempotency: Idempotency,
}

impl AppState {
    /// The API over fresh in-memory ports, on the system clock, with no operator token.
    /// Every host name resolves to a public address (example.com's).
    pub fn in_memory() -> MemoryApp {
        let store = Arc::new(MemoryStore::new());
        let dead_letters = Arc::new(MemoryDeadLetters::default());
        let media = Arc::new(MemoryMedia::default());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let idempotency =
            Idempotency::new(store.clone(), clock.clone(), time::Duration::seconds(30));
        let state = AppState {
            tenants: store.clone(),
            accounts: store.clone(),
            crises: store.clone(),
            heartbeats: store.clone(),
            audit: store.clone(),
            dead_letters: DeadLetterService {
                queues: dead_letters.clone(),
                audit: store.clone(),
                clock: clock.clone(),
            },
            posts: PostService {
                posts: store.clone(),
                accounts: store.clone(),
                tenants: store.clone(),
                media: MediaService {
                    records: store.clone(),
                    objects: media.clone(),
                    clock: clock.clone(),
                    upload_url_ttl: DEFAULT_UPLOAD_URL_TTL,
                },
                clock: clock.clone(),
            },
            idempotency: idempotency.clone(),
            clock,
            webhook_endpoints: EndpointRegistry {
                store: Arc::new(MemoryEndpoints::default()),
                resolver: Arc::new(FixedResolver(vec![std::net::IpAddr::from([
                    93, 184, 215, 14,
                ])])),
                policy: Default::default(),
                secret_overlap: std::time::Duration::from_secs(24 * 3600),
            },
            operator: None,
            ingest: Arc::new(MemoryIngestStore::default()),
        };
        MemoryApp {
            state,
            store,
            media,
            dead_letters,
            idempotency,
        }
    }
}
