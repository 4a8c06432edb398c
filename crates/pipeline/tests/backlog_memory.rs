//! Memory with a backlog, under a counting allocator: a consumer that starts behind by
//! many megabytes holds a few batches of `batch_bytes` at a time, not the backlog.
//!
//! One test per binary: the allocator counts the whole process, and its peak is never
//! reset. librdkafka's own buffers (C allocations, bounded by
//! `queued.max.messages.kbytes`) are not counted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use demarc_detect::RuleSet;
use demarc_normalize::Options;
use demarc_pipeline::kafka::{KafkaSettings, run};
use demarc_pipeline::{Engine, Settings};
use demarc_sink::AlertSink;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const TOPIC: &str = "audit";
/// librdkafka's mock broker keeps about 5 MB per partition: the backlog stays below.
const MESSAGES: usize = 16;
/// CloudTrail files of about 250 kB.
const EVENTS_PER_MESSAGE: usize = 200;
const BATCH_BYTES: usize = 256 << 10;

#[test]
fn a_backlog_is_read_in_batches_of_bounded_bytes() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).expect("topic");
    cluster
        .create_topic("demarc-dead-letter", 1, 1)
        .expect("dead-letter topic");
    let brokers = cluster.bootstrap_servers();

    // The backlog, produced before the consumer starts.
    let mut generator = demarc_synth::CloudTrailGenerator::new(5);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("message.max.bytes", "4000000")
        .create()
        .expect("producer");
    let mut backlog = 0;
    for _ in 0..MESSAGES {
        let file = generator.records_file(EVENTS_PER_MESSAGE);
        backlog += file.len();
        producer
            .send(BaseRecord::<(), _>::to(TOPIC).payload(&file))
            .expect("queued");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
    drop(producer);

    let rules = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(RuleSet::builtin())
        .expect("rules");
    let engine = Engine::new(Arc::new(rules), Settings::new(1, Options::default()));
    let settings = KafkaSettings {
        brokers,
        group_id: "demarc-memory".to_owned(),
        topics: vec![TOPIC.to_owned()],
        properties: BTreeMap::new(),
        batch_records: 10_000,
        batch_bytes: BATCH_BYTES,
        batch_wait: Duration::from_millis(25),
        dead_letter_topic: "demarc-dead-letter".to_owned(),
    };
    let shared = Arc::clone(&engine.shared);
    let watcher = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(300);
        while shared.records_done.load(Ordering::Relaxed) < MESSAGES as u64
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        shared.stop.store(true, Ordering::Relaxed);
    });

    let _profiler = dhat::Profiler::builder().testing().build();
    let summary = run(
        &settings,
        &engine,
        AlertSink::open(None, None, 1000).expect("no outputs"),
        None,
        None,
    )
    .expect("the run");
    let peak = dhat::HeapStats::get().max_bytes;
    watcher.join().expect("watcher");

    assert_eq!(
        summary.records, MESSAGES as u64,
        "the whole backlog was read"
    );
    assert_eq!(
        summary.stats.events_in,
        (MESSAGES * EVENTS_PER_MESSAGE) as u64
    );
    eprintln!("backlog {backlog} bytes, batches of at most {BATCH_BYTES} bytes: peak {peak} bytes");
    // A batch in the worker and one being filled, each normalized to a few times its
    // size, with the rules' working memory. Measured: 1.7 MB; 8.7 MB when batches are
    // cut by count only (the whole backlog at once).
    assert!(
        peak < 12 * BATCH_BYTES,
        "peak {peak} bytes for a backlog of {backlog} bytes in batches of {BATCH_BYTES}"
    );
}
