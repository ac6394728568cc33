//! Reading configuration from the environment once, at start-up, listing every problem at
//! once. Library code never reads the environment: binaries pass the variables in.

use std::collections::HashMap;
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// Collects values and problems; `finish` fails with all of them.
#[derive(Debug)]
pub struct Env<'a> {
    vars: &'a HashMap<String, String>,
    problems: Vec<String>,
}

impl<'a> Env<'a> {
    pub fn new(vars: &'a HashMap<String, String>) -> Self {
        Self {
            vars,
            problems: Vec::new(),
        }
    }

    /// A whole configuration: `read` takes what it needs from the variables (noting every
    /// problem on the way), then the problems are reported together or the value returned.
    pub fn read<T>(
        vars: &'a HashMap<String, String>,
        read: impl FnOnce(&mut Env<'a>) -> T,
    ) -> Result<T, ConfigError> {
        let mut env = Self::new(vars);
        let value = read(&mut env);
        env.finish()?;
        Ok(value)
    }

    pub fn required(&mut self, name: &str) -> String {
        match self.vars.get(name).map(|v| v.trim()) {
            Some(v) if !v.is_empty() => v.to_owned(),
            _ => {
                self.problems.push(format!("{name} is required"));
                String::new()
            }
        }
    }

    /// A variable that may be unset; empty (or only spaces) counts as unset.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    pub fn parsed<T: FromStr>(&mut self, name: &str, default: T) -> T {
        match self.vars.get(name).map(|v| v.trim()) {
            None | Some("") => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                self.problems.push(format!(
                    "{name}={v:?} is not a valid {}",
                    std::any::type_name::<T>()
                ));
                default
            }),
        }
    }

    pub fn url(&mut self, name: &str) -> String {
        let v = self.required(name);
        if !v.is_empty() && !v.starts_with("https://") && !v.starts_with("http://") {
            self.problems.push(format!("{name} must be an http(s) URL"));
        }
        v
    }

    /// A duration given in whole seconds.
    pub fn seconds(&mut self, name: &str, default: time::Duration) -> time::Duration {
        time::Duration::seconds(self.parsed(name, default.whole_seconds()))
    }

    /// A problem found while interpreting a value.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.problems))
        }
    }
}

/// What every function reads.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub table: String,
    pub idempotency_table: String,
    pub audit_table: String,
    pub publish_queue_url: String,
    /// The token-encryption key secret (`TokenEncryptionKeySecret`): platform tokens are
    /// sealed under it at rest.
    pub token_key_secret: String,
    pub secrets: SecretsConfig,
}

impl CommonConfig {
    pub fn read(env: &mut Env<'_>) -> Self {
        if let Some(level) = env.optional("HERALD_LOG_LEVEL")
            && !crate::telemetry::LEVELS.contains(&level.as_str())
        {
            env.problem(format!(
                "HERALD_LOG_LEVEL must be one of {}",
                crate::telemetry::LEVELS.join(", ")
            ));
        }
        Self {
            table: env.required("HERALD_TABLE"),
            idempotency_table: env.required("HERALD_IDEMPOTENCY_TABLE"),
            audit_table: env.required("HERALD_AUDIT_TABLE"),
            publish_queue_url: env.url("HERALD_PUBLISH_QUEUE_URL"),
            token_key_secret: env.required("HERALD_TOKEN_KEY_SECRET"),
            secrets: SecretsConfig::read(env),
        }
    }

    /// The main table's store, with the audit log's table and the token vault.
    pub fn store(&self, clients: &crate::Clients) -> crate::dynamo::DynamoStore {
        let cache = self.secrets.cache(
            clients,
            std::sync::Arc::new(herald_domain::clock::SystemClock),
        );
        self.store_with(clients, cache)
    }

    /// The store, its token vault reading through `cache` (a function that reads other
    /// secrets too shares one cache).
    pub fn store_with(
        &self,
        clients: &crate::Clients,
        cache: std::sync::Arc<herald_domain::secrets::SecretCache>,
    ) -> crate::dynamo::DynamoStore {
        crate::dynamo::DynamoStore::new(clients.dynamodb.clone(), &self.table)
            .with_audit_table(&self.audit_table)
            .with_token_vault(self.token_vault(cache))
    }

    /// The token-encryption key ring, read through `cache`.
    pub fn token_vault(
        &self,
        cache: std::sync::Arc<herald_domain::secrets::SecretCache>,
    ) -> std::sync::Arc<herald_domain::secrets::token_crypto::TokenVault> {
        token_vault(cache, &self.token_key_secret)
    }
}

/// The token-encryption key ring under `secret_id`, read through `cache`.
fn token_vault(
    cache: std::sync::Arc<herald_domain::secrets::SecretCache>,
    secret_id: &str,
) -> std::sync::Arc<herald_domain::secrets::token_crypto::TokenVault> {
    std::sync::Arc::new(
        herald_domain::secrets::token_crypto::TokenVault::from_secret(cache, secret_id),
    )
}

/// What a function that announces facts to tenants' outbound webhooks reads: the queue
/// (`HERALD_OUTBOUND_QUEUE_URL`; absent, nothing is announced) and the token-encryption key
/// the endpoints' signing secrets are sealed under (`HERALD_TOKEN_KEY_SECRET`).
#[derive(Debug, Clone)]
pub struct AnnounceConfig {
    pub queue_url: Option<String>,
    pub token_key_secret: String,
}

impl AnnounceConfig {
    pub fn read(env: &mut Env<'_>) -> Self {
        Self {
            queue_url: env.optional("HERALD_OUTBOUND_QUEUE_URL"),
            token_key_secret: env.required("HERALD_TOKEN_KEY_SECRET"),
        }
    }

    /// The token-encryption key ring, read through `cache`: the store that lists endpoints
    /// needs it.
    pub fn token_vault(
        &self,
        cache: std::sync::Arc<herald_domain::secrets::SecretCache>,
    ) -> std::sync::Arc<herald_domain::secrets::token_crypto::TokenVault> {
        token_vault(cache, &self.token_key_secret)
    }

    /// The fan-out, when the queue is configured; endpoints are read through `store` (which
    /// holds [`AnnounceConfig::token_vault`]) and cached a minute per tenant.
    pub fn events(
        &self,
        clients: &crate::Clients,
        store: std::sync::Arc<crate::dynamo::DynamoStore>,
        clock: std::sync::Arc<dyn herald_domain::clock::Clock>,
    ) -> Option<std::sync::Arc<herald_domain::outbound::OutboundEvents>> {
        self.queue_url.as_ref().map(|url| {
            std::sync::Arc::new(herald_domain::outbound::OutboundEvents::new(
                store,
                std::sync::Arc::new(crate::outbound::SqsOutboundQueue::new(
                    clients.sqs.clone(),
                    url,
                )),
                clock,
                time::Duration::minutes(1),
            ))
        })
    }
}

/// How a function caches the secrets it verifies with, and how long a previous value keeps
/// verifying after a rotation.
#[derive(Debug, Clone, Copy)]
pub struct SecretsConfig {
    pub cache: herald_domain::secrets::CachePolicy,
    pub grace: time::Duration,
}

impl SecretsConfig {
    /// `HERALD_SECRET_CACHE_SECONDS` (default 300) and `HERALD_SECRET_GRACE_SECONDS` (default
    /// 86400).
    pub fn read(env: &mut Env<'_>) -> Self {
        let c = herald_domain::secrets::CachePolicy::default();
        Self {
            cache: herald_domain::secrets::CachePolicy {
                ttl: env.seconds("HERALD_SECRET_CACHE_SECONDS", c.ttl),
                refetch_every: c.refetch_every,
            },
            grace: env.seconds("HERALD_SECRET_GRACE_SECONDS", time::Duration::hours(24)),
        }
    }

    /// A process-wide cache over Secrets Manager.
    pub fn cache(
        &self,
        clients: &crate::Clients,
        clock: std::sync::Arc<dyn herald_domain::clock::Clock>,
    ) -> std::sync::Arc<herald_domain::secrets::SecretCache> {
        std::sync::Arc::new(herald_domain::secrets::SecretCache::new(
            std::sync::Arc::new(crate::secrets::SecretsManagerStore::new(
                clients.secrets.clone(),
            )),
            clock,
            self.cache,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_problem() {
        let vars = HashMap::from([("HERALD_PUBLISH_QUEUE_URL".to_owned(), "queue".to_owned())]);
        let mut env = Env::new(&vars);
        CommonConfig::read(&mut env);
        let n: u32 = env.parsed("N", 3);
        assert_eq!(n, 3);
        let err = env.finish().unwrap_err();
        assert_eq!(err.0.len(), 5, "{err}");
        assert!(err.to_string().contains("HERALD_TABLE is required"));
        assert!(err.to_string().contains("must be an http(s) URL"));
    }

    #[test]
    fn read_returns_the_value_or_every_problem_and_seconds_are_durations() {
        let vars = HashMap::from([
            ("LEASE".to_owned(), "90".to_owned()),
            ("BAD".to_owned(), "soon".to_owned()),
        ]);
        let read = |env: &mut Env<'_>| {
            (
                env.seconds("LEASE", time::Duration::seconds(5)),
                env.seconds("UNSET", time::Duration::minutes(2)),
            )
        };
        assert_eq!(
            Env::read(&vars, read),
            Ok((time::Duration::seconds(90), time::Duration::minutes(2)))
        );
        let err = Env::read(&vars, |env| {
            env.seconds("BAD", time::Duration::ZERO);
            env.required("MISSING")
        })
        .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.to_string().contains("BAD"), "{err}");
        assert!(err.to_string().contains("MISSING is required"), "{err}");
    }

    #[test]
    fn an_optional_variable_that_is_empty_is_unset() {
        let vars = HashMap::from([
            ("SET".to_owned(), " value ".to_owned()),
            ("EMPTY".to_owned(), "  ".to_owned()),
        ]);
        let env = Env::new(&vars);
        assert_eq!(env.optional("SET").as_deref(), Some("value"));
        assert_eq!(env.optional("EMPTY"), None);
        assert_eq!(env.optional("MISSING"), None);
        assert!(
            env.finish().is_ok(),
            "an optional variable is never a problem"
        );
    }
}
