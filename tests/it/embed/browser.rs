//! The embeddable dashboard in a real browser: headless Chromium frames the page from an
//! allowed origin and is refused from another.

use super::*;

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

/// A page of a site that frames the dashboard, writes what the dashboard's ready message said
/// into `#ready`, and what its own `fetch` of the data got into `#fetch`.
fn host_page(api: &str, token: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head>
<body style="font-family:sans-serif;margin:12px">
<h2>Our shop's stats</h2>
<pre id="ready">no dashboard</pre>
<pre id="fetch">no data</pre>
<iframe id="dash" src="{api}/embed/v1/dashboards/overview?token={token}" width="640" height="760" style="border:1px solid #ccc"></iframe>
<script>
window.addEventListener("message", function (e) {{
  if (e.origin === "{api}" && e.data && e.data.type === "herald:embed-ready") {{
    document.getElementById("ready").textContent = JSON.stringify(e.data);
    document.getElementById("dash").height = e.data.height + 20;
  }}
}});
fetch("{api}/embed/v1/dashboards/overview/data", {{ headers: {{ authorization: "Bearer {token}" }} }})
  .then(function (r) {{ return r.json().then(function (j) {{ return "status " + r.status + " " + JSON.stringify(j); }}); }})
  .catch(function (e) {{ return "refused: " + e; }})
  .then(function (t) {{ document.getElementById("fetch").textContent = t; }});
</script>
</body></html>"#
    )
}

/// Runs headless Chromium on `url` with the flags this machine needs; `extra` adds the mode
/// (`--dump-dom`, `--screenshot=...`). Returns stdout.
async fn chromium(url: String, extra: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let profile =
            std::env::temp_dir().join(format!("herald-chromium-{}", uuid::Uuid::new_v4().simple()));
        let out = std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=700,1000",
                "--virtual-time-budget=10000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium (infra/test.sh installs Debian's chromium)");
        let _ = std::fs::remove_dir_all(&profile);
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .unwrap()
}

fn element_text<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!(r#"<pre id="{id}">"#))
        .unwrap_or_else(|| panic!("no #{id} in {dom}"));
    let rest = &dom[start..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    &rest[..rest.find("</pre>").unwrap()]
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
    serve(shop_listener, host_page(&api, &token));
    serve(stranger_listener, host_page(&api, &token));

    // Allowed: the framed page rendered its charts and told its parent what they show; the
    // site's own fetch of the data got the tenant's numbers.
    let dom = chromium(format!("{shop}/host.html"), vec!["--dump-dom".into()]).await;
    let ready: Value = serde_json::from_str(&html_unescape(element_text(&dom, "ready")))
        .unwrap_or_else(|e| panic!("the dashboard did not report rendering ({e}): {dom}"));
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
    let fetched = html_unescape(element_text(&dom, "fetch"));
    assert!(fetched.starts_with("status 200 "), "{fetched}");
    let data: Value = serde_json::from_str(fetched.trim_start_matches("status 200 ")).unwrap();
    assert_eq!(point(&data, "published_by_platform", "x"), 1);

    let shot = repo_root().join("target/embed-dashboard.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        format!("{shop}/host.html"),
        vec![format!("--screenshot={}", shot.display())],
    )
    .await;
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );

    // Refused: the same token framed by another origin renders nothing (the page answers 403,
    // and frame-ancestors would stop it anyway), and the stranger's fetch gets no CORS grant.
    let dom = chromium(
        format!("{stranger_site}/host.html"),
        vec!["--dump-dom".into()],
    )
    .await;
    assert_eq!(element_text(&dom, "ready"), "no dashboard", "{dom}");
    let fetched = html_unescape(element_text(&dom, "fetch"));
    assert!(fetched.starts_with("refused: "), "{fetched}");
    let shot = repo_root().join("target/embed-dashboard-refused.png");
    chromium(
        format!("{stranger_site}/host.html"),
        vec![format!("--screenshot={}", shot.display())],
    )
    .await;
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}
