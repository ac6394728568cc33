//! Connecting an X account by link, in headless Chromium against the local stack and the fake
//! X's consent page: open the link, continue to X, sign in and authorise, land on Herald's
//! "connected" page, see the account active, and publish through it once.

use super::*;
use crate::support::browser::Browser;

async fn shot(browser: &Browser, name: &str) {
    let path = repo_root().join(format!("target/connect-{name}.png"));
    assert!(
        browser.screenshot(&path).await > 3_000,
        "{name}: a blank page?"
    );
}

#[tokio::test]
async fn an_x_account_connected_by_link_publishes_once() {
    let stack = Stack::running();
    let t = stack.tenant();
    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/connect-links",
            &t,
            Some(&unique("k-")),
            Some(json!({"platform": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let url = v["url"].as_str().unwrap().to_owned();
    let secret = url.rsplit('/').next().unwrap();
    secrets::remember("connect_link", secret);
    assert!(url.starts_with(&stack.api_url("/connect/hrldl_")), "{url}");

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

    let (_, _, accounts) = stack.get("/v1/accounts", &t).await;
    let account = accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["external_id"] == user.as_str())
        .unwrap_or_else(|| panic!("{accounts}"))
        .clone();
    assert_eq!(account["status"], "active");
    let post = stack
        .schedule(&t, account["id"].as_str().unwrap(), "connected by link", 0)
        .await;
    let id = post["id"].as_str().unwrap().to_owned();
    stack
        .wait_for(
            PUBLISH_TIMEOUT,
            "the post through the linked account",
            || async { (stack.read_post(&t, &id).await["status"] == "published").then_some(()) },
        )
        .await;
    assert_eq!(stack.fake_posts("x", &user).await.len(), 1);
    let (_, _, log) = stack.get("/v1/audit?action=account.connected", &t).await;
    assert_eq!(log["items"][0]["new"]["via"], "connect_link", "{log}");
}
