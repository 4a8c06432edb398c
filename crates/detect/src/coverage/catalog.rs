//! The control catalog: the customer-side controls demarc means to watch, one
//! `[[control]]` table each in `catalog/*.toml`, compiled in like the rules; a folder
//! given at run time replaces it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use demarc_model::{Category, ServiceModel, SrmLayer};
use serde::{Deserialize, Serialize};

use crate::rule::is_id;

include!(concat!(env!("OUT_DIR"), "/builtin_catalog.rs"));

/// The providers a control may belong to.
pub const PROVIDERS: [&str; 2] = ["aws", "gcp"];

/// A catalog file, or a row of one, that cannot be used: where and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct CatalogError {
    pub file: PathBuf,
    /// 1-based line (1 when it concerns the whole file).
    pub line: usize,
    pub message: String,
}

/// One customer-side control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Control {
    pub id: String,
    pub provider: String,
    /// What the customer keeps in place, in a sentence.
    pub control: String,
    pub category: Category,
    pub srm_layer: SrmLayer,
    pub service_models: Vec<ServiceModel>,
    pub service: String,
    pub operations: Vec<String>,
    /// When a change to it is a weakening.
    pub condition: String,
    /// A known control that no built-in rule watches yet.
    pub planned: bool,
    #[serde(skip)]
    pub file: PathBuf,
    #[serde(skip)]
    pub line: usize,
}

/// Every control, in file order.
#[derive(Debug, Clone)]
pub struct Catalog {
    controls: Vec<Control>,
}

impl Catalog {
    /// The catalog compiled in from `catalog/`.
    pub fn builtin() -> Result<Self, Vec<CatalogError>> {
        Self::load(None)
    }

    /// The `*.toml` files of `dir` (sorted by name), or the built-in catalog. Every
    /// problem of every file is reported.
    pub fn load(dir: Option<&Path>) -> Result<Self, Vec<CatalogError>> {
        let sources: Vec<(PathBuf, String)> = match dir {
            None => BUILTIN_CATALOG
                .iter()
                .map(|(name, text)| (PathBuf::from(name), (*text).to_owned()))
                .collect(),
            Some(dir) => read_dir(dir)?,
        };
        let mut controls = Vec::new();
        let mut problems = Vec::new();
        let mut seen: BTreeMap<String, (PathBuf, usize)> = BTreeMap::new();
        for (file, text) in &sources {
            let (parsed, mut bad) = parse(file, text);
            problems.append(&mut bad);
            for control in parsed {
                if let Some((first, line)) = seen.get(&control.id) {
                    problems.push(CatalogError {
                        file: file.clone(),
                        line: control.line,
                        message: format!(
                            "control id `{}` is already used at {}:{line}; give each control \
                             its own id",
                            control.id,
                            first.display()
                        ),
                    });
                    continue;
                }
                seen.insert(control.id.clone(), (file.clone(), control.line));
                controls.push(control);
            }
        }
        if controls.is_empty() && problems.is_empty() {
            problems.push(CatalogError {
                file: dir.map(Path::to_owned).unwrap_or_else(|| "catalog".into()),
                line: 1,
                message: "no controls: a catalog folder holds `*.toml` files of \
                          `[[control]]` tables"
                    .into(),
            });
        }
        if problems.is_empty() {
            Ok(Self { controls })
        } else {
            Err(problems)
        }
    }

    pub fn controls(&self) -> &[Control] {
        &self.controls
    }

    pub fn get(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, String)>, Vec<CatalogError>> {
    let problem = |file: &Path, message: String| {
        vec![CatalogError {
            file: file.to_owned(),
            line: 1,
            message,
        }]
    };
    let entries = std::fs::read_dir(dir).map_err(|e| problem(dir, format!("cannot read: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push((path, text)),
            Err(e) => problems.append(&mut problem(&path, format!("cannot read: {e}"))),
        }
    }
    if problems.is_empty() {
        Ok(sources)
    } else {
        Err(problems)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    control: Vec<toml::Spanned<Raw>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    id: String,
    provider: String,
    control: String,
    category: String,
    srm_layer: String,
    service_models: Vec<String>,
    service: String,
    operations: Vec<String>,
    condition: String,
    #[serde(default)]
    planned: bool,
}

/// The controls of one file that can be used, and the problems of the others.
pub(crate) fn parse(file: &Path, text: &str) -> (Vec<Control>, Vec<CatalogError>) {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let parsed: File = match toml::from_str(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            return (
                Vec::new(),
                vec![CatalogError {
                    file: file.to_owned(),
                    line: e.span().map(|s| line_of(s.start)).unwrap_or(1),
                    message: format!(
                        "{}; a control is a `[[control]]` table with id, provider, control, \
                 category, srm-layer, service-models, service, operations, condition and \
                 optionally planned",
                        e.message().trim_end()
                    ),
                }],
            );
        }
    };
    let mut controls = Vec::new();
    let mut problems = Vec::new();
    for spanned in parsed.control {
        let line = line_of(spanned.span().start);
        // The line of one of the control's keys, for problems with its value.
        let key_line = |key: &str| {
            text.lines()
                .enumerate()
                .skip(line)
                .take_while(|(_, l)| !l.trim_start().starts_with('['))
                .find(|(_, l)| {
                    l.trim_start()
                        .strip_prefix(key)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
                .map_or(line, |(i, _)| i + 1)
        };
        let raw = spanned.into_inner();
        let mut problem = |key: &str, message: String| {
            problems.push(CatalogError {
                file: file.to_owned(),
                line: key_line(key),
                message,
            });
        };
        if !is_id(&raw.id) {
            problem(
                "id",
                format!("control id `{}` may hold only a-z, 0-9 and `-`", raw.id),
            );
        }
        if !PROVIDERS.contains(&raw.provider.as_str()) {
            problem(
                "provider",
                format!(
                    "provider `{}` is not one of: {}",
                    raw.provider,
                    PROVIDERS.join(", ")
                ),
            );
        }
        for (key, value) in [
            ("control", &raw.control),
            ("service", &raw.service),
            ("condition", &raw.condition),
        ] {
            if value.trim().is_empty() {
                problem(key, format!("`{key}` of control `{}` is empty", raw.id));
            }
        }
        if raw.operations.is_empty() {
            problem(
                "operations",
                format!(
                    "control `{}` names no operations: list the API calls that change it",
                    raw.id
                ),
            );
        }
        let category = vocabulary::<Category>(&raw.category, |m| problem("category", m));
        let srm_layer = vocabulary::<SrmLayer>(&raw.srm_layer, |m| problem("srm-layer", m));
        let service_models: Vec<Option<ServiceModel>> = raw
            .service_models
            .iter()
            .map(|m| vocabulary::<ServiceModel>(m, |e| problem("service-models", e)))
            .collect();
        if raw.service_models.is_empty() {
            problem(
                "service-models",
                format!(
                    "control `{}` has no service-models: list some of iaas, paas, saas",
                    raw.id
                ),
            );
        }
        let (Some(category), Some(srm_layer)) = (category, srm_layer) else {
            continue;
        };
        let Some(service_models) = service_models.into_iter().collect::<Option<Vec<_>>>() else {
            continue;
        };
        controls.push(Control {
            id: raw.id,
            provider: raw.provider,
            control: raw.control,
            category,
            srm_layer,
            service_models,
            service: raw.service,
            operations: raw.operations,
            condition: raw.condition,
            planned: raw.planned,
            file: file.to_owned(),
            line,
        });
    }
    (controls, problems)
}

fn vocabulary<T: FromStr<Err = demarc_model::UnknownValue>>(
    value: &str,
    mut problem: impl FnMut(String),
) -> Option<T> {
    value
        .parse()
        .map_err(|e: demarc_model::UnknownValue| problem(e.to_string()))
        .ok()
}

/// The fixture files of the built-in rules: (rule id, `positive` or `negative`, name).
pub(crate) fn builtin_fixtures() -> &'static [(&'static str, &'static str, &'static str)] {
    BUILTIN_FIXTURES
}
