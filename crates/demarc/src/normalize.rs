//! `demarc normalize`: files and directories in, one file of normalized events out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arrow::array::RecordBatch;
use clap::Args;
use demarc_model::Origin;
use demarc_normalize::{Normalizer, Options, Reject, Stats};
use rayon::prelude::*;
use serde::Serialize;

use demarc_pipeline::archive;
use demarc_pipeline::dead_letter::{DeadLetters as _, RejectFile};

use crate::output::{EventSink, write_json};

#[derive(Debug, Args)]
pub struct NormalizeArgs {
    /// Files or directories (read recursively) of CloudTrail or GCP audit logs
    #[arg(required = true, value_parser = crate::existing_path)]
    paths: Vec<PathBuf>,
    /// Where to write the normalized events: a *.parquet or *.jsonl file
    #[arg(long)]
    out: PathBuf,
    /// Where to write rejected input as JSON lines (reason, detail, position, excerpt);
    /// without it rejects are only counted
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Where to write the run summary as JSON
    #[arg(long)]
    report: Option<PathBuf>,
    /// Events larger than this many bytes are rejected as `oversize`
    #[arg(long, default_value_t = Options::default().max_event_bytes)]
    max_event_bytes: usize,
    /// Leave the `raw` column (each event's original JSON) empty
    #[arg(long)]
    no_raw: bool,
}

/// The `--report` document; `demarc backfill` adds to it.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub files: u64,
    /// Files met while walking directories and left out by name (documentation,
    /// spreadsheets, images, Parquet).
    pub ignored_files: u64,
    pub bytes: u64,
    pub events_in: u64,
    pub events_out: u64,
    /// Events no loaded rule could return, so no row was built for them (backfill
    /// without a lake).
    pub events_unmatched: u64,
    pub skipped: BTreeMap<String, u64>,
    pub rejected: BTreeMap<String, u64>,
    /// Events normalized in spite of how they were written, by leniency.
    pub lenient: BTreeMap<String, u64>,
    pub seconds: f64,
}

/// Counts by reason, the reasons as reports name them.
fn by_name(counts: &BTreeMap<impl std::fmt::Display, u64>) -> BTreeMap<String, u64> {
    counts.iter().map(|(r, n)| (r.to_string(), *n)).collect()
}

impl Report {
    pub fn new(stats: &Stats, ignored_files: u64, seconds: f64) -> Self {
        Self {
            files: stats.inputs,
            ignored_files,
            bytes: stats.bytes,
            events_in: stats.events_in,
            events_out: stats.events_out,
            events_unmatched: stats.events_unmatched,
            skipped: by_name(&stats.skipped),
            rejected: by_name(&stats.rejected),
            lenient: by_name(&stats.lenient),
            seconds,
        }
    }
}

/// What one file produced.
struct FileResult {
    batch: Option<RecordBatch>,
    rejects: Vec<Reject>,
    stats: Stats,
}

pub fn run(args: &NormalizeArgs) -> Result<()> {
    let started = Instant::now();
    let inputs = archive::collect(&args.paths)?;
    let ignored_files = inputs.ignored;
    let files: Vec<&Path> = inputs.paths().collect();
    if files.is_empty() {
        bail!("no files found under the given paths");
    }
    let options = Options {
        max_event_bytes: args.max_event_bytes,
        keep_raw: !args.no_raw,
        ..Options::default()
    };
    let mut events = EventSink::create(&args.out)?;
    let mut dead_letter = args
        .dead_letter
        .as_deref()
        .map(RejectFile::create)
        .transpose()?;

    // Files are normalized in parallel a chunk at a time and written in input order, so
    // the output is deterministic and memory is bounded by one chunk of files.
    let chunk = rayon::current_num_threads() * 4;
    let mut stats = Stats::default();
    for paths in files.chunks(chunk) {
        let results: Vec<Result<FileResult>> = paths
            .par_iter()
            .map(|path| normalize_file(path, &options))
            .collect();
        for result in results {
            let FileResult {
                batch,
                rejects,
                stats: file_stats,
            } = result?;
            if let Some(batch) = batch {
                events.write(&batch)?;
            }
            if let Some(sink) = dead_letter.as_mut() {
                sink.write_rejects(&rejects)?;
            }
            stats.merge(&file_stats);
        }
    }
    events.finish()?;
    if let Some(mut sink) = dead_letter {
        sink.finish()?;
    }

    let report = Report::new(&stats, ignored_files, started.elapsed().as_secs_f64());
    eprintln!(
        "{} files ({} ignored by name), {} events in, {} out, {} skipped, {} rejected, {:.2}s",
        report.files,
        report.ignored_files,
        report.events_in,
        report.events_out,
        stats.skipped_total(),
        stats.rejected_total(),
        report.seconds
    );
    crate::run::print_counts(&report.rejected, &report.lenient, &BTreeMap::new(), 0);
    if stats.rejected_total() > 0 && args.dead_letter.is_none() {
        eprintln!("  (pass --dead-letter FILE to keep the rejected input)");
    }
    if let Some(path) = &args.report {
        write_json(path, &report)?;
    }
    Ok(())
}

fn normalize_file(path: &Path, options: &Options) -> Result<FileResult> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut normalizer = Normalizer::new(options.clone());
    normalizer.push(&bytes, &Origin::file(path.display().to_string()));
    Ok(FileResult {
        batch: normalizer.take_batch(),
        rejects: normalizer.take_rejects(),
        stats: normalizer.stats().clone(),
    })
}
