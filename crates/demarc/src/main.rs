//! The `demarc` binary: command line, configuration loading, wiring of the library
//! crates, progress and summaries. The pipeline is `demarc-pipeline`, the outputs
//! `demarc-sink` and `demarc-lake`, the investigation side `demarc-sql`; nothing here
//! processes an event.

mod alerts;
mod backfill;
mod backtest;
mod config;
mod coverage;
mod demo;
mod metrics;
mod normalize;
mod output;
mod rules;
mod run;
mod serve;
mod sigma;
mod sql;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Normalizing and evaluating allocate and free many short-lived buffers per batch;
// mimalloc keeps them in per-thread pages instead of going back to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Catch the moment a customer-side cloud control is weakened, from the provider's audit
/// logs (AWS CloudTrail, GCP Cloud Audit Logs).
#[derive(Debug, Parser)]
#[command(name = "demarc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Stream audit logs from Kafka: alerts within a second, offsets committed only
    /// after the alerts are durable
    Run(run::RunArgs),
    /// Run the streaming job on an in-process Kafka cluster fed with the bundled
    /// samples; needs nothing installed
    Demo(demo::DemoArgs),
    /// Check a `demarc run` configuration file (and the rules it names) and exit
    Validate(run::ValidateArgs),
    /// Run every rule over archived audit logs: alerts as JSON lines, and optionally the
    /// normalized events as a Parquet lake
    Backfill(Box<backfill::BackfillArgs>),
    /// Normalize audit-log files (any envelope, gzip or not) into one Parquet or JSONL file
    Normalize(normalize::NormalizeArgs),
    /// List the detection rules, or test them against their fixtures
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Snooze a rule's alerts, list and end snoozes, look at the alert spool
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// Query the lake with SQL: tables `events` and `alerts`, the rules' functions
    Sql(sql::SqlArgs),
    /// Maintain the lake
    #[command(subcommand)]
    Lake(sql::LakeCommand),
    /// Serve the lake's tables over Arrow Flight SQL (JDBC, ADBC, BI tools), read-only
    Serve(serve::ServeArgs),
    /// Map the loaded rules onto the control catalog: what each provider, SRM layer and
    /// service model has watched, the controls with no rule, the evasion classes each
    /// rule's fixtures exercise, and the allow-table rows muting rules now
    Coverage(coverage::CoverageArgs),
    /// Import Sigma rules as demarc rules
    #[command(subcommand)]
    Sigma(sigma::SigmaCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEMARC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Validate(args) => run::validate(&args),
        Command::Backfill(args) => backfill::run(&args),
        Command::Normalize(args) => normalize::run(&args),
        Command::Rules(command) => rules::run(&command),
        Command::Alerts(command) => alerts::run(&command),
        Command::Sql(args) => sql::sql(&args),
        Command::Lake(command) => sql::lake(&command),
        Command::Serve(args) => serve::run(&args),
        Command::Coverage(args) => coverage::run(&args),
        Command::Sigma(command) => sigma::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A path given on the command line, checked to exist.
fn existing_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    match std::fs::metadata(&path) {
        Ok(_) => Ok(path),
        Err(e) => Err(format!("cannot read `{text}`: {e}")),
    }
}

/// `--since` (a span back from now, a date or a time) and `--until` (a date or a time).
pub(crate) type Range = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

pub(crate) fn time_range(since: Option<&str>, until: Option<&str>) -> anyhow::Result<Range> {
    let since = since.map(|t| when("--since", t, true)).transpose()?;
    let until = until.map(|t| when("--until", t, false)).transpose()?;
    Ok((since, until))
}

/// A time on the command line: a span back from now (`30d`), a date (midnight UTC) or
/// an RFC 3339 time.
fn when(option: &str, text: &str, spans: bool) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if spans && let Some(span) = crate::config::duration(text) {
        let span = chrono::Duration::from_std(span)
            .map_err(|_| anyhow::anyhow!("{option} `{text}`: the span is too long"))?;
        return Ok(chrono::Utc::now() - span);
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&chrono::Utc));
    }
    if let Some(midnight) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(midnight.and_utc());
    }
    let spans = if spans {
        "a span such as 30d or 12h, "
    } else {
        ""
    };
    anyhow::bail!("{option} `{text}`: write {spans}a date (2026-01-05) or an RFC 3339 time")
}
