//! What an archive run reads: local files and folders, and objects listed in buckets,
//! in the order given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Object, Selection, StoreOptions, layout, remote};
use crate::{Error, Result};

/// Extensions of files that sit beside logs in archives but are never logs. Everything
/// else found in a directory is read, and its content decides what it is.
const NOT_LOGS: [&str; 13] = [
    "md", "txt", "tsv", "csv", "html", "pdf", "png", "jpg", "jpeg", "parquet", "sha256", "sh", "py",
];

/// One input: a local file or an object in a bucket.
#[derive(Debug, Clone)]
pub enum Input {
    File(PathBuf),
    Object(Object),
}

/// The inputs to read, in order.
#[derive(Debug, Default)]
pub struct Inputs {
    pub files: Vec<Input>,
    /// Files left out by name (hidden, or an extension that is never a log).
    pub ignored: u64,
    /// Their size on disk or in the bucket.
    pub bytes: u64,
    /// What the user should know about the listing (a layout listed in full).
    pub warnings: Vec<String>,
    /// The runtime object storage is reached on, when there are objects: the one they
    /// were listed on, so that its connections are reused for fetching.
    pub(super) runtime: Option<Arc<tokio::runtime::Runtime>>,
}

impl Input {
    /// Its name in reports, provenance and checkpoints: the path, or the object's URL.
    pub fn name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Object(object) => object.url(),
        }
    }

    fn size(&self) -> u64 {
        match self {
            Self::File(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            Self::Object(object) => object.size,
        }
    }
}

impl Inputs {
    /// Leaves out the inputs up to and including the one named `last` (the last one a
    /// checkpoint recorded as done); how many. An error if it is not among them.
    pub fn resume_after(&mut self, last: &str) -> Result<usize> {
        let at = self
            .files
            .iter()
            .position(|input| input.name() == last)
            .ok_or_else(|| {
                Error::Config(format!(
                    "the checkpoint's last input `{last}` is no longer among the inputs: the \
                     archive changed since; remove the checkpoint to start over"
                ))
            })?;
        let done: u64 = self.files.drain(..=at).map(|input| input.size()).sum();
        self.bytes = self.bytes.saturating_sub(done);
        Ok(at + 1)
    }

    /// The local files among the inputs.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().filter_map(|input| match input {
            Input::File(path) => Some(path.as_path()),
            Input::Object(_) => None,
        })
    }
}

/// Every file named, and every regular file under the named directories (sorted per
/// directory) except hidden ones (`.name`) and those with an extension in
/// [`NOT_LOGS`].
pub fn collect(paths: &[PathBuf]) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for path in paths {
        add_local(path, &mut inputs)?;
    }
    Ok(inputs)
}

/// Local paths as [`collect`] reads them and `s3://` / `gs://` URLs (a bucket and a
/// prefix, listed as `selection` asks), in the order given.
pub fn collect_all(
    locations: &[String],
    store: &StoreOptions,
    selection: &Selection,
) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for location in locations {
        if !remote::is_url(location) {
            add_local(Path::new(location), &mut inputs)?;
            continue;
        }
        let runtime = match &inputs.runtime {
            Some(runtime) => Arc::clone(runtime),
            None => {
                let runtime = Arc::new(
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .thread_name("demarc-fetch")
                        .enable_all()
                        .build()
                        .map_err(Error::Thread)?,
                );
                inputs.runtime = Some(Arc::clone(&runtime));
                runtime
            }
        };
        let listed = runtime.block_on(async {
            let (bucket, prefix) = remote::open(location, store).await?;
            layout::list(&bucket, &prefix, selection).await
        })?;
        inputs.warnings.extend(listed.warnings);
        inputs.ignored += listed.ignored;
        for object in listed.objects {
            inputs.bytes += object.size;
            inputs.files.push(Input::Object(object));
        }
    }
    Ok(inputs)
}

fn add_local(path: &Path, inputs: &mut Inputs) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(Error::io("read", path))?;
    if meta.is_dir() {
        walk(path, inputs)?;
    } else {
        inputs.bytes += meta.len();
        inputs.files.push(Input::File(path.to_owned()));
    }
    Ok(())
}

/// Whether a key (or file name) may be a log: not hidden, no extension of [`NOT_LOGS`].
pub(super) fn may_be_log(name: &str) -> bool {
    let hidden = name.split('/').any(|part| part.starts_with('.'));
    let not_a_log = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| NOT_LOGS.contains(&e.to_ascii_lowercase().as_str()));
    !hidden && !not_a_log
}

fn walk(dir: &Path, inputs: &mut Inputs) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<Vec<_>>>()
        })
        .map_err(Error::io("list", dir))?;
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(Error::io("read", &path))?;
        if meta.is_dir() {
            walk(&path, inputs)?;
        } else if meta.is_file() && !may_be_log(name) {
            inputs.ignored += 1;
        } else if meta.is_file() {
            inputs.bytes += meta.len();
            inputs.files.push(Input::File(path));
        }
    }
    Ok(())
}
