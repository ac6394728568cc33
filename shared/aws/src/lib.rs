//! AWS adapters for Herald's ports (DynamoDB, SQS, S3, Secrets Manager) and the start-up
//! plumbing every Lambda binary shares: configuration from the environment, telemetry, and SDK
//! clients (with a call counter).
//!
//! SDK types stop here: every adapter returns domain types and domain errors.

pub mod calls;
pub mod config;
pub mod dead_letters;
pub mod dynamo;
pub mod errors;
pub mod health;
pub mod ingest_queue;
pub mod lambda;
pub mod metrics;
pub mod outbound;
pub mod queue;
pub mod s3;
pub mod secrets;
pub mod sqs;
pub mod telemetry;
pub mod tls;

use aws_config::SdkConfig;
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use std::sync::{Arc, LazyLock};

/// The SDK clients a binary may need, each built on its first use.
///
/// Constructing an SDK client is not free (each parses its service's endpoint partitions and
/// compiles their region patterns), and most functions use two or three of the four: the
/// handles defer each construction to the first call through it, so a cold start builds only
/// what its first event needs.
#[derive(Debug, Clone)]
pub struct Clients {
    pub dynamodb: Lazy<aws_sdk_dynamodb::Client>,
    pub sqs: Lazy<aws_sdk_sqs::Client>,
    pub s3: Lazy<aws_sdk_s3::Client>,
    pub secrets: Lazy<aws_sdk_secretsmanager::Client>,
    /// Only the health check reads CloudWatch (a queue's oldest message age).
    pub cloudwatch: Lazy<aws_sdk_cloudwatch::Client>,
    pub calls: Arc<calls::CallCounter>,
}

impl Clients {
    /// Loads region, credentials and `AWS_ENDPOINT_URL` (the local emulator) the standard way,
    /// except that credentials in the environment (as Lambda gives every function its role's)
    /// are read from there without building the default chain behind them (profile files, web
    /// identity with its own STS client, containers, instance metadata), which would look at
    /// the environment first anyway. Without them, the default chain stands.
    pub async fn load() -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(tls::http_client());
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
        }
        Self::from_sdk_config(&loader.load().await)
    }

    pub fn from_sdk_config(sdk: &SdkConfig) -> Self {
        Self::with_dynamodb_config(sdk, sdk)
    }

    /// As [`Clients::from_sdk_config`], with DynamoDB at `endpoint`: what
    /// `AWS_ENDPOINT_URL_DYNAMODB` does for [`Clients::load`], for a caller that builds its own
    /// config (the tests, whose local DynamoDB runs beside the emulator of the other services).
    pub fn with_dynamodb_endpoint(sdk: &SdkConfig, endpoint: &str) -> Self {
        Self::with_dynamodb_config(sdk, &sdk.to_builder().endpoint_url(endpoint).build())
    }

    fn with_dynamodb_config(sdk: &SdkConfig, dynamodb_sdk: &SdkConfig) -> Self {
        let calls = Arc::new(calls::CallCounter::default());
        let dynamodb = Self::lazy(dynamodb_sdk, &calls, |sdk, counted| {
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .interceptor(counted)
                    .build(),
            )
        });
        let sqs = Self::lazy(sdk, &calls, |sdk, counted| {
            aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(sdk)
                    .interceptor(counted)
                    .build(),
            )
        });
        // An emulator's endpoint has no per-bucket host names: address buckets by path there.
        // Checksums only where S3 requires them: a presigned URL carries no body to sum, and
        // reads are tied to a version by their entity tag.
        let s3 = Self::lazy(sdk, &calls, |sdk, counted| {
            aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(sdk)
                    .force_path_style(sdk.endpoint_url().is_some())
                    .request_checksum_calculation(
                        aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                    )
                    .response_checksum_validation(
                        aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
                    )
                    .interceptor(counted)
                    .build(),
            )
        });
        let secrets = Self::lazy(sdk, &calls, |sdk, counted| {
            aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(sdk)
                    .interceptor(counted)
                    .build(),
            )
        });
        let cloudwatch = Self::lazy(sdk, &calls, |sdk, counted| {
            aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(sdk)
                    .interceptor(counted)
                    .build(),
            )
        });
        Self {
            dynamodb,
            sqs,
            s3,
            secrets,
            cloudwatch,
            calls,
        }
    }

    /// A client `build` makes from the shared config and the call counter, on first use.
    fn lazy<T: Send + Sync + 'static>(
        sdk: &SdkConfig,
        calls: &Arc<calls::CallCounter>,
        build: fn(&SdkConfig, calls::Interceptor) -> T,
    ) -> Lazy<T> {
        let (sdk, calls) = (sdk.clone(), calls.clone());
        Lazy::new(move || build(&sdk, calls::Interceptor(calls)))
    }
}

/// A value made on its first use and shared by every clone of the handle; it derefs to the
/// value, so an adapter holding `Lazy<Client>` calls the client as it would a `Client`.
pub struct Lazy<T>(Arc<LazyLock<T, Box<dyn FnOnce() -> T + Send>>>);

impl<T> Lazy<T> {
    pub fn new(make: impl FnOnce() -> T + Send + 'static) -> Self {
        Self(Arc::new(LazyLock::new(Box::new(make))))
    }
}

/// One already made (tests hand adapters the clients they built).
impl<T: Send + 'static> From<T> for Lazy<T> {
    fn from(value: T) -> Self {
        Self::new(move || value)
    }
}

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lazy(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_lazy_value_is_made_on_first_use_and_once_for_every_clone() {
        let made = Arc::new(AtomicUsize::new(0));
        let counter = made.clone();
        let lazy = Lazy::new(move || counter.fetch_add(1, Ordering::SeqCst) + 41);
        let clone = lazy.clone();
        assert_eq!(made.load(Ordering::SeqCst), 0, "made before its first use");
        assert_eq!(*clone, 41);
        assert_eq!(*lazy, 41);
        assert_eq!(made.load(Ordering::SeqCst), 1);
    }
}
