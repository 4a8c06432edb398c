//! `demarc bench-stream` (hidden): the streaming benchmark, three figures in one run.
//!
//! (a) the pipeline alone: pre-loaded messages through normalize, every rule and the
//!     alert file, no broker;
//! (b) a bare rdkafka consumer draining the same messages from a local tansu broker:
//!     that broker's ceiling on this machine;
//! (c) `demarc run` (this binary, as a subprocess) draining them end to end, as a
//!     fraction of (b), with its peak RSS while the whole backlog waits;
//!
//! plus latency percentiles at a fixed offered rate: produce to receive for a bare
//! consumer (the producer's and the broker's share), produce to alert for the pipeline,
//! and receive to alert (demarc's own share).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use demarc_model::Origin;
use demarc_synth::CloudTrailGenerator;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Serialize;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::run::load_rules;
use crate::stream::{Pipeline, Print, Record, Shared};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The tansu binary (default: `tansu` on PATH or in ~/.cargo/bin)
    #[arg(long)]
    tansu: Option<PathBuf>,
    /// Messages (one CloudTrail event each) for (a), (b) and (c)
    #[arg(long, default_value_t = 300_000)]
    messages: usize,
    /// Partitions of the benchmark topics
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Offered rate of the latency run, events/s
    #[arg(long, default_value_t = 5_000)]
    rate: u32,
    /// Length of the latency run
    #[arg(long, default_value_t = 20)]
    latency_seconds: u64,
    /// `batch.max_wait_ms` of the latency run (default: demarc's default)
    #[arg(long)]
    batch_wait_ms: Option<u64>,
    /// Write the figures as JSON here
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    messages: usize,
    message_bytes: usize,
    pipeline_events_per_second: f64,
    pipeline_small_batch_records: usize,
    pipeline_small_batch_events_per_second: f64,
    pipeline_small_batch_ms: f64,
    produce_messages_per_second: f64,
    bare_consumer_messages_per_second: f64,
    bare_consumer_defaults_messages_per_second: f64,
    demarc_run_messages_per_second: f64,
    demarc_run_fraction_of_bare: f64,
    demarc_run_peak_rss_bytes: u64,
    latency_rate: u32,
    latency_bare_p50_ms: i64,
    latency_bare_p99_ms: i64,
    latency_alerts: usize,
    latency_p50_ms: i64,
    latency_p99_ms: i64,
    latency_max_ms: i64,
    latency_processing_p50_ms: i64,
    latency_processing_p99_ms: i64,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let tansu = match &args.tansu {
        Some(path) => path.clone(),
        None => find_tansu()
            .context("tansu not found: cargo install tansu --locked --features dynostore,libsql")?,
    };
    let mut report = Report {
        messages: args.messages,
        ..Report::default()
    };
    eprintln!("generating {} CloudTrail events", args.messages);
    let events = generate(args.messages, 0.001, 11);
    report.message_bytes = events.iter().map(|(_, v)| v.len()).sum::<usize>() / events.len().max(1);
    let dir = tempfile::tempdir()?;
    let rules = Arc::new(load_rules(None)?);

    // (a) The pipeline alone, in full batches; then in the small batches a steady
    // stream at the latency run's rate gives (what arrives in one batch wait), which
    // shows the fixed cost of a rule run.
    {
        let config = Config::plain("unused:9092", "bench", vec!["bench".into()]);
        let full = config.batch_records;
        let small = (u128::from(args.rate) * config.batch_wait.as_millis() / 1000).max(1) as usize;
        let (rate, alerts, _) = pipeline_alone(&rules, &events, full, dir.path())?;
        report.pipeline_events_per_second = rate;
        eprintln!(
            "(a) pipeline alone: {} events in batches of {full} = {rate:.0} events/s ({alerts} alerts)",
            events.len()
        );
        let sample = &events[..events.len().min(small * 400)];
        let (rate, _, per_batch_ms) = pipeline_alone(&rules, sample, small, dir.path())?;
        report.pipeline_small_batch_records = small;
        report.pipeline_small_batch_events_per_second = rate;
        report.pipeline_small_batch_ms = per_batch_ms;
        eprintln!(
            "(a) pipeline alone: {} events in batches of {small} = {rate:.0} events/s, \
             {per_batch_ms:.1} ms per batch per worker",
            sample.len()
        );
    }

    let broker = Tansu::start(&tansu, dir.path())?;
    broker.create_topic("bench", args.partitions)?;
    broker.create_topic("bench-latency", args.partitions)?;
    broker.create_topic("bench-latency-bare", args.partitions)?;
    broker.create_topic("demarc-dead-letter", 1)?;
    let started = Instant::now();
    produce(&broker.address, "bench", &events, None)?;
    report.produce_messages_per_second = events.len() as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "produced {} messages to tansu at {:.0}/s",
        events.len(),
        report.produce_messages_per_second
    );

    // (b) A bare consumer, with demarc's consumer settings (the ceiling demarc is held
    // to) and with librdkafka's defaults.
    let same = crate::stream::consumer_config(&Config::plain(
        &broker.address,
        "bench-bare",
        vec!["bench".into()],
    ));
    let (rate, bytes, seconds) = drain(same, events.len())?;
    report.bare_consumer_messages_per_second = rate;
    eprintln!(
        "(b) bare rdkafka consumer, demarc's settings: {} messages ({} MB) in {seconds:.2}s = {rate:.0}/s",
        events.len(),
        bytes / 1_000_000,
    );
    let mut defaults = ClientConfig::new();
    defaults
        .set("bootstrap.servers", &broker.address)
        .set("group.id", "bench-bare-defaults")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let (rate, _, seconds) = drain(defaults, events.len())?;
    report.bare_consumer_defaults_messages_per_second = rate;
    eprintln!("(b') bare rdkafka consumer, librdkafka's defaults: {seconds:.2}s = {rate:.0}/s");

    // (c) `demarc run`, a subprocess, on the same backlog.
    {
        let metrics_port = free_port()?;
        let config = dir.path().join("bench.toml");
        std::fs::write(
            &config,
            format!(
                "[kafka]\nbrokers = \"{}\"\ngroup_id = \"bench-demarc\"\ntopics = [\"bench\"]\n\
                 [alerts]\nstdout = false\nfile = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
                broker.address,
                dir.path().join("alerts-c.jsonl").display()
            ),
        )?;
        let started = Instant::now();
        let mut child = Command::new(std::env::current_exe()?)
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut peak_rss = 0;
        let done = loop {
            if let Some(status) = child.try_wait()? {
                bail!("demarc run exited early: {status}");
            }
            peak_rss = peak_rss.max(rss_of(child.id()).unwrap_or(0));
            let consumed = scrape(metrics_port, "demarc_messages_total").unwrap_or(0.0);
            if consumed as usize >= events.len() {
                break started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!(
                    "demarc run consumed {consumed} of {} messages",
                    events.len()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        peak_rss = peak_rss.max(rss_of(child.id()).unwrap_or(0));
        stop(&mut child)?;
        report.demarc_run_messages_per_second = events.len() as f64 / done.as_secs_f64();
        report.demarc_run_fraction_of_bare =
            report.demarc_run_messages_per_second / report.bare_consumer_messages_per_second;
        report.demarc_run_peak_rss_bytes = peak_rss;
        eprintln!(
            "(c) demarc run: {} messages in {:.2}s = {:.0}/s, {:.0}% of (b); peak RSS {} MiB",
            events.len(),
            done.as_secs_f64(),
            report.demarc_run_messages_per_second,
            report.demarc_run_fraction_of_bare * 100.0,
            peak_rss >> 20
        );
    }

    // Latency at a fixed offered rate, in-process: first a bare consumer on a fresh
    // topic, then the pipeline on another, with the same events.
    let total = (u64::from(args.rate) * args.latency_seconds) as usize;
    let latency_events = generate(total, 0.02, 12);
    {
        let config = crate::stream::consumer_config(&Config::plain(
            &broker.address,
            "bench-latency-bare",
            vec!["bench-latency-bare".into()],
        ));
        let mut latencies = bare_latency(
            config,
            &broker.address,
            "bench-latency-bare",
            &latency_events,
            args.rate,
        )?;
        latencies.sort_unstable();
        report.latency_bare_p50_ms = percentile(&latencies, 0.5);
        report.latency_bare_p99_ms = percentile(&latencies, 0.99);
        eprintln!(
            "bare consumer at {} events/s for {}s, produce to receive: p50 {} ms, p99 {} ms",
            args.rate, args.latency_seconds, report.latency_bare_p50_ms, report.latency_bare_p99_ms
        );
    }
    {
        let mut config = Config::plain(
            &broker.address,
            "bench-latency",
            vec!["bench-latency".into()],
        );
        config.alerts_stdout = false;
        config.alerts_file = Some(dir.path().join("alerts-latency.jsonl"));
        if let Some(ms) = args.batch_wait_ms {
            config.batch_wait = Duration::from_millis(ms);
        }
        let batch_wait_ms = config.batch_wait.as_millis();
        let shared = Arc::new(Shared::default());
        let pipeline = Pipeline {
            config,
            rules: Arc::clone(&rules),
            metrics: Arc::new(Metrics::new()),
            shared: Arc::clone(&shared),
            print: Print::Json,
            keep_latencies: true,
        };
        let runner = std::thread::spawn(move || pipeline.run());
        // Let the consumer join its group before the clock starts.
        std::thread::sleep(Duration::from_secs(3));
        produce(
            &broker.address,
            "bench-latency",
            &latency_events,
            Some(args.rate),
        )?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while shared.messages_done.load(Ordering::Relaxed) < total as u64
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        shared.stop.store(true, Ordering::Relaxed);
        let mut summary = runner
            .join()
            .map_err(|_| anyhow!("the pipeline thread panicked"))??;
        let latencies = &mut summary.latencies_ms;
        if latencies.is_empty() {
            bail!("no alert fired in the latency run");
        }
        latencies.sort_unstable();
        summary.processing_ms.sort_unstable();
        report.latency_rate = args.rate;
        report.latency_alerts = latencies.len();
        report.latency_p50_ms = percentile(latencies, 0.5);
        report.latency_p99_ms = percentile(latencies, 0.99);
        report.latency_max_ms = percentile(latencies, 1.0);
        report.latency_processing_p50_ms = percentile(&summary.processing_ms, 0.5);
        report.latency_processing_p99_ms = percentile(&summary.processing_ms, 0.99);
        eprintln!(
            "pipeline at {} events/s for {}s, batches cut after {} ms: {} alerts; \
             produce to alert p50 {} ms, p99 {} ms, max {} ms; receive to alert p50 {} ms, p99 {} ms",
            args.rate,
            args.latency_seconds,
            batch_wait_ms,
            latencies.len(),
            report.latency_p50_ms,
            report.latency_p99_ms,
            report.latency_max_ms,
            report.latency_processing_p50_ms,
            report.latency_processing_p99_ms,
        );
    }

    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(path) = &args.report {
        crate::output::write_json(path, &report)?;
    }
    Ok(())
}

/// Drains `expected` messages of topic `bench` with a bare consumer; messages/s,
/// payload bytes and seconds, from subscribing to the last message.
fn drain(config: ClientConfig, expected: usize) -> Result<(f64, usize, f64)> {
    let consumer: BaseConsumer = config.create()?;
    let started = Instant::now();
    consumer.subscribe(&["bench"])?;
    let mut received = 0usize;
    let mut bytes = 0usize;
    while received < expected {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the bare consumer got {received} of {expected} messages");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            bytes += rdkafka::Message::payload(&message).map_or(0, <[u8]>::len);
            received += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok((received as f64 / seconds, bytes, seconds))
}

/// Runs `events` through normalize, every rule and an alert file in batches of
/// `batch_records`, without a broker: events/s, alerts, and the time one worker spends
/// on a batch.
fn pipeline_alone(
    rules: &Arc<demarc_detect::RuleSet>,
    events: &[(String, String)],
    batch_records: usize,
    dir: &Path,
) -> Result<(f64, u64, f64)> {
    let mut config = Config::plain("unused:9092", "bench", vec!["bench".into()]);
    config.alerts_stdout = false;
    config.alerts_file = Some(dir.join(format!("alerts-a-{batch_records}.jsonl")));
    let workers = config.workers;
    let topic: Arc<str> = "bench".into();
    let batches: Vec<Vec<Record>> = events
        .chunks(batch_records)
        .enumerate()
        .map(|(b, chunk)| {
            chunk
                .iter()
                .enumerate()
                .map(|(i, (key, value))| Record {
                    origin: Origin::kafka(Arc::clone(&topic), 0, (b * batch_records + i) as i64),
                    key: Some(key.clone().into_bytes()),
                    payload: value.clone().into_bytes(),
                    produced_ms: None,
                    received: Instant::now(),
                })
                .collect()
        })
        .collect();
    let count = batches.len();
    let pipeline = Pipeline {
        config,
        rules: Arc::clone(rules),
        metrics: Arc::new(Metrics::new()),
        shared: Arc::new(Shared::default()),
        print: Print::Json,
        keep_latencies: false,
    };
    let started = Instant::now();
    let summary = pipeline.run_batches(batches)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((
        summary.stats.events_in as f64 / seconds,
        summary.alerts_by_rule.values().sum(),
        seconds * 1000.0 * workers as f64 / count.max(1) as f64,
    ))
}

/// The value at quantile `q` of sorted `values` (0 when empty).
fn percentile(values: &[i64], q: f64) -> i64 {
    if values.is_empty() {
        return 0;
    }
    values[((values.len() - 1) as f64 * q).round() as usize]
}

/// Produce-to-receive latencies in milliseconds of a bare consumer on `topic` while
/// `events` are produced at `rate`: what the producer and the broker alone take.
fn bare_latency(
    config: ClientConfig,
    brokers: &str,
    topic: &str,
    events: &[(String, String)],
    rate: u32,
) -> Result<Vec<i64>> {
    let consumer: BaseConsumer = config.create()?;
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.assignment()?.count() == 0 {
        if Instant::now() > deadline {
            bail!("the bare consumer got no partitions of `{topic}` in 30 s");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message?;
        }
    }
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| produce(brokers, topic, events, Some(rate)));
        let mut latencies = Vec::with_capacity(events.len());
        let deadline = Instant::now() + Duration::from_secs(120 + events.len() as u64 / 1000);
        while latencies.len() < events.len() && Instant::now() < deadline {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message?;
                let now_ms = chrono::Utc::now().timestamp_millis();
                if let Some(ts) = rdkafka::Message::timestamp(&message).to_millis() {
                    latencies.push((now_ms - ts).max(0));
                }
            }
        }
        producer
            .join()
            .map_err(|_| anyhow!("the producer thread panicked"))??;
        if latencies.len() < events.len() {
            bail!(
                "the bare consumer got {} of {} messages",
                latencies.len(),
                events.len()
            );
        }
        Ok(latencies)
    })
}

fn generate(n: usize, violation_rate: f64, seed: u64) -> Vec<(String, String)> {
    let mut generator = CloudTrailGenerator::new(seed).with_violation_rate(violation_rate);
    (0..n).map(|_| generator.keyed_message()).collect()
}

/// Produces `events`, at `rate` per second if given, as fast as possible otherwise.
fn produce(
    brokers: &str,
    topic: &str,
    events: &[(String, String)],
    rate: Option<u32>,
) -> Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // At a fixed rate, librdkafka's default linger (5 ms), as most producers run.
        .set("linger.ms", if rate.is_some() { "5" } else { "20" })
        .set("queue.buffering.max.kbytes", "262144")
        .create()?;
    let started = Instant::now();
    for (n, (key, value)) in events.iter().enumerate() {
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(n as f64 / f64::from(rate));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
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

fn find_tansu() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin")))
        .map(|dir| dir.join("tansu"))
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Tansu {
    child: Child,
    address: String,
}

impl Tansu {
    fn start(binary: &Path, dir: &Path) -> Result<Self> {
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("tansu.log"))?;
        let child = Command::new(binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start `{}`", binary.display()))?;
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&address).is_err() {
            if Instant::now() > deadline {
                bail!("tansu did not listen on {address}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, address })
    }

    fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .create()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let results = runtime.block_on(admin.create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))?;
        for result in results {
            result.map_err(|(topic, e)| anyhow!("cannot create `{topic}`: {e}"))?;
        }
        Ok(())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM, then wait for the drain.
fn stop(child: &mut Child) -> Result<()> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let status = child.wait()?;
    if !status.success() {
        bail!("demarc run exited with {status} after SIGTERM");
    }
    Ok(())
}

/// A metric's value from the `/metrics` endpoint on `port`.
fn scrape(port: u16, name: &str) -> Option<f64> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

/// Peak resident set of process `pid`.
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
