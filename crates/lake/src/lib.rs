//! The lake: normalized events as Hive-partitioned Parquet and alerts as JSON lines,
//! under one folder, for ad-hoc SQL over history.
//!
//! ```text
//! DIR/events/provider=aws/date=2026-01-05/hour=10/part-<run>-<n>.parquet
//! DIR/alerts/date=2026-01-05/part-<run>-<n>.jsonl
//! ```
//!
//! Event files hold every column of the event schema except `provider`, which the path
//! carries (the Hive convention, so that DuckDB, DataFusion or Spark read the partition
//! columns `provider`, `date` and `hour` from the path without a clash). Alerts are
//! partitioned by the date of their triggering event, so a replay files an alert under
//! the same date. Every file is written under `*.partial`, synced and renamed: a crash
//! leaves no truncated file that looks finished. Each run writes new `part-<run>-…`
//! files and never rewrites another run's.
//!
//! The lake owns the layout and the Parquet encoding of events. It depends on the model
//! and on `demarc-sink` for its durable-file primitive only: never on Kafka, DataFusion
//! or the pipeline, so that the investigation side (`demarc sql`, compaction) can use
//! it without the streaming job.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use demarc_model::Alert;
use place::Target;

mod compact;
mod encode;
mod place;
mod resume;
mod split;

pub use compact::{Compacted, compact};
pub use encode::{parquet_properties, write_file};
pub use place::{Bucket, Place};
pub use resume::discard_after;
pub use split::{Part, file_schema, split};

use encode::{Encoders, Selection};

/// The folder of event files under the lake's root.
pub const EVENTS: &str = "events";
/// The folder of alert files under the lake's root.
pub const ALERTS: &str = "alerts";

/// What went wrong writing the lake; what was added since the last flush is not durable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{}`", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error(transparent)]
    File(#[from] demarc_sink::Error),
    #[error("cannot partition the events")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("cannot encode an alert")]
    Json(#[from] serde_json::Error),
    #[error("events without {0}")]
    Schema(&'static str),
    #[error("the lake's encoding threads stopped")]
    Closed,
    #[error("writing `{}` panicked; it was not written", .0.display())]
    Panicked(PathBuf),
    #[error("another `demarc lake compact` holds `{}`", .0.display())]
    Busy(PathBuf),
    #[error("cannot write `{url}`: {message}")]
    Store { url: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// A partition's buffered rows are written out as one file once they take this much
/// memory (or rows). Buffered rows keep the whole batch they came from alive, so the
/// memory counted is that of those batches.
///
/// Events mostly arrive in time order (an archive read in key order, a trail's
/// stream), so past `idle_bytes` a partition is written out, one file, once it is
/// complete: the last `idle_batches` batches did not touch it, and its provider's
/// events have reached `grace` past the end of its hour (CloudTrail delivers most
/// events within minutes; a later one starts a second file). The memory it held is
/// then reused at once, and a provider with few events is not cut into a file per
/// batch. Past `max_buffered_bytes` (events in no order), every partition is written
/// out, which bounds memory however the events are spread.
#[derive(Debug, Clone, Copy)]
struct Limits {
    file_bytes: usize,
    file_rows: usize,
    idle_bytes: usize,
    idle_batches: u64,
    /// Microseconds.
    grace: i64,
    max_buffered_bytes: usize,
}

const LIMITS: Limits = Limits {
    file_bytes: 96 << 20,
    file_rows: 1 << 20,
    idle_bytes: 16 << 20,
    idle_batches: 1,
    grace: 15 * 60 * 1_000_000,
    max_buffered_bytes: 192 << 20,
};

/// Alerts buffered before they are written out.
const MAX_BUFFERED_ALERTS: usize = 10_000;

/// A partition: provider and the hour (since the epoch) of the events.
type Key = (String, i64);

/// A partition's buffered rows.
#[derive(Debug, Default)]
struct Buffered {
    /// The parts' batches and rows.
    parts: Vec<Selection>,
    rows: usize,
    bytes: usize,
    /// The number of the last batch that added rows (see [`Lake::batches`]).
    touched: u64,
}

#[derive(Debug)]
pub struct Lake {
    place: Place,
    run: String,
    next_part: u64,
    events: HashMap<Key, Buffered>,
    /// The batches buffered rows keep alive: their memory and how many parts.
    pinned: HashMap<usize, (usize, usize)>,
    pinned_bytes: usize,
    /// Batches added so far (calls of [`Lake::add_parts`]).
    batches: u64,
    /// The latest event time seen per provider (microseconds).
    latest: HashMap<String, i64>,
    alerts: BTreeMap<String, Vec<String>>,
    buffered_alerts: usize,
    encoders: Encoders,
    limits: Limits,
    /// Files written so far.
    pub files: u64,
}

impl Lake {
    /// A lake under `root` (created if missing); `run` names this run's files, with a
    /// random part after it, so that no two processes on any hosts pick the same names
    /// (and a file is never replaced: see [`PendingFile::create_new`]). Files are
    /// encoded on one thread per core.
    pub fn open(root: &Path, run: &str) -> Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        Self::with_encoders(root.into(), run, threads)
    }

    /// [`Lake::open`] at `place` (a folder or a bucket) with `threads` encoding threads.
    pub fn with_encoders(place: Place, run: &str, threads: usize) -> Result<Self> {
        place.create()?;
        let random = uuid::Uuid::new_v4().simple().to_string();
        Ok(Self {
            place,
            run: format!("{run}-{}", &random[..12]),
            next_part: 0,
            events: HashMap::new(),
            pinned: HashMap::new(),
            pinned_bytes: 0,
            batches: 0,
            latest: HashMap::new(),
            alerts: BTreeMap::new(),
            buffered_alerts: 0,
            encoders: Encoders::start(threads)?,
            limits: LIMITS,
            files: 0,
        })
    }

    /// Files the batch's rows under their partitions, writing out what is due. The
    /// pipeline splits batches on its workers and calls [`Lake::add_parts`] instead.
    pub fn add_events(&mut self, batch: &RecordBatch) -> Result<()> {
        self.add_parts(split(batch)?)
    }

    /// Buffers parts of batches (see [`split`]) under their partitions, writing out
    /// what is due.
    pub fn add_parts(&mut self, parts: Vec<Part>) -> Result<()> {
        self.batches += 1;
        for part in parts {
            match self.latest.get_mut(&part.provider) {
                Some(latest) => *latest = (*latest).max(part.latest),
                None => {
                    self.latest.insert(part.provider.clone(), part.latest);
                }
            }
            let key = (part.provider, part.hour);
            let pin = self
                .pinned
                .entry(batch_id(&part.batch))
                .or_insert((part.batch_bytes, 0));
            if pin.1 == 0 {
                self.pinned_bytes += pin.0;
            }
            pin.1 += 1;
            let entry = self.events.entry(key.clone()).or_default();
            entry.rows += part.rows.len();
            entry.bytes += part.bytes;
            entry.touched = self.batches;
            entry.parts.push((part.batch, Some(part.rows)));
            if entry.rows >= self.limits.file_rows || entry.bytes >= self.limits.file_bytes {
                self.write_partition(&key)?;
            }
        }
        let limits = self.limits;
        if self.pinned_bytes > limits.idle_bytes {
            let idle: Vec<Key> = self
                .events
                .iter()
                .filter(|((provider, hour), b)| {
                    let end = (hour + 1).saturating_mul(split::MICROS_PER_HOUR);
                    let reached = self.latest.get(provider).copied().unwrap_or(i64::MIN);
                    b.touched + limits.idle_batches <= self.batches
                        && reached >= end.saturating_add(limits.grace)
                })
                .map(|(key, _)| key.clone())
                .collect();
            idle.iter().try_for_each(|key| self.write_partition(key))?;
        }
        if self.pinned_bytes > limits.max_buffered_bytes {
            self.write_partitions()?;
        }
        Ok(())
    }

    /// Buffers an alert under the date of its event.
    pub fn add_alert(&mut self, alert: &Alert) -> Result<()> {
        let date = alert.event_time.get(..10).unwrap_or("unknown").to_owned();
        self.alerts
            .entry(date)
            .or_default()
            .push(serde_json::to_string(alert)?);
        self.buffered_alerts += 1;
        if self.buffered_alerts >= MAX_BUFFERED_ALERTS {
            self.write_alerts()?;
        }
        Ok(())
    }

    /// Writes everything still buffered.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        Ok(self.files)
    }

    /// Writes everything buffered so far, each file synced and renamed into place:
    /// once this returns, what was added is durable.
    pub fn flush(&mut self) -> Result<()> {
        self.write_partitions()?;
        if self.buffered_alerts > 0 {
            self.write_alerts()?;
        }
        self.encoders.wait()
    }

    /// This run's name, as its files carry it (`part-<run>-<n>.…`).
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The number of this run's latest file: once [`Lake::flush`] has returned, every
    /// file of the run up to it is durable.
    pub fn parts(&self) -> u64 {
        self.next_part
    }

    fn part_name(&mut self, extension: &str) -> String {
        self.next_part += 1;
        format!("part-{}-{:05}.{extension}", self.run, self.next_part)
    }

    /// Hands every buffered partition to the encoders.
    fn write_partitions(&mut self) -> Result<()> {
        let keys: Vec<Key> = self.events.keys().cloned().collect();
        keys.iter().try_for_each(|key| self.write_partition(key))
    }

    fn write_partition(&mut self, key: &Key) -> Result<()> {
        let Some(Buffered { parts: batches, .. }) = self.events.remove(key) else {
            return Ok(());
        };
        for (batch, _) in &batches {
            let id = batch_id(batch);
            if let Some(pin) = self.pinned.get_mut(&id) {
                pin.1 -= 1;
                if pin.1 == 0 {
                    self.pinned_bytes -= pin.0;
                    self.pinned.remove(&id);
                }
            }
        }
        let (provider, hour) = key;
        let [provider, date, hour] = partition_folders(provider, *hour)?;
        let name = self.part_name("parquet");
        let target = self
            .place
            .target(&[EVENTS, &provider, &date, &hour], &name)?;
        self.encoders.submit(target, batches)?;
        self.files += 1;
        Ok(())
    }

    fn write_alerts(&mut self) -> Result<()> {
        for (date, lines) in std::mem::take(&mut self.alerts) {
            let name = self.part_name("jsonl");
            let target = self
                .place
                .target(&[ALERTS, &format!("date={date}")], &name)?;
            write_lines(&target, lines.iter().map(String::as_str))?;
            self.files += 1;
        }
        self.buffered_alerts = 0;
        Ok(())
    }
}

/// Identifies the batch a part came from: its parts share its columns, and the column
/// cannot be freed (and its address reused) while a part holds it.
fn batch_id(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .first()
        .map_or(0, |c| std::sync::Arc::as_ptr(c).cast::<()>() as usize)
}

/// Writes `lines` to a new file at `target`, whole or not at all.
pub(crate) fn write_lines<'a>(target: &Target, lines: impl Iterator<Item = &'a str>) -> Result<()> {
    target.write(|mut sink| {
        for line in lines {
            sink.write_all(line.as_bytes())
                .and_then(|()| sink.write_all(b"\n"))
                .map_err(io_error("write", Path::new(&target.name())))?;
        }
        Ok(sink)
    })
}

/// `provider=…`, `date=…`, `hour=…`: the folders under `events/` of a provider's hour
/// since the epoch.
fn partition_folders(provider: &str, hour: i64) -> Result<[String; 3]> {
    let start = chrono::DateTime::from_timestamp(hour.saturating_mul(3600), 0)
        .ok_or(Error::Schema("an event hour within chrono's range"))?;
    Ok([
        format!("provider={provider}"),
        format!("date={}", start.format("%Y-%m-%d")),
        format!("hour={}", start.format("%H")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use demarc_model::Origin;
    use demarc_normalize::{Normalizer, Options};

    /// CloudTrail events at these minutes after 2026-01-05 00:00, as one batch.
    fn events_at(minutes: impl IntoIterator<Item = u32>) -> RecordBatch {
        let mut normalizer = Normalizer::new(Options::default());
        for (n, minute) in minutes.into_iter().enumerate() {
            let event = format!(
                r#"{{"eventVersion":"1.08","eventTime":"2026-01-05T{:02}:{:02}:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"e-{minute}-{n}","recipientAccountId":"111122223333"}}"#,
                minute / 60,
                minute % 60
            );
            normalizer.push(event.as_bytes(), &Origin::file("test"));
        }
        normalizer.take_batch().expect("rows")
    }

    /// A GCP audit entry at this minute after 2026-01-05 00:00, alone in a batch.
    fn gcp_at(minute: u32) -> RecordBatch {
        let mut normalizer = Normalizer::new(Options::default());
        let entry = format!(
            r#"{{"protoPayload":{{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","status":{{}},"authenticationInfo":{{"principalEmail":"alice@example.com"}},"serviceName":"storage.googleapis.com","methodName":"storage.buckets.get","resourceName":"projects/_/buckets/b"}},"insertId":"g-{minute}","timestamp":"2026-01-05T{:02}:{:02}:00Z","logName":"projects/acme/logs/cloudaudit.googleapis.com%2Factivity","resource":{{"type":"gcs_bucket","labels":{{"project_id":"acme"}}}}}}"#,
            minute / 60,
            minute % 60
        );
        normalizer.push(entry.as_bytes(), &Origin::file("test"));
        normalizer.take_batch().expect("a row")
    }

    /// A provider's event files by partition folder (`date=…/hour=…`), in order.
    fn partitions(root: &Path, provider: &str) -> BTreeMap<String, Vec<PathBuf>> {
        let mut out = BTreeMap::new();
        let base = root.join(format!("{EVENTS}/provider={provider}"));
        for date in std::fs::read_dir(&base).expect("dates") {
            for hour in std::fs::read_dir(date.expect("date").path()).expect("hours") {
                let hour = hour.expect("hour").path();
                let name = hour
                    .strip_prefix(&base)
                    .expect("under")
                    .display()
                    .to_string();
                let files = std::fs::read_dir(&hour)
                    .expect("files")
                    .map(|f| f.expect("file").path())
                    .collect();
                out.insert(name, files);
            }
        }
        out
    }

    /// How many files each of a provider's partitions has, in partition order.
    fn files_per_hour(root: &Path, provider: &str) -> Vec<usize> {
        partitions(root, provider).values().map(Vec::len).collect()
    }

    #[test]
    fn events_in_time_order_give_one_file_per_hour_with_little_memory_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lake = Lake::with_encoders(dir.path().into(), "ordered", 1).expect("lake");
        lake.limits.idle_bytes = 0;
        lake.limits.idle_batches = 2;
        let mut most = 0;
        // Eight hours, a batch every 20 minutes.
        for start in (0..8 * 60).step_by(20) {
            lake.add_events(&events_at(start..start + 20)).expect("add");
            most = most.max(lake.events.len());
        }
        lake.finish().expect("finish");
        assert_eq!(files_per_hour(dir.path(), "aws"), vec![1; 8]);
        // An hour's partition is written once no batch has touched it for two batches.
        assert!(most <= 2, "{most} partitions buffered at once");
    }

    #[test]
    fn a_provider_with_few_events_is_not_cut_into_a_file_per_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lake = Lake::with_encoders(dir.path().into(), "quiet", 1).expect("lake");
        lake.limits.idle_bytes = 0;
        // AWS every 5 minutes over two hours; a GCP entry in every fourth batch only.
        for start in (0..120).step_by(5) {
            lake.add_events(&events_at(start..start + 5)).expect("add");
            if start % 20 == 0 {
                lake.add_events(&gcp_at(start + 1)).expect("add");
            }
        }
        lake.finish().expect("finish");
        assert_eq!(files_per_hour(dir.path(), "gcp"), vec![1, 1]);
        assert_eq!(files_per_hour(dir.path(), "aws"), vec![1, 1]);
    }

    #[test]
    fn late_events_past_the_grace_start_a_second_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lake = Lake::with_encoders(dir.path().into(), "late", 1).expect("lake");
        lake.limits.idle_bytes = 0;
        let hour_0 = ("aws".to_owned(), 490_992);
        lake.add_events(&events_at(0..30)).expect("add");
        // 01:14 is within the 15 minutes of grace after hour 0: it stays open.
        lake.add_events(&events_at(60..75)).expect("add");
        assert!(lake.events.contains_key(&hour_0));
        lake.add_events(&events_at([59])).expect("add");
        // Past the grace, and untouched by the last batch: hour 0 is written.
        lake.add_events(&events_at(75..80)).expect("add");
        assert!(!lake.events.contains_key(&hour_0));
        // An event of hour 0 after that starts a second file.
        lake.add_events(&events_at([58])).expect("add");
        lake.finish().expect("finish");
        assert_eq!(files_per_hour(dir.path(), "aws"), vec![2, 1]);
    }

    #[test]
    fn events_in_no_order_keep_memory_under_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lake = Lake::with_encoders(dir.path().into(), "shuffled", 1).expect("lake");
        let batch_bytes = split(&events_at(0..60)).expect("split")[0].batch_bytes;
        lake.limits.idle_bytes = usize::MAX;
        lake.limits.max_buffered_bytes = 4 * batch_bytes;
        let mut rows = 0;
        // Every batch touches two hours twelve hours apart, in a cycle over 24 hours:
        // no partition is ever idle, so only the bound writes them out.
        for round in 0..5 {
            for hour in 0..12u32 {
                let minutes: Vec<u32> = (0..30)
                    .map(|m| hour * 60 + m + round)
                    .chain((0..30).map(|m| (hour + 12) * 60 + m + round))
                    .collect();
                rows += minutes.len();
                lake.add_events(&events_at(minutes)).expect("add");
                assert!(
                    lake.pinned_bytes <= lake.limits.max_buffered_bytes,
                    "{} bytes held, bound {}",
                    lake.pinned_bytes,
                    lake.limits.max_buffered_bytes
                );
            }
        }
        lake.finish().expect("finish");
        let partitions = partitions(dir.path(), "aws");
        assert_eq!(partitions.len(), 24, "{partitions:?}");
        let written: i64 = partitions
            .values()
            .flatten()
            .map(|path| {
                use parquet::file::reader::{FileReader, SerializedFileReader};
                let file = std::fs::File::open(path).expect("open");
                let reader = SerializedFileReader::new(file).expect("parquet");
                reader.metadata().file_metadata().num_rows()
            })
            .sum();
        assert_eq!(written as usize, rows);
    }

    #[test]
    fn two_processes_with_the_same_run_name_never_overwrite_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut normalizer = Normalizer::new(Options::default());
        normalizer.push(
            br#"{"eventVersion":"1.08","eventTime":"2026-01-05T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"e-1","recipientAccountId":"111122223333"}"#,
            &Origin::file("test"),
        );
        let batch = normalizer.take_batch().expect("a row");
        // Same second, same PID (two containers): the old naming gave both the same
        // file names, and the second rename replaced the first file.
        let mut lakes = [
            Lake::open(dir.path(), "20260105T100000-1").expect("lake"),
            Lake::open(dir.path(), "20260105T100000-1").expect("lake"),
        ];
        for lake in &mut lakes {
            lake.add_events(&batch).expect("add");
            lake.flush().expect("flush");
        }
        let partition = dir
            .path()
            .join("events/provider=aws/date=2026-01-05/hour=10");
        let mut names: Vec<String> = std::fs::read_dir(&partition)
            .expect("partition")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| n.ends_with(".parquet")), "{names:?}");
    }
}
