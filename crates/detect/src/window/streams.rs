//! Where a windowed rule's events come from, as far as time goes. Each Kafka partition
//! is a stream of its own, in time order give or take the lateness; files (an archive,
//! fixtures) are one stream. Partitions move at their own pace: one catching up on a
//! backlog reads hours behind another that is live, and an archive replayed into a
//! topic is years behind. So each stream has its own newest time, and a held event is
//! forgotten only once its own stream has moved past it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use demarc_model::column;

use crate::{Error, Result};

/// The streams of one windowed rule's events, and how far each has come.
#[derive(Debug)]
pub(super) struct Streams {
    /// Stream number by Kafka topic and partition; files are stream 0.
    numbers: HashMap<(Arc<str>, i32), u32>,
    /// By stream number.
    progress: Vec<Progress>,
}

/// How far one stream has come, in microseconds.
#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    /// The newest event time seen.
    newest: Option<i64>,
    /// The newest event time of the last batch that brought the stream new events.
    last: Option<i64>,
}

impl Default for Streams {
    /// Only stream 0, the files, so far.
    fn default() -> Self {
        Self {
            numbers: HashMap::new(),
            progress: vec![Progress::default()],
        }
    }
}

impl Streams {
    /// The stream of each row of `batch`, numbering streams not seen before.
    pub fn of(&mut self, batch: &RecordBatch) -> Result<Vec<u32>> {
        let sources = batch
            .column_by_name(column::SRC)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| Error::Schema("the events have no `src` column".into()))?;
        let Some(partitions) = batch
            .column_by_name(column::SRC_PARTITION)
            .and_then(|c| c.as_primitive_opt::<Int32Type>())
        else {
            return Ok(vec![0; batch.num_rows()]);
        };
        let mut out = Vec::with_capacity(batch.num_rows());
        // Rows of one partition come in runs: look it up once a run.
        let mut last: Option<(&str, i32, u32)> = None;
        for row in 0..batch.num_rows() {
            if partitions.is_null(row) {
                out.push(0);
                continue;
            }
            let (source, partition) = (sources.value(row), partitions.value(row));
            let number = match last {
                Some((s, p, n)) if s == source && p == partition => n,
                _ => {
                    let next = u32::try_from(self.progress.len()).unwrap_or(u32::MAX);
                    let n = *self
                        .numbers
                        .entry((Arc::from(source), partition))
                        .or_insert(next);
                    if n == next {
                        self.progress.push(Progress::default());
                    }
                    n
                }
            };
            last = Some((source, partition, number));
            out.push(number);
        }
        Ok(out)
    }

    /// How many of these rows (time, stream) are more than `lateness_us` behind the
    /// newest event their stream had before them.
    pub fn late(&self, rows: &[(i64, u32)], lateness_us: i64) -> u64 {
        rows.iter()
            .filter(|(t, s)| {
                self.get(*s)
                    .newest
                    .is_some_and(|n| *t < n.saturating_sub(lateness_us))
            })
            .count() as u64
    }

    /// Notes a batch's new rows (time, stream).
    pub fn advance(&mut self, rows: &[(i64, u32)]) {
        let mut newest: Vec<Option<i64>> = vec![None; self.progress.len()];
        for &(t, s) in rows {
            if let Some(n) = newest.get_mut(s as usize) {
                *n = Some(n.map_or(t, |n| n.max(t)));
            }
        }
        for (progress, batch_newest) in self.progress.iter_mut().zip(newest) {
            if let Some(t) = batch_newest {
                progress.newest = Some(progress.newest.map_or(t, |n| n.max(t)));
                progress.last = Some(t);
            }
        }
    }

    /// Whether an event at `t` of `stream` may still meet one to come: it is within
    /// `keep_us` of its stream's newest event, or of the newest of the last batch that
    /// brought that stream events (an archive read account by account or region by
    /// region goes back in time at each new one: its sequences must still meet across
    /// batches).
    pub fn keeps(&self, t: i64, stream: u32, keep_us: i64) -> bool {
        let progress = self.get(stream);
        let Some(newest) = progress.newest else {
            return true;
        };
        let recent = progress.last.unwrap_or(newest);
        t >= newest.saturating_sub(keep_us)
            || (recent.saturating_sub(keep_us)..=recent.saturating_add(keep_us)).contains(&t)
    }

    fn get(&self, stream: u32) -> Progress {
        self.progress
            .get(stream as usize)
            .copied()
            .unwrap_or_default()
    }
}
