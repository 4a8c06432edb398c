//! Sigma rules for `aws/cloudtrail` and `gcp/gcp.audit` compiled into demarc rule files
//! over the normalized schema, each with generated fixture events: positives that
//! satisfy its detection and near misses that differ from one in a single field.
//!
//! The YAML and the condition grammar are read by `rsigma-parser`; the field mapping
//! ([`mapping`]), the SQL ([`sql`]) and the fixtures ([`fixtures`]) are ours.

mod expr;
pub mod fixtures;
pub mod mapping;
mod meta;
pub mod sql;

use std::path::{Path, PathBuf};

use demarc_model::Category;
use rsigma_parser::{SigmaRule, parse_sigma_yaml};

use mapping::Source;

/// A rule that could not be imported: the file, the rule and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: rule `{rule}`: {message}", file.display())]
pub struct ImportError {
    pub file: PathBuf,
    /// The Sigma title (or the file name when there is none).
    pub rule: String,
    pub message: String,
}

/// Choices of the import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The category of every imported rule, instead of one inferred from its title and
    /// ATT&CK tactics.
    pub category: Option<Category>,
}

/// One imported rule.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The demarc rule id: `sigma-` and the Sigma file name's stem.
    pub id: String,
    /// The rule file's text.
    pub rule: String,
    /// Fixture events (file name, JSON) that must alert.
    pub positives: Vec<(String, String)>,
    /// Fixture events that must not: each differs from a positive in one field.
    pub negatives: Vec<(String, String)>,
    /// Why no fixtures could be written, when they could not.
    pub fixture_problem: Option<String>,
}

/// Every rule of one Sigma file (a file may hold several documents).
pub fn import(file: &Path, text: &str, options: &Options) -> Vec<Result<Imported, ImportError>> {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("rule")
        .to_owned();
    let error = |rule: &str, message: String| ImportError {
        file: file.to_owned(),
        rule: rule.to_owned(),
        message,
    };
    let collection = match parse_sigma_yaml(text) {
        Ok(collection) => collection,
        Err(e) => return vec![Err(error(&stem, format!("not a Sigma rule: {e}")))],
    };
    let mut out = Vec::new();
    for message in &collection.errors {
        out.push(Err(error(&stem, format!("not a Sigma rule: {message}"))));
    }
    for correlation in &collection.correlations {
        out.push(Err(error(
            &correlation.title,
            "correlation rules are not imported (demarc's windowed rules are written in SQL)"
                .into(),
        )));
    }
    for filter in &collection.filters {
        out.push(Err(error(
            &filter.title,
            "filter documents are not imported".into(),
        )));
    }
    let several = collection.rules.len() > 1;
    for (n, rule) in collection.rules.iter().enumerate() {
        let id = if several {
            format!("sigma-{}-{}", slug(&stem), n + 1)
        } else {
            format!("sigma-{}", slug(&stem))
        };
        out.push(import_rule(file, &id, rule, options).map_err(|m| error(&rule.title, m)));
    }
    out
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn source_of(rule: &SigmaRule) -> Result<Source, String> {
    let product = rule.logsource.product.as_deref().unwrap_or("");
    let service = rule.logsource.service.as_deref().unwrap_or("");
    match (product, service) {
        ("aws", "cloudtrail") => Ok(Source::CloudTrail),
        ("gcp", "gcp.audit") => Ok(Source::GcpAudit),
        _ => Err(format!(
            "logsource product `{product}`, service `{service}` is not one demarc reads; it \
             imports aws/cloudtrail and gcp/gcp.audit"
        )),
    }
}

fn import_rule(
    file: &Path,
    id: &str,
    rule: &SigmaRule,
    options: &Options,
) -> Result<Imported, String> {
    let source = source_of(rule)?;
    if rule.detection.timeframe.is_some() {
        return Err("`timeframe` (aggregation over time) is not imported".into());
    }
    let formula = expr::build(source, &rule.detection.named, &rule.detection.conditions)?;
    let condition = sql::condition(&formula);
    let text = meta::rule_file(file, id, rule, source, &formula, &condition, options);
    let (positives, negatives, fixture_problem) = match fixtures::write(source, id, &formula) {
        Ok((p, n)) => (p, n, None),
        Err(problem) => (Vec::new(), Vec::new(), Some(problem)),
    };
    Ok(Imported {
        id: id.to_owned(),
        rule: text,
        positives,
        negatives,
        fixture_problem,
    })
}

#[cfg(test)]
mod tests;
