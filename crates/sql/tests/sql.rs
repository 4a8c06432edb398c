//! `demarc sql` over a small lake written by the lake writer: the query surface as
//! `.slt` files (sqllogictest), and what a file cannot say (new files, pruning, error
//! positions, backtests).

mod common;

use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use common::{batch, events, fixture_lake};
use demarc_detect::RuleSet;
use demarc_sql::Lake;
use futures::StreamExt;
use sqllogictest::{DBOutput, DefaultColumnType};

struct Db {
    lake: Lake,
}

#[derive(Debug)]
struct Failed(String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = Failed;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Failed> {
        let failed = |e: demarc_sql::Error| Failed(e.explain());
        let mut stream = self.lake.stream(sql).await.map_err(failed)?;
        let schema = stream.schema();
        let types = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                t if t.is_integer() => DefaultColumnType::Integer,
                DataType::Float32 | DataType::Float64 => DefaultColumnType::FloatingPoint,
                _ => DefaultColumnType::Text,
            })
            .collect();
        let mut rows = Vec::new();
        let options = FormatOptions::default().with_null("NULL");
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| Failed(e.to_string()))?;
            let formatters: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
                .collect();
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| {
                            let text = f.value(row).to_string();
                            if text.is_empty() {
                                "(empty)".to_owned()
                            } else {
                                text
                            }
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_surface_holds_as_the_slt_files_say() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = fixture_lake(dir.path()).await;
    let slt = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&slt)
        .expect("slt folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let root = root.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let lake = Lake::open(&root).map_err(|e| Failed(e.explain()));
            async move { Ok(Db { lake: lake? }) }
        });
        if let Err(error) = runner.run_file_async(&file).await {
            panic!("{}: {error}", file.display());
        }
    }
}

async fn rows(lake: &Lake, sql: &str) -> Vec<RecordBatch> {
    let stream = lake.stream(sql).await.expect("query");
    stream.map(|b| b.expect("batch")).collect::<Vec<_>>().await
}

async fn count(lake: &Lake, sql: &str) -> i64 {
    let batches = rows(lake, sql).await;
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("count")
        .value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_after_a_query_is_in_the_next_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = fixture_lake(dir.path()).await;
    let lake = Lake::open(&root).expect("open");
    assert_eq!(count(&lake, "SELECT count(*) FROM events").await, 7);
    common::write_a_later_event(&root);
    assert_eq!(count(&lake, "SELECT count(*) FROM events").await, 8);
}

async fn plan(lake: &Lake, sql: &str) -> String {
    let batches = rows(lake, &format!("EXPLAIN {sql}")).await;
    arrow::util::pretty::pretty_format_batches(&batches)
        .expect("plan")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_on_partition_columns_skip_other_folders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = fixture_lake(dir.path()).await;
    let lake = Lake::open(&root).expect("open");
    let gcp = plan(&lake, "SELECT event_id FROM events WHERE provider = 'gcp'").await;
    assert!(gcp.contains("provider=gcp"), "{gcp}");
    assert!(!gcp.contains("provider=aws"), "{gcp}");
    let day = plan(
        &lake,
        "SELECT event_id FROM events WHERE date = '2026-01-06' AND hour >= '09'",
    )
    .await;
    assert!(day.contains("date=2026-01-06"), "{day}");
    assert!(!day.contains("date=2026-01-05"), "{day}");
}

#[test]
fn queries_are_planned_as_the_rules_are() {
    // The rules' session: the JSON and domain functions, and no optimizer pass that
    // moves a JSON function below the filters written before it.
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path()).expect("open");
    let state = lake.context().state();
    let passes: Vec<&str> = state.optimizer().rules.iter().map(|r| r.name()).collect();
    assert!(passes.contains(&"push_down_filter"), "{passes:?}");
    for moved in ["extract_leaf_expressions", "push_down_leaf_projections"] {
        assert!(!passes.contains(&moved), "{moved} in {passes:?}");
    }
    for function in ["json_get_str", "aws_policy_public", "json_values"] {
        assert!(
            state.scalar_functions().contains_key(function),
            "{function}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_points_at_the_offending_part_of_the_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path()).expect("open");
    let sql = "SELECT event_id,\n       actor_princpal\nFROM events";
    let error = lake.plan(sql).await.expect_err("no such column").explain();
    assert!(
        error.contains("line 2, column 8")
            && error.contains("|        actor_princpal\n  |        ^^^^^^^^^^^^^^"),
        "{error}"
    );
    assert!(error.contains("actor_principal"), "no suggestion: {error}");
    let syntax = lake
        .plan("SELECT event_id FROM events WHERE WHERE")
        .await
        .expect_err("syntax")
        .explain();
    assert!(syntax.contains("line 1, column 35"), "{syntax}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_raises_what_a_backfill_would_with_the_same_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = fixture_lake(dir.path()).await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../queries/aws-cloudtrail-logging-stopped.sql");
    let text = std::fs::read_to_string(&path).expect("rule");
    let rules = RuleSet::from_sources(vec![(path, text)])
        .await
        .expect("rule");
    let backtest = demarc_sql::backtest(&root, &rules, None, None)
        .await
        .expect("backtest");
    let expected = rules
        .alerts(batch(&events()), "2026-01-07T00:00:00Z")
        .await
        .expect("alerts");
    let ids = |alerts: &[demarc_model::Alert]| {
        let mut ids: Vec<(String, Vec<String>)> = alerts
            .iter()
            .map(|a| (a.alert_id.clone(), a.event_ids.clone()))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(expected.len(), 2);
    assert_eq!(ids(&backtest.alerts), ids(&expected));
    // Since a time after the first StopLogging: only the second.
    let since = chrono::DateTime::parse_from_rfc3339("2026-01-06T00:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let recent = demarc_sql::backtest(&root, &rules, Some(since), None)
        .await
        .expect("backtest");
    assert_eq!(recent.alerts.len(), 1);
    assert_eq!(recent.alerts[0].event_ids, vec!["e-4".to_owned()]);
    // Until that time: only the first.
    let early = demarc_sql::backtest(&root, &rules, None, Some(since))
        .await
        .expect("backtest");
    assert_eq!(early.alerts.len(), 1);
    assert_eq!(early.alerts[0].event_ids, vec!["e-1".to_owned()]);
}
