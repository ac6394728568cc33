//! The audit log: who did what to which entity, when, from where, with the old and new
//! values. Append-only and tamper-evident: the records of each (tenant, entity) form a hash
//! chain (each record's hash covers its content and the previous record's hash), and the
//! chain's head (last sequence number and hash) is kept apart from the records. `verify`
//! recomputes every chain against its head, so an altered, removed or reordered record is
//! found. (Someone who can rewrite both the records and the heads can forge a consistent log;
//! the records' store grants no update or delete to any function.)

use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The hash before the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub tenant_id: TenantId,
    /// `post:<id>`, `variant:<post>:<account>`, `account:<id>`, `crisis`, `dead_letter:<id>`...
    pub entity: String,
    /// `post.approved`, `publish.attempted`, `crisis.started`, `dead_letter.requeued`...
    pub action: String,
    /// `key:<api key id>`, `system:<function>`, `cli`.
    pub actor: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Where a chain stands: its last sequence number (0 before the first record) and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The record that follows `head` in its chain.
    pub fn chain(entry: AuditEntry, head: &ChainHead) -> Self {
        let mut record = Self {
            entry,
            seq: head.seq + 1,
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }

    /// The head once this record is appended.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }

    /// SHA-256 over every field but the hash itself, each length-prefixed, times in epoch
    /// milliseconds (what the store keeps) and JSON values in serde_json's canonical order.
    pub fn compute_hash(&self) -> String {
        let e = &self.entry;
        let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
        let (old, new) = (json(&e.old), json(&e.new));
        let at = crate::clock::epoch_millis(e.at).to_string();
        let seq = self.seq.to_string();
        crate::secrets::secret::sha256_hex(&[
            e.tenant_id.as_str().as_bytes(),
            e.entity.as_bytes(),
            seq.as_bytes(),
            e.action.as_bytes(),
            e.actor.as_bytes(),
            old.as_bytes(),
            new.as_bytes(),
            e.ip.as_deref().unwrap_or_default().as_bytes(),
            e.user_agent.as_deref().unwrap_or_default().as_bytes(),
            at.as_bytes(),
            self.prev_hash.as_bytes(),
        ])
    }
}

/// Something `verify` found wrong, in words an operator can follow up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub entity: String,
    pub seq: Option<u64>,
    pub problem: String,
}

/// Checks every chain of one tenant: each record's hash, the links between records, that the
/// sequence numbers run 1, 2, 3... without a gap, and that each chain ends at its head.
pub fn verify(records: &[AuditRecord], heads: &BTreeMap<String, ChainHead>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut chains: BTreeMap<&str, Vec<&AuditRecord>> = BTreeMap::new();
    for r in records {
        chains.entry(r.entry.entity.as_str()).or_default().push(r);
    }
    let mut found = |entity: &str, seq: Option<u64>, problem: String| {
        findings.push(Finding {
            entity: entity.to_owned(),
            seq,
            problem,
        });
    };
    for (entity, mut chain) in chains.iter().map(|(e, c)| (*e, c.clone())) {
        chain.sort_by_key(|r| r.seq);
        let mut expected = ChainHead::default();
        for r in chain {
            if r.hash != r.compute_hash() {
                found(
                    entity,
                    Some(r.seq),
                    "the record was altered (its hash does not match its content)".into(),
                );
            }
            if r.seq != expected.seq + 1 {
                found(
                    entity,
                    Some(r.seq),
                    format!("records {}..{} are missing", expected.seq + 1, r.seq - 1),
                );
            } else if r.prev_hash != expected.hash {
                found(
                    entity,
                    Some(r.seq),
                    "the record does not link to the one before it".into(),
                );
            }
            expected = r.head();
        }
        match heads.get(entity) {
            Some(head) if *head == expected => {}
            Some(head) => found(
                entity,
                Some(head.seq),
                format!(
                    "the chain ends at record {} but its head says {}: records were removed or altered",
                    expected.seq, head.seq
                ),
            ),
            None => found(entity, None, "the chain has no head".into()),
        }
    }
    for (entity, head) in heads {
        if head.seq > 0 && !chains.contains_key(entity.as_str()) {
            found(
                entity,
                Some(head.seq),
                format!("all {} records are missing", head.seq),
            );
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry(entity: &str, action: &str) -> AuditEntry {
        AuditEntry {
            tenant_id: TenantId("ten_1".into()),
            entity: entity.into(),
            action: action.into(),
            actor: "key:key_1".into(),
            old: None,
            new: Some(serde_json::json!({"status": "approved"})),
            ip: Some("203.0.113.7".into()),
            user_agent: Some("curl/8".into()),
            at: datetime!(2026-01-01 00:00:00 UTC),
        }
    }

    fn log() -> (Vec<AuditRecord>, BTreeMap<String, ChainHead>) {
        let mut heads = BTreeMap::new();
        let mut records = Vec::new();
        for (entity, action) in [
            ("post:1", "a"),
            ("post:1", "b"),
            ("post:2", "a"),
            ("post:1", "c"),
        ] {
            let head: &mut ChainHead = heads.entry(entity.to_owned()).or_default();
            let r = AuditRecord::chain(entry(entity, action), head);
            *head = r.head();
            records.push(r);
        }
        (records, heads)
    }

    #[test]
    fn an_intact_log_verifies() {
        let (records, heads) = log();
        assert_eq!(verify(&records, &heads), vec![]);
    }

    #[test]
    fn an_altered_record_is_found() {
        let (mut records, heads) = log();
        records[1].entry.new = Some(serde_json::json!({"status": "rejected"}));
        let f = verify(&records, &heads);
        assert_eq!(
            (f[0].entity.as_str(), f[0].seq),
            ("post:1", Some(2)),
            "{f:?}"
        );
    }

    #[test]
    fn a_removed_record_is_found_in_the_middle_and_at_the_end() {
        let (records, heads) = log();
        let without = |i: usize| {
            let mut r = records.clone();
            r.remove(i);
            verify(&r, &heads)
        };
        assert!(
            without(1).iter().any(|f| f.problem.contains("missing")),
            "middle"
        );
        assert!(
            without(3).iter().any(|f| f.problem.contains("head says 3")),
            "last"
        );
        assert!(
            without(2)
                .iter()
                .any(|f| f.problem.contains("all 1 records")),
            "only"
        );
    }

    #[test]
    fn a_rewritten_link_is_found_even_with_a_fresh_hash() {
        let (mut records, heads) = log();
        records[1].prev_hash = GENESIS.into();
        records[1].hash = records[1].compute_hash();
        assert!(!verify(&records, &heads).is_empty());
    }
}
