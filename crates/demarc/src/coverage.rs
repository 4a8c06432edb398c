//! `demarc coverage`: which customer-side controls the loaded rules watch.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use clap::{Args, ValueEnum};
use demarc_detect::coverage::{Catalog, Fixtures, html, report, table};

use crate::rules::RulesArgs;

#[derive(Debug, Args)]
pub struct CoverageArgs {
    #[command(flatten)]
    rules: RulesArgs,
    /// Folder of control catalog files (*.toml of [[control]] tables) instead of the
    /// compiled-in catalog
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Folder of rule fixtures, <DIR>/<rule-id>/{positive,negative}/, for the evasion
    /// classes they exercise [default: the built-in rules' fixtures, when the rules are
    /// the built-in ones]
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// table (for a terminal), json, or html (one self-contained page)
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the report to this file instead of standard output
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Html,
}

pub fn run(args: &CoverageArgs) -> Result<()> {
    let rules = args.rules.load()?;
    let catalog = Catalog::load(args.catalog.as_deref()).map_err(|problems| {
        anyhow!(
            "{} catalog problem(s):\n{}",
            problems.len(),
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let fixtures = match (&args.fixtures, args.rules.dir()) {
        (Some(dir), _) => Fixtures::Dir(dir.clone()),
        (None, None) => Fixtures::Builtin,
        (None, Some(_)) => Fixtures::Unknown,
    };
    let rules_from = args
        .rules
        .dir()
        .map_or_else(|| "built in".to_owned(), |d| d.display().to_string());
    let report =
        report(&rules, &catalog, &fixtures, &rules_from).map_err(demarc_detect::Error::Rules)?;
    let text = match args.format {
        Format::Table => table(&report),
        Format::Html => html(&report),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write the report to {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(())
}
