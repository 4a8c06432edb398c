//! What a rule's rows must hold, read from its plan, so that a batch where no event
//! could match is not planned or run at all.
//!
//! A rule written `WHERE provider = 'aws' AND service = 'iam.amazonaws.com' AND
//! operation IN ('DeactivateMFADevice', …)` can only return rows whose `operation` is
//! one of those names. A micro-batch of a few hundred events rarely holds any of them,
//! and skipping the rule there saves its planning and execution, which cost the same
//! for 100 rows as for 10,000. The test is a necessary condition only: a batch that
//! passes it runs the rule as written.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Distinct, Expr, JoinType, LogicalPlan, Operator};

use demarc_normalize::{AlternativeTests, ColumnTest};

use crate::allow::ALLOW_SCHEMA;
use crate::engine::EVENTS_TABLE;

/// For some string columns of `events`, the only values a row the rule returns can
/// have. Empty: the rule runs on every batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefilter {
    /// Column name and its allowed values; every column listed must allow a value the
    /// batch holds.
    columns: Vec<(String, BTreeSet<String>)>,
}

impl Prefilter {
    /// Reads the tests on `events` columns that every returned row passed. Only plans
    /// whose rows come straight from one scan of `events` (through filters,
    /// projections, sorts, limits and `DISTINCT`) get a prefilter; an aggregate, a
    /// join or a union returns rows no such test covers.
    pub fn from_plan(plan: &LogicalPlan) -> Self {
        let Some(conjuncts) = scan_conjuncts(plan) else {
            return Self::default();
        };
        let mut columns: Vec<(String, BTreeSet<String>)> = Vec::new();
        for conjunct in conjuncts {
            let Some((column, values)) = allowed(conjunct) else {
                continue;
            };
            match columns.iter_mut().find(|(c, _)| *c == column) {
                Some((_, existing)) => *existing = &*existing & &values,
                None => columns.push((column, values)),
            }
        }
        columns.sort();
        Self { columns }
    }

    /// Whether no test was found: the rule runs on every batch.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Whether some event of `batch` may pass the rule: every tested column holds an
    /// allowed value somewhere in the batch.
    pub fn may_match<'b>(&self, batch: &'b RecordBatch, seen: &mut BatchValues<'b>) -> bool {
        self.columns
            .iter()
            .all(|(column, allowed)| match seen.values(batch, column) {
                Some(values) => allowed.iter().any(|v| values.contains(v.as_str())),
                // Not a string column of this batch: cannot tell, so run the rule.
                None => true,
            })
    }
}

impl fmt::Display for Prefilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (column, values)) in self.columns.iter().enumerate() {
            if n > 0 {
                f.write_str(" and ")?;
            }
            let values: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
            write!(f, "{column} in ({})", values.join(", "))?;
        }
        Ok(())
    }
}

/// The tests on `events` columns that every row `plan` returns passed, as a
/// conjunction; `None` when its rows do not come straight from one scan of `events`
/// (through filters, projections, sorts, limits and `DISTINCT`): an aggregate, a join
/// or a union returns rows no such test covers.
fn scan_conjuncts(plan: &LogicalPlan) -> Option<Vec<&Expr>> {
    let mut conjuncts: Vec<&Expr> = Vec::new();
    let mut node = plan;
    loop {
        match node {
            // Filters above a projection test its outputs, not the scan's columns.
            LogicalPlan::Projection(p) => {
                conjuncts.clear();
                node = &p.input;
            }
            LogicalPlan::SubqueryAlias(a) => {
                conjuncts.clear();
                node = &a.input;
            }
            LogicalPlan::Filter(f) => {
                conjuncts.extend(split_conjunction(&f.predicate));
                node = &f.input;
            }
            LogicalPlan::Sort(s) => node = &s.input,
            LogicalPlan::Limit(l) => node = &l.input,
            LogicalPlan::Distinct(Distinct::All(input)) => node = input,
            // A lookup in allow tables (`NOT EXISTS (SELECT … FROM allow.x …)`, a scalar
            // subquery over one) keeps, drops or widens rows of `events`, never makes
            // new ones: tests above it and below it are still tests on the scan's rows.
            LogicalPlan::Join(join)
                if matches!(
                    join.join_type,
                    JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti
                ) && reads_only_allow_tables(&join.right) =>
            {
                node = &join.left;
            }
            LogicalPlan::TableScan(scan) if scan.table_name.table() == EVENTS_TABLE => {
                for filter in &scan.filters {
                    conjuncts.extend(split_conjunction(filter));
                }
                return Some(conjuncts);
            }
            _ => return None,
        }
    }
}

/// Past this many alternatives, an `AND` of `OR`s keeps only one side's.
const MAX_ALTERNATIVES: usize = 64;

/// Whether every table `plan` reads is an allow table, and it reads at least one.
fn reads_only_allow_tables(plan: &LogicalPlan) -> bool {
    let scans = crate::engine::table_scans(plan);
    !scans.is_empty()
        && scans
            .iter()
            .all(|scan| scan.table_name.schema() == Some(ALLOW_SCHEMA))
}

/// The ways a row `plan` returns may pass its tests, for the normalizer's
/// [`demarc_normalize::RowFilter`]: each alternative a conjunction of column tests,
/// read from `=`, `IN`, `LIKE`, `regexp_like` and the `AND`s and `OR`s over them.
/// Every returned row passes one alternative. `None` when no such test covers every
/// row.
pub(crate) fn row_alternatives(plan: &LogicalPlan) -> Option<Vec<AlternativeTests>> {
    scan_conjuncts(plan)?
        .into_iter()
        .map(alternatives)
        .fold(None, and)
}

/// The ways a row a windowed rule reads may pass its tests: the alternatives of each
/// of its `window_events` scans (a self-join reads it more than once), together.
/// `None` when some scan tests nothing.
pub(crate) fn window_alternatives(plan: &LogicalPlan) -> Option<Vec<AlternativeTests>> {
    let mut all = Vec::new();
    for tests in crate::window::scan_tests(plan)? {
        all.extend(tests.iter().map(alternatives).fold(None, and)?);
    }
    (!all.is_empty()).then_some(all)
}

/// `a AND b`, each `None` when it says nothing.
fn and(
    a: Option<Vec<AlternativeTests>>,
    b: Option<Vec<AlternativeTests>>,
) -> Option<Vec<AlternativeTests>> {
    match (a, b) {
        (Some(a), Some(b)) if a.len() * b.len() <= MAX_ALTERNATIVES => Some(
            a.iter()
                .flat_map(|x| {
                    b.iter().map(move |y| {
                        let mut both = x.clone();
                        both.extend(y.iter().cloned());
                        both
                    })
                })
                .collect(),
        ),
        // Either side alone is still a necessary condition: keep the narrower.
        (Some(a), Some(b)) => Some(if a.len() <= b.len() { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn alternatives(expr: &Expr) -> Option<Vec<AlternativeTests>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => and(alternatives(left), alternatives(right)),
            Operator::Or => {
                // Equalities on one column: one test, not one alternative each.
                if let Some((c, values)) = allowed(expr) {
                    return Some(vec![vec![(c, ColumnTest::OneOf(values))]]);
                }
                let mut all = alternatives(left)?;
                all.extend(alternatives(right)?);
                (all.len() <= MAX_ALTERNATIVES).then_some(all)
            }
            Operator::RegexMatch | Operator::RegexIMatch => {
                let (Expr::Column(c), pattern) = (left.as_ref(), right.as_ref()) else {
                    return None;
                };
                let flags = (*op == Operator::RegexIMatch).then(|| "i".to_owned());
                let test = ColumnTest::Matches {
                    pattern: text(pattern)?,
                    flags,
                };
                Some(vec![vec![(scan_column(c)?, test)]])
            }
            _ => allowed(expr).map(|(c, values)| vec![vec![(c, ColumnTest::OneOf(values))]]),
        },
        Expr::ScalarFunction(f) if f.name() == "regexp_like" => {
            let (Some(Expr::Column(c)), Some(pattern)) = (f.args.first(), f.args.get(1)) else {
                return None;
            };
            let flags = match f.args.get(2) {
                Some(flags) => Some(text(flags)?),
                None => None,
            };
            let test = ColumnTest::Matches {
                pattern: text(pattern)?,
                flags,
            };
            Some(vec![vec![(scan_column(c)?, test)]])
        }
        Expr::Like(like) if !like.negated && like.escape_char.is_none() => {
            let Expr::Column(c) = like.expr.as_ref() else {
                return None;
            };
            let test = ColumnTest::Matches {
                pattern: like_regex(&text(&like.pattern)?)?,
                flags: like.case_insensitive.then(|| "i".to_owned()),
            };
            Some(vec![vec![(scan_column(c)?, test)]])
        }
        _ => allowed(expr).map(|(c, values)| vec![vec![(c, ColumnTest::OneOf(values))]]),
    }
}

/// A `LIKE` pattern as a regular expression: `%` any run of characters, `_` one
/// character, everything else literal. `None` for a pattern with a backslash, whose
/// escaping rules are left to the query engine.
fn like_regex(pattern: &str) -> Option<String> {
    if pattern.contains('\\') {
        return None;
    }
    let mut regex = String::from("^");
    for c in pattern.chars() {
        match c {
            '%' => regex.push_str("(?s:.*)"),
            '_' => regex.push_str("(?s:.)"),
            c => regex.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    regex.push('$');
    Some(regex)
}

/// The distinct values of a batch's string columns, computed once per batch and
/// column, for all the rules that test it.
#[derive(Debug, Default)]
pub struct BatchValues<'b> {
    columns: HashMap<String, Option<HashSet<&'b str>>>,
}

impl<'b> BatchValues<'b> {
    fn values(&mut self, batch: &'b RecordBatch, column: &str) -> Option<&HashSet<&'b str>> {
        self.columns
            .entry(column.to_owned())
            .or_insert_with(|| {
                let array = batch.column_by_name(column)?;
                (array.data_type() == &DataType::Utf8)
                    .then(|| array.as_string::<i32>().iter().flatten().collect())
            })
            .as_ref()
    }
}

/// `column = 'v'`, `'v' = column`, `column IN ('v', …)`, or an `OR` of such tests on
/// one column: that column and the values it allows.
fn allowed(expr: &Expr) -> Option<(String, BTreeSet<String>)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::Eq => match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), value) | (value, Expr::Column(c)) => {
                    scan_column(c).zip(text(value).map(|v| BTreeSet::from([v])))
                }
                _ => None,
            },
            Operator::Or => {
                let (a, mut values) = allowed(left)?;
                let (b, more) = allowed(right)?;
                (a == b).then(|| {
                    values.extend(more);
                    (a, values)
                })
            }
            _ => None,
        },
        Expr::InList(list) if !list.negated => {
            let Expr::Column(c) = list.expr.as_ref() else {
                return None;
            };
            let values = list
                .list
                .iter()
                .map(text)
                .collect::<Option<BTreeSet<_>>>()?;
            Some((scan_column(c)?, values))
        }
        _ => None,
    }
}

/// The column's name, if it is a column of the `events` scan.
fn scan_column(column: &datafusion::common::Column) -> Option<String> {
    match &column.relation {
        Some(relation) if relation.table() != EVENTS_TABLE => None,
        _ => Some(column.name.clone()),
    }
}

/// A string literal's value.
fn text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(v))
            | ScalarValue::Utf8View(Some(v))
            | ScalarValue::LargeUtf8(Some(v)),
            _,
        ) => Some(v.clone()),
        _ => None,
    }
}
