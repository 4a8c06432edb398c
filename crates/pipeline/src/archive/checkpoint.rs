//! Resumable archive runs. A checkpoint file records, as inputs complete in order, how
//! far the run is durable: the last whole input done, the length of the alert file and
//! of the dead-letter file, and the lake files of the run. A run started again with
//! the same command cuts its outputs back to that point, removes the lake files written
//! after it, and skips the inputs done, so that it produces the alerts (same ids) and
//! lake rows an uninterrupted run would, once.
//!
//! The file is replaced atomically (written aside, synced, renamed): it always holds a
//! checkpoint that the outputs reached.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use demarc_sink::file::PendingFile;
use serde::{Deserialize, Serialize};

use super::Progress;
use crate::{Error, Result};

/// What a checkpoint file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// What the run was asked (inputs, range, outputs): a resumed run must ask the same.
    pub command: serde_json::Value,
    /// The time range as first resolved (a span such as `30d` is resolved once).
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    /// Inputs done, in input order, over every attempt.
    pub inputs_done: u64,
    /// The last of them (a path or an object's URL).
    pub last_input: Option<String>,
    /// Length of the alert file at the checkpoint.
    pub alerts_bytes: u64,
    /// Length of the dead-letter file at the checkpoint.
    pub dead_letter_bytes: Option<u64>,
    /// The lake run of the latest attempt, and how many of its files are durable.
    pub lake: Option<LakeMark>,
    /// The run reached the end of its inputs.
    pub complete: bool,
}

/// A lake run's name and its durable files (`part-<run>-<n>` for n up to `parts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LakeMark {
    pub run: String,
    pub parts: u64,
}

/// The checkpoint of a run, written as its outputs become durable.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    state: State,
    alerts: PathBuf,
    dead_letters: Option<PathBuf>,
    /// Written at most this often, and at the end.
    every: Duration,
    written: Instant,
    /// Inputs this attempt must complete for the run to be complete.
    to_do: u64,
    done: u64,
    /// An input could not be read: the checkpoint stays before it, so that the same
    /// command started again reads it (and what follows) again.
    frozen: bool,
}

impl Checkpoint {
    /// The state in `path`, if there is one.
    pub fn load(path: &Path) -> Result<Option<State>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read the checkpoint", path)(e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::Config(format!(
                "`{}` is not a checkpoint demarc wrote ({e}): remove it to start over",
                path.display()
            ))
        })
    }

    /// Starts checkpointing into `path` from `state` (written at once), for an attempt
    /// that has `to_do` inputs left. `alerts` and `dead_letters` are the files whose
    /// lengths are recorded.
    pub fn start(
        path: &Path,
        state: State,
        alerts: &Path,
        dead_letters: Option<&Path>,
        every: Duration,
        to_do: u64,
    ) -> Result<Self> {
        let mut checkpoint = Self {
            path: path.to_owned(),
            state,
            alerts: alerts.to_owned(),
            dead_letters: dead_letters.map(Path::to_owned),
            every,
            written: Instant::now(),
            to_do,
            done: 0,
            frozen: false,
        };
        checkpoint.write()?;
        Ok(checkpoint)
    }

    /// The lake's files of the run up to `parts` are durable.
    pub(super) fn lake_durable(&mut self, run: &str, parts: u64) {
        if self.frozen {
            return;
        }
        self.state.lake = Some(LakeMark {
            run: run.to_owned(),
            parts,
        });
    }

    /// Everything up to `position` (the batches since the last call) is durable: records
    /// it, and writes the file if it is due (or `now`) and the position ends at an input's
    /// end.
    pub(super) fn durable(&mut self, position: &Progress, now: bool) -> Result<()> {
        if self.frozen {
            return Ok(());
        }
        self.state.inputs_done += position.files;
        self.done += position.files;
        if let Some(last) = &position.last {
            self.state.last_input = Some(last.to_string());
        }
        if !position.boundary || (!now && self.written.elapsed() < self.every) {
            return Ok(());
        }
        self.write()
    }

    /// An input of the batches not yet durable could not be read (a network loss, a
    /// refused object): the checkpoint goes no further in this attempt.
    pub(super) fn freeze(&mut self) {
        self.frozen = true;
    }

    /// The run is over: complete if every input was done and read. After a failure the
    /// file keeps the checkpoint before it.
    pub(super) fn finish(&mut self) -> Result<()> {
        if self.frozen {
            return Ok(());
        }
        self.state.complete = self.done >= self.to_do;
        self.write()
    }

    /// Records the outputs' lengths now, and writes the state.
    fn write(&mut self) -> Result<()> {
        self.state.alerts_bytes = length(&self.alerts);
        self.state.dead_letter_bytes = self.dead_letters.as_deref().map(length);
        let (pending, file) = PendingFile::create(&self.path)?;
        serde_json::to_writer_pretty(&file, &self.state)
            .map_err(|e| Error::io("write", pending.path())(e.into()))?;
        pending.commit(&file)?;
        self.written = Instant::now();
        Ok(())
    }
}

/// A file's length (0 if it is missing).
fn length(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Cuts a file back to `length` bytes, as it was at a checkpoint.
pub fn truncate(path: &Path, length: u64) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    let now = file.metadata().map_err(Error::io("read", path))?.len();
    if now < length {
        return Err(Error::Config(format!(
            "`{}` holds {now} bytes, fewer than the {length} the checkpoint recorded: it was \
             changed since; remove the checkpoint to start over",
            path.display()
        )));
    }
    file.set_len(length)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("cut back", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_written_at_input_ends_with_the_outputs_lengths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.checkpoint");
        let alerts = dir.path().join("alerts.jsonl");
        std::fs::write(&alerts, b"{}\n").expect("alerts");
        let state = State {
            command: serde_json::json!({"inputs": ["s3://b/"]}),
            ..State::default()
        };
        let mut checkpoint =
            Checkpoint::start(&path, state, &alerts, None, Duration::ZERO, 3).expect("start");
        assert_eq!(
            Checkpoint::load(&path)
                .ok()
                .flatten()
                .map(|s| s.alerts_bytes),
            Some(3)
        );

        std::fs::write(&alerts, b"{}\n{}\n").expect("alerts");
        // Within a large input: recorded, not written.
        let part = Progress {
            files: 0,
            disk_bytes: 10,
            last: None,
            boundary: false,
        };
        checkpoint.durable(&part, false).expect("durable");
        let on_disk = Checkpoint::load(&path).ok().flatten().unwrap_or_default();
        assert_eq!((on_disk.inputs_done, on_disk.alerts_bytes), (0, 3));

        checkpoint.lake_durable("r1-abc", 7);
        let two = Progress {
            files: 2,
            disk_bytes: 20,
            last: Some("s3://b/k2".into()),
            boundary: true,
        };
        checkpoint.durable(&two, false).expect("durable");
        let on_disk = Checkpoint::load(&path).ok().flatten().unwrap_or_default();
        assert_eq!(on_disk.inputs_done, 2);
        assert_eq!(on_disk.last_input.as_deref(), Some("s3://b/k2"));
        assert_eq!(on_disk.alerts_bytes, 6);
        assert_eq!(
            on_disk.lake.map(|l| (l.run, l.parts)),
            Some(("r1-abc".into(), 7))
        );

        // Stopped before the third input: not complete.
        checkpoint.finish().expect("finish");
        assert_eq!(
            Checkpoint::load(&path).ok().flatten().map(|s| s.complete),
            Some(false)
        );

        truncate(&alerts, 3).expect("cut back");
        assert_eq!(std::fs::read(&alerts).ok(), Some(b"{}\n".to_vec()));
        assert!(
            truncate(&alerts, 10).is_err(),
            "a file shorter than recorded"
        );
    }
}
