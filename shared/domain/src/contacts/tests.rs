use super::memory::MemoryContacts;
use super::service::ConsentInput;
use super::*;
use crate::clock::FakeClock;
use crate::memory::MemoryStore;
use crate::ports::{AuditFilter, AuditLog};
use std::sync::Arc;
use time::macros::datetime;

fn service() -> (ContactService, Arc<MemoryStore>) {
    let audit = Arc::new(MemoryStore::new());
    (
        ContactService {
            store: Arc::new(MemoryContacts::default()),
            audit: audit.clone(),
            clock: Arc::new(FakeClock::new(datetime!(2026-12-04 12:00 UTC))),
        },
        audit,
    )
}

fn tenant(name: &str) -> TenantId {
    TenantId(name.into())
}

fn opted_in(phone: &str) -> NewContact {
    NewContact {
        phone: phone.into(),
        name: Some("Ada".into()),
        tags: vec!["vip".into()],
        consent: Some(ConsentInput {
            opted_in: true,
            source: "web_form".into(),
        }),
        ..NewContact::default()
    }
}

#[test]
fn numbers_are_normalised_to_e164_or_refused_with_why() {
    for (raw, region, want) in [
        ("+1 415-555-2671", None, "+14155552671"),
        ("(415) 555-2671", Some("us"), "+14155552671"),
        ("020 7946 0958", Some("GB"), "+442079460958"),
        ("+44 20 7946 0958", Some("US"), "+442079460958"),
    ] {
        assert_eq!(normalize(raw, region).as_deref(), Ok(want), "{raw}");
    }
    for (raw, region) in [
        ("hello", None),
        ("415 555 2671", None),
        ("+1 555", None),
        ("020 7946 0958", Some("XX")),
    ] {
        assert!(normalize(raw, region).is_err(), "{raw} {region:?}");
    }
}

#[tokio::test]
async fn a_number_is_kept_once_per_tenant_and_every_problem_is_named() {
    let (s, _) = service();
    let (a, b) = (tenant("ten_a"), tenant("ten_b"));
    let first = s
        .create(&a, "key:1", opted_in("+1 415 555 2671"))
        .await
        .unwrap();
    assert_eq!(first.phone, "+14155552671");
    assert!(first.consent.may_text());
    let again = s
        .create(
            &a,
            "key:1",
            NewContact {
                region: Some("US".into()),
                ..opted_in("(415) 555-2671 ")
            },
        )
        .await
        .map_err(|e| e.to_string());
    assert_eq!(
        again.err(),
        Some(format!(
            "the tenant already has this number as contact {}",
            first.id
        ))
    );
    // Another tenant's contact with the same number is its own.
    let theirs = s
        .create(&b, "key:2", opted_in("+14155552671"))
        .await
        .unwrap();
    assert_ne!(theirs.id, first.id);
    assert!(matches!(
        s.get(&b, &first.id).await,
        Err(ContactError::NotFound)
    ));
    assert!(matches!(
        s.erase(&b, "key:2", &first.id).await,
        Err(ContactError::NotFound)
    ));

    let bad = NewContact {
        phone: "nope".into(),
        name: Some(" ".into()),
        tags: vec!["ok".into(), "not ok".into()],
        fields: [("first name".to_owned(), "x".to_owned())].into(),
        consent: Some(ConsentInput {
            opted_in: true,
            source: "".into(),
        }),
        ..NewContact::default()
    };
    let Err(ContactError::Invalid(problems)) = s.create(&a, "key:1", bad).await else {
        panic!("invalid");
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["phone", "name", "tags[1]", "fields", "consent.source"]
    );
    assert_eq!(
        s.list(&a, None, 10).await.unwrap().items.len(),
        1,
        "nothing written"
    );
}

#[tokio::test]
async fn an_erased_opted_out_number_comes_back_opted_out_and_the_audit_never_holds_it() {
    let (s, audit) = service();
    let a = tenant("ten_a");
    let c = s
        .create(&a, "key:1", opted_in("+14155552671"))
        .await
        .unwrap();
    let out = s
        .update(
            &a,
            "key:1",
            &c.id,
            ContactUpdate {
                consent: Some(ConsentInput {
                    opted_in: false,
                    source: "keyword:STOP".into(),
                }),
                ..ContactUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(!out.consent.may_text());
    assert_eq!(out.version, 2);
    s.erase(&a, "key:1", &c.id).await.unwrap();
    assert!(matches!(
        s.get(&a, &c.id).await,
        Err(ContactError::NotFound)
    ));
    let back = s
        .create(&a, "key:1", opted_in("+14155552671"))
        .await
        .unwrap();
    assert_eq!(back.consent.status(), "opted_out", "{back:?}");
    // A number erased while opted in leaves nothing behind.
    let other = s
        .create(&a, "key:1", opted_in("+14155552672"))
        .await
        .unwrap();
    s.erase(&a, "key:1", &other.id).await.unwrap();
    let fresh = s
        .create(&a, "key:1", opted_in("+14155552672"))
        .await
        .unwrap();
    assert!(fresh.consent.may_text());

    let records = audit
        .list(&a, &AuditFilter::default(), None, 100)
        .await
        .unwrap()
        .items;
    let actions: Vec<&str> = records.iter().map(|r| r.entry.action.as_str()).collect();
    assert!(actions.contains(&"contact.consent_changed"), "{actions:?}");
    assert!(actions.contains(&"contact.erased"), "{actions:?}");
    let text = format!("{records:?}");
    assert!(!text.contains("4155552671"), "no number in the audit log");
}
