//! The outbound webhook sender and resolver: reqwest, connecting only to the address the SSRF
//! guard checked (`ClientBuilder::resolve` pins the host name to it), never following
//! redirects (a redirect would lead past the guard), never through a proxy.

use async_trait::async_trait;
use herald_domain::outbound::Resolver;
use herald_domain::outbound::deliver::{PinnedRequest, WebhookSender};
use herald_domain::outbound::schedule::{AttemptResult, parse_retry_after};
use std::net::IpAddr;

const USER_AGENT: &str = "Herald-Webhooks/1";

#[derive(Debug, Clone, Copy, Default)]
pub struct HttpWebhookSender;

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn post(&self, request: PinnedRequest<'_>) -> AttemptResult {
        // One client per attempt: the pin is per client, and an attempt is seconds of network
        // against a client's microseconds of setup.
        let client = match reqwest::Client::builder()
            .resolve(&request.target.host, request.address)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(request.timeout)
            .user_agent(USER_AGENT)
            .build()
        {
            Ok(c) => c,
            Err(_) => return AttemptResult::Failed("could not build the HTTP client".into()),
        };
        let mut builder = client
            .post(request.target.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body.to_vec());
        for (name, value) in request.headers.pairs() {
            builder = builder.header(name, value);
        }
        match builder.send().await {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, time::OffsetDateTime::now_utc()));
                AttemptResult::Answered {
                    status: response.status().as_u16(),
                    retry_after,
                }
            }
            Err(e) if e.is_timeout() => AttemptResult::TimedOut,
            Err(e) if e.is_connect() => AttemptResult::Failed("could not connect".into()),
            Err(_) => AttemptResult::Failed("the request failed".into()),
        }
    }
}

/// The system resolver (getaddrinfo through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
        tokio::net::lookup_host((host, port))
            .await
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .map_err(|_| "the host does not resolve".to_owned())
    }
}
