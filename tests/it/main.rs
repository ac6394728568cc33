//! One test binary: `store` and `secrets` drive the AWS adapters (DynamoDB, SQS, S3, Secrets
//! Manager) and the function handlers against emulators these tests start (moto, dynoxide); `platforms`
//! drives the platform clients against fake platforms they start; `e2e` drives the real
//! binaries on the local stack.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

mod analytics;
mod api_access;
mod bluesky;
mod e2e;
mod embed;
mod health;
mod ingest;
mod ingest_store;
mod instagram;
mod mastodon;
mod outbound;
mod outbound_store;
mod platforms;
mod resumable;
mod secrets;
mod store;
mod support;
mod tokens;
mod webhooks;
