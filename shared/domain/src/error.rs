use thiserror::Error;

/// What a storage port can report. Adapters map their SDK errors onto these variants; the
/// services decide what is retryable from the variant, never from an SDK type.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A conditional write lost: someone else changed the record first.
    #[error("the record changed concurrently")]
    Conflict,
    /// The store throttled or timed out; the same call may succeed later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be understood, or the call was rejected as invalid.
    #[error("store error: {0}")]
    Invalid(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
