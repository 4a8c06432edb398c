//! `demarc coverage`: the map of which customer-side controls the loaded rules watch,
//! by provider, service model and Shared-Responsibility layer; which catalog controls
//! no rule watches; which evasion classes each rule's fixtures exercise; and which
//! allow-table rows mute which rules now.

mod catalog;
mod render;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use demarc_model::{Category, ServiceModel, Severity, SrmLayer};
use serde::Serialize;

pub use catalog::{Catalog, CatalogError, Control, PROVIDERS};
pub use render::{html, table};

use crate::RuleSet;
use crate::allow::AllowEntry;
use crate::rule::{Evasion, RuleError};

/// Where the rules' fixture files are looked for.
#[derive(Debug, Clone)]
pub enum Fixtures {
    /// The names compiled in with the built-in rules (`testdata/rules/`).
    Builtin,
    /// `<dir>/<rule-id>/{positive,negative}/`.
    Dir(PathBuf),
    /// Not known: the report says so instead of counting none.
    Unknown,
}

/// The whole report; its JSON form is what `--format json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where the rules came from (`built in` or a folder).
    pub rules_from: String,
    /// Where the fixtures came from (`built in`, a folder, or `unknown`).
    pub fixtures_from: String,
    pub summary: Summary,
    /// One cell per provider × SRM layer × service model that has controls.
    pub grid: Vec<Cell>,
    pub controls: Vec<ControlCoverage>,
    pub rules: Vec<RuleCoverage>,
    /// Every allow-table row, with the rules it mutes.
    pub allow: Vec<AllowCoverage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub controls: usize,
    pub watched: usize,
    /// Controls no loaded rule watches.
    pub unwatched: Vec<String>,
    pub rules: usize,
    /// Rules that name no catalog control.
    pub rules_outside_catalog: Vec<String>,
    /// Declared evasion classes without a fixture, as `rule/class`.
    pub classes_without_fixture: Vec<String>,
    /// Allow rows in force (not expired) that mute some rule.
    pub muting_rows: usize,
    pub expired_rows: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub provider: String,
    pub srm_layer: SrmLayer,
    pub service_model: ServiceModel,
    pub controls: Vec<String>,
    /// Those of `controls` some loaded rule watches.
    pub watched: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ControlCoverage {
    #[serde(flatten)]
    pub control: Control,
    /// The loaded rules that watch it.
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleCoverage {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub category: Category,
    pub srm_layer: SrmLayer,
    pub service_models: Vec<ServiceModel>,
    /// From its controls, else its id's prefix; empty when neither says.
    pub providers: Vec<String>,
    pub controls: Vec<String>,
    /// Fixture files per side (`None`: fixtures not known).
    pub fixtures: Option<FixtureCount>,
    /// Every class that is declared or has a fixture.
    pub evasions: Vec<ClassCoverage>,
    /// The allow tables the rule reads.
    pub allow_tables: Vec<String>,
    /// Rows of those tables in force now.
    pub muted_by: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FixtureCount {
    pub positive: usize,
    pub negative: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassCoverage {
    pub class: String,
    /// The rule's `-- evasions:` header lists it.
    pub declared: bool,
    /// Fixture files named `<class>--…` (`None`: fixtures not known).
    pub fixtures: Option<FixtureCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AllowCoverage {
    #[serde(flatten)]
    pub entry: AllowEntry,
    /// The rules that read its table: the row mutes them while it is in force.
    pub rules: Vec<String>,
}

/// Builds the report for the loaded `rules`. A rule naming a control the catalog
/// does not have is an error, with its file and line.
pub fn report(
    rules: &RuleSet,
    catalog: &Catalog,
    fixtures: &Fixtures,
    rules_from: &str,
) -> Result<Report, Vec<RuleError>> {
    let mut problems = Vec::new();
    let mut watchers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for rule in rules.rules() {
        for id in &rule.controls {
            if catalog.get(id).is_some() {
                watchers
                    .entry(id.as_str())
                    .or_default()
                    .push(rule.meta.id.clone());
            } else {
                problems.push(RuleError {
                    file: rule.path.clone(),
                    line: rule.controls_line,
                    message: format!(
                        "control `{id}` is not in the catalog; name one of its ids (`demarc \
                         coverage --format json` lists them) or add it to the catalog"
                    ),
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let controls: Vec<ControlCoverage> = catalog
        .controls()
        .iter()
        .map(|c| ControlCoverage {
            control: c.clone(),
            rules: watchers.get(c.id.as_str()).cloned().unwrap_or_default(),
        })
        .collect();

    let grid = grid(&controls);
    let files = fixture_files(rules, fixtures);
    let entries = rules.allow().entries();
    let tables_read = rules.allow_tables();
    let mut rule_rows = Vec::new();
    for (rule, tables) in rules.rules().iter().zip(&tables_read) {
        let mut providers: BTreeSet<String> = rule
            .controls
            .iter()
            .filter_map(|id| catalog.get(id).map(|c| c.provider.clone()))
            .collect();
        if providers.is_empty()
            && let Some(prefix) = rule.meta.id.split('-').next()
            && PROVIDERS.contains(&prefix)
        {
            providers.insert(prefix.to_owned());
        }
        let own = files.as_ref().map(|f| f.get(&rule.meta.id));
        let evasions = Evasion::ALL
            .into_iter()
            .filter_map(|class| {
                let declared = rule.evasions.contains(&class);
                let count = own.map(|f| count(f.into_iter().flatten(), Some(class)));
                let exercised = count.is_some_and(|c| c.positive + c.negative > 0);
                (declared || exercised).then(|| ClassCoverage {
                    class: class.as_str().to_owned(),
                    declared,
                    fixtures: count,
                })
            })
            .collect();
        rule_rows.push(RuleCoverage {
            id: rule.meta.id.clone(),
            title: rule.meta.title.clone(),
            severity: rule.meta.severity,
            category: rule.meta.category,
            srm_layer: rule.meta.srm_layer,
            service_models: rule.meta.service_models.clone(),
            providers: providers.into_iter().collect(),
            controls: rule.controls.clone(),
            fixtures: own.map(|f| count(f.into_iter().flatten(), None)),
            evasions,
            allow_tables: tables.iter().cloned().collect(),
            muted_by: entries
                .iter()
                .filter(|e| !e.expired && tables.contains(&e.table))
                .count(),
        });
    }
    let allow: Vec<AllowCoverage> = entries
        .into_iter()
        .map(|entry| AllowCoverage {
            rules: rules
                .rules()
                .iter()
                .zip(&tables_read)
                .filter(|(_, t)| t.contains(&entry.table))
                .map(|(r, _)| r.meta.id.clone())
                .collect(),
            entry,
        })
        .collect();

    let summary = Summary {
        controls: controls.len(),
        watched: controls.iter().filter(|c| !c.rules.is_empty()).count(),
        unwatched: controls
            .iter()
            .filter(|c| c.rules.is_empty())
            .map(|c| c.control.id.clone())
            .collect(),
        rules: rule_rows.len(),
        rules_outside_catalog: rule_rows
            .iter()
            .filter(|r| r.controls.is_empty())
            .map(|r| r.id.clone())
            .collect(),
        classes_without_fixture: rule_rows
            .iter()
            .flat_map(|r| {
                r.evasions
                    .iter()
                    .filter(|c| {
                        c.declared && c.fixtures.is_some_and(|f| f.positive + f.negative == 0)
                    })
                    .map(move |c| format!("{}/{}", r.id, c.class))
            })
            .collect(),
        muting_rows: allow
            .iter()
            .filter(|a| !a.entry.expired && !a.rules.is_empty())
            .count(),
        expired_rows: allow.iter().filter(|a| a.entry.expired).count(),
    };
    Ok(Report {
        rules_from: rules_from.to_owned(),
        fixtures_from: match fixtures {
            Fixtures::Builtin => "built in".to_owned(),
            Fixtures::Dir(dir) => dir.display().to_string(),
            Fixtures::Unknown => "unknown".to_owned(),
        },
        summary,
        grid,
        controls,
        rules: rule_rows,
        allow,
    })
}

fn grid(controls: &[ControlCoverage]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for provider in PROVIDERS {
        for layer in SrmLayer::ALL {
            for model in ServiceModel::ALL {
                let here: Vec<&ControlCoverage> = controls
                    .iter()
                    .filter(|c| {
                        c.control.provider == provider
                            && c.control.srm_layer == *layer
                            && c.control.service_models.contains(model)
                    })
                    .collect();
                if here.is_empty() {
                    continue;
                }
                cells.push(Cell {
                    provider: provider.to_owned(),
                    srm_layer: *layer,
                    service_model: *model,
                    controls: here.iter().map(|c| c.control.id.clone()).collect(),
                    watched: here
                        .iter()
                        .filter(|c| !c.rules.is_empty())
                        .map(|c| c.control.id.clone())
                        .collect(),
                });
            }
        }
    }
    cells
}

/// (side, file name) per rule id; `None` when fixtures are not known.
type FixtureFiles = BTreeMap<String, Vec<(&'static str, String)>>;

fn fixture_files(rules: &RuleSet, fixtures: &Fixtures) -> Option<FixtureFiles> {
    let mut files = FixtureFiles::new();
    match fixtures {
        Fixtures::Unknown => return None,
        Fixtures::Builtin => {
            for (rule, side, name) in catalog::builtin_fixtures() {
                let side = if *side == "positive" {
                    "positive"
                } else {
                    "negative"
                };
                files
                    .entry((*rule).to_owned())
                    .or_default()
                    .push((side, (*name).to_owned()));
            }
        }
        Fixtures::Dir(dir) => {
            for rule in rules.rules() {
                for side in ["positive", "negative"] {
                    for name in names_in(&dir.join(&rule.meta.id).join(side)) {
                        files
                            .entry(rule.meta.id.clone())
                            .or_default()
                            .push((side, name));
                    }
                }
            }
        }
    }
    Some(files)
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Files per side, of one class (or of all, for `None`).
fn count<'a>(
    files: impl Iterator<Item = &'a (&'static str, String)>,
    class: Option<Evasion>,
) -> FixtureCount {
    let mut n = FixtureCount::default();
    for (side, name) in files {
        if class.is_some_and(|c| Evasion::of_fixture(name) != Some(c)) {
            continue;
        }
        if *side == "positive" {
            n.positive += 1;
        } else {
            n.negative += 1;
        }
    }
    n
}
