//! Any byte string given to the normalizer is normalized, skipped or rejected; never a
//! panic, and the counters add up.
//!
//! Run: `cargo +nightly fuzz run normalize` from the repository root (not run in CI).
#![no_main]

use demarc_model::Origin;
use demarc_normalize::{Options, normalize_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = normalize_bytes(data, &Origin::file("fuzz"), Options::default());
    assert_eq!(out.stats.events_out as usize, out.rows());
    assert_eq!(out.stats.rejected_total() as usize, out.rejects.len());
});
