//! `demarc alerts`: snoozes written, listed and ended through the binary, on the store
//! a configuration names; mistakes refused with what to write instead.

use std::path::Path;
use std::process::{Command, Output};

fn demarc(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(["alerts"])
        .args(args)
        .arg("--config")
        .arg(config)
        .env("USER", "analyst")
        .output()
        .expect("demarc runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn snoozes_are_written_listed_and_ended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("demarc.toml");
    std::fs::write(
        &config,
        "[kafka]\nbrokers = \"localhost:9092\"\ngroup_id = \"g\"\ntopics = [\"t\"]\n\
         [spool]\npath = \"state.db\"\n\
         [sinks.archive]\ntype = \"file\"\npath = \"routed.jsonl\"\n\
         [default_route]\nsinks = [\"archive\"]\n",
    )
    .expect("config");

    let out = demarc(
        &[
            "snooze",
            "aws-s3-*",
            "--key",
            "resource=arn:aws:s3:::www",
            "--for",
            "8h",
            "--reason",
            "public website",
        ],
        &config,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).starts_with("snooze 1: `aws-s3-*` resource=arn:aws:s3:::www until "));
    assert!(
        dir.path().join("state.db").exists(),
        "the store beside the configuration"
    );

    let out = demarc(&["snoozes"], &config);
    let listed = text(&out);
    assert!(out.status.success(), "{listed}");
    assert!(
        listed.contains("1  aws-s3-* resource=arn:aws:s3:::www  until ")
            && listed.contains("by analyst")
            && listed.contains("public website"),
        "{listed}"
    );

    let out = demarc(&["unsnooze", "1"], &config);
    assert!(out.status.success(), "{}", text(&out));
    let out = demarc(&["unsnooze", "1"], &config);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no snooze 1 is in effect"),
        "{}",
        text(&out)
    );
    assert!(text(&demarc(&["snoozes"], &config)).contains("no snoozes in effect"));
    assert!(text(&demarc(&["snoozes", "--all"], &config)).contains("ended "));

    for (args, expected) in [
        (
            vec!["snooze", "r", "--for", "8", "--reason", "x"],
            "write `30m`, `8h` or `2d`",
        ),
        (
            vec!["snooze", "r", "--reason", "x"],
            "--for DURATION or --until TIME",
        ),
        (
            vec!["snooze", "r", "--for", "1h", "--reason", " "],
            "--reason is empty",
        ),
        (
            vec![
                "snooze", "r", "--for", "1h", "--reason", "x", "--key", "resource",
            ],
            "COLUMN=VALUE",
        ),
        (
            vec![
                "snooze",
                "r",
                "--until",
                "2001-01-01T00:00:00Z",
                "--reason",
                "x",
            ],
            "would end before it starts",
        ),
    ] {
        let out = demarc(&args, &config);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
    let out = demarc(&["spool"], &config);
    assert!(text(&out).contains("the spool is empty"), "{}", text(&out));
}
