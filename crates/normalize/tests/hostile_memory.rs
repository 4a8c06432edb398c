//! Memory on hostile input, under a counting allocator: what an input claims about
//! itself must not decide how much is allocated for it.
//!
//! One test per binary: the allocator counts the whole process, and its peak is never
//! reset.

use std::io::Write;

use demarc_model::Origin;
use demarc_normalize::{Normalizer, Options, RejectReason};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// The most bytes allocated at once so far, and now.
fn heap() -> (usize, usize) {
    let stats = dhat::HeapStats::get();
    (stats.max_bytes, stats.curr_bytes)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("compress")
}

#[test]
fn a_gzip_trailer_claiming_gigabytes_allocates_what_the_input_really_holds() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut normalizer = Normalizer::new(Options::default());
    let origin = Origin::kafka("t", 0, 0);

    // A 30-odd-byte message whose length trailer claims 4 GiB - 1.
    let mut lying = gzip(b"{\"Records\":[]}");
    let len = lying.len();
    lying[len - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(lying.len() < 40, "{} bytes", lying.len());

    normalizer.push(&lying, &origin);
    // The peak since the start: the normalizer, its buffers, and this input.
    let (peak, _) = heap();
    let rejects = normalizer.take_rejects();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].reason, RejectReason::BadGzip);
    assert!(
        peak < 4 << 20,
        "a {len}-byte input made {peak} bytes be allocated at once"
    );

    // A genuine input still decompresses whole, into what it needs.
    let events: Vec<String> = (0..2000)
        .map(|i| {
            format!(
                "{{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-01-01T00:00:00Z\",\
                 \"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\",\
                 \"awsRegion\":\"us-east-1\",\"eventID\":\"id-{i}\",\
                 \"recipientAccountId\":\"111122223333\"}}"
            )
        })
        .collect();
    let plain = format!("{{\"Records\":[{}]}}", events.join(","));
    let packed = gzip(plain.as_bytes());
    let (_, before) = heap();
    normalizer.push(&packed, &origin);
    let (peak, _) = heap();
    let peak = peak.saturating_sub(before);
    assert!(normalizer.take_rejects().is_empty());
    assert_eq!(normalizer.take_batch().map(|b| b.num_rows()), Some(2000));
    assert!(
        peak < 16 * plain.len(),
        "{peak} bytes at once for {} bytes of JSON",
        plain.len()
    );
}
