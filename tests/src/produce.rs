//! Generated CloudTrail events and a producer that batches as real ones do.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use demarc_synth::CloudTrailGenerator;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::Statistics;

use crate::Result;

/// `n` generated CloudTrail events, one JSON document each, keyed by account, with
/// violations at `violation_rate`; the same seed gives the same events.
pub fn events(n: usize, violation_rate: f64, seed: u64) -> Vec<(String, String)> {
    let mut generator = CloudTrailGenerator::new(seed).with_violation_rate(violation_rate);
    (0..n).map(|_| generator.keyed_message()).collect()
}

/// Where the broker put a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    pub partition: i32,
    pub offset: i64,
}

/// The producer's delivery reports, by the index of the event, and the records and
/// record batches it sent, from its statistics.
#[derive(Debug, Default)]
struct Reports {
    delivered: Mutex<BTreeMap<usize, Result<Place, String>>>,
    batching: Mutex<(i64, i64)>,
}

impl ClientContext for Reports {
    fn stats(&self, statistics: Statistics) {
        // Each report's windows cover the time since the last one.
        let (records, batches) = statistics
            .topics
            .values()
            .fold((0, 0), |(r, b), t| (r + t.batchcnt.sum, b + t.batchcnt.cnt));
        if let Ok(mut total) = self.batching.lock() {
            total.0 += records;
            total.1 += batches;
        }
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let outcome = match result {
            Ok(m) => Ok(Place {
                partition: m.partition(),
                offset: m.offset(),
            }),
            Err((error, _)) => Err(error.to_string()),
        };
        if let Ok(mut reports) = self.delivered.lock() {
            reports.insert(index, outcome);
        }
    }
}

/// What a producer did.
#[derive(Debug)]
pub struct Produced {
    /// Where each acknowledged event went, by its index.
    pub placed: Vec<(usize, Place)>,
    /// Records per record batch on average, from the producer's statistics (0 when
    /// none came).
    pub records_per_batch: f64,
}

/// A producer running in the background at a steady rate until the events run out or
/// it is stopped.
#[derive(Debug)]
pub struct SteadyProducer {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    thread: JoinHandle<Result<Produced>>,
}

impl SteadyProducer {
    /// Produces `events` to `topic` at `rate` per second, batching as a real producer
    /// does (linger 20 ms), `acks=all`.
    pub fn start(
        client: ClientConfig,
        topic: &str,
        events: Arc<Vec<(String, String)>>,
        rate: u32,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, sent, topic) = (Arc::clone(&stop), Arc::clone(&sent), topic.to_owned());
            std::thread::spawn(move || produce(client, &topic, &events, rate, &stop, &sent))
        };
        Self { stop, sent, thread }
    }

    /// Events handed to the producer so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Whether it is still sending.
    pub fn running(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Stops it, waits for every delivery report, and returns where each acknowledged
    /// event went; an event the broker refused is an error.
    pub fn finish(self) -> Result<Produced> {
        self.stop.store(true, Ordering::Relaxed);
        self.wait()
    }

    /// Lets it send every event, then as `finish`.
    pub fn wait(self) -> Result<Produced> {
        self.thread
            .join()
            .map_err(|_| "the producer thread panicked")?
    }
}

fn produce(
    mut client: ClientConfig,
    topic: &str,
    events: &[(String, String)],
    rate: u32,
    stop: &AtomicBool,
    sent: &AtomicUsize,
) -> Result<Produced> {
    let producer: BaseProducer<Reports> = client
        .set("linger.ms", "20")
        .set("acks", "all")
        .set("statistics.interval.ms", "500")
        .create_with_context(Reports::default())?;
    let started = Instant::now();
    for (index, (key, value)) in events.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let due = Duration::from_secs_f64(index as f64 / f64::from(rate.max(1)));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let mut record = BaseRecord::with_opaque_to(topic, index)
            .key(key)
            .payload(value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((error, back)) => {
                    // The queue is full: wait for the broker, but not for ever.
                    if started.elapsed() > due + Duration::from_secs(60) {
                        return Err(format!("cannot produce for 60 s: {error}").into());
                    }
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        producer.poll(Duration::ZERO);
        sent.store(index + 1, Ordering::Relaxed);
    }
    producer.flush(Duration::from_secs(60))?;
    // One more statistics report, covering the last batches.
    std::thread::sleep(Duration::from_millis(600));
    producer.poll(Duration::ZERO);
    let context = producer.context();
    let reports = std::mem::take(&mut *context.delivered.lock().map_err(|_| "poisoned")?);
    let (records, batches) = *context.batching.lock().map_err(|_| "poisoned")?;
    let count = sent.load(Ordering::Relaxed);
    if reports.len() != count {
        return Err(format!("{} delivery reports for {count} events", reports.len()).into());
    }
    let mut placed = Vec::with_capacity(count);
    for (index, report) in reports {
        match report {
            Ok(place) => placed.push((index, place)),
            Err(error) => return Err(format!("the broker refused event {index}: {error}").into()),
        }
    }
    Ok(Produced {
        placed,
        records_per_batch: if batches > 0 {
            records as f64 / batches as f64
        } else {
            0.0
        },
    })
}

/// Produces `events` to `topic` as fast as the broker takes them (linger 20 ms, large
/// batches), and waits until all are acknowledged.
pub fn produce_all(client: ClientConfig, topic: &str, events: &[(String, String)]) -> Result<()> {
    let producer: BaseProducer = client
        .clone()
        .set("linger.ms", "20")
        .set("queue.buffering.max.kbytes", "262144")
        .create()?;
    for (key, value) in events {
        let mut record = BaseRecord::to(topic).key(key).payload(value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

/// Produces one message and waits for the broker: where it went. The producer takes
/// messages of up to 4 MB (the topic must too).
pub fn produce_one(client: ClientConfig, topic: &str, key: &str, value: &[u8]) -> Result<Place> {
    let producer: rdkafka::producer::FutureProducer = client
        .clone()
        .set("message.max.bytes", "4000000")
        .create()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let record = rdkafka::producer::FutureRecord::to(topic)
        .key(key)
        .payload(value);
    let delivery = runtime
        .block_on(producer.send(record, Duration::from_secs(30)))
        .map_err(|(e, _)| format!("cannot produce to `{topic}`: {e}"))?;
    Ok(Place {
        partition: delivery.partition,
        offset: delivery.offset,
    })
}
