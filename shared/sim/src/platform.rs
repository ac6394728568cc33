//! A fake social platform (all of them at once): it keeps every post it created, per account,
//! and answers like the real ones do when things go wrong: 429 with a wait, 5xx, calls that
//! time out after the post was created (ambiguous), refusals for good, refused tokens.
//!
//! The post list is the ground truth for "published at most once": every variant is given a
//! unique text, so two posts with the same account and text are a duplicate publish.
//! A post exists from the moment the platform processed it, whatever happens to the caller.

use crate::Env;
use crate::faults::{Invocation, Rates};
use crate::ledger::{Ledger, Stats};
use crate::rng::{Rng, SharedRng};
use crate::vclock::SimClock;
use async_trait::async_trait;
use herald_domain::model::Platform;
use herald_domain::publishing::platform::{
    LookupRequest, MediaBody, PlatformClient, PlatformError, PublishRequest, PublishedPost,
    RateSignal, StepProgress, UPLOAD_CHUNK_BYTES,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// The HTTP client's timeout: a slower answer is never seen.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformPost {
    pub platform: Platform,
    pub external_id: String,
    pub text: String,
    pub id: String,
    pub created_at: OffsetDateTime,
    /// When a lookup can first find it (search indexing lags a little behind creation).
    pub indexed_at: OffsetDateTime,
    /// A follow-up's parent: the post it replies to or comments on.
    pub reply_to: Option<String>,
    /// Mastodon: the create's `Idempotency-Key` (a repeat within the hour answers this post);
    /// Bluesky: the record key named after it (a repeat is refused, and the client then reads
    /// this post under its key).
    pub idempotency_key: Option<String>,
}

/// A stretch of time in which a platform misbehaves far more than usual.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    pub platform: Platform,
    pub from: OffsetDateTime,
    pub until: OffsetDateTime,
    pub kind: EpisodeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeKind {
    /// Most calls answer 5xx.
    Outage,
    /// Most calls answer 429.
    RateLimitStorm,
}

#[derive(Debug, Default)]
struct PlatformState {
    posts: Vec<PlatformPost>,
    /// Indexes into `posts`, by (platform, external id).
    by_account: BTreeMap<(Platform, String), Vec<usize>>,
    /// Per-account posts in X's 15-minute window (Mastodon's 3-hour one), for the remaining
    /// count their answers carry.
    x_windows: BTreeMap<(String, i64), u32>,
    /// Facebook app calls in the last hour, for `X-App-Usage`.
    facebook_calls: Vec<OffsetDateTime>,
    /// Instagram's containers: the post each was published as, once it was (at most once).
    containers: BTreeMap<String, Option<String>>,
}

#[derive(Debug)]
pub struct FakePlatform {
    clock: Arc<SimClock>,
    ledger: Arc<Ledger>,
    stats: Arc<Stats>,
    rng: SharedRng,
    seed: u64,
    rates: Rates,
    faults: bool,
    episodes: Vec<Episode>,
    state: Mutex<PlatformState>,
}

/// What a call will do, decided when it arrives.
enum Verdict {
    Created {
        latency: Duration,
    },
    /// Created, but the answer never arrives within the client's timeout.
    CreatedNoAnswer {
        latency: Duration,
    },
    NotCreatedNoAnswer {
        latency: Duration,
    },
    Error {
        latency: Duration,
        error: PlatformError,
    },
}

impl FakePlatform {
    pub fn new(
        env: &Env,
        rng: SharedRng,
        seed: u64,
        rates: Rates,
        faults: bool,
        episodes: Vec<Episode>,
    ) -> Self {
        Self {
            clock: env.clock.clone(),
            ledger: env.ledger.clone(),
            stats: env.stats.clone(),
            rng,
            seed,
            rates,
            faults,
            episodes,
            state: Mutex::new(PlatformState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlatformState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every post created, in creation order.
    pub fn posts(&self) -> Vec<PlatformPost> {
        self.lock().posts.clone()
    }

    fn episode(&self, platform: Platform, now: OffsetDateTime) -> Option<EpisodeKind> {
        self.episodes
            .iter()
            .find(|e| e.platform == platform && e.from <= now && now < e.until)
            .map(|e| e.kind)
    }

    /// Whether this text always fails (`Some(slowly)`): fixed per text and seed, whatever the
    /// call order.
    fn poisoned(&self, text: &str) -> Option<bool> {
        // FNV-1a: a stable hash (std's hashers are randomly keyed per process).
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut rng = Rng::stream(hash ^ self.seed, 9);
        rng.chance(self.rates.platform_poison)
            .then(|| rng.chance(0.5))
    }

    fn verdict(&self, platform: Platform, text: &str, now: OffsetDateTime) -> Verdict {
        let r = &self.rates;
        let poisoned = self.faults.then(|| self.poisoned(text)).flatten();
        self.rng.with(|rng| {
            let mut latency = rng.millis(150, 1_500);
            if !self.faults {
                return Verdict::Created { latency };
            }
            if let Some(slow) = poisoned {
                // Half of them fail fast (500), half slowly (a 504 after 8-9 s), which leaves a
                // delivery time for only a couple of attempts.
                let (latency, code) = if slow {
                    (rng.millis(8_000, 9_500), "504")
                } else {
                    (latency, "500")
                };
                return Verdict::Error {
                    latency,
                    error: PlatformError::Transient {
                        message: format!("the platform answered {code}"),
                        code: Some(code.into()),
                        retry_after: None,
                    },
                };
            }
            if rng.chance(r.platform_slow) {
                latency = rng.millis(2_000, 20_000);
            }
            let transient = |code: &str| PlatformError::Transient {
                message: format!("the platform answered {code}"),
                code: Some(code.to_owned()),
                retry_after: None,
            };
            let rate_limited = |secs: u64| PlatformError::RateLimited {
                message: "too many requests".into(),
                code: Some("429".into()),
                retry_after: Some(Duration::from_secs(secs)),
            };
            match self.episode(platform, now) {
                Some(EpisodeKind::Outage) if rng.chance(0.7) => {
                    return Verdict::Error {
                        latency,
                        error: transient(["500", "502", "503"][rng.index(3)]),
                    };
                }
                Some(EpisodeKind::RateLimitStorm) if rng.chance(0.6) => {
                    return Verdict::Error {
                        latency: rng.millis(50, 300),
                        error: rate_limited(rng.between(5, 300)),
                    };
                }
                _ => {}
            }
            let roll = rng.fraction();
            let mut edge = 0.0;
            let mut hit = |p: f64| {
                edge += p;
                roll < edge
            };
            let verdict = if hit(r.platform_auth) {
                Verdict::Error {
                    latency,
                    error: PlatformError::Auth {
                        message: "the access token has expired".into(),
                        code: Some("190".into()),
                    },
                }
            } else if hit(r.platform_permanent) {
                Verdict::Error {
                    latency,
                    error: PlatformError::Permanent {
                        message: "the post was refused: it violates the content policy".into(),
                        code: Some("368".into()),
                    },
                }
            } else if hit(r.platform_rate_limited) {
                Verdict::Error {
                    latency: rng.millis(50, 300),
                    error: rate_limited(if rng.chance(0.1) {
                        900
                    } else {
                        rng.between(1, 120)
                    }),
                }
            } else if hit(r.platform_transient) {
                Verdict::Error {
                    latency,
                    error: transient(["500", "502", "503", "504"][rng.index(4)]),
                }
            } else if hit(r.platform_ambiguous) {
                Verdict::CreatedNoAnswer { latency }
            } else if hit(r.platform_ambiguous_lost) {
                Verdict::NotCreatedNoAnswer { latency }
            } else {
                Verdict::Created { latency }
            };
            // Past the client's timeout nobody hears the answer; the request was sent, and
            // most of the time the platform got it.
            match verdict {
                Verdict::Created { latency } | Verdict::CreatedNoAnswer { latency }
                    if latency > CLIENT_TIMEOUT =>
                {
                    if rng.chance(0.7) {
                        Verdict::CreatedNoAnswer { latency }
                    } else {
                        Verdict::NotCreatedNoAnswer { latency }
                    }
                }
                Verdict::Error { latency, .. } if latency > CLIENT_TIMEOUT => {
                    Verdict::NotCreatedNoAnswer { latency }
                }
                v => v,
            }
        })
    }

    /// An Instagram step's container: `Ok(Some(..))` when the kept one was published (its
    /// post, or ambiguous while the listing does not show it yet), `Ok(None)` when it waits to
    /// be published, `Err(new)` when there is none yet: a new container, made now.
    #[allow(clippy::type_complexity)]
    fn container(
        &self,
        kept: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Option<Result<PublishedPost, PlatformError>>, String> {
        let mut s = self.lock();
        let Some(kept) = kept.filter(|k| s.containers.contains_key(k)) else {
            let made = format!("container-{}", s.containers.len() + 1);
            s.containers.insert(made.clone(), None);
            return Err(made);
        };
        let Some(Some(post_id)) = s.containers.get(&kept).cloned() else {
            return Ok(None);
        };
        let listed = s
            .posts
            .iter()
            .any(|p| p.id == post_id && p.indexed_at <= now);
        Ok(Some(if listed {
            Ok(PublishedPost::new(post_id))
        } else {
            Err(PlatformError::Ambiguous {
                message: format!("container {kept} was published; its media is not listed yet"),
            })
        }))
    }

    /// The platform processes the request halfway through the call: from then on the post
    /// exists, whatever happens to the caller.
    fn create(
        &self,
        platform: Platform,
        external_id: &str,
        text: &str,
        reply_to: Option<&str>,
        idempotency_key: Option<&str>,
        at: OffsetDateTime,
    ) -> (String, RateSignal) {
        let lag = if self.faults {
            self.rng.millis(0, 1_000)
        } else {
            Duration::ZERO
        };
        let mut s = self.lock();
        let id = format!("{platform}-{}", s.posts.len() + 1);
        s.posts.push(PlatformPost {
            platform,
            external_id: external_id.to_owned(),
            text: text.to_owned(),
            id: id.clone(),
            created_at: at,
            indexed_at: at + lag,
            reply_to: reply_to.map(str::to_owned),
            idempotency_key: idempotency_key.map(str::to_owned),
        });
        let index = s.posts.len() - 1;
        s.by_account
            .entry((platform, external_id.to_owned()))
            .or_default()
            .push(index);
        let mut window = |limit: u32, seconds: i64| {
            let slot = at.unix_timestamp().div_euclid(seconds);
            let used = s
                .x_windows
                .entry((external_id.to_owned(), slot))
                .or_default();
            *used += 1;
            let reset = (slot + 1) * seconds - at.unix_timestamp();
            RateSignal {
                remaining: Some(limit.saturating_sub(*used)),
                reset_after: Some(Duration::from_secs(reset.max(1) as u64)),
                app_usage_percent: None,
            }
        };
        let signal = match platform {
            // X: 100 posts per user per 15 minutes, reported on every answer.
            Platform::X => window(100, 15 * 60),
            // Mastodon: 300 statuses per account per 3 hours.
            Platform::Mastodon => window(300, 3 * 3600),
            // Bluesky: 5,000 repo-write points an hour, 3 per create.
            Platform::Bluesky => window(1_666, 3600),
            // Meta: the app's share of 200 calls per hour.
            Platform::Facebook => {
                s.facebook_calls
                    .retain(|t| *t > at - time::Duration::hours(1));
                s.facebook_calls.push(at);
                RateSignal {
                    app_usage_percent: Some((s.facebook_calls.len() * 100 / 200) as u32),
                    ..RateSignal::default()
                }
            }
            Platform::Linkedin | Platform::Instagram => RateSignal::default(),
        };
        (id, signal)
    }
}

/// How long X takes one video chunk.
const CHUNK_TIME: Duration = Duration::from_secs(3);

impl PlatformClientFor {
    /// X's chunked upload of a video, from the kept offset: each chunk a call (which may die
    /// with the invocation) taking `CHUNK_TIME`, kept once taken; none started that could not
    /// finish by `uploads_until`.
    async fn upload_chunks(
        &self,
        videos: Vec<u64>,
        progress: &dyn StepProgress,
        until: OffsetDateTime,
    ) -> Result<(), PlatformError> {
        let p = &self.platform;
        let mut moved = false;
        for size in videos {
            let mut sent: u64 = progress.kept().and_then(|k| k.parse().ok()).unwrap_or(0);
            while sent < size {
                if p.clock.time() + CHUNK_TIME > until {
                    let message = match moved {
                        true => "the upload continues in the next invocation",
                        false => "no time was left to move the upload on",
                    };
                    if moved {
                        Stats::bump(&p.stats.upload_continuations);
                    }
                    return Err(PlatformError::UploadContinues {
                        message: message.into(),
                        moved,
                    });
                }
                if let Some(inv) = &self.inv {
                    inv.call(&p.clock).await;
                }
                p.clock.sleep_for(CHUNK_TIME).await;
                sent = (sent + UPLOAD_CHUNK_BYTES).min(size);
                Stats::bump(&p.stats.video_chunks);
                progress.keep(&sent.to_string()).await?;
                moved = true;
            }
        }
        Ok(())
    }
}

/// The platform as one invocation reaches it: its calls take part in the invocation's fate.
#[derive(Debug, Clone)]
pub struct PlatformClientFor {
    pub platform: Arc<FakePlatform>,
    pub inv: Option<Arc<Invocation>>,
}

#[async_trait]
impl PlatformClient for PlatformClientFor {
    async fn publish(&self, req: PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        let p = &self.platform;
        if let Some(inv) = &self.inv {
            inv.call(&p.clock).await;
        }
        Stats::bump(&p.stats.platform_calls);
        let videos: Vec<u64> = req
            .media
            .iter()
            .filter(|u| matches!(u.body, MediaBody::Chunks(_)))
            .map(|u| u.attachment.size)
            .collect();
        self.upload_chunks(videos, req.progress, req.uploads_until)
            .await?;
        let start = p.clock.time();
        // Like the platforms, an answer to a post that does not exist is refused for good.
        let orphan = req.reply_to.is_some_and(|parent| {
            let s = p.lock();
            !s.posts.iter().any(|post| post.id == parent)
        });
        // Mastodon: a create whose key the account used within the hour answers that status;
        // Bluesky: one whose record key the repo holds is refused, and the client then finds
        // that record under it.
        let remembers = match req.platform {
            Platform::Mastodon => Some(time::Duration::hours(1)),
            Platform::Bluesky => Some(time::Duration::MAX),
            _ => None,
        };
        let key = remembers.map(|_| req.idempotency_key);
        let replayed = key.and_then(|key| {
            let s = p.lock();
            s.by_account
                .get(&(req.platform, req.external_id.to_owned()))
                .into_iter()
                .flatten()
                .map(|i| &s.posts[*i])
                .find(|post| {
                    post.idempotency_key.as_deref() == Some(key)
                        && remembers.is_some_and(|r| {
                            post.created_at
                                .checked_add(r)
                                .is_none_or(|until| until > start)
                        })
                })
                .map(|post| post.id.clone())
        });
        // Instagram: the kept container is published at most once; a retry of one that was
        // answers with its post (once the listing shows it), and a new one is kept before it
        // is published.
        let container = match (req.platform, req.reply_to) {
            (Platform::Instagram, None) => match p.container(req.progress.kept(), start) {
                Ok(Some(found)) => return found,
                Ok(None) => None,
                Err(fresh) => {
                    req.progress.keep(&fresh).await?;
                    Some(fresh)
                }
            },
            _ => None,
        }
        .or_else(|| req.progress.kept());
        let verdict = if orphan {
            Verdict::Error {
                latency: Duration::from_millis(200),
                error: PlatformError::Permanent {
                    message: "the post this answers does not exist".into(),
                    code: Some("385".into()),
                },
            }
        } else {
            p.verdict(req.platform, req.text, start)
        };
        let (latency, created) = match &verdict {
            Verdict::Created { latency } | Verdict::CreatedNoAnswer { latency }
                if replayed.is_some() =>
            {
                let id = replayed.clone().unwrap_or_default();
                (*latency, Some((id, RateSignal::default())))
            }
            Verdict::Created { latency } | Verdict::CreatedNoAnswer { latency } => {
                let at = start + *latency / 2;
                Stats::bump(&p.stats.platform_created);
                let created = p.create(
                    req.platform,
                    req.external_id,
                    req.text,
                    req.reply_to,
                    key,
                    at,
                );
                if let (Platform::Instagram, None, Some(c)) =
                    (req.platform, req.reply_to, &container)
                {
                    p.lock()
                        .containers
                        .insert(c.clone(), Some(created.0.clone()));
                }
                (*latency, Some(created))
            }
            Verdict::NotCreatedNoAnswer { latency } | Verdict::Error { latency, .. } => {
                (*latency, None)
            }
        };
        let waited = latency.min(CLIENT_TIMEOUT);
        p.clock.sleep_for(waited).await;
        let result = match (verdict, created) {
            (Verdict::Created { .. }, Some((id, signal))) => Ok(PublishedPost {
                platform_post_id: id,
                signal,
            }),
            (Verdict::Error { error, .. }, _) => Err(error),
            _ => Err(PlatformError::Ambiguous {
                message: format!("no answer within {}s", waited.as_secs()),
            }),
        };
        if result.is_err() {
            Stats::bump(&p.stats.platform_errors);
        }
        p.ledger
            .platform_event(p.clock.time(), req.text, req.external_id, || {
                format!(
                    "platform publish {:?}: {}",
                    req.text,
                    match &result {
                        Ok(post) => format!("ok {}", post.platform_post_id),
                        Err(e) => format!("{} ({})", e.kind().as_str(), e.message()),
                    }
                )
            });
        result
    }

    async fn find_post(
        &self,
        req: LookupRequest<'_>,
    ) -> Result<Option<PublishedPost>, PlatformError> {
        let p = &self.platform;
        if let Some(inv) = &self.inv {
            inv.call(&p.clock).await;
        }
        Stats::bump(&p.stats.lookups);
        let d = p.rng.millis(100, 600);
        p.clock.sleep_for(d).await;
        let now = p.clock.time();
        let result = if p.faults && p.rng.chance(p.rates.lookup_failure) {
            Err(PlatformError::Transient {
                message: "the search answered 503".into(),
                code: Some("503".into()),
                retry_after: None,
            })
        } else if let (Platform::Instagram, None) = (req.platform, req.reply_to) {
            // Through the kept container only: nothing kept was never published.
            match req.progress.kept().map(|kept| p.container(Some(kept), now)) {
                Some(Ok(Some(Ok(found)))) => Ok(Some(found)),
                Some(Ok(Some(Err(unlisted)))) => Err(unlisted),
                _ => Ok(None),
            }
        } else {
            let s = p.lock();
            let found = s
                .by_account
                .get(&(req.platform, req.external_id.to_owned()))
                .into_iter()
                .flatten()
                .map(|i| &s.posts[*i])
                .find(|post| {
                    post.text == req.text
                        && post.reply_to.as_deref() == req.reply_to
                        && post.created_at >= req.since
                        && post.indexed_at <= now
                })
                .map(|post| PublishedPost::new(post.id.clone()));
            Ok(found)
        };
        p.ledger.platform_event(now, req.text, req.external_id, || {
            format!(
                "platform lookup {:?}: {:?}",
                req.text,
                result
                    .as_ref()
                    .map(|f| f.as_ref().map(|p| p.platform_post_id.clone()))
            )
        });
        result
    }
}
