//! A deterministic simulation of Herald's publish pipeline.
//!
//! The real domain services (`PostService`, `Dispatcher`, `PublishService`, `Reconciler`) run
//! against the in-memory store, behind models of what surrounds them in production: SQS with
//! its redrive policy and at-least-once delivery (`queue`), Lambda invocations that crash or
//! time out (`lambda`, `faults`), a platform that rate-limits, fails and loses answers
//! (`platform`), and a virtual clock that lets all of them interleave (`vclock`). Each seed
//! scripts a few hours of posts, edits, cancels, reviews and pauses (`driver`); at the end the
//! brief's invariants are checked against what really happened (`invariants`, `ledger`).
//!
//! A seed replays exactly: one thread, virtual time, every random draw from the seed. This
//! crate never reads the system clock or iterates a `HashMap` to decide anything.

pub mod campaigns;
pub mod config;
pub mod driver;
pub mod faults;
pub mod invariants;
pub mod lambda;
pub mod ledger;
pub mod plan;
pub mod platform;
pub mod queue;
pub mod rng;
pub mod vclock;
pub mod world;

pub use driver::{SeedRun, SimConfig, run_seed};
pub use faults::{Faults, Rates};
pub use invariants::{Finding, Invariant, SeedReport};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What every model of a seed shares: the clock, the ledger and the counters.
#[derive(Debug, Clone)]
pub struct Env {
    pub clock: Arc<vclock::SimClock>,
    pub ledger: Arc<ledger::Ledger>,
    pub stats: Arc<ledger::Stats>,
}

/// Totals over many seeds.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub seeds: usize,
    pub publishes: usize,
    /// Thread parts and first comments found on the platform, each checked in its place.
    pub follow_ups: usize,
    pub duplicates: usize,
    pub lost: usize,
    pub paused_claims: usize,
    pub dead_lettered_rate_limited: usize,
    /// Seeds that failed any check, in seed order.
    pub failed: Vec<SeedReport>,
    /// Findings by (invariant, class), with how many and the first seed that shows it.
    pub classes: BTreeMap<(Invariant, String), (usize, u64)>,
}

impl Summary {
    pub fn add(&mut self, report: &SeedReport) {
        self.seeds += 1;
        self.publishes += report.publishes;
        self.follow_ups += report.follow_ups;
        self.duplicates += report.duplicates;
        self.lost += report.lost;
        self.paused_claims += report.paused_claims;
        self.dead_lettered_rate_limited += report.dead_lettered_rate_limited;
        for f in &report.findings {
            let e = self
                .classes
                .entry((f.invariant, f.class.clone()))
                .or_insert((0, report.seed));
            e.0 += 1;
        }
        if report.failed() {
            self.failed.push(report.clone());
        }
    }

    pub fn passed(&self) -> bool {
        self.failed.is_empty()
    }

    /// The one line tools read.
    pub fn line(&self) -> String {
        format!(
            "SIM seeds={} publishes={} follow_ups={} duplicates={} lost={} paused_claims={} dead_lettered_rate_limited={}",
            self.seeds,
            self.publishes,
            self.follow_ups,
            self.duplicates,
            self.lost,
            self.paused_claims,
            self.dead_lettered_rate_limited
        )
    }
}

/// Runs `seeds` with `base`'s settings on up to `jobs` threads; each seed is independent
/// and deterministic, so the thread count changes nothing but the wall time.
pub fn run_seeds(base: &SimConfig, seeds: &[u64], jobs: usize) -> Vec<SeedRun> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(u64, SeedRun)>> = Mutex::new(Vec::with_capacity(seeds.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, seeds.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    let run = run_seed(SimConfig {
                        seed,
                        ..base.clone()
                    });
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((seed, run));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(seed, _)| *seed);
    results.into_iter().map(|(_, run)| run).collect()
}

/// A failing seed's findings and, from a traced replay, what happened to the first few
/// variants that failed.
pub fn render_failure(
    report: &SeedReport,
    traced: Option<&SeedRun>,
    max_variants: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "seed {} FAILED: duplicates={} lost={} paused_claims={} dead_lettered_rate_limited={} (of {} publishes)",
        report.seed,
        report.duplicates,
        report.lost,
        report.paused_claims,
        report.dead_lettered_rate_limited,
        report.publishes
    );
    let failing: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.invariant.fails())
        .collect();
    for f in failing.iter().take(12) {
        let _ = writeln!(out, "  {f}");
    }
    if failing.len() > 12 {
        let _ = writeln!(out, "  ... and {} more", failing.len() - 12);
    }
    let Some(traced) = traced else {
        return out;
    };
    let labels: Vec<String> = failing
        .iter()
        .filter(|f| f.variant.is_some())
        .map(|f| f.label.clone())
        .fold(Vec::new(), |mut v, l| {
            if !v.contains(&l) {
                v.push(l);
            }
            v
        });
    for label in labels.iter().take(max_variants) {
        out.push_str(&render_trace(traced, label));
    }
    out
}

/// What happened to one variant (`p17/t0.x1`), from a traced run: its queue messages, claims,
/// platform calls, outcomes and dispositions, and its post's API calls.
pub fn render_trace(traced: &SeedRun, label: &str) -> String {
    let mut out = String::new();
    let Some((post, account)) = label
        .strip_prefix('p')
        .and_then(|l| l.split_once('/'))
        .and_then(|(p, a)| Some((p.parse::<usize>().ok()?, a)))
    else {
        let _ = writeln!(
            out,
            "  no such variant: {label} (expected p<post>/<account>)"
        );
        return out;
    };
    let _ = writeln!(out, "  trace of {label}:");
    let lines: Vec<_> = traced
        .trace
        .iter()
        .filter(|l| l.post == Some(post) && l.account.as_deref().is_none_or(|a| a == account))
        .collect();
    let skip = lines.len().saturating_sub(400);
    if skip > 0 {
        let _ = writeln!(out, "    ... {skip} earlier lines");
    }
    for l in lines.into_iter().skip(skip) {
        let _ = writeln!(out, "    {} {}", ledger::clock_time(l.at), l.text);
    }
    out
}
