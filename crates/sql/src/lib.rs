//! Investigation: read-only SQL over a demarc lake.
//!
//! Two tables, both read from the lake's folders at every query (so a file written a
//! moment ago is in the next answer):
//! - `events`: the normalized events (docs/schema.md), with the partition columns
//!   `provider`, `date` (`YYYY-MM-DD`) and `hour` (`HH`) from the paths; a filter on
//!   them skips whole folders, a filter on `time`, `event_id` or `actor_principal`
//!   skips row groups (statistics, bloom filters);
//! - `alerts`: every alert the lake holds (docs/alerts.md), with `date`.
//!
//! The rule engine's JSON and domain functions are there, so an analyst can paste a
//! rule's SQL. Anything that writes or changes the session (DDL, DML, `COPY`, `SET`)
//! is refused.

mod backtest;
mod diagnostic;
pub mod flight;
mod output;
mod shell;
mod tables;

use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use demarc_lake::Place;

use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SendableRecordBatchStream, SessionStateBuilder};
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};

pub use backtest::{Backtest, backtest};
pub use diagnostic::render;
pub use output::{Format, Written, write};
pub use shell::{ShellOptions, shell};
pub use tables::{ALERTS_TABLE, EVENTS_TABLE, alerts_schema, register};

/// The catalog and schema the tables are in.
pub const CATALOG: &str = "demarc";
pub const SCHEMA: &str = "lake";

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query itself: rendered with [`render`] for a person.
    #[error("{}", .error.strip_backtrace())]
    Query {
        sql: String,
        #[source]
        error: DataFusionError,
    },
    /// Setting up the session over the lake (not a query's fault).
    #[error("cannot set up the query engine over the lake")]
    Engine(#[source] DataFusionError),
    #[error("cannot write the result to `{path}`")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the result")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("cannot write the result as Parquet")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Rules(#[from] demarc_detect::Error),
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The message for a person: a query error with the offending part of the query
    /// marked.
    pub fn explain(&self) -> String {
        match self {
            Self::Query { sql, error } => render(sql, error),
            other => {
                let mut text = other.to_string();
                let mut source = std::error::Error::source(other);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                text
            }
        }
    }
}

/// A session over one lake.
#[derive(Clone)]
pub struct Lake {
    ctx: SessionContext,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("session", &self.ctx.session_id())
            .finish()
    }
}

impl Lake {
    /// A session over the lake at `place`, a folder (which may not exist yet: its
    /// tables are empty) or a prefix in a bucket.
    pub fn open(place: impl Into<Place>) -> Result<Self> {
        let place = place.into();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let mut config = SessionConfig::new()
            .with_target_partitions(threads)
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, SCHEMA)
            .with_create_default_catalog_and_schema(true)
            .with_parquet_pruning(true)
            .with_parquet_bloom_filter_pruning(true)
            .with_parquet_page_index_pruning(true);
        let options = config.options_mut();
        options.sql_parser.collect_spans = true;
        // Late materialization: read the other columns only of rows that pass.
        options.execution.parquet.pushdown_filters = true;
        options.execution.parquet.reorder_filters = true;
        // No cache of folder listings: new lake files are in the next query, and files
        // replaced by a compaction are not opened after they are gone.
        let runtime = RuntimeEnvBuilder::new()
            .with_object_list_cache_limit(0)
            .build_arc()
            .map_err(Error::Engine)?;
        // The rules' session: a rule backtested here is planned as backfill plans it.
        let ctx = demarc_detect::session_context(
            SessionStateBuilder::new()
                .with_config(config)
                .with_runtime_env(runtime),
        )?;
        if let Place::Bucket(bucket) = &place {
            let url = ObjectStoreUrl::parse(&bucket.store_url).map_err(Error::Engine)?;
            ctx.runtime_env()
                .register_object_store(url.as_ref(), Arc::clone(&bucket.store));
        }
        register(&ctx, &place).map_err(Error::Engine)?;
        Ok(Self { ctx })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plans a read-only query.
    pub async fn plan(&self, sql: &str) -> Result<DataFrame> {
        self.ctx
            .sql_with_options(sql, read_only())
            .await
            .map_err(|error| query(sql, error))
    }

    /// The events whose time is `since` or later (the date folders before it skipped).
    pub async fn events_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<arrow::array::RecordBatch>> {
        let sql = format!(
            "SELECT * FROM {EVENTS_TABLE} WHERE time >= TIMESTAMP '{}' AND date >= '{}'",
            since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            since.format("%Y-%m-%d")
        );
        self.plan(&sql)
            .await?
            .collect()
            .await
            .map_err(|error| query(&sql, error))
    }

    /// Runs a read-only query; its batches as they come. Dropping the stream cancels it.
    pub async fn stream(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        self.plan(sql)
            .await?
            .execute_stream()
            .await
            .map_err(|error| query(sql, error))
    }
}

/// What a query may do: read.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

fn query(sql: &str, error: DataFusionError) -> Error {
    Error::Query {
        sql: sql.to_owned(),
        error,
    }
}
