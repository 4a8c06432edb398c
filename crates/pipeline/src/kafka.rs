//! The Kafka source: a consumer group member that cuts micro-batches, commits offsets
//! once what they cover is durable, and sends rejected messages to a dead-letter topic.
//!
//! - The calling thread polls Kafka and cuts a batch at `batch_records` messages,
//!   `batch_bytes` bytes or `batch_wait` after its first message, whichever comes
//!   first; a batch is handed over only when a worker is idle, and grows (up to
//!   `batch_records` and `batch_bytes`) while all are busy, which spreads the cost of a
//!   rule run over more events exactly when that matters.
//! - The engine's completion stage produces the dead letters and waits for the broker
//!   to acknowledge them, writes and syncs the alerts, flushes the lake when due, and
//!   only then commits the highest offset of each partition (+1). A crash replays from
//!   the last commit: alerts may repeat (with the same ids), none is lost.
//! - On a partition revoke the partial batch is handed over and the revoke waits until
//!   every batch in flight is committed before the partitions are released. On stop
//!   (SIGTERM, SIGINT) the same, then a last commit waited for.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use demarc_model::Origin;
use demarc_sink::AlertSink;
use demarc_sink::routing::Routing;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use crate::complete::{LakeOutput, Outputs, Summary};
use crate::engine::{Batch, Engine, Payload, Position, Record};
use crate::{Error, Result};

mod alert_topic;
mod commit;
mod context;
mod dead_letters;
mod refusals;
mod rewind;

pub use alert_topic::AlertTopic;
use commit::KafkaCommit;
use context::{Batcher, Context, Handed};
use refusals::is_fatal;
pub(crate) use refusals::{Refusals, refusal};
use rewind::Rewind;

pub use dead_letters::{
    ATTEMPTS as DEAD_LETTER_ATTEMPTS, check_connection, producer_config as dead_letter_config,
};
use dead_letters::{KafkaDeadLetters, check_topics};

/// How long the start waits for the brokers to describe a topic.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// The Kafka side of `demarc run`: where to read and how to cut batches.
#[derive(Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub group_id: String,
    pub topics: Vec<String>,
    /// librdkafka properties passed through, secrets included (never printed).
    pub properties: BTreeMap<String, String>,
    pub batch_records: usize,
    /// A batch is also cut once its messages hold this many bytes: with the workers'
    /// count, it bounds the memory of a backlog (see `docs/operations.md`).
    pub batch_bytes: usize,
    pub batch_wait: Duration,
    pub dead_letter_topic: String,
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Property values may be secrets: only their names are shown.
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .field("batch_records", &self.batch_records)
            .field("batch_bytes", &self.batch_bytes)
            .field("batch_wait", &self.batch_wait)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .finish()
    }
}

/// The highest offset read of each (topic, partition) in a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Offsets(pub BTreeMap<(Arc<str>, i32), i64>);

impl Offsets {
    fn note(&mut self, topic: &Arc<str>, partition: i32, offset: i64) {
        let last = self
            .0
            .entry((Arc::clone(topic), partition))
            .or_insert(offset);
        *last = (*last).max(offset);
    }

    fn merge_ref(&mut self, later: &Self) {
        for ((topic, partition), offset) in &later.0 {
            self.note(topic, *partition, *offset);
        }
    }
}

impl Position for Offsets {
    fn merge(&mut self, later: Self) {
        self.merge_ref(&later);
    }
}

/// The topics named outright (not `^regex` patterns).
fn named_topics(settings: &KafkaSettings) -> Vec<String> {
    settings
        .topics
        .iter()
        .filter(|t| !t.starts_with('^'))
        .cloned()
        .collect()
}

/// The librdkafka settings shared by the consumer and the dead-letter producer.
pub fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut client = ClientConfig::new();
    apply_settings(&mut client, settings);
    client
}

/// Sets the brokers and the user's properties on `client`, over what it has. (Never
/// copied from another `ClientConfig`: its `config_map` hides secrets behind a
/// placeholder, which would then be sent as the password.)
pub(crate) fn apply_settings(client: &mut ClientConfig, settings: &KafkaSettings) {
    client.set("bootstrap.servers", &settings.brokers);
    for (key, value) in &settings.properties {
        client.set(key, value);
    }
}

/// The consumer's settings: demarc's own, over the user's defaults.
pub fn consumer_config(settings: &KafkaSettings) -> ClientConfig {
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
    apply_settings(&mut client, settings);
    client
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    client
}

/// Consumes the configured topics until `engine.shared.stop` is set, then drains,
/// commits and returns what it did. An error means that something could not be made
/// durable: nothing after the last commit is acknowledged.
pub fn run(
    settings: &KafkaSettings,
    engine: &Engine,
    alerts: AlertSink,
    routing: Option<Routing>,
    lake: Option<LakeOutput>,
) -> Result<Summary> {
    // A missing dead-letter topic fails the start (below), not the first reject.
    let dead_letters = KafkaDeadLetters::new(settings, Arc::clone(&engine.metrics))?;
    let context = Context {
        metrics: Arc::clone(&engine.metrics),
        shared: Arc::clone(&engine.shared),
        batcher: Mutex::new(Batcher {
            batch: Batch::default(),
            dispatcher: None,
        }),
        commits_sent: Mutex::new(VecDeque::new()),
        refusals: Refusals::default(),
        rewind: engine
            .rules
            .window_reach_us()
            .map(|reach| Rewind::new(settings, reach, engine.has_window_history())),
    };
    let consumer: Arc<BaseConsumer<Context>> = Arc::new(
        consumer_config(settings)
            .create_with_context(context)
            .map_err(Error::kafka(
                "create the Kafka consumer (check [kafka.properties])",
            ))?,
    );
    // A missing topic fails the start: a consumer of nothing would look healthy.
    // Through the consumer, whose context records why the brokers refuse it (a wrong
    // password, say): that is the error to show, not the timeout it causes.
    let checked = check_topics(
        consumer.client(),
        &named_topics(settings),
        "topic",
        METADATA_TIMEOUT,
    )
    .and_then(|()| dead_letters.check_topic(METADATA_TIMEOUT));
    if let Err(error) = checked {
        return Err(refusal(&consumer).map_or(error, Error::Fatal));
    }
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(Error::kafka("subscribe to the topics"))?;
    let outputs = Outputs {
        alerts,
        routing,
        lake,
        dead_letters: Box::new(dead_letters),
        acknowledge: Box::new(KafkaCommit {
            consumer: Arc::clone(&consumer),
            sent: Offsets::default(),
            unconfirmed: false,
        }),
    };
    let (dispatcher, stages) = engine.start(outputs)?;
    consumer.context().lock_batcher()?.dispatcher = Some(dispatcher);
    engine.metrics.healthy.store(true, Ordering::Relaxed);

    let polled = poll(settings, engine, &consumer);
    // Hand over the partial batch, then close the queue: the workers finish, and the
    // completion stage commits what they did.
    let context = consumer.context();
    context.dispatch(true);
    if let Ok(mut b) = context.batcher.lock() {
        b.dispatcher = None;
    }
    let summary = stages.join();
    engine.metrics.healthy.store(false, Ordering::Relaxed);
    let failed = match (&summary, &polled) {
        (Err(error), _) | (_, Err(error)) => {
            let problem = demarc_model::error_chain(error);
            engine.metrics.set_problem(Some(problem));
            true
        }
        _ => false,
    };
    // Leaving the group waits for the broker; after a failure, not for long.
    close(
        consumer,
        if failed {
            CLOSE_AFTER_FAILURE
        } else {
            CLOSE_CLEANLY
        },
    );
    let summary = summary?;
    polled?;
    Ok(summary)
}

/// How long a clean stop waits for the consumer to leave its group.
const CLOSE_CLEANLY: Duration = Duration::from_secs(30);
/// How long a failed run waits for it: the offsets are not committed anyway, and a
/// process that hangs here would look alive while consuming nothing.
const CLOSE_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Closes the consumer (leaves the group, releases its partitions) on a thread of its
/// own, waiting at most `limit`: `rd_kafka_consumer_close` can block for good with a
/// rebalance pending, and the process must still end.
fn close(consumer: Arc<BaseConsumer<Context>>, limit: Duration) {
    let (closed_tx, closed_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("demarc-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = closed_tx.send(());
        });
    if spawned.is_ok() && closed_rx.recv_timeout(limit).is_err() {
        tracing::warn!(
            seconds = limit.as_secs(),
            "the Kafka consumer did not leave its group in time; the broker expires it \
             after session.timeout.ms"
        );
    }
}

/// How long a full batch waits for a worker before the partitions are paused: a
/// backlog hands batches over within milliseconds, and pausing there would throw away
/// the messages librdkafka fetched ahead; a stuck output waits for longer.
const PAUSE_AFTER: Duration = Duration::from_secs(1);

/// Hands the full open batch to a worker, waiting up to [`PAUSE_AFTER`] for one to be
/// free (no wait when the partitions are paused already).
fn hand_over(context: &Context, paused: bool) -> Handed {
    let deadline = Instant::now() + PAUSE_AFTER;
    loop {
        match context.dispatch(false) {
            Handed::Busy if !paused && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            handed => return handed,
        }
    }
}

/// Pauses or resumes every assigned partition. A paused partition's fetched messages
/// are dropped by librdkafka and fetched again from the position after the last one
/// polled when it resumes: nothing is skipped.
fn set_paused(consumer: &BaseConsumer<Context>, pause: bool) -> Result<()> {
    let assignment = consumer
        .assignment()
        .map_err(Error::kafka("read the partition assignment"))?;
    if pause {
        consumer.pause(&assignment)
    } else {
        consumer.resume(&assignment)
    }
    .map_err(Error::kafka(if pause {
        "pause the partitions"
    } else {
        "resume the partitions"
    }))
}

fn poll(settings: &KafkaSettings, engine: &Engine, consumer: &BaseConsumer<Context>) -> Result<()> {
    let context = consumer.context();
    let wait = settings.batch_wait;
    let mut topics: HashMap<String, Arc<str>> = HashMap::new();
    // Set while the open batch is full and every worker busy (a slow output, a full
    // alert spool): the partitions are paused, and polling goes on so that the
    // consumer stays in its group; they resume once a worker takes the batch.
    let mut paused = false;
    while !engine.shared.stopping() {
        if let Some(problem) = context.fatal() {
            return Err(Error::Fatal(problem));
        }
        if paused {
            match context.dispatch(false) {
                Handed::Gone => break,
                Handed::Busy => {}
                Handed::Taken => {
                    set_paused(consumer, false)?;
                    paused = false;
                    engine.metrics.paused.set(0);
                }
            }
        }
        let started = context.lock_batcher()?.batch.started;
        let timeout = match started {
            // Past the deadline with every worker busy: look again shortly.
            Some(at) => wait
                .saturating_sub(at.elapsed())
                .max(Duration::from_millis(2)),
            None => Duration::from_millis(100),
        };
        match consumer.poll(timeout) {
            Some(Ok(message)) => {
                engine.metrics.messages.inc();
                let topic = match topics.get(message.topic()) {
                    Some(t) => Arc::clone(t),
                    None => {
                        let t: Arc<str> = message.topic().into();
                        topics.insert(message.topic().to_owned(), Arc::clone(&t));
                        t
                    }
                };
                let (partition, offset) = (message.partition(), message.offset());
                let record = Record {
                    origin: Origin::kafka(Arc::clone(&topic), partition, offset),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: Payload::Bytes(
                        message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    ),
                    produced_ms: message.timestamp().to_millis(),
                    received: Some(Instant::now()),
                };
                let full = {
                    let mut b = context.lock_batcher()?;
                    b.batch.position.note(&topic, partition, offset);
                    b.batch.push(record);
                    b.batch.len() >= settings.batch_records || b.batch.bytes >= settings.batch_bytes
                };
                if full {
                    match hand_over(context, paused) {
                        Handed::Gone => break,
                        Handed::Taken => {}
                        // Paused again even if already: a rebalance may have assigned
                        // partitions that are not.
                        Handed::Busy => {
                            set_paused(consumer, true)?;
                            if !paused {
                                tracing::info!(
                                    "every worker is busy and the batch is full: consumption \
                                     paused until the outputs catch up"
                                );
                            }
                            paused = true;
                            engine.metrics.paused.set(1);
                        }
                    }
                }
            }
            Some(Err(error)) => {
                engine.metrics.consumer_errors.inc();
                if is_fatal(&error) {
                    return Err(Error::Fatal(format!("the Kafka consumer failed: {error}")));
                }
                tracing::warn!(%error, "Kafka consumer error");
            }
            None => {}
        }
        let due = context
            .lock_batcher()?
            .batch
            .started
            .is_some_and(|at| at.elapsed() >= wait);
        if due && context.dispatch(false) == Handed::Gone {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
