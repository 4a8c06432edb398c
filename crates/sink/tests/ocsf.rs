//! The OCSF form of alerts validates against the OCSF schema's Detection Finding class,
//! checked by an independent validator (`tests/ocsf/validate.py`: the schema bundled in
//! the `ocsf-json-schema` package, and `jsonschema`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::alert;
use demarc_sink::notice::{BodyFormat, Kind, Notice, SnoozeMark, ocsf};

/// The Python with the validator's packages: `DEMARC_OCSF_PYTHON` (set by `.ci/run`),
/// else `python3`.
fn python() -> String {
    std::env::var("DEMARC_OCSF_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn validate(version: &str, files: &[PathBuf]) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ocsf/validate.py");
    let output = Command::new(python())
        .arg(script)
        .arg(version)
        .args(files)
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !text.contains("ModuleNotFoundError"),
        "the OCSF validator's packages are missing: `pip install -r tests/ocsf/requirements.txt` \
         (or set DEMARC_OCSF_PYTHON to a Python that has them; .ci/run does):\n{text}"
    );
    (output.status.success(), text)
}

#[test]
fn detection_findings_validate_against_the_ocsf_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut new = Notice::new(alert("aws-s3-public", 1, "b"));
    let mut bare = alert("gcp-logging-sink-deleted", 2, "c");
    bare.account_id = None;
    bare.actor = None;
    bare.resource = None;
    bare.region = None;
    bare.attack.clear();
    let bare = Notice::new(bare);
    let mut update = new.clone();
    update.notice = Kind::Update;
    update.count = Some(50);
    update.last_seen = Some("2026-11-29T10:40:00Z".into());
    new.snoozed = Some(SnoozeMark {
        id: 3,
        reason: "known website bucket".into(),
        by: "alice".into(),
        until: "2026-12-01T00:00:00Z".into(),
    });
    let mut files = Vec::new();
    for (name, notice) in [("new", &new), ("bare", &bare), ("update", &update)] {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, BodyFormat::Ocsf.render(notice)).expect("write");
        files.push(path);
    }
    for version in ["1.3.0", "1.8.0"] {
        let (ok, text) = validate(version, &files);
        assert!(ok, "OCSF {version}:\n{text}");
    }

    // The validator can fail: a finding without its required `finding_info`, and one
    // whose type_uid disagrees with its activity.
    let mut broken = ocsf(&bare);
    broken
        .as_object_mut()
        .expect("object")
        .remove("finding_info");
    let mut mismatched = ocsf(&update);
    mismatched["type_uid"] = 200401.into();
    let bad: Vec<PathBuf> = [("broken", broken), ("mismatched", mismatched)]
        .into_iter()
        .map(|(name, value)| {
            let path = dir.path().join(format!("{name}.json"));
            std::fs::write(&path, value.to_string()).expect("write");
            path
        })
        .collect();
    let (ok, text) = validate("1.3.0", &bad);
    assert!(!ok, "{text}");
    assert!(
        text.contains("'finding_info' is a required property"),
        "{text}"
    );
    assert!(text.contains("type_uid: expected 200402"), "{text}");
}
