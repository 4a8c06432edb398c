//! The routing benchmark: (a) alerts per second through 3 routes and 4 sinks (two
//! webhooks and a Slack sink to a local HTTP server, a file), from the spool to every
//! sink's confirmation; (b) what routing adds to a batch's latency in the pipeline at
//! a steady rate, side by side with routing off.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use demarc_detect::RuleSet;
use demarc_model::{Alert, Origin, Severity};
use demarc_normalize::Options;
use demarc_pipeline::dead_letter::Discard;
use demarc_pipeline::kafka::Offsets;
use demarc_pipeline::metrics::Metrics;
use demarc_pipeline::{Acknowledge, Batch, Engine, Outputs, Payload, Record, Settings};
use demarc_sink::AlertSink;
use demarc_sink::deliver::Backoff;
use demarc_sink::http::{HttpKind, HttpSink, HttpTarget};
use demarc_sink::local::FileSink;
use demarc_sink::notice::BodyFormat;
use demarc_sink::route::{Matcher, Route, Routes};
use demarc_sink::routing::{Routing, RoutingConfig, SinkSpec, Suppression};

use crate::stream::percentile;

// The alerts of the sink crate's tests.
#[path = "../../sink/tests/common/mod.rs"]
mod fixtures;

#[derive(Debug, Args)]
pub struct RoutingArgs {
    /// Alerts for the throughput part
    #[arg(long, default_value_t = 20_000)]
    alerts: usize,
    /// Events per second for the latency part
    #[arg(long, default_value_t = 5_000)]
    rate: usize,
    /// Seconds at that rate, for each of routing off and on
    #[arg(long, default_value_t = 20)]
    seconds: usize,
    /// Write the figures as JSON here
    #[arg(long)]
    report: Option<std::path::PathBuf>,
}

#[derive(Debug, Default, serde::Serialize)]
struct Report {
    alerts: usize,
    notices: usize,
    alerts_per_second: f64,
    notices_per_second: f64,
    route_commit_p50_ms: f64,
    route_commit_p99_ms: f64,
    rate: usize,
    batches: usize,
    alerts_at_rate: u64,
    processing_off_p50_ms: i64,
    processing_off_p99_ms: i64,
    processing_on_p50_ms: i64,
    processing_on_p99_ms: i64,
}

/// A local HTTP/1.1 server answering 204 to everything, a thread per connection.
fn serve() -> Result<(String, Arc<AtomicU64>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let count = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || answer(stream, &counter));
        }
    });
    Ok((format!("http://{addr}/hook"), count))
}

fn answer(stream: TcpStream, count: &AtomicU64) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        count.fetch_add(1, Ordering::Relaxed);
        if reader
            .get_mut()
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// 3 routes (each continuing) over 4 sinks: every alert goes to all four.
fn routing(dir: &Path, url: &str, metrics: &Metrics) -> Result<Routing> {
    let webhook = |name: &str, kind: HttpKind| SinkSpec {
        name: name.into(),
        transport: Box::new(HttpSink::new(
            HttpTarget {
                url: url.to_owned(),
                timeout: Duration::from_secs(10),
                headers: Vec::new(),
            },
            kind,
        )),
        keeps_snoozed: false,
        backoff: Backoff::default(),
    };
    let sinks = vec![
        webhook(
            "soc",
            HttpKind::Webhook {
                format: BodyFormat::Demarc,
                secret: Some(b"bench-secret".to_vec()),
            },
        ),
        webhook(
            "siem",
            HttpKind::Webhook {
                format: BodyFormat::Ocsf,
                secret: None,
            },
        ),
        webhook("slack", HttpKind::Slack { link: None }),
        SinkSpec {
            name: "archive".into(),
            transport: Box::new(FileSink::new(
                &dir.join("routed.jsonl"),
                BodyFormat::Demarc,
                64 << 20,
                2,
            )),
            keeps_snoozed: true,
            backoff: Backoff::default(),
        },
    ];
    let route = |name: &str, matcher: Matcher, sinks: Vec<usize>| Route {
        name: name.into(),
        matcher,
        sinks,
        continue_matching: true,
    };
    let routes = Routes {
        routes: vec![
            route(
                "high",
                Matcher {
                    min_severity: Some(Severity::Low),
                    ..Matcher::default()
                },
                vec![0],
            ),
            route(
                "aws",
                Matcher {
                    providers: vec!["aws".into(), "gcp".into()],
                    ..Matcher::default()
                },
                vec![1, 2],
            ),
            route(
                "everything",
                Matcher {
                    rules: vec!["*".into()],
                    ..Matcher::default()
                },
                vec![3],
            ),
        ],
        default: Vec::new(),
    };
    Ok(Routing::start(
        RoutingConfig {
            store: dir.join("alerts.db"),
            capacity: 10_000_000,
            routes,
            suppression: Suppression::default(),
            sinks,
            grace: Duration::from_secs(5),
        },
        metrics.routing.clone(),
    )?)
}

fn percentile_f(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

struct NoSource;

impl Acknowledge<Offsets> for NoSource {
    fn acknowledge(&mut self, _: &Offsets, _: bool) -> demarc_pipeline::Result<()> {
        Ok(())
    }
}

/// Events at `rate` per second for `seconds`, in a batch every 25 ms, through the
/// engine with every rule; the receive-to-alert times (ms) and the alert count.
fn at_rate(
    rules: &Arc<RuleSet>,
    routing: Option<Routing>,
    rate: usize,
    seconds: usize,
    dir: &Path,
) -> Result<(Vec<i64>, u64, usize)> {
    let per_batch = (rate / 40).max(1);
    let events = demarc_tests::produce::events(rate * seconds, 0.02, 29);
    let engine = Engine::new(
        Arc::clone(rules),
        Settings {
            keep_latencies: true,
            ..Settings::new(2, Options::default())
        },
    );
    let outputs = Outputs {
        alerts: AlertSink::open(
            None,
            Some((
                &dir.join(format!("alerts-{}.jsonl", routing.is_some())),
                demarc_sink::FileMode::Append,
            )),
            100_000,
        )?,
        routing,
        lake: None,
        dead_letters: Box::new(Discard),
        acknowledge: Box::new(NoSource),
    };
    let (mut dispatcher, stages) = engine.start(outputs)?;
    let topic: Arc<str> = "bench".into();
    let started = Instant::now();
    let mut batches = 0;
    for (b, chunk) in events.chunks(per_batch).enumerate() {
        let due = started + Duration::from_millis(25 * b as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let mut batch = Batch::default();
        for (i, (key, value)) in chunk.iter().enumerate() {
            batch.push(Record {
                origin: Origin::kafka(Arc::clone(&topic), 0, (b * per_batch + i) as i64),
                key: Some(key.clone().into_bytes()),
                payload: Payload::Bytes(value.clone().into_bytes()),
                produced_ms: None,
                received: Some(Instant::now()),
            });
        }
        if !dispatcher.send(batch) {
            break;
        }
        batches += 1;
    }
    drop(dispatcher);
    let summary = stages.join()?;
    let mut latencies = summary.processing_ms.clone();
    latencies.sort_unstable();
    Ok((latencies, summary.alerts(), batches))
}

pub fn run(args: &RoutingArgs) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (url, received) = serve()?;
    let mut report = Report {
        alerts: args.alerts,
        rate: args.rate,
        ..Report::default()
    };

    // (a) Throughput: alerts routed in runs of 100 (one spool commit each), until every
    // sink confirmed every notice.
    let metrics = Metrics::new();
    let throughput_dir = dir.path().join("throughput");
    std::fs::create_dir(&throughput_dir)?;
    let mut routed = routing(&throughput_dir, &url, &metrics)?;
    let alerts: Vec<Alert> = (0..args.alerts)
        .map(|n| fixtures::alert("aws-s3-bucket-policy-public", n, &format!("bucket-{n}")))
        .collect();
    let mut commits = Vec::new();
    let started = Instant::now();
    for chunk in alerts.chunks(100) {
        let refs: Vec<&Alert> = chunk.iter().collect();
        let t = Instant::now();
        routed.route(&refs, &mut || true)?;
        commits.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    while routed.depth() > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = started.elapsed().as_secs_f64();
    routed.finish();
    report.notices = args.alerts * 4;
    anyhow::ensure!(
        received.load(Ordering::Relaxed) as usize == args.alerts * 3,
        "the server got {} requests, not {}",
        received.load(Ordering::Relaxed),
        args.alerts * 3
    );
    report.alerts_per_second = args.alerts as f64 / seconds;
    report.notices_per_second = report.notices as f64 / seconds;
    report.route_commit_p50_ms = percentile_f(&mut commits, 0.5);
    report.route_commit_p99_ms = percentile_f(&mut commits, 0.99);
    eprintln!(
        "(a) {} alerts through 3 routes and 4 sinks in {seconds:.2}s: {:.0} alerts/s, {:.0} \
         notices/s; spool commit of 100 alerts p50 {:.2} ms, p99 {:.2} ms",
        args.alerts,
        report.alerts_per_second,
        report.notices_per_second,
        report.route_commit_p50_ms,
        report.route_commit_p99_ms
    );

    // (b) Latency at a steady rate, routing off then on.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("runtime")?;
    let rules = Arc::new(runtime.block_on(RuleSet::builtin())?);
    let (off, alerts_off, batches) = at_rate(&rules, None, args.rate, args.seconds, dir.path())?;
    let metrics = Metrics::new();
    let latency_dir = dir.path().join("latency");
    std::fs::create_dir(&latency_dir)?;
    let on_routing = routing(&latency_dir, &url, &metrics)?;
    let (on, alerts_on, _) = at_rate(
        &rules,
        Some(on_routing),
        args.rate,
        args.seconds,
        dir.path(),
    )?;
    anyhow::ensure!(
        alerts_off == alerts_on,
        "{alerts_off} alerts off, {alerts_on} on"
    );
    report.batches = batches;
    report.alerts_at_rate = alerts_on;
    report.processing_off_p50_ms = percentile(&off, 0.5);
    report.processing_off_p99_ms = percentile(&off, 0.99);
    report.processing_on_p50_ms = percentile(&on, 0.5);
    report.processing_on_p99_ms = percentile(&on, 0.99);
    eprintln!(
        "(b) {} events/s for {}s ({batches} batches, {alerts_on} alerts), receive-to-alert: \
         routing off p50 {} ms p99 {} ms; on p50 {} ms p99 {} ms; routing adds {} ms at p99",
        args.rate,
        args.seconds,
        report.processing_off_p50_ms,
        report.processing_off_p99_ms,
        report.processing_on_p50_ms,
        report.processing_on_p99_ms,
        report.processing_on_p99_ms - report.processing_off_p99_ms
    );
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}
