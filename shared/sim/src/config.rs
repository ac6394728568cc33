//! What a seed runs: its number, size, faults and schedules.

use crate::faults::{Faults, Rates};
use std::time::Duration;

pub use crate::vclock::START;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// Variants (one post to one account) per seed.
    pub publishes: usize,
    pub faults: Faults,
    pub rates: Rates,
    /// Tenants pause and resume publishing.
    pub crises: bool,
    /// The API edits and cancels posts that are not claimed yet.
    pub edits: bool,
    /// The publisher's `Delivery::deadline` is the Lambda deadline less this
    /// (`HERALD_DEADLINE_MARGIN_MS`, 2 s by default).
    pub deadline_margin: Duration,
    /// How long after the last scheduled post the run may go on before it is cut off.
    pub cap: time::Duration,
    /// The reconciler's schedule (`None`: no reconciler, to see what it saves).
    pub reconcile_every: Option<Duration>,
    /// Keep a trace line per event (for replaying a failing seed).
    pub trace: bool,
}

impl SimConfig {
    pub fn new(seed: u64, publishes: usize) -> Self {
        Self {
            seed,
            publishes,
            faults: Faults::ALL,
            rates: Rates::default(),
            crises: true,
            edits: true,
            deadline_margin: Duration::from_secs(2),
            cap: time::Duration::hours(48),
            reconcile_every: Some(Duration::from_secs(60)),
            trace: false,
        }
    }
}
