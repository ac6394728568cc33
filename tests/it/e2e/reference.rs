//! The API reference page in headless Chromium on the local stack: Swagger UI, served by the
//! API itself, renders every operation of the API's own document. Screenshot:
//! `target/reference.png`.

use super::*;
use crate::support::browser::Browser;

#[tokio::test]
async fn the_reference_page_renders_every_operation_of_the_document() {
    let stack = Stack::running();
    let doc = json_of(stack.http.get(stack.api_url("/v1/openapi.json"))).await;
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| {
            p.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .count()
        })
        .sum();
    assert!(operations > 40, "{operations}");
    let browser = Browser::start().await;
    browser.resize(1280, 1000).await;
    browser.open(&stack.api_url("/v1/reference")).await;
    browser.wait_for_any(&[".opblock"]).await;
    let title = browser
        .wait_for_text(".info .title", |t| t.contains("Herald"))
        .await;
    assert!(title.contains("Herald"), "{title}");
    assert_eq!(browser.count(".opblock").await, operations);
    let path = repo_root().join("target/reference.png");
    assert!(browser.screenshot(&path).await > 5_000, "a blank page?");
    browser.close().await;
}
