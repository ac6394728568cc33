//! Connecting accounts by link, in headless Chromium against the local stack and the fake
//! platforms' consent pages: open the link, continue to the platform, sign in and authorise
//! (and, for a Facebook user with several Pages, pick one), land on Herald's "connected" page,
//! see the account active, and publish through it once.

use super::*;
use crate::support::browser::Browser;

async fn shot(browser: &Browser, name: &str) {
    let path = repo_root().join(format!("target/connect-{name}.png"));
    assert!(
        browser.screenshot(&path).await > 3_000,
        "{name}: a blank page?"
    );
}

/// A connect link for `platform`, its secret recorded for the log scan.
async fn link(stack: &Stack, t: &Tenant, platform: &str) -> String {
    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/connect-links",
            t,
            Some(&unique("k-")),
            Some(json!({"platform": platform})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let url = v["url"].as_str().unwrap().to_owned();
    secrets::remember("connect_link", url.rsplit('/').next().unwrap());
    assert!(url.starts_with(&stack.api_url("/connect/hrldl_")), "{url}");
    url
}

/// The tenant's account `external_id`, active; publishes one post through it.
async fn publish_through(stack: &Stack, t: &Tenant, platform: &str, external_id: &str) {
    let (_, _, accounts) = stack.get("/v1/accounts", t).await;
    let account = accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["external_id"] == external_id)
        .unwrap_or_else(|| panic!("{accounts}"))
        .clone();
    assert_eq!(account["status"], "active");
    assert_eq!(account["platform"], platform);
    let post = stack
        .schedule(t, account["id"].as_str().unwrap(), "connected by link", 0)
        .await;
    let id = post["id"].as_str().unwrap().to_owned();
    stack
        .wait_for(
            PUBLISH_TIMEOUT,
            "the post through the linked account",
            || async { (stack.read_post(t, &id).await["status"] == "published").then_some(()) },
        )
        .await;
    assert_eq!(stack.fake_posts(platform, external_id).await.len(), 1);
    let (_, _, log) = stack.get("/v1/audit?action=account.connected", t).await;
    assert_eq!(log["items"][0]["new"]["via"], "connect_link", "{log}");
}

#[tokio::test]
async fn an_x_account_connected_by_link_publishes_once() {
    let stack = Stack::running();
    let t = stack.tenant();
    let url = link(&stack, &t, "x").await;

    let user = unique("xu");
    let browser = Browser::start().await;
    browser.open(&url).await;
    browser
        .wait_for_text("h1", |t| t.contains("Connect your X account"))
        .await;
    browser.click("#continue").await;
    browser
        .wait_for_text("h1", |t| t.contains("Authorize"))
        .await;
    browser.type_into("#user", &user).await;
    shot(&browser, "consent").await;
    browser.click("#authorize").await;
    let done = browser
        .wait_for_text("#connected", |t| t.contains("is connected"))
        .await;
    assert!(done.contains(&user), "{done}");
    shot(&browser, "connected").await;
    browser.close().await;

    publish_through(&stack, &t, "x", &user).await;
}

#[tokio::test]
async fn a_facebook_user_picks_one_of_their_pages_and_it_publishes_once() {
    let stack = Stack::running();
    let t = stack.tenant();
    let url = link(&stack, &t, "facebook").await;
    let (first, second) = (unique("pa"), unique("pb"));
    let browser = Browser::start().await;
    browser.open(&url).await;
    browser
        .wait_for_text("h1", |t| t.contains("Connect your Facebook account"))
        .await;
    browser.click("#continue").await;
    browser
        .wait_for_text("h1", |t| t.contains("Authorize"))
        .await;
    browser.type_into("#user", &unique("fbu")).await;
    browser
        .type_into("#pages", &format!("{first},{second}"))
        .await;
    browser.click("#authorize").await;
    browser
        .wait_for_text("h1", |t| t.contains("Which Facebook account?"))
        .await;
    browser.click(&format!("#choice-{second}")).await;
    shot(&browser, "facebook-pick").await;
    browser.click("#connect").await;
    let done = browser
        .wait_for_text("#connected", |t| t.contains("is connected"))
        .await;
    assert!(done.contains(&format!("Page {second}")), "{done}");
    browser.close().await;
    publish_through(&stack, &t, "facebook", &second).await;
    let (_, _, accounts) = stack.get("/v1/accounts", &t).await;
    assert_eq!(
        accounts["items"].as_array().unwrap().len(),
        1,
        "only the Page picked"
    );
}

#[tokio::test]
async fn a_linkedin_member_picks_an_organisation_they_administer_and_it_publishes_once() {
    let stack = Stack::running();
    let t = stack.tenant();
    let url = link(&stack, &t, "linkedin").await;
    let (first, second) = (unique("1"), unique("2"));
    let browser = Browser::start().await;
    browser.open(&url).await;
    browser.click("#continue").await;
    browser
        .wait_for_text("h1", |t| t.contains("Authorize"))
        .await;
    browser.type_into("#user", &unique("member")).await;
    browser
        .type_into("#orgs", &format!("{first},{second}"))
        .await;
    browser.click("#authorize").await;
    browser
        .wait_for_text("h1", |t| t.contains("Which LinkedIn account?"))
        .await;
    let choices = browser.text("#pick").await;
    assert!(
        choices.contains("Member ") && choices.contains(&first),
        "{choices}"
    );
    browser.click(&format!("#choice-{second}")).await;
    browser.click("#connect").await;
    browser
        .wait_for_text("#connected", |t| t.contains("is connected"))
        .await;
    browser.close().await;
    publish_through(&stack, &t, "linkedin", &second).await;
}
