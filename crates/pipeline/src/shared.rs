//! The state the stages share: the stop flag, what is in flight and what was done,
//! and the waits built on them (a revoke waiting for its batches, a stall).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// State shared by the stages and whoever runs them.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set to stop: the source stops reading, and what was read is drained and
    /// acknowledged.
    pub stop: AtomicBool,
    /// Records whose batches are acknowledged.
    pub records_done: AtomicU64,
    /// Set once a Kafka source has its partitions.
    pub assigned: AtomicBool,
    counts: Mutex<Counts>,
    changed: Condvar,
    /// Asks the completion stage to flush and acknowledge now (a revoke is waiting).
    flush_now: AtomicBool,
    /// Set when a stage fails, so that nobody waits for it.
    failed: AtomicBool,
}

#[derive(Debug, Default)]
struct Counts {
    /// Batches handed to the workers and not yet acknowledged.
    inflight: u64,
    /// Batches handed to the workers and not yet written to the outputs.
    unwritten: u64,
    /// When a batch was last written or acknowledged, or work began after none was
    /// pending: the start of a stall when work is pending.
    progress: Option<Instant>,
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut Counts)) {
        if let Ok(mut counts) = self.counts.lock() {
            change(&mut counts);
            self.changed.notify_all();
        }
    }

    pub(crate) fn begin(&self) {
        self.update(|c| {
            if c.unwritten == 0 {
                c.progress = Some(Instant::now());
            }
            c.inflight += 1;
            c.unwritten += 1;
        });
    }

    /// A batch handed over went back or was lost.
    pub(crate) fn cancel(&self) {
        self.update(|c| {
            c.inflight = c.inflight.saturating_sub(1);
            c.unwritten = c.unwritten.saturating_sub(1);
        });
    }

    pub(crate) fn written(&self, batches: u64) {
        self.update(|c| {
            c.unwritten = c.unwritten.saturating_sub(batches);
            c.progress = Some(Instant::now());
        });
    }

    /// Waiting on purpose (for room in the alert spool): progress, not a stall.
    pub(crate) fn touch(&self) {
        self.update(|c| c.progress = Some(Instant::now()));
    }

    pub(crate) fn end(&self, batches: u64, records: u64) {
        self.records_done.fetch_add(records, Ordering::Relaxed);
        self.update(|c| {
            c.inflight = c.inflight.saturating_sub(batches);
            c.progress = Some(Instant::now());
        });
    }

    /// How long batches have been waiting to be written out with nothing written or
    /// acknowledged, if that is longer than `limit`: the pipeline is stalled (an output
    /// that blocks, a rule that never ends). Batches written and waiting for a lake
    /// flush are not a stall.
    pub fn stalled(&self, limit: Duration) -> Option<Duration> {
        let counts = self.counts.lock().ok()?;
        if counts.unwritten == 0 {
            return None;
        }
        let waited = counts.progress?.elapsed();
        (waited > limit).then_some(waited)
    }

    /// Waits while more than `limit` batches are handed over and not yet written;
    /// false if the pipeline failed.
    pub(crate) fn wait_written(&self, limit: u64) -> bool {
        let Ok(mut counts) = self.counts.lock() else {
            return false;
        };
        while counts.unwritten > limit {
            if self.failed() {
                return false;
            }
            match self
                .changed
                .wait_timeout(counts, Duration::from_millis(100))
            {
                Ok((guard, _)) => counts = guard,
                Err(_) => return false,
            }
        }
        true
    }

    /// Asks for everything in flight to be acknowledged now, and waits until it is, or
    /// the time is up, or the pipeline has failed.
    pub(crate) fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let Ok(mut counts) = self.counts.lock() else {
            return false;
        };
        while counts.inflight > 0 {
            // Asked again each round: the completion stage may have looked before the
            // last batch reached it.
            self.flush_now.store(true, Ordering::Relaxed);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.failed() {
                return false;
            }
            match self
                .changed
                .wait_timeout(counts, left.min(Duration::from_millis(100)))
            {
                Ok((guard, _)) => counts = guard,
                Err(_) => return false,
            }
        }
        true
    }

    pub(crate) fn take_flush_request(&self) -> bool {
        self.flush_now.swap(false, Ordering::Relaxed)
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    pub(crate) fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        // Taken so that a waiter cannot miss the wake-up between its check and its wait.
        let _counts = self.counts.lock();
        self.changed.notify_all();
    }

    /// A guard for a stage's thread: if the thread unwinds from a panic, the run is
    /// failed, so that nobody waits for that stage for ever.
    pub(crate) fn fail_on_panic(&self) -> FailOnPanic<'_> {
        FailOnPanic(self)
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Batches handed over and not yet acknowledged.
    #[cfg(test)]
    pub(crate) fn inflight(&self) -> u64 {
        self.counts.lock().map_or(0, |c| c.inflight)
    }
}

/// See [`Shared::fail_on_panic`].
pub(crate) struct FailOnPanic<'a>(&'a Shared);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_work_without_progress_is_a_stall() {
        let shared = Shared::default();
        let limit = Duration::from_millis(50);
        assert_eq!(shared.stalled(limit), None, "nothing pending");
        shared.begin();
        assert_eq!(shared.stalled(limit), None, "just begun");
        std::thread::sleep(Duration::from_millis(80));
        assert!(shared.stalled(limit).is_some(), "pending, nothing written");
        shared.begin();
        shared.written(1);
        assert_eq!(shared.stalled(limit), None, "written: progress");
        std::thread::sleep(Duration::from_millis(80));
        assert!(shared.stalled(limit).is_some(), "one still not written");
        shared.written(1);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(
            shared.stalled(limit),
            None,
            "written, waiting for a lake flush"
        );
        shared.end(2, 2);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(shared.stalled(limit), None, "idle is not stalled");
    }
}
