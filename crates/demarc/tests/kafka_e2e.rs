//! End to end against a real Kafka-protocol broker process (tansu): `demarc run` as a
//! subprocess, events from a real producer, the process killed with SIGKILL mid-stream
//! three times and restarted; every expected alert must be delivered.
//!
//! The broker is found as `$DEMARC_TANSU`, on `PATH`, or in `~/.cargo/bin`
//! (`cargo install tansu --locked --features dynostore,libsql`). Without it these tests
//! fail when `DEMARC_REQUIRE_TANSU` or `CI` is set (`.ci/run` sets it) and are skipped
//! with a warning otherwise.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use demarc_synth::CloudTrailGenerator;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::topic_partition_list::TopicPartitionList;

const TOPIC: &str = "cloudtrail";
const PARTITIONS: i32 = 3;

fn tansu_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DEMARC_TANSU") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = PathBuf::from(std::env::var_os("HOME")?);
        let path = home.join(".cargo/bin/tansu");
        path.is_file().then_some(path)
    })
}

/// The broker, or `None` when the test may be skipped.
fn tansu() -> Option<PathBuf> {
    let found = tansu_binary();
    let required =
        std::env::var_os("DEMARC_REQUIRE_TANSU").is_some() || std::env::var_os("CI").is_some();
    match found {
        Some(path) => Some(path),
        None if required => panic!(
            "the tansu broker is required for the end-to-end tests and was not found: \
             cargo install tansu --locked --features dynostore,libsql (or set DEMARC_TANSU)"
        ),
        None => {
            eprintln!(
                "WARNING: end-to-end Kafka test skipped: tansu not found \
                 (cargo install tansu --locked --features dynostore,libsql)"
            );
            None
        }
    }
}

/// A tansu broker on a free loopback port, killed when dropped.
struct Broker {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start(binary: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("address")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join("tansu.log")).expect("log");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(dir.path())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&address).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            address,
            _dir: dir,
        }
    }

    fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .create()
            .expect("admin client");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let results = runtime
            .block_on(admin.create_topics(
                &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            ))
            .expect("create topics");
        for result in results {
            result.expect("topic created");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Generated CloudTrail events, one JSON document each, keyed by account.
fn events(n: usize) -> Vec<(String, String)> {
    let mut generator = CloudTrailGenerator::new(7).with_violation_rate(0.01);
    (0..n).map(|_| generator.keyed_message()).collect()
}

/// Where the broker acknowledged each event (by its index among those produced), or
/// why it did not: the producer's delivery reports.
#[derive(Default)]
struct Deliveries(Mutex<BTreeMap<usize, Delivery>>);

/// The partition and offset of a message, or the producer's error.
type Delivery = Result<(i32, i64), String>;

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.to_string()),
        };
        if let Ok(mut map) = self.0.lock() {
            map.insert(index, outcome);
        }
    }
}

/// What `demarc backfill` finds in the same events: the reference, each alert with the
/// rule and the indexes of the events it came from.
fn expected_alerts(events: &[&str], dir: &Path) -> BTreeMap<String, (String, Vec<usize>)> {
    let input = dir.join("events.ndjson");
    let mut file = std::fs::File::create(&input).expect("create");
    for value in events {
        writeln!(file, "{value}").expect("write");
    }
    let alerts = dir.join("reference.jsonl");
    let out = common::demarc(&[
        "backfill",
        input.to_str().expect("utf-8"),
        "--alerts",
        alerts.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&alerts).expect("reference alerts");
    text.lines()
        .map(|line| {
            let alert: serde_json::Value = serde_json::from_str(line).expect("an alert");
            let id = alert["alert_id"].as_str().expect("alert_id").to_owned();
            let rule = alert["rule_id"].as_str().expect("rule_id").to_owned();
            let lines = alert["source"]
                .as_array()
                .expect("source")
                .iter()
                .map(|p| p["line"].as_u64().expect("line") as usize - 1)
                .collect();
            (id, (rule, lines))
        })
        .collect()
}

/// What the broker serves at `partition`/`offset`: whether it is `payload`.
fn served(brokers: &str, partition: i32, offset: i64, payload: &str) -> String {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "demarc-e2e-inspect")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    if let Err(error) = list.add_partition_offset(TOPIC, partition, rdkafka::Offset::Offset(offset))
    {
        return format!("cannot ask: {error}");
    }
    if let Err(error) = consumer.assign(&list) {
        return format!("cannot assign: {error}");
    }
    match consumer.poll(Duration::from_secs(10)) {
        Some(Ok(m)) if m.offset() == offset && m.payload() == Some(payload.as_bytes()) => {
            "the broker serves this event there".into()
        }
        Some(Ok(m)) => format!(
            "the broker serves another message there (offset {}, {} bytes)",
            m.offset(),
            m.payload().map_or(0, <[u8]>::len)
        ),
        Some(Err(error)) => format!("fetch failed: {error}"),
        None => "the broker served nothing in 10 s".into(),
    }
}

/// The group's committed offsets, read without joining it.
fn committed(brokers: &str, partitions: i32) -> String {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "demarc-e2e")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(TOPIC, p);
    }
    match consumer.committed_offsets(list, Duration::from_secs(10)) {
        Ok(list) => format!("{:?}", list.to_topic_map()),
        Err(error) => format!("unknown: {error}"),
    }
}

fn alert_ids(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            // The last line may be cut short by SIGKILL; demarc removes it on restart.
            let alert: serde_json::Value = serde_json::from_str(line).ok()?;
            Some(alert["alert_id"].as_str()?.to_owned())
        })
        .collect()
}

/// The restarted process keeps its static group membership (`group.instance.id`), as a
/// container restarted in the same pod does: it gets its partitions back at once
/// instead of waiting for the broker to expire the killed member.
fn write_config(dir: &Path, brokers: &str, alerts: &Path) -> PathBuf {
    let path = dir.join("demarc.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"demarc-e2e\"\ntopics = [\"{TOPIC}\"]\n\
             [kafka.properties]\n\"group.instance.id\" = \"demarc-e2e-1\"\n\
             [batch]\nmax_records = 500\nmax_wait_ms = 50\n\
             [alerts]\nstdout = false\nfile = \"{}\"\n\
             [metrics]\nlisten = \"off\"\n[normalize]\nworkers = 2\n",
            alerts.display()
        ),
    )
    .expect("config");
    path
}

fn start_demarc(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(["run", "--config", config.to_str().expect("utf-8")])
        .env("DEMARC_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("demarc starts")
}

#[test]
fn kill_9_three_times_mid_stream_loses_no_alert() {
    let Some(binary) = tansu() else { return };
    let broker = Broker::start(&binary);
    broker.create_topic(TOPIC, PARTITIONS);
    broker.create_topic("demarc-dead-letter", 1);

    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    let log = dir.path().join("demarc.log");
    let config = write_config(dir.path(), &broker.address, &alerts);

    // A real producer, at a steady 500 events/s, until demarc has been killed three
    // times: every kill lands with more events on the way.
    let events = events(60_000);
    let stop = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let address = broker.address.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            // One message per record batch: tansu 0.6 answers a fetch from an offset
            // inside a batch with the batches that start after it (its dynostore
            // `fetch` keeps the batches whose base offset is at least the one asked
            // for), so a consumer resuming from a commit in the middle of a batch would
            // never see the rest of that batch. A Kafka broker returns the whole batch.
            let producer: BaseProducer<Deliveries> = ClientConfig::new()
                .set("bootstrap.servers", &address)
                .set("linger.ms", "5")
                .set("batch.num.messages", "1")
                .create_with_context(Deliveries::default())
                .expect("producer");
            let started = Instant::now();
            let mut sent = 0;
            for (index, (key, value)) in events.iter().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let due = Duration::from_millis(sent as u64 * 2);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                producer
                    .send(
                        BaseRecord::with_opaque_to(TOPIC, index)
                            .key(key)
                            .payload(value),
                    )
                    .expect("queued");
                producer.poll(Duration::ZERO);
                sent += 1;
            }
            producer.flush(Duration::from_secs(30)).expect("flushed");
            let deliveries = std::mem::take(&mut *producer.context().0.lock().expect("lock"));
            assert_eq!(deliveries.len(), sent, "a delivery report is missing");
            // Only what the broker acknowledged can be expected to alert.
            let failed: Vec<_> = deliveries
                .values()
                .filter_map(|d| d.as_ref().err())
                .collect();
            assert!(failed.is_empty(), "the broker refused events: {failed:?}");
            let produced: Vec<(String, (i32, i64))> = deliveries
                .into_iter()
                .filter_map(|(index, d)| Some((events[index].1.clone(), d.ok()?)))
                .collect();
            produced
        })
    };

    let mut at_kills = Vec::new();
    for kill in 1..=3 {
        let mut child = start_demarc(&config, &log);
        let before = alert_ids(&alerts).len();
        // Kill it once it has delivered something new, so that each kill lands with
        // work in flight.
        let deadline = Instant::now() + Duration::from_secs(60);
        while alert_ids(&alerts).len() <= before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100 * kill));
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        at_kills.push(alert_ids(&alerts).len());
    }
    stop.store(true, Ordering::Relaxed);
    let produced = producer_thread.join().expect("producer");
    let values: Vec<&str> = produced.iter().map(|(v, _)| v.as_str()).collect();
    let expected = expected_alerts(&values, dir.path());
    assert!(
        expected.len() >= 20,
        "only {} expected alerts",
        expected.len()
    );

    let mut child = start_demarc(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(120);
    let missing = loop {
        let seen: BTreeSet<String> = alert_ids(&alerts).into_iter().collect();
        let missing: Vec<&String> = expected.keys().filter(|id| !seen.contains(*id)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Where the missing alerts' events were, and what the group had committed.
    let diagnosis = || {
        let mut text = format!(
            "committed offsets: {}\n",
            committed(&broker.address, PARTITIONS)
        );
        for id in &missing {
            let (rule, events) = &expected[*id];
            text += &format!("missing {rule} {id}:\n");
            for i in events {
                let (payload, (p, o)) = &produced[*i];
                let served = served(&broker.address, *p, *o, payload);
                text += &format!("  event acknowledged at partition {p} offset {o}: {served}\n");
            }
        }
        text + "demarc's log:\n" + &std::fs::read_to_string(&log).unwrap_or_default()
    };
    let missing_text = if missing.is_empty() {
        String::new()
    } else {
        diagnosis()
    };
    // SIGTERM: drain, commit, exit 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    let status = child.wait().expect("exits");
    assert!(missing.is_empty(), "alerts lost; {missing_text}");
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        diagnosis()
    );
    let delivered = alert_ids(&alerts);
    let unexpected: Vec<&String> = delivered
        .iter()
        .filter(|id| !expected.contains_key(*id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "alerts the reference does not have: {unexpected:?}"
    );
    for (n, count) in at_kills.iter().enumerate() {
        assert!(
            *count > 0 && *count < delivered.len(),
            "kill {} did not land mid-stream ({count} of {} alert lines)",
            n + 1,
            delivered.len()
        );
    }
}
