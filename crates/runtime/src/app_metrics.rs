//! The host's own numbers as a metrics source: what `App` knows (its components' counters,
//! refused connections, Postgres pools) in the exposition `metrics` writes.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::app::App;
use crate::component::ComponentConfig;
use crate::metrics::{
    ComponentMetrics, Exposition, Kind, Source, LATENCY_BOUNDS_MICROS, STATUS_CLASSES,
};

/// The host's own numbers: every component's requests, latencies and limit hits, and the
/// usage of each Postgres pool guests opened.
impl Source for App {
    fn collect(&self, out: &mut Exposition) {
        let mut components = self.component_configs();
        components.sort_by(|a, b| a.id.cmp(&b.id));

        out.family(
            "http_requests_total",
            Kind::Counter,
            "HTTP requests answered for each component, by status class.",
        );
        counters(
            out,
            &components,
            "http_requests_total",
            "status_class",
            &STATUS_CLASSES,
            |m| &m.by_class,
        );

        out.family(
            "http_request_duration_seconds",
            Kind::Histogram,
            "Time from a request reaching the host to its response head, for each component.",
        );
        let bounds: Vec<f64> = LATENCY_BOUNDS_MICROS
            .iter()
            .map(|&micros| micros as f64 / 1e6)
            .collect();
        for c in &components {
            let counts: Vec<u64> = c.metrics.buckets.iter().map(|b| b.load(Relaxed)).collect();
            let sum = c.metrics.sum_micros.load(Relaxed) as f64 / 1e6;
            let labels = [("component", c.id.as_str())];
            out.histogram(
                "http_request_duration_seconds",
                &labels,
                &bounds,
                &counts,
                sum,
            );
        }

        out.family(
            "instance_limit_hits_total",
            Kind::Counter,
            "Instances refused memory beyond their cap, requests stopped at their deadline, and \
             requests turned away at the component's concurrency cap.",
        );
        for c in &components {
            for (limit, count) in [
                ("memory", &c.metrics.memory_limit_hits),
                ("deadline", &c.metrics.deadline_hits),
                ("concurrency", &c.metrics.concurrency_limit_hits),
            ] {
                let labels = [("component", c.id.as_str()), ("limit", limit)];
                out.sample(
                    "instance_limit_hits_total",
                    &labels,
                    count.load(Relaxed) as f64,
                );
            }
        }

        out.family(
            "instance_requests_total",
            Kind::Counter,
            "HTTP requests each component served, by instance: a new one, or one reused \
             (instance reuse is off unless configured).",
        );
        counters(
            out,
            &components,
            "instance_requests_total",
            "instance",
            &["new", "reused"],
            |m| &m.instances,
        );

        out.family(
            "instances_idle",
            Kind::Gauge,
            "Instances of each component kept idle for their next request.",
        );
        for (id, idle) in self.idle_instances() {
            out.sample("instances_idle", &[("component", id.as_str())], idle as f64);
        }

        out.family(
            "redis_messages_total",
            Kind::Counter,
            "Redis trigger messages each component ran, by outcome: handled, or failed (the guest \
             returned an error, trapped or hit its deadline).",
        );
        counters(
            out,
            &components,
            "redis_messages_total",
            "outcome",
            &["handled", "failed"],
            |m| &m.redis_messages,
        );

        out.family(
            "http_connections_refused_total",
            Kind::Counter,
            "Connections answered 503 and closed because the open-connection cap was reached.",
        );
        out.sample(
            "http_connections_refused_total",
            &[],
            self.refused_connections() as f64,
        );

        let pools = self.postgres.usage();
        if !pools.is_empty() {
            out.family(
                "postgres_pool_connections",
                Kind::Gauge,
                "Connections of each Postgres pool (host:port/database): in use, idle, and the maximum.",
            );
            for pool in &pools {
                for (state, value) in [
                    ("in_use", pool.in_use),
                    ("idle", pool.idle),
                    ("max", pool.max),
                ] {
                    let labels = [("pool", pool.label.as_str()), ("state", state)];
                    out.sample("postgres_pool_connections", &labels, value as f64);
                }
            }
        }
    }
}

/// One sample per component and value of `label`, from the counters `pick` gives, in the order
/// of `values`.
fn counters(
    out: &mut Exposition,
    components: &[Arc<ComponentConfig>],
    name: &str,
    label: &str,
    values: &[&str],
    pick: impl Fn(&ComponentMetrics) -> &[AtomicU64],
) {
    for c in components {
        for (value, count) in values.iter().zip(pick(&c.metrics)) {
            let labels = [("component", c.id.as_str()), (label, value)];
            out.sample(name, &labels, count.load(Relaxed) as f64);
        }
    }
}
