//! `[rules]`: which rules and allow tables a running job reads.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// How often a running job looks for changed allow tables, by default.
pub const DEFAULT_ALLOW_REFRESH_SECONDS: u64 = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesFile {
    pub(super) dir: Option<PathBuf>,
    pub(super) allow: Option<PathBuf>,
    allow_refresh_seconds: Option<Spanned<u64>>,
}

impl RulesFile {
    /// `allow_refresh_seconds`, checked; an error is its span and what to write.
    pub(super) fn allow_refresh(&self) -> Result<Duration, (Range<usize>, String)> {
        match &self.allow_refresh_seconds {
            None => Ok(Duration::from_secs(DEFAULT_ALLOW_REFRESH_SECONDS)),
            Some(n) if (1..=3600).contains(n.get_ref()) => Ok(Duration::from_secs(*n.get_ref())),
            Some(n) => Err((
                n.span(),
                format!(
                    "rules.allow_refresh_seconds must be between 1 and 3600 (default \
                     {DEFAULT_ALLOW_REFRESH_SECONDS})"
                ),
            )),
        }
    }
}
