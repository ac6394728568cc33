//! The one way an [`AppState`] is made from ports: production wiring (`functions/api`, over
//! DynamoDB, SQS and S3) and the in-memory state of the tests and the bench (`memory`) both
//! call [`AppState::new`], so the services are wired the same way everywhere.

use crate::AppState;
use herald_domain::clock::Clock;
use herald_domain::dead_letters::{DeadLetterQueues, DeadLetterRecords, DeadLetterService};
use herald_domain::health::{
    AccountCensus, AppBlockProbe, AppBlocks, CensusProbe, DeadLetterProbe, HealthService,
    HeartbeatProbe, Probe, SCHEDULED,
};
use herald_domain::idempotency::Idempotency;
use herald_domain::media::{MediaQuota, MediaService};
use herald_domain::outbound::guard::TargetPolicy;
use herald_domain::outbound::{EndpointRegistry, EndpointStore, Resolver};
use herald_domain::ports::{
    AccountStore, AuditLog, CrisisStore, HeartbeatStore, MediaObjects, MediaRecords, PostStore,
    SlotStore, TenantStore,
};
use herald_domain::publishing::platform::TokenOwners;
use herald_domain::publishing::posts::PostService;
use herald_domain::rate_limits::{ApiRateLimits, RequestCounter};
use herald_domain::resets::{AppBlockResets, CircuitResets, ResetService, StreamRetries};
use herald_domain::secrets::operator::OperatorToken;
use std::sync::Arc;
use std::time::Duration;

/// How long an outbound endpoint's previous secret keeps signing after a rotation.
const SECRET_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// The ports the API stands on. One store serves the main table's ports (tenants, accounts,
/// posts, media records, the audit log, crises, heartbeats); the others may live apart.
pub struct Ports<S> {
    pub store: Arc<S>,
    pub dead_letters: Arc<dyn DeadLetterQueues>,
    /// Dead letters moved out of the queues, under their tenants.
    pub dead_letter_records: Arc<dyn DeadLetterRecords>,
    pub media: Arc<dyn MediaObjects>,
    pub endpoints: Arc<dyn EndpointStore>,
    /// The tenants' credit wallets and their ledgers.
    pub wallets: Arc<dyn herald_domain::wallet::WalletStore>,
    /// The tenants' SMS contacts.
    pub contacts: Arc<dyn herald_domain::contacts::ContactStore>,
    /// The tenants' SMS campaigns and their recipients.
    pub campaigns: Arc<dyn herald_domain::campaigns::CampaignStore>,
    /// Where an enqueued campaign's batches go, for the SMS sender.
    pub sms_queue: Arc<dyn herald_domain::campaigns::SmsQueue>,
    /// The tenants' imports, and where their jobs go (the SMS sender works contact imports).
    pub imports: Arc<dyn herald_domain::imports::ImportStore>,
    pub import_queue: Arc<dyn herald_domain::imports::ImportQueue>,
    pub resolver: Arc<dyn Resolver>,
    /// Ingest streams (and their retries).
    pub ingest: Arc<dyn StreamRetries>,
    pub idempotency: Idempotency,
    pub clock: Arc<dyn Clock>,
    /// The shared request counter behind the rate limits (every instance draws on it).
    pub counter: Arc<dyn RequestCounter>,
    /// Asks the platforms who a token belongs to, when an account is connected.
    pub owners: Arc<dyn TokenOwners>,
    /// The platforms' APIs, for taking a published post down.
    pub platforms: Arc<dyn herald_domain::publishing::platform::PlatformClient>,
    /// The platforms' consent pages and token endpoints, for connect links.
    pub authorization: Arc<dyn herald_domain::connect::AuthorizationServer>,
    /// The dependencies only the adapters reach (tables, queues, secrets, the bucket), for
    /// the health check; the domain adds its own (heartbeats, app blocks, accounts).
    pub probes: Vec<Arc<dyn Probe>>,
    /// Where the API's own facts are announced (`wallet.low_balance` after an enqueue's
    /// reservation); `None`: not announced.
    pub events: Option<Arc<dyn herald_domain::publishing::settle::OutcomeEvents>>,
}

impl<S> std::fmt::Debug for Ports<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// What the API's behaviour depends on beyond its ports.
#[derive(Debug)]
pub struct Settings {
    /// How long a media upload URL works.
    pub upload_url_ttl: Duration,
    /// The most media one tenant may hold.
    pub media_quota: MediaQuota,
    /// Which outbound webhook targets are allowed (private addresses only locally).
    pub target_policy: TargetPolicy,
    /// The bootstrap operator token, for `POST /v1/tenants`; `None` turns those routes off.
    pub operator: Option<Arc<OperatorToken>>,
    /// How long each health check may take.
    pub health_timeout: Duration,
    /// Every route's budget per key and operation class.
    pub rate_limits: ApiRateLimits,
    /// Where the operator's routes may be called from (empty: anywhere).
    pub operator_networks: Vec<ipnet::IpNet>,
    /// Browser origins allowed to call `/v1` (CORS; empty: none).
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// The API's public base URL, for the connect flow's redirects (`None`: `https://` and
    /// the request's `Host`, which API Gateway sets).
    pub public_url: Option<String>,
    /// How much of a campaign's enqueue is done before the answer.
    pub enqueue_limits: herald_domain::campaigns::EnqueueLimits,
}

impl AppState {
    pub fn new<S>(ports: Ports<S>, settings: Settings) -> Self
    where
        S: TenantStore
            + AccountStore
            + CrisisStore
            + HeartbeatStore
            + AuditLog
            + PostStore
            + SlotStore
            + MediaRecords
            + AccountCensus
            + AppBlocks
            + herald_domain::console::SessionStore
            + herald_domain::connect::ConnectStore
            + CircuitResets
            + AppBlockResets
            + 'static,
    {
        let Ports {
            store,
            dead_letters,
            dead_letter_records,
            media,
            endpoints,
            wallets,
            contacts,
            campaigns,
            sms_queue,
            imports,
            import_queue,
            resolver,
            ingest,
            idempotency,
            clock,
            counter,
            owners,
            platforms,
            authorization,
            probes,
            events,
        } = ports;
        let own: [Arc<dyn Probe>; 3] = [
            Arc::new(DeadLetterProbe {
                records: dead_letter_records.clone(),
                sources: dead_letters.sources(),
            }),
            Arc::new(HeartbeatProbe {
                heartbeats: store.clone(),
                schedules: SCHEDULED.to_vec(),
            }),
            Arc::new(AppBlockProbe {
                blocks: store.clone(),
            }),
        ];
        let health = HealthService {
            probes: probes.into_iter().chain(own).collect(),
            operator_probes: vec![
                Arc::new(CensusProbe {
                    census: store.clone(),
                }),
                Arc::new(herald_domain::health::CampaignProbe {
                    campaigns: campaigns.clone(),
                }),
            ],
            accounts: store.clone(),
            clock: clock.clone(),
            timeout: settings.health_timeout,
        };
        let resets = ResetService {
            circuits: store.clone(),
            app_blocks: store.clone(),
            streams: ingest.clone(),
            audit: store.clone(),
            clock: clock.clone(),
        };
        let live = herald_domain::publishing::live::LivePosts {
            posts: store.clone(),
            accounts: store.clone(),
            audit: store.clone(),
            platform: platforms,
            clock: clock.clone(),
        };
        let posts = PostService {
            posts: store.clone(),
            accounts: store.clone(),
            tenants: store.clone(),
            slots: store.clone(),
            media: MediaService {
                records: store.clone(),
                objects: media.clone(),
                clock: clock.clone(),
                upload_url_ttl: settings.upload_url_ttl,
                quota: settings.media_quota,
            },
            clock: clock.clone(),
        };
        Self {
            health,
            resets,
            campaigns: herald_domain::campaigns::CampaignService {
                store: campaigns,
                contacts: contacts.clone(),
                wallets: Arc::new(herald_domain::wallet::Wallets {
                    store: wallets.clone(),
                    audit: store.clone(),
                    clock: clock.clone(),
                    // Campaigns reserve, debit and release; only billing events need prices.
                    prices: Default::default(),
                    low_balance: events.map(|events| {
                        Arc::new(herald_domain::wallet::low_balance::LowBalanceAlerts {
                            tenants: store.clone(),
                            events,
                        })
                    }),
                }),
                queue: sms_queue,
                clock: clock.clone(),
                limits: settings.enqueue_limits,
            },
            wallets,
            imports: herald_domain::imports::ImportService {
                store: imports,
                objects: media.clone(),
                contacts: herald_domain::contacts::ContactService {
                    store: contacts.clone(),
                    audit: store.clone(),
                    clock: clock.clone(),
                },
                posts: posts.clone(),
                tenants: store.clone(),
                queue: import_queue,
                clock: clock.clone(),
                upload_url_ttl: settings.upload_url_ttl,
                // The API only creates and starts imports; jobs work them.
                budget: Duration::ZERO,
            },
            contacts: herald_domain::contacts::ContactService {
                store: contacts,
                audit: store.clone(),
                clock: clock.clone(),
            },
            tenants: store.clone(),
            accounts: store.clone(),
            crises: store.clone(),
            sessions: store.clone(),
            connect: herald_domain::connect::ConnectService {
                store: store.clone(),
                server: authorization,
                accounts: store.clone(),
                clock: clock.clone(),
            },
            public_url: settings.public_url,
            heartbeats: store.clone(),
            audit: store.clone(),
            dead_letters: DeadLetterService {
                queues: dead_letters,
                records: dead_letter_records,
                audit: store.clone(),
                clock: clock.clone(),
            },
            posts,
            live,
            webhook_endpoints: EndpointRegistry {
                store: endpoints,
                resolver,
                policy: settings.target_policy,
                secret_overlap: SECRET_OVERLAP,
            },
            operator: settings.operator,
            idempotency,
            clock,
            ingest,
            counter,
            owners,
            rate_limits: settings.rate_limits,
            operator_networks: settings.operator_networks,
            cors_origins: settings.cors_origins,
        }
    }
}
