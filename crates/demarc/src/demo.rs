//! `demarc demo`: the streaming job end to end with nothing installed. It starts
//! librdkafka's in-process mock cluster (which speaks the Kafka protocol), produces the
//! bundled sample logs into it one event per message, as EventBridge or a log router
//! would, runs the same pipeline as `demarc run`, and prints each alert as it fires.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use demarc_pipeline::Shared;
use demarc_sink::Format;
use demarc_synth::samples::{Message, split_events};

use crate::config::Config;
use crate::run::{Service, load_rules, print_summary};

/// The topic the demo's events go to.
pub const TOPIC: &str = "audit-logs";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Events produced per second
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Keep the broker and the pipeline running after the samples, and print the
    /// broker's address so that any Kafka client can produce to it; stop with Ctrl-C
    #[arg(long)]
    follow: bool,
    /// Serve Prometheus metrics on this address while the demo runs
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
    /// Allow tables (*.csv, *.toml) the rules read as `allow.NAME`; changes apply while
    /// the demo runs
    #[arg(long)]
    allow: Option<std::path::PathBuf>,
    /// How often changed allow tables are re-read
    #[arg(long, default_value_t = crate::config::DEFAULT_ALLOW_REFRESH_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    allow_refresh_seconds: u64,
}

/// The bundled samples: real attack-detonation CloudTrail, GCP exports with violations
/// and near misses, and generated CloudTrail with labelled violations.
const SAMPLES: &[(&str, &[u8])] = &[
    (
        "aws.defense-evasion.cloudtrail-delete",
        include_bytes!(
            "../../../testdata/samples/aws-stratus-red-team/aws.defense-evasion.cloudtrail-delete.json"
        ),
    ),
    (
        "aws.defense-evasion.cloudtrail-event-selectors",
        include_bytes!(
            "../../../testdata/samples/aws-stratus-red-team/aws.defense-evasion.cloudtrail-event-selectors.json"
        ),
    ),
    (
        "aws.defense-evasion.cloudtrail-stop",
        include_bytes!(
            "../../../testdata/samples/aws-stratus-red-team/aws.defense-evasion.cloudtrail-stop.json"
        ),
    ),
    (
        "aws.defense-evasion.vpc-remove-flow-logs",
        include_bytes!(
            "../../../testdata/samples/aws-stratus-red-team/aws.defense-evasion.vpc-remove-flow-logs.json"
        ),
    ),
    (
        "aws.exfiltration.ec2-security-group-open-port-22-ingress",
        include_bytes!(
            "../../../testdata/samples/aws-stratus-red-team/aws.exfiltration.ec2-security-group-open-port-22-ingress.json"
        ),
    ),
    (
        "aws.exfiltration.ec2-share-ami",
        include_bytes!(
            "../../../testdata/samples/aws-stratus-red-team/aws.exfiltration.ec2-share-ami.json"
        ),
    ),
    (
        "aws.exfiltration.ec2-share-ebs-snapshot",
        include_bytes!(
            "../../../testdata/samples/aws-stratus-red-team/aws.exfiltration.ec2-share-ebs-snapshot.json"
        ),
    ),
    (
        "aws.exfiltration.rds-share-snapshot",
        include_bytes!(
            "../../../testdata/samples/aws-stratus-red-team/aws.exfiltration.rds-share-snapshot.json"
        ),
    ),
    (
        "aws.initial-access.console-login-without-mfa",
        include_bytes!(
            "../../../testdata/samples/aws-stratus-red-team/aws.initial-access.console-login-without-mfa.json"
        ),
    ),
    (
        "aws.persistence.iam-create-admin-user",
        include_bytes!(
            "../../../testdata/samples/aws-stratus-red-team/aws.persistence.iam-create-admin-user.json"
        ),
    ),
    (
        "aws-synthetic 00000000",
        include_bytes!(
            "../../../testdata/samples/aws-synthetic/AWSLogs/811719682070/CloudTrail/us-east-1/2026/01/05/811719682070_CloudTrail_us-east-1_20260105T0000Z_00000000.json.gz"
        ),
    ),
    (
        "aws-synthetic 00000001",
        include_bytes!(
            "../../../testdata/samples/aws-synthetic/AWSLogs/811719682070/CloudTrail/us-east-1/2026/01/05/811719682070_CloudTrail_us-east-1_20260105T0101Z_00000001.json.gz"
        ),
    ),
    (
        "gcp-export activity",
        include_bytes!(
            "../../../testdata/samples/gcp-export/cloudaudit.googleapis.com/activity/2026/03/02/10:00:00_10:59:59_S0.json"
        ),
    ),
    (
        "gcp-gcpdiag gce5",
        include_bytes!("../../../testdata/samples/gcp-gcpdiag/gce5-logging-entries.json"),
    ),
    (
        "gcp-gcpdiag gcf2",
        include_bytes!("../../../testdata/samples/gcp-gcpdiag/gcf2-logging-entries.json"),
    ),
];

/// The samples cut into one event per message, in time order within each file.
pub fn sample_messages() -> Result<Vec<Message>> {
    let mut messages = Vec::new();
    for (name, bytes) in SAMPLES {
        let events = split_events(bytes).with_context(|| format!("bundled sample `{name}`"))?;
        messages.extend(events);
    }
    Ok(messages)
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let cluster =
        MockCluster::new(1).map_err(|e| anyhow!("cannot start the mock Kafka cluster: {e}"))?;
    cluster
        .create_topic(TOPIC, 3, 1)
        .map_err(|e| anyhow!("cannot create the topic: {e}"))?;
    let brokers = cluster.bootstrap_servers();
    let mut config = Config::plain(&brokers, "demarc-demo", vec![TOPIC.to_owned()]);
    config.metrics_listen = args.metrics;
    cluster
        .create_topic(&config.kafka.dead_letter_topic, 1, 1)
        .map_err(|e| anyhow!("cannot create the dead-letter topic: {e}"))?;

    let messages = sample_messages()?;
    let rules = Arc::new(load_rules(None, args.allow.as_deref())?);
    let engine = crate::run::engine(&config, rules, true);
    let _allow = demarc_pipeline::allow::AllowWatch::start(
        &engine,
        Duration::from_secs(args.allow_refresh_seconds),
    )?;
    let shared = Arc::clone(&engine.shared);
    let _service = Service::start(
        config.metrics_listen,
        &engine.metrics,
        &shared,
        config.stall_limit,
    )?;
    eprintln!(
        "demarc demo: mock Kafka cluster at {brokers}; producing {} sample events to `{TOPIC}` \
         at {} events/s; {} rules",
        messages.len(),
        args.rate,
        engine.rules.rules().len()
    );
    let started = Instant::now();
    let total = messages.len() as u64;
    let producer_thread = {
        let brokers = brokers.clone();
        let shared = Arc::clone(&shared);
        let rate = args.rate.max(1);
        std::thread::spawn(move || produce(&brokers, &messages, rate, &shared))
    };
    let watcher = {
        let shared = Arc::clone(&shared);
        let follow = args.follow;
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            while shared.records_done.load(Ordering::Relaxed) < total {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if follow {
                eprintln!(
                    "demarc demo: the samples are done. The broker stays up at {brokers}: \
                     produce CloudTrail or GCP audit events to `{TOPIC}` with any Kafka client \
                     (Ctrl-C to stop)"
                );
            } else {
                shared.stop.store(true, Ordering::Relaxed);
            }
        })
    };
    let summary = crate::run::stream(&config, &engine, Format::Human);
    shared.stop.store(true, Ordering::Relaxed);
    let produced = producer_thread
        .join()
        .map_err(|_| anyhow!("the producer thread panicked"))??;
    let _ = watcher.join();
    let mut summary = summary?;
    print_summary(&summary, started);
    if !summary.latencies_ms.is_empty() {
        summary.latencies_ms.sort_unstable();
        let p =
            |q: f64| summary.latencies_ms[((summary.latencies_ms.len() - 1) as f64 * q) as usize];
        eprintln!(
            "  {produced} messages produced; produce-to-alert latency p50 {} ms, p99 {} ms, max {} ms",
            p(0.5),
            p(0.99),
            p(1.0)
        );
    }
    drop(cluster);
    Ok(())
}

fn produce(brokers: &str, messages: &[Message], rate: u32, shared: &Shared) -> Result<u64> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .context("cannot create the demo producer")?;
    // Start once the pipeline has joined its group, so that the latencies measure the
    // pipeline rather than the group's first rebalance.
    let joining = Instant::now();
    while !shared.assigned.load(Ordering::Relaxed) && joining.elapsed() < Duration::from_secs(30) {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let mut sent = 0u64;
    for (key, value) in messages {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        // Pace: message n leaves at n / rate seconds.
        let due = Duration::from_secs_f64(sent as f64 / f64::from(rate));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let mut record = BaseRecord::to(TOPIC).key(key).payload(value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((error, back)) => {
                    if shared.stop.load(Ordering::Relaxed) {
                        return Err(anyhow!("cannot produce: {error}"));
                    }
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
        sent += 1;
    }
    producer
        .flush(Duration::from_secs(30))
        .context("the mock cluster did not take every sample event")?;
    Ok(sent)
}
