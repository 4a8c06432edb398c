//! Normalization throughput per core, beside plain `serde_json` parsing of the same bytes.
//!
//! Run: `cargo bench -p demarc-normalize --bench normalize`
//!
//! Each dataset is measured twice: in bytes/s and in events/s. The baseline
//! `serde_json_ignored_any` parses the same bytes into `IgnoredAny` (validate and skip
//! everything): the floor any JSON-reading tool pays. Data comes from the project's
//! deterministic generator (`demarc-synth`).

use std::hint::black_box;
use std::io::Write;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use demarc_model::Origin;
use demarc_normalize::{Normalizer, Options};
use demarc_synth::{CloudTrailGenerator, GcpGenerator};
use serde::de::IgnoredAny;

// The allocator the `demarc` binary runs with, so that the normalizer is measured as
// it runs there (its column buffers are large and short-lived).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Dataset {
    name: &'static str,
    /// Input records as a source hands them over (files, or NDJSON chunks).
    inputs: Vec<Vec<u8>>,
    events: u64,
}

impl Dataset {
    fn bytes(&self) -> u64 {
        self.inputs.iter().map(|i| i.len() as u64).sum()
    }
}

fn datasets() -> Vec<Dataset> {
    let mut cloudtrail = CloudTrailGenerator::new(42);
    // S3 delivery writes files of a few hundred events.
    let records: Vec<Vec<u8>> = (0..100)
        .map(|i| cloudtrail.records_file(100 + i % 5 * 50))
        .collect();
    let records_events = (0..100u64).map(|i| 100 + i % 5 * 50).sum();
    let gzipped = records
        .iter()
        .take(40)
        .map(|file| {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(file).expect("in-memory write");
            encoder.finish().expect("in-memory write")
        })
        .collect();
    let gzipped_events = (0..40u64).map(|i| 100 + i % 5 * 50).sum();
    let mut gcp = GcpGenerator::new(42);
    let ndjson: Vec<Vec<u8>> = (0..20).map(|_| gcp.ndjson(1_000)).collect();
    vec![
        Dataset {
            name: "cloudtrail_records",
            inputs: records,
            events: records_events,
        },
        Dataset {
            name: "cloudtrail_records_gzip",
            inputs: gzipped,
            events: gzipped_events,
        },
        Dataset {
            name: "gcp_ndjson",
            inputs: ndjson,
            events: 20_000,
        },
    ]
}

fn normalize_all(inputs: &[Vec<u8>], options: &Options) -> usize {
    let origin = Origin::file("bench");
    let mut normalizer = Normalizer::new(options.clone());
    let mut rows = 0;
    for input in inputs {
        normalizer.push(input, &origin);
        if normalizer.pending_rows() >= 8_192 {
            rows += normalizer.take_batch().map_or(0, |b| b.num_rows());
        }
    }
    rows + normalizer.take_batch().map_or(0, |b| b.num_rows())
}

fn serde_json_ignored_any(inputs: &[Vec<u8>]) {
    for input in inputs {
        // NDJSON is parsed value by value; a Records file is one value.
        for value in serde_json::Deserializer::from_slice(input).into_iter::<IgnoredAny>() {
            black_box(value.expect("generated JSON is valid"));
        }
    }
}

fn bench(c: &mut Criterion) {
    for dataset in datasets() {
        let is_gzip = dataset.name.ends_with("gzip");
        let bytes = dataset.bytes();
        eprintln!(
            "{}: {} inputs, {} events, {} bytes, {} bytes/event",
            dataset.name,
            dataset.inputs.len(),
            dataset.events,
            bytes,
            bytes / dataset.events
        );
        let with_raw = Options::default();
        let without_raw = Options {
            keep_raw: false,
            ..Options::default()
        };
        assert_eq!(
            normalize_all(&dataset.inputs, &with_raw) as u64,
            dataset.events
        );

        for (unit, throughput) in [
            ("bytes", Throughput::Bytes(bytes)),
            ("events", Throughput::Elements(dataset.events)),
        ] {
            let mut group = c.benchmark_group(format!("{}/{unit}", dataset.name));
            group.throughput(throughput);
            group.sample_size(20);
            if !is_gzip {
                group.bench_function(BenchmarkId::from_parameter("serde_json_ignored_any"), |b| {
                    b.iter(|| serde_json_ignored_any(&dataset.inputs))
                });
            }
            group.bench_function(BenchmarkId::from_parameter("normalize"), |b| {
                b.iter(|| normalize_all(&dataset.inputs, &with_raw))
            });
            group.bench_function(BenchmarkId::from_parameter("normalize_no_raw"), |b| {
                b.iter(|| normalize_all(&dataset.inputs, &without_raw))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
