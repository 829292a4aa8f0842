//! Prometheus metrics: per-component request counts, latency histograms and instance-limit hits
//! kept in atomics (nothing locks on the request path), gauges read at scrape time, the text
//! exposition format, and a small listener for `GET /metrics`. Names get the embedder's prefix:
//! this module names no application and knows no source but the host's own.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::body::full_body;

/// Upper bounds of the latency buckets in microseconds, 1 ms to 30 s (the default deadline):
/// a pooled query is a few ms, a bcrypt login a few hundred, a simulated payment seconds.
pub(crate) const LATENCY_BOUNDS_MICROS: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

pub(crate) const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One component's request numbers; shared by every version of it across hot swaps.
#[derive(Debug, Default)]
pub struct ComponentMetrics {
    pub(crate) by_class: [AtomicU64; 5],
    /// Observations per bucket, not cumulative, so recording one is a single increment; the
    /// last bucket holds what is above every bound. Cumulated when scraped.
    pub(crate) buckets: [AtomicU64; LATENCY_BOUNDS_MICROS.len() + 1],
    pub(crate) sum_micros: AtomicU64,
    pub(crate) memory_limit_hits: AtomicU64,
    pub(crate) deadline_hits: AtomicU64,
    pub(crate) concurrency_limit_hits: AtomicU64,
    /// Redis trigger messages by outcome: handled (the guest returned Ok), failed (it returned
    /// an error, trapped or ran out of time).
    pub(crate) redis_messages: [AtomicU64; 2],
    /// HTTP requests by the instance that served them: a new one, or one reused.
    pub(crate) instances: [AtomicU64; 2],
}

impl ComponentMetrics {
    /// One answered request: its status and the time to its response head.
    pub fn observe(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    /// An instance was refused memory beyond its cap.
    pub fn memory_limit_hit(&self) {
        self.memory_limit_hits.fetch_add(1, Relaxed);
    }

    /// A request (or message) was stopped at its deadline.
    pub fn deadline_hit(&self) {
        self.deadline_hits.fetch_add(1, Relaxed);
    }

    /// A request was turned away at the component's concurrency cap.
    pub fn concurrency_limit_hit(&self) {
        self.concurrency_limit_hits.fetch_add(1, Relaxed);
    }

    /// An HTTP request went to an instance: `reused` when it had served one before.
    pub fn instance_used(&self, reused: bool) {
        self.instances[usize::from(reused)].fetch_add(1, Relaxed);
    }

    /// One Redis trigger message ran to its end: `handled` when the guest returned Ok.
    pub fn redis_message(&self, handled: bool) {
        self.redis_messages[usize::from(!handled)].fetch_add(1, Relaxed);
    }
}

/// Something with numbers to expose; called on every scrape.
pub trait Source: Send + Sync {
    fn collect(&self, out: &mut Exposition);
}

/// The sources one endpoint exposes, under one name prefix. Complete before serving, so a
/// scrape takes no lock of its own.
pub struct Registry {
    prefix: String,
    sources: Vec<Arc<dyn Source>>,
}

impl Registry {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            sources: Vec::new(),
        }
    }

    pub fn register(&mut self, source: Arc<dyn Source>) {
        self.sources.push(source);
    }

    /// Every source's metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Exposition::new(&self.prefix);
        for source in &self.sources {
            source.collect(&mut out);
        }
        out.text
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Writes the Prometheus text format (version 0.0.4): a family's `# HELP` and `# TYPE`, then
/// its samples. <https://prometheus.io/docs/instrumenting/exposition_formats/>
pub struct Exposition {
    prefix: String,
    text: String,
}

impl Exposition {
    pub fn new(prefix: &str) -> Self {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}_")
        };
        Self {
            prefix,
            text: String::new(),
        }
    }

    /// Starts the family `name` (without the prefix).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', r"\\").replace('\n', r"\n");
        let prefix = &self.prefix;
        let _ = writeln!(self.text, "# HELP {prefix}{name} {help}");
        let _ = writeln!(self.text, "# TYPE {prefix}{name} {kind}");
    }

    /// One sample of the current family; `name` may carry a suffix such as `_bucket`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(&self.prefix);
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(label);
                self.text.push_str("=\"");
                for c in value.chars() {
                    match c {
                        '\\' => self.text.push_str(r"\\"),
                        '"' => self.text.push_str("\\\""),
                        '\n' => self.text.push_str(r"\n"),
                        c => self.text.push(c),
                    }
                }
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        if value.is_nan() {
            self.text.push_str("NaN");
        } else if value.is_infinite() {
            self.text
                .push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(self.text, "{value}");
        }
        self.text.push('\n');
    }

    /// A histogram's samples from per-bucket (not cumulative) counts over `bounds` plus one
    /// for above them all, and the sum of what was observed.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        debug_assert_eq!(counts.len(), bounds.len() + 1);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, count) in bounds.iter().map(Some).chain([None]).zip(counts) {
            cumulative += count;
            let le = bound.map_or_else(|| "+Inf".to_owned(), f64::to_string);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        // Derived from the buckets, so `_count` always equals the `+Inf` bucket even when a
        // scrape races a request.
        self.sample(&format!("{name}_count"), labels, cumulative as f64);
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    registry: Arc<Registry>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let registry = registry.clone();
                let service = service_fn(move |request| {
                    let registry = registry.clone();
                    async move { Ok::<_, Infallible>(answer(&registry, &request)) }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = &mut shutdown => return Ok(()),
        }
    }
}

fn answer(registry: &Registry, request: &Request<Incoming>) -> Response<HyperOutgoingBody> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            registry.render(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "metrics are at GET /metrics\n".to_owned(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(full_body(Bytes::from(body)))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_label_values_and_print_prometheus_numbers() {
        let mut out = Exposition::new("x");
        out.family("things_total", Kind::Counter, "Things,\nseen.");
        out.sample("things_total", &[("name", "a\"b\\c\nd"), ("k", "v")], 3.0);
        out.sample("things_total", &[], 0.25);
        out.sample("things_total", &[], f64::INFINITY);
        out.sample("things_total", &[], f64::NAN);
        assert_eq!(
            out.text,
            "# HELP x_things_total Things,\\nseen.\n\
             # TYPE x_things_total counter\n\
             x_things_total{name=\"a\\\"b\\\\c\\nd\",k=\"v\"} 3\n\
             x_things_total 0.25\n\
             x_things_total +Inf\n\
             x_things_total NaN\n"
        );
        let mut bare = Exposition::new("");
        bare.sample("up", &[], 1.0);
        assert_eq!(bare.text, "up 1\n");
    }

    #[test]
    fn histograms_are_cumulative_and_count_equals_the_inf_bucket() {
        let mut out = Exposition::new("p");
        out.histogram("d_seconds", &[("c", "a")], &[0.001, 1.0], &[2, 0, 1], 5.5);
        assert_eq!(
            out.text,
            "p_d_seconds_bucket{c=\"a\",le=\"0.001\"} 2\n\
             p_d_seconds_bucket{c=\"a\",le=\"1\"} 2\n\
             p_d_seconds_bucket{c=\"a\",le=\"+Inf\"} 3\n\
             p_d_seconds_sum{c=\"a\"} 5.5\n\
             p_d_seconds_count{c=\"a\"} 3\n"
        );
    }

    #[test]
    fn observations_land_in_their_status_class_and_latency_bucket() {
        let m = ComponentMetrics::default();
        m.observe(201, Duration::from_micros(1_000)); // on a bound: `le` includes it
        m.observe(404, Duration::from_micros(1_001));
        m.observe(504, Duration::from_secs(31));
        m.observe(99, Duration::ZERO); // nothing below 1xx exists; clamped, not lost
        let classes: Vec<u64> = m.by_class.iter().map(|c| c.load(Relaxed)).collect();
        assert_eq!(classes, [1, 1, 0, 1, 1]);
        let buckets: Vec<u64> = m.buckets.iter().map(|b| b.load(Relaxed)).collect();
        assert_eq!(buckets[0], 2);
        assert_eq!(buckets[1], 1);
        assert_eq!(buckets[LATENCY_BOUNDS_MICROS.len()], 1);
        assert_eq!(buckets.iter().sum::<u64>(), 4);
        assert_eq!(m.sum_micros.load(Relaxed), 31_002_001);
    }

    #[test]
    fn redis_messages_are_counted_by_outcome() {
        let m = ComponentMetrics::default();
        m.redis_message(true);
        m.redis_message(false);
        m.redis_message(false);
        let counts: Vec<u64> = m.redis_messages.iter().map(|c| c.load(Relaxed)).collect();
        assert_eq!(counts, [1, 2]);
    }

    #[test]
    fn latency_bounds_print_as_seconds() {
        let printed: Vec<String> = LATENCY_BOUNDS_MICROS
            .iter()
            .map(|&micros| (micros as f64 / 1e6).to_string())
            .collect();
        assert_eq!(printed[0], "0.001");
        assert_eq!(printed[1], "0.0025");
        assert_eq!(printed[9], "1");
        assert_eq!(printed[13], "30");
    }
}
