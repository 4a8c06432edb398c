//! Keeps the rules' allow tables current while a job runs: changed files apply to the
//! next batch, rows that expire stop suppressing, and both are logged and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use demarc_detect::AllowLists;

use crate::Metrics;
use crate::engine::Engine;

/// A thread that refreshes the allow tables every so often; dropping it stops it.
#[derive(Debug)]
pub struct AllowWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AllowWatch {
    /// Looks at `engine`'s allow tables every `every` until the engine stops or this is
    /// dropped.
    pub fn start(engine: &Engine, every: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let allow = engine.rules.allow().clone();
        let metrics = Arc::clone(&engine.metrics);
        let shared = Arc::clone(&engine.shared);
        let own = Arc::clone(&stop);
        count(&allow, &metrics);
        let thread = std::thread::Builder::new()
            .name("allow-watch".to_owned())
            .spawn(move || {
                let mut last = Instant::now();
                while !own.load(Ordering::Relaxed) && !shared.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100).min(every));
                    if last.elapsed() >= every {
                        last = Instant::now();
                        refresh(&allow, &metrics);
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for AllowWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The thread only sleeps and reads small files; it ends within 100 ms.
            let _ = thread.join();
        }
    }
}

/// One look at the tables: logs what changed and updates the metrics.
pub fn refresh(allow: &AllowLists, metrics: &Metrics) {
    let refresh = allow.refresh();
    for file in &refresh.reloaded {
        tracing::info!(file = %file.display(), "allow table re-read; it applies from the next batch");
    }
    for problem in &refresh.failed {
        metrics.allow_reload_failures.inc();
        tracing::error!(%problem, "allow table not re-read; its previous rows still apply");
    }
    for row in &refresh.expired {
        tracing::warn!(%row, "allow-list row expired");
    }
    count(allow, metrics);
}

fn count(allow: &AllowLists, metrics: &Metrics) {
    for (table, active, expired) in allow.counts() {
        for (state, n) in [("active", active), ("expired", expired)] {
            metrics
                .allow_rows
                .get_or_create(&vec![("table", table.clone()), ("state", state.to_owned())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}
