//! The secret-rotation function: Secrets Manager calls it with each of the four rotation
//! steps for a secret Herald owns (see `herald_domain::secrets`).

use herald_aws::Clients;
use herald_aws::config::{ConfigError, Env};
use herald_aws::dynamo::DynamoStore;
use herald_aws::secrets::{SecretsManagerStore, SweptBeforeRotation};
use herald_domain::secrets::{Rotation, RotationStep, StepOutcome};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// What the rotator needs beyond the event: where the sweep marker is, and which secret is
/// the token-encryption key (its rotation waits for the sweep).
#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub token_key_secret: String,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Env::read(vars, |env| Self {
            table: env.required("HERALD_TABLE"),
            token_key_secret: env.required("HERALD_TOKEN_KEY_SECRET"),
        })
    }
}

/// The event Secrets Manager sends a rotation function.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    pub secret_id: String,
    pub client_request_token: String,
    pub step: String,
}

pub fn rotation(config: &Config, clients: &Clients) -> Rotation {
    Rotation {
        store: Arc::new(SecretsManagerStore::new(clients.secrets.clone())),
        gate: Some(Arc::new(SweptBeforeRotation {
            store: DynamoStore::new(clients.dynamodb.clone(), &config.table),
            token_key_secret: config.token_key_secret.clone(),
        })),
    }
}

/// Runs one step; the error is what Secrets Manager records for the failed rotation.
pub async fn handle(rotation: &Rotation, event: &RotationEvent) -> Result<(), String> {
    let step = RotationStep::parse(&event.step)
        .ok_or_else(|| format!("unknown rotation step `{}`", event.step))?;
    let outcome = rotation
        .step(&event.secret_id, &event.client_request_token, step)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        secret_id = %event.secret_id,
        token = %event.client_request_token,
        step = %event.step,
        already_done = outcome == StepOutcome::AlreadyDone,
        "rotation step"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_problem() {
        let err = Config::from_env(&HashMap::new()).unwrap_err().to_string();
        for name in ["HERALD_TABLE", "HERALD_TOKEN_KEY_SECRET"] {
            assert!(err.contains(name), "{name} not in {err}");
        }
    }

    #[test]
    fn sample_events_parse() {
        let event: RotationEvent =
            serde_json::from_slice(include_bytes!("../../../events/rotator/create-secret.json"))
                .unwrap();
        assert_eq!(RotationStep::parse(&event.step), Some(RotationStep::Create));
    }
}
