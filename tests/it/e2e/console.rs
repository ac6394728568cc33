//! The console in headless Chromium against the local stack, used as an operator would: sign
//! in with a key, pause a platform and watch a post held, lift the pause, requeue a dead letter
//! and watch its post published, verify the audit chain, sign out. Screenshots of each step go
//! to `target/console-*.png`.

use super::*;
use crate::support::browser::Browser;
use aws_sdk_dynamodb::types::AttributeValue;

const COOKIE: &str = "__Host-herald-console";

async fn shot(browser: &Browser, name: &str) {
    let path = repo_root().join(format!("target/console-{name}.png"));
    assert!(
        browser.screenshot(&path).await > 5_000,
        "{name}: a blank page?"
    );
}

/// Opens the console and signs in with `credential`; the session's cookie is recorded for the
/// log scan.
async fn sign_in(stack: &Stack, browser: &Browser, credential: &str) {
    browser.open(&stack.api_url("/console")).await;
    browser.type_into("#credential", credential).await;
    browser.click("#sign-in-button").await;
    browser.wait_for_text("#who", |t| !t.is_empty()).await;
    let cookie = browser.cookie(COOKIE).await.expect("the session cookie");
    secrets::remember("console_session", &cookie);
}

/// The console's row for post `id`, once `done` accepts its text (the posts view is
/// refreshed until then).
async fn post_row(browser: &Browser, id: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PUBLISH_TIMEOUT;
    let css = format!(r#"tr[data-post="{id}"]"#);
    browser.click("#nav-posts").await;
    loop {
        if let Some(text) = browser.try_text(&css).await
            && done(&text)
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "post {id} shows {:?}",
            browser.try_text(&css).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        browser.wait_for_text("#refresh", |_| true).await;
        browser.click("#refresh").await;
    }
}

#[tokio::test]
async fn an_operator_pauses_requeues_and_verifies_through_the_console() {
    let stack = Stack::running();
    let t = stack.tenant();
    let page = unique("page");
    let account = stack.connect(&t, "facebook", &page, "fb-token").await;
    let browser = Browser::start().await;
    browser.resize(1200, 900).await;

    sign_in(&stack, &browser, &t.key).await;
    assert!(browser.text("#who").await.contains(&t.id));
    shot(&browser, "signed-in").await;

    // Pause Facebook; a post due now is held at the claim, attempts untouched.
    // Under load a click can land while the page still redraws after sign-in: click again
    // until the crisis view is drawn.
    for _ in 0..5 {
        browser.click("#nav-crisis").await;
        let drawn = Instant::now() + Duration::from_secs(8);
        while Instant::now() < drawn && browser.try_text("#crisis-state").await.is_none() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if browser.try_text("#crisis-state").await.is_some() {
            break;
        }
    }
    browser.click("#pause-facebook").await;
    browser.type_into("#pause-reason", "brand review").await;
    browser.click("#pause").await;
    browser
        .wait_for_text("#crisis-state", |t| t.contains("Paused: facebook"))
        .await;
    shot(&browser, "paused").await;
    let held = stack.schedule(&t, &account, "held by the console", 0).await;
    let held_id = held["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let row = post_row(&browser, &held_id, |r| r.contains("facebook pending")).await;
    assert!(row.contains("0 attempts"), "{row}");
    shot(&browser, "post-held").await;
    assert!(stack.fake_posts("facebook", &page).await.is_empty());

    // Lift it (the button asks once more): the held post goes out.
    browser.click("#nav-crisis").await;
    browser
        .wait_for_text("#crisis-state", |t| t.contains("Paused"))
        .await;
    browser.click("#lift").await;
    browser.click("#lift").await;
    browser
        .wait_for_text("#crisis-state", |t| t.contains("not paused"))
        .await;
    post_row(&browser, &held_id, |r| r.contains("published")).await;

    // An outage dead-letters the next post; the console requeues it once the outage ends.
    let outage = stack
        .fault(json!({"platform": "facebook", "account": page, "status": 503, "rate": 1.0}))
        .await;
    let doomed = stack
        .schedule(&t, &account, "dead-lettered, then saved", 0)
        .await;
    let doomed_id = doomed["id"].as_str().unwrap().to_owned();
    let letter = stack
        .wait_for(Duration::from_secs(150), "the dead letter", || async {
            let (_, _, v) = stack.get("/v1/dead-letters", &t).await;
            v["items"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|d| d["payload"]["post_id"] == doomed_id.as_str())
                    .map(|d| d["id"].as_str().unwrap().to_owned())
            })
        })
        .await;
    stack.remove_fault(&outage).await;
    // The outage opened the account's circuit: the admin closes it from the console.
    browser.click("#nav-accounts").await;
    let account_row = format!(r#"tr[data-account="{account}"]"#);
    browser
        .wait_for_text(&account_row, |t| t.contains("open"))
        .await;
    browser
        .click(&format!("{account_row} button.reset-circuit"))
        .await;
    browser
        .wait_for_text(&account_row, |t| t.contains("closed"))
        .await;
    shot(&browser, "circuit-reset").await;
    browser.click("#nav-dead-letters").await;
    let row = format!(r#"tr[data-dead-letter="{letter}"]"#);
    browser.wait_for_text(&row, |t| t.contains("publish")).await;
    browser.click(&format!("{row} button.inspect")).await;
    browser
        .wait_for_text("#dead-letter-detail", |t| t.contains(&doomed_id))
        .await;
    shot(&browser, "dead-letter").await;
    browser.click(&format!("{row} button.requeue")).await;
    browser
        .wait_for_text("#dead-letter-result", |t| t.contains("Requeued"))
        .await;
    post_row(&browser, &doomed_id, |r| r.contains("published")).await;
    shot(&browser, "requeued-published").await;
    assert_eq!(stack.fake_posts("facebook", &page).await.len(), 2);

    // The audit log: the pause, the lift and the requeue, and a chain that holds.
    browser.click("#nav-audit").await;
    let log = browser
        .wait_for_text("#audit", |t| t.contains("dead_letter.requeued"))
        .await;
    assert!(
        log.contains("crisis.started")
            && log.contains("crisis.lifted")
            && log.contains("account.circuit_reset"),
        "{log}"
    );
    browser.click("#verify").await;
    browser
        .wait_for_text("#audit-verdict", |t| t.contains("The chain holds"))
        .await;
    shot(&browser, "audit").await;

    // Signing out ends the session for the browser and for anyone holding its cookie.
    let cookie = browser.cookie(COOKIE).await.unwrap();
    browser.click("#sign-out").await;
    browser.wait_for_text("#sign-in", |_| true).await;
    let (s, h, _) = stack
        .call(
            reqwest::Client::new()
                .get(stack.api_url("/v1/tenant"))
                .header("cookie", format!("{COOKIE}={cookie}")),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(is_problem(&h));
    browser.close().await;
}

#[tokio::test]
async fn the_operator_signs_in_with_the_operator_token_and_reads_every_check() {
    let stack = Stack::running();
    let browser = Browser::start().await;
    browser.resize(1200, 900).await;
    // Another test may rotate the token meanwhile: read it again and retry once.
    for attempt in 0..2 {
        let token = stack.secret("herald-AdminTokenSecret").await;
        browser.open(&stack.api_url("/console")).await;
        browser.type_into("#credential", &token).await;
        browser.click("#sign-in-button").await;
        let signed_in = browser.wait_for_any(&["#who", "#error"]).await == "#who";
        if signed_in || attempt == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(11)).await;
    }
    assert_eq!(browser.text("#who").await, "operator");
    secrets::remember("console_session", &browser.cookie(COOKIE).await.unwrap());
    let checks = browser
        .wait_for_text("#checks", |t| t.contains("dynamodb"))
        .await;
    assert!(checks.contains("heartbeat"), "{checks}");
    assert!(checks.contains("sms:liveCampaigns"), "{checks}");
    assert!(checks.contains("sms:standingCampaigns"), "{checks}");
    shot(&browser, "operator-health").await;
    browser.click("#nav-queues").await;
    let queues = browser
        .wait_for_text("#checks", |t| t.contains("sqs:depth"))
        .await;
    assert!(!queues.contains("dynamodb"), "queues only: {queues}");
    shot(&browser, "operator-queues").await;

    // LinkedIn told the app to stop (a block written as the publisher writes one): the
    // operator lifts it from the console.
    let until = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    stack
        .ddb()
        .await
        .put_item()
        .table_name(stack.url("HERALD_TABLE"))
        .item("pk", AttributeValue::S("RATE#app#linkedin".into()))
        .item("sk", AttributeValue::S("BLOCK".into()))
        .item(
            "until",
            AttributeValue::N((until.unix_timestamp() * 1000).to_string()),
        )
        .item(
            "expires_at",
            AttributeValue::N(until.unix_timestamp().to_string()),
        )
        .send()
        .await
        .unwrap();
    browser.click("#nav-app-blocks").await;
    let row = r#"tr[data-platform="linkedin"]"#;
    browser.wait_for_text(row, |t| !t.contains("pass")).await;
    browser.click(&format!("{row} button.clear-block")).await;
    browser
        .wait_for_text("#block-result", |t| t.contains("lifted"))
        .await;
    shot(&browser, "operator-app-block").await;
    let (_, _, health) = stack.operator(Method::GET, "/v1/health", None).await;
    let linkedin = health["checks"]["platform:appBlock"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["componentId"] == "linkedin")
        .unwrap()
        .clone();
    assert_eq!(linkedin["status"], "pass", "{linkedin}");
    browser.close().await;
}

/// A tenant's campaigns page: the wallet, each campaign's status, progress, credits and quiet
/// hours; an editor cancels a campaign held by a pause, and its credits come back.
#[tokio::test]
async fn a_tenant_follows_and_cancels_a_campaign_in_the_console() {
    let stack = Stack::running();
    let t = stack.tenant();
    grant_credits(&stack, &t, 10, "console");
    for phone in ["+14155558401", "+14155558402"] {
        opted_in_contact(&stack, &t, phone, "console").await;
    }
    // Paused: the campaign's batches are held, so it stays `sending` until cancelled.
    let (s, _, v) = stack
        .api(
            Method::PUT,
            "/v1/crisis",
            &t,
            Some(&unique("k-")),
            Some(json!({"reason": "review"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sender = format!("C{}", &unique("")[..10]).to_uppercase();
    let (s, v) = stack
        .send(
            Method::POST,
            "/v1/campaigns",
            &t,
            Some(json!({"name": "Console sale", "text": "Hi {{first_name}}",
                        "audience": {"tags": ["console"]}, "sender": sender,
                        "quiet_hours": {"start": "22:00", "end": "07:30", "time_zone": "Europe/Paris"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = stack
        .send(
            Method::POST,
            &format!("/v1/campaigns/{id}/enqueue"),
            &t,
            None,
        )
        .await;
    assert_eq!((s, &v["status"]), (StatusCode::ACCEPTED, &json!("sending")));

    let browser = Browser::start().await;
    browser.resize(1400, 900).await;
    sign_in(&stack, &browser, &t.key).await;
    browser.click("#nav-campaigns").await;
    let row = format!(r#"tr[data-campaign="{id}"]"#);
    let text = browser.wait_for_text(&row, |t| t.contains("sending")).await;
    assert!(text.contains("0/2 done"), "{text}");
    assert!(text.contains("22:00–07:30 (Europe/Paris)"), "{text}");
    assert!(text.contains("of 2"), "two credits reserved: {text}");
    let wallet = browser.text("#wallet").await;
    assert!(wallet.contains("8 available, 2 reserved"), "{wallet}");
    shot(&browser, "campaigns").await;

    // Asks once more, then cancels.
    browser.click(&format!("#cancel-{id}")).await;
    browser.click(&format!("#cancel-{id}")).await;
    browser
        .wait_for_text("#campaign-result", |t| t.contains("is cancelled"))
        .await;
    let text = browser.text(&row).await;
    assert!(text.contains("cancelled"), "{text}");
    let wallet = browser.text("#wallet").await;
    assert!(wallet.contains("10 available, 0 reserved"), "{wallet}");
    browser.close().await;

    let (_, _, v) = stack.get(&format!("/v1/campaigns/{id}"), &t).await;
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["progress"]["sent"], 0);
    let (s, _, _) = stack
        .api(Method::DELETE, "/v1/crisis", &t, Some(&unique("k-")), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let all = stack.fake_get("/_admin/sms/messages").await;
    assert!(
        !all["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["from"] == sender.as_str()),
        "nobody was texted"
    );
}
