//! Building rows only for the events some rule may return (the rules' row filter)
//! changes no alert, no reject and no count: the full path and the filtered path are
//! compared on generated archives, on every rule's fixtures (both clouds, positives
//! and near misses), on the normalizer's envelope samples, and on the shared corpus of
//! real logs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use demarc_detect::RuleSet;
use demarc_model::Origin;
use demarc_normalize::{Normalizer, Options, RowFilter, Stats};
use demarc_synth::{CloudTrailGenerator, GcpGenerator};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file under `dir` with one of these extensions, sorted.
fn files(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, extensions, out);
        } else if path
            .extension()
            .is_some_and(|e| extensions.iter().any(|x| e == *x))
        {
            out.push(path);
        }
    }
}

/// Named inputs, as a source hands them over.
type Inputs = Vec<(String, Vec<u8>)>;

fn read_all(paths: &[PathBuf]) -> Inputs {
    paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), bytes)
        })
        .collect()
}

/// What one path produced: every alert in full (ids, events, source positions), every
/// reject, and the counters.
#[derive(Debug, PartialEq)]
struct Outcome {
    alerts: Vec<serde_json::Value>,
    rejects: Vec<String>,
    stats: Stats,
    rows: usize,
}

/// Normalizes `inputs` (in batches of about `batch_rows` rows, as a worker would) and
/// runs every rule.
async fn run(rules: &RuleSet, inputs: &Inputs, filter: Option<&RowFilter>) -> Outcome {
    let options = Options {
        row_filter: filter.cloned().map(Arc::new),
        ..Options::default()
    };
    let mut normalizer = Normalizer::new(options);
    let mut batches = Vec::new();
    let mut rejects = Vec::new();
    for (name, bytes) in inputs {
        normalizer.push(bytes, &Origin::file(name.as_str()));
        rejects.extend(
            normalizer
                .take_rejects()
                .into_iter()
                .map(|r| format!("{r:?}")),
        );
        if normalizer.pending_rows() >= 2_000 {
            batches.extend(normalizer.take_batch());
        }
    }
    batches.extend(normalizer.take_batch());
    let mut alerts = Vec::new();
    let mut rows = 0;
    for batch in batches {
        rows += batch.num_rows();
        for alert in rules.alerts(batch, "t").await.expect("rules run") {
            alerts.push(serde_json::to_value(&alert).expect("alert serializes"));
        }
    }
    alerts.sort_by_key(|a| a["alert_id"].to_string());
    Outcome {
        alerts,
        rejects,
        stats: normalizer.stats().clone(),
        rows,
    }
}

/// Compares both paths on `inputs`; returns the number of alerts and of events the
/// filter turned away.
async fn compare(what: &str, inputs: &Inputs) -> (usize, u64) {
    let rules = RuleSet::from_dir(&repo().join("queries"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let filter = rules.row_filter().expect("every rule tests its operation");
    let full = run(&rules, inputs, None).await;
    let filtered = run(&rules, inputs, Some(&filter)).await;
    assert_eq!(full.stats.events_unmatched, 0, "{what}");
    let unmatched = filtered.stats.events_unmatched;
    assert_eq!(
        filtered.rows as u64 + unmatched,
        full.rows as u64,
        "{what}: every event is a row or counted as unmatched"
    );
    let counted = Stats {
        events_unmatched: 0,
        ..filtered.stats.clone()
    };
    assert_eq!(counted, full.stats, "{what}: counters");
    assert_eq!(filtered.rejects, full.rejects, "{what}: rejects");
    assert_eq!(filtered.alerts.len(), full.alerts.len(), "{what}: alerts");
    assert_eq!(filtered.alerts, full.alerts, "{what}: alerts");
    (full.alerts.len(), unmatched)
}

#[tokio::test]
async fn generated_archives_raise_the_same_alerts() {
    let mut aws = CloudTrailGenerator::new(11).with_violation_rate(0.05);
    let mut gcp = GcpGenerator::new(12);
    let mut inputs: Inputs = (0..20)
        .map(|i| (format!("ct-{i}.json"), aws.records_file(150)))
        .collect();
    inputs.push(("ct.jsonl".into(), aws.ndjson(1_000)));
    inputs.push(("gcp.jsonl".into(), gcp.ndjson(1_000)));
    let (alerts, unmatched) = compare("generated", &inputs).await;
    assert!(alerts >= 50, "only {alerts} alerts");
    assert!(unmatched > 3_000, "only {unmatched} events turned away");
}

#[tokio::test]
async fn rule_fixtures_and_samples_raise_the_same_alerts() {
    let mut paths = Vec::new();
    files(
        &repo().join("testdata"),
        &["json", "jsonl", "gz"],
        &mut paths,
    );
    let inputs = read_all(&paths);
    let (alerts, unmatched) = compare("testdata", &inputs).await;
    // Every rule has at least two positive fixtures.
    assert!(alerts >= 64, "only {alerts} alerts");
    assert!(unmatched > 0);
}

#[tokio::test]
async fn the_corpus_of_real_logs_raises_the_same_alerts() {
    let dir = std::env::var_os("DEMARC_CORPUS")
        .map_or_else(|| repo().join("../shared/corpus"), PathBuf::from);
    assert!(dir.is_dir(), "the corpus is missing at {}", dir.display());
    let mut paths = Vec::new();
    files(&dir, &["json"], &mut paths);
    assert!(paths.len() > 100, "found {} files", paths.len());
    let inputs = read_all(&paths);
    let (_, unmatched) = compare("corpus", &inputs).await;
    assert!(unmatched > 1_000, "only {unmatched} events turned away");
}
