//! Contacts on DynamoDB: a number is claimed once per tenant even by inserts sent at once;
//! a replace is conditional on the version; erasure frees the number and leaves an opted-out
//! number's hash; tenants share nothing.

use super::*;
use herald_domain::contacts::{Consent, Contact, ContactStore, Inserted, suppression_hash};
use herald_domain::ids::ContactId;

fn contact(tenant: &TenantId, phone: &str) -> Contact {
    let now = SystemClock.now();
    Contact {
        id: ContactId::generate(),
        tenant_id: tenant.clone(),
        phone: phone.into(),
        name: Some("Ada".into()),
        tags: ["vip".to_owned()].into(),
        fields: [("first_name".to_owned(), "Ada".to_owned())].into(),
        consent: Consent::OptedIn {
            at: herald_domain::clock::to_millis(now),
            source: "web_form".into(),
        },
        version: 1,
        created_at: herald_domain::clock::to_millis(now),
        updated_at: herald_domain::clock::to_millis(now),
    }
}

#[tokio::test]
async fn a_number_is_claimed_once_and_erasure_leaves_only_a_suppression() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let t = &env.tenant;
    let (a, b) = (contact(t, "+14155552671"), contact(t, "+14155552671"));
    let (ra, rb) = tokio::join!(store.insert_contact(&a), store.insert_contact(&b));
    let results = [ra.unwrap(), rb.unwrap()];
    let new = results.iter().filter(|r| **r == Inserted::New).count();
    assert_eq!(new, 1, "{results:?}");
    let kept = if results[0] == Inserted::New { &a } else { &b };
    assert!(results.contains(&Inserted::Duplicate(kept.id.clone())));
    assert_eq!(
        store.get_contact(t, &kept.id).await.unwrap().as_ref(),
        Some(kept)
    );

    let mut changed = kept.clone();
    changed.consent = Consent::OptedOut {
        at: kept.updated_at,
        source: "keyword:STOP".into(),
    };
    changed.version = 2;
    store.replace_contact(&changed, 1).await.unwrap();
    assert_eq!(
        store.replace_contact(&changed, 1).await,
        Err(herald_domain::StoreError::Conflict),
        "a stale version changes nothing"
    );

    let other = TenantId("contacts_other".into());
    assert_eq!(store.get_contact(&other, &kept.id).await.unwrap(), None);
    assert_eq!(
        store
            .erase_contact(&other, &kept.id, SystemClock.now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .insert_contact(&contact(&other, "+14155552671"))
            .await
            .unwrap(),
        Inserted::New,
        "another tenant's claim is its own"
    );

    let erased = store
        .erase_contact(t, &kept.id, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(erased.map(|c| c.version), Some(2));
    assert_eq!(store.get_contact(t, &kept.id).await.unwrap(), None);
    let hash = suppression_hash(t, "+14155552671");
    assert!(store.suppressed_since(t, &hash).await.unwrap().is_some());
    assert!(
        store
            .suppressed_since(&other, &hash)
            .await
            .unwrap()
            .is_none()
    );
    // The number is free again.
    assert_eq!(
        store
            .insert_contact(&contact(t, "+14155552671"))
            .await
            .unwrap(),
        Inserted::New
    );
    let listed = store.list_contacts(t, None, 10).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn a_number_finds_its_contact_and_a_stop_from_no_contact_is_suppressed_once() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let t = &env.tenant;
    let ada = contact(t, "+14155552672");
    store.insert_contact(&ada).await.unwrap();
    assert_eq!(
        store.contact_by_phone(t, "+14155552672").await.unwrap(),
        Some(ada.id.clone())
    );
    let other = TenantId(crate::support::unique("contacts_other_"));
    assert_eq!(
        store
            .contact_by_phone(&other, "+14155552672")
            .await
            .unwrap(),
        None,
        "another tenant's number is not found"
    );

    let hash = suppression_hash(t, "+14155552673");
    let first = SystemClock.now() - time::Duration::hours(1);
    store.suppress(t, &hash, first).await.unwrap();
    store.suppress(t, &hash, SystemClock.now()).await.unwrap();
    assert_eq!(
        store.suppressed_since(t, &hash).await.unwrap(),
        Some(herald_domain::clock::to_millis(first)),
        "the first STOP's time stands"
    );
    assert_eq!(store.suppressed_since(&other, &hash).await.unwrap(), None);
}
