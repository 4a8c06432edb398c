//! `demarc-bench stream`: the streaming benchmark, three figures in one run
//! (`bench/stream.sh` builds and runs it).
//!
//! (a) the pipeline alone: pre-loaded messages through normalize, every rule and the
//!     alert file, no broker;
//! (b) a bare rdkafka consumer draining the same messages from a local Apache Kafka
//!     broker (started by `demarc_tests::kafka`): that broker's ceiling on this
//!     machine;
//! (c) `demarc run` (this binary, as a subprocess) draining them end to end, as a
//!     fraction of (b), with its peak RSS while the whole backlog waits;
//!
//! plus latency percentiles at a fixed offered rate: produce to receive for a bare
//! consumer (the producer's and the broker's share), produce to alert for the pipeline,
//! and receive to alert (demarc's own share).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use clap::Args;
use demarc_detect::RuleSet;
use demarc_model::Origin;
use demarc_normalize::Options;
use demarc_pipeline::dead_letter::Discard;
use demarc_pipeline::kafka::{self, KafkaSettings, Offsets, consumer_config};
use demarc_pipeline::{Acknowledge, Batch, Engine, Outputs, Payload, Record, Settings};
use demarc_sink::{AlertSink, FileMode};
use demarc_tests::demarc::scrape;
use demarc_tests::free_port;
use demarc_tests::kafka::Kafka;
use demarc_tests::produce::{SteadyProducer, events as generate, produce_all};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

#[derive(Debug, Args)]
pub struct StreamArgs {
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

pub fn run(args: &StreamArgs) -> Result<()> {
    let mut report = Report {
        messages: args.messages,
        ..Report::default()
    };
    eprintln!("generating {} CloudTrail events", args.messages);
    let events = generate(args.messages, 0.001, 11);
    report.message_bytes = events.iter().map(|(_, v)| v.len()).sum::<usize>() / events.len().max(1);
    let dir = tempfile::tempdir()?;
    let rules = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .build()?
            .block_on(RuleSet::builtin())?,
    );

    // (a) The pipeline alone, in full batches; then in the small batches a steady
    // stream at the latency run's rate gives (what arrives in one batch wait), which
    // shows the fixed cost of a rule run.
    {
        let defaults = settings("unused:9092", "bench", "bench");
        let full = defaults.batch_records;
        let small =
            (u128::from(args.rate) * defaults.batch_wait.as_millis() / 1000).max(1) as usize;
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

    let broker = Kafka::start().map_err(|e| anyhow!("Apache Kafka did not start: {e}"))?;
    for (topic, partitions) in [
        ("bench", args.partitions),
        ("bench-latency", args.partitions),
        ("bench-latency-bare", args.partitions),
        ("demarc-dead-letter", 1),
    ] {
        broker
            .create_topic(topic, partitions)
            .map_err(|e| anyhow!("{e}"))?;
    }
    let started = Instant::now();
    produce_all(broker.client(), "bench", &events).map_err(|e| anyhow!("{e}"))?;
    report.produce_messages_per_second = events.len() as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "produced {} messages to Apache Kafka {} at {:.0}/s",
        events.len(),
        demarc_tests::kafka::VERSION,
        report.produce_messages_per_second
    );

    // (b) A bare consumer, with demarc's consumer settings (the ceiling demarc is held
    // to) and with librdkafka's defaults.
    let same = consumer_config(&settings(&broker.bootstrap, "bench-bare", "bench"));
    let (rate, bytes, seconds) = drain(same, events.len())?;
    report.bare_consumer_messages_per_second = rate;
    eprintln!(
        "(b) bare rdkafka consumer, demarc's settings: {} messages ({} MB) in {seconds:.2}s = {rate:.0}/s",
        events.len(),
        bytes / 1_000_000,
    );
    let mut defaults = ClientConfig::new();
    defaults
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "bench-bare-defaults")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let (rate, _, seconds) = drain(defaults, events.len())?;
    report.bare_consumer_defaults_messages_per_second = rate;
    eprintln!("(b') bare rdkafka consumer, librdkafka's defaults: {seconds:.2}s = {rate:.0}/s");

    // (c) `demarc run`, a subprocess, on the same backlog.
    {
        let metrics_port = free_port().map_err(|e| anyhow!("{e}"))?;
        let config = dir.path().join("bench.toml");
        std::fs::write(
            &config,
            format!(
                "[kafka]\nbrokers = \"{}\"\ngroup_id = \"bench-demarc\"\ntopics = [\"bench\"]\n\
                 [alerts]\nstdout = false\nfile = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
                broker.bootstrap,
                dir.path().join("alerts-c.jsonl").display()
            ),
        )?;
        let started = Instant::now();
        let demarc = demarc_tests::demarc::binary().map_err(|e| anyhow!("{e}"))?;
        let mut child = Command::new(demarc)
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
    let latency_events = Arc::new(generate(total, 0.02, 12));
    {
        let config = consumer_config(&settings(
            &broker.bootstrap,
            "bench-latency-bare",
            "bench-latency-bare",
        ));
        let mut latencies = bare_latency(
            config,
            &broker,
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
        let mut kafka_settings = settings(&broker.bootstrap, "bench-latency", "bench-latency");
        if let Some(ms) = args.batch_wait_ms {
            kafka_settings.batch_wait = Duration::from_millis(ms);
        }
        let batch_wait_ms = kafka_settings.batch_wait.as_millis();
        let engine = Engine::new(
            Arc::clone(&rules),
            Settings {
                keep_latencies: true,
                ..Settings::new(workers(), Options::default())
            },
        );
        let alerts = AlertSink::open(
            None,
            Some((&dir.path().join("alerts-latency.jsonl"), FileMode::Append)),
            100_000,
        )?;
        let shared = Arc::clone(&engine.shared);
        let runner =
            std::thread::spawn(move || kafka::run(&kafka_settings, &engine, alerts, None, None));
        // Let the consumer join its group before the clock starts.
        let joining = Instant::now();
        while !shared.assigned.load(Ordering::Relaxed)
            && joining.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let producer = SteadyProducer::start(
            broker.client(),
            "bench-latency",
            Arc::clone(&latency_events),
            args.rate,
        );
        producer.wait().map_err(|e| anyhow!("{e}"))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while shared.records_done.load(Ordering::Relaxed) < total as u64
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
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    Ok(())
}

/// demarc's Kafka settings with their defaults, for `topic` in `group`.
fn settings(brokers: &str, group: &str, topic: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: brokers.to_owned(),
        group_id: group.to_owned(),
        topics: vec![topic.to_owned()],
        properties: BTreeMap::new(),
        batch_records: 10_000,
        batch_bytes: 16 << 20,
        batch_wait: Duration::from_millis(25),
        dead_letter_topic: "demarc-dead-letter".to_owned(),
    }
}

fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Acknowledges nothing: the pipeline alone has no source.
struct NoSource;

impl Acknowledge<Offsets> for NoSource {
    fn acknowledge(&mut self, _: &Offsets, _: bool) -> demarc_pipeline::Result<()> {
        Ok(())
    }
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
    rules: &Arc<RuleSet>,
    events: &[(String, String)],
    batch_records: usize,
    dir: &Path,
) -> Result<(f64, u64, f64)> {
    let workers = workers();
    let topic: Arc<str> = "bench".into();
    let batches: Vec<Batch<Offsets>> = events
        .chunks(batch_records)
        .enumerate()
        .map(|(b, chunk)| {
            let mut batch = Batch::default();
            for (i, (key, value)) in chunk.iter().enumerate() {
                batch.push(Record {
                    origin: Origin::kafka(Arc::clone(&topic), 0, (b * batch_records + i) as i64),
                    key: Some(key.clone().into_bytes()),
                    payload: Payload::Bytes(value.clone().into_bytes()),
                    produced_ms: None,
                    received: Some(Instant::now()),
                });
            }
            batch
        })
        .collect();
    let count = batches.len();
    let engine = Engine::new(
        Arc::clone(rules),
        Settings::new(workers, Options::default()),
    );
    let alerts = dir.join(format!("alerts-a-{batch_records}.jsonl"));
    let outputs = Outputs {
        routing: None,
        alerts: AlertSink::open(None, Some((&alerts, FileMode::Append)), 100_000)?,
        lake: None,
        dead_letters: Box::new(Discard),
        acknowledge: Box::new(NoSource),
    };
    let started = Instant::now();
    let summary = engine.run_batches(batches, outputs)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((
        summary.stats.events_in as f64 / seconds,
        summary.alerts(),
        seconds * 1000.0 * workers as f64 / count.max(1) as f64,
    ))
}

/// The value at quantile `q` of sorted `values` (0 when empty).
pub(crate) fn percentile(values: &[i64], q: f64) -> i64 {
    if values.is_empty() {
        return 0;
    }
    values[((values.len() - 1) as f64 * q).round() as usize]
}

/// Produce-to-receive latencies in milliseconds of a bare consumer on `topic` while
/// `events` are produced at `rate`: what the producer and the broker alone take.
fn bare_latency(
    config: ClientConfig,
    broker: &Kafka,
    topic: &str,
    events: &Arc<Vec<(String, String)>>,
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
    {
        let producer = SteadyProducer::start(broker.client(), topic, Arc::clone(events), rate);
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
        producer.wait().map_err(|e| anyhow!("{e}"))?;
        if latencies.len() < events.len() {
            bail!(
                "the bare consumer got {} of {} messages",
                latencies.len(),
                events.len()
            );
        }
        Ok(latencies)
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

/// Peak resident set of process `pid`.
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
