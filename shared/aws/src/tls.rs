//! The SDK's HTTPS client: the compiled-in root certificates (`webpki-root-certs`, Mozilla's
//! set) instead of the system store, and its connector built on the first request only.
//!
//! Profiled (strace, then perf of a cold start): init was dominated by root certificates.
//! Reading the system store (`/etc/ssl/certs`, a bundle and 146 files) came first; with the
//! roots compiled in, decoding them came next (`rustls_pki_types::pem::read`, half of the API
//! function's CPU), because the SDK's hyper client builds a connector, and so parses every
//! root, each time an SDK client is constructed (`validate_base_client_config`: four clients,
//! four parses, all thrown away), and once more on the first request. [`LazyConnector`] drops
//! the eager builds: one parse per process, on the first AWS call.

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use base64::Engine;
use std::sync::OnceLock;

/// An HTTPS client for every SDK client of a binary (rustls with aws-lc, the SDK's default).
pub fn http_client() -> SharedHttpClient {
    LazyConnector(OnceLock::new()).into_shared()
}

/// The SDK's client, made on the first request, less its eager connector build at every
/// client's construction. The inner client caches its connectors, so every SDK client of a
/// process shares one.
#[derive(Debug)]
struct LazyConnector(OnceLock<SharedHttpClient>);

impl LazyConnector {
    fn inner(&self) -> &SharedHttpClient {
        self.0.get_or_init(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context())
                .build_https()
        })
    }
}

impl HttpClient for LazyConnector {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner().http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner().connector_metadata()
    }
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
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
    use aws_smithy_types::config_bag::ConfigBag;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the eager connector builds an SDK client asks of its HTTP client.
    #[derive(Debug, Default, Clone)]
    struct Counting(Arc<AtomicUsize>);

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            unreachable!("no request is sent")
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn construct_clients(http: SharedHttpClient) {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .http_client(http)
            .build();
        for _ in 0..4 {
            let _ = aws_sdk_sqs::Client::from_conf(config.clone());
        }
    }

    #[test]
    fn constructing_sdk_clients_builds_no_connector() {
        let bare = Counting::default();
        construct_clients(bare.clone().into_shared());
        assert_eq!(bare.0.load(Ordering::SeqCst), 4, "the SDK's eager build");
        let lazy = Counting::default();
        construct_clients(
            LazyConnector(OnceLock::from(SharedHttpClient::new(lazy.clone()))).into_shared(),
        );
        assert_eq!(lazy.0.load(Ordering::SeqCst), 0);
    }

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
