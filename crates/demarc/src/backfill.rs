//! `demarc backfill`: archived audit logs in, alerts out (and, with `--lake`, the
//! normalized events as Hive-partitioned Parquet), through the same engine as the
//! streaming job with the archive source (`demarc_pipeline::archive`). This module
//! holds the command line, the progress bar and the report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use demarc_lake::Lake;
use demarc_normalize::Options;
use demarc_pipeline::archive::{self, ArchiveSettings, Selection};
use demarc_pipeline::dead_letter::{DeadLetters, Discard, RejectFile};
use demarc_pipeline::{Engine, LakeOutput, Outputs, Settings};
use demarc_sink::{AlertSink, FileMode, Format};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::output::write_json;
use crate::run::load_rules;

mod resume;

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Files, directories (read recursively) or buckets (s3://BUCKET/PREFIX,
    /// gs://BUCKET/PREFIX): CloudTrail's S3 delivery layout (org trails too), GCS
    /// exports, or any folder of audit logs in any envelope
    #[arg(required = true, value_parser = location)]
    paths: Vec<String>,
    /// Only events at or after this time: a span back from now (30d, 12h), a date
    /// (2026-01-05) or an RFC 3339 time. In buckets, only the days from then are listed
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time (2026-02-01 or an RFC 3339 time)
    #[arg(long)]
    until: Option<String>,
    /// Only these AWS accounts, in CloudTrail's bucket layout (comma-separated)
    #[arg(long, value_delimiter = ',')]
    accounts: Vec<String>,
    /// Only these regions, in CloudTrail's bucket layout (comma-separated)
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    #[command(flatten)]
    store: crate::store::StoreArgs,
    /// Objects fetched at once, ahead of the workers
    #[arg(long, default_value_t = 32)]
    fetch_ahead: usize,
    /// List what would be read (count, bytes, the first and last inputs) and exit
    #[arg(long)]
    dry_run: bool,
    /// Load the rules from this folder of *.sql files instead of the compiled-in ones
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Allow tables (*.csv, *.toml) that the rules read as `allow.NAME`, filling or
    /// adding to the built-in, empty ones (docs/rules.md)
    #[arg(long)]
    allow: Option<PathBuf>,
    /// Write alerts as JSON lines to this file instead of standard output
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// Also write the normalized events (DIR/events/provider=…/date=…/hour=…/*.parquet)
    /// and the alerts (DIR/alerts/date=…/*.jsonl) under this folder, or under this
    /// prefix of a bucket (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX)
    #[arg(long)]
    lake: Option<String>,
    /// Keep each event's original JSON (the `raw` column) in the lake: complete, but
    /// about 3x the lake's size and a slower backfill (docs/lake.md)
    #[arg(long, requires = "lake")]
    lake_raw: bool,
    /// Build a row for every event, also those no rule can return, and run the rules
    /// over all of them (without a lake, such events are only checked and counted;
    /// with one, the rules skip their rows; the alerts are the same either way)
    #[arg(long)]
    no_row_filter: bool,
    /// Write rejected input as JSON lines (reason, detail, position, excerpt)
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Write the run summary as JSON
    #[arg(long)]
    report: Option<PathBuf>,
    /// Record in this file how far the run is durable, and resume from it: the same
    /// command started again after an interruption skips what was done and gives the
    /// alerts (same ids) and lake rows of an uninterrupted run. Needs --alerts FILE
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// How often the checkpoint is written (and, with --lake, the lake flushed)
    #[arg(long, default_value = "30s", value_parser = checkpoint_every, requires = "checkpoint")]
    checkpoint_every: Duration,
    /// Worker threads (default: one per core)
    #[arg(long)]
    threads: Option<usize>,
    /// Events larger than this many bytes are rejected as `oversize`
    #[arg(long, default_value_t = Options::default().max_event_bytes)]
    max_event_bytes: usize,
    /// Files at least this large are checked for NDJSON and then read in runs of lines
    #[arg(long, default_value_t = 32 << 20, hide = true)]
    stream_above_bytes: u64,
    /// Size of the runs of lines read from a large NDJSON file
    #[arg(long, default_value_t = 8 << 20, hide = true)]
    chunk_bytes: usize,
    /// Rows per batch the rules run over (default: 256 Ki rows shared among the workers,
    /// between 4 Ki and 32 Ki each)
    #[arg(long, hide = true)]
    batch_rows: Option<usize>,
}

/// The `--report` document, also printed as the closing summary.
#[derive(Debug, Default, Serialize)]
struct Report {
    /// Files, bytes, events, skips and rejects, as `demarc normalize` reports them.
    #[serde(flatten)]
    normalized: crate::normalize::Report,
    /// Inputs an earlier attempt finished (`--checkpoint`): this report covers the rest.
    resumed_inputs: u64,
    /// Files that could not be read, with the reason; the run went on without them.
    unreadable_files: BTreeMap<String, String>,
    rules: usize,
    alerts: u64,
    alerts_by_rule: BTreeMap<String, u64>,
    /// Alerts with an id already emitted in this run (the same event read twice).
    duplicate_alerts: u64,
    /// Batches each rule failed on, by rule id: its alerts for their events are
    /// missing.
    rule_failures: BTreeMap<String, u64>,
    lake_files: u64,
    events_per_second: f64,
    /// Peak resident memory of the process, where the system reports it.
    peak_rss_bytes: Option<u64>,
}

pub fn run(args: &BackfillArgs) -> Result<()> {
    let started = Instant::now();
    let rules = Arc::new(load_rules(args.rules.as_deref(), args.allow.as_deref())?);
    let previous = match args.checkpoint.as_deref() {
        Some(path) => resume::previous(path, args)?,
        None => None,
    };
    if let Some(state) = previous.as_ref().filter(|s| s.complete) {
        eprintln!(
            "the checkpoint says this backfill completed ({} inputs): nothing to do; remove \
             it to run the backfill again",
            state.inputs_done
        );
        return Ok(());
    }
    let (since, until) = crate::time_range(args.since.as_deref(), args.until.as_deref())?;
    let (since, until) = match &previous {
        Some(state) => resume::range(state),
        None => (since, until),
    };
    if let (Some(since), Some(until)) = (since, until)
        && since >= until
    {
        bail!("--since {since} is not before --until {until}: nothing to read");
    }
    let store = args.store.options();
    let selection = Selection {
        since,
        until,
        accounts: args.accounts.clone(),
        regions: args.regions.clone(),
    };
    let mut inputs = archive::collect_all(&args.paths, &store, &selection)?;
    for warning in &inputs.warnings {
        eprintln!("warning: {warning}");
    }
    if inputs.files.is_empty() {
        bail!("no files found under the given paths");
    }
    if args.dry_run {
        print_listing(&inputs, started.elapsed().as_secs_f64());
        return Ok(());
    }
    let resumed = resume::skip_done(&mut inputs, previous.as_ref())?;
    if resumed > 0 {
        eprintln!(
            "resuming: {resumed} input(s) were done, {} left",
            inputs.files.len()
        );
    }
    let total_files = inputs.files.len() as u64;
    let total_bytes = inputs.bytes;
    let ignored_files = inputs.ignored;
    let workers = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let options = Options {
        max_event_bytes: args.max_event_bytes,
        // Alerts do not carry the original JSON; only a lake that asks for it keeps it.
        keep_raw: args.lake_raw,
        since_us: since.map(|t| t.timestamp_micros()),
        until_us: until.map(|t| t.timestamp_micros()),
        ..Options::default()
    };
    let engine = Engine::new(
        Arc::clone(&rules),
        Settings {
            keep_rows: args.lake.is_some(),
            filter_rows: !args.no_row_filter,
            // The source can wait: let it read one batch ahead per worker, and keep
            // no more batches than that in flight (their rows, with a lake, are the
            // run's memory).
            queue: workers,
            max_in_flight: 2 * workers as u64,
            ..Settings::new(workers, options)
        },
    );
    let settings = ArchiveSettings {
        batch_rows: args
            .batch_rows
            .unwrap_or(((256 << 10) / workers).clamp(4 << 10, 32 << 10))
            .max(1),
        stream_above_bytes: args.stream_above_bytes,
        chunk_bytes: args.chunk_bytes.max(1),
        max_event_bytes: args.max_event_bytes,
        fetch_ahead: args.fetch_ahead.max(1),
    };

    let run_id = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let place = args
        .lake
        .as_deref()
        .map(|text| crate::store::lake(text, &args.store))
        .transpose()?;
    let lake = match &place {
        None => None,
        Some(place) => Some(LakeOutput {
            lake: Lake::with_encoders(
                place.place.clone(),
                &format!("{run_id}-{}", std::process::id()),
                workers,
            )?,
            // A backfill's lake is complete when the run ends, unless it is
            // checkpointed.
            flush_every: args.checkpoint.is_some().then_some(args.checkpoint_every),
        }),
    };
    let checkpoint = match args.checkpoint.as_deref() {
        None => None,
        Some(path) => Some(
            resume::Start {
                path,
                args,
                previous,
                since,
                until,
                lake: place.as_ref().map(|p| &p.place),
                lake_run: lake.as_ref().map(|l| l.lake.run().to_owned()),
                every: args.checkpoint_every,
                to_do: inputs.files.len() as u64,
            }
            .begin()?,
        ),
    };
    // A checkpointed run appends to its files, synced as it goes; otherwise each file
    // is put in place, whole, at the end.
    let mode = if checkpoint.is_some() {
        FileMode::Append
    } else {
        FileMode::Replace
    };
    let alerts = AlertSink::open(
        args.alerts.is_none().then_some(Format::Json),
        args.alerts.as_deref().map(|path| (path, mode)),
        usize::MAX,
    )?;
    let dead_letters: Box<dyn DeadLetters> = match (args.dead_letter.as_deref(), mode) {
        (Some(path), FileMode::Append) => Box::new(RejectFile::append(path)?),
        (Some(path), FileMode::Replace) => Box::new(RejectFile::create(path)?),
        (None, _) => Box::new(Discard),
    };
    let progress = progress_bar(total_bytes);
    let (acknowledge, done) = archive::progress(
        {
            let progress = progress.clone();
            let mut warned = 0;
            let mut files = 0;
            Box::new(move |batch, summary| {
                progress.inc(batch.disk_bytes);
                files += batch.files;
                for (path, error) in &summary.unreadable[warned..] {
                    progress.suspend(|| eprintln!("warning: cannot read `{path}`: {error}"));
                }
                warned = summary.unreadable.len();
                progress.set_message(format!(
                    "{files}/{total_files} files, {} events, {} alerts",
                    summary.stats.events_in,
                    summary.alerts()
                ));
            })
        },
        checkpoint,
    );
    let outputs = Outputs {
        alerts,
        // Backfill writes every alert: routes, suppression and snoozes are for the
        // live stream.
        routing: None,
        lake,
        dead_letters,
        acknowledge,
    };
    let summary = archive::run(inputs, &settings, &engine, outputs);
    progress.finish_and_clear();
    let summary = summary?;

    let seconds = started.elapsed().as_secs_f64();
    let stats = &summary.stats;
    let mut report = Report {
        normalized: crate::normalize::Report::new(stats, ignored_files, seconds),
        resumed_inputs: resumed as u64,
        unreadable_files: summary.unreadable.iter().cloned().collect(),
        rules: rules.rules().len(),
        alerts: summary.alerts(),
        alerts_by_rule: summary.alerts_by_rule.clone(),
        duplicate_alerts: summary.duplicate_alerts,
        rule_failures: summary.rule_failures.clone(),
        lake_files: summary.lake_files,
        events_per_second: stats.events_in as f64 / seconds.max(1e-9),
        peak_rss_bytes: peak_rss_bytes(),
    };
    // The normalizer counts each run of lines of a large file as an input, and bytes
    // after decompression; report files and their size on disk.
    report.normalized.files = done.lock().map_or(0, |p| p.files);
    report.normalized.bytes = total_bytes;
    print_summary(&report, args.dead_letter.is_some());
    if let Some(path) = &args.report {
        write_json(path, &report)?;
    }
    if !report.unreadable_files.is_empty() {
        let retry = if args.checkpoint.is_some() {
            "; the checkpoint stays before the first of them: run the same command again to \
             read them (and what follows) again"
        } else {
            ""
        };
        bail!(
            "{} file(s) could not be read; the rest were processed (see the warnings \
             above){retry}",
            report.unreadable_files.len()
        );
    }
    if !report.rule_failures.is_empty() {
        let batches: u64 = report.rule_failures.values().sum();
        let rules: Vec<&str> = report.rule_failures.keys().map(String::as_str).collect();
        bail!(
            "{} rule(s) failed on {batches} batch(es) ({}): their alerts for those events \
             are missing, the other rules' alerts were written. The errors above say why; \
             mend the rule (`demarc rules test` runs its fixtures) and run it again over \
             the inputs the dead letters name",
            rules.len(),
            rules.join(", ")
        );
    }
    Ok(())
}

/// What `--dry-run` prints: the inputs' count and size, the first and last of them, and
/// how long listing took.
fn print_listing(inputs: &archive::Inputs, seconds: f64) {
    let files = &inputs.files;
    let show = |input: &archive::Input| println!("{}", input.name());
    files.iter().take(5).for_each(show);
    if files.len() > 10 {
        println!("… {} more", files.len() - 10);
    }
    files
        .iter()
        .skip(5.max(files.len().saturating_sub(5)))
        .for_each(show);
    eprintln!(
        "{} inputs, {} bytes ({} left out by name), listed in {seconds:.2}s",
        files.len(),
        inputs.bytes,
        inputs.ignored
    );
}

fn checkpoint_every(text: &str) -> Result<Duration, String> {
    crate::config::duration(text).ok_or_else(|| format!("`{text}`: write a span such as 30s or 5m"))
}

/// A command-line input: a bucket URL, or a path that exists.
fn location(text: &str) -> Result<String, String> {
    if archive::remote::is_url(text) {
        return Ok(text.to_owned());
    }
    crate::existing_path(text).map(|_| text.to_owned())
}

fn progress_bar(total_bytes: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} ({eta} left) {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn print_summary(report: &Report, dead_letter: bool) {
    let base = &report.normalized;
    let skipped: u64 = base.skipped.values().sum();
    let rejected: u64 = base.rejected.values().sum();
    eprintln!(
        "{} files ({} ignored by name, {} unreadable), {} events ({} skipped, {} rejected), \
         {} alerts from {} rules, {:.2}s, {:.0} events/s",
        base.files,
        base.ignored_files,
        report.unreadable_files.len(),
        base.events_in,
        skipped,
        rejected,
        report.alerts,
        report.rules,
        base.seconds,
        report.events_per_second,
    );
    crate::run::print_counts(
        &base.rejected,
        &base.lenient,
        &report.alerts_by_rule,
        report.duplicate_alerts,
    );
    crate::run::print_rule_failures(&report.rule_failures);
    if rejected > 0 && !dead_letter {
        eprintln!("  (pass --dead-letter FILE to keep the rejected input)");
    }
}

/// The peak resident set size, from `/proc/self/status` (Linux).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
