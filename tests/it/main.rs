//! One test binary: `store` and `secrets` drive the AWS adapters and the function handlers
//! against a moto server these tests start; `e2e` drives the real binaries on the local stack.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

mod e2e;
mod secrets;
mod store;
mod webhooks;
