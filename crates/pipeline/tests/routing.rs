//! Routed alerts through the whole pipeline on librdkafka's mock cluster: a sink that
//! is down fills the spool, consumption pauses (the consumer stays in its group), and
//! once the sink is back every alert arrives; the Kafka topic sink gets one record per
//! alert.

#[path = "../../sink/tests/common/mod.rs"]
mod receiver;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use demarc_detect::RuleSet;
use demarc_normalize::Options;
use demarc_pipeline::kafka::{self, AlertTopic, KafkaSettings};
use demarc_pipeline::{Engine, Settings};
use demarc_sink::AlertSink;
use demarc_sink::deliver::Backoff;
use demarc_sink::http::{HttpKind, HttpSink, HttpTarget};
use demarc_sink::notice::BodyFormat;
use demarc_sink::route::Routes;
use demarc_sink::routing::{Routing, RoutingConfig, SinkSpec, Suppression};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use receiver::{Receiver, status, wait_for};

const TOPIC: &str = "audit";
const ALERTS: &str = "demarc-alerts";
const MESSAGES: usize = 300;

fn trail_deleted(n: usize) -> String {
    format!(
        "{{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-01-01T00:00:00Z\",\
         \"eventSource\":\"cloudtrail.amazonaws.com\",\"eventName\":\"DeleteTrail\",\
         \"awsRegion\":\"us-east-1\",\"eventID\":\"event-{n}\",\"recipientAccountId\":\"111122223333\",\
         \"userIdentity\":{{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::111122223333:user/a\"}},\
         \"requestParameters\":{{\"name\":\"trail-{n}\"}}}}"
    )
}

fn rules(dir: &std::path::Path) -> Arc<RuleSet> {
    std::fs::write(
        dir.join("t-trail-deleted.sql"),
        "-- id: t-trail-deleted\n-- title: trail deleted\n-- severity: high\n\
         -- category: logging-disabled\n-- srm-layer: logging\n-- service-models: iaas\n\
         -- attack: T1562.008\n-- dedup: event_id\n-- summary: trail deleted by {event_id}\n\
         SELECT event_id FROM events WHERE operation = 'DeleteTrail'\n",
    )
    .expect("write rule");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    Arc::new(
        runtime
            .block_on(RuleSet::from_dir(dir))
            .expect("rules load"),
    )
}

fn committed(brokers: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "demarc-test")
        .create()
        .expect("consumer");
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition(TOPIC, 0);
    list.add_partition(TOPIC, 1);
    consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed")
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(n) => Some(n),
            _ => None,
        })
        .sum()
}

/// Every record of `topic`, read from the start until none has come for 3 s (30 s
/// for the first: the group's join takes a while).
fn read_all(brokers: &str, topic: &str) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let mut idle = 0;
    while idle < if out.is_empty() { 300 } else { 30 } {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                idle = 0;
                out.push(m.detach());
            }
            _ => idle += 1,
        }
    }
    out
}

/// Every record of `topic`: its key and its JSON value.
fn records(brokers: &str, topic: &str) -> Vec<(String, serde_json::Value)> {
    read_all(brokers, topic)
        .iter()
        .map(|m| {
            (
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                serde_json::from_slice(m.payload().unwrap_or_default()).expect("json"),
            )
        })
        .collect()
}

/// A mock cluster with the source, alert and dead-letter topics, and `messages`
/// DeleteTrail events produced.
fn cluster(
    messages: usize,
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 2, 1).expect("topic");
    cluster.create_topic(ALERTS, 1, 1).expect("topic");
    cluster
        .create_topic("demarc-dead-letter", 1, 1)
        .expect("topic");
    let brokers = cluster.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    for n in 0..messages {
        producer
            .send(
                BaseRecord::to(TOPIC)
                    .key(&format!("k{n}"))
                    .payload(&trail_deleted(n)),
            )
            .expect("queued");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");

    (cluster, brokers)
}

/// A webhook sink to `addr` that retries quickly.
fn webhook(addr: std::net::SocketAddr) -> SinkSpec {
    SinkSpec {
        name: "hook".into(),
        transport: Box::new(HttpSink::new(
            HttpTarget {
                url: format!("http://{addr}/hook"),
                timeout: Duration::from_secs(1),
                headers: Vec::new(),
            },
            HttpKind::Webhook {
                format: BodyFormat::Demarc,
                secret: None,
            },
        )),
        keeps_snoozed: false,
        backoff: Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(500),
        },
    }
}

#[test]
fn a_full_spool_pauses_consumption_and_drops_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir).expect("dir");
    let (_cluster, brokers) = cluster(MESSAGES);
    let settings = KafkaSettings {
        brokers: brokers.clone(),
        group_id: "demarc-test".into(),
        topics: vec![TOPIC.into()],
        properties: BTreeMap::from([
            // Far shorter than the pause: a consumer that stopped polling would be
            // thrown out of its group.
            ("max.poll.interval.ms".to_owned(), "6000".to_owned()),
            ("session.timeout.ms".to_owned(), "6000".to_owned()),
        ]),
        batch_records: 10,
        batch_bytes: 16 << 20,
        batch_wait: Duration::from_millis(20),
        dead_letter_topic: "demarc-dead-letter".into(),
    };
    // The webhook answers 503 (try again later) to every attempt until it is up. (Its
    // port is held by the test's server throughout: a port left free could be taken by
    // another listener, whose answers would mean something else.)
    let up = Arc::new(AtomicBool::new(false));
    let receiver = {
        let up = Arc::clone(&up);
        Receiver::start(move |_| status(if up.load(Ordering::Relaxed) { 200 } else { 503 }))
    };
    let hook = webhook(receiver.addr);
    let topic = SinkSpec {
        name: "siem".into(),
        transport: Box::new(
            AlertTopic::new(&settings, ALERTS, BodyFormat::Ocsf).expect("producer"),
        ),
        keeps_snoozed: false,
        backoff: Backoff::default(),
    };
    let engine = Engine::new(rules(&rules_dir), Settings::new(2, Options::default()));
    let routing = Routing::start(
        RoutingConfig {
            store: dir.path().join("alerts.db"),
            capacity: 40,
            routes: Routes {
                routes: Vec::new(),
                default: vec![0, 1],
            },
            suppression: Suppression::default(),
            sinks: vec![hook, topic],
            grace: Duration::from_secs(1),
        },
        engine.metrics.routing.clone(),
    )
    .expect("routing");
    let runner = {
        let engine = engine.clone();
        let settings = settings.clone();
        std::thread::spawn(move || {
            let sink = AlertSink::open(None, None, 10_000).expect("sink");
            kafka::run(&settings, &engine, sink, Some(routing), None)
        })
    };

    // The spool fills with the webhook's notices and consumption pauses, for longer
    // than max.poll.interval.ms.
    assert!(
        wait_for(Duration::from_secs(30), || engine.metrics.paused.get() == 1),
        "consumption never paused"
    );
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(engine.metrics.paused.get(), 1, "still paused");
    let done = engine.shared.records_done.load(Ordering::Relaxed) as usize;
    assert!(done < MESSAGES, "consumption went on: {done} of {MESSAGES}");
    assert!(committed(&brokers) <= done as i64);
    let depth = engine
        .metrics
        .routing
        .spool_depth
        .get_or_create(&vec![("sink", "hook".to_owned())])
        .get();
    assert!(depth <= 40, "the spool holds at most its capacity: {depth}");
    // The topic sink is not held up by the webhook: it has delivered what was routed.
    let siem = |m: &demarc_sink::metrics::RouteMetrics| {
        (
            m.spool_depth
                .get_or_create(&vec![("sink", "siem".to_owned())])
                .get(),
            m.delivered
                .get_or_create(&vec![("sink", "siem".to_owned())])
                .get(),
        )
    };
    assert!(wait_for(Duration::from_secs(5), || siem(
        &engine.metrics.routing
    )
    .0 == 0));
    assert!(siem(&engine.metrics.routing).1 > 0);

    // The webhook comes up: everything arrives, nothing twice, and consumption ends.
    up.store(true, Ordering::Relaxed);
    assert!(
        wait_for(Duration::from_secs(90), || receiver.delivered_ids().len()
            == MESSAGES
            && engine.shared.records_done.load(Ordering::Relaxed) as usize
                == MESSAGES),
        "{} alerts delivered, {} messages done",
        receiver.delivered_ids().len(),
        engine.shared.records_done.load(Ordering::Relaxed)
    );
    assert!(wait_for(Duration::from_secs(10), || committed(&brokers)
        == MESSAGES as i64));
    assert_eq!(engine.metrics.paused.get(), 0);
    engine.shared.stop.store(true, Ordering::Relaxed);
    let summary = runner.join().expect("runner").expect("run");
    assert_eq!(summary.alerts(), MESSAGES as u64);
    let webhook: BTreeSet<String> = receiver.delivered_ids().into_iter().collect();
    assert_eq!(webhook.len(), MESSAGES);

    // The Kafka sink: one record per alert, keyed by its dedup key, OCSF.
    let confirmed = engine
        .metrics
        .routing
        .delivered
        .get_or_create(&vec![("sink", "siem".to_owned())])
        .get();
    assert_eq!(
        confirmed, MESSAGES as u64,
        "the topic confirmed every alert"
    );
    let on_topic = records(&brokers, ALERTS);
    let ids: BTreeSet<String> = on_topic
        .iter()
        .map(|(_, v)| v["finding_info"]["uid"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(on_topic.len(), MESSAGES, "one record per alert");
    assert_eq!(ids, webhook, "the same alerts on both sinks");
    assert!(
        on_topic
            .iter()
            .all(|(key, v)| *key == v["metadata"]["correlation_uid"] && v["class_uid"] == 2004)
    );
}

#[test]
fn an_alert_the_sink_refuses_goes_to_the_dead_letter_topic_with_the_response() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir).expect("dir");
    let (_cluster, brokers) = cluster(3);
    let receiver = Receiver::start(|n| match n {
        0 => receiver::Reply::Status {
            status: 422,
            body: "{\"error\":\"schema mismatch\"}".into(),
            headers: Vec::new(),
        },
        _ => status(200),
    });
    let settings = KafkaSettings {
        brokers: brokers.clone(),
        group_id: "demarc-test".into(),
        topics: vec![TOPIC.into()],
        properties: BTreeMap::new(),
        batch_records: 10,
        batch_bytes: 16 << 20,
        batch_wait: Duration::from_millis(20),
        dead_letter_topic: "demarc-dead-letter".into(),
    };
    let engine = Engine::new(rules(&rules_dir), Settings::new(1, Options::default()));
    let routing = Routing::start(
        RoutingConfig {
            store: dir.path().join("alerts.db"),
            capacity: 100,
            routes: Routes {
                routes: Vec::new(),
                default: vec![0],
            },
            suppression: Suppression::default(),
            sinks: vec![webhook(receiver.addr)],
            grace: Duration::from_secs(1),
        },
        engine.metrics.routing.clone(),
    )
    .expect("routing");
    let runner = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            let sink = AlertSink::open(None, None, 100).expect("sink");
            kafka::run(&settings, &engine, sink, Some(routing), None)
        })
    };
    assert!(wait_for(Duration::from_secs(30), || {
        receiver.delivered_ids().len() == 2 && engine.metrics.dead_letters.get() == 1
    }));
    engine.shared.stop.store(true, Ordering::Relaxed);
    runner.join().expect("runner").expect("run");

    let refused = receiver.requests()[0].headers["webhook-id"].clone();
    let letters = read_all(&brokers, "demarc-dead-letter");
    let letter = letters.first().expect("a dead letter");
    let headers: BTreeMap<String, String> =
        rdkafka::message::Headers::iter(letter.headers().expect("headers"))
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect();
    assert_eq!(headers["demarc.reason"], "alert_refused");
    assert_eq!(headers["demarc.sink"], "hook");
    assert_eq!(headers["demarc.status"], "422");
    assert_eq!(headers["demarc.detail"], "{\"error\":\"schema mismatch\"}");
    assert_eq!(headers["demarc.alert_id"], refused);
    assert_eq!(headers["demarc.source.topic"], TOPIC);
    let alert: serde_json::Value =
        serde_json::from_slice(letter.payload().expect("payload")).expect("the alert");
    assert_eq!(alert["alert_id"], refused.as_str());
}
