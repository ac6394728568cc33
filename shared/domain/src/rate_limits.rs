//! Request rate limits: a fixed-window budget per scope (an API key and an operation class,
//! an embed token, a provider), counted by a [`RequestCounter`] port shared by every instance
//! (DynamoDB: one conditional write per request). The API's limits, the embed token issuer's
//! and, later, the SMS sender's messages per second all draw on it.

use crate::StoreError;
use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

/// A fixed-window request budget: `limit` requests per `window` per scope (an API key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPolicy {
    pub limit: u32,
    pub window: Duration,
}

/// `POST /v1/embed/tokens`: ten per minute per API key.
pub const TOKEN_POLICY: RequestPolicy = RequestPolicy {
    limit: 10,
    window: Duration::seconds(60),
};

/// Verified webhooks per provider (the default of the receiver's configuration): providers
/// retry a 429, so a burst past it arrives later instead of taking every instance.
pub const WEBHOOK_POLICY: RequestPolicy = RequestPolicy {
    limit: 6_000,
    window: Duration::seconds(60),
};

/// What a request does, for its budget: cheap reads, writes, reads that cost many store
/// calls, and the operator's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationClass {
    Read,
    Write,
    ExpensiveRead,
    Operator,
    /// An embedded dashboard's page or data, per embed token.
    EmbedRead,
}

impl OperationClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::ExpensiveRead => "expensive-read",
            Self::Operator => "operator",
            Self::EmbedRead => "embed-read",
        }
    }
}

/// The API's budgets per key and class (per minute by default; configuration, so load runs
/// can raise them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRateLimits {
    pub read: RequestPolicy,
    pub write: RequestPolicy,
    pub expensive_read: RequestPolicy,
    pub operator: RequestPolicy,
    /// Per embed token (a dashboard page and its data).
    pub embed_read: RequestPolicy,
}

impl Default for ApiRateLimits {
    fn default() -> Self {
        let per_minute = |limit| RequestPolicy {
            limit,
            window: Duration::minutes(1),
        };
        Self {
            read: per_minute(600),
            write: per_minute(120),
            expensive_read: per_minute(30),
            operator: per_minute(120),
            embed_read: per_minute(60),
        }
    }
}

impl ApiRateLimits {
    /// Every class at `limit` a minute.
    pub fn per_minute(limit: u32) -> Self {
        let policy = RequestPolicy {
            limit,
            window: Duration::minutes(1),
        };
        Self {
            read: policy,
            write: policy,
            expensive_read: policy,
            operator: policy,
            embed_read: policy,
        }
    }

    pub fn policy(&self, class: OperationClass) -> RequestPolicy {
        match class {
            OperationClass::Read => self.read,
            OperationClass::Write => self.write,
            OperationClass::ExpensiveRead => self.expensive_read,
            OperationClass::Operator => self.operator,
            OperationClass::EmbedRead => self.embed_read,
        }
    }
}

/// A shared counter per scope and window, so the budget holds across every Lambda instance.
#[async_trait]
pub trait RequestCounter: Send + Sync {
    /// Counts `count` requests in window `index` of `scope` if that many still fit under
    /// `limit`: the count after them, or `None` (nothing counted) when they do not. The
    /// counter may be forgotten after `expires`.
    async fn take(
        &self,
        scope: &str,
        index: i64,
        limit: u32,
        count: u32,
        expires: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError>;
}

/// One request's place in its window: what the `RateLimit` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets (at least 1).
    pub reset_seconds: i64,
}

impl RequestPolicy {
    /// `RateLimit-Policy` in the IETF httpapi-ratelimit-headers draft's syntax (a Structured
    /// Field list of named policies): `"write";q=120;w=60`.
    pub fn header(&self, name: &str) -> String {
        format!(
            "\"{name}\";q={};w={}",
            self.limit,
            self.window.whole_seconds()
        )
    }

    /// The window `now` falls in: its index, when the counter may be forgotten, and the
    /// seconds until it resets (at least 1).
    pub fn window_of(&self, now: OffsetDateTime) -> Result<(i64, OffsetDateTime, i64), StoreError> {
        let w = self.window.whole_seconds().max(1);
        let t = now.unix_timestamp();
        let index = t.div_euclid(w);
        let ends = OffsetDateTime::from_unix_timestamp((index + 1) * w)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok((index, ends + self.window, ((index + 1) * w - t).max(1)))
    }

    /// Takes up to `wanted` requests of the window `now` falls in, for a caller that makes
    /// many in a row (one shared write for several): how many it may make now (0: the window
    /// is full) and the window's index. At most two writes: all of `wanted`, else one.
    pub async fn take_up_to(
        &self,
        counter: &dyn RequestCounter,
        scope: &str,
        now: OffsetDateTime,
        wanted: u32,
    ) -> Result<(u32, i64), StoreError> {
        let (index, expires, _) = self.window_of(now)?;
        let wanted = wanted.clamp(1, self.limit.max(1));
        if counter
            .take(scope, index, self.limit, wanted, expires)
            .await?
            .is_some()
        {
            return Ok((wanted, index));
        }
        if wanted > 1
            && counter
                .take(scope, index, self.limit, 1, expires)
                .await?
                .is_some()
        {
            return Ok((1, index));
        }
        Ok((0, index))
    }

    pub async fn check(
        &self,
        counter: &dyn RequestCounter,
        scope: &str,
        now: OffsetDateTime,
    ) -> Result<RateDecision, StoreError> {
        let (index, expires, reset_seconds) = self.window_of(now)?;
        let taken = counter.take(scope, index, self.limit, 1, expires).await?;
        Ok(match taken {
            Some(used) => RateDecision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit.saturating_sub(used),
                reset_seconds,
            },
            None => RateDecision {
                allowed: false,
                limit: self.limit,
                remaining: 0,
                reset_seconds,
            },
        })
    }
}

impl RateDecision {
    /// `RateLimit` in the same draft's syntax: `"write";r=3;t=42` (remaining quota, seconds
    /// until it resets).
    pub fn header(&self, name: &str) -> String {
        format!("\"{name}\";r={};t={}", self.remaining, self.reset_seconds)
    }
}

/// An in-process counter for tests.
#[derive(Debug, Default)]
pub struct MemoryCounter(std::sync::Mutex<std::collections::HashMap<(String, i64), u32>>);

#[async_trait]
impl RequestCounter for MemoryCounter {
    async fn take(
        &self,
        scope: &str,
        index: i64,
        limit: u32,
        count: u32,
        _expires: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let used = map.entry((scope.to_owned(), index)).or_insert(0);
        if used.saturating_add(count) > limit {
            return Ok(None);
        }
        *used += count;
        Ok(Some(*used))
    }
}
