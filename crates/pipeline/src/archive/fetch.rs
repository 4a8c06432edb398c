//! Objects fetched ahead of the archive source, several at once, and handed to it in
//! input order; large objects are read as a stream instead, when the source comes to
//! them.

use std::io::Read;
use std::path::PathBuf;

use bytes::{Buf, Bytes};
use demarc_model::error_chain;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{BoxStream, StreamExt};
use object_store::ObjectStoreExt;
use tokio::runtime::Handle;

use super::{ArchiveSettings, Input, Object};

/// An input as the source takes it.
pub(super) enum Item {
    File(PathBuf),
    /// A small object, fetched whole (or why it could not be).
    Whole(Object, Result<Bytes, String>),
    /// A large object, to be read as a stream.
    Large(Object),
}

/// The inputs in order, the next objects already being fetched.
pub(super) struct Ahead {
    items: BoxStream<'static, Item>,
    handle: Option<Handle>,
    /// Objects larger than this are not fetched whole.
    max_whole: u64,
}

impl Ahead {
    pub(super) fn new(
        inputs: Vec<Input>,
        handle: Option<Handle>,
        settings: &ArchiveSettings,
        is_large: fn(&Object, &ArchiveSettings) -> bool,
    ) -> Self {
        let spawner = handle.clone();
        let concurrency = settings.fetch_ahead.max(1);
        let settings = settings.clone();
        let items = futures::stream::iter(inputs)
            .map(move |input| -> BoxFuture<'static, Item> {
                match input {
                    Input::File(path) => futures::future::ready(Item::File(path)).boxed(),
                    Input::Object(object) if is_large(&object, &settings) => {
                        futures::future::ready(Item::Large(object)).boxed()
                    }
                    // Spawned now, so that the fetch runs while the source works on
                    // the inputs before it.
                    Input::Object(object) => match &spawner {
                        Some(handle) => {
                            let task = handle.spawn(fetch(object.clone()));
                            async move {
                                let fetched = task
                                    .await
                                    .unwrap_or_else(|e| Err(format!("the fetch stopped: {e}")));
                                Item::Whole(object, fetched)
                            }
                            .boxed()
                        }
                        None => futures::future::ready(Item::Whole(object, Err(NO_RUNTIME.into())))
                            .boxed(),
                    },
                }
            })
            .buffered(concurrency)
            .boxed();
        Self {
            items,
            handle,
            max_whole: demarc_normalize::Options::default().max_input_bytes as u64,
        }
    }

    /// The next input, waiting for its fetch if need be.
    pub(super) fn next(&mut self) -> Option<Item> {
        futures::executor::block_on(self.items.next())
    }

    /// A reader of a large object, fetched as it is read.
    pub(super) fn reader(&self, object: Object) -> Box<dyn Read> {
        Box::new(ObjectRead {
            handle: self.handle.clone(),
            object,
            chunks: None,
            current: Bytes::new(),
        })
    }

    /// A whole object, fetched now.
    pub(super) fn fetch_now(&self, object: &Object) -> Result<Bytes, String> {
        if object.size > self.max_whole {
            return Err(format!(
                "an object of {} bytes that is not NDJSON is over the {}-byte input limit",
                object.size, self.max_whole
            ));
        }
        match &self.handle {
            Some(handle) => handle.block_on(fetch(object.clone())),
            None => Err(NO_RUNTIME.into()),
        }
    }
}

const NO_RUNTIME: &str = "object storage was not opened (a bug)";

/// An object's bytes, or why they could not be had (after the client's retries).
async fn fetch(object: Object) -> Result<Bytes, String> {
    let got = object.bucket.store.get(&object.location).await;
    match got {
        Ok(got) => got.bytes().await.map_err(|e| error_chain(&e)),
        Err(e) => Err(error_chain(&e)),
    }
}

/// Reads an object as its body arrives.
struct ObjectRead {
    handle: Option<Handle>,
    object: Object,
    chunks: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    current: Bytes,
}

impl Read for ObjectRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(handle) = &self.handle else {
            return Err(std::io::Error::other(NO_RUNTIME));
        };
        while self.current.is_empty() {
            let chunks = match &mut self.chunks {
                Some(chunks) => chunks,
                None => {
                    let got = handle
                        .block_on(self.object.bucket.store.get(&self.object.location))
                        .map_err(|e| std::io::Error::other(error_chain(&e)))?;
                    self.chunks.insert(got.into_stream())
                }
            };
            match handle.block_on(chunks.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(error_chain(&e))),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}
