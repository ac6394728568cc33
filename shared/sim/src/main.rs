//! `herald-sim`: runs seeds of the publish-pipeline simulation and prints one `SIM` line.
//! A failing seed is replayed with tracing and shown; `--seed N` replays exactly that seed.

use clap::Parser;
use herald_sim::campaigns::{CampaignSummary, run_campaign_seed};
use herald_sim::{Faults, SimConfig, Summary, render_failure, render_trace, run_seed, run_seeds};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "herald-sim",
    about = "Deterministic simulation of Herald's publish pipeline"
)]
struct Args {
    /// Seeds to run (1..=N).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// Variants published per seed.
    #[arg(long, default_value_t = 1000)]
    publishes: usize,
    /// Run only this seed, and show its trace if it fails.
    #[arg(long)]
    seed: Option<u64>,
    /// A line per seed, the counters, and every finding class.
    #[arg(long)]
    verbose: bool,
    /// Threads (seeds are independent; results do not depend on this).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Turns every fault class off (combine with nothing else to get a clean baseline).
    #[arg(long)]
    no_faults: bool,
    #[arg(long)]
    no_crashes: bool,
    #[arg(long)]
    no_timeouts: bool,
    #[arg(long)]
    no_store_faults: bool,
    #[arg(long)]
    no_platform_faults: bool,
    #[arg(long)]
    no_duplicates: bool,
    #[arg(long)]
    no_queue_faults: bool,
    /// No tenant pauses.
    #[arg(long)]
    no_crises: bool,
    /// No edits or cancels.
    #[arg(long)]
    no_edits: bool,
    /// No reconciler (to see what it resolves).
    #[arg(long)]
    no_reconciler: bool,
    /// The publisher's deadline is the Lambda deadline less this.
    #[arg(long, default_value_t = 2000)]
    deadline_margin_ms: u64,
    /// How many failing variants of a failing seed to trace.
    #[arg(long, default_value_t = 3)]
    trace_variants: usize,
    /// Also show the trace of this variant (`p17/t0.x1`; repeatable; with `--seed`).
    #[arg(long = "trace", value_name = "VARIANT")]
    traces: Vec<String>,
    /// How many failing seeds to replay with their trace (all are listed).
    #[arg(long, default_value_t = 3)]
    show_failures: usize,
    /// Contacts per campaign seed (each seed also runs one SMS campaign; 0: none).
    #[arg(long, default_value_t = 150)]
    campaign_contacts: usize,
}

impl Args {
    fn config(&self) -> SimConfig {
        let mut c = SimConfig::new(1, self.publishes);
        let on = !self.no_faults;
        c.faults = Faults {
            crashes: on && !self.no_crashes,
            timeouts: on && !self.no_timeouts,
            store: on && !self.no_store_faults,
            platform: on && !self.no_platform_faults,
            duplicates: on && !self.no_duplicates,
            queue: on && !self.no_queue_faults,
        };
        c.crises = !self.no_crises;
        c.edits = !self.no_edits;
        if self.no_reconciler {
            c.reconcile_every = None;
        }
        c.deadline_margin = Duration::from_millis(self.deadline_margin_ms);
        c
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let base = args.config();
    let seeds: Vec<u64> = match args.seed {
        Some(s) => vec![s],
        None => (1..=args.seeds).collect(),
    };
    eprintln!(
        "herald-sim: {} seed(s) x {} publishes, faults: {}, crises: {}, edits: {}, reconciler: {}",
        seeds.len(),
        base.publishes,
        base.faults.describe(),
        base.crises,
        base.edits,
        base.reconcile_every.is_some()
    );
    let started = Instant::now();
    let runs = run_seeds(&base, &seeds, args.jobs);
    let elapsed = started.elapsed();
    let mut summary = Summary::default();
    for run in &runs {
        summary.add(&run.report);
        if args.verbose {
            let r = &run.report;
            eprintln!(
                "seed {:>4}: publishes={} duplicates={} lost={} paused_claims={} dead_lettered_rate_limited={} simulated={:.1}h{}",
                r.seed,
                r.publishes,
                r.duplicates,
                r.lost,
                r.paused_claims,
                r.dead_lettered_rate_limited,
                run.simulated.as_seconds_f64() / 3600.0,
                if r.failed() { "  FAILED" } else { "" }
            );
            if args.seed.is_some() {
                for (name, n) in &run.stats {
                    eprintln!("    {name}: {n}");
                }
                for f in r.findings.iter().filter(|f| !f.invariant.fails()) {
                    eprintln!("  {f}");
                }
            }
        }
    }
    let shown = if args.seed.is_some() {
        1
    } else {
        args.show_failures
    };
    for report in summary.failed.iter().take(shown) {
        // Same seed, same run: this time with a trace.
        let traced = run_seed(SimConfig {
            seed: report.seed,
            trace: true,
            ..base.clone()
        });
        eprint!(
            "{}",
            render_failure(report, Some(&traced), args.trace_variants)
        );
        eprintln!("  replay: {}", replay_command(&args, report.seed));
    }
    if let (Some(seed), false) = (args.seed, args.traces.is_empty()) {
        let traced = run_seed(SimConfig {
            seed,
            trace: true,
            ..base.clone()
        });
        for label in &args.traces {
            eprint!("{}", render_trace(&traced, label));
        }
    }
    if summary.failed.len() > shown {
        let rest: Vec<String> = summary.failed[shown..]
            .iter()
            .map(|r| r.seed.to_string())
            .collect();
        eprintln!("also failed: seeds {}", rest.join(" "));
    }
    if args.verbose && args.seed.is_none() {
        let mut totals: Vec<(&str, u64)> = Vec::new();
        for run in &runs {
            for (i, (name, n)) in run.stats.iter().enumerate() {
                match totals.get_mut(i) {
                    Some(t) => t.1 += n,
                    None => totals.push((name, *n)),
                }
            }
        }
        let line: Vec<String> = totals.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!("totals: {}", line.join(" "));
    }
    if args.verbose || !summary.passed() {
        eprintln!("findings by class (count, first seed):");
        for ((invariant, class), (n, seed)) in &summary.classes {
            eprintln!(
                "  {:<28} {:<32} {n:>6}  seed {seed}",
                invariant.as_str(),
                class
            );
        }
    }
    let secs = elapsed.as_secs_f64();
    eprintln!(
        "elapsed {:.2}s, {:.0} publishes/s",
        secs,
        summary.publishes as f64 / secs.max(1e-9)
    );
    let started = Instant::now();
    let mut campaigns = CampaignSummary::default();
    if args.campaign_contacts > 0 {
        let faults = !args.no_faults;
        for &seed in &seeds {
            let report = run_campaign_seed(seed, args.campaign_contacts, faults);
            if args.verbose || (args.seed.is_some() && !report.findings.is_empty()) {
                for f in &report.findings {
                    eprintln!("  campaign seed {seed}: {f}");
                }
            }
            campaigns.add(&report);
        }
        eprintln!(
            "campaigns: {} seed(s) x {} contacts in {:.2}s; findings by class: {:?}; failed seeds (first 10): {:?}",
            campaigns.seeds,
            args.campaign_contacts,
            started.elapsed().as_secs_f64(),
            campaigns.classes,
            campaigns.failed_seeds.iter().take(10).collect::<Vec<_>>()
        );
    }
    println!("{} {}", summary.line(), campaigns.line());
    if summary.passed() && campaigns.failed_seeds.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn replay_command(args: &Args, seed: u64) -> String {
    let mut cmd = format!(
        "cargo run --release -p herald-sim -- --seed {seed} --publishes {}",
        args.publishes
    );
    for (set, flag) in [
        (args.no_faults, "--no-faults"),
        (args.no_crashes, "--no-crashes"),
        (args.no_timeouts, "--no-timeouts"),
        (args.no_store_faults, "--no-store-faults"),
        (args.no_platform_faults, "--no-platform-faults"),
        (args.no_duplicates, "--no-duplicates"),
        (args.no_queue_faults, "--no-queue-faults"),
        (args.no_crises, "--no-crises"),
        (args.no_edits, "--no-edits"),
        (args.no_reconciler, "--no-reconciler"),
    ] {
        if set {
            cmd.push(' ');
            cmd.push_str(flag);
        }
    }
    if args.deadline_margin_ms != 2000 {
        cmd.push_str(&format!(
            " --deadline-margin-ms {}",
            args.deadline_margin_ms
        ));
    }
    cmd
}
