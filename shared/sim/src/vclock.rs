//! Virtual time: a clock that moves only when every simulated process is waiting, and the
//! executor that drives those processes.
//!
//! Why not the domain's `FakeClock`: its `sleep` moves the one shared clock forward at once, so
//! ten records of a batch backing off 2 s each would move time by 20 s, and nothing else could
//! happen "during" a platform call. Here a sleep registers a timer; the executor polls every
//! runnable process, and only when none can progress does it jump to the earliest timer. Ten
//! concurrent 2 s backoffs take 2 s, and an edit, a pause or a second Lambda invocation can land
//! between a claim and its outcome, exactly at the await points where that can happen for real.
//!
//! Determinism: one thread, timers ordered by (time, registration order), and the executor
//! polls in wake order, which only depends on the run itself. Nothing reads the system clock.

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use herald_domain::clock::Clock;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use time::OffsetDateTime;

/// When every seed's simulated day begins.
pub const START: time::OffsetDateTime = time::macros::datetime!(2026-03-02 08:00 UTC);

#[derive(Debug)]
pub struct SimClock {
    state: Mutex<ClockState>,
}

#[derive(Debug)]
struct ClockState {
    now: OffsetDateTime,
    /// `now` in nanoseconds since the epoch: timers compare plain integers (an
    /// `OffsetDateTime` comparison normalises offsets first, which a busy run feels).
    now_ns: i128,
    next_seq: u64,
    timers: BTreeMap<(i128, u64), (OffsetDateTime, Waker)>,
}

impl SimClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            state: Mutex::new(ClockState {
                now: start,
                now_ns: start.unix_timestamp_nanos(),
                next_seq: 0,
                timers: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn time(&self) -> OffsetDateTime {
        self.lock().now
    }

    pub fn sleep_until(&self, at: OffsetDateTime) -> Sleep<'_> {
        Sleep {
            clock: self,
            at,
            at_ns: at.unix_timestamp_nanos(),
            key: None,
        }
    }

    /// Whole milliseconds (rounded up), like the store's timestamps.
    pub fn sleep_for(&self, d: std::time::Duration) -> Sleep<'_> {
        let ms = d.as_nanos().div_ceil(1_000_000).min(i64::MAX as u128) as i64;
        self.sleep_until(self.time() + time::Duration::milliseconds(ms))
    }

    /// Moves to the earliest timer and wakes its sleeper; `false` when no timer is left.
    pub fn fire_next(&self) -> bool {
        let waker = {
            let mut s = self.lock();
            let Some(((at_ns, _), (at, waker))) = s.timers.pop_first() else {
                return false;
            };
            if at_ns > s.now_ns {
                s.now = at;
                s.now_ns = at_ns;
            }
            waker
        };
        waker.wake();
        true
    }
}

#[async_trait::async_trait]
impl Clock for SimClock {
    fn now(&self) -> OffsetDateTime {
        self.time()
    }

    async fn sleep(&self, duration: std::time::Duration) {
        self.sleep_for(duration).await;
    }
}

/// Completes once the virtual clock reaches `at`. Dropping it cancels its timer.
#[derive(Debug)]
pub struct Sleep<'a> {
    clock: &'a SimClock,
    at: OffsetDateTime,
    at_ns: i128,
    key: Option<(i128, u64)>,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut s = this.clock.lock();
        if s.now_ns >= this.at_ns {
            if let Some(k) = this.key.take() {
                s.timers.remove(&k);
            }
            return Poll::Ready(());
        }
        match this.key {
            Some(k) => match s.timers.get_mut(&k) {
                Some((_, w)) if w.will_wake(cx.waker()) => {}
                Some((_, w)) => *w = cx.waker().clone(),
                None => {
                    s.timers.insert(k, (this.at, cx.waker().clone()));
                }
            },
            None => {
                let k = (this.at_ns, s.next_seq);
                s.next_seq += 1;
                s.timers.insert(k, (this.at, cx.waker().clone()));
                this.key = Some(k);
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.clock.lock().timers.remove(&k);
        }
    }
}

/// Not `Send`: a seed runs on one thread (and the domain's batch future is not provably `Send`).
pub type Task = Pin<Box<dyn Future<Output = ()> + 'static>>;

/// Starts processes from inside the simulation (an API call at its time, an invocation).
#[derive(Clone, Default)]
pub struct Spawner(Arc<Mutex<Vec<Task>>>);

herald_domain::debug_fields!(Spawner);

impl Spawner {
    pub fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        self.lock().push(Box::pin(task));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Task>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self) -> Vec<Task> {
        std::mem::take(&mut *self.lock())
    }

    /// Drops whatever was spawned but never started (tasks hold the world: no cycle survives).
    pub fn clear(&self) {
        drop(self.take());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// `stop` was raised.
    Stopped,
    /// Every process finished.
    Finished,
    /// Processes remain but none can ever wake: a bug in the simulation itself.
    Stuck,
}

/// Set when any process is woken, so "nothing left to poll" is told apart from "yielded".
#[derive(Debug, Default)]
struct WokenFlag(AtomicBool);

impl Wake for WokenFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs the spawned processes until `stop`, advancing the clock only when all are waiting.
pub fn run(clock: &SimClock, spawner: &Spawner, stop: &AtomicBool) -> RunEnd {
    let mut tasks: FuturesUnordered<Task> = FuturesUnordered::new();
    let flag = Arc::new(WokenFlag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let end = loop {
        tasks.extend(spawner.take());
        flag.0.store(false, Ordering::Relaxed);
        match tasks.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(())) => continue,
            Poll::Ready(None) if spawner.lock().is_empty() => break RunEnd::Finished,
            Poll::Ready(None) | Poll::Pending => {}
        }
        if stop.load(Ordering::Relaxed) {
            break RunEnd::Stopped;
        }
        // FuturesUnordered yields (and wakes us) after polling many tasks in one go; only a
        // quiet round with nothing spawned means every process waits for time to pass.
        if flag.0.load(Ordering::Relaxed) || !spawner.lock().is_empty() {
            continue;
        }
        if !clock.fire_next() {
            break RunEnd::Stuck;
        }
    };
    drop(tasks);
    spawner.clear();
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn concurrent_sleeps_overlap_and_order_by_time() {
        let clock = Arc::new(SimClock::new(datetime!(2026-01-01 0:00 UTC)));
        let spawner = Spawner::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        for (name, ms) in [("b", 2000u64), ("a", 1000), ("c", 2000)] {
            let (clock, log) = (clock.clone(), log.clone());
            spawner.spawn(async move {
                clock.sleep_for(std::time::Duration::from_millis(ms)).await;
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((name, clock.time()));
            });
        }
        assert_eq!(
            run(&clock, &spawner, &AtomicBool::new(false)),
            RunEnd::Finished
        );
        let log = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let t0 = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(
            log,
            vec![
                ("a", t0 + time::Duration::seconds(1)),
                ("b", t0 + time::Duration::seconds(2)),
                ("c", t0 + time::Duration::seconds(2)),
            ]
        );
    }
}
