//! One rule set run from several threads at once, as the pipeline's workers do: every
//! run gives the alerts it gives alone, and no rule fails.

use std::sync::Arc;

use arrow::array::RecordBatch;
use demarc_detect::RuleSet;
use demarc_model::Origin;
use demarc_normalize::{Normalizer, Options};

const THREADS: usize = 4;
const ROUNDS: usize = 20;

/// The attack detonations and the GCP export, seven events a batch.
fn batches() -> Vec<RecordBatch> {
    demarc_synth::samples::attack_samples()
        .expect("samples")
        .chunks(7)
        .map(|chunk| {
            let mut normalizer = Normalizer::new(Options::default());
            for (_, event) in chunk {
                normalizer.push(event.as_bytes(), &Origin::file("sample"));
            }
            normalizer.take_batch().expect("rows")
        })
        .collect()
}

/// The alert ids of each batch, and the failures, as "rule: error".
async fn alerts(rules: &RuleSet, batch: &RecordBatch) -> (Vec<String>, Vec<String>) {
    let detected = rules
        .alerts_each(batch.clone(), "t")
        .await
        .expect("rules run");
    let mut ids: Vec<String> = detected.alerts.into_iter().map(|a| a.alert_id).collect();
    ids.sort();
    let failures = detected
        .failures
        .iter()
        .map(|f| format!("{}: {}", f.rule, demarc_model::error_chain(&f.error)))
        .collect();
    (ids, failures)
}

#[test]
fn rules_run_from_several_threads_at_once_give_what_they_give_alone() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let rules = Arc::new(
        runtime
            .block_on(RuleSet::builtin())
            .expect("built-in rules"),
    );
    let batches = Arc::new(batches());
    let alone: Arc<Vec<Vec<String>>> = Arc::new(
        batches
            .iter()
            .map(|batch| {
                let (ids, failures) = runtime.block_on(alerts(&rules, batch));
                assert!(failures.is_empty(), "{failures:?}");
                ids
            })
            .collect(),
    );
    assert!(
        alone.iter().map(Vec::len).sum::<usize>() >= 10,
        "the samples hold violations"
    );
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (rules, batches, alone) =
                (Arc::clone(&rules), Arc::clone(&batches), Arc::clone(&alone));
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                let mut wrong = Vec::new();
                for round in 0..ROUNDS {
                    for (i, batch) in batches.iter().enumerate() {
                        let (ids, failures) = runtime.block_on(alerts(&rules, batch));
                        if ids != alone[i] || !failures.is_empty() {
                            wrong.push(format!(
                                "round {round}, batch {i}: {} alerts of {}; {failures:?}",
                                ids.len(),
                                alone[i].len()
                            ));
                        }
                    }
                }
                wrong
            })
        })
        .collect();
    let wrong: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
