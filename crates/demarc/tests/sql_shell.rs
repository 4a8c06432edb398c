//! The `demarc sql` shell used as a person would, in a terminal (tmux): multi-line
//! statements, `\d`, `\timing`, Ctrl-C cancelling a running query but not the shell,
//! history kept across sessions.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(dir: &Path, lake: &Path) -> Self {
        let session = format!("demarc-sql-{}", std::process::id());
        let command = format!(
            "DEMARC_HISTORY='{}' '{}' sql --lake '{}'",
            dir.join("history").display(),
            env!("CARGO_BIN_EXE_demarc"),
            lake.display()
        );
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "200", "-y", "60"])
            .arg(command)
            .status()
            .expect("tmux runs (apt-get install tmux)");
        assert!(status.success());
        let tmux = Self { session };
        tmux.wait_for("demarc>");
        tmux
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn line(&self, text: &str) {
        // tmux reads a `;` ending an argument as the end of its own command.
        let text = match text.strip_suffix(';') {
            Some(start) => format!("{start}\\;"),
            None => text.to_owned(),
        };
        self.keys(&["-l", &text]);
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-S", "-500", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen holds `text` `times` times in all.
    fn wait_for_n(&self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= times {
                return screen;
            }
            if Instant::now() > deadline {
                let lines: Vec<&str> = screen.trim_end().lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                panic!("no `{text}` x{times} on the screen, which ends:\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait_for_n(text, 1)
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.session])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn the_shell_runs_statements_cancels_with_ctrl_c_and_keeps_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = common::sample_lake(dir.path());

    let shell = Tmux::start(dir.path(), &lake);
    // A statement over two lines: the continuation prompt, then the table.
    shell.line("SELECT count(*) AS n");
    shell.wait_for("     ->");
    shell.line("FROM events;");
    let screen = shell.wait_for("(1 row)");
    assert!(screen.contains("| 831 |"), "{screen}");

    shell.line("\\d");
    let screen = shell.wait_for("(2 rows)");
    assert!(
        screen.contains("alerts") && screen.contains("events"),
        "{screen}"
    );
    shell.line("\\d events");
    let screen = shell.wait_for("(30 rows)");
    assert!(screen.contains("actor_principal"), "{screen}");

    shell.line("\\timing");
    shell.wait_for("timing is on");
    shell.line("SELECT 1 AS one;");
    shell.wait_for("Time: ");

    // A query that would run for hours; Ctrl-C ends it, not the shell.
    shell.line("SELECT count(*) FROM events a, events b, events c WHERE a.event_id || b.event_id || c.event_id = 'none';");
    std::thread::sleep(Duration::from_millis(1500));
    shell.keys(&["C-c"]);
    shell.wait_for("query cancelled");
    assert!(shell.alive(), "Ctrl-C ended the shell");
    shell.line("SELECT 6 * 7 AS answer;");
    let screen = shell.wait_for("| 42     |");
    // An error is shown, and the shell goes on.
    shell.line("SELECT nosuch FROM events;");
    let screen_after = shell.wait_for("column 'nosuch' not found");
    assert!(screen_after.len() >= screen.len());

    // Ctrl-C while typing clears the statement.
    shell.keys(&["-l", "SELECT 'half"]);
    shell.keys(&["C-c"]);
    shell.line("\\q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while shell.alive() {
        assert!(Instant::now() < deadline, "\\q did not end the shell");
        std::thread::sleep(Duration::from_millis(100));
    }
    let history = std::fs::read_to_string(dir.path().join("history")).expect("history");
    assert!(history.contains("SELECT 6 * 7 AS answer;"), "{history}");
    assert!(!history.contains("'half"), "{history}");

    // The next session finds the history: Up recalls the last statement.
    let again = Tmux::start(dir.path(), &lake);
    again.keys(&["Up"]);
    again.keys(&["Up"]);
    again.keys(&["Enter"]);
    again.wait_for("column 'nosuch' not found");
}
