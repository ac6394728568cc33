//! The wallet through the API: the balance for any key of the tenant, the ledger for admins
//! only, each tenant its own.

use super::*;
use herald_domain::ids::TenantId;
use herald_domain::wallet::{Change, LedgerKey, WalletStore};

#[tokio::test]
async fn the_wallet_and_its_ledger_are_the_tenants_own() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let b = api.tenant(false).await;
    let (s, _, v) = api.get("/v1/wallet", &t.key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"balance": 0, "reserved": 0, "debt": 0}));

    let tenant = TenantId(t.id.clone());
    let at = time::OffsetDateTime::now_utc();
    for (key, change) in [
        (
            LedgerKey::top_up("evt_1"),
            Change::TopUp {
                event_id: "evt_1".into(),
                currency: "usd".into(),
                amount: 1000,
                credits: 100,
            },
        ),
        (
            LedgerKey::reserve("camp_1"),
            Change::Reserve {
                reservation: "camp_1".into(),
                credits: 30,
            },
        ),
        (
            LedgerKey::grant("g1"),
            Change::Grant {
                operator: "operator:alice".into(),
                reason: "welcome".into(),
                credits: 5,
            },
        ),
    ] {
        api.wallets.apply(&tenant, &key, &change, at).await.unwrap();
    }
    let (_, _, v) = api.get("/v1/wallet", &t.key).await;
    assert_eq!(v, json!({"balance": 75, "reserved": 30, "debt": 0}));
    let (_, _, v) = api.get("/v1/wallet", &b.key).await;
    assert_eq!(v["balance"], 0, "another tenant's wallet is its own");

    let (_, _, viewer) = api
        .post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    let viewer = viewer["key"].as_str().unwrap().to_owned();
    let (s, _, v) = api.get("/v1/wallet", &viewer).await;
    assert_eq!((s, &v["balance"]), (StatusCode::OK, &json!(75)));
    let (s, h, v) = api.get("/v1/wallet/ledger", &viewer).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer sees no payments: {v}");
    assert_problem(&h, &v, s);

    let (s, _, page) = api.get("/v1/wallet/ledger?limit=2", &t.key).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let kinds: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["grant", "reserve"], "newest first");
    assert_eq!(page["items"][0]["reason"], "welcome");
    assert!(page["items"][0].get("operator").is_none(), "{page}");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, _, rest) = api
        .get(
            &format!("/v1/wallet/ledger?limit=2&cursor={cursor}"),
            &t.key,
        )
        .await;
    assert_eq!(rest["items"][0]["kind"], "top_up");
    assert_eq!(rest["items"][0]["amount"], 1000);
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let (_, _, theirs) = api.get("/v1/wallet/ledger", &b.key).await;
    assert_eq!(theirs["items"], json!([]));
    for bad in [
        "/v1/wallet/ledger?limit=0",
        "/v1/wallet/ledger?cursor=notone",
    ] {
        let (s, h, v) = api.get(bad, &t.key).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_problem(&h, &v, s);
    }
}
