//! `herald backup`: a whole deployment exported, restored into another (empty) one, and
//! every API read answering the same; restores refused, writing nothing, into a deployment
//! that holds data and from a damaged backup.

use crate::support::unique;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use herald_aws::Clients;
use herald_aws::config::{CommonConfig, Env};
use herald_aws::dynamo::{DynamoStore, DynamoTables};
use herald_aws::secrets::SecretsManagerStore;
use herald_domain::backup::{
    self, BackupError, ExportPlan, Quiet, RestorePlan, SecretRef, TableRef, Tables,
};
use herald_domain::clock::SystemClock;
use herald_domain::ids::{AccountId, TenantId};
use herald_domain::ports::{AccountStore, AuditLog};
use herald_domain::secrets::SecretKind;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

/// One bootstrapped deployment: its API function's environment, clients, the API's own
/// wiring in-process (platforms trusted to own every token) and a store as a function builds it.
pub struct Deployment {
    pub env: HashMap<String, String>,
    pub clients: Clients,
    pub app: axum::Router,
    pub store: Arc<DynamoStore>,
}

impl Deployment {
    /// A fresh deployment; with `keys`, its token key ring holds them (oldest first) and
    /// its embed key and operator token have values.
    pub async fn new(keys: &[[u8; 32]]) -> Self {
        let aws = herald_tests::local_aws();
        let (_, functions) = herald_tests::bootstrap_functions(aws);
        let env = functions["api"].clone();
        let clients = aws.clients().await;
        for key in keys {
            put_secret(
                &clients,
                &env["HERALD_TOKEN_KEY_SECRET"],
                &SecretKind::Key256.value_from(key),
            )
            .await;
        }
        if !keys.is_empty() {
            put_secret(
                &clients,
                &env["HERALD_EMBED_SIGNING_SECRET_ID"],
                &SecretKind::Key256.generate(),
            )
            .await;
            put_secret(
                &clients,
                &env["HERALD_ADMIN_TOKEN_SECRET_ID"],
                &SecretKind::AdminToken.generate(),
            )
            .await;
        }
        let config = herald_fn_api::Config::from_env(&env).unwrap();
        let shared = herald_fn_api::shared(&config, &clients);
        let mut state = herald_fn_api::state(&config, &clients, &shared);
        state.owners = Arc::new(herald_domain::publishing::platform::TrustingOwners);
        let app =
            herald_api::analytics::with_analytics(herald_api::router(state), shared.store.clone());
        Self {
            env,
            clients,
            app,
            store: shared.store,
        }
    }

    pub fn tables(&self) -> Vec<TableRef> {
        [
            ("main", "HERALD_TABLE"),
            ("audit", "HERALD_AUDIT_TABLE"),
            ("idempotency", "HERALD_IDEMPOTENCY_TABLE"),
        ]
        .map(|(role, var)| TableRef {
            role: role.into(),
            name: self.env[var].clone(),
        })
        .to_vec()
    }

    pub fn secrets(&self) -> Vec<SecretRef> {
        [
            ("token-key", "HERALD_TOKEN_KEY_SECRET"),
            ("embed-signing-key", "HERALD_EMBED_SIGNING_SECRET_ID"),
            ("admin-token", "HERALD_ADMIN_TOKEN_SECRET_ID"),
        ]
        .map(|(role, var)| SecretRef {
            role: role.into(),
            id: self.env[var].clone(),
        })
        .to_vec()
    }

    pub fn port(&self) -> DynamoTables {
        DynamoTables::new(self.clients.dynamodb.clone())
    }

    /// A store as a new function instance builds it (its own key cache).
    pub fn fresh_store(&self) -> DynamoStore {
        CommonConfig::read(&mut Env::new(&self.env)).store(&self.clients)
    }

    /// An API request; answers the status and the body's bytes.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            // Personal data the audit log records (and an erasure redacts).
            .header("user-agent", "Mozilla/5.0 (Ada's laptop)")
            .header("x-forwarded-for", "198.51.100.23");
        if method != Method::GET {
            request = request.header("idempotency-key", unique("k-"));
        }
        let request = match body {
            Some(b) => request
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }

    /// A write that must succeed; answers its JSON.
    pub async fn must(&self, method: Method, path: &str, key: &str, body: Value) -> Value {
        let (status, bytes) = self.call(method, path, key, Some(body)).await;
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Every item of every table, as JSON lines, by role.
    pub async fn items(&self) -> HashMap<String, BTreeSet<String>> {
        let port = self.port();
        let mut out = HashMap::new();
        for t in self.tables() {
            let mut lines = BTreeSet::new();
            let mut start = None;
            loop {
                let page = port.scan_page(&t.name, start).await.unwrap();
                lines.extend(page.items.iter().map(|i| serde_json::to_string(i).unwrap()));
                start = page.next;
                if start.is_none() {
                    break;
                }
            }
            out.insert(t.role, lines);
        }
        out
    }

    pub async fn export(
        &self,
        dir: &Path,
        with_secrets: bool,
    ) -> Result<backup::Manifest, BackupError> {
        let (port, store, tables, secrets) = (
            self.port(),
            self.secret_store(),
            self.tables(),
            self.secrets(),
        );
        let plan = ExportPlan {
            tables: &port,
            table_refs: &tables,
            secrets: with_secrets.then_some((&store as _, secrets.as_slice())),
            progress: &Quiet,
            now: time::OffsetDateTime::now_utc(),
        };
        backup::export(&plan, dir).await
    }

    pub async fn restore(
        &self,
        dir: &Path,
        with_secrets: bool,
    ) -> Result<backup::RestoreSummary, BackupError> {
        let (port, store, tables, secrets) = (
            self.port(),
            self.secret_store(),
            self.tables(),
            self.secrets(),
        );
        let plan = RestorePlan {
            tables: &port,
            table_refs: &tables,
            secrets: with_secrets.then_some((&store as _, secrets.as_slice())),
            progress: &Quiet,
        };
        backup::restore(&plan, dir).await
    }

    fn secret_store(&self) -> SecretsManagerStore {
        SecretsManagerStore::new(self.clients.secrets.clone())
    }
}

async fn put_secret(clients: &Clients, id: &str, value: &secrecy::SecretString) {
    clients
        .secrets
        .put_secret_value()
        .secret_id(id)
        .secret_string(value.expose_secret())
        .send()
        .await
        .unwrap();
}

/// A fresh directory under the system's temporary one.
pub fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(unique(&format!("herald-{name}-")))
}

/// A tenant with two connected accounts (tokens sealed), two posts, a second key, a pause
/// and the audit records all that wrote; answers its id, admin key, and accounts with their
/// tokens.
pub async fn populate(d: &Deployment, name: &str) -> (TenantId, String, Vec<(String, String)>) {
    let (tenant, _, secret) =
        herald_domain::tenants::create_tenant(d.store.as_ref(), &SystemClock, name, true)
            .await
            .unwrap();
    let key = secret.expose_secret().to_owned();
    let mut accounts = Vec::new();
    for (platform, external) in [("x", unique("u")), ("linkedin", unique("o"))] {
        let token = unique("tok-");
        let v = d
            .must(Method::POST, "/v1/accounts", &key, json!({"platform": platform, "external_id": external, "access_token": token, "refresh_token": unique("ref-"), "expires_in": 86_400, "display_name": "Ada Lovelace"}))
            .await;
        accounts.push((v["id"].as_str().unwrap().to_owned(), token));
    }
    let at = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for text in ["launch day", "follow-up"] {
        d.must(Method::POST, "/v1/posts", &key, json!({"text": text, "scheduled_at": at, "targets": accounts.iter().map(|(a, _)| json!({"account_id": a})).collect::<Vec<_>>()}))
            .await;
    }
    d.must(
        Method::POST,
        "/v1/api-keys",
        &key,
        json!({"name": "reporting", "role": "viewer"}),
    )
    .await;
    d.must(Method::PUT, "/v1/crisis", &key, json!({"reason": "storm"}))
        .await;
    (tenant.id, key, accounts)
}

/// Every list and read route of the API a tenant can call, with the tenant's own ids.
async fn reads(d: &Deployment, key: &str) -> Vec<(String, String)> {
    let mut paths: Vec<String> = [
        "/v1/tenant",
        "/v1/api-keys",
        "/v1/accounts",
        "/v1/posts",
        "/v1/audit",
        "/v1/dead-letters",
        "/v1/review-items",
        "/v1/streams",
        "/v1/crisis",
        "/v1/webhook-endpoints",
        "/v1/analytics?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z",
    ]
    .map(str::to_owned)
    .to_vec();
    // Of the single items, only posts have a read of their own.
    for (list, field) in [("/v1/posts", "posts")] {
        let (_, body) = d.call(Method::GET, list, key, None).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        let items = v[field]
            .as_array()
            .or(v["items"].as_array())
            .or(v["data"].as_array())
            .cloned()
            .unwrap_or_default();
        assert!(!items.is_empty(), "{list} lists nothing: {v}");
        paths.extend(
            items
                .iter()
                .map(|i| format!("{list}/{}", i["id"].as_str().unwrap())),
        );
    }
    let mut out = Vec::new();
    for path in paths {
        let (status, body) = d.call(Method::GET, &path, key, None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        out.push((path, String::from_utf8(body).unwrap()));
    }
    out
}

/// Export, restore into an empty deployment, and every read of the API answers byte for byte
/// the same; tokens open with the restored key ring; the audit chains verify.
#[tokio::test]
async fn a_deployment_survives_export_and_restore() {
    let source = Deployment::new(&[[7u8; 32], [8u8; 32]]).await;
    let mut tenants = Vec::new();
    for name in ["acme", "globex"] {
        tenants.push(populate(&source, name).await);
    }
    let mut before = Vec::new();
    for (_, key, _) in &tenants {
        before.push(reads(&source, key).await);
    }
    let dir = scratch("backup");
    let started = Instant::now();
    let manifest = source.export(&dir, true).await.unwrap();
    let exported = started.elapsed();
    let target = Deployment::new(&[]).await;
    let started = Instant::now();
    let summary = target.restore(&dir, true).await.unwrap();
    let restored = started.elapsed();
    let total: u64 = manifest.tables.iter().map(|t| t.items).sum();
    eprintln!("backup round trip: {total} items, export {exported:?}, restore {restored:?}");
    assert_eq!(summary.items.values().sum::<u64>(), total);
    assert_eq!(
        summary.secrets,
        ["admin-token", "embed-signing-key", "token-key"]
    );

    #[cfg(unix)]
    for entry in std::fs::read_dir(&dir).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "backup files are the owner's only");
    }
    assert_eq!(
        target.items().await,
        source.items().await,
        "every item comes back exactly"
    );
    for ((tenant, key, accounts), before) in tenants.iter().zip(before) {
        let after = reads(&target, key).await;
        assert_eq!(after.len(), before.len());
        for ((path, answer), (_, expected)) in after.iter().zip(&before) {
            assert_eq!(answer, expected, "{path} answers the same for {tenant}");
        }
        let fresh = target.fresh_store();
        for (account, token) in accounts {
            let a = fresh
                .get_account(tenant, &AccountId(account.clone()))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                a.access_token.expose_secret(),
                token,
                "sealed tokens open with the restored ring"
            );
            publishes_with(&a).await;
        }
        let (records, heads) = fresh.export(tenant).await.unwrap();
        assert!(records.len() >= 4, "the tenant's actions were audited");
        assert_eq!(herald_domain::audit::verify(&records, &heads), vec![]);
        assert_eq!((records, heads), source.store.export(tenant).await.unwrap());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A deployment that holds anything is refused, naming the table, and nothing is written.
#[tokio::test]
async fn a_restore_into_a_deployment_with_data_is_refused() {
    let source = Deployment::new(&[[9u8; 32]]).await;
    populate(&source, "initech").await;
    let dir = scratch("backup");
    source.export(&dir, false).await.unwrap();

    let err = source.restore(&dir, false).await.unwrap_err();
    assert!(
        matches!(&err, BackupError::NotEmpty { role, .. } if role == "main"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&source.env["HERALD_TABLE"]),
        "{err}"
    );

    // Only the idempotency table holds an item: the main and audit tables stay empty.
    let target = Deployment::new(&[]).await;
    let item: backup::Item =
        serde_json::from_value(json!({"pk": {"S": "t#k"}, "state": {"S": "COMPLETED"}})).unwrap();
    target
        .port()
        .put_batch(&target.env["HERALD_IDEMPOTENCY_TABLE"], &[item])
        .await
        .unwrap();
    let before = target.items().await;
    let err = target.restore(&dir, false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&target.env["HERALD_IDEMPOTENCY_TABLE"]),
        "{err}"
    );
    assert_eq!(target.items().await, before, "nothing was written");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each kind of damage is refused before anything is written.
#[tokio::test]
async fn a_damaged_backup_is_refused_and_nothing_is_written() {
    let source = Deployment::new(&[[10u8; 32]]).await;
    populate(&source, "umbrella").await;
    let good = scratch("backup");
    source.export(&good, true).await.unwrap();
    let target = Deployment::new(&[]).await;

    let damage: Vec<(&str, Damage)> = vec![
        (
            "a flipped byte",
            Box::new(|dir: &Path| {
                edit(&dir.join("main.jsonl"), |b| {
                    let middle = b.len() / 2;
                    b[middle] ^= 0x20;
                })
            }),
        ),
        (
            "a dropped line",
            Box::new(|dir: &Path| {
                edit(&dir.join("audit.jsonl"), |b| {
                    let first = b.iter().position(|&c| c == b'\n').unwrap();
                    b.drain(..=first);
                })
            }),
        ),
        (
            "a dropped line, checksum made to match",
            Box::new(|dir: &Path| {
                edit(&dir.join("audit.jsonl"), |b| {
                    let first = b.iter().position(|&c| c == b'\n').unwrap();
                    b.drain(..=first);
                });
                rehash(dir, "audit.jsonl");
            }),
        ),
        (
            "a line that is not an item",
            Box::new(|dir: &Path| {
                edit(&dir.join("main.jsonl"), |b| {
                    b.extend_from_slice(b"{\"pk\": {\"N\": \"one\"}}\n")
                });
                rehash(dir, "main.jsonl");
            }),
        ),
        (
            "a missing file",
            Box::new(|dir: &Path| std::fs::remove_file(dir.join("idempotency.jsonl")).unwrap()),
        ),
        (
            "a missing manifest",
            Box::new(|dir: &Path| std::fs::remove_file(dir.join("manifest.json")).unwrap()),
        ),
        (
            "altered secrets",
            Box::new(|dir: &Path| edit(&dir.join("secrets.json"), |b| b[10] ^= 0x01)),
        ),
    ];
    for (what, damage) in damage {
        let dir = scratch("damaged");
        copy_dir(&good, &dir);
        damage(&dir);
        let err = target.restore(&dir, true).await.unwrap_err();
        assert!(matches!(err, BackupError::Damaged(_)), "{what}: {err}");
        let items = target.items().await;
        assert!(
            items.values().all(BTreeSet::is_empty),
            "{what}: something was written"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    // The same backup, undamaged, restores.
    target.restore(&good, true).await.unwrap();
    let _ = std::fs::remove_dir_all(&good);
}

/// A backup never lands on another: the export wants a new or empty directory.
#[tokio::test]
async fn an_export_into_a_directory_with_files_is_refused() {
    let source = Deployment::new(&[]).await;
    let dir = scratch("backup");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let err = source.export(&dir, false).await.unwrap_err();
    assert!(matches!(err, BackupError::Refused(_)), "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Something done to a copy of a good backup.
type Damage = Box<dyn Fn(&Path)>;

fn edit(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    change(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// Makes the manifest's checksum of `file` match the file again (as an attacker or a buggy
/// copy would), so only the other checks can catch the damage.
fn rehash(dir: &Path, file: &str) {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(dir.join(file)).unwrap()));
    let path = dir.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for t in manifest["tables"].as_array_mut().unwrap() {
        if t["file"] == file {
            t["sha256"] = json!(sha);
        }
    }
    std::fs::write(&path, manifest.to_string()).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The restored account publishes with its restored token: the platform client, against the
/// fake platforms, which know the token as the account's.
async fn publishes_with(account: &herald_domain::model::Account) {
    use herald_domain::publishing::platform::{PlatformClient, PublishRequest};
    use herald_platforms::HttpPlatforms;
    let fake = herald_tests::fake_platforms();
    let platform = account.platform.as_str();
    reqwest::Client::new()
        .post(format!("{}/_admin/tokens", fake.url))
        .json(&json!({"platform": platform, "token": account.access_token.expose_secret(), "account": account.external_id}))
        .send()
        .await
        .unwrap();
    let client = HttpPlatforms::new(fake.endpoints(), std::time::Duration::from_secs(5));
    let published = client
        .publish(PublishRequest {
            platform: account.platform,
            external_id: &account.external_id,
            access_token: &account.access_token,
            text: "after the restore",
            correlation_id: "restore",
            media: vec![],
            reply_to: None,
            idempotency_key: "k",
            due_at: herald_tests::DUE,
            progress: &herald_domain::publishing::platform::KeptInMemory::default(),
            uploads_until: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
            options: &Default::default(),
        })
        .await
        .unwrap_or_else(|e| panic!("{platform} refused the restored token: {e}"));
    assert!(!published.platform_post_id.is_empty());
    let posts: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/_admin/posts", fake.url))
        .query(&[
            ("platform", platform),
            ("account", account.external_id.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posts["posts"][0]["text"], "after the restore", "{posts}");
}
