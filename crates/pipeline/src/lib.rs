//! The one engine behind `demarc run`, `demarc demo` and `demarc backfill`: a source
//! cuts its input into numbered batches, a pool of workers normalizes each batch and
//! runs every rule over it, and one completion stage takes the results back in order,
//! writes dead letters, alerts and the lake, and only then acknowledges the source
//! position the batch covers.
//!
//! ```text
//! source ── Batch<P> ──▶ workers (normalize + rules) ── Done<P> ──▶ completion (in order)
//!   ▲                                                              │ dead letters, alerts,
//!   └───────────────── acknowledge(P) once durable ◀───────────────┘ lake
//! ```
//!
//! Two sources plug in: [`kafka`] (consumer group, revokes, offset commits, the
//! dead-letter topic) and [`archive`] (files and folders, gzip, large NDJSON read in
//! runs of lines). Each brings its position type ([`Position`]) and its
//! acknowledgement ([`Acknowledge`]): a Kafka offset is committed, an archive's
//! progress is reported. The acknowledgement rule is the engine's, not the source's: a
//! position is acknowledged only when the dead letters, the alerts (synced) and the
//! lake (flushed) of everything up to it are durable.
//!
//! The engine owns threads, ordering and acknowledgement. It must not know how an
//! input is parsed (that is `demarc-normalize`), what a rule says (`demarc-detect`),
//! or how an output stores things (`demarc-sink`, `demarc-lake`); nor anything of the
//! command line, configuration files or progress bars, which belong to the binary.
//! Workers are plain threads: normalizing and evaluating are CPU-bound, and each
//! worker drives DataFusion on its own single-threaded runtime, so the async runtime
//! never blocks on them.

pub mod allow;
pub mod archive;
mod complete;
pub mod dead_letter;
mod engine;
pub mod kafka;
pub mod metrics;
mod shared;
mod worker;

pub use complete::{Acknowledge, LakeOutput, Outputs, Summary};
pub use engine::{Batch, Dispatcher, Engine, Offer, Payload, Position, Record, Settings, Stages};
pub use metrics::Metrics;
pub use shared::Shared;

use std::path::PathBuf;

/// Why a run stopped. Nothing after the last acknowledged position was acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action}")]
    Kafka {
        action: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("the dead-letter topic `{topic}` did not take a rejected message")]
    DeadLetter {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("running the rules")]
    Rules(#[source] demarc_detect::Error),
    #[error(transparent)]
    Sink(#[from] demarc_sink::Error),
    #[error(transparent)]
    Lake(#[from] demarc_lake::Error),
    #[error("cannot {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An error that retrying does not mend (authentication, authorization, a fenced
    /// static member, a topic gone).
    #[error("{0}")]
    Fatal(String),
    /// A setting the brokers do not agree with, and what to change.
    #[error("{0}")]
    Config(String),
    #[error("cannot start a pipeline thread")]
    Thread(#[source] std::io::Error),
    /// A stage failed in a way that is a bug: a panic, a lost batch.
    #[error("{0}")]
    Stage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn kafka(
        action: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        let action = action.into();
        move |source| Self::Kafka { action, source }
    }

    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
