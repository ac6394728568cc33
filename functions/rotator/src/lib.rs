//! The secret-rotation function: Secrets Manager calls it with each of the four rotation
//! steps for a secret Herald owns (see `herald_domain::secrets`).

use herald_aws::Clients;
use herald_aws::secrets::SecretsManagerStore;
use herald_domain::secrets::{Rotation, RotationStep, StepOutcome};
use serde::Deserialize;
use std::sync::Arc;

/// The event Secrets Manager sends a rotation function.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    pub secret_id: String,
    pub client_request_token: String,
    pub step: String,
}

pub fn rotation(clients: &Clients) -> Rotation {
    Rotation {
        store: Arc::new(SecretsManagerStore::new(clients.secrets.clone())),
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
    fn sample_events_parse() {
        let event: RotationEvent =
            serde_json::from_slice(include_bytes!("../../../events/rotator/create-secret.json"))
                .unwrap();
        assert_eq!(RotationStep::parse(&event.step), Some(RotationStep::Create));
    }
}
