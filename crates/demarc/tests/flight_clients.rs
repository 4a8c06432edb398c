//! `demarc serve --flight-sql` driven by the clients people use: Python's ADBC Flight SQL
//! driver (PyPI) and the Arrow Flight SQL JDBC driver (Maven Central, what DBeaver uses),
//! over a lake `demarc backfill` wrote from the bundled samples.
//!
//! `.ci/run` installs both: `DEMARC_FLIGHT_PYTHON` is a Python with
//! `tests/flight/requirements.txt`, `DEMARC_FLIGHT_JDBC_JAR` the driver's jar.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const TOKEN: &str = "clients-token-0123456789abcdef";
use common::repo;

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lake from the samples, served on a free port.
fn serve(dir: &Path) -> Server {
    let lake = common::sample_lake(dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(["serve", "--flight-sql", "127.0.0.1:0", "--lake"])
        .arg(&lake)
        .env("DEMARC_FLIGHT_TOKEN", TOKEN)
        .stderr(Stdio::piped())
        .spawn()
        .expect("demarc serve");
    let mut line = String::new();
    BufReader::new(child.stderr.take().expect("stderr"))
        .read_line(&mut line)
        .expect("first line");
    let port = line
        .split("grpc://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in `{line}`"));
    Server { child, port }
}

/// `demarc sql`'s answer, as the reference for what the clients must see.
fn sql(dir: &Path, query: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(["sql", "--format", "csv", "--lake"])
        .arg(dir.join("lake"))
        .arg(query)
        .output()
        .expect("demarc sql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn python_adbc_queries_lists_prepares_and_is_refused_without_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path());
    let python = std::env::var("DEMARC_FLIGHT_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(repo().join("tests/flight/adbc_check.py"))
        .arg(format!("grpc://127.0.0.1:{}", server.port))
        .arg(TOKEN)
        .output()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the ADBC driver is missing: `pip install -r tests/flight/requirements.txt` (or set \
         DEMARC_FLIGHT_PYTHON to a Python that has it; .ci/run does):\n{stderr}"
    );
    assert!(out.status.success(), "{stderr}");
    let seen: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the script prints JSON");

    assert_eq!(seen["count"], 831);
    let stop_logging = sql(
        dir.path(),
        "SELECT count(*) FROM events WHERE provider = 'aws' AND operation = 'StopLogging'",
    );
    assert_eq!(seen["prepared"].to_string(), stop_logging);
    let latest = sql(dir.path(), "SELECT CAST(max(time) AS VARCHAR) FROM events");
    let max_time = seen["max_time"].as_str().expect("max_time");
    assert_eq!(&max_time[..19], &latest[..19], "{max_time} vs {latest}");
    assert_eq!(
        seen["objects"],
        serde_json::json!(["demarc.lake.alerts", "demarc.lake.events"])
    );
    let columns: Vec<&str> = seen["events_columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for wanted in ["time", "actor_principal", "provider", "date", "hour"] {
        assert!(columns.contains(&wanted), "{columns:?}");
    }
    for case in ["no_token", "bad_token"] {
        let failure = &seen[case];
        assert_eq!(failure[0], "ProgrammingError", "{case}: {failure}");
        assert!(
            failure[1]
                .as_str()
                .is_some_and(|m| m.contains("UNAUTHENTICATED")),
            "{case}: {failure}"
        );
    }
    assert!(
        seen["drop"][1]
            .as_str()
            .is_some_and(|m| m.contains("DDL not supported")),
        "{}",
        seen["drop"]
    );
    assert!(
        seen["copy"][1]
            .as_str()
            .is_some_and(|m| m.contains("DML not supported")),
        "{}",
        seen["copy"]
    );
}

fn jdbc_jar() -> PathBuf {
    std::env::var_os("DEMARC_FLIGHT_JDBC_JAR").map_or_else(
        || {
            let home = std::env::var_os("HOME").expect("HOME");
            Path::new(&home).join(
                ".m2/repository/org/apache/arrow/flight-sql-jdbc-driver/18.3.0/flight-sql-jdbc-driver-18.3.0.jar",
            )
        },
        PathBuf::from,
    )
}

#[test]
fn the_jdbc_driver_lists_the_tables_and_runs_queries() {
    let jar = jdbc_jar();
    assert!(
        jar.exists(),
        "the Flight SQL JDBC driver is missing at {}: `mvn dependency:get \
         -Dartifact=org.apache.arrow:flight-sql-jdbc-driver:18.3.0` (.ci/run does)",
        jar.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path());
    let out = Command::new("java")
        .arg("--add-opens=java.base/java.nio=ALL-UNNAMED")
        .arg("-cp")
        .arg(&jar)
        .arg(repo().join("tests/flight/JdbcCheck.java"))
        .args(["127.0.0.1", &server.port.to_string(), TOKEN])
        .output()
        .expect("java runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |prefix: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{stdout}"))
            .to_owned()
    };
    assert_eq!(
        line("tables "),
        "demarc.lake.alerts:TABLE,demarc.lake.events:TABLE"
    );
    assert_eq!(
        line("columns "),
        "actor_principal,actor_type,actor_invoked_by"
    );
    assert_eq!(line("read-only "), "true");
    for row in sql(
        dir.path(),
        "SELECT provider, count(*) FROM events GROUP BY provider ORDER BY provider",
    )
    .lines()
    {
        let expected = format!("count {}", row.replace(',', " "));
        assert!(
            stdout.lines().any(|l| l == expected),
            "no `{expected}` in:\n{stdout}"
        );
    }
    let ids = sql(
        dir.path(),
        "SELECT event_id FROM events WHERE operation = 'StopLogging' ORDER BY time, event_id",
    );
    assert_eq!(line("prepared "), ids.replace('\n', ","));
    assert!(
        line("drop refused ").contains("DDL not supported"),
        "{stdout}"
    );
    assert_eq!(line("token alerts "), "38");
    assert!(stdout.contains("wrong password refused"), "{stdout}");
}
