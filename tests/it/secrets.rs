//! Secret rotation on moto. moto cannot call a rotation Lambda, so these tests stand in for
//! `RotateSecret`: they call the rotation function's handler with each of the four steps,
//! twice as a retried invocation would, and read the ring the verifiers use.

use herald_aws::Clients;
use herald_aws::secrets::SecretsManagerStore;
use herald_domain::secrets::{PENDING, SecretKind, SecretStore, load_ring};
use herald_fn_rotator::{Config, RotationEvent, handle, rotation};
use herald_tests::{create_secret, local_aws};
use secrecy::ExposeSecret;

// Secrets Manager's tokens are 32 to 64 characters (it sends UUIDs).
const T1: &str = "00000000-0000-4000-8000-000000000001";
const T2: &str = "00000000-0000-4000-8000-000000000002";
const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

async fn clients() -> Clients {
    local_aws().clients().await
}

/// A secret as the template declares Herald's own: no value yet, its kind in a tag.
async fn new_secret(clients: &Clients, kind: Option<&str>) -> String {
    create_secret(&clients.secrets, "herald-test-", kind, None).await
}

/// No secret these tests rotate is the token key, so the gate never reads the table.
fn config() -> Config {
    Config {
        table: "unused".into(),
        token_key_secret: "herald-not-rotated-here".into(),
    }
}

fn event(secret: &str, token: &str, step: &str) -> RotationEvent {
    RotationEvent {
        secret_id: secret.to_owned(),
        client_request_token: token.to_owned(),
        step: step.to_owned(),
    }
}

#[tokio::test]
async fn rotation_steps_are_idempotent_and_the_previous_value_stays_in_the_ring() {
    let clients = clients().await;
    let secret = new_secret(&clients, Some("webhook-signing")).await;
    let rotation = rotation(&config(), &clients);
    let store = SecretsManagerStore::new(clients.secrets.clone());
    // The first rotation gives the secret its first value.
    for step in STEPS {
        for _ in 0..2 {
            handle(&rotation, &event(&secret, T1, step)).await.unwrap();
        }
    }
    let first = load_ring(&store, &secret).await.unwrap();
    assert!(first.previous.is_none());
    assert_eq!(
        SecretKind::WebhookSigning
            .key_bytes(&first.current)
            .map(|k| k.len()),
        Ok(32)
    );

    // The second: until `finishSecret`, verifiers still see the first value as current.
    for step in &STEPS[..3] {
        for _ in 0..2 {
            handle(&rotation, &event(&secret, T2, step)).await.unwrap();
        }
    }
    let during = load_ring(&store, &secret).await.unwrap();
    assert_eq!(
        during.current.expose_secret(),
        first.current.expose_secret()
    );
    handle(&rotation, &event(&secret, T2, "finishSecret"))
        .await
        .unwrap();
    handle(&rotation, &event(&secret, T2, "finishSecret"))
        .await
        .unwrap();
    let after = load_ring(&store, &secret).await.unwrap();
    assert_ne!(after.current.expose_secret(), first.current.expose_secret());
    assert_eq!(
        after
            .previous
            .as_ref()
            .map(|p| p.expose_secret().to_owned()),
        Some(first.current.expose_secret().to_owned()),
        "the old value is AWSPREVIOUS"
    );
    let meta = store.describe(&secret).await.unwrap();
    assert!(
        meta.versions.iter().all(|v| !v.has(PENDING)),
        "no stray AWSPENDING: {:?}",
        meta.versions
    );

    // Within the grace period both verify; after it, only the new one.
    let grace = time::Duration::hours(1);
    let accepted = |now| after.accepted(now, grace).len();
    assert_eq!(accepted(after.current_since), 2);
    assert_eq!(accepted(after.current_since + grace), 1);
}

#[tokio::test]
async fn rotation_refuses_foreign_secrets_unknown_tokens_and_steps() {
    let clients = clients().await;
    let rotation = rotation(&config(), &clients);
    let foreign = new_secret(&clients, None).await;
    let err = handle(&rotation, &event(&foreign, "t", "createSecret"))
        .await
        .unwrap_err();
    assert!(err.contains("not a secret Herald owns"), "{err}");

    let ours = new_secret(&clients, Some("key-256")).await;
    let err = handle(
        &rotation,
        &event(
            &ours,
            "00000000-0000-4000-8000-00000000dead",
            "finishSecret",
        ),
    )
    .await
    .unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
    let err = handle(&rotation, &event(&ours, "t", "rotateEverything"))
        .await
        .unwrap_err();
    assert!(err.contains("unknown rotation step"), "{err}");
    let store = SecretsManagerStore::new(clients.secrets.clone());
    assert!(
        store.describe(&ours).await.unwrap().versions.is_empty(),
        "nothing was created"
    );
}
