//! `demarc rules list` and `demarc rules test`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use demarc_detect::{RuleSet, check_fixtures};

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Print every rule: id, category, severity, SRM layer and title
    List(RulesArgs),
    /// Run every rule against its positive and negative fixtures; exit 1 on any failure
    /// (--allow defaults to the `allow` folder beside the fixtures folder, when there is
    /// one: testdata/allow holds the organisation the fixtures are written for)
    Test {
        #[command(flatten)]
        rules: RulesArgs,
        /// Folder of fixtures: <DIR>/<rule-id>/{positive,negative}/
        #[arg(long, default_value = "testdata/rules")]
        fixtures: PathBuf,
    },
    /// Run one rule file over the lake's history: what it would have raised (alerts
    /// per day, top dedup keys and actors, a sample), before it pages anyone
    Backtest(crate::backtest::BacktestArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    /// Load the rules from this folder of *.sql files instead of the compiled-in ones
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Allow tables (*.csv, *.toml) that the rules read as `allow.NAME`, filling or
    /// adding to the built-in, empty ones
    #[arg(long)]
    allow: Option<PathBuf>,
}

impl RulesArgs {
    pub(crate) fn load(&self) -> Result<RuleSet> {
        crate::run::load_rules(self.rules.as_deref(), self.allow.as_deref())
    }

    /// The rules folder given, if any (`None`: the built-in rules).
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.rules.as_deref()
    }
}

pub fn run(command: &RulesCommand) -> Result<()> {
    let runtime = || tokio::runtime::Builder::new_current_thread().build();
    match command {
        // Backtests run on a runtime of their own, with threads for the scans.
        RulesCommand::Backtest(args) => crate::backtest::run(args),
        RulesCommand::List(args) => list(&args.load()?),
        RulesCommand::Test { rules, fixtures } => {
            let beside = fixtures.parent().map(|p| p.join("allow"));
            let allow = rules.allow.clone().or(beside.filter(|d| d.is_dir()));
            let rules = crate::run::load_rules(rules.rules.as_deref(), allow.as_deref())?;
            runtime()?.block_on(test(&rules, fixtures))
        }
    }
}

/// The width of the id column: the longest rule id.
fn id_width(rules: &RuleSet) -> usize {
    rules
        .rules()
        .iter()
        .map(|r| r.meta.id.len())
        .max()
        .unwrap_or(0)
        .max(4)
}

fn list(rules: &RuleSet) -> Result<()> {
    let w = id_width(rules);
    println!(
        "{:<w$} {:<22} {:<9} {:<13} TITLE",
        "ID", "CATEGORY", "SEVERITY", "LAYER"
    );
    for rule in rules.rules() {
        let meta = &rule.meta;
        println!(
            "{:<w$} {:<22} {:<9} {:<13} {}",
            meta.id, meta.category, meta.severity, meta.srm_layer, meta.title
        );
    }
    Ok(())
}

async fn test(rules: &RuleSet, fixtures: &Path) -> Result<()> {
    let results = check_fixtures(rules, fixtures).await?;
    let w = id_width(rules);
    println!(
        "{:<w$} {:>9} {:>9}  RESULT  EVASION CLASSES COVERED",
        "RULE", "POSITIVE", "NEGATIVE"
    );
    let mut failed = 0;
    for result in &results {
        let verdict = if result.passed() { "pass" } else { "FAIL" };
        let covered: Vec<&str> = result.covered.iter().map(|e| e.as_str()).collect();
        println!(
            "{:<w$} {:>9} {:>9}  {verdict}    {}",
            result.rule_id,
            result.positives,
            result.negatives,
            if covered.is_empty() {
                "-".to_owned()
            } else {
                covered.join(", ")
            }
        );
        for problem in &result.problems {
            println!("    {problem}");
        }
        failed += usize::from(!result.passed());
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed > 0 {
        bail!("{failed} rule(s) failed their fixtures");
    }
    Ok(())
}
