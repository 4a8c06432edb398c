//! `[lake]`: where the streaming job writes its Parquet lake, and how often.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::routing::At;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LakeFile {
    path: PathBuf,
    #[serde(default = "default_flush_seconds")]
    flush_seconds: Spanned<u64>,
    /// Keep each event's original JSON (`raw`) in the lake.
    #[serde(default)]
    raw: bool,
}

fn default_flush_seconds() -> Spanned<u64> {
    Spanned::new(0..0, 60)
}

/// The lake of a streaming job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeConfig {
    pub path: PathBuf,
    /// Offsets are committed when the lake is flushed.
    pub flush_every: Duration,
    /// Whether the lake keeps each event's original JSON (`raw`).
    pub raw: bool,
}

impl LakeFile {
    pub(super) fn check(self, at: At<'_>) -> Result<LakeConfig, ConfigError> {
        let seconds = *self.flush_seconds.get_ref();
        if !(1..=3600).contains(&seconds) {
            return Err(at(
                self.flush_seconds.span(),
                "lake.flush_seconds must be between 1 and 3600 (default 60); offsets are \
                 committed when the lake is flushed"
                    .into(),
            ));
        }
        Ok(LakeConfig {
            path: self.path,
            flush_every: Duration::from_secs(seconds),
            raw: self.raw,
        })
    }
}
