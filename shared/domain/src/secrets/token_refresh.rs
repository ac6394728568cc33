//! Refreshing platform access tokens before they expire, with exactly one refresh in flight
//! per account.
//!
//! - A token that expires within `margin` (5 minutes) is refreshed before it is used.
//! - One refresher per account: whoever takes the account's refresh lease (a conditional
//!   write; the lease's expiry is checked in code, never left to a TTL) calls the platform;
//!   everyone else re-reads the account for a short while and uses the new token, or is told
//!   to come back later (a deferral, which never counts toward the dead-letter queue).
//! - The platform refusing the refresh token (`invalid_grant`, revoked) ends the account's
//!   authorisation: it becomes `needs_reauth` (the same path as a refused access token), an
//!   alert goes out, an audit record says why, and its posts fail with a reason a person can
//!   act on. A transient failure (5xx, timeout) is retried, never `needs_reauth`.
//!
//! - Ahead of use: the reconciler refreshes every active account's token that expires within
//!   its (longer) margin on each run ([`TokenRefresh::refresh_ahead`]), so idle accounts keep
//!   working tokens for ingestion and engagement reads too, not only when a post needs one.
//!
//! Tokens stay inside [`SecretString`]s here; nothing below logs one.

use crate::StoreError;
use crate::alerts::{Alert, Alerter};
use crate::audit::AuditEntry;
use crate::clock::{Clock, Entropy};
use crate::ids::{AccountId, TenantId};
use crate::model::{Account, AccountStatus, Platform};
use crate::ports::{AccountStore, AuditLog, PublishStore};
use async_trait::async_trait;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// What a platform's token endpoint returned.
#[derive(Debug, Clone)]
pub struct RefreshedTokens {
    pub access_token: SecretString,
    /// A rotated refresh token; `None`: keep the one stored.
    pub refresh_token: Option<SecretString>,
    /// `None`: the new access token does not expire.
    pub expires_in: Option<time::Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The platform refused the refresh token for good (`invalid_grant`: revoked, expired).
    #[error("the platform refused the refresh token: {0}")]
    Revoked(String),
    /// Worth trying again (5xx, timeout, rate limit).
    #[error("refreshing the token failed for now: {0}")]
    Transient(String),
}

/// A platform's OAuth token endpoint.
#[async_trait]
pub trait TokenRefresher: Send + Sync {
    async fn refresh(
        &self,
        platform: Platform,
        refresh_token: &SecretString,
    ) -> Result<RefreshedTokens, RefreshError>;
}

/// The refresh lease and the refreshed tokens' write.
#[async_trait]
pub trait RefreshLeases: Send + Sync {
    /// Takes the account's refresh lease for `holder` until `until` when no lease is held or
    /// the one held ended before `now`. False: someone else holds it (or the account is gone).
    async fn take_refresh_lease(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Stores the refreshed tokens (sealed) and releases the lease, only while `holder` still
    /// holds it (`Conflict` otherwise). Without a new refresh token the stored one is kept.
    async fn store_refreshed(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        holder: &str,
        tokens: &RefreshedTokens,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Gives the lease up (after a failed refresh), if `holder` still holds it.
    async fn release_refresh_lease(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        holder: &str,
    ) -> Result<(), StoreError>;
}

/// Accounts whose access token expires soon.
#[async_trait]
pub trait ExpiringTokens: Send + Sync {
    /// Active accounts with an access token that expires before `before`.
    async fn expiring_before(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<(TenantId, AccountId)>, StoreError>;
}

/// What one [`TokenRefresh::refresh_ahead`] pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AheadReport {
    /// Accounts whose token expires within the margin.
    pub due: u32,
    pub refreshed: u32,
    /// No refresh token, but still valid for now: kept as it is.
    pub kept: u32,
    /// Another refresh was in flight.
    pub in_flight: u32,
    /// Marked `needs_reauth` (alerted and audited).
    pub reconnect: u32,
    /// Failed for now (the next run tries again).
    pub failed: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct RefreshConfig {
    /// A token expiring within this is refreshed before use.
    pub margin: time::Duration,
    /// How long a refresher holds the lease: longer than one call to the token endpoint.
    pub lease: time::Duration,
    /// A loser re-reads the account this many times, this far apart, before deferring.
    pub polls: u32,
    pub poll_every: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            margin: time::Duration::minutes(5),
            lease: time::Duration::seconds(30),
            polls: 8,
            poll_every: Duration::from_millis(250),
        }
    }
}

/// Whether an account's token can be used now.
#[derive(Debug, Clone)]
pub enum Freshness {
    /// Usable (refreshed if it had to be).
    Ready(Account),
    /// Another refresh is in flight: come back after this long.
    InFlight(Duration),
    /// The account must be reconnected; the reason says so in words a person can act on.
    /// The account was marked `needs_reauth`, alerted and audited.
    Revoked(String),
    /// Refreshing failed for now; try again later.
    Transient(String),
}

#[derive(Clone)]
pub struct TokenRefresh {
    pub leases: Arc<dyn RefreshLeases>,
    pub accounts: Arc<dyn AccountStore>,
    /// Marks an account `needs_reauth` (the path a refused access token takes too).
    pub reauth: Arc<dyn PublishStore>,
    pub audit: Arc<dyn AuditLog>,
    pub refresher: Arc<dyn TokenRefresher>,
    pub alerter: Alerter,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub config: RefreshConfig,
}

crate::debug_fields!(TokenRefresh, config);

/// The reason a post of this account fails with once its authorisation is gone.
pub fn reconnect_reason(account: &Account, why: &str) -> String {
    let platform = account.platform.title();
    let name = match (&account.display_name, account.platform) {
        (Some(n), Platform::X) if !n.starts_with('@') => format!("@{n}"),
        (Some(n), _) => n.clone(),
        (None, _) => account.external_id.clone(),
    };
    format!("the {platform} account {name} needs to be reconnected: {why}")
}

impl TokenRefresh {
    /// True when `account`'s token expires within the margin.
    pub fn due(&self, account: &Account, now: OffsetDateTime) -> bool {
        account
            .token_expires_at
            .is_some_and(|at| at <= now + self.config.margin)
    }

    /// The account with a token that works for at least the margin, refreshing it first if
    /// it must (one refresher per account).
    pub async fn ensure_fresh(&self, account: Account) -> Freshness {
        let now = self.clock.now();
        if account.status != AccountStatus::Active || !self.due(&account, now) {
            return Freshness::Ready(account);
        }
        let Some(refresh_token) = account.refresh_token.clone() else {
            if account.token_expires_at.is_some_and(|at| at > now) {
                // Still works, just not for long, and cannot be refreshed: use it.
                return Freshness::Ready(account);
            }
            return self
                .revoked(
                    &account,
                    "its access token expired and the platform gave Herald no refresh token",
                    None,
                )
                .await;
        };
        let holder = self.entropy.token();
        let until = now + self.config.lease;
        match self
            .leases
            .take_refresh_lease(&account.tenant_id, &account.id, &holder, now, until)
            .await
        {
            Ok(true) => {}
            Ok(false) => return self.wait_for_other(account).await,
            Err(e) => {
                tracing::warn!(error = %e, "taking the token refresh lease failed");
                return Freshness::Transient(format!("taking the refresh lease failed: {e}"));
            }
        }
        // The account was read before the lease: another holder may have refreshed it since
        // (and rotated the refresh token this copy holds). Read it again under the lease.
        let (account, refresh_token) = match self
            .accounts
            .get_account(&account.tenant_id, &account.id)
            .await
        {
            Ok(Some(current))
                if !self.due(&current, now) || current.status != AccountStatus::Active =>
            {
                self.release(&current, &holder).await;
                return Freshness::Ready(current);
            }
            Ok(Some(current)) => {
                let token = current.refresh_token.clone().unwrap_or(refresh_token);
                (current, token)
            }
            Ok(None) => {
                self.release(&account, &holder).await;
                return Freshness::Ready(account);
            }
            Err(e) => {
                self.release(&account, &holder).await;
                return Freshness::Transient(format!("re-reading the account failed: {e}"));
            }
        };
        tracing::info!(platform = %account.platform, "refreshing the account's access token");
        match self
            .refresher
            .refresh(account.platform, &refresh_token)
            .await
        {
            Ok(tokens) => {
                let now = self.clock.now();
                let expires_at = tokens.expires_in.map(|d| now + d);
                if let Err(e) = self
                    .leases
                    .store_refreshed(
                        &account.tenant_id,
                        &account.id,
                        &holder,
                        &tokens,
                        expires_at,
                        now,
                    )
                    .await
                {
                    // The new tokens are lost with this error; a rotated refresh token may
                    // have invalidated the stored one, which the next refresh will report.
                    tracing::error!(error = %e, "storing the refreshed tokens failed");
                    return Freshness::Transient(format!(
                        "storing the refreshed token failed: {e}"
                    ));
                }
                let mut account = account;
                account.access_token = tokens.access_token;
                if tokens.refresh_token.is_some() {
                    account.refresh_token = tokens.refresh_token;
                }
                account.token_expires_at = expires_at;
                account.updated_at = now;
                Freshness::Ready(account)
            }
            Err(RefreshError::Transient(why)) => {
                tracing::warn!(reason = %why, "refreshing the access token failed; will retry");
                self.release(&account, &holder).await;
                Freshness::Transient(format!("refreshing the account's token failed: {why}"))
            }
            Err(RefreshError::Revoked(why)) => {
                self.release(&account, &holder).await;
                self.revoked(
                    &account,
                    "its authorisation was revoked (the platform refused the refresh token)",
                    Some(why),
                )
                .await
            }
        }
    }

    /// Refreshes every active account's token that expires within the margin, ahead of any
    /// use. One account failing does not stop the others.
    pub async fn refresh_ahead(
        &self,
        expiring: &dyn ExpiringTokens,
    ) -> Result<AheadReport, StoreError> {
        let now = self.clock.now();
        let mut report = AheadReport::default();
        for (tenant, id) in expiring.expiring_before(now + self.config.margin).await? {
            report.due += 1;
            let account = match self.accounts.get_account(&tenant, &id).await {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading an account to refresh failed");
                    report.failed += 1;
                    continue;
                }
            };
            if account.platform == Platform::Facebook {
                // Page tokens are not refreshable: one that expires is the publisher's to
                // report when a post needs it, not a reason to cut the account off early.
                report.kept += 1;
                continue;
            }
            let before = account.token_expires_at;
            match self.ensure_fresh(account).await {
                Freshness::Ready(a) if a.token_expires_at != before => report.refreshed += 1,
                Freshness::Ready(_) => report.kept += 1,
                Freshness::InFlight(_) => report.in_flight += 1,
                Freshness::Revoked(_) => report.reconnect += 1,
                Freshness::Transient(_) => report.failed += 1,
            }
        }
        Ok(report)
    }

    async fn release(&self, account: &Account, holder: &str) {
        if let Err(e) = self
            .leases
            .release_refresh_lease(&account.tenant_id, &account.id, holder)
            .await
        {
            // The lease ends by itself.
            tracing::warn!(error = %e, "releasing the token refresh lease failed");
        }
    }

    async fn wait_for_other(&self, account: Account) -> Freshness {
        for _ in 0..self.config.polls {
            self.clock.sleep(self.config.poll_every).await;
            match self
                .accounts
                .get_account(&account.tenant_id, &account.id)
                .await
            {
                Ok(Some(a)) if a.status != AccountStatus::Active => return Freshness::Ready(a),
                Ok(Some(a)) if !self.due(&a, self.clock.now()) => return Freshness::Ready(a),
                Ok(Some(_)) => {}
                Ok(None) => return Freshness::Ready(account),
                Err(e) => tracing::warn!(error = %e, "re-reading the account failed"),
            }
        }
        tracing::info!("another refresh of the account's token is in flight; deferred");
        Freshness::InFlight(
            Duration::try_from(self.config.lease)
                .unwrap_or(Duration::from_secs(30))
                .min(Duration::from_secs(30)),
        )
    }

    /// `needs_reauth`, an alert and an audit record; the reason for its posts.
    async fn revoked(
        &self,
        account: &Account,
        why: &str,
        platform_says: Option<String>,
    ) -> Freshness {
        let now = self.clock.now();
        let (tenant, id) = (&account.tenant_id, &account.id);
        tracing::warn!(platform = %account.platform, "the account's authorisation is gone; it needs to be reconnected");
        if let Err(e) = self.reauth.mark_needs_reauth(tenant, id, now).await {
            tracing::warn!(error = %e, "marking the account for reconnection failed");
        }
        let entry = AuditEntry {
            tenant_id: tenant.clone(),
            entity: format!("account:{id}"),
            action: "account.needs_reauth".into(),
            actor: "system:token-refresh".into(),
            old: Some(serde_json::json!({"status": account.status.as_str()})),
            new: Some(serde_json::json!({
                "status": AccountStatus::NeedsReauth.as_str(),
                "reason": why,
                "platform_error": platform_says,
            })),
            ip: None,
            user_agent: None,
            at: now,
        };
        if let Err(e) = self.audit.append(entry).await {
            tracing::warn!(error = %e, "auditing the account's lost authorisation failed");
        }
        // Same key as a refused access token: one alert per account per window.
        self.alerter
            .raise(Alert {
                key: format!("token_invalid:{tenant}:{id}"),
                title: format!("{} account needs to be reconnected", account.platform),
                detail: format!(
                    "tenant {tenant}, account {id}: {why}; its posts fail until it is reconnected"
                ),
            })
            .await;
        Freshness::Revoked(reconnect_reason(account, why))
    }
}
