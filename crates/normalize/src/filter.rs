//! Which events are worth a row: the column tests of the loaded rules, applied while
//! normalizing, so that an event no rule can return is counted but never built.
//!
//! Building a row (naming its resource, unwrapping its request and response, copying
//! its strings and raw JSON into Arrow) costs more than parsing the event, and almost
//! every event of an archive matches no rule. When nothing else needs the rows (no lake
//! is written), the pipeline gives the normalizer a [`RowFilter`] made from the rules'
//! prefilters. The filter is a necessary condition only: a row it keeps still goes
//! through every rule as written, so the alerts are those of the full path.

use std::collections::BTreeSet;
use std::fmt;

/// A column the normalizer can test before it builds a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FilterColumn {
    Provider,
    Outcome,
    Service,
    ActorType,
    Operation,
}

impl FilterColumn {
    /// The column of `events` with this name, if the normalizer can test it.
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "provider" => Some(Self::Provider),
            "outcome" => Some(Self::Outcome),
            "service" => Some(Self::Service),
            "actor_type" => Some(Self::ActorType),
            "operation" => Some(Self::Operation),
            _ => None,
        }
    }
}

/// What a rule requires of a column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ColumnTest {
    /// One of these values (`=`, `IN`).
    OneOf(BTreeSet<String>),
    /// A match of this regular expression, with these flags, as DataFusion's
    /// `regexp_like(column, pattern, flags)` evaluates it (the `regex` crate, the
    /// pattern prefixed with `(?flags)`).
    Matches {
        pattern: String,
        flags: Option<String>,
    },
}

/// The tested columns of one event, as its row would hold them (`None`: null).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowKeys<'a> {
    pub provider: &'static str,
    pub outcome: &'static str,
    pub service: Option<&'a str>,
    pub actor_type: Option<&'a str>,
    pub operation: Option<&'a str>,
}

impl<'a> RowKeys<'a> {
    fn get(&self, column: FilterColumn) -> Option<&'a str> {
        match column {
            FilterColumn::Provider => Some(self.provider),
            FilterColumn::Outcome => Some(self.outcome),
            FilterColumn::Service => self.service,
            FilterColumn::ActorType => self.actor_type,
            FilterColumn::Operation => self.operation,
        }
    }
}

/// Sets of values up to this size are compared one by one rather than hashed.
const SMALL_SET: usize = 4;

/// A [`ColumnTest`] ready to run.
#[derive(Debug, Clone)]
enum Check {
    Few(Vec<Box<str>>),
    OneOf(foldhash::HashSet<Box<str>>),
    Matches(regex::Regex),
}

impl Check {
    fn passes(&self, value: &str) -> bool {
        match self {
            Self::Few(values) => values.iter().any(|v| **v == *value),
            Self::OneOf(values) => values.contains(value),
            Self::Matches(regex) => regex.is_match(value),
        }
    }

    /// The values it allows, if it is a set.
    fn values(&self) -> Option<Vec<&str>> {
        match self {
            Self::Few(values) => Some(values.iter().map(|v| &**v).collect()),
            Self::OneOf(values) => Some(values.iter().map(|v| &**v).collect()),
            Self::Matches(_) => None,
        }
    }
}

/// One way a rule may return a row: every listed column passes its test.
#[derive(Debug, Clone)]
struct Alternative {
    /// Cheapest first: equalities before regular expressions.
    checks: Vec<(FilterColumn, Check)>,
}

impl Alternative {
    fn passes(&self, keys: &RowKeys<'_>) -> bool {
        self.checks
            .iter()
            .all(|(column, check)| keys.get(*column).is_some_and(|v| check.passes(v)))
    }
}

/// The tests of one way a rule may return a row: column name and test.
pub type AlternativeTests = Vec<(String, ColumnTest)>;

/// Keeps an event when one of its alternatives (each rule contributes one or more)
/// passes on it; a null never passes, as in SQL, where `operation IN (…)` is not true
/// for a null `operation`.
#[derive(Debug, Clone)]
pub struct RowFilter {
    /// The tests the filter makes, for equality and display.
    source: Vec<AlternativeTests>,
    alternatives: Vec<Alternative>,
    /// The alternatives that require one of a few operations, by operation: one
    /// lookup turns most events away.
    by_operation: foldhash::HashMap<Box<str>, Vec<usize>>,
    /// The other alternatives, tried on every event.
    others: Vec<usize>,
}

impl PartialEq for RowFilter {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for RowFilter {}

impl RowFilter {
    /// The filter that keeps an event when one of `alternatives` passes. Tests on
    /// columns the normalizer cannot test, and patterns it cannot compile, are left
    /// out, which only keeps more. `None` when some alternative is left with no test
    /// (a rule that may return any event) or there is none: then every event needs
    /// its row.
    pub fn new(alternatives: Vec<AlternativeTests>) -> Option<Self> {
        let mut kept = Vec::new();
        let mut source = Vec::new();
        for tests in alternatives {
            let mut checks = Vec::new();
            let mut made = Vec::new();
            for (column, test) in tests {
                if let (Some(c), Some(check)) = (FilterColumn::from_name(&column), check(&test)) {
                    checks.push((c, check));
                    made.push((column, test));
                }
            }
            if checks.is_empty() {
                return None;
            }
            source.push(made);
            // Cheapest and most selective first: the provider and outcome, then the
            // other sets, then the patterns.
            checks.sort_by_key(|(column, check)| (matches!(check, Check::Matches(_)), *column));
            kept.push(Alternative { checks });
        }
        if kept.is_empty() {
            return None;
        }
        let mut by_operation: foldhash::HashMap<Box<str>, Vec<usize>> =
            foldhash::HashMap::default();
        let mut others = Vec::new();
        for (index, alternative) in kept.iter().enumerate() {
            let operations = alternative
                .checks
                .iter()
                .filter(|(column, _)| *column == FilterColumn::Operation)
                .find_map(|(_, check)| check.values());
            match operations {
                Some(values) => {
                    for value in values {
                        by_operation.entry(value.into()).or_default().push(index);
                    }
                }
                None => others.push(index),
            }
        }
        Some(Self {
            source,
            alternatives: kept,
            by_operation,
            others,
        })
    }

    pub(crate) fn keeps(&self, keys: &RowKeys<'_>) -> bool {
        let listed = keys
            .operation
            .and_then(|operation| self.by_operation.get(operation))
            .is_some_and(|indexes| indexes.iter().any(|i| self.alternatives[*i].passes(keys)));
        listed
            || self
                .others
                .iter()
                .any(|i| self.alternatives[*i].passes(keys))
    }
}

impl fmt::Display for RowFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, tests) in self.source.iter().enumerate() {
            if n > 0 {
                f.write_str(" or ")?;
            }
            f.write_str("(")?;
            for (m, (column, test)) in tests.iter().enumerate() {
                if m > 0 {
                    f.write_str(" and ")?;
                }
                match test {
                    ColumnTest::OneOf(values) => {
                        let values: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
                        write!(f, "{column} in ({})", values.join(", "))?;
                    }
                    ColumnTest::Matches {
                        pattern,
                        flags: Some(flags),
                    } => write!(f, "{column} ~ '(?{flags}){pattern}'")?,
                    ColumnTest::Matches {
                        pattern,
                        flags: None,
                    } => write!(f, "{column} ~ '{pattern}'")?,
                }
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

fn check(test: &ColumnTest) -> Option<Check> {
    match test {
        ColumnTest::OneOf(values) if values.len() <= SMALL_SET => Some(Check::Few(
            values.iter().map(|v| v.clone().into_boxed_str()).collect(),
        )),
        ColumnTest::OneOf(values) => Some(Check::OneOf(
            values.iter().map(|v| v.clone().into_boxed_str()).collect(),
        )),
        ColumnTest::Matches { pattern, flags } => {
            let pattern = match flags {
                Some(flags) => format!("(?{flags}){pattern}"),
                None => pattern.clone(),
            };
            regex::Regex::new(&pattern).ok().map(Check::Matches)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of(column: &str, values: &[&str]) -> (String, ColumnTest) {
        let values = values.iter().map(|v| (*v).to_owned()).collect();
        (column.to_owned(), ColumnTest::OneOf(values))
    }

    fn matches(column: &str, pattern: &str, flags: Option<&str>) -> (String, ColumnTest) {
        let test = ColumnTest::Matches {
            pattern: pattern.to_owned(),
            flags: flags.map(str::to_owned),
        };
        (column.to_owned(), test)
    }

    fn keys<'a>(provider: &'static str, operation: Option<&'a str>) -> RowKeys<'a> {
        RowKeys {
            provider,
            outcome: "success",
            service: Some("iam.amazonaws.com"),
            actor_type: Some("IAMUser"),
            operation,
        }
    }

    #[test]
    fn an_event_is_kept_when_one_alternative_passes() {
        let filter = RowFilter::new(vec![
            vec![
                one_of("provider", &["aws"]),
                one_of("operation", &["DeactivateMFADevice"]),
            ],
            vec![
                one_of("provider", &["gcp"]),
                matches("operation", r"(^|\.)setiampolicy$", Some("i")),
                // Not testable here: left out, so the rule keeps more, never less.
                one_of("region", &["nowhere"]),
            ],
            vec![
                one_of("provider", &["aws"]),
                one_of("actor_type", &["Root"]),
            ],
        ])
        .expect("every alternative tests something");
        assert!(filter.keeps(&keys("aws", Some("DeactivateMFADevice"))));
        assert!(filter.keeps(&keys("gcp", Some("google.iam.v1.IAMPolicy.SetIamPolicy"))));
        assert!(filter.keeps(&keys("gcp", Some("SetIamPolicy"))));
        assert!(!filter.keeps(&keys("gcp", Some("NotSetIamPolicy"))));
        assert!(!filter.keeps(&keys("gcp", Some("DeactivateMFADevice"))));
        assert!(!filter.keeps(&keys("aws", Some("ListUsers"))));
        let root = RowKeys {
            actor_type: Some("Root"),
            ..keys("aws", Some("ListUsers"))
        };
        assert!(filter.keeps(&root));
        // A null passes no test.
        assert!(!filter.keeps(&keys("aws", None)));
        let no_actor = RowKeys {
            actor_type: None,
            ..keys("aws", Some("ListUsers"))
        };
        assert!(!filter.keeps(&no_actor));
    }

    #[test]
    fn an_alternative_that_tests_nothing_testable_keeps_every_event() {
        assert_eq!(RowFilter::new(Vec::new()), None);
        let untestable = RowFilter::new(vec![
            vec![one_of("provider", &["aws"])],
            vec![one_of("region", &["eu-west-1"])],
        ]);
        assert_eq!(untestable, None);
        // A pattern the regex engine refuses cannot be tested either.
        let refused = RowFilter::new(vec![vec![matches("operation", "(?=x)", None)]]);
        assert_eq!(refused, None);
    }
}
