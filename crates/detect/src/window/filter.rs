//! Which events a windowed rule holds: the rows that pass the tests of one of its
//! `window_events` scans.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, new_null_array};
use arrow::compute::kernels::boolean::{and, or};
use arrow::compute::{filter, prep_null_mask_filter};
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::collect_columns;
use demarc_model::event_schema;

use crate::{Error, Result};

/// The tests of a windowed rule's `window_events` scans, ready to run: a row passes
/// when it passes every test of some scan.
pub(super) struct WindowTests {
    scans: Vec<ScanTests>,
    /// The event schema with every column nullable: the rows a scan's costly tests
    /// read carry only the columns they name.
    nullable: SchemaRef,
}

/// The tests of one scan: column comparisons, run on every row of a batch, and those
/// that call functions (a JSON path, a policy test), run only on the rows that passed
/// the others.
struct ScanTests {
    cheap: Vec<Arc<dyn PhysicalExpr>>,
    costly: Vec<Arc<dyn PhysicalExpr>>,
    /// The columns the costly tests read.
    costly_columns: Vec<bool>,
}

impl WindowTests {
    /// The tests of each scan (as `scan_tests` finds them: on unqualified columns),
    /// planned in `state`.
    pub(super) fn new(state: &SessionState, scans: Vec<Vec<Expr>>) -> Result<Self> {
        let events = event_schema();
        let schema = DFSchema::try_from(events.as_ref().clone()).map_err(Error::Engine)?;
        let mut all = Vec::with_capacity(scans.len());
        for tests in scans {
            let mut scan = ScanTests {
                cheap: Vec::new(),
                costly: Vec::new(),
                costly_columns: vec![false; events.fields().len()],
            };
            for test in tests {
                let costly = calls_functions(&test);
                let physical = state
                    .create_physical_expr(test, &schema)
                    .map_err(Error::Engine)?;
                if costly {
                    for column in collect_columns(&physical) {
                        scan.costly_columns[column.index()] = true;
                    }
                    scan.costly.push(physical);
                } else {
                    scan.cheap.push(physical);
                }
            }
            all.push(scan);
        }
        let nullable = Schema::new(
            events
                .fields()
                .iter()
                .map(|f| Field::clone(f).with_nullable(true))
                .collect::<Vec<_>>(),
        );
        Ok(Self {
            scans: all,
            nullable: Arc::new(nullable),
        })
    }

    /// Which rows of `batch` pass (a null is a fail).
    pub(super) fn passing(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let rows = batch.num_rows();
        let mut any = BooleanArray::from(vec![false; rows]);
        for scan in &self.scans {
            let mut passed = BooleanArray::from(vec![true; rows]);
            for test in &scan.cheap {
                passed = and(&passed, &truth(test.as_ref(), batch)?).map_err(arrow)?;
            }
            if !scan.costly.is_empty() && passed.has_true() {
                passed = self.costly(scan, batch, &passed)?;
            }
            any = or(&any, &passed).map_err(arrow)?;
        }
        Ok(any)
    }

    /// `passed` narrowed by the scan's costly tests, run on the rows it keeps, with
    /// only the columns those tests read.
    fn costly(
        &self,
        scan: &ScanTests,
        batch: &RecordBatch,
        passed: &BooleanArray,
    ) -> Result<BooleanArray> {
        let kept = passed.true_count();
        let columns = batch
            .columns()
            .iter()
            .zip(&scan.costly_columns)
            .map(|(column, read)| match read {
                true => filter(column, passed).map_err(arrow),
                false => Ok(new_null_array(column.data_type(), kept)),
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let rows = RecordBatch::try_new(Arc::clone(&self.nullable), columns).map_err(arrow)?;
        let mut these = BooleanArray::from(vec![true; kept]);
        for test in &scan.costly {
            if !these.has_true() {
                break;
            }
            let value = test
                .evaluate_selection(&rows, &these)
                .and_then(|v| v.into_array(kept))
                .map_err(Error::Engine)?;
            these = and(&these, &not_null(&value)?).map_err(arrow)?;
        }
        // Back to the batch's rows: the n-th row `passed` keeps is the n-th of `these`.
        let mut verdicts = these.values().iter();
        Ok(passed
            .values()
            .iter()
            .map(|p| Some(p && verdicts.next().unwrap_or(false)))
            .collect())
    }
}

/// A test's verdict on every row of `batch`, a null a fail.
fn truth(test: &dyn PhysicalExpr, batch: &RecordBatch) -> Result<BooleanArray> {
    let value = test
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(Error::Engine)?;
    not_null(&value)
}

fn not_null(value: &ArrayRef) -> Result<BooleanArray> {
    let value = value
        .as_boolean_opt()
        .ok_or_else(|| Error::Schema("a window test is not boolean".into()))?;
    // `prep_null_mask_filter` wants some null.
    Ok(match value.null_count() {
        0 => value.clone(),
        _ => prep_null_mask_filter(value),
    })
}

fn arrow(e: arrow::error::ArrowError) -> Error {
    Error::Schema(e.to_string())
}

/// Whether `expr` calls a function or has a `CASE`: a test dearer than comparing a
/// column.
fn calls_functions(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::ScalarFunction(_) | Expr::Case(_))))
        .unwrap_or(true)
}
