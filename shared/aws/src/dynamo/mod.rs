//! DynamoDB adapters. One table holds tenants, API keys, accounts and posts (keys below);
//! idempotency records live in their own table with a TTL. All item ↔ type conversion is in
//! [`items`]; every access pattern is listed in `docs/data-model.md`.
//!
//! | item      | pk                 | sk                 |
//! |-----------|--------------------|--------------------|
//! | tenant    | `TENANT#<tenant>`  | `TENANT`           |
//! | API key   | `APIKEY#<sha256>`  | `APIKEY`           | (`keys` index: `TENANTKEYS#<tenant>`, key id)
//! | account   | `TENANT#<tenant>`  | `ACCOUNT#<acc>`    |
//! | post      | `TENANT#<tenant>`  | `POST#<post>`      |
//! | crisis    | `TENANT#<tenant>`  | `CRISIS`           |
//! | rate window | `RATE#<scope>`   | `WINDOW#<index>`   |
//! | app block | `RATE#app#<platform>` | `BLOCK`         |
//! | media     | `TENANT#<tenant>`  | `MEDIA#<media>`    |
//! | webhook sighting | `WEBHOOK#<provider>` | `SEEN#<event id>` |
//! | dead letter | `TENANT#<tenant or operators>` | `DEADLETTER#<ms>-<message id>` |
//! | dead-letter counts | `DEADLETTERS`    | `COUNT`            |
//! | media usage | `TENANT#<tenant>`  | `MEDIAUSAGE`       |
//!
//! A post carries its variants in a map, so a claim, an outcome, an edit and a cancel are
//! each one conditional write on one item. The sparse `due` index (`due_pk` =
//! `DUE#<shard>`, `due_sk` = `<epoch ms>#<tenant>#<post>`) holds only posts the dispatcher
//! still has to hand over.

mod alerts;
mod analytics;
mod audit;
mod calendar;
mod campaign_upkeep;
mod campaigns;
mod connect;
mod console;
mod contacts;
mod crisis;
mod dead_letters;
mod embed;
mod health;
mod idempotency;
mod imports;
mod inbound;
mod ingest;
pub mod items;
mod keys;
mod limits;
mod media;
mod ops;
mod outbound;
mod publish;
mod resets;
mod slots;
mod store;
mod tables;
mod tokens;
mod wallet;

pub use idempotency::DynamoIdempotency;
pub use store::DynamoStore;
pub use tables::DynamoTables;
