//! A rule's physical plan is made once and run again on every batch: each run reads
//! its own batch, and nothing a join built over one batch is met again in the next.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use demarc_detect::{RuleSet, load_fixtures};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Events that pair up: console sign-ins from one address.
fn sign_ins() -> RecordBatch {
    let dir = repo().join("testdata/rules/aws-console-brute-force-then-success/positive");
    load_fixtures(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
        .expect("events")
}

const RULE: &str = "\
-- id: test-same-address
-- title: Two sign-ins from one address
-- severity: low
-- category: identity-weakened
-- srm-layer: identity
-- service-models: iaas
-- attack: T1110
-- dedup: event_id
-- summary: {event_id} shares its address with {others} other events
-- evasions: outcome
-- controls: aws-console-sign-in
--
-- Each event with another of the same batch from its address: a join of the batch
-- with itself, so a build side left from the batch before would show.
SELECT a.event_id, count(b.event_id) AS others
FROM events a
JOIN events b ON a.src_ip = b.src_ip AND a.event_id <> b.event_id
GROUP BY a.event_id
";

async fn matched(rules: &RuleSet, batch: RecordBatch) -> usize {
    rules
        .evaluate_rule("test-same-address", batch)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("the rule exists")
        .rows
        .iter()
        .map(RecordBatch::num_rows)
        .sum()
}

#[tokio::test]
async fn each_run_of_a_kept_plan_reads_only_its_own_batch() {
    let rules = RuleSet::from_sources(vec![(PathBuf::from("test.sql"), RULE.to_owned())])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all = sign_ins();
    assert!(all.num_rows() >= 11, "{} events", all.num_rows());

    let first = matched(&rules, all.clone()).await;
    assert!(first >= 10, "{first} events paired in the whole batch");
    // One event alone pairs with nothing, unless the join kept the last batch.
    assert_eq!(matched(&rules, all.slice(0, 1)).await, 0);
    assert_eq!(
        matched(&rules, RecordBatch::new_empty(all.schema())).await,
        0
    );
    // And the kept plan still finds what it found at first.
    assert_eq!(matched(&rules, all).await, first);
}
