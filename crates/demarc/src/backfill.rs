//! `demarc backfill`: archived audit logs in, alerts out (and, with `--lake`, the
//! normalized events as Hive-partitioned Parquet).
//!
//! One reader thread walks the inputs and hands out work; one worker per core
//! normalizes, accumulates rows into batches and runs every rule over each batch; this
//! thread writes alerts, dead letters and the lake, and draws the progress bar. Small
//! files are read whole by the workers; a large NDJSON file (plain or gzip) is read by
//! the reader thread in runs of whole lines, so its size never shows in memory. The
//! queues between the threads are bounded, so memory is bounded by the number of
//! workers, not by the size of the archive.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use arrow::array::RecordBatch;
use clap::Args;
use demarc_detect::RuleSet;
use demarc_model::{Alert, Origin};
use demarc_normalize::{EXCERPT_BYTES, Normalizer, Options, Reject, Stats, looks_like_ndjson};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::inputs::collect_files;
use crate::lake::Lake;
use crate::output::{DeadLetterSink, PendingFile, write_json};
use crate::run::load_rules;

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Files or directories (read recursively): CloudTrail S3 delivery layout (org
    /// trails too), GCS exports, or any folder of audit logs in any envelope
    #[arg(required = true, value_parser = crate::existing_path)]
    paths: Vec<PathBuf>,
    /// Load the rules from this folder of *.sql files instead of the compiled-in ones
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Write alerts as JSON lines to this file instead of standard output
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// Also write the normalized events (DIR/events/provider=…/date=…/hour=…/*.parquet)
    /// and the alerts (DIR/alerts/date=…/*.jsonl) under this folder
    #[arg(long)]
    lake: Option<PathBuf>,
    /// Write rejected input as JSON lines (reason, detail, position, excerpt)
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Write the run summary as JSON
    #[arg(long)]
    report: Option<PathBuf>,
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
    /// Files that could not be read, with the reason; the run went on without them.
    unreadable_files: BTreeMap<String, String>,
    rules: usize,
    alerts: u64,
    alerts_by_rule: BTreeMap<String, u64>,
    /// Alerts with an id already emitted in this run (the same event read twice).
    duplicate_alerts: u64,
    lake_files: u64,
    events_per_second: f64,
    /// Peak resident memory of the process, where the system reports it.
    peak_rss_bytes: Option<u64>,
}

/// What the reader thread hands to the workers.
enum Work {
    /// A whole file, read by the worker.
    File { path: PathBuf, disk_bytes: u64 },
    /// Whole lines of a large NDJSON file, from line `first_line`.
    Lines {
        origin: Origin,
        bytes: Vec<u8>,
        first_line: u64,
        disk_bytes: u64,
        last: bool,
    },
}

/// What the workers (and the reader) hand back.
#[derive(Default)]
struct Update {
    disk_bytes: u64,
    files: u64,
    rows: u64,
    alerts: Vec<Alert>,
    rejects: Vec<Reject>,
    lake: Option<RecordBatch>,
    unreadable: Option<(PathBuf, String)>,
}

struct Plan {
    options: Options,
    batch_rows: usize,
    stream_above_bytes: u64,
    chunk_bytes: usize,
    lake: bool,
}

pub fn run(args: &BackfillArgs) -> Result<()> {
    let started = Instant::now();
    let rules = Arc::new(load_rules(args.rules.as_deref())?);
    let (files, ignored_files) = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!("no files found under the given paths");
    }
    let total_bytes: u64 = files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let workers = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let plan = Arc::new(Plan {
        options: Options {
            max_event_bytes: args.max_event_bytes,
            // Alerts do not carry the original JSON; only the lake keeps it.
            keep_raw: args.lake.is_some(),
            ..Options::default()
        },
        batch_rows: args
            .batch_rows
            .unwrap_or(((256 << 10) / workers).clamp(4 << 10, 32 << 10))
            .max(1),
        stream_above_bytes: args.stream_above_bytes,
        chunk_bytes: args.chunk_bytes.max(1),
        lake: args.lake.is_some(),
    });

    let run_id = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut lake = args
        .lake
        .as_deref()
        .map(|dir| Lake::open(dir, &format!("{run_id}-{}", std::process::id())))
        .transpose()?;
    let mut alerts_out = AlertSink::create(args.alerts.as_deref())?;
    let mut dead_letter = args
        .dead_letter
        .as_deref()
        .map(DeadLetterSink::create)
        .transpose()?;

    // Set when a worker fails or output cannot be written: everyone stops early.
    let stop = Arc::new(AtomicBool::new(false));
    let (work_tx, work_rx) = sync_channel::<Work>(workers);
    // Updates may carry a batch for the lake: keep few in flight.
    let (update_tx, update_rx) = sync_channel::<Update>(workers);
    let reader = {
        let (plan, stop) = (Arc::clone(&plan), Arc::clone(&stop));
        let update_tx = update_tx.clone();
        std::thread::Builder::new()
            .name("demarc-reader".into())
            .spawn(move || read_inputs(files, &plan, &stop, &work_tx, &update_tx))?
    };
    let work_rx = Arc::new(Mutex::new(work_rx));
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers {
        let (plan, rules, work_rx, update_tx, stop) = (
            Arc::clone(&plan),
            Arc::clone(&rules),
            Arc::clone(&work_rx),
            update_tx.clone(),
            Arc::clone(&stop),
        );
        handles.push(
            std::thread::Builder::new()
                .name(format!("demarc-worker-{i}"))
                .spawn(move || {
                    let result = work(&plan, &rules, &work_rx, &update_tx, &stop);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    result
                })?,
        );
    }
    // Only the workers hold the work queue and only the threads the update queue, so
    // each side sees the other go away.
    drop(work_rx);
    drop(update_tx);

    let progress = progress_bar(total_bytes);
    let mut report = Report {
        rules: rules.rules().len(),
        ..Report::default()
    };
    let mut files = 0;
    let mut seen = HashSet::new();
    let mut events = 0u64;
    // Output errors end the loop; the workers then stop at their next send.
    let written: Result<()> = (|| {
        for update in &update_rx {
            progress.inc(update.disk_bytes);
            files += update.files;
            events += update.rows;
            if let Some((path, error)) = update.unreadable {
                progress
                    .suspend(|| eprintln!("warning: cannot read `{}`: {error}", path.display()));
                report
                    .unreadable_files
                    .insert(path.display().to_string(), error);
            }
            for alert in update.alerts {
                if !seen.insert(alert.alert_id.clone()) {
                    report.duplicate_alerts += 1;
                    continue;
                }
                *report
                    .alerts_by_rule
                    .entry(alert.rule_id.clone())
                    .or_default() += 1;
                report.alerts += 1;
                alerts_out.write(&alert)?;
                if let Some(lake) = lake.as_mut() {
                    lake.add_alert(&alert)?;
                }
            }
            alerts_out.flush()?;
            if let Some(sink) = dead_letter.as_mut() {
                for reject in &update.rejects {
                    sink.write(reject)?;
                }
            }
            if let (Some(lake), Some(batch)) = (lake.as_mut(), update.lake.as_ref()) {
                lake.add_events(batch)?;
            }
            progress.set_message(format!(
                "{files} files, {events} events, {} alerts",
                report.alerts
            ));
        }
        Ok(())
    })();
    if written.is_err() {
        stop.store(true, Ordering::Relaxed);
        // Drain what is in flight so that no thread stays blocked on a full queue.
        for _ in update_rx.try_iter() {}
    }
    progress.finish_and_clear();

    let mut stats = Stats::default();
    let mut failure = written.err();
    for handle in handles {
        match handle.join() {
            Ok(Ok(worker_stats)) => stats.merge(&worker_stats),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some(anyhow!("a worker thread panicked"))),
        }
    }
    match reader.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failure = failure.or(Some(e)),
        Err(_) => failure = failure.or(Some(anyhow!("the reader thread panicked"))),
    }
    if let Some(e) = failure {
        return Err(e);
    }
    alerts_out.finish()?;
    if let Some(sink) = dead_letter {
        sink.finish()?;
    }
    if let Some(lake) = lake {
        report.lake_files = lake.finish()?;
    }

    let seconds = started.elapsed().as_secs_f64();
    report.normalized = crate::normalize::Report::new(&stats, ignored_files, seconds);
    // The normalizer counts each run of lines of a large file as an input, and bytes
    // after decompression; report files and their size on disk.
    report.normalized.files = files;
    report.normalized.bytes = total_bytes;
    report.events_per_second = stats.events_in as f64 / seconds.max(1e-9);
    report.peak_rss_bytes = peak_rss_bytes();
    print_summary(&report, args.dead_letter.is_some());
    if let Some(path) = &args.report {
        write_json(path, &report)?;
    }
    if !report.unreadable_files.is_empty() {
        bail!(
            "{} file(s) could not be read; the rest were processed (see the warnings above)",
            report.unreadable_files.len()
        );
    }
    Ok(())
}

/// The reader thread: small files go to the workers by path; a large file that is
/// NDJSON is cut into runs of whole lines here.
fn read_inputs(
    files: Vec<PathBuf>,
    plan: &Plan,
    stop: &AtomicBool,
    work: &SyncSender<Work>,
    updates: &SyncSender<Update>,
) -> Result<()> {
    for path in files {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let disk_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        // A gzip file is checked from a smaller size: it holds several times as much.
        let gzip = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let threshold = if gzip {
            plan.stream_above_bytes / 8
        } else {
            plan.stream_above_bytes
        };
        let sent = if disk_bytes >= threshold {
            match stream_lines(&path, plan, stop, work) {
                Ok(Streamed::Done) => true,
                Ok(Streamed::NotNdjson) => work.send(Work::File { path, disk_bytes }).is_ok(),
                Ok(Streamed::Stopped) => false,
                Err(e) => updates
                    .send(Update {
                        disk_bytes,
                        files: 1,
                        unreadable: Some((path, format!("{e:#}"))),
                        ..Update::default()
                    })
                    .is_ok(),
            }
        } else {
            work.send(Work::File { path, disk_bytes }).is_ok()
        };
        if !sent {
            // The workers are gone: an error is on its way to the user.
            break;
        }
    }
    Ok(())
}

enum Streamed {
    Done,
    NotNdjson,
    /// The workers stopped taking work.
    Stopped,
}

/// Counts the bytes read from the file on disk, for progress.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn stream_lines(
    path: &Path,
    plan: &Plan,
    stop: &AtomicBool,
    work: &SyncSender<Work>,
) -> Result<Streamed> {
    let mut file = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut magic = [0u8; 2];
    let gzip = file.read(&mut magic)? == 2 && magic == [0x1f, 0x8b];
    drop(file);
    let count = Arc::new(AtomicU64::new(0));
    let file = Counting {
        inner: File::open(path)?,
        count: Arc::clone(&count),
    };
    let mut reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(file)
    };
    let origin = Origin::file(path.display().to_string());
    // A line longer than this is passed on cut to this length, and the normalizer
    // rejects it as `oversize`; the rest of it is skipped.
    let longest = plan.options.max_event_bytes.saturating_add(1);
    let mut buffer: Vec<u8> = Vec::with_capacity(plan.chunk_bytes * 2);
    let mut first_line = 1u64;
    let mut reported = 0u64;
    let mut first = true;
    let mut skipping = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(Streamed::Stopped);
        }
        let at_end = fill(&mut reader, &mut buffer, plan.chunk_bytes)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        if first {
            first = false;
            if !looks_like_ndjson(&buffer) {
                return Ok(Streamed::NotNdjson);
            }
        }
        if skipping {
            // The tail of an overlong line: drop it up to its end.
            match memchr::memchr(b'\n', &buffer) {
                Some(i) => {
                    buffer.drain(..=i);
                    first_line += 1;
                    skipping = false;
                }
                None => {
                    buffer.clear();
                    if !at_end {
                        continue;
                    }
                }
            }
        }
        let cut = if at_end {
            buffer.len()
        } else {
            match memchr::memrchr(b'\n', &buffer) {
                Some(i) => i + 1,
                None if buffer.len() > longest => {
                    skipping = true;
                    longest
                }
                // Read on until the line ends.
                None => continue,
            }
        };
        let rest = if skipping {
            Vec::new()
        } else {
            buffer.split_off(cut)
        };
        buffer.truncate(cut);
        let lines = memchr::memchr_iter(b'\n', &buffer).count() as u64;
        let read = count.load(Ordering::Relaxed);
        let item = Work::Lines {
            origin: origin.clone(),
            bytes: std::mem::replace(&mut buffer, rest),
            first_line,
            disk_bytes: read - reported,
            last: at_end,
        };
        reported = read;
        first_line += lines;
        if work.send(item).is_err() {
            return Ok(Streamed::Stopped);
        }
        if at_end {
            return Ok(Streamed::Done);
        }
    }
}

/// Reads until `buffer` holds at least `target` bytes or the input ends; returns
/// whether it ended.
fn fill(reader: &mut dyn Read, buffer: &mut Vec<u8>, target: usize) -> std::io::Result<bool> {
    let mut block = vec![0u8; 1 << 20];
    while buffer.len() < target {
        let n = reader.read(&mut block)?;
        if n == 0 {
            return Ok(true);
        }
        buffer.extend_from_slice(&block[..n]);
    }
    Ok(false)
}

/// A worker: normalize, batch, evaluate, hand back.
fn work(
    plan: &Plan,
    rules: &RuleSet,
    queue: &Mutex<Receiver<Work>>,
    updates: &SyncSender<Update>,
    stop: &AtomicBool,
) -> Result<Stats> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut normalizer = Normalizer::new(plan.options.clone());
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(normalizer.stats().clone());
        }
        let next = queue
            .lock()
            .map_err(|_| anyhow!("a worker thread panicked"))?
            .recv();
        let Ok(item) = next else { break };
        let mut update = Update::default();
        match item {
            Work::File { path, disk_bytes } => {
                update.disk_bytes = disk_bytes;
                update.files = 1;
                let origin = Origin::file(path.display().to_string());
                if disk_bytes > plan.options.max_input_bytes as u64 {
                    // Not loaded: it could not be read within the limit anyway.
                    let mut head = Vec::new();
                    let read = File::open(&path)
                        .and_then(|f| f.take(EXCERPT_BYTES as u64).read_to_end(&mut head));
                    match read {
                        Ok(_) => normalizer.reject_oversize_input(&origin, disk_bytes, &head),
                        Err(e) => update.unreadable = Some((path, e.to_string())),
                    }
                } else {
                    match std::fs::read(&path) {
                        Ok(bytes) => normalizer.push(&bytes, &origin),
                        Err(e) => update.unreadable = Some((path, e.to_string())),
                    }
                }
            }
            Work::Lines {
                origin,
                bytes,
                first_line,
                disk_bytes,
                last,
            } => {
                update.disk_bytes = disk_bytes;
                update.files = u64::from(last);
                normalizer.push_lines(&bytes, &origin, first_line);
            }
        }
        update.rejects = normalizer.take_rejects();
        if normalizer.pending_rows() >= plan.batch_rows {
            evaluate(&runtime, rules, &mut normalizer, plan, &mut update)?;
        }
        if updates.send(update).is_err() {
            return Ok(normalizer.stats().clone());
        }
    }
    let mut update = Update::default();
    evaluate(&runtime, rules, &mut normalizer, plan, &mut update)?;
    let _ = updates.send(update);
    Ok(normalizer.stats().clone())
}

fn evaluate(
    runtime: &tokio::runtime::Runtime,
    rules: &RuleSet,
    normalizer: &mut Normalizer,
    plan: &Plan,
    update: &mut Update,
) -> Result<()> {
    let Some(batch) = normalizer.take_batch() else {
        return Ok(());
    };
    update.rows = batch.num_rows() as u64;
    let detected_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    update.alerts = runtime
        .block_on(rules.alerts(batch.clone(), &detected_at))
        .context("running the rules")?;
    if plan.lake {
        update.lake = Some(batch);
    }
    Ok(())
}

/// Alerts as JSON lines, to standard output or a file.
enum AlertSink {
    Stdout(BufWriter<std::io::Stdout>),
    File(BufWriter<File>, PendingFile),
}

impl AlertSink {
    fn create(path: Option<&Path>) -> Result<Self> {
        Ok(match path {
            None => Self::Stdout(BufWriter::new(std::io::stdout())),
            Some(path) => {
                let (pending, file) = PendingFile::create(path)?;
                Self::File(BufWriter::new(file), pending)
            }
        })
    }

    fn write(&mut self, alert: &Alert) -> Result<()> {
        let writer: &mut dyn Write = match self {
            Self::Stdout(w) => w,
            Self::File(w, _) => w,
        };
        serde_json::to_writer(&mut *writer, alert)?;
        writer.write_all(b"\n").context("cannot write an alert")
    }

    fn flush(&mut self) -> Result<()> {
        match self {
            Self::Stdout(w) => w.flush().context("cannot write alerts to standard output"),
            Self::File(w, _) => w.flush().context("cannot write alerts"),
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Self::Stdout(mut w) => w.flush().context("cannot write alerts to standard output"),
            Self::File(w, pending) => {
                let file = w.into_inner().map_err(|e| e.into_error())?;
                pending.commit(&file)
            }
        }
    }
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
        &report.alerts_by_rule,
        report.duplicate_alerts,
    );
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
