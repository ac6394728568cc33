//! The analytics function: on its schedule, takes the engagement snapshots that are due
//! (`herald_domain::analytics`): each published variant at 1 h, 24 h and 7 days after
//! publishing, read from its platform with the account's token.

use herald_aws::Clients;
use herald_aws::config::{CommonConfig, ConfigError, Env};
use herald_domain::analytics::{HEARTBEAT, MilestoneOffsets, SnapshotRun, SnapshotTaker};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::health::Heartbeat;
use herald_platforms::{Endpoints, HttpPlatforms};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// The table, and the token-encryption key that opens accounts' tokens.
    pub common: CommonConfig,
    pub endpoints: Endpoints,
    /// `HERALD_SNAPSHOT_OFFSETS_SECONDS`: the three milestones after publishing, in seconds,
    /// increasing (default `3600,86400,604800`).
    pub offsets: MilestoneOffsets,
    pub batch: usize,
    pub platform_timeout: Duration,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(vars);
        let common = CommonConfig::read(&mut env);
        let endpoints = Endpoints::read(|name| env.url(name));
        let spec: String = env.parsed(
            "HERALD_SNAPSHOT_OFFSETS_SECONDS",
            "3600,86400,604800".to_owned(),
        );
        let parsed: Vec<i64> = spec
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        let offsets = match parsed.as_slice() {
            [a, b, c] if 0 <= *a && a < b && b < c => MilestoneOffsets([
                time::Duration::seconds(*a),
                time::Duration::seconds(*b),
                time::Duration::seconds(*c),
            ]),
            _ => {
                env.problem(
                    "HERALD_SNAPSHOT_OFFSETS_SECONDS must be three increasing second counts, e.g. 3600,86400,604800",
                );
                MilestoneOffsets::default()
            }
        };
        let batch = env.parsed("HERALD_SNAPSHOT_BATCH", 200usize);
        let platform_timeout =
            Duration::from_secs(env.parsed("HERALD_PLATFORM_TIMEOUT_SECONDS", 10u64));
        env.finish()?;
        Ok(Self {
            common,
            endpoints,
            offsets,
            batch,
            platform_timeout,
        })
    }
}

/// The snapshot taker and the heartbeat it leaves after each run.
pub fn taker(config: &Config, clients: &Clients) -> (SnapshotTaker, Heartbeat) {
    let store = Arc::new(config.common.store(clients));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let client = HttpPlatforms::new(config.endpoints.clone(), config.platform_timeout);
    let heartbeat = Heartbeat {
        store: store.clone(),
        clock: clock.clone(),
        function: HEARTBEAT,
    };
    let taker = SnapshotTaker {
        store: store.clone(),
        accounts: store,
        client: Arc::new(client),
        clock,
        offsets: config.offsets,
        batch: config.batch,
    };
    (taker, heartbeat)
}

/// One scheduled run; the summary is the invocation's result.
pub async fn handle(
    (taker, heartbeat): &(SnapshotTaker, Heartbeat),
) -> Result<SnapshotRun, herald_domain::StoreError> {
    let run = taker.run().await?;
    heartbeat.record(&run).await;
    tracing::info!(
        metric = "analytics.snapshots",
        scheduled = run.scheduled,
        taken = run.taken,
        already_taken = run.already_taken,
        failed = run.failed,
        dropped = run.dropped,
        "snapshot run"
    );
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_problem() {
        let err = Config::from_env(&HashMap::from([(
            "HERALD_SNAPSHOT_OFFSETS_SECONDS".to_owned(),
            "60,30,90".to_owned(),
        )]))
        .unwrap_err()
        .to_string();
        for name in [
            "HERALD_TABLE",
            "HERALD_X_API_URL",
            "HERALD_SNAPSHOT_OFFSETS_SECONDS must be three increasing",
        ] {
            assert!(err.contains(name), "{name} not in {err}");
        }
        let ok = Config::from_env(&HashMap::from([
            ("HERALD_TABLE".to_owned(), "t".to_owned()),
            ("HERALD_IDEMPOTENCY_TABLE".to_owned(), "i".to_owned()),
            ("HERALD_AUDIT_TABLE".to_owned(), "a".to_owned()),
            ("HERALD_PUBLISH_QUEUE_URL".to_owned(), "http://q".to_owned()),
            ("HERALD_TOKEN_KEY_SECRET".to_owned(), "k".to_owned()),
            ("HERALD_X_API_URL".to_owned(), "http://x".to_owned()),
            ("HERALD_FACEBOOK_API_URL".to_owned(), "http://f".to_owned()),
            ("HERALD_LINKEDIN_API_URL".to_owned(), "http://l".to_owned()),
            ("HERALD_MASTODON_API_URL".to_owned(), "http://m".to_owned()),
            ("HERALD_BLUESKY_API_URL".to_owned(), "http://b".to_owned()),
            ("HERALD_INSTAGRAM_API_URL".to_owned(), "http://i".to_owned()),
        ]))
        .unwrap();
        assert_eq!(ok.offsets, MilestoneOffsets::default());
    }
}
