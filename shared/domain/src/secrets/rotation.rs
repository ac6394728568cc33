//! The rotation function's logic: Secrets Manager's four steps for a secret Herald owns,
//! and the gates that may hold a rotation back.

use super::*;

/// The steps Secrets Manager calls the rotation function with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    Create,
    Set,
    Test,
    Finish,
}

impl RotationStep {
    pub fn parse(step: &str) -> Option<Self> {
        match step {
            "createSecret" => Some(Self::Create),
            "setSecret" => Some(Self::Set),
            "testSecret" => Some(Self::Test),
            "finishSecret" => Some(Self::Finish),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RotationError {
    #[error("{0} is not a secret Herald owns (no valid {KIND_TAG} tag)")]
    NotOwned(String),
    #[error("version {0} is not staged for rotation (not AWSPENDING)")]
    NotPending(String),
    #[error("version {0} does not exist")]
    UnknownVersion(String),
    #[error("the pending value is not a valid {kind}: {reason}")]
    Invalid { kind: &'static str, reason: String },
    #[error("not rotating {secret} yet: {reason}")]
    NotReady { secret: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    Done,
    /// The step had already been done for this token; nothing changed.
    AlreadyDone,
}

/// What may hold a rotation back: a secret whose older values something still depends on.
#[async_trait::async_trait]
pub trait RotationGate: Send + Sync {
    /// Why `secret`, whose current value is `current`, may not rotate now (`None`: it may).
    async fn hold(
        &self,
        secret: &str,
        current: &SecretString,
    ) -> Result<Option<String>, StoreError>;
}

/// The rotation function's logic.
#[derive(Clone)]
pub struct Rotation {
    pub store: Arc<dyn SecretStore>,
    /// Asked before a new value is made (`createSecret`) for a secret that has one already.
    pub gate: Option<Arc<dyn RotationGate>>,
}

crate::debug_fields!(Rotation);

impl Rotation {
    /// The gate's answer, read against the current value as Secrets Manager holds it now (a
    /// cached ring could be a rotation behind).
    async fn check_gate(&self, secret: &str, meta: &SecretMeta) -> Result<(), RotationError> {
        let (Some(gate), Some(current)) = (&self.gate, meta.staged(CURRENT)) else {
            return Ok(());
        };
        let Some(value) = self.store.value(secret, &current.id).await? else {
            return Ok(());
        };
        match gate.hold(secret, &value).await? {
            None => Ok(()),
            Some(reason) => Err(RotationError::NotReady {
                secret: secret.to_owned(),
                reason,
            }),
        }
    }

    pub async fn step(
        &self,
        secret: &str,
        token: &str,
        step: RotationStep,
    ) -> Result<StepOutcome, RotationError> {
        let meta = self.store.describe(secret).await?;
        let kind = meta
            .kind
            .ok_or_else(|| RotationError::NotOwned(secret.to_owned()))?;
        match meta.version(token) {
            // A `finishSecret` that moved AWSCURRENT but died before removing AWSPENDING
            // finishes that part when it is retried.
            Some(v) if v.has(CURRENT) && v.has(PENDING) && step == RotationStep::Finish => {
                self.store
                    .move_stage(secret, PENDING, None, Some(token))
                    .await?;
                return Ok(StepOutcome::Done);
            }
            Some(v) if v.has(CURRENT) => return Ok(StepOutcome::AlreadyDone),
            Some(v) if !v.has(PENDING) => return Err(RotationError::NotPending(token.to_owned())),
            // Secrets Manager stages the token before calling `createSecret`; whoever stands
            // in for it (the local stack, the tests) lets `createSecret` make the version.
            None if step != RotationStep::Create => {
                return Err(RotationError::UnknownVersion(token.to_owned()));
            }
            _ => {}
        }
        match step {
            RotationStep::Create => {
                if self.store.value(secret, token).await?.is_some() {
                    return Ok(StepOutcome::AlreadyDone);
                }
                self.check_gate(secret, &meta).await?;
                self.store
                    .put_pending(secret, token, &kind.generate())
                    .await?;
                Ok(StepOutcome::Done)
            }
            // Nothing outside Secrets Manager holds these secrets: Herald's functions read
            // them from there (through `SecretCache`), and senders are handed a webhook
            // secret by an operator.
            RotationStep::Set => Ok(StepOutcome::Done),
            RotationStep::Test => {
                let value = self
                    .store
                    .value(secret, token)
                    .await?
                    .ok_or_else(|| RotationError::UnknownVersion(token.to_owned()))?;
                kind.key_bytes(&value)
                    .map_err(|reason| RotationError::Invalid {
                        kind: kind.as_str(),
                        reason,
                    })?;
                Ok(StepOutcome::Done)
            }
            RotationStep::Finish => {
                let current = meta.staged(CURRENT).map(|v| v.id.as_str());
                self.store
                    .move_stage(secret, CURRENT, Some(token), current)
                    .await?;
                self.store
                    .move_stage(secret, PENDING, None, Some(token))
                    .await?;
                Ok(StepOutcome::Done)
            }
        }
    }
}
