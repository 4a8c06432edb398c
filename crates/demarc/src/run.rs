//! `demarc run` (the streaming job) and `demarc validate` (its configuration checked
//! without connecting to anything).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use demarc_detect::{AllowLists, RuleSet};
use demarc_lake::Lake;
use demarc_normalize::Options;
use demarc_pipeline::allow::AllowWatch;
use demarc_pipeline::kafka::{self, consumer_config};
use demarc_pipeline::{Engine, LakeOutput, Metrics, Settings, Shared, Summary};
use demarc_sink::{AlertSink, FileMode, Format};
use rdkafka::consumer::BaseConsumer;

use crate::config::Config;

/// Alert ids remembered to suppress repeats within one streaming process.
const RECENT_ALERT_IDS: usize = 100_000;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (see docs/config.md)
    #[arg(long, short)]
    config: PathBuf,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The configuration file (see docs/config.md)
    #[arg(long, short)]
    config: PathBuf,
    /// Also connect to the brokers: the topics and the dead-letter topic must exist and
    /// be visible with these credentials
    #[arg(long)]
    connect: bool,
}

pub fn run(args: &RunArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let rules = Arc::new(load_rules(
        config.rules_dir.as_deref(),
        config.allow_dir.as_deref(),
    )?);
    let engine = engine(&config, rules, false);
    let _allow = AllowWatch::start(&engine, config.allow_refresh)?;
    let _service = Service::start(
        config.metrics_listen,
        &engine.metrics,
        &engine.shared,
        config.stall_limit,
    )?;
    eprintln!(
        "demarc: {} rules, consuming {} from {} as group `{}`{}",
        engine.rules.rules().len(),
        config.kafka.topics.join(", "),
        config.kafka.brokers,
        config.kafka.group_id,
        config
            .metrics_listen
            .map(|a| format!(", metrics on http://{a}/metrics"))
            .unwrap_or_default(),
    );
    let started = Instant::now();
    let summary = stream(&config, &engine, Format::Json)?;
    print_summary(&summary, started);
    Ok(())
}

/// The engine of a streaming job as `config` says.
pub fn engine(config: &Config, rules: Arc<RuleSet>, keep_latencies: bool) -> Engine {
    let options = Options {
        max_event_bytes: config.max_event_bytes,
        // Alerts do not carry the original JSON; only a lake that asks for it keeps it.
        keep_raw: config.lake.as_ref().is_some_and(|l| l.raw),
        ..Options::default()
    };
    Engine::new(
        rules,
        Settings {
            keep_rows: config.lake.is_some(),
            keep_latencies,
            ..Settings::new(config.workers, options)
        },
    )
}

/// Runs the streaming job with the outputs `config` names, until `engine.shared.stop`.
pub fn stream(config: &Config, engine: &Engine, format: Format) -> Result<Summary> {
    let alerts = AlertSink::open(
        config.alerts_stdout.then_some(format),
        config
            .alerts_file
            .as_deref()
            .map(|path| (path, FileMode::Append)),
        RECENT_ALERT_IDS,
    )?;
    // A bucket's client and runtime live as long as the run.
    let place = config
        .lake
        .as_ref()
        .map(|lake| {
            let text = lake.path.to_string_lossy();
            crate::store::lake(&text, &crate::store::StoreArgs::from_env())
        })
        .transpose()?;
    // Windowed rules restart with the span they look back over, read from the lake.
    if let (Some(reach), Some(place)) = (engine.rules.window_reach_us(), &place) {
        let since = chrono::Utc::now() - chrono::Duration::microseconds(reach);
        let history = lake_history(&place.place, since)?;
        engine.preload_windows(history);
    }
    let lake = match (&config.lake, &place) {
        (Some(lake), Some(place)) => Some(LakeOutput {
            lake: Lake::with_encoders(place.place.clone(), &run_name(), config.workers)?,
            flush_every: Some(lake.flush_every),
        }),
        _ => None,
    };
    let routing = match &config.routing {
        Some(plan) => Some(crate::alerts::start_routing(
            plan,
            &config.kafka,
            &engine.metrics,
        )?),
        None => None,
    };
    Ok(kafka::run(&config.kafka, engine, alerts, routing, lake)?)
}

/// The lake's events since `since`, for the windowed rules' windows.
fn lake_history(
    place: &demarc_lake::Place,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<arrow::array::RecordBatch>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let batches = runtime
        .block_on(async {
            demarc_sql::Lake::open(place.clone())?
                .events_since(since)
                .await
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "reading the windowed rules' history from the lake: {}",
                e.explain()
            )
        })?;
    let events: usize = batches
        .iter()
        .map(arrow::array::RecordBatch::num_rows)
        .sum();
    tracing::info!(events, since = %since, "windowed rules' history read from the lake");
    Ok(batches)
}

/// Names this run's lake files.
pub fn run_name() -> String {
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        std::process::id()
    )
}

pub fn validate(args: &ValidateArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    // librdkafka checks every property name and value when a client is created; that
    // does not connect.
    consumer_config(&config.kafka)
        .create::<BaseConsumer>()
        .map_err(|e| located(&args.config, &config, "the consumer", &e))?;
    // The dead-letter producer has settings of its own (idempotence): a clash among
    // them fails here, not at the first reject.
    kafka::dead_letter_config(&config.kafka)
        .create::<rdkafka::producer::BaseProducer>()
        .map_err(|e| located(&args.config, &config, "the dead-letter producer", &e))?;
    if args.connect {
        kafka::check_connection(&config.kafka, Duration::from_secs(30)).with_context(|| {
            format!(
                "{}: connecting to {}",
                args.config.display(),
                config.kafka.brokers
            )
        })?;
        // Each Kafka alert sink's topic must exist too.
        for sink in config.routing.iter().flat_map(|r| &r.sinks) {
            if let crate::config::SinkKind::Kafka { topic, format } = &sink.kind {
                kafka::AlertTopic::new(&config.kafka, topic, *format)?
                    .check_topic(Duration::from_secs(30))
                    .with_context(|| format!("{}: sink `{}`", args.config.display(), sink.name))?;
            }
        }
    }
    let rules = load_rules(config.rules_dir.as_deref(), config.allow_dir.as_deref())?;
    let routed = config.routing.as_ref().map_or_else(String::new, |r| {
        format!(
            ", {} sinks, {} routes, spool `{}`",
            r.sinks.len(),
            r.routes.routes.len(),
            r.store.display()
        )
    });
    println!(
        "{}: valid ({} topics, {} rules, group `{}`{routed}){}",
        args.config.display(),
        config.kafka.topics.len(),
        rules.rules().len(),
        config.kafka.group_id,
        if args.connect {
            "; the brokers answer and the topics exist"
        } else {
            ""
        }
    );
    Ok(())
}

/// A client that librdkafka refused to create, with the line of the property its
/// message names (librdkafka may name it by a shorter alias).
fn located(
    path: &Path,
    config: &Config,
    client: &str,
    error: &impl std::fmt::Display,
) -> anyhow::Error {
    let text = error.to_string();
    let named: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
    let found = config.property_lines.iter().find(|(key, _)| {
        named
            .iter()
            .any(|n| !n.is_empty() && (key.as_str() == *n || key.starts_with(&format!("{n}."))))
    });
    match found {
        Some((key, line)) => anyhow::anyhow!(
            "{}:{line}: [kafka.properties] `{key}`: {client} cannot be created with it: {text}",
            path.display()
        ),
        None => anyhow::anyhow!(
            "{}: [kafka.properties]: {client} cannot be created: {text}",
            path.display()
        ),
    }
}

/// The rules of `dir` (or the built-in ones) with the allow tables of `allow` (or the
/// built-in, empty ones); rows already expired are reported on stderr.
pub fn load_rules(dir: Option<&Path>, allow: Option<&Path>) -> Result<RuleSet> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let lists = AllowLists::load(allow).map_err(demarc_detect::Error::Allow)?;
    for row in lists.expired() {
        eprintln!("warning: {row}");
    }
    Ok(runtime.block_on(RuleSet::load(dir, lists))?)
}

pub fn print_summary(summary: &Summary, started: Instant) {
    let stats = &summary.stats;
    eprintln!(
        "{} messages, {} events ({} skipped, {} rejected, {} dead letters), {} alerts, \
         {} commits, {:.1}s",
        summary.records,
        stats.events_in,
        stats.skipped_total(),
        stats.rejected_total(),
        summary.dead_letters,
        summary.alerts(),
        summary.commits,
        started.elapsed().as_secs_f64(),
    );
    print_counts(
        &stats.rejected,
        &stats.lenient,
        &summary.alerts_by_rule,
        summary.duplicate_alerts,
    );
    print_rule_failures(&summary.rule_failures);
}

/// A line per rule that failed on some batches, saying what that costs.
pub fn print_rule_failures(failures: &std::collections::BTreeMap<String, u64>) {
    for (rule, n) in failures {
        eprintln!(
            "  rule {rule} failed on {n} batch(es): its alerts for their events are missing \
             (the errors above and the dead letters name the inputs)"
        );
    }
}

/// The lines under a summary: rejects by reason, leniencies, alerts by rule,
/// duplicates.
pub fn print_counts(
    rejected: &std::collections::BTreeMap<impl std::fmt::Display, u64>,
    lenient: &std::collections::BTreeMap<impl std::fmt::Display, u64>,
    alerts_by_rule: &std::collections::BTreeMap<String, u64>,
    duplicate_alerts: u64,
) {
    for (reason, n) in rejected {
        eprintln!("  rejected {reason}: {n}");
    }
    for (reason, n) in lenient {
        eprintln!("  accepted leniently, {reason}: {n}");
    }
    for (rule, n) in alerts_by_rule {
        eprintln!("  alerts {rule}: {n}");
    }
    if duplicate_alerts > 0 {
        eprintln!(
            "  {duplicate_alerts} duplicate alert(s) not repeated (the same events read twice)"
        );
    }
}

/// A background thread with a small async runtime: the metrics endpoint, and SIGTERM
/// and SIGINT, which ask the pipeline to drain, commit and stop.
#[derive(Debug)]
pub struct Service {
    _thread: std::thread::JoinHandle<()>,
}

impl Service {
    pub fn start(
        listen: Option<std::net::SocketAddr>,
        metrics: &Arc<Metrics>,
        shared: &Arc<Shared>,
        stall_limit: Duration,
    ) -> Result<Self> {
        let listener = listen.map(crate::metrics::bind).transpose()?;
        let health = crate::metrics::Health {
            metrics: Arc::clone(metrics),
            shared: Arc::clone(shared),
            stall_limit,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let shared = Arc::clone(shared);
        let thread = std::thread::Builder::new()
            .name("demarc-service".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Some(listener) = listener {
                        match tokio::net::TcpListener::from_std(listener) {
                            Ok(listener) => {
                                tokio::spawn(crate::metrics::serve(listener, health));
                            }
                            Err(error) => tracing::error!(%error, "metrics endpoint"),
                        }
                    }
                    wait_for_signal().await;
                    eprintln!(
                        "demarc: stopping: finishing the batches in flight (again to quit \
                         at once; uncommitted messages are read again on restart)"
                    );
                    shared.stop.store(true, Ordering::Relaxed);
                    // Metrics are still served while the pipeline drains.
                    wait_for_signal().await;
                    eprintln!("demarc: quitting without draining");
                    std::process::exit(130);
                });
            })?;
        Ok(Self { _thread: thread })
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    match (terminate, interrupt) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot listen for SIGTERM and SIGINT");
            std::future::pending::<()>().await;
        }
    }
}
