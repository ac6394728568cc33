//! The tenant's credit wallet: its balance (any key of the tenant) and its ledger (admins:
//! it shows payments and grants).

use crate::auth::Principal;
use crate::error::Problem;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use herald_domain::wallet::{Change, LedgerEntry};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// Credits: whole units.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletView {
    /// Spendable credits; negative only as debt after a refunded or disputed top-up.
    pub balance: i64,
    /// Credits held for campaigns being sent.
    pub reserved: i64,
    /// What a refund or dispute left owing; nothing can be reserved until it is covered.
    pub debt: i64,
}

/// One change to the wallet, as written (never edited).
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryView {
    /// Unique per tenant: `topup:<billing event>`, `grant:<key>`, `reserve:<reservation>`, ...
    pub key: String,
    /// `top_up`, `grant`, `reserve`, `debit`, `release` or `reverse`.
    pub kind: String,
    pub credits: i64,
    /// The wallet right after this entry.
    pub balance: i64,
    pub reserved: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The billing event of a top-up or its reversal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// What a top-up paid: lower-case currency and minor units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// Why an operator granted credits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<String>,
}

impl From<&LedgerEntry> for LedgerEntryView {
    fn from(e: &LedgerEntry) -> Self {
        let mut view = LedgerEntryView {
            key: e.key.as_str().to_owned(),
            kind: e.change.kind().to_owned(),
            credits: e.change.credits(),
            balance: e.balance,
            reserved: e.reserved,
            at: e.at,
            event_id: None,
            currency: None,
            amount: None,
            reason: None,
            reservation: None,
        };
        match &e.change {
            Change::TopUp {
                event_id,
                currency,
                amount,
                ..
            } => {
                view.event_id = Some(event_id.clone());
                view.currency = Some(currency.clone());
                view.amount = Some(*amount);
            }
            Change::Grant { reason, .. } => view.reason = Some(reason.clone()),
            Change::Reverse { event_id, .. } => view.event_id = Some(event_id.clone()),
            Change::Reserve { reservation, .. }
            | Change::Debit { reservation, .. }
            | Change::Release { reservation, .. } => view.reservation = Some(reservation.clone()),
        }
        view
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerList {
    pub items: Vec<LedgerEntryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 700)]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<usize>,
}

/// The tenant's credits.
#[utoipa::path(get, path = "/v1/wallet", tag = "wallet",
    responses((status = 200, body = WalletView), (status = 401, body = Problem)))]
pub async fn get_wallet(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Json<WalletView>, ApiError> {
    let wallet = state.wallets.wallet(&principal.tenant_id).await?;
    Ok(Json(WalletView {
        balance: wallet.balance,
        reserved: wallet.reserved,
        debt: wallet.debt(),
    }))
}

/// Every change to the wallet, newest first (admin).
#[utoipa::path(get, path = "/v1/wallet/ledger", tag = "wallet", params(LedgerQuery),
    responses((status = 200, body = LedgerList), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn get_ledger(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<LedgerQuery>, QueryRejection>,
) -> Result<Json<LedgerList>, ApiError> {
    principal.require(principal.role.is_admin(), "read the wallet's ledger")?;
    let Query(q) = query?;
    let (limit, cursor) = crate::cursor::page_params(q.limit, 50, q.cursor.as_deref(), |c| {
        !c.is_empty() && c.len() <= 20 && c.bytes().all(|b| b.is_ascii_digit())
    })?;
    let (entries, next) = state
        .wallets
        .ledger(&principal.tenant_id, cursor.as_deref(), limit)
        .await?;
    Ok(Json(LedgerList {
        items: entries.iter().map(LedgerEntryView::from).collect(),
        next_cursor: next.as_deref().map(crate::cursor::encode),
    }))
}
