//! The SDK's HTTPS client, trusting the root certificates compiled into the binary
//! (`webpki-root-certs`, Mozilla's set) instead of the system store.
//!
//! Profiled (strace of a cold start): reading the system store (`/etc/ssl/certs`, a bundle and
//! 146 files) was most of every function's init, 3-5 ms of a 9-18 ms cold start. The compiled-in
//! set costs no file system access; the SDK's client still loads it only when it first connects.

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use base64::Engine;

/// An HTTPS client for every SDK client of a binary (rustls with aws-lc, the SDK's default).
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context())
        .build_https()
}

fn context() -> TlsContext {
    TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem_bundle()))
        .build()
        // Only fails for a provider this crate does not select.
        .unwrap_or_default()
}

/// The compiled-in roots as one PEM bundle, the only form the SDK's `TrustStore` takes.
fn pem_bundle() -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        pem.push_str(&b64.encode(cert.as_ref()));
        pem.push_str("\n-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_holds_every_compiled_in_root() {
        let pem = String::from_utf8(pem_bundle()).unwrap();
        assert_eq!(
            pem.matches("-----BEGIN CERTIFICATE-----").count(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
        assert!(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() > 100);
    }
}
