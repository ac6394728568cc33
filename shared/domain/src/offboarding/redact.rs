//! Personal data out of a kept audit log, with every chain still verifying.
//!
//! Removed: the client's address (`ip`) and user agent, and in the old and new values every
//! free-text field a person typed or that names a person or their accounts (names, reasons,
//! texts, file names, e-mail addresses, phone numbers, platform account ids, display names),
//! replaced by `"[redacted]"` so a reader sees that something was there. Kept: who acted (an
//! API key id, a function, an operator), what, on which entity, when, and every other value
//! (statuses, ids Herald made, counts).
//!
//! A record's hash covers those fields, so a redacted record cannot keep its hash. Each chain
//! is re-hashed from its first record (same sequence numbers, times and order) and its head
//! moved; the erasure's own audit record, in the tenant's log and in the operators' log,
//! carries every chain's head from before (a re-anchoring): the old heads stay provable from
//! the operators' untouched chain, the redacted log verifies on its own, and the log is checked
//! before it is redacted, so the redaction never launders a log that had been tampered with.

use crate::audit::{AuditEntry, AuditRecord, ChainHead};
use serde_json::Value;

/// Keys whose values are personal, wherever they appear in `old` or `new`.
pub const PERSONAL_KEYS: &[&str] = &[
    "name",
    "display_name",
    "reason",
    "text",
    "file_name",
    "email",
    "phone",
    "external_id",
    "note",
    "comment",
];

pub const REDACTED: &str = "[redacted]";

pub fn redact_entry(entry: &AuditEntry) -> AuditEntry {
    AuditEntry {
        ip: None,
        user_agent: None,
        old: entry.old.as_ref().map(redact_value),
        new: entry.new.as_ref().map(redact_value),
        ..entry.clone()
    }
}

fn redact_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if PERSONAL_KEYS.contains(&k.as_str()) && !v.is_null() {
                        Value::String(REDACTED.into())
                    } else {
                        redact_value(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_value).collect()),
        other => other.clone(),
    }
}

/// One chain (records of one entity, in any order) redacted and re-hashed from the start.
pub fn rechain(records: &[AuditRecord]) -> Vec<AuditRecord> {
    let mut sorted: Vec<&AuditRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.seq);
    let mut head = ChainHead::default();
    sorted
        .into_iter()
        .map(|r| {
            let record = AuditRecord::chain(redact_entry(&r.entry), &head);
            head = record.head();
            record
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::verify;
    use crate::ids::TenantId;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn entry(new: Value) -> AuditEntry {
        AuditEntry {
            tenant_id: TenantId("ten_1".into()),
            entity: "api_key:key_1".into(),
            action: "api_key.issued".into(),
            actor: "key:key_0".into(),
            old: None,
            new: Some(new),
            ip: Some("203.0.113.7".into()),
            user_agent: Some("Mozilla/5.0".into()),
            at: datetime!(2026-01-01 00:00:00 UTC),
        }
    }

    #[test]
    fn personal_fields_go_and_the_rest_stays() {
        let e = redact_entry(&entry(serde_json::json!({
            "name": "Ada's laptop", "role": "admin",
            "nested": [{"reason": "fired", "status": "revoked", "text": null}]
        })));
        assert_eq!((e.ip, e.user_agent), (None, None));
        assert_eq!(
            e.new.unwrap(),
            serde_json::json!({"name": REDACTED, "role": "admin",
                "nested": [{"reason": REDACTED, "status": "revoked", "text": null}]})
        );
        assert_eq!(e.actor, "key:key_0");
    }

    #[test]
    fn a_redacted_chain_verifies_and_keeps_its_order() {
        let mut head = ChainHead::default();
        let mut records = Vec::new();
        for n in 0..3 {
            let r = AuditRecord::chain(entry(serde_json::json!({"name": format!("k{n}")})), &head);
            head = r.head();
            records.push(r);
        }
        records.reverse();
        let redacted = rechain(&records);
        assert_eq!(
            redacted.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let heads = BTreeMap::from([("api_key:key_1".to_owned(), redacted[2].head())]);
        assert_eq!(verify(&redacted, &heads), vec![]);
        // The old head no longer matches: the chain was re-anchored, not silently kept.
        assert_ne!(redacted[2].hash, head.hash);
    }
}
