//! The credit wallet on the main table. Per tenant: the wallet (`WALLET`: balance, reserved
//! and `seq`, the number of entries), each entry (`LEDGER#<seq, 12 digits>`), a marker per
//! ledger key (`LEDGERKEY#<key>` → seq) and each reservation (`RESERVATION#<id>`: what it
//! still holds). A change is one transaction of all of them, conditional on the key being new
//! and on `seq` being the one the change was computed from: changes to one wallet are
//! serialised, a lost race is computed again, and a replayed key returns its first entry.

use super::items::*;
use super::store::{DynamoStore, values};
use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::ids::TenantId;
use herald_domain::wallet::{
    Applied, ApplyError, Change, Credits, LedgerEntry, LedgerKey, Wallet, WalletStore,
};
use time::OffsetDateTime;

/// Lost races with other changes to the same wallet before giving up (each is one more read
/// and transaction; a wallet changed this often is contended, not lost).
const RACES: usize = 16;

fn wallet_key(tenant: &TenantId) -> Item {
    key(tenant_pk(tenant), "WALLET")
}

fn entry_sk(seq: i64) -> String {
    format!("LEDGER#{seq:012}")
}

fn marker_key(tenant: &TenantId, key_: &LedgerKey) -> Item {
    key(tenant_pk(tenant), format!("LEDGERKEY#{}", key_.as_str()))
}

fn reservation_key(tenant: &TenantId, reservation: &str) -> Item {
    key(tenant_pk(tenant), format!("RESERVATION#{reservation}"))
}

fn entry_from_item(item: &Item) -> Result<LedgerEntry, StoreError> {
    let f = Fields(item);
    let change: Change = serde_json::from_str(&f.str("change")?)
        .map_err(|e| StoreError::Invalid(format!("stored ledger change: {e}")))?;
    Ok(LedgerEntry {
        key: LedgerKey(f.str("key")?),
        change,
        balance: f.num("balance")?,
        reserved: f.num("reserved")?,
        at: f.time("at")?,
    })
}

fn entry_to_item(tenant: &TenantId, seq: i64, entry: &LedgerEntry) -> Result<Item, StoreError> {
    let change = serde_json::to_string(&entry.change)
        .map_err(|e| StoreError::Invalid(format!("ledger change: {e}")))?;
    let mut item = key(tenant_pk(tenant), entry_sk(seq));
    item.insert("type".into(), s("ledger_entry"));
    item.insert("key".into(), s(entry.key.as_str()));
    item.insert("change".into(), s(change));
    item.insert("balance".into(), n(entry.balance));
    item.insert("reserved".into(), n(entry.reserved));
    item.insert("at".into(), time_n(entry.at));
    Ok(item)
}

impl DynamoStore {
    /// The wallet and its `seq` (strongly consistent).
    async fn wallet_and_seq(&self, tenant: &TenantId) -> Result<(Wallet, i64), StoreError> {
        Ok(match self.get_latest(wallet_key(tenant)).await? {
            None => (Wallet::default(), 0),
            Some(item) => {
                let f = Fields(&item);
                (
                    Wallet {
                        balance: f.num("balance")?,
                        reserved: f.num("reserved")?,
                    },
                    f.num("seq")?,
                )
            }
        })
    }

    /// One attempt at `apply`: `Ok(None)` when a condition failed (a replay or a race).
    async fn try_apply(
        &self,
        tenant: &TenantId,
        key_: &LedgerKey,
        change: &Change,
        at: OffsetDateTime,
    ) -> Result<Option<LedgerEntry>, ApplyError> {
        let (wallet, seq) = self.wallet_and_seq(tenant).await?;
        let reservation = change.reservation();
        let held = match reservation {
            Some(r) => self.reservation(tenant, r).await?,
            None => 0,
        };
        let (after, hold) = wallet.after(held, change)?;
        let next = seq + 1;
        let entry = LedgerEntry {
            key: key_.clone(),
            change: change.clone(),
            balance: after.balance,
            reserved: after.reserved,
            at,
        };
        let mut marker = marker_key(tenant, key_);
        marker.insert("seq".into(), n(next));
        let mut w = wallet_key(tenant);
        w.insert("type".into(), s("wallet"));
        w.insert("balance".into(), n(after.balance));
        w.insert("reserved".into(), n(after.reserved));
        w.insert("seq".into(), n(next));
        let mut items = vec![
            self.tx_put(marker, Some("attribute_not_exists(pk)"), None)?,
            self.tx_put(
                entry_to_item(tenant, next, &entry)?,
                Some("attribute_not_exists(pk)"),
                None,
            )?,
            // `seq` unchanged since the read: nothing else changed the wallet meanwhile.
            match seq {
                0 => self.tx_put(w, Some("attribute_not_exists(pk)"), None)?,
                _ => self.tx_put(w, Some("seq = :seq"), Some(values(vec![(":seq", n(seq))])))?,
            },
        ];
        if let (Some(r), Some(left)) = (reservation, hold) {
            let mut item = reservation_key(tenant, r);
            item.insert("type".into(), s("reservation"));
            item.insert("remaining".into(), n(left));
            // Guarded by the wallet's `seq`: every change to a reservation changes it too.
            items.push(self.tx_put(item, None, None)?);
        }
        Ok(self.transact_conditional(items).await?.then_some(entry))
    }
}

#[async_trait]
impl WalletStore for DynamoStore {
    async fn wallet(&self, tenant: &TenantId) -> Result<Wallet, StoreError> {
        Ok(self.wallet_and_seq(tenant).await?.0)
    }

    async fn reservation(
        &self,
        tenant: &TenantId,
        reservation: &str,
    ) -> Result<Credits, StoreError> {
        match self
            .get_latest(reservation_key(tenant, reservation))
            .await?
        {
            None => Ok(0),
            Some(item) => Fields(&item).num("remaining"),
        }
    }

    async fn entry(
        &self,
        tenant: &TenantId,
        key_: &LedgerKey,
    ) -> Result<Option<LedgerEntry>, StoreError> {
        let Some(marker) = self.get_latest(marker_key(tenant, key_)).await? else {
            return Ok(None);
        };
        let seq = Fields(&marker).num("seq")?;
        let item = self
            .get_latest(key(tenant_pk(tenant), entry_sk(seq)))
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("ledger entry {seq} is missing")))?;
        entry_from_item(&item).map(Some)
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        key_: &LedgerKey,
        change: &Change,
        at: OffsetDateTime,
    ) -> Result<Applied, ApplyError> {
        for _ in 0..RACES {
            if let Some(first) = self.entry(tenant, key_).await? {
                return Ok(Applied::Replay(first));
            }
            if let Some(entry) = self.try_apply(tenant, key_, change, at).await? {
                return Ok(Applied::New(entry));
            }
        }
        Err(StoreError::Unavailable(format!(
            "tenant {tenant}'s wallet kept changing ({RACES} races lost)"
        ))
        .into())
    }

    async fn ledger(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<LedgerEntry>, Option<String>), StoreError> {
        let page = self
            .query_prefix(tenant_pk(tenant), "LEDGER#")
            .backward()
            .page(cursor, limit)
            .await?;
        let entries = page
            .items
            .iter()
            .map(entry_from_item)
            .collect::<Result<_, _>>()?;
        Ok((entries, page.cursor))
    }
}
