//! Prometheus metrics of routing and delivery, registered with the pipeline's.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Counters and gauges of the routes and sinks; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct RouteMetrics {
    pub spooled: Family<Labels, Counter>,
    pub delivered: Family<Labels, Counter>,
    pub retries: Family<Labels, Counter>,
    pub refused: Family<Labels, Counter>,
    pub suppressed: Family<Labels, Counter>,
    pub snoozed: Family<Labels, Counter>,
    pub follow_ups: Counter,
    pub unrouted: Counter,
    pub spool_depth: Family<Labels, Gauge>,
    pub spool_oldest: Family<Labels, Gauge>,
    pub spool_full: Counter,
    pub send_seconds: Histograms,
    pub routing_seconds: Histogram,
}

impl Default for RouteMetrics {
    fn default() -> Self {
        Self {
            spooled: Family::default(),
            delivered: Family::default(),
            retries: Family::default(),
            refused: Family::default(),
            suppressed: Family::default(),
            snoozed: Family::default(),
            follow_ups: Counter::default(),
            unrouted: Counter::default(),
            spool_depth: Family::default(),
            spool_oldest: Family::default(),
            spool_full: Counter::default(),
            send_seconds: Family::new_with_constructor(latency_histogram),
            routing_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        }
    }
}

fn sink(name: &str) -> Labels {
    vec![("sink", name.to_owned())]
}

fn rule(id: &str) -> Labels {
    vec![("rule", id.to_owned())]
}

impl RouteMetrics {
    /// Registers every metric under `registry` (prefixed `demarc_` by the pipeline's).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "alerts_spooled",
            "Alert notices committed to the spool, by sink",
            self.spooled.clone(),
        );
        registry.register(
            "alerts_delivered",
            "Alert notices the sink confirmed, by sink",
            self.delivered.clone(),
        );
        registry.register(
            "alert_delivery_retries",
            "Failed delivery attempts that will be retried (timeouts, connection errors, \
             408, 429, 5xx), by sink",
            self.retries.clone(),
        );
        registry.register(
            "alerts_refused",
            "Alert notices a sink refused for good (other 4xx), sent to the dead-letter \
             output, by sink",
            self.refused.clone(),
        );
        registry.register(
            "alerts_suppressed",
            "Repeats of an alert within its suppression window, counted and not delivered, \
             by rule",
            self.suppressed.clone(),
        );
        registry.register(
            "alerts_snoozed",
            "Alerts under a snooze (delivered to file sinks only, marked), by rule",
            self.snoozed.clone(),
        );
        registry.register(
            "alert_follow_ups",
            "Follow-ups sent when a suppression window with repeats closed",
            self.follow_ups.clone(),
        );
        registry.register(
            "alerts_unrouted",
            "Alerts that matched no route while no default route is set",
            self.unrouted.clone(),
        );
        registry.register(
            "spool_depth",
            "Alert notices waiting in the spool for their sink, by sink",
            self.spool_depth.clone(),
        );
        registry.register(
            "spool_oldest_seconds",
            "Age of the oldest notice waiting in the spool, by sink (0 when empty)",
            self.spool_oldest.clone(),
        );
        registry.register(
            "spool_full_waits",
            "Times the pipeline waited for room in the full spool (consumption paused)",
            self.spool_full.clone(),
        );
        registry.register(
            "alert_send_seconds",
            "Time a sink took to confirm a batch of notices, by sink",
            self.send_seconds.clone(),
        );
        registry.register(
            "routing_seconds",
            "Time to route, suppress and spool (durably) the alerts of a run of batches",
            self.routing_seconds.clone(),
        );
    }

    pub(crate) fn delivered(&self, name: &str, n: u64) {
        self.delivered.get_or_create(&sink(name)).inc_by(n);
    }

    pub(crate) fn retried(&self, name: &str) {
        self.retries.get_or_create(&sink(name)).inc();
    }

    pub(crate) fn refused(&self, name: &str) {
        self.refused.get_or_create(&sink(name)).inc();
    }

    pub(crate) fn spooled(&self, name: &str) {
        self.spooled.get_or_create(&sink(name)).inc();
    }

    pub(crate) fn suppressed(&self, id: &str) {
        self.suppressed.get_or_create(&rule(id)).inc();
    }

    pub(crate) fn snoozed(&self, id: &str) {
        self.snoozed.get_or_create(&rule(id)).inc();
    }

    pub(crate) fn send_seconds(&self, name: &str, seconds: f64) {
        self.send_seconds
            .get_or_create(&sink(name))
            .observe(seconds);
    }

    pub(crate) fn spool(&self, name: &str, depth: u64, oldest_seconds: i64) {
        self.spool_depth
            .get_or_create(&sink(name))
            .set(depth as i64);
        self.spool_oldest
            .get_or_create(&sink(name))
            .set(oldest_seconds);
    }
}
