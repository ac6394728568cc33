//! Verified billing events applied to the wallet (Stripe's event shapes):
//!
//! - `payment_intent.succeeded` tops up the tenant named by the payment's
//!   `metadata.herald_tenant`, by the price table's credits for `amount_received` in
//!   `currency`, once per payment intent;
//! - `charge.refunded` and `charge.dispute.created` reverse the top-up of the charge's
//!   `payment_intent` (whole: partial refunds reverse it all), once; the balance may go
//!   negative as debt. A reversal that arrives before its top-up fails, so the queue keeps it
//!   and delivers it again.
//!
//! Anything else, an unknown tenant or an unpriced amount, changes nothing (and is logged).

use super::InboundEvent;
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::ports::TenantStore;
use crate::wallet::{Payment, WalletError, Wallets};
use serde_json::Value;
use std::sync::Arc;

/// What a billing event asks of the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingChange {
    TopUp {
        tenant: TenantId,
        payment: Payment,
    },
    Reverse {
        tenant: TenantId,
        payment_intent: String,
    },
}

/// Reads the change a billing event asks for; `None` for events that move no credits or lack
/// what one needs.
pub fn billing_change(body: &Value) -> Option<BillingChange> {
    let object = &body["data"]["object"];
    let tenant = object["metadata"]["herald_tenant"]
        .as_str()
        .filter(|t| crate::ids::is_valid_id(t))
        .map(|t| TenantId(t.to_owned()))?;
    match body["type"].as_str()? {
        "payment_intent.succeeded" => Some(BillingChange::TopUp {
            tenant,
            payment: Payment {
                event_id: object["id"].as_str()?.to_owned(),
                currency: object["currency"].as_str()?.to_owned(),
                amount: object["amount_received"].as_i64()?,
            },
        }),
        "charge.refunded" | "charge.dispute.created" => Some(BillingChange::Reverse {
            tenant,
            payment_intent: object["payment_intent"].as_str()?.to_owned(),
        }),
        _ => None,
    }
}

/// The wallet side of the webhook processor.
pub struct Billing {
    pub wallets: Wallets,
    pub tenants: Arc<dyn TenantStore>,
}

crate::debug_fields!(Billing);

impl Billing {
    /// Applies the event's change (idempotent by payment intent): `true` when it changed the
    /// wallet now. Errors that a later delivery may cure (the store, a reversal ahead of its
    /// top-up) are returned for the queue to retry.
    pub async fn apply(&self, event: &InboundEvent) -> Result<bool, StoreError> {
        let Ok(body) = serde_json::from_str::<Value>(&event.body) else {
            return Ok(false);
        };
        let Some(change) = billing_change(&body) else {
            return Ok(false);
        };
        let tenant = match &change {
            BillingChange::TopUp { tenant, .. } | BillingChange::Reverse { tenant, .. } => tenant,
        };
        if self.tenants.get_tenant(tenant).await?.is_none() {
            tracing::error!(event_id = %event.event_id, "a billing event names no tenant of this deployment");
            return Ok(false);
        }
        let result = match &change {
            BillingChange::TopUp { tenant, payment } => self.wallets.top_up(tenant, payment).await,
            BillingChange::Reverse {
                tenant,
                payment_intent,
            } => self.wallets.reverse(tenant, payment_intent).await,
        };
        match result {
            Ok(applied) => Ok(matches!(applied, crate::wallet::Applied::New(_))),
            Err(WalletError::Store(e)) => Err(e),
            Err(WalletError::TopUpNotFound(id)) => Err(StoreError::Unavailable(format!(
                "the top-up of payment {id} has not arrived yet"
            ))),
            Err(e) => {
                tracing::error!(event_id = %event.event_id, error = %e, "a billing event was not applied");
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::inbound::Scheme;
    use crate::memory::MemoryStore;
    use crate::model::{Tenant, TenantSettings};
    use crate::wallet::memory::MemoryWallets;
    use crate::wallet::{PriceTable, WalletStore};
    use serde_json::json;
    use time::macros::datetime;

    fn event(kind: &str, object: Value) -> InboundEvent {
        InboundEvent {
            provider: "billing".into(),
            scheme: Scheme::Stripe,
            event_id: format!("evt_{kind}"),
            received_at: datetime!(2026-12-04 12:00 UTC),
            correlation_id: "c".into(),
            body: json!({"id": "evt", "type": kind, "data": {"object": object}}).to_string(),
        }
    }

    async fn billing() -> (Billing, Arc<MemoryWallets>) {
        let store = Arc::new(MemoryStore::new());
        store
            .create_tenant(&Tenant {
                id: TenantId("ten_a".into()),
                name: "a".into(),
                settings: TenantSettings::default(),
                created_at: datetime!(2026-12-04 12:00 UTC),
                suspended: None,
            })
            .await
            .unwrap();
        let wallets = Arc::new(MemoryWallets::new());
        let billing = Billing {
            wallets: Wallets {
                store: wallets.clone(),
                audit: store.clone(),
                clock: Arc::new(FakeClock::new(datetime!(2026-12-04 12:00 UTC))),
                prices: PriceTable::parse(r#"{"usd": {"1000": 100}}"#).unwrap(),
                low_balance: None,
            },
            tenants: store,
        };
        (billing, wallets)
    }

    fn paid(pi: &str, amount: i64, tenant: &str) -> Value {
        json!({"id": pi, "amount_received": amount, "currency": "usd",
               "metadata": {"herald_tenant": tenant}})
    }

    #[test]
    fn only_payments_and_refunds_naming_a_tenant_move_credits() {
        let body = |kind: &str, object: Value| json!({"type": kind, "data": {"object": object}});
        assert!(matches!(
            billing_change(&body(
                "payment_intent.succeeded",
                paid("pi_1", 1000, "ten_a")
            )),
            Some(BillingChange::TopUp { .. })
        ));
        for (kind, object) in [
            ("invoice.paid", paid("pi_1", 1000, "ten_a")),
            (
                "payment_intent.succeeded",
                json!({"id": "pi_1", "amount_received": 1000, "currency": "usd"}),
            ),
            ("payment_intent.succeeded", paid("pi_1", 1000, "ten#a")),
            (
                "charge.refunded",
                json!({"metadata": {"herald_tenant": "ten_a"}}),
            ),
        ] {
            assert_eq!(
                billing_change(&body(kind, object.clone())),
                None,
                "{kind} {object}"
            );
        }
    }

    #[tokio::test]
    async fn a_payment_tops_up_once_a_refund_reverses_it_and_a_refund_ahead_waits() {
        let (billing, wallets) = billing().await;
        let tenant = TenantId("ten_a".into());
        let refund = event(
            "charge.refunded",
            json!({"payment_intent": "pi_1", "metadata": {"herald_tenant": "ten_a"}}),
        );
        assert!(
            billing.apply(&refund).await.is_err(),
            "a refund before its payment is retried later"
        );
        let payment = event("payment_intent.succeeded", paid("pi_1", 1000, "ten_a"));
        assert!(billing.apply(&payment).await.unwrap());
        assert!(!billing.apply(&payment).await.unwrap(), "once");
        assert_eq!(wallets.wallet(&tenant).await.unwrap().balance, 100);
        assert!(billing.apply(&refund).await.unwrap());
        assert_eq!(wallets.wallet(&tenant).await.unwrap().balance, 0);
        // Unpriced, or naming no tenant: kept, nothing credited.
        for e in [
            event("payment_intent.succeeded", paid("pi_2", 999, "ten_a")),
            event("payment_intent.succeeded", paid("pi_3", 1000, "ten_nobody")),
        ] {
            assert!(!billing.apply(&e).await.unwrap());
        }
        assert_eq!(wallets.wallet(&tenant).await.unwrap().balance, 0);
        assert_eq!(
            wallets
                .wallet(&TenantId("ten_nobody".into()))
                .await
                .unwrap()
                .balance,
            0
        );
    }
}
