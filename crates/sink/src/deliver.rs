//! Delivery: one thread per sink takes its notices from the spool in order, sends them,
//! and removes each only once the sink confirmed it. A notice the sink refuses for good
//! moves to the refused notices (then the dead-letter output); one that may succeed
//! later is retried with capped exponential backoff and full jitter, or after the
//! sink's `Retry-After`. Each sink has its own thread and queue, so one failing sink
//! never delays another.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::RouteMetrics;
use crate::store::{Spooled, Store};

/// What became of one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The sink confirmed it.
    Delivered,
    /// It may succeed later (a timeout, a refused connection, 408, 429, 5xx).
    Retry {
        reason: String,
        /// When the sink said to come back (`Retry-After`).
        after: Option<Duration>,
    },
    /// It never will (another 4xx): on to the dead-letter output with the response.
    Refused {
        status: Option<u16>,
        response: String,
    },
}

/// A way to deliver notices: HTTP, a Kafka topic, a file, standard output.
pub trait Transport: Send {
    /// How many notices to hand over at once.
    fn batch(&self) -> usize {
        1
    }

    /// Sends `notices` in order: one outcome per notice, up to and including the
    /// first `Retry` (the ones after it are not attempted).
    fn send(&mut self, notices: &[Spooled]) -> Vec<Outcome>;
}

/// Capped exponential backoff with full jitter: attempt `n` waits a random time
/// between 0 and `min(cap, base × 2ⁿ)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cap);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// Wakes delivery threads when notices are spooled.
#[derive(Debug, Default)]
pub struct Bell {
    rung: Mutex<u64>,
    changed: Condvar,
}

impl Bell {
    pub fn ring(&self) {
        if let Ok(mut n) = self.rung.lock() {
            *n += 1;
            self.changed.notify_all();
        }
    }

    /// Waits for a ring after `seen` (returning the latest), or `limit`.
    fn wait(&self, seen: u64, limit: Duration) -> u64 {
        let Ok(guard) = self.rung.lock() else {
            return seen;
        };
        match self
            .changed
            .wait_timeout_while(guard, limit, |n| *n == seen)
        {
            Ok((n, _)) => *n,
            Err(_) => seen,
        }
    }

    fn current(&self) -> u64 {
        self.rung.lock().map(|n| *n).unwrap_or(0)
    }
}

/// What delivery threads share with the routing stage.
#[derive(Debug, Default)]
pub struct Shared {
    pub bell: Bell,
    /// Notices in the spool, all sinks together.
    pub depth: AtomicU64,
    /// Set when the run ends: the threads deliver what they can for a grace period.
    pub stop: AtomicBool,
}

/// One sink's delivery thread.
pub(crate) struct Delivery {
    pub name: String,
    pub transport: Box<dyn Transport>,
    pub store: Store,
    pub shared: Arc<Shared>,
    pub metrics: RouteMetrics,
    pub backoff: Backoff,
    /// How long to keep delivering after the run ends.
    pub grace: Duration,
    /// When delivery gives up, once the run has ended.
    pub stop_at: Option<Instant>,
}

impl Delivery {
    pub fn run(mut self) {
        let mut failures = 0u32;
        let mut seen = self.shared.bell.current();
        loop {
            if self.deadline().is_some_and(|at| Instant::now() >= at) {
                break;
            }
            let notices = match self.store.next(&self.name, self.transport.batch()) {
                Ok(n) => n,
                Err(error) => {
                    tracing::error!(sink = %self.name, %error, "cannot read the spool");
                    self.pause(Duration::from_secs(1));
                    continue;
                }
            };
            if notices.is_empty() {
                if self.deadline().is_some() {
                    break;
                }
                seen = self.shared.bell.wait(seen, Duration::from_millis(500));
                continue;
            }
            let started = Instant::now();
            let outcomes = self.transport.send(&notices);
            let seconds = started.elapsed().as_secs_f64();
            match self.settle(&notices, &outcomes) {
                Ok(Some((reason, after))) => {
                    failures += 1;
                    let wait = match after {
                        Some(after) => after.min(Duration::from_secs(3600)),
                        None => self.backoff.delay(failures),
                    };
                    tracing::warn!(
                        sink = %self.name, %reason, attempt = failures,
                        wait_ms = wait.as_millis() as u64, "alert delivery failed; retrying"
                    );
                    self.pause(wait);
                }
                Ok(None) => {
                    failures = 0;
                    self.metrics.send_seconds(&self.name, seconds);
                }
                Err(error) => {
                    tracing::error!(sink = %self.name, %error, "cannot update the spool");
                    self.pause(Duration::from_secs(1));
                }
            }
        }
    }

    /// Records the outcomes; the reason and wait of a retry, if one is needed.
    fn settle(
        &mut self,
        notices: &[Spooled],
        outcomes: &[Outcome],
    ) -> crate::Result<Option<(String, Option<Duration>)>> {
        let mut delivered = Vec::new();
        let mut retry = None;
        for (spooled, outcome) in notices.iter().zip(outcomes) {
            match outcome {
                Outcome::Delivered => delivered.push(spooled.seq),
                Outcome::Refused { status, response } => {
                    // What was confirmed before it goes first, to keep the order.
                    self.confirm(&mut delivered)?;
                    self.store.reject(spooled.seq, *status, response)?;
                    self.shared.depth.fetch_sub(1, Ordering::Relaxed);
                    self.metrics.refused(&self.name);
                    tracing::error!(
                        sink = %self.name, status = ?status, %response,
                        alert_id = %spooled.notice.alert.alert_id,
                        "the sink refused an alert; it goes to the dead-letter output"
                    );
                }
                Outcome::Retry { reason, after } => {
                    self.store.attempted(spooled.seq, reason)?;
                    self.metrics.retried(&self.name);
                    retry = Some((reason.clone(), *after));
                    break;
                }
            }
        }
        self.confirm(&mut delivered)?;
        if retry.is_none() && outcomes.len() < notices.len() {
            retry = Some(("the transport stopped early".to_owned(), None));
        }
        Ok(retry)
    }

    fn confirm(&mut self, delivered: &mut Vec<i64>) -> crate::Result<()> {
        if delivered.is_empty() {
            return Ok(());
        }
        self.store.delivered(delivered)?;
        self.shared
            .depth
            .fetch_sub(delivered.len() as u64, Ordering::Relaxed);
        self.metrics.delivered(&self.name, delivered.len() as u64);
        delivered.clear();
        Ok(())
    }

    /// When delivery gives up: the grace period after the run ended, if it has.
    fn deadline(&mut self) -> Option<Instant> {
        if self.stop_at.is_none() && self.shared.stop.load(Ordering::Relaxed) {
            self.stop_at = Some(Instant::now() + self.grace);
        }
        self.stop_at
    }

    /// Sleeps `wait`, cut short by the end of the grace period.
    fn pause(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        loop {
            let now = Instant::now();
            let until = self.deadline().map_or(until, |at| at.min(until));
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(100)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_a_capped_exponential() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        };
        for attempt in 1..40 {
            let ceiling = Duration::from_millis(100 * (1u64 << (attempt - 1).min(20)))
                .min(Duration::from_secs(2));
            for _ in 0..50 {
                assert!(backoff.delay(attempt) <= ceiling, "attempt {attempt}");
            }
        }
        // Full jitter: not always the ceiling.
        let waits: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff.delay(10)).collect();
        assert!(waits.len() > 10, "{waits:?}");
    }
}
