//! Batches, the worker pool, and the engine that starts the stages over them (the state
//! they share is in `shared.rs`).

use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use demarc_detect::RuleSet;
use demarc_model::Origin;
use demarc_normalize::Options;

use crate::Shared;
use crate::complete::{Completion, Done, Outputs, Summary};
use crate::metrics::Metrics;
use crate::{Error, Result};

/// What a source acknowledges: Kafka offsets, archive progress. Positions of later
/// batches are merged into earlier ones until they are acknowledged together.
pub trait Position: Default + Send + 'static {
    /// Folds the position of a later batch into this one.
    fn merge(&mut self, later: Self);
}

/// The bytes of one input unit.
#[derive(Debug)]
pub enum Payload {
    /// A message, in memory.
    Bytes(Vec<u8>),
    /// A whole file, read by the worker (so that reading is spread over the workers).
    File { path: PathBuf, disk_bytes: u64 },
    /// Whole lines of a large NDJSON file, the first being line `first_line`.
    Lines { bytes: Vec<u8>, first_line: u64 },
    /// An input the source could not read (or not to its end), and why: reported in
    /// its place among the others.
    Unreadable(String),
}

/// One unit of input: a Kafka message, a file, a run of lines.
#[derive(Debug)]
pub struct Record {
    pub origin: Origin,
    pub key: Option<Vec<u8>>,
    pub payload: Payload,
    /// The Kafka message timestamp, milliseconds since the epoch.
    pub produced_ms: Option<i64>,
    /// When the source received it.
    pub received: Option<Instant>,
}

/// A batch of records and the source position it covers.
#[derive(Debug, Default)]
pub struct Batch<P> {
    pub(crate) seq: u64,
    pub records: Vec<Record>,
    pub position: P,
    /// When its first record arrived.
    pub started: Option<Instant>,
    /// The bytes of its records in memory.
    pub bytes: usize,
    /// Input read again only to fill the windowed rules' windows (after a restart or a
    /// partition moved here): no alert, dead letter, lake row or acknowledgement comes
    /// of it.
    pub warm: bool,
}

impl<P: Position> Batch<P> {
    pub fn push(&mut self, record: Record) {
        self.started.get_or_insert_with(Instant::now);
        self.bytes += match &record.payload {
            Payload::Bytes(b) | Payload::Lines { bytes: b, .. } => b.len(),
            Payload::File { .. } | Payload::Unreadable(_) => 0,
        };
        self.records.push(record);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Worker threads.
    pub workers: usize,
    pub options: Options,
    /// Keep the normalized rows of each batch for the lake.
    pub keep_rows: bool,
    /// Without `keep_rows`, build rows only for the events some rule may return (the
    /// rules' [`RuleSet::row_filter`]); with it, build every row for the lake but run
    /// the rules only over those. The alerts are the same either way. Default on.
    pub filter_rows: bool,
    /// Keep every produce-to-alert latency in the summary (benchmarks, the demo).
    pub keep_latencies: bool,
    /// The lake gets no `raw` column although the normalizer keeps it: set by
    /// [`Engine::new`] when rules read `raw` and `options.keep_raw` was off.
    pub raw_for_rules_only: bool,
    /// Batches waiting for a worker: 0 hands a batch over only to an idle worker (a
    /// stream, whose batches then grow while the workers are busy); more lets a source
    /// that can wait read ahead (archives).
    pub queue: usize,
    /// Batches handed over and not yet written before `Dispatcher::send` waits: bounds
    /// the memory of the workers' results waiting to be put back in order.
    pub max_in_flight: u64,
}

impl Settings {
    pub fn new(workers: usize, options: Options) -> Self {
        let workers = workers.max(1);
        Self {
            workers,
            options,
            keep_rows: false,
            filter_rows: true,
            keep_latencies: false,
            raw_for_rules_only: false,
            queue: 0,
            max_in_flight: 4 * workers as u64,
        }
    }
}

/// The engine: rules, metrics, shared state and settings; [`Engine::start`] starts its
/// stages for one run.
#[derive(Debug, Clone)]
pub struct Engine {
    pub rules: Arc<RuleSet>,
    pub metrics: Arc<Metrics>,
    pub shared: Arc<Shared>,
    pub settings: Settings,
    /// Events seen before this run, for the windowed rules' windows (see
    /// [`Engine::preload_windows`]); taken by the next start.
    window_history: Arc<std::sync::Mutex<Vec<arrow::array::RecordBatch>>>,
}

impl Engine {
    /// Events from before this run (read back from the lake after a restart) for the
    /// windowed rules: the next start fills their windows with them, reporting nothing,
    /// so that a sequence cut by the restart still completes.
    pub fn preload_windows(&self, history: Vec<arrow::array::RecordBatch>) {
        *self
            .window_history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = history;
    }

    /// Whether [`Engine::preload_windows`] gave events for the next start.
    pub fn has_window_history(&self) -> bool {
        !self
            .window_history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    pub fn new(rules: Arc<RuleSet>, mut settings: Settings) -> Self {
        // A rule reading the original JSON gets it, whatever the lake keeps.
        if rules.reads_raw() && !settings.options.keep_raw {
            settings.options.keep_raw = true;
            settings.raw_for_rules_only = true;
        }
        if settings.filter_rows && settings.options.row_filter.is_none() {
            let filter = rules.row_filter().map(Arc::new);
            if settings.keep_rows {
                // The lake gets every row; the rules only those they may use.
                settings.options.mark_rows = filter;
            } else {
                settings.options.row_filter = filter;
            }
        }
        Self {
            rules,
            metrics: Arc::new(Metrics::new()),
            shared: Arc::new(Shared::default()),
            window_history: Arc::default(),
            settings,
        }
    }

    /// Starts the workers and the completion stage writing to `outputs`; batches go in
    /// through the returned dispatcher, and the run ends when it is dropped and
    /// [`Stages::join`] has drained everything.
    pub fn start<P: Position>(&self, outputs: Outputs<P>) -> Result<(Dispatcher<P>, Stages)> {
        let (work_tx, work_rx) = sync_channel::<Batch<P>>(self.settings.queue);
        let (done_tx, done_rx) = sync_channel::<Result<Done<P>>>(self.settings.workers * 2);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let mut workers = Vec::new();
        for n in 0..self.settings.workers {
            let work = Arc::clone(&work_rx);
            let done = done_tx.clone();
            let engine = self.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("demarc-worker-{n}"))
                    .spawn(move || crate::worker::run(&work, &done, &engine))
                    .map_err(Error::Thread)?,
            );
        }
        drop(done_tx);
        let windows = if self.rules.has_windows() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| {
                    Error::Stage(format!("cannot start the windowed rules' runtime: {e}"))
                })?;
            let mut windows =
                demarc_detect::Windows::new(Arc::clone(&self.rules)).map_err(Error::Rules)?;
            let history = std::mem::take(
                &mut *self
                    .window_history
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if !history.is_empty() {
                let held = runtime
                    .block_on(windows.warm(&history))
                    .map_err(Error::Rules)?;
                tracing::info!(
                    events = held,
                    "windowed rules' windows rebuilt from earlier events"
                );
            }
            Some((windows, runtime))
        } else {
            None
        };
        let completion = Completion::new(
            outputs,
            Arc::clone(&self.metrics),
            Arc::clone(&self.shared),
            self.settings.keep_latencies,
            windows,
        );
        let shared = Arc::clone(&self.shared);
        let completion = std::thread::Builder::new()
            .name("demarc-complete".into())
            .spawn(move || {
                let _guard = shared.fail_on_panic();
                completion.run(&done_rx)
            })
            .map_err(Error::Thread)?;
        let dispatcher = Dispatcher {
            work: work_tx,
            shared: Arc::clone(&self.shared),
            metrics: Arc::clone(&self.metrics),
            next_seq: 0,
            max_in_flight: self.settings.max_in_flight.max(1),
        };
        Ok((
            dispatcher,
            Stages {
                workers,
                completion,
            },
        ))
    }

    /// Runs ready-made batches through the stages: the engine's own ceiling, without a
    /// source.
    pub fn run_batches<P: Position>(
        &self,
        batches: Vec<Batch<P>>,
        outputs: Outputs<P>,
    ) -> Result<Summary> {
        let (mut dispatcher, stages) = self.start(outputs)?;
        for batch in batches {
            if !dispatcher.send(batch) {
                break;
            }
        }
        drop(dispatcher);
        stages.join()
    }
}

/// What became of a batch offered to the workers.
#[derive(Debug)]
pub enum Offer<P> {
    /// A worker took it.
    Taken,
    /// Every worker is busy: the batch comes back, to grow.
    Busy(Batch<P>),
    /// The workers are gone: the pipeline is failing or done.
    Gone,
}

/// Hands batches to the workers, numbering them in the order they are handed over.
#[derive(Debug)]
pub struct Dispatcher<P> {
    work: SyncSender<Batch<P>>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    next_seq: u64,
    max_in_flight: u64,
}

impl<P: Position> Dispatcher<P> {
    /// Hands `batch` over only if a worker (or the queue) can take it now.
    pub fn offer(&mut self, mut batch: Batch<P>) -> Offer<P> {
        batch.seq = self.next_seq;
        let records = batch.len() as f64;
        // Counted in flight before a worker can finish it.
        self.shared.begin();
        match self.work.try_send(batch) {
            Ok(()) => {
                self.next_seq += 1;
                self.metrics.batch_records.observe(records);
                Offer::Taken
            }
            Err(TrySendError::Full(batch)) => {
                self.shared.cancel();
                Offer::Busy(batch)
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.cancel();
                Offer::Gone
            }
        }
    }

    /// Hands `batch` over, waiting for a worker and for room in flight; false if the
    /// workers are gone.
    pub fn send(&mut self, mut batch: Batch<P>) -> bool {
        if !self
            .shared
            .wait_written(self.max_in_flight.saturating_sub(1))
        {
            return false;
        }
        batch.seq = self.next_seq;
        self.next_seq += 1;
        let records = batch.len() as f64;
        self.shared.begin();
        if self.work.send(batch).is_err() {
            self.shared.cancel();
            return false;
        }
        self.metrics.batch_records.observe(records);
        true
    }
}

/// The running stages of one run.
#[derive(Debug)]
pub struct Stages {
    workers: Vec<std::thread::JoinHandle<Result<()>>>,
    completion: std::thread::JoinHandle<Result<Summary>>,
}

impl Stages {
    /// Waits for the workers and the completion stage (after the dispatcher is
    /// dropped): what was done, or the first failure.
    pub fn join(self) -> Result<Summary> {
        let mut failure = None;
        for handle in self.workers {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => {
                    failure = failure.or(Some(Error::Stage("a worker thread panicked".into())))
                }
            }
        }
        let summary = match self.completion.join() {
            Ok(result) => result,
            Err(_) => Err(Error::Stage("the completion thread panicked".into())),
        };
        match failure {
            Some(e) => Err(e),
            None => summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Count(u64);

    impl Position for Count {
        fn merge(&mut self, later: Self) {
            self.0 += later.0;
        }
    }

    #[test]
    fn dispatcher_numbers_batches_and_counts_them_in_flight() {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = sync_channel(1);
        let mut dispatcher = Dispatcher::<Count> {
            work: tx,
            shared: Arc::clone(&shared),
            metrics: Arc::new(Metrics::new()),
            next_seq: 0,
            max_in_flight: 8,
        };
        assert!(matches!(dispatcher.offer(Batch::default()), Offer::Taken));
        // The queue of one is full: the batch comes back and is not counted.
        assert!(matches!(dispatcher.offer(Batch::default()), Offer::Busy(_)));
        assert_eq!(rx.recv().expect("batch").seq, 0);
        assert!(matches!(dispatcher.offer(Batch::default()), Offer::Taken));
        assert_eq!(rx.recv().expect("batch").seq, 1);
        assert_eq!(shared.inflight(), 2);
        drop(rx);
        assert!(matches!(dispatcher.offer(Batch::default()), Offer::Gone));
        assert_eq!(shared.inflight(), 2);
    }
}
