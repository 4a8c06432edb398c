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
use datafusion::logical_expr::{BinaryExpr, Distinct, Expr, LogicalPlan, Operator};

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
                LogicalPlan::TableScan(scan) if scan.table_name.table() == EVENTS_TABLE => {
                    for filter in &scan.filters {
                        conjuncts.extend(split_conjunction(filter));
                    }
                    break;
                }
                _ => return Self::default(),
            }
        }
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
