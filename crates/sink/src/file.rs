//! Durable files: written whole under a temporary name and renamed into place, or
//! appended to as JSON lines with a crash's cut-off last line removed on reopening.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A file being written under `<name>.partial`; [`PendingFile::commit`] syncs it,
/// renames it to its name and syncs the folder, and dropping it uncommitted removes it.
/// A crash never leaves a truncated file that looks finished, and a committed file
/// survives a power cut.
///
/// A destination that exists and is not a regular file (`/dev/null`, `/dev/stdout`, a
/// named pipe) is written directly: it cannot be replaced, and must not be.
#[derive(Debug)]
pub struct PendingFile {
    tmp: PathBuf,
    dest: PathBuf,
    /// Whether committing may replace an existing file of the same name.
    replace: bool,
    /// Written in place: a device or a pipe.
    direct: bool,
}

impl PendingFile {
    /// Creates `<dest>.partial`, to replace `dest` if it exists.
    pub fn create(dest: &Path) -> Result<(Self, File)> {
        Self::open(dest, true)
    }

    /// Creates `<dest>.partial`, for a file that must not exist yet: committing fails
    /// rather than replace one (another process's lake file, say).
    pub fn create_new(dest: &Path) -> Result<(Self, File)> {
        Self::open(dest, false)
    }

    fn open(dest: &Path, replace: bool) -> Result<(Self, File)> {
        let special = std::fs::metadata(dest).is_ok_and(|m| !m.is_file() && !m.is_dir());
        if special {
            let file = OpenOptions::new()
                .write(true)
                .open(dest)
                .map_err(Error::io("open", dest))?;
            let pending = Self {
                tmp: dest.to_owned(),
                dest: dest.to_owned(),
                replace,
                direct: true,
            };
            return Ok((pending, file));
        }
        let mut tmp = dest.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let file = if replace {
            File::create(&tmp)
        } else {
            OpenOptions::new().write(true).create_new(true).open(&tmp)
        }
        .map_err(Error::io("create", &tmp))?;
        Ok((
            Self {
                tmp,
                dest: dest.to_owned(),
                replace,
                direct: false,
            },
            file,
        ))
    }

    /// The temporary name, where the content is being written.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The name the file gets once committed.
    pub fn destination(&self) -> &Path {
        &self.dest
    }

    /// Syncs `file` (this pending file's handle), puts it in place and syncs the folder,
    /// so that the new name is durable too.
    pub fn commit(self, file: &File) -> Result<()> {
        if self.direct {
            // Nothing to sync or rename: a device or a pipe took the bytes.
            return Ok(());
        }
        file.sync_all().map_err(Error::io("sync", &self.tmp))?;
        if self.replace {
            std::fs::rename(&self.tmp, &self.dest)
                .map_err(Error::io("rename into place", &self.tmp))?;
        } else {
            // A link fails if the name is taken, where a rename would replace it.
            match std::fs::hard_link(&self.tmp, &self.dest) {
                Ok(()) => {
                    std::fs::remove_file(&self.tmp).map_err(Error::io("remove", &self.tmp))?;
                }
                // A file system without hard links: look, then rename.
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists && !self.dest.exists() => {
                    std::fs::rename(&self.tmp, &self.dest)
                        .map_err(Error::io("rename into place", &self.tmp))?;
                }
                Err(e) => {
                    return Err(Error::io("put in place (without replacing)", &self.dest)(e));
                }
            }
        }
        sync_parent(&self.dest)
    }

    /// Flushes `writer` (over this pending file's handle), then commits.
    pub fn commit_buffered(self, writer: BufWriter<File>) -> Result<()> {
        let file = writer
            .into_inner()
            .map_err(|e| Error::io("write", &self.tmp)(e.into_error()))?;
        self.commit(&file)
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.direct {
            return;
        }
        // After a successful commit the temporary name is gone and this finds nothing;
        // after a failure it removes the incomplete file. Either way there is nothing
        // to report.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Syncs the folder holding `path`, so that a name just created or renamed there
/// survives a power cut.
pub fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(Error::io("sync the folder", parent))
}

/// Opens a JSON-lines file for appending. A line cut short by a crash is removed
/// first: it was not synced when the process died, so the source position it came from
/// was not acknowledged, and it comes again.
pub fn open_jsonl(path: &Path) -> Result<File> {
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    let len = file.metadata().map_err(Error::io("read", path))?.len();
    if len == 0 {
        // Perhaps just created: its name must be as durable as the lines to come.
        sync_parent(path)?;
        return Ok(file);
    }
    let tail_len = len.min(1 << 20);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(len - tail_len))
        .and_then(|_| (&mut file).take(tail_len).read_to_end(&mut tail))
        .map_err(Error::io("read", path))?;
    if tail.last() == Some(&b'\n') {
        return Ok(file);
    }
    let keep = match memchr::memrchr(b'\n', &tail) {
        Some(i) => len - tail_len + i as u64 + 1,
        None if tail_len == len => 0,
        None => {
            return Err(Error::NotAnAlertFile {
                path: path.to_owned(),
            });
        }
    };
    tracing::warn!(
        path = %path.display(),
        bytes = len - keep,
        "removing an incomplete last line left by a crash"
    );
    file.set_len(keep)
        .and_then(|()| file.sync_data())
        .map_err(Error::io("truncate", path))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_written_in_place_never_replaced() {
        use std::io::Write as _;
        use std::os::unix::fs::FileTypeExt as _;
        let null = Path::new("/dev/null");
        let (pending, mut file) = PendingFile::create(null).expect("open /dev/null");
        // Were it written aside, committing would put a regular file in its place: stop
        // here (dropping the pending file removes what was written aside).
        assert_eq!(
            pending.path(),
            null,
            "/dev/null would be written aside and replaced"
        );
        file.write_all(b"{}\n").expect("write");
        pending.commit(&file).expect("commit");
        let kind = std::fs::metadata(null).expect("/dev/null").file_type();
        assert!(kind.is_char_device());
    }

    #[test]
    fn partial_last_line_is_removed_when_the_file_is_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\":").expect("write");
        drop(open_jsonl(&path).expect("opens"));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        std::fs::write(&path, "{\"a\"").expect("write");
        drop(open_jsonl(&path).expect("opens"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "");
    }

    #[test]
    fn pending_file_appears_only_when_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out.json");
        let (pending, file) = PendingFile::create(&dest).expect("create");
        assert!(pending.path().exists());
        drop(pending);
        drop(file);
        assert!(!dest.exists() && !dir.path().join("out.json.partial").exists());
        let (pending, mut file) = PendingFile::create(&dest).expect("create");
        std::io::Write::write_all(&mut file, b"done").expect("write");
        pending.commit(&file).expect("commit");
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "done");
    }

    #[test]
    fn a_new_file_never_replaces_one_of_the_same_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("part.parquet");
        std::fs::write(&dest, "someone else's").expect("write");
        let (pending, mut file) = PendingFile::create_new(&dest).expect("create");
        std::io::Write::write_all(&mut file, b"mine").expect("write");
        let error = pending.commit(&file).expect_err("the name is taken");
        assert!(error.to_string().contains("without replacing"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&dest).expect("read"),
            "someone else's"
        );
        assert!(!dir.path().join("part.parquet.partial").exists());
    }
}
