//! A worker: normalize a batch, run every rule over it, hand the result to the
//! completion stage. Plain threads, each with its own normalizer and a single-threaded
//! runtime for DataFusion: the work is CPU-bound and must not block an async runtime.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Instant;

use arrow::array::{BooleanArray, RecordBatch};
use demarc_model::Origin;
use demarc_normalize::{EXCERPT_BYTES, Normalizer, Stats};

use crate::complete::{Done, Fired};
use crate::dead_letter::{DeadLetter, InputRange, RuleFailed};
use crate::engine::{Batch, Engine, Payload, Position};
use crate::metrics::{Metrics, label};
use crate::{Error, Result};
use demarc_detect::RuleFailure;

/// The worker loop, until the work queue closes or a batch fails.
pub(crate) fn run<P: Position>(
    work: &Mutex<Receiver<Batch<P>>>,
    done: &SyncSender<Result<Done<P>>>,
    engine: &Engine,
) -> Result<()> {
    let _guard = engine.shared.fail_on_panic();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(Error::Thread)?;
    let mut normalizer = Normalizer::new(engine.settings.options.clone());
    let mut before = Stats::default();
    loop {
        let next = work
            .lock()
            .map_err(|_| Error::Stage("a worker thread panicked".into()))?
            .recv();
        let Ok(batch) = next else { return Ok(()) };
        let seq = batch.seq;
        // A panic on one batch must not leave the completion stage waiting for it for
        // ever: it becomes the batch's failure, which stops the run unacknowledged.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            process(&runtime, engine, &mut normalizer, batch)
        }))
        .unwrap_or_else(|_| {
            Err(Error::Stage(format!(
                "a worker panicked on batch {seq}; nothing from it on was acknowledged"
            )))
        });
        let failed = result.is_err();
        let result = result.map(|mut d| {
            let after = normalizer.stats().clone();
            // Input read again for the windows was counted the first time.
            if !d.warm {
                d.stats = after.since(&before);
                count(&engine.metrics, &d.stats);
            }
            before = after;
            d
        });
        if failed {
            // The normalizer may be half-way through a batch: start afresh.
            normalizer = Normalizer::new(engine.settings.options.clone());
            before = Stats::default();
        }
        if done.send(result).is_err() || failed {
            return Ok(());
        }
    }
}

/// Rows are taken from the normalizer as a separate chunk once a string column holds
/// this much, so that no column nears Arrow's 2 GiB offset limit whatever the batch.
const COLUMN_CUT_BYTES: usize = 512 << 20;

/// A Kafka message's topic, partition and offset.
type Place = (Arc<str>, i32, i64);

fn process<P: Position>(
    runtime: &tokio::runtime::Runtime,
    engine: &Engine,
    normalizer: &mut Normalizer,
    batch: Batch<P>,
) -> Result<Done<P>> {
    let max_input_bytes = engine.settings.options.max_input_bytes as u64;
    let mut dead = Vec::new();
    let mut unreadable = Vec::new();
    // When each message was produced and received, by its position.
    let mut times: HashMap<Place, (Option<i64>, Option<Instant>)> = HashMap::new();
    let records = batch.records.len() as u64;
    let origins: Vec<Origin> = batch.records.iter().map(|r| r.origin.clone()).collect();
    let mut chunks = Vec::new();
    for record in batch.records {
        match &record.payload {
            Payload::Bytes(bytes) => normalizer.push(bytes, &record.origin),
            Payload::Lines { bytes, first_line } => {
                normalizer.push_lines(bytes, &record.origin, *first_line);
            }
            Payload::Unreadable(error) => {
                unreadable.push((record.origin.source.to_string(), error.clone()));
            }
            Payload::File { path, disk_bytes } => {
                let read = push_file(
                    normalizer,
                    &record.origin,
                    path,
                    *disk_bytes,
                    max_input_bytes,
                );
                if let Err(error) = read {
                    unreadable.push((path.display().to_string(), error.to_string()));
                }
            }
        }
        if let (Some(p), Some(o)) = (record.origin.partition, record.origin.offset) {
            times.insert(
                (Arc::clone(&record.origin.source), p, o),
                (record.produced_ms, record.received),
            );
        }
        if normalizer.pending_bytes() >= COLUMN_CUT_BYTES {
            chunks.extend(normalizer.take_marked_batch());
        }
        let rejects = normalizer.take_rejects();
        // Read again for the windows: its dead letters were written the first time.
        if !rejects.is_empty() && !batch.warm {
            let payload = match record.payload {
                Payload::Bytes(bytes) => Some(bytes),
                _ => None,
            };
            dead.push(DeadLetter {
                origin: record.origin,
                key: record.key,
                payload,
                rejects,
                rule_failure: None,
                undelivered: None,
            });
        }
    }
    let mut done = Done {
        seq: batch.seq,
        records,
        position: batch.position,
        dead,
        unreadable,
        alerts: Vec::new(),
        parts: Vec::new(),
        window_rows: Vec::new(),
        stats: Stats::default(),
        warm: batch.warm,
        origins: Vec::new(),
    };
    chunks.extend(normalizer.take_marked_batch());
    // The rows the rules may use: those the rules' row filter keeps (marked when every
    // row is built for the lake), or all of them.
    let (chunks, rule_rows) = rule_rows(chunks)?;
    if batch.warm {
        done.window_rows = rule_rows;
        return Ok(done);
    }
    let detected_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for rows in &rule_rows {
        let detected = runtime
            .block_on(engine.rules.alerts_each(rows.clone(), &detected_at))
            .map_err(Error::Rules)?;
        for failure in detected.failures {
            done.dead
                .push(rule_failed(&engine.metrics, failure, &origins));
        }
        done.alerts.extend(detected.alerts.into_iter().map(|alert| {
            let mut fired = Fired {
                produced_ms: None,
                received: None,
                alert,
            };
            for p in &fired.alert.source {
                let (Some(partition), Some(offset)) = (p.origin.partition, p.origin.offset) else {
                    continue;
                };
                let key = (Arc::clone(&p.origin.source), partition, offset);
                if let Some((produced_ms, received)) = times.get(&key) {
                    fired.produced_ms = earliest(fired.produced_ms, *produced_ms);
                    fired.received = earliest(fired.received, *received);
                }
            }
            fired
        }));
    }
    if engine.rules.has_windows() {
        done.window_rows = rule_rows;
        done.origins = origins;
    }
    if engine.settings.keep_rows {
        // Cut into the lake's partitions here, on the worker, so that the one thread
        // that orders the output only buffers the parts.
        for rows in &chunks {
            if engine.settings.raw_for_rules_only {
                done.parts.extend(demarc_lake::split(&without_raw(rows))?);
            } else {
                done.parts.extend(demarc_lake::split(rows)?);
            }
        }
    }
    Ok(done)
}

/// The normalizer's batches, and the rows of them the rules may use: the marked ones
/// when rows are marked (empty batches left out), else every row.
type Chunks = (Vec<RecordBatch>, Vec<RecordBatch>);

fn rule_rows(chunks: Vec<(RecordBatch, Option<BooleanArray>)>) -> Result<Chunks> {
    let mut all = Vec::with_capacity(chunks.len());
    let mut used = Vec::with_capacity(chunks.len());
    for (rows, marks) in chunks {
        match marks {
            Some(marks) => {
                let marked = arrow::compute::filter_record_batch(&rows, &marks)
                    .map_err(|e| Error::Stage(format!("cannot select the rules' rows: {e}")))?;
                if marked.num_rows() > 0 {
                    used.push(marked);
                }
            }
            None => used.push(rows.clone()),
        }
        all.push(rows);
    }
    Ok((all, used))
}

/// The rows with an empty `raw` column: kept for the rules, not asked of the lake.
fn without_raw(rows: &RecordBatch) -> RecordBatch {
    let Ok(index) = rows.schema().index_of(demarc_model::column::RAW) else {
        return rows.clone();
    };
    let mut columns = rows.columns().to_vec();
    columns[index] = arrow::array::new_null_array(columns[index].data_type(), rows.num_rows());
    RecordBatch::try_new(rows.schema(), columns).unwrap_or_else(|_| rows.clone())
}

/// A rule that failed on a batch: counted, logged with the batch's positions, and made
/// a dead letter. The other rules' alerts for the batch still go out.
pub(crate) fn rule_failed(
    metrics: &Metrics,
    failure: RuleFailure,
    origins: &[Origin],
) -> DeadLetter {
    let inputs = InputRange::covering(origins);
    let error = demarc_model::error_chain(&failure.error);
    metrics
        .rule_errors
        .get_or_create(&label("rule", failure.rule.as_str()))
        .inc();
    tracing::error!(
        rule = %failure.rule,
        inputs = %InputRange::describe(&inputs),
        %error,
        "a rule failed on a batch: its alerts for these events are missing"
    );
    let failed = RuleFailed {
        rule: failure.rule,
        error,
        inputs,
    };
    DeadLetter {
        origin: origins.first().cloned().unwrap_or_else(|| Origin::file("")),
        key: None,
        payload: serde_json::to_vec(&failed).ok(),
        rejects: Vec::new(),
        rule_failure: Some(failed),
        undelivered: None,
    }
}

/// Reads a whole file into the normalizer; one too large to be read within the input
/// limit is rejected as oversize from its first bytes. An error means it could not be
/// read at all.
fn push_file(
    normalizer: &mut Normalizer,
    origin: &Origin,
    path: &std::path::Path,
    disk_bytes: u64,
    max_input_bytes: u64,
) -> std::io::Result<()> {
    use std::io::Read as _;
    if disk_bytes > max_input_bytes {
        let mut head = Vec::new();
        std::fs::File::open(path)?
            .take(EXCERPT_BYTES as u64)
            .read_to_end(&mut head)?;
        normalizer.reject_oversize_input(origin, disk_bytes, &head);
        return Ok(());
    }
    let bytes = std::fs::read(path)?;
    normalizer.push(&bytes, origin);
    Ok(())
}

/// The earlier of two optional times, or whichever is known.
fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn count(metrics: &Metrics, stats: &Stats) {
    metrics.events.inc_by(stats.events_in);
    metrics.events_unmatched.inc_by(stats.events_unmatched);
    for (reason, n) in &stats.rejected {
        metrics
            .rejects
            .get_or_create(&label("reason", reason.as_str()))
            .inc_by(*n);
    }
    for (reason, n) in &stats.lenient {
        metrics
            .lenient
            .get_or_create(&label("reason", reason.as_str()))
            .inc_by(*n);
    }
    for (reason, n) in &stats.skipped {
        metrics
            .skipped
            .get_or_create(&label("reason", reason.as_str()))
            .inc_by(*n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use demarc_normalize::LenientReason;

    #[test]
    fn a_batch_counts_its_events_unmatched_events_and_leniencies() {
        let metrics = Metrics::new();
        let mut stats = Stats {
            events_in: 5,
            events_out: 5,
            events_unmatched: 3,
            ..Stats::default()
        };
        stats.lenient.insert(LenientReason::TimeWithoutZone, 2);
        count(&metrics, &stats);
        count(&metrics, &stats);
        let text = metrics.encode();
        for line in [
            "demarc_events_total 10",
            "demarc_events_unmatched_total 6",
            "demarc_lenient_total{reason=\"time_without_zone\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
