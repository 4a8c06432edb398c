//! The completion stage: batches back in order, made durable, then acknowledged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use demarc_lake::Lake;
use demarc_model::Alert;
use demarc_model::error_chain;
use demarc_normalize::Stats;
use demarc_sink::AlertSink;
use demarc_sink::routing::Routing;

use crate::Shared;
use crate::dead_letter::{DeadLetter, DeadLetters, Undelivered};
use crate::engine::Position;
use crate::metrics::{Metrics, label};
use crate::{Error, Result};

/// A source's side of the acknowledgement rule.
pub trait Acknowledge<P>: Send {
    /// The batch at `position` (its own, not merged with earlier ones) has been written
    /// to every output (the lake may still buffer it): progress, not yet durability.
    /// `summary` is the run so far.
    fn completed(&mut self, _position: &P, _summary: &Summary) {}

    /// Everything up to `position` is durable. With `wait` (a revoke or the end is
    /// waiting), returns once the acknowledgement itself is; without, may return as
    /// soon as it is sent. An error is counted and logged, and the position stays
    /// unacknowledged: its input comes again after a restart, with the same alert ids.
    fn acknowledge(&mut self, position: &P, wait: bool) -> Result<()>;

    /// The lake has just been flushed: this run's files up to number `parts` (named
    /// `part-<run>-<n>`) are durable. Called before [`Acknowledge::acknowledge`].
    fn lake_durable(&mut self, _run: &str, _parts: u64) {}

    /// The run is over: make sure what was acknowledged in the background arrived.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The lake of a run, and how often it is flushed (and the positions acknowledged):
/// `None` flushes only at the end of the run.
#[derive(Debug)]
pub struct LakeOutput {
    pub lake: Lake,
    pub flush_every: Option<Duration>,
}

/// Where a run's results go.
pub struct Outputs<P> {
    pub alerts: AlertSink,
    /// Routes, suppression, snoozes and the spool of the alert sinks, when configured.
    pub routing: Option<Routing>,
    pub lake: Option<LakeOutput>,
    pub dead_letters: Box<dyn DeadLetters>,
    pub acknowledge: Box<dyn Acknowledge<P>>,
}

impl<P> std::fmt::Debug for Outputs<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("alerts", &self.alerts)
            .field("routing", &self.routing)
            .field("lake", &self.lake)
            .finish_non_exhaustive()
    }
}

/// What a run did, for its closing summary.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Records (messages, files, runs of lines) taken in.
    pub records: u64,
    pub stats: Stats,
    pub alerts_by_rule: BTreeMap<String, u64>,
    /// Alerts not written again: their id was written recently (the same event read
    /// twice).
    pub duplicate_alerts: u64,
    pub dead_letters: u64,
    /// Batches each rule failed on, by rule id: its alerts for their events are
    /// missing (each failure is a dead letter naming the inputs).
    pub rule_failures: BTreeMap<String, u64>,
    /// Acknowledgements that succeeded.
    pub commits: u64,
    /// Inputs that could not be read at all, with the reason, in input order.
    pub unreadable: Vec<(String, String)>,
    /// Lake files written.
    pub lake_files: u64,
    /// Produce-to-alert latencies in milliseconds, when asked for.
    pub latencies_ms: Vec<i64>,
    /// Receive-to-alert times in milliseconds (demarc's own share), when asked for.
    pub processing_ms: Vec<i64>,
}

impl Summary {
    pub fn alerts(&self) -> u64 {
        self.alerts_by_rule.values().sum()
    }
}

/// A batch after the workers: what must be made durable.
#[derive(Debug)]
pub(crate) struct Done<P> {
    pub seq: u64,
    pub records: u64,
    pub position: P,
    pub alerts: Vec<Fired>,
    pub dead: Vec<DeadLetter>,
    pub unreadable: Vec<(String, String)>,
    /// The normalized events by lake partition, when kept for the lake.
    pub parts: Vec<demarc_lake::Part>,
    /// The normalized events, when windowed rules are loaded: they run here, in order.
    pub window_rows: Vec<arrow::array::RecordBatch>,
    pub stats: Stats,
    /// Only fills the windows (see [`crate::engine::Batch::warm`]).
    pub warm: bool,
    /// Where its records came from, when windowed rules are loaded: the dead letter of
    /// a windowed rule that fails on the batch names them.
    pub origins: Vec<demarc_model::Origin>,
}

/// An alert, and when the earliest of the messages it came from was produced and
/// received.
#[derive(Debug)]
pub(crate) struct Fired {
    pub alert: Alert,
    pub produced_ms: Option<i64>,
    pub received: Option<Instant>,
}

/// Written, not yet acknowledged.
#[derive(Debug, Default)]
struct Unacknowledged<P> {
    position: P,
    batches: u64,
    records: u64,
}

pub(crate) struct Completion<P> {
    /// The windowed rules' state, and a runtime to run them on this thread.
    windows: Option<(demarc_detect::Windows, tokio::runtime::Runtime)>,
    alerts: Option<AlertSink>,
    routing: Option<Routing>,
    lake: Option<(LakeOutput, Instant)>,
    dead_letters: Box<dyn DeadLetters>,
    acknowledge: Box<dyn Acknowledge<P>>,
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
    summary: Summary,
    keep_latencies: bool,
    pending: Unacknowledged<P>,
}

impl<P: Position> Completion<P> {
    pub fn new(
        outputs: Outputs<P>,
        metrics: Arc<Metrics>,
        shared: Arc<Shared>,
        keep_latencies: bool,
        windows: Option<(demarc_detect::Windows, tokio::runtime::Runtime)>,
    ) -> Self {
        Self {
            windows,
            alerts: Some(outputs.alerts),
            routing: outputs.routing,
            lake: outputs.lake.map(|l| (l, Instant::now())),
            dead_letters: outputs.dead_letters,
            acknowledge: outputs.acknowledge,
            metrics,
            shared,
            summary: Summary::default(),
            keep_latencies,
            pending: Unacknowledged::default(),
        }
    }

    pub fn run(mut self, done: &Receiver<Result<Done<P>>>) -> Result<Summary> {
        let result = self.run_inner(done).and_then(|()| self.close());
        if result.is_err() {
            self.shared.fail();
            // Let the workers finish: nothing more is acknowledged.
            for _ in done.iter() {}
        }
        result.map(|()| self.summary)
    }

    fn run_inner(&mut self, done: &Receiver<Result<Done<P>>>) -> Result<()> {
        let mut waiting: BTreeMap<u64, Done<P>> = BTreeMap::new();
        let mut next = 0u64;
        let mut open = true;
        while open || !waiting.is_empty() {
            match done.recv_timeout(Duration::from_millis(50)) {
                Ok(d) => {
                    let d = d?;
                    waiting.insert(d.seq, d);
                    // Take whatever else is ready, to acknowledge once for all of it.
                    for d in done.try_iter() {
                        let d = d?;
                        waiting.insert(d.seq, d);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    if waiting.keys().next().is_some_and(|&k| k != next) {
                        return Err(Error::Stage(format!(
                            "batch {next} was lost between the workers and the completion stage"
                        )));
                    }
                }
            }
            let mut ready = Vec::new();
            while let Some(d) = waiting.remove(&next) {
                ready.push(d);
                next += 1;
            }
            if !ready.is_empty() {
                self.write(ready)?;
            }
            self.acknowledge_if_due(!open)?;
            self.tend_routing()?;
        }
        Ok(())
    }

    /// The end of the run: the alert file put in place, background acknowledgements
    /// confirmed, the lake's file count.
    fn close(&mut self) -> Result<()> {
        if let Some(alerts) = self.alerts.take() {
            alerts.finish()?;
        }
        if let Some(routing) = self.routing.take() {
            routing.finish();
        }
        self.dead_letters.finish()?;
        if let Err(error) = self.acknowledge.finish() {
            self.metrics.commit_failures.inc();
            tracing::warn!(error = %error_chain(&error), "final acknowledgement failed");
        }
        if let Some((lake, _)) = &self.lake {
            self.summary.lake_files = lake.lake.files;
        }
        Ok(())
    }

    /// Makes a run of batches durable (dead letters acknowledged by their output,
    /// alerts written and synced, events in the lake's buffer) and notes their
    /// positions.
    fn write(&mut self, mut batches: Vec<Done<P>>) -> Result<()> {
        for batch in &mut batches {
            self.run_windows(batch)?;
        }
        // Read again only for the windows: done with.
        let warm = batches.iter().filter(|b| b.warm).count() as u64;
        if warm > 0 {
            batches.retain(|b| !b.warm);
            self.shared.written(warm);
            self.shared.end(warm, 0);
        }
        if let Some((lake, _)) = self.lake.as_mut() {
            for batch in &mut batches {
                lake.lake.add_parts(std::mem::take(&mut batch.parts))?;
            }
        }
        for batch in &batches {
            for failed in batch.dead.iter().filter_map(|d| d.rule_failure.as_ref()) {
                *self
                    .summary
                    .rule_failures
                    .entry(failed.rule.clone())
                    .or_default() += 1;
            }
            if !batch.dead.is_empty() {
                let written = self.dead_letters.write(&batch.dead)?;
                self.summary.dead_letters += written;
                self.metrics.dead_letters.inc_by(written);
            }
        }
        let alerts = self
            .alerts
            .as_mut()
            .ok_or_else(|| Error::Stage("alerts written after the end".into()))?;
        let mut emitted = Vec::new();
        let mut to_route: Vec<&Alert> = Vec::new();
        for batch in &batches {
            for fired in &batch.alerts {
                let alert = &fired.alert;
                if !alerts.write(alert)? {
                    self.summary.duplicate_alerts += 1;
                    self.metrics.duplicate_alerts.inc();
                    continue;
                }
                if let Some((lake, _)) = self.lake.as_mut() {
                    lake.lake.add_alert(alert)?;
                }
                to_route.push(alert);
                emitted.push((alert.rule_id.as_str(), fired.produced_ms, fired.received));
            }
        }
        alerts.sync()?;
        if let Some(routing) = self.routing.as_mut() {
            let shared = &self.shared;
            // Waiting for room in the spool is not a stall; giving up at a stop leaves
            // these batches unacknowledged.
            routing.route(&to_route, &mut || {
                shared.touch();
                !shared.stopping()
            })?;
        }
        self.count_alerts(&emitted);
        self.shared.written(batches.len() as u64);
        for batch in batches {
            self.summary.records += batch.records;
            self.summary.stats.merge(&batch.stats);
            self.summary.unreadable.extend(batch.unreadable);
            self.acknowledge.completed(&batch.position, &self.summary);
            self.pending.position.merge(batch.position);
            self.pending.batches += 1;
            self.pending.records += batch.records;
        }
        Ok(())
    }

    /// Runs the windowed rules over a batch's events, in batch order; their alerts join
    /// the batch's.
    fn run_windows(&mut self, batch: &mut Done<P>) -> Result<()> {
        let Some((windows, runtime)) = self.windows.as_mut() else {
            return Ok(());
        };
        if batch.warm {
            let rows = std::mem::take(&mut batch.window_rows);
            runtime
                .block_on(windows.warm(&rows))
                .map_err(Error::Rules)?;
            return Ok(());
        }
        let detected_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for rows in std::mem::take(&mut batch.window_rows) {
            let out = runtime
                .block_on(windows.advance(&rows, &detected_at))
                .map_err(Error::Rules)?;
            for failure in out.detected.failures {
                batch.dead.push(crate::worker::rule_failed(
                    &self.metrics,
                    failure,
                    &batch.origins,
                ));
            }
            for (rule, late) in out.late {
                self.metrics
                    .window_late
                    .get_or_create(&crate::metrics::label("rule", rule.as_str()))
                    .inc_by(late);
            }
            for (rule, held) in out.held {
                self.metrics
                    .window_events
                    .get_or_create(&crate::metrics::label("rule", rule.as_str()))
                    .set(i64::try_from(held).unwrap_or(i64::MAX));
            }
            batch
                .alerts
                .extend(out.detected.alerts.into_iter().map(|alert| Fired {
                    alert,
                    produced_ms: None,
                    received: None,
                }));
        }
        Ok(())
    }

    /// Once a second: closes due suppression windows, and sends the notices the sinks
    /// refused to the dead-letter output (then forgets them).
    fn tend_routing(&mut self) -> Result<()> {
        let Some(routing) = self.routing.as_mut() else {
            return Ok(());
        };
        if !routing.tick()? {
            return Ok(());
        }
        let refused = routing.rejected(100)?;
        if refused.is_empty() {
            return Ok(());
        }
        let letters: Vec<DeadLetter> = refused.iter().map(refused_letter).collect();
        let written = self.dead_letters.write(&letters)?;
        self.summary.dead_letters += written;
        self.metrics.dead_letters.inc_by(written);
        let seqs: Vec<i64> = refused.iter().map(|r| r.seq).collect();
        routing.forget_rejected(&seqs)?;
        Ok(())
    }

    fn count_alerts(&mut self, emitted: &[(&str, Option<i64>, Option<Instant>)]) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let now = Instant::now();
        for &(rule, produced_ms, received) in emitted {
            *self
                .summary
                .alerts_by_rule
                .entry(rule.to_owned())
                .or_default() += 1;
            self.metrics
                .alerts
                .get_or_create(&label("rule", rule))
                .inc();
            if let Some(ts) = produced_ms {
                let ms = (now_ms - ts).max(0);
                self.metrics.alert_latency.observe(ms as f64 / 1000.0);
                if self.keep_latencies {
                    self.summary.latencies_ms.push(ms);
                }
            }
            if let Some(received) = received {
                let seconds = now.saturating_duration_since(received).as_secs_f64();
                self.metrics.alert_processing.observe(seconds);
                if self.keep_latencies {
                    self.summary
                        .processing_ms
                        .push((seconds * 1000.0).round() as i64);
                }
            }
        }
    }

    /// Acknowledges what is durable: at once without a lake; with a lake, when it is
    /// due (or a revoke or the end is waiting), after flushing it.
    fn acknowledge_if_due(&mut self, closing: bool) -> Result<()> {
        let urgent = self.shared.take_flush_request() || closing;
        if let Some((lake, last)) = self.lake.as_mut() {
            let due = lake
                .flush_every
                .is_some_and(|every| last.elapsed() >= every);
            if !urgent && !due {
                return Ok(());
            }
            if self.pending.batches == 0 {
                *last = Instant::now();
                return Ok(());
            }
            lake.lake.flush()?;
            *last = Instant::now();
            self.acknowledge
                .lake_durable(lake.lake.run(), lake.lake.parts());
        }
        if self.pending.batches == 0 {
            return Ok(());
        }
        self.dead_letters.sync()?;
        let Unacknowledged {
            position,
            batches,
            records,
        } = std::mem::take(&mut self.pending);
        match self.acknowledge.acknowledge(&position, urgent) {
            Ok(()) => self.summary.commits += 1,
            Err(error) => {
                // The position stays where it was: this input comes again after a
                // restart or a rebalance, and its alerts repeat with the same ids.
                self.metrics.commit_failures.inc();
                tracing::warn!(error = %error_chain(&error), "acknowledgement failed");
            }
        }
        self.shared.end(batches, records);
        Ok(())
    }
}

/// A notice a sink refused, as a dead letter: the alert's first event as origin.
fn refused_letter(refused: &demarc_sink::store::Rejected) -> DeadLetter {
    let notice: Option<demarc_sink::notice::Notice> = serde_json::from_slice(&refused.notice).ok();
    let origin = notice
        .as_ref()
        .and_then(|n| n.alert.source.first())
        .map(|p| p.origin.clone())
        .unwrap_or_else(|| demarc_model::Origin::file("alert"));
    DeadLetter {
        origin,
        key: notice
            .as_ref()
            .map(|n| n.alert.dedup_key.clone().into_bytes()),
        payload: Some(refused.notice.clone()),
        rejects: Vec::new(),
        rule_failure: None,
        undelivered: Some(Undelivered {
            sink: refused.sink.clone(),
            alert_id: notice.map(|n| n.alert.alert_id).unwrap_or_default(),
            status: refused.status,
            response: refused.response.clone(),
        }),
    }
}
