//! Cutting a batch of normalized events into the lake's partitions, on the thread that
//! normalized them: which rows go to which partition (provider, hour), in time order.
//! Nothing is copied here: a part is the batch and its rows' indices, and the file
//! writer gathers the rows of all the parts of a file in one pass.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::compute::{SortColumn, lexsort_to_indices};
use arrow::datatypes::{Schema, TimestampMicrosecondType};
use demarc_model::column;

use crate::{Error, Result};

pub(crate) const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// The rows of one batch that belong to one partition.
#[derive(Debug, Clone)]
pub struct Part {
    pub provider: String,
    /// Hours since the epoch.
    pub hour: i64,
    /// The whole batch, without the `provider` column (the partition path carries it);
    /// shared by the batch's parts.
    pub batch: RecordBatch,
    /// The part's rows of `batch`, in time order.
    pub rows: Vec<u32>,
    /// The time of its latest row (microseconds since the epoch).
    pub latest: i64,
    /// The memory the rows take, estimated as their share of the batch.
    pub bytes: usize,
    /// The memory of the whole batch, which the part keeps alive.
    pub batch_bytes: usize,
}

/// The batch's rows by partition (provider, hour), each part in time order.
pub fn split(batch: &RecordBatch) -> Result<Vec<Part>> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let count =
        u32::try_from(batch.num_rows()).map_err(|_| Error::Schema("fewer than 2^32 rows"))?;
    let (provider, time) = keys(batch)?;
    let in_order = (1..batch.num_rows()).all(|row| {
        let (a, b) = (provider.value(row - 1), provider.value(row));
        a < b || (a == b && time.value(row - 1) <= time.value(row))
    });
    let order: Vec<u32> = if in_order {
        (0..count).collect()
    } else {
        let schema = batch.schema();
        lexsort_to_indices(
            &[
                SortColumn {
                    values: Arc::clone(batch.column(schema.index_of(column::PROVIDER)?)),
                    options: None,
                },
                SortColumn {
                    values: Arc::clone(batch.column(schema.index_of(column::TIME)?)),
                    options: None,
                },
            ],
            None,
        )?
        .values()
        .to_vec()
    };
    let hour = |row: u32| time.value(row as usize).div_euclid(MICROS_PER_HOUR);
    let name = |row: u32| provider.value(row as usize);
    let rows = without_provider(batch)?;
    let batch_bytes = rows.get_array_memory_size();
    let per_row = batch_bytes / rows.num_rows().max(1);
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..=order.len() {
        let boundary = i == order.len()
            || name(order[i]) != name(order[start])
            || hour(order[i]) != hour(order[start]);
        if boundary {
            parts.push(Part {
                provider: name(order[start]).to_owned(),
                hour: hour(order[start]),
                batch: rows.clone(),
                rows: order[start..i].to_vec(),
                latest: time.value(order[i - 1] as usize),
                bytes: per_row * (i - start),
                batch_bytes,
            });
            start = i;
        }
    }
    Ok(parts)
}

type Keys<'a> = (
    &'a StringArray,
    &'a arrow::array::PrimitiveArray<TimestampMicrosecondType>,
);

fn keys(batch: &RecordBatch) -> Result<Keys<'_>> {
    let time = batch
        .column_by_name(column::TIME)
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .ok_or(Error::Schema("a microsecond `time` column"))?;
    let provider = batch
        .column_by_name(column::PROVIDER)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or(Error::Schema("a `provider` column"))?;
    Ok((provider, time))
}

/// The batch without `provider`.
fn without_provider(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| schema.field(i).name() != column::PROVIDER)
        .collect();
    Ok(batch.project(&keep)?)
}

/// The lake's file schema: the event schema without `provider`.
pub fn file_schema(schema: &Schema) -> Arc<Schema> {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| f.name() != column::PROVIDER)
        .cloned()
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, TimeUnit};

    fn batch(rows: &[(&str, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                column::TIME,
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                false,
            ),
            Field::new(column::PROVIDER, DataType::Utf8, false),
            Field::new(column::EVENT_ID, DataType::Utf8, false),
        ]));
        let time = TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
            .with_timezone("+00:00");
        let provider = StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
        let ids = StringArray::from((0..rows.len()).map(|i| format!("e{i}")).collect::<Vec<_>>());
        RecordBatch::try_new(
            schema,
            vec![Arc::new(time), Arc::new(provider), Arc::new(ids)],
        )
        .expect("batch")
    }

    fn ids(part: &Part) -> Vec<String> {
        let ids = part.batch.column(1).as_string::<i32>();
        part.rows
            .iter()
            .map(|&i| ids.value(i as usize).to_owned())
            .collect()
    }

    #[test]
    fn parts_are_cut_by_provider_and_hour_and_ordered_by_time() {
        let h = MICROS_PER_HOUR;
        let parts = split(&batch(&[
            ("gcp", 5),
            ("aws", h + 7),
            ("aws", 3),
            ("aws", h + 1),
            ("gcp", 2),
            ("aws", -1),
        ]))
        .expect("split");
        let got: Vec<_> = parts
            .iter()
            .map(|p| (p.provider.as_str(), p.hour, ids(p)))
            .collect();
        assert_eq!(
            got,
            vec![
                ("aws", -1, vec!["e5".to_owned()]),
                ("aws", 0, vec!["e2".to_owned()]),
                ("aws", 1, vec!["e3".to_owned(), "e1".to_owned()]),
                ("gcp", 0, vec!["e4".to_owned(), "e0".to_owned()]),
            ]
        );
        assert!(parts.iter().all(|p| {
            p.batch
                .schema()
                .column_with_name(column::PROVIDER)
                .is_none()
        }));
    }

    #[test]
    fn parts_share_the_batch_without_a_copy() {
        let input = batch(&[("aws", 1), ("aws", 2), ("aws", MICROS_PER_HOUR)]);
        let parts = split(&input).expect("split");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].rows, vec![0, 1]);
        assert_eq!(parts[1].rows, vec![2]);
        let source = input.column(2).to_data().buffers()[1].as_ptr();
        assert_eq!(
            parts[1].batch.column(1).to_data().buffers()[1].as_ptr(),
            source
        );
    }
}
