//! The bootstrap operator token: the `admin-token` secret in Secrets Manager, rotated by the
//! rotation function. It is what creates tenants over HTTP before any tenant (and so any API
//! key) exists. Like every verifier, it accepts the current value and, through the grace
//! period, the previous one, and refetches once before refusing.

use crate::clock::Clock;
use crate::error::StoreError;
use crate::secrets::{SecretCache, SecretRing};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub struct OperatorToken {
    pub secrets: Arc<SecretCache>,
    pub secret_id: String,
    /// How long the previous value keeps working after a rotation.
    pub grace: time::Duration,
    pub clock: Arc<dyn Clock>,
}

crate::debug_fields!(OperatorToken, grace);

impl OperatorToken {
    /// Whether `presented` is the operator token. Compared as SHA-256 digests in constant
    /// time, so neither the content nor the length of the secret leaks through timing.
    pub async fn admits(&self, presented: &str) -> Result<bool, StoreError> {
        self.admits_digest(&Self::digest(presented)).await
    }

    /// The SHA-256 of a presented token: what a console session keeps, instead of the token,
    /// to ask [`Self::admits_digest`] on every request (a rotated-out token ends the session).
    pub fn digest(presented: &str) -> [u8; 32] {
        Sha256::digest(presented.as_bytes()).into()
    }

    /// [`Self::admits`] for a token known by its digest.
    pub async fn admits_digest(&self, offered: &[u8; 32]) -> Result<bool, StoreError> {
        let offered = offered.as_slice();
        let now = self.clock.now();
        let matches = |ring: &SecretRing| {
            ring.accepted(now, self.grace).into_iter().any(|value| {
                bool::from(
                    Sha256::digest(value.expose_secret().as_bytes())
                        .as_slice()
                        .ct_eq(offered),
                )
            })
        };
        if matches(&*self.secrets.get(&self.secret_id).await?) {
            return Ok(true);
        }
        Ok(match self.secrets.refetch(&self.secret_id).await? {
            Some(fresh) => matches(&fresh),
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::secrets::{CachePolicy, SecretMeta, SecretStore};
    use async_trait::async_trait;
    use secrecy::SecretString;
    use std::sync::Mutex;
    use time::OffsetDateTime;
    use time::macros::datetime;

    /// A secret whose current and previous values a test sets, counting reads.
    #[derive(Default)]
    struct Values {
        current: Mutex<(String, Option<String>, Option<OffsetDateTime>)>,
        reads: Mutex<usize>,
    }

    #[async_trait]
    impl SecretStore for Values {
        async fn describe(&self, _: &str) -> Result<SecretMeta, StoreError> {
            Err(StoreError::Invalid("unused".into()))
        }
        async fn staged_value(
            &self,
            _: &str,
            stage: &str,
        ) -> Result<Option<(SecretString, OffsetDateTime)>, StoreError> {
            *self.reads.lock().unwrap() += 1;
            let (current, previous, since) = self.current.lock().unwrap().clone();
            let since = since.unwrap_or(datetime!(2026-01-01 0:00 UTC));
            Ok(match stage {
                crate::secrets::CURRENT => Some((current.into(), since)),
                crate::secrets::PREVIOUS => previous.map(|p| (p.into(), since)),
                _ => None,
            })
        }
        async fn value(&self, _: &str, _: &str) -> Result<Option<SecretString>, StoreError> {
            Ok(None)
        }
        async fn put_pending(&self, _: &str, _: &str, _: &SecretString) -> Result<(), StoreError> {
            Ok(())
        }
        async fn move_stage(
            &self,
            _: &str,
            _: &str,
            _: Option<&str>,
            _: Option<&str>,
        ) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn token(values: &Arc<Values>, clock: &Arc<FakeClock>) -> OperatorToken {
        OperatorToken {
            secrets: Arc::new(SecretCache::new(
                values.clone(),
                clock.clone(),
                CachePolicy::default(),
            )),
            secret_id: "admin".into(),
            grace: time::Duration::hours(1),
            clock: clock.clone(),
        }
    }

    #[tokio::test]
    async fn the_current_value_is_admitted_and_anything_else_refused() {
        let values = Arc::new(Values::default());
        *values.current.lock().unwrap() = ("hrld_current".into(), None, None);
        let clock = Arc::new(FakeClock::new(datetime!(2026-01-01 0:10 UTC)));
        let token = token(&values, &clock);
        assert!(token.admits("hrld_current").await.unwrap());
        for wrong in [
            "",
            "hrld_current ",
            "hrld_curren",
            "hrld_currentx",
            "HRLD_CURRENT",
        ] {
            assert!(!token.admits(wrong).await.unwrap(), "{wrong:?}");
        }
    }

    #[tokio::test]
    async fn after_a_rotation_both_values_work_until_the_grace_ends() {
        let values = Arc::new(Values::default());
        *values.current.lock().unwrap() = ("hrld_old".into(), None, None);
        let clock = Arc::new(FakeClock::new(datetime!(2026-01-01 0:10 UTC)));
        let token = token(&values, &clock);
        assert!(token.admits("hrld_old").await.unwrap());
        // Rotated: the cached ring still has only the old value; the new one is refetched.
        let rotated_at = datetime!(2026-01-01 0:20 UTC);
        clock.advance(time::Duration::minutes(10));
        *values.current.lock().unwrap() =
            ("hrld_new".into(), Some("hrld_old".into()), Some(rotated_at));
        assert!(token.admits("hrld_new").await.unwrap());
        assert!(token.admits("hrld_old").await.unwrap());
        clock.advance(time::Duration::hours(1));
        assert!(
            !token.admits("hrld_old").await.unwrap(),
            "refused after the grace"
        );
        assert!(token.admits("hrld_new").await.unwrap());
    }

    #[tokio::test]
    async fn a_flood_of_wrong_tokens_refetches_at_most_once_per_interval() {
        let values = Arc::new(Values::default());
        *values.current.lock().unwrap() = ("hrld_current".into(), None, None);
        let clock = Arc::new(FakeClock::new(datetime!(2026-01-01 0:10 UTC)));
        let token = token(&values, &clock);
        for _ in 0..100 {
            assert!(!token.admits("hrld_guess").await.unwrap());
        }
        // One ring read is two staged reads (current, previous): the first fetch only.
        assert_eq!(*values.reads.lock().unwrap(), 2);
    }
}
