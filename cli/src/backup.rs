//! `herald backup export|restore`: the command's side only (which tables and secrets, a
//! progress line, the warning); the format and every check are `herald_domain::backup`'s.

use clap::Subcommand;
use herald_aws::Clients;
use herald_aws::dynamo::DynamoTables;
use herald_aws::secrets::SecretsManagerStore;
use herald_domain::backup::{
    self, BackupError, ExportPlan, Progress, RestorePlan, SecretRef, TableRef,
};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write every table to DIR (new or empty) as JSON lines with a manifest of counts and
    /// SHA-256 checksums; prints the manifest.
    Export {
        dir: PathBuf,
        /// Also save Herald's secrets (the token-encryption key ring, the operator token, the
        /// embed key, webhook and OAuth secrets) in DIR/secrets.json, in plaintext: whoever
        /// holds the file can open every platform token in the backup.
        #[arg(long)]
        with_secrets: bool,
    },
    /// Load the backup in DIR into this deployment, whose tables must all be empty; checks the
    /// whole backup before writing anything.
    Restore {
        dir: PathBuf,
        /// Also put the backup's secrets back (it must hold them).
        #[arg(long)]
        with_secrets: bool,
    },
}

/// The environment variables naming Herald's secrets (the functions' own), by role.
const SECRET_VARIABLES: [(&str, &str); 5] = [
    ("token-key", "HERALD_TOKEN_KEY_SECRET"),
    ("admin-token", "HERALD_ADMIN_TOKEN_SECRET_ID"),
    ("embed-signing-key", "HERALD_EMBED_SIGNING_SECRET_ID"),
    ("oauth-clients", "HERALD_OAUTH_CLIENTS_SECRET"),
    ("alert-webhook", "HERALD_ALERT_WEBHOOK_SECRET"),
];

/// Herald's secrets as this environment names them: the variables above, and each inbound
/// provider's secret in `HERALD_WEBHOOK_PROVIDERS` (`name=scheme:id`, Meta's `id|verify-id`).
/// The token key is required: it is the one a backup is useless without.
pub fn secret_refs() -> Result<Vec<SecretRef>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut refs: Vec<SecretRef> = SECRET_VARIABLES
        .iter()
        .filter_map(|(role, name)| {
            var(name).map(|id| SecretRef {
                role: (*role).into(),
                id,
            })
        })
        .collect();
    if !refs.iter().any(|r| r.role == "token-key") {
        return Err("set HERALD_TOKEN_KEY_SECRET (the token-encryption key secret)".into());
    }
    for entry in var("HERALD_WEBHOOK_PROVIDERS")
        .unwrap_or_default()
        .split(',')
    {
        let Some((name, rest)) = entry.trim().split_once('=') else {
            continue;
        };
        let ids = rest.split_once(':').map(|(_, ids)| ids).unwrap_or_default();
        for (n, id) in ids.split('|').filter(|id| !id.is_empty()).enumerate() {
            let suffix = if n == 0 {
                String::new()
            } else {
                format!("-{}", n + 1)
            };
            refs.push(SecretRef {
                role: format!("webhook-{name}{suffix}"),
                id: id.to_owned(),
            });
        }
    }
    Ok(refs)
}

/// One line on stderr, rewritten as a table goes.
struct ProgressLine(&'static str);

impl Progress for ProgressLine {
    fn advanced(&self, role: &str, done: u64, total: Option<u64>) {
        let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
        eprint!("\r{} {role}: {done}{of} items", self.0);
        let _ = std::io::stderr().flush();
    }

    fn finished(&self, role: &str, done: u64) {
        eprintln!("\r{} {role}: {done} items, done", self.0);
    }
}

pub async fn run(
    clients: &Clients,
    tables: &[TableRef],
    command: BackupCommand,
) -> Result<serde_json::Value, String> {
    if let Some(t) = tables.iter().find(|t| t.name.is_empty()) {
        return Err(format!(
            "a backup covers every table: name the {} table (--{}-table or its HERALD_ variable)",
            t.role, t.role
        ));
    }
    let port = DynamoTables::new(clients.dynamodb.clone());
    let store = SecretsManagerStore::new(clients.secrets.clone());
    let (dir, with_secrets, export) = match &command {
        BackupCommand::Export { dir, with_secrets } => (dir, *with_secrets, true),
        BackupCommand::Restore { dir, with_secrets } => (dir, *with_secrets, false),
    };
    let refs = if with_secrets {
        secret_refs()?
    } else {
        Vec::new()
    };
    let secrets = with_secrets.then_some((&store as _, refs.as_slice()));
    let e = |e: BackupError| e.to_string();
    if export {
        if with_secrets {
            eprintln!(
                "herald: WARNING: {}/secrets.json will hold Herald's secrets in plaintext, among them the key that opens every platform token in this backup. Keep the directory encrypted and apart from anything shared.",
                dir.display()
            );
        }
        let plan = ExportPlan {
            tables: &port,
            table_refs: tables,
            secrets,
            progress: &ProgressLine("export"),
            now: time::OffsetDateTime::now_utc(),
        };
        let manifest = backup::export(&plan, dir).await.map_err(e)?;
        return serde_json::to_value(manifest).map_err(|e| e.to_string());
    }
    let plan = RestorePlan {
        tables: &port,
        table_refs: tables,
        secrets,
        progress: &ProgressLine("restore"),
    };
    let summary = backup::restore(&plan, dir).await.map_err(e)?;
    if summary.secrets_left_out {
        eprintln!(
            "herald: the backup holds secrets; they were not restored (--with-secrets puts them back). Sealed tokens open only if this deployment's token key ring holds the keys they were sealed under."
        );
    }
    serde_json::to_value(summary).map_err(|e| e.to_string())
}
