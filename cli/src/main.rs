//! `herald`: the operator's command line. It talks to the same tables as the functions,
//! through the same adapters, with the standard AWS configuration (`AWS_ENDPOINT_URL` for
//! the local stack).

use clap::{Parser, Subcommand};
use herald_aws::Clients;
use herald_aws::dynamo::DynamoStore;
use herald_domain::clock::SystemClock;
use herald_domain::ids::TenantId;
use herald_domain::model::Role;
use herald_domain::ports::{AuditFilter, AuditLog};
use secrecy::ExposeSecret;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "herald", version, about = "Operate a Herald deployment")]
struct Cli {
    /// The main table (the stack's HeraldTable).
    #[arg(long, env = "HERALD_TABLE", global = true, default_value = "")]
    table: String,
    /// The audit log's table (the stack's AuditTable).
    #[arg(long, env = "HERALD_AUDIT_TABLE", global = true, default_value = "")]
    audit_table: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every hash chain of a tenant's log; prints the findings as JSON and exits 1 when
    /// a record was altered or removed.
    Verify {
        #[arg(long)]
        tenant: String,
    },
    /// The newest records, as JSON lines.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        entity: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant with an admin key; prints {"tenant_id","api_key","role"} as JSON.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        require_approval: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Issue a key for a tenant; prints {"key_id","api_key","role"} as JSON.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = ["admin", "editor", "approver", "viewer"])]
        role: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

async fn audit(store: &DynamoStore, command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { tenant } => match store.export(&TenantId(tenant)).await {
            Ok((records, heads)) => {
                let findings = herald_domain::audit::verify(&records, &heads);
                println!(
                    "{}",
                    serde_json::json!({
                        "records": records.len(),
                        "chains": heads.len(),
                        "ok": findings.is_empty(),
                        "findings": findings,
                    })
                );
                if findings.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("herald: {e}");
                ExitCode::from(2)
            }
        },
        AuditCommand::List {
            tenant,
            entity,
            limit,
        } => {
            let filter = AuditFilter {
                entity,
                ..AuditFilter::default()
            };
            match store.list(&TenantId(tenant), &filter, None, limit).await {
                Ok(page) => {
                    for r in page.items {
                        println!("{}", serde_json::to_string(&r).unwrap_or_default());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("herald: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.table.is_empty() {
        eprintln!("herald: set HERALD_TABLE or --table (the stack's HeraldTable name)");
        return ExitCode::from(2);
    }
    let clients = Clients::load().await;
    let mut store = DynamoStore::new(clients.dynamodb.clone(), &cli.table);
    if !cli.audit_table.is_empty() {
        store = store.with_audit_table(&cli.audit_table);
    }
    let result = match cli.command {
        Command::Audit { command } => return audit(&store, command).await,
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    require_approval,
                },
        } => herald_domain::tenants::create_tenant(&store, &SystemClock, &name, require_approval)
            .await
            .map(|(tenant, key, secret)| {
                serde_json::json!({
                    "tenant_id": tenant.id.as_str(),
                    "key_id": key.id.as_str(),
                    "api_key": secret.expose_secret(),
                    "role": key.role.as_str(),
                })
            }),
        Command::ApiKey {
            command: ApiKeyCommand::Create { tenant, role, name },
        } => {
            let role = Role::parse(&role).unwrap_or(Role::Viewer);
            herald_domain::tenants::issue_api_key(
                &store,
                &SystemClock,
                &TenantId(tenant),
                role,
                &name,
            )
            .await
            .map(|(key, secret)| {
                serde_json::json!({
                    "key_id": key.id.as_str(),
                    "api_key": secret.expose_secret(),
                    "role": key.role.as_str(),
                })
            })
        }
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("herald: {e}");
            ExitCode::FAILURE
        }
    }
}
