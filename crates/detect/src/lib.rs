//! Detection rules: one SQL file per rule over the table `events`, with a metadata
//! header; validated against the event schema at load time and evaluated with
//! DataFusion over batches of normalized events.
//!
//! This crate must not depend on Kafka or on how events are read: it sees Arrow
//! batches of the schema in `demarc_model`, so the streaming and the backfill jobs run
//! the same rules. It uses the (pure, synchronous) normalizer only to read rule
//! fixtures, which may come in any envelope. Rules may also read allow tables
//! (`allow.NAME`, see [`allow`]): data kept beside the rules.

mod alert;
pub mod allow;
pub mod coverage;
mod engine;
mod fixtures;
pub mod functions;
mod input;
mod prefilter;
mod rule;
mod window;

use std::path::PathBuf;

pub use alert::alert_id;
pub use allow::{AllowEntry, AllowError, AllowLists, ExpiredRow};
pub use engine::{Detected, EVENTS_TABLE, Matches, RuleFailure, RuleSet, session_context};
pub use fixtures::{
    FixtureResult, MIN_FIXTURES, check_fixtures, check_rule_fixtures, load_fixtures,
};
pub use prefilter::Prefilter;
pub use rule::{Evasion, RuleError, RuleFile, Window, placeholders};
pub use window::{WINDOW_TABLE, WindowOutput, Windows, conform, run_windowed};

/// Why rules could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Rule files the user must fix; every one of them is listed.
    #[error("{} rule problem(s):\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rules(Vec<RuleError>),
    /// Allow tables the user must fix; every problem is listed.
    #[error("{} allow-list problem(s):\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Allow(Vec<AllowError>),
    #[error("no rules found: a rules folder holds one `*.sql` file per rule")]
    NoRules,
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A bug or resource problem inside the query engine.
    #[error("query engine error")]
    Engine(#[source] datafusion::error::DataFusionError),
    /// Rows that do not have the shape alerts need.
    #[error("cannot build alerts: {0}")]
    Schema(String),
    #[error("rule `{rule}` failed to run")]
    Evaluate {
        rule: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
