//! Shared set-up for the integration and end-to-end tests: the emulated AWS (moto, and dynoxide
//! for DynamoDB) started on free ports (once per test binary), resources created from
//! template.yaml by the same bootstrap the local stack uses, and the local stack's
//! `.herald/local.env`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test set-up fails loudly on purpose.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The emulated AWS of this test binary, each on a free port and stopped when the binary
/// exits: moto (SQS, S3, Secrets Manager, SNS) and dynoxide (DynamoDB), as in the local stack.
#[derive(Debug)]
pub struct LocalAws {
    /// moto's endpoint, for every service but DynamoDB.
    pub endpoint: String,
    pub dynamodb: String,
    _moto: ChildGuard,
    _dynamodb: ChildGuard,
}

impl LocalAws {
    /// SDK clients of Herald's adapters, each service at its own emulator.
    pub async fn clients(&self) -> herald_aws::Clients {
        clients(&self.endpoint, &self.dynamodb).await
    }
}

#[derive(Debug)]
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn local_aws() -> &'static LocalAws {
    static AWS: OnceLock<LocalAws> = OnceLock::new();
    AWS.get_or_init(|| {
        let (moto_port, dynamodb_port) = (free_port(), free_port());
        // moto with DynamoDB requests serialized (see infra/moto_server.py for why).
        let python = repo_root().join(".venv/bin/python");
        let moto = Command::new(&python)
            .arg(repo_root().join("infra/moto_server.py"))
            // The server lives in a static, which is never dropped: it stops itself instead.
            .arg("--exit-with-parent")
            .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .stdin(Stdio::null())
            .stdout(test_log("moto-tests.log"))
            .stderr(test_log("moto-tests.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (run `make venv`): {e}", python.display()));
        // dynoxide has no such option: a shell runs it and ends it once this binary is gone.
        let dynoxide = repo_root().join(".venv/bin/dynoxide");
        let dynamodb = Command::new("sh")
            .args([
                "-c",
                r#"parent=$PPID; "$@" & child=$!
                while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
                kill "$child" 2>/dev/null"#,
                "sh",
            ])
            .arg(&dynoxide)
            .args(["--host", "127.0.0.1", "--port", &dynamodb_port.to_string()])
            .stdin(Stdio::null())
            .stdout(test_log("dynamodb-tests.log"))
            .stderr(test_log("dynamodb-tests.log"))
            .spawn()
            .unwrap();
        for (name, port) in [("moto", moto_port), ("dynoxide (run `make venv`)", dynamodb_port)] {
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "{name} did not start");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        LocalAws {
            endpoint: format!("http://127.0.0.1:{moto_port}"),
            dynamodb: format!("http://127.0.0.1:{dynamodb_port}"),
            _moto: ChildGuard(moto),
            _dynamodb: ChildGuard(dynamodb),
        }
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A log file under target/, appended to by every process that writes it.
fn test_log(name: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(repo_root().join("target").join(name))
        .unwrap()
}

/// A fake-platforms server (infra/fake_platforms/) of one's own, on a free port; stopped
/// when dropped.
#[derive(Debug)]
pub struct FakePlatforms {
    pub url: String,
    _child: ChildGuard,
}

/// A post's due time for platform client tests (with the idempotency key, it names a
/// Bluesky record).
pub const DUE: time::OffsetDateTime = time::macros::datetime!(2026-12-01 12:00 UTC);

impl FakePlatforms {
    /// The platform clients' base URLs on this fake (each platform under its own path).
    pub fn endpoints(&self) -> herald_platforms::Endpoints {
        let url = &self.url;
        herald_platforms::Endpoints {
            x: format!("{url}/x"),
            facebook: format!("{url}/facebook/v21.0"),
            linkedin: format!("{url}/linkedin"),
            mastodon: format!("{url}/mastodon"),
            bluesky: format!("{url}/bluesky"),
            instagram: format!("{url}/instagram/v21.0"),
        }
    }
}

pub fn fake_platforms() -> FakePlatforms {
    use std::io::BufRead;
    let bin = repo_root().join(".venv/bin/python");
    let mut child = Command::new(&bin)
        .arg(repo_root().join("infra/fake_platforms"))
        .args(["--host", "127.0.0.1", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {} (run `make venv`): {e}", bin.display()));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the fake platforms: {line:?}"))
        .to_owned();
    FakePlatforms {
        url,
        _child: ChildGuard(child),
    }
}

/// Creates every table and queue of template.yaml under a fresh name prefix and returns the
/// resolved environment the functions would get (HERALD_TABLE, HERALD_PUBLISH_QUEUE_URL, ...).
pub fn bootstrap(aws: &LocalAws) -> HashMap<String, String> {
    bootstrap_functions(aws).0
}

/// As [`bootstrap`], with each function's own variables (the template's per-function
/// `Environment`), by binary name.
pub fn bootstrap_functions(
    aws: &LocalAws,
) -> (
    HashMap<String, String>,
    HashMap<String, HashMap<String, String>>,
) {
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let manifest = std::env::temp_dir().join(format!("herald-{prefix}.json"));
    let out = Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("infra/bootstrap.py"))
        .args([
            "--endpoint-url",
            &aws.endpoint,
            "--dynamodb-endpoint-url",
            &aws.dynamodb,
            "--prefix",
            &prefix,
            "--print-env",
        ])
        .arg("--manifest")
        .arg(&manifest)
        .output()
        .expect("run infra/bootstrap.py");
    assert!(
        out.status.success(),
        "bootstrap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&manifest).unwrap();
    let _ = std::fs::remove_file(&manifest);
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let functions = manifest["functions"]
        .as_object()
        .unwrap()
        .values()
        .map(|f| {
            let env = f["environment"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            (f["binary"].as_str().unwrap().to_owned(), env)
        })
        .collect();
    (parse_env(&String::from_utf8_lossy(&out.stdout)), functions)
}

/// Parses KEY=VALUE lines (values optionally single- or double-quoted).
pub fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            (
                k.trim().trim_start_matches("export ").to_owned(),
                v.to_owned(),
            )
        })
        .collect()
}

/// SDK clients of Herald's adapters: DynamoDB at `dynamodb`, the other services at `endpoint`.
pub async fn clients(endpoint: &str, dynamodb: &str) -> herald_aws::Clients {
    herald_aws::Clients::with_dynamodb_endpoint(&sdk_config(endpoint).await, dynamodb)
}

/// The same for the local stack's environment (`.herald/local.env`).
pub async fn stack_clients(env: &HashMap<String, String>) -> herald_aws::Clients {
    clients(&env["AWS_ENDPOINT_URL"], &env["AWS_ENDPOINT_URL_DYNAMODB"]).await
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// The local stack's environment, or `None` when it is not running.
pub fn local_stack() -> Option<HashMap<String, String>> {
    let text = std::fs::read_to_string(repo_root().join(".herald/local.env")).ok()?;
    Some(parse_env(&text))
}

/// A new secret (a unique name after `prefix`) tagged with Herald's secret `kind`, holding
/// `value` if given; answers its ARN.
pub async fn create_secret(
    sm: &aws_sdk_secretsmanager::Client,
    prefix: &str,
    kind: Option<&str>,
    value: Option<&str>,
) -> String {
    let mut create = sm
        .create_secret()
        .name(format!("{prefix}{}", uuid::Uuid::new_v4().simple()));
    if let Some(kind) = kind {
        create = create.tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(herald_domain::secrets::KIND_TAG)
                .value(kind)
                .build(),
        );
    }
    if let Some(value) = value {
        create = create.secret_string(value);
    }
    create.send().await.unwrap().arn().unwrap().to_owned()
}

/// A new queue (a unique name after `prefix`); answers its URL.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> String {
    sqs.create_queue()
        .queue_name(format!("{prefix}{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

/// A fresh operator token, put into the admin-token secret the API's `env` names (AWSCURRENT).
pub async fn operator_token(
    clients: &herald_aws::Clients,
    env: &HashMap<String, String>,
) -> String {
    let token = format!("hrld_op_{}", uuid::Uuid::new_v4().simple());
    clients
        .secrets
        .put_secret_value()
        .secret_id(&env["HERALD_ADMIN_TOKEN_SECRET_ID"])
        .secret_string(&token)
        .send()
        .await
        .unwrap();
    token
}

/// The API function's own wiring (`herald_fn_api`) over the API's `env`, as a router to call
/// in-process.
pub fn api_router(clients: &herald_aws::Clients, env: &HashMap<String, String>) -> axum::Router {
    let config = herald_fn_api::Config::from_env(env).unwrap();
    let shared = herald_fn_api::shared(&config, clients);
    herald_api::router(herald_fn_api::state(&config, clients, &shared))
}
