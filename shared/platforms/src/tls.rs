//! Every HTTP client here trusts the root certificates compiled into the binary
//! (`webpki-root-certs`, Mozilla's set), not the system store: reading that store (a bundle and
//! 146 files under `/etc/ssl/certs`) cost each function's cold start several milliseconds, and
//! the outbound sender, which builds a client per delivery, paid it on every delivery.

use std::sync::{Arc, LazyLock};

/// The compiled-in roots as reqwest certificates, made once per process (each client's build
/// still parses them into its own root store).
static ROOTS: LazyLock<Vec<reqwest::Certificate>> = LazyLock::new(|| {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
        .collect()
});

/// A client builder trusting only the compiled-in roots, with Herald's user agent.
pub fn client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_certs_only(ROOTS.iter().cloned())
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
}

/// A client made on its first request: a cold start whose first event calls no platform builds
/// none (a client's build parses every root into its own store: a third of a millisecond and
/// more, measured in `make bench`). It derefs to the client.
#[derive(Clone)]
pub(crate) struct LazyClient(
    Arc<LazyLock<reqwest::Client, Box<dyn FnOnce() -> reqwest::Client + Send>>>,
);

impl LazyClient {
    /// [`client`], with what `configure` adds (timeouts, redirect policy).
    pub(crate) fn new(
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + 'static,
    ) -> Self {
        Self(Arc::new(LazyLock::new(Box::new(move || {
            configure(client())
                .build()
                // Fails only if rustls refuses the compiled-in roots, which a test builds.
                .expect("an HTTP client over the compiled-in roots")
        }))))
    }
}

impl std::ops::Deref for LazyClient {
    type Target = reqwest::Client;

    fn deref(&self) -> &reqwest::Client {
        &self.0
    }
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyClient")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compiled_in_root_is_trusted() {
        assert_eq!(ROOTS.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        client().build().unwrap();
    }
}
