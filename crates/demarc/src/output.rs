//! Files the command line writes: normalized events (Parquet or JSONL), dead letters and
//! run reports. Each is written under a temporary name and renamed into place when
//! complete, so a crash never leaves a truncated file that looks finished.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use arrow::array::RecordBatch;
use arrow::json::writer::LineDelimited;
use demarc_model::{column, event_schema};
use demarc_normalize::Reject;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// A file being written under `<name>.partial`.
#[derive(Debug)]
pub struct PendingFile {
    tmp: PathBuf,
    dest: PathBuf,
}

impl PendingFile {
    pub fn create(dest: &Path) -> Result<(Self, File)> {
        let mut tmp = dest.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let file =
            File::create(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?;
        Ok((
            Self {
                tmp,
                dest: dest.to_owned(),
            },
            file,
        ))
    }

    pub fn commit(self, file: &File) -> Result<()> {
        file.sync_all()
            .with_context(|| format!("cannot sync `{}`", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.dest).with_context(|| {
            format!(
                "cannot rename `{}` to `{}`",
                self.tmp.display(),
                self.dest.display()
            )
        })
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        // After a successful commit the temporary name is gone and this finds nothing;
        // after a failure it removes the incomplete file. Either way there is nothing
        // to report.
        let _ = std::fs::remove_file(&self.tmp);
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

/// Where normalized events go; the format follows the file name.
pub enum EventSink {
    Parquet(ArrowWriter<File>, PendingFile),
    Jsonl(
        arrow::json::Writer<BufWriter<File>, LineDelimited>,
        PendingFile,
    ),
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Parquet(_, p) => write!(f, "EventSink::Parquet({})", p.dest.display()),
            Self::Jsonl(_, p) => write!(f, "EventSink::Jsonl({})", p.dest.display()),
        }
    }
}

impl EventSink {
    pub fn create(path: &Path) -> Result<Self> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("parquet") => {
                let (pending, file) = PendingFile::create(path)?;
                let writer = ArrowWriter::try_new(file, event_schema(), Some(parquet_properties()))
                    .context("cannot start the Parquet writer")?;
                Ok(Self::Parquet(writer, pending))
            }
            Some("jsonl" | "ndjson" | "json") => {
                let (pending, file) = PendingFile::create(path)?;
                let writer = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, LineDelimited>(BufWriter::new(file));
                Ok(Self::Jsonl(writer, pending))
            }
            _ => bail!(
                "cannot tell the output format from `{}`: name the file *.parquet or *.jsonl",
                path.display()
            ),
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Self::Parquet(writer, p) => writer
                .write(batch)
                .with_context(|| format!("cannot write `{}`", p.tmp.display())),
            Self::Jsonl(writer, p) => writer
                .write(batch)
                .with_context(|| format!("cannot write `{}`", p.tmp.display())),
        }
    }

    pub fn finish(self) -> Result<()> {
        match self {
            Self::Parquet(writer, pending) => {
                let file = writer
                    .into_inner()
                    .with_context(|| format!("cannot finish `{}`", pending.tmp.display()))?;
                pending.commit(&file)
            }
            Self::Jsonl(mut writer, pending) => {
                writer
                    .finish()
                    .with_context(|| format!("cannot finish `{}`", pending.tmp.display()))?;
                let file = writer
                    .into_inner()
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("cannot flush `{}`", pending.tmp.display()))?;
                pending.commit(&file)
            }
        }
    }
}

/// Rejected input as JSON lines: reason, detail, position, excerpt.
#[derive(Debug)]
pub struct DeadLetterSink {
    writer: BufWriter<File>,
    pending: PendingFile,
}

impl DeadLetterSink {
    pub fn create(path: &Path) -> Result<Self> {
        let (pending, file) = PendingFile::create(path)?;
        Ok(Self {
            writer: BufWriter::new(file),
            pending,
        })
    }

    pub fn write(&mut self, reject: &Reject) -> Result<()> {
        serde_json::to_writer(&mut self.writer, reject)
            .and_then(|()| self.writer.write_all(b"\n").map_err(serde_json::Error::io))
            .with_context(|| format!("cannot write `{}`", self.pending.tmp.display()))
    }

    pub fn finish(self) -> Result<()> {
        let Self { writer, pending } = self;
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot flush `{}`", pending.tmp.display()))?;
        pending.commit(&file)
    }
}

/// Writes a JSON value to `path` (complete or not at all).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let (pending, file) = PendingFile::create(path)?;
    let mut writer = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut writer, value)
        .with_context(|| format!("cannot write `{}`", pending.tmp.display()))?;
    writer.write_all(b"\n")?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    pending.commit(&file)
}
