//! The routing stage: each alert is matched against the routes, checked against the
//! snoozes and its suppression window, and committed to the spool for each of its
//! sinks, all in one durable transaction per run of batches, before the source position
//! is acknowledged. Delivery threads take it from there.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use demarc_model::Alert;

use crate::deliver::{Backoff, Delivery, Shared, Transport};
use crate::metrics::RouteMetrics;
use crate::notice::{Kind, Notice, SnoozeMark};
use crate::route::{Routes, glob};
use crate::store::{Rejected, Snooze, Store, Tx, Window, encode, now_ms};
use crate::{Error, Result};

/// One configured sink.
pub struct SinkSpec {
    pub name: String,
    pub transport: Box<dyn Transport>,
    /// A file sink: snoozed alerts still reach it, marked.
    pub keeps_snoozed: bool,
    pub backoff: Backoff,
}

impl std::fmt::Debug for SinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkSpec")
            .field("name", &self.name)
            .field("keeps_snoozed", &self.keeps_snoozed)
            .finish_non_exhaustive()
    }
}

/// Suppression windows: per rule (glob, first match wins), else the default. A zero
/// window delivers every alert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suppression {
    pub default: Duration,
    pub rules: Vec<(String, Duration)>,
}

impl Suppression {
    pub fn window(&self, rule_id: &str) -> Duration {
        self.rules
            .iter()
            .find(|(pattern, _)| glob(pattern, rule_id))
            .map_or(self.default, |(_, window)| *window)
    }
}

/// Everything the routing stage needs.
#[derive(Debug)]
pub struct RoutingConfig {
    pub store: PathBuf,
    /// The most notices the spool holds before the pipeline waits for room.
    pub capacity: u64,
    pub routes: Routes,
    pub suppression: Suppression,
    pub sinks: Vec<SinkSpec>,
    /// How long delivery goes on after the run ends, before what is left waits in the
    /// spool for the next start.
    pub grace: Duration,
}

/// The routing stage of a run, and its delivery threads.
#[derive(Debug)]
pub struct Routing {
    store: Store,
    routes: Routes,
    names: Vec<String>,
    keeps_snoozed: Vec<bool>,
    suppression: Suppression,
    capacity: u64,
    shared: Arc<Shared>,
    metrics: RouteMetrics,
    threads: Vec<JoinHandle<()>>,
    snoozes: Vec<Snooze>,
    snoozes_read: Option<Instant>,
    last_tick: Option<Instant>,
}

/// How often snoozes are read again and windows closed.
const TICK: Duration = Duration::from_secs(1);

impl Routing {
    /// Opens the store and starts a delivery thread per sink. Notices spooled for a
    /// sink no longer configured go to the refused notices (the dead-letter output).
    pub fn start(config: RoutingConfig, metrics: RouteMetrics) -> Result<Self> {
        let mut store = Store::open(&config.store)?;
        let names: Vec<String> = config.sinks.iter().map(|s| s.name.clone()).collect();
        for (sink, n) in store.reject_unknown_sinks(&names)? {
            tracing::warn!(
                %sink, notices = n,
                "the spool held alerts for a sink no longer configured; they go to the \
                 dead-letter output"
            );
        }
        let depth: u64 = store.depths()?.iter().map(|(_, n, _)| n).sum();
        let shared = Arc::new(Shared::default());
        shared.depth.store(depth, Ordering::Relaxed);
        let keeps_snoozed = config.sinks.iter().map(|s| s.keeps_snoozed).collect();
        let mut threads = Vec::new();
        for spec in config.sinks {
            let delivery = Delivery {
                store: Store::open(&config.store)?,
                name: spec.name.clone(),
                transport: spec.transport,
                shared: Arc::clone(&shared),
                metrics: metrics.clone(),
                backoff: spec.backoff,
                grace: config.grace,
                stop_at: None,
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("demarc-sink-{}", spec.name))
                    .spawn(move || delivery.run())
                    .map_err(Error::Thread)?,
            );
        }
        let mut routing = Self {
            store,
            routes: config.routes,
            names,
            keeps_snoozed,
            suppression: config.suppression,
            capacity: config.capacity.max(1),
            shared,
            metrics,
            threads,
            snoozes: Vec::new(),
            snoozes_read: None,
            last_tick: None,
        };
        routing.tick()?;
        Ok(routing)
    }

    /// Notices in the spool, all sinks together.
    pub fn depth(&self) -> u64 {
        self.shared.depth.load(Ordering::Relaxed)
    }

    /// Routes `alerts` and commits them to the spool. While the spool has no room,
    /// waits, calling `waiting` every 100 ms; `waiting` returning false gives up with
    /// [`Error::SpoolFull`] (nothing of these alerts is spooled).
    pub fn route(&mut self, alerts: &[&Alert], waiting: &mut dyn FnMut() -> bool) -> Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        // At most one notice per alert and sink.
        let most = alerts.len() as u64 * self.names.len() as u64;
        let mut counted = false;
        while self.depth() > 0 && self.depth() + most > self.capacity {
            if !counted {
                self.metrics.spool_full.inc();
                counted = true;
                tracing::warn!(
                    depth = self.depth(),
                    capacity = self.capacity,
                    "the alert spool is full: consumption waits for the sinks"
                );
            }
            if !waiting() {
                return Err(Error::SpoolFull {
                    depth: self.depth(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.refresh_snoozes()?;
        let now = now_ms();
        let mut added: Vec<usize> = Vec::new();
        let tx = self.store.transaction()?;
        for alert in alerts {
            let sinks = self.routes.sinks_for(alert);
            if sinks.is_empty() {
                self.metrics.unrouted.inc();
                continue;
            }
            if let Some(snooze) = self.snoozes.iter().find(|s| snoozes(s, alert, now)) {
                self.metrics.snoozed(&alert.rule_id);
                let mut notice = Notice::new((*alert).clone());
                notice.snoozed = Some(SnoozeMark {
                    id: snooze.id,
                    reason: snooze.reason.clone(),
                    by: snooze.by.clone(),
                    until: rfc3339(snooze.until_ms),
                });
                let body = encode(&notice);
                for &s in sinks.iter().filter(|&&s| self.keeps_snoozed[s]) {
                    tx.enqueue(&self.names[s], &body, now)?;
                    added.push(s);
                }
                continue;
            }
            let notice = Notice::new((*alert).clone());
            let window = self.suppression.window(&alert.rule_id);
            if !window.is_zero() {
                if let Some(open) = tx.window(&alert.dedup_key)? {
                    if open.closes_ms > now {
                        tx.count_repeat(&alert.dedup_key, &alert.event_time)?;
                        self.metrics.suppressed(&alert.rule_id);
                        continue;
                    }
                    // Closed in time but not yet by the tick: its follow-up goes first.
                    close(&tx, &open, &self.names, &mut added, now, &self.metrics)?;
                }
                tx.open_window(
                    &Window {
                        key: alert.dedup_key.clone(),
                        rule: alert.rule_id.clone(),
                        notice: notice.clone(),
                        sinks: sinks.iter().map(|&s| self.names[s].clone()).collect(),
                        closes_ms: now + window.as_millis() as i64,
                        count: 1,
                        last_seen: alert.event_time.clone(),
                    },
                    now,
                )?;
            }
            let body = encode(&notice);
            for &s in &sinks {
                tx.enqueue(&self.names[s], &body, now)?;
                added.push(s);
            }
        }
        tx.commit()?;
        self.spooled(&added);
        self.metrics
            .routing_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    fn spooled(&self, added: &[usize]) {
        if added.is_empty() {
            return;
        }
        for &s in added {
            self.metrics.spooled(&self.names[s]);
        }
        self.shared
            .depth
            .fetch_add(added.len() as u64, Ordering::Relaxed);
        self.shared.bell.ring();
    }

    fn refresh_snoozes(&mut self) -> Result<()> {
        if self.snoozes_read.is_some_and(|at| at.elapsed() < TICK) {
            return Ok(());
        }
        self.snoozes = self.store.snoozes(now_ms(), false)?;
        self.snoozes_read = Some(Instant::now());
        Ok(())
    }

    /// Once a second: snoozes read again, windows that closed followed up, spool
    /// gauges updated. Call it often; it does nothing between seconds, and says whether
    /// it ran.
    pub fn tick(&mut self) -> Result<bool> {
        if self.last_tick.is_some_and(|at| at.elapsed() < TICK) {
            return Ok(false);
        }
        self.last_tick = Some(Instant::now());
        self.refresh_snoozes()?;
        let now = now_ms();
        let due = self.store.due_windows(now)?;
        if !due.is_empty() {
            let mut added = Vec::new();
            let tx = self.store.transaction()?;
            for window in &due {
                close(&tx, window, &self.names, &mut added, now, &self.metrics)?;
            }
            tx.commit()?;
            self.spooled(&added);
        }
        let depths = self.store.depths()?;
        for name in &self.names {
            let (depth, oldest) = depths
                .iter()
                .find(|(sink, _, _)| sink == name)
                .map_or((0, 0), |(_, n, queued)| (*n, (now - queued).max(0) / 1000));
            self.metrics.spool(name, depth, oldest);
        }
        Ok(true)
    }

    /// Notices the sinks refused, for the dead-letter output.
    pub fn rejected(&self, limit: usize) -> Result<Vec<Rejected>> {
        self.store.rejected(limit)
    }

    /// The refused notices are on the dead-letter output.
    pub fn forget_rejected(&mut self, seqs: &[i64]) -> Result<()> {
        self.store.forget_rejected(seqs)
    }

    /// The run is over: delivery goes on for the grace period, then what is left waits
    /// in the spool for the next start.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.bell.ring();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("an alert delivery thread panicked");
            }
        }
    }
}

impl Drop for Routing {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Closes `window`: with repeats, a follow-up with the count goes to the sinks the
/// first alert went to (those still configured).
fn close(
    tx: &Tx<'_>,
    window: &Window,
    names: &[String],
    added: &mut Vec<usize>,
    now: i64,
    metrics: &RouteMetrics,
) -> Result<()> {
    tx.close_window(&window.key)?;
    if window.count < 2 {
        return Ok(());
    }
    let mut notice = window.notice.clone();
    notice.notice = Kind::Update;
    notice.count = Some(window.count);
    notice.last_seen = Some(window.last_seen.clone());
    let body = encode(&notice);
    for sink in &window.sinks {
        if let Some(s) = names.iter().position(|n| n == sink) {
            tx.enqueue(sink, &body, now)?;
            added.push(s);
        }
    }
    metrics.follow_ups.inc();
    Ok(())
}

/// Whether `snooze` applies to `alert` at `now`.
fn snoozes(snooze: &Snooze, alert: &Alert, now: i64) -> bool {
    snooze.until_ms > now
        && glob(&snooze.rule, &alert.rule_id)
        && snooze
            .keys
            .iter()
            .all(|(k, v)| alert_value(alert, k) == Some(v.as_str()))
}

/// The value of `key` for `alert`: one of its rule's `dedup` columns, else one of the
/// alert's own fields.
fn alert_value<'a>(alert: &'a Alert, key: &str) -> Option<&'a str> {
    if let Some(value) = alert.dedup.get(key) {
        return value.as_deref();
    }
    match key {
        "account_id" => alert.account_id.as_deref(),
        "region" => alert.region.as_deref(),
        "actor" | "actor_principal" => alert.actor.as_deref(),
        "resource" => alert.resource.as_deref(),
        "provider" => Some(&alert.provider),
        _ => None,
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
