//! `demarc sigma import`: Sigma rules into demarc rule files, each planned against the
//! event schema and run over its generated fixtures before it is kept.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use demarc_detect::{RuleSet, check_rule_fixtures};
use demarc_model::Category;
use demarc_sigma::{ImportError, Imported, Options, import};

#[derive(Debug, Subcommand)]
pub enum SigmaCommand {
    /// Compile Sigma rules (logsources aws/cloudtrail and gcp/gcp.audit) into demarc rule
    /// files, with a generated positive and near-miss fixture pair each
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Sigma rule files (*.yml, *.yaml), or folders searched for them
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Folder to write the rule files to (created; files of the same id are replaced)
    #[arg(long)]
    out: PathBuf,
    /// Folder to write the fixtures to, <DIR>/<rule-id>/{positive,negative}/
    /// [default: <OUT>/fixtures]
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Category of every imported rule, instead of one inferred from its title and
    /// ATT&CK tactics
    #[arg(long)]
    category: Option<Category>,
}

pub fn run(command: &SigmaCommand) -> Result<()> {
    match command {
        SigmaCommand::Import(args) => import_all(args),
    }
}

fn sigma_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() || entry.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                sigma_files(&entry, out)?;
            }
        }
    } else if path.exists() {
        out.push(path.to_owned());
    } else {
        bail!("{} does not exist", path.display());
    }
    Ok(())
}

fn import_all(args: &ImportArgs) -> Result<()> {
    let mut files = Vec::new();
    for path in &args.paths {
        sigma_files(path, &mut files)?;
    }
    let options = Options {
        category: args.category,
    };
    let mut failed: Vec<ImportError> = Vec::new();
    let mut imported: Vec<(PathBuf, Imported)> = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        for result in import(file, &text, &options) {
            match result {
                Ok(rule) => imported.push((file.clone(), rule)),
                Err(e) => failed.push(e),
            }
        }
    }
    let fixtures = args
        .fixtures
        .clone()
        .unwrap_or_else(|| args.out.join("fixtures"));
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let (kept, without_fixtures) =
        runtime.block_on(keep(imported, &args.out, &fixtures, &mut failed))?;
    for e in &failed {
        eprintln!("not imported: {e}");
    }
    for (id, why) in &without_fixtures {
        eprintln!("no fixtures: {id}: {why}");
    }
    let total = kept + failed.len();
    eprintln!(
        "imported {kept} of {total} Sigma rules into {} ({} with fixtures in {})",
        args.out.display(),
        kept - without_fixtures.len(),
        fixtures.display()
    );
    if kept == 0 {
        bail!("no rule could be imported");
    }
    Ok(())
}

/// Plans each rule alone (a failure names its file and title), writes the ones that
/// plan and their fixtures, then runs each over its fixtures and drops fixtures the
/// engine disagrees with. Returns how many rules were written, and the rules left
/// without fixtures with why.
async fn keep(
    imported: Vec<(PathBuf, Imported)>,
    out: &Path,
    fixtures: &Path,
    failed: &mut Vec<ImportError>,
) -> Result<(usize, Vec<(String, String)>)> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut kept: Vec<String> = Vec::new();
    let mut without = Vec::new();
    // Each rule's own plan, to run over its fixtures.
    let mut planned: Vec<(String, RuleSet)> = Vec::new();
    for (file, rule) in imported {
        if kept.contains(&rule.id) {
            failed.push(ImportError {
                file,
                rule: rule.id.clone(),
                message: "another rule of this import has the same id".into(),
            });
            continue;
        }
        let path = out.join(format!("{}.sql", rule.id));
        let set = match RuleSet::from_sources(vec![(path.clone(), rule.rule.clone())]).await {
            Ok(set) => set,
            Err(e) => {
                failed.push(ImportError {
                    file,
                    rule: rule.id.clone(),
                    message: format!("the generated SQL does not plan: {e}"),
                });
                continue;
            }
        };
        std::fs::write(&path, &rule.rule)
            .with_context(|| format!("cannot write {}", path.display()))?;
        kept.push(rule.id.clone());
        let folder = fixtures.join(&rule.id);
        if folder.exists() {
            std::fs::remove_dir_all(&folder)
                .with_context(|| format!("cannot replace {}", folder.display()))?;
        }
        if let Some(problem) = &rule.fixture_problem {
            without.push((rule.id.clone(), problem.clone()));
            continue;
        }
        for (side, events) in [("positive", &rule.positives), ("negative", &rule.negatives)] {
            let dir = folder.join(side);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, event) in events {
                std::fs::write(dir.join(name), event)
                    .with_context(|| format!("cannot write {}", dir.display()))?;
            }
        }
        planned.push((rule.id, set));
    }
    for (id, rules) in &planned {
        let result = check_rule_fixtures(rules, id, fixtures).await?;
        if !result.passed() {
            std::fs::remove_dir_all(fixtures.join(id))?;
            without.push((id.clone(), result.problems.join("; ")));
        }
    }
    Ok((kept.len(), without))
}
