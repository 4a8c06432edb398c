//! `demarc backfill --checkpoint FILE`: the outputs of a run that can be interrupted
//! and started again with the same command (`demarc_pipeline::archive::checkpoint`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use demarc_pipeline::archive::Inputs;
use demarc_pipeline::archive::checkpoint::{self, Checkpoint, LakeMark, State};

use super::BackfillArgs;

/// What the command line asks, as the checkpoint records it: a resumed run must ask the
/// same (the endpoint may differ).
pub fn command(args: &BackfillArgs) -> serde_json::Value {
    serde_json::json!({
        "inputs": args.paths,
        "since": args.since,
        "until": args.until,
        "accounts": args.accounts,
        "regions": args.regions,
        "rules": args.rules,
        "alerts": args.alerts,
        "lake": args.lake,
        "lake_raw": args.lake_raw,
        "dead_letter": args.dead_letter,
    })
}

/// The checkpoint of an earlier attempt of this command, if there is one; an error if
/// the file belongs to another command.
pub fn previous(path: &Path, args: &BackfillArgs) -> Result<Option<State>> {
    if args.alerts.is_none() {
        bail!(
            "--checkpoint needs --alerts FILE: alerts printed to the terminal cannot be taken \
             back to the checkpoint when the run is started again"
        );
    }
    let Some(state) = Checkpoint::load(path)? else {
        return Ok(None);
    };
    if state.command != command(args) {
        bail!(
            "`{}` is the checkpoint of another backfill ({}): run that command to resume it, \
             or remove the file to start this one",
            path.display(),
            state.command
        );
    }
    Ok(Some(state))
}

/// The time range an earlier attempt resolved (`--since 30d` is resolved once).
pub fn range(state: &State) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let at = |us: Option<i64>| us.and_then(DateTime::from_timestamp_micros);
    (at(state.since_us), at(state.until_us))
}

/// Skips the inputs an earlier attempt finished; how many.
pub fn skip_done(inputs: &mut Inputs, state: Option<&State>) -> Result<usize> {
    match state.and_then(|s| s.last_input.as_deref()) {
        Some(last) => Ok(inputs.resume_after(last)?),
        None => Ok(0),
    }
}

/// Takes the outputs back to the earlier attempt's checkpoint (or empties them for a
/// first attempt), and starts the checkpoint of this one.
pub struct Start<'a> {
    pub path: &'a Path,
    pub args: &'a BackfillArgs,
    pub previous: Option<State>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// The lake, if the run writes one.
    pub lake: Option<&'a demarc_lake::Place>,
    /// The lake run of this attempt.
    pub lake_run: Option<String>,
    pub every: Duration,
    pub to_do: u64,
}

impl Start<'_> {
    pub fn begin(self) -> Result<Checkpoint> {
        let alerts = self
            .args
            .alerts
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("--checkpoint needs --alerts FILE"))?;
        let resuming = self.previous.is_some();
        let previous = self.previous.unwrap_or_default();
        cut_back(alerts, resuming.then_some(previous.alerts_bytes))?;
        if let Some(path) = self.args.dead_letter.as_deref() {
            cut_back(path, previous.dead_letter_bytes.filter(|_| resuming))?;
        }
        if let (Some(place), Some(mark)) = (self.lake, &previous.lake) {
            let removed = demarc_lake::discard_after(place, &mark.run, mark.parts)?;
            if removed > 0 {
                eprintln!("removed {removed} lake file(s) written after the checkpoint");
            }
        }
        let state = State {
            command: command(self.args),
            since_us: self.since.map(|t| t.timestamp_micros()),
            until_us: self.until.map(|t| t.timestamp_micros()),
            lake: self.lake_run.map(|run| LakeMark { run, parts: 0 }),
            complete: false,
            ..previous
        };
        Ok(Checkpoint::start(
            self.path,
            state,
            alerts,
            self.args.dead_letter.as_deref(),
            self.every,
            self.to_do,
        )?)
    }
}

/// Cuts `path` back to `length` bytes, or empties it (creating it) without one.
fn cut_back(path: &Path, length: Option<u64>) -> Result<()> {
    match length {
        Some(length) => checkpoint::truncate(path, length)?,
        None => {
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", path.display()))?;
        }
    }
    Ok(())
}
