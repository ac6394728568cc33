//! The simulation's own record of what happened, kept outside the system under test: every
//! committed publish claim and pause change in commit order (for the pause invariant), the
//! names that make a trace readable (`p17/t0.x1` instead of ids), and, when tracing, one line
//! per event.
//!
//! It never decides anything: the run must behave the same with tracing on or off, which is
//! how a failing seed is replayed with its trace.

use herald_domain::ids::{AccountId, PostId, TenantId};
use herald_domain::model::Platform;
use herald_domain::ports::VariantRef;
use herald_domain::publishing::gates::Crisis;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct ClaimEntry {
    pub seq: u64,
    pub at: OffsetDateTime,
    pub variant: VariantRef,
    pub platform: Platform,
}

#[derive(Debug, Clone)]
pub enum PauseChange {
    Put(Crisis),
    Delete(TenantId),
}

#[derive(Debug, Clone)]
pub struct PauseEntry {
    pub seq: u64,
    pub at: OffsetDateTime,
    pub change: PauseChange,
}

#[derive(Debug, Clone)]
pub struct TraceLine {
    pub at: OffsetDateTime,
    /// The post's number, if the event concerns one.
    pub post: Option<usize>,
    /// The account's label, if the event concerns one variant.
    pub account: Option<String>,
    pub text: String,
}

#[derive(Debug, Default)]
struct Names {
    posts: BTreeMap<PostId, usize>,
    accounts: BTreeMap<AccountId, String>,
}

#[derive(Debug, Default)]
pub struct Ledger {
    seq: AtomicU64,
    claims: Mutex<Vec<ClaimEntry>>,
    pauses: Mutex<Vec<PauseEntry>>,
    names: Mutex<Names>,
    trace: Option<Mutex<Vec<TraceLine>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ledger {
    pub fn new(tracing: bool) -> Self {
        Self {
            trace: tracing.then(|| Mutex::new(Vec::new())),
            ..Self::default()
        }
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    pub fn claim_committed(&self, at: OffsetDateTime, variant: &VariantRef, platform: Platform) {
        let seq = self.next_seq();
        lock(&self.claims).push(ClaimEntry {
            seq,
            at,
            variant: variant.clone(),
            platform,
        });
    }

    pub fn pause_committed(&self, at: OffsetDateTime, change: PauseChange) {
        let seq = self.next_seq();
        lock(&self.pauses).push(PauseEntry { seq, at, change });
    }

    pub fn claims(&self) -> Vec<ClaimEntry> {
        lock(&self.claims).clone()
    }

    pub fn pauses(&self) -> Vec<PauseEntry> {
        lock(&self.pauses).clone()
    }

    pub fn name_post(&self, id: &PostId, seq: usize) {
        lock(&self.names).posts.insert(id.clone(), seq);
    }

    pub fn name_account(&self, id: &AccountId, label: String) {
        lock(&self.names).accounts.insert(id.clone(), label);
    }

    pub fn post_seq(&self, id: &PostId) -> Option<usize> {
        lock(&self.names).posts.get(id).copied()
    }

    pub fn account_label(&self, id: &AccountId) -> String {
        lock(&self.names)
            .accounts
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    pub fn variant_label(&self, v: &VariantRef) -> String {
        let post = self
            .post_seq(&v.post_id)
            .map_or_else(|| v.post_id.to_string(), |s| format!("p{s}"));
        format!("{post}/{}", self.account_label(&v.account_id))
    }

    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// One trace line about a variant; `text` is only built when tracing.
    pub fn variant_event(&self, at: OffsetDateTime, v: &VariantRef, text: impl FnOnce() -> String) {
        if let Some(trace) = &self.trace {
            let line = TraceLine {
                at,
                post: self.post_seq(&v.post_id),
                account: Some(self.account_label(&v.account_id)),
                text: text(),
            };
            lock(trace).push(line);
        }
    }

    /// One trace line about the variant a queue message is for.
    pub fn message_event(
        &self,
        at: OffsetDateTime,
        m: &herald_domain::ports::PublishMessage,
        text: impl FnOnce() -> String,
    ) {
        if let Some(trace) = &self.trace {
            let line = TraceLine {
                at,
                post: self.post_seq(&m.post_id),
                account: Some(self.account_label(&m.account_id)),
                text: text(),
            };
            lock(trace).push(line);
        }
    }

    pub fn post_event(&self, at: OffsetDateTime, post: usize, text: impl FnOnce() -> String) {
        if let Some(trace) = &self.trace {
            let line = TraceLine {
                at,
                post: Some(post),
                account: None,
                text: text(),
            };
            lock(trace).push(line);
        }
    }

    /// A platform call: the post's number is read from the text ("p17.r1 ..."), and the
    /// simulation names accounts' external ids after their labels.
    pub fn platform_event(
        &self,
        at: OffsetDateTime,
        text_sent: &str,
        external_id: &str,
        text: impl FnOnce() -> String,
    ) {
        if let Some(trace) = &self.trace {
            let line = TraceLine {
                at,
                post: post_seq_in_text(text_sent),
                account: Some(external_id.to_owned()),
                text: text(),
            };
            lock(trace).push(line);
        }
    }

    pub fn world_event(&self, at: OffsetDateTime, text: impl FnOnce() -> String) {
        if let Some(trace) = &self.trace {
            let line = TraceLine {
                at,
                post: None,
                account: None,
                text: text(),
            };
            lock(trace).push(line);
        }
    }

    pub fn trace_lines(&self) -> Vec<TraceLine> {
        self.trace
            .as_ref()
            .map(|t| lock(t).clone())
            .unwrap_or_default()
    }
}

macro_rules! stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Counters for `--verbose`: how much of each thing happened in a run.
        #[derive(Debug, Default)]
        pub struct Stats {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        impl Stats {
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

stats! {
    dispatch_runs,
    reconciler_runs,
    invocations,
    crashes,
    timeouts,
    claims,
    store_refused,
    store_lost_responses,
    platform_calls,
    /// Video chunks X took, and uploads that went on in another invocation.
    video_chunks,
    upload_continuations,
    platform_created,
    platform_errors,
    lookups,
    done,
    retries,
    deferrals,
    store_failures,
    dead_letter_visibility,
    moved_to_dlq,
    redriven,
    duplicate_deliveries,
    duplicate_sends,
    resurrections,
    queue_failures,
    edits,
    edits_refused,
    cancels,
    cancels_refused,
    reviews,
    pauses,
    reconnects,
}

impl Stats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The post number every simulated text starts with ("p17.r2 ..." is post 17).
pub fn post_seq_in_text(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('p')?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// Which step of its variant a text is: `n` for a follow-up ending `~fu<n>`, 0 for the post.
pub fn follow_up_in_text(text: &str) -> usize {
    text.rsplit_once(" ~fu")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// `10:59:12.738` (and `+1d` on later days): compact times for traces and findings.
pub fn clock_time(at: OffsetDateTime) -> String {
    let t = at.time();
    let days = (at.date() - crate::vclock::START.date()).whole_days();
    let day = if days > 0 {
        format!("+{days}d ")
    } else {
        String::new()
    };
    format!(
        "{day}{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}
