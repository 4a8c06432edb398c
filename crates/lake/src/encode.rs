//! Parquet encoding of lake files, on a pool of threads so that encoding keeps pace
//! with the workers instead of running on the one thread that orders the output.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::place::Target;
use arrow::array::{AsArray, RecordBatch};
use arrow::buffer::ScalarBuffer;
use arrow::compute::interleave_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use demarc_model::column;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use crate::{Error, Result};

/// Rows per row group: large enough to scan fast, small enough that statistics on
/// `time` prune a day into a few of them.
pub const ROW_GROUP_ROWS: usize = 131_072;

/// How lake files are written:
/// - zstd (level 1: the lake is written as fast as events arrive) for the columns of
///   text, ids and JSON;
/// - statistics (with a page index) on every column except the JSON documents, where
///   nobody prunes on a minimum and maximum;
/// - dictionary encoding where values repeat (the default; Parquet falls back to plain
///   by itself when a column's dictionary grows too large), not on ids and JSON;
/// - bloom filters on `event_id` and `actor_principal`, sized for `rows`, so that
///   looking up one event or one principal skips the row groups without it.
///
/// Lake files also have their rows sorted by `time`, recorded as the file's sorting
/// column (see [`write_file`]).
pub fn parquet_properties(rows: usize) -> WriterPropertiesBuilder {
    let unique = [
        column::EVENT_ID,
        column::REQUEST,
        column::RESPONSE,
        column::ADDITIONAL,
        column::RAW,
    ];
    let ndv = rows.clamp(1, ROW_GROUP_ROWS) as u64;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for name in unique {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(name), false)
            .set_column_statistics_enabled(ColumnPath::from(name), EnabledStatistics::None);
    }
    for name in [column::EVENT_ID, column::ACTOR_PRINCIPAL] {
        builder = builder
            .set_column_bloom_filter_enabled(ColumnPath::from(name), true)
            .set_column_bloom_filter_fpp(ColumnPath::from(name), 0.01)
            .set_column_bloom_filter_max_ndv(ColumnPath::from(name), ndv);
    }
    // The small columns (booleans, integers, and strings with few distinct values,
    // which dictionary encoding already shrinks to a few bits a row) are left
    // uncompressed: compressing them saves little and costs a compression context per
    // column per row group.
    for name in [
        column::EVENT_TYPE,
        column::ACCOUNT_ID,
        column::REGION,
        column::SERVICE,
        column::OPERATION,
        column::ACTOR_TYPE,
        column::ACTOR_INVOKED_BY,
        column::MFA,
        column::OUTCOME,
        column::ERROR_CODE,
        column::READ_ONLY,
        column::SRC_PARTITION,
        column::SRC_OFFSET,
        column::SRC_LINE,
        column::SRC_INDEX,
    ] {
        builder = builder.set_column_compression(ColumnPath::from(name), Compression::UNCOMPRESSED);
    }
    builder
}

/// Rows to write: a whole batch (`None`), or these rows of it.
pub type Selection = (RecordBatch, Option<Vec<u32>>);

/// Rows gathered at a time: the copy a file's encoder holds beside its input.
const GATHER_ROWS: usize = 16_384;

/// Hands the selected rows to `each` as batches in time order: as slices of their
/// batches when each selection is a run of rows in time order and the runs follow each
/// other (events that arrived in order); otherwise gathered in time order (one copy,
/// [`GATHER_ROWS`] at a time).
pub fn in_time_order(
    selections: Vec<Selection>,
    mut each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let mut times = Vec::with_capacity(selections.len());
    for (batch, _) in &selections {
        let time = batch
            .column_by_name(column::TIME)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or(Error::Schema("a microsecond `time` column"))?;
        times.push(time.values().clone());
    }
    if let Some(runs) = runs_in_order(&selections, &times) {
        return selections
            .iter()
            .zip(runs)
            .try_for_each(|((batch, _), (start, len))| each(batch.slice(start, len)));
    }
    let mut order: Vec<(i64, usize, usize)> = Vec::new();
    for (b, (batch, rows)) in selections.iter().enumerate() {
        let t = &times[b];
        match rows {
            Some(rows) => order.extend(rows.iter().map(|&r| (t[r as usize], b, r as usize))),
            None => order.extend((0..batch.num_rows()).map(|r| (t[r], b, r))),
        }
    }
    order.sort_unstable();
    let refs: Vec<&RecordBatch> = selections.iter().map(|(batch, _)| batch).collect();
    for chunk in order.chunks(GATHER_ROWS) {
        let indices: Vec<(usize, usize)> = chunk.iter().map(|&(_, b, r)| (b, r)).collect();
        each(interleave_record_batch(&refs, &indices)?)?;
    }
    Ok(())
}

/// Each selection's rows as a run `(start, len)` of its batch, if every selection is a
/// run of rows in time order and each run ends no later than the next one starts.
fn runs_in_order(
    selections: &[Selection],
    times: &[ScalarBuffer<i64>],
) -> Option<Vec<(usize, usize)>> {
    let mut runs = Vec::with_capacity(selections.len());
    let mut last = i64::MIN;
    for ((batch, rows), time) in selections.iter().zip(times) {
        let (start, len) = match rows {
            None => (0, batch.num_rows()),
            Some(rows) => {
                let start = *rows.first()? as usize;
                let contiguous = rows.iter().zip(start..).all(|(&r, n)| r as usize == n);
                if !contiguous {
                    return None;
                }
                (start, rows.len())
            }
        };
        for &t in time.get(start..start + len)? {
            if t < last {
                return None;
            }
            last = t;
        }
        runs.push((start, len));
    }
    Some(runs)
}

/// Writes `batches` (same schema) to a new Parquet file at `path`, in time order,
/// synced and renamed into place.
pub fn write_file(path: &Path, batches: Vec<RecordBatch>) -> Result<()> {
    let target = Target::File(path.to_owned());
    write_rows(&target, batches.into_iter().map(|b| (b, None)).collect())
}

/// Writes the selected rows (same schema) to a new Parquet file at `target`, in time
/// order, whole or not at all.
pub(crate) fn write_rows(target: &Target, selections: Vec<Selection>) -> Result<()> {
    let Some((first, _)) = selections.first() else {
        return Ok(());
    };
    let schema = first.schema();
    let rows = selections
        .iter()
        .map(|(batch, rows)| rows.as_ref().map_or(batch.num_rows(), Vec::len))
        .sum();
    let parquet = |source| Error::Parquet {
        path: PathBuf::from(target.name()),
        source,
    };
    let time = schema.index_of(column::TIME)?;
    let props = parquet_properties(rows)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: i32::try_from(time).map_err(|_| Error::Schema("fewer columns"))?,
            descending: false,
            nulls_first: false,
        }]))
        .build();
    target.write(|sink| {
        let mut writer =
            ArrowWriter::try_new(sink, Arc::clone(&schema), Some(props)).map_err(parquet)?;
        in_time_order(selections, |batch| {
            if batch.schema().fields() != schema.fields() {
                return Err(Error::Schema("the same columns in every batch of a file"));
            }
            writer.write(&batch).map_err(parquet)
        })?;
        writer.into_inner().map_err(parquet)
    })
}

/// A file to write.
type Job = (Target, Vec<Selection>);

/// Threads that write lake files. A file is handed over only to an idle thread, so a
/// writer that runs ahead of them waits instead of buffering without bound.
#[derive(Debug)]
pub(crate) struct Encoders {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Result<()>>,
    threads: Vec<JoinHandle<()>>,
    in_flight: usize,
}

impl Encoders {
    pub fn start(threads: usize) -> Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = sync_channel::<Job>(0);
        let (report, results) = channel();
        let queue = Arc::new(Mutex::new(queue));
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads {
            let queue = Arc::clone(&queue);
            let report = report.clone();
            let handle = std::thread::Builder::new()
                .name(format!("lake-encoder-{n}"))
                .spawn(move || {
                    loop {
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok((target, selections)) = next else {
                            return;
                        };
                        // A panic must not leave `wait` waiting for this file for ever.
                        let written = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            write_rows(&target, selections)
                        }))
                        .unwrap_or_else(|_| Err(Error::Panicked(PathBuf::from(target.name()))));
                        if report.send(written).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|source| Error::Io {
                    action: "start a lake encoder for",
                    path: PathBuf::from("the lake"),
                    source,
                })?;
            handles.push(handle);
        }
        Ok(Self {
            jobs: Some(jobs),
            results,
            threads: handles,
            in_flight: 0,
        })
    }

    /// Queues a file, then reports the failure of an earlier one, if any finished
    /// failing (the file just queued is written all the same).
    pub fn submit(&mut self, target: Target, selections: Vec<Selection>) -> Result<()> {
        let jobs = self.jobs.as_ref().ok_or(Error::Closed)?;
        jobs.send((target, selections)).map_err(|_| Error::Closed)?;
        self.in_flight += 1;
        while let Ok(done) = self.results.try_recv() {
            self.in_flight -= 1;
            done?;
        }
        Ok(())
    }

    /// Waits until every queued file is written; the first failure is returned.
    pub fn wait(&mut self) -> Result<()> {
        let mut first = Ok(());
        while self.in_flight > 0 {
            let done = self.results.recv().map_err(|_| Error::Closed)?;
            self.in_flight -= 1;
            if first.is_ok() {
                first = done;
            }
        }
        first
    }
}

impl Drop for Encoders {
    fn drop(&mut self) {
        self.jobs.take();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn batch(times: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                column::TIME,
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("n", DataType::Int32, false),
        ]));
        let n = (0..times.len() as i32).collect::<Vec<_>>();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampMicrosecondArray::from(times.to_vec())),
                Arc::new(Int32Array::from(n)),
            ],
        )
        .expect("batch")
    }

    /// The `time` values of each selection's batch.
    fn times(selections: &[Selection]) -> Vec<ScalarBuffer<i64>> {
        selections
            .iter()
            .map(|(b, _)| {
                b.column(0)
                    .as_primitive::<TimestampMicrosecondType>()
                    .values()
                    .clone()
            })
            .collect()
    }

    /// What `in_time_order` hands over: (rows of each batch, all times in order).
    fn handed(selections: Vec<Selection>) -> (Vec<usize>, Vec<i64>) {
        let (mut sizes, mut times) = (Vec::new(), Vec::new());
        in_time_order(selections, |b| {
            sizes.push(b.num_rows());
            let t = b.column(0).as_primitive::<TimestampMicrosecondType>();
            times.extend(t.values().iter().copied());
            Ok(())
        })
        .expect("in order");
        (sizes, times)
    }

    #[test]
    fn runs_that_follow_each_other_are_handed_over_as_slices() {
        let a = batch(&[1, 2, 3, 4, 5]);
        let b = batch(&[5, 6, 7]);
        let selections = vec![(a.clone(), Some(vec![2, 3, 4])), (b.clone(), None)];
        assert_eq!(
            runs_in_order(&selections, &times(&selections)),
            Some(vec![(2, 3), (0, 3)])
        );
        assert_eq!(handed(selections), (vec![3, 3], vec![3, 4, 5, 5, 6, 7]));
    }

    #[test]
    fn rows_out_of_order_or_apart_are_gathered_in_time_order() {
        let a = batch(&[1, 9, 3, 4, 5]);
        let b = batch(&[2, 6]);
        // Rows 0 and 2 are not a run; batch b starts before a's rows end.
        for selections in [
            vec![(a.clone(), Some(vec![0, 2]))],
            vec![(a.clone(), Some(vec![2, 3])), (b.clone(), None)],
            vec![(a.clone(), None)],
        ] {
            assert_eq!(runs_in_order(&selections, &times(&selections)), None);
            let (_, got) = handed(selections);
            assert!(got.windows(2).all(|w| w[0] <= w[1]), "{got:?}");
        }
        assert_eq!(
            handed(vec![(a.clone(), Some(vec![2, 3])), (b, None)]).1,
            vec![2, 3, 4, 6]
        );
    }
}
