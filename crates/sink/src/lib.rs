//! Where alerts go once the rules have fired.
//!
//! - [`AlertSink`]: the run's own record, standard output (JSON lines or one readable
//!   line each) and an alert file, with repeats of an alert id skipped.
//! - [`routing::Routing`]: routes, suppression windows and snoozes; each alert is
//!   committed to a durable spool ([`store`]) for each sink of its routes, and a
//!   delivery thread per sink ([`deliver`]) sends it (webhook, Slack, PagerDuty, file,
//!   standard output here; the Kafka topic sink lives with the Kafka code) and removes
//!   it once the sink confirmed it.
//!
//! The pipeline calls [`AlertSink::write`] for each alert of a run of batches, then
//! [`AlertSink::sync`], and acknowledges the source position only after `sync`
//! returns: an alert file in append mode is fsynced there, so an acknowledged alert
//! survives a crash. The crate also owns the two durable-file primitives the other
//! outputs share ([`file`]): files written whole or not at all, and append-only
//! JSON-lines files that recover from a crash mid-line.
//!
//! It depends on the model only: no Kafka, no DataFusion, no async runtime, so that an
//! output can be tested alone and used by any source.

pub mod deliver;
pub mod file;
pub mod http;
pub mod local;
pub mod metrics;
pub mod notice;
pub mod route;
pub mod routing;
pub mod store;
// The integration tests' alerts (and HTTP receiver), for the unit tests too.
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod testing;

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use demarc_model::Alert;

pub use file::{PendingFile, open_jsonl, sync_parent};

/// An output that failed; the alerts written since the last `sync` are not durable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write alerts to standard output")]
    Stdout(#[source] std::io::Error),
    #[error(
        "`{}` ends with a line over 1 MiB that is not an alert: move the file away",
        path.display()
    )]
    NotAnAlertFile { path: PathBuf },
    #[error("cannot {action} the alert store `{}`", path.display())]
    Store {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the alert store `{}` holds something unreadable ({what}): move the file away", path.display())]
    Corrupt { path: PathBuf, what: String },
    #[error(
        "the alert spool is full ({depth} notices waiting for their sinks): the last \
         batches were not acknowledged and are read again at the next start"
    )]
    SpoolFull { depth: u64 },
    #[error("cannot start an alert delivery thread")]
    Thread(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn store(action: &'static str, path: &Path, source: rusqlite::Error) -> Self {
        Self::Store {
            action,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// How alerts are printed on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// One readable line per alert (`demarc demo`).
    Human,
}

/// How the alert file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Appended to and fsynced at every `sync`: each alert is durable before its source
    /// position is acknowledged (`demarc run`). A line cut short by a crash is removed
    /// when the file is opened again.
    Append,
    /// Written under a temporary name and renamed into place by `finish`: the file is
    /// complete or absent (`demarc backfill`).
    Replace,
}

/// The alert outputs of one run.
#[derive(Debug)]
pub struct AlertSink {
    stdout: Option<(BufWriter<std::io::Stdout>, Format)>,
    file: Option<AlertFile>,
    recent: RecentIds,
    /// Something was written since the last `sync`.
    unsynced: bool,
}

#[derive(Debug)]
enum AlertFile {
    Append(BufWriter<File>, PathBuf),
    Replace(BufWriter<File>, PendingFile),
}

impl AlertSink {
    /// Alerts to standard output in `stdout` format (if any) and to `file` (if any).
    /// An alert id already written among the last `dedup_window` ids is not written
    /// again (the same event read twice).
    pub fn open(
        stdout: Option<Format>,
        file: Option<(&Path, FileMode)>,
        dedup_window: usize,
    ) -> Result<Self> {
        let file = match file {
            None => None,
            Some((path, FileMode::Append)) => Some(AlertFile::Append(
                BufWriter::new(open_jsonl(path)?),
                path.to_owned(),
            )),
            Some((path, FileMode::Replace)) => {
                let (pending, file) = PendingFile::create(path)?;
                Some(AlertFile::Replace(BufWriter::new(file), pending))
            }
        };
        Ok(Self {
            stdout: stdout.map(|format| (BufWriter::new(std::io::stdout()), format)),
            file,
            recent: RecentIds::new(dedup_window),
            unsynced: false,
        })
    }

    /// Writes `alert` unless its id was written recently; whether it was written.
    pub fn write(&mut self, alert: &Alert) -> Result<bool> {
        if !self.recent.insert(&alert.alert_id) {
            return Ok(false);
        }
        self.unsynced = true;
        if let Some((out, format)) = self.stdout.as_mut() {
            match format {
                Format::Json => write_json_line(out, alert),
                Format::Human => writeln!(
                    out,
                    "ALERT {:<8} {:<44} {}",
                    alert.severity.as_str(),
                    alert.rule_id,
                    alert.summary
                ),
            }
            .map_err(Error::Stdout)?;
        }
        match self.file.as_mut() {
            None => {}
            Some(AlertFile::Append(writer, path)) => {
                write_json_line(writer, alert).map_err(Error::io("write", path))?;
            }
            Some(AlertFile::Replace(writer, pending)) => {
                write_json_line(writer, alert).map_err(Error::io("write", pending.path()))?;
            }
        }
        Ok(true)
    }

    /// Makes what was written durable: standard output flushed, an appended alert file
    /// flushed and synced to disk (a replaced one is synced by `finish`).
    pub fn sync(&mut self) -> Result<()> {
        // Nothing new: no flush, and above all no fsync for a batch without alerts.
        if !self.unsynced {
            return Ok(());
        }
        if let Some((out, _)) = self.stdout.as_mut() {
            out.flush().map_err(Error::Stdout)?;
        }
        match self.file.as_mut() {
            None => {}
            Some(AlertFile::Append(writer, path)) => {
                writer.flush().map_err(Error::io("write", path))?;
                writer
                    .get_ref()
                    .sync_data()
                    .map_err(Error::io("sync", path))?;
            }
            Some(AlertFile::Replace(writer, pending)) => {
                writer.flush().map_err(Error::io("write", pending.path()))?;
            }
        }
        self.unsynced = false;
        Ok(())
    }

    /// Syncs, and puts a replaced alert file in place.
    pub fn finish(mut self) -> Result<()> {
        self.sync()?;
        if let Some(AlertFile::Replace(writer, pending)) = self.file {
            pending.commit_buffered(writer)?;
        }
        Ok(())
    }
}

fn write_json_line(out: &mut impl Write, alert: &Alert) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, alert)?;
    out.write_all(b"\n")
}

/// The ids of the last alerts written, to write an alert once when its event arrives
/// twice.
#[derive(Debug)]
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
    limit: usize,
}

impl RecentIds {
    fn new(limit: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            limit: limit.max(1),
        }
    }

    /// Remembers `id`; false if it was already remembered.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= self.limit
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_forget_the_oldest_beyond_the_window() {
        let mut recent = RecentIds::new(2);
        assert!(recent.insert("a"));
        assert!(!recent.insert("a"));
        assert!(recent.insert("b"));
        assert!(recent.insert("c"));
        // "a" fell out of the window of two.
        assert!(recent.insert("a"));
        assert!(!recent.insert("c"));
    }
}
