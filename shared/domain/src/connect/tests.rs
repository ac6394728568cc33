use super::memory::{MemoryAuthorization, MemoryOwners};
use super::*;
use crate::clock::FakeClock;
use crate::memory::MemoryStore;
use time::macros::datetime;

const REDIRECT: &str = "https://herald.example/connect/callback/x";

struct World {
    service: ConnectService,
    store: Arc<MemoryStore>,
    server: Arc<MemoryAuthorization>,
    clock: Arc<FakeClock>,
}

fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    let server = Arc::new(MemoryAuthorization::default());
    let clock = Arc::new(FakeClock::new(datetime!(2026-12-04 12:00 UTC)));
    World {
        service: ConnectService {
            store: store.clone(),
            server: server.clone(),
            owners: Arc::new(MemoryOwners),
            accounts: store.clone(),
            clock: clock.clone(),
        },
        store,
        server,
        clock,
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId(name.into())
}

fn state_of(url: &str) -> String {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .unwrap()
        .to_owned()
}

async fn open_link(w: &World, t: &TenantId) -> String {
    let (secret, link) = w
        .service
        .create_link(t, &ApiKeyId("key_1".into()), Platform::X)
        .await
        .unwrap();
    assert_eq!(link.expires_at - link.created_at, LINK_LIFETIME);
    assert_ne!(link.id, secret.expose_secret(), "stored by hash");
    w.service
        .start(secret.expose_secret(), REDIRECT)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_consented_link_connects_the_signed_in_account_to_the_links_tenant_once() {
    let w = world();
    let t = tenant("ten_a");
    let url = open_link(&w, &t).await;
    let code = w.server.consent(&url, "u42");
    let state = state_of(&url);
    let connected = w
        .service
        .finish(Platform::X, &state, Ok(&code))
        .await
        .unwrap();
    assert!(connected.created);
    assert_eq!(connected.account.external_id, "u42");
    assert_eq!(connected.account.tenant_id, t);
    assert_eq!(connected.account.display_name.as_deref(), Some("@u42"));
    assert_eq!(
        connected
            .account
            .refresh_token
            .as_ref()
            .unwrap()
            .expose_secret(),
        "rt-u42"
    );
    let stored = w
        .store
        .get_account(&t, &connected.account.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.access_token.expose_secret(), "at-u42");
    // The callback replayed: the state is spent.
    let again = w.service.finish(Platform::X, &state, Ok(&code)).await;
    assert_eq!(again.unwrap_err(), ConnectError::UnknownState);
}

#[tokio::test]
async fn a_stale_wrong_or_declined_callback_connects_nothing_and_spends_its_state() {
    let w = world();
    let t = tenant("ten_a");
    // Declined at the consent page.
    let url = open_link(&w, &t).await;
    let declined = w
        .service
        .finish(Platform::X, &state_of(&url), Err("access_denied"))
        .await;
    assert!(matches!(declined, Err(ConnectError::Declined(m)) if m.contains("cancelled")));
    // Back from another platform.
    let url = open_link(&w, &t).await;
    let code = w.server.consent(&url, "u1");
    let wrong = w
        .service
        .finish(Platform::Linkedin, &state_of(&url), Ok(&code))
        .await;
    assert_eq!(wrong.unwrap_err(), ConnectError::WrongPlatform);
    let after = w
        .service
        .finish(Platform::X, &state_of(&url), Ok(&code))
        .await;
    assert_eq!(
        after.unwrap_err(),
        ConnectError::UnknownState,
        "spent by the wrong try"
    );
    // Too slow at the consent page.
    let url = open_link(&w, &t).await;
    let code = w.server.consent(&url, "u1");
    w.clock.advance(STATE_LIFETIME);
    let late = w
        .service
        .finish(Platform::X, &state_of(&url), Ok(&code))
        .await;
    assert_eq!(late.unwrap_err(), ConnectError::UnknownState);
    // A forged state or a code that is not the platform's.
    let url = open_link(&w, &t).await;
    let forged = w.service.finish(Platform::X, "f0rged", Ok("code-x")).await;
    assert_eq!(forged.unwrap_err(), ConnectError::UnknownState);
    let refused = w
        .service
        .finish(Platform::X, &state_of(&url), Ok("code-x"))
        .await;
    assert!(
        matches!(refused, Err(ConnectError::Refused(_))),
        "{refused:?}"
    );
    assert!(w.store.list_accounts(&t).await.unwrap().is_empty());
}

#[tokio::test]
async fn links_expire_name_one_tenant_and_refuse_unsupported_platforms() {
    let w = world();
    let (secret, _) = w
        .service
        .create_link(&tenant("ten_a"), &ApiKeyId("k".into()), Platform::X)
        .await
        .unwrap();
    w.clock.advance(LINK_LIFETIME);
    let expired = w.service.start(secret.expose_secret(), REDIRECT).await;
    assert_eq!(expired.unwrap_err(), ConnectError::ExpiredLink);
    for forged in [
        "",
        "hrldl_",
        "hrldl_zz",
        &format!("{LINK_PREFIX}{}", "0".repeat(64)),
    ] {
        let r = w.service.start(forged, REDIRECT).await;
        assert_eq!(r.unwrap_err(), ConnectError::UnknownLink, "{forged}");
    }
    let facebook = w
        .service
        .create_link(&tenant("ten_a"), &ApiKeyId("k".into()), Platform::Facebook)
        .await;
    assert_eq!(
        facebook.unwrap_err(),
        ConnectError::NotSupported(Platform::Facebook)
    );
    // Two tenants' links: each connects into its own tenant only.
    let (a, b) = (tenant("ten_a"), tenant("ten_b"));
    let url_b = open_link(&w, &b).await;
    let code = w.server.consent(&url_b, "shared-user");
    let connected = w
        .service
        .finish(Platform::X, &state_of(&url_b), Ok(&code))
        .await
        .unwrap();
    assert_eq!(connected.account.tenant_id, b);
    assert!(w.store.list_accounts(&a).await.unwrap().is_empty());
}
