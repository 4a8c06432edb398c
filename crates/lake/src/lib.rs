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
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{Schema, TimestampMicrosecondType};
use demarc_model::{Alert, column};
use demarc_sink::PendingFile;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

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

/// How event Parquet files are written: zstd, and neither dictionary nor statistics
/// for the columns whose every value differs (ids and JSON documents), where building
/// them only costs time: nobody prunes on the min and max of a JSON text.
pub fn parquet_properties() -> WriterProperties {
    let unique = [
        column::EVENT_ID,
        column::REQUEST,
        column::RESPONSE,
        column::ADDITIONAL,
        column::RAW,
    ];
    unique
        .into_iter()
        .fold(
            WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())),
            |props, name| {
                props
                    .set_column_dictionary_enabled(ColumnPath::from(name), false)
                    .set_column_statistics_enabled(ColumnPath::from(name), EnabledStatistics::None)
            },
        )
        .build()
}

/// Rows of one partition written to one file once buffered.
const FILE_ROWS: usize = 65_536;
/// Rows buffered across partitions before the largest are written out, which bounds
/// memory however many partitions an archive spans.
const MAX_BUFFERED_ROWS: usize = 98_304;
/// Alerts buffered before they are written out.
const MAX_BUFFERED_ALERTS: usize = 10_000;

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// A partition: provider and the hour (since the epoch) of the events.
type Key = (String, i64);

#[derive(Debug)]
pub struct Lake {
    root: PathBuf,
    run: String,
    next_part: u64,
    events: HashMap<Key, (Vec<RecordBatch>, usize)>,
    buffered_rows: usize,
    alerts: BTreeMap<String, Vec<String>>,
    buffered_alerts: usize,
    /// Files written so far.
    pub files: u64,
}

impl Lake {
    /// A lake under `root` (created if missing); `run` names this run's files, with a
    /// random part after it, so that no two processes on any hosts pick the same names
    /// (and a file is never replaced: see [`PendingFile::create_new`]).
    pub fn open(root: &Path, run: &str) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(io_error("create the lake folder", root))?;
        let random = uuid::Uuid::new_v4().simple().to_string();
        Ok(Self {
            root: root.to_owned(),
            run: format!("{run}-{}", &random[..12]),
            next_part: 0,
            events: HashMap::new(),
            buffered_rows: 0,
            alerts: BTreeMap::new(),
            buffered_alerts: 0,
            files: 0,
        })
    }

    /// Files the batch's rows under their partitions, writing out what is due.
    pub fn add_events(&mut self, batch: &RecordBatch) -> Result<()> {
        let time = batch
            .column_by_name(column::TIME)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or(Error::Schema("a microsecond `time` column"))?;
        let provider = batch
            .column_by_name(column::PROVIDER)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or(Error::Schema("a `provider` column"))?;
        let mut rows: HashMap<(&str, i64), Vec<u32>> = HashMap::new();
        for row in 0..batch.num_rows() {
            let hour = time.value(row).div_euclid(MICROS_PER_HOUR);
            let index = u32::try_from(row).map_err(|_| Error::Schema("fewer than 2^32 rows"))?;
            rows.entry((provider.value(row), hour))
                .or_default()
                .push(index);
        }
        for ((provider, hour), indices) in rows {
            let key = (provider.to_owned(), hour);
            let part = arrow::compute::take_record_batch(batch, &UInt32Array::from(indices))?;
            let n = part.num_rows();
            let entry = self.events.entry(key.clone()).or_default();
            entry.0.push(part);
            entry.1 += n;
            self.buffered_rows += n;
            if entry.1 >= FILE_ROWS {
                self.write_partition(&key)?;
            }
        }
        while self.buffered_rows > MAX_BUFFERED_ROWS {
            let Some(largest) = self
                .events
                .iter()
                .max_by_key(|(_, (_, n))| *n)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.write_partition(&largest)?;
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
        let keys: Vec<Key> = self.events.keys().cloned().collect();
        for key in keys {
            self.write_partition(&key)?;
        }
        if self.buffered_alerts > 0 {
            self.write_alerts()?;
        }
        Ok(())
    }

    fn part_name(&mut self, extension: &str) -> String {
        self.next_part += 1;
        format!("part-{}-{:05}.{extension}", self.run, self.next_part)
    }

    fn write_partition(&mut self, key: &Key) -> Result<()> {
        let Some((batches, rows)) = self.events.remove(key) else {
            return Ok(());
        };
        self.buffered_rows -= rows;
        let (provider, hour) = key;
        let start = chrono::DateTime::from_timestamp(hour.saturating_mul(3600), 0)
            .ok_or(Error::Schema("an event hour within chrono's range"))?;
        let dir = self
            .root
            .join("events")
            .join(format!("provider={provider}"))
            .join(format!("date={}", start.format("%Y-%m-%d")))
            .join(format!("hour={}", start.format("%H")));
        std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        let path = dir.join(self.part_name("parquet"));
        let parquet = |source| Error::Parquet {
            path: path.clone(),
            source,
        };
        let schema = without_provider(&batches[0].schema());
        let (pending, file) = PendingFile::create_new(&path)?;
        let mut writer =
            ArrowWriter::try_new(file, Arc::clone(&schema), Some(parquet_properties()))
                .map_err(parquet)?;
        for batch in batches {
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    batch
                        .column_by_name(f.name())
                        .cloned()
                        .ok_or(Error::Schema("every column of the first batch"))
                })
                .collect::<Result<Vec<_>>>()?;
            let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
            writer.write(&batch).map_err(parquet)?;
        }
        let file = writer.into_inner().map_err(parquet)?;
        pending.commit(&file)?;
        self.files += 1;
        Ok(())
    }

    fn write_alerts(&mut self) -> Result<()> {
        for (date, lines) in std::mem::take(&mut self.alerts) {
            let dir = self.root.join("alerts").join(format!("date={date}"));
            std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
            let path = dir.join(self.part_name("jsonl"));
            let (pending, file) = PendingFile::create_new(&path)?;
            let mut writer = BufWriter::new(file);
            for line in lines {
                writer
                    .write_all(line.as_bytes())
                    .and_then(|()| writer.write_all(b"\n"))
                    .map_err(io_error("write", pending.path()))?;
            }
            pending.commit_buffered(writer)?;
            self.files += 1;
        }
        self.buffered_alerts = 0;
        Ok(())
    }
}

/// The event schema without `provider`, which the partition path carries.
fn without_provider(schema: &Schema) -> Arc<Schema> {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| f.name() != column::PROVIDER)
        .cloned()
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use demarc_model::Origin;
    use demarc_normalize::{Normalizer, Options};

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
