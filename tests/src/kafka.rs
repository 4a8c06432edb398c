//! Apache Kafka for tests and benchmarks: one KRaft node (broker and controller in one
//! JVM) on free loopback ports, in a temporary folder, killed when dropped.
//!
//! The broker is `org.apache.kafka:kafka_2.13` with its runtime dependencies, resolved
//! by Maven from `tests/kafka/pom.xml` into `~/.m2` once; the class path is cached in
//! `~/.cache/demarc/kafka/`. `DEMARC_KAFKA_CLASSPATH` (a class path, or a file holding
//! one) skips Maven; `JAVA_HOME` picks the Java (17 or later).

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::{Result, cache_dir, free_port};

/// The Kafka release the tests run, as in `tests/kafka/pom.xml`.
pub const VERSION: &str = "4.1.1";

/// A KRaft cluster id: 16 bytes, base64url without padding. Each broker has its own
/// folder, so one fixed id serves them all.
const CLUSTER_ID: &str = "ZGVtYXJjLXRlc3QtYnJrMQ";

/// The one user of the SASL/PLAIN listener, and its password.
pub const SASL_USER: &str = "demarc";
pub const SASL_PASSWORD: &str = "demarc-test-secret";

/// One running broker.
#[derive(Debug)]
pub struct Kafka {
    child: Child,
    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub bootstrap: String,
    /// A second listener that wants SASL/PLAIN: [`SASL_USER`] with [`SASL_PASSWORD`].
    pub sasl_bootstrap: String,
    dir: tempfile::TempDir,
}

impl Kafka {
    /// Starts a broker and waits until it answers metadata requests. Its ports are
    /// picked free just before it binds them, so another process may take one first:
    /// a broker that fails to start is tried again, three times in all.
    pub fn start() -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::try_start() {
                Ok(kafka) => return Ok(kafka),
                Err(error) if attempt >= 3 => return Err(error),
                Err(error) => {
                    eprintln!(
                        "Kafka did not start (attempt {attempt} of 3), trying again: {error}"
                    );
                    attempt += 1;
                }
            }
        }
    }

    fn try_start() -> Result<Self> {
        let classpath = classpath()?;
        let java = java()?;
        let dir = tempfile::Builder::new().prefix("demarc-kafka-").tempdir()?;
        let port = free_port()?;
        let controller = free_port()?;
        let sasl = free_port()?;
        let properties = dir.path().join("server.properties");
        std::fs::write(
            &properties,
            format!(
                "process.roles=broker,controller\n\
                 node.id=1\n\
                 controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl},\
                 CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl}\n\
                 controller.listener.names=CONTROLLER\n\
                 listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,\
                 SASL_PLAINTEXT:SASL_PLAINTEXT\n\
                 sasl.enabled.mechanisms=PLAIN\n\
                 listener.name.sasl_plaintext.plain.sasl.jaas.config=\
                 org.apache.kafka.common.security.plain.PlainLoginModule required \
                 user_{SASL_USER}=\"{SASL_PASSWORD}\";\n\
                 inter.broker.listener.name=PLAINTEXT\n\
                 log.dirs={}\n\
                 num.partitions=1\n\
                 auto.create.topics.enable=false\n\
                 offsets.topic.replication.factor=1\n\
                 offsets.topic.num.partitions=4\n\
                 transaction.state.log.replication.factor=1\n\
                 transaction.state.log.min.isr=1\n\
                 share.coordinator.state.topic.replication.factor=1\n\
                 share.coordinator.state.topic.min.isr=1\n\
                 group.initial.rebalance.delay.ms=0\n",
                dir.path().join("data").display()
            ),
        )?;
        let log_path = dir.path().join("kafka.log");
        let log = std::fs::File::create(&log_path)?;
        let log4j = Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka/log4j2.properties");
        let jvm = |main: &str| {
            let mut command = Command::new(&java);
            command
                .arg("-Xms128m")
                .arg("-Xmx768m")
                .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
                .arg("-cp")
                .arg(&classpath)
                .arg(main)
                .current_dir(dir.path());
            command
        };
        let format = jvm("kafka.tools.StorageTool")
            .args(["format", "--standalone", "-t", CLUSTER_ID, "-c"])
            .arg(&properties)
            .output()?;
        if !format.status.success() {
            return Err(format!(
                "cannot format the Kafka storage ({}): {}{}",
                format.status,
                String::from_utf8_lossy(&format.stdout),
                String::from_utf8_lossy(&format.stderr)
            )
            .into());
        }
        let child = jvm("kafka.Kafka")
            .arg(&properties)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", java.display()))?;
        let mut kafka = Self {
            child,
            bootstrap: format!("127.0.0.1:{port}"),
            sasl_bootstrap: format!("127.0.0.1:{sasl}"),
            dir,
        };
        kafka.wait_ready(Duration::from_secs(90))?;
        kafka.warm_up_groups(Duration::from_secs(90))?;
        Ok(kafka)
    }

    /// Commits once for a throw-away group, so that the broker creates its offsets
    /// topic and loads its group coordinator now: the first consumer group of a test
    /// or a benchmark otherwise waits seconds for it, which would be counted against
    /// whatever is measured first.
    fn warm_up_groups(&self, limit: Duration) -> Result<()> {
        const TOPIC: &str = "demarc-harness-warm-up";
        self.create_topic(TOPIC, 1)?;
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", "demarc-harness-warm-up")
            .set("enable.auto.commit", "false")
            .create()?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(TOPIC, 0, Offset::Offset(0))?;
        let deadline = Instant::now() + limit;
        loop {
            match consumer.commit(&list, rdkafka::consumer::CommitMode::Sync) {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() > deadline => {
                    return Err(format!(
                        "Kafka's group coordinator did not answer within {limit:?}: {error}"
                    )
                    .into());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "Kafka exited at start-up ({status}); its log:\n{}",
                    self.log()
                )
                .into());
            }
            if TcpStream::connect(&self.bootstrap).is_ok() {
                let consumer: BaseConsumer = self.client().create()?;
                if let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(5))
                    && !metadata.brokers().is_empty()
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Kafka did not answer on {} within {limit:?}; its log:\n{}",
                    self.bootstrap,
                    self.log()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A client configuration pointing at this broker.
    pub fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }

    /// Creates a topic with one replica.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.create_topic_with(name, partitions, &[])
    }

    /// Creates a topic with topic-level settings (`max.message.bytes`…).
    pub fn create_topic_with(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (key, value) in configs {
            topic = topic.set(key, value);
        }
        let admin: AdminClient<DefaultClientContext> = self.client().create()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let results = runtime.block_on(admin.create_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))?;
        for result in results {
            result.map_err(|(topic, e)| format!("cannot create topic `{topic}`: {e}"))?;
        }
        // Wait until every partition has a leader, so that the first produce succeeds.
        let consumer: BaseConsumer = self.client().create()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let metadata = consumer.fetch_metadata(Some(name), Duration::from_secs(5))?;
            let ready = metadata.topics().iter().any(|t| {
                t.name() == name
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("topic `{name}` has no leader after 30 s").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every message of `topic` (all partitions), read from the start until none has
    /// come for `quiet`.
    pub fn read_all(
        &self,
        topic: &str,
        quiet: Duration,
    ) -> Result<Vec<rdkafka::message::OwnedMessage>> {
        let consumer: BaseConsumer = self
            .client()
            .set(
                "group.id",
                format!("demarc-tests-reader-{}", std::process::id()),
            )
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()?;
        consumer.subscribe(&[topic])?;
        let mut messages = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                messages.push(message?.detach());
                last = Instant::now();
            }
        }
        Ok(messages)
    }

    /// The offsets `group` has committed on `topic` (the next offset to read, per
    /// partition), read without joining the group. Partitions without a commit are
    /// left out.
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> Result<BTreeMap<i32, i64>> {
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition(topic, p);
        }
        let committed = consumer.committed_offsets(list, Duration::from_secs(10))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    /// The end offset of each partition of `topic`.
    pub fn high_watermarks(&self, topic: &str, partitions: i32) -> Result<BTreeMap<i32, i64>> {
        let consumer: BaseConsumer = self.client().create()?;
        let mut highs = BTreeMap::new();
        for p in 0..partitions {
            let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
            highs.insert(p, high);
        }
        Ok(highs)
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("kafka.log")).unwrap_or_default();
        // The end says why; the start is the configuration dump.
        let start = text.len().saturating_sub(20_000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Java to run the broker with: `$JAVA_HOME/bin/java`, or `java` on `PATH`.
fn java() -> Result<PathBuf> {
    let java = std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin/java"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("java"));
    match Command::new(&java).arg("-version").output() {
        Ok(out) if out.status.success() => Ok(java),
        _ => Err(format!(
            "Java 17 or later is needed to run Apache Kafka for the end-to-end tests and was \
             not found as `{}`: install it (Debian: apt-get install openjdk-17-jre-headless) \
             or set JAVA_HOME",
            java.display()
        )
        .into()),
    }
}

/// The broker's class path, resolved once per machine (see the module doc).
pub fn classpath() -> Result<String> {
    static RESOLVING: Mutex<()> = Mutex::new(());
    if let Some(given) = std::env::var_os("DEMARC_KAFKA_CLASSPATH") {
        let given = PathBuf::from(given);
        return if given.is_file() {
            Ok(std::fs::read_to_string(&given)?.trim().to_owned())
        } else {
            Ok(given.to_string_lossy().into_owned())
        };
    }
    let _one_at_a_time = RESOLVING
        .lock()
        .map_err(|_| "a test panicked while resolving Kafka")?;
    let cached = cache_dir().join(format!("kafka/classpath-{VERSION}.txt"));
    if let Ok(text) = std::fs::read_to_string(&cached) {
        let text = text.trim().to_owned();
        // A cleaned ~/.m2 leaves a stale list: resolve again.
        if !text.is_empty() && std::env::split_paths(&text).all(|jar| jar.is_file()) {
            return Ok(text);
        }
    }
    let dir = cached
        .parent()
        .ok_or("the Kafka cache has no parent folder")?;
    std::fs::create_dir_all(dir)?;
    let pom = Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka/pom.xml");
    let partial = dir.join(format!("classpath-{VERSION}.txt.{}", std::process::id()));
    let out = Command::new("mvn")
        .args(["-B", "-q", "-f"])
        .arg(&pom)
        .arg("dependency:build-classpath")
        .arg(format!("-Dmdep.outputFile={}", partial.display()))
        .output()
        .map_err(|e| {
            format!(
                "Maven (`mvn`) is needed once to fetch Apache Kafka {VERSION} for the end-to-end \
                 tests and could not be run ({e}): install it (Debian: apt-get install maven), or \
                 set DEMARC_KAFKA_CLASSPATH to the broker's class path"
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "Maven could not resolve Apache Kafka {VERSION} from {} ({}):\n{}{}",
            pom.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    std::fs::rename(&partial, &cached)?;
    Ok(std::fs::read_to_string(&cached)?.trim().to_owned())
}
