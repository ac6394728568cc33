//! `herald`: the operator's command line. It talks to the same tables as the functions,
//! through the same adapters, with the standard AWS configuration (`AWS_ENDPOINT_URL` for
//! the local stack).

mod backup;
mod keys;
mod offboarding;
mod resets;
mod wallet;

use clap::{Parser, Subcommand};
use herald_aws::Clients;
use herald_aws::dead_letters::{DeadLetterQueue, SqsDeadLetters};
use herald_aws::dynamo::{DynamoIdempotency, DynamoStore};
use herald_domain::audit::AuditEntry;
use herald_domain::backup::TableRef;
use herald_domain::clock::Clock;
use herald_domain::clock::SystemClock;
use herald_domain::dead_letters::{
    DeadLetterQuery, DeadLetterService, MAX_PAGE, OPERATORS, Operator,
};
use herald_domain::ids::TenantId;
use herald_domain::ingest::{Candidate, IngestStore, StreamKey, set_stream_dry_run};
use herald_domain::ports::{AuditFilter, AuditLog};
use herald_domain::tenants;
use secrecy::ExposeSecret;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(name = "herald", version, about = "Operate a Herald deployment")]
struct Cli {
    /// The main table (the stack's HeraldTable).
    #[arg(long, env = "HERALD_TABLE", global = true, default_value = "")]
    table: String,
    /// The audit log's table (the stack's AuditTable).
    #[arg(long, env = "HERALD_AUDIT_TABLE", global = true, default_value = "")]
    audit_table: String,
    /// The idempotency table (the stack's IdempotencyTable).
    #[arg(
        long,
        env = "HERALD_IDEMPOTENCY_TABLE",
        global = true,
        default_value = ""
    )]
    idempotency_table: String,
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
    /// Connected accounts: reset a circuit.
    Account {
        #[command(subcommand)]
        command: resets::AccountCommand,
    },
    /// Platform apps' blocks: lift one.
    AppBlock {
        #[command(subcommand)]
        command: resets::AppBlockCommand,
    },
    /// Ingest streams: list a tenant's, switch one's dry run, retry one, reindex after upgrading.
    Streams {
        #[command(subcommand)]
        command: StreamCommand,
    },
    /// Credit wallets: show one, grant credits (audited).
    Wallet {
        #[command(subcommand)]
        command: wallet::WalletCommand,
    },
    /// Posts: place those from before the calendar index in it.
    Posts {
        #[command(subcommand)]
        command: PostCommand,
    },
    /// Media usage.
    Media {
        #[command(subcommand)]
        command: MediaCommand,
    },
    /// SMS campaigns: mark those from before the reconciler's live markers.
    Campaigns {
        #[command(subcommand)]
        command: CampaignCommand,
    },
    /// Idempotency records.
    Idempotency {
        #[command(subcommand)]
        command: IdempotencyCommand,
    },
    /// Backups of the whole deployment: export to a directory, restore into an empty one.
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// Dead letters of every tenant (operators).
    DeadLetters {
        /// The publish queue's DLQ (the stack's PublishDeadLetterQueue URL).
        #[arg(long, env = "HERALD_PUBLISH_DLQ_URL")]
        dlq_url: String,
        /// The publish queue, where requeued messages go.
        #[arg(long, env = "HERALD_PUBLISH_QUEUE_URL")]
        queue_url: String,
        /// The inbound webhook queue's DLQ (source `webhooks`), with the queue below.
        #[arg(long, env = "HERALD_WEBHOOK_DLQ_URL", requires = "webhook_queue_url")]
        webhook_dlq_url: Option<String>,
        /// The inbound webhook queue, where its requeued messages go.
        #[arg(long, env = "HERALD_WEBHOOK_QUEUE_URL")]
        webhook_queue_url: Option<String>,
        /// The outbound webhook queue's DLQ (source `outbound`), with the queue below.
        #[arg(long, env = "HERALD_OUTBOUND_DLQ_URL", requires = "outbound_queue_url")]
        outbound_dlq_url: Option<String>,
        /// The outbound webhook queue, where its requeued messages go (with a fresh schedule).
        #[arg(long, env = "HERALD_OUTBOUND_QUEUE_URL")]
        outbound_queue_url: Option<String>,
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DeadLetterCommand {
    /// Move every message waiting in the DLQs into dead-letter records now (the reconciler
    /// does this every minute); prints {"drained": n}.
    Drain,
    /// One JSON line per dead letter of --tenant (default `operators`: messages that name no
    /// tenant, such as providers' webhook events), oldest first.
    List {
        #[arg(long, default_value = OPERATORS)]
        tenant: String,
        /// Only those older than this many seconds.
        #[arg(long)]
        older_than_seconds: Option<i64>,
    },
    /// One dead letter, with its payload.
    Show {
        id: String,
        #[arg(long, default_value = OPERATORS)]
        tenant: String,
    },
    /// Back to the queue: the given ids, or with --all every one of --tenant.
    Requeue {
        ids: Vec<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, default_value = OPERATORS)]
        tenant: String,
    },
    /// Remove for good.
    Delete {
        id: String,
        #[arg(long, default_value = OPERATORS)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
enum PostCommand {
    /// Give posts written before the calendar index (`GET /v1/posts?from=&to=`) their
    /// place in it (once after upgrading, then once more for posts an older function wrote
    /// during the first run); prints {"reindexed": n}.
    Reindex,
}

#[derive(Debug, Subcommand)]
enum CampaignCommand {
    /// Mark every campaign enqueuing or sending live, so the reconciler repairs it if it
    /// stops (once after upgrading); prints {"marked": n}.
    MarkLive,
}

#[derive(Debug, Subcommand)]
enum MediaCommand {
    /// Count every tenant's media again and write its usage (once after upgrading to the
    /// quota, then once more to catch media created during the first run); prints
    /// {"recounted": tenants}.
    Recount,
}

#[derive(Debug, Subcommand)]
enum IdempotencyCommand {
    /// Delete the records written before responses were sealed and bound to their caller
    /// (once, after upgrading); prints {"purged": n}.
    PurgeLegacy,
}

#[derive(Debug, Subcommand)]
enum StreamCommand {
    /// One JSON line per stream of the tenant's connected accounts.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Turn a stream's dry run on or off (its jobs then write nothing); audited.
    DryRun {
        #[arg(long)]
        tenant: String,
        /// e.g. `x:<user>`, `fb-insights:<page>`.
        key: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Make a waiting stream (deferred or not yet due) due now; audited.
    Retry {
        #[arg(long)]
        tenant: String,
        key: String,
    },
    /// Give accounts and streams written before the poller's `poll` index their place in
    /// it (once, after upgrading from a release without the index).
    Reindex,
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
    /// Suspend a tenant: every key of it is refused (403 naming the reason); audited.
    Suspend {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        reason: String,
    },
    /// Resume a suspended tenant; audited.
    Resume {
        #[arg(long)]
        tenant: String,
    },
    /// Write a tenant's posts, accounts (never a token) and audit log to DIR (new or empty);
    /// audited in its log and the operators'.
    Export {
        tenant: String,
        dir: std::path::PathBuf,
    },
    /// Erase a tenant for good: suspended first, then its keys, accounts and tokens, posts,
    /// media (objects and records) and everything else deleted; its audit log kept with
    /// personal data redacted; audited in its log and the operators'.
    Erase {
        tenant: String,
        /// The tenant id again.
        #[arg(long)]
        confirm: String,
        /// The media bucket (the stack's MediaBucket).
        #[arg(long, env = "HERALD_MEDIA_BUCKET", default_value = "")]
        media_bucket: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeyCommand {
    /// Issue a key for a tenant; prints {"key_id","api_key","role"} as JSON.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = ["admin", "editor", "approver", "viewer"])]
        role: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// RFC 3339; absent: the key works until revoked.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// A tenant's keys, one JSON line each (never a secret).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key: refused from the next request on; audited.
    Revoke {
        #[arg(long)]
        tenant: String,
        key_id: String,
    },
    /// Rotate a key: prints the new key; the old one works for the overlap; audited.
    Rotate {
        #[arg(long)]
        tenant: String,
        key_id: String,
        #[arg(long, default_value_t = 86_400)]
        overlap_seconds: i64,
    },
    /// Give keys issued before the tenant key index their place in it (once, after
    /// upgrading); prints {"reindexed": n}.
    Reindex,
}

async fn dead_letters(service: &DeadLetterService, command: DeadLetterCommand) -> ExitCode {
    let operator = Operator {
        actor: actor(),
        ip: None,
        user_agent: Some(concat!("herald-cli/", env!("CARGO_PKG_VERSION")).into()),
    };
    let result = match command {
        DeadLetterCommand::Drain => service
            .drain(usize::MAX)
            .await
            .map(|n| vec![serde_json::json!({ "drained": n })]),
        DeadLetterCommand::List {
            tenant,
            older_than_seconds,
        } => {
            let query = DeadLetterQuery {
                older_than: older_than_seconds
                    .map(|s| SystemClock.now() - time::Duration::seconds(s)),
                ..DeadLetterQuery::default()
            };
            let owner = TenantId(tenant);
            let mut lines = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                match service
                    .list(&owner, &query, cursor.as_deref(), MAX_PAGE)
                    .await
                {
                    Ok(page) => {
                        lines.extend(page.items.iter().map(|d| serde_json::json!(d)));
                        cursor = page.cursor;
                        if cursor.is_none() {
                            break Ok(lines);
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
        }
        DeadLetterCommand::Show { id, tenant } => service
            .get(&TenantId(tenant), &id)
            .await
            .map(|d| d.into_iter().map(|d| serde_json::json!(d)).collect()),
        DeadLetterCommand::Requeue { ids, all, tenant } => {
            if ids.is_empty() != all {
                eprintln!("herald: give dead-letter ids, or --all (with --tenant)");
                return ExitCode::from(2);
            }
            let owner = TenantId(tenant);
            let done = if all {
                let mut done = Vec::new();
                loop {
                    match service
                        .requeue_matching(&owner, &DeadLetterQuery::default(), &operator)
                        .await
                    {
                        Ok(batch) => {
                            done.extend(batch.letters);
                            if !batch.more {
                                break Ok(done);
                            }
                        }
                        Err(e) => break Err(e),
                    }
                }
            } else {
                service.requeue_ids(&owner, &ids, &operator).await
            };
            done.map(|done| {
                done.iter()
                    .map(|d| serde_json::json!({"requeued": d.id}))
                    .collect()
            })
        }
        DeadLetterCommand::Delete { id, tenant } => service
            .delete(&TenantId(tenant), &id, &operator)
            .await
            .map(|d| {
                d.into_iter()
                    .map(|d| serde_json::json!({"deleted": d.id}))
                    .collect()
            }),
    };
    match result {
        Ok(lines) if lines.is_empty() => {
            eprintln!("herald: no matching dead letter");
            ExitCode::FAILURE
        }
        Ok(lines) => print_lines(lines),
        Err(e) => {
            eprintln!("herald: {e}");
            ExitCode::from(2)
        }
    }
}

/// One JSON document a line.
fn print_lines(lines: Vec<serde_json::Value>) -> ExitCode {
    for line in lines {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

pub(crate) fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".into())
    )
}

fn stream_line(c: &Candidate) -> serde_json::Value {
    let state = c.state.as_ref();
    serde_json::json!({
        "key": c.key.as_str(),
        "account_id": c.account_id.as_str(),
        "dry_run": state.is_some_and(|s| s.dry_run),
        "since": state.and_then(|s| s.position.since.clone()),
        "in_progress": state.is_some_and(|s| s.position.cursor.is_some()),
        "counters": state.map(|s| s.counters).unwrap_or_default(),
    })
}

async fn streams(
    store: &DynamoStore,
    command: StreamCommand,
) -> Result<Vec<serde_json::Value>, String> {
    match command {
        StreamCommand::List { tenant } => {
            let mut all = store
                .streams(&TenantId(tenant))
                .await
                .map_err(|e| e.to_string())?;
            all.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(all.iter().map(stream_line).collect())
        }
        StreamCommand::DryRun { tenant, key, state } => {
            let (tenant, key, on) = (TenantId(tenant), StreamKey(key), state == "on");
            let (before, after) = set_stream_dry_run(store, &tenant, &key, on)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("tenant {tenant} has no stream {key}"))?;
            let entry = AuditEntry {
                tenant_id: tenant,
                entity: format!("stream:{key}"),
                action: "stream.dry_run_set".into(),
                actor: actor(),
                old: Some(serde_json::json!({"dry_run": before.state.is_some_and(|s| s.dry_run)})),
                new: Some(serde_json::json!({"dry_run": on})),
                ip: None,
                user_agent: Some(concat!("herald-cli/", env!("CARGO_PKG_VERSION")).into()),
                at: SystemClock.now(),
            };
            store.append(entry).await.map_err(|e| e.to_string())?;
            Ok(vec![stream_line(&after)])
        }
        StreamCommand::Retry { tenant, key } => resets::retry_stream(store, tenant, key)
            .await
            .map(|line| vec![line]),
        StreamCommand::Reindex => store
            .backfill_poll_index()
            .await
            .map(|n| vec![serde_json::json!({"reindexed": n})])
            .map_err(|e| e.to_string()),
    }
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
    let tables = roles(&cli);
    let result = match cli.command {
        Command::Audit { command } => return audit(&store, command).await,
        Command::Idempotency {
            command: IdempotencyCommand::PurgeLegacy,
        } => {
            if cli.idempotency_table.is_empty() {
                eprintln!("herald: set HERALD_IDEMPOTENCY_TABLE or --idempotency-table");
                return ExitCode::from(2);
            }
            DynamoIdempotency::new(clients.dynamodb.clone(), &cli.idempotency_table)
                .purge_legacy()
                .await
                .map(|n| serde_json::json!({ "purged": n }))
        }
        Command::Wallet { command } => {
            return print_result(wallet::run(&store, command).await.map(|v| vec![v]));
        }
        Command::Posts {
            command: PostCommand::Reindex,
        } => store
            .backfill_calendar_index()
            .await
            .map(|n| serde_json::json!({ "reindexed": n })),
        Command::Campaigns {
            command: CampaignCommand::MarkLive,
        } => store
            .backfill_live_campaigns()
            .await
            .map(|n| serde_json::json!({ "marked": n })),
        Command::Media {
            command: MediaCommand::Recount,
        } => store
            .recount_media_usage(time::OffsetDateTime::now_utc())
            .await
            .map(|n| serde_json::json!({ "recounted": n })),
        Command::Account { command } => {
            return print_result(resets::account(&store, command).await.map(|v| vec![v]));
        }
        Command::AppBlock { command } => {
            return print_result(resets::app_block(&store, command).await.map(|v| vec![v]));
        }
        Command::Streams { command } => {
            return match streams(&store, command).await {
                Ok(lines) => print_lines(lines),
                Err(e) => {
                    eprintln!("herald: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::DeadLetters {
            dlq_url,
            queue_url,
            webhook_dlq_url,
            webhook_queue_url,
            outbound_dlq_url,
            outbound_queue_url,
            command,
        } => {
            let mut queues = vec![DeadLetterQueue {
                source: "publish".into(),
                url: dlq_url,
                source_url: queue_url,
            }];
            if let (Some(url), Some(source_url)) = (webhook_dlq_url, webhook_queue_url) {
                queues.push(DeadLetterQueue {
                    source: "webhooks".into(),
                    url,
                    source_url,
                });
            }
            if let (Some(url), Some(source_url)) = (outbound_dlq_url, outbound_queue_url) {
                queues.push(DeadLetterQueue {
                    source: "outbound".into(),
                    url,
                    source_url,
                });
            }
            let store = Arc::new(store);
            let service = DeadLetterService {
                queues: Arc::new(SqsDeadLetters::new(clients.sqs.clone(), queues)),
                records: store.clone(),
                audit: store,
                clock: Arc::new(SystemClock),
            };
            return dead_letters(&service, command).await;
        }
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
        Command::ApiKey { command } => return print_result(keys::api_keys(&store, command).await),
        Command::Backup { command } => {
            return print_result(
                backup::run(&clients, &tables, command)
                    .await
                    .map(|v| vec![v]),
            );
        }
        Command::Tenant {
            command: command @ (TenantCommand::Export { .. } | TenantCommand::Erase { .. }),
        } => {
            let [main, audit, idempotency] = &tables;
            let tables = offboarding::Tables {
                main,
                audit,
                idempotency,
            };
            return print_result(
                match command {
                    TenantCommand::Export { tenant, dir } => {
                        offboarding::export(&clients, &store, &tables, tenant, &dir).await
                    }
                    TenantCommand::Erase {
                        tenant,
                        confirm,
                        media_bucket,
                    } => {
                        offboarding::erase(
                            &clients,
                            &store,
                            &tables,
                            &media_bucket,
                            tenant,
                            &confirm,
                        )
                        .await
                    }
                    _ => Err("not an offboarding command".into()),
                }
                .map(|v| vec![v]),
            );
        }
        Command::Tenant {
            command: TenantCommand::Suspend { tenant, reason },
        } => suspension(&store, tenant, Some(reason)).await,
        Command::Tenant {
            command: TenantCommand::Resume { tenant },
        } => suspension(&store, tenant, None).await,
    };
    print_result(result.map(|out| vec![out]).map_err(|e| e.to_string()))
}

/// The deployment's tables by role.
fn roles(cli: &Cli) -> [TableRef; 3] {
    [
        ("main", &cli.table),
        ("audit", &cli.audit_table),
        ("idempotency", &cli.idempotency_table),
    ]
    .map(|(role, name)| TableRef {
        role: role.into(),
        name: name.clone(),
    })
}

fn print_result(result: Result<Vec<serde_json::Value>, String>) -> ExitCode {
    match result {
        Ok(lines) => print_lines(lines),
        Err(e) => {
            eprintln!("herald: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One audit record of an operator's CLI action in `tenant`'s log.
pub(crate) async fn audit_cli(
    store: &DynamoStore,
    tenant: &TenantId,
    entity: String,
    action: &str,
    new: serde_json::Value,
) -> Result<(), String> {
    let entry = AuditEntry {
        tenant_id: tenant.clone(),
        entity,
        action: action.into(),
        actor: actor(),
        old: None,
        new: Some(new),
        ip: None,
        user_agent: Some(concat!("herald-cli/", env!("CARGO_PKG_VERSION")).into()),
        at: SystemClock.now(),
    };
    store
        .append(entry)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn suspension(
    store: &DynamoStore,
    tenant: String,
    reason: Option<String>,
) -> Result<serde_json::Value, herald_domain::StoreError> {
    let tenant = TenantId(tenant);
    let found = tenants::set_suspension(store, &SystemClock, &tenant, reason.as_deref()).await?;
    if !found {
        return Err(herald_domain::StoreError::Invalid(format!(
            "there is no tenant {tenant}"
        )));
    }
    let action = if reason.is_some() {
        "tenant.suspended"
    } else {
        "tenant.resumed"
    };
    audit_cli(
        store,
        &tenant,
        format!("tenant:{tenant}"),
        action,
        serde_json::json!({ "reason": reason }),
    )
    .await
    .map_err(herald_domain::StoreError::Invalid)?;
    Ok(serde_json::json!({"tenant_id": tenant.as_str(), "suspended": reason.is_some()}))
}
