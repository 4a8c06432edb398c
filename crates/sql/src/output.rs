//! Query results as an aligned table, CSV, JSON lines or Parquet.

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use arrow::array::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns, for a terminal.
    Table,
    Csv,
    /// One JSON object per row.
    Json,
    Parquet,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "table" => Ok(Self::Table),
            "csv" => Ok(Self::Csv),
            "json" | "jsonl" | "ndjson" => Ok(Self::Json),
            "parquet" => Ok(Self::Parquet),
            other => Err(format!(
                "unknown format `{other}`: use table, csv, json or parquet"
            )),
        }
    }
}

impl Format {
    /// The format a file name asks for: `.csv`, `.json`/`.jsonl`, `.parquet`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?;
        match extension {
            "table" | "txt" => Some(Self::Table),
            other => other.parse().ok(),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
}

/// Writes the stream's batches to `out` as they come (an aligned table waits for all
/// of them, to size its columns). A failed write to `out` is an [`Error::Output`]
/// whichever format failed on it, so that a caller can tell a reader that stopped
/// early (`demarc sql … | head`: a broken pipe) from a failed query.
pub async fn write(
    stream: SendableRecordBatchStream,
    format: Format,
    out: &mut (dyn Write + Send),
    sql: &str,
) -> Result<Written> {
    let mut watched = Watched { out, failed: None };
    let result = encode(stream, format, &mut watched, sql).await;
    match (result, watched.failed) {
        (Err(_), Some((kind, message))) => Err(output(std::io::Error::new(kind, message))),
        (result, _) => result,
    }
}

/// The output, remembering the first error a write to it returned: the format writers
/// wrap I/O errors in their own (the CSV writer keeps only the message).
struct Watched<'a> {
    out: &'a mut (dyn Write + Send),
    failed: Option<(std::io::ErrorKind, String)>,
}

impl Watched<'_> {
    fn watch<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(error) = &result {
            self.failed
                .get_or_insert_with(|| (error.kind(), error.to_string()));
        }
        result
    }
}

impl Write for Watched<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.out.write(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.out.flush();
        self.watch(result)
    }
}

async fn encode(
    mut stream: SendableRecordBatchStream,
    format: Format,
    out: &mut (dyn Write + Send),
    sql: &str,
) -> Result<Written> {
    let query = |error| Error::Query {
        sql: sql.to_owned(),
        error,
    };
    let schema = stream.schema();
    let mut written = Written::default();
    match format {
        Format::Table => {
            let mut batches: Vec<RecordBatch> = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(query)?;
                written.rows += batch.num_rows() as u64;
                batches.push(batch);
            }
            let table = if batches.is_empty() {
                arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(schema)])?
            } else {
                arrow::util::pretty::pretty_format_batches(&batches)?
            };
            writeln!(out, "{table}").map_err(output)?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            let mut any = false;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(query)?;
                written.rows += batch.num_rows() as u64;
                writer.write(&batch)?;
                any = true;
            }
            if !any {
                writer.write(&RecordBatch::new_empty(schema))?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut *out);
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(query)?;
                written.rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            writer.finish()?;
        }
        Format::Parquet => {
            let mut writer = ArrowWriter::try_new(&mut *out, schema, None)?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(query)?;
                written.rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            writer.close()?;
        }
    }
    out.flush().map_err(output)?;
    Ok(written)
}

fn output(source: std::io::Error) -> Error {
    Error::Output {
        path: "the output".into(),
        source,
    }
}
