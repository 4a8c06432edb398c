//! Taking a lake back to where an interrupted run can resume from: the files that run
//! wrote after its last checkpoint are removed, so that the resumed run writes their
//! rows once.

use crate::{Place, Result};

/// Removes the files of the run `run` numbered after `parts` in the lake (Parquet,
/// alert lines, and unfinished `.partial` files of any number); how many.
pub fn discard_after(place: &Place, run: &str, parts: u64) -> Result<u64> {
    let prefix = format!("part-{run}-");
    place.remove_where(|name| {
        let Some(rest) = name.strip_prefix(&prefix) else {
            return false;
        };
        let number: Option<u64> = rest.split('.').next().and_then(|n| n.parse().ok());
        rest.ends_with(".partial") || number.is_some_and(|n| n > parts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_runs_later_files_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hour = dir
            .path()
            .join("events/provider=aws/date=2026-01-05/hour=10");
        let alerts = dir.path().join("alerts/date=2026-01-05");
        for folder in [&hour, &alerts] {
            std::fs::create_dir_all(folder).expect("folders");
        }
        let files = [
            hour.join("part-r1-abc-00001.parquet"),
            hour.join("part-r1-abc-00003.parquet"),
            hour.join("part-r1-abc-00004.parquet.partial"),
            hour.join("part-r2-def-00009.parquet"),
            alerts.join("part-r1-abc-00002.jsonl"),
            alerts.join("part-r1-abc-00005.jsonl"),
        ];
        for file in &files {
            std::fs::write(file, b"x").expect("a file");
        }
        let removed = discard_after(&dir.path().into(), "r1-abc", 2).expect("discarded");
        assert_eq!(removed, 3);
        let left: Vec<bool> = files.iter().map(|f| f.exists()).collect();
        assert_eq!(left, [true, false, false, true, true, false]);
    }
}
