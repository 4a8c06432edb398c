//! Prometheus metrics of the pipeline, documented in `docs/operations.md`. The binary
//! serves them (`/metrics`) with the health flag (`/health`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Shared;

pub type Labels = Vec<(&'static str, String)>;

/// Every metric of `demarc run`, documented in `docs/operations.md`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub messages: Counter,
    pub events: Counter,
    /// Events no rule could return, so no row was built for them (without a lake).
    pub events_unmatched: Counter,
    pub rejects: Family<Labels, Counter>,
    pub skipped: Family<Labels, Counter>,
    /// Events normalized in spite of how they were written, by leniency.
    pub lenient: Family<Labels, Counter>,
    pub alerts: Family<Labels, Counter>,
    pub duplicate_alerts: Counter,
    pub dead_letters: Counter,
    pub batch_records: Histogram,
    pub alert_latency: Histogram,
    pub alert_processing: Histogram,
    pub commit_seconds: Histogram,
    pub commit_failures: Counter,
    pub consumer_lag: Family<Labels, Gauge>,
    pub consumer_errors: Counter,
    pub rule_errors: Family<Labels, Counter>,
    pub dead_letter_retries: Counter,
    /// 1 while consumption is paused for back-pressure.
    pub paused: Gauge,
    pub allow_rows: Family<Labels, Gauge>,
    pub allow_reload_failures: Counter,
    /// Events of windowed rules that arrived more than the rule's lateness behind its
    /// newest event (still used), by rule.
    pub window_late: Family<Labels, Counter>,
    /// Events each windowed rule holds.
    pub window_events: Family<Labels, Gauge>,
    /// Kafka messages read again to rebuild the windowed rules' windows.
    pub window_replayed: Counter,
    /// Routing, suppression, snoozes, the spool and delivery.
    pub routing: demarc_sink::metrics::RouteMetrics,
    /// Set while the pipeline runs; cleared when it stops or fails.
    pub healthy: AtomicBool,
    /// What is wrong, when something is: shown by `/health`.
    problem: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            messages: Counter::default(),
            events: Counter::default(),
            events_unmatched: Counter::default(),
            rejects: Family::default(),
            skipped: Family::default(),
            lenient: Family::default(),
            alerts: Family::default(),
            duplicate_alerts: Counter::default(),
            dead_letters: Counter::default(),
            // 1 to 32,768 records.
            batch_records: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            // 1 ms to about 33 s.
            alert_latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            alert_processing: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            commit_failures: Counter::default(),
            consumer_lag: Family::default(),
            consumer_errors: Counter::default(),
            rule_errors: Family::default(),
            window_late: Family::default(),
            window_events: Family::default(),
            window_replayed: Counter::default(),
            dead_letter_retries: Counter::default(),
            paused: Gauge::default(),
            allow_rows: Family::default(),
            allow_reload_failures: Counter::default(),
            routing: demarc_sink::metrics::RouteMetrics::default(),
            healthy: AtomicBool::new(false),
            problem: Mutex::new(None),
            registry: Registry::with_prefix("demarc"),
        };
        metrics.routing.register(&mut metrics.registry);
        metrics.registry.register(
            "consumption_paused",
            "1 while the Kafka partitions are paused because every worker is busy and the \
             open batch is full (a slow output or a full alert spool)",
            metrics.paused.clone(),
        );
        metrics.registry.register(
            "messages",
            "Kafka messages consumed",
            metrics.messages.clone(),
        );
        metrics.registry.register(
            "events",
            "Audit events found in the messages (events normalized plus events rejected)",
            metrics.events.clone(),
        );
        metrics.registry.register(
            "events_unmatched",
            "Events normalized that no rule could return, so no row was built (no lake)",
            metrics.events_unmatched.clone(),
        );
        metrics.registry.register(
            "rejects",
            "Input rejected and sent to the dead-letter topic, by reason",
            metrics.rejects.clone(),
        );
        metrics.registry.register(
            "skipped",
            "Input recognised and deliberately not normalized, by reason",
            metrics.skipped.clone(),
        );
        metrics.registry.register(
            "lenient",
            "Events normalized in spite of how they were written (a time without a zone, \
             an event without an id…), by reason",
            metrics.lenient.clone(),
        );
        metrics
            .registry
            .register("alerts", "Alerts emitted, by rule", metrics.alerts.clone());
        metrics.registry.register(
            "duplicate_alerts",
            "Alerts not emitted again because their id was emitted recently",
            metrics.duplicate_alerts.clone(),
        );
        metrics.registry.register(
            "dead_letters",
            "Messages written to the dead-letter topic",
            metrics.dead_letters.clone(),
        );
        metrics.registry.register(
            "batch_records",
            "Kafka messages per micro-batch",
            metrics.batch_records.clone(),
        );
        metrics.registry.register(
            "alert_latency_seconds",
            "From the Kafka timestamp of the message to the alert written to every sink",
            metrics.alert_latency.clone(),
        );
        metrics.registry.register(
            "alert_processing_seconds",
            "From the message received from the broker to the alert written to every sink: \
             demarc's own share of the alert latency",
            metrics.alert_processing.clone(),
        );
        metrics.registry.register(
            "commit_seconds",
            "Time to commit the offsets of durable batches",
            metrics.commit_seconds.clone(),
        );
        metrics.registry.register(
            "commit_failures",
            "Offset commits that failed (the messages will be read again)",
            metrics.commit_failures.clone(),
        );
        metrics.registry.register(
            "consumer_lag",
            "Messages behind the end of each partition, as librdkafka last reported",
            metrics.consumer_lag.clone(),
        );
        metrics.registry.register(
            "consumer_errors",
            "Errors the Kafka consumer reported (connection, authorization…)",
            metrics.consumer_errors.clone(),
        );
        metrics.registry.register(
            "rule_errors",
            "Batches on which a rule failed to run, by rule (its alerts for the batch are \
             missing; the batch is on the dead-letter output)",
            metrics.rule_errors.clone(),
        );
        metrics.registry.register(
            "window_late_events",
            "Events of a windowed rule that arrived more than its lateness behind the newest \
             one, by rule (still used: a sequence completed late still alerts)",
            metrics.window_late.clone(),
        );
        metrics.registry.register(
            "window_events",
            "Events each windowed rule holds (bounded by its window, lateness and tests)",
            metrics.window_events.clone(),
        );
        metrics.registry.register(
            "window_replayed_messages",
            "Kafka messages read again, after a restart without a lake or when partitions \
             were assigned, to rebuild the windowed rules' windows (no alert comes of them)",
            metrics.window_replayed.clone(),
        );
        metrics.registry.register(
            "dead_letter_retries",
            "Dead letters sent again after the dead-letter topic refused them",
            metrics.dead_letter_retries.clone(),
        );
        metrics.registry.register(
            "allow_rows",
            "Rows of each allow table, by state: `active` rows suppress alerts, `expired` \
             ones no longer do and should be renewed or deleted",
            metrics.allow_rows.clone(),
        );
        metrics.registry.register(
            "allow_reload_failures",
            "Changed allow-table files that could not be used (their previous rows still \
             apply; the log says which file and line)",
            metrics.allow_reload_failures.clone(),
        );
        metrics
    }

    /// Says what is wrong (`None`: nothing any more); `/health` shows it.
    pub fn set_problem(&self, problem: Option<String>) {
        if let Ok(mut p) = self.problem.lock() {
            *p = problem;
        }
    }

    /// What is wrong, if anything.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().ok().and_then(|p| p.clone())
    }

    /// `Ok` while the pipeline runs and moves; otherwise why not: the problem set, a
    /// stall longer than `stall_limit` (see [`Shared::stalled`]), or not running.
    pub fn health(&self, shared: &Shared, stall_limit: Duration) -> Result<(), String> {
        if let Some(problem) = self.problem() {
            return Err(problem);
        }
        if let Some(waited) = shared.stalled(stall_limit) {
            return Err(format!(
                "stalled: work pending and nothing completed for {}s (limit {}s)",
                waited.as_secs(),
                stall_limit.as_secs()
            ));
        }
        if self.healthy.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("not running".to_owned())
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// A label set of one label.
pub fn label(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}
