//! The pipeline against librdkafka's in-process mock cluster, which speaks the Kafka
//! protocol: real consumer groups, offsets and commits, at small volumes.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use demarc_detect::RuleSet;
use demarc_lake::Lake;
use demarc_normalize::{Normalizer, Options};
use demarc_sink::FileMode;
use demarc_synth::samples::{Message as Event, attack_samples};

use super::*;
use crate::engine::Settings;

const TOPIC: &str = "audit";

fn rules() -> Arc<RuleSet> {
    static RULES: std::sync::OnceLock<Arc<RuleSet>> = std::sync::OnceLock::new();
    Arc::clone(RULES.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        Arc::new(
            runtime
                .block_on(RuleSet::builtin())
                .expect("built-in rules load"),
        )
    }))
}

/// Sample events with violations: the attack detonations and the GCP export.
fn events() -> Vec<Event> {
    attack_samples().expect("samples")
}

/// The alert ids the rules give for these events read straight from the files.
fn expected_alert_ids(events: &[Event]) -> BTreeSet<String> {
    let mut normalizer = Normalizer::new(Options::default());
    for (_, value) in events {
        normalizer.push(value.as_bytes(), &Origin::file("expected"));
    }
    let batch = normalizer.take_batch().expect("rows");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime
        .block_on(rules().alerts(batch, "now"))
        .expect("rules run")
        .into_iter()
        .map(|a| a.alert_id)
        .collect()
}

fn cluster() -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 2, 1).expect("topic");
    cluster
        .create_topic("demarc-dead-letter", 1, 1)
        .expect("dead-letter topic");
    let brokers = cluster.bootstrap_servers();
    (cluster, brokers)
}

fn produce(brokers: &str, events: &[Event]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for (key, value) in events {
        producer
            .send(BaseRecord::to(TOPIC).key(key).payload(value))
            .expect("queued");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
}

fn settings(brokers: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: brokers.to_owned(),
        group_id: "demarc-test".to_owned(),
        topics: vec![TOPIC.to_owned()],
        properties: BTreeMap::new(),
        batch_records: 7,
        batch_bytes: 16 << 20,
        batch_wait: Duration::from_millis(50),
        dead_letter_topic: "demarc-dead-letter".to_owned(),
    }
}

/// Runs the pipeline until `until` messages are committed (or the time is up).
fn run_until(brokers: &str, alerts: &Path, lake: Option<(&Path, Duration)>, until: u64) -> Summary {
    run_with(&settings(brokers), alerts, lake, until).expect("pipeline runs")
}

fn run_with(
    settings: &KafkaSettings,
    alerts: &Path,
    lake: Option<(&Path, Duration)>,
    until: u64,
) -> Result<Summary> {
    let engine = Engine::new(
        rules(),
        Settings {
            keep_latencies: true,
            keep_rows: lake.is_some(),
            ..Settings::new(2, Options::default())
        },
    );
    let sink = AlertSink::open(None, Some((alerts, FileMode::Append)), 1000).expect("alert file");
    let lake = lake.map(|(path, every)| LakeOutput {
        lake: Lake::open(path, "test").expect("lake"),
        flush_every: Some(every),
    });
    let shared = Arc::clone(&engine.shared);
    let watcher = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        while shared.records_done.load(Ordering::Relaxed) < until && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        shared.stop.store(true, Ordering::Relaxed);
    });
    let summary = run(settings, &engine, sink, None, lake);
    engine.shared.stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    summary
}

/// The offsets the test group has committed on both partitions, and a consumer of the
/// cluster to ask more.
fn committed(brokers: &str) -> (BaseConsumer, TopicPartitionList) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "demarc-test")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition(TOPIC, 0);
    list.add_partition(TOPIC, 1);
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    (consumer, committed)
}

/// Every message on the dead-letter topic, waiting until there are `count`.
fn dead_letters(brokers: &str, count: usize) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "dead-letter-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&["demarc-dead-letter"])
        .expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut messages = Vec::new();
    while messages.len() < count {
        assert!(
            Instant::now() < deadline,
            "{} dead letters arrived of {count}",
            messages.len()
        );
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            messages.push(result.expect("message").detach());
        }
    }
    messages
}

/// A header of a message, as text.
fn header(message: &rdkafka::message::OwnedMessage, name: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn alert_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("alert file")
        .lines()
        .map(|line| {
            let alert: serde_json::Value = serde_json::from_str(line).expect("an alert per line");
            alert["alert_id"].as_str().expect("alert_id").to_owned()
        })
        .collect()
}

#[test]
fn produced_events_become_alerts_and_offsets_are_committed() {
    let (_cluster, brokers) = cluster();
    let events = events();
    let expected = expected_alert_ids(&events);
    assert!(expected.len() >= 10, "the samples hold violations");
    produce(&brokers, &events);
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    let summary = run_until(&brokers, &alerts, None, events.len() as u64);
    assert_eq!(summary.records, events.len() as u64);
    assert_eq!(summary.dead_letters, 0, "no rule failed");
    let got: BTreeSet<String> = alert_ids(&alerts).into_iter().collect();
    assert_eq!(got, expected);
    assert!(summary.commits > 0);
    assert!(
        !summary.latencies_ms.is_empty(),
        "latency measured per alert"
    );

    // Everything is committed: the group starts at the end of every partition.
    let (consumer, committed) = committed(&brokers);
    let mut total = 0;
    for element in committed.elements() {
        let (_, high) = consumer
            .fetch_watermarks(TOPIC, element.partition(), Duration::from_secs(10))
            .expect("watermarks");
        assert_eq!(
            element.offset(),
            Offset::Offset(high),
            "partition {}",
            element.partition()
        );
        total += high;
    }
    assert_eq!(total, events.len() as i64);
}

#[test]
fn consumer_stopped_mid_stream_and_restarted_loses_no_alert() {
    let (_cluster, brokers) = cluster();
    let events = events();
    let expected = expected_alert_ids(&events);
    let (head, tail) = events.split_at(20);
    produce(&brokers, head);
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    // The first run stops (as on SIGTERM) while the stream goes on; the second starts
    // in the same group from what the first committed.
    let first = run_until(&brokers, &alerts, None, head.len() as u64);
    assert_eq!(first.records, head.len() as u64);
    produce(&brokers, tail);
    let before = alert_ids(&alerts).len();
    let second = run_until(&brokers, &alerts, None, tail.len() as u64);
    assert_eq!(
        second.records,
        tail.len() as u64,
        "a clean stop commits everything it read: nothing is read twice"
    );
    assert_eq!(
        first.dead_letters + second.dead_letters,
        0,
        "no rule failed"
    );
    let all = alert_ids(&alerts);
    assert!(all.len() > before, "the second run alerted too");
    let got: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(got, expected, "every alert present after the restart");
    assert_eq!(all.len(), expected.len(), "no alert repeated");
}

#[test]
fn poisoned_message_goes_to_the_dead_letter_topic_and_the_stream_goes_on() {
    let (_cluster, brokers) = cluster();
    let mut events = events();
    let poison = "{\"eventVersion\": \"1.08\", \"eventTime\": oops".to_owned();
    events.insert(3, ("poison".to_owned(), poison.clone()));
    let expected = expected_alert_ids(&events);
    produce(&brokers, &events);
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    let summary = run_until(&brokers, &alerts, None, events.len() as u64);
    assert_eq!(summary.dead_letters, 1);
    let got: BTreeSet<String> = alert_ids(&alerts).into_iter().collect();
    assert_eq!(
        got, expected,
        "the events after the poisoned message alerted"
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "dead-letter-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&["demarc-dead-letter"])
        .expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        assert!(Instant::now() < deadline, "no dead letter arrived");
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            break result.expect("message").detach();
        }
    };
    assert_eq!(message.payload(), Some(poison.as_bytes()));
    assert_eq!(message.key(), Some(b"poison".as_slice()));
    let headers = message.headers().expect("headers");
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| panic!("header {name}"))
    };
    assert_eq!(header("demarc.reason"), "invalid_json");
    assert_eq!(header("demarc.source.topic"), TOPIC);
    let partition: i32 = header("demarc.source.partition")
        .parse()
        .expect("partition");
    let offset: i64 = header("demarc.source.offset").parse().expect("offset");
    assert!((0..2).contains(&partition));
    assert!(offset >= 0);
    assert!(!header("demarc.detail").is_empty());
}

#[test]
fn with_a_lake_offsets_wait_for_the_flush_and_the_events_land_in_parquet() {
    let (_cluster, brokers) = cluster();
    let events = events();
    produce(&brokers, &events);
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    let lake = dir.path().join("lake");
    let summary = run_until(
        &brokers,
        &alerts,
        Some((&lake, Duration::from_secs(1))),
        events.len() as u64,
    );
    assert_eq!(summary.records, events.len() as u64);
    // Batches of 7 messages, but one commit per lake flush.
    let batches = events.len().div_ceil(7) as u64;
    assert!(
        summary.commits < batches,
        "{} commits for {batches} batches",
        summary.commits
    );
    let mut parquet = 0;
    let mut alert_files = 0;
    let mut stack = vec![lake];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("lake folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                assert!(path.to_string_lossy().contains("/events/provider="));
                parquet += 1;
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                alert_files += 1;
            } else {
                panic!("unexpected file in the lake: {}", path.display());
            }
        }
    }
    assert!(parquet >= 2, "events of both providers: {parquet} files");
    assert!(alert_files >= 1);
}

#[test]
fn a_burst_of_garbage_and_a_dead_letter_too_large_for_the_producer_all_reach_the_topic() {
    let (_cluster, brokers) = cluster();
    let mut events = events();
    let garbage: Vec<Event> = (0..40)
        .map(|i| (format!("junk-{i}"), format!("not json {i}")))
        .collect();
    events.splice(2..2, garbage);
    // Over the 100 kB this run lets its producer send: an excerpt goes instead.
    let big = format!("{{\"Records\": [{}", "x".repeat(300_000));
    events.insert(5, ("big".to_owned(), big.clone()));
    let expected = expected_alert_ids(&events);
    produce(&brokers, &events);

    let mut settings = settings(&brokers);
    settings.batch_records = 1000;
    settings.properties.extend([
        // Fewer than the burst: a full queue must wait, not fail.
        ("queue.buffering.max.messages".to_owned(), "10".to_owned()),
        ("message.max.bytes".to_owned(), "100000".to_owned()),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    let summary = run_with(&settings, &alerts, None, events.len() as u64)
        .expect("the dead letters are produced");
    assert_eq!(summary.dead_letters, 41);
    let got: BTreeSet<String> = alert_ids(&alerts).into_iter().collect();
    assert_eq!(got, expected);

    let letters = dead_letters(&brokers, 41);
    let cut: Vec<_> = letters
        .iter()
        .filter(|m| header(m, "demarc.truncated").is_some())
        .collect();
    assert_eq!(cut.len(), 1, "one letter is cut");
    let cut = cut[0];
    assert_eq!(cut.key(), Some(b"big".as_slice()));
    let payload = cut.payload().expect("excerpt");
    assert!(
        payload.len() < 100_000 && payload.len() > 50_000,
        "{}",
        payload.len()
    );
    assert!(
        big.as_bytes().starts_with(payload),
        "the excerpt is the first bytes"
    );
    assert_eq!(
        header(cut, "demarc.original.bytes"),
        Some(big.len().to_string())
    );
    assert_eq!(
        header(cut, "demarc.excerpt.bytes"),
        Some(payload.len().to_string())
    );
    assert_eq!(header(cut, "demarc.source.topic").as_deref(), Some(TOPIC));
    assert!(header(cut, "demarc.source.offset").is_some());
    let whole = letters
        .iter()
        .filter(|m| m.payload().is_some_and(|p| p.starts_with(b"not json")))
        .count();
    assert_eq!(whole, 40, "the small letters go whole");
}

#[test]
fn a_missing_topic_fails_the_start_and_says_which() {
    let (_cluster, brokers) = cluster();
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    let mut missing_letters = settings(&brokers);
    missing_letters.dead_letter_topic = "no-such-dead-letters".to_owned();
    let error = run_with(&missing_letters, &alerts, None, 0).expect_err("no dead-letter topic");
    assert_eq!(
        error.to_string(),
        "the dead-letter topic `no-such-dead-letters` does not exist: create it"
    );
    let mut missing_source = settings(&brokers);
    missing_source.topics = vec!["no-such-topic".to_owned()];
    let error = run_with(&missing_source, &alerts, None, 0).expect_err("no source topic");
    assert_eq!(
        error.to_string(),
        "the topic `no-such-topic` does not exist: create it"
    );
}

#[test]
fn secrets_reach_the_clients_as_given() {
    let mut settings = settings("127.0.0.1:1");
    settings
        .properties
        .insert("sasl.password".to_owned(), "s3cret-value".to_owned());
    for (client, config) in [
        ("consumer", consumer_config(&settings)),
        ("dead-letter producer", dead_letter_config(&settings)),
    ] {
        assert_eq!(
            config.get("sasl.password").expect("set"),
            "s3cret-value",
            "{client}"
        );
    }
}

#[test]
fn a_dead_letter_topic_that_keeps_refusing_stops_the_run_after_bounded_retries() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let (cluster, brokers) = cluster();
    let mut events = events();
    events.insert(1, ("poison".to_owned(), "not json".to_owned()));
    produce(&brokers, &events);
    // From now on every produce request is refused: only the dead letters are produced.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 100],
    );
    let engine = Engine::new(rules(), Settings::new(1, Options::default()));
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = AlertSink::open(
        None,
        Some((&dir.path().join("alerts.jsonl"), FileMode::Append)),
        1000,
    )
    .expect("alert file");
    // A stop in case the run does not end by itself (left running if it does).
    {
        let shared = Arc::clone(&engine.shared);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(60));
            shared.stop.store(true, Ordering::Relaxed);
        });
    }
    let mut settings = settings(&brokers);
    // Each attempt waits for librdkafka's own retries at most this long.
    settings
        .properties
        .insert("message.timeout.ms".to_owned(), "3000".to_owned());
    let started = Instant::now();
    let error = run(&settings, &engine, sink, None, None).expect_err("the run stops");
    let took = started.elapsed();
    let text = demarc_model::error_chain(&error);
    assert!(
        text.starts_with(
            "the dead-letter topic `demarc-dead-letter` did not take a rejected message"
        ),
        "{text}"
    );
    let metrics = engine.metrics.encode();
    assert!(
        metrics.contains(&format!(
            "demarc_dead_letter_retries_total {}",
            DEAD_LETTER_ATTEMPTS - 1
        )),
        "{metrics}"
    );
    // /health says why.
    let problem = engine.metrics.problem().expect("a problem is set");
    assert!(problem.contains("demarc-dead-letter"), "{problem}");
    // Retried with pauses, not at once, and not for ever.
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(45),
        "{took:?}"
    );
    // Nothing after the poisoned message was committed.
    let (_, committed) = committed(&brokers);
    let total: i64 = committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .sum();
    assert!(
        total < events.len() as i64,
        "every message was committed though its dead letter was not produced"
    );
}

mod windows;
