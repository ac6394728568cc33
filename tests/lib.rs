//! Shared set-up for the integration and end-to-end tests: a moto server started on a free
//! port (once per test binary), resources created from template.yaml by the same bootstrap
//! the local stack uses, and the local stack's `.herald/local.env`.
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

/// A moto server for this test binary; killed when the binary exits.
#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
    _child: ChildGuard,
}

#[derive(Debug)]
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // moto with DynamoDB requests serialized (see infra/moto_server.py for why).
        let bin = repo_root().join(".venv/bin/python");
        let log = std::fs::File::create(repo_root().join("target/moto-tests.log")).unwrap();
        let child = Command::new(&bin)
            .arg(repo_root().join("infra/moto_server.py"))
            // The server lives in a static, which is never dropped: it stops itself instead.
            .arg("--exit-with-parent")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (run `make venv`): {e}", bin.display()));
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint,
            _child: ChildGuard(child),
        }
    })
}

/// A fake-platforms server (infra/fake_platforms/) of one's own, on a free port; stopped
/// when dropped.
#[derive(Debug)]
pub struct FakePlatforms {
    pub url: String,
    _child: ChildGuard,
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
pub fn bootstrap(endpoint: &str) -> HashMap<String, String> {
    bootstrap_functions(endpoint).0
}

/// As [`bootstrap`], with each function's own variables (the template's per-function
/// `Environment`), by binary name.
pub fn bootstrap_functions(
    endpoint: &str,
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
            endpoint,
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
