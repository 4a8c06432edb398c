//! The `demarc` binary as a user runs it: `demarc run` members of a consumer group,
//! and `demarc backfill` as the reference for what they must alert on.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, free_port};

/// The `demarc` binary of this build: `$DEMARC_BIN`, or `demarc` in the target folder
/// of the running test or benchmark (`cargo test --workspace` and `cargo build` put it
/// there).
pub fn binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("DEMARC_BIN") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().ok_or("the test binary has no folder")?;
    if dir.ends_with("deps") {
        dir = dir.parent().ok_or("the deps folder has no parent")?;
    }
    let path = dir.join("demarc");
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|e| {
            format!(
                "`{}` cannot be read ({e}): build it first (`cargo build -p demarc`; `cargo \
                 test --workspace` does) or set DEMARC_BIN",
                path.display()
            )
        })?;
    // `cargo test -p demarc-tests` alone does not rebuild the binary: refuse to test an
    // older one than the sources.
    if let Some((source, changed)) = newest_source()?
        && changed > built
    {
        return Err(format!(
            "`{}` is older than `{}`: rebuild it (`cargo build -p demarc`, or run `cargo test \
             --workspace`)",
            path.display(),
            source.display()
        )
        .into());
    }
    Ok(path)
}

/// The most recently changed source file the binary is built from.
fn newest_source() -> Result<Option<(PathBuf, std::time::SystemTime)>> {
    let root = repo();
    let mut newest: Option<(PathBuf, std::time::SystemTime)> = None;
    let mut stack = vec![
        root.join("crates"),
        root.join("queries"),
        root.join("catalog"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                // Tests, benchmarks and other binaries are not part of it.
                let name = entry.file_name();
                if !matches!(name.to_str(), Some("tests" | "benches" | "bench" | "bin")) {
                    stack.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|e| e == "rs" || e == "sql" || e == "toml")
                // A module's unit tests (`foo/tests.rs`) are not in the binary either.
                && entry.file_name() != "tests.rs"
            {
                let changed = entry.metadata()?.modified()?;
                if newest.as_ref().is_none_or(|(_, t)| changed > *t) {
                    newest = Some((path, changed));
                }
            }
        }
    }
    Ok(newest)
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What a `demarc run` member is told.
#[derive(Debug, Clone)]
pub struct MemberSettings {
    pub brokers: String,
    pub group: String,
    pub topic: String,
    /// `group.instance.id`: static membership, as a pod restarted in place keeps.
    pub instance: Option<String>,
    pub batch_records: usize,
    pub batch_wait_ms: u64,
    pub workers: usize,
    /// More configuration, appended as written (`[sinks]`, `[[routes]]`…).
    pub extra: String,
    /// Environment variables of the process (credentials, a store's endpoint).
    pub env: Vec<(String, String)>,
}

/// One `demarc run` process, restartable, with its own alert file and log in `dir`.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    settings: MemberSettings,
    pub alerts: PathBuf,
    pub log: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    metrics_port: u16,
}

impl Member {
    /// Starts a member named `name`.
    pub fn start(dir: &Path, name: &str, settings: MemberSettings) -> Result<Self> {
        let mut member = Self {
            name: name.to_owned(),
            settings,
            alerts: dir.join(format!("alerts-{name}.jsonl")),
            log: dir.join(format!("demarc-{name}.log")),
            dir: dir.to_owned(),
            child: None,
            metrics_port: 0,
        };
        member.restart()?;
        Ok(member)
    }

    /// Starts the process again (after a kill or a stop), with the same files.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Err(format!("member {} is still running", self.name).into());
        }
        self.metrics_port = free_port()?;
        let s = &self.settings;
        let instance = s.instance.as_ref().map_or_else(String::new, |id| {
            format!("[kafka.properties]\n\"group.instance.id\" = \"{id}\"\n")
        });
        let config = self.dir.join(format!("demarc-{}.toml", self.name));
        std::fs::write(
            &config,
            format!(
                "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{}\"\ntopics = [\"{}\"]\n{instance}\
                 [batch]\nmax_records = {}\nmax_wait_ms = {}\n\
                 [alerts]\nstdout = false\nfile = \"{}\"\n\
                 [metrics]\nlisten = \"127.0.0.1:{}\"\n[normalize]\nworkers = {}\n{}",
                s.brokers,
                s.group,
                s.topic,
                s.batch_records,
                s.batch_wait_ms,
                self.alerts.display(),
                self.metrics_port,
                s.workers,
                s.extra,
            ),
        )?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        writeln!(&log, "==== start")?;
        let child = Command::new(binary()?)
            .args(["run", "--config"])
            .arg(&config)
            .envs(s.env.iter().map(|(k, v)| (k, v)))
            .env("DEMARC_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Messages this process has consumed, from its metrics endpoint; `None` until
    /// the endpoint answers.
    pub fn messages(&self) -> Option<u64> {
        let value = scrape(self.metrics_port, "demarc_messages_total")?;
        Some(value as u64)
    }

    /// Whether the process is alive.
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits up to `limit` for the process to exit on its own: its status, or `None`
    /// if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Err(format!("member {} is not running", self.name).into());
        };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(Some(status));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM (drain, commit, exit), and its exit status; an error if it has not
    /// exited after two minutes (it is then killed).
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().ok_or("not running")?;
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        if !status.success() {
            return Err(format!("kill -TERM failed: {status}").into());
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "member {} did not exit within 2 minutes of SIGTERM; its log:\n{}",
                    self.name,
                    self.log_text()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The alert ids in this member's file.
    pub fn alert_ids(&self) -> BTreeSet<String> {
        alert_ids(&self.alerts)
    }

    /// The member's log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// The ids of the alerts in a JSON-lines alert file. A last line cut short by SIGKILL
/// is not an alert (demarc removes it on restart) and is left out.
pub fn alert_ids(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let alert: serde_json::Value = serde_json::from_str(line).ok()?;
            Some(alert["alert_id"].as_str()?.to_owned())
        })
        .collect()
}

/// An alert `demarc backfill` finds: its rule and the indexes (into the events given)
/// of the events it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub rule: String,
    pub events: Vec<usize>,
}

/// The alerts `demarc backfill` finds in `events` (written to `dir` as NDJSON), by id.
pub fn reference_alerts(events: &[&str], dir: &Path) -> Result<BTreeMap<String, Expected>> {
    let input = dir.join("reference-events.ndjson");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input)?);
    for value in events {
        writeln!(file, "{value}")?;
    }
    file.flush()?;
    drop(file);
    let alerts = dir.join("reference-alerts.jsonl");
    let out = Command::new(binary()?)
        .arg("backfill")
        .arg(&input)
        .arg("--alerts")
        .arg(&alerts)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "demarc backfill failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut expected = BTreeMap::new();
    for line in std::fs::read_to_string(&alerts)?.lines() {
        let alert: serde_json::Value = serde_json::from_str(line)?;
        let id = alert["alert_id"].as_str().ok_or("alert without id")?;
        let rule = alert["rule_id"].as_str().ok_or("alert without rule")?;
        let mut indexes = Vec::new();
        for source in alert["source"].as_array().ok_or("alert without source")? {
            let line = source["line"].as_u64().ok_or("source without line")?;
            indexes.push(line as usize - 1);
        }
        expected.insert(
            id.to_owned(),
            Expected {
                rule: rule.to_owned(),
                events: indexes,
            },
        );
    }
    Ok(expected)
}

/// A metric's value from a `/metrics` endpoint on the loopback interface.
pub fn scrape(port: u16, name: &str) -> Option<f64> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}
