//! The lake's files as readers see them: sorted, bloom-filtered, compacted without
//! duplicates.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use demarc_lake::{Lake, compact};
use demarc_model::{Origin, column};
use demarc_normalize::{Normalizer, Options};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};

/// CloudTrail events `ids` at minute `minute(id)` of 2026-01-05 10:00.
fn events(ids: impl IntoIterator<Item = u32>, minute: impl Fn(u32) -> u32) -> RecordBatch {
    let mut normalizer = Normalizer::new(Options::default());
    for id in ids {
        let event = format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-01-05T10:{:02}:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"e-{id}","recipientAccountId":"111122223333","userIdentity":{{"arn":"arn:aws:iam::111122223333:user/u{}"}}}}"#,
            minute(id),
            id % 7
        );
        normalizer.push(event.as_bytes(), &Origin::file("test"));
    }
    normalizer.take_batch().expect("rows")
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open"))
        .expect("parquet")
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect()
}

fn column_values(batches: &[RecordBatch], name: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(name)
                .expect("column")
                .as_string::<i32>()
                .clone();
            (0..a.len()).map(move |i| a.value(i).to_owned())
        })
        .collect()
}

fn times(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(column::TIME)
                .expect("time")
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn a_file_is_sorted_by_time_with_bloom_filters_statistics_and_no_provider_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lake = Lake::with_encoders(dir.path().into(), "t", 2).expect("lake");
    // Two batches whose times interleave, each out of order.
    lake.add_events(&events((0..30).rev(), |id| id * 2))
        .expect("add");
    lake.add_events(&events(30..60, |id| 59 - (id - 30) * 2))
        .expect("add");
    lake.flush().expect("flush");
    let parquet = files(dir.path(), "parquet");
    assert_eq!(parquet.len(), 1, "{parquet:?}");
    assert!(
        parquet[0]
            .to_string_lossy()
            .contains("events/provider=aws/date=2026-01-05/hour=10/part-t-")
    );
    let batches = read(&parquet[0]);
    let t = times(&batches);
    assert_eq!(t.len(), 60);
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "not in time order");
    assert!(
        batches[0]
            .schema()
            .column_with_name(column::PROVIDER)
            .is_none()
    );

    let reader = SerializedFileReader::new(File::open(&parquet[0]).expect("open")).expect("file");
    let meta = reader.metadata();
    let group = meta.row_group(0);
    let index = |name: &str| {
        (0..group.num_columns())
            .find(|&i| group.column(i).column_path().string() == name)
            .expect("column")
    };
    let sorting = group.sorting_columns().expect("sorting columns");
    assert_eq!(sorting[0].column_idx as usize, index(column::TIME));
    for name in [column::EVENT_ID, column::ACTOR_PRINCIPAL] {
        assert!(
            group.column(index(name)).bloom_filter_offset().is_some(),
            "no bloom filter on {name}"
        );
    }
    assert!(group.column(index(column::TIME)).statistics().is_some());
    assert!(group.column(index(column::REQUEST)).statistics().is_none());
    // Text compressed with zstd; small dictionary-encoded columns left as they are.
    assert_eq!(
        group.column(index(column::ACTOR_PRINCIPAL)).compression(),
        parquet::basic::Compression::ZSTD(Default::default())
    );
    assert_eq!(
        group.column(index(column::OPERATION)).compression(),
        parquet::basic::Compression::UNCOMPRESSED
    );
}

fn alert(id: &str) -> demarc_model::Alert {
    serde_json::from_value(serde_json::json!({
        "alert_id": id, "rule_id": "r", "title": "t", "category": "logging-disabled",
        "severity": "high", "srm_layer": "logging", "attack": [], "summary": "s",
        "event_ids": ["e-1"], "event_time": "2026-01-05T10:00:00Z",
        "detected_at": "2026-01-05T10:00:01Z", "provider": "aws", "account_id": null,
        "region": null, "actor": null, "resource": null, "source": []
    }))
    .expect("alert")
}

#[test]
fn compaction_merges_a_partition_into_one_sorted_file_without_replayed_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Three runs: the second replays the first's events, the third adds new ones; each
    // run flushes twice (streaming writes many small files).
    for (run, ids) in [("a", 0..40), ("b", 0..40), ("c", 40..70)] {
        let mut lake = Lake::with_encoders(dir.path().into(), run, 1).expect("lake");
        let ids: Vec<u32> = ids.collect();
        for half in ids.chunks(ids.len() / 2) {
            lake.add_events(&events(half.iter().copied(), |id| 59 - id % 60))
                .expect("add");
            lake.add_alert(&alert(&format!("alert-{}", half[0])))
                .expect("alert");
            lake.flush().expect("flush");
        }
    }
    assert_eq!(files(dir.path(), "parquet").len(), 6);
    assert_eq!(files(dir.path(), "jsonl").len(), 6);

    let done = compact(dir.path()).expect("compact");
    assert_eq!(done.files_before, 12);
    assert_eq!(done.files_after, 2);
    assert_eq!(done.rows_before, 110 + 6);
    assert_eq!(done.duplicates, 40 + 2);

    let parquet = files(dir.path(), "parquet");
    assert_eq!(parquet.len(), 1, "{parquet:?}");
    let batches = read(&parquet[0]);
    let mut ids = column_values(&batches, column::EVENT_ID);
    let t = times(&batches);
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "not in time order");
    ids.sort();
    let mut expected: Vec<String> = (0..70).map(|i| format!("e-{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);

    let jsonl = files(dir.path(), "jsonl");
    assert_eq!(jsonl.len(), 1);
    let text = std::fs::read_to_string(&jsonl[0]).expect("alerts");
    assert_eq!(text.lines().count(), 4, "{text}");
    // Nothing left behind but the lock file.
    assert!(files(dir.path(), "partial").is_empty());

    // A second compaction has nothing to merge.
    let again = compact(dir.path()).expect("compact");
    assert_eq!(again.partitions, 0);
}

#[test]
fn a_second_compaction_of_the_same_lake_is_refused_while_one_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join(".compact.lock"))
        .expect("lock file");
    lock.lock().expect("lock");
    let error = compact(dir.path()).expect_err("busy");
    assert!(
        error.to_string().contains("another `demarc lake compact`"),
        "{error}"
    );
}
