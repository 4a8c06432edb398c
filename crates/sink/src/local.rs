//! Local sinks: a JSON-lines file, synced per batch and rotated by size, and standard
//! output.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::deliver::{Outcome, Transport};
use crate::file::{open_jsonl, sync_parent};
use crate::notice::BodyFormat;
use crate::store::Spooled;

/// A JSON-lines file of notices. When it reaches `max_bytes` it is renamed to
/// `<name>.1` (the older ones shifting to `.2` … `.keep`, the oldest removed) and a new
/// one is started.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    format: BodyFormat,
    max_bytes: u64,
    keep: u32,
    file: Option<(File, u64)>,
}

impl FileSink {
    pub fn new(path: &Path, format: BodyFormat, max_bytes: u64, keep: u32) -> Self {
        Self {
            path: path.to_owned(),
            format,
            max_bytes: max_bytes.max(1),
            keep: keep.max(1),
            file: None,
        }
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let oldest = self.rotated(self.keep);
        if oldest.exists() {
            std::fs::remove_file(&oldest)?;
        }
        for n in (1..self.keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))
    }

    fn write(&mut self, notices: &[Spooled]) -> Result<(), String> {
        let path = self.path.clone();
        let describe = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        if self.file.is_none() {
            let file = open_jsonl(&self.path).map_err(|e| describe(&e))?;
            let len = file.metadata().map_err(|e| describe(&e))?.len();
            self.file = Some((file, len));
        }
        let mut buffer = Vec::new();
        for spooled in notices {
            buffer.extend_from_slice(&self.format.render(&spooled.notice));
            buffer.push(b'\n');
        }
        let Some((file, len)) = self.file.as_mut() else {
            return Err(describe(&"not open"));
        };
        let written = file
            .write_all(&buffer)
            .and_then(|()| file.sync_data())
            .map(|()| {
                *len += buffer.len() as u64;
                *len
            });
        match written {
            Ok(len) if len >= self.max_bytes => {
                self.rotate().map_err(|e| describe(&e))?;
                sync_parent(&self.path).map_err(|e| describe(&e))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                // Reopened next time: a line cut short is removed then.
                self.file = None;
                Err(describe(&e))
            }
        }
    }
}

impl Transport for FileSink {
    fn batch(&self) -> usize {
        500
    }

    fn send(&mut self, notices: &[Spooled]) -> Vec<Outcome> {
        match self.write(notices) {
            Ok(()) => vec![Outcome::Delivered; notices.len()],
            Err(reason) => vec![Outcome::Retry {
                reason,
                after: None,
            }],
        }
    }
}

/// Standard output, one JSON object per line, flushed per batch.
#[derive(Debug)]
pub struct StdoutSink {
    format: BodyFormat,
}

impl StdoutSink {
    pub fn new(format: BodyFormat) -> Self {
        Self { format }
    }
}

impl Transport for StdoutSink {
    fn batch(&self) -> usize {
        500
    }

    fn send(&mut self, notices: &[Spooled]) -> Vec<Outcome> {
        let mut out = std::io::stdout().lock();
        for spooled in notices {
            let mut line = self.format.render(&spooled.notice);
            line.push(b'\n');
            if let Err(e) = out.write_all(&line) {
                return vec![Outcome::Retry {
                    reason: format!("standard output: {e}"),
                    after: None,
                }];
            }
        }
        match out.flush() {
            Ok(()) => vec![Outcome::Delivered; notices.len()],
            Err(e) => vec![Outcome::Retry {
                reason: format!("standard output: {e}"),
                after: None,
            }],
        }
    }
}
