//! Object storage on the command line: the options every command that reaches a bucket
//! takes, and a lake given as a folder or as `s3://…` / `gs://…`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use demarc_lake::{Bucket, Place};
use demarc_pipeline::archive::{StoreOptions, remote};

/// How to reach object storage (docs/archives.md).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Object storage endpoint instead of the cloud's: an S3-compatible store or a GCS
    /// emulator (http://localhost:9000)
    #[arg(long, env = "DEMARC_STORE_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Send requests to object storage unsigned (public buckets, emulators)
    #[arg(long)]
    pub no_sign_request: bool,
    /// Attempts after the first for a request that failed with a server error or was
    /// throttled (backing off up to 15 s between attempts)
    #[arg(long, default_value_t = 10)]
    pub retries: usize,
}

impl StoreArgs {
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            endpoint: self.endpoint.clone(),
            unsigned: self.no_sign_request,
            retries: self.retries,
        }
    }

    /// The settings of `demarc run`, which has no such options: the environment's.
    pub fn from_env() -> Self {
        Self {
            endpoint: std::env::var("DEMARC_STORE_ENDPOINT").ok(),
            no_sign_request: false,
            retries: 10,
        }
    }
}

/// A lake's place, and the runtime its bucket is reached on (kept as long as the lake).
#[derive(Debug)]
pub struct LakePlace {
    pub place: Place,
    _runtime: Option<tokio::runtime::Runtime>,
}

/// The lake at `text`: a folder, or a bucket and prefix.
pub fn lake(text: &str, store: &StoreArgs) -> Result<LakePlace> {
    if !remote::is_url(text) {
        return Ok(LakePlace {
            place: Place::Folder(PathBuf::from(text)),
            _runtime: None,
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("demarc-lake-store")
        .enable_all()
        .build()
        .context("cannot start the object storage runtime")?;
    let (bucket, prefix) = runtime.block_on(remote::open(text, &store.options()))?;
    let place = Place::Bucket(Arc::new(Bucket {
        store_url: bucket.url.clone(),
        store: Arc::clone(&bucket.store),
        prefix,
        runtime: runtime.handle().clone(),
    }));
    Ok(LakePlace {
        place,
        _runtime: Some(runtime),
    })
}
