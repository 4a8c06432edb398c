//! A real HTTP/1.1 receiver on loopback whose answers follow a script, and alerts to
//! send it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use demarc_model::{Alert, Category, Origin, Position, Severity, SrmLayer};

/// What the receiver does with request number `n` (from 0).
#[derive(Debug, Clone)]
pub enum Reply {
    Status {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// Reads the request and answers nothing for this long, then closes.
    Hang(Duration),
    /// Closes the listening socket for this long (connections are refused), then
    /// opens it again; the request that was waiting gets no answer.
    Refuse(Duration),
}

pub fn status(status: u16) -> Reply {
    Reply::Status {
        status,
        body: String::new(),
        headers: Vec::new(),
    }
}

/// One request as received, and the status it got (none for a hang).
#[derive(Debug, Clone)]
pub struct Request {
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub answered: Option<u16>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Script = Box<dyn Fn(usize) -> Reply + Send>;

impl Receiver {
    /// A receiver on a free loopback port, answering request `n` with `script(n)`.
    pub fn start(script: impl Fn(usize) -> Reply + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            let script: Script = Box::new(script);
            std::thread::spawn(move || serve(listener, addr, &script, &requests, &stop))
        };
        Self {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }

    /// The distinct `webhook-id`s answered with a 2xx, in first-delivery order.
    pub fn delivered_ids(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.requests()
            .iter()
            .filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s)))
            .filter_map(|r| r.headers.get("webhook-id").cloned())
            .filter(|id| seen.insert(id.clone()))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    mut listener: TcpListener,
    addr: SocketAddr,
    script: &Script,
    requests: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
) {
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut reader = BufReader::new(stream);
        // Keep-alive: requests on this connection until it closes.
        while let Some((headers, body)) = read_request(&mut reader) {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let reply = script(n);
            n += 1;
            let mut record = Request {
                headers,
                body,
                answered: None,
            };
            let answer = match reply {
                Reply::Hang(d) => {
                    requests.lock().expect("lock").push(record);
                    std::thread::sleep(d);
                    break;
                }
                Reply::Refuse(d) => {
                    requests.lock().expect("lock").push(record);
                    drop(reader);
                    drop(listener);
                    std::thread::sleep(d);
                    listener = bind_again(addr);
                    break;
                }
                Reply::Status {
                    status,
                    body,
                    headers,
                } => (status, body, headers),
            };
            record.answered = Some(answer.0);
            requests.lock().expect("lock").push(record);
            let mut text = format!(
                "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
                answer.0,
                answer.1.len()
            );
            for (k, v) in &answer.2 {
                text.push_str(&format!("{k}: {v}\r\n"));
            }
            text.push_str("\r\n");
            text.push_str(&answer.1);
            if reader.get_mut().write_all(text.as_bytes()).is_err() {
                break;
            }
        }
    }
}

/// Binds `addr` again after closing it (a refusal), waiting for the port to be free.
fn bind_again(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr) {
            return l;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot bind {addr} again");
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(BTreeMap<String, String>, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((headers, body))
}

/// Alert number `n` of `rule`, with dedup key `key`.
pub fn alert(rule: &str, n: usize, key: &str) -> Alert {
    Alert {
        alert_id: format!("{n:032x}"),
        rule_id: rule.into(),
        title: "S3 bucket made public".into(),
        category: Category::PublicExposure,
        severity: Severity::High,
        srm_layer: SrmLayer::Data,
        attack: vec!["T1530".into()],
        summary: format!("bucket {key} made public"),
        event_ids: vec![format!("event-{n}")],
        event_time: "2026-11-29T10:00:00Z".into(),
        detected_at: "2026-11-29T10:00:01Z".into(),
        provider: "aws".into(),
        account_id: Some("111122223333".into()),
        region: Some("us-east-1".into()),
        actor: Some("arn:aws:iam::111122223333:user/mallory".into()),
        resource: Some(format!("arn:aws:s3:::{key}")),
        source: vec![Position {
            origin: Origin::kafka("cloudtrail", 0, n as i64),
            line: 1,
            index: 0,
        }],
        dedup: [("resource".to_owned(), Some(format!("arn:aws:s3:::{key}")))]
            .into_iter()
            .collect(),
        dedup_key: format!("{:0>32}", key),
    }
}

/// Waits up to `limit` for `done`, checking every 50 ms.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}
