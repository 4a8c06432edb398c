//! Rejected input on its way to a dead-letter output: the Kafka dead-letter topic
//! ([`crate::kafka`]), a JSON-lines file of rejects, or nowhere but a count.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use demarc_model::Origin;
use demarc_normalize::Reject;
use demarc_sink::PendingFile;

use crate::{Error, Result};

/// One record that had rejects: where it came from, its bytes when it was a message
/// in memory (so that it can be replayed once fixed), and every reject with its reason
/// and position. Or a rule that failed on a batch: `rule_failure`, with the batch's
/// first input as `origin` and a description of all of them as `payload`. Or an alert a
/// sink refused for good: `undelivered`, with the alert's first event as `origin` and
/// the alert as `payload`.
#[derive(Debug)]
pub struct DeadLetter {
    pub origin: Origin,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub rejects: Vec<Reject>,
    pub rule_failure: Option<RuleFailed>,
    pub undelivered: Option<Undelivered>,
}

/// An alert a sink refused for good (an HTTP 4xx other than 408 and 429), with what
/// the sink answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Undelivered {
    pub sink: String,
    pub alert_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub response: String,
}

/// A rule that failed on a batch: its alerts for the batch are missing, the other
/// rules' are not. `inputs` says where the batch's events came from, so that they can
/// be run again once the rule is fixed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleFailed {
    pub rule: String,
    pub error: String,
    pub inputs: Vec<InputRange>,
}

/// The inputs of a batch from one source: a partition's first and last offsets, or a
/// file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputRange {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_offset: Option<i64>,
}

impl InputRange {
    /// The ranges covering `origins`, one per source and partition, in first-seen order.
    pub fn covering<'a>(origins: impl IntoIterator<Item = &'a Origin>) -> Vec<Self> {
        let mut ranges: Vec<Self> = Vec::new();
        for origin in origins {
            let same = ranges
                .iter_mut()
                .find(|r| *r.source == *origin.source && r.partition == origin.partition);
            match same {
                Some(range) => {
                    if let Some(offset) = origin.offset {
                        range.first_offset = range.first_offset.min(Some(offset)).or(Some(offset));
                        range.last_offset = range.last_offset.max(Some(offset));
                    }
                }
                None => ranges.push(Self {
                    source: origin.source.to_string(),
                    partition: origin.partition,
                    first_offset: origin.offset,
                    last_offset: origin.offset,
                }),
            }
        }
        ranges
    }

    /// `topic[2]@10..=20` or the file name, for logs.
    pub fn describe(ranges: &[Self]) -> String {
        let parts: Vec<String> = ranges
            .iter()
            .map(|r| match (r.partition, r.first_offset, r.last_offset) {
                (Some(p), Some(a), Some(b)) => format!("{}[{p}]@{a}..={b}", r.source),
                _ => r.source.clone(),
            })
            .collect();
        parts.join(" ")
    }
}

/// A rule failure's line in a reject file.
#[derive(serde::Serialize)]
struct RuleFailedLine<'a> {
    reason: &'static str,
    #[serde(flatten)]
    failure: &'a RuleFailed,
}

/// A refused alert's line in a reject file.
#[derive(serde::Serialize)]
struct UndeliveredLine<'a> {
    reason: &'static str,
    #[serde(flatten)]
    undelivered: &'a Undelivered,
    alert: Option<serde_json::Value>,
}

/// A dead-letter output. `write` returns once the letters are durable there, with how
/// many entries it wrote.
pub trait DeadLetters: Send {
    fn write(&mut self, letters: &[DeadLetter]) -> Result<u64>;

    /// Makes what was written durable, before the source position is acknowledged
    /// (outputs that are durable as they are written need not).
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    /// The run is over.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Counts the letters and keeps nothing (no output was asked for; the rejects are in
/// the run's summary).
#[derive(Debug, Default)]
pub struct Discard;

impl DeadLetters for Discard {
    fn write(&mut self, letters: &[DeadLetter]) -> Result<u64> {
        Ok(letters.len() as u64)
    }
}

/// Every reject as a JSON line (reason, detail, position, excerpt), in a file put in
/// place when the run ends, or appended to and synced with each acknowledgement.
#[derive(Debug)]
pub struct RejectFile {
    out: Option<(BufWriter<File>, Target)>,
}

/// Where a [`RejectFile`] writes.
#[derive(Debug)]
enum Target {
    /// A new file, put in place at the end.
    Pending(PendingFile),
    /// The file itself, appended to (a resumable run).
    Append(std::path::PathBuf),
}

impl Target {
    fn path(&self) -> &Path {
        match self {
            Self::Pending(pending) => pending.path(),
            Self::Append(path) => path,
        }
    }
}

impl RejectFile {
    pub fn create(path: &Path) -> Result<Self> {
        let (pending, file) = PendingFile::create(path)?;
        Ok(Self {
            out: Some((BufWriter::new(file), Target::Pending(pending))),
        })
    }

    /// Appends to `path` (created if missing), syncing at each acknowledgement, so that
    /// a resumed run can cut it back to its last checkpoint.
    pub fn append(path: &Path) -> Result<Self> {
        let file = demarc_sink::file::open_jsonl(path)?;
        Ok(Self {
            out: Some((BufWriter::new(file), Target::Append(path.to_owned()))),
        })
    }
}

impl RejectFile {
    /// Writes `rejects`; how many.
    pub fn write_rejects<'a>(
        &mut self,
        rejects: impl IntoIterator<Item = &'a Reject>,
    ) -> Result<u64> {
        let (writer, pending) = self
            .out
            .as_mut()
            .ok_or_else(|| Error::Stage("dead letters written after the end".into()))?;
        let mut written = 0;
        for reject in rejects {
            serde_json::to_writer(&mut *writer, reject)
                .map_err(std::io::Error::from)
                .and_then(|()| writer.write_all(b"\n"))
                .map_err(Error::io("write", pending.path()))?;
            written += 1;
        }
        Ok(written)
    }
}

impl RejectFile {
    fn write_line(&mut self, line: &impl serde::Serialize) -> Result<()> {
        let (writer, pending) = self
            .out
            .as_mut()
            .ok_or_else(|| Error::Stage("dead letters written after the end".into()))?;
        serde_json::to_writer(&mut *writer, line)
            .map_err(std::io::Error::from)
            .and_then(|()| writer.write_all(b"\n"))
            .map_err(Error::io("write", pending.path()))
    }
}

impl DeadLetters for RejectFile {
    fn write(&mut self, letters: &[DeadLetter]) -> Result<u64> {
        let mut written = self.write_rejects(letters.iter().flat_map(|l| &l.rejects))?;
        for failure in letters.iter().filter_map(|l| l.rule_failure.as_ref()) {
            self.write_line(&RuleFailedLine {
                reason: "rule_failed",
                failure,
            })?;
            written += 1;
        }
        for letter in letters {
            if let Some(undelivered) = &letter.undelivered {
                self.write_line(&UndeliveredLine {
                    reason: "alert_refused",
                    undelivered,
                    alert: letter
                        .payload
                        .as_deref()
                        .and_then(|p| serde_json::from_slice(p).ok()),
                })?;
                written += 1;
            }
        }
        Ok(written)
    }

    fn sync(&mut self) -> Result<()> {
        if let Some((writer, Target::Append(path))) = self.out.as_mut() {
            writer
                .flush()
                .and_then(|()| writer.get_ref().sync_data())
                .map_err(Error::io("sync", path))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        match self.out.take() {
            Some((writer, Target::Pending(pending))) => pending.commit_buffered(writer)?,
            Some((writer, Target::Append(path))) => {
                let file = writer
                    .into_inner()
                    .map_err(|e| Error::io("write", &path)(e.into_error()))?;
                file.sync_all().map_err(Error::io("sync", &path))?;
            }
            None => {}
        }
        Ok(())
    }
}
