//! `herald account reset-circuit`, `herald app-block clear`, `herald streams retry`: the
//! operator resets, through the same domain service as the API's routes (one conditional
//! write each, audited with `cli:<user>` as the actor).

use clap::Subcommand;
use herald_aws::dynamo::DynamoStore;
use herald_domain::clock::SystemClock;
use herald_domain::dead_letters::Operator;
use herald_domain::ids::{AccountId, Platform, TenantId};
use herald_domain::ingest::StreamKey;
use herald_domain::resets::{ResetService, breaker_json};
use serde_json::{Value, json};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Close an account's circuit and lift the platform's block on it; prints the circuit
    /// before and after. Fails when it is not open or blocked, or tripped again meanwhile.
    ResetCircuit {
        #[arg(long)]
        tenant: String,
        /// The account id (`acc_…`).
        account: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppBlockCommand {
    /// Lift a platform app's block (deployment-wide); prints when it would have ended.
    Clear {
        #[arg(value_parser = ["x", "facebook", "linkedin", "mastodon", "bluesky", "instagram"])]
        platform: String,
    },
}

fn service(store: &DynamoStore) -> ResetService {
    let store = Arc::new(store.clone());
    ResetService {
        circuits: store.clone(),
        app_blocks: store.clone(),
        streams: store.clone(),
        audit: store,
        clock: Arc::new(SystemClock),
    }
}

pub(crate) fn by() -> Operator {
    Operator {
        actor: crate::actor(),
        ip: None,
        user_agent: Some(concat!("herald-cli/", env!("CARGO_PKG_VERSION")).into()),
    }
}

fn when(t: Option<time::OffsetDateTime>) -> Option<String> {
    t.and_then(|t| t.format(&Rfc3339).ok())
}

pub async fn account(store: &DynamoStore, command: AccountCommand) -> Result<Value, String> {
    let AccountCommand::ResetCircuit { tenant, account } = command;
    let reset = service(store)
        .reset_circuit(&TenantId(tenant), &AccountId(account), &by())
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({
        "account_id": reset.account_id.as_str(),
        "previous": breaker_json(&reset.before),
        "circuit": breaker_json(&reset.after),
    }))
}

pub async fn app_block(store: &DynamoStore, command: AppBlockCommand) -> Result<Value, String> {
    let AppBlockCommand::Clear { platform } = command;
    let platform = Platform::parse(&platform).ok_or("no such platform")?;
    let lifted = service(store)
        .lift_app_block(platform, &by())
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({"platform": platform.as_str(), "previous_until": when(Some(lifted.until))}))
}

pub async fn retry_stream(
    store: &DynamoStore,
    tenant: String,
    key: String,
) -> Result<Value, String> {
    let retried = service(store)
        .retry_stream(&TenantId(tenant), &StreamKey(key), &by())
        .await
        .map_err(|e| e.to_string())?;
    let state = retried.after.state.as_ref();
    Ok(json!({
        "key": retried.after.key.as_str(),
        "next_due": when(state.and_then(|s| s.next_due)),
        "deferred_until": when(state.and_then(|s| s.deferred_until)),
    }))
}
