//! Windowed rules over batches as they come: a sequence found once is reported once,
//! with the same id however its events were split or ordered; shorter or slower
//! sequences are not; and the windows forget what they no longer need.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::compute::concat_batches;
use demarc_detect::{RuleSet, Windows, load_fixtures};
use demarc_model::Alert;

const RULE: &str = "aws-console-brute-force-then-success";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The events of one fixture sequence, in file order.
fn sequence(kind: &str, name: &str) -> RecordBatch {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = repo()
        .join("testdata/rules")
        .join(RULE)
        .join(kind)
        .join(format!("{name}.json"));
    std::fs::copy(&file, dir.path().join("s.json")).expect("copy fixture");
    load_fixtures(dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .0
        .expect("events")
}

/// The rows of `batch` whose event ids are among `ids`, in that order.
fn pick(batch: &RecordBatch, ids: &[&str]) -> RecordBatch {
    let column = batch
        .column_by_name("event_id")
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
        .expect("event ids");
    let parts: Vec<RecordBatch> = ids
        .iter()
        .map(|id| {
            let row = (0..column.len())
                .find(|r| column.value(*r) == *id)
                .unwrap_or_else(|| panic!("no event {id}"));
            batch.slice(row, 1)
        })
        .collect();
    concat_batches(&batch.schema(), &parts).expect("concat")
}

async fn run(windows: &mut Windows, batches: &[RecordBatch]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for batch in batches {
        let out = windows
            .advance(batch, "2026-03-02T12:00:00Z")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.detected.failures.is_empty(),
            "{:?}",
            out.detected.failures
        );
        alerts.extend(
            out.detected
                .alerts
                .into_iter()
                .filter(|a| a.rule_id == RULE),
        );
    }
    alerts
}

async fn windows() -> Windows {
    let rules = RuleSet::builtin().await.expect("built-in rules");
    Windows::new(Arc::new(rules)).expect("windows")
}

#[tokio::test]
async fn ten_failures_then_a_success_alert_once_naming_eleven_events() {
    let events = sequence("positive", "ten-failures-then-success");
    let alerts = run(&mut windows().await, std::slice::from_ref(&events)).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let mut expected: Vec<String> = (0..10).map(|i| format!("bf-a-f{i}")).collect();
    expected.push("bf-a-ok".into());
    expected.sort();
    assert_eq!(alerts[0].event_ids, expected);
    assert!(
        alerts[0].summary.contains("after 10 failed attempts"),
        "{}",
        alerts[0].summary
    );

    // The same events in three batches, the last failures ten minutes behind the
    // success: one alert, with the same id.
    let split = [
        pick(
            &events,
            &[
                "bf-a-f5", "bf-a-f6", "bf-a-f7", "bf-a-f8", "bf-a-f9", "bf-a-ok",
            ],
        ),
        pick(&events, &["bf-a-f0", "bf-a-f1", "bf-a-f2"]),
        pick(&events, &["bf-a-f3", "bf-a-f4"]),
    ];
    let again = run(&mut windows().await, &split).await;
    assert_eq!(again.len(), 1, "{again:#?}");
    assert_eq!(again[0].alert_id, alerts[0].alert_id);

    // A replay into the same windows (Kafka redelivers) raises nothing new; into new
    // ones, the same id.
    let mut replayed = windows().await;
    let first = run(&mut replayed, std::slice::from_ref(&events)).await;
    let second = run(&mut replayed, std::slice::from_ref(&events)).await;
    assert_eq!(first[0].alert_id, alerts[0].alert_id);
    assert!(second.is_empty(), "{second:#?}");
}

#[tokio::test]
async fn nine_failures_or_a_success_after_the_window_raise_nothing() {
    for name in ["nine-failures-then-success", "success-after-the-window"] {
        let events = sequence("negative", name);
        let alerts = run(&mut windows().await, &[events]).await;
        assert!(alerts.is_empty(), "{name}: {alerts:#?}");
    }
    // Nor a success whose tenth failure arrives after the window moved past it: the
    // failures at 0..9 minutes, the success at 25, one batch each.
    let events = sequence("negative", "success-after-the-window");
    let ids: Vec<String> = (0..10).map(|i| format!("bf-d-f{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let alerts = run(
        &mut windows().await,
        &[pick(&events, &["bf-d-ok"]), pick(&events, &ids)],
    )
    .await;
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[tokio::test]
async fn late_events_are_counted_and_windows_forget_old_events() {
    let events = sequence("negative", "success-after-the-window");
    let mut windows = windows().await;
    // The success at 10:25 first; the failures at 10:00–10:09 are then more than the
    // rule's 15 minutes of lateness behind it… for the first ones only (10:00–10:09
    // against 10:25 − 15 min = 10:10): all ten are late.
    let first = windows
        .advance(&pick(&events, &["bf-d-ok"]), "t")
        .await
        .expect("advance");
    assert!(first.late.is_empty());
    let ids: Vec<String> = (0..10).map(|i| format!("bf-d-f{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let out = windows
        .advance(&pick(&events, &ids), "t")
        .await
        .expect("advance");
    assert!(out.late.contains(&(RULE.to_owned(), 10)), "{:?}", out.late);
    // Held: what the 15-minute window and 15 minutes of lateness still need, 09:55
    // onwards: every event here (10:00 onwards).
    assert_eq!(held(&out), 11);
    // An event two hours on moves the window: the old ones go.
    let later = sequence("positive", "ten-failures-then-success");
    // 2026-03-02T12:30:00Z
    let shifted = moved(&later, "bf-a-ok", "bf-a-ok", 1_772_454_600_000_000);
    let out = windows.advance(&shifted, "t").await.expect("advance");
    assert_eq!(held(&out), 1, "only the newest event is held");
}

#[tokio::test]
async fn a_sequence_read_after_newer_events_still_meets_across_batches() {
    // A backfill of region after region: a newer sign-in first (12:30, from the shifted
    // success), then the older sequence in two batches. The window follows the newest
    // event, but keeps what the last batch's events need.
    let events = sequence("positive", "ten-failures-then-success");
    let newer = moved(&events, "bf-a-ok", "bf-newer", 1_772_454_600_000_000);
    let (first, rest) = halves(&events);
    let alerts = run(&mut windows().await, &[newer, first, rest]).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].event_ids.len(), 11);
}

/// The positive sequence in two: its first five failures, and the other five with the
/// success.
fn halves(events: &RecordBatch) -> (RecordBatch, RecordBatch) {
    (
        pick(
            events,
            &["bf-a-f0", "bf-a-f1", "bf-a-f2", "bf-a-f3", "bf-a-f4"],
        ),
        pick(
            events,
            &[
                "bf-a-f5", "bf-a-f6", "bf-a-f7", "bf-a-f8", "bf-a-f9", "bf-a-ok",
            ],
        ),
    )
}

/// `batch` as read from partition `partition` of Kafka topic `audit`.
fn on_partition(batch: &RecordBatch, partition: i32) -> RecordBatch {
    let rows = batch.num_rows();
    let schema = batch.schema();
    let mut columns = batch.columns().to_vec();
    columns[schema.index_of("src").expect("src")] =
        Arc::new(arrow::array::StringArray::from(vec!["audit"; rows]));
    columns[schema.index_of("src_partition").expect("src_partition")] =
        Arc::new(arrow::array::Int32Array::from(vec![partition; rows]));
    columns[schema.index_of("src_offset").expect("src_offset")] =
        Arc::new(arrow::array::Int64Array::from_iter_values(0..rows as i64));
    RecordBatch::try_new(schema, columns).expect("batch")
}

/// One event of `batch` under a new id, at `micros` since the epoch.
fn moved(batch: &RecordBatch, from: &str, id: &str, micros: i64) -> RecordBatch {
    let row = pick(batch, &[from]);
    let schema = row.schema();
    let mut columns = row.columns().to_vec();
    columns[schema.index_of("time").expect("time")] = Arc::new(
        arrow::array::TimestampMicrosecondArray::from(vec![micros]).with_timezone("+00:00"),
    );
    columns[schema.index_of("event_id").expect("id")] =
        Arc::new(arrow::array::StringArray::from(vec![id]));
    RecordBatch::try_new(schema, columns).expect("batch")
}

fn held(out: &demarc_detect::WindowOutput) -> usize {
    out.held
        .iter()
        .find(|(r, _)| r == RULE)
        .map(|(_, n)| *n)
        .expect("the rule's count")
}

#[tokio::test]
async fn each_partition_keeps_its_own_window_however_far_ahead_another_is() {
    // Partition 0 carries the sequence (10:00–10:10); partition 1 is years ahead (an
    // archive replayed into one partition, or one live while the other catches up).
    let events = on_partition(&sequence("positive", "ten-failures-then-success"), 0);
    // 2029-01-01T00:00:00Z
    let ahead = on_partition(
        &moved(&events, "bf-a-ok", "bf-ahead", 1_861_920_000_000_000),
        1,
    );
    let (first, rest) = halves(&events);
    let whole = run(&mut windows().await, std::slice::from_ref(&events)).await;
    assert_eq!(whole.len(), 1, "{whole:#?}");

    // The far partition in a batch of its own between the halves, and in one batch
    // with the first half: the same one alert either way, with no event counted late.
    let mixed = concat_batches(&events.schema(), [&first, &ahead]).expect("concat");
    for batches in [
        vec![first.clone(), ahead.clone(), rest.clone()],
        vec![mixed, rest.clone()],
    ] {
        let mut windows = windows().await;
        let mut alerts = Vec::new();
        for batch in &batches {
            let out = windows.advance(batch, "t").await.expect("advance");
            assert!(out.late.is_empty(), "{:?}", out.late);
            alerts.extend(
                out.detected
                    .alerts
                    .into_iter()
                    .filter(|a| a.rule_id == RULE),
            );
        }
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].alert_id, whole[0].alert_id);
    }

    // Each partition still forgets what its own newer events leave behind: partition 0
    // two hours on (12:30) keeps only that event, and partition 1 its one.
    let mut windows = windows().await;
    for batch in [&first, &ahead, &rest] {
        windows.advance(batch, "t").await.expect("advance");
    }
    let later = on_partition(
        &moved(&events, "bf-a-ok", "bf-later", 1_772_454_600_000_000),
        0,
    );
    let out = windows.advance(&later, "t").await.expect("advance");
    assert_eq!(held(&out), 2, "bf-later and bf-ahead");
    // An event more than the lateness behind its own partition's newest is late; one
    // behind only the other partition's is not.
    let back = pick(&events, &["bf-a-f0"]);
    let back = on_partition(
        &moved(&back, "bf-a-f0", "bf-back", 1_772_445_600_000_000),
        0,
    );
    let out = windows.advance(&back, "t").await.expect("advance");
    assert_eq!(out.late, vec![(RULE.to_owned(), 1)]);
}
