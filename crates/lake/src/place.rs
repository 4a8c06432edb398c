//! Where a lake is: a local folder, or a prefix in a bucket (S3, GCS, through
//! `object_store`). Either way a file appears whole or not at all: a local file is
//! written aside and renamed into place, an object is put in one request.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use demarc_sink::PendingFile;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::{Error, Result, io_error};

/// A lake's place.
#[derive(Debug, Clone)]
pub enum Place {
    Folder(PathBuf),
    Bucket(Arc<Bucket>),
}

/// A prefix in a bucket, and the client and runtime to reach it.
#[derive(Debug)]
pub struct Bucket {
    /// The store's URL, `s3://bucket` or `gs://bucket`.
    pub store_url: String,
    pub store: Arc<dyn ObjectStore>,
    /// The lake's prefix in it.
    pub prefix: ObjectPath,
    /// Requests are made on this runtime, from threads outside it.
    pub runtime: tokio::runtime::Handle,
}

impl Bucket {
    /// The URL of `path` under the lake's prefix.
    pub fn url(&self, path: &ObjectPath) -> String {
        format!("{}/{path}", self.store_url)
    }

    fn path(&self, parts: &[&str]) -> ObjectPath {
        ObjectPath::from_iter(self.prefix.parts().chain(parts.iter().map(|p| (*p).into())))
    }
}

impl From<&Path> for Place {
    fn from(path: &Path) -> Self {
        Self::Folder(path.to_owned())
    }
}

impl From<&PathBuf> for Place {
    fn from(path: &PathBuf) -> Self {
        Self::Folder(path.clone())
    }
}

impl From<&Place> for Place {
    fn from(place: &Place) -> Self {
        place.clone()
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Folder(path) => write!(f, "{}", path.display()),
            Self::Bucket(bucket) => write!(f, "{}", bucket.url(&bucket.prefix)),
        }
    }
}

/// Where one lake file goes.
#[derive(Debug, Clone)]
pub enum Target {
    File(PathBuf),
    Object(Arc<Bucket>, ObjectPath),
}

impl Place {
    /// Makes the lake's folder, if it is one.
    pub(crate) fn create(&self) -> Result<()> {
        match self {
            Self::Folder(root) => {
                std::fs::create_dir_all(root).map_err(io_error("create the lake folder", root))
            }
            Self::Bucket(_) => Ok(()),
        }
    }

    /// The file at `folders/name` under the lake (its folders made, locally).
    pub(crate) fn target(&self, folders: &[&str], name: &str) -> Result<Target> {
        match self {
            Self::Folder(root) => {
                let dir = folders.iter().fold(root.clone(), |dir, f| dir.join(f));
                std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
                Ok(Target::File(dir.join(name)))
            }
            Self::Bucket(bucket) => {
                let mut parts = folders.to_vec();
                parts.push(name);
                Ok(Target::Object(Arc::clone(bucket), bucket.path(&parts)))
            }
        }
    }

    /// Removes the files whose names `doomed` picks under the lake; how many.
    pub(crate) fn remove_where(&self, doomed: impl Fn(&str) -> bool) -> Result<u64> {
        match self {
            Self::Folder(root) => remove_files_where(root, &doomed),
            Self::Bucket(bucket) => bucket.runtime.block_on(async {
                let listed = bucket.store.list(Some(&bucket.prefix));
                let metas: Vec<_> = listed
                    .try_collect()
                    .await
                    .map_err(|e| store_error(&bucket.url(&bucket.prefix), &e))?;
                let mut removed = 0;
                for meta in metas {
                    if meta.location.filename().is_some_and(&doomed) {
                        bucket
                            .store
                            .delete(&meta.location)
                            .await
                            .map_err(|e| store_error(&bucket.url(&meta.location), &e))?;
                        removed += 1;
                    }
                }
                Ok(removed)
            }),
        }
    }
}

fn remove_files_where(root: &Path, doomed: &dyn Fn(&str) -> bool) -> Result<u64> {
    let mut removed = 0;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("list", &folder)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io_error("list", &folder))?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(doomed)
            {
                std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

fn store_error(url: &str, error: &object_store::Error) -> Error {
    Error::Store {
        url: url.to_owned(),
        message: demarc_model::error_chain(error),
    }
}

impl Target {
    /// Its name in errors.
    pub fn name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Object(bucket, path) => bucket.url(path),
        }
    }

    /// Writes a new file with what `fill` writes into the sink it is given (and hands
    /// back): locally synced and renamed into place, never replacing a file; in a
    /// bucket, put in one request once complete.
    pub(crate) fn write(&self, fill: impl FnOnce(Sink) -> Result<Sink>) -> Result<()> {
        match self {
            Self::File(path) => {
                let (pending, file) = PendingFile::create_new(path)?;
                match fill(Sink::File(std::io::BufWriter::with_capacity(1 << 16, file)))? {
                    Sink::File(writer) => pending.commit_buffered(writer)?,
                    Sink::Memory(_) => return Err(Error::Schema("the sink it was given")),
                }
                Ok(())
            }
            Self::Object(bucket, path) => {
                let Sink::Memory(bytes) = fill(Sink::Memory(Vec::new()))? else {
                    return Err(Error::Schema("the sink it was given"));
                };
                bucket
                    .runtime
                    .block_on(bucket.store.put(path, PutPayload::from(bytes)))
                    .map_err(|e| store_error(&bucket.url(path), &e))?;
                Ok(())
            }
        }
    }
}

/// What a lake file is written into: the file, or memory until it is put.
#[derive(Debug)]
pub(crate) enum Sink {
    File(std::io::BufWriter<std::fs::File>),
    Memory(Vec<u8>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::File(file) => file.write(buf),
            Self::Memory(bytes) => bytes.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Self::File(file) => file.write_all(buf),
            Self::Memory(bytes) => bytes.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::File(file) => file.flush(),
            Self::Memory(_) => Ok(()),
        }
    }
}
