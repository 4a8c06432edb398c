//! Rules over time: a rule whose header has `window` (and optionally `lateness`) reads
//! `window_events`, the events it may use from the span before the newest one, plus
//! the batch at hand. [`Windows`] keeps, per such rule, only the events its own
//! `window_events` tests pass, and only as long as the span and the lateness behind
//! the newest event of their stream (a Kafka partition, or the files of a backfill)
//! need them; it runs the rule once per batch that brings it new events, and keeps
//! only the rows that involve one of them, so that a sequence found once is reported
//! once. An event arriving more than `lateness` behind the newest one of its stream is
//! still used, and counted as late.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::TimestampMicrosecondType;
use datafusion::common::Column;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan};
use demarc_model::{Alert, event_schema};

use crate::engine::{Detected, RuleFailure};
use crate::{Error, Result, RuleSet};
use filter::WindowTests;
use streams::Streams;

mod filter;
mod streams;

/// The table windowed rules read.
pub const WINDOW_TABLE: &str = "window_events";

/// What one batch did to the windows.
#[derive(Debug, Default)]
pub struct WindowOutput {
    pub detected: Detected,
    /// Events that arrived more than their rule's lateness behind its newest event,
    /// per rule id (still used).
    pub late: Vec<(String, u64)>,
    /// Events held, per rule id, after the batch.
    pub held: Vec<(String, usize)>,
}

/// The windows of every windowed rule of a rule set.
pub struct Windows {
    rules: Arc<RuleSet>,
    states: Vec<State>,
}

/// Event ids, hashed with foldhash: seeded at random per process like SipHash, at a
/// fraction of its cost.
type IdSet = HashSet<String, foldhash::fast::RandomState>;

struct State {
    index: usize,
    /// Rows the rule's `window_events` tests pass (`None`: every row).
    filter: Option<WindowTests>,
    /// The held events, in one batch.
    rows: Option<RecordBatch>,
    /// The time (in microseconds) and stream of each held event, in row order.
    held: Vec<(i64, u32)>,
    ids: IdSet,
    streams: Streams,
    /// Alert ids given, with the time and stream of their newest event, so that a
    /// sequence found again while its events are held is not reported twice.
    given: HashMap<String, (i64, u32)>,
}

impl std::fmt::Debug for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windows")
            .field("rules", &self.states.len())
            .finish()
    }
}

impl Windows {
    /// Windows for the windowed rules of `rules` (none when it has none).
    pub fn new(rules: Arc<RuleSet>) -> Result<Self> {
        let mut states = Vec::new();
        for (index, rule) in rules.rules().iter().enumerate() {
            if rule.window.is_none() {
                continue;
            }
            states.push(State::new(&rules, index)?);
        }
        Ok(Self { rules, states })
    }

    /// Fills the windows with events seen before (read back from the lake after a
    /// restart, or from Kafka when partitions are assigned) without reporting anything:
    /// what they completed was reported then. Gives how many events the windows took.
    pub async fn warm(&mut self, history: &[RecordBatch]) -> Result<usize> {
        let mut out = WindowOutput::default();
        for batch in history {
            let batch = conform(batch)?;
            for state in &mut self.states {
                state.advance(&self.rules, &batch, "", &mut out).await?;
                // Reported before the restart.
                out.detected.alerts.clear();
            }
        }
        Ok(self
            .states
            .iter()
            .map(|s| s.rows.as_ref().map_or(0, RecordBatch::num_rows))
            .sum())
    }

    /// Adds a batch of events (in any order; events already held are ignored) and runs
    /// each windowed rule that got new events. A rule that fails is reported in the
    /// output's failures; its window still moves on.
    pub async fn advance(
        &mut self,
        batch: &RecordBatch,
        detected_at: &str,
    ) -> Result<WindowOutput> {
        let mut out = WindowOutput::default();
        for state in &mut self.states {
            state
                .advance(&self.rules, batch, detected_at, &mut out)
                .await?;
        }
        Ok(out)
    }
}

/// The alerts windowed rule `id` raises over `batches` given in turn, from an empty
/// window (fixtures, tests).
pub async fn run_windowed(
    rules: &RuleSet,
    id: &str,
    batches: &[RecordBatch],
) -> Result<Vec<Alert>> {
    let index = rules
        .rules()
        .iter()
        .position(|r| r.meta.id == id && r.window.is_some())
        .ok_or_else(|| Error::Schema(format!("no windowed rule has the id `{id}`")))?;
    let mut state = State::new(rules, index)?;
    let mut out = WindowOutput::default();
    for batch in batches {
        state
            .advance(rules, batch, "1970-01-01T00:00:00.000Z", &mut out)
            .await?;
    }
    if let Some(failure) = out.detected.failures.into_iter().next() {
        return Err(failure.error);
    }
    Ok(out.detected.alerts)
}

impl State {
    fn new(rules: &RuleSet, index: usize) -> Result<Self> {
        Ok(Self {
            index,
            filter: rules.window_filter(index)?,
            rows: None,
            held: Vec::new(),
            ids: IdSet::default(),
            streams: Streams::default(),
            given: HashMap::new(),
        })
    }

    async fn advance(
        &mut self,
        rules: &RuleSet,
        batch: &RecordBatch,
        detected_at: &str,
        out: &mut WindowOutput,
    ) -> Result<()> {
        let rule = &rules.rules()[self.index];
        let window = rule.window.expect("windowed rules only");
        // A test that fails on these events (a cast, say) is the rule's failure on
        // the batch, not the run's: the rule keeps none of them.
        let new = self.take_new(batch).unwrap_or_else(|error| {
            out.detected.failures.push(RuleFailure {
                rule: rule.meta.id.clone(),
                error,
            });
            None
        });
        if let Some((new, fresh)) = new {
            let arrived: Vec<(i64, u32)> = times(&new)?
                .into_iter()
                .zip(self.streams.of(&new)?)
                .collect();
            let late = self.streams.late(&arrived, window.lateness_us);
            if late > 0 {
                out.late.push((rule.meta.id.clone(), late));
            }
            self.streams.advance(&arrived);
            let all = match &self.rows {
                Some(held) => concat_batches(&held.schema(), [held, &new])
                    .map_err(|e| Error::Schema(e.to_string()))?,
                None => new,
            };
            self.ids.extend(fresh.iter().cloned());
            self.held.extend(arrived);
            self.rows = Some(all.clone());
            let alerts = match rules.run(self.index, all.clone()).await {
                Ok(m) => crate::alert::EventIndex::new(&all)
                    .and_then(|index| crate::alert::alerts(m.rule, &m.rows, &index, detected_at)),
                Err(error) => Err(error),
            };
            match alerts {
                Ok(alerts) => {
                    for alert in alerts {
                        if alert.event_ids.iter().any(|id| fresh.contains(id))
                            && !self.given.contains_key(&alert.alert_id)
                        {
                            let newest = newest_of(&alert, &all, &self.held)?;
                            self.given.insert(alert.alert_id.clone(), newest);
                            out.detected.alerts.push(alert);
                        }
                    }
                }
                Err(error) => out.detected.failures.push(RuleFailure {
                    rule: rule.meta.id.clone(),
                    error,
                }),
            }
        }
        self.forget_before(window.span_us + window.lateness_us)?;
        out.held.push((
            rule.meta.id.clone(),
            self.rows.as_ref().map_or(0, RecordBatch::num_rows),
        ));
        Ok(())
    }

    /// The rows of `batch` this rule may read and does not hold yet, and their ids;
    /// filtered in one pass, so that only those rows are copied.
    fn take_new(&mut self, batch: &RecordBatch) -> Result<Option<(RecordBatch, IdSet)>> {
        let passing = match &self.filter {
            Some(filter) => Some(filter.passing(batch)?),
            None => None,
        };
        let ids = event_ids(batch)?;
        let mut fresh = IdSet::default();
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|row| {
                let mine = passing
                    .as_ref()
                    .is_none_or(|p| p.is_valid(row) && p.value(row));
                let id = ids.value(row);
                Some(mine && !self.ids.contains(id) && fresh.insert(id.to_owned()))
            })
            .collect();
        if fresh.is_empty() {
            return Ok(None);
        }
        let new = filter_record_batch(batch, &keep).map_err(|e| Error::Schema(e.to_string()))?;
        Ok(Some((new, fresh)))
    }

    /// Drops the events their stream has moved more than `keep_us` past (see
    /// [`Streams::keeps`]), and what was said of them.
    fn forget_before(&mut self, keep_us: i64) -> Result<()> {
        let Some(rows) = &self.rows else {
            return Ok(());
        };
        let streams = &self.streams;
        let keeps = |&(t, s): &(i64, u32)| streams.keeps(t, s, keep_us);
        if self.held.iter().all(keeps) {
            return Ok(());
        }
        let keep: BooleanArray = self.held.iter().map(|row| Some(keeps(row))).collect();
        let held_ids = event_ids(rows)?;
        for (row, kept) in keep.values().iter().enumerate() {
            if !kept {
                self.ids.remove(held_ids.value(row));
            }
        }
        let kept = filter_record_batch(rows, &keep).map_err(|e| Error::Schema(e.to_string()))?;
        self.rows = Some(kept);
        let mut flags = keep.values().iter();
        self.held.retain(|_| flags.next().unwrap_or(true));
        self.given.retain(|_, newest| keeps(newest));
        Ok(())
    }
}

fn times(batch: &RecordBatch) -> Result<Vec<i64>> {
    let column = batch
        .column_by_name("time")
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .ok_or_else(|| Error::Schema("the events have no `time` column".into()))?;
    Ok(column.values().to_vec())
}

fn event_ids(batch: &RecordBatch) -> Result<&arrow::array::StringArray> {
    batch
        .column_by_name("event_id")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| Error::Schema("the events have no `event_id` column".into()))
}

/// The time and stream of the newest of an alert's events among `rows` (whose times
/// and streams are `held`).
fn newest_of(alert: &Alert, rows: &RecordBatch, held: &[(i64, u32)]) -> Result<(i64, u32)> {
    let ids = event_ids(rows)?;
    Ok(held
        .iter()
        .enumerate()
        .filter(|(row, _)| alert.event_ids.iter().any(|id| id == ids.value(*row)))
        .map(|(_, newest)| *newest)
        .max()
        .unwrap_or((i64::MIN, 0)))
}

/// `batch` with the columns of the event schema, by name: each cast to its type, a
/// missing one null (a lake drops `raw` and encodes some columns as dictionaries).
pub fn conform(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = event_schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = match batch.column_by_name(field.name()) {
            Some(c) if c.data_type() == field.data_type() => Arc::clone(c),
            Some(c) => arrow::compute::cast(c, field.data_type())
                .map_err(|e| Error::Schema(format!("column `{}`: {e}", field.name())))?,
            None if field.is_nullable() => {
                arrow::array::new_null_array(field.data_type(), batch.num_rows())
            }
            None => {
                return Err(Error::Schema(format!(
                    "the events have no `{}` column",
                    field.name()
                )));
            }
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Schema(e.to_string()))
}

impl RuleSet {
    /// Whether some rule is windowed.
    pub fn has_windows(&self) -> bool {
        self.rules().iter().any(|r| r.window.is_some())
    }

    /// How far back the windowed rules look, lateness included, in microseconds
    /// (`None`: no windowed rule).
    pub fn window_reach_us(&self) -> Option<i64> {
        self.rules()
            .iter()
            .filter_map(|r| r.window)
            .map(|w| w.span_us.saturating_add(w.lateness_us))
            .max()
    }

    /// The tests a row must pass for windowed rule `index` to read it: those of each of
    /// its `window_events` scans, any of them (`None`: every row).
    fn window_filter(&self, index: usize) -> Result<Option<WindowTests>> {
        let Some(scans) = scan_tests(self.plan(index)) else {
            return Ok(None);
        };
        WindowTests::new(self.state(), scans).map(Some)
    }
}

/// The tests on the rows of each `window_events` scan of `plan`: the scan's own and
/// those of the filters right above it (through projections and aliases), on
/// unqualified columns. `None` when some scan has none, or is read where these are not
/// followed (a subquery).
pub(crate) fn scan_tests(plan: &LogicalPlan) -> Option<Vec<Vec<Expr>>> {
    let mut scans = 0;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && scan.table_name.table() == WINDOW_TABLE
        {
            scans += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut found = Vec::new();
    collect(plan, &mut found);
    (found.len() == scans && found.iter().all(|t| !t.is_empty())).then_some(found)
}

fn collect(node: &LogicalPlan, found: &mut Vec<Vec<Expr>>) {
    if let Some(tests) = chain(node) {
        found.push(tests);
        return;
    }
    for input in node.inputs() {
        collect(input, found);
    }
}

/// The tests of a chain of filters, projections and aliases down to a window scan.
fn chain(node: &LogicalPlan) -> Option<Vec<Expr>> {
    match node {
        LogicalPlan::TableScan(scan) if scan.table_name.table() == WINDOW_TABLE => Some(
            scan.filters
                .iter()
                .map(|f| unalias(node, f.clone()))
                .collect(),
        ),
        LogicalPlan::Filter(filter) => {
            let mut tests = chain(&filter.input)?;
            let predicate = unalias(&filter.input, filter.predicate.clone());
            tests.extend(split_conjunction(&predicate).into_iter().cloned());
            Some(tests)
        }
        LogicalPlan::Projection(p) => chain(&p.input),
        LogicalPlan::SubqueryAlias(a) => chain(&a.input),
        _ => None,
    }
}

/// `expr` with the names a projection below it computes replaced by what they
/// compute, and every column unqualified: a test on the scan's own columns.
fn unalias(input: &LogicalPlan, expr: Expr) -> Expr {
    let mut computed: HashMap<String, Expr> = HashMap::new();
    let mut node = input;
    loop {
        match node {
            LogicalPlan::Projection(p) => {
                for e in &p.expr {
                    if let Expr::Alias(alias) = e {
                        computed.insert(alias.name.clone(), (*alias.expr).clone());
                    }
                }
                node = &p.input;
            }
            LogicalPlan::SubqueryAlias(a) => node = &a.input,
            _ => break,
        }
    }
    expr.transform(|e| match e {
        Expr::Column(c) => Ok(Transformed::yes(
            computed
                .get(&c.name)
                .cloned()
                .unwrap_or_else(|| Expr::Column(Column::new_unqualified(c.name))),
        )),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
    .unwrap_or_else(|_| Expr::Literal(datafusion::common::ScalarValue::Boolean(Some(true)), None))
}
