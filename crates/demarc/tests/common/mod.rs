//! What the command-line tests share: the repository root and running the binary there.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `demarc ARGS...`, run from the repository root.
#[allow(dead_code)] // Not every test binary runs it this way.
pub fn demarc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_demarc"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("demarc runs")
}

/// A port free now, for a server to bind.
#[allow(dead_code)] // Not every test binary runs a server.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("address")
        .port()
}

/// One HTTP/1.0 GET on 127.0.0.1, with a deadline on the answer: the whole response, or
/// `None` if there was none.
#[allow(dead_code)] // Not every test binary runs a server.
pub fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

/// `demarc backfill` of the bundled samples into `DIR/lake` (alerts in `DIR/alerts.jsonl`);
/// the lake's path.
#[allow(dead_code)] // Only the lake's tests use it.
pub fn sample_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("lake");
    let out = Command::new(env!("CARGO_BIN_EXE_demarc"))
        .arg("backfill")
        .arg(repo().join("testdata/samples"))
        .arg("--alerts")
        .arg(dir.join("alerts.jsonl"))
        .arg("--lake")
        .arg(&lake)
        .output()
        .expect("backfill");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lake
}
