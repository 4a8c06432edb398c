//! Physical plans made once per rule and run again on every batch.
//!
//! Turning a rule's logical plan into a physical one (choosing joins, checking
//! orderings and distributions) costs about as much as running it over a batch of a few
//! thousand kept events. So a rule's `events` and `window_events` scans read
//! [`InputTable`], whose physical leaf ([`InputExec`]) takes its rows from the task
//! context at each run, and the physical plan is kept. It is made again when an allow
//! table changes, since a plan holds the allow rows it was made with. Before each run
//! the plan's run-time state (a hash join's built side) is reset, as DataFusion does to
//! run a recursive query's plan again.

use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::internal_err;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};

/// The rows a rule runs over, handed to [`InputExec`] through the task context.
#[derive(Debug)]
pub(crate) struct RunInput(pub RecordBatch);

/// The `events` and `window_events` tables of a rule's plan: rows given at each run.
#[derive(Debug)]
pub(crate) struct InputTable {
    schema: SchemaRef,
}

impl InputTable {
    pub(crate) fn new(schema: SchemaRef) -> Self {
        Self { schema }
    }
}

#[async_trait]
impl TableProvider for InputTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(InputExec::new(
            Arc::clone(&self.schema),
            projection.cloned(),
        )?))
    }
}

/// The leaf of a rule's physical plan: the run's rows ([`RunInput`]), projected. Its
/// statistics are unknown, so that no plan is shaped by the size of one batch (nor an
/// aggregate answered from a row count).
#[derive(Debug)]
pub(crate) struct InputExec {
    projection: Option<Vec<usize>>,
    /// The table's schema, before projection.
    schema: SchemaRef,
    /// After projection.
    projected: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl InputExec {
    fn new(schema: SchemaRef, projection: Option<Vec<usize>>) -> datafusion::common::Result<Self> {
        let projected = match &projection {
            Some(columns) => Arc::new(schema.project(columns)?),
            None => Arc::clone(&schema),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&projected)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self {
            projection,
            schema,
            projected,
            properties: Arc::new(properties),
        })
    }
}

impl DisplayAs for InputExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "InputExec")
    }
}

impl ExecutionPlan for InputExec {
    fn name(&self) -> &'static str {
        "InputExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::common::Result<TreeNodeRecursion>,
    ) -> datafusion::common::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("InputExec has one partition, not {partition}");
        }
        let Some(input) = context.session_config().get_extension::<RunInput>() else {
            return internal_err!("a rule's plan was run without its input rows");
        };
        if input.0.schema() != self.schema {
            return internal_err!("a rule's input rows do not have the event schema");
        }
        Ok(Box::pin(MemoryStream::try_new(
            vec![input.0.clone()],
            Arc::clone(&self.projected),
            self.projection.clone(),
        )?))
    }
}

/// A rule's physical plans, with the allow tables' version they were made with, each
/// for one run at a time. Runs of one plan share more than its nodes' state, which
/// `reset_plan_states` renews: the results of its scalar subqueries live in one
/// container that every reset copy of it holds, so two runs of one plan at once (two
/// workers) would fill and clear each other's, and fail. A run takes a plan out, or
/// has a new one made when none is free, and gives it back after.
#[derive(Debug, Default)]
pub(crate) struct PlanCache {
    slot: Mutex<(u64, Vec<Arc<dyn ExecutionPlan>>)>,
}

/// Plans kept per rule at most: one per run at once (the workers, and the windows).
const KEPT_PLANS: usize = 16;

impl PlanCache {
    /// A free plan made with allow tables at `version` (`None`: none free, or made
    /// with other allow rows). Give it back with [`PlanCache::give_back`].
    pub(crate) fn take(&self, version: u64) -> Option<Arc<dyn ExecutionPlan>> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.0 != version {
            return None;
        }
        slot.1.pop()
    }

    /// Keeps `plan`, made with allow tables at `version`, for the next run; plans made
    /// with older allow rows are dropped.
    pub(crate) fn give_back(&self, version: u64, plan: Arc<dyn ExecutionPlan>) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.0 < version {
            *slot = (version, Vec::new());
        }
        if slot.0 == version && slot.1.len() < KEPT_PLANS {
            slot.1.push(plan);
        }
    }
}
