//! One browser for the tests that need one: Debian's headless Chromium, driven over WebDriver by
//! its `chromedriver` (`infra/test.sh` installs both) through fantoccini. A test opens pages,
//! types, clicks, waits for what a user would see, and takes screenshots.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// A Chromium session and the `chromedriver` process serving it; the driver ends with the value.
pub struct Browser {
    client: Client,
    driver: Child,
}

impl Browser {
    /// Starts `chromedriver` on a free loopback port and opens a headless session on it.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromedriver (infra/test.sh installs Debian's chromium-driver)");
        let mut browser = Self {
            client: Self::connect(port).await,
            driver,
        };
        browser.set_window().await;
        browser
    }

    /// A session, once the driver answers (it takes a moment to listen).
    async fn connect(port: u16) -> Client {
        let capabilities = json!({
            "goog:chromeOptions": {
                "args": [
                    "--headless=new",
                    // Tests run as root here, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                ]
            }
        });
        let capabilities = capabilities.as_object().cloned().unwrap_or_default();
        let started = Instant::now();
        loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => return client,
                Err(e) if started.elapsed() > PATIENCE => panic!("no WebDriver session: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn set_window(&mut self) {
        self.client
            .set_window_size(700, 1000)
            .await
            .expect("set the window size");
    }

    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element `css` selects, once it is on the page (a page's script may draw it after
    /// the page has loaded).
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        let started = Instant::now();
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(e) if started.elapsed() > PATIENCE => panic!("no {css} on the page: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The text an element shows, as a user reads it (no markup, entities decoded). The page
    /// may draw the element again between finding and reading it (a stale reference): it is
    /// found again, a few times, before that counts as a failure.
    pub async fn text(&self, css: &str) -> String {
        let mut last = None;
        for _ in 0..5 {
            match self.element(css).await.text().await {
                Ok(text) => return text,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("read {css}: {last:?}")
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |found| found.len())
    }

    /// The text of `css`, if it is on the page.
    pub async fn try_text(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    /// Waits until one of `selectors` is on the page; answers which.
    pub async fn wait_for_any<'a>(&self, selectors: &[&'a str]) -> &'a str {
        let started = Instant::now();
        loop {
            for css in selectors {
                if self.client.find(Locator::Css(css)).await.is_ok() {
                    return css;
                }
            }
            assert!(
                started.elapsed() < PATIENCE,
                "none of {selectors:?} after {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` shows text `done` accepts, and returns it.
    pub async fn wait_for_text(&self, css: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            // Absent, or drawn again between finding and reading: not yet, like a text not
            // yet done.
            let text = self.try_text(css).await;
            if let Some(text) = &text
                && done(text)
            {
                return text.clone();
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{css} still shows {text:?} after {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into the field `css`, as keystrokes.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.element(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clicks `css`. A view drawn again between finding and clicking the element (a stale
    /// reference: the click never happened) finds it again, a few times.
    pub async fn click(&self, css: &str) {
        for _ in 0..5 {
            match self.element(css).await.click().await {
                Ok(_) => return,
                Err(e) if e.to_string().contains("stale element") => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
        panic!("click {css}: the element went stale five times")
    }

    /// The value of the cookie `name` the browser holds for the open page's site (WebDriver
    /// sees HttpOnly cookies, which the page's scripts cannot).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_owned())
    }

    /// Resizes the window (the default suits a narrow page).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("set the window size");
    }

    /// Saves what the window shows as a PNG at `path`; returns its size in bytes.
    pub async fn screenshot(&self, path: &Path) -> usize {
        let png = self.client.screenshot().await.expect("take a screenshot");
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        png.len()
    }

    /// Ends the session and its driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    /// A failed test's driver does not outlive it.
    fn drop(&mut self) {
        self.stop_driver();
    }
}
