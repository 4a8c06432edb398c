//! Rules planned against the event schema, and evaluated over batches of events.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::{FunctionRegistry, TaskContext};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{LogicalPlan, TableScan};
use datafusion::optimizer::Optimizer;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionConfig;
use datafusion::prelude::SessionContext;
use demarc_model::event_schema;

use crate::allow::{ALLOW_SCHEMA, AllowLists};
use crate::input::{InputTable, PlanCache, RunInput};
use crate::prefilter::{BatchValues, Prefilter};
use crate::rule::{RuleError, RuleFile, placeholders};
use crate::window::WINDOW_TABLE;
use crate::{Error, Result};
use demarc_normalize::RowFilter;

/// The table every rule reads.
pub const EVENTS_TABLE: &str = "events";

/// Column every rule must return, so that alerts name their events.
const EVENT_ID: &str = "event_id";

/// Rules that parsed and planned against the event schema.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<RuleFile>,
    /// Each rule's optimized plan, in the order of `rules`: SQL is parsed and
    /// optimized once per rule. Its `events` and `window_events` scans read the rows
    /// each run is given ([`InputTable`]).
    plans: Vec<LogicalPlan>,
    /// Each rule's physical plans, made at its first run (one per run at once) and
    /// again when an allow table changes.
    physical: Vec<PlanCache>,
    /// Each rule's column tests, to skip batches where it cannot match.
    prefilters: Vec<Prefilter>,
    use_prefilters: bool,
    state: SessionState,
    /// The allow tables the rules read, refreshed in place.
    allow: AllowLists,
}

/// The rows one rule matched in one batch.
#[derive(Debug)]
pub struct Matches<'r> {
    pub rule: &'r RuleFile,
    pub rows: Vec<RecordBatch>,
}

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

impl RuleSet {
    /// The rules compiled into this build from `queries/`.
    pub async fn builtin() -> Result<Self> {
        Self::load(None, builtin_allow()?).await
    }

    /// The rules of `dir`, or the built-in ones, reading `allow`'s tables.
    pub async fn load(dir: Option<&Path>, allow: AllowLists) -> Result<Self> {
        let sources = match dir {
            Some(dir) => read_dir(dir)?,
            None => BUILTIN_RULES
                .iter()
                .map(|(name, text)| (PathBuf::from(name), (*text).to_owned()))
                .collect(),
        };
        Self::from_sources_with(sources, allow).await
    }

    /// Reads every `*.sql` file of `dir` (sorted by name) and validates it.
    pub async fn from_dir(dir: &Path) -> Result<Self> {
        Self::load(Some(dir), builtin_allow()?).await
    }

    /// Parses and plans every rule, with the built-in (empty) allow tables.
    pub async fn from_sources(sources: Vec<(PathBuf, String)>) -> Result<Self> {
        Self::from_sources_with(sources, builtin_allow()?).await
    }

    /// Parses and plans every rule, reading `allow`'s tables; all problems are reported
    /// together, each with its file and line.
    pub async fn from_sources_with(
        sources: Vec<(PathBuf, String)>,
        allow: AllowLists,
    ) -> Result<Self> {
        if sources.is_empty() {
            return Err(Error::NoRules);
        }
        let ctx = session()?;
        allow.register(&ctx).map_err(Error::Engine)?;
        let mut rules = Vec::new();
        let mut plans = Vec::new();
        let mut problems = Vec::new();
        let mut ids = std::collections::BTreeMap::new();
        for (path, text) in sources {
            let rule = match RuleFile::parse(&path, &text) {
                Ok(rule) => rule,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            if let Some(first) = ids.insert(rule.meta.id.clone(), path.clone()) {
                problems.push(RuleError {
                    file: path.clone(),
                    line: rule.header_line(&text, "id"),
                    message: format!(
                        "rule id `{}` is already used by {}",
                        rule.meta.id,
                        first.display()
                    ),
                });
                continue;
            }
            match check_plan(&ctx, &rule, &text).await {
                Ok(plan) => {
                    rules.push(rule);
                    plans.push(plan);
                }
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Rules(problems));
        }
        let prefilters = plans.iter().map(Prefilter::from_plan).collect();
        Ok(Self {
            rules,
            physical: plans.iter().map(|_| PlanCache::default()).collect(),
            plans,
            prefilters,
            use_prefilters: true,
            state: ctx.state(),
            allow,
        })
    }

    /// The allow tables the rules read: [`AllowLists::refresh`] it to apply changed
    /// files to the next batch.
    pub fn allow(&self) -> &AllowLists {
        &self.allow
    }

    pub fn rules(&self) -> &[RuleFile] {
        &self.rules
    }

    pub(crate) fn plan(&self, index: usize) -> &LogicalPlan {
        &self.plans[index]
    }

    pub(crate) fn state(&self) -> &SessionState {
        &self.state
    }

    /// Whether some rule reads the `raw` column (the event's original JSON), which the
    /// normalizer then has to keep for detection.
    pub fn reads_raw(&self) -> bool {
        self.plans.iter().flat_map(table_scans).any(|scan| {
            scan.table_name.table() == EVENTS_TABLE
                && scan
                    .projected_schema
                    .fields()
                    .iter()
                    .any(|f| f.name() == demarc_model::column::RAW)
        })
    }

    /// For each rule (in the order of [`Self::rules`]), the allow tables it reads.
    pub fn allow_tables(&self) -> Vec<BTreeSet<String>> {
        self.plans
            .iter()
            .map(|plan| {
                table_scans(plan)
                    .into_iter()
                    .filter(|scan| scan.table_name.schema() == Some(ALLOW_SCHEMA))
                    .map(|scan| scan.table_name.table().to_owned())
                    .collect()
            })
            .collect()
    }

    /// Runs every rule over one batch of normalized events. A rule whose column tests
    /// no event of the batch passes (see [`Prefilter`]) matches nothing without being
    /// run.
    pub async fn evaluate(&self, batch: RecordBatch) -> Result<Vec<Matches<'_>>> {
        let runs = self.runnable(&batch);
        let mut all = Vec::with_capacity(self.rules.len());
        for (index, run) in runs.into_iter().enumerate() {
            if run && self.rules[index].window.is_none() {
                all.push(self.run(index, batch.clone()).await?);
            } else {
                all.push(Matches {
                    rule: &self.rules[index],
                    rows: Vec::new(),
                });
            }
        }
        Ok(all)
    }

    /// Whether rules are skipped on batches where their column tests fail (the
    /// default); without, every rule runs on every batch, for comparison.
    pub fn with_prefilters(mut self, on: bool) -> Self {
        self.use_prefilters = on;
        self
    }

    /// For each rule, whether some event of `batch` may pass its column tests.
    pub fn runnable(&self, batch: &RecordBatch) -> Vec<bool> {
        if !self.use_prefilters {
            return vec![true; self.rules.len()];
        }
        let mut seen = BatchValues::default();
        self.prefilters
            .iter()
            .map(|p| p.may_match(batch, &mut seen))
            .collect()
    }

    /// The column tests that decide whether a rule runs on a batch (`None`: no such
    /// rule; empty: it runs on every batch).
    pub fn prefilter(&self, id: &str) -> Option<&Prefilter> {
        let index = self.rules.iter().position(|r| r.meta.id == id)?;
        self.prefilters.get(index)
    }

    /// The rules' column tests for the normalizer, so that events no rule can return
    /// are never built into rows (see [`RowFilter`]). `None`: some rule may return any
    /// event, so every event needs its row.
    pub fn row_filter(&self) -> Option<RowFilter> {
        let mut alternatives = Vec::new();
        for (rule, plan) in self.rules.iter().zip(&self.plans) {
            if rule.window.is_some() {
                alternatives.extend(crate::prefilter::window_alternatives(plan)?);
            } else {
                alternatives.extend(crate::prefilter::row_alternatives(plan)?);
            }
        }
        RowFilter::new(alternatives)
    }

    /// Runs the rule with this id alone over one batch (`None`: no such rule).
    pub async fn evaluate_rule(&self, id: &str, batch: RecordBatch) -> Result<Option<Matches<'_>>> {
        match self.rules.iter().position(|r| r.meta.id == id) {
            Some(index) => Ok(Some(self.run(index, batch).await?)),
            None => Ok(None),
        }
    }

    /// A new physical plan of rule `index`.
    async fn make_physical_plan(
        &self,
        index: usize,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        self.state
            .query_planner()
            .create_physical_plan(&self.plans[index], &self.state)
            .await
    }

    /// The physical plan a rule runs as, indented, for people writing rules.
    pub async fn explain(&self, id: &str) -> Result<Option<String>> {
        let Some(index) = self.rules.iter().position(|r| r.meta.id == id) else {
            return Ok(None);
        };
        let physical = self
            .make_physical_plan(index)
            .await
            .map_err(Error::Engine)?;
        Ok(Some(
            datafusion::physical_plan::displayable(physical.as_ref())
                .indent(false)
                .to_string(),
        ))
    }

    pub(crate) async fn run(&self, index: usize, batch: RecordBatch) -> Result<Matches<'_>> {
        let rule = &self.rules[index];
        let failed = |source| Error::Evaluate {
            rule: rule.meta.id.clone(),
            source,
        };
        // Read before planning, so that a plan is never marked newer than the allow rows
        // it holds.
        let version = self.allow.version();
        let plan = match self.physical[index].take(version) {
            Some(plan) => plan,
            None => self.make_physical_plan(index).await.map_err(failed)?,
        };
        // The kept plan never runs itself: a run fills a join's built side, which the
        // kept one would then hold for as long as it is kept.
        let physical = reset_plan_states(Arc::clone(&plan)).map_err(failed)?;
        let config = self
            .state
            .config()
            .clone()
            .with_extension(Arc::new(RunInput(batch)));
        let context = TaskContext::from(&self.state).with_session_config(config);
        let rows = collect(physical, Arc::new(context)).await;
        self.physical[index].give_back(version, plan);
        Ok(Matches {
            rule,
            rows: rows.map_err(failed)?,
        })
    }
}

impl RuleSet {
    /// Runs every rule over one batch and turns each matched row into an alert; the
    /// first rule that fails fails the whole batch (see [`RuleSet::alerts_each`]).
    pub async fn alerts(
        &self,
        batch: RecordBatch,
        detected_at: &str,
    ) -> Result<Vec<demarc_model::Alert>> {
        let detected = self.alerts_each(batch, detected_at).await?;
        match detected.failures.into_iter().next() {
            Some(failure) => Err(failure.error),
            None => Ok(detected.alerts),
        }
    }

    /// Runs every rule over one batch, each on its own: a rule that fails on this batch
    /// is reported in [`Detected::failures`] and the others' alerts are still given. An
    /// error is one that no rule could have avoided (the batch itself is unusable).
    pub async fn alerts_each(&self, batch: RecordBatch, detected_at: &str) -> Result<Detected> {
        let index_batch = batch.clone();
        let index = crate::alert::EventIndex::new(&index_batch)?;
        let mut detected = Detected::default();
        for (i, run) in self.runnable(&batch).into_iter().enumerate() {
            // Windowed rules run over their window ([`crate::Windows`]), not one batch.
            if !run || self.rules[i].window.is_some() {
                continue;
            }
            let rule = &self.rules[i];
            let alerts = match self.run(i, batch.clone()).await {
                Ok(matches) => {
                    crate::alert::alerts(matches.rule, &matches.rows, &index, detected_at)
                }
                Err(error) => Err(error),
            };
            match alerts {
                Ok(alerts) => detected.alerts.extend(alerts),
                Err(error) => detected.failures.push(RuleFailure {
                    rule: rule.meta.id.clone(),
                    error,
                }),
            }
        }
        Ok(detected)
    }
}

/// What the rules found in one batch, and which of them failed on it.
#[derive(Debug, Default)]
pub struct Detected {
    pub alerts: Vec<demarc_model::Alert>,
    pub failures: Vec<RuleFailure>,
}

/// A rule that could not run on a batch (a runtime error of its SQL on these events,
/// such as a cast of a value that does not parse).
#[derive(Debug)]
pub struct RuleFailure {
    pub rule: String,
    pub error: Error,
}

fn builtin_allow() -> Result<AllowLists> {
    AllowLists::builtin().map_err(Error::Allow)
}

/// Every `*.sql` file of `dir`, sorted by name, with its text.
fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::Read {
            path: dir.to_owned(),
            source,
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    paths.sort();
    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        sources.push((path, text));
    }
    Ok(sources)
}

/// Optimizer passes left out; see [`session_context`].
const MOVES_JSON_BELOW_FILTERS: [&str; 2] =
    ["extract_leaf_expressions", "push_down_leaf_projections"];

/// A DataFusion session for rules and for queries over events, from `builder` (its
/// configuration and runtime): DataFusion's defaults, the JSON functions and demarc's
/// own, and every optimizer pass but two. Those two move "cheap" leaf expressions below
/// filters, and the JSON functions call themselves cheap: `json_get_str(request, …)`
/// would then parse the request of every event instead of the few that pass the
/// `service` and `operation` tests written before it.
pub fn session_context(builder: SessionStateBuilder) -> Result<SessionContext> {
    let rules = Optimizer::new()
        .rules
        .into_iter()
        .filter(|r| !MOVES_JSON_BELOW_FILTERS.contains(&r.name()))
        .collect();
    let state = builder
        .with_default_features()
        .with_optimizer_rules(rules)
        .build();
    let mut ctx = SessionContext::new_with_state(state);
    datafusion_functions_json::register_all(&mut ctx as &mut dyn FunctionRegistry)
        .map_err(Error::Engine)?;
    crate::functions::register(&ctx);
    Ok(ctx)
}

/// The session rules are planned in: `events` and `window_events` are the rows each
/// run is given.
fn session() -> Result<SessionContext> {
    // One partition: parallelism comes from evaluating many batches at once.
    let mut config = SessionConfig::new().with_target_partitions(1);
    // A plan runs again on every batch; a filter a join pushes into its input as it
    // runs would be that run's, and the batches are held in memory anyway.
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.enable_dynamic_filter_pushdown = false;
    optimizer.enable_join_dynamic_filter_pushdown = false;
    optimizer.enable_topk_dynamic_filter_pushdown = false;
    optimizer.enable_aggregate_dynamic_filter_pushdown = false;
    let ctx = session_context(SessionStateBuilder::new().with_config(config))?;
    for name in [EVENTS_TABLE, WINDOW_TABLE] {
        ctx.register_table(name, Arc::new(InputTable::new(event_schema())))
            .map_err(Error::Engine)?;
    }
    Ok(ctx)
}

/// Every table scan of `plan`, its subqueries' included.
pub(crate) fn table_scans(plan: &LogicalPlan) -> Vec<TableScan> {
    let mut scans = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            scans.push(scan.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    scans
}

/// Plans the rule against the empty `events` table: the SQL must parse, name only
/// known columns and functions, return `event_id`, and return every column its
/// `dedup` and `summary` refer to.
async fn check_plan(
    ctx: &SessionContext,
    rule: &RuleFile,
    text: &str,
) -> std::result::Result<LogicalPlan, RuleError> {
    let error = |line: usize, message: String| RuleError {
        file: rule.path.clone(),
        line,
        message,
    };
    let plan: LogicalPlan = ctx
        .state()
        .create_logical_plan(&rule.sql)
        .await
        .map_err(|e| {
            error(
                rule.sql_line,
                format!("the SQL does not plan against the event schema: {e}"),
            )
        })?;
    let scans = table_scans(&plan);
    let reads = |table: &str| scans.iter().any(|s| s.table_name.table() == table);
    match (
        rule.window.is_some(),
        (reads(EVENTS_TABLE), reads(WINDOW_TABLE)),
    ) {
        (true, (true, _)) | (true, (false, false)) => {
            return Err(error(
                rule.sql_line,
                format!(
                    "a windowed rule reads `{WINDOW_TABLE}` (the events of its window), not \
                     `{EVENTS_TABLE}`"
                ),
            ));
        }
        (false, (_, true)) => {
            return Err(error(
                rule.sql_line,
                format!(
                    "`{WINDOW_TABLE}` is for windowed rules: add `-- window: 15m` (the span) \
                     to the header, or read `{EVENTS_TABLE}`"
                ),
            ));
        }
        _ => {}
    }
    let output = plan.schema();
    let has = |name: &str| output.fields().iter().any(|f| f.name() == name);
    if !has(EVENT_ID) {
        return Err(error(
            rule.sql_line,
            format!("the query must return `{EVENT_ID}`"),
        ));
    }
    for column in &rule.meta.dedup {
        if !has(column) {
            return Err(error(
                rule.header_line(text, "dedup"),
                format!("dedup column `{column}` is not returned by the query"),
            ));
        }
    }
    for column in placeholders(&rule.meta.summary) {
        if !has(column) {
            return Err(error(
                rule.header_line(text, "summary"),
                format!("summary placeholder `{{{column}}}` is not returned by the query"),
            ));
        }
    }
    ctx.state().optimize(&plan).map_err(|e| {
        error(
            rule.sql_line,
            format!("the SQL does not plan against the event schema: {e}"),
        )
    })
}
