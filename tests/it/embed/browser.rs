//! The embeddable dashboard in a real browser, driven as a site's operator would use it (type
//! the token, click "Show"): headless Chromium frames the page from an allowed origin and is
//! refused from another.

use super::*;
use crate::support::browser::Browser;

/// A site of its own on loopback: its origin, and the listener to serve its page with.
async fn site() -> (String, tokio::net::TcpListener) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    (origin, listener)
}

/// Serves `html` as `/host.html` until the test ends.
fn serve(listener: tokio::net::TcpListener, html: String) {
    let app = axum::Router::new().route(
        "/host.html",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
}

/// A page of a site that embeds the dashboard: the site's operator pastes an embed token and
/// clicks "Show"; the page then frames the dashboard, writes what the dashboard's ready message
/// said into `#ready`, what its own `fetch` of the data got into `#fetch`, and `loaded` into
/// `#frame` once the frame has loaded (whether it rendered or was refused).
fn host_page(api: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head>
<body style="font-family:sans-serif;margin:12px">
<h2>Our shop's stats</h2>
<input id="token" size="40" placeholder="embed token"> <button id="show">Show</button>
<pre id="ready">no dashboard</pre>
<pre id="fetch">no data</pre>
<pre id="frame">not loaded</pre>
<iframe id="dash" width="640" height="760" style="border:1px solid #ccc"></iframe>
<script>
window.addEventListener("message", function (e) {{
  if (e.origin === "{api}" && e.data && e.data.type === "herald:embed-ready") {{
    document.getElementById("ready").textContent = JSON.stringify(e.data);
    document.getElementById("dash").height = e.data.height + 20;
  }}
}});
document.getElementById("show").addEventListener("click", function () {{
  var token = document.getElementById("token").value;
  var frame = document.getElementById("dash");
  frame.addEventListener("load", function () {{ document.getElementById("frame").textContent = "loaded"; }});
  frame.src = "{api}/embed/v1/dashboards/overview?token=" + encodeURIComponent(token);
  fetch("{api}/embed/v1/dashboards/overview/data", {{ headers: {{ authorization: "Bearer " + token }} }})
    .then(function (r) {{ return r.json().then(function (j) {{ return "status " + r.status + " " + JSON.stringify(j); }}); }})
    .catch(function (e) {{ return "refused: " + e; }})
    .then(function (t) {{ document.getElementById("fetch").textContent = t; }});
}});
</script>
</body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_dashboard_framed_by_an_allowed_origin_and_not_by_another() {
    let stack = Stack::running();
    let t = stack.tenant();
    stack.publish_one(&t).await;
    let api = stack.url("HERALD_API_URL").trim_end_matches('/').to_owned();

    // Two sites on loopback: the tenant's (in the token) and a stranger's (not).
    let (shop, shop_listener) = site().await;
    let (stranger_site, stranger_listener) = site().await;
    let (s, _, issued) = stack
        .issue(
            &t.key,
            json!({"dashboard": "overview", "origins": [shop], "ttl_seconds": 300}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    serve(shop_listener, host_page(&api));
    serve(stranger_listener, host_page(&api));
    let browser = Browser::start().await;

    // Allowed: the framed page rendered its charts and told its parent what they show; the
    // site's own fetch of the data got the tenant's numbers.
    browser.open(&format!("{shop}/host.html")).await;
    browser.type_into("#token", &token).await;
    browser.click("#show").await;
    let ready = browser
        .wait_for_text("#ready", |t| t != "no dashboard")
        .await;
    let ready: Value = serde_json::from_str(&ready)
        .unwrap_or_else(|e| panic!("the dashboard's ready message is not JSON ({e}): {ready}"));
    assert_eq!(ready["dashboard"], "overview");
    let by_platform = ready["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "published_by_platform")
        .unwrap();
    assert_eq!(
        by_platform["points"],
        json!([["x", 1], ["facebook", 0], ["linkedin", 0]])
    );
    let fetched = browser.wait_for_text("#fetch", |t| t != "no data").await;
    assert!(fetched.starts_with("status 200 "), "{fetched}");
    let data: Value = serde_json::from_str(fetched.trim_start_matches("status 200 ")).unwrap();
    assert_eq!(point(&data, "published_by_platform", "x"), 1);
    let shot = repo_root().join("target/embed-dashboard.png");
    assert!(
        browser.screenshot(&shot).await > 10_000,
        "a blank screenshot"
    );

    // Refused: the same token framed by another origin renders nothing (the page answers 403,
    // and frame-ancestors would stop it anyway), and the stranger's fetch gets no CORS grant.
    browser.open(&format!("{stranger_site}/host.html")).await;
    browser.type_into("#token", &token).await;
    browser.click("#show").await;
    let fetched = browser.wait_for_text("#fetch", |t| t != "no data").await;
    assert!(fetched.starts_with("refused: "), "{fetched}");
    browser.wait_for_text("#frame", |t| t == "loaded").await;
    // A rendered dashboard would have posted its ready message by now; give it a moment more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(browser.text("#ready").await, "no dashboard");
    browser
        .screenshot(&repo_root().join("target/embed-dashboard-refused.png"))
        .await;
    browser.close().await;
}
