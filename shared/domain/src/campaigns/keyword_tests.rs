//! STOP, START and HELP texted back, over the in-memory stores and a recording provider.

use super::keywords::{Handled, InboundSms, Keyword, Keywords, REPLY_REF_PREFIX};
use super::tests::{World, world};
use super::*;
use crate::audit::ChainHead;
use crate::clock::Clock;
use crate::contacts::{Consent, ConsentInput, ContactService, ContactStore, NewContact};
use crate::model::{Tenant, TenantSettings};
use crate::ports::{AuditLog, TenantStore};

fn keywords(w: &World) -> Keywords {
    Keywords {
        senders: w.campaigns.clone(),
        contacts: contact_service(w),
        tenants: w.memory.clone(),
        provider: Some(w.provider.clone()),
        clock: w.clock.clone(),
    }
}

fn contact_service(w: &World) -> ContactService {
    ContactService {
        store: w.contacts.clone(),
        audit: w.memory.clone(),
        clock: w.clock.clone(),
    }
}

fn inbound(id: &str, from: &str, to: &str, text: &str) -> InboundSms {
    InboundSms {
        id: id.into(),
        from: from.into(),
        to: to.into(),
        text: text.into(),
    }
}

async fn tenant(w: &World, id: &TenantId, help: Option<&str>) {
    w.memory
        .create_tenant(&Tenant {
            id: id.clone(),
            name: format!("Brand {id}"),
            settings: TenantSettings {
                sms_help_text: help.map(str::to_owned),
                ..TenantSettings::default()
            },
            created_at: w.clock.now(),
            suspended: None,
        })
        .await
        .unwrap();
}

async fn consent(w: &World, tenant: &TenantId, id: &ContactId) -> Consent {
    w.contacts
        .get_contact(tenant, id)
        .await
        .unwrap()
        .unwrap()
        .consent
}

/// The replies the provider took, as (to, text).
fn replies(w: &World) -> Vec<(String, String)> {
    w.provider
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.client_ref.starts_with(REPLY_REF_PREFIX))
        .map(|m| (m.to.clone(), m.text.clone()))
        .collect()
}

#[test]
fn keywords_are_whole_messages_in_any_case() {
    for (text, expected) in [
        ("STOP", Some(Keyword::Stop)),
        ("  stop \n", Some(Keyword::Stop)),
        ("Stop.", Some(Keyword::Stop)),
        ("stopall", Some(Keyword::Stop)),
        ("Unsubscribe", Some(Keyword::Stop)),
        ("cancel", Some(Keyword::Stop)),
        ("END", Some(Keyword::Stop)),
        ("quit!", Some(Keyword::Stop)),
        ("start", Some(Keyword::Start)),
        ("UNSTOP", Some(Keyword::Start)),
        ("help", Some(Keyword::Help)),
        ("Info", Some(Keyword::Help)),
        ("stop it", None),
        ("please stop", None),
        ("STOPP", None),
        ("", None),
        ("ok", None),
    ] {
        assert_eq!(Keyword::of(text).map(|(k, _)| k), expected, "{text:?}");
    }
}

#[tokio::test]
async fn stop_opts_out_at_once_even_for_batches_queued_before_it() {
    let w = world();
    tenant(&w, &w.tenant, None).await;
    let people = [
        w.contact(1, Some("Ada"), &["vip"], true).await,
        w.contact(2, Some("Bo"), &["vip"], true).await,
        w.contact(3, Some("Cy"), &["vip"], true).await,
    ];
    w.grant(10).await;
    let c = w.campaign("Hi {{first_name}}", &["vip"]).await;
    w.service
        .enqueue(&w.tenant, &c.id, "corr", false)
        .await
        .unwrap();

    let keywords = keywords(&w);
    let stop = inbound("in_1", &people[1].phone, "HERALD", " Stop ");
    let handled = keywords.handle(&stop).await.unwrap();
    assert_eq!(
        handled,
        Handled::Applied {
            tenant: w.tenant.clone(),
            keyword: Keyword::Stop,
            changed: true,
            replied: true,
        }
    );
    match consent(&w, &w.tenant, &people[1].id).await {
        Consent::OptedOut { source, .. } => assert_eq!(source, "keyword:STOP"),
        other => panic!("still {other:?}"),
    }
    let head = w
        .memory
        .head(&w.tenant, &format!("contact:{}", people[1].id))
        .await
        .unwrap();
    assert_ne!(head, ChainHead::default(), "the consent change is audited");

    // Redelivered (a crash before the event was kept): nothing changes, no second reply.
    let again = keywords.handle(&stop).await.unwrap();
    assert!(matches!(
        again,
        Handled::Applied {
            changed: false,
            replied: false,
            ..
        }
    ));
    let answered = replies(&w);
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].0, people[1].phone);
    assert!(answered[0].1.contains("unsubscribed"), "{}", answered[0].1);
    assert!(
        answered[0].1.starts_with("Brand ten_a"),
        "{}",
        answered[0].1
    );

    // The batch queued before the STOP skips the number.
    w.run_all_batches().await;
    let texted: Vec<String> = w
        .provider
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.client_ref.starts_with(CLIENT_REF_PREFIX))
        .map(|m| m.to.clone())
        .collect();
    assert_eq!(texted.len(), 2);
    assert!(!texted.contains(&people[1].phone));
    let c = w.service.get(&w.tenant, &c.id).await.unwrap();
    assert_eq!((c.progress.sent, c.progress.skipped), (2, 1));
}

#[tokio::test]
async fn start_opts_back_in_and_help_answers_with_the_tenant_text() {
    let w = world();
    tenant(
        &w,
        &w.tenant,
        Some("Brand A: offers weekly. Call 0800 000 000."),
    )
    .await;
    let ada = w.contact(1, Some("Ada"), &[], true).await;
    w.campaign("Hi", &["vip"]).await;
    let keywords = keywords(&w);
    keywords
        .handle(&inbound("in_1", &ada.phone, "HERALD", "QUIT"))
        .await
        .unwrap();
    let start = keywords
        .handle(&inbound("in_2", &ada.phone, "HERALD", "start"))
        .await
        .unwrap();
    assert!(matches!(start, Handled::Applied { changed: true, .. }));
    match consent(&w, &w.tenant, &ada.id).await {
        Consent::OptedIn { source, .. } => assert_eq!(source, "keyword:START"),
        other => panic!("still {other:?}"),
    }
    let help = keywords
        .handle(&inbound("in_3", &ada.phone, "herald", "HELP"))
        .await
        .unwrap();
    assert!(matches!(
        help,
        Handled::Applied {
            keyword: Keyword::Help,
            changed: false,
            replied: true,
            ..
        }
    ));
    let answered = replies(&w);
    assert_eq!(answered.len(), 3);
    assert!(answered[1].1.contains("subscribed again"));
    assert_eq!(answered[2].1, "Brand A: offers weekly. Call 0800 000 000.");
    // Not a keyword: kept by the processor, nothing else.
    let chat = keywords
        .handle(&inbound("in_4", &ada.phone, "HERALD", "stop it please"))
        .await
        .unwrap();
    assert_eq!(chat, Handled::Ignored);
    assert_eq!(replies(&w).len(), 3);
}

#[tokio::test]
async fn a_stop_from_a_number_that_is_no_contact_keeps_it_opted_out_when_added() {
    let w = world();
    tenant(&w, &w.tenant, None).await;
    w.campaign("Hi", &["vip"]).await;
    let handled = keywords(&w)
        .handle(&inbound("in_1", "+1 415 555 2671", "HERALD", "STOP"))
        .await
        .unwrap();
    assert!(matches!(handled, Handled::Applied { changed: false, .. }));
    let added = contact_service(&w)
        .create(
            &w.tenant,
            "key:test",
            NewContact {
                phone: "+14155552671".into(),
                consent: Some(ConsentInput {
                    opted_in: true,
                    source: "web_form".into(),
                }),
                ..NewContact::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(added.consent.status(), "opted_out");
}

#[tokio::test]
async fn another_tenant_cannot_take_the_sender_nor_have_its_contacts_stopped() {
    let w = world();
    let other = TenantId("ten_b".into());
    tenant(&w, &w.tenant, None).await;
    tenant(&w, &other, None).await;
    let ada = w.contact(1, Some("Ada"), &["vip"], true).await;
    w.campaign("Hi", &["vip"]).await;
    // The other tenant holds a contact with the same number.
    let theirs = contact_service(&w)
        .create(
            &other,
            "key:b",
            NewContact {
                phone: ada.phone.clone(),
                consent: Some(ConsentInput {
                    opted_in: true,
                    source: "web_form".into(),
                }),
                ..NewContact::default()
            },
        )
        .await
        .unwrap();
    // It cannot send as the first tenant's sender, in any case.
    let taken = w
        .service
        .create(
            &other,
            NewCampaign {
                name: "Copycat".into(),
                text: "Hi".into(),
                tags: vec!["vip".into()],
                sender: "Herald".into(),
                ..NewCampaign::default()
            },
        )
        .await;
    assert!(matches!(taken, Err(CampaignError::SenderTaken(_))));

    let keywords = keywords(&w);
    keywords
        .handle(&inbound("in_1", &ada.phone, "HERALD", "STOP"))
        .await
        .unwrap();
    assert_eq!(consent(&w, &w.tenant, &ada.id).await.status(), "opted_out");
    assert_eq!(consent(&w, &other, &theirs.id).await.status(), "opted_in");
    // A sender nobody sends as: nothing changes anywhere, nothing is answered.
    let unrouted = keywords
        .handle(&inbound("in_2", &ada.phone, "NOBODY", "STOP"))
        .await
        .unwrap();
    assert_eq!(unrouted, Handled::Unrouted);
    assert_eq!(consent(&w, &other, &theirs.id).await.status(), "opted_in");
    assert_eq!(replies(&w).len(), 1);
}
