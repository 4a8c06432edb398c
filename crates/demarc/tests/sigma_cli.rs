//! `demarc sigma import` over SigmaHQ's cloud rules (testdata/sigma/sigmahq): how many
//! compile and plan, that each comes with fixtures the engine agrees with, and that
//! the imported rules flag the same events of the corpus and of those fixtures as an
//! independent Sigma implementation, pySigma with its SQLite backend, run over the
//! events' original JSON.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{demarc, repo};

fn corpus() -> PathBuf {
    std::env::var_os("DEMARC_CORPUS").map_or_else(|| repo().join("../shared/corpus"), PathBuf::from)
}

fn run(args: &[&str]) -> String {
    let out = demarc(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "demarc {args:?}: {stderr}");
    stderr
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Rule id → event ids, from pySigma.
fn pysigma(events: &Path) -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, String>) {
    let python = std::env::var("DEMARC_SIGMA_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(repo().join("tests/sigma/pysigma_matches.py"))
        .arg(repo().join("testdata/sigma/sigmahq"))
        .arg(events)
        .output()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "pySigma is missing: `pip install -r tests/sigma/requirements.txt` (or set \
         DEMARC_SIGMA_PYTHON to a Python that has it; .ci/run does):\n{stderr}"
    );
    assert!(out.status.success(), "pysigma_matches.py failed:\n{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rules = json["rules"]
        .as_object()
        .expect("rules")
        .iter()
        .map(|(id, ids)| {
            let ids = ids
                .as_array()
                .expect("ids")
                .iter()
                .map(|i| i.as_str().expect("id").to_owned())
                .collect();
            (id.clone(), ids)
        })
        .collect();
    let skipped = json["skipped"]
        .as_object()
        .expect("skipped")
        .iter()
        .map(|(id, why)| (id.clone(), why.as_str().unwrap_or_default().to_owned()))
        .collect();
    (rules, skipped)
}

#[test]
fn sigmahq_cloud_rules_import_with_fixtures_and_agree_with_pysigma() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    let fixtures = dir.path().join("fixtures");
    let sigma = repo().join("testdata/sigma/sigmahq");
    let files = ["aws", "gcp"]
        .iter()
        .map(|d| {
            std::fs::read_dir(sigma.join(d))
                .expect("sigma rules")
                .count()
        })
        .sum::<usize>();

    let stderr = run(&[
        "sigma",
        "import",
        utf8(&sigma),
        "--out",
        utf8(&rules),
        "--fixtures",
        utf8(&fixtures),
    ]);
    let summary = stderr
        .lines()
        .find_map(|l| l.strip_prefix("imported "))
        .unwrap_or_else(|| panic!("a summary line:\n{stderr}"));
    // "N of M Sigma rules into DIR (K with fixtures in DIR)"
    let words: Vec<&str> = summary.split_whitespace().collect();
    let number = |text: &str| -> usize {
        text.trim_start_matches('(')
            .parse()
            .unwrap_or_else(|_| panic!("`{text}` in: {summary}"))
    };
    let with_at = words
        .iter()
        .position(|w| w.starts_with('('))
        .unwrap_or_else(|| panic!("no fixture count in: {summary}"));
    let (imported, total, with_fixtures) =
        (number(words[0]), number(words[2]), number(words[with_at]));
    assert_eq!(total, files, "{stderr}");
    assert!(
        imported * 100 >= 95 * total,
        "{imported} of {total} imported:\n{stderr}"
    );
    assert_eq!(
        with_fixtures, imported,
        "every imported rule has fixtures:\n{stderr}"
    );

    // The rules and fixtures as a detection engineer would test them.
    let test = demarc(&[
        "rules",
        "test",
        "--rules",
        utf8(&rules),
        "--fixtures",
        utf8(&fixtures),
    ]);
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("{imported} passed, 0 failed")),
        "{stdout}"
    );

    // The same events through both implementations.
    let events = dir.path().join("events.jsonl");
    run(&[
        "normalize",
        utf8(&corpus()),
        utf8(&fixtures),
        "--out",
        utf8(&events),
    ]);
    let alerts = dir.path().join("alerts.jsonl");
    run(&[
        "backfill",
        utf8(&corpus()),
        utf8(&fixtures),
        "--rules",
        utf8(&rules),
        "--alerts",
        utf8(&alerts),
    ]);
    let mut flagged: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(&alerts).expect("alerts").lines() {
        let alert: serde_json::Value = serde_json::from_str(line).expect("an alert");
        flagged
            .entry(alert["rule_id"].as_str().expect("rule").to_owned())
            .or_default()
            .extend(
                alert["event_ids"]
                    .as_array()
                    .expect("ids")
                    .iter()
                    .map(|i| i.as_str().expect("id").to_owned()),
            );
    }
    let (independent, skipped) = pysigma(&events);
    assert!(
        independent.len() * 100 >= 95 * imported,
        "pySigma compared only {} rules; it skipped {skipped:#?}",
        independent.len()
    );
    let mut differ = Vec::new();
    let mut on_corpus = 0;
    for (rule, theirs) in &independent {
        let ours = flagged.get(rule).cloned().unwrap_or_default();
        if ours != *theirs {
            differ.push(format!(
                "{rule}: only demarc {:?}, only pySigma {:?}",
                ours.difference(theirs).collect::<Vec<_>>(),
                theirs.difference(&ours).collect::<Vec<_>>()
            ));
        }
        if theirs.iter().any(|id| !id.starts_with("sigma-")) {
            on_corpus += 1;
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // Not only the generated fixtures: real events of the corpus are flagged alike.
    assert!(on_corpus >= 10, "only {on_corpus} rules flag corpus events");
}
