//! Every HTTP client here trusts the root certificates compiled into the binary
//! (`webpki-root-certs`, Mozilla's set), not the system store: reading that store (a bundle and
//! 146 files under `/etc/ssl/certs`) cost each function's cold start several milliseconds, and
//! the outbound sender, which builds a client per delivery, paid it on every delivery.

use std::sync::LazyLock;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compiled_in_root_is_trusted() {
        assert_eq!(ROOTS.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        client().build().unwrap();
    }
}
