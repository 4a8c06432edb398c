//! `demarc alerts`: snoozes (mute a rule, or one thing a rule sees, for a while) and the
//! spool, through the same store the running process uses; and the routing stage of
//! `demarc run`, built from the configuration.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use demarc_pipeline::kafka::{AlertTopic, KafkaSettings};
use demarc_pipeline::metrics::Metrics;
use demarc_sink::deliver::Transport;
use demarc_sink::http::{HttpKind, HttpSink};
use demarc_sink::local::{FileSink, StdoutSink};
use demarc_sink::routing::{Routing, RoutingConfig, SinkSpec, rfc3339};
use demarc_sink::store::Store;

use crate::config::{Config, RoutingPlan, SinkKind, duration};

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Mute a rule's alerts for a while: they still reach file sinks, marked as snoozed
    Snooze(SnoozeArgs),
    /// List the snoozes in effect (with --all, ended ones too)
    Snoozes(ListArgs),
    /// End a snooze now
    Unsnooze(UnsnoozeArgs),
    /// Show what waits in the spool for each sink
    Spool(ConfigArg),
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The configuration file of the `demarc run` whose store to use
    #[arg(long, short)]
    config: PathBuf,
}

#[derive(Debug, Args)]
pub struct SnoozeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The rule id (a glob: `aws-s3-*`)
    rule: String,
    /// Only alerts with this value (a dedup column or account_id, region, actor,
    /// resource, provider); repeatable, all must hold
    #[arg(long = "key", value_name = "K=V")]
    keys: Vec<String>,
    /// How long: `30m`, `8h`, `2d`
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "until")]
    duration: Option<String>,
    /// Until when (RFC 3339: 2026-12-01T09:00:00Z)
    #[arg(long)]
    until: Option<String>,
    /// Why: shown with every snoozed alert and in `demarc alerts snoozes`
    #[arg(long)]
    reason: String,
    /// Who (default: $USER)
    #[arg(long)]
    by: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Ended and expired snoozes too
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
pub struct UnsnoozeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The snooze id (from `demarc alerts snoozes`)
    id: i64,
}

fn open_store(args: &ConfigArg) -> Result<Store> {
    let config = Config::load(&args.config)?;
    let Some(plan) = config.routing else {
        bail!(
            "{} defines no [sinks]: snoozes and the spool belong to routed alerts",
            args.config.display()
        );
    };
    Ok(Store::open(&plan.store)?)
}

pub fn run(command: &AlertsCommand) -> Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    match command {
        AlertsCommand::Snooze(args) => {
            let until_ms = match (&args.duration, &args.until) {
                (Some(d), None) => {
                    let d = duration(d)
                        .filter(|d| !d.is_zero())
                        .with_context(|| format!("--for `{d}`: write `30m`, `8h` or `2d`"))?;
                    now + d.as_millis() as i64
                }
                (None, Some(t)) => chrono::DateTime::parse_from_rfc3339(t)
                    .with_context(|| format!("--until `{t}`: write 2026-12-01T09:00:00Z"))?
                    .timestamp_millis(),
                _ => bail!("say how long: --for DURATION or --until TIME"),
            };
            if until_ms <= now {
                bail!("the snooze would end before it starts");
            }
            let mut keys = Vec::new();
            for pair in &args.keys {
                let Some((k, v)) = pair.split_once('=') else {
                    bail!("--key `{pair}`: write COLUMN=VALUE");
                };
                keys.push((k.trim().to_owned(), v.to_owned()));
            }
            if args.reason.trim().is_empty() {
                bail!("--reason is empty: say why, for whoever sees the snoozed alerts");
            }
            let by = args
                .by
                .clone()
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".into());
            let store = open_store(&args.config)?;
            let id = store.snooze(&args.rule, &keys, args.reason.trim(), &by, until_ms)?;
            println!(
                "snooze {id}: `{}`{} until {} ({})",
                args.rule,
                describe_keys(&keys),
                rfc3339(until_ms),
                args.reason.trim()
            );
        }
        AlertsCommand::Snoozes(args) => {
            let store = open_store(&args.config)?;
            let snoozes = store.snoozes(now, args.all)?;
            if snoozes.is_empty() {
                println!("no snoozes in effect");
            }
            for s in snoozes {
                let state = match s.removed_ms {
                    Some(at) => format!("ended {}", rfc3339(at)),
                    None if s.until_ms <= now => format!("expired {}", rfc3339(s.until_ms)),
                    None => format!("until {}", rfc3339(s.until_ms)),
                };
                println!(
                    "{:>4}  {}{}  {state}  by {} at {}: {}",
                    s.id,
                    s.rule,
                    describe_keys(&s.keys),
                    s.by,
                    rfc3339(s.created_ms),
                    s.reason
                );
            }
        }
        AlertsCommand::Unsnooze(args) => {
            let store = open_store(&args.config)?;
            if !store.unsnooze(args.id)? {
                bail!(
                    "no snooze {} is in effect (see `demarc alerts snoozes --all`)",
                    args.id
                );
            }
            println!("snooze {} ended", args.id);
        }
        AlertsCommand::Spool(args) => {
            let store = open_store(args)?;
            let depths = store.depths()?;
            if depths.is_empty() {
                println!("the spool is empty");
            }
            for (sink, n, oldest) in depths {
                println!("{sink}: {n} waiting, the oldest since {}", rfc3339(oldest));
            }
        }
    }
    Ok(())
}

fn describe_keys(keys: &[(String, String)]) -> String {
    keys.iter().map(|(k, v)| format!(" {k}={v}")).collect()
}

/// The routing stage of a run as `plan` says: the store, and a delivery thread per
/// sink. A Kafka sink's topic must exist.
pub fn start_routing(
    plan: &RoutingPlan,
    kafka: &KafkaSettings,
    metrics: &Metrics,
) -> Result<Routing> {
    let mut sinks = Vec::new();
    for sink in &plan.sinks {
        let transport: Box<dyn Transport> = match &sink.kind {
            SinkKind::Webhook {
                target,
                format,
                secret,
            } => Box::new(HttpSink::new(
                target.clone(),
                HttpKind::Webhook {
                    format: *format,
                    secret: secret.clone(),
                },
            )),
            SinkKind::Slack { target, link } => Box::new(HttpSink::new(
                target.clone(),
                HttpKind::Slack { link: link.clone() },
            )),
            SinkKind::PagerDuty {
                target,
                routing_key,
                link,
            } => Box::new(HttpSink::new(
                target.clone(),
                HttpKind::PagerDuty {
                    routing_key: routing_key.clone(),
                    link: link.clone(),
                },
            )),
            SinkKind::Kafka { topic, format } => {
                let topic_sink = AlertTopic::new(kafka, topic, *format)?;
                topic_sink
                    .check_topic(Duration::from_secs(30))
                    .with_context(|| format!("sink `{}`", sink.name))?;
                Box::new(topic_sink)
            }
            SinkKind::File {
                path,
                format,
                max_bytes,
                keep,
            } => Box::new(FileSink::new(path, *format, *max_bytes, *keep)),
            SinkKind::Stdout { format } => Box::new(StdoutSink::new(*format)),
        };
        sinks.push(SinkSpec {
            name: sink.name.clone(),
            transport,
            keeps_snoozed: matches!(sink.kind, SinkKind::File { .. }),
            backoff: sink.backoff,
        });
    }
    let routing = Routing::start(
        RoutingConfig {
            store: plan.store.clone(),
            capacity: plan.capacity,
            routes: plan.routes.clone(),
            suppression: plan.suppression.clone(),
            sinks,
            grace: plan.grace,
        },
        metrics.routing.clone(),
    )
    .with_context(|| format!("cannot start alert routing on `{}`", plan.store.display()))?;
    Ok(routing)
}
