//! Object storage on loopback: an S3-compatible server (moto's server mode, from PyPI),
//! a GCS emulator (fake-gcs-server, from its Go module), and a proxy in front of
//! either that records the requests and answers some of them as a throttled or
//! refusing store does.
//!
//! `.ci/run` installs both servers: `DEMARC_MOTO_SERVER` is the `moto_server` program,
//! `DEMARC_FAKE_GCS` the `fake-gcs-server` program.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Result, cache_dir, free_port};

/// The credentials the test servers take (moto accepts any).
pub const CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
];

/// The rows of `demarc sql --format csv QUERY` (header left out) over the lake at `lake`,
/// a folder or a bucket reached with the options `store` (`--endpoint …`) and
/// [`CREDENTIALS`].
pub fn sql_rows(lake: &str, store: &[&str], query: &str) -> Result<Vec<String>> {
    let out = Command::new(crate::demarc::binary()?)
        .args(["sql", "--format", "csv", "--lake", lake])
        .args(store)
        .arg(query)
        .envs(CREDENTIALS)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "demarc sql `{query}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect())
}

/// A storage server on loopback, stopped when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Its endpoint URL (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(var: &str, fallback: PathBuf, install: &str) -> Result<PathBuf> {
    let path = std::env::var_os(var).map_or(fallback, PathBuf::from);
    if !path.exists() {
        return Err(format!(
            "`{}` is missing: {install} (or set {var}; .ci/run does)",
            path.display()
        )
        .into());
    }
    Ok(path)
}

fn start(mut command: Command, what: &str) -> Result<Server> {
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let log = tempfile::NamedTempFile::new()?;
    let child = command
        .args(args_with_port(what, port))
        .stdout(Stdio::null())
        .stderr(log.reopen()?)
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let server = Server { child, addr };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            let mut text = String::new();
            let _ = log.reopen()?.read_to_string(&mut text);
            return Err(format!("{what} did not listen on {addr} within 60 s:\n{text}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(server)
}

fn args_with_port(what: &str, port: u16) -> Vec<String> {
    let port = port.to_string();
    if what == "moto_server" {
        vec!["-H".into(), "127.0.0.1".into(), "-p".into(), port]
    } else {
        [
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-backend",
            "memory",
            "-log-level",
            "error",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([
            "-port".into(),
            port.clone(),
            "-public-host".into(),
            format!("127.0.0.1:{port}"),
        ])
        .collect()
    }
}

/// moto's S3 server.
pub fn moto() -> Result<Server> {
    let path = program(
        "DEMARC_MOTO_SERVER",
        cache_dir().join("store-venv/bin/moto_server"),
        "`pip install -r tests/store/requirements.txt`",
    )?;
    start(Command::new(path), "moto_server")
}

/// fake-gcs-server, keeping objects in memory.
pub fn fake_gcs() -> Result<Server> {
    let path = program(
        "DEMARC_FAKE_GCS",
        cache_dir().join("go/bin/fake-gcs-server"),
        "`go install github.com/fsouza/fake-gcs-server@v1.56.1`",
    )?;
    start(Command::new(path), "fake-gcs-server")
}

/// One HTTP/1.1 request on its own connection: the status and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in the answer to {method} {target}"))?;
    let body_at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |i| i + 4);
    Ok((status, response[body_at..].to_vec()))
}

fn expect_ok(what: &str, (status, body): (u16, Vec<u8>)) -> Result<()> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("{what}: HTTP {status}: {}", String::from_utf8_lossy(&body)).into())
    }
}

/// The files under `dir`, with their paths relative to it (`/`-separated), sorted.
pub fn files_under(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
                found.push((relative, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Creates `bucket` in moto and puts each `(key, bytes)` in it.
pub fn s3_upload(server: &Server, bucket: &str, objects: &[(String, Vec<u8>)]) -> Result<()> {
    expect_ok(
        "create the bucket",
        http(server.addr, "PUT", &format!("/{bucket}"), &[], b"")?,
    )?;
    for (key, bytes) in objects {
        let put = http(
            server.addr,
            "PUT",
            &format!("/{bucket}/{key}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        )?;
        expect_ok(&format!("put {key}"), put)?;
    }
    Ok(())
}

/// Creates `bucket` in fake-gcs-server and uploads each `(key, bytes)` to it.
pub fn gcs_upload(server: &Server, bucket: &str, objects: &[(String, Vec<u8>)]) -> Result<()> {
    let create = format!("{{\"name\":\"{bucket}\"}}");
    let made = http(
        server.addr,
        "POST",
        "/storage/v1/b",
        &[("Content-Type", "application/json")],
        create.as_bytes(),
    )?;
    expect_ok("create the bucket", made)?;
    for (key, bytes) in objects {
        let name: String = key
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let target = format!("/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}");
        let put = http(
            server.addr,
            "POST",
            &target,
            &[("Content-Type", "application/octet-stream")],
            bytes,
        )?;
        expect_ok(&format!("upload {key}"), put)?;
    }
    Ok(())
}

/// What the proxy does to requests.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Answer every n-th request `503 SlowDown` instead of passing it on (0: never).
    pub slow_down_every: u64,
    /// Answer every GET of a path containing this `403 AccessDenied`.
    pub refuse: Option<String>,
    /// Wait this long before passing a request on (a slow link).
    pub delay: Duration,
}

/// A proxy in front of a store, one request per connection.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    /// Request lines passed on or answered (`GET /bucket?list-type=2&prefix=…`).
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Requests answered 503.
    pub slowed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, faults: Faults) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let slowed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let (log, slow, stopping) = (
            Arc::clone(&requests),
            Arc::clone(&slowed),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
                let (log, slow, faults) = (Arc::clone(&log), Arc::clone(&slow), faults.clone());
                std::thread::spawn(move || {
                    let _ = relay(client, upstream, n, &faults, &log, &slow);
                });
            }
        });
        Ok(Self {
            addr,
            requests,
            slowed,
            stop,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    n: u64,
    faults: &Faults,
    log: &Mutex<Vec<String>>,
    slowed: &AtomicU64,
) -> Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let request_line = request_line.trim_end().to_owned();
    let mut head = format!("{request_line}\r\n");
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    if let Ok(mut log) = log.lock() {
        log.push(request_line.clone());
    }
    let mut client = client;
    let answer = |client: &mut TcpStream, status: &str, code: &str| -> Result<()> {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
        );
        write!(
            client,
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        )?;
        client.shutdown(Shutdown::Both)?;
        Ok(())
    };
    if faults.slow_down_every > 0 && n.is_multiple_of(faults.slow_down_every) {
        slowed.fetch_add(1, Ordering::Relaxed);
        return answer(&mut client, "503 Slow Down", "SlowDown");
    }
    if let Some(refused) = &faults.refuse
        && request_line.starts_with("GET ")
        && request_line.contains(refused.as_str())
    {
        return answer(&mut client, "403 Forbidden", "AccessDenied");
    }
    std::thread::sleep(faults.delay);
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(head.as_bytes())?;
    server.write_all(&body)?;
    std::io::copy(&mut server, &mut client)?;
    client.shutdown(Shutdown::Both)?;
    Ok(())
}
