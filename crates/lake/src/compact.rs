//! `demarc lake compact`: each partition's files merged into few large ones, in time
//! order, without the duplicate rows that replays leave (same provider and event id;
//! the provider is the partition's), and each day's alert files merged into one
//! without duplicate alert ids.
//!
//! Safe beside writers and readers: only finished files (`*.parquet`, `*.jsonl`) are
//! read, the merged file is synced and renamed into place before the files it replaces
//! are deleted, and a file already opened by a reader stays readable until closed. A
//! crash between the two steps leaves rows twice, which the next compaction removes.
//! Two compactions of one lake do not run at once (a lock file).

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use demarc_model::column;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::encode::write_file;
use crate::place::Target;
use crate::{ALERTS, EVENTS, Error, Result, io_error, write_lines};

/// Rows and memory of one merged file at most.
const MERGED_ROWS: usize = 1 << 20;
const MERGED_BYTES: usize = 256 << 20;

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// Partitions (and alert days) with more than one file, which were merged.
    pub partitions: u64,
    pub files_before: u64,
    pub files_after: u64,
    pub rows_before: u64,
    /// Duplicate rows and alerts removed.
    pub duplicates: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Merges the small files of every partition of the lake at `root`.
pub fn compact(root: &Path) -> Result<Compacted> {
    let _lock = lock(root)?;
    let mut done = Compacted::default();
    for dir in leaves(&root.join(EVENTS), 3)? {
        let files = finished(&dir, "parquet")?;
        if files.len() > 1 {
            merge_events(&dir, &files, &mut done)?;
        }
    }
    for dir in leaves(&root.join(ALERTS), 1)? {
        let files = finished(&dir, "jsonl")?;
        if files.len() > 1 {
            merge_alerts(&dir, &files, &mut done)?;
        }
    }
    Ok(done)
}

/// Holds `ROOT/.compact.lock` until dropped.
fn lock(root: &Path) -> Result<File> {
    let path = root.join(".compact.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error("open", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy(path)),
        Err(std::fs::TryLockError::Error(e)) => Err(io_error("lock", &path)(e)),
    }
}

/// The folders `depth` levels below `dir` (none when it does not exist).
fn leaves(dir: &Path, depth: usize) -> Result<Vec<PathBuf>> {
    let mut level = vec![dir.to_owned()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for dir in level {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("list", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_error("list", &dir))?;
                if entry.file_type().map_err(io_error("list", &dir))?.is_dir()
                    && entry.file_name().to_string_lossy().contains('=')
                {
                    next.push(entry.path());
                }
            }
        }
        level = next;
    }
    level.sort();
    Ok(level)
}

/// The finished files (`*.{extension}`, not `*.partial`) of a folder, by name.
fn finished(dir: &Path, extension: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error("list", dir))? {
        let path = entry.map_err(io_error("list", dir))?.path();
        if path.extension().is_some_and(|e| e == extension) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn merged_name(dir: &Path, n: usize, extension: &str) -> PathBuf {
    let random = uuid::Uuid::new_v4().simple().to_string();
    dir.join(format!("part-compact-{}-{n:05}.{extension}", &random[..12]))
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Deletes the files a merged file replaced (already gone is fine), then syncs their
/// folder.
fn remove(files: &[PathBuf]) -> Result<()> {
    for file in files {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("delete", file)(e)),
        }
    }
    if let Some(file) = files.first() {
        demarc_sink::sync_parent(file)?;
    }
    Ok(())
}

fn merge_events(dir: &Path, files: &[PathBuf], done: &mut Compacted) -> Result<()> {
    let mut written = Vec::new();
    let merged = write_merged(dir, files, done, &mut written);
    if merged.is_err() {
        // The originals stay; merged files already written would double their rows
        // until the next compaction.
        let _ = remove(&written);
        return merged;
    }
    remove(files)?;
    done.partitions += 1;
    done.files_before += files.len() as u64;
    done.files_after += written.len() as u64;
    done.bytes_after += written.iter().map(|p| size(p)).sum::<u64>();
    Ok(())
}

/// Writes the partition's rows, without replayed ones, to new merged files (named in
/// `written` as they are put in place).
fn write_merged(
    dir: &Path,
    files: &[PathBuf],
    done: &mut Compacted,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut pending: Vec<RecordBatch> = Vec::new();
    let (mut rows, mut bytes) = (0, 0);
    for file in files {
        done.bytes_before += size(file);
        let open = File::open(file).map_err(io_error("open", file))?;
        let parquet = |source| Error::Parquet {
            path: file.clone(),
            source,
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(open)
            .map_err(parquet)?
            .with_batch_size(8192)
            .build()
            .map_err(parquet)?;
        for batch in reader {
            let batch = batch?;
            done.rows_before += batch.num_rows() as u64;
            let ids = batch
                .column_by_name(column::EVENT_ID)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or(Error::Schema("an `event_id` column"))?;
            let keep: BooleanArray = (0..ids.len())
                .map(|row| Some(seen.insert(ids.value(row).to_owned())))
                .collect();
            let batch = filter_record_batch(&batch, &keep)?;
            done.duplicates += (keep.len() - batch.num_rows()) as u64;
            rows += batch.num_rows();
            bytes += batch.get_array_memory_size();
            pending.push(batch);
            if rows >= MERGED_ROWS || bytes >= MERGED_BYTES {
                let path = merged_name(dir, written.len(), "parquet");
                write_file(&path, std::mem::take(&mut pending))?;
                written.push(path);
                (rows, bytes) = (0, 0);
            }
        }
    }
    if rows > 0 {
        let path = merged_name(dir, written.len(), "parquet");
        write_file(&path, pending)?;
        written.push(path);
    }
    Ok(())
}

fn merge_alerts(dir: &Path, files: &[PathBuf], done: &mut Compacted) -> Result<()> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut lines = Vec::new();
    for file in files {
        done.bytes_before += size(file);
        let text = std::fs::read_to_string(file).map_err(io_error("read", file))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            done.rows_before += 1;
            // A line that is not an alert is kept as it is: compaction loses nothing.
            let id = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| {
                    v.get("alert_id")
                        .and_then(|id| id.as_str())
                        .map(str::to_owned)
                });
            if id.is_some_and(|id| !seen.insert(id)) {
                done.duplicates += 1;
            } else {
                lines.push(line.to_owned());
            }
        }
    }
    let path = merged_name(dir, 0, "jsonl");
    write_lines(
        &Target::File(path.clone()),
        lines.iter().map(String::as_str),
    )?;
    remove(files)?;
    done.partitions += 1;
    done.files_before += files.len() as u64;
    done.files_after += 1;
    done.bytes_after += size(&path);
    Ok(())
}
