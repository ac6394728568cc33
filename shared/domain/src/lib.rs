//! Herald's domain: what a tenant, an account, a post and its per-platform variants are, the
//! rules that move them between states, and the ports (traits) through which the services
//! reach storage, queues and platforms.
//!
//! This crate must never depend on an AWS SDK or an HTTP framework: adapters live in
//! `herald-aws` and `herald-platforms`, the HTTP surface in `herald-api`.

pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod clock;
pub mod dead_letters;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod inbound;
pub mod ingest;
pub mod media;
pub mod model;
pub mod outbound;
pub mod ports;
pub mod publishing;
pub mod secrets;
pub mod tenants;

#[cfg(feature = "memory")]
pub mod memory;

pub use error::StoreError;
