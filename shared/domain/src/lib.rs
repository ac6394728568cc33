//! Herald's domain: what a tenant, an account, a post and its per-platform variants are, the
//! rules that move them between states, and the ports (traits) through which the services
//! reach storage, queues and platforms.
//!
//! This crate must never depend on an AWS SDK or an HTTP framework: adapters live in
//! `herald-aws` and `herald-platforms`, the HTTP surface in `herald-api`.

pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod backup;
pub mod campaigns;
pub mod clock;
pub mod connect;
pub mod console;
pub mod contacts;
pub mod dead_letters;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod ids;
pub mod imports;
pub mod inbound;
pub mod ingest;
pub mod media;
pub mod metrics;
pub mod model;
pub mod offboarding;
pub mod outbound;
pub mod ports;
pub mod publishing;
pub mod rate_limits;
pub mod resets;
pub mod secrets;
pub mod tenants;
pub mod wallet;
pub mod zone;

#[cfg(feature = "memory")]
pub mod memory;

pub use error::StoreError;

/// `Debug` for a type whose parts are trait objects (ports, clients, caches) that have none:
/// prints the named fields and marks the rest as hidden, so no secret or port leaks into a log.
/// `debug_fields!(Dispatcher, config)`. Hand-written: the derive crates that can skip fields
/// (`educe`, `derivative`) want an attribute on every skipped field instead.
#[macro_export]
macro_rules! debug_fields {
    ($type:ident $(, $field:ident)* $(,)?) => {
        impl ::std::fmt::Debug for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($type))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}
