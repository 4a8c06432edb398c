//! A rule file: a comment header of metadata, then one `SELECT` over `events`.
//!
//! ```sql
//! -- id: aws-cloudtrail-logging-stopped
//! -- title: CloudTrail logging stopped or trail deleted
//! -- severity: high
//! -- category: logging-disabled
//! -- srm-layer: logging
//! -- service-models: iaas, paas, saas
//! -- attack: T1562.008
//! -- dedup: account_id, resource
//! -- summary: {actor_principal} stopped CloudTrail logging on {resource}
//! SELECT * FROM events WHERE …
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use demarc_model::{Category, RuleMeta, ServiceModel, Severity, SrmLayer};

/// A rule file that cannot be used, with where and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct RuleError {
    pub file: PathBuf,
    /// 1-based line the problem is on (the first line when it concerns the whole file).
    pub line: usize,
    pub message: String,
}

/// A parsed rule: metadata, and the SQL with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFile {
    pub path: PathBuf,
    pub meta: RuleMeta,
    pub sql: String,
    /// 1-based line of the file where the SQL starts.
    pub sql_line: usize,
    /// The evasion classes that apply to the rule (optional `evasions` key): each must
    /// have a fixture (see [`crate::check_rule_fixtures`]).
    pub evasions: Vec<Evasion>,
    /// The catalog controls the rule watches (optional `controls` key: ids of
    /// `catalog/*.toml` rows), for `demarc coverage`.
    pub controls: Vec<String>,
    /// The line of the `controls` key (0 without one), for errors about its ids.
    pub controls_line: usize,
    /// A rule over time (optional `window` and `lateness` keys): it reads
    /// `window_events`, the events of the span before each new one.
    pub window: Option<Window>,
}

/// The span a windowed rule looks back over, and how late an event may arrive and
/// still count, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub span_us: i64,
    pub lateness_us: i64,
}

/// Lateness when the header gives none: CloudTrail delivers most events within
/// minutes.
pub const DEFAULT_LATENESS_US: i64 = 15 * 60 * 1_000_000;

/// `30s`, `15m`, `2h` or `1d`, in microseconds; a span of none is not one.
fn span_us(text: &str) -> Option<i64> {
    demarc_model::parse_span(text)
        .and_then(|d| i64::try_from(d.as_micros()).ok())
        .filter(|us| *us > 0)
}

/// The ways a weakening escapes a rule written for its plainest form; fixture files
/// named `<class>--<slug>.json` exercise one each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Evasion {
    /// An omitted field means its default; the rule reasons about the resulting state.
    ApiDefaults,
    /// A full policy written with no delta (GCP `SetIamPolicy` of many services).
    WholePolicy,
    /// Policy conditions that do or do not confine an anonymous caller.
    PolicySemantics,
    /// Exposure by coverage: CIDR sets, port ranges, protocol numbers, every API.
    NetworkCoverage,
    /// Log routing filters and exclusions, judged against what the change modified.
    LogRouting,
    /// Failed, partial or dry-run calls that changed nothing.
    Outcome,
    /// AWS services acting, not a person.
    ServiceDriven,
    /// Other APIs or resource kinds that make the same weakening.
    CatalogVariant,
}

impl Evasion {
    pub const ALL: [Self; 8] = [
        Self::ApiDefaults,
        Self::WholePolicy,
        Self::PolicySemantics,
        Self::NetworkCoverage,
        Self::LogRouting,
        Self::Outcome,
        Self::ServiceDriven,
        Self::CatalogVariant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiDefaults => "api-defaults",
            Self::WholePolicy => "whole-policy",
            Self::PolicySemantics => "policy-semantics",
            Self::NetworkCoverage => "network-coverage",
            Self::LogRouting => "log-routing",
            Self::Outcome => "outcome",
            Self::ServiceDriven => "service-driven",
            Self::CatalogVariant => "catalog-variant",
        }
    }

    /// The class a fixture file exercises, from its name (`outcome--denied.json`).
    pub fn of_fixture(file_name: &str) -> Option<Self> {
        let (class, _) = file_name.split_once("--")?;
        class.parse().ok()
    }
}

impl fmt::Display for Evasion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Evasion {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown evasion class `{text}`; expected some of: {}",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }
}

const KEYS: [&str; 13] = [
    "id",
    "title",
    "severity",
    "category",
    "srm-layer",
    "service-models",
    "attack",
    "dedup",
    "summary",
    "evasions",
    "controls",
    "window",
    "lateness",
];

impl RuleFile {
    /// Parses the header and separates the SQL. The SQL itself is checked when the
    /// rule is planned against the event schema.
    pub fn parse(path: &Path, text: &str) -> Result<Self, RuleError> {
        let error = |line: usize, message: String| RuleError {
            file: path.to_owned(),
            line,
            message,
        };
        let mut values: [Option<(usize, String)>; KEYS.len()] = Default::default();
        let mut sql_line = None;
        for (i, line) in text.lines().enumerate() {
            let number = i + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let Some(comment) = trimmed.strip_prefix("--") else {
                sql_line = Some(number);
                break;
            };
            let comment = comment.trim();
            let Some((key, value)) = comment.split_once(':') else {
                // A comment line without `key:` is prose; it is allowed anywhere.
                continue;
            };
            let key = key.trim();
            let Some(slot) = KEYS.iter().position(|k| *k == key) else {
                if key.contains(' ') {
                    continue;
                }
                return Err(error(
                    number,
                    format!(
                        "unknown header key `{key}`; the keys are: {}",
                        KEYS.join(", ")
                    ),
                ));
            };
            if values[slot].is_some() {
                return Err(error(number, format!("header key `{key}` appears twice")));
            }
            values[slot] = Some((number, value.trim().to_owned()));
        }
        let Some(sql_line) = sql_line else {
            return Err(error(
                1,
                "no SQL after the header: add one `SELECT … FROM events`".into(),
            ));
        };
        let sql: String = text
            .lines()
            .skip(sql_line - 1)
            .collect::<Vec<_>>()
            .join("\n");

        let given =
            |key: &str| values[KEYS.iter().position(|k| *k == key).expect("a key")].is_some();
        let evasions_given = given("evasions");
        let controls_given = given("controls");
        let window_given = given("window");
        let lateness_given = given("lateness");
        let mut take = |key: &str| -> Result<(usize, String), RuleError> {
            let slot = KEYS.iter().position(|k| *k == key).expect("key is in KEYS");
            match values[slot].take() {
                Some((line, value)) if !value.is_empty() => Ok((line, value)),
                Some((line, _)) => Err(error(line, format!("header key `{key}` is empty"))),
                None => Err(error(
                    1,
                    format!("header key `{key}` is missing: add `-- {key}: …`"),
                )),
            }
        };
        let (id_line, id) = take("id")?;
        if !is_id(&id) {
            return Err(error(
                id_line,
                format!("rule id `{id}` may hold only a-z, 0-9 and `-`"),
            ));
        }
        let (_, title) = take("title")?;
        let severity = parse_one::<Severity>(take("severity")?, &error)?;
        let category = parse_one::<Category>(take("category")?, &error)?;
        let srm_layer = parse_one::<SrmLayer>(take("srm-layer")?, &error)?;
        let (models_line, models) = take("service-models")?;
        let service_models = list(&models)
            .map(|m| parse_one::<ServiceModel>((models_line, m.to_owned()), &error))
            .collect::<Result<Vec<_>, _>>()?;
        let (attack_line, attack) = take("attack")?;
        // `none`: a rule without a technique (imported Sigma rules may have none).
        let attack: Vec<String> = if attack == "none" {
            Vec::new()
        } else {
            list(&attack).map(str::to_owned).collect()
        };
        if let Some(bad) = attack.iter().find(|t| !is_technique(t)) {
            return Err(error(
                attack_line,
                format!("`{bad}` is not an ATT&CK technique id such as T1562 or T1562.008"),
            ));
        }
        let (_, dedup) = take("dedup")?;
        let dedup = list(&dedup).map(str::to_owned).collect();
        let (_, summary) = take("summary")?;
        // The optional keys.
        let evasions = if evasions_given {
            let (line, value) = take("evasions")?;
            list(&value)
                .map(|e| parse_one::<Evasion>((line, e.to_owned()), &error))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        let mut controls_line = 0;
        let controls = if controls_given {
            let (line, value) = take("controls")?;
            controls_line = line;
            let controls: Vec<String> = list(&value).map(str::to_owned).collect();
            if let Some(bad) = controls.iter().find(|c| !is_id(c)) {
                return Err(error(
                    line,
                    format!("control id `{bad}` may hold only a-z, 0-9 and `-`"),
                ));
            }
            controls
        } else {
            Vec::new()
        };

        let span = |(line, value): (usize, String), key: &str| {
            span_us(&value).ok_or_else(|| {
                error(
                    line,
                    format!(
                        "`{key}: {value}` is not a span: write a number and s, m, h or d, as in 15m"
                    ),
                )
            })
        };
        let window = if window_given {
            let span_us = span(take("window")?, "window")?;
            let lateness_us = if lateness_given {
                span(take("lateness")?, "lateness")?
            } else {
                DEFAULT_LATENESS_US
            };
            Some(Window {
                span_us,
                lateness_us,
            })
        } else if lateness_given {
            let (line, _) = take("lateness")?;
            return Err(error(
                line,
                "`lateness` applies to windowed rules: add `-- window: …` or remove it".into(),
            ));
        } else {
            None
        };

        Ok(Self {
            path: path.to_owned(),
            meta: RuleMeta {
                id,
                title,
                severity,
                category,
                srm_layer,
                service_models,
                attack,
                dedup,
                summary,
            },
            sql,
            sql_line,
            evasions,
            controls,
            controls_line,
            window,
        })
    }

    /// The line of the header key, for errors found after parsing (unknown dedup or
    /// summary columns).
    pub fn header_line(&self, text: &str, key: &str) -> usize {
        text.lines()
            .position(|l| {
                l.trim()
                    .strip_prefix("--")
                    .and_then(|c| c.trim().strip_prefix(key))
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
            })
            .map_or(1, |i| i + 1)
    }
}

fn parse_one<T>(
    (line, value): (usize, String),
    error: &impl Fn(usize, String) -> RuleError,
) -> Result<T, RuleError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    value
        .trim()
        .parse::<T>()
        .map_err(|e| error(line, e.to_string()))
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// `T1234` or `T1234.567`.
fn is_technique(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = match rest.split_once('.') {
        Some((main, sub)) => (main, Some(sub)),
        None => (rest, None),
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    digits(main, 4) && sub.is_none_or(|s| digits(s, 3))
}

/// Whether `text` is a valid rule or control id: a-z, 0-9 and `-`.
pub(crate) fn is_id(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The `{column}` placeholders of a summary template.
pub fn placeholders(summary: &str) -> impl Iterator<Item = &str> {
    summary
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
-- id: aws-cloudtrail-logging-stopped
-- title: CloudTrail logging stopped
-- severity: high
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas, paas
-- attack: T1562.008, T1562
-- dedup: account_id, resource
-- summary: {actor_principal} stopped {resource}
--
-- Why this matters: prose comments are fine.

SELECT * FROM events
WHERE operation = 'StopLogging'
";

    fn parse(text: &str) -> Result<RuleFile, RuleError> {
        RuleFile::parse(Path::new("queries/x.sql"), text)
    }

    #[test]
    fn a_complete_header_parses() {
        let rule = parse(GOOD).expect("valid rule");
        assert_eq!(rule.meta.id, "aws-cloudtrail-logging-stopped");
        assert_eq!(rule.meta.category, Category::LoggingDisabled);
        assert_eq!(
            rule.meta.service_models,
            [ServiceModel::Iaas, ServiceModel::Paas]
        );
        assert_eq!(rule.meta.attack, ["T1562.008", "T1562"]);
        assert_eq!(rule.meta.dedup, ["account_id", "resource"]);
        assert_eq!(rule.sql_line, 13);
        assert!(rule.sql.starts_with("SELECT * FROM events"));
    }

    #[test]
    fn errors_name_the_file_line_and_fix() {
        let bad = GOOD.replace("severity: high", "severity: urgent");
        let err = parse(&bad).expect_err("bad severity");
        assert_eq!(err.line, 3);
        assert_eq!(
            err.to_string(),
            "queries/x.sql:3: unknown severity `urgent`; expected one of: info, low, medium, high, critical"
        );

        let bad = GOOD.replace("-- category: logging-disabled\n", "");
        let err = parse(&bad).expect_err("missing category");
        assert!(
            err.message
                .contains("`category` is missing: add `-- category: …`"),
            "{err}"
        );

        let bad = GOOD.replace("-- dedup:", "-- dedupe:");
        let err = parse(&bad).expect_err("unknown key");
        assert_eq!(err.line, 8);
        assert!(err.message.contains("unknown header key `dedupe`"), "{err}");

        let bad = GOOD.replace("T1562.008", "T15");
        assert_eq!(parse(&bad).expect_err("bad technique").line, 7);

        let bad = GOOD.replace("aws-cloudtrail-logging-stopped", "Stop Logging");
        assert_eq!(parse(&bad).expect_err("bad id").line, 1);

        let header_only: String = GOOD.lines().take(9).collect::<Vec<_>>().join("\n");
        let err = parse(&header_only).expect_err("no SQL");
        assert!(err.message.contains("no SQL"), "{err}");
    }

    #[test]
    fn summary_placeholders_are_listed() {
        let names: Vec<&str> =
            placeholders("{actor_principal} stopped { resource } in {account_id}").collect();
        assert_eq!(names, ["actor_principal", "resource", "account_id"]);
    }
}
