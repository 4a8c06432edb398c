//! The streaming pipeline behind `demarc run` and `demarc demo`: Kafka messages in,
//! alerts out, offsets committed only once what they cover is durable.
//!
//! - The consumer thread polls Kafka and cuts micro-batches at `batch_records`
//!   messages or `batch_wait` after a batch's first message, whichever comes first.
//!   Each batch carries a sequence number and the last offset of every partition in it.
//! - Worker threads (one per core) normalize a batch and run every rule over it; they
//!   never touch the async runtime.
//! - The sink thread takes the finished batches back in sequence order, writes the
//!   rejected messages to the dead-letter topic and waits for the broker to acknowledge
//!   them, writes the alerts to every sink (the alert file is fsynced), writes the lake
//!   when it is due, and only then commits the offsets. A crash replays from the last
//!   commit: alerts may repeat (with the same ids), none is lost.
//! - On a partition revoke the consumer hands over its partial batch and waits until
//!   every batch in flight is committed before the partitions are released. On stop
//!   (SIGTERM, SIGINT) it does the same and exits.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use arrow::array::RecordBatch;
use demarc_detect::RuleSet;
use demarc_model::{Alert, Origin};
use demarc_normalize::{Normalizer, Options, Reject, Stats};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::config::Config;
use crate::lake::Lake;
use crate::metrics::{Metrics, label};

/// Alert ids remembered to suppress repeats within one process.
const RECENT_ALERT_IDS: usize = 100_000;

/// How alerts are printed on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Print {
    /// One JSON object per line (`demarc run`).
    Json,
    /// One readable line per alert (`demarc demo`).
    Human,
}

/// State shared by the pipeline's threads and whoever runs it.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set to stop: the pipeline drains, commits and returns.
    pub stop: AtomicBool,
    /// Messages whose batches are durable and committed.
    pub messages_done: AtomicU64,
    /// Set once the consumer group has given this process its partitions.
    pub assigned: AtomicBool,
    /// Batches handed to the workers and not yet committed.
    inflight: Mutex<u64>,
    idle: Condvar,
    /// Asks the sink to flush the lake and commit now (a revoke is waiting).
    flush_now: AtomicBool,
    /// Set when a stage fails, so that a revoke stops waiting for it.
    failed: AtomicBool,
}

impl Shared {
    fn begin(&self) {
        if let Ok(mut n) = self.inflight.lock() {
            *n += 1;
        }
    }

    fn end(&self, batches: u64, messages: u64) {
        self.messages_done.fetch_add(messages, Ordering::Relaxed);
        if let Ok(mut n) = self.inflight.lock() {
            *n = n.saturating_sub(batches);
            if *n == 0 {
                self.idle.notify_all();
            }
        }
    }

    /// Waits until every batch in flight is committed, or the time is up, or the
    /// pipeline has failed.
    fn wait_idle(&self, limit: Duration) -> bool {
        self.flush_now.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + limit;
        let Ok(mut n) = self.inflight.lock() else {
            return false;
        };
        while *n > 0 {
            // Asked again each round: the sink may have looked before the last batch
            // reached it.
            self.flush_now.store(true, Ordering::Relaxed);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.failed() {
                return false;
            }
            match self
                .idle
                .wait_timeout(n, left.min(Duration::from_millis(100)))
            {
                Ok((guard, _)) => n = guard,
                Err(_) => return false,
            }
        }
        true
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

/// One Kafka message, copied out of the consumer's buffer.
#[derive(Debug)]
pub struct Record {
    pub origin: Origin,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// Kafka message timestamp, milliseconds since the epoch.
    pub produced_ms: Option<i64>,
    /// When the consumer handed the message to demarc.
    pub received: Instant,
}

/// A micro-batch and the offsets it covers.
#[derive(Debug, Default)]
pub struct Batch {
    seq: u64,
    records: Vec<Record>,
    /// Last offset of each (topic, partition) in the batch.
    offsets: BTreeMap<(Arc<str>, i32), i64>,
    started: Option<Instant>,
}

impl Batch {
    pub fn push(&mut self, record: Record) {
        if let (Some(p), Some(o)) = (record.origin.partition, record.origin.offset) {
            let last = self
                .offsets
                .entry((Arc::clone(&record.origin.source), p))
                .or_insert(o);
            *last = (*last).max(o);
        }
        self.started.get_or_insert_with(Instant::now);
        self.records.push(record);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
}

/// A rejected message on its way to the dead-letter topic.
#[derive(Debug)]
struct DeadLetter {
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl DeadLetter {
    /// The whole message, so that it can be replayed once fixed, with the first
    /// reason and where it came from in headers; `None` without rejects.
    fn new(record: &Record, rejects: &[Reject]) -> Option<Self> {
        let first = rejects.first()?;
        let mut headers = vec![
            ("demarc.reason", first.reason.as_str().to_owned()),
            ("demarc.detail", first.detail.clone()),
            ("demarc.rejects", rejects.len().to_string()),
            ("demarc.source.topic", record.origin.source.to_string()),
            ("demarc.line", first.position.line.to_string()),
            ("demarc.index", first.position.index.to_string()),
        ];
        if let Some(p) = record.origin.partition {
            headers.push(("demarc.source.partition", p.to_string()));
        }
        if let Some(o) = record.origin.offset {
            headers.push(("demarc.source.offset", o.to_string()));
        }
        Some(Self {
            key: record.key.clone(),
            payload: record.payload.clone(),
            headers,
        })
    }
}

/// A batch after the workers: what the sink must make durable.
#[derive(Debug, Default)]
struct Done {
    seq: u64,
    messages: u64,
    offsets: BTreeMap<(Arc<str>, i32), i64>,
    alerts: Vec<Fired>,
    dead: Vec<DeadLetter>,
    lake: Option<RecordBatch>,
    stats: Stats,
}

/// An alert and when the earliest of the messages it came from was produced and
/// received.
#[derive(Debug)]
struct Fired {
    alert: Alert,
    produced_ms: Option<i64>,
    received: Option<Instant>,
}

/// Where offsets go once durable.
pub trait Commit: Send + Sync {
    /// Commits `offsets`. With `wait`, returns once the broker has answered (a revoke or
    /// a stop is waiting); without, sends the commit and returns, and its outcome is
    /// counted when the broker answers.
    fn commit(&self, offsets: &BTreeMap<(Arc<str>, i32), i64>, wait: bool) -> Result<()>;
}

/// Where rejected messages go.
enum DeadLetterOut {
    Kafka {
        producer: FutureProducer,
        topic: String,
        runtime: tokio::runtime::Runtime,
    },
    /// Counted only: the pipeline benchmark, which has no broker.
    Discard,
}

/// What the pipeline did, for the closing summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub messages: u64,
    pub stats: Stats,
    pub alerts_by_rule: BTreeMap<String, u64>,
    pub duplicate_alerts: u64,
    pub dead_letters: u64,
    pub commits: u64,
    /// Produce-to-alert latencies in milliseconds, when asked for.
    pub latencies_ms: Vec<i64>,
    /// Receive-to-alert times in milliseconds (demarc's own share), when asked for.
    pub processing_ms: Vec<i64>,
}

/// The pipeline's settings and resources, shared by `run`, `demo` and the benchmark.
pub struct Pipeline {
    pub config: Config,
    pub rules: Arc<RuleSet>,
    pub metrics: Arc<Metrics>,
    pub shared: Arc<Shared>,
    pub print: Print,
    /// Keep every produce-to-alert latency in the summary (benchmarks).
    pub keep_latencies: bool,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The librdkafka settings shared by the consumer and the dead-letter producer.
pub fn client_config(config: &Config) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers);
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    client
}

/// The consumer's settings: demarc's own, over the user's defaults.
pub fn consumer_config(config: &Config) -> ClientConfig {
    let mut client = ClientConfig::new();
    // Defaults the user may override: read a new group from the start, report lag,
    // keep the prefetch queue small so that a backlog does not fill memory, and do not
    // let a broker hold a fetch longer than a batch waits.
    client
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "5000")
        .set("queued.max.messages.kbytes", "16384")
        .set("fetch.wait.max.ms", "10")
        .set("session.timeout.ms", "10000");
    for (key, value) in client_config(config).config_map() {
        client.set(key, value);
    }
    client
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    client
}

/// The consumer's context: lag from the statistics, and the revoke protocol.
struct Context {
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
    batcher: Mutex<Batcher>,
    /// When each background commit still unanswered was sent, oldest first.
    commits_sent: Mutex<VecDeque<Instant>>,
}

struct Batcher {
    batch: Batch,
    next_seq: u64,
    work: Option<SyncSender<Batch>>,
}

/// What became of a batch offered to the workers.
#[derive(Debug, PartialEq, Eq)]
enum Handed {
    /// Taken (or there was nothing to hand over).
    Taken,
    /// Every worker is busy: the batch stays open and keeps growing.
    Busy,
    /// The workers are gone: the pipeline is failing.
    Gone,
}

impl Context {
    /// Hands the open batch to a worker. With `wait`, blocks until one takes it;
    /// without, hands it over only if a worker is idle. So batches are cut at the
    /// deadline when the workers keep up, and grow (up to `batch_records`) when they
    /// do not, which spreads the cost of a rule run over more events exactly when that
    /// matters.
    fn dispatch(&self, wait: bool) -> Handed {
        let Ok(mut b) = self.batcher.lock() else {
            return Handed::Gone;
        };
        if b.batch.records.is_empty() {
            return Handed::Taken;
        }
        let Some(work) = b.work.clone() else {
            return Handed::Gone;
        };
        let mut batch = std::mem::take(&mut b.batch);
        batch.seq = b.next_seq;
        let records = batch.len() as f64;
        // Counted in flight before a worker can finish it.
        self.shared.begin();
        if wait {
            b.next_seq += 1;
            drop(b);
            if work.send(batch).is_err() {
                return Handed::Gone;
            }
        } else {
            match work.try_send(batch) {
                Ok(()) => b.next_seq += 1,
                Err(TrySendError::Full(batch)) => {
                    self.shared.end(1, 0);
                    b.batch = batch;
                    return Handed::Busy;
                }
                Err(TrySendError::Disconnected(_)) => return Handed::Gone,
            }
        }
        self.metrics.batch_records.observe(records);
        Handed::Taken
    }
}

impl ClientContext for Context {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&vec![
                            ("topic", topic.clone()),
                            ("partition", partition.to_string()),
                        ])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        let sent = self
            .commits_sent
            .lock()
            .ok()
            .and_then(|mut q| q.pop_front());
        if let Some(sent) = sent {
            self.metrics
                .commit_seconds
                .observe(sent.elapsed().as_secs_f64());
        }
        if let Err(error) = result {
            // These offsets stay where they were; the next commit covers them, or the
            // messages are read again after a restart, with the same alert ids.
            self.metrics.commit_failures.inc();
            tracing::warn!(%error, "offset commit failed");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            tracing::info!(partitions = %describe(partitions), "partitions assigned");
            self.shared.assigned.store(true, Ordering::Relaxed);
        }
    }

    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            tracing::info!(partitions = %describe(partitions), "partitions revoked");
            // Finish what was read from these partitions and commit it before another
            // member takes them over; otherwise it would read them again.
            self.dispatch(true);
            if !self.shared.wait_idle(Duration::from_secs(60)) {
                tracing::warn!(
                    partitions = %describe(partitions),
                    "partitions released before their batches were committed; the next \
                     owner reads them again"
                );
            }
        }
    }
}

/// `topic[0,1,2] other[0]`, for the log.
fn describe(partitions: &TopicPartitionList) -> String {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for element in partitions.elements() {
        by_topic
            .entry(element.topic().to_owned())
            .or_default()
            .push(element.partition());
    }
    let parts: Vec<String> = by_topic
        .into_iter()
        .map(|(topic, ps)| {
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{topic}[{}]", ps.join(","))
        })
        .collect();
    parts.join(" ")
}

struct KafkaCommit(Arc<BaseConsumer<Context>>);

impl Commit for KafkaCommit {
    fn commit(&self, offsets: &BTreeMap<(Arc<str>, i32), i64>, wait: bool) -> Result<()> {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), last) in offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(last + 1))?;
        }
        if wait {
            let started = Instant::now();
            self.0.commit(&list, CommitMode::Sync)?;
            let context = self.0.context();
            context
                .metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
        } else {
            // Sent in the background, in order: the sink goes on with the next batches
            // instead of waiting a round trip. The outcome arrives in `commit_callback`.
            if let Ok(mut sent) = self.0.context().commits_sent.lock() {
                sent.push_back(Instant::now());
            }
            self.0.commit(&list, CommitMode::Async)?;
        }
        Ok(())
    }
}

impl Pipeline {
    /// Consumes the configured topics until `shared.stop` is set, then drains, commits
    /// and returns what it did. An error means that something could not be made
    /// durable: nothing after the last commit is acknowledged.
    pub fn run(&self) -> Result<Summary> {
        let dead_letters = DeadLetterOut::Kafka {
            producer: dead_letter_producer(&self.config)?,
            topic: self.config.dead_letter_topic.clone(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()?,
        };
        // A worker takes a batch only when it is idle (see `Context::dispatch`).
        let (work_tx, work_rx) = sync_channel::<Batch>(0);
        let context = Context {
            metrics: Arc::clone(&self.metrics),
            shared: Arc::clone(&self.shared),
            batcher: Mutex::new(Batcher {
                batch: Batch::default(),
                next_seq: 0,
                work: Some(work_tx),
            }),
            commits_sent: Mutex::new(VecDeque::new()),
        };
        let consumer: Arc<BaseConsumer<Context>> = Arc::new(
            consumer_config(&self.config)
                .create_with_context(context)
                .context("cannot create the Kafka consumer (check [kafka.properties])")?,
        );
        let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .context("cannot subscribe to the topics")?;
        let committer = Arc::new(KafkaCommit(Arc::clone(&consumer)));
        let stages = self.start(work_rx, committer, dead_letters)?;
        self.metrics.healthy.store(true, Ordering::Relaxed);

        let polled = self.poll(&consumer);
        // Hand over the partial batch, then close the queue: the workers finish, and the
        // sink commits what they did.
        let context = consumer.context();
        context.dispatch(true);
        if let Ok(mut b) = context.batcher.lock() {
            b.work = None;
        }
        let summary = stages.join();
        self.metrics.healthy.store(false, Ordering::Relaxed);
        let summary = summary?;
        polled?;
        Ok(summary)
    }

    fn poll(&self, consumer: &BaseConsumer<Context>) -> Result<()> {
        let context = consumer.context();
        let wait = self.config.batch_wait;
        let mut topics: HashMap<String, Arc<str>> = HashMap::new();
        while !self.shared.stop.load(Ordering::Relaxed) {
            let started = context
                .batcher
                .lock()
                .map_err(|_| anyhow!("a pipeline thread panicked"))?
                .batch
                .started;
            let timeout = match started {
                // Past the deadline with every worker busy: look again shortly.
                Some(at) => wait
                    .saturating_sub(at.elapsed())
                    .max(Duration::from_millis(2)),
                None => Duration::from_millis(100),
            };
            match consumer.poll(timeout) {
                Some(Ok(message)) => {
                    self.metrics.messages.inc();
                    let topic = match topics.get(message.topic()) {
                        Some(t) => Arc::clone(t),
                        None => {
                            let t: Arc<str> = message.topic().into();
                            topics.insert(message.topic().to_owned(), Arc::clone(&t));
                            t
                        }
                    };
                    let record = Record {
                        origin: Origin::kafka(topic, message.partition(), message.offset()),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                        produced_ms: message.timestamp().to_millis(),
                        received: Instant::now(),
                    };
                    let full = {
                        let mut b = context
                            .batcher
                            .lock()
                            .map_err(|_| anyhow!("a pipeline thread panicked"))?;
                        b.batch.push(record);
                        b.batch.len() >= self.config.batch_records
                    };
                    if full && context.dispatch(true) == Handed::Gone {
                        break;
                    }
                }
                Some(Err(error)) => {
                    self.metrics.consumer_errors.inc();
                    tracing::warn!(%error, "Kafka consumer error");
                }
                None => {}
            }
            let due = context
                .batcher
                .lock()
                .map_err(|_| anyhow!("a pipeline thread panicked"))?
                .batch
                .started
                .is_some_and(|at| at.elapsed() >= wait);
            if due && context.dispatch(false) == Handed::Gone {
                break;
            }
        }
        Ok(())
    }

    /// Starts the workers and the sink on `work`.
    fn start(
        &self,
        work: Receiver<Batch>,
        committer: Arc<dyn Commit>,
        dead_letters: DeadLetterOut,
    ) -> Result<Stages> {
        let (done_tx, done_rx) = sync_channel::<Result<Done>>(self.config.workers * 2);
        let work = Arc::new(Mutex::new(work));
        let options = Options {
            max_event_bytes: self.config.max_event_bytes,
            keep_raw: self.config.lake.is_some(),
            ..Options::default()
        };
        let mut workers = Vec::new();
        for n in 0..self.config.workers {
            let work = Arc::clone(&work);
            let done = done_tx.clone();
            let rules = Arc::clone(&self.rules);
            let metrics = Arc::clone(&self.metrics);
            let options = options.clone();
            let lake = self.config.lake.is_some();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("demarc-worker-{n}"))
                    .spawn(move || worker(&work, &done, &rules, &metrics, options, lake))?,
            );
        }
        drop(done_tx);
        let sink = Sink {
            alerts: AlertOutput::open(
                self.config.alerts_stdout.then_some(self.print),
                self.config.alerts_file.as_deref(),
            )?,
            lake: match &self.config.lake {
                Some((path, every)) => {
                    Some((Lake::open(path, &run_name())?, *every, Instant::now()))
                }
                None => None,
            },
            dead_letters,
            committer,
            metrics: Arc::clone(&self.metrics),
            shared: Arc::clone(&self.shared),
            recent: RecentIds::default(),
            summary: Summary::default(),
            keep_latencies: self.keep_latencies,
            uncommitted: Uncommitted::default(),
            sent: BTreeMap::new(),
            unconfirmed: false,
        };
        let sink = std::thread::Builder::new()
            .name("demarc-sink".into())
            .spawn(move || sink.run(&done_rx))?;
        Ok(Stages { workers, sink })
    }

    /// Runs pre-loaded batches through the workers and the sinks, without a broker:
    /// the pipeline's own ceiling. Dead letters are counted, not written.
    pub fn run_batches(&self, batches: Vec<Vec<Record>>) -> Result<Summary> {
        struct NoCommit;
        impl Commit for NoCommit {
            fn commit(&self, _: &BTreeMap<(Arc<str>, i32), i64>, _: bool) -> Result<()> {
                Ok(())
            }
        }
        let (work_tx, work_rx) = sync_channel::<Batch>(self.config.workers * 2);
        let stages = self.start(work_rx, Arc::new(NoCommit), DeadLetterOut::Discard)?;
        for (seq, records) in batches.into_iter().enumerate() {
            let mut batch = Batch {
                seq: seq as u64,
                ..Batch::default()
            };
            for record in records {
                batch.push(record);
            }
            self.shared.begin();
            if work_tx.send(batch).is_err() {
                break;
            }
        }
        drop(work_tx);
        stages.join()
    }
}

fn run_name() -> String {
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        std::process::id()
    )
}

fn dead_letter_producer(config: &Config) -> Result<FutureProducer> {
    let mut client = client_config(config);
    client.set("acks", "all").set("enable.idempotence", "true");
    client
        .create()
        .context("cannot create the dead-letter producer (check [kafka.properties])")
}

struct Stages {
    workers: Vec<std::thread::JoinHandle<Result<()>>>,
    sink: std::thread::JoinHandle<Result<Summary>>,
}

impl Stages {
    fn join(self) -> Result<Summary> {
        let mut failure = None;
        for handle in self.workers {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => failure = failure.or(Some(anyhow!("a worker thread panicked"))),
            }
        }
        let summary = match self.sink.join() {
            Ok(result) => result,
            Err(_) => Err(anyhow!("the sink thread panicked")),
        };
        match failure {
            Some(e) => Err(e),
            None => summary,
        }
    }
}

fn fail(shared: &Shared) {
    shared.failed.store(true, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
}

/// A worker: normalize a batch, run every rule, hand the result to the sink.
fn worker(
    work: &Mutex<Receiver<Batch>>,
    done: &SyncSender<Result<Done>>,
    rules: &RuleSet,
    metrics: &Metrics,
    options: Options,
    lake: bool,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut normalizer = Normalizer::new(options);
    let mut before = Stats::default();
    loop {
        let next = work
            .lock()
            .map_err(|_| anyhow!("a worker thread panicked"))?
            .recv();
        let Ok(batch) = next else { return Ok(()) };
        let result = process(&runtime, rules, &mut normalizer, batch, lake);
        let result = result.map(|mut d| {
            let after = normalizer.stats().clone();
            d.stats = difference(&after, &before);
            before = after;
            count(metrics, &d.stats);
            d
        });
        let failed = result.is_err();
        if done.send(result).is_err() || failed {
            return Ok(());
        }
    }
}

fn process(
    runtime: &tokio::runtime::Runtime,
    rules: &RuleSet,
    normalizer: &mut Normalizer,
    batch: Batch,
    lake: bool,
) -> Result<Done> {
    let mut dead = Vec::new();
    // When each message was produced and received, by its position.
    let mut times: HashMap<Place, (Option<i64>, Instant)> = HashMap::new();
    for record in &batch.records {
        normalizer.push(&record.payload, &record.origin);
        dead.extend(DeadLetter::new(record, &normalizer.take_rejects()));
        if let (Some(p), Some(o)) = (record.origin.partition, record.origin.offset) {
            times.insert(
                (Arc::clone(&record.origin.source), p, o),
                (record.produced_ms, record.received),
            );
        }
    }
    let mut done = Done {
        seq: batch.seq,
        messages: batch.records.len() as u64,
        offsets: batch.offsets,
        dead,
        ..Done::default()
    };
    if let Some(rows) = normalizer.take_batch() {
        let detected_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let alerts = runtime
            .block_on(rules.alerts(rows.clone(), &detected_at))
            .context("running the rules")?;
        done.alerts = alerts
            .into_iter()
            .map(|alert| {
                let mut fired = Fired {
                    produced_ms: None,
                    received: None,
                    alert,
                };
                for p in &fired.alert.source {
                    let (Some(partition), Some(offset)) = (p.origin.partition, p.origin.offset)
                    else {
                        continue;
                    };
                    let key = (Arc::clone(&p.origin.source), partition, offset);
                    if let Some((produced_ms, received)) = times.get(&key) {
                        fired.produced_ms = earliest(fired.produced_ms, *produced_ms);
                        fired.received = earliest(fired.received, Some(*received));
                    }
                }
                fired
            })
            .collect();
        if lake {
            done.lake = Some(rows);
        }
    }
    Ok(done)
}

/// A message's topic, partition and offset.
type Place = (Arc<str>, i32, i64);

/// The earlier of two optional times, or whichever is known.
fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn difference(after: &Stats, before: &Stats) -> Stats {
    let mut d = Stats {
        inputs: after.inputs - before.inputs,
        bytes: after.bytes - before.bytes,
        events_in: after.events_in - before.events_in,
        events_out: after.events_out - before.events_out,
        ..Stats::default()
    };
    for (reason, n) in &after.skipped {
        let n = n - before.skipped.get(reason).copied().unwrap_or(0);
        if n > 0 {
            d.skipped.insert(*reason, n);
        }
    }
    for (reason, n) in &after.rejected {
        let n = n - before.rejected.get(reason).copied().unwrap_or(0);
        if n > 0 {
            d.rejected.insert(*reason, n);
        }
    }
    d
}

fn count(metrics: &Metrics, stats: &Stats) {
    metrics.events.inc_by(stats.events_in);
    for (reason, n) in &stats.rejected {
        metrics
            .rejects
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

/// Offsets and batches sunk but not yet committed (the lake is not due yet).
#[derive(Debug, Default)]
struct Uncommitted {
    offsets: BTreeMap<(Arc<str>, i32), i64>,
    batches: u64,
    messages: u64,
}

struct Sink {
    alerts: AlertOutput,
    lake: Option<(Lake, Duration, Instant)>,
    dead_letters: DeadLetterOut,
    committer: Arc<dyn Commit>,
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
    recent: RecentIds,
    summary: Summary,
    keep_latencies: bool,
    uncommitted: Uncommitted,
    /// The highest offset committed so far per partition, and whether a background
    /// commit has been sent since the last commit that was waited for.
    sent: BTreeMap<(Arc<str>, i32), i64>,
    unconfirmed: bool,
}

impl Sink {
    fn run(mut self, done: &Receiver<Result<Done>>) -> Result<Summary> {
        let result = self.run_inner(done);
        if result.is_err() {
            fail(&self.shared);
            // Let the workers finish: nothing more is committed.
            for _ in done.iter() {}
        }
        result.map(|()| self.summary)
    }

    fn run_inner(&mut self, done: &Receiver<Result<Done>>) -> Result<()> {
        let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
        let mut next = 0u64;
        let mut open = true;
        while open || !pending.is_empty() {
            match done.recv_timeout(Duration::from_millis(50)) {
                Ok(d) => {
                    let d = d?;
                    pending.insert(d.seq, d);
                    // Take whatever else is ready, to commit once for all of it.
                    for d in done.try_iter() {
                        let d = d?;
                        pending.insert(d.seq, d);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    if pending.keys().next().is_some_and(|&k| k != next) {
                        bail!("a batch was lost between the workers and the sink");
                    }
                }
            }
            let mut ready = Vec::new();
            while let Some(d) = pending.remove(&next) {
                ready.push(d);
                next += 1;
            }
            if !ready.is_empty() {
                self.sink(ready)?;
            }
            self.commit_if_due(!open)?;
        }
        // Background commits may still be on their way: commit the same offsets once
        // more and wait for the answer, so that a clean stop leaves nothing to re-read.
        if self.unconfirmed
            && let Err(error) = self.committer.commit(&self.sent, true)
        {
            self.metrics.commit_failures.inc();
            tracing::warn!(error = format!("{error:#}"), "final offset commit failed");
        }
        Ok(())
    }

    /// Makes a run of batches durable (dead letters acknowledged, alerts written and
    /// synced, events in the lake's buffer) and notes their offsets.
    fn sink(&mut self, batches: Vec<Done>) -> Result<()> {
        self.write_dead_letters(&batches)?;
        let mut emitted = Vec::new();
        for batch in &batches {
            for fired in &batch.alerts {
                let alert = &fired.alert;
                if !self.recent.insert(&alert.alert_id) {
                    self.summary.duplicate_alerts += 1;
                    self.metrics.duplicate_alerts.inc();
                    continue;
                }
                self.alerts.write(alert)?;
                if let Some((lake, _, _)) = self.lake.as_mut() {
                    lake.add_alert(alert)?;
                }
                emitted.push((alert.rule_id.as_str(), fired.produced_ms, fired.received));
            }
            if let (Some((lake, _, _)), Some(rows)) = (self.lake.as_mut(), batch.lake.as_ref()) {
                lake.add_events(rows)?;
            }
        }
        self.alerts.sync()?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let now = Instant::now();
        for (rule, produced_ms, received) in emitted {
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
        for batch in batches {
            self.summary.messages += batch.messages;
            self.summary.stats.merge(&batch.stats);
            for (key, last) in batch.offsets {
                let entry = self.uncommitted.offsets.entry(key).or_insert(last);
                *entry = (*entry).max(last);
            }
            self.uncommitted.batches += 1;
            self.uncommitted.messages += batch.messages;
        }
        Ok(())
    }

    fn write_dead_letters(&mut self, batches: &[Done]) -> Result<()> {
        let letters = batches.iter().flat_map(|b| &b.dead);
        match &self.dead_letters {
            DeadLetterOut::Discard => {
                for _ in letters {
                    self.summary.dead_letters += 1;
                }
            }
            DeadLetterOut::Kafka {
                producer,
                topic,
                runtime,
            } => {
                let mut deliveries = Vec::new();
                for letter in letters {
                    let mut headers = OwnedHeaders::new();
                    for (name, value) in &letter.headers {
                        headers = headers.insert(Header {
                            key: name,
                            value: Some(value.as_bytes()),
                        });
                    }
                    let mut record = FutureRecord::to(topic)
                        .payload(&letter.payload)
                        .headers(headers);
                    if let Some(key) = &letter.key {
                        record = record.key(key);
                    }
                    let delivery = producer
                        .send_result(record)
                        .map_err(|(e, _)| e)
                        .with_context(|| format!("cannot queue a dead letter for `{topic}`"))?;
                    deliveries.push(delivery);
                }
                let count = deliveries.len() as u64;
                runtime.block_on(async {
                    for delivery in deliveries {
                        match delivery.await {
                            Ok(Ok(_)) => {}
                            Ok(Err((e, _))) => {
                                return Err(anyhow!(e).context(format!(
                                    "the dead-letter topic `{topic}` did not take a rejected message"
                                )));
                            }
                            Err(_) => bail!("the dead-letter producer was dropped"),
                        }
                    }
                    Ok(())
                })?;
                self.summary.dead_letters += count;
                self.metrics.dead_letters.inc_by(count);
            }
        }
        Ok(())
    }

    /// Commits what is durable: at once without a lake; with a lake, when it is due
    /// (or a revoke or the end is waiting), after flushing it.
    fn commit_if_due(&mut self, closing: bool) -> Result<()> {
        let urgent = closing || self.shared.flush_now.swap(false, Ordering::Relaxed);
        if let Some((lake, every, last)) = self.lake.as_mut() {
            if !urgent && last.elapsed() < *every {
                return Ok(());
            }
            if self.uncommitted.batches == 0 {
                *last = Instant::now();
                return Ok(());
            }
            lake.flush()?;
            *last = Instant::now();
        }
        if self.uncommitted.batches == 0 {
            return Ok(());
        }
        let Uncommitted {
            offsets,
            batches,
            messages,
        } = std::mem::take(&mut self.uncommitted);
        for (key, last) in &offsets {
            let entry = self.sent.entry(key.clone()).or_insert(*last);
            *entry = (*entry).max(*last);
        }
        let result = self.committer.commit(&offsets, urgent);
        // A commit waited for confirms every earlier one (offsets only grow).
        self.unconfirmed = !urgent || (self.unconfirmed && result.is_err());
        if let Err(error) = result {
            // The offsets stay where they were: these messages are read again after a
            // restart or a rebalance, and their alerts repeat with the same ids.
            self.metrics.commit_failures.inc();
            tracing::warn!(error = format!("{error:#}"), "offset commit failed");
        } else {
            self.summary.commits += 1;
        }
        self.shared.end(batches, messages);
        Ok(())
    }
}

/// Alert ids emitted recently, to print an alert once when its event arrives twice.
#[derive(Debug, Default)]
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= RECENT_ALERT_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

/// Standard output and the alert file.
struct AlertOutput {
    stdout: Option<(BufWriter<std::io::Stdout>, Print)>,
    file: Option<BufWriter<File>>,
}

impl AlertOutput {
    fn open(stdout: Option<Print>, file: Option<&Path>) -> Result<Self> {
        let file = match file {
            None => None,
            Some(path) => Some(BufWriter::new(open_jsonl(path)?)),
        };
        Ok(Self {
            stdout: stdout.map(|p| (BufWriter::new(std::io::stdout()), p)),
            file,
        })
    }

    fn write(&mut self, alert: &Alert) -> Result<()> {
        if let Some((out, print)) = self.stdout.as_mut() {
            match print {
                Print::Json => {
                    serde_json::to_writer(&mut *out, alert)?;
                    out.write_all(b"\n")
                }
                Print::Human => writeln!(
                    out,
                    "ALERT {:<8} {:<44} {}",
                    alert.severity.as_str(),
                    alert.rule_id,
                    alert.summary
                ),
            }
            .context("cannot write alerts to standard output")?;
        }
        if let Some(file) = self.file.as_mut() {
            serde_json::to_writer(&mut *file, alert)?;
            file.write_all(b"\n")
                .context("cannot write the alert file")?;
        }
        Ok(())
    }

    /// Flushes standard output and syncs the alert file to disk.
    fn sync(&mut self) -> Result<()> {
        if let Some((out, _)) = self.stdout.as_mut() {
            out.flush()
                .context("cannot write alerts to standard output")?;
        }
        if let Some(file) = self.file.as_mut() {
            file.flush().context("cannot write the alert file")?;
            file.get_ref()
                .sync_data()
                .context("cannot sync the alert file")?;
        }
        Ok(())
    }
}

/// Opens a JSON-lines file for appending. A line cut short by a crash is removed
/// first: it was not synced when the process died, so its offsets were not
/// committed and it comes again.
pub fn open_jsonl(path: &Path) -> Result<File> {
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the alert file `{}`", path.display()))?;
    let len = file.metadata()?.len();
    if len > 0 {
        let tail_len = len.min(1 << 20);
        file.seek(SeekFrom::Start(len - tail_len))?;
        let mut tail = Vec::new();
        (&mut file).take(tail_len).read_to_end(&mut tail)?;
        if tail.last() != Some(&b'\n') {
            let keep = match memchr::memrchr(b'\n', &tail) {
                Some(i) => len - tail_len + i as u64 + 1,
                None if tail_len == len => 0,
                None => bail!(
                    "`{}` ends with a line over 1 MiB that is not an alert: move the file away",
                    path.display()
                ),
            };
            tracing::warn!(
                path = %path.display(),
                bytes = len - keep,
                "removing an incomplete last line left by a crash"
            );
            file.set_len(keep)?;
            file.sync_data()?;
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests;
