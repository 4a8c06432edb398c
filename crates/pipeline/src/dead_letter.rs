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
/// and position.
#[derive(Debug)]
pub struct DeadLetter {
    pub origin: Origin,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub rejects: Vec<Reject>,
}

/// A dead-letter output. `write` returns once the letters are durable there, with how
/// many entries it wrote.
pub trait DeadLetters: Send {
    fn write(&mut self, letters: &[DeadLetter]) -> Result<u64>;

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
/// place when the run ends.
#[derive(Debug)]
pub struct RejectFile {
    out: Option<(BufWriter<File>, PendingFile)>,
}

impl RejectFile {
    pub fn create(path: &Path) -> Result<Self> {
        let (pending, file) = PendingFile::create(path)?;
        Ok(Self {
            out: Some((BufWriter::new(file), pending)),
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

impl DeadLetters for RejectFile {
    fn write(&mut self, letters: &[DeadLetter]) -> Result<u64> {
        self.write_rejects(letters.iter().flat_map(|l| &l.rejects))
    }

    fn finish(&mut self) -> Result<()> {
        if let Some((writer, pending)) = self.out.take() {
            pending.commit_buffered(writer)?;
        }
        Ok(())
    }
}
