//! Every file of the shared corpus of real public audit logs is normalized: no panic,
//! the two invalid files rejected with their position, everything else fully read.
//!
//! The corpus lives beside the repository (`../shared/corpus`); `DEMARC_CORPUS`
//! overrides the path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use demarc_model::Origin;
use demarc_normalize::{LenientReason, Normalizer, Options, RejectReason, SkipReason};

fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("DEMARC_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "the audit-log corpus is missing at {}: check out the shared folder beside the \
         repository, or set DEMARC_CORPUS to its path",
        dir.display()
    );
    dir
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus folder is readable")
        .map(|e| e.expect("corpus entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// The files in the corpus that are not valid JSON (see its README).
const INVALID: [&str; 2] = [
    "SerializerTestFileBadJsonFormat.json",
    "aws.execution.ec2-user-data.json",
];

#[test]
fn every_corpus_file_is_normalized_or_cleanly_rejected() {
    let root = corpus_dir();
    let mut paths = Vec::new();
    files(&root, &mut paths);
    assert!(
        paths.len() > 100,
        "expected the whole corpus, found {} files",
        paths.len()
    );

    let mut normalizer = Normalizer::new(Options::default());
    let mut rows_by_provider: BTreeMap<String, usize> = BTreeMap::new();
    let mut invalid_files = Vec::new();
    for path in &paths {
        let bytes = std::fs::read(path).expect("corpus file is readable");
        let name = path.display().to_string();
        normalizer.push(&bytes, &Origin::file(name.as_str()));
        for reject in normalizer.take_rejects() {
            assert_eq!(&*reject.position.origin.source, name.as_str());
            assert!(!reject.detail.is_empty(), "{reject:?}");
            assert!(!reject.excerpt.is_empty(), "{reject:?}");
            match reject.reason {
                RejectReason::InvalidJson => {
                    assert!(reject.detail.contains("line"), "position in {reject:?}");
                    invalid_files.push(path.file_name().expect("file name").to_owned());
                }
                // One of the parser library's fixtures has a bad time. (Its events
                // without an eventID get a derived id: see below.)
                RejectReason::BadTime | RejectReason::MissingTime => {
                    assert!(
                        name.contains("aws-cloudtrail-processing-library"),
                        "{reject:?}"
                    );
                }
                other => panic!("unexpected reject {other} in {name}: {reject:?}"),
            }
        }
        if let Some(batch) = normalizer.take_batch() {
            let providers = batch.column(1).as_string::<i32>();
            for i in 0..providers.len() {
                *rows_by_provider
                    .entry(providers.value(i).to_owned())
                    .or_default() += 1;
            }
        }
    }

    invalid_files.sort();
    let mut expected: Vec<_> = INVALID.iter().map(std::ffi::OsString::from).collect();
    expected.sort();
    assert_eq!(
        invalid_files, expected,
        "exactly the invalid files are rejected whole"
    );

    let stats = normalizer.stats();
    let aws = rows_by_provider.get("aws").copied().unwrap_or_default();
    let gcp = rows_by_provider.get("gcp").copied().unwrap_or_default();
    eprintln!("corpus: {aws} CloudTrail rows, {gcp} GCP rows, stats {stats:?}");
    assert!(aws >= 3_200, "CloudTrail rows: {aws}");
    assert!(gcp >= 230, "GCP audit rows: {gcp}");
    assert_eq!(stats.skipped.get(&SkipReason::GcpNonAudit), Some(&46));
    assert_eq!(stats.events_out as usize, aws + gcp);
    // The parser library's fixtures have no eventID: each gets a derived one.
    let derived = stats.lenient.get(&LenientReason::DerivedEventId).copied();
    assert!(derived.is_some_and(|n| n > 0), "{stats:?}");
    assert_eq!(stats.events_in, stats.events_out + stats.rejected_total());
}
