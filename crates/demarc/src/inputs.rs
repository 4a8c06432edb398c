//! Finding the log files under the paths given on the command line.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Extensions of files that sit beside logs in archives but are never logs. Everything
/// else found in a directory is read, and its content decides what it is.
const NOT_LOGS: [&str; 13] = [
    "md", "txt", "tsv", "csv", "html", "pdf", "png", "jpg", "jpeg", "parquet", "sha256", "sh", "py",
];

/// Every file named on the command line, and every regular file under the named
/// directories (sorted per directory) except hidden ones (`.name`) and those with an
/// extension in [`NOT_LOGS`]; also how many were left out that way.
pub fn collect_files(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, u64)> {
    let mut files = Vec::new();
    let mut ignored = 0;
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut files, &mut ignored)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok((files, ignored))
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, ignored: &mut u64) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list `{}`", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot list `{}`", dir.display()))?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let not_a_log = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| NOT_LOGS.contains(&e.to_ascii_lowercase().as_str()));
        if meta.is_dir() {
            walk(&path, files, ignored)?;
        } else if meta.is_file() && not_a_log {
            *ignored += 1;
        } else if meta.is_file() {
            files.push(path);
        }
    }
    Ok(())
}
