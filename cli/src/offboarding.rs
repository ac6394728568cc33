//! `herald tenant export|erase`: which tables, bucket and operator; the decisions are
//! `herald_domain::offboarding`'s.

use herald_aws::Clients;
use herald_aws::dynamo::{DynamoStore, DynamoTables};
use herald_aws::s3::S3Media;
use herald_domain::backup::TableRef;
use herald_domain::clock::SystemClock;
use herald_domain::ids::TenantId;
use herald_domain::offboarding::export::Operator;
use herald_domain::offboarding::{self, ErasePlan};
use std::path::Path;

/// The tables a tenant's data is in, by role (`main`, `audit`, `idempotency`).
pub struct Tables<'a> {
    pub main: &'a TableRef,
    pub audit: &'a TableRef,
    pub idempotency: &'a TableRef,
}

fn operator<'a>(
    port: &'a DynamoTables,
    store: &'a DynamoStore,
    main: &'a TableRef,
) -> Operator<'a> {
    Operator {
        tables: port,
        main,
        tenants: store,
        audit: store,
        clock: &SystemClock,
        actor: crate::actor(),
        user_agent: Some(concat!("herald-cli/", env!("CARGO_PKG_VERSION")).into()),
    }
}

fn check(tables: &Tables<'_>) -> Result<(), String> {
    for t in [tables.main, tables.audit, tables.idempotency] {
        if t.name.is_empty() {
            return Err(format!(
                "name the {} table (--{}-table or its HERALD_ variable)",
                t.role, t.role
            ));
        }
    }
    Ok(())
}

pub async fn export(
    clients: &Clients,
    store: &DynamoStore,
    tables: &Tables<'_>,
    tenant: String,
    dir: &Path,
) -> Result<serde_json::Value, String> {
    check(tables)?;
    let port = DynamoTables::new(clients.dynamodb.clone());
    let done = offboarding::export(&operator(&port, store, tables.main), &TenantId(tenant), dir)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_value(done).map_err(|e| e.to_string())
}

pub async fn erase(
    clients: &Clients,
    store: &DynamoStore,
    tables: &Tables<'_>,
    bucket: &str,
    tenant: String,
    confirm: &str,
) -> Result<serde_json::Value, String> {
    check(tables)?;
    if bucket.is_empty() {
        return Err("name the media bucket (--media-bucket or HERALD_MEDIA_BUCKET)".into());
    }
    let port = DynamoTables::new(clients.dynamodb.clone());
    let media = S3Media::new(clients.s3.clone(), bucket);
    let plan = ErasePlan {
        operator: operator(&port, store, tables.main),
        idempotency: tables.idempotency,
        rewrite: store,
        media: &media,
        dead_letters: store,
    };
    let done = offboarding::erase(&plan, &TenantId(tenant), confirm)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_value(done).map_err(|e| e.to_string())
}
