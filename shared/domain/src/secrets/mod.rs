//! The secrets Herald owns (kept in Secrets Manager): their kinds and formats, the four-step
//! rotation Secrets Manager drives through the rotation function, and the in-process cache
//! every verifier reads through.
//!
//! Rotation follows Secrets Manager's protocol: `createSecret` stages a new version
//! `AWSPENDING`, `setSecret` installs it wherever it must be known, `testSecret` checks it and
//! `finishSecret` moves `AWSCURRENT` to it (Secrets Manager labels the version it leaves
//! `AWSPREVIOUS`). Each step is idempotent for its `ClientRequestToken`, and `finishSecret`
//! leaves no `AWSPENDING` label behind. Verifiers accept `AWSCURRENT` and, for a grace period
//! after it was created, `AWSPREVIOUS`: requests signed before, during and after a switch all
//! verify.
//!
//! The folder also holds `secret` (random secrets and API-key hashes), `token_crypto` (platform
//! tokens sealed at rest), `token_refresh` (refreshing them before they expire) and `operator`
//! (the bootstrap operator token).

pub mod operator;
mod rotation;
pub mod secret;
pub mod token_crypto;
pub mod token_refresh;

pub use rotation::*;

use crate::StoreError;
use crate::clock::Clock;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

pub const CURRENT: &str = "AWSCURRENT";
pub const PENDING: &str = "AWSPENDING";
pub const PREVIOUS: &str = "AWSPREVIOUS";

/// The tag naming a Herald-owned secret's kind; the rotation function refuses secrets without.
pub const KIND_TAG: &str = "herald:secret-kind";

/// What a secret is, which decides how a new value is made and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64.
    WebhookSigning,
    /// A bearer token for operators: `hrld_` and 32 random bytes, URL-safe base64.
    AdminToken,
    /// A 256-bit key (JWT signing, token encryption): 32 random bytes in base64.
    Key256,
}

impl SecretKind {
    pub fn parse(tag: &str) -> Option<Self> {
        match tag {
            "webhook-signing" => Some(Self::WebhookSigning),
            "admin-token" => Some(Self::AdminToken),
            "key-256" => Some(Self::Key256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhookSigning => "webhook-signing",
            Self::AdminToken => "admin-token",
            Self::Key256 => "key-256",
        }
    }

    /// A new value of this kind from 32 random bytes.
    pub fn value_from(self, bytes: &[u8; 32]) -> SecretString {
        SecretString::from(match self {
            Self::WebhookSigning => format!("whsec_{}", STANDARD.encode(bytes)),
            Self::AdminToken => format!("hrld_{}", URL_SAFE_NO_PAD.encode(bytes)),
            Self::Key256 => STANDARD.encode(bytes),
        })
    }

    /// A new random value, from the operating system's random source.
    pub fn generate(self) -> SecretString {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        self.value_from(&bytes)
    }

    /// The key bytes inside a value, or why the value is not of this kind (the reason never
    /// quotes the value).
    pub fn key_bytes(self, value: &SecretString) -> Result<Vec<u8>, String> {
        let v = value.expose_secret();
        let decoded = match self {
            Self::WebhookSigning => v
                .strip_prefix("whsec_")
                .ok_or("a webhook signing secret starts with whsec_")
                .and_then(|b| STANDARD.decode(b).map_err(|_| "its key is not base64")),
            Self::AdminToken => v
                .strip_prefix("hrld_")
                .ok_or("an admin token starts with hrld_")
                .and_then(|b| {
                    URL_SAFE_NO_PAD
                        .decode(b)
                        .map_err(|_| "its key is not base64url")
                }),
            Self::Key256 => STANDARD.decode(v).map_err(|_| "the key is not base64"),
        }?;
        // Standard Webhooks allows 24 to 64 bytes; Herald makes 32 and reads what senders use.
        let ok = match self {
            Self::WebhookSigning => (24..=64).contains(&decoded.len()),
            Self::AdminToken | Self::Key256 => decoded.len() == 32,
        };
        if ok {
            Ok(decoded)
        } else {
            Err(format!("the key is {} bytes long", decoded.len()))
        }
    }
}

/// One version of a secret and its staging labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersion {
    pub id: String,
    pub stages: Vec<String>,
    pub created_at: OffsetDateTime,
}

impl SecretVersion {
    pub fn has(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }
}

/// What the rotation function reads about a secret before each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMeta {
    /// From the `herald:secret-kind` tag; `None`: not a secret Herald owns.
    pub kind: Option<SecretKind>,
    pub versions: Vec<SecretVersion>,
}

impl SecretMeta {
    fn version(&self, id: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.id == id)
    }

    fn staged(&self, stage: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.has(stage))
    }
}

/// The secrets store as rotation and verification need it.
#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn describe(&self, secret: &str) -> Result<SecretMeta, StoreError>;
    /// A version's value; `None` when the version (or its value) does not exist.
    async fn value(&self, secret: &str, version: &str) -> Result<Option<SecretString>, StoreError>;
    /// The value staged `stage`, with its version's creation time; `None` when no version
    /// holds it.
    async fn staged_value(
        &self,
        secret: &str,
        stage: &str,
    ) -> Result<Option<(SecretString, OffsetDateTime)>, StoreError>;
    /// Stores `value` as version `token`, staged `AWSPENDING` (taken from any other version).
    async fn put_pending(
        &self,
        secret: &str,
        token: &str,
        value: &SecretString,
    ) -> Result<(), StoreError>;
    /// Moves `stage` to version `to` (from `from`), or removes it from `from` when `to` is
    /// `None`.
    async fn move_stage(
        &self,
        secret: &str,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// The values a verifier may accept: the current one and, within the grace period after the
/// current one was created, the previous one.
#[derive(Debug, Clone)]
pub struct SecretRing {
    pub current: SecretString,
    pub previous: Option<SecretString>,
    pub current_since: OffsetDateTime,
}

impl SecretRing {
    /// Newest first.
    pub fn accepted(&self, now: OffsetDateTime, grace: time::Duration) -> Vec<&SecretString> {
        let mut out = vec![&self.current];
        if now < self.current_since + grace {
            out.extend(self.previous.as_ref());
        }
        out
    }
}

/// Reads a secret's ring from the store: the current value, then the previous one.
pub async fn load_ring(store: &dyn SecretStore, secret: &str) -> Result<SecretRing, StoreError> {
    let (current, current_since) = store
        .staged_value(secret, CURRENT)
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("{secret} has no current value")))?;
    let previous = store
        .staged_value(secret, PREVIOUS)
        .await?
        .map(|(value, _)| value);
    Ok(SecretRing {
        current,
        previous,
        current_since,
    })
}

/// How long a cached ring is used, and how often a failed verification may refetch it.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    pub ttl: time::Duration,
    /// A verification failure refetches at most this often, so forged requests cannot turn
    /// into a flood of Secrets Manager calls.
    pub refetch_every: time::Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            ttl: time::Duration::minutes(5),
            refetch_every: time::Duration::seconds(10),
        }
    }
}

/// Secret rings cached in process, per secret id.
pub struct SecretCache {
    store: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    policy: CachePolicy,
    rings: Mutex<HashMap<String, (Arc<SecretRing>, OffsetDateTime)>>,
}

crate::debug_fields!(SecretCache, policy);

impl SecretCache {
    pub fn new(store: Arc<dyn SecretStore>, clock: Arc<dyn Clock>, policy: CachePolicy) -> Self {
        Self {
            store,
            clock,
            policy,
            rings: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, secret: &str) -> Option<(Arc<SecretRing>, OffsetDateTime)> {
        self.rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(secret)
            .cloned()
    }

    async fn fetch(&self, secret: &str) -> Result<Arc<SecretRing>, StoreError> {
        let ring = Arc::new(load_ring(self.store.as_ref(), secret).await?);
        self.rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(secret.to_owned(), (ring.clone(), self.clock.now()));
        Ok(ring)
    }

    /// The ring, from the cache while it is younger than the TTL.
    pub async fn get(&self, secret: &str) -> Result<Arc<SecretRing>, StoreError> {
        match self.cached(secret) {
            Some((ring, at)) if self.clock.now() < at + self.policy.ttl => Ok(ring),
            _ => self.fetch(secret).await,
        }
    }

    /// After a verification failed with the cached ring: a fresh ring, unless one was fetched
    /// too recently (`None`: refuse with what is known).
    pub async fn refetch(&self, secret: &str) -> Result<Option<Arc<SecretRing>>, StoreError> {
        match self.cached(secret) {
            Some((_, at)) if self.clock.now() < at + self.policy.refetch_every => Ok(None),
            _ => self.fetch(secret).await.map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use time::macros::datetime;

    /// Secrets Manager's staging rules: a label is on one version at most, and moving
    /// `AWSCURRENT` labels the version it leaves `AWSPREVIOUS`.
    #[derive(Default)]
    struct Manager {
        kind: Option<SecretKind>,
        versions: Mutex<Vec<(SecretVersion, Option<SecretString>)>>,
        fetches: Mutex<usize>,
        /// The next removal of AWSPENDING fails (the invocation died there).
        fail_pending_removal: Mutex<bool>,
    }

    impl Manager {
        fn owned(kind: SecretKind) -> Self {
            Self {
                kind: Some(kind),
                ..Self::default()
            }
        }
        fn stages(&self) -> Vec<(String, Vec<String>)> {
            let versions = self.versions.lock().unwrap();
            versions
                .iter()
                .map(|(v, _)| (v.id.clone(), v.stages.clone()))
                .collect()
        }
        fn take_label(versions: &mut [(SecretVersion, Option<SecretString>)], stage: &str) {
            for (v, _) in versions.iter_mut() {
                v.stages.retain(|s| s != stage);
            }
        }
    }

    #[async_trait]
    impl SecretStore for Manager {
        async fn describe(&self, _: &str) -> Result<SecretMeta, StoreError> {
            Ok(SecretMeta {
                kind: self.kind,
                versions: self
                    .versions
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(v, _)| v.clone())
                    .collect(),
            })
        }
        async fn value(&self, _: &str, version: &str) -> Result<Option<SecretString>, StoreError> {
            let versions = self.versions.lock().unwrap();
            Ok(versions
                .iter()
                .find(|(v, _)| v.id == version)
                .and_then(|(_, value)| value.clone()))
        }
        async fn staged_value(
            &self,
            _: &str,
            stage: &str,
        ) -> Result<Option<(SecretString, OffsetDateTime)>, StoreError> {
            *self.fetches.lock().unwrap() += 1;
            let versions = self.versions.lock().unwrap();
            Ok(versions
                .iter()
                .find(|(v, _)| v.has(stage))
                .and_then(|(v, value)| Some((value.clone()?, v.created_at))))
        }
        async fn put_pending(
            &self,
            _: &str,
            token: &str,
            value: &SecretString,
        ) -> Result<(), StoreError> {
            let mut versions = self.versions.lock().unwrap();
            Self::take_label(&mut versions, PENDING);
            versions.push((
                SecretVersion {
                    id: token.to_owned(),
                    stages: vec![PENDING.to_owned()],
                    created_at: datetime!(2026-01-01 00:00 UTC),
                },
                Some(value.clone()),
            ));
            Ok(())
        }
        async fn move_stage(
            &self,
            _: &str,
            stage: &str,
            to: Option<&str>,
            from: Option<&str>,
        ) -> Result<(), StoreError> {
            if stage == PENDING && to.is_none() {
                let mut fail = self.fail_pending_removal.lock().unwrap();
                if *fail {
                    *fail = false;
                    return Err(StoreError::Unavailable("timed out".into()));
                }
            }
            let mut versions = self.versions.lock().unwrap();
            let holder = versions
                .iter()
                .find(|(v, _)| v.has(stage))
                .map(|(v, _)| v.id.clone());
            if holder.as_deref() != from {
                return Err(StoreError::Invalid(format!("{stage} is not on {from:?}")));
            }
            Self::take_label(&mut versions, stage);
            if stage == CURRENT && from.is_some() {
                Self::take_label(&mut versions, PREVIOUS);
                if let Some((v, _)) = versions
                    .iter_mut()
                    .find(|(v, _)| Some(v.id.as_str()) == from)
                {
                    v.stages.push(PREVIOUS.to_owned());
                }
            }
            if let Some((v, _)) = versions.iter_mut().find(|(v, _)| Some(v.id.as_str()) == to) {
                v.stages.push(stage.to_owned());
            }
            Ok(())
        }
    }

    async fn rotate(r: &Rotation, token: &str) {
        for step in [
            RotationStep::Create,
            RotationStep::Set,
            RotationStep::Test,
            RotationStep::Finish,
        ] {
            r.step("s", token, step).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_rotation_moves_current_and_previous_and_leaves_no_pending() {
        let m = Arc::new(Manager::owned(SecretKind::WebhookSigning));
        let r = Rotation {
            store: m.clone(),
            gate: None,
        };
        rotate(&r, "t1").await;
        assert_eq!(m.stages(), [("t1".to_owned(), vec![CURRENT.to_owned()])]);
        let first = m.value("s", "t1").await.unwrap().unwrap();

        // The second rotation, each step run twice as a retried invocation would.
        for step in [
            RotationStep::Create,
            RotationStep::Create,
            RotationStep::Set,
            RotationStep::Test,
            RotationStep::Test,
            RotationStep::Finish,
        ] {
            r.step("s", "t2", step).await.unwrap();
        }
        assert_eq!(
            r.step("s", "t2", RotationStep::Finish).await,
            Ok(StepOutcome::AlreadyDone)
        );
        assert_eq!(
            m.stages(),
            [
                ("t1".to_owned(), vec![PREVIOUS.to_owned()]),
                ("t2".to_owned(), vec![CURRENT.to_owned()])
            ]
        );
        let ring = load_ring(m.as_ref(), "s").await.unwrap();
        assert_eq!(
            ring.previous.as_ref().map(ExposeSecret::expose_secret),
            Some(first.expose_secret())
        );
        assert_ne!(ring.current.expose_secret(), first.expose_secret());
    }

    #[tokio::test]
    async fn an_abandoned_rotation_leaves_no_stray_pending_behind_the_next() {
        let m = Arc::new(Manager::owned(SecretKind::Key256));
        let r = Rotation {
            store: m.clone(),
            gate: None,
        };
        rotate(&r, "t1").await;
        r.step("s", "dead", RotationStep::Create).await.unwrap();
        rotate(&r, "t2").await;
        assert!(
            m.stages()
                .iter()
                .all(|(_, stages)| !stages.contains(&PENDING.to_owned())),
            "{:?}",
            m.stages()
        );
        assert_eq!(
            r.step("s", "dead", RotationStep::Finish).await,
            Err(RotationError::NotPending("dead".into()))
        );
    }

    #[tokio::test]
    async fn a_finish_retried_after_dying_midway_removes_the_pending_label() {
        let m = Arc::new(Manager::owned(SecretKind::Key256));
        let r = Rotation {
            store: m.clone(),
            gate: None,
        };
        rotate(&r, "t1").await;
        for step in [RotationStep::Create, RotationStep::Set, RotationStep::Test] {
            r.step("s", "t2", step).await.unwrap();
        }
        *m.fail_pending_removal.lock().unwrap() = true;
        assert!(r.step("s", "t2", RotationStep::Finish).await.is_err());
        assert_eq!(
            r.step("s", "t2", RotationStep::Finish).await,
            Ok(StepOutcome::Done)
        );
        assert_eq!(
            m.stages(),
            [
                ("t1".to_owned(), vec![PREVIOUS.to_owned()]),
                ("t2".to_owned(), vec![CURRENT.to_owned()])
            ]
        );
    }

    /// Holds every rotation while `held` says so, and records the value it was shown.
    #[derive(Default)]
    struct Gate {
        held: Mutex<bool>,
        shown: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl RotationGate for Gate {
        async fn hold(
            &self,
            _: &str,
            current: &SecretString,
        ) -> Result<Option<String>, StoreError> {
            self.shown
                .lock()
                .unwrap()
                .push(current.expose_secret().to_owned());
            Ok(self
                .held
                .lock()
                .unwrap()
                .then(|| "the sweep is behind".to_owned()))
        }
    }

    #[tokio::test]
    async fn a_gate_holds_a_rotation_before_any_new_value_but_never_the_first() {
        let m = Arc::new(Manager::owned(SecretKind::Key256));
        let gate = Arc::new(Gate::default());
        *gate.held.lock().unwrap() = true;
        let r = Rotation {
            store: m.clone(),
            gate: Some(gate.clone()),
        };
        rotate(&r, "t1").await;
        assert!(
            gate.shown.lock().unwrap().is_empty(),
            "no value yet: nothing to hold"
        );
        let first = m.value("s", "t1").await.unwrap().unwrap();
        assert_eq!(
            r.step("s", "t2", RotationStep::Create).await,
            Err(RotationError::NotReady {
                secret: "s".into(),
                reason: "the sweep is behind".into()
            })
        );
        assert!(
            m.value("s", "t2").await.unwrap().is_none(),
            "no value was made"
        );
        assert_eq!(
            gate.shown.lock().unwrap().as_slice(),
            [first.expose_secret().to_owned()],
            "the gate judged the current value"
        );
        *gate.held.lock().unwrap() = false;
        rotate(&r, "t2").await;
        assert_eq!(m.stages().last().unwrap().0, "t2");
    }

    #[tokio::test]
    async fn refusals_name_the_problem() {
        let stranger = Rotation {
            store: Arc::new(Manager::default()),
            gate: None,
        };
        assert_eq!(
            stranger.step("s", "t", RotationStep::Create).await,
            Err(RotationError::NotOwned("s".into()))
        );
        let m = Arc::new(Manager::owned(SecretKind::AdminToken));
        let r = Rotation {
            store: m.clone(),
            gate: None,
        };
        assert_eq!(
            r.step("s", "nope", RotationStep::Test).await,
            Err(RotationError::UnknownVersion("nope".into()))
        );
        m.put_pending("s", "bad", &SecretString::from("not-a-token"))
            .await
            .unwrap();
        assert!(matches!(
            r.step("s", "bad", RotationStep::Test).await,
            Err(RotationError::Invalid {
                kind: "admin-token",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn the_cache_keeps_a_ring_for_its_ttl_and_refetches_at_most_so_often() {
        let m = Arc::new(Manager::owned(SecretKind::WebhookSigning));
        rotate(
            &Rotation {
                store: m.clone(),
                gate: None,
            },
            "t1",
        )
        .await;
        let clock = Arc::new(FakeClock::new(datetime!(2026-01-01 00:00 UTC)));
        let cache = SecretCache::new(m.clone(), clock.clone(), CachePolicy::default());
        let fetches = || *m.fetches.lock().unwrap();
        let before = fetches();
        cache.get("s").await.unwrap();
        cache.get("s").await.unwrap();
        assert_eq!(fetches(), before + 2, "current and previous, once");
        assert!(cache.refetch("s").await.unwrap().is_none(), "just fetched");
        clock.advance(time::Duration::seconds(10));
        assert!(cache.refetch("s").await.unwrap().is_some());
        assert_eq!(fetches(), before + 4);
        clock.advance(time::Duration::minutes(5));
        cache.get("s").await.unwrap();
        assert_eq!(fetches(), before + 6, "past the TTL");
    }

    #[test]
    fn generated_values_have_their_kinds_format() {
        for kind in [
            SecretKind::WebhookSigning,
            SecretKind::AdminToken,
            SecretKind::Key256,
        ] {
            let v = kind.generate();
            assert_eq!(kind.key_bytes(&v).map(|k| k.len()), Ok(32), "{kind:?}");
            assert_eq!(SecretKind::parse(kind.as_str()), Some(kind));
        }
        let bytes = [7u8; 32];
        assert_eq!(
            SecretKind::WebhookSigning
                .value_from(&bytes)
                .expose_secret()
                .len(),
            "whsec_".len() + 44
        );
    }

    #[test]
    fn malformed_values_are_refused_without_quoting_them() {
        let cases = [
            (SecretKind::WebhookSigning, "whsec_c2hvcnQ="),
            (SecretKind::WebhookSigning, "no-prefix"),
            (SecretKind::AdminToken, "hrld_!!!"),
            (SecretKind::Key256, "c2hvcnQ="),
        ];
        for (kind, value) in cases {
            let err = kind.key_bytes(&SecretString::from(value)).unwrap_err();
            assert!(!err.contains(value), "{err}");
        }
    }

    #[test]
    fn the_previous_value_is_accepted_only_within_the_grace_period() {
        let t0 = time::macros::datetime!(2026-01-01 00:00 UTC);
        let ring = SecretRing {
            current: SecretString::from("new"),
            previous: Some(SecretString::from("old")),
            current_since: t0,
        };
        let grace = time::Duration::hours(1);
        let values = |now| -> Vec<String> {
            ring.accepted(now, grace)
                .iter()
                .map(|s| s.expose_secret().to_owned())
                .collect()
        };
        assert_eq!(values(t0), ["new", "old"]);
        assert_eq!(values(t0 + time::Duration::minutes(59)), ["new", "old"]);
        assert_eq!(values(t0 + grace), ["new"]);
    }
}
