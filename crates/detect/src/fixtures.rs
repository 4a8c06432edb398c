//! Rule fixtures: `<root>/<rule-id>/positive/` holds events that must alert,
//! `<root>/<rule-id>/negative/` events that must not. Files may be in any envelope the
//! normalizer reads. This is what `demarc rules test` and the test suite both run.
//! A file named `<class>--<slug>.json` exercises one evasion class ([`Evasion`]); the
//! classes a rule's header lists under `evasions` must each have one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use demarc_model::Origin;
use demarc_normalize::{Normalizer, Options};

use crate::rule::Evasion;
use crate::{Result, RuleSet};

/// The outcome of one rule's fixtures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureResult {
    pub rule_id: String,
    pub positives: usize,
    pub negatives: usize,
    /// The evasion classes its fixture files exercise (`<class>--<slug>.json`).
    pub covered: BTreeSet<Evasion>,
    /// The evasion classes the rule says apply to it.
    pub declared: Vec<Evasion>,
    /// What went wrong; empty when the rule passed.
    pub problems: Vec<String>,
}

impl FixtureResult {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Fewer fixture events than this per side fail the rule.
pub const MIN_FIXTURES: usize = 2;

/// Runs every rule against its own fixtures under `root`.
pub async fn check_fixtures(rules: &RuleSet, root: &Path) -> Result<Vec<FixtureResult>> {
    let mut results = Vec::new();
    for rule in rules.rules() {
        results.push(check_rule_fixtures(rules, &rule.meta.id, root).await?);
    }
    Ok(results)
}

/// Runs one rule against its fixtures in `root/<id>/{positive,negative}/`.
pub async fn check_rule_fixtures(rules: &RuleSet, id: &str, root: &Path) -> Result<FixtureResult> {
    let mut result = FixtureResult {
        rule_id: id.to_owned(),
        positives: 0,
        negatives: 0,
        covered: BTreeSet::new(),
        declared: Vec::new(),
        problems: Vec::new(),
    };
    let Some(rule) = rules.rules().iter().find(|r| r.meta.id == id) else {
        result.problems.push(format!("no rule has the id `{id}`"));
        return Ok(result);
    };
    result.declared.clone_from(&rule.evasions);
    check_classes(&root.join(id), &mut result);
    if rule.window.is_some() {
        check_sequences(rules, id, root, &mut result).await?;
        return Ok(result);
    }
    for positive in [true, false] {
        let kind = if positive { "positive" } else { "negative" };
        let dir = root.join(id).join(kind);
        let (batch, ids) = match load_fixtures(&dir) {
            Ok(loaded) => loaded,
            Err(problem) => {
                result.problems.push(problem);
                continue;
            }
        };
        if positive {
            result.positives = ids.len();
        } else {
            result.negatives = ids.len();
        }
        if ids.len() < MIN_FIXTURES {
            result.problems.push(format!(
                "{}: {} {kind} event(s), at least {MIN_FIXTURES} needed",
                dir.display(),
                ids.len()
            ));
        }
        let Some(batch) = batch else { continue };
        let matched: BTreeSet<String> = rules
            .evaluate_rule(id, batch)
            .await?
            .into_iter()
            .flat_map(|m| m.rows.iter().flat_map(event_ids).collect::<Vec<_>>())
            .collect();
        if positive {
            let missed: Vec<&String> = ids.difference(&matched).collect();
            if !missed.is_empty() {
                result
                    .problems
                    .push(format!("positive events did not alert: {missed:?}"));
            }
        } else if !matched.is_empty() {
            result
                .problems
                .push(format!("negative events alerted: {matched:?}"));
        }
    }
    Ok(result)
}

/// A windowed rule's fixtures: each file is one timed sequence, run from an empty
/// window. A positive sequence must raise an alert (naming only its events), a
/// negative one none.
async fn check_sequences(
    rules: &RuleSet,
    id: &str,
    root: &Path,
    result: &mut FixtureResult,
) -> Result<()> {
    for positive in [true, false] {
        let kind = if positive { "positive" } else { "negative" };
        let dir = root.join(id).join(kind);
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                result.problems.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        files.sort();
        if files.len() < MIN_FIXTURES {
            result.problems.push(format!(
                "{}: {} {kind} sequence(s), at least {MIN_FIXTURES} needed",
                dir.display(),
                files.len()
            ));
        }
        if positive {
            result.positives = files.len();
        } else {
            result.negatives = files.len();
        }
        for file in files {
            let (batch, ids) = match load_files(std::slice::from_ref(&file)) {
                Ok(loaded) => loaded,
                Err(problem) => {
                    result.problems.push(problem);
                    continue;
                }
            };
            let Some(batch) = batch else { continue };
            let alerts = crate::window::run_windowed(rules, id, &[batch]).await?;
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            if positive && alerts.is_empty() {
                result
                    .problems
                    .push(format!("positive sequence {name} raised no alert"));
            }
            if !positive && !alerts.is_empty() {
                result.problems.push(format!(
                    "negative sequence {name} alerted on {:?}",
                    alerts[0].event_ids
                ));
            }
            for alert in &alerts {
                if alert.event_ids.iter().any(|e| !ids.contains(e)) {
                    result.problems.push(format!(
                        "sequence {name}: an alert names events outside it: {:?}",
                        alert.event_ids
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Which evasion classes the fixture files of `dir/{positive,negative}` exercise, and
/// whether they are the ones the rule declares.
fn check_classes(dir: &Path, result: &mut FixtureResult) {
    for kind in ["positive", "negative"] {
        let Ok(entries) = std::fs::read_dir(dir.join(kind)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((class, _)) = name.split_once("--") else {
                continue;
            };
            match Evasion::of_fixture(&name) {
                Some(evasion) => {
                    result.covered.insert(evasion);
                }
                None => result.problems.push(format!(
                    "{kind}/{name}: `{class}` is not an evasion class; name fixtures \
                     `<class>--<slug>.json` with one of: {}",
                    Evasion::ALL.map(Evasion::as_str).join(", ")
                )),
            }
        }
    }
    for missing in result
        .declared
        .iter()
        .filter(|e| !result.covered.contains(e))
    {
        result.problems.push(format!(
            "the rule says `{missing}` applies to it but no fixture exercises it: add a \
             `{missing}--<slug>.json` under positive/ or negative/"
        ));
    }
    for extra in result
        .covered
        .iter()
        .filter(|e| !result.declared.contains(e))
    {
        result.problems.push(format!(
            "fixtures exercise `{extra}` but the rule does not list it: add it to its \
             `-- evasions:` header"
        ));
    }
}

/// Every file of a fixture folder, normalized, with the event ids it holds; a reject is
/// a broken fixture, and the error says which file and why.
pub fn load_fixtures(
    dir: &Path,
) -> std::result::Result<(Option<RecordBatch>, BTreeSet<String>), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    load_files(&paths)
}

/// The events of `paths`, normalized together, with their ids.
fn load_files(
    paths: &[PathBuf],
) -> std::result::Result<(Option<RecordBatch>, BTreeSet<String>), String> {
    let mut normalizer = Normalizer::new(Options::default());
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        normalizer.push(&bytes, &Origin::file(path.display().to_string()));
        if let Some(reject) = normalizer.take_rejects().first() {
            return Err(format!(
                "{}: fixture does not normalize: {} ({})",
                path.display(),
                reject.reason,
                reject.detail
            ));
        }
    }
    let batch = normalizer.take_batch();
    let ids = batch.as_ref().map(event_ids).unwrap_or_default();
    Ok((batch, ids))
}

fn event_ids(batch: &RecordBatch) -> BTreeSet<String> {
    let Some(ids) = batch
        .column_by_name("event_id")
        .and_then(|c| c.as_string_opt::<i32>())
    else {
        return BTreeSet::new();
    };
    (0..ids.len())
        .filter(|i| ids.is_valid(*i))
        .map(|i| ids.value(i).to_owned())
        .collect()
}
