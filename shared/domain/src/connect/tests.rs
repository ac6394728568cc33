use super::memory::MemoryAuthorization;
use super::*;
use crate::clock::FakeClock;
use crate::memory::MemoryStore;
use crate::ports::AccountStore;
use std::sync::Arc;
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

fn connected(finished: Result<Finished, ConnectError>) -> Connected {
    match finished {
        Ok(Finished::Connected(c)) => *c,
        other => panic!("not connected: {other:?}"),
    }
}

fn state_of(url: &str) -> String {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .unwrap()
        .to_owned()
}

async fn open_link(w: &World, t: &TenantId) -> String {
    open_link_for(w, t, Platform::X).await
}

async fn open_link_for(w: &World, t: &TenantId, platform: Platform) -> String {
    let (secret, link) = w
        .service
        .create_link(t, &ApiKeyId("key_1".into()), platform)
        .await
        .unwrap();
    assert_eq!(link.expires_at - link.created_at, LINK_LIFETIME);
    assert_ne!(link.id, secret.expose_secret(), "stored by hash");
    let found = w.service.link(secret.expose_secret()).await.unwrap();
    w.service.start(&found, REDIRECT).await.unwrap()
}

#[tokio::test]
async fn a_consented_link_connects_the_signed_in_account_to_the_links_tenant_once() {
    let w = world();
    let t = tenant("ten_a");
    let url = open_link(&w, &t).await;
    let code = w.server.consent(&url, "u42");
    let state = state_of(&url);
    let connected = connected(w.service.finish(Platform::X, &state, Ok(&code)).await);
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
    let expired = w.service.link(secret.expose_secret()).await;
    assert_eq!(expired.unwrap_err(), ConnectError::ExpiredLink);
    for forged in [
        "",
        "hrldl_",
        "hrldl_zz",
        &format!("{LINK_PREFIX}{}", "0".repeat(64)),
    ] {
        let r = w.service.link(forged).await;
        assert_eq!(r.unwrap_err(), ConnectError::UnknownLink, "{forged}");
    }
    // Two tenants' links: each connects into its own tenant only.
    let (a, b) = (tenant("ten_a"), tenant("ten_b"));
    let url_b = open_link(&w, &b).await;
    let code = w.server.consent(&url_b, "shared-user");
    let connected = connected(
        w.service
            .finish(Platform::X, &state_of(&url_b), Ok(&code))
            .await,
    );
    assert_eq!(connected.account.tenant_id, b);
    assert!(w.store.list_accounts(&a).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_sign_in_that_manages_several_pages_picks_one_once() {
    let w = world();
    let t = tenant("ten_a");
    let url = open_link_for(&w, &t, Platform::Facebook).await;
    let code = w.server.consent(&url, "u9:p1,p2");
    let finished = w
        .service
        .finish(Platform::Facebook, &state_of(&url), Ok(&code))
        .await;
    let Ok(Finished::Choose(choosing)) = finished else {
        panic!("no picker: {finished:?}");
    };
    assert_eq!(
        choosing.choices,
        vec![
            ("p1".to_owned(), Some("Page p1".to_owned())),
            ("p2".to_owned(), Some("Page p2".to_owned()))
        ]
    );
    assert!(
        !format!("{choosing:?}").contains("pt-"),
        "no token in the picker"
    );
    let secret = choosing.secret.expose_secret().to_owned();
    let picked = w.service.pick(&secret, "p2").await.unwrap();
    assert_eq!(picked.account.external_id, "p2");
    assert_eq!(
        picked.account.access_token.expose_secret(),
        "pt-p2",
        "the Page's own token"
    );
    assert!(picked.account.refresh_token.is_none() && picked.account.token_expires_at.is_none());
    assert_eq!(
        w.service.pick(&secret, "p1").await.unwrap_err(),
        ConnectError::UnknownChoice
    );
    assert_eq!(w.store.list_accounts(&t).await.unwrap().len(), 1);

    // A page that was not offered spends the choice; a sign-in with no pages connects nothing.
    let url = open_link_for(&w, &t, Platform::Facebook).await;
    let code = w.server.consent(&url, "u9:p1,p2");
    let Ok(Finished::Choose(choosing)) = w
        .service
        .finish(Platform::Facebook, &state_of(&url), Ok(&code))
        .await
    else {
        panic!("no picker");
    };
    let secret = choosing.secret.expose_secret().to_owned();
    assert_eq!(
        w.service.pick(&secret, "p3").await.unwrap_err(),
        ConnectError::NotAChoice
    );
    assert_eq!(
        w.service.pick(&secret, "p1").await.unwrap_err(),
        ConnectError::UnknownChoice
    );
    let url = open_link_for(&w, &t, Platform::Facebook).await;
    let code = w.server.consent(&url, "u9:");
    let none = w
        .service
        .finish(Platform::Facebook, &state_of(&url), Ok(&code))
        .await;
    assert_eq!(
        none.unwrap_err(),
        ConnectError::NoAccounts(Platform::Facebook)
    );
    assert_eq!(w.store.list_accounts(&t).await.unwrap().len(), 1);
}
