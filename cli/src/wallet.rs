//! `herald wallet`: a tenant's credits, and an operator's grant (once per key, audited in
//! the tenant's and the operators' logs).

use clap::Subcommand;
use herald_aws::dynamo::DynamoStore;
use herald_domain::clock::SystemClock;
use herald_domain::ids::TenantId;
use herald_domain::wallet::{Applied, PriceTable, WalletStore, Wallets};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// The tenant's balance, reserved credits and debt.
    Show {
        #[arg(long)]
        tenant: String,
    },
    /// Grant credits; `--key` makes a retry safe (the same key grants once).
    Grant {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        credits: i64,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        key: String,
    },
}

pub async fn run(store: &DynamoStore, command: WalletCommand) -> Result<Value, String> {
    match command {
        WalletCommand::Show { tenant } => {
            let w = store
                .wallet(&TenantId(tenant))
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({"balance": w.balance, "reserved": w.reserved, "debt": w.debt()}))
        }
        WalletCommand::Grant {
            tenant,
            credits,
            reason,
            key,
        } => {
            let tenant = TenantId(tenant);
            // Never create a wallet for a tenant that does not exist.
            herald_domain::ports::TenantStore::get_tenant(store, &tenant)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no tenant {tenant}"))?;
            let store = Arc::new(store.clone());
            let wallets = Wallets {
                store: store.clone(),
                audit: store,
                clock: Arc::new(SystemClock),
                prices: PriceTable::default(),
                low_balance: None,
            };
            let applied = wallets
                .grant(&tenant, &crate::resets::by(), &key, credits, &reason)
                .await
                .map_err(|e| e.to_string())?;
            let replay = matches!(applied, Applied::Replay(_));
            let entry = applied.into_entry();
            Ok(
                json!({"granted": entry.change.credits(), "balance": entry.balance,
                      "replay": replay}),
            )
        }
    }
}
