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
        let client = match crate::tls::client()
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use herald_domain::outbound::guard::{TargetPolicy, check_url};
    use herald_webhooks::standard::SignedHeaders;
    use std::net::SocketAddr;
    use std::time::Duration;

    async fn server() -> SocketAddr {
        let app = Router::new()
            .route(
                "/ok",
                post(|headers: HeaderMap| async move {
                    // The signature headers arrive as sent.
                    let ok = headers.get("webhook-id").is_some_and(|v| v == "msg_1")
                        && headers
                            .get("content-type")
                            .is_some_and(|v| v == "application/json");
                    if ok {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::BAD_REQUEST
                    }
                }),
            )
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    StatusCode::OK
                }),
            )
            .route(
                "/redirect",
                post(|| async { (StatusCode::FOUND, [("location", "/ok")]).into_response() }),
            )
            .route(
                "/busy",
                post(|| async {
                    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")]).into_response()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    async fn send(addr: SocketAddr, path: &str, timeout: Duration) -> AttemptResult {
        // A name that resolves nowhere: only the pin can take the request to the server.
        let target = check_url(
            &format!("http://hooks.invalid:{}{path}", addr.port()),
            TargetPolicy {
                allow_private: true,
            },
        )
        .unwrap();
        let headers = SignedHeaders {
            id: "msg_1".into(),
            timestamp: "1".into(),
            signature: "v1,x".into(),
        };
        HttpWebhookSender
            .post(PinnedRequest {
                target: &target,
                address: addr,
                headers: &headers,
                body: b"{}",
                timeout,
            })
            .await
    }

    #[tokio::test]
    async fn posts_to_the_pinned_address_and_reads_the_answer() {
        let addr = server().await;
        let long = Duration::from_secs(5);
        assert_eq!(
            send(addr, "/ok", long).await,
            AttemptResult::Answered {
                status: 204,
                retry_after: None
            }
        );
        assert_eq!(
            send(addr, "/busy", long).await,
            AttemptResult::Answered {
                status: 429,
                retry_after: Some(Duration::from_secs(7))
            }
        );
        // A redirect is an answer, never followed (it could lead past the guard).
        assert!(matches!(
            send(addr, "/redirect", long).await,
            AttemptResult::Answered { status: 302, .. }
        ));
        assert_eq!(
            send(addr, "/slow", Duration::from_millis(300)).await,
            AttemptResult::TimedOut
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert_eq!(
            send(closed, "/ok", long).await,
            AttemptResult::Failed("could not connect".into())
        );
    }

    #[tokio::test]
    async fn the_system_resolver_resolves_and_refuses() {
        let ips = SystemResolver.resolve("localhost", 80).await.unwrap();
        assert!(ips.iter().all(|ip| ip.is_loopback()), "{ips:?}");
        assert!(SystemResolver.resolve("hooks.invalid", 443).await.is_err());
    }
}
