//! `demarc rules backtest`: one rule over the lake's history, summarized for the
//! detection engineer about to deploy it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use demarc_detect::{AllowLists, RuleSet};
use demarc_model::Alert;

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The rule file (`*.sql` with its header), new or changed
    #[arg(value_parser = crate::existing_path)]
    rule: PathBuf,
    /// Allow tables (*.csv, *.toml) the rule reads as `allow.NAME`, filling or adding to
    /// the built-in, empty ones
    #[arg(long)]
    allow: Option<PathBuf>,
    /// The lake to run it over: a folder or a bucket prefix (s3://…, gs://…)
    #[arg(long, env = "DEMARC_LAKE")]
    lake: String,
    #[command(flatten)]
    store: crate::store::StoreArgs,
    /// Only events since then: a span back from now (30d, 12h) or a time (2026-01-05,
    /// 2026-01-05T10:00:00Z); default: the whole lake
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time (2026-02-01 or an RFC 3339 time)
    #[arg(long)]
    until: Option<String>,
    /// Also write every alert as JSON lines to this file
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// Alerts shown as a sample
    #[arg(long, default_value_t = 5)]
    sample: usize,
}

pub fn run(args: &BacktestArgs) -> Result<()> {
    let (since, until) = crate::time_range(args.since.as_deref(), args.until.as_deref())?;
    let text = std::fs::read_to_string(&args.rule)
        .with_context(|| format!("cannot read `{}`", args.rule.display()))?;
    let place = crate::store::lake(&args.lake, &args.store)?;
    let runtime = crate::sql::runtime()?;
    let allow = AllowLists::load(args.allow.as_deref()).map_err(demarc_detect::Error::Allow)?;
    for row in allow.expired() {
        eprintln!("warning: {row}");
    }
    let rules = runtime.block_on(RuleSet::from_sources_with(
        vec![(args.rule.clone(), text)],
        allow,
    ))?;
    let backtest = runtime
        .block_on(demarc_sql::backtest(&place.place, &rules, since, until))
        .map_err(|e| anyhow::anyhow!("{}", e.explain()))?;
    if let Some(path) = &args.alerts {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create `{}`", path.display()))?,
        );
        for alert in &backtest.alerts {
            serde_json::to_writer(&mut out, alert)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    let rule = &rules.rules()[0].meta;
    let mut out = std::io::stdout().lock();
    let format = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let span = match (since, until) {
        (None, None) => "over the whole lake".to_owned(),
        (Some(since), None) => format!("since {}", format(since)),
        (None, Some(until)) => format!("until {}", format(until)),
        (Some(since), Some(until)) => format!("from {} to {}", format(since), format(until)),
    };
    writeln!(
        out,
        "{} ({}, {}) {span}: {} alerts{}",
        rule.id,
        rule.severity,
        rule.category,
        backtest.alerts.len(),
        if backtest.duplicates > 0 {
            format!(
                " ({} more from events the lake holds twice)",
                backtest.duplicates
            )
        } else {
            String::new()
        }
    )?;
    if backtest.alerts.is_empty() {
        return Ok(());
    }
    let by = |key: fn(&Alert) -> String| {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for alert in &backtest.alerts {
            *counts.entry(key(alert)).or_default() += 1;
        }
        counts
    };
    writeln!(out, "\nalerts per day:")?;
    for (day, n) in by(|a| a.event_time.get(..10).unwrap_or("?").to_owned()) {
        writeln!(out, "  {day}  {n:>6}")?;
    }
    writeln!(out, "\ntop dedup keys ({}):", rule.dedup.join(", "))?;
    top(&mut out, by(dedup_values))?;
    writeln!(out, "\ntop actors:")?;
    top(
        &mut out,
        by(|a| a.actor.clone().unwrap_or_else(|| "-".into())),
    )?;
    writeln!(out, "\nsample:")?;
    for alert in backtest.alerts.iter().take(args.sample) {
        writeln!(
            out,
            "  {}  {}  {}",
            alert.event_time, alert.alert_id, alert.summary
        )?;
    }
    Ok(())
}

fn dedup_values(alert: &Alert) -> String {
    if alert.dedup.is_empty() {
        return "(each event)".into();
    }
    alert
        .dedup
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("null")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ten largest counts, largest first.
fn top(out: &mut impl Write, counts: BTreeMap<String, u64>) -> Result<()> {
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (key, n) in counts.iter().take(10) {
        writeln!(out, "  {n:>6}  {key}")?;
    }
    if counts.len() > 10 {
        writeln!(out, "  … {} more", counts.len() - 10)?;
    }
    Ok(())
}
