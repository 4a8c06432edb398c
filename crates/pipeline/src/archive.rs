//! The archive source: files and folders of audit logs (CloudTrail's S3 layout, GCS
//! exports, any envelope, gzip or not), locally or in object storage ([`remote`],
//! listed by day with [`layout`]), cut into batches of about `batch_rows` events.
//!
//! The source thread only lists and groups: a small file goes into a batch by path
//! and is read by the worker that takes the batch, so reading and decompressing are
//! spread over the workers. Objects are fetched ahead of the source, several at once,
//! and handed over in memory. A large NDJSON file or object (plain or gzip) is read
//! here in runs of whole lines, so its size never shows in memory. Batches are handed
//! over in input order and written in that order, so alerts come out in the order of
//! the input. Memory is bounded by the batches in flight and the objects fetched
//! ahead, not by the size of the archive.

pub mod checkpoint;
mod fetch;
mod inputs;
pub mod layout;
pub mod remote;

use std::fs::File;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use demarc_model::Origin;
use demarc_normalize::looks_like_ndjson;

pub use checkpoint::Checkpoint;
pub use inputs::{Input, Inputs, collect, collect_all};
pub use layout::Selection;
pub use remote::{Object, StoreOptions};

use crate::complete::{Acknowledge, Outputs, Summary};
use crate::engine::{Batch, Dispatcher, Engine, Payload, Position, Record};
use crate::{Error, Result};
use fetch::{Ahead, Item};

/// JSON bytes per event, and JSON bytes per gzip byte, of CloudTrail archives: the
/// estimate a batch is cut on before its files are read. Files of 750 generated events
/// compress 6.7 to 1, files of 100-500 about 5 to 1; erring high keeps batches (and the
/// memory of the workers) near `batch_rows`.
const EVENT_BYTES: u64 = 1_400;
const GZIP_RATIO: u64 = 7;

/// Files in one batch at most, however small they are.
const MAX_BATCH_FILES: usize = 4_096;

/// How archives are cut.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// Events per batch the rules run over, estimated from the bytes.
    pub batch_rows: usize,
    /// Files at least this large are checked for NDJSON and then read in runs of lines
    /// (gzip files from an eighth of it).
    pub stream_above_bytes: u64,
    /// Size of those runs of lines.
    pub chunk_bytes: usize,
    /// Events larger than this are rejected as oversize (a longer line is cut here).
    pub max_event_bytes: usize,
    /// Objects fetched at once, ahead of the workers.
    pub fetch_ahead: usize,
}

/// What an archive batch covers: whole files done, and bytes read from disk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Progress {
    pub files: u64,
    pub disk_bytes: u64,
    /// The last whole input done (a path or an object's URL).
    pub last: Option<Arc<str>>,
    /// Whether the batch ends where an input ends (not within a large one read in
    /// runs of lines): only there can a run resume.
    pub boundary: bool,
}

impl Progress {
    /// A whole input, `name`, of which these bytes are read.
    fn whole(name: &str, disk_bytes: u64) -> Self {
        Self {
            files: 1,
            disk_bytes,
            last: Some(name.into()),
            boundary: true,
        }
    }

    /// Part of an input that goes on in the next batches.
    fn part(disk_bytes: u64) -> Self {
        Self {
            disk_bytes,
            ..Self::default()
        }
    }
}

impl Position for Progress {
    fn merge(&mut self, later: Self) {
        self.files += later.files;
        self.disk_bytes += later.disk_bytes;
        if later.last.is_some() {
            self.last = later.last;
        }
        self.boundary = later.boundary;
    }
}

/// Called as each batch is written, in input order, with its progress and the run so
/// far.
pub type OnProgress = Box<dyn FnMut(&Progress, &Summary) + Send>;

/// Archive progress, reported as batches are written, and with a checkpoint, recorded
/// as the outputs become durable; without one, a backfill's outputs are complete only
/// when the run ends.
struct Report {
    total: Arc<Mutex<Progress>>,
    on_progress: OnProgress,
    checkpoint: Option<Checkpoint>,
    /// Unreadable inputs seen so far.
    unreadable: usize,
}

impl Acknowledge<Progress> for Report {
    fn completed(&mut self, position: &Progress, summary: &Summary) {
        if let Ok(mut total) = self.total.lock() {
            total.merge(position.clone());
        }
        if summary.unreadable.len() > self.unreadable {
            self.unreadable = summary.unreadable.len();
            if let Some(checkpoint) = self.checkpoint.as_mut() {
                checkpoint.freeze();
            }
        }
        (self.on_progress)(position, summary);
    }

    fn lake_durable(&mut self, run: &str, parts: u64) {
        if let Some(checkpoint) = self.checkpoint.as_mut() {
            checkpoint.lake_durable(run, parts);
        }
    }

    fn acknowledge(&mut self, position: &Progress, wait: bool) -> Result<()> {
        match self.checkpoint.as_mut() {
            Some(checkpoint) => checkpoint.durable(position, wait),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<()> {
        match self.checkpoint.as_mut() {
            Some(checkpoint) => checkpoint.finish(),
            None => Ok(()),
        }
    }
}

/// Reads `inputs` through the engine into `outputs` (whose acknowledgement is the
/// progress report); what was done, and the progress in total.
pub fn run(
    inputs: Inputs,
    settings: &ArchiveSettings,
    engine: &Engine,
    outputs: Outputs<Progress>,
) -> Result<Summary> {
    let (dispatcher, stages) = engine.start(outputs)?;
    let mut source = Source {
        settings,
        dispatcher,
        batch: Batch::default(),
        estimate: 0,
        target: settings.batch_rows.max(1) as u64 * EVENT_BYTES,
        streamed: 0,
    };
    let handle = inputs.runtime.as_ref().map(|r| r.handle().clone());
    let ahead = Ahead::new(inputs.files, handle, settings, is_large);
    let read = source.read(ahead, engine);
    // Close the queue: the workers finish, the completion stage writes the rest.
    drop(source);
    let summary = stages.join()?;
    read?;
    Ok(summary)
}

/// The outputs' acknowledgement for an archive run: `on_progress` for each batch, the
/// running total, and the checkpoint if the run has one.
pub fn progress(
    on_progress: OnProgress,
    checkpoint: Option<Checkpoint>,
) -> (Box<dyn Acknowledge<Progress>>, Arc<Mutex<Progress>>) {
    let total = Arc::new(Mutex::new(Progress::default()));
    let report = Report {
        total: Arc::clone(&total),
        on_progress,
        checkpoint,
        unreadable: 0,
    };
    (Box::new(report), total)
}

struct Source<'a> {
    settings: &'a ArchiveSettings,
    dispatcher: Dispatcher<Progress>,
    batch: Batch<Progress>,
    /// JSON bytes the open batch is estimated to hold.
    estimate: u64,
    target: u64,
    /// Bytes of the file being streamed already counted in batches.
    streamed: u64,
}

impl Source<'_> {
    fn read(&mut self, mut ahead: Ahead, engine: &Engine) -> Result<()> {
        while let Some(item) = ahead.next() {
            if engine.shared.stopping() {
                break;
            }
            let handed = match item {
                Item::File(path) => self.read_file(path),
                Item::Whole(object, fetched) => {
                    let url = object.url();
                    let origin = Origin::file(url.as_str());
                    let progress = Progress::whole(&url, object.size);
                    match fetched {
                        Ok(bytes) => {
                            let estimate = estimate(&url, object.size);
                            let payload = Payload::Bytes(Vec::from(bytes));
                            self.push(origin, payload, progress, estimate)
                        }
                        Err(error) => self.push(origin, Payload::Unreadable(error), progress, 0),
                    }
                }
                Item::Large(object) => {
                    let url = object.url();
                    let streamed = self.stream_lines(Path::new(&url), ahead.reader(object.clone()));
                    match streamed {
                        // Not lines: one document, fetched whole (the normalizer bounds
                        // what it may expand to).
                        Ok(Streamed::NotNdjson) => {
                            let payload = match ahead.fetch_now(&object) {
                                Ok(bytes) => Payload::Bytes(Vec::from(bytes)),
                                Err(error) => Payload::Unreadable(error),
                            };
                            let progress = Progress::whole(&url, object.size);
                            let estimate = estimate(&url, object.size);
                            self.push(Origin::file(url), payload, progress, estimate)
                        }
                        other => self.after_streaming(Path::new(&url), object.size, other),
                    }
                }
            };
            if !handed {
                // The workers are gone: an error is on its way to the user.
                break;
            }
        }
        self.flush();
        Ok(())
    }

    /// Hands over a local file: by path, or in runs of lines when it is large.
    fn read_file(&mut self, path: PathBuf) -> bool {
        let disk_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        if !is_large_file(&path.to_string_lossy(), disk_bytes, self.settings) {
            return self.push_file(path, disk_bytes);
        }
        let streamed = File::open(&path)
            .map_err(Error::io("open", &path))
            .and_then(|file| self.stream_lines(&path, Box::new(file)));
        match streamed {
            Ok(Streamed::NotNdjson) => self.push_file(path, disk_bytes),
            other => self.after_streaming(&path, disk_bytes, other),
        }
    }

    /// Reports how streaming an input in runs of lines ended; false if the workers are
    /// gone.
    fn after_streaming(&mut self, path: &Path, size: u64, streamed: Result<Streamed>) -> bool {
        let origin = Origin::file(path.display().to_string());
        // What was read of it is in the batches already; the rest of its size goes with
        // the report, so that the progress adds up.
        let rest = Progress::whole(
            &path.display().to_string(),
            size.saturating_sub(self.streamed),
        );
        match streamed {
            Ok(Streamed::Done | Streamed::NotNdjson) => true,
            Ok(Streamed::Stopped) => false,
            // The lines before the failure are in the batches: the report says where
            // reading stopped.
            Ok(Streamed::Failed { error, line, read }) => {
                let text = format!(
                    "read error at line {line}, after {read} bytes of the file \
                     (the {} lines before it were processed): {error}",
                    line - 1
                );
                self.push(origin, Payload::Unreadable(text), rest, 0)
            }
            Err(error) => self.push(origin, Payload::Unreadable(error_text(&error)), rest, 0),
        }
    }

    fn push_file(&mut self, path: PathBuf, disk_bytes: u64) -> bool {
        let estimate = estimate(&path.to_string_lossy(), disk_bytes);
        let name = path.display().to_string();
        let progress = Progress::whole(&name, disk_bytes);
        self.push(
            Origin::file(name),
            Payload::File { path, disk_bytes },
            progress,
            estimate,
        )
    }

    /// Adds a record to the open batch, and hands the batch over when it is full;
    /// false if the workers are gone.
    fn push(
        &mut self,
        origin: Origin,
        payload: Payload,
        progress: Progress,
        estimate: u64,
    ) -> bool {
        self.batch.push(Record {
            origin,
            key: None,
            payload,
            produced_ms: None,
            received: None,
        });
        self.batch.position.merge(progress);
        self.estimate += estimate;
        if self.estimate >= self.target || self.batch.len() >= MAX_BATCH_FILES {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        self.estimate = 0;
        let batch = std::mem::take(&mut self.batch);
        batch.is_empty() || self.dispatcher.send(batch)
    }

    /// Reads `raw` (plain or gzip) in runs of whole lines if it is NDJSON.
    fn stream_lines(&mut self, path: &Path, raw: Box<dyn Read + '_>) -> Result<Streamed> {
        let count = Arc::new(AtomicU64::new(0));
        let mut buffered = std::io::BufReader::with_capacity(
            1 << 16,
            Counting {
                inner: raw,
                count: Arc::clone(&count),
            },
        );
        let gzip = buffered
            .fill_buf()
            .map_err(Error::io("read", path))?
            .starts_with(&[0x1f, 0x8b]);
        let mut reader: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let origin = Origin::file(path.display().to_string());
        // A line longer than this is passed on cut to this length, and the normalizer
        // rejects it as `oversize`; the rest of it is skipped.
        let longest = self.settings.max_event_bytes.saturating_add(1);
        let chunk = self.settings.chunk_bytes.max(1);
        let mut buffer: Vec<u8> = Vec::with_capacity(chunk * 2);
        let mut first_line = 1u64;
        self.streamed = 0;
        let mut first = true;
        let mut skipping = false;
        loop {
            let at_end = match fill(&mut reader, &mut buffer, chunk) {
                Ok(at_end) => at_end,
                // Nothing shows yet that the file is NDJSON: it is unreadable as a whole.
                Err(error) if first && !looks_like_ndjson(&buffer) => {
                    return Err(Error::io("read", path)(error));
                }
                Err(error) => {
                    // The whole lines read before the failure are processed; the rest
                    // of the file is reported with where it starts.
                    let whole = if skipping {
                        0
                    } else {
                        memchr::memrchr(b'\n', &buffer).map_or(0, |i| i + 1)
                    };
                    buffer.truncate(whole);
                    let lines = memchr::memchr_iter(b'\n', &buffer).count() as u64;
                    let read = count.load(Ordering::Relaxed);
                    if !buffer.is_empty() {
                        let progress = Progress::part(read - self.streamed);
                        self.streamed = read;
                        let estimate = buffer.len() as u64;
                        let bytes = std::mem::take(&mut buffer);
                        if !self.push(
                            origin.clone(),
                            Payload::Lines { bytes, first_line },
                            progress,
                            estimate,
                        ) {
                            return Ok(Streamed::Stopped);
                        }
                    }
                    return Ok(Streamed::Failed {
                        error: error.to_string(),
                        line: first_line + lines,
                        read,
                    });
                }
            };
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
            let bytes = std::mem::replace(&mut buffer, rest);
            let estimate = bytes.len() as u64;
            let progress = if at_end {
                Progress::whole(&path.display().to_string(), read - self.streamed)
            } else {
                Progress::part(read - self.streamed)
            };
            self.streamed = read;
            let handed = self.push(
                origin.clone(),
                Payload::Lines { bytes, first_line },
                progress,
                estimate,
            );
            first_line += lines;
            if !handed {
                return Ok(Streamed::Stopped);
            }
            if at_end {
                return Ok(Streamed::Done);
            }
        }
    }
}

/// Whether a gzip input, by its name: it holds several times its size.
fn gzip_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// JSON bytes an input of `size` bytes is estimated to hold.
fn estimate(name: &str, size: u64) -> u64 {
    if gzip_name(name) {
        size * GZIP_RATIO
    } else {
        size
    }
}

/// Whether an input is large enough to be checked for NDJSON and read in runs of lines
/// (a gzip file from an eighth of the size).
fn is_large_file(name: &str, size: u64, settings: &ArchiveSettings) -> bool {
    let threshold = if gzip_name(name) {
        settings.stream_above_bytes / 8
    } else {
        settings.stream_above_bytes
    };
    size >= threshold
}

fn is_large(object: &Object, settings: &ArchiveSettings) -> bool {
    is_large_file(object.location.as_ref(), object.size, settings)
}

enum Streamed {
    Done,
    NotNdjson,
    /// The workers stopped taking work.
    Stopped,
    /// Reading failed at this line, after this many bytes of the file; the lines before
    /// it were handed over.
    Failed {
        error: String,
        line: u64,
        read: u64,
    },
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

/// An error's message and causes, without the path (the record names it).
fn error_text(error: &Error) -> String {
    let mut text = match error {
        Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    let mut cause = std::error::Error::source(error).and_then(std::error::Error::source);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
