//! One test binary: `store` drives the DynamoDB/SQS/S3 adapters and the function handlers
//! against a moto server these tests start; `platforms` drives the platform clients against
//! fake platforms they start; `e2e` drives the real binaries on the local stack.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

mod e2e;
mod platforms;
mod store;
