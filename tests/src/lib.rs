//! The end-to-end harness: what the tests under `tests/e2e` and the streaming benchmark
//! need to run demarc's binaries against real services, written once.
//!
//! - [`kafka`]: Apache Kafka 4.x itself (KRaft, one node) on a free loopback port, from
//!   its Maven Central artifacts and the machine's Java, plus topic creation and the
//!   group's committed offsets read from outside the group.
//! - [`demarc`]: the `demarc` binary, `demarc run` members with their own alert file,
//!   log and metrics port, and the reference alerts `demarc backfill` finds.
//! - [`produce`]: generated CloudTrail events and a producer that batches as real ones
//!   do (linger, many records per batch) and keeps the broker's delivery reports.
//! - [`store`]: object storage on loopback (moto's S3 server, fake-gcs-server) and a
//!   proxy in front of it that throttles, refuses and records requests.
//!
//! It depends on the product only through its binaries and the event generator, never
//! on the pipeline's code: the tests must see what a user sees. Errors are returned
//! with what to install or change, and the tests turn them into failures; nothing here
//! skips.

pub mod demarc;
pub mod kafka;
pub mod produce;
pub mod store;

/// Errors of the harness: what failed and what to do about it, in words.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A free TCP port on the loopback interface.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The folder for caches kept between runs, outside any clone: `$DEMARC_CACHE`, or
/// `~/.cache/demarc`.
pub fn cache_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("DEMARC_CACHE") {
        return dir.into();
    }
    let home: std::path::PathBuf =
        std::env::var_os("HOME").map_or_else(std::env::temp_dir, Into::into);
    home.join(".cache/demarc")
}
