//! Golden files: `testdata/<provider>/<case>.<ext>` is normalized and compared with
//! `<case>.expected.jsonl` — one line per row (the `raw` column left out, it is checked
//! separately), then one line per reject, then the counters.
//!
//! On a mismatch the test prints a unified diff. `UPDATE_GOLDEN=1 cargo test -p
//! demarc-normalize --test golden` rewrites the expected files: review the diff before
//! committing them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::json::writer::LineDelimited;
use demarc_model::Origin;
use demarc_normalize::{Options, normalize_bytes};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn cases() -> Vec<(String, PathBuf)> {
    let mut cases = Vec::new();
    for provider in ["aws", "gcp"] {
        let dir = testdata().join(provider);
        for entry in std::fs::read_dir(&dir).expect("testdata folder exists") {
            let path = entry.expect("testdata entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".expected.jsonl") {
                continue;
            }
            cases.push((format!("{provider}/{name}"), path));
        }
    }
    cases.sort();
    cases
}

fn expected_path(input: &Path) -> PathBuf {
    let name = input
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let case = name.split('.').next().unwrap_or(name);
    input.with_file_name(format!("{case}.expected.jsonl"))
}

/// Everything a case produces, as reviewable text.
fn render(case: &str, input: &[u8]) -> String {
    let origin = Origin::file(format!("testdata/{case}"));
    let options = Options {
        keep_raw: false,
        ..Options::default()
    };
    let out = normalize_bytes(input, &origin, options);
    let mut text = String::new();
    if let Some(batch) = &out.batch {
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(Vec::new());
        writer.write(batch).expect("rows serialize");
        writer.finish().expect("rows serialize");
        let rows = String::from_utf8(writer.into_inner()).expect("JSON is UTF-8");
        for row in rows.lines() {
            // Drop the always-null `raw` column from the golden text.
            let mut value: serde_json::Value = serde_json::from_str(row).expect("row is JSON");
            value
                .as_object_mut()
                .expect("row is an object")
                .remove("raw");
            writeln!(text, "{value}").expect("write to string");
        }
    }
    for reject in &out.rejects {
        let value = serde_json::json!({ "reject": reject });
        writeln!(text, "{value}").expect("write to string");
    }
    let stats = serde_json::json!({ "stats": out.stats });
    writeln!(text, "{stats}").expect("write to string");
    text
}

#[test]
fn normalized_output_matches_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 15,
        "expected the golden cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for (case, path) in &cases {
        let input = std::fs::read(path).expect("case is readable");
        let actual = render(case, &input);
        let expected_path = expected_path(path);
        if update {
            std::fs::write(&expected_path, &actual).expect("golden file is writable");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "no golden file {} for {case}: run with UPDATE_GOLDEN=1 and review it",
                expected_path.display()
            )
        });
        if expected != actual {
            let diff = similar::TextDiff::from_lines(&expected, &actual)
                .unified_diff()
                .header("expected", "actual")
                .to_string();
            failures.push(format!("{case}:\n{diff}"));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatch:\n{}",
        failures.join("\n")
    );
}

#[test]
fn raw_column_holds_each_event_exactly() {
    let case = "aws/records_file.json";
    let input = std::fs::read(testdata().join(case)).expect("case is readable");
    let out = normalize_bytes(&input, &Origin::file(case), Options::default());
    let batch = out.batch.expect("rows");
    let raw = batch
        .column_by_name("raw")
        .expect("raw column")
        .as_string::<i32>();
    let document: serde_json::Value = serde_json::from_slice(&input).expect("case is JSON");
    let records = document["Records"].as_array().expect("Records array");
    assert_eq!(raw.len(), records.len());
    for (i, record) in records.iter().enumerate() {
        let parsed: serde_json::Value = serde_json::from_str(raw.value(i)).expect("raw is JSON");
        assert_eq!(&parsed, record, "row {i}");
    }
}
