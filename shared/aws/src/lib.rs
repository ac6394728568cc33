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
pub mod ingest_queue;
pub mod lambda;
pub mod outbound;
pub mod queue;
pub mod s3;
pub mod secrets;
pub mod sqs;
pub mod telemetry;
pub mod tls;

use std::sync::Arc;

/// The SDK clients a binary needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub calls: Arc<calls::CallCounter>,
}

impl Clients {
    /// Loads region, credentials and `AWS_ENDPOINT_URL` (the local emulator) the standard way.
    pub async fn load() -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(tls::http_client())
            .load()
            .await;
        Self::from_sdk_config(&sdk)
    }

    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        let calls = Arc::new(calls::CallCounter::default());
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(calls::Interceptor(calls.clone()))
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(sdk)
                .interceptor(calls::Interceptor(calls.clone()))
                .build(),
        );
        // An emulator's endpoint has no per-bucket host names: address buckets by path there.
        // Checksums only where S3 requires them: a presigned URL carries no body to sum, and
        // reads are tied to a version by their entity tag.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(sdk.endpoint_url().is_some())
                .request_checksum_calculation(
                    aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                )
                .response_checksum_validation(
                    aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
                )
                .interceptor(calls::Interceptor(calls.clone()))
                .build(),
        );
        let secrets = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(sdk)
                .interceptor(calls::Interceptor(calls.clone()))
                .build(),
        );
        Self {
            dynamodb,
            sqs,
            s3,
            secrets,
            calls,
        }
    }
}
