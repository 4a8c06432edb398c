//! Files the command line writes: normalized events (Parquet or JSONL) and run
//! reports. Each is written under a temporary name and renamed into place when
//! complete, so a crash never leaves a truncated file that looks finished.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use arrow::array::RecordBatch;
use arrow::json::writer::LineDelimited;
use demarc_lake::parquet_properties;
use demarc_model::event_schema;
use demarc_sink::PendingFile;
use parquet::arrow::ArrowWriter;

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
            Self::Parquet(_, p) => write!(f, "EventSink::Parquet({})", p.destination().display()),
            Self::Jsonl(_, p) => write!(f, "EventSink::Jsonl({})", p.destination().display()),
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
                let writer = ArrowWriter::try_new(
                    file,
                    event_schema(),
                    Some(parquet_properties(1 << 20).build()),
                )
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
                .with_context(|| format!("cannot write `{}`", p.path().display())),
            Self::Jsonl(writer, p) => writer
                .write(batch)
                .with_context(|| format!("cannot write `{}`", p.path().display())),
        }
    }

    pub fn finish(self) -> Result<()> {
        match self {
            Self::Parquet(writer, pending) => {
                let file = writer
                    .into_inner()
                    .with_context(|| format!("cannot finish `{}`", pending.path().display()))?;
                Ok(pending.commit(&file)?)
            }
            Self::Jsonl(mut writer, pending) => {
                writer
                    .finish()
                    .with_context(|| format!("cannot finish `{}`", pending.path().display()))?;
                Ok(pending.commit_buffered(writer.into_inner())?)
            }
        }
    }
}

/// Writes a JSON value to `path` (complete or not at all).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let (pending, file) = PendingFile::create(path)?;
    let mut writer = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut writer, value)
        .with_context(|| format!("cannot write `{}`", pending.path().display()))?;
    writer.write_all(b"\n")?;
    Ok(pending.commit_buffered(writer)?)
}
